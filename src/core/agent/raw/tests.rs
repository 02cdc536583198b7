use serde_json::json;

use super::super::tests::{json, meta, tone, T0};
use super::*;

fn decode(msg: WsIn<'_>) -> Result<Vec<AgentEvent>, DialectError> {
    RawCodec::new(meta(16_000)).decode(msg)
}

fn text(t: &str) -> Result<Vec<AgentEvent>, DialectError> {
    decode(WsIn::Text(t))
}

#[test]
fn message_sequence_to_agent() {
    let mut m = meta(16_000);
    m.extra_headers = Some("a=1".into());
    let mut c = RawCodec::new(m);
    let start = c.start(T0);
    assert_eq!(start.len(), 1);
    assert_eq!(
        json(&start[0]),
        json!({"type":"start","call_id":"CA5f3c","stream_id":"MZ18ad","account_id":"AC0001",
            "direction":"inbound","from":"+919990152080","to":"+918035735900","did":"+919990152080",
            "custom_parameters":{"lang":"hi","flow":"a&b"},"extra_headers":"a=1",
            "headers":{"X-Workspace-ID":"2b37ba17"},
            "audio":{"encoding":"pcm16","sample_rate":16000,"frame_ms":20}}),
        "absent parts (crt) are absent keys"
    );
    assert_eq!(
        c.audio(&[1, -2, 0x1234], T0 + 20),
        WsOut::Binary(vec![1, 0, 0xFE, 0xFF, 0x34, 0x12])
    );
    assert_eq!(
        json(&c.dtmf('#', 120, T0 + 30)),
        json!({"type":"dtmf","digit":"#","duration_ms":120})
    );
    assert_eq!(
        json(&c.mark_played("m1", T0 + 40)),
        json!({"type":"mark","name":"m1"})
    );
    assert_eq!(
        c.cleared(T0 + 50).map(|o| json(&o)),
        Some(json!({"type":"cleared"}))
    );
    assert_eq!(
        c.stop("agent_hangup", T0 + 60).map(|o| json(&o)),
        Some(json!({"type":"stop","reason":"agent_hangup"}))
    );
}

/// crt and the kept SIP headers (a repeated name keeps its last value); no headers is `{}`.
#[test]
fn start_carries_crt_and_headers() {
    let start = |m: StreamMeta| json(&RawCodec::new(m).start(T0)[0]);
    let mut m = meta(8_000);
    m.crt = Some("d444-69139d35".into());
    m.headers = vec![
        ("X-Workspace-ID".into(), "old".into()),
        ("X-Tag".into(), "t".into()),
        ("X-Workspace-ID".into(), "2b37ba17".into()),
    ];
    let v = start(m.clone());
    assert_eq!(v["did"], "+919990152080");
    assert_eq!(v["crt"], "d444-69139d35");
    assert_eq!(
        v["headers"],
        json!({"X-Tag":"t","X-Workspace-ID":"2b37ba17"})
    );
    m.headers.clear();
    assert_eq!(start(m)["headers"], json!({}));
}

#[test]
fn caller_audio_round_trips_exactly() {
    let pcm = tone(320, 16_000);
    let mut c = RawCodec::new(meta(16_000));
    let WsOut::Binary(bytes) = c.audio(&pcm, T0) else {
        panic!("raw audio is binary");
    };
    assert_eq!(bytes.len(), 640);
    assert_eq!(
        c.decode(WsIn::Binary(&bytes)),
        Ok(vec![AgentEvent::Audio(pcm)])
    );
}

#[test]
fn decodes_every_agent_message_kind() {
    assert_eq!(
        decode(WsIn::Binary(&[0xFF, 0x7F, 0, 0x80])),
        Ok(vec![AgentEvent::Audio(vec![i16::MAX, i16::MIN])])
    );
    assert_eq!(
        text(r#"{"type":"mark","name":"n"}"#),
        Ok(vec![AgentEvent::Mark("n".into())])
    );
    assert_eq!(text(r#"{"type":"clear"}"#), Ok(vec![AgentEvent::Clear]));
    assert_eq!(
        text(r#"{"type":"hangup","reason":"done"}"#),
        Ok(vec![AgentEvent::Hangup])
    );
    assert_eq!(
        text(r#"{"type":"transfer","to":"sip:desk@pbx"}"#),
        Ok(vec![AgentEvent::Transfer {
            to: "sip:desk@pbx".into()
        }])
    );
    assert_eq!(
        text(r#"{"type":"dtmf","digits":"0*9"}"#),
        Ok(vec![AgentEvent::Dtmf {
            digits: "0*9".into()
        }])
    );
    assert_eq!(
        text(r#"{"type":"ping"}"#),
        Ok(vec![AgentEvent::Ignored("ping".into())])
    );
}

#[test]
fn malformed_messages_are_errors() {
    use DialectError as E;
    assert_eq!(decode(WsIn::Binary(&[1, 2, 3])), Err(E::OddPcmLength(3)));
    assert_eq!(decode(WsIn::Binary(&[])), Err(E::EmptyAudio));
    assert!(matches!(
        decode(WsIn::Binary(&vec![0; 1_920_002])),
        Err(E::PayloadTooLarge { .. })
    ));
    assert!(matches!(text("{\"type\":"), Err(E::BadJson(_))));
    assert!(matches!(text("42"), Err(E::NotAnObject)));
    assert_eq!(text(r#"{"event":"mark"}"#), Err(E::MissingField("type")));
    assert_eq!(text(r#"{"type":"mark"}"#), Err(E::MissingField("name")));
    assert_eq!(text(r#"{"type":"transfer"}"#), Err(E::MissingField("to")));
    assert!(matches!(
        text(r#"{"type":"transfer","to":""}"#),
        Err(E::BadField { field: "to", .. })
    ));
    assert_eq!(
        text(r#"{"type":"dtmf","digits":"1 2"}"#),
        Err(E::BadDigits("1 2".into()))
    );
    assert!(matches!(
        text(r#"{"type":"dtmf","digits":null}"#),
        Err(E::MissingField("digits"))
    ));
}
