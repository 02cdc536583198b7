//! REGISTER toward one trunk (RFC 3261 §10.2): binding our Contact to the trunk's AOR,
//! refreshing it before it expires, retrying with backoff, and removing it on stop.
//!
//! Owns: the REGISTER requests (one Call-ID and From tag per registration, CSeq rising, a
//! fresh branch per transaction), reading the granted expiry (our own Contact's `expires`,
//! else `Expires`, else what we asked), the refresh time, 423 `Min-Expires` (§10.2.8), digest
//! challenges (through [`DigestClient`]), the failure backoff (5 s doubling to 5 min, reset on
//! success) and the unREGISTER (`Expires: 0`) on [`Registration::stop`].
//!
//! Must not: do I/O, read the clock (every entry point takes `now`), resolve names, or let
//! the password reach `Debug` output or an error text. Retransmission and Timer F are the
//! client non-INVITE transaction's.

#[cfg(test)]
mod tests;
mod wire;

pub use wire::refresh_delay;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::auth::{ChallengeKind, Credentials, DigestClient, RequestAuth};
use super::message::{HeaderName, Message, Method};
use super::txn::{ClientNonInvite, Timers, TxnOut};
use crate::core::Transport;

/// First retry delay after a failure; doubled per failure up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A refresh is never planned sooner than this after a success (unless the grant is shorter).
pub const MIN_REFRESH: Duration = Duration::from_secs(5);
/// Resends within one REGISTER attempt (digest answers, 423 raises) before it counts as failed.
const MAX_RESENDS: u32 = 4;

/// What one registration is given.
#[derive(Debug, Clone)]
pub struct Params {
    /// Request-URI, `sip:host[:port]`.
    pub registrar: String,
    /// The address of record, `sip:user@domain` (From and To).
    pub aor: String,
    /// Our Contact, e.g. `<sip:trunkgate@192.0.2.1:5060>` (angle brackets added if missing).
    pub contact: String,
    /// Requested binding lifetime in seconds.
    pub expires: u32,
    pub credentials: Option<Credentials>,
    /// Via transport and sent-by (`host:port`).
    pub transport: Transport,
    pub sent_by: String,
    /// `User-Agent` value; empty → none.
    pub user_agent: String,
    pub timers: Timers,
}

/// What the API and metrics show of one registration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegState {
    pub registered: bool,
    pub last_error: Option<String>,
    /// When the binding granted by the last 2xx runs out.
    pub expires_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not started yet.
    Idle,
    /// A REGISTER with a lifetime is in flight, or the next one is planned.
    Active,
    /// The unREGISTER is in flight.
    Removing,
    /// Stopped: nothing more is sent.
    Done,
}

/// The transaction in flight.
#[derive(Debug)]
struct Current {
    txn: ClientNonInvite,
    branch: String,
    cseq: u32,
}

/// One trunk's registration; see the module header.
#[derive(Debug)]
pub struct Registration {
    params: Params,
    /// `<uri>` of our Contact, as sent.
    contact: String,
    rng: fastrand::Rng,
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// What we ask for now (raised by a 423).
    asking: u32,
    digest: Option<DigestClient>,
    /// The answering state of the current REGISTER attempt (kept across its resends).
    auth: RequestAuth,
    resends: u32,
    current: Option<Current>,
    /// The next REGISTER (refresh or retry) is due then.
    next_at: Option<Instant>,
    /// The registrar may hold our binding until then (a failed refresh does not end it).
    bound_until: Option<Instant>,
    backoff: Duration,
    phase: Phase,
    state: RegState,
    out: VecDeque<Vec<u8>>,
}

impl Registration {
    /// `seed` draws the Call-ID, tag, branches and cnonces (the core draws no randomness).
    pub fn new(params: Params, seed: u64) -> Registration {
        let mut rng = fastrand::Rng::with_seed(seed);
        let contact = match params.contact.trim() {
            c if c.starts_with('<') => c.to_owned(),
            c => format!("<{c}>"),
        };
        let call_id = format!("{:016x}{:016x}", rng.u64(..), rng.u64(..));
        let from_tag = format!("{:016x}", rng.u64(..));
        Registration {
            asking: params.expires,
            digest: params.credentials.clone().map(DigestClient::new),
            contact,
            rng,
            call_id,
            from_tag,
            cseq: 0,
            auth: RequestAuth::default(),
            resends: 0,
            current: None,
            next_at: None,
            bound_until: None,
            backoff: FIRST_BACKOFF,
            phase: Phase::Idle,
            state: RegState::default(),
            out: VecDeque::new(),
            params,
        }
    }

    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    pub fn state(&self) -> &RegState {
        &self.state
    }

