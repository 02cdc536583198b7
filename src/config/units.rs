//! Operator-facing units: durations (`"30s"`, `"5m"`, `"250ms"`) and sizes (`"64KiB"`, plain bytes).
//!
//! Owns the textual grammar only; it does not know key paths or line numbers (the caller wraps
//! the message). Must not accept anything ambiguous: a duration without a unit, a negative or
//! fractional number, or a decimal size unit (`KB` could mean 1000 or 1024) is an error.

use std::time::Duration;

/// Units a duration may use, in the order they are suggested to operators.
const DURATION_UNITS: &str = "ms, s, m, h";

/// Parses `"<digits><unit>"` with unit `ms`, `s`, `m` or `h`. `"0s"` is valid.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err(format!(
            "{text:?} is not a duration; write e.g. \"30s\", \"5m\" or \"250ms\""
        ));
    }
    if unit.is_empty() {
        return Err(format!(
            "{text:?} has no unit; write e.g. \"{digits}s\" (units: {DURATION_UNITS})"
        ));
    }
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is too large for a duration"))?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit {unit:?} (units: {DURATION_UNITS})"
            ))
        }
    };
    value
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too large for a duration"))
}

/// Renders a duration in the largest unit that represents it exactly (the inverse of
/// [`parse_duration`] for every value it produces).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    for (unit, per) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000)] {
        if ms % per == 0 {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

/// Parses `"<digits>[unit]"` with unit `B`, `KiB`, `MiB` or `GiB`; no unit means bytes.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err(format!(
            "{text:?} is not a size; write e.g. \"64KiB\", \"1MiB\" or a number of bytes"
        ));
    }
    let value: usize = digits
        .parse()
        .map_err(|_| format!("{text:?} is too large for a size"))?;
    let per: usize = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit {unit:?} (units: B, KiB, MiB, GiB)"
            ))
        }
    };
    value
        .checked_mul(per)
        .ok_or_else(|| format!("{text:?} is too large for a size"))
}

/// Parses a size given as a TOML integer (bytes).
pub fn size_from_int(value: i64) -> Result<usize, String> {
    usize::try_from(value).map_err(|_| format!("{value} is not a size in bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accepted() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn durations_rejected() {
        assert_eq!(
            parse_duration("30"),
            Err("\"30\" has no unit; write e.g. \"30s\" (units: ms, s, m, h)".to_string())
        );
        assert_eq!(
            parse_duration("-1s"),
            Err("\"-1s\" is not a duration; write e.g. \"30s\", \"5m\" or \"250ms\"".to_string())
        );
        assert_eq!(
            parse_duration("1x"),
            Err("\"1x\" has an unknown unit \"x\" (units: ms, s, m, h)".to_string())
        );
        for bad in [
            "",
            "s",
            "1.5s",
            " 1s",
            "1s ",
            "1 s",
            "99999999999999999999h",
            "5000000000000000h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn duration_round_trip() {
        for text in ["0s", "250ms", "30s", "5m", "1h", "90s", "1500ms"] {
            let d = parse_duration(text).unwrap_or_default();
            assert_eq!(format_duration(d), text);
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1500"), Ok(1500));
        assert_eq!(parse_size("1500B"), Ok(1500));
        assert_eq!(size_from_int(65536), Ok(65536));
        assert!(size_from_int(-1).is_err());
        assert_eq!(
            parse_size("64KB"),
            Err("\"64KB\" has an unknown unit \"KB\" (units: B, KiB, MiB, GiB)".to_string())
        );
        for bad in ["", "KiB", "-1", "1.5MiB", "99999999999999999999"] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
    }
}
