//! Offer/answer for one G.711 audio stream plus telephone-events (RFC 3264 §5, §6, §8.4;
//! RFC 4733 §2.4, §7.1.1).
//!
//! Owns: choosing the audio m-line and codec, building our answer and our own offers, and
//! reading the answer to our offer — with SDES-SRTP (RFC 4568) as [`SrtpParams`] asks: `off`
//! declines RTP/SAVP, `optional` takes SRTP whenever a usable `a=crypto` is offered (also on
//! RTP/AVP, as common SDES peers offer it) and offers RTP/AVP with keys, `required` takes
//! only keyed streams and offers RTP/SAVP.
//! Must not: allocate ports or pick addresses (the caller passes them), resolve host names,
//! or generate keys (the caller passes random bytes).

use std::net::SocketAddr;

use super::crypto::{self, Crypto, Suite};
use super::{Codec, Connection, Direction, MediaDescription, Origin, RtpMap, SessionDescription};

/// Whether media is encrypted (`rtp.srtp`, a trunk's or number's `srtp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SrtpUse {
    #[default]
    Off,
    Optional,
    Required,
}

/// SRTP for one negotiation: the mode and the random bytes our key is cut from (the first
/// `key_len + salt_len` of the chosen suite). All-zero bytes mean no key could be made: such
/// params neither take nor offer keys (`required` then refuses every offer). `Debug` never
/// shows the bytes.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SrtpParams {
    pub mode: SrtpUse,
    pub key_material: [u8; 32],
}

impl std::fmt::Debug for SrtpParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpParams")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl SrtpParams {
    fn has_key(&self) -> bool {
        self.key_material != [0u8; 32]
    }

    fn key(&self, tag: u32, suite: Suite) -> Crypto {
        let len = suite.key_len() + suite.salt_len();
        Crypto {
            tag,
            suite,
            key_salt: self.key_material.get(..len).unwrap_or(&[]).to_vec(),
        }
    }
}

/// The keys of an SRTP stream: ours protects what we send, theirs what we receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    pub ours: Crypto,
    pub theirs: Crypto,
}

/// Payload type of telephone-event in our own offers.
pub const OUR_DTMF_PT: u8 = 101;
const TELEPHONE_EVENT: &str = "telephone-event";
/// Events we support: DTMF 0-15 and flash (16).
const OUR_EVENTS: u32 = (1 << 17) - 1;
/// Without an events list, 0-15 are assumed (RFC 4733 §7.1.1, IANA registration).
const DEFAULT_EVENTS: u32 = (1 << 16) - 1;

/// What we advertise when answering or offering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerParams {
    /// Codecs in our order of preference.
    pub prefs: Vec<Codec>,
    pub address: std::net::IpAddr,
    pub port: u16,
    pub ptime_ms: u32,
    pub session_id: u64,
    pub session_version: u64,
    /// `o=` user name, e.g. "trunkgate".
    pub user: String,
    pub srtp: SrtpParams,
}

/// The outcome for the media path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: Codec,
    pub codec_pt: u8,
    /// telephone-event/8000 payload type as the peer numbered it, when both sides use it.
    pub dtmf_pt: Option<u8>,
    /// Where to send RTP; `None` when the peer's address is 0.0.0.0/:: (hold, RFC 3264 §8.4)
    /// or a host name.
    pub remote: Option<SocketAddr>,
    /// Packetisation to send: the peer's `a=ptime` when it is 10-60 ms in 10 ms steps, else
    /// ours, capped by the peer's `a=maxptime`.
    pub ptime_ms: u32,
    /// The direction the peer declared (the offerer's in `answer`, the answerer's in
    /// `accept_answer`).
    pub direction: Direction,
    /// Index of the audio m-line in use.
    pub audio_index: usize,
    /// The SRTP keys when the stream is encrypted.
    pub srtp: Option<SrtpKeys>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error("no usable audio stream offered")]
    NoAudio,
    #[error("audio offered only with SRTP (RTP/SAVP), which is off here")]
    SrtpOnly,
    #[error("SRTP is required and no audio stream offers a usable key")]
    SrtpRequired,
    #[error("no codec in common")]
    NoCommonCodec,
    #[error("answer does not match our offer: {0}")]
    BadAnswer(&'static str),
}

