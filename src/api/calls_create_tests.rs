//! `POST /v1/calls` bodies: defaults, every field's garbage named, the error mapping.

use serde_json::json;

use super::*;
use crate::api::calls_body::request;
use crate::app::control::{AgentSource, Destination};
use crate::config::Dialect;
use crate::core::hooks::callback::{CallbackEvent, EventSet};
use std::time::Duration;

fn field_of(body: Value) -> (Option<String>, String) {
    match request(&body) {
        Ok(req) => panic!("{body} accepted as {req:?}"),
        Err(e) => (e.field, e.message),
    }
}

#[test]
fn minimal_body_gets_the_defaults() {
    let req = request(&json!({"to": "+48 123 456 789", "websocket_url": "wss://a.example/ws"}));
    let Ok(req) = req else { panic!("refused") };
    assert_eq!(req.to, Destination::E164("+48123456789".into()));
    assert_eq!(
        req.agent,
        AgentSource::Stream {
            url: "wss://a.example/ws".into(),
            dialect: Dialect::Twilio,
            sample_rate: 8000
        }
    );
    assert_eq!(req.ring_timeout, Duration::from_secs(30));
    assert_eq!((req.from, req.trunk, req.time_limit), (None, None, None));
    assert!(!req.record && !req.early_media && !req.twilio_form);
    assert_eq!(req.status_events, None);
    assert!(req.parameters.is_empty());
}

#[test]
fn every_field_is_read() {
    let body = json!({
        "to": "sip:bob@pbx.example;transport=tcp", "from": "+48600100200",
        "websocket_url": "builtin:echo", "dialect": "plivo", "sample_rate": 16000,
        "callback_url": "https://platform.example/cb", "trunk": "carrier-a",
        "timeout_s": 45, "time_limit_s": 3600, "record": true, "early_media": true,
        "parameters": {"lead": "42", "score": 7.5, "vip": true},
        "status_events": ["ringing", "completed"], "srtp": "required", "from_extra": null
    });
    let mut body = body;
    if let Some(o) = body.as_object_mut() {
        o.remove("from_extra");
    }
    let Ok(req) = request(&body) else {
        panic!("refused")
    };
    assert_eq!(
        req.to,
        Destination::Uri("sip:bob@pbx.example;transport=tcp".into())
    );
    assert_eq!(req.from.as_deref(), Some("+48600100200"));
    assert!(matches!(
        req.agent,
        AgentSource::Stream {
            dialect: Dialect::Plivo,
            sample_rate: 16000,
            ..
        }
    ));
    assert_eq!(
        req.callback_url.as_deref(),
        Some("https://platform.example/cb")
    );
    assert_eq!(req.trunk.as_deref(), Some("carrier-a"));
    assert_eq!(req.ring_timeout, Duration::from_secs(45));
    assert_eq!(req.time_limit, Some(Duration::from_secs(3600)));
    assert!(req.record && req.early_media);
    assert_eq!(req.srtp, Some(crate::config::SrtpMode::Required));
    let params: Vec<(&str, &str)> = req
        .parameters
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(params, [("lead", "42"), ("score", "7.5"), ("vip", "true")]);
    let events = req.status_events.unwrap_or(EventSet::ALL);
    assert!(events.contains(CallbackEvent::Ringing) && events.contains(CallbackEvent::Completed));
    assert!(!events.contains(CallbackEvent::Answered));
}

#[test]
fn garbage_names_its_field() {
    let ok = json!({"to": "+48123456789", "websocket_url": "wss://a.example/ws"});
    let cases: &[(&str, Value)] = &[
        ("to", json!(null)),
        ("to", json!(48123456789u64)),
        ("to", json!("+48abc")),
        ("to", json!("+48")),
        ("to", json!("sip:bob@example.com\r\nX: y")),
        ("from", json!("bob smith")),
        ("from", json!(5)),
        ("websocket_url", json!(null)),
        ("websocket_url", json!("https://agent.example")),
        ("dialect", json!("exotel")),
        ("sample_rate", json!(44100)),
        ("sample_rate", json!("8000")),
        ("callback_url", json!("ftp://x")),
        ("trunk", json!("")),
        ("trunk", json!(["a"])),
        ("timeout_s", json!(0)),
        ("timeout_s", json!(601)),
        ("timeout_s", json!(30.5)),
        ("timeout_s", json!(-1)),
        ("time_limit_s", json!(86_401)),
        ("record", json!("yes")),
        ("early_media", json!(1)),
        ("srtp", json!("sometimes")),
        ("srtp", json!(true)),
        ("parameters", json!(["a"])),
        ("parameters", json!({"a": {"b": "c"}})),
        ("parameters", json!({"a": null})),
        ("parameters", json!({"": "x"})),
        ("status_events", json!("ringing")),
        ("status_events", json!(["initiated"])),
        // With websocket_url: click-to-call takes no agent.
        ("bridge_from", json!("sip:mgr@pbx")),
        ("bridge_from_trunk", json!("pbx")),
    ];
    for (name, value) in cases {
        let mut body = ok.clone();
        if let Some(o) = body.as_object_mut() {
            o.insert((*name).to_string(), value.clone());
        }
        let (field, message) = field_of(body);
        let name = if *name == "bridge_from" {
            &"websocket_url"
        } else {
            name
        };
        assert_eq!(field.as_deref(), Some(*name), "{name}={value}: {message}");
        assert!(message.starts_with(&format!("{name}: ")), "{message}");
    }
    assert_eq!(field_of(json!([1])).0, None, "not an object");
}

#[test]
fn bridge_from_is_click_to_call_without_an_agent() {
    let body = json!({"to": "+48123456789", "bridge_from": "sip:mgr@pbx.example",
                      "bridge_from_trunk": "pbx", "record": true});
    let Ok(req) = request(&body) else {
        panic!("refused")
    };
    assert_eq!(
        req.agent,
        AgentSource::Bridge {
            from: Destination::Uri("sip:mgr@pbx.example".into()),
            trunk: Some("pbx".into()),
        }
    );
    assert!(req.record);
    let (field, _) = field_of(json!({"to": "+48123456789", "bridge_from": "x y"}));
    assert_eq!(field.as_deref(), Some("bridge_from"));
}

#[test]
fn dial_errors_map_to_statuses() {
    let status = |e: DialError| {
        let e = dial_error(e, true);
        (e.status.as_u16(), e.code, e.retry_after)
    };
    assert_eq!(
        status(DialError::NoTrunk("x".into())),
        (400, "no_trunk", None)
    );
    let limited = DialError::Refused {
        reason: "calls_per_second".into(),
        retry_after: Some(Duration::from_millis(200)),
    };
    assert_eq!(status(limited), (429, "rate_limited", Some(1)));
    let refused = DialError::Refused {
        reason: "blocked_prefix".into(),
        retry_after: None,
    };
    let e = dial_error(refused, false);
    assert_eq!((e.status.as_u16(), e.code), (403, "refused"));
    assert!(e.message.contains("blocked_prefix"), "{}", e.message);
    assert_eq!(status(DialError::Busy("x".into())), (429, "busy", None));
    assert_eq!(status(DialError::Draining), (503, "draining", None));
    assert_eq!(
        status(DialError::KeyReused),
        (409, "idempotency_key_reused", None)
    );
    assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    assert_eq!(retry_after_secs(Duration::ZERO), 1);
}
