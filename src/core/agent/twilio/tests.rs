use base64::Engine as _;
use serde_json::json;

use super::super::tests::{close_ulaw, json, meta, tone, T0};
use super::*;
use crate::core::agent::common::{b64_encode, pcm_to_ulaw};
use crate::core::media::g711;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_default()
}

fn decode(text: &str) -> Result<Vec<AgentEvent>, DialectError> {
    TwilioCodec::new(meta(8_000)).decode(WsIn::Text(text))
}

/// The whole conversation to the agent, field for field as Twilio's own examples have them.
#[test]
fn message_sequence_to_agent() {
    let mut c = TwilioCodec::new(meta(16_000));
    let mut out = c.start(T0);
    out.push(c.audio(&[0; 160], T0 + 20));
    out.push(c.audio(&[0; 160], T0 + 40));
    out.push(c.dtmf('1', 100, T0 + 50));
    out.push(c.audio(&[0; 160], T0 + 60));
    out.push(c.mark_played("greeting", T0 + 70));
    assert_eq!(c.cleared(T0 + 75), None);
    out.extend(c.stop("caller_hangup", T0 + 80));
    let silence = b64(&[0xFF; 160]);
    let expected = [
        json!({"event":"connected","protocol":"Call","version":"1.0.0"}),
        json!({"event":"start","sequenceNumber":"1","streamSid":"MZ18ad","start":{
            "accountSid":"AC0001","streamSid":"MZ18ad","callSid":"CA5f3c","tracks":["inbound"],
            "customParameters":{"did":"+919990152080","X-Workspace-ID":"2b37ba17",
                "lang":"hi","flow":"a&b"},
            "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}),
        json!({"event":"media","sequenceNumber":"2","streamSid":"MZ18ad","media":{
            "track":"inbound","chunk":"1","timestamp":"20","payload":silence}}),
        json!({"event":"media","sequenceNumber":"3","streamSid":"MZ18ad","media":{
            "track":"inbound","chunk":"2","timestamp":"40","payload":silence}}),
        json!({"event":"dtmf","streamSid":"MZ18ad","sequenceNumber":"4",
            "dtmf":{"track":"inbound_track","digit":"1"}}),
        json!({"event":"media","sequenceNumber":"5","streamSid":"MZ18ad","media":{
            "track":"inbound","chunk":"3","timestamp":"60","payload":silence}}),
        json!({"event":"mark","sequenceNumber":"6","streamSid":"MZ18ad","mark":{"name":"greeting"}}),
        json!({"event":"stop","sequenceNumber":"7","streamSid":"MZ18ad",
            "stop":{"accountSid":"AC0001","callSid":"CA5f3c"}}),
    ];
    assert_eq!(out.len(), expected.len());
    for (got, want) in out.iter().zip(&expected) {
        assert_eq!(&json(got), want);
    }
    // Field order follows Twilio's examples, for people reading captures.
    match &out[0] {
        WsOut::Text(t) => assert_eq!(
            t,
            r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#
        ),
        WsOut::Binary(_) => panic!("twilio sends text only"),
    }
}

/// did, crt and the kept SIP headers reach the agent on static routes too (no platform
/// parameters); the platform's parameters win a name clash; a repeated name keeps its last
/// value; nothing to say is an empty object.
#[test]
fn call_facts_in_custom_parameters() {
    let params = |m: StreamMeta| {
        json(&TwilioCodec::new(m).start(T0)[1])["start"]["customParameters"].clone()
    };
    let mut m = meta(8_000);
    m.crt = Some("d444-69139d35".into());
    m.headers = vec![
        ("X-Workspace-ID".into(), "old".into()),
        ("X-Tag".into(), "a b".into()),
        ("X-Workspace-ID".into(), "2b37ba17".into()),
    ];
    m.custom_parameters.clear();
    assert_eq!(
        params(m.clone()),
        json!({"did":"+919990152080","crt":"d444-69139d35","X-Workspace-ID":"2b37ba17",
            "X-Tag":"a b"})
    );
    m.custom_parameters = vec![
        ("crt".into(), "from-platform".into()),
        ("X-Tag".into(), "p".into()),
    ];
    assert_eq!(
        params(m),
        json!({"did":"+919990152080","crt":"from-platform","X-Workspace-ID":"2b37ba17",
            "X-Tag":"p"})
    );
    let bare = StreamMeta {
        call_id: "CA1".into(),
        ..StreamMeta::default()
    };
    assert_eq!(params(bare), json!({}));
}

#[test]
fn duplicate_custom_parameters_keep_the_last_value() {
    let mut m = meta(8_000);
    m.did = None;
    m.headers.clear();
    m.custom_parameters = vec![
        ("k".into(), "1".into()),
        ("j".into(), "2".into()),
        ("k".into(), "3".into()),
    ];
    let start = json(&TwilioCodec::new(m).start(T0)[1]);
    assert_eq!(start["start"]["customParameters"], json!({"j":"2","k":"3"}));
}

#[test]
fn audio_before_start_and_clock_going_back_do_not_panic() {
    let mut c = TwilioCodec::new(meta(8_000));
    assert_eq!(json(&c.audio(&[], T0))["media"]["timestamp"], "0");
    assert_eq!(json(&c.audio(&[1], T0 - 5))["media"]["timestamp"], "0");
    assert_eq!(json(&c.audio(&[1], T0 + 20))["media"]["timestamp"], "20");
}

#[test]
fn caller_audio_round_trips_through_mulaw() {
    let pcm = tone(160, 8_000);
    let mut c = TwilioCodec::new(meta(8_000));
    c.start(T0);
    let msg = json(&c.audio(&pcm, T0 + 20));
    let bytes = unb64(msg["media"]["payload"].as_str().unwrap_or_default());
    assert_eq!(bytes.len(), 160);
    let back: Vec<i16> = bytes.iter().map(|&b| g711::ulaw_to_linear(b)).collect();
    assert!(close_ulaw(&pcm, &back));

    // The agent echoes that payload back: we get the same samples.
    let echo = json!({"event":"media","streamSid":"MZ18ad","media":{"payload":b64(&bytes)}});
    assert_eq!(
        c.decode(WsIn::Text(&echo.to_string())),
        Ok(vec![AgentEvent::Audio(back)])
    );
}

#[test]
fn decodes_every_agent_message_kind() {
    // Twilio's documented messages to it, verbatim shapes.
    let media = r#"{"event":"media","streamSid":"MZ18ad","media":{"payload":"/38="}}"#;
    assert_eq!(decode(media), Ok(vec![AgentEvent::Audio(vec![0, 0])]));
    let mark = r#"{"event":"mark","streamSid":"MZ18ad","mark":{"name":"my label"}}"#;
    assert_eq!(decode(mark), Ok(vec![AgentEvent::Mark("my label".into())]));
    assert_eq!(
        decode(r#"{"event":"clear","streamSid":"MZ18ad"}"#),
        Ok(vec![AgentEvent::Clear])
    );
    // trunkgate extensions.
    assert_eq!(
        decode(r#"{"event":"hangup"}"#),
        Ok(vec![AgentEvent::Hangup])
    );
    assert_eq!(
        decode(r#"{"event":"transfer","transfer":{"to":" +918035735900 "}}"#),
        Ok(vec![AgentEvent::Transfer {
            to: "+918035735900".into()
        }])
    );
    assert_eq!(
        decode(r#"{"event":"dtmf","dtmf":{"digits":"12#*ad"}}"#),
        Ok(vec![AgentEvent::Dtmf {
            digits: "12#*AD".into()
        }])
    );
    // Unpadded base64 is accepted too.
    let unpadded = r#"{"event":"media","media":{"payload":"/38"}}"#;
    assert_eq!(decode(unpadded), Ok(vec![AgentEvent::Audio(vec![0, 0])]));
}

#[test]
fn unknown_events_are_ignored_not_errors() {
    assert_eq!(
        decode(r#"{"event":"start"}"#),
        Ok(vec![AgentEvent::Ignored("start".into())])
    );
    assert_eq!(
        decode(r#"{"event":"playAudio"}"#),
        Ok(vec![AgentEvent::Ignored("playAudio".into())])
    );
    let long = format!(r#"{{"event":"{}"}}"#, "é".repeat(100));
    match decode(&long) {
        Ok(v) => assert_eq!(v, vec![AgentEvent::Ignored("é".repeat(32))]),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn malformed_messages_are_errors() {
    use DialectError as E;
    let bad = |t: &str| decode(t).err();
    assert!(matches!(bad("{"), Some(E::BadJson(_))));
    assert!(matches!(bad(""), Some(E::BadJson(_))));
    assert!(matches!(bad("[1,2]"), Some(E::NotAnObject)));
    assert!(matches!(bad("\"media\""), Some(E::NotAnObject)));
    assert_eq!(bad(r#"{"streamSid":"MZ"}"#), Some(E::MissingField("event")));
    assert!(matches!(
        bad(r#"{"event":7}"#),
        Some(E::BadField { field: "event", .. })
    ));
    assert_eq!(bad(r#"{"event":"media"}"#), Some(E::MissingField("media")));
    assert!(matches!(
        bad(r#"{"event":"media","media":"x"}"#),
        Some(E::BadField { field: "media", .. })
    ));
    assert_eq!(
        bad(r#"{"event":"media","media":{}}"#),
        Some(E::MissingField("media.payload"))
    );
    assert!(matches!(
        bad(r#"{"event":"media","media":{"payload":12}}"#),
        Some(E::BadField {
            field: "media.payload",
            ..
        })
    ));
    assert!(matches!(
        bad(r#"{"event":"media","media":{"payload":"!!!!"}}"#),
        Some(E::BadBase64 {
            field: "media.payload",
            ..
        })
    ));
    assert_eq!(
        bad(r#"{"event":"media","media":{"payload":""}}"#),
        Some(E::EmptyAudio)
    );
    let huge = format!(
        r#"{{"event":"media","media":{{"payload":"{}"}}}}"#,
        "A".repeat(700_000)
    );
    assert!(matches!(
        bad(&huge),
        Some(E::PayloadTooLarge { max: 480_000, .. })
    ));
    assert_eq!(
        bad(r#"{"event":"mark","mark":{}}"#),
        Some(E::MissingField("mark.name"))
    );
    assert_eq!(bad(r#"{"event":"mark"}"#), Some(E::MissingField("mark")));
    assert!(matches!(
        bad(r#"{"event":"transfer","transfer":{"to":"  "}}"#),
        Some(E::BadField { .. })
    ));
    assert_eq!(
        bad(r#"{"event":"transfer"}"#),
        Some(E::MissingField("transfer"))
    );
    assert_eq!(
        bad(r#"{"event":"dtmf","dtmf":{"digits":"12x"}}"#),
        Some(E::BadDigits("12x".into()))
    );
    assert_eq!(
        bad(r#"{"event":"dtmf","dtmf":{"digits":""}}"#),
        Some(E::BadDigits(String::new()))
    );
    let many = format!(
        r#"{{"event":"dtmf","dtmf":{{"digits":"{}"}}}}"#,
        "1".repeat(65)
    );
    assert!(matches!(bad(&many), Some(E::BadDigits(_))));
    let mut c = TwilioCodec::new(meta(8_000));
    assert_eq!(
        c.decode(WsIn::Binary(&[1, 2, 3])),
        Err(E::UnexpectedBinary(3))
    );
}

/// The hand-written media message is byte for byte what serde makes of `Media`, including a
/// streamSid that needs escaping.
#[test]
fn hand_written_media_equals_serde() {
    let mut m = meta(8_000);
    m.stream_id = "MZ\"odd\\sid\u{1}".into();
    let mut c = TwilioCodec::new(m.clone());
    let _ = c.start(T0);
    let pcm = tone(160, 8_000);
    for k in 1..=3u64 {
        let WsOut::Text(got) = c.audio(&pcm, T0 + 20 * k) else {
            panic!("media is text");
        };
        let want = to_json(&Media {
            event: "media",
            sequence_number: c.seq.to_string(),
            stream_sid: &m.stream_id,
            media: MediaBody {
                track: "inbound",
                chunk: k.to_string(),
                timestamp: (20 * k).to_string(),
                payload: b64_encode(&pcm_to_ulaw(&pcm)),
            },
        });
        assert_eq!(got, want);
    }
}

/// The media fast path and the general path agree: same audio for the same payload (escaped
/// or not, extra fields or not), and what the fast path cannot read gets the general path's
/// precise error.
#[test]
fn media_fast_path_matches_the_general_path() {
    let pcm = tone(160, 8_000);
    let b64 = b64_encode(&pcm_to_ulaw(&pcm));
    let escaped = b64.replace('/', "\\/");
    let want = ulaw_to_pcm(&pcm_to_ulaw(&pcm));
    for text in [
        format!(r#"{{"event":"media","streamSid":"MZ1","media":{{"payload":"{b64}"}}}}"#),
        format!(r#"{{"media":{{"track":"outbound","payload":"{escaped}"}},"event":"media"}}"#),
    ] {
        match decode(&text).as_deref() {
            Ok([AgentEvent::Audio(got)]) => assert_eq!(got, &want, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    assert!(matches!(
        decode(r#"{"event":"media","media":{"payload":7}}"#),
        Err(DialectError::BadField {
            field: "media.payload",
            ..
        })
    ));
    assert!(matches!(
        decode(r#"{"event":"media","media":{"payload":"***"}}"#),
        Err(DialectError::BadBase64 { .. })
    ));
    assert!(matches!(
        decode(r#"{"event":"media"}"#),
        Err(DialectError::MissingField("media"))
    ));
    // A media object on another event is not audio.
    assert!(!matches!(
        decode(&format!(
            r#"{{"event":"mark","mark":{{"name":"m"}},"media":{{"payload":"{b64}"}}}}"#
        ))
        .as_deref(),
        Ok([AgentEvent::Audio(_)])
    ));
}