struct Selection<'a> {
    index: usize,
    offered: &'a MediaDescription,
    codec: Codec,
    pt: u8,
    dtmf: Option<(u8, String)>,
    srtp: Option<SrtpKeys>,
}

/// Answers an offer (RFC 3264 §6): one m-line per offered m-line in the same order, all
/// rejected with port 0 except the first live audio m-line the SRTP mode accepts (RTP/AVP,
/// or RTP/SAVP with a usable key) with a codec in common; a keyed answer carries our key for
/// the offer's tag and suite.
pub fn answer(
    offer: &SessionDescription,
    p: &AnswerParams,
) -> Result<(Negotiated, SessionDescription), NegotiationError> {
    let mut chosen: Option<Selection<'_>> = None;
    let (mut saw_usable, mut saw_savp, mut saw_unkeyed) = (false, false, false);
    let mut media = Vec::with_capacity(offer.media.len());
    for (index, m) in offer.media.iter().enumerate() {
        if chosen.is_none() && is_audio(m) && m.port != 0 {
            let savp = m.proto.eq_ignore_ascii_case("RTP/SAVP");
            let avp = m.proto.eq_ignore_ascii_case("RTP/AVP");
            let theirs = match p.srtp.mode {
                SrtpUse::Off => None,
                _ if !p.srtp.has_key() => None,
                _ => crypto::choose(m.crypto.iter().map(String::as_str)),
            };
            saw_savp |= savp;
            saw_unkeyed |= (avp || savp) && theirs.is_none();
            let usable = match p.srtp.mode {
                SrtpUse::Off => avp,
                SrtpUse::Optional => avp || (savp && theirs.is_some()),
                SrtpUse::Required => (avp || savp) && theirs.is_some(),
            };
            if usable {
                saw_usable = true;
                if let Some(mut sel) = select(index, m, &p.prefs) {
                    sel.srtp = theirs.map(|theirs| SrtpKeys {
                        ours: p.srtp.key(theirs.tag, theirs.suite),
                        theirs,
                    });
                    media.push(accepted(&sel, p));
                    chosen = Some(sel);
                    continue;
                }
            }
        }
        media.push(rejected(m));
    }
    let sel = chosen.ok_or(if saw_usable {
        NegotiationError::NoCommonCodec
    } else if p.srtp.mode == SrtpUse::Required && saw_unkeyed {
        NegotiationError::SrtpRequired
    } else if saw_savp {
        NegotiationError::SrtpOnly
    } else {
        NegotiationError::NoAudio
    })?;
    let m = sel.offered;
    let negotiated = Negotiated {
        codec: sel.codec,
        codec_pt: sel.pt,
        dtmf_pt: sel.dtmf.map(|(pt, _)| pt),
        remote: remote(m, offer),
        ptime_ms: send_ptime(m, p.ptime_ms),
        direction: m.direction,
        audio_index: sel.index,
        srtp: sel.srtp,
    };
    Ok((negotiated, session(p, media)))
}

/// Our offer for an outbound call: one audio m-line with our codecs (PCMU, PCMA when `prefs` is
/// empty) and telephone-event 101.
pub fn offer(p: &AnswerParams) -> SessionDescription {
    let mut codecs: Vec<Codec> = Vec::new();
    for c in &p.prefs {
        if !codecs.contains(c) {
            codecs.push(*c);
        }
    }
    if codecs.is_empty() {
        codecs = vec![Codec::Pcmu, Codec::Pcma];
    }
    let mut m = audio_media(p, codecs.iter().map(|c| (*c, c.static_pt())));
    add_dtmf(&mut m, OUR_DTMF_PT, format_events(OUR_EVENTS));
    if p.srtp.mode != SrtpUse::Off {
        if p.srtp.mode == SrtpUse::Required {
            m.proto = "RTP/SAVP".to_owned();
        }
        if !p.srtp.has_key() {
            return session(p, vec![m]);
        }
        m.crypto = (1u32..)
            .zip(Suite::ALL)
            .map(|(tag, suite)| p.srtp.key(tag, suite).value())
            .collect();
    }
    session(p, vec![m])
}

