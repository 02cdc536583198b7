//! `GET /v1/openapi.json`: the OpenAPI 3.1 document of the control API — every route this
//! crate serves, with schemas for the call view, the call list, the trunk states, the error
//! body and the Twilio-compatible resource (placing calls: [`super::openapi_dial`]), and the
//! recording's binary (`audio/wav`) answers. A daemon test checks real responses against it.
//!
//! Owns: the document. Must not: drift from the routes (`mod.rs`) or the wire types
//! (`core::call::view`); the schemas use only `type` (a type array for nullable), `required`,
//! `properties`, `additionalProperties: false`, `enum`, `items` and `$ref`.

use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::calls::{DEFAULT_LIMIT, MAX_DIGITS, MAX_LIMIT};
use crate::core::transcript::TranscriptState;

pub(super) async fn document() -> Response {
    static DOC: OnceLock<Value> = OnceLock::new();
    Json(DOC.get_or_init(build).clone()).into_response()
}

pub(super) fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

pub(super) fn body(schema: Value, description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema } }
    })
}

pub(super) fn error(description: &str) -> Value {
    body(reference("Error"), description)
}

pub(super) fn twilio_error(description: &str) -> Value {
    body(reference("TwilioError"), description)
}

fn call_id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"},
           "description": "The call's id (`CA` and 32 hex digits)."})
}

fn twilio_params() -> Value {
    json!([
        {"name": "AccountSid", "in": "path", "required": true, "schema": {"type": "string"}},
        {"name": "CallSid", "in": "path", "required": true, "schema": {"type": "string"}}
    ])
}

fn command_responses() -> Value {
    json!({
        "202": body(reference("Call"), "Accepted; the call acts on it asynchronously. The call as it stands."),
        "400": error("Bad request."),
        "401": error("Missing or wrong bearer token."),
        "404": error("Unknown call, or ended longer ago than the retention."),
        "409": error("The call has ended (`call_ended`) or, for DTMF, is not answered yet (`call_not_answered`).")
    })
}

fn recording_path() -> Value {
    let wav = |description: &str| {
        json!({"description": description,
               "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}})
    };
    json!({"get": {
        "summary": "The call's recording: stereo 8 kHz 16-bit WAV, left = caller, right = agent. One HTTP byte range (RFC 9110) may be asked; several ranges are answered 200 with the whole file.",
        "parameters": [call_id_param(),
            {"name": "Range", "in": "header", "required": false, "schema": {"type": "string"},
             "description": "`bytes=a-b`, `bytes=a-` or `bytes=-n`."}],
        "responses": {
            "200": wav("The whole file (`Accept-Ranges: bytes`)."),
            "206": wav("The range asked for (`Content-Range: bytes a-b/total`; an end past the file is cut to its last byte)."),
            "401": error("Missing or wrong bearer token."),
            "404": error("No recording for this call."),
            "409": error("The recording is still being written (`recording_in_progress`)."),
            "416": error("Not one byte range within the file (`range_not_satisfiable`; `Content-Range: bytes */total`)."),
            "500": error("The file cannot be read (`internal`).")
        }
    }})
}

fn build() -> Value {
    let mut doc = paths_and_schemas();
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in super::openapi_dial::schemas() {
            schemas.insert(name.to_string(), schema);
        }
    }
    document_auth_limit(&mut doc);
    doc
}

/// Every operation that can answer 401 can also answer 429: a source with too many failed
/// authentications is refused before any handler runs (`api::auth_limit`).
fn document_auth_limit(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let operations = paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|ops| ops.values_mut());
    for op in operations {
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        if responses.contains_key("401") && !responses.contains_key("429") {
            let why = "Too many failed authentications from this address (`rate_limited`, with Retry-After): refused until its minute ends.";
            responses.insert("429".into(), error(why));
        }
    }
}

