//! Admission-policy settings as layers: global, then trunk, then number; each field `None` means
//! "inherit". Also the E.164 prefix type (normalised by `core::number`'s one rule).
//!
//! Owns the layering rule (`merged`: a field set in the upper layer replaces the lower one whole,
//! lists are not concatenated) and the defaults of the global layer. These are core's types:
//! `config` parses and validates TOML into them (and re-exports them); this file must not read
//! files, know TOML key paths or decide admission (`Admission` does that from the layers).

use std::fmt;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::core::number::E164;

/// Scanner user agents rejected by default (substring, case-insensitive, decided in core).
pub const DEFAULT_USER_AGENT_BLOCKLIST: &[&str] = &[
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "VaxSIPUserAgent",
];

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyConfig {
    /// Empty → any source.
    pub allow_cidrs: Option<Vec<IpNet>>,
    /// Caller-number prefixes; empty → all.
    pub allowed_prefixes: Option<Vec<E164Prefix>>,
    pub blocked_prefixes: Option<Vec<E164Prefix>>,
    /// 0 → unlimited; over → 486 Busy Here.
    pub max_concurrent: Option<u32>,
    /// 0 → unlimited; sliding windows.
    pub max_calls_per_hour: Option<u32>,
    pub max_calls_per_day: Option<u32>,
    /// `Some(None)` → 24/7 (also how an upper layer clears a lower layer's hours).
    pub hours: Option<Option<Hours>>,
    /// Zero → no cap.
    pub max_call_duration: Option<Duration>,
    /// 0 → no cap.
    pub daily_minutes_cap: Option<u32>,
    /// `calls == 0` → no alert.
    pub fraud_alert: Option<FraudAlert>,
    /// `burst == 0` → no flood limit.
    pub flood_per_source: Option<Flood>,
    pub reject_action: Option<RejectAction>,
    /// Substrings of User-Agent values whose requests are rejected as scanners.
    pub user_agent_blocklist: Option<Vec<String>>,
}

impl PolicyConfig {
    /// The global layer's defaults: every field `Some`.
    pub fn defaults() -> PolicyConfig {
        PolicyConfig {
            allow_cidrs: Some(Vec::new()),
            allowed_prefixes: Some(Vec::new()),
            blocked_prefixes: Some(Vec::new()),
            max_concurrent: Some(0),
            max_calls_per_hour: Some(0),
            max_calls_per_day: Some(0),
            hours: Some(None),
            max_call_duration: Some(Duration::ZERO),
            daily_minutes_cap: Some(0),
            fraud_alert: Some(FraudAlert {
                calls: 0,
                within: Duration::from_secs(300),
                url: None,
                email: Vec::new(),
            }),
            flood_per_source: Some(Flood {
                burst: 50,
                per_second: 20,
            }),
            reject_action: Some(RejectAction::Respond),
            user_agent_blocklist: Some(
                DEFAULT_USER_AGENT_BLOCKLIST
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            ),
        }
    }

    /// `self` overlaid by `over`: every field `over` sets wins. The effective policy for a call
    /// is `global.merged(&trunk.policy).merged(&number.policy)`.
    pub fn merged(&self, over: &PolicyConfig) -> PolicyConfig {
        fn pick<T: Clone>(base: &Option<T>, over: &Option<T>) -> Option<T> {
            over.as_ref().or(base.as_ref()).cloned()
        }
        PolicyConfig {
            allow_cidrs: pick(&self.allow_cidrs, &over.allow_cidrs),
            allowed_prefixes: pick(&self.allowed_prefixes, &over.allowed_prefixes),
            blocked_prefixes: pick(&self.blocked_prefixes, &over.blocked_prefixes),
            max_concurrent: pick(&self.max_concurrent, &over.max_concurrent),
            max_calls_per_hour: pick(&self.max_calls_per_hour, &over.max_calls_per_hour),
            max_calls_per_day: pick(&self.max_calls_per_day, &over.max_calls_per_day),
            hours: pick(&self.hours, &over.hours),
            max_call_duration: pick(&self.max_call_duration, &over.max_call_duration),
            daily_minutes_cap: pick(&self.daily_minutes_cap, &over.daily_minutes_cap),
            fraud_alert: pick(&self.fraud_alert, &over.fraud_alert),
            flood_per_source: pick(&self.flood_per_source, &over.flood_per_source),
            reject_action: pick(&self.reject_action, &over.reject_action),
            user_agent_blocklist: pick(&self.user_agent_blocklist, &over.user_agent_blocklist),
        }
    }
}

