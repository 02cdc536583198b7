//! The per-packet path: caller RTP in (G.711 → 20 ms frames → talk detection → answerer), and
//! one frame out per tick (answerer → pacer → G.711 → RTP), with the RTP timeout checked on
//! the tick. Borrowed input, one reused output buffer: no allocation per packet beyond the
//! agent's message itself.

use std::net::SocketAddr;
use std::time::Instant;

use super::leg::{AnswerLeg, WsState, ANSWERER};
use super::{Call, EndReason, Output, Phase};
use crate::core::media::pacer::FrameKind;
use crate::core::media::{g711, rtp};
use crate::core::sip::sdp::Codec;

impl Call {
    pub(super) fn on_rtp(&mut self, now: Instant, data: &[u8], from: SocketAddr) {
        if self.phase != Phase::Answered && !self.takes_media() {
            return;
        }
        let now_ms = self.wall_ms(now);
        let Some(m) = &mut self.media else {
            return;
        };
        let Some(data) = m.unprotect(data) else {
            return;
        };
        let Ok(pkt) = rtp::parse(&data) else { return };
        if !m.accept_source(from) {
            return;
        }
        m.last_rx = now;
        m.rtp_in += 1;
        m.rx_loss.on_packet(pkt.header.ssrc, pkt.header.sequence);
        let pt = pkt.header.payload_type;
        if Some(pt) == m.neg.dtmf_pt {
            let mut digits = [None, None, None];
            digits[0] = m.dtmf_in.on_packet(pkt.header.timestamp, pkt.payload);
            // One packet can complete two events (RFC 4733 §2.5.1.5).
            digits[1] = m.dtmf_in.poll_event();
            digits[2] = m.dtmf_in.poll_event();
            for ev in digits.into_iter().flatten() {
                self.on_digit(now, ev.digit, ev.duration_ms);
            }
            return;
        }
        if pt != m.neg.codec_pt {
            return;
        }
        // An event whose end packets were all lost is reported once audio moves past it.
        let stale = m.dtmf_in.poll_stale(pkt.header.timestamp);
        let n = pkt.payload.len().min(m.pcm.len());
        let (src, dst) = (&pkt.payload[..n], &mut m.pcm[..n]);
        match m.neg.codec {
            Codec::Pcmu => g711::decode_ulaw(src, dst),
            Codec::Pcma => g711::decode_alaw(src, dst),
        }
        let t_ms = m.elapsed_ms(now);
        let Call {
            answerer,
            media,
            out,
            tap,
            bridge,
            ..
        } = self;
        let Some(m) = media else { return };
        let (chunks, vad, pcm) = (&mut m.caller_chunks, &mut m.caller_vad, &m.pcm[..n]);
        if let Some(tap) = tap {
            tap.caller(pcm);
        }
        // A bridge holds the caller: their audio goes to the bridged leg (once it is up), not
        // to the agent.
        let held = match bridge {
            Some(b) if b.holds_first_leg() => {
                b.hears(pcm);
                true
            }
            _ => false,
        };
        chunks.push(pcm, |frame| {
            vad.push(frame, t_ms);
            if held {
                return;
            }
            match answerer {
                AnswerLeg::Echo(e) => e.on_audio(frame),
                AnswerLeg::Agent(a) if a.state == WsState::Up => {
                    a.caller_audio(frame, now_ms, |msg| {
                        out.push_back(Output::AgentSend { leg: ANSWERER, msg })
                    });
                }
                _ => {}
            }
        });
        if let Some(ev) = stale {
            self.on_digit(now, ev.digit, ev.duration_ms);
        }
    }

    /// The frame clock's deadline: send a frame, check the RTP timeout.
    pub(super) fn tick(&mut self, now: Instant) {
        let kind = self.send_frame(now);
        let rtp_timeout = self.settings.rtp_timeout;
        let Some(m) = &mut self.media else {
            return;
        };
        m.clock.on_tick(kind == FrameKind::Silence);
        // Checked on the tick (one period of resolution) rather than with a timer re-armed
        // for every packet. A held call is not silent.
        if m.on_hold() {
            m.last_rx = now;
        } else if now.saturating_duration_since(m.last_rx) >= rtp_timeout {
            self.hangup(EndReason::RtpTimeout);
        }
    }

    /// Builds the next frame (answerer audio, DTMF or silence) into the transmit buffer;
    /// says whether it carried agent audio. Marks whose audio has now left are answered.
    pub(super) fn send_frame(&mut self, now: Instant) -> FrameKind {
        if self.bridging() {
            // Ringback, the failure tone or the bridged leg's audio.
            let kind = self.bridge_frame().unwrap_or(FrameKind::Silence);
            let Call { media, tap, .. } = self;
            let Some(m) = media else { return kind };
            if kind == FrameKind::Audio {
                let t = m.elapsed_ms(now);
                m.agent_vad.push(&m.pcm, t);
            }
            if let Some(tap) = tap {
                tap.tick(&m.pcm);
            }
            m.write_frame();
            return kind;
        }
        let now_ms = self.wall_ms(now);
        let Call {
            answerer,
            media,
            out,
            tap,
            ..
        } = self;
        let Some(m) = media else {
            return FrameKind::Silence;
        };
        let kind = match answerer {
            AnswerLeg::Echo(e) => {
                e.next_frame(&mut m.pcm);
                FrameKind::Audio
            }
            _ => m.pacer.next_frame(&mut m.pcm),
        };
        if kind == FrameKind::Audio {
            let t = m.elapsed_ms(now);
            m.agent_vad.push(&m.pcm, t);
        }
        if let AnswerLeg::Agent(a) = answerer {
            for mark in m.pacer.take_played_marks() {
                if a.state == WsState::Up {
                    out.push_back(Output::AgentSend {
                        leg: ANSWERER,
                        msg: a.codec.mark_played(&mark, now_ms),
                    });
                }
            }
        }
        if let Some(tap) = tap {
            tap.tick(&m.pcm);
        }
        m.write_frame();
        kind
    }
}
