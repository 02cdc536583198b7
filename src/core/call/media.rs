//! The caller leg's media: the negotiated SDP (answer, late offer, re-INVITE), RTP in (G.711
//! decode, RFC 4733 DTMF in) and out (sequence, timestamp, SSRC, RFC 4733 DTMF out replacing
//! audio frames), the pacer that times what the caller hears, and talk detection both ways.
//!
//! With SDES keys in the SDP, SRTP protects what goes out and checks what comes in
//! ([`crate::core::media::srtp`]).
//! Must not: own the socket or read a clock. Packets come in borrowed and go out through one
//! buffer the machine reuses (no allocation per packet; an SRTP call allocates per packet in
//! rtc-srtp's API).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::core::media::dtmf::{DtmfPacket, DtmfReceiver, DtmfSender};
use crate::core::media::frame_clock::FrameClock;
use crate::core::media::pacer::Pacer;
use crate::core::media::rechunk::Rechunker;
use crate::core::media::srtp::{derive_key_material, SrtpSession};
use crate::core::media::vad::Vad;
use crate::core::media::{g711, rtp};
use crate::core::sip::sdp::{self, AnswerParams, Codec, Direction, Negotiated, SessionDescription};

/// Agent audio queued beyond this (60 s) is refused and counted.
const MAX_QUEUED: usize = 8000 * 60;
/// RFC 4733 packets waiting to go out (about 40 digits).
pub const MAX_QUEUED_DTMF_PACKETS: usize = 400;

pub struct SipMedia {
    pub params: AnswerParams,
    pub local_sdp: Vec<u8>,
    pub neg: Negotiated,
    /// Where RTP goes: the latest source heard (symmetric RTP), else the SDP's address.
    pub remote: Option<SocketAddr>,
    /// The address the caller's SDP names for its media.
    declared: Option<SocketAddr>,
    /// RTP has come from `declared`: from now on only that source is taken (a stray stream
    /// — an old call still sending to a reused port, a spoofer — cannot take the call over).
    latched: bool,
    seq: u16,
    pub ts: u32,
    ssrc: u32,
    pub dtmf_in: DtmfReceiver,
    dtmf_out: VecDeque<(u32, DtmfPacket)>,
    pub pacer: Pacer,
    pub caller_chunks: Rechunker,
    pub caller_vad: Vad,
    pub agent_vad: Vad,
    /// When media started: the frame clock and talk times count from here.
    pub started: Instant,
    pub clock: FrameClock,
    pub last_rx: Instant,
    pub rtp_in: u64,
    pub rtp_out: u64,
    /// The caller's packets lost on the way in (sequence gaps).
    pub rx_loss: crate::core::media::rx_loss::RxLoss,
    session_version: u64,
    /// Decoded caller audio / the frame going out (one frame each).
    pub pcm: Vec<i16>,
    payload: Vec<u8>,
    /// The packet built for the driver to send, and where to.
    pub packet: Vec<u8>,
    pub packet_to: Option<SocketAddr>,
    /// SRTP when the SDP negotiated keys (RFC 4568): what goes out is protected, what comes
    /// in is checked and decrypted first.
    pub srtp: Option<SrtpSession>,
    /// Packets refused by SRTP (forged, replayed, wrongly keyed, malformed).
    pub srtp_refused: u64,
}

/// The SRTP session for `neg`'s keys; keys the SDP layer validated always key a session.
fn srtp_for(neg: &Negotiated) -> Result<Option<SrtpSession>, sdp::NegotiationError> {
    match &neg.srtp {
        None => Ok(None),
        Some(k) => SrtpSession::new(&k.ours, &k.theirs)
            .map(Some)
            .map_err(|_| sdp::NegotiationError::SrtpRequired),
    }
}

/// The peer's SDES key, when the stream is encrypted.
fn theirs(neg: &Negotiated) -> Option<&crate::core::sip::sdp::crypto::Crypto> {
    neg.srtp.as_ref().map(|k| &k.theirs)
}

