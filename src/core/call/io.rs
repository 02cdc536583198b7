//! The call machine's vocabulary with its driver: the inputs it is fed (each with its leg),
//! the notices it reports, the commands it gives, and the finished call it hands back.
//!
//! Must not: hold behaviour (the machine in `mod.rs` and its parts decide everything).

use std::net::SocketAddr;

use super::leg::LegId;
use super::{transfer, CallView, Command, EndReason};
use crate::core::agent::{WsIn, WsOut};
use crate::core::hooks::answer::WebhookAnswer;
use crate::core::hooks::request::IncomingCall as WebhookRequest;
use crate::core::hooks::WebhookFailure;
use crate::core::media::vad::Segment;
use crate::core::policy::CutReason;
use crate::core::sip::endpoint::{CallCommand, CallEvent};

/// One input, with its leg where it has one.
#[derive(Debug)]
pub enum Input<'a> {
    /// A SIP event of the leg's dialog (ACK, re-INVITE, INFO, its end).
    Sip {
        leg: LegId,
        event: CallEvent,
    },
    /// One RTP datagram for the leg, borrowed from the driver's buffer.
    Rtp {
        leg: LegId,
        data: &'a [u8],
        from: SocketAddr,
    },
    /// The leg's RTP port was leased (`None`: the pool is exhausted).
    Port {
        leg: LegId,
        port: Option<u16>,
    },
    AgentConnected {
        leg: LegId,
    },
    AgentConnectFailed {
        leg: LegId,
        error: String,
    },
    /// One WebSocket message from the agent, borrowed.
    AgentMessage {
        leg: LegId,
        msg: WsIn<'a>,
    },
    /// The agent's WebSocket closed or failed.
    AgentClosed {
        leg: LegId,
    },
    Webhook(Result<WebhookAnswer, WebhookFailure>),
    Command(Command),
    /// The PBX notification of a `notify` transfer: the POST's status, or why it failed.
    NotifyResult(Result<u16, String>),
    /// Admission ends the call (duration cap, daily minutes).
    Cut(CutReason),
    /// The gateway is shutting down: end the call now.
    Shutdown,
}

/// Happenings the driver reports on (callbacks, journal, registry, logs, metrics).
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// 180 Ringing was sent.
    Ringing,
    /// 200 OK was sent: the call is answered.
    Answered,
    /// The caller acknowledged the answer.
    Acked,
    /// A DTMF digit from the caller.
    Dtmf(char),
    /// Time to checkpoint the running call.
    Checkpoint,
    /// A transfer's progress (`call.transfer`).
    Transfer(transfer::Progress),
    /// Agent audio was dropped (queue full) / an agent message was malformed / ignored.
    AgentAudioDropped,
    AgentFrameError(String),
    AgentEventIgnored(String),
    /// Agent DTMF could not be sent (no telephone-event negotiated, or queue full).
    DtmfDropped,
    /// The agent dropped and is being reconnected once.
    AgentReconnecting,
    /// The bridged leg's state changed (answered, failed): see the view's `bridge`.
    Bridged,
}

/// One command for the driver.
#[derive(Debug)]
pub enum Output {
    Sip {
        leg: LegId,
        cmd: CallCommand,
    },
    /// Lease an RTP port for the leg; answer with [`Input::Port`].
    LeasePort {
        leg: LegId,
    },
    /// Open the agent's WebSocket; answer with `AgentConnected` / `AgentConnectFailed`.
    ConnectAgent {
        leg: LegId,
        url: String,
    },
    AgentSend {
        leg: LegId,
        msg: WsOut,
    },
    /// Close the agent's WebSocket (its stop message, if any, was sent before).
    CloseAgent {
        leg: LegId,
    },
    /// Ask the webhook; answer with [`Input::Webhook`].
    AskWebhook(Box<WebhookRequest>),
    /// A `notify` transfer: POST the trunk's PBX notification for a transfer to `to`; answer
    /// with [`Input::NotifyResult`].
    NotifyPbx {
        to: String,
    },
    /// Send the INVITE of an outbound call with this SDP offer (the driver knows the rest:
    /// trunk, numbers, credentials); its events come back as [`Input::Sip`].
    Dial {
        leg: LegId,
        offer: Vec<u8>,
        /// Whom to dial, for a leg other than the call's own callee (a bridge's target).
        to: Option<String>,
    },
    Notice(Notice),
    /// The call is over (no more outputs follow): its end and view.
    Ended(Box<Ended>),
}

/// A finished call, for its record.
#[derive(Debug, Clone)]
pub struct Ended {
    pub reason: EndReason,
    /// How the caller's dialog ended, as the endpoint saw it.
    pub sip_end: Option<crate::core::sip::endpoint::EndReason>,
    pub view: CallView,
    pub caller_talk: Vec<Segment>,
    pub agent_talk: Vec<Segment>,
    pub rtp_in: u64,
    pub rtp_out: u64,
    /// The caller's RTP packets lost on the way in (sequence gaps).
    pub rtp_lost: u64,
    /// Packets SRTP refused on the call's legs (forged, replayed, wrongly keyed, malformed).
    pub srtp_refused: u64,
}
