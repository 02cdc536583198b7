//! SIP session timers (RFC 4028): the header grammar, the negotiation rules for both ends of
//! a session refresh transaction, and the per-dialog timer state.
//!
//! Owns: parsing `Session-Expires` (§4: delta-seconds and `refresher=uac|uas`), `Min-SE`
//! (§5) and the `timer` option tag; what a UAS answers to an INVITE, re-INVITE or UPDATE
//! (§9: honour the interval if ≥ our Min-SE, else 422 with our Min-SE — only when the peer
//! understands 422; pick the refresher); what a UAC offers and reads back from a 2xx or a 422
//! (§7); and when a dialog refreshes (half the interval) or gives up (§10: interval minus
//! min(32 s, interval/3) when the peer refreshes, the whole interval when we do).
//!
//! `refresher` names a side of the *transaction* that carried it (RFC 4028 §7.2), not of the
//! dialog: a refresh the far end sends us with `refresher=uac` makes the far end refresh even
//! when we began the dialog. [`Party`] is the dialog-level answer (us or the peer).
//!
//! Must not: read the clock (every entry point takes `now`), build or send messages, or know
//! about dialogs and transactions (the endpoint's `refresh` module does).

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use super::message::{HeaderName, Message};

/// Our `Session-Expires` when we ask (RFC 4028 §4 recommends 1800 s).
pub const DEFAULT_SESSION_EXPIRES: u32 = 1800;
/// Our `Min-SE` (RFC 4028 §5: never below 90 s on the wire toward real peers).
pub const DEFAULT_MIN_SE: u32 = 90;
/// A failed refresh is retried only with at least this long before the expiry.
pub const MIN_RETRY: Duration = Duration::from_secs(2);
/// The option tag of the extension.
pub const TAG: &str = "timer";

/// A side of one transaction: `refresher=uac` or `refresher=uas`.
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

/// Who refreshes the session, seen from the dialog: us or the far end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Us,
    Peer,
}

/// A parsed `Session-Expires` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    pub delta: u32,
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    /// The header value, e.g. `90;refresher=uac`.
    pub fn value(&self) -> String {
        match self.refresher {
            Some(r) => format!("{};refresher={}", self.delta, r.token()),
            None => self.delta.to_string(),
        }
    }
}

/// `delta-seconds *(;se-params)`; None when the delta is missing, not a number or zero.
pub fn parse_session_expires(value: &str) -> Option<SessionExpires> {
    let mut parts = value.split(';');
    let delta = parse_delta(parts.next()?)?;
    let mut refresher = None;
    for p in parts {
        let (name, val) = p.split_once('=').unwrap_or((p, ""));
        if name.trim().eq_ignore_ascii_case("refresher") {
            let val = val.trim();
            refresher = if val.eq_ignore_ascii_case("uac") {
                Some(Refresher::Uac)
            } else if val.eq_ignore_ascii_case("uas") {
                Some(Refresher::Uas)
            } else {
                None
            };
        }
    }
    Some(SessionExpires { delta, refresher })
}

/// `Min-SE: delta-seconds *(;generic-param)`.
pub fn parse_min_se(value: &str) -> Option<u32> {
    parse_delta(value.split(';').next()?)
}

fn parse_delta(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Absurdly long deltas saturate rather than fail (§4: at least 2^32-1 must be parsed).
    let v = s
        .parse::<u64>()
        .unwrap_or(u64::MAX)
        .min(u64::from(u32::MAX)) as u32;
    (v > 0).then_some(v)
}

/// What a request or response says about session timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offer {
    pub session_expires: Option<SessionExpires>,
    pub min_se: Option<u32>,
    /// `timer` in Supported or Require: the sender understands 422 and `refresher`.
    pub supported: bool,
    /// `timer` in Require.
    pub required: bool,
}

impl Offer {
    pub fn of(msg: &Message) -> Offer {
        let has = |name: &HeaderName| {
            msg.header_values(name)
                .any(|v| v.trim().eq_ignore_ascii_case(TAG))
        };
        let required = has(&HeaderName::Require);
        Offer {
            session_expires: msg
                .header(&HeaderName::SessionExpires)
                .and_then(parse_session_expires),
            min_se: msg.header(&HeaderName::MinSe).and_then(parse_min_se),
            supported: required || has(&HeaderName::Supported),
            required,
        }
    }
}

/// Our side's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The interval we ask for (and add when the peer supports timers but asked for none).
    pub session_expires: u32,
    /// The smallest interval we accept.
    pub min_se: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            session_expires: DEFAULT_SESSION_EXPIRES,
            min_se: DEFAULT_MIN_SE,
        }
    }
}

/// What we (the UAS of a transaction) answer to an INVITE, re-INVITE or UPDATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UasAnswer {
    /// 422 Session Interval Too Small with `Min-SE: min_se`.
    TooSmall { min_se: u32 },
    /// No session timer: the 2xx carries none of the headers.
    NoTimer,
    /// A 2xx with `Session-Expires: interval;refresher=..` (and `Require: timer` when the
    /// peer supports it, §9).
    Timer {
        interval: u32,
        refresher: Refresher,
        require: bool,
    },
}

impl UasAnswer {
    /// The headers of a 2xx (or 422) carrying this answer.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match *self {
            UasAnswer::TooSmall { min_se } => vec![("Min-SE", min_se.to_string())],
            UasAnswer::NoTimer => Vec::new(),
            UasAnswer::Timer {
                interval,
                refresher,
                require,
            } => {
                let se = SessionExpires {
                    delta: interval,
                    refresher: Some(refresher),
                };
                let mut h = vec![("Session-Expires", se.value())];
                if require {
                    h.push(("Require", TAG.to_string()));
                }
                h
            }
        }
    }

    /// Interval and refresher for the dialog (the peer is the transaction's UAC).
    pub fn timer(&self) -> Option<(u32, Party)> {
        match *self {
            UasAnswer::Timer {
                interval,
                refresher,
                ..
            } => Some((interval, party_as_uas(refresher))),
            _ => None,
        }
    }
}