/// Reads the answer to our `offer`: the first audio m-line the peer kept, the first codec in
/// the answer's order that we offered, and telephone-event if the peer kept it.
pub fn accept_answer(
    our_offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<Negotiated, NegotiationError> {
    if answer.media.len() != our_offer.media.len() {
        return Err(NegotiationError::BadAnswer("number of m-lines differs"));
    }
    for (index, (o, a)) in our_offer.media.iter().zip(&answer.media).enumerate() {
        if a.port == 0 || !is_audio(a) || !a.proto.eq_ignore_ascii_case(&o.proto) {
            continue;
        }
        let offered = |c: Codec| o.payload_types().any(|pt| Codec::for_pt(o, pt) == Some(c));
        let Some((codec, pt)) = a.payload_types().find_map(|pt| {
            Codec::for_pt(a, pt)
                .filter(|c| offered(*c))
                .map(|c| (c, pt))
        }) else {
            continue;
        };
        let we_offered_dtmf = o.payload_types().any(|pt| is_telephone_event(o.rtpmap(pt)));
        let dtmf_pt = a
            .payload_types()
            .find(|pt| is_telephone_event(a.rtpmap(*pt)))
            .filter(|_| we_offered_dtmf);
        let srtp = answered_keys(o, a)?;
        return Ok(Negotiated {
            codec,
            codec_pt: pt,
            dtmf_pt,
            remote: remote(a, answer),
            ptime_ms: send_ptime(a, o.ptime.unwrap_or(20)),
            direction: a.direction,
            audio_index: index,
            srtp,
        });
    }
    Err(NegotiationError::NoCommonCodec)
}

/// The keys of an answer to our offer `o`: the answerer's `a=crypto` must name one of our
/// tags with its suite. An RTP/SAVP offer needs one; to an RTP/AVP offer with keys, an
/// answer without keys means plain RTP.
fn answered_keys(
    o: &MediaDescription,
    a: &MediaDescription,
) -> Result<Option<SrtpKeys>, NegotiationError> {
    let theirs = a.crypto.iter().find_map(|v| Crypto::parse(v).ok());
    let Some(theirs) = theirs else {
        if o.proto.eq_ignore_ascii_case("RTP/SAVP") {
            return Err(NegotiationError::BadAnswer(
                "no usable key in the answer to SRTP",
            ));
        }
        return Ok(None);
    };
    let ours = o
        .crypto
        .iter()
        .filter_map(|v| Crypto::parse(v).ok())
        .find(|c| c.tag == theirs.tag && c.suite == theirs.suite)
        .ok_or(NegotiationError::BadAnswer(
            "the answer's key matches none we offered",
        ))?;
    Ok(Some(SrtpKeys { ours, theirs }))
}

fn is_audio(m: &MediaDescription) -> bool {
    m.media.eq_ignore_ascii_case("audio")
}

fn is_telephone_event(map: Option<&RtpMap>) -> bool {
    map.is_some_and(|m| {
        m.encoding.eq_ignore_ascii_case(TELEPHONE_EVENT) && m.clock_rate == Codec::CLOCK_RATE
    })
}

fn select<'a>(index: usize, m: &'a MediaDescription, prefs: &[Codec]) -> Option<Selection<'a>> {
    let (codec, pt) = prefs.iter().find_map(|&c| {
        m.payload_types()
            .find(|&pt| Codec::for_pt(m, pt) == Some(c))
            .map(|pt| (c, pt))
    })?;
    let dtmf = m
        .payload_types()
        .find(|&pt| is_telephone_event(m.rtpmap(pt)))
        .and_then(|pt| {
            let offered = m.fmtp(pt).and_then(parse_events).unwrap_or(DEFAULT_EVENTS);
            let common = offered & OUR_EVENTS;
            (common != 0).then(|| (pt, format_events(common)))
        });
    Some(Selection {
        index,
        offered: m,
        codec,
        pt,
        dtmf,
        srtp: None,
    })
}

/// Where the peer wants media: the m-line's `c=`, else the session's (RFC 8866 §5.7).
fn remote(m: &MediaDescription, sd: &SessionDescription) -> Option<SocketAddr> {
    let conn = m.connection.as_ref().or(sd.connection.as_ref())?;
    let ip = conn.media_ip()?;
    (m.port != 0).then(|| SocketAddr::new(ip, m.port))
}

fn send_ptime(peer: &MediaDescription, ours: u32) -> u32 {
    let want = peer
        .ptime
        .filter(|p| (10..=60).contains(p) && p % 10 == 0)
        .unwrap_or(ours);
    match peer.maxptime.filter(|mx| *mx >= 10) {
        Some(mx) if want > mx => mx / 10 * 10,
        _ => want,
    }
}

