//! What the three dialects share: the error type, JSON field access that reports which field
//! was wrong, base64 and sample-format conversions with size limits, DTMF digit validation.
//!
//! Must not: know any one dialect's message names.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use super::{AgentEvent, StreamMeta};
use crate::core::media::{dtmf, g711};

/// The longest stretch of audio one agent message may carry. Agents may send whole utterances
/// at once; anything longer than this is a broken or hostile agent.
pub const MAX_AGENT_AUDIO_MS: u32 = 60_000;
/// Longest digit string one agent DTMF command may carry.
const MAX_DIGITS: usize = 64;
/// Untrusted strings quoted in errors and [`AgentEvent::Ignored`] are cut to this many bytes.
const MAX_QUOTED: usize = 64;

/// A malformed agent message. The call goes on; the caller logs and counts it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialectError {
    #[error("malformed JSON: {0}")]
    BadJson(String),
    #[error("JSON message is not an object")]
    NotAnObject,
    #[error("missing field {0}")]
    MissingField(&'static str),
    #[error("field {field}: {detail}")]
    BadField { field: &'static str, detail: String },
    #[error("bad base64 in {field}: {detail}")]
    BadBase64 { field: &'static str, detail: String },
    #[error("empty audio payload")]
    EmptyAudio,
    #[error("PCM16 payload of odd length {0}")]
    OddPcmLength(usize),
    #[error("audio payload of about {bytes} bytes, at most {max} allowed")]
    PayloadTooLarge { bytes: usize, max: usize },
    #[error("binary frame of {0} bytes; this dialect only uses text frames")]
    UnexpectedBinary(usize),
    #[error("unsupported audio format {content_type:?} at {sample_rate} Hz")]
    UnsupportedFormat {
        content_type: String,
        sample_rate: u32,
    },
    #[error("invalid DTMF digits {0:?}")]
    BadDigits(String),
}

pub(crate) type Obj = Map<String, Value>;

/// `s` cut to at most [`MAX_QUOTED`] bytes on a char boundary.
pub(crate) fn clip(s: &str) -> String {
    let mut end = s.len().min(MAX_QUOTED);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default().to_owned()
}

/// The rates a codec can run at: 16 kHz when asked for, 8 kHz otherwise (config validation
/// rejects anything else before it gets here).
pub(crate) fn normalise_rate(requested: u32) -> u32 {
    if requested == 16_000 {
        16_000
    } else {
        8_000
    }
}

pub(crate) fn ignored(event: &str) -> Vec<AgentEvent> {
    vec![AgentEvent::Ignored(clip(event))]
}

pub(crate) fn parse_object(text: &str) -> Result<Obj, DialectError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(DialectError::NotAnObject),
        Err(e) => Err(DialectError::BadJson(e.to_string())),
    }
}

/// The nested object `obj[key]`; `path` names it in errors.
pub(crate) fn req_obj<'a>(
    obj: &'a Obj,
    key: &str,
    path: &'static str,
) -> Result<&'a Obj, DialectError> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(DialectError::MissingField(path)),
        Some(Value::Object(o)) => Ok(o),
        Some(_) => Err(bad(path, "not an object")),
    }
}

/// The string `obj[key]`; `path` names it in errors.
pub(crate) fn req_str<'a>(
    obj: &'a Obj,
    key: &str,
    path: &'static str,
) -> Result<&'a str, DialectError> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(DialectError::MissingField(path)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(bad(path, "not a string")),
    }
}

pub(crate) fn bad(field: &'static str, detail: &str) -> DialectError {
    DialectError::BadField {
        field,
        detail: detail.to_owned(),
    }
}

/// A non-empty transfer target.
pub(crate) fn transfer_target(to: &str, path: &'static str) -> Result<AgentEvent, DialectError> {
    let to = to.trim();
    if to.is_empty() {
        return Err(bad(path, "empty transfer target"));
    }
    Ok(AgentEvent::Transfer { to: to.to_owned() })
}

