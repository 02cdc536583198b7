//! The OpenAPI parts of placing calls: `POST /v1/calls` (its body and answers) and the
//! Twilio-compatible `POST …/Calls.json`, merged into the document by [`super::openapi`].
//!
//! Owns: those operations and schemas. Must not: drift from `calls_body` and
//! `twilio_create` (the limits and field lists come from there).

use serde_json::{json, Value};

use super::calls_body::{
    FIELDS, MAX_PARAMETERS, MAX_PARAMETER_KEY, MAX_PARAMETER_VALUE, MAX_TIMEOUT_S, MAX_TIME_LIMIT_S,
};
use super::fields::{MAX_CALLER_ID, MAX_KEY, MAX_URI, MAX_URL, MIN_DIAL_DIGITS};
use super::openapi::{body, error, reference, twilio_error};

/// The schemas `POST /v1/calls` adds: its body (`DialRequest`) and its answer (`Dialed`).
pub(super) fn schemas() -> [(&'static str, Value); 2] {
    let properties = json!({
        "to": {"type": "string", "description": format!(
            "E.164 (normalised: separators dropped, 00 → +; {MIN_DIAL_DIGITS} to 15 digits) or a \
             sip:/sips: URI of at most {MAX_URI} characters, without URI headers or password.")},
        "from": {"type": "string", "description": format!(
            "Caller id: E.164, or a SIP user part of 1 to {MAX_CALLER_ID} letters, digits and -_.!~*'()+. \
             Absent: anonymous.")},
        "websocket_url": {"type": "string", "description": format!(
            "The agent: ws:// or wss:// (at most {MAX_URL} characters), or builtin:echo. Connected when the callee answers.")},
        "dialect": {"type": "string", "enum": ["twilio", "plivo", "raw"], "default": "twilio"},
        "sample_rate": {"type": "integer", "enum": [8000, 16000], "default": 8000},
        "callback_url": {"type": "string", "description": "http(s) URL for status callbacks (default: [callbacks] url)."},
        "trunk": {"type": "string", "description": "A [[trunk]] name with outbound (default: the first)."},
        "timeout_s": {"type": "integer", "minimum": 1, "maximum": MAX_TIMEOUT_S, "default": 30,
            "description": "Ring timeout: no answer by then → no-answer."},
        "time_limit_s": {"type": "integer", "minimum": 1, "maximum": MAX_TIME_LIMIT_S,
            "description": "An answered call is hung up after this long."},
        "record": {"type": "boolean", "default": false},
        "parameters": {"type": "object", "description": format!(
            "At most {MAX_PARAMETERS} keys (1 to {MAX_PARAMETER_KEY} characters) with string, number or \
             boolean values (up to {MAX_PARAMETER_VALUE} characters as text): the agent's \
             start.customParameters.")},
        "status_events": {"type": "array",
            "items": {"type": "string", "enum": ["ringing", "answered", "completed"]},
            "description": "Status events to send (default: [callbacks] events)."},
        "early_media": {"type": "boolean", "default": false,
            "description": "Connect the agent on a 183 with SDP, so it hears early media."},
        "bridge_from": {"type": "string", "description":
            "Click-to-call, instead of websocket_url: this phone (E.164, sip: URI, or `user:NAME` for              the phone a [[user]] has registered here; 409 not_registered when none is; the manager)              rings first; once it answers it hears ringback while `to` is dialled, and the two are              bridged (recorded left = client, right = manager)."},
        "bridge_from_trunk": {"type": "string", "description":
            "The [[trunk]] that rings bridge_from (default: `trunk`)."},
        "srtp": {"type": "string", "enum": ["off", "optional", "required"], "description":
            "SRTP (SDES) toward the callee (default: the trunk's outbound.srtp). Over a trunk \
             that is not TLS only \"off\" is accepted, unless rtp.srtp_allow_plain_sip."}
    });
    debug_assert_eq!(properties.as_object().map(|p| p.len()), Some(FIELDS.len()));
    let request = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["to"],
        "properties": properties
    });
    let dialed = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["call_id", "status"],
        "properties": {
            "call_id": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "ringing", "in-progress",
                "completed", "busy", "failed", "no-answer", "canceled"]}
        }
    });
    [("DialRequest", request), ("Dialed", dialed)]
}

