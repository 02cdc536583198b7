//! The bridged SIP leg (ARCHITECTURE §3, the sip<->sip route): a second, outbound leg — a
//! `bridge` transfer's target, or click-to-call's client — dialled while the first SIP leg (the
//! caller, or the manager) hears generated ringback or the target's early media. On its answer
//! the agent (if any) leaves and audio is relayed both ways through each leg's pacer: decoded
//! and re-encoded, so PCMU⇄PCMA and differing ptimes just work, and each side gets steady 20 ms
//! frames from its own clock. RFC 4733 digits are passed on; either side hanging up ends both.
//! A failed dial never drops the first leg by itself: a transfer resumes the agent; a
//! click-to-call plays a short failure tone, then hangs up.
//!
//! Must not: know trunks, numbers' hosts or credentials (the driver turns `to` into an INVITE),
//! touch sockets or read a clock.

use std::time::{Duration, Instant};

use super::leg::{AnswerLeg, LegId};
use super::media::{RtpSeed, SipMedia};
use super::{transfer, Call, EndReason, Notice, Output, Phase};
use crate::core::media::pacer::FrameKind;
use crate::core::media::srtp::derive_key_material;
use crate::core::media::tone::ToneGen;
use crate::core::media::{g711, rtp};
use crate::core::sip::endpoint::{CallCommand, CallEvent, EndReason as SipEnd};
use crate::core::sip::sdp::{AnswerParams, Codec, SrtpParams};

/// The bridged leg in the machine's inputs and outputs.
pub const BRIDGED: LegId = LegId(2);

/// Relayed audio queued beyond this (120 ms) is dropped: the far clock runs fast, or a burst
/// came; the relay resynchronises rather than letting latency grow.
const RELAY_MAX_QUEUED: usize = 960;
/// The failure tone a click-to-call manager hears before the BYE.
const FAIL_TONE: Duration = Duration::from_millis(1500);

/// Why the leg is dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A `bridge` transfer: on failure the agent keeps the call.
    Transfer,
    /// Click-to-call: the first leg is the manager; on failure they hear a tone, then BYE.
    ClickToCall,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the leg's RTP port.
    Leasing,
    /// The INVITE is out; `early`: the target's early media reaches the first leg.
    Dialing { deadline: Instant, early: bool },
    /// Answered: audio is relayed both ways.
    Up,
    /// Click-to-call failed with `status`: the manager hears the failure tone until `until`.
    Failing { until: Instant, status: u16 },
    /// The leg is over (failed, or hung up).
    Gone,
}

/// The bridged leg's state as the view shows it (`bridge` in the record).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LegView {
    pub to: String,
    /// ringing | in-progress | completed | busy | no-answer | failed
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_status: Option<u16>,
}

pub(super) struct Bridge {
    pub to: String,
    purpose: Purpose,
    state: State,
    ring_timeout: Duration,
    pub media: Option<SipMedia>,
    ringback: ToneGen,
    /// Milliseconds of generated tone sent (its cadence).
    tone_ms: u64,
    /// The INVITE went out: hanging up must CANCEL or BYE it.
    dialled: bool,
    pub view: LegView,
}

impl Bridge {
    /// The first leg hears the target (early media, or answered).
    fn relays_to_first(&self) -> bool {
        matches!(self.state, State::Up | State::Dialing { early: true, .. })
    }

    /// Decoded audio of the first leg, towards the bridged leg once it is up.
    pub fn hears(&mut self, pcm: &[i16]) {
        if let (State::Up, Some(bm)) = (self.state, &mut self.media) {
            relay(&mut bm.pacer, pcm);
        }
    }

    /// The first leg hears the bridge (a tone, the target) instead of its answerer.
    pub fn holds_first_leg(&self) -> bool {
        matches!(
            self.state,
            State::Leasing | State::Dialing { .. } | State::Failing { .. } | State::Up
        )
    }
}

impl Call {
    /// Dials `to` as the bridged leg: a port first, for the offer.
    pub(super) fn start_bridge(&mut self, to: &str, purpose: Purpose, ring_timeout: Duration) {
        self.bridge = Some(Bridge {
            to: to.to_string(),
            purpose,
            state: State::Leasing,
            ring_timeout,
            media: None,
            ringback: ToneGen::dual(440.0, 480.0, 3000.0, 8000),
            tone_ms: 0,
            dialled: false,
            view: LegView {
                to: to.to_string(),
                status: "queued".into(),
                sip_status: None,
            },
        });
        self.out.push_back(Output::LeasePort { leg: BRIDGED });
    }