    /// True once stopped and the unREGISTER (if one was needed) is answered or timed out.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Sends the first REGISTER.
    pub fn start(&mut self, now: Instant) {
        if self.phase == Phase::Idle {
            self.phase = Phase::Active;
            self.begin(now);
        }
    }

    /// Removes the binding (`Expires: 0`); done after its answer or its timeout. Nothing is
    /// sent when the registrar can hold no binding of ours (never granted, or run out).
    pub fn stop(&mut self, now: Instant) {
        match self.phase {
            Phase::Idle => self.phase = Phase::Done,
            Phase::Active
                if self.current.is_some() || self.bound_until.is_some_and(|t| t > now) =>
            {
                self.phase = Phase::Removing;
                self.next_at = None;
                self.begin(now);
            }
            Phase::Active => {
                self.phase = Phase::Done;
                self.next_at = None;
            }
            Phase::Removing | Phase::Done => {}
        }
    }

    /// Offers a response. True when it belongs to this registration (its Call-ID); it acts
    /// only on the transaction in flight (same branch and CSeq), older ones are absorbed.
    pub fn handle_response(&mut self, now: Instant, msg: &Message) -> bool {
        let Some(status) = msg.status() else {
            return false;
        };
        if msg.call_id() != self.call_id {
            return false;
        }
        let ours = self.current.as_ref().is_some_and(|c| {
            let cseq = msg.cseq();
            msg.top_via().branch() == Some(c.branch.as_str())
                && cseq.seq == c.cseq
                && cseq.method == Method::Register
        });
        if !ours {
            return true;
        }
        let mut outs = Vec::new();
        let fresh = match self.current.as_mut() {
            Some(c) => c.txn.on_response(now, status, &mut outs),
            None => false,
        };
        if !fresh || status < 200 {
            return true;
        }
        // A final answer: retransmissions of it are absorbed by the Call-ID rule above.
        self.current = None;
        match status {
            200..=299 => self.on_success(now, msg),
            401 => self.on_challenge(now, ChallengeKind::Www, msg),
            407 => self.on_challenge(now, ChallengeKind::Proxy, msg),
            423 => self.on_too_brief(now, msg),
            _ => {
                let reason = msg.reason().unwrap_or("").trim();
                self.fail(now, format!("{status} {reason}").trim_end().to_owned());
            }
        }
        true
    }

