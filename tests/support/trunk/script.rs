//! What a scripted trunk does with one incoming INVITE: the challenge (401/407, MD5 or
//! SHA-256, `stale=true` once, a second challenge), a 422 Min-SE, the provisional responses
//! with their delays, the final answer (200 with or without SDP or with no common codec,
//! reject, 3xx, never), the media after answer, a BYE after a delay, session-timer headers and
//! what happens to the gateway's refreshes. Built with chained methods from [`Script::answer`].
//! Must not: hold behaviour (that is `call.rs`); this is plain data.

use std::time::Duration;

use super::digest::Algorithm;
use super::media::{Codec, Media};

/// 401 `WWW-Authenticate` or 407 `Proxy-Authenticate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    Www,
    Proxy,
}

impl ChallengeKind {
    pub fn status(self) -> u16 {
        match self {
            ChallengeKind::Www => 401,
            ChallengeKind::Proxy => 407,
        }
    }

    pub fn challenge_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "WWW-Authenticate",
            ChallengeKind::Proxy => "Proxy-Authenticate",
        }
    }

    pub fn answer_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "Authorization",
            ChallengeKind::Proxy => "Proxy-Authorization",
        }
    }
}

/// A digest challenge and the credentials the trunk checks the answer against.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub kind: ChallengeKind,
    pub alg: Algorithm,
    pub realm: String,
    /// The first challenge's nonce (None: random); later challenges always get new nonces.
    pub nonce: Option<String>,
    pub opaque: String,
    pub username: String,
    pub password: String,
    /// After a correct answer, challenge once more with a new nonce and `stale=true`.
    pub stale_once: bool,
    /// After a correct answer, challenge once more (not stale): the gateway should give up.
    pub again: bool,
}

impl Challenge {
    pub fn www(alg: Algorithm, username: &str, password: &str) -> Challenge {
        Challenge::new(ChallengeKind::Www, alg, username, password)
    }

    pub fn proxy(alg: Algorithm, username: &str, password: &str) -> Challenge {
        Challenge::new(ChallengeKind::Proxy, alg, username, password)
    }

    fn new(kind: ChallengeKind, alg: Algorithm, username: &str, password: &str) -> Challenge {
        Challenge {
            kind,
            alg,
            realm: "trunk.test".into(),
            nonce: None,
            opaque: format!("op{:08x}", fastrand::u32(..)),
            username: username.into(),
            password: password.into(),
            stale_once: false,
            again: false,
        }
    }

    pub fn realm(mut self, realm: &str) -> Challenge {
        self.realm = realm.into();
        self
    }

    pub fn nonce(mut self, nonce: &str) -> Challenge {
        self.nonce = Some(nonce.into());
        self
    }

    pub fn stale_once(mut self) -> Challenge {
        self.stale_once = true;
        self
    }

    pub fn again(mut self) -> Challenge {
        self.again = true;
        self
    }
}

/// One provisional response, sent `after` the previous step.
#[derive(Debug, Clone)]
pub struct Provisional {
    pub status: u16,
    pub after: Duration,
    /// Carries the trunk's SDP answer (183 early media): media starts with it.
    pub sdp: bool,
}

/// What the 200 OK carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerSdp {
    /// The trunk's answer in its codec.
    Normal,
    /// No body at all.
    None,
    /// An SDP whose only codec is G.729 (pt 18).
    NoCommonCodec,
}

/// The final answer to the (authenticated) INVITE, sent `after` the last provisional.
#[derive(Debug, Clone)]
pub enum Final {
    Ok {
        after: Duration,
        sdp: AnswerSdp,
    },
    Reject {
        status: u16,
        after: Duration,
    },
    Redirect {
        status: u16,
        contact: String,
        after: Duration,
    },
    /// No final answer until the gateway CANCELs (then 200 to the CANCEL, 487 to the INVITE).
    Never,
}

/// RFC 4028 `refresher` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    Uac,
    Uas,
}

impl Refresher {
    pub fn token(self) -> &'static str {
        match self {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        }
    }
}

/// `Session-Expires` in the trunk's 200 OK.
#[derive(Debug, Clone, Copy)]
pub struct SessionTimer {
    pub expires: u32,
    pub refresher: Refresher,
    /// `Require: timer` (else `Supported: timer`).
    pub require: bool,
}

/// What the trunk does with the gateway's in-dialog re-INVITE/UPDATE refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshes {
    Answer,
    /// Record but never answer (the peer "stopped refreshing" as seen by the refresher).
    Ignore,
    /// Answer this many, then ignore the rest.
    AnswerFirst(usize),
}

