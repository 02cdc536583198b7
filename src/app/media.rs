//! A call's media loop: RTP in → G.711 decode → agent; agent → G.711 encode → RTP out, paced
//! by one 20 ms timer from a per-call clock; RFC 4733 DTMF in; symmetric RTP; RTP timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::{Ctx, EndpointMsg, GatewayEvent};
use crate::config::AgentConfig;
use crate::core::agent::echo::EchoAgent;
use crate::core::media::dtmf::DtmfReceiver;
use crate::core::media::{g711, rtp};
use crate::core::sip::endpoint::{CallCommand, CallEvent, CallKey, EndReason};
use crate::core::sip::sdp::{self, AnswerParams, Codec, Direction, Negotiated, SessionDescription};

pub struct MediaSetup {
    pub call: CallKey,
    pub call_id: String,
    pub params: AnswerParams,
    pub offer: Option<SessionDescription>,
    pub agent: AgentConfig,
    pub rtp_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("no acceptable codec: {0}")]
    Negotiation(String),
}

pub struct MediaSession {
    setup: MediaSetup,
    sock: UdpSocket,
    local_sdp: Vec<u8>,
    neg: Negotiated,
    remote: Option<SocketAddr>,
    latched: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
    dtmf: DtmfReceiver,
    agent: EchoAgent,
    rtp_in: u64,
    rtp_out: u64,
    session_version: u64,
    hangup_sent: bool,
}

impl MediaSession {
    pub fn new(setup: MediaSetup, sock: UdpSocket) -> Result<Self, MediaError> {
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
        Ok(MediaSession {
            local_sdp: answer.to_string().into_bytes(),
            neg,
            remote,
            latched: false,
            seq: fastrand::u16(..),
            ts: fastrand::u32(..),
            ssrc: fastrand::u32(..),
            dtmf: DtmfReceiver::new(8000),
            agent: EchoAgent::new(8000),
            rtp_in: 0,
            rtp_out: 0,
            session_version: setup.params.session_version,
            hangup_sent: false,
            setup,
            sock,
        })
    }

    pub fn local_sdp(&self) -> Vec<u8> {
        self.local_sdp.clone()
    }

    pub fn counts(&self) -> (u64, u64) {
        (self.rtp_in, self.rtp_out)
    }

    fn frame_samples(&self) -> usize {
        (8 * self.neg.ptime_ms.clamp(10, 60)) as usize
    }

    pub async fn run(
        &mut self,
        events: &mut mpsc::UnboundedReceiver<CallEvent>,
        ctl: &mpsc::Sender<EndpointMsg>,
        ctx: &Arc<Ctx>,
    ) -> EndReason {
        let ptime = Duration::from_millis(u64::from(self.neg.ptime_ms.clamp(10, 60)));
        let mut ticker = tokio::time::interval(ptime);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut buf = vec![0u8; 2048];
        let mut pcm = vec![0i16; self.frame_samples()];
        let mut payload = vec![0u8; self.frame_samples()];
        let mut packet = Vec::with_capacity(12 + payload.len());
        let mut last_rx = Instant::now();
        tracing::debug!(agent = %self.setup.agent.url, "media started");
        loop {
            let on_hold = matches!(
                self.neg.direction,
                Direction::SendOnly | Direction::Inactive
            ) || self.remote.is_none();
            let timeout_at = last_rx + self.setup.rtp_timeout;
            tokio::select! {
                r = self.sock.recv_from(&mut buf) => {
                    if let Ok((n, from)) = r {
                        last_rx = Instant::now();
                        self.on_rtp(&buf[..n], from, &mut pcm, ctx);
                    }
                }
                _ = ticker.tick() => {
                    self.send_frame(&mut pcm, &mut payload, &mut packet).await;
                }
                ev = events.recv() => match ev {
                    Some(CallEvent::Ended(reason)) => return reason,
                    Some(ev) => self.on_event(ev, ctl, ctx).await,
                    None => return EndReason::LocalBye(0),
                },
                _ = tokio::time::sleep_until(timeout_at), if !on_hold && !self.hangup_sent => {
                    tracing::info!("RTP timeout: no media for {:?}", self.setup.rtp_timeout);
                    self.hangup(ctl).await;
                }
            }
        }
    }

    async fn hangup(&mut self, ctl: &mpsc::Sender<EndpointMsg>) {
        self.hangup_sent = true;
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
        if !self.latched || self.remote != Some(from) {
            self.remote = Some(from);
            self.latched = true;
        }
        let pt = pkt.header.payload_type;
        if Some(pt) == self.neg.dtmf_pt {
            if let Some(ev) = self.dtmf.on_packet(pkt.header.timestamp, pkt.payload) {
                self.on_digit(ev.digit, ctx);
            }
            // One packet can complete two events (RFC 4733 §2.5.1.5).
            while let Some(ev) = self.dtmf.poll_event() {
                self.on_digit(ev.digit, ctx);
            }
            return;
        }
        if pt != self.neg.codec_pt {
            return;
        }
        // An event whose end packets were all lost is reported once audio moves past it.
        if let Some(ev) = self.dtmf.poll_stale(pkt.header.timestamp) {
            self.on_digit(ev.digit, ctx);
        }
        let n = pkt.payload.len().min(pcm.len());
        let (src, dst) = (&pkt.payload[..n], &mut pcm[..n]);
        match self.neg.codec {
            Codec::Pcmu => g711::decode_ulaw(src, dst),
            Codec::Pcma => g711::decode_alaw(src, dst),
        }
        self.agent.on_audio(dst);
    }

    fn on_digit(&mut self, digit: char, ctx: &Arc<Ctx>) {
        tracing::info!(%digit, "DTMF received");
        self.agent.on_dtmf(digit);
        ctx.emit(GatewayEvent::Dtmf {
            call_id: self.setup.call_id.clone(),
            digit,
        });
    }

    async fn send_frame(&mut self, pcm: &mut [i16], payload: &mut [u8], packet: &mut Vec<u8>) {
        self.agent.next_frame(pcm);
        let samples = pcm.len() as u32;
        let Some(remote) = self.remote else {
            self.ts = self.ts.wrapping_add(samples);
            return;
        };
        if matches!(
            self.neg.direction,
            Direction::RecvOnly | Direction::Inactive
        ) {
            // The peer asked us not to send (it put us on hold the other way round).
            self.ts = self.ts.wrapping_add(samples);
            return;
        }
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
        packet.clear();
        rtp::write(&header, payload, packet);
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(samples);
        if self.sock.send_to(packet, remote).await.is_ok() {
            self.rtp_out += 1;
        }
    }

    async fn on_event(&mut self, ev: CallEvent, ctl: &mpsc::Sender<EndpointMsg>, ctx: &Arc<Ctx>) {
        match ev {
            CallEvent::Acked { sdp: Some(answer) } => self.on_late_answer(&answer),
            CallEvent::Acked { sdp: None } => {
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
                        self.on_digit(d, ctx);
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
        // Re-run negotiation with the answer as if it were an offer: it picks the codec the
        // peer kept and its address.
        if let Ok((neg, _)) = sdp::answer(&sd, &self.setup.params) {
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
                    self.latched = false;
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