fn idempotency_param() -> Value {
    json!({"name": "Idempotency-Key", "in": "header", "required": false,
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY},
        "description": "1 to 255 visible ASCII characters. The same key within 24 h returns the \
            first call (same status and body, plus Idempotent-Replayed: true) and never dials \
            twice; with a different request it is 409 idempotency_key_reused."})
}

/// `POST /v1/calls`.
pub(super) fn create() -> Value {
    json!({
        "summary": "Place a call: the callee is dialled through a trunk and, once it answers, bridged to the agent.",
        "parameters": [idempotency_param()],
        "requestBody": {"required": true,
            "content": {"application/json": {"schema": reference("DialRequest")}}},
        "responses": {
            "201": body(reference("Dialed"), "Queued: the call rings in its own task (Location: /v1/calls/{id})."),
            "400": error("A field is wrong (invalid_request, with field), or no trunk can place it (no_trunk)."),
            "401": error("Missing or wrong bearer token."),
            "403": error("Refused by outbound policy (refused; the message names the rule)."),
            "409": error("Idempotency-Key reused with a different request (idempotency_key_reused), or no phone of the bridge_from user is registered (not_registered)."),
            "413": error("The body is larger than 64 KiB (body_too_large)."),
            "429": error("Rate limited (rate_limited, with Retry-After) or too many calls (busy)."),
            "503": error("The gateway is draining (draining).")
        }
    })
}

/// `POST /2010-04-01/Accounts/{AccountSid}/Calls.json`.
pub(super) fn twilio_create() -> Value {
    let string = json!({"type": "string"});
    json!({
        "post": {
            "summary": "Twilio-compatible create (with `[api] twilio_compat = true`); other Twilio fields are ignored.",
            "security": [{"twilioBasic": []}],
            "parameters": [
                {"name": "AccountSid", "in": "path", "required": true, "schema": {"type": "string"}},
                idempotency_param()
            ],
            "requestBody": {"required": true, "content": {
                "application/x-www-form-urlencoded": {"schema": {
                    "type": "object", "required": ["To", "From"],
                    "properties": {
                        "To": string, "From": string,
                        "Url": {"type": "string", "description": "http(s); fetched when the callee answers (TwiML <Connect><Stream>). Url or Twiml is required."},
                        "Twiml": {"type": "string", "description": "Inline TwiML (wins over Url), at most 4000 characters."},
                        "StatusCallback": string,
                        "StatusCallbackEvent": {"type": "string", "description": "initiated ringing answered completed, space-separated or repeated (initiated is not sent). Default with a StatusCallback: completed."},
                        "StatusCallbackMethod": {"type": "string", "enum": ["POST"]},
                        "Timeout": {"type": "integer", "minimum": 1, "maximum": MAX_TIMEOUT_S, "default": 60},
                        "TimeLimit": {"type": "integer", "minimum": 1, "maximum": MAX_TIME_LIMIT_S},
                        "Record": {"type": "boolean"}
                    }
                }}
            }},
            "responses": {
                "201": body(reference("TwilioCall"), "Queued; direction outbound-api."),
                "400": twilio_error("Bad form: 21201 no To, 21211 bad To, 21213 no From, 21212 bad From, 21205 no or bad Url, 21609 bad StatusCallback, 21209 StatusCallbackMethod, 21208 Timeout, 21200 others; 21214 no trunk."),
                "401": twilio_error("Wrong credentials or account (code 20003)."),
                "403": twilio_error("Refused by outbound policy (code 20403)."),
                "409": twilio_error("Idempotency-Key reused with a different request (code 20409)."),
                "413": twilio_error("The body is larger than 64 KiB (code 20001)."),
                "429": twilio_error("Rate limited, with Retry-After, or too many calls (code 20429)."),
                "503": twilio_error("The gateway is draining (code 20503).")
            }
        }
    })
}