/// Random starting points for sequence, timestamp and SSRC (the shell supplies them).
#[derive(Debug, Clone, Copy, Default)]
pub struct RtpSeed {
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
}

impl SipMedia {
    /// Media for the answer to `offer` (or our offer when the INVITE had none) on `params`.
    pub fn new(
        params: AnswerParams,
        offer: Option<&SessionDescription>,
        seed: RtpSeed,
        now: Instant,
    ) -> Result<Self, sdp::NegotiationError> {
        let (neg, answer) = match offer {
            Some(offer) => sdp::answer(offer, &params)?,
            None => {
                // Late offer: we offer PCMU/PCMA/telephone-event; the answer arrives in the ACK.
                let offer = sdp::offer(&params);
                let neg = Negotiated {
                    codec: Codec::Pcmu,
                    codec_pt: 0,
                    dtmf_pt: Some(101),
                    remote: None,
                    ptime_ms: params.ptime_ms,
                    direction: Direction::SendRecv,
                    audio_index: 0,
                    srtp: None,
                };
                (neg, offer)
            }
        };
        let ptime = neg.ptime_ms.clamp(10, 60);
        let frame = (8 * ptime) as usize;
        let srtp = srtp_for(&neg)?;
        Ok(SipMedia {
            srtp,
            srtp_refused: 0,
            local_sdp: answer.to_string().into_bytes(),
            remote: neg.remote,
            declared: neg.remote,
            latched: false,
            neg,
            seq: seed.seq,
            ts: seed.ts,
            ssrc: seed.ssrc,
            dtmf_in: DtmfReceiver::new(8000),
            dtmf_out: VecDeque::new(),
            pacer: Pacer::new(frame, MAX_QUEUED),
            caller_chunks: Rechunker::twenty_ms(8000),
            caller_vad: Vad::new(8000),
            agent_vad: Vad::new(8000),
            started: now,
            clock: FrameClock::new(Duration::from_millis(u64::from(ptime))),
            last_rx: now,
            rtp_in: 0,
            rx_loss: Default::default(),
            rtp_out: 0,
            session_version: params.session_version,
            pcm: vec![0; frame],
            payload: vec![0; frame],
            packet: Vec::with_capacity(12 + frame),
            packet_to: None,
            params,
        })
    }

    /// Whether RTP from `from` is the caller's: any source until the SDP's own address has
    /// been heard from (callers behind NAT send from elsewhere), then only that one.
    pub fn accept_source(&mut self, from: SocketAddr) -> bool {
        if self.latched {
            return self.remote == Some(from);
        }
        if self.declared == Some(from) {
            self.latched = true;
        }
        // Symmetric RTP (RFC 4961): answer where the caller's media comes from.
        self.remote = Some(from);
        true
    }

    /// The caller's SDP named a (possibly new) media address.
    fn declare(&mut self, remote: Option<SocketAddr>) {
        if remote != self.declared {
            self.declared = remote;
            self.latched = false;
        }
    }

    pub fn frame_samples(&self) -> usize {
        (8 * self.neg.ptime_ms.clamp(10, 60)) as usize
    }

