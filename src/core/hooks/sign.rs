//! Request signing for webhooks and callbacks (PROTOCOLS.md §1, §4):
//! `X-Trunkgate-Signature: t=<unix>,v1=<hex hmac-sha256(secret, "<t>.<body>")>`.
//!
//! Owns: producing the header and checking one (the check is for platforms' reference code and
//! for our tests; trunkgate itself only signs). Verification compares MACs in constant time,
//! accepts any of several `v1` values (secret rotation) and refuses timestamps outside the
//! tolerance either way (replays, and clocks far apart).
//! Must not: read a clock (the time is passed in) or log the secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "X-Trunkgate-Signature";

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], unix_ts: u64, body: &[u8]) -> Option<HmacSha256> {
    // HMAC takes keys of any length, so this never fails in practice.
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(unix_ts.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// The header value for `body` sent at `unix_ts`.
pub fn signature_header(secret: &[u8], unix_ts: u64, body: &[u8]) -> String {
    let tag = mac(secret, unix_ts, body).map(|m| m.finalize().into_bytes());
    let hex: String = tag.iter().flatten().map(|b| format!("{b:02x}")).collect();
    format!("t={unix_ts},v1={hex}")
}

/// True when `header` carries a `v1` MAC of `body` under `secret` and its `t` is within
/// `tolerance_s` of `now_unix`.
pub fn verify_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_unix: u64,
    tolerance_s: u64,
) -> bool {
    let mut ts = None;
    let mut macs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => {
                if ts.is_some() {
                    return false;
                }
                ts = v.parse::<u64>().ok();
            }
            Some(("v1", v)) => macs.extend(unhex(v)),
            _ => {}
        }
    }
    let Some(ts) = ts else { return false };
    if ts.abs_diff(now_unix) > tolerance_s {
        return false;
    }
    macs.iter()
        .any(|tag| mac(secret, ts, body).is_some_and(|m| m.verify_slice(tag).is_ok()))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_5ecret";
    const BODY: &[u8] = br#"{"event":"call.incoming","call_id":"c"}"#;
    // Computed outside this crate: Python `hmac.new(SECRET, b"1700000000." + BODY, sha256)`.
    const KAT: &str =
        "t=1700000000,v1=24817c5c211a5556cb09f654841b5f9a72eb887e73066fe3ec08f9ee95f16760";

    #[test]
    fn known_answer() {
        assert_eq!(signature_header(SECRET, 1_700_000_000, BODY), KAT);
        assert_eq!(
            signature_header(b"", 0, b""),
            "t=0,v1=b849d5a581847b281957065739df36df2463d1977ea8d6e1e4e6cf33fadc68c3"
        );
    }

    #[test]
    fn verify_accepts_good_and_rotated_signatures() {
        assert!(verify_signature(SECRET, KAT, BODY, 1_700_000_000, 300));
        assert!(verify_signature(SECRET, KAT, BODY, 1_700_000_300, 300));
        assert!(verify_signature(SECRET, KAT, BODY, 1_699_999_700, 300));
        let rotated = KAT.replace("t=1700000000,", "t=1700000000, v1=00ff,");
        assert!(verify_signature(SECRET, &rotated, BODY, 1_700_000_000, 300));
    }

    #[test]
    fn verify_refuses_everything_else() {
        let now = 1_700_000_000;
        assert!(!verify_signature(b"other", KAT, BODY, now, 300));
        assert!(!verify_signature(SECRET, KAT, b"{}", now, 300));
        assert!(!verify_signature(SECRET, KAT, BODY, now + 301, 300));
        assert!(!verify_signature(SECRET, KAT, BODY, now - 301, 300));
        let cases = [
            "",
            "t=1700000000",
            "v1=24817c5c211a5556cb09f654841b5f9a72eb887e73066fe3ec08f9ee95f16760",
            "t=1700000001,v1=24817c5c211a5556cb09f654841b5f9a72eb887e73066fe3ec08f9ee95f16760",
            "t=1700000000,v1=24817c5c211a5556cb09f654841b5f9a72eb887e73066fe3ec08f9ee95f1676",
            "t=1700000000,v1=24817c5c211a5556cb09f654841b5f9a72eb887e73066fe3ec08f9ee95f167",
            "t=1700000000,v1=zz817c5c211a5556cb09f654841b5f9a72eb887e73066fe3ec08f9ee95f16760",
            "t=1700000000,v0=24817c5c211a5556cb09f654841b5f9a72eb887e73066fe3ec08f9ee95f16760",
            "t=x,v1=24817c5c211a5556cb09f654841b5f9a72eb887e73066fe3ec08f9ee95f16760",
            "t=1,t=1700000000,v1=24817c5c211a5556cb09f654841b5f9a72eb887e73066fe3ec08f9ee95f16760",
            "t=1700000000,v1=é4817c5c211a5556cb09f654841b5f9a72eb887e73066fe3ec08f9ee95f1676",
        ];
        for h in cases {
            assert!(!verify_signature(SECRET, h, BODY, now, 300), "{h}");
        }
    }

    #[test]
    fn round_trip() {
        for (ts, body) in [
            (0u64, &b""[..]),
            (u64::MAX, b"\x00\xFF"),
            (1_234, b"x".as_slice()),
        ] {
            let h = signature_header(SECRET, ts, body);
            assert!(verify_signature(SECRET, &h, body, ts, 0));
        }
    }
}
