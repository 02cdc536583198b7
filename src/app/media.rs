//! A call's media loop: RTP in → G.711 decode → agent; agent → pacer → G.711 encode → RTP
//! out, paced by one timer from a per-call clock (the first frame of an agent turn leaves at
//! once: [`FrameClock`]); RFC 4733 DTMF both ways; symmetric RTP; RTP
//! timeout; talk detection on both sides.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

mod agent_events;

use agent_events::next_ws;

use super::agent_ws::{now_ms, WsAgent, WsTarget};
use super::{CallMsg, Ctx, EndpointMsg, GatewayEvent};
use crate::config::OnDisconnect;
use crate::core::agent::echo::EchoAgent;
// INTEGRATION(B): control commands (hangup, DTMF) from the API.
use crate::core::call::Command;
use crate::core::media::dtmf::{DtmfPacket, DtmfReceiver};
use crate::core::media::frame_clock::FrameClock;
use crate::core::media::pacer::{FrameKind, Pacer};
use crate::core::media::rechunk::Rechunker;
use crate::core::media::vad::{Segment, Vad};
use crate::core::media::{g711, rtp};
use crate::core::policy::CutReason;
use crate::core::sip::endpoint::{CallCommand, CallEvent, CallKey, EndReason};
use crate::core::sip::sdp::{self, AnswerParams, Codec, Direction, Negotiated, SessionDescription};
use crate::io::rtp_recv::RtpReceiver;

/// Agent audio queued beyond this (60 s) is refused and counted.
const MAX_QUEUED: usize = 8000 * 60;
/// RFC 4733 packets waiting to go out (about 40 digits).
const MAX_QUEUED_DTMF_PACKETS: usize = 400;

pub enum Agent {
    Echo(EchoAgent),
    Ws(Box<WsAgent>),
}

pub struct MediaSetup {
    pub call: CallKey,
    pub call_id: String,
    pub params: AnswerParams,
    pub offer: Option<SessionDescription>,
    pub rtp_timeout: Duration,
    pub on_disconnect: OnDisconnect,
    pub connect_timeout: Duration,
    /// For a reconnect after the agent drops.
    pub target: Option<WsTarget>,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("no acceptable codec: {0}")]
    Negotiation(String),
}

/// Why the media loop asked for the call to end, when it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalEnd {
    AgentHangup,
    AgentDisconnected,
    RtpTimeout,
    DurationCap,
    MinutesCap,
    // INTEGRATION(B): `POST /v1/calls/{id}/hangup` or Twilio's `Status=completed`.
    ApiHangup,
}

impl LocalEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            LocalEnd::AgentHangup => "agent_hangup",
            LocalEnd::AgentDisconnected => "agent_disconnected",
            LocalEnd::RtpTimeout => "rtp_timeout",
            LocalEnd::DurationCap => "duration_cap",
            LocalEnd::MinutesCap => "minutes_cap",
            LocalEnd::ApiHangup => "api_hangup",
        }
    }
}

/// What the media loop hands back at the end.
pub struct MediaOutcome {
    pub reason: EndReason,
    pub local_end: Option<LocalEnd>,
    pub rtp_in: u64,
    pub rtp_out: u64,
    pub caller_talk: Vec<Segment>,
    pub agent_talk: Vec<Segment>,
}

pub struct MediaSession {
    setup: MediaSetup,
    sock: UdpSocket,
    local_sdp: Vec<u8>,
    neg: Negotiated,
    remote: Option<SocketAddr>,
    seq: u16,
    ts: u32,
    ssrc: u32,
    dtmf_in: DtmfReceiver,
    dtmf_out: std::collections::VecDeque<(u32, DtmfPacket)>,
    agent: Agent,
    pacer: Pacer,
    caller_chunks: Rechunker,
    caller_vad: Vad,
    agent_vad: Vad,
    started: Instant,
    rtp_in: u64,
    rtp_out: u64,
    session_version: u64,
    hangup_sent: Option<LocalEnd>,
    reconnected: bool,
    scratch: Vec<i16>,
}

