//! The value checks of `fields`, good and bad.

use axum::http::{HeaderMap, HeaderValue};

use super::*;

#[test]
fn destinations() {
    let e164 = |s: &str| Destination::E164(s.to_string());
    let uri = |s: &str| Destination::Uri(s.to_string());
    assert_eq!(destination("+48123456789"), Ok(e164("+48123456789")));
    assert_eq!(destination("+48 (12) 345-67-89"), Ok(e164("+48123456789")));
    assert_eq!(destination("0048123456789"), Ok(e164("+48123456789")));
    assert_eq!(destination("+6834002"), Ok(e164("+6834002")), "7 digits");
    assert_eq!(
        destination("sip:bob@example.com"),
        Ok(uri("sip:bob@example.com"))
    );
    assert_eq!(
        destination("SIPS:+4812@10.0.0.1:5061;transport=tls"),
        Ok(uri("SIPS:+4812@10.0.0.1:5061;transport=tls"))
    );
    for bad in [
        "",
        "+48abc123456",
        "call me",
        "+683400",
        "+1234567890123456",
        "++48123456789",
        "tel:+48123456789",
        "sip:",
        "sip:bob@",
        "sip:bob@example.com\r\nVia: x",
        "sip:bob @example.com",
        "sip:<bob@example.com>",
        "sip:bob@example.com?Route=%3Csip:evil%3E",
        "sip:bob:secret@example.com",
        "sip:bøb@example.com",
    ] {
        assert!(destination(bad).is_err(), "{bad:?}");
    }
    assert!(destination(&format!("sip:{}@h", "a".repeat(300))).is_err());
    let long = destination("+1234567890123456").unwrap_err();
    assert!(long.contains("more than 15 digits"), "{long}");
}

#[test]
fn caller_ids() {
    assert_eq!(caller_id("+48 600 100 200"), Ok("+48600100200".into()));
    assert_eq!(caller_id("anonymous"), Ok("anonymous".into()));
    assert_eq!(caller_id("sales-desk_1"), Ok("sales-desk_1".into()));
    for bad in ["", "a b", "x@y", "x;tag=1", "x\r\n", "<x>", &"a".repeat(65)] {
        assert!(caller_id(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn urls() {
    for good in [
        "https://platform.example/hook?x=1",
        "http://127.0.0.1:8080/cb",
        "http://[::1]:8080/cb",
        "HTTPS://user@host.example",
    ] {
        assert_eq!(http_url(good), Ok(good.to_string()), "{good}");
    }
    for bad in [
        "",
        "ftp://x",
        "https://",
        "https:///path",
        "https://host:99999/",
        "https://host:/",
        "https://ho st/",
        "https://host/\n",
        "//host/x",
        "https://[::1/x",
    ] {
        assert!(http_url(bad).is_err(), "{bad:?}");
    }
    assert!(http_url(&format!("https://h/{}", "a".repeat(MAX_URL))).is_err());
    assert_eq!(
        agent_url("wss://agent.example/ws"),
        Ok("wss://agent.example/ws".into())
    );
    assert_eq!(agent_url("builtin:echo"), Ok("builtin:echo".into()));
    assert!(agent_url("builtin:echo?answer_delay_ms=2000").is_ok());
    for bad in [
        "builtin:parrot",
        "builtin:echo?x=1",
        "https://agent",
        "ws://",
        "echo",
    ] {
        assert!(agent_url(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn idempotency_keys() {
    let with = |values: &[&[u8]]| {
        let mut h = HeaderMap::new();
        for v in values {
            if let Ok(v) = HeaderValue::from_bytes(v) {
                h.append("idempotency-key", v);
            }
        }
        idempotency_key(&h)
    };
    assert_eq!(with(&[]), Ok(None));
    assert_eq!(with(&[b"order-42"]), Ok(Some("order-42".into())));
    assert!(with(&["k".repeat(255).as_bytes()]).is_ok());
    assert!(with(&["k".repeat(256).as_bytes()]).is_err());
    assert!(with(&[b""]).is_err());
    assert!(with(&[b"two words"]).is_err());
    assert!(with(&[b"caf\xc3\xa9"]).is_err());
    assert!(with(&[b"a", b"b"]).is_err(), "twice");
}

#[test]
fn shortening() {
    assert_eq!(shorten("abc"), "abc");
    let long = shorten(&"é".repeat(100));
    assert_eq!(long.chars().count(), 81);
}
