//! The scenario harness: builds a [`Setup`] and [`Settings`], feeds the machine the inputs a
//! real call gets (in the driver's order, `src/app/call.rs`), steps a virtual clock through
//! `poll_timeout` / `handle_timeout`, and records every output and transmitted packet in one
//! timeline of comparable [`Ev`]s.
//!
//! Must not: read the real clock beyond the one base `Instant::now()`, or sleep.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::core::agent::{AudioEncoding, Dialect, WsIn, WsOut};
pub use crate::core::call::bridge::BRIDGED;
use crate::core::call::leg::{AgentTarget, Answerer, ANSWERER, CALLER};
use crate::core::call::media::RtpSeed;
use crate::core::call::{
    Call, CallId, Direction, Ended, Input, Notice, Output, Route, Settings, Setup,
};
use crate::core::hooks::answer::WebhookAnswer;
use crate::core::hooks::request::IncomingCall as WebhookRequest;
use crate::core::hooks::WebhookFailure;
use crate::core::media::dtmf::DtmfSender;
use crate::core::media::{g711, rtp};
use crate::core::sip::endpoint::{CallCommand, CallEvent, EndReason as SipEnd};
use crate::core::sip::sdp::{self, AnswerParams, Codec};

/// Where the caller's RTP comes from (the offer's `c=` and `m=`).
pub const CALLER_RTP: &str = "198.51.100.7:23456";
/// The RTP port the harness leases.
pub const PORT: u16 = 40000;
pub const AGENT_URL: &str = "ws://agent.test/stream";
/// The wall time of the call's start.
pub const STARTED: &str = "2024-05-01T12:00:00Z";
pub const CALL_ID: &str = "CA000000000000000000000000000000ab";
pub const RTP_TIMEOUT: Duration = Duration::from_secs(30);
/// The first RTP sequence number and timestamp we send.
pub const SEED_SEQ: u16 = 1000;
pub const SEED_TS: u32 = 5000;

/// PCMU + telephone-event 101, sendrecv, 20 ms.
pub const OFFER: &str = "v=0\r\n\
o=caller 1 1 IN IP4 198.51.100.7\r\n\
s=-\r\n\
c=IN IP4 198.51.100.7\r\n\
t=0 0\r\n\
m=audio 23456 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// [`OFFER`] with another direction attribute (`"sendonly"`, `"recvonly"`, `"inactive"`).
pub fn offer_with(direction: &str) -> String {
    OFFER.replace("a=sendrecv", &format!("a={direction}"))
}

pub fn caller_addr() -> SocketAddr {
    CALLER_RTP.parse().expect("address")
}

pub fn target(dialect: Dialect) -> AgentTarget {
    AgentTarget {
        url: AGENT_URL.into(),
        dialect,
        sample_rate: 8000,
        encoding: AudioEncoding::L16,
        parameters: Vec::new(),
        extra_headers: None,
    }
}

pub fn raw_agent() -> Answerer {
    Answerer::Agent(target(Dialect::Raw))
}

pub fn echo(delay: Option<Duration>) -> Answerer {
    Answerer::Echo {
        answer_delay: delay,
    }
}

pub fn webhook_route(fallback: Option<Answerer>) -> Route {
    Route::Webhook {
        request: Box::new(WebhookRequest {
            call_id: CALL_ID.into(),
            sip_call_id: "sip-1@198.51.100.7".into(),
            ..WebhookRequest::default()
        }),
        fallback,
    }
}

/// An outbound call placed through the API.
pub fn outbound(plan: crate::core::call::dial::DialPlan) -> H {
    let mut s = setup(Route::Dial(Box::new(plan)));
    s.direction = Direction::Outbound;
    s.offer = None;
    H::new(s, settings())
}

/// What a callee answers to our offer: PCMA + telephone-event 101, from [`CALLER_RTP`].
pub const CALLEE_ANSWER: &str = "v=0\r\n\
o=callee 1 1 IN IP4 198.51.100.7\r\n\
s=-\r\n\
c=IN IP4 198.51.100.7\r\n\
t=0 0\r\n\
m=audio 23456 RTP/AVP 8 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=sendrecv\r\n";

pub fn setup(route: Route) -> Setup {
    Setup {
        id: CallId::from_string(CALL_ID.into()),
        direction: Direction::Inbound,
        started_wall: STARTED.parse().expect("timestamp"),
        from: Some("+15550001111".into()),
        to: Some("+15550002222".into()),
        did: None,
        crt: None,
        headers: Vec::new(),
        offer: Some(OFFER.as_bytes().to_vec()),
        route,
        transfer: crate::core::call::transfer::Policy::default(),
        record: false,
        seed: RtpSeed {
            seq: SEED_SEQ,
            ts: SEED_TS,
            ssrc: 0x1234_5678,
        },
        stream_id: "MZ0001".into(),
    }
}