impl MediaSession {
    pub fn new(setup: MediaSetup, sock: UdpSocket, agent: Agent) -> Result<Self, MediaError> {
        let (neg, answer) = match &setup.offer {
            Some(offer) => sdp::answer(offer, &setup.params)
                .map_err(|e| MediaError::Negotiation(e.to_string()))?,
            None => {
                // Late offer: we offer PCMU/PCMA/telephone-event; the answer arrives in the ACK.
                let offer = sdp::offer(&setup.params);
                let neg = Negotiated {
                    codec: Codec::Pcmu,
                    codec_pt: 0,
                    dtmf_pt: Some(101),
                    remote: None,
                    ptime_ms: setup.params.ptime_ms,
                    direction: Direction::SendRecv,
                    audio_index: 0,
                };
                (neg, offer)
            }
        };
        let remote = neg.remote;
        let frame = (8 * neg.ptime_ms.clamp(10, 60)) as usize;
        Ok(MediaSession {
            local_sdp: answer.to_string().into_bytes(),
            neg,
            remote,
            seq: fastrand::u16(..),
            ts: fastrand::u32(..),
            ssrc: fastrand::u32(..),
            dtmf_in: DtmfReceiver::new(8000),
            dtmf_out: std::collections::VecDeque::new(),
            agent,
            pacer: Pacer::new(frame, MAX_QUEUED),
            caller_chunks: Rechunker::twenty_ms(8000),
            caller_vad: Vad::new(8000),
            agent_vad: Vad::new(8000),
            started: Instant::now(),
            rtp_in: 0,
            rtp_out: 0,
            session_version: setup.params.session_version,
            hangup_sent: None,
            reconnected: false,
            scratch: Vec::with_capacity(640),
            setup,
            sock,
        })
    }

    pub fn local_sdp(&self) -> Vec<u8> {
        self.local_sdp.clone()
    }

