//! Why a call ended — one table for the SIP status the caller got, the call status the API
//! and callbacks show, and the record's `end_reason`.
//!
//! Owns: the names of every end reason on the wire (they are stable: CDRs and platforms key
//! on them). Must not: decide when a call ends (the machine does) or know about sockets.

use super::view::CallStatus;
use crate::core::hooks::failure::WebhookFailure;
use crate::core::policy::RejectReason;

/// Why a call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum EndReason {
    // Ended after the answer (or by the caller at any time).
    /// The caller sent BYE.
    CallerHangup,
    AgentHangup,
    /// The agent's WebSocket closed (and a reconnect, if configured, failed).
    AgentDisconnected,
    RtpTimeout,
    /// `max_call_duration` reached.
    DurationCap,
    /// `daily_minutes_cap` reached.
    MinutesCap,
    /// `POST /v1/calls/{id}/hangup` or the Twilio-compatible `Status=completed`.
    ApiHangup,
    /// The gateway drained for shutdown (or refused the call while draining).
    Shutdown,
    /// Our 2xx was never acknowledged.
    NoAck,
    /// The SIP session timer ran out (RFC 4028): the far end stopped refreshing, or our
    /// refresh failed. We sent BYE.
    SessionExpired,
    /// We hung up for a reason not listed above.
    LocalHangup,
    /// The daemon died with the call up; found in the journal on the next start.
    GatewayRestart,
    /// A bug ended the call (its task failed).
    InternalError,
    /// Transferred away: a REFER succeeded, or a PBX took the call back (its BYE, or ours
    /// after `await_bye`).
    Transferred,

    // Ended before the answer.
    /// The caller cancelled while ringing.
    Canceled,
    /// No `[[number]]` and no webhook for the dialled DID.
    NoRoute,
    SdpUnparsable,
    NoCommonCodec,
    NoMediaPorts,
    AgentConnectFailed,
    /// The webhook answered with a rejection and this status.
    WebhookReject(u16),
    /// The webhook failed and no static agent could take over.
    Webhook(WebhookFailure),
    /// Admission refused the call.
    Policy {
        reason: RejectReason,
        status: u16,
    },
    /// The endpoint rejected the INVITE itself with this status.
    Rejected(u16),
    /// The dialog ended before we decided, for no reason above.
    EndedBeforeAnswer,

    // Outbound calls (we are the UAC).
    /// The callee sent BYE.
    CalleeHangup,
    /// An answered outbound call reached its `time_limit_s`.
    TimeLimit,
    /// Our INVITE got this final non-2xx (busy, no answer, rejected, redirected; 408 when
    /// nothing answered at all).
    Callee(u16),
    /// Ringing outlasted `timeout_s`: we cancelled.
    RingTimeout,
    /// The trunk kept challenging our credentials (or we had none).
    AuthFailed(u16),
    /// The callee answered without an SDP answer.
    NoSdpAnswer,
    /// The trunk could not be reached (its address does not resolve, its connection failed).
    TrunkUnreachable,

    // Bridged calls (a `bridge` transfer, click-to-call).
    /// The bridged leg (the transfer target, click-to-call's client) hung up.
    TargetHangup,
    /// Click-to-call: the client's INVITE got this final status (after the manager answered).
    Target(u16),
}

