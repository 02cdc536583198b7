//! The per-call machine (ARCHITECTURE.md §3): a call is a set of legs — the caller's SIP leg,
//! an agent leg (WebSocket dialect or the built-in echo), a bridged SIP leg ([`bridge`]) — and a
//! route between them.
//!
//! Owns: a call's lifecycle from admission to its record (routing by webhook or static
//! route, SDP, answering, media between the legs, every way a call ends), its [`CallId`],
//! the one end-reason table ([`end`]), the view the API and the callbacks show ([`view`]) and
//! the billing rule ([`billing`]).
//! Must not: touch sockets, tasks, timers or the clock (`now` is always passed in), or know
//! about the endpoint's transactions (a SIP leg speaks in endpoint call commands and events).

pub mod billing;
pub mod end;
pub mod view;

pub use end::EndReason;
pub use io::{Ended, Input, Notice, Output};
pub use view::{CallStatus, CallView, Direction};

/// A call's id: minted once at admission, the same in the API, the records, the webhook and
/// every agent dialect's start message (twilio `callSid`). Twilio's shape (`CA` + 32 hex), so
/// agents and SDKs that check a CallSid accept it.
///
/// Held inline (no allocation) when it is no longer than a minted id: the registry keeps
/// two copies of every call's id for the whole retention, and small allocations made during
/// a burst of calls and kept long after it pin heap pages that could otherwise be returned.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CallId(Repr);

/// Bytes in a minted id (`CA` + 32 hex digits).
const INLINE: usize = 34;

/// Inline for any id of up to [`INLINE`] bytes, boxed only beyond (never two forms for one
/// string, so the derived `Eq` and `Hash` are those of the text).
#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl CallId {
    /// The id for 128 random bits (the shell supplies the randomness).
    pub fn from_random(bits: u128) -> Self {
        Self::from_str(&format!("CA{bits:032x}"))
    }

    /// An id read back from a record or a URL (any string; unknown ids simply match nothing).
    pub fn from_string(s: String) -> Self {
        if s.len() <= INLINE {
            Self::from_str(&s)
        } else {
            CallId(Repr::Heap(s.into_boxed_str()))
        }
    }

    fn from_str(s: &str) -> Self {
        if s.len() > INLINE {
            return CallId(Repr::Heap(s.into()));
        }
        let mut bytes = [0u8; INLINE];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        CallId(Repr::Inline {
            len: s.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Always the bytes of a `&str` cut at its own length: valid UTF-8.
            Repr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Repr::Heap(s) => s,
        }
    }
}

impl std::fmt::Debug for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallId({:?})", self.as_str())
    }
}

impl PartialOrd for CallId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for CallId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the control API (or anything else outside the call) asks a call to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// End the call: BYE once answered, a final response while ringing. `end_reason`
    /// `api_hangup`.
    Hangup,
    /// RFC 4733 digits to the caller (`0-9 * # A-D`, validated by the sender).
    Dtmf { digits: String },
    /// Transfer the call ([`transfer`]); how it goes is told as [`Notice::Transfer`].
    Transfer(transfer::Request),
}

mod agent_side;
pub mod bridge;
pub mod dial;
mod frames;
mod io;
pub mod leg;
pub mod media;
pub mod record_tap;
mod setup;
#[cfg(test)]
mod tests;
pub mod transfer;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::core::agent::StreamMeta;
use crate::core::hooks::request::IncomingCall as WebhookRequest;
use crate::core::media::vad::Segment;
use crate::core::policy::CutReason;
use crate::core::sip::endpoint::{CallCommand, EndReason as SipEnd};
use crate::core::sip::sdp::{AnswerParams, SrtpUse};
use leg::{AgentLeg, AnswerLeg, Answerer, LegId};
use media::{RtpSeed, SipMedia};

/// How calls behave, from the configuration (fixed for the call's life).
#[derive(Debug, Clone)]
pub struct Settings {
    /// No RTP from an active (not held) caller for this long ends the call.
    pub rtp_timeout: Duration,
    /// An agent whose WebSocket drops is reconnected once (else the call ends).
    pub reconnect_agent: bool,
    /// Our SDP: codecs, address, ptime, session id (the port comes with the lease), and the
    /// SRTP mode and key material of the caller's (or callee's) leg.
    pub answer: AnswerParams,
    /// SRTP toward a bridged leg (its trunk's `outbound.srtp`); its key is derived from the
    /// call's material, never the same as the first leg's.
    pub bridge_srtp: SrtpUse,
    /// How often an answered call's running state is checkpointed (`None`: never).
    pub checkpoint_every: Option<Duration>,
    /// `accountSid` / `accountId` in agent start messages.
    pub account_id: String,
    /// How an answered call is billed (`[billing]`).
    pub billing: billing::Rule,
}