    pub(super) fn bridge_on_port(&mut self, now: Instant, port: Option<u16>) {
        let Some(b) = &mut self.bridge else { return };
        if b.state != State::Leasing {
            return;
        }
        let Some(port) = port else {
            return self.bridge_failed(now, Some(503));
        };
        let mut params = AnswerParams {
            port,
            ..self.settings.answer.clone()
        };
        params.srtp = SrtpParams {
            mode: self.settings.bridge_srtp,
            key_material: derive_key_material(&params.srtp.key_material, b"bridged leg"),
        };
        let s = self.setup.seed;
        let seed = RtpSeed {
            seq: s.seq.wrapping_add(0x5a5a),
            ts: s.ts ^ 0x5a5a_5a5a,
            ssrc: s.ssrc ^ 0xa5a5_a5a5,
        };
        let Ok(media) = SipMedia::new(params, None, seed, now) else {
            return self.bridge_failed(now, Some(488));
        };
        let offer = media.local_sdp.clone();
        b.media = Some(media);
        b.state = State::Dialing {
            deadline: now + b.ring_timeout,
            early: false,
        };
        b.dialled = true;
        let to = Some(b.to.clone());
        self.out.push_back(Output::Dial {
            leg: BRIDGED,
            offer,
            to,
        });
    }

    pub(super) fn bridge_sip(&mut self, now: Instant, event: CallEvent) {
        let Some(b) = &mut self.bridge else { return };
        match event {
            CallEvent::Progress { sdp, .. } => {
                let State::Dialing { early, .. } = &mut b.state else {
                    return;
                };
                if b.view.status != "ringing" {
                    b.view.status = "ringing".into();
                    self.out.push_back(Output::Notice(Notice::Bridged));
                }
                if let (Some(sdp), Some(m), false) = (sdp, &mut b.media, *early) {
                    if m.accept_answer(&sdp).is_ok() {
                        *early = true;
                        m.started = now;
                        m.last_rx = now;
                    }
                }
            }
            CallEvent::Answered { sdp } => self.bridge_answered(now, sdp),
            CallEvent::Ended(r) => self.bridge_ended(now, r),
            CallEvent::ReInvite { sdp } => {
                let cmd = match b.media.as_mut().map(|m| m.on_reinvite(sdp.as_deref())) {
                    Some(Ok(sdp)) => CallCommand::ReInviteAnswer { sdp },
                    Some(Err(status)) => CallCommand::ReInviteReject { status },
                    None => CallCommand::ReInviteReject { status: 491 },
                };
                self.out.push_back(Output::Sip { leg: BRIDGED, cmd });
            }
            CallEvent::Info { content_type, body }
                if content_type.eq_ignore_ascii_case("application/dtmf-relay") =>
            {
                if let Some(d) = super::media::dtmf_relay_digit(&body) {
                    self.send_dtmf(&d.to_string());
                }
            }
            _ => {}
        }
    }

    fn bridge_answered(&mut self, now: Instant, sdp: Option<Vec<u8>>) {
        let Some(b) = &mut self.bridge else { return };
        let State::Dialing { early, .. } = b.state else {
            return;
        };
        let ok = match (sdp, &mut b.media) {
            (Some(sdp), Some(m)) => m.accept_answer(&sdp).is_ok(),
            (None, Some(_)) => early,
            _ => false,
        };
        if !ok {
            self.out.push_back(Output::Sip {
                leg: BRIDGED,
                cmd: CallCommand::Hangup,
            });
            return self.bridge_failed(now, Some(488));
        }
        b.state = State::Up;
        b.view.status = "in-progress".into();
        b.view.sip_status = Some(200);
        if let Some(m) = &mut b.media {
            m.started = now;
            m.last_rx = now;
        }
        let (purpose, to) = (b.purpose, b.to.clone());
        // The first leg hears the target from now on, nothing queued before.
        if let Some(m) = &mut self.media {
            m.pacer.clear();
        }
        if purpose == Purpose::Transfer {
            self.transfer = None;
            self.report_transfer(
                transfer::Mode::Bridge,
                &to,
                transfer::Outcome::Succeeded,
                Some(200),
            );
            self.close_agent("transferred");
            self.answerer = AnswerLeg::None;
        }
        self.notice(Notice::Bridged);
    }

