//! The inbound-call webhook request body (PROTOCOLS.md §1), sent while the caller hears ringing.
//!
//! Owns: the JSON `call.incoming` body (absent parts are absent keys, never empty strings), the
//! `twilio-form` body (Twilio's voice webhook fields, urlencoded, so a TwiML app can answer).
//! The `did`/`crt` it carries were read once, by `core::number::did_crt`, when the INVITE came.
//! Also the one form serialiser ([`form_urlencoded`]). Twilio-form additions: trunkgate-only facts go in `X_Did`, `X_Crt`, `X_SipCallId`,
//! `X_Trunk`, `X_WorkspaceId`, `X_SourceIp`; SIP headers go in `SipHeader_<name>`, the names
//! Twilio's own SIP trunking uses.
//! Must not: sign (see `sign`), send, or read a clock.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// Twilio's API version string, which TwiML apps sometimes check.
pub const TWILIO_API_VERSION: &str = "2010-04-01";

/// Everything the webhook tells the platform about a ringing call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IncomingCall {
    pub call_id: String,
    pub sip_call_id: String,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    pub did: Option<String>,
    pub crt: Option<String>,
    pub workspace_id: Option<String>,
    pub trunk: Option<String>,
    pub source_ip: Option<String>,
    /// Selected SIP headers (name, value); a repeated name keeps its last value.
    pub headers: Vec<(String, String)>,
    /// An outbound call's own webhook (Twilio's `Url`), asked once the callee has answered:
    /// the body is Twilio's form with `Direction=outbound-api`, `CallStatus=in-progress`.
    /// `None`: an inbound call, asking `[webhook] url`.
    pub outbound_url: Option<String>,
}

/// Which body the webhook sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookFormat {
    #[default]
    Json,
    TwilioForm,
}

impl WebhookFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            WebhookFormat::Json => "application/json",
            WebhookFormat::TwilioForm => "application/x-www-form-urlencoded",
        }
    }
}

fn pairs_as_object<S: Serializer>(pairs: &&[(String, String)], ser: S) -> Result<S::Ok, S::Error> {
    let mut map = ser.serialize_map(None)?;
    for (i, (k, v)) in pairs.iter().enumerate() {
        if !pairs
            .get(i + 1..)
            .unwrap_or_default()
            .iter()
            .any(|(k2, _)| k2 == k)
        {
            map.serialize_entry(k, v)?;
        }
    }
    map.end()
}

#[derive(Serialize)]
struct Incoming<'a> {
    event: &'static str,
    call_id: &'a str,
    call_sid: &'a str,
    sip_call_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    from_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    did: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crt: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workspace_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trunk: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_ip: Option<&'a str>,
    #[serde(
        skip_serializing_if = "<[_]>::is_empty",
        serialize_with = "pairs_as_object"
    )]
    headers: &'a [(String, String)],
}

/// The request body for `format`; `account_sid` fills Twilio's `AccountSid` (the JSON body has
/// no use for it).
pub fn body(format: WebhookFormat, call: &IncomingCall, account_sid: &str) -> Vec<u8> {
    match format {
        WebhookFormat::Json => json_body(call),
        WebhookFormat::TwilioForm => twilio_form_body(call, account_sid).into_bytes(),
    }
}

/// `{"event":"call.incoming","call_id":…,"call_sid":…,"sip_call_id":…,…}`.
pub fn json_body(call: &IncomingCall) -> Vec<u8> {
    let msg = Incoming {
        event: "call.incoming",
        call_id: &call.call_id,
        call_sid: &call.call_id,
        sip_call_id: &call.sip_call_id,
        from_number: call.from_number.as_deref(),
        to_number: call.to_number.as_deref(),
        did: call.did.as_deref(),
        crt: call.crt.as_deref(),
        workspace_id: call.workspace_id.as_deref(),
        trunk: call.trunk.as_deref(),
        source_ip: call.source_ip.as_deref(),
        headers: &call.headers,
    };
    // String keys only: serde_json cannot fail on this.
    serde_json::to_vec(&msg).unwrap_or_default()
}

/// Twilio's voice webhook fields for a ringing inbound call (or an answered outbound one),
/// urlencoded.
pub fn twilio_form_body(call: &IncomingCall, account_sid: &str) -> String {
    let mut fields: Vec<(String, &str)> = vec![
        ("CallSid".into(), &call.call_id),
        ("AccountSid".into(), account_sid),
    ];
    if let Some(from) = &call.from_number {
        fields.push(("From".into(), from));
        fields.push(("Caller".into(), from));
    }
    if let Some(to) = &call.to_number {
        fields.push(("To".into(), to));
        fields.push(("Called".into(), to));
    }
    let (direction, status) = match call.outbound_url {
        Some(_) => ("outbound-api", "in-progress"),
        None => ("inbound", "ringing"),
    };
    fields.push(("Direction".into(), direction));
    fields.push(("CallStatus".into(), status));
    fields.push(("ApiVersion".into(), TWILIO_API_VERSION));
    if !call.sip_call_id.is_empty() {
        fields.push(("X_SipCallId".into(), &call.sip_call_id));
    }
    let optional = [
        ("X_Did", &call.did),
        ("X_Crt", &call.crt),
        ("X_Trunk", &call.trunk),
        ("X_WorkspaceId", &call.workspace_id),
        ("X_SourceIp", &call.source_ip),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            fields.push((name.into(), v));
        }
    }
    for (name, value) in &call.headers {
        fields.push((format!("SipHeader_{name}"), value));
    }
    form_urlencoded(&fields)
}

