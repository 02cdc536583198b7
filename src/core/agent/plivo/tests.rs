use base64::Engine as _;
use serde_json::json;

use super::super::tests::{close_ulaw, json, meta, tone, T0};
use super::*;
use crate::core::media::g711;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_default()
}

fn le(pcm: &[i16]) -> Vec<u8> {
    pcm.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn codec_at(rate: u32, encoding: AudioEncoding) -> PlivoCodec {
    let mut m = meta(rate);
    m.encoding = encoding;
    PlivoCodec::new(m)
}

fn decode16(text: &str) -> Result<Vec<AgentEvent>, DialectError> {
    codec_at(16_000, AudioEncoding::L16).decode(WsIn::Text(text))
}

/// The whole conversation to the agent, as Plivo's stream event reference has it.
#[test]
fn message_sequence_to_agent() {
    let mut c = codec_at(16_000, AudioEncoding::L16);
    let mut out = c.start(T0);
    out.push(c.audio(&[0; 320], T0 + 20));
    out.push(c.audio(&[0; 320], T0 + 40));
    out.push(c.dtmf('5', 100, T0 + 45));
    out.push(c.mark_played("greeting", T0 + 50));
    out.extend(c.cleared(T0 + 55));
    assert_eq!(c.stop("caller_hangup", T0 + 60), None);
    let silence = b64(&[0; 640]);
    let expected = [
        json!({"event":"start","sequenceNumber":1,"start":{"callId":"CA5f3c","streamId":"MZ18ad",
            "accountId":"AC0001","tracks":["inbound"],
            "mediaFormat":{"encoding":"audio/x-l16","sampleRate":16000}},
            "extra_headers":"lang=hi,flow=a&b,did=+919990152080,X-Workspace-ID=2b37ba17"}),
        json!({"event":"media","sequenceNumber":2,"streamId":"MZ18ad","media":{"track":"inbound",
            "timestamp":(T0 + 20).to_string(),"chunk":1,"payload":silence}}),
        json!({"event":"media","sequenceNumber":3,"streamId":"MZ18ad","media":{"track":"inbound",
            "timestamp":(T0 + 40).to_string(),"chunk":2,"payload":silence}}),
        json!({"event":"dtmf","sequenceNumber":4,"streamId":"MZ18ad",
            "dtmf":{"track":"inbound","digit":"5","timestamp":(T0 + 45).to_string()}}),
        json!({"event":"playedStream","sequenceNumber":5,"streamId":"MZ18ad","name":"greeting"}),
        json!({"event":"clearedAudio","sequenceNumber":6,"streamId":"MZ18ad"}),
    ];
    assert_eq!(out.len(), expected.len());
    for (got, want) in out.iter().zip(&expected) {
        assert_eq!(&json(got), want);
    }
}

#[test]
fn start_carries_extra_headers_and_mulaw_format() {
    let mut m = meta(16_000);
    m.encoding = AudioEncoding::Mulaw;
    m.extra_headers = Some("a=1,b=2".into());
    let mut c = PlivoCodec::new(m);
    let start = json(&c.start(T0)[0]);
    assert_eq!(
        start["extra_headers"],
        "a=1,b=2,did=+919990152080,X-Workspace-ID=2b37ba17"
    );
    assert_eq!(
        start["start"]["mediaFormat"],
        json!({"encoding":"audio/x-mulaw","sampleRate":8000})
    );
    let mut bare = meta(8_000);
    bare.custom_parameters.clear();
    bare.did = None;
    bare.headers.clear();
    assert_eq!(
        json(&PlivoCodec::new(bare).start(T0)[0])["extra_headers"],
        ""
    );
}

/// did, crt and the kept SIP headers are appended to the platform's extraHeaders (static
/// routes: to nothing); a name the platform set is not repeated; a repeated header keeps its
/// last value; a value the `k=v,k=v` form cannot carry is left out.
#[test]
fn call_facts_appended_to_extra_headers() {
    let extra = |m: StreamMeta| json(&PlivoCodec::new(m).start(T0)[0])["extra_headers"].clone();
    let mut m = meta(8_000);
    m.crt = Some("c1".into());
    m.custom_parameters.clear();
    m.headers = vec![
        ("X-Workspace-ID".into(), "old".into()),
        ("X-List".into(), "a,b".into()),
        ("X-Eq".into(), "k=v".into()),
        ("X-Workspace-ID".into(), "2b37ba17".into()),
    ];
    assert_eq!(
        extra(m.clone()),
        "did=+919990152080,crt=c1,X-Eq=k=v,X-Workspace-ID=2b37ba17"
    );
    m.extra_headers = Some("a=1, did=mine,X-Eq".into());
    assert_eq!(
        extra(m),
        "a=1, did=mine,X-Eq,crt=c1,X-Workspace-ID=2b37ba17"
    );
}

#[test]
fn caller_audio_round_trips_in_both_encodings() {
    let pcm = tone(320, 16_000);
    let mut c = codec_at(16_000, AudioEncoding::L16);
    let msg = json(&c.audio(&pcm, T0));
    let bytes = unb64(msg["media"]["payload"].as_str().unwrap_or_default());
    assert_eq!(bytes, le(&pcm), "L16 is little-endian");
    let echo = json!({"event":"playAudio","media":{"contentType":"audio/x-l16","sampleRate":16000,
        "payload":b64(&bytes)}});
    assert_eq!(
        c.decode(WsIn::Text(&echo.to_string())),
        Ok(vec![AgentEvent::Audio(pcm)])
    );

    let pcm = tone(160, 8_000);
    let mut c = codec_at(8_000, AudioEncoding::Mulaw);
    let msg = json(&c.audio(&pcm, T0));
    let bytes = unb64(msg["media"]["payload"].as_str().unwrap_or_default());
    assert_eq!(bytes.len(), 160);
    let echo = json!({"event":"playAudio","media":{"contentType":"audio/x-mulaw","sampleRate":8000,
        "payload":b64(&bytes)}});
    match c.decode(WsIn::Text(&echo.to_string())).as_deref() {
        Ok([AgentEvent::Audio(back)]) => assert!(close_ulaw(&pcm, back)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn decodes_every_agent_message_kind() {
    let play = json!({"event":"playAudio","media":{"contentType":"audio/x-l16","sampleRate":16000,
        "payload":b64(&le(&[1, -2, 300]))}});
    assert_eq!(
        decode16(&play.to_string()),
        Ok(vec![AgentEvent::Audio(vec![1, -2, 300])])
    );
    // Plivo's checkpoint example, verbatim.
    let checkpoint = r#"{"event":"checkpoint","streamId":"20170ada-f610-433b-8758-c02a2aab3662",
        "name":"customer greeting audio"}"#;
    assert_eq!(
        decode16(checkpoint),
        Ok(vec![AgentEvent::Mark("customer greeting audio".into())])
    );
    let clear = r#"{"event":"clearAudio","streamId":"20170ada-f610-433b-8758-c02a2aab3662"}"#;
    assert_eq!(decode16(clear), Ok(vec![AgentEvent::Clear]));
    assert_eq!(
        decode16(r#"{"event":"sendDTMF","dtmf":"123#"}"#),
        Ok(vec![AgentEvent::Dtmf {
            digits: "123#".into()
        }])
    );
    assert_eq!(
        decode16(r#"{"event":"hangup"}"#),
        Ok(vec![AgentEvent::Hangup])
    );
    assert_eq!(
        decode16(r#"{"event":"transfer","transfer":{"to":"+15550100"}}"#),
        Ok(vec![AgentEvent::Transfer {
            to: "+15550100".into()
        }])
    );
    assert_eq!(
        decode16(r#"{"event":"media"}"#),
        Ok(vec![AgentEvent::Ignored("media".into())])
    );
}

#[test]
fn play_audio_formats_and_rates() {
    let payload = b64(&le(&[7, 8]));
    let play = |ct: &str, rate: serde_json::Value| {
        json!({"event":"playAudio","media":{"contentType":ct,"sampleRate":rate,"payload":payload}})
            .to_string()
    };
    // Another rate than the stream's is tagged for the caller to resample.
    assert_eq!(
        decode16(&play("audio/x-l16", json!(8000))),
        Ok(vec![AgentEvent::AudioAt {
            pcm: vec![7, 8],
            rate: 8000
        }])
    );
    // Rate as a string, as a content-type parameter, or absent (the stream's).
    assert_eq!(
        decode16(&play("audio/x-l16", json!("16000"))),
        Ok(vec![AgentEvent::Audio(vec![7, 8])])
    );
    assert_eq!(
        decode16(&play("Audio/X-L16; rate=8000", json!(null))),
        Ok(vec![AgentEvent::AudioAt {
            pcm: vec![7, 8],
            rate: 8000
        }])
    );
    assert_eq!(
        decode16(&play("audio/x-l16", json!(null))),
        Ok(vec![AgentEvent::Audio(vec![7, 8])])
    );
    // μ-law on a 16 kHz stream is 8 kHz audio to resample.
    assert_eq!(
        decode16(&play("audio/x-mulaw", json!(null))),
        Ok(vec![AgentEvent::AudioAt {
            pcm: [7u8, 0, 8, 0].map(g711::ulaw_to_linear).to_vec(),
            rate: 8000
        }])
    );
    let unsupported = |ct: &str, rate| {
        matches!(
            decode16(&play(ct, rate)),
            Err(DialectError::UnsupportedFormat { .. })
        )
    };
    assert!(unsupported("audio/x-l16", json!(44100)));
    assert!(unsupported("audio/x-mulaw", json!(16000)));
    assert!(unsupported("audio/x-alaw", json!(8000)));
    for rate in [
        json!(-1),
        json!(8000.5),
        json!("fast"),
        json!([8000]),
        json!(5_000_000_000u64),
    ] {
        assert!(
            matches!(
                decode16(&play("audio/x-l16", rate.clone())),
                Err(DialectError::BadField {
                    field: "media.sampleRate",
                    ..
                })
            ),
            "{rate}"
        );
    }
}

#[test]
fn malformed_messages_are_errors() {
    use DialectError as E;
    let bad = |t: &str| decode16(t).err();
    assert!(matches!(bad("not json"), Some(E::BadJson(_))));
    assert!(matches!(bad("null"), Some(E::NotAnObject)));
    assert_eq!(bad(r#"{"media":{}}"#), Some(E::MissingField("event")));
    assert_eq!(
        bad(r#"{"event":"playAudio"}"#),
        Some(E::MissingField("media"))
    );
    assert_eq!(
        bad(r#"{"event":"playAudio","media":{"payload":"AAA="}}"#),
        Some(E::MissingField("media.contentType"))
    );
    assert_eq!(
        bad(r#"{"event":"playAudio","media":{"contentType":"audio/x-l16"}}"#),
        Some(E::MissingField("media.payload"))
    );
    let odd = json!({"event":"playAudio","media":{"contentType":"audio/x-l16","payload":b64(&[1, 2, 3])}});
    assert_eq!(bad(&odd.to_string()), Some(E::OddPcmLength(3)));
    let empty = r#"{"event":"playAudio","media":{"contentType":"audio/x-mulaw","payload":""}}"#;
    assert_eq!(bad(empty), Some(E::EmptyAudio));
    let junk = r#"{"event":"playAudio","media":{"contentType":"audio/x-l16","payload":"AA*A"}}"#;
    assert!(matches!(bad(junk), Some(E::BadBase64 { .. })));
    let huge = format!(
        r#"{{"event":"playAudio","media":{{"contentType":"audio/x-l16","payload":"{}"}}}}"#,
        "A".repeat(3_000_000)
    );
    assert!(matches!(
        bad(&huge),
        Some(E::PayloadTooLarge { max: 1_920_000, .. })
    ));
    assert_eq!(
        bad(r#"{"event":"checkpoint","streamId":"s"}"#),
        Some(E::MissingField("name"))
    );
    assert_eq!(
        bad(r#"{"event":"sendDTMF","dtmf":"12-3"}"#),
        Some(E::BadDigits("12-3".into()))
    );
    assert!(matches!(
        bad(r#"{"event":"sendDTMF","dtmf":123}"#),
        Some(E::BadField { field: "dtmf", .. })
    ));
    assert_eq!(
        codec_at(8_000, AudioEncoding::L16).decode(WsIn::Binary(&[0; 320])),
        Err(E::UnexpectedBinary(320))
    );
}