pub fn settings() -> Settings {
    Settings {
        rtp_timeout: RTP_TIMEOUT,
        reconnect_agent: false,
        answer: AnswerParams {
            prefs: vec![Codec::Pcmu, Codec::Pcma],
            address: [192, 0, 2, 1].into(),
            port: 0,
            ptime_ms: 20,
            session_id: 7,
            session_version: 1,
            user: "trunkgate".into(),
            srtp: Default::default(),
        },
        bridge_srtp: Default::default(),
        checkpoint_every: None,
        account_id: "ACtest".into(),
        billing: crate::core::call::billing::Rule {
            minimum_s: 60,
            increment_s: 1,
            exclude_silence: false,
        },
    }
}

/// One transmitted RTP packet, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Pkt {
    /// Virtual time since the call's start.
    pub at: Duration,
    pub to: SocketAddr,
    pub header: rtp::RtpHeader,
    pub payload: Vec<u8>,
}

impl Pkt {
    /// All of the payload is G.711 μ-law silence.
    pub fn is_silence(&self) -> bool {
        self.payload.iter().all(|b| *b == g711::ULAW_SILENCE)
    }
}

/// One thing the machine did, comparable.
#[derive(Debug, Clone, PartialEq)]
pub enum Ev {
    Sip(CallCommand),
    Lease,
    Connect(String),
    Send(WsOut),
    Close,
    /// The webhook was asked about the call with this id.
    Webhook(String),
    Notice(Notice),
    Rtp(Pkt),
    /// `Output::Ended` (its content is in [`H::ended`]).
    Ended,
    /// An outbound call's INVITE with this offer.
    Dial(Vec<u8>),
    /// A `notify` transfer's PBX notification for this target.
    NotifyPbx(String),
    /// The bridged leg's: SIP command, port lease, INVITE (target, offer), RTP packet.
    BridgeSip(CallCommand),
    BridgeLease,
    BridgeDial(String, Vec<u8>),
    BridgeRtp(Pkt),
}

/// A call machine on a virtual clock.
pub struct H {
    pub call: Call,
    pub base: Instant,
    pub now: Instant,
    log: Vec<Ev>,
    pub ended: Option<Box<Ended>>,
    leases: usize,
    connects: usize,
    webhooks: usize,
    rtp_seq: u16,
    rtp_ts: u32,
}

impl H {
    pub fn new(setup: Setup, settings: Settings) -> Self {
        let base = Instant::now();
        let call = Call::new(base, setup, settings);
        let mut h = H {
            call,
            base,
            now: base,
            log: Vec::new(),
            ended: None,
            leases: 0,
            connects: 0,
            webhooks: 0,
            rtp_seq: 1,
            rtp_ts: 0,
        };
        h.drain();
        h
    }

    pub fn with_route(route: Route) -> Self {
        H::new(setup(route), settings())
    }

    /// Virtual time since the call's start.
    pub fn at(&self) -> Duration {
        self.now - self.base
    }

    /// What the driver does after every input: packets first, then the outputs.
    fn drain(&mut self) {
        loop {
            while let Some((leg, to, data)) = self.call.poll_transmit() {
                let p = rtp::parse(data).expect("we send valid RTP");
                let pkt = Pkt {
                    at: self.now - self.base,
                    to,
                    header: p.header,
                    payload: p.payload.to_vec(),
                };
                self.log.push(match leg {
                    BRIDGED => Ev::BridgeRtp(pkt),
                    _ => Ev::Rtp(pkt),
                });
            }
            let Some(out) = self.call.poll_output() else {
                return;
            };
            assert!(self.ended.is_none(), "output after Ended: {out:?}");
            let ev = match out {
                Output::Sip { leg: BRIDGED, cmd } => Ev::BridgeSip(cmd),
                Output::Sip { leg, cmd } => {
                    assert_eq!(leg, CALLER);
                    Ev::Sip(cmd)
                }
                Output::LeasePort { leg: BRIDGED } => Ev::BridgeLease,
                Output::LeasePort { leg } => {
                    assert_eq!(leg, CALLER);
                    self.leases += 1;
                    Ev::Lease
                }
                Output::ConnectAgent { leg, url } => {
                    assert_eq!(leg, ANSWERER);
                    self.connects += 1;
                    Ev::Connect(url)
                }
                Output::AgentSend { leg, msg } => {
                    assert_eq!(leg, ANSWERER);
                    Ev::Send(msg)
                }
                Output::NotifyPbx { to } => Ev::NotifyPbx(to),
                Output::CloseAgent { leg } => {
                    assert_eq!(leg, ANSWERER);
                    Ev::Close
                }
                Output::AskWebhook(req) => {
                    self.webhooks += 1;
                    Ev::Webhook(req.call_id.clone())
                }
                Output::Dial {
                    leg: BRIDGED,
                    offer,
                    to,
                } => Ev::BridgeDial(to.unwrap_or_default(), offer),
                Output::Dial { leg, offer, to } => {
                    assert_eq!((leg, to), (CALLER, None));
                    Ev::Dial(offer)
                }
                Output::Notice(n) => Ev::Notice(n),
                Output::Ended(e) => {
                    self.ended = Some(e);
                    Ev::Ended
                }
            };
            self.log.push(ev);
        }
    }