impl EndReason {
    /// The record's `end_reason`.
    pub fn as_str(&self) -> String {
        let s = match self {
            EndReason::CallerHangup => "caller_hangup",
            EndReason::AgentHangup => "agent_hangup",
            EndReason::AgentDisconnected => "agent_disconnected",
            EndReason::RtpTimeout => "rtp_timeout",
            EndReason::DurationCap => "duration_cap",
            EndReason::MinutesCap => "minutes_cap",
            EndReason::ApiHangup => "api_hangup",
            EndReason::Shutdown => "shutdown",
            EndReason::NoAck => "no_ack",
            EndReason::SessionExpired => "session_expired",
            EndReason::LocalHangup => "local_hangup",
            EndReason::GatewayRestart => "gateway_restart",
            EndReason::InternalError => "internal_error",
            EndReason::Transferred => "transferred",
            EndReason::Canceled => "canceled",
            EndReason::NoRoute => "no_route",
            EndReason::SdpUnparsable => "sdp_unparsable",
            EndReason::NoCommonCodec => "no_common_codec",
            EndReason::NoMediaPorts => "no_media_ports",
            EndReason::AgentConnectFailed => "agent_connect_failed",
            EndReason::WebhookReject(_) => "webhook_reject",
            EndReason::Webhook(f) => f.as_str(),
            EndReason::Policy { reason, .. } => return format!("policy_{}", reason.as_str()),
            EndReason::Rejected(_) => "rejected",
            EndReason::EndedBeforeAnswer => "ended_before_answer",
            EndReason::CalleeHangup => "callee_hangup",
            EndReason::TargetHangup => "target_hangup",
            EndReason::Target(486 | 600) => "target_busy",
            EndReason::Target(408 | 480 | 487) => "target_no_answer",
            EndReason::Target(_) => "target_failed",
            EndReason::TimeLimit => "time_limit",
            EndReason::Callee(486 | 600) => "callee_busy",
            EndReason::Callee(408 | 480 | 487) => "no_answer",
            EndReason::Callee(300..=399) => "redirected",
            EndReason::Callee(_) => "callee_rejected",
            EndReason::RingTimeout => "ring_timeout",
            EndReason::AuthFailed(_) => "auth_failed",
            EndReason::NoSdpAnswer => "no_sdp_answer",
            EndReason::TrunkUnreachable => "trunk_unreachable",
        };
        s.to_string()
    }

    /// The final status of the caller's INVITE when this ends a call that was not answered
    /// (an answered call's INVITE got 200).
    pub fn reject_status(&self) -> Option<u16> {
        Some(match self {
            EndReason::Canceled => 487,
            EndReason::NoRoute => 404,
            EndReason::SdpUnparsable | EndReason::NoCommonCodec => 488,
            EndReason::NoMediaPorts | EndReason::Shutdown | EndReason::TrunkUnreachable => 503,
            EndReason::AgentConnectFailed => 480,
            EndReason::WebhookReject(s)
            | EndReason::Rejected(s)
            | EndReason::Callee(s)
            | EndReason::AuthFailed(s) => *s,
            // We cancelled: the callee's INVITE got 487.
            EndReason::RingTimeout => 487,
            // The callee's 200 came without SDP; we hung up.
            EndReason::NoSdpAnswer => 200,
            EndReason::Webhook(f) => f.sip_status(),
            EndReason::Policy { status, .. } => *status,
            EndReason::InternalError => 500,
            // Hung up while ringing: the endpoint answers the INVITE with 480.
            EndReason::AgentHangup
            | EndReason::AgentDisconnected
            | EndReason::RtpTimeout
            | EndReason::DurationCap
            | EndReason::MinutesCap
            | EndReason::ApiHangup
            | EndReason::TimeLimit
            | EndReason::Transferred
            | EndReason::Target(_)
            | EndReason::LocalHangup => 480,
            EndReason::CallerHangup
            | EndReason::CalleeHangup
            | EndReason::TargetHangup
            | EndReason::NoAck
            | EndReason::SessionExpired
            | EndReason::GatewayRestart
            | EndReason::EndedBeforeAnswer => return None,
        })
    }

    /// The record's `sip_status`: 200 for an answered call, else the final INVITE status.
    pub fn sip_status(&self, answered: bool) -> Option<u16> {
        if answered {
            Some(200)
        } else {
            self.reject_status()
        }
    }

