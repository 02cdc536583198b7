//! The Twilio create form: defaults, Twilio's error codes, events.

use super::*;
use crate::app::control::Destination;

fn form(pairs: &[(&str, &str)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const BASE: &[(&str, &str)] = &[
    ("To", "+48123456789"),
    ("From", "+48600100200"),
    ("Url", "https://platform.example/twiml"),
];

fn with(extra: &[(&str, &str)]) -> Result<DialRequest, (u32, String)> {
    let mut f = form(BASE);
    for (k, v) in extra {
        f.retain(|(name, _)| name != k);
        f.push((k.to_string(), v.to_string()));
    }
    request(&f)
}

#[test]
fn defaults_like_twilio() {
    let Ok(req) = with(&[("FriendlyName", "ignored"), ("MachineDetection", "Enable")]) else {
        panic!("refused")
    };
    assert_eq!(req.to, Destination::E164("+48123456789".into()));
    assert_eq!(req.from.as_deref(), Some("+48600100200"));
    assert_eq!(
        req.agent,
        AgentSource::Webhook {
            url: "https://platform.example/twiml".into()
        }
    );
    assert_eq!(req.ring_timeout, Duration::from_secs(60));
    assert!(req.twilio_form && !req.record);
    assert_eq!((req.status_events, req.callback_url), (None, None));
}

#[test]
fn every_field_is_read() {
    let mut f = form(&[
        ("To", "sip:bob@pbx.example"),
        ("From", "+48600100200"),
        (
            "Twiml",
            "<Response><Connect><Stream url=\"wss://a/ws\"/></Connect></Response>",
        ),
        ("Url", "https://ignored.example"),
        ("StatusCallback", "https://platform.example/status"),
        ("StatusCallbackMethod", "POST"),
        ("StatusCallbackEvent", "initiated ringing"),
        ("StatusCallbackEvent", "answered"),
        ("Timeout", "25"),
        ("TimeLimit", "600"),
        ("Record", "true"),
    ]);
    f.push(("StatusCallbackEvent".into(), String::new()));
    let Ok(req) = request(&f) else {
        panic!("refused")
    };
    assert_eq!(req.to, Destination::Uri("sip:bob@pbx.example".into()));
    assert!(matches!(req.agent, AgentSource::Twiml(ref t) if t.starts_with("<Response>")));
    assert_eq!(
        req.callback_url.as_deref(),
        Some("https://platform.example/status")
    );
    let events = req.status_events.unwrap_or(EventSet::NONE);
    assert!(events.contains(CallbackEvent::Ringing) && events.contains(CallbackEvent::Answered));
    assert!(!events.contains(CallbackEvent::Completed));
    assert_eq!(req.ring_timeout, Duration::from_secs(25));
    assert_eq!(req.time_limit, Some(Duration::from_secs(600)));
    assert!(req.record);
    // A StatusCallback without events: completed only.
    let req = with(&[("StatusCallback", "https://p.example/s")]);
    assert_eq!(req.map(|r| r.status_events), Ok(Some(EventSet::COMPLETED)));
}

#[test]
fn twilio_error_codes() {
    let code = |r: Result<DialRequest, (u32, String)>| r.map(|_| ()).map_err(|(c, _)| c);
    let without = |name: &str| {
        let f: Fields = form(BASE).into_iter().filter(|(k, _)| k != name).collect();
        code(request(&f))
    };
    assert_eq!(without("To"), Err(21201));
    assert_eq!(without("From"), Err(21213));
    assert_eq!(without("Url"), Err(21205));
    assert_eq!(code(with(&[("To", "")])), Err(21201), "empty is absent");
    for (field, value, expected) in [
        ("To", "+48abc", 21211),
        ("To", "sip:bob@x?Route=y", 21211),
        ("From", "bob smith", 21212),
        ("Url", "ftp://x", 21205),
        ("StatusCallback", "not a url", 21609),
        ("StatusCallbackMethod", "GET", 21209),
        ("StatusCallbackMethod", "PUT", 21209),
        ("StatusCallbackEvent", "ringing hungup", 21200),
        ("Timeout", "0", 21208),
        ("Timeout", "601", 21208),
        ("Timeout", "ten", 21208),
        ("TimeLimit", "86401", 21200),
        ("Record", "yes", 21200),
    ] {
        assert_eq!(
            code(with(&[(field, value)])),
            Err(expected),
            "{field}={value}"
        );
    }
    let long = "x".repeat(MAX_TWIML + 1);
    assert_eq!(code(with(&[("Twiml", &long)])), Err(21200));
}