    pub fn input(&mut self, input: Input<'_>) {
        self.call.handle(self.now, input);
        self.drain();
    }

    /// Runs the timers up to `offset` after the call's start, then sets the clock there.
    pub fn advance_to(&mut self, offset: Duration) {
        let target = self.base + offset;
        assert!(target >= self.now, "the virtual clock only moves forward");
        let mut last = None;
        while let Some(t) = self.call.poll_timeout() {
            if t > target {
                break;
            }
            assert_ne!(Some(t), last, "the timer did not move after firing");
            last = Some(t);
            self.now = self.now.max(t);
            self.call.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
    }

    pub fn advance(&mut self, d: Duration) {
        let to = self.at() + d;
        self.advance_to(to);
    }

    /// Everything recorded since the last take.
    pub fn take(&mut self) -> Vec<Ev> {
        std::mem::take(&mut self.log)
    }

    pub fn sip(&mut self, event: CallEvent) {
        self.input(Input::Sip { leg: CALLER, event });
    }

    /// The endpoint reports the dialog's end; the call must end with it.
    pub fn dialog_ends(&mut self, r: SipEnd) -> &Ended {
        self.sip(CallEvent::Ended(r));
        self.ended.as_deref().expect("the call ended")
    }

    /// Answers the machine's `LeasePort`, as the driver does.
    pub fn lease(&mut self, port: Option<u16>) {
        assert!(self.leases > 0, "no LeasePort asked for");
        self.leases -= 1;
        self.input(Input::Port { leg: CALLER, port });
    }

    /// Answers the machine's `ConnectAgent`: the WebSocket is up.
    pub fn agent_up(&mut self) {
        assert!(self.connects > 0, "no ConnectAgent asked for");
        self.connects -= 1;
        self.input(Input::AgentConnected { leg: ANSWERER });
    }

    pub fn agent_fails(&mut self) {
        assert!(self.connects > 0, "no ConnectAgent asked for");
        self.connects -= 1;
        let error = "connection refused".to_string();
        self.input(Input::AgentConnectFailed {
            leg: ANSWERER,
            error,
        });
    }

    pub fn webhook(&mut self, answer: Result<WebhookAnswer, WebhookFailure>) {
        assert!(self.webhooks > 0, "no AskWebhook asked for");
        self.webhooks -= 1;
        self.input(Input::Webhook(answer));
    }

    pub fn agent_text(&mut self, text: &str) {
        let msg = WsIn::Text(text);
        self.input(Input::AgentMessage { leg: ANSWERER, msg });
    }

    pub fn agent_binary(&mut self, bytes: &[u8]) {
        let msg = WsIn::Binary(bytes);
        self.input(Input::AgentMessage { leg: ANSWERER, msg });
    }

    /// Raw dialect: PCM16 little-endian audio.
    pub fn agent_pcm(&mut self, pcm: &[i16]) {
        self.agent_binary(&pcm16le(pcm));
    }

    pub fn caller_datagram(&mut self, data: &[u8]) {
        let from = caller_addr();
        self.input(Input::Rtp {
            leg: CALLER,
            data,
            from,
        });
    }

    /// One 20 ms PCMU packet of `pcm` from the caller (its own sequence and timestamp).
    pub fn caller_audio(&mut self, pcm: &[i16]) {
        let pkt = audio_packet(0, self.rtp_seq, self.rtp_ts, pcm);
        self.rtp_seq = self.rtp_seq.wrapping_add(1);
        self.rtp_ts = self.rtp_ts.wrapping_add(pcm.len() as u32);
        self.caller_datagram(&pkt);
    }

    /// The RFC 4733 packets of one 100 ms digit from the caller (payload type 101).
    pub fn caller_digit(&mut self, digit: char) {
        self.caller_event(digit, true);
    }

    /// A digit's RFC 4733 packets, its end packets lost unless `with_end`.
    pub fn caller_event(&mut self, digit: char, with_end: bool) {
        let packets = DtmfSender::new(8000)
            .packets(digit, 100, 20, 10)
            .expect("digit");
        let ts = self.rtp_ts;
        for p in packets.into_iter().filter(|p| with_end || !p.end) {
            let header = rtp::RtpHeader {
                marker: p.marker,
                payload_type: 101,
                sequence: self.rtp_seq,
                timestamp: ts,
                ssrc: 0xCA11,
            };
            let mut pkt = Vec::new();
            rtp::write(&header, &p.payload, &mut pkt);
            self.rtp_seq = self.rtp_seq.wrapping_add(1);
            self.caller_datagram(&pkt);
        }
        self.rtp_ts = self.rtp_ts.wrapping_add(800);
    }
}

/// A PCMU (or other `pt`) RTP packet carrying `pcm` μ-law encoded.
pub fn audio_packet(pt: u8, seq: u16, ts: u32, pcm: &[i16]) -> Vec<u8> {
    let mut payload = vec![0u8; pcm.len()];
    g711::encode_ulaw(pcm, &mut payload);
    let header = rtp::RtpHeader {
        marker: false,
        payload_type: pt,
        sequence: seq,
        timestamp: ts,
        ssrc: 0xCA11,
    };
    let mut out = Vec::new();
    rtp::write(&header, &payload, &mut out);
    out
}

/// `n` samples of a loud 400 Hz tone at 8 kHz.
pub fn tone(n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f64 / 8000.0;
            (8000.0 * (2.0 * std::f64::consts::PI * 400.0 * t).sin()) as i16
        })
        .collect()
}