    /// The call status once ended.
    pub fn call_status(&self, answered: bool) -> CallStatus {
        if answered {
            return CallStatus::Completed;
        }
        match self {
            EndReason::Canceled | EndReason::ApiHangup => CallStatus::Canceled,
            EndReason::RingTimeout => CallStatus::NoAnswer,
            EndReason::Callee(408 | 480 | 487) => CallStatus::NoAnswer,
            EndReason::AuthFailed(_) | EndReason::NoSdpAnswer => CallStatus::Failed,
            _ => match self.reject_status() {
                Some(486 | 600) => CallStatus::Busy,
                _ => CallStatus::Failed,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let rows: Vec<(EndReason, bool, &str, Option<u16>, CallStatus)> = vec![
            (
                EndReason::CallerHangup,
                true,
                "caller_hangup",
                Some(200),
                CallStatus::Completed,
            ),
            (
                EndReason::ApiHangup,
                true,
                "api_hangup",
                Some(200),
                CallStatus::Completed,
            ),
            (
                EndReason::ApiHangup,
                false,
                "api_hangup",
                Some(480),
                CallStatus::Canceled,
            ),
            (
                EndReason::Canceled,
                false,
                "canceled",
                Some(487),
                CallStatus::Canceled,
            ),
            (
                EndReason::NoRoute,
                false,
                "no_route",
                Some(404),
                CallStatus::Failed,
            ),
            (
                EndReason::WebhookReject(486),
                false,
                "webhook_reject",
                Some(486),
                CallStatus::Busy,
            ),
            (
                EndReason::Webhook(WebhookFailure::Timeout),
                false,
                "webhook_timeout",
                Some(480),
                CallStatus::Failed,
            ),
            (
                EndReason::Policy {
                    reason: RejectReason::Busy,
                    status: 486,
                },
                false,
                "policy_busy",
                Some(486),
                CallStatus::Busy,
            ),
            (
                EndReason::Shutdown,
                false,
                "shutdown",
                Some(503),
                CallStatus::Failed,
            ),
            (
                EndReason::SessionExpired,
                true,
                "session_expired",
                Some(200),
                CallStatus::Completed,
            ),
            (
                EndReason::GatewayRestart,
                true,
                "gateway_restart",
                Some(200),
                CallStatus::Completed,
            ),
            (
                EndReason::CalleeHangup,
                true,
                "callee_hangup",
                Some(200),
                CallStatus::Completed,
            ),
            (
                EndReason::TimeLimit,
                true,
                "time_limit",
                Some(200),
                CallStatus::Completed,
            ),
            (
                EndReason::Callee(486),
                false,
                "callee_busy",
                Some(486),
                CallStatus::Busy,
            ),
            (
                EndReason::Callee(600),
                false,
                "callee_busy",
                Some(600),
                CallStatus::Busy,
            ),
            (
                EndReason::Callee(408),
                false,
                "no_answer",
                Some(408),
                CallStatus::NoAnswer,
            ),
            (
                EndReason::Callee(480),
                false,
                "no_answer",
                Some(480),
                CallStatus::NoAnswer,
            ),
            (
                EndReason::Callee(487),
                false,
                "no_answer",
                Some(487),
                CallStatus::NoAnswer,
            ),
            (
                EndReason::Callee(302),
                false,
                "redirected",
                Some(302),
                CallStatus::Failed,
            ),
            (
                EndReason::Callee(503),
                false,
                "callee_rejected",
                Some(503),
                CallStatus::Failed,
            ),
            (
                EndReason::Callee(603),
                false,
                "callee_rejected",
                Some(603),
                CallStatus::Failed,
            ),
            (
                EndReason::RingTimeout,
                false,
                "ring_timeout",
                Some(487),
                CallStatus::NoAnswer,
            ),
            (
                EndReason::AuthFailed(407),
                false,
                "auth_failed",
                Some(407),
                CallStatus::Failed,
            ),
            (
                EndReason::NoSdpAnswer,
                false,
                "no_sdp_answer",
                Some(200),
                CallStatus::Failed,
            ),
        ];
        for (r, answered, name, sip, status) in rows {
            assert_eq!(r.as_str(), name);
            assert_eq!(r.sip_status(answered), sip, "{name}");
            assert_eq!(r.call_status(answered), status, "{name}");
        }
    }
}