/// What admission and routing decided about a new call.
#[derive(Debug, Clone)]
pub struct Setup {
    pub id: CallId,
    pub direction: Direction,
    /// The wall time at `now` of [`Call::new`] (timestamps in views are derived from it).
    pub started_wall: jiff::Timestamp,
    /// E.164 caller and dialled numbers, computed once at admission.
    pub from: Option<String>,
    pub to: Option<String>,
    pub did: Option<String>,
    pub crt: Option<String>,
    /// Extension headers kept from the INVITE (e.g. `X-Workspace-ID`).
    pub headers: Vec<(String, String)>,
    /// The caller's SDP offer (`None`: late offer).
    pub offer: Option<Vec<u8>>,
    pub route: Route,
    /// How transfers go (the trunk's `transfer`).
    pub transfer: transfer::Policy,
    /// Record the call (`[recording] enabled`, the number, the API); a webhook answer's
    /// `record: true` turns it on too.
    pub record: bool,
    /// Random starting points for RTP and the agent's stream id.
    pub seed: RtpSeed,
    pub stream_id: String,
}

/// How the answering leg is found.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// Ask the webhook while the caller hears ringing; `fallback` takes over if it fails.
    Webhook {
        request: Box<WebhookRequest>,
        fallback: Option<Answerer>,
    },
    Static(Answerer),
    /// Nothing answers this number: 404.
    None,
    /// An outbound call: we dial, and the answerer takes over when the callee answers.
    Dial(Box<dial::DialPlan>),
}

/// Where the call's lifecycle stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the webhook's answer.
    Routing,
    /// The echo rings until this instant.
    Delaying(Instant),
    /// Waiting for the agent's WebSocket.
    Connecting,
    /// Waiting for the RTP port.
    Leasing,
    /// Outbound: the INVITE is out, waiting for the callee.
    Dialing,
    /// 200 OK sent (or, outbound, received); media flows.
    Answered,
    /// A final response was sent before the answer; waiting for the dialog to end.
    Rejecting,
    Ended,
}

/// One call: its legs, its route and its lifecycle.
pub struct Call {
    setup: Setup,
    settings: Settings,
    phase: Phase,
    started: Instant,
    answered_at: Option<Instant>,
    ended_at: Option<Instant>,
    ringing: bool,
    /// Why we hung up, once we decided to.
    hung_up: Option<EndReason>,
    /// Why the call ended, once it has.
    final_reason: Option<EndReason>,
    sip_end: Option<crate::core::sip::endpoint::EndReason>,
    /// The rejection sent before the answer.
    rejected: Option<EndReason>,
    /// The answering leg that takes over if the webhook fails.
    fallback: Option<Answerer>,
    /// The caller's SDP offer, parsed when the answerer was chosen.
    parsed_offer: Option<crate::core::sip::sdp::SessionDescription>,
    /// The caller's media, once a port is leased.
    media: Option<SipMedia>,
    answerer: AnswerLeg,
    next_checkpoint: Option<Instant>,
    /// Outbound calls: the plan and its deadlines.
    dialing: Option<dial::Dialing>,
    /// Ended before anything reached the endpoint: finish at the end of this input.
    finish_pending: bool,
    /// The Contact of a 3xx (outbound), for the record.
    redirect: Option<String>,
    /// The agent's start message went out (outbound calls connect after dialling).
    agent_started: bool,
    /// The transfer under way, and the latest one's state (for the view).
    transfer: Option<transfer::Active>,
    last_transfer: Option<transfer::Progress>,
    /// The dialog is confirmed (the caller's ACK came; an outbound call's 2xx was ACKed).
    confirmed: bool,
    /// A REFER waiting for the dialog to be confirmed.
    deferred_refer: Option<CallCommand>,
    /// The recording tap, when the call is recorded.
    tap: Option<record_tap::RecordTap>,
    /// The bridged SIP leg (a `bridge` transfer, click-to-call).
    bridge: Option<bridge::Bridge>,
    scratch: Vec<i16>,
    out: VecDeque<Output>,
}