/// Parses an RFC 4733 events list ("0-15,66,70") into a bitmask of events 0..=31.
fn parse_events(list: &str) -> Option<u32> {
    let mut mask = 0u32;
    for item in list.split(',') {
        let (lo, hi) = match item.trim().split_once('-') {
            Some((a, b)) => (a.parse::<u8>().ok()?, b.parse::<u8>().ok()?),
            None => {
                let e = item.trim().parse::<u8>().ok()?;
                (e, e)
            }
        };
        for e in lo..=hi.min(31) {
            mask |= 1 << e;
        }
    }
    Some(mask)
}

/// Formats a bitmask of events as ranges, e.g. "0-15".
fn format_events(mask: u32) -> String {
    let mut parts = Vec::new();
    let mut e = 0u32;
    while e < 32 {
        if mask & (1 << e) == 0 {
            e += 1;
            continue;
        }
        let start = e;
        while e + 1 < 32 && mask & (1 << (e + 1)) != 0 {
            e += 1;
        }
        parts.push(if start == e {
            start.to_string()
        } else {
            format!("{start}-{e}")
        });
        e += 1;
    }
    parts.join(",")
}

/// RFC 3264 §6: a declined stream keeps its media type, proto and formats, with port 0.
fn rejected(m: &MediaDescription) -> MediaDescription {
    MediaDescription {
        media: m.media.clone(),
        proto: m.proto.clone(),
        formats: m.formats.clone(),
        ..blank_media(0)
    }
}

fn accepted(sel: &Selection<'_>, p: &AnswerParams) -> MediaDescription {
    let mut m = audio_media(p, [(sel.codec, sel.pt)]);
    m.media.clone_from(&sel.offered.media);
    m.proto.clone_from(&sel.offered.proto);
    m.direction = sel.offered.direction.reverse();
    if let Some((pt, events)) = &sel.dtmf {
        add_dtmf(&mut m, *pt, events.clone());
    }
    if let Some(keys) = &sel.srtp {
        m.crypto = vec![keys.ours.value()];
    }
    m
}

fn audio_media(
    p: &AnswerParams,
    codecs: impl IntoIterator<Item = (Codec, u8)>,
) -> MediaDescription {
    let mut m = MediaDescription {
        media: "audio".to_owned(),
        proto: "RTP/AVP".to_owned(),
        ptime: Some(p.ptime_ms).filter(|t| *t > 0),
        ..blank_media(p.port)
    };
    for (codec, pt) in codecs {
        m.formats.push(pt.to_string());
        m.rtpmaps.push(RtpMap {
            pt,
            encoding: codec.encoding().to_owned(),
            clock_rate: Codec::CLOCK_RATE,
            channels: None,
        });
    }
    m
}

fn blank_media(port: u16) -> MediaDescription {
    MediaDescription {
        media: String::new(),
        port,
        port_count: None,
        proto: String::new(),
        formats: Vec::new(),
        connection: None,
        bandwidths: Vec::new(),
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        ptime: None,
        maxptime: None,
        direction: Direction::SendRecv,
        crypto: Vec::new(),
        other_attributes: Vec::new(),
    }
}

fn add_dtmf(m: &mut MediaDescription, pt: u8, events: String) {
    m.formats.push(pt.to_string());
    m.rtpmaps.push(RtpMap {
        pt,
        encoding: TELEPHONE_EVENT.to_owned(),
        clock_rate: Codec::CLOCK_RATE,
        channels: None,
    });
    m.fmtps.push((pt, events));
}

fn session(p: &AnswerParams, media: Vec<MediaDescription>) -> SessionDescription {
    let user = p
        .user
        .split_ascii_whitespace()
        .collect::<Vec<_>>()
        .join("-");
    SessionDescription {
        origin: Origin {
            username: if user.is_empty() {
                "-".to_owned()
            } else {
                user
            },
            session_id: p.session_id.to_string(),
            session_version: p.session_version.to_string(),
            address: Connection::Ip(p.address),
        },
        session_name: "-".to_owned(),
        connection: Some(Connection::Ip(p.address)),
        bandwidths: Vec::new(),
        timing: (0, 0),
        direction: None,
        attributes: Vec::new(),
        media,
    }
}