    fn bridge_ended(&mut self, now: Instant, r: SipEnd) {
        let Some(b) = &mut self.bridge else { return };
        b.dialled = false;
        match b.state {
            State::Up => {
                b.state = State::Gone;
                b.view.status = "completed".into();
                self.hangup(EndReason::TargetHangup);
            }
            State::Leasing | State::Dialing { .. } => {
                let status = match r {
                    SipEnd::Refused(s) | SipEnd::Rejected(s) | SipEnd::AuthFailed(s) => s,
                    SipEnd::Canceled => 487,
                    SipEnd::Unreachable => 503,
                    _ => 500,
                };
                self.bridge_failed(now, Some(status));
            }
            State::Failing { .. } | State::Gone => {}
        }
    }

    /// The bridged leg did not answer: a transfer resumes the agent, a click-to-call plays the
    /// failure tone first.
    fn bridge_failed(&mut self, now: Instant, status: Option<u16>) {
        let Some(b) = &mut self.bridge else { return };
        b.view.status = match status {
            Some(486 | 600) => "busy",
            Some(408 | 480 | 487) => "no-answer",
            _ => "failed",
        }
        .into();
        b.view.sip_status = status;
        b.tone_ms = 0;
        b.ringback = ToneGen::dual(480.0, 620.0, 3000.0, 8000);
        match b.purpose {
            Purpose::Transfer => {
                b.state = State::Gone;
                let to = b.to.clone();
                self.transfer = None;
                self.report_transfer(
                    transfer::Mode::Bridge,
                    &to,
                    transfer::Outcome::Failed,
                    status,
                );
            }
            Purpose::ClickToCall => {
                b.state = State::Failing {
                    until: now + FAIL_TONE,
                    status: status.unwrap_or(500),
                };
            }
        }
        self.notice(Notice::Bridged);
    }

    /// Ends the bridged leg with the call (CANCEL while ringing, BYE once up).
    pub(super) fn hang_up_bridge(&mut self) {
        let Some(b) = &mut self.bridge else { return };
        if b.state == State::Up {
            b.view.status = "completed".into();
        }
        if std::mem::take(&mut b.dialled) {
            self.out.push_back(Output::Sip {
                leg: BRIDGED,
                cmd: CallCommand::Hangup,
            });
        }
        b.state = State::Gone;
    }

    /// RTP from the bridged leg: decoded into the first leg's pacer; its digits passed on.
    pub(super) fn bridge_rtp(&mut self, now: Instant, data: &[u8], from: std::net::SocketAddr) {
        let Some(b) = &mut self.bridge else { return };
        if !b.relays_to_first() {
            return;
        }
        let Some(bm) = &mut b.media else { return };
        let Some(data) = bm.unprotect(data) else {
            return;
        };
        let Ok(pkt) = rtp::parse(&data) else { return };
        if !bm.accept_source(from) {
            return;
        }
        bm.last_rx = now;
        bm.rtp_in += 1;
        let pt = pkt.header.payload_type;
        if Some(pt) == bm.neg.dtmf_pt {
            // One packet can complete two events (RFC 4733 §2.5.1.5), as on the caller's leg.
            let digits = [
                bm.dtmf_in.on_packet(pkt.header.timestamp, pkt.payload),
                bm.dtmf_in.poll_event(),
                bm.dtmf_in.poll_event(),
            ];
            if let Some(m) = &mut self.media {
                for ev in digits.into_iter().flatten() {
                    m.queue_dtmf(ev.digit.encode_utf8(&mut [0; 4]));
                }
            }
            return;
        }
        if pt != bm.neg.codec_pt {
            return;
        }
        let n = pkt.payload.len().min(bm.pcm.len());
        decode(bm.neg.codec, &pkt.payload[..n], &mut bm.pcm[..n]);
        if let Some(m) = &mut self.media {
            relay(&mut m.pacer, &bm.pcm[..n]);
        }
    }