impl Call {
    /// A new call, just admitted (100 Trying sent); its first outputs are queued.
    pub fn new(now: Instant, setup: Setup, settings: Settings) -> Self {
        let mut call = Call {
            settings,
            phase: Phase::Routing,
            started: now,
            answered_at: None,
            ended_at: None,
            ringing: false,
            hung_up: None,
            final_reason: None,
            sip_end: None,
            rejected: None,
            fallback: None,
            parsed_offer: None,
            media: None,
            answerer: AnswerLeg::None,
            next_checkpoint: None,
            dialing: None,
            finish_pending: false,
            redirect: None,
            agent_started: false,
            transfer: None,
            last_transfer: None,
            confirmed: false,
            deferred_refer: None,
            tap: None,
            bridge: None,
            scratch: Vec::with_capacity(640),
            out: VecDeque::new(),
            setup,
        };
        if call.setup.record {
            // Click-to-call: the client (the bridged leg) left, the manager right.
            let click = matches!(&call.setup.route,
                Route::Dial(p) if matches!(p.answerer, dial::OnAnswer::Bridge { .. }));
            call.tap = Some(if click {
                record_tap::RecordTap::swapped()
            } else {
                record_tap::RecordTap::new()
            });
        }
        call.route(now);
        call
    }

    pub fn id(&self) -> &CallId {
        &self.setup.id
    }

    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    pub fn is_answered(&self) -> bool {
        self.answered_at.is_some()
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Instant, input: Input<'_>) {
        if self.phase == Phase::Ended {
            return;
        }
        match input {
            Input::Sip {
                leg: bridge::BRIDGED,
                event,
            } => self.bridge_sip(now, event),
            Input::Sip { event, .. } => self.on_sip(now, event),
            Input::Rtp {
                leg: bridge::BRIDGED,
                data,
                from,
            } => self.bridge_rtp(now, data, from),
            Input::Rtp { data, from, .. } => self.on_rtp(now, data, from),
            Input::Port {
                leg: bridge::BRIDGED,
                port,
            } => self.bridge_on_port(now, port),
            Input::Port { port, .. } => self.on_port(now, port),
            Input::AgentConnected { .. } => self.on_agent_connected(now),
            Input::AgentConnectFailed { error, .. } => self.on_agent_connect_failed(now, &error),
            Input::AgentMessage { msg, .. } => self.on_agent_message(now, msg),
            Input::AgentClosed { .. } => self.on_agent_gone(now),
            Input::Webhook(answer) => self.on_webhook(now, answer),
            Input::Command(Command::Hangup) => self.hangup(EndReason::ApiHangup),
            Input::Command(Command::Dtmf { digits }) => self.send_dtmf(&digits),
            Input::Command(Command::Transfer(req)) => self.start_transfer(now, req),
            Input::NotifyResult(result) => self.on_notify_result(now, result),
            Input::Cut(CutReason::CallDuration) => self.hangup(EndReason::DurationCap),
            Input::Cut(CutReason::DailyMinutes) => self.hangup(EndReason::MinutesCap),
            Input::Shutdown => self.hangup(EndReason::Shutdown),
        }
        if std::mem::take(&mut self.finish_pending) && self.phase != Phase::Ended {
            self.finish(now);
        }
    }