    fn frame_samples(&self) -> usize {
        (8 * self.neg.ptime_ms.clamp(10, 60)) as usize
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub async fn run(
        mut self,
        events: &mut mpsc::UnboundedReceiver<CallMsg>,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        ctl: &mpsc::Sender<EndpointMsg>,
        ctx: &Arc<Ctx>,
    ) -> MediaOutcome {
        let ptime = Duration::from_millis(u64::from(self.neg.ptime_ms.clamp(10, 60)));
        let mut clock = FrameClock::new(ptime);
        let mut rx = RtpReceiver::new();
        let mut pcm = vec![0i16; self.frame_samples()];
        let mut payload = vec![0u8; self.frame_samples()];
        let mut packet = Vec::with_capacity(12 + payload.len());
        let mut last_rx = Instant::now();
        self.started = Instant::now();
        let tick = tokio::time::sleep_until(self.started);
        tokio::pin!(tick);
        if let Agent::Ws(ws) = &mut self.agent {
            ws.start();
        }
        let reason = loop {
            tokio::select! {
                r = rx.recv(&self.sock) => {
                    if let Ok(n) = r {
                        last_rx = Instant::now();
                        for i in 0..n {
                            if let Some((data, from)) = rx.datagram(i) {
                                self.on_rtp(data, from, &mut pcm, ctx);
                            }
                        }
                    }
                }
                () = &mut tick => {
                    let kind = self.send_frame(&mut pcm, &mut payload, &mut packet).await;
                    clock.on_tick(kind == FrameKind::Silence);
                    tick.as_mut().reset(self.started + clock.deadline());
                    // The RTP timeout is checked on the tick (20 ms resolution) rather than
                    // with a timer re-armed for every packet. A held call is not silent.
                    let on_hold = matches!(self.neg.direction, Direction::SendOnly | Direction::Inactive)
                        || self.remote.is_none();
                    if on_hold {
                        last_rx = Instant::now();
                    } else if self.hangup_sent.is_none() && last_rx.elapsed() >= self.setup.rtp_timeout {
                        tracing::info!("RTP timeout: no media for {:?}", self.setup.rtp_timeout);
                        self.hangup(ctl, LocalEnd::RtpTimeout).await;
                    }
                }
                msg = next_ws(&mut self.agent) => {
                    self.on_agent_message(msg, ctl, ctx).await;
                    // The first frame of an agent turn goes out now, not at the next tick.
                    if self.pacer.queued_samples() >= self.frame_samples()
                        && clock.early_start(self.started.elapsed())
                    {
                        self.send_frame(&mut pcm, &mut payload, &mut packet).await;
                        tick.as_mut().reset(self.started + clock.deadline());
                    }
                }
                ev = events.recv() => match ev {
                    Some(CallMsg::Sip(CallEvent::Ended(reason))) => break reason,
                    Some(CallMsg::Sip(ev)) => self.on_event(ev, ctl, ctx).await,
                    Some(CallMsg::Cut(why)) => {
                        let end = match why {
                            CutReason::CallDuration => LocalEnd::DurationCap,
                            CutReason::DailyMinutes => LocalEnd::MinutesCap,
                        };
                        tracing::info!(reason = end.as_str(), "admission policy ends the call");
                        self.hangup(ctl, end).await;
                    }
                    None => break EndReason::LocalBye(0),
                },
                // INTEGRATION(B): the control API's commands.
                Some(cmd) = commands.recv() => match cmd {
                    Command::Hangup => {
                        tracing::info!("hung up by the control API");
                        self.hangup(ctl, LocalEnd::ApiHangup).await;
                    }
                    Command::Dtmf { digits } => self.queue_dtmf(&digits),
                },
            }
        };
        let end_ms = self.elapsed_ms();
        self.caller_vad.finish(end_ms);
        self.agent_vad.finish(end_ms);
        let local_end = self.hangup_sent;
        let agent = std::mem::replace(&mut self.agent, Agent::Echo(EchoAgent::new(8000)));
        if let Agent::Ws(ws) = agent {
            ws.stop(local_end.map_or("caller_hangup", LocalEnd::as_str));
        }
        MediaOutcome {
            reason,
            local_end,
            rtp_in: self.rtp_in,
            rtp_out: self.rtp_out,
            caller_talk: self.caller_vad.segments().to_vec(),
            agent_talk: self.agent_vad.segments().to_vec(),
        }
    }

    async fn hangup(&mut self, ctl: &mpsc::Sender<EndpointMsg>, why: LocalEnd) {
        if self.hangup_sent.is_some() {
            return;
        }
        self.hangup_sent = Some(why);
        let _ = ctl
            .send(EndpointMsg::Command {
                call: self.setup.call,
                cmd: CallCommand::Hangup,
            })
            .await;
    }

    fn on_rtp(&mut self, data: &[u8], from: SocketAddr, pcm: &mut [i16], ctx: &Arc<Ctx>) {
        let Ok(pkt) = rtp::parse(data) else { return };
        self.rtp_in += 1;
        // Symmetric RTP (RFC 4961): answer where the caller's media comes from.
        self.remote = Some(from);
        let pt = pkt.header.payload_type;
        if Some(pt) == self.neg.dtmf_pt {
            if let Some(ev) = self.dtmf_in.on_packet(pkt.header.timestamp, pkt.payload) {
                self.on_digit(ev.digit, ev.duration_ms, ctx);
            }
            // One packet can complete two events (RFC 4733 §2.5.1.5).
            while let Some(ev) = self.dtmf_in.poll_event() {
                self.on_digit(ev.digit, ev.duration_ms, ctx);
            }
            return;
        }
        if pt != self.neg.codec_pt {
            return;
        }
        // An event whose end packets were all lost is reported once audio moves past it.
        if let Some(ev) = self.dtmf_in.poll_stale(pkt.header.timestamp) {
            self.on_digit(ev.digit, ev.duration_ms, ctx);
        }
        let n = pkt.payload.len().min(pcm.len());
        let (src, dst) = (&pkt.payload[..n], &mut pcm[..n]);
        match self.neg.codec {
            Codec::Pcmu => g711::decode_ulaw(src, dst),
            Codec::Pcma => g711::decode_alaw(src, dst),
        }
        let t_ms = self.elapsed_ms();
        let MediaSession {
            caller_chunks,
            caller_vad,
            agent,
            ..
        } = self;
        caller_chunks.push(dst, |frame| {
            caller_vad.push(frame, t_ms);
            match agent {
                Agent::Echo(a) => a.on_audio(frame),
                Agent::Ws(ws) => ws.caller_audio(frame),
            }
        });
    }

    fn on_digit(&mut self, digit: char, duration_ms: u32, ctx: &Arc<Ctx>) {
        tracing::info!(%digit, "DTMF received");
        match &mut self.agent {
            Agent::Echo(a) => a.on_dtmf(digit),
            Agent::Ws(ws) => {
                let m = ws.codec.dtmf(digit, duration_ms, now_ms());
                ws.send(m);
            }
        }
        ctx.emit(GatewayEvent::Dtmf {
            call_id: self.setup.call_id.clone(),
            digit,
        });
    }

    /// Sends the next frame (agent audio, DTMF or silence); says whether it carried agent audio.
    async fn send_frame(
        &mut self,
        pcm: &mut [i16],
        payload: &mut [u8],
        packet: &mut Vec<u8>,
    ) -> FrameKind {
        let kind = match &mut self.agent {
            Agent::Echo(a) => {
                a.next_frame(pcm);
                FrameKind::Audio
            }
            Agent::Ws(_) => self.pacer.next_frame(pcm),
        };
        if kind == FrameKind::Audio {
            let t = self.elapsed_ms();
            self.agent_vad.push(pcm, t);
        }
        if let Agent::Ws(ws) = &mut self.agent {
            for mark in self.pacer.take_played_marks() {
                let m = ws.codec.mark_played(&mark, now_ms());
                ws.send(m);
            }
            ws.flush();
        }
        let samples = pcm.len() as u32;
        let sending = self.remote.is_some()
            && !matches!(
                self.neg.direction,
                Direction::RecvOnly | Direction::Inactive
            );
        if let (true, Some(remote)) = (sending, self.remote) {
            packet.clear();
            if let Some((event_ts, p)) = self.dtmf_out.pop_front() {
                // RFC 4733 events replace the audio of their frames; same SSRC and sequence.
                let header = rtp::RtpHeader {
                    marker: p.marker,
                    payload_type: self.neg.dtmf_pt.unwrap_or(101),
                    sequence: self.seq,
                    timestamp: event_ts,
                    ssrc: self.ssrc,
                };
                rtp::write(&header, &p.payload, packet);
            } else {
                match self.neg.codec {
                    Codec::Pcmu => g711::encode_ulaw(pcm, payload),
                    Codec::Pcma => g711::encode_alaw(pcm, payload),
                }
                let header = rtp::RtpHeader {
                    marker: self.rtp_out == 0,
                    payload_type: self.neg.codec_pt,
                    sequence: self.seq,
                    timestamp: self.ts,
                    ssrc: self.ssrc,
                };
                rtp::write(&header, payload, packet);
            }
            self.seq = self.seq.wrapping_add(1);
            if self.sock.send_to(packet, remote).await.is_ok() {
                self.rtp_out += 1;
            }
        }
        self.ts = self.ts.wrapping_add(samples);
        kind
    }

    async fn on_event(&mut self, ev: CallEvent, ctl: &mpsc::Sender<EndpointMsg>, ctx: &Arc<Ctx>) {
        match ev {
            CallEvent::Acked { sdp } => {
                if let Some(answer) = sdp {
                    self.on_late_answer(&answer);
                }
                ctx.emit(GatewayEvent::CallAnswered {
                    call_id: self.setup.call_id.clone(),
                });
            }
            CallEvent::ReInvite { sdp } => {
                let cmd = self.on_reinvite(sdp.as_deref());
                let _ = ctl
                    .send(EndpointMsg::Command {
                        call: self.setup.call,
                        cmd,
                    })
                    .await;
            }
            CallEvent::Info { content_type, body } => {
                if content_type.eq_ignore_ascii_case("application/dtmf-relay") {
                    if let Some(d) = dtmf_relay_digit(&body) {
                        self.on_digit(d, 100, ctx);
                    }
                }
            }
            CallEvent::Incoming(_) | CallEvent::Ended(_) => {}
        }
    }

    fn on_late_answer(&mut self, answer: &[u8]) {
        let Ok(sd) = sdp::parse(&String::from_utf8_lossy(answer)) else {
            return;
        };
        let offer = sdp::offer(&self.setup.params);
        if let Ok(neg) = sdp::accept_answer(&offer, &sd) {
            self.remote = neg.remote;
            self.neg = neg;
        }
    }

    /// Answers a re-INVITE (hold, unhold, address change) on the same port and codec rules.
    fn on_reinvite(&mut self, sdp: Option<&[u8]>) -> CallCommand {
        let Some(body) = sdp else {
            return CallCommand::ReInviteAnswer {
                sdp: self.local_sdp.clone(),
            };
        };
        let Ok(offer) = sdp::parse(&String::from_utf8_lossy(body)) else {
            return CallCommand::ReInviteReject { status: 488 };
        };
        self.session_version += 1;
        let params = AnswerParams {
            session_version: self.session_version,
            ..self.setup.params.clone()
        };
        match sdp::answer(&offer, &params) {
            Ok((neg, answer)) => {
                if neg.remote.is_some() && neg.remote != self.remote {
                    self.remote = neg.remote;
                }
                self.neg = neg;
                self.local_sdp = answer.to_string().into_bytes();
                CallCommand::ReInviteAnswer {
                    sdp: self.local_sdp.clone(),
                }
            }
            Err(_) => CallCommand::ReInviteReject { status: 488 },
        }
    }
}

/// `Signal=5` from an application/dtmf-relay INFO body.
fn dtmf_relay_digit(body: &[u8]) -> Option<char> {
    let text = std::str::from_utf8(body).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("signal") {
            return None;
        }
        let c = v.trim().chars().next()?;
        matches!(c, '0'..='9' | '*' | '#' | 'A'..='D' | 'a'..='d').then(|| c.to_ascii_uppercase())
    })
}