/// `fields` as an application/x-www-form-urlencoded body (`k=v&k=v`, in order): the one
/// form serialiser, for the webhook and for Twilio-form status callbacks.
pub fn form_urlencoded<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)]) -> String {
    let encoded: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k.as_ref()), form_encode(v.as_ref())))
        .collect();
    encoded.join("&")
}

/// The application/x-www-form-urlencoded byte serialiser (WHATWG URL §5.2).
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn call() -> IncomingCall {
        IncomingCall {
            call_id: "tg-7f3a".into(),
            sip_call_id: "a84b4c76e66710@pc33.example".into(),
            from_number: Some("+919990152080".into()),
            to_number: Some("+918035735900".into()),
            did: Some("+919990152080".into()),
            crt: Some("d444-69139d35-vce-daf-3883".into()),
            workspace_id: Some("2b37ba17".into()),
            trunk: Some("ameyo".into()),
            source_ip: Some("198.51.100.7".into()),
            headers: vec![
                ("X-Workspace-ID".into(), "old".into()),
                ("X-Workspace-ID".into(), "2b37ba17".into()),
            ],
            outbound_url: None,
        }
    }

    #[test]
    fn json_body_has_the_documented_fields() {
        let v: serde_json::Value = serde_json::from_slice(&json_body(&call())).unwrap_or_default();
        assert_eq!(
            v,
            json!({"event":"call.incoming","call_id":"tg-7f3a","call_sid":"tg-7f3a",
                "sip_call_id":"a84b4c76e66710@pc33.example","from_number":"+919990152080",
                "to_number":"+918035735900","did":"+919990152080","crt":"d444-69139d35-vce-daf-3883",
                "workspace_id":"2b37ba17","trunk":"ameyo","source_ip":"198.51.100.7",
                "headers":{"X-Workspace-ID":"2b37ba17"}})
        );
    }

    #[test]
    fn absent_parts_are_absent_keys() {
        let bare = IncomingCall {
            call_id: "c".into(),
            sip_call_id: "s".into(),
            ..IncomingCall::default()
        };
        assert_eq!(
            String::from_utf8(json_body(&bare)).unwrap_or_default(),
            r#"{"event":"call.incoming","call_id":"c","call_sid":"c","sip_call_id":"s"}"#
        );
        assert_eq!(
            twilio_form_body(&bare, "AC1"),
            "CallSid=c&AccountSid=AC1&Direction=inbound&CallStatus=ringing&ApiVersion=2010-04-01&X_SipCallId=s"
        );
        let answered = IncomingCall {
            outbound_url: Some("https://app.example/twiml".into()),
            ..bare
        };
        assert_eq!(
            twilio_form_body(&answered, "AC1"),
            "CallSid=c&AccountSid=AC1&Direction=outbound-api&CallStatus=in-progress&ApiVersion=2010-04-01&X_SipCallId=s"
        );
    }

    #[test]
    fn twilio_form_body_is_urlencoded() {
        let mut c = call();
        c.headers = vec![("X-Tag".into(), "a b&c=d/é".into())];
        let body = twilio_form_body(&c, "AC0001");
        assert_eq!(
            body,
            "CallSid=tg-7f3a&AccountSid=AC0001&From=%2B919990152080&Caller=%2B919990152080\
             &To=%2B918035735900&Called=%2B918035735900&Direction=inbound&CallStatus=ringing\
             &ApiVersion=2010-04-01&X_SipCallId=a84b4c76e66710%40pc33.example&X_Did=%2B919990152080\
             &X_Crt=d444-69139d35-vce-daf-3883&X_Trunk=ameyo&X_WorkspaceId=2b37ba17\
             &X_SourceIp=198.51.100.7&SipHeader_X-Tag=a+b%26c%3Dd%2F%C3%A9"
        );
        assert_eq!(
            body.as_bytes(),
            &*super::body(WebhookFormat::TwilioForm, &c, "AC0001")
        );
        assert_eq!(
            WebhookFormat::TwilioForm.content_type(),
            "application/x-www-form-urlencoded"
        );
        assert_eq!(WebhookFormat::default().content_type(), "application/json");
    }
}
