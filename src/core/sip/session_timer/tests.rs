//! Every rule of the session-timer module, without a dialog.

use std::time::{Duration, Instant};

use super::*;
use crate::core::sip::message::Limits;

fn se(delta: u32, refresher: Option<Refresher>) -> Option<SessionExpires> {
    Some(SessionExpires { delta, refresher })
}

fn offer(session_expires: Option<SessionExpires>, min_se: Option<u32>, supported: bool) -> Offer {
    Offer {
        session_expires,
        min_se,
        supported,
        required: false,
    }
}

#[test]
fn parses_session_expires() {
    assert_eq!(parse_session_expires("1800"), se(1800, None));
    assert_eq!(
        parse_session_expires(" 90 ; refresher = UAC"),
        se(90, Some(Refresher::Uac))
    );
    assert_eq!(
        parse_session_expires("4000;foo=bar;refresher=uas"),
        se(4000, Some(Refresher::Uas))
    );
    assert_eq!(parse_session_expires("90;refresher=proxy"), se(90, None));
    assert_eq!(parse_session_expires("99999999999"), se(u32::MAX, None));
    for bad in ["", "abc", "-5", "0", ";refresher=uac", "1.5"] {
        assert_eq!(parse_session_expires(bad), None, "{bad:?}");
    }
}

#[test]
fn parses_min_se() {
    assert_eq!(parse_min_se("90"), Some(90));
    assert_eq!(parse_min_se(" 120;lr"), Some(120));
    assert_eq!(parse_min_se("x"), None);
    assert_eq!(parse_min_se("0"), None);
}

#[test]
fn session_expires_value() {
    assert_eq!(
        se(90, Some(Refresher::Uac)).map(|s| s.value()),
        Some("90;refresher=uac".into())
    );
    assert_eq!(se(1800, None).map(|s| s.value()), Some("1800".into()));
}

#[test]
fn offer_reads_a_message() {
    let text = "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n\
        From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
        Supported: 100rel, Timer\r\nx: 300;refresher=uas\r\nMin-SE: 120\r\n\
        Content-Length: 0\r\n\r\n";
    let msg = Message::parse(text.as_bytes(), &Limits::default()).expect("parses");
    let o = Offer::of(&msg);
    assert_eq!(o.session_expires, se(300, Some(Refresher::Uas)));
    assert_eq!(o.min_se, Some(120));
    assert!(o.supported && !o.required);
    let text = text.replace("Supported: 100rel, Timer", "Require: timer");
    let msg = Message::parse(text.as_bytes(), &Limits::default()).expect("parses");
    let o = Offer::of(&msg);
    assert!(o.supported && o.required);
}

#[test]
fn uas_honours_the_peers_interval_and_refresher() {
    let cfg = Config::default();
    let a = answer_as_uas(&offer(se(90, Some(Refresher::Uac)), None, true), &cfg);
    assert_eq!(
        a,
        UasAnswer::Timer {
            interval: 90,
            refresher: Refresher::Uac,
            require: true
        }
    );
    assert_eq!(
        a.headers(),
        vec![
            ("Session-Expires", "90;refresher=uac".to_string()),
            ("Require", "timer".to_string())
        ]
    );
    assert_eq!(a.timer(), Some((90, Party::Peer)));
    let a = answer_as_uas(&offer(se(3600, Some(Refresher::Uas)), None, true), &cfg);
    assert_eq!(a.timer(), Some((3600, Party::Us)));
}

#[test]
fn uas_lets_a_supporting_peer_refresh_when_it_did_not_choose() {
    let a = answer_as_uas(&offer(se(600, None), None, true), &Config::default());
    assert_eq!(a.timer(), Some((600, Party::Peer)));
    assert_eq!(a.headers()[0].1, "600;refresher=uac");
}

#[test]
fn uas_refuses_too_small_with_422_only_when_the_peer_understands() {
    let cfg = Config::default();
    let a = answer_as_uas(&offer(se(60, None), None, true), &cfg);
    assert_eq!(a, UasAnswer::TooSmall { min_se: 90 });
    assert_eq!(a.headers(), vec![("Min-SE", "90".to_string())]);
    assert_eq!(a.timer(), None);
    // A proxy added it for a peer that cannot read 422: accept as is, we refresh (§9).
    let a = answer_as_uas(&offer(se(60, None), None, false), &cfg);
    assert_eq!(
        a,
        UasAnswer::Timer {
            interval: 60,
            refresher: Refresher::Uas,
            require: false
        }
    );
    assert_eq!(
        a.headers(),
        vec![("Session-Expires", "60;refresher=uas".to_string())]
    );
    // Exactly our Min-SE is fine.
    let a = answer_as_uas(&offer(se(90, None), None, true), &cfg);
    assert_eq!(a.timer(), Some((90, Party::Peer)));
}

