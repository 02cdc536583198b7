//! baresip `ctrl_tcp` wire protocol: netstring framing (`<len>:<json>,`), the JSON command
//! encoding and decoding of events/responses, and a reader task that turns the socket into a
//! stream of [`CtrlMsg`]. Must not: interpret call semantics (that is `baresip.rs`), or block
//! the reader on a slow consumer (the channel is unbounded; tests are short).

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use serde_json::Value;

/// Upper bound for one netstring; baresip's own buffer is smaller, so more means garbage.
const MAX_FRAME: usize = 1 << 20;

/// One `{"event":true,...}` message from baresip.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `type`, e.g. `CALL_ESTABLISHED`, `CALL_CLOSED`, `CALL_DTMF_START`.
    pub kind: String,
    /// `class`: `call`, `other`, `application`, `register`, ...
    pub class: String,
    /// `param`: the peer URI, the close reason, or the DTMF digit, depending on `kind`.
    pub param: Option<String>,
    /// `id`: the SIP Call-ID of the call the event belongs to.
    pub call_id: Option<String>,
    pub peer_uri: Option<String>,
    /// `incoming` or `outgoing`.
    pub direction: Option<String>,
    /// The JSON text as received, for diagnostics.
    pub raw: String,
}

/// What the reader task delivers.
#[derive(Debug)]
pub enum CtrlMsg {
    Event(Event),
    Response {
        ok: bool,
        data: String,
        token: Option<String>,
    },
    /// The connection ended (baresip quit or crashed); carries the reason.
    Closed(String),
}

/// Frames one command as a netstring. `params` is appended after a space by baresip itself.
pub fn encode_command(command: &str, params: Option<&str>, token: &str) -> Vec<u8> {
    let mut cmd = serde_json::json!({ "command": command, "token": token });
    if let Some(p) = params {
        cmd["params"] = Value::from(p);
    }
    let body = cmd.to_string();
    let mut out = format!("{}:", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out.push(b',');
    out
}

pub fn decode_message(text: &str) -> Result<CtrlMsg, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    // baresip writes booleans, but "true" strings are accepted too.
    let truthy = |k: &str| {
        v.get(k)
            .is_some_and(|x| x.as_bool() == Some(true) || x.as_str() == Some("true"))
    };
    let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    if truthy("event") {
        return Ok(CtrlMsg::Event(Event {
            kind: field("type").unwrap_or_default(),
            class: field("class").unwrap_or_default(),
            param: field("param"),
            call_id: field("id"),
            peer_uri: field("peeruri"),
            direction: field("direction"),
            raw: text.to_owned(),
        }));
    }
    if truthy("response") {
        return Ok(CtrlMsg::Response {
            ok: truthy("ok"),
            data: field("data").unwrap_or_default(),
            token: field("token"),
        });
    }
    Err(format!("neither event nor response: {text}"))
}

/// Reads one netstring; `Ok(None)` on a clean EOF between frames.
async fn read_frame(r: &mut BufReader<OwnedReadHalf>) -> io::Result<Option<String>> {
    let mut len_buf = Vec::new();
    let n = r.read_until(b':', &mut len_buf).await?;
    if n == 0 {
        return Ok(None);
    }
    let digits = len_buf
        .strip_suffix(b":")
        .ok_or_else(|| bad("EOF inside netstring length"))?;
    let len: usize = std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&l| l <= MAX_FRAME)
        .ok_or_else(|| bad("bad netstring length"))?;
    let mut body = vec![0u8; len + 1];
    r.read_exact(&mut body).await?;
    if body.pop() != Some(b',') {
        return Err(bad("netstring not terminated by ','"));
    }
    String::from_utf8(body)
        .map(Some)
        .map_err(|_| bad("netstring body is not UTF-8"))
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

/// Spawns the reader task; it ends when the socket closes or the receiver is dropped.
pub fn spawn_reader(read: OwnedReadHalf) -> mpsc::UnboundedReceiver<CtrlMsg> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut r = BufReader::new(read);
        loop {
            let msg = match read_frame(&mut r).await {
                Ok(Some(text)) => match decode_message(&text) {
                    Ok(m) => m,
                    // One odd message must not end the stream; surface it as a pseudo-event.
                    Err(e) => CtrlMsg::Event(Event {
                        kind: "HARNESS_UNPARSED".into(),
                        class: "harness".into(),
                        param: Some(e),
                        call_id: None,
                        peer_uri: None,
                        direction: None,
                        raw: text,
                    }),
                },
                Ok(None) => CtrlMsg::Closed("control connection closed by baresip".into()),
                Err(e) => CtrlMsg::Closed(format!("control connection error: {e}")),
            };
            let closed = matches!(msg, CtrlMsg::Closed(_));
            if tx.send(msg).is_err() || closed {
                return;
            }
        }
    });
    rx
}

pub async fn send(write: &mut OwnedWriteHalf, frame: &[u8]) -> io::Result<()> {
    write.write_all(frame).await?;
    write.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_netstring_command() {
        let f = encode_command("dial", Some("sip:a@b"), "7");
        let s = String::from_utf8(f).unwrap_or_default();
        let body = r#"{"command":"dial","params":"sip:a@b","token":"7"}"#;
        assert_eq!(s, format!("{}:{},", body.len(), body));
    }

    #[test]
    fn decodes_event_and_response() {
        let ev = r#"{"event":true,"type":"CALL_DTMF_START","class":"call","id":"x","param":"5"}"#;
        match decode_message(ev) {
            Ok(CtrlMsg::Event(e)) => {
                assert_eq!(
                    (e.kind.as_str(), e.param.as_deref()),
                    ("CALL_DTMF_START", Some("5"))
                )
            }
            other => panic!("unexpected {other:?}"),
        }
        let resp = r#"{"response":true,"ok":false,"data":"no call","token":"3"}"#;
        match decode_message(resp) {
            Ok(CtrlMsg::Response { ok, data, token }) => {
                assert!(!ok);
                assert_eq!((data.as_str(), token.as_deref()), ("no call", Some("3")));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(decode_message("{}").is_err());
    }
}