/// Validated digits (`0-9 * # A-D`, lower case accepted) as an event, upper-cased.
pub(crate) fn dtmf_digits(s: &str) -> Result<AgentEvent, DialectError> {
    let ok = !s.is_empty()
        && s.len() <= MAX_DIGITS
        && s.chars()
            .all(|c| dtmf::digit_to_event(c.to_ascii_uppercase()).is_some());
    if !ok {
        return Err(DialectError::BadDigits(clip(s)));
    }
    Ok(AgentEvent::Dtmf {
        digits: s.to_ascii_uppercase(),
    })
}

// Agents differ on padding; accepting both costs nothing.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Appends the base64 of `bytes` to `out`.
pub(crate) fn b64_encode_into(bytes: &[u8], out: &mut String) {
    B64.encode_string(bytes, out);
}

/// Decodes a non-empty base64 payload of at most `max` bytes, checking the size before
/// allocating.
pub(crate) fn b64_decode(
    s: &str,
    field: &'static str,
    max: usize,
) -> Result<Vec<u8>, DialectError> {
    let estimate = s.len() / 4 * 3;
    if estimate > max.saturating_add(3) {
        return Err(DialectError::PayloadTooLarge {
            bytes: estimate,
            max,
        });
    }
    let bytes = B64.decode(s).map_err(|e| DialectError::BadBase64 {
        field,
        detail: e.to_string(),
    })?;
    if bytes.is_empty() {
        return Err(DialectError::EmptyAudio);
    }
    if bytes.len() > max {
        return Err(DialectError::PayloadTooLarge {
            bytes: bytes.len(),
            max,
        });
    }
    Ok(bytes)
}

/// Bytes of [`MAX_AGENT_AUDIO_MS`] of audio at `rate` with `width` bytes per sample.
pub(crate) fn max_audio_bytes(rate: u32, width: usize) -> usize {
    (rate as usize / 1000) * MAX_AGENT_AUDIO_MS as usize * width
}

pub(crate) fn ulaw_to_pcm(bytes: &[u8]) -> Vec<i16> {
    let mut pcm = vec![0i16; bytes.len()];
    g711::decode_ulaw(bytes, &mut pcm);
    pcm
}

pub(crate) fn pcm_to_ulaw(pcm: &[i16]) -> Vec<u8> {
    let mut out = vec![0u8; pcm.len()];
    g711::encode_ulaw(pcm, &mut out);
    out
}

/// Little-endian PCM16 bytes to samples; an odd length is an error, not a dropped byte, since it
/// means the agent's framing is off.
pub(crate) fn l16le_to_pcm(bytes: &[u8]) -> Result<Vec<i16>, DialectError> {
    if bytes.len() % 2 != 0 {
        return Err(DialectError::OddPcmLength(bytes.len()));
    }
    Ok(bytes
        .chunks_exact(2)
        .map(|b| match b {
            [lo, hi] => i16::from_le_bytes([*lo, *hi]),
            _ => 0, // chunks_exact(2) yields pairs only
        })
        .collect())
}

pub(crate) fn pcm_to_l16le(pcm: &[i16]) -> Vec<u8> {
    pcm.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Serialises a message struct. These structs have string keys only, which serde_json cannot
/// fail on; the fallback exists so no path can panic.
pub(crate) fn to_json<T: Serialize>(msg: &T) -> String {
    serde_json::to_string(msg).unwrap_or_else(|_| String::from("{}"))
}

/// Ordered string pairs as a JSON object; a repeated key keeps its last value, so the object
/// never has duplicate keys.
pub(crate) struct Params<'a, T: AsRef<str> = String>(pub &'a [(T, T)]);

impl<T: AsRef<str>> Serialize for Params<'_, T> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut map = ser.serialize_map(None)?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            let later = self.0.get(i + 1..).unwrap_or_default();
            if !later.iter().any(|(k2, _)| k2.as_ref() == k.as_ref()) {
                map.serialize_entry(k.as_ref(), v.as_ref())?;
            }
        }
        map.end()
    }
}

/// What the call itself tells every agent besides the platform's parameters (PROTOCOLS.md
/// §2): `did` and `crt` when present, then each kept SIP header by its own name, in order.
pub(crate) fn call_facts(meta: &StreamMeta) -> Vec<(&str, &str)> {
    let ids = [("did", &meta.did), ("crt", &meta.crt)];
    ids.into_iter()
        .filter_map(|(k, v)| Some((k, v.as_deref()?)))
        .chain(meta.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect()
}