/// Outbound admission settings (calls we place) as one layer: `[outbound_policy]` globally, a
/// trunk's `outbound_policy = { ... }` over it; `None` → inherit, as for [`PolicyConfig`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutboundPolicyConfig {
    /// Calls placed at the same time; 0 → unlimited; over → 429.
    pub max_concurrent: Option<u32>,
    /// Calls placed in any sliding second (strict, not a bucket); 0 → unlimited; over → 429.
    pub calls_per_second: Option<u32>,
    /// Destination prefixes allowed; empty → all (a SIP-URI destination passes only then).
    pub allowed_prefixes: Option<Vec<E164Prefix>>,
    /// Destination prefixes refused (toll-fraud ranges); wins over `allowed_prefixes`.
    pub blocked_prefixes: Option<Vec<E164Prefix>>,
    /// `Some(None)` → 24/7 (also how a trunk clears the global hours).
    pub hours: Option<Option<Hours>>,
}

impl OutboundPolicyConfig {
    /// The global layer's defaults: every field `Some`, nothing limited.
    pub fn defaults() -> OutboundPolicyConfig {
        OutboundPolicyConfig {
            max_concurrent: Some(0),
            calls_per_second: Some(0),
            allowed_prefixes: Some(Vec::new()),
            blocked_prefixes: Some(Vec::new()),
            hours: Some(None),
        }
    }

    /// `self` overlaid by `over`, key by key (lists replaced whole, as in [`PolicyConfig`]).
    pub fn merged(&self, over: &OutboundPolicyConfig) -> OutboundPolicyConfig {
        fn pick<T: Clone>(base: &Option<T>, over: &Option<T>) -> Option<T> {
            over.as_ref().or(base.as_ref()).cloned()
        }
        OutboundPolicyConfig {
            max_concurrent: pick(&self.max_concurrent, &over.max_concurrent),
            calls_per_second: pick(&self.calls_per_second, &over.calls_per_second),
            allowed_prefixes: pick(&self.allowed_prefixes, &over.allowed_prefixes),
            blocked_prefixes: pick(&self.blocked_prefixes, &over.blocked_prefixes),
            hours: pick(&self.hours, &over.hours),
        }
    }
}

/// A daily window in a named time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hours {
    /// Minutes since local midnight, 0..1440.
    pub start_min: u16,
    /// Minutes since local midnight, 1..=1440 (`24:00` allowed); `end_min < start_min` means
    /// the window crosses midnight. Config validation never makes it equal to `start_min`;
    /// admission reads equal as open all day.
    pub end_min: u16,
    /// IANA zone name such as `Europe/Warsaw` (checked against /usr/share/zoneinfo when present).
    pub tz: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FraudAlert {
    /// Alert when more than this many calls arrive within `within`; 0 → off.
    pub calls: u32,
    pub within: Duration,
    /// http(s) URL POSTed on alert.
    pub url: Option<String>,
    /// Addresses mailed on alert (through `[smtp]`); `calls > 0` needs this or `url`
    /// (validated).
    pub email: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flood {
    /// Token-bucket size per source IP; 0 → off.
    pub burst: u32,
    pub per_second: u32,
}

/// What to do with a request rejected by `allow_cidrs` or the user-agent blocklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RejectAction {
    /// Answer 403 Forbidden.
    Respond,
    /// Send nothing: scanners learn less and get no reflection.
    Drop,
}

/// A caller-number prefix: `+` followed by 1–15 digits, written in any form
/// [`crate::core::number::E164`] accepts (`0048` → `+48`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164Prefix(String);

impl E164Prefix {
    pub fn parse(text: &str) -> Result<E164Prefix, String> {
        text.parse::<E164>()
            .map(|n| E164Prefix(n.to_string()))
            .map_err(|e| e.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a normalised E.164 number starts with this prefix.
    pub fn matches(&self, number: &str) -> bool {
        number.starts_with(&self.0)
    }
}

impl fmt::Display for E164Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164() {
        assert_eq!(
            E164Prefix::parse("0048").map(|p| p.0),
            Ok("+48".to_string())
        );
        assert_eq!(E164Prefix::parse("+1").map(|p| p.0), Ok("+1".to_string()));
        assert!(E164Prefix::parse("+48").is_ok_and(|p| p.matches("+48123")));
        assert_eq!(E164Prefix::parse("48").map(|p| p.0), Ok("+48".to_string()));
        assert_eq!(
            E164Prefix::parse("+48 12").map(|p| p.0),
            Ok("+4812".to_string())
        );
        for bad in ["+", "00", "+1234567890123456", "+4a", "++1"] {
            assert!(E164Prefix::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn merge_prefers_upper_layer() {
        let global = PolicyConfig::defaults();
        let trunk = PolicyConfig {
            max_concurrent: Some(30),
            hours: Some(Some(Hours {
                start_min: 480,
                end_min: 1200,
                tz: "UTC".into(),
            })),
            ..PolicyConfig::default()
        };
        let number = PolicyConfig {
            hours: Some(None),
            ..PolicyConfig::default()
        };
        let eff = global.merged(&trunk).merged(&number);
        assert_eq!(eff.max_concurrent, Some(30));
        assert_eq!(eff.hours, Some(None));
        assert_eq!(eff.flood_per_source, global.flood_per_source);
    }
}