    /// A digit from the first leg reaches the bridged leg (true when it did).
    pub(super) fn bridge_digit(&mut self, digit: char) -> bool {
        match &mut self.bridge {
            Some(b) if b.state == State::Up => {
                if let Some(bm) = &mut b.media {
                    bm.queue_dtmf(digit.encode_utf8(&mut [0; 4]));
                }
                true
            }
            _ => false,
        }
    }

    /// The first leg's next frame while the bridge holds it: ringback while dialling (none
    /// once early media flows), the failure tone, or the relayed audio.
    pub(super) fn bridge_frame(&mut self) -> Option<FrameKind> {
        let b = self.bridge.as_mut()?;
        let m = self.media.as_mut()?;
        let frame_ms = (m.pcm.len() / 8) as u64;
        let (on, period) = match b.state {
            State::Leasing | State::Dialing { early: false, .. } => (2000, 6000),
            State::Failing { .. } => (250, 500),
            State::Up | State::Dialing { early: true, .. } => {
                return Some(m.pacer.next_frame(&mut m.pcm));
            }
            State::Gone => return None,
        };
        if b.tone_ms % period < on {
            b.ringback.fill(&mut m.pcm);
        } else {
            m.pcm.fill(0);
        }
        b.tone_ms += frame_ms;
        Some(FrameKind::Silence)
    }

    pub(super) fn bridge_deadline(&self) -> Option<Instant> {
        let b = self.bridge.as_ref()?;
        match b.state {
            State::Dialing { deadline, .. } => Some(deadline),
            State::Failing { until, .. } => Some(until),
            State::Up => b.media.as_ref().map(SipMedia::next_frame_at),
            _ => None,
        }
    }

    pub(super) fn bridge_timeout(&mut self, now: Instant) {
        let Some(b) = &mut self.bridge else { return };
        match b.state {
            State::Dialing { deadline, .. } if now >= deadline => {
                self.out.push_back(Output::Sip {
                    leg: BRIDGED,
                    cmd: CallCommand::Hangup,
                });
                b.dialled = false;
                self.bridge_failed(now, Some(408));
            }
            State::Failing { until, status } if now >= until => {
                b.state = State::Gone;
                self.hangup(EndReason::Target(status));
            }
            State::Up => {
                let rtp_timeout = self.settings.rtp_timeout;
                let Some(bm) = &mut b.media else { return };
                if now < bm.next_frame_at() {
                    return;
                }
                let kind = bm.pacer.next_frame(&mut bm.pcm);
                bm.write_frame();
                bm.clock.on_tick(kind == FrameKind::Silence);
                if bm.on_hold() {
                    bm.last_rx = now;
                } else if now.saturating_duration_since(bm.last_rx) >= rtp_timeout {
                    self.hangup(EndReason::RtpTimeout);
                }
            }
            _ => {}
        }
    }

    /// The bridged leg's packet, when its tick built one.
    pub(super) fn bridge_transmit(&mut self) -> Option<(std::net::SocketAddr, &[u8])> {
        let bm = self.bridge.as_mut()?.media.as_mut()?;
        let to = bm.packet_to.take()?;
        Some((to, &bm.packet))
    }

    /// Whether the first leg's own answerer (agent, echo) is held off by the bridge.
    pub(super) fn bridging(&self) -> bool {
        self.bridge.as_ref().is_some_and(Bridge::holds_first_leg) && self.phase == Phase::Answered
    }

    pub(super) fn bridge_view(&self) -> Option<LegView> {
        self.bridge.as_ref().map(|b| b.view.clone())
    }
}

fn decode(codec: Codec, src: &[u8], dst: &mut [i16]) {
    match codec {
        Codec::Pcmu => g711::decode_ulaw(src, dst),
        Codec::Pcma => g711::decode_alaw(src, dst),
    }
}

/// Relayed audio into a leg's pacer, latency bounded by [`RELAY_MAX_QUEUED`].
fn relay(pacer: &mut crate::core::media::pacer::Pacer, pcm: &[i16]) {
    if pacer.queued_samples() + pcm.len() > RELAY_MAX_QUEUED {
        pacer.clear();
    }
    pacer.push_audio(pcm);
}