/// RFC 4028 §9. The peer's interval is honoured when ≥ our Min-SE; a smaller one is refused
/// with 422 if the peer understands it, else accepted as it is (the UAS must not raise it).
/// A peer that supports timers but asked for none gets ours (never below its Min-SE). The
/// refresher is the peer's choice when it made one; else the peer refreshes if it can, and
/// we do when it does not support timers.
pub fn answer_as_uas(offer: &Offer, cfg: &Config) -> UasAnswer {
    let interval = match offer.session_expires {
        Some(se) if se.delta < cfg.min_se && offer.supported => {
            return UasAnswer::TooSmall { min_se: cfg.min_se };
        }
        Some(se) => se.delta,
        None if offer.supported => cfg.session_expires.max(offer.min_se.unwrap_or(0)),
        None => return UasAnswer::NoTimer,
    };
    let refresher = if offer.supported {
        offer
            .session_expires
            .and_then(|se| se.refresher)
            .unwrap_or(Refresher::Uac)
    } else {
        Refresher::Uas
    };
    UasAnswer::Timer {
        interval,
        refresher,
        require: offer.supported,
    }
}

/// The headers of a request we send as the transaction's UAC: our INVITE (no refresher:
/// the UAS chooses) or a refresh (`refresher` set, §7.4).
pub fn uac_headers(
    interval: u32,
    min_se: u32,
    refresher: Option<Refresher>,
) -> Vec<(&'static str, String)> {
    let se = SessionExpires {
        delta: interval,
        refresher,
    };
    vec![
        ("Supported", TAG.to_string()),
        ("Session-Expires", se.value()),
        ("Min-SE", min_se.to_string()),
    ]
}

/// RFC 4028 §7.2: the session timer a 2xx to our request sets up. None when the 2xx has no
/// `Session-Expires`. A missing refresher means we refresh: refreshing when the peer would
/// too costs one request, relying on a peer that will not costs the call.
pub fn timer_from_2xx(offer: &Offer) -> Option<(u32, Party)> {
    let se = offer.session_expires?;
    let refresher = se.refresher.unwrap_or(Refresher::Uac);
    Some((se.delta, party_as_uac(refresher)))
}

/// RFC 4028 §7.3: the interval to retry with after a 422, or None (no usable `Min-SE`, or
/// one not above what we asked: retrying could not help).
pub fn retry_after_422(offer: &Offer, asked: u32) -> Option<u32> {
    offer.min_se.filter(|&m| m > asked)
}

fn party_as_uas(r: Refresher) -> Party {
    match r {
        Refresher::Uac => Party::Peer,
        Refresher::Uas => Party::Us,
    }
}

fn party_as_uac(r: Refresher) -> Party {
    match r {
        Refresher::Uac => Party::Us,
        Refresher::Uas => Party::Peer,
    }
}

/// What a dialog's session timer wants at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Nothing,
    /// Send a refresh now (we are the refresher and none is in flight).
    Refresh,
    /// The session expired: BYE.
    Expired,
}

/// One dialog's session timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTimer {
    /// Seconds.
    pub interval: u32,
    pub refresher: Party,
    /// When the session dies unless refreshed.
    pub expires_at: Instant,
    /// When we send the next refresh (None: the peer refreshes, or ours is in flight).
    pub refresh_at: Option<Instant>,
    pub in_flight: bool,
}

impl SessionTimer {
    /// A timer (re)started by a 2xx at `now`.
    pub fn start(now: Instant, interval: u32, refresher: Party) -> SessionTimer {
        let secs = Duration::from_secs(u64::from(interval));
        let (expires_at, refresh_at) = match refresher {
            Party::Us => (now + secs, Some(now + secs / 2)),
            // §10: a little before the end, so our BYE beats the peer's own expiry.
            Party::Peer => (
                now + secs - Duration::from_secs(u64::from(grace(interval))),
                None,
            ),
        };
        SessionTimer {
            interval,
            refresher,
            expires_at,
            refresh_at,
            in_flight: false,
        }
    }

    /// The next moment [`SessionTimer::due`] may change its answer.
    pub fn deadline(&self) -> Instant {
        self.refresh_at
            .map_or(self.expires_at, |r| r.min(self.expires_at))
    }

    pub fn due(&self, now: Instant) -> Due {
        if now >= self.expires_at {
            Due::Expired
        } else if !self.in_flight && self.refresh_at.is_some_and(|r| now >= r) {
            Due::Refresh
        } else {
            Due::Nothing
        }
    }

    /// Our refresh went out.
    pub fn refresh_sent(&mut self) {
        self.in_flight = true;
        self.refresh_at = None;
    }

    /// Our refresh failed without ending the dialog (491, 5xx...), or could not be sent yet:
    /// try again halfway to the expiry — or, with under [`MIN_RETRY`] left, just wait for it.
    pub fn refresh_failed(&mut self, now: Instant) {
        self.in_flight = false;
        let left = self.expires_at.saturating_duration_since(now);
        self.refresh_at = (left >= MIN_RETRY).then(|| now + left / 2);
    }
}

/// `min(32, interval/3)` seconds (RFC 4028 §10).
pub fn grace(interval: u32) -> u32 {
    (interval / 3).min(32)
}

/// Whether a status to our refresh ends the dialog (RFC 4028 §10: 408 and 481).
pub fn refresh_fatal(status: u16) -> bool {
    matches!(status, 408 | 481)
}
