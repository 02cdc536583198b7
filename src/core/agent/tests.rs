//! Shared fixtures for the dialect tests, and the properties every dialect must have: the
//! factory picks the right codec, and no input whatsoever makes `decode` panic.

use serde_json::Value;

use super::*;

pub(super) const T0: u64 = 1_700_000_000_000;

pub(super) fn meta(rate: u32) -> StreamMeta {
    StreamMeta {
        call_id: "CA5f3c".into(),
        stream_id: "MZ18ad".into(),
        account_id: "AC0001".into(),
        from: Some("+919990152080".into()),
        to: Some("+918035735900".into()),
        did: Some("+919990152080".into()),
        crt: None,
        direction: "inbound".into(),
        custom_parameters: vec![("lang".into(), "hi".into()), ("flow".into(), "a&b".into())],
        extra_headers: None,
        headers: vec![("X-Workspace-ID".into(), "2b37ba17".into())],
        sample_rate: rate,
        encoding: AudioEncoding::L16,
    }
}

pub(super) fn json(out: &WsOut) -> Value {
    match out {
        WsOut::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        WsOut::Binary(_) => Value::Null,
    }
}

/// A 440 Hz tone with a loud and a quiet half, so both ends of the μ-law range are exercised.
pub(super) fn tone(n: usize, rate: u32) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let amp = if i < n / 2 { 30_000.0 } else { 300.0 };
            let x = (i as f64 * 2.0 * std::f64::consts::PI * 440.0 / f64::from(rate)).sin();
            (amp * x) as i16
        })
        .collect()
}

/// μ-law keeps about 4 bits of mantissa: the error is at most half a step, which is 1/32 of the
/// magnitude plus the small bias of the lowest segment.
pub(super) fn close_ulaw(a: &[i16], b: &[i16]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(&x, &y)| {
            let err = (i32::from(x) - i32::from(y)).abs();
            err <= i32::from(x).abs() / 16 + 8
        })
}

#[test]
fn dialect_tokens_round_trip() {
    for d in [Dialect::Twilio, Dialect::Plivo, Dialect::Raw] {
        assert_eq!(Dialect::parse(d.as_str()), Some(d));
        assert_eq!(Dialect::parse(&d.as_str().to_uppercase()), Some(d));
    }
    assert_eq!(Dialect::parse("exotel"), None);
    assert_eq!(Dialect::parse(""), None);
}

#[test]
fn factory_builds_each_dialect_with_its_rate() {
    assert_eq!(codec(Dialect::Twilio, meta(16_000)).sample_rate(), 8_000);
    assert_eq!(
        codec(Dialect::Twilio, meta(16_000)).dialect(),
        Dialect::Twilio
    );
    assert_eq!(codec(Dialect::Plivo, meta(16_000)).sample_rate(), 16_000);
    assert_eq!(
        codec(Dialect::Plivo, meta(16_000)).dialect(),
        Dialect::Plivo
    );
    let mut mulaw = meta(16_000);
    mulaw.encoding = AudioEncoding::Mulaw;
    assert_eq!(codec(Dialect::Plivo, mulaw).sample_rate(), 8_000);
    assert_eq!(codec(Dialect::Raw, meta(16_000)).sample_rate(), 16_000);
    assert_eq!(codec(Dialect::Raw, meta(44_100)).sample_rate(), 8_000);
    assert_eq!(codec(Dialect::Raw, meta(8_000)).dialect(), Dialect::Raw);
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SEEDS: &[&str] = &[
    r#"{"event":"media","streamSid":"MZ1","media":{"payload":"f39/fw=="}}"#,
    r#"{"event":"mark","streamSid":"MZ1","mark":{"name":"x"}}"#,
    r#"{"event":"clear","streamSid":"MZ1"}"#,
    r#"{"event":"transfer","transfer":{"to":"+15550100"}}"#,
    r#"{"event":"dtmf","dtmf":{"digits":"12#"}}"#,
    r#"{"event":"playAudio","media":{"contentType":"audio/x-l16","sampleRate":16000,"payload":"AAABAA=="}}"#,
    r#"{"event":"checkpoint","streamId":"s","name":"x"}"#,
    r#"{"event":"sendDTMF","dtmf":"123#"}"#,
    r#"{"type":"transfer","to":"+1"}"#,
    r#"{"type":"dtmf","digits":"9"}"#,
];

const JSONISH: &[u8] = b"{}[]\":,\\ 0aZ";

/// Bounded random garbage and mutated valid messages through every dialect's decoder: never a
/// panic, and whatever is accepted satisfies the event invariants.
#[test]
fn decode_survives_garbage() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut codecs: Vec<Box<dyn DialectCodec>> = vec![
        codec(Dialect::Twilio, meta(8_000)),
        codec(Dialect::Plivo, meta(16_000)),
        codec(Dialect::Raw, meta(16_000)),
    ];
    let mut accepted = 0;
    for i in 0..30_000 {
        let mut bytes: Vec<u8> = if i % 3 == 0 {
            (0..rng.below(200)).map(|_| rng.next() as u8).collect()
        } else {
            SEEDS[rng.below(SEEDS.len())].as_bytes().to_vec()
        };
        for _ in 0..rng.below(4) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(3) {
                0 if at < bytes.len() => bytes[at] = rng.next() as u8,
                1 => bytes.insert(at, JSONISH[rng.below(JSONISH.len())]),
                _ if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => {}
            }
        }
        for c in codecs.iter_mut() {
            let results = [
                c.decode(WsIn::Binary(&bytes)),
                std::str::from_utf8(&bytes).map_or(Ok(vec![]), |t| c.decode(WsIn::Text(t))),
            ];
            for events in results.into_iter().flatten() {
                accepted += usize::from(!events.is_empty());
                for ev in events {
                    match ev {
                        AgentEvent::Audio(pcm) | AgentEvent::AudioAt { pcm, .. } => {
                            assert!(!pcm.is_empty())
                        }
                        AgentEvent::Dtmf { digits } => assert!(!digits.is_empty()),
                        AgentEvent::Transfer { to } => assert!(!to.is_empty()),
                        AgentEvent::Ignored(name) => assert!(name.len() <= 64),
                        _ => {}
                    }
                }
            }
        }
    }
    // The mutations must leave enough valid messages for the invariants to be exercised.
    assert!(accepted > 1_000, "only {accepted} accepted");
}