fn paths_and_schemas() -> Value {
    let nullable_string = json!({"type": ["string", "null"]});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "trunkgate control API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Calls of a trunkgate SIP/RTP gateway: place them, read them, hang them up, send DTMF."
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "twilioBasic": {"type": "http", "scheme": "basic",
                                "description": "AccountSid as the user, the API token as the password."}
            },
            "schemas": {
                "Call": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["call_id", "direction", "status", "started_at", "duration_s",
                                 "billable_s", "talk_s", "turns"],
                    "properties": {
                        "call_id": {"type": "string"},
                        "direction": {"type": "string", "enum": ["inbound", "outbound"]},
                        "status": {"type": "string", "enum": ["queued", "ringing", "in-progress",
                            "completed", "busy", "failed", "no-answer", "canceled"]},
                        "from": {"type": "string"},
                        "to": {"type": "string"},
                        "did": {"type": "string"},
                        "crt": {"type": "string"},
                        "started_at": {"type": "string", "format": "date-time"},
                        "answered_at": {"type": "string", "format": "date-time"},
                        "ended_at": {"type": "string", "format": "date-time"},
                        "duration_s": {"type": "number",
                            "description": "Seconds since the answer (live while in progress), 0.1 s precision."},
                        "billable_s": {"type": "integer"},
                        "talk_s": {
                            "type": "object",
                            "additionalProperties": false,
                            "required": ["caller", "agent"],
                            "properties": {"caller": {"type": "number"}, "agent": {"type": "number"}}
                        },
                        "turns": {"type": "array", "items": reference("Turn")},
                        "end_reason": {"type": "string"},
                        "sip_status": {"type": "integer"},
                        "recording_url": {"type": "string"},
                        "recording_complete": {"type": "boolean"},
                        "transcript": {"type": "string",
                            "enum": TranscriptState::ALL.map(TranscriptState::as_str),
                            "description": "Set when the call ends: pending (a call.transcript callback follows, with turns or an error), else why there is none."},
                        "billing": reference("Billing"),
                        "transfer": reference("TransferState")
                    }
                },
                "Trunk": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["name", "registered", "last_error", "expires_at"],
                    "properties": {
                        "name": {"type": "string"},
                        "registered": {"type": "boolean"},
                        "last_error": {"type": ["string", "null"],
                            "description": "Why the last REGISTER failed; null after a success."},
                        "expires_at": {"type": ["string", "null"], "format": "date-time",
                            "description": "When the granted binding runs out (RFC 3339)."}
                    }
                },
                "TrunkList": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["trunks"],
                    "properties": {"trunks": {"type": "array", "items": reference("Trunk")}}
                },
                "Turn": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["speaker", "start_ms", "end_ms"],
                    "properties": {
                        "speaker": {"type": "string", "enum": ["caller", "agent"]},
                        "start_ms": {"type": "integer"},
                        "end_ms": {"type": "integer"}
                    }
                },
                "Billing": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["counted", "counted_s", "minimum_s", "increment_s"],
                    "properties": {
                        "counted": {"type": "string", "enum": ["duration", "speech"]},
                        "counted_s": {"type": "number"},
                        "minimum_s": {"type": "integer"},
                        "increment_s": {"type": "integer"}
                    }
                },
                "CallList": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["calls"],
                    "properties": {"calls": {"type": "array", "items": reference("Call")}}
                },
                "Transfer": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["to"],
                    "properties": {
                        "to": {"type": "string", "description": "A number (E.164) or a SIP URI."},
                        "mode": {"type": "string", "enum": ["refer", "bridge", "notify"],
                            "description": "Default: the trunk's `transfer.mode`, else refer."},
                        "fallback": {"type": "string", "enum": ["bridge", "resume"]}
                    }
                },
                "TransferState": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["mode", "to", "outcome"],
                    "properties": {
                        "mode": {"type": "string", "enum": ["refer", "bridge", "notify"]},
                        "to": {"type": "string"},
                        "outcome": {"type": "string", "enum": ["trying", "succeeded", "failed"]},
                        "sip_status": {"type": "integer"}
                    }
                },
                "Dtmf": {
                    "type": "object",
                    "required": ["digits"],
                    "properties": {"digits": {"type": "string",
                        "description": format!("1 to {MAX_DIGITS} of 0-9 * # A-D.")}}
                },
                "Error": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["error"],
                    "properties": {"error": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string", "enum": ["invalid_request", "unauthorized",
                                "not_found", "call_ended", "call_not_answered", "no_trunk",
                                "refused", "rate_limited", "busy", "draining",
                                "idempotency_key_reused", "body_too_large",
                                "recording_in_progress", "range_not_satisfiable", "internal"]},
                            "message": {"type": "string"},
                            "field": {"type": "string",
                                "description": "The request field (or header) at fault, when there is one."}
                        }
                    }}
                },
                "TwilioCall": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["sid", "account_sid", "status", "direction", "from", "to",
                                 "start_time", "end_time", "duration", "api_version", "uri"],
                    "properties": {
                        "sid": {"type": "string"},
                        "account_sid": {"type": "string"},
                        "parent_call_sid": nullable_string,
                        "to": nullable_string,
                        "from": nullable_string,
                        "status": {"type": "string", "enum": ["queued", "ringing", "in-progress",
                            "completed", "busy", "failed", "no-answer", "canceled"]},
                        "direction": {"type": "string", "enum": ["inbound", "outbound-api"]},
                        "start_time": {"type": ["string", "null"], "description": "RFC 2822."},
                        "end_time": {"type": ["string", "null"], "description": "RFC 2822."},
                        "duration": {"type": ["string", "null"],
                            "description": "Whole seconds, once the call has ended."},
                        "date_created": nullable_string,
                        "date_updated": nullable_string,
                        "answered_by": nullable_string,
                        "price": nullable_string,
                        "price_unit": {"type": "string"},
                        "api_version": {"type": "string"},
                        "uri": {"type": "string"}
                    }
                },
                "TwilioError": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["code", "message", "more_info", "status"],
                    "properties": {
                        "code": {"type": "integer"},
                        "message": {"type": "string"},
                        "more_info": {"type": "string"},
                        "status": {"type": "integer"}
                    }
                }
            }
        },
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {"get": {
                "summary": "Liveness probe (no token).", "security": [],
                "responses": {"200": {"description": "The process answers.",
                    "content": {"text/plain": {"schema": {"type": "string"}}}}}
            }},
            "/readyz": {"get": {
                "summary": "Readiness probe (no token): 503 while draining.", "security": [],
                "responses": {
                    "200": {"description": "Ready.", "content": {"text/plain": {"schema": {"type": "string"}}}},
                    "503": {"description": "Draining.", "content": {"text/plain": {"schema": {"type": "string"}}}}
                }
            }},
            "/metrics": {"get": {
                "summary": "Prometheus text exposition.",
                "responses": {
                    "200": {"description": "Counters and gauges.",
                        "content": {"text/plain": {"schema": {"type": "string"}}}},
                    "401": error("Missing or wrong bearer token.")
                }
            }},
            "/v1/openapi.json": {"get": {
                "summary": "This document.",
                "responses": {
                    "200": {"description": "OpenAPI 3.1.",
                        "content": {"application/json": {"schema": {"type": "object"}}}},
                    "401": error("Missing or wrong bearer token.")
                }
            }},
            "/v1/calls": {"post": super::openapi_dial::create(), "get": {
                "summary": "List calls, newest first.",
                "parameters": [
                    {"name": "status", "in": "query", "required": false,
                     "schema": {"type": "string", "enum": ["active", "completed", "all"]},
                     "description": "active: running; completed: ended (any final status) within the retention; all (default)."},
                    {"name": "limit", "in": "query", "required": false,
                     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}}
                ],
                "responses": {
                    "200": body(reference("CallList"), "The calls."),
                    "400": error("Bad status or limit."),
                    "401": error("Missing or wrong bearer token.")
                }
            }},
            "/v1/calls/{id}": {"get": {
                "summary": "A running call, or one ended within `[api] call_retention`.",
                "parameters": [call_id_param()],
                "responses": {
                    "200": body(reference("Call"), "The call."),
                    "401": error("Missing or wrong bearer token."),
                    "404": error("Unknown call, or ended longer ago than the retention.")
                }
            }},
            "/v1/calls/{id}/hangup": {"post": {
                "summary": "End the call (BYE once answered, a final response while ringing); end_reason api_hangup.",
                "parameters": [call_id_param()],
                "responses": command_responses()
            }},
            "/v1/calls/{id}/dtmf": {"post": {
                "summary": "Send RFC 4733 digits to the caller of an answered call.",
                "parameters": [call_id_param()],
                "requestBody": {"required": true,
                    "content": {"application/json": {"schema": reference("Dtmf")}}},
                "responses": command_responses()
            }},
            "/v1/calls/{id}/transfer": {"post": {
                "summary": "Transfer an answered call (REFER, a bridged leg, PBX notification); progress comes as call.transfer callbacks and in the call's `transfer` (a bridged leg's states as call.leg and in `bridge`).",
                "parameters": [call_id_param()],
                "requestBody": {"required": true,
                    "content": {"application/json": {"schema": reference("Transfer")}}},
                "responses": command_responses()
            }},
            "/v1/calls/{id}/recording": recording_path(),
            "/2010-04-01/Accounts/{AccountSid}/Calls.json": super::openapi_dial::twilio_create(),
            "/v1/trunks": {"get": {
                "summary": "Registration state of every trunk with `outbound.register = true`.",
                "responses": {
                    "200": body(reference("TrunkList"), "The trunks."),
                    "401": error("Missing or wrong bearer token.")
                }
            }},
            "/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json": {
                "get": {
                    "summary": "Twilio-compatible call resource (with `[api] twilio_compat = true`).",
                    "security": [{"twilioBasic": []}],
                    "parameters": twilio_params(),
                    "responses": {
                        "200": body(reference("TwilioCall"), "The call in Twilio's shape."),
                        "401": twilio_error("Wrong credentials or account (code 20003)."),
                        "404": twilio_error("Unknown call (code 20404).")
                    }
                },
                "post": {
                    "summary": "Status=completed hangs up; Status=canceled hangs up a call not answered yet.",
                    "security": [{"twilioBasic": []}],
                    "parameters": twilio_params(),
                    "requestBody": {"required": true, "content": {
                        "application/x-www-form-urlencoded": {"schema": {
                            "type": "object", "required": ["Status"],
                            "properties": {"Status": {"type": "string", "enum": ["completed", "canceled"]}}
                        }}
                    }},
                    "responses": {
                        "200": body(reference("TwilioCall"), "The call as it stands."),
                        "400": twilio_error("Bad form, or the call has already ended (code 21220)."),
                        "401": twilio_error("Wrong credentials or account (code 20003)."),
                        "404": twilio_error("Unknown call (code 20404).")
                    }
                }
            }
        }
    })
}