    /// The transport could not send the request (unreachable, no socket).
    pub fn handle_transport_error(&mut self, now: Instant, why: &str) {
        if self.current.take().is_some() {
            self.fail(now, format!("transport error: {why}"));
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(c) = self.current.as_mut() {
            if c.txn.next_timeout().is_some_and(|t| t <= now) {
                let mut outs = Vec::new();
                c.txn.on_timeout(now, &mut outs);
                for o in outs {
                    match o {
                        TxnOut::Send(bytes) => self.out.push_back(bytes),
                        TxnOut::Timeout => {
                            self.current = None;
                            self.fail(now, "timeout: no answer from the registrar".into());
                        }
                        _ => {}
                    }
                }
            }
        }
        if self.next_at.is_some_and(|t| t <= now) {
            self.next_at = None;
            if self.current.is_none() {
                self.begin(now);
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let txn = self.current.as_ref().and_then(|c| c.txn.next_timeout());
        match (txn, self.next_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next datagram (or stream message) to send to the registrar.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// A new REGISTER attempt (first, refresh, retry, or the unREGISTER).
    fn begin(&mut self, now: Instant) {
        self.auth = RequestAuth::default();
        self.resends = 0;
        self.send(now);
    }

    fn send(&mut self, now: Instant) {
        let expires = if self.phase == Phase::Removing {
            0
        } else {
            self.asking
        };
        self.cseq = self.cseq.wrapping_add(1).max(1);
        let branch = format!("z9hG4bK{:016x}", self.rng.u64(..));
        let mut m = wire::request(&wire::Request {
            params: &self.params,
            contact: &self.contact,
            call_id: &self.call_id,
            from_tag: &self.from_tag,
            cseq: self.cseq,
            branch: &branch,
            expires,
        });
        if let Some(digest) = self.digest.as_mut() {
            let cnonce = format!("{:016x}", self.rng.u64(..));
            match digest.authorize("REGISTER", &self.params.registrar, &cnonce) {
                Ok(headers) => headers
                    .into_iter()
                    .for_each(|h| m.add_header(h.name, h.value)),
                Err(e) => {
                    self.fail(now, format!("cannot authenticate: {e}"));
                    return;
                }
            }
        }
        let mut outs = Vec::new();
        let reliable = self.params.transport.is_reliable();
        let txn =
            ClientNonInvite::start(now, m.to_bytes(), reliable, self.params.timers, &mut outs);
        self.out.extend(outs.into_iter().filter_map(|o| match o {
            TxnOut::Send(b) => Some(b),
            _ => None,
        }));
        self.current = Some(Current {
            txn,
            branch,
            cseq: self.cseq,
        });
    }

    fn resend(&mut self, now: Instant, why: String) {
        self.resends += 1;
        if self.resends > MAX_RESENDS {
            self.fail(now, why);
        } else {
            self.send(now);
        }
    }

    fn on_success(&mut self, now: Instant, msg: &Message) {
        if self.phase == Phase::Removing {
            self.finish_removal();
            return;
        }
        let granted = wire::granted_expiry(msg, &self.contact).unwrap_or(self.asking);
        if granted == 0 {
            self.fail(now, "registrar granted no lifetime to our contact".into());
            return;
        }
        let lifetime = Duration::from_secs(u64::from(granted));
        self.state = RegState {
            registered: true,
            last_error: None,
            expires_at: Some(now + lifetime),
        };
        self.bound_until = Some(now + lifetime);
        self.backoff = FIRST_BACKOFF;
        self.next_at = Some(now + refresh_delay(lifetime));
    }

    fn on_challenge(&mut self, now: Instant, kind: ChallengeKind, msg: &Message) {
        let status = match kind {
            ChallengeKind::Www => 401,
            ChallengeKind::Proxy => 407,
        };
        let Some(digest) = self.digest.as_mut() else {
            self.fail(
                now,
                format!("{status} challenge but no credentials configured"),
            );
            return;
        };
        let name = match kind {
            ChallengeKind::Www => HeaderName::WwwAuthenticate,
            ChallengeKind::Proxy => HeaderName::ProxyAuthenticate,
        };
        let values: Vec<&str> = msg.header_values_raw(name).collect();
        match digest.on_challenge(&mut self.auth, kind, &values) {
            Ok(()) => self.resend(now, format!("{status}: too many challenges")),
            Err(e) => self.fail(now, format!("auth failed ({status}): {e}")),
        }
    }

    fn on_too_brief(&mut self, now: Instant, msg: &Message) {
        let min = msg
            .header(&HeaderName::MinExpires)
            .and_then(|v| v.trim().parse::<u32>().ok());
        match min {
            Some(min) if min > self.asking && self.phase == Phase::Active => {
                self.asking = min;
                self.resend(now, "423: too many interval raises".into());
            }
            _ => self.fail(
                now,
                "423 Interval Too Brief without a usable Min-Expires".into(),
            ),
        }
    }

    /// Any failure: not registered, the reason kept, the next attempt after the backoff.
    fn fail(&mut self, now: Instant, why: String) {
        self.current = None;
        self.state = RegState {
            registered: false,
            last_error: Some(why),
            expires_at: None,
        };
        if self.phase == Phase::Removing {
            self.phase = Phase::Done;
            return;
        }
        self.next_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    fn finish_removal(&mut self) {
        self.phase = Phase::Done;
        self.state.registered = false;
        self.state.expires_at = None;
        self.bound_until = None;
    }
}