    /// Timers: the next media frame, the echo's answer delay, checkpoints.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Phase::Delaying(until) = self.phase {
            if now >= until {
                self.lease_port();
            }
        }
        if self.dialing.is_some() {
            self.dial_timeout(now);
        }
        if self.transfer.is_some() {
            self.transfer_timeout(now);
        }
        if self.bridge.is_some() && self.phase == Phase::Answered {
            self.bridge_timeout(now);
        }
        if self.phase == Phase::Answered {
            if self.next_checkpoint.is_some_and(|at| now >= at) {
                self.next_checkpoint = self.settings.checkpoint_every.map(|every| now + every);
                self.out.push_back(Output::Notice(Notice::Checkpoint));
            }
            if self
                .media
                .as_ref()
                .is_some_and(|m| now >= m.next_frame_at())
            {
                self.tick(now);
            }
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The next RTP packet to send and its leg, if one was built (drain after every input
    /// and timeout).
    pub fn poll_transmit(&mut self) -> Option<(LegId, SocketAddr, &[u8])> {
        if self.media.as_ref().is_some_and(|m| m.packet_to.is_some()) {
            let media = self.media.as_mut()?;
            let to = media.packet_to.take()?;
            return Some((leg::CALLER, to, &media.packet));
        }
        let (to, packet) = self.bridge_transmit()?;
        Some((bridge::BRIDGED, to, packet))
    }

    /// A chunk of the recording (interleaved stereo, caller left), when one is ready; at the
    /// end, with `rest`, whatever is left.
    pub fn take_recording(&mut self, rest: bool) -> Option<Vec<i16>> {
        let tap = self.tap.as_mut()?;
        if rest {
            tap.take_rest()
        } else {
            tap.take()
        }
    }

    /// Whether the call is recorded.
    pub fn is_recorded(&self) -> bool {
        self.tap.is_some()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        match self.phase {
            Phase::Delaying(until) => at(until),
            Phase::Answered => {
                if let Some(m) = &self.media {
                    at(m.next_frame_at());
                }
                if let Some(c) = self.next_checkpoint {
                    at(c);
                }
            }
            _ => {}
        }
        if let Some(t) = self.dial_deadline() {
            at(t);
        }
        if let Some(t) = self.transfer_deadline() {
            at(t);
        }
        if self.phase == Phase::Answered {
            if let Some(t) = self.bridge_deadline() {
                at(t);
            }
        }
        next
    }

    /// The call as the API shows it now.
    pub fn view(&self, now: Instant) -> CallView {
        let wall = |t: Instant| -> String {
            let offset = t.saturating_duration_since(self.started);
            self.setup
                .started_wall
                .checked_add(offset)
                .unwrap_or(self.setup.started_wall)
                .to_string()
        };
        let s = &self.setup;
        let mut v = CallView::new(s.id.as_str(), s.direction, s.started_wall.to_string());
        v.from = s.from.clone();
        v.to = s.to.clone();
        v.did = s.did.clone();
        v.crt = s.crt.clone();
        v.transfer = self.last_transfer.clone();
        v.bridge = self.bridge_view();
        v.answered_at = self.answered_at.map(wall);
        v.ended_at = self.ended_at.map(wall);
        v.status = match (self.phase, self.answered_at) {
            (Phase::Ended, _) => self.end_reason().call_status(self.is_answered()),
            (_, Some(_)) => CallStatus::InProgress,
            _ if self.ringing => CallStatus::Ringing,
            _ => CallStatus::Queued,
        };
        if let Some(a) = self.answered_at {
            let end = self.ended_at.unwrap_or(now);
            v.duration_s = end.saturating_duration_since(a).as_secs_f64();
        }
        let (caller, agent) = self.talk();
        billing::settle(&mut v, caller, agent, self.settings.billing);
        if self.phase == Phase::Ended {
            let reason = self.end_reason();
            v.end_reason = Some(reason.as_str());
            // What the caller actually got, where the endpoint says.
            v.redirect_contact = self.redirect.clone();
            v.sip_status = match self.sip_end {
                Some(SipEnd::Rejected(s)) if !self.is_answered() => Some(s),
                Some(SipEnd::Refused(s) | SipEnd::AuthFailed(s)) if !self.is_answered() => Some(s),
                Some(SipEnd::Canceled) => Some(487),
                _ => reason.sip_status(self.is_answered()),
            };
        }
        v
    }

    /// The talk segments so far (caller, agent), for billing and checkpoints.
    pub fn talk(&self) -> (&[Segment], &[Segment]) {
        match &self.media {
            Some(m) => (m.caller_vad.segments(), m.agent_vad.segments()),
            None => (&[], &[]),
        }
    }

    fn end_reason(&self) -> EndReason {
        self.final_reason
            .clone()
            .or_else(|| self.hung_up.clone())
            .or_else(|| self.rejected.clone())
            .unwrap_or(EndReason::EndedBeforeAnswer)
    }

    fn sip(&mut self, cmd: CallCommand) {
        self.out.push_back(Output::Sip {
            leg: leg::CALLER,
            cmd,
        });
    }

    fn notice(&mut self, n: Notice) {
        self.out.push_back(Output::Notice(n));
    }

    /// Wall-clock Unix milliseconds at `now` (agent dialects stamp messages with it).
    fn wall_ms(&self, now: Instant) -> u64 {
        let base = self.setup.started_wall.as_millisecond().max(0) as u64;
        base + now.saturating_duration_since(self.started).as_millis() as u64
    }

    fn stream_meta(&self, t: &leg::AgentTarget) -> StreamMeta {
        let s = &self.setup;
        StreamMeta {
            call_id: s.id.to_string(),
            stream_id: s.stream_id.clone(),
            account_id: self.settings.account_id.clone(),
            from: s.from.clone(),
            to: s.to.clone(),
            did: s.did.clone(),
            crt: s.crt.clone(),
            direction: match s.direction {
                Direction::Inbound => "inbound".into(),
                Direction::Outbound => "outbound".into(),
            },
            custom_parameters: t.parameters.clone(),
            extra_headers: t.extra_headers.clone(),
            headers: s.headers.clone(),
            sample_rate: t.sample_rate,
            encoding: t.encoding,
        }
    }

    fn agent_leg(&mut self) -> Option<&mut AgentLeg> {
        match &mut self.answerer {
            AnswerLeg::Agent(a) => Some(a),
            _ => None,
        }
    }
}