#[test]
fn uas_adds_a_timer_for_a_supporting_peer_that_asked_for_none() {
    let cfg = Config::default();
    let a = answer_as_uas(&offer(None, None, true), &cfg);
    assert_eq!(a.timer(), Some((1800, Party::Peer)));
    // Never below the peer's Min-SE.
    let a = answer_as_uas(&offer(None, Some(4000), true), &cfg);
    assert_eq!(a.timer(), Some((4000, Party::Peer)));
    assert_eq!(
        answer_as_uas(&offer(None, None, false), &cfg),
        UasAnswer::NoTimer
    );
    assert!(UasAnswer::NoTimer.headers().is_empty());
}

#[test]
fn uac_headers_and_2xx() {
    assert_eq!(
        uac_headers(1800, 90, None),
        vec![
            ("Supported", "timer".to_string()),
            ("Session-Expires", "1800".to_string()),
            ("Min-SE", "90".to_string())
        ]
    );
    assert_eq!(
        uac_headers(90, 90, Some(Refresher::Uac))[1].1,
        "90;refresher=uac"
    );
    assert_eq!(
        timer_from_2xx(&offer(se(90, Some(Refresher::Uac)), None, true)),
        Some((90, Party::Us))
    );
    assert_eq!(
        timer_from_2xx(&offer(se(90, Some(Refresher::Uas)), None, true)),
        Some((90, Party::Peer))
    );
    assert_eq!(
        timer_from_2xx(&offer(se(90, None), None, true)),
        Some((90, Party::Us))
    );
    assert_eq!(timer_from_2xx(&offer(None, None, true)), None);
}

#[test]
fn uac_retries_a_422_only_upwards() {
    assert_eq!(
        retry_after_422(&offer(None, Some(120), false), 90),
        Some(120)
    );
    assert_eq!(retry_after_422(&offer(None, Some(90), false), 90), None);
    assert_eq!(retry_after_422(&offer(None, None, false), 90), None);
}

#[test]
fn we_refresh_at_half_and_expire_at_the_end() {
    let t0 = Instant::now();
    let mut t = SessionTimer::start(t0, 90, Party::Us);
    assert_eq!(t.deadline(), t0 + Duration::from_secs(45));
    assert_eq!(t.due(t0 + Duration::from_secs(44)), Due::Nothing);
    assert_eq!(t.due(t0 + Duration::from_secs(45)), Due::Refresh);
    t.refresh_sent();
    assert_eq!(t.due(t0 + Duration::from_secs(50)), Due::Nothing);
    assert_eq!(t.deadline(), t0 + Duration::from_secs(90));
    // A 491 at 50 s: the next try halfway to 90 s.
    t.refresh_failed(t0 + Duration::from_secs(50));
    assert_eq!(t.deadline(), t0 + Duration::from_secs(70));
    assert_eq!(t.due(t0 + Duration::from_secs(70)), Due::Refresh);
    assert_eq!(t.due(t0 + Duration::from_secs(90)), Due::Expired);
    // Too close to the end to try again: wait for the expiry.
    t.refresh_sent();
    t.refresh_failed(t0 + Duration::from_millis(88_500));
    assert_eq!(t.refresh_at, None);
    assert_eq!(t.deadline(), t0 + Duration::from_secs(90));
}

#[test]
fn the_peer_refreshes_and_we_watch_the_expiry() {
    let t0 = Instant::now();
    let t = SessionTimer::start(t0, 90, Party::Peer);
    // 90 - min(32, 30) = 60 s.
    assert_eq!(t.deadline(), t0 + Duration::from_secs(60));
    assert_eq!(t.due(t0 + Duration::from_secs(59)), Due::Nothing);
    assert_eq!(t.due(t0 + Duration::from_secs(60)), Due::Expired);
    let t = SessionTimer::start(t0, 1800, Party::Peer);
    assert_eq!(t.deadline(), t0 + Duration::from_secs(1768));
    assert_eq!(grace(4), 1);
    assert_eq!(grace(2), 0);
}

#[test]
fn only_408_and_481_end_the_dialog() {
    assert!(refresh_fatal(408) && refresh_fatal(481));
    for s in [405, 422, 491, 500, 501, 503] {
        assert!(!refresh_fatal(s), "{s}");
    }
}