pub fn pcm16le(pcm: &[i16]) -> Vec<u8> {
    pcm.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Twilio `media` with `pcm` as base64 μ-law.
pub fn twilio_media(pcm: &[i16]) -> String {
    let mut ulaw = vec![0u8; pcm.len()];
    g711::encode_ulaw(pcm, &mut ulaw);
    let payload = base64::engine::general_purpose::STANDARD.encode(ulaw);
    serde_json::json!({"event": "media", "media": {"payload": payload}}).to_string()
}

/// Everything but the RTP packets.
pub fn signalling(evs: &[Ev]) -> Vec<Ev> {
    evs.iter()
        .filter(|e| !matches!(e, Ev::Rtp(_)))
        .cloned()
        .collect()
}

pub fn packets(evs: &[Ev]) -> Vec<Pkt> {
    evs.iter()
        .filter_map(|e| match e {
            Ev::Rtp(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

pub fn sip_cmds(evs: &[Ev]) -> Vec<CallCommand> {
    evs.iter()
        .filter_map(|e| match e {
            Ev::Sip(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// The agent's text messages as JSON.
pub fn agent_json(evs: &[Ev]) -> Vec<serde_json::Value> {
    evs.iter()
        .filter_map(|e| match e {
            Ev::Send(WsOut::Text(t)) => Some(serde_json::from_str(t).expect("JSON to the agent")),
            _ => None,
        })
        .collect()
}

pub fn agent_binaries(evs: &[Ev]) -> Vec<Vec<u8>> {
    evs.iter()
        .filter_map(|e| match e {
            Ev::Send(WsOut::Binary(b)) => Some(b.clone()),
            _ => None,
        })
        .collect()
}

/// The `type` (raw) or `event` (twilio) of each text message to the agent.
pub fn agent_kinds(evs: &[Ev]) -> Vec<String> {
    agent_json(evs)
        .iter()
        .map(|v| {
            v.get("type")
                .or_else(|| v.get("event"))
                .and_then(|k| k.as_str())
                .unwrap_or("?")
                .to_string()
        })
        .collect()
}

/// The SDP of the 200 OK, parsed.
pub fn answer_sdp(evs: &[Ev]) -> sdp::SessionDescription {
    let body = sip_cmds(evs)
        .into_iter()
        .find_map(|c| match c {
            CallCommand::Answer { sdp } => Some(sdp),
            _ => None,
        })
        .expect("a 200 OK");
    sdp::parse(&String::from_utf8_lossy(&body)).expect("our SDP parses")
}

pub fn reject(status: u16) -> Ev {
    Ev::Sip(CallCommand::Reject {
        status,
        reason: None,
        headers: Vec::new(),
    })
}

/// Wall time `secs` after [`STARTED`], as views show it.
pub fn wall(secs: u64) -> String {
    wall_ms(secs * 1000)
}

pub fn wall_ms(n: u64) -> String {
    let t: jiff::Timestamp = STARTED.parse().expect("timestamp");
    t.checked_add(ms(n)).expect("in range").to_string()
}

/// A raw-dialect agent call, answered at 0 s and acknowledged; the log is empty.
pub fn answered_raw() -> H {
    answered(raw_agent(), settings())
}

pub fn answered(answerer: Answerer, settings: Settings) -> H {
    let is_agent = matches!(answerer, Answerer::Agent(_));
    let mut h = H::new(setup(Route::Static(answerer)), settings);
    if is_agent {
        h.agent_up();
    }
    h.lease(Some(PORT));
    h.sip(CallEvent::Acked { sdp: None });
    assert!(h.call.is_answered());
    h.take();
    h
}