    /// Milliseconds since media started.
    pub fn elapsed_ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_millis() as u64
    }

    /// When the next frame is due.
    pub fn next_frame_at(&self) -> Instant {
        self.started + self.clock.deadline()
    }

    /// The caller is on hold (or we have nowhere to send): silence from them is expected.
    pub fn on_hold(&self) -> bool {
        matches!(
            self.neg.direction,
            Direction::SendOnly | Direction::Inactive
        ) || self.remote.is_none()
    }

    fn sending(&self) -> Option<SocketAddr> {
        // FIXED(D): `neg.direction` is the caller's own: we may send when the caller
        // receives (sendrecv, recvonly). The check was reversed: a caller holding with
        // `sendonly` kept getting RTP, one offering `recvonly` got none.
        if !self.neg.direction.receives() {
            None
        } else {
            self.remote
        }
    }

    /// Writes the RTP packet for `self.pcm` (or the next queued DTMF packet, which replaces
    /// the audio of its frame) into `self.packet`; advances timestamp and sequence.
    pub fn write_frame(&mut self) {
        let samples = self.pcm.len() as u32;
        if let Some(remote) = self.sending() {
            self.packet.clear();
            if let Some((event_ts, p)) = self.dtmf_out.pop_front() {
                let header = rtp::RtpHeader {
                    marker: p.marker,
                    payload_type: self.neg.dtmf_pt.unwrap_or(101),
                    sequence: self.seq,
                    timestamp: event_ts,
                    ssrc: self.ssrc,
                };
                rtp::write(&header, &p.payload, &mut self.packet);
            } else {
                match self.neg.codec {
                    Codec::Pcmu => g711::encode_ulaw(&self.pcm, &mut self.payload),
                    Codec::Pcma => g711::encode_alaw(&self.pcm, &mut self.payload),
                }
                let header = rtp::RtpHeader {
                    marker: self.rtp_out == 0,
                    payload_type: self.neg.codec_pt,
                    sequence: self.seq,
                    timestamp: self.ts,
                    ssrc: self.ssrc,
                };
                rtp::write(&header, &self.payload, &mut self.packet);
            }
            self.seq = self.seq.wrapping_add(1);
            self.rtp_out += 1;
            self.packet_to = Some(remote);
            if let Some(srtp) = &mut self.srtp {
                match srtp.protect_rtp(&self.packet) {
                    Ok(protected) => {
                        self.packet.clear();
                        self.packet.extend_from_slice(&protected);
                    }
                    Err(_) => self.packet_to = None,
                }
            }
        }
        self.ts = self.ts.wrapping_add(samples);
    }

    /// A datagram from the caller as plain RTP: decrypted when SRTP is on (`None`: refused,
    /// counted), else as it came (borrowed, no copy). SRTCP multiplexed on the RTP port
    /// (RFC 5761) is checked as SRTCP and handed on decrypted (the media path ignores RTCP).
    pub fn unprotect<'a>(&mut self, data: &'a [u8]) -> Option<std::borrow::Cow<'a, [u8]>> {
        let Some(srtp) = &mut self.srtp else {
            return Some(std::borrow::Cow::Borrowed(data));
        };
        let rtcp = data.get(1).is_some_and(|b| rtp::is_rtcp(*b));
        let plain = if rtcp {
            srtp.unprotect_rtcp(data)
        } else {
            srtp.unprotect_rtp(data)
        };
        match plain {
            // The crate's buffer becomes the Vec without a copy.
            Ok(plain) => Some(std::borrow::Cow::Owned(plain.into())),
            Err(_) => {
                self.srtp_refused += 1;
                None
            }
        }
    }

    /// Queues RFC 4733 packets for `digits`: 100 ms events sent back to back (each with its
    /// own timestamp and three end packets, which is how receivers tell digits apart).
    /// False when the caller did not offer telephone-event.
    pub fn queue_dtmf(&mut self, digits: &str) -> bool {
        if self.neg.dtmf_pt.is_none() {
            return false;
        }
        let ptime = self.neg.ptime_ms.clamp(10, 60);
        let frame = 8 * ptime;
        // Event timestamps continue from where the queue ends.
        let mut ts = self
            .ts
            .wrapping_add(frame.wrapping_mul(self.dtmf_out.len() as u32));
        for d in digits.chars().take(32) {
            // Bounded: digits asked for faster than they play are dropped.
            if self.dtmf_out.len() >= MAX_QUEUED_DTMF_PACKETS {
                break;
            }
            let Ok(packets) = DtmfSender::new(8000).packets(d, 100, ptime, 10) else {
                continue;
            };
            let n = packets.len() as u32;
            for p in packets {
                self.dtmf_out.push_back((ts, p));
            }
            ts = ts.wrapping_add(frame.wrapping_mul(n));
        }
        true
    }

    /// The caller's SDP answer, for a late-offer call (it came in the ACK).
    pub fn on_late_answer(&mut self, answer: &[u8]) {
        let Ok(sd) = sdp::parse(&String::from_utf8_lossy(answer)) else {
            return;
        };
        let offer = sdp::offer(&self.params);
        if let Ok(neg) = sdp::accept_answer(&offer, &sd) {
            if let Ok(srtp) = srtp_for(&neg) {
                self.srtp = srtp;
            }
            self.remote = neg.remote;
            self.declare(neg.remote);
            self.neg = neg;
        }
    }

    /// The callee's SDP answer to our offer (an outbound call's 2xx).
    pub fn accept_answer(&mut self, answer: &[u8]) -> Result<(), super::EndReason> {
        let sd = sdp::parse(&String::from_utf8_lossy(answer))
            .map_err(|_| super::EndReason::SdpUnparsable)?;
        let offer = sdp::offer(&self.params);
        let neg = sdp::accept_answer(&offer, &sd).map_err(|_| super::EndReason::NoCommonCodec)?;
        self.srtp = srtp_for(&neg).map_err(|_| super::EndReason::NoCommonCodec)?;
        self.remote = neg.remote;
        self.declare(neg.remote);
        self.neg = neg;
        let ptime = self.neg.ptime_ms.clamp(10, 60);
        let frame = (8 * ptime) as usize;
        if frame != self.pcm.len() {
            self.pcm = vec![0; frame];
            self.payload = vec![0; frame];
            self.pacer = Pacer::new(frame, MAX_QUEUED);
            self.clock = FrameClock::new(Duration::from_millis(u64::from(ptime)));
        }
        Ok(())
    }

    /// A re-INVITE (hold, unhold, address change), answered on the same port and codec
    /// rules: `Ok(answer SDP)` or `Err(status)`.
    pub fn on_reinvite(&mut self, sdp_body: Option<&[u8]>) -> Result<Vec<u8>, u16> {
        let Some(body) = sdp_body else {
            return Ok(self.local_sdp.clone());
        };
        let Ok(offer) = sdp::parse(&String::from_utf8_lossy(body)) else {
            return Err(488);
        };
        self.session_version += 1;
        let mut params = AnswerParams {
            session_version: self.session_version,
            ..self.params.clone()
        };
        let mut answered = sdp::answer(&offer, &params);
        // The peer may rekey with a re-INVITE (RFC 4568 §7.1.4): a new session then, and a new
        // key of ours with it (a new context restarts the rollover counter, so our old key
        // would repeat keystream once the sequence had wrapped).
        if let Ok((neg, _)) = &answered {
            if self.srtp.is_some() && theirs(neg) != theirs(&self.neg) {
                params.srtp.key_material = derive_key_material(&params.srtp.key_material, b"rekey");
                answered = sdp::answer(&offer, &params);
            }
        }
        match answered {
            Ok((neg, answer)) => {
                // Unchanged keys (a session-timer refresh) keep the session: a new one would
                // lose the replay windows and the rollover counter (and fail after 2^16
                // packets).
                if neg.srtp != self.neg.srtp {
                    self.srtp = srtp_for(&neg).map_err(|_| 488u16)?;
                    self.params.srtp = params.srtp.clone();
                }
                if neg.remote.is_some() && neg.remote != self.remote {
                    self.remote = neg.remote;
                }
                self.declare(neg.remote);
                self.neg = neg;
                self.local_sdp = answer.to_string().into_bytes();
                Ok(self.local_sdp.clone())
            }
            Err(_) => Err(488),
        }
    }
}

/// `Signal=5` from an application/dtmf-relay INFO body.
pub fn dtmf_relay_digit(body: &[u8]) -> Option<char> {
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