/// The whole behaviour for one incoming INVITE (one Call-ID).
#[derive(Debug, Clone)]
pub struct Script {
    pub challenge: Option<Challenge>,
    /// Answer the first authenticated INVITE 422 with this `Min-SE`.
    pub min_se: Option<u32>,
    pub provisional: Vec<Provisional>,
    pub final_: Final,
    pub media: Media,
    pub codec: Codec,
    pub bye_after: Option<Duration>,
    pub session_timer: Option<SessionTimer>,
    pub refreshes: Refreshes,
    /// User part of the trunk's Contact.
    pub contact_user: String,
    /// On CANCEL before the answer: 200 to the CANCEL and then the 200 OK anyway (the race).
    pub cancel_race: bool,
}

impl Default for Script {
    fn default() -> Script {
        Script::answer()
    }
}

impl Script {
    /// 100 Trying, then 200 OK with a PCMU answer at once; echoes the gateway's RTP.
    pub fn answer() -> Script {
        Script {
            challenge: None,
            min_se: None,
            provisional: vec![Provisional {
                status: 100,
                after: Duration::ZERO,
                sdp: false,
            }],
            final_: Final::Ok {
                after: Duration::ZERO,
                sdp: AnswerSdp::Normal,
            },
            media: Media::Echo,
            codec: Codec::Pcmu,
            bye_after: None,
            session_timer: None,
            refreshes: Refreshes::Answer,
            contact_user: "callee".into(),
            cancel_race: false,
        }
    }

    pub fn challenge(mut self, c: Challenge) -> Script {
        self.challenge = Some(c);
        self
    }

    pub fn min_se(mut self, secs: u32) -> Script {
        self.min_se = Some(secs);
        self
    }

    /// Drops the default 100 Trying.
    pub fn no_trying(mut self) -> Script {
        self.provisional.retain(|p| p.status != 100);
        self
    }

    pub fn provisional(mut self, status: u16, after: Duration, sdp: bool) -> Script {
        self.provisional.push(Provisional { status, after, sdp });
        self
    }

    /// 180 Ringing `after` the previous step.
    pub fn ring(self, after: Duration) -> Script {
        self.provisional(180, after, false)
    }

    /// 183 Session Progress with SDP `after` the previous step: early media starts.
    pub fn early_media(self, after: Duration) -> Script {
        self.provisional(183, after, true)
    }

    /// 200 OK `after` the last provisional (with SDP).
    pub fn answer_after(mut self, after: Duration) -> Script {
        self.final_ = Final::Ok {
            after,
            sdp: AnswerSdp::Normal,
        };
        self
    }

    pub fn no_sdp(mut self) -> Script {
        if let Final::Ok { sdp, .. } = &mut self.final_ {
            *sdp = AnswerSdp::None;
        }
        self
    }

    pub fn no_common_codec(mut self) -> Script {
        if let Final::Ok { sdp, .. } = &mut self.final_ {
            *sdp = AnswerSdp::NoCommonCodec;
        }
        self
    }

    pub fn reject(self, status: u16) -> Script {
        self.reject_after(status, Duration::ZERO)
    }

    pub fn reject_after(mut self, status: u16, after: Duration) -> Script {
        self.final_ = Final::Reject { status, after };
        self
    }

    /// 302 Moved Temporarily with `contact` (a URI, e.g. `sip:+4930123@127.0.0.1:5070`).
    pub fn redirect(mut self, status: u16, contact: &str) -> Script {
        self.final_ = Final::Redirect {
            status,
            contact: contact.into(),
            after: Duration::ZERO,
        };
        self
    }

    pub fn never_answer(mut self) -> Script {
        self.final_ = Final::Never;
        self
    }

    pub fn cancel_race(mut self) -> Script {
        self.cancel_race = true;
        self
    }

    pub fn codec(mut self, c: Codec) -> Script {
        self.codec = c;
        self
    }

    pub fn media(mut self, m: Media) -> Script {
        self.media = m;
        self
    }

    pub fn tone(self, freq: f32) -> Script {
        self.media(Media::Tone(freq))
    }

    pub fn bye_after(mut self, after: Duration) -> Script {
        self.bye_after = Some(after);
        self
    }

    /// `Session-Expires: expires;refresher=..` with `Supported: timer` in the 200 OK.
    pub fn session_timer(mut self, expires: u32, refresher: Refresher) -> Script {
        self.session_timer = Some(SessionTimer {
            expires,
            refresher,
            require: false,
        });
        self
    }

    /// `Require: timer` instead of `Supported: timer` (needs [`Script::session_timer`]).
    pub fn require_timer(mut self) -> Script {
        if let Some(t) = &mut self.session_timer {
            t.require = true;
        }
        self
    }

    pub fn refreshes(mut self, r: Refreshes) -> Script {
        self.refreshes = r;
        self
    }

    pub fn contact_user(mut self, user: &str) -> Script {
        self.contact_user = user.into();
        self
    }
}
