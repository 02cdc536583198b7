//! A small SIP registrar (RFC 3261 §10.3) for the managers' desk phones: REGISTER requests
//! from configured `[[user]]`s are authenticated with server-side digest (RFC 7616, RFC 8760:
//! SHA-256 and MD5, `qop=auth`) and their Contacts kept as bindings, so click-to-call can ring
//! every registered contact of a user.
//!
//! Owns: the users and settings it is given, the decision for one REGISTER ([`Reply`]: status,
//! reason phrase, headers to add, and [`Why`] for logs), stateless HMAC-signed nonces (issue
//! time, random bytes, MAC; only the `nc` of nonces in use is remembered, in a bounded table),
//! the wrong-password token buckets (per source IP, /64 for IPv6, and per user), and the
//! bindings store (contact URI, source address, expiry, Call-ID, CSeq), with its expiry.
//!
//! Must not: do I/O, read clocks (every entry point takes `now`), draw random numbers (the
//! caller passes 16 random bytes per request and the 32-byte key at construction), panic on
//! any input, or let a password reach a log line, an error text or `Debug` output. Building
//! the response around a [`Reply`] (Via, tags, Date) and reaching the phones are the shell's.
//!
//! Choices: a source outside a user's `allow_cidrs` gets 403 before any password check; an
//! empty wrong-password bucket gives 403 (SIP's 429 means something else) without checking the
//! password; too many contacts give 403 with the existing bindings kept; an out-of-order
//! Call-ID/CSeq gives 500; the AOR is the To user only (the To host is not checked) and must
//! equal the digest username (else 403). Contacts are compared by URI text, ignoring ASCII
//! case. Unknown users are answered like a wrong password (401, charged to the source).

mod contact;
mod digest;
mod limit;
mod location;
mod nonce;
#[cfg(test)]
mod tests;

pub use digest::Alg;
pub use limit::RateLimit;
pub use location::Binding;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::message::{reason_phrase, unescape, HeaderName, Message, Method, Scheme};
use contact::Wanted;
use digest::Answer;
use limit::Buckets;
use location::Location;
use nonce::Nonces;

/// Authorization header values looked at in one request.
const MAX_AUTHORIZATION_HEADERS: usize = 8;

/// One `[[user]]`: may register from `allow_cidrs` (empty: from anywhere).
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub password: String,
    pub allow_cidrs: Vec<ipnet::IpNet>,
    /// Offered in this order (empty: [`Alg::BOTH`]). Some UAs (baresip 1.0's libre) give up
    /// on a 401 that names any algorithm they lack, so a user can be held to MD5.
    pub digest: Vec<Alg>,
}

impl User {
    fn algorithms(&self) -> &[Alg] {
        match self.digest.is_empty() {
            true => &Alg::BOTH,
            false => &self.digest,
        }
    }

    fn allows(&self, ip: IpAddr) -> bool {
        self.allow_cidrs.is_empty() || self.allow_cidrs.iter().any(|n| n.contains(&ip))
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .field("allow_cidrs", &self.allow_cidrs)
            .field("digest", &self.digest)
            .finish()
    }
}

/// Registrar settings. Expiries are in seconds, as SIP writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub realm: String,
    /// How long a nonce may be answered; an older one gets `stale=true`.
    pub nonce_lifetime: Duration,
    /// Shorter non-zero requests get 423 with `Min-Expires`.
    pub min_expires: u32,
    /// Longer requests are capped.
    pub max_expires: u32,
    /// When neither the Contact nor an `Expires` header says.
    pub default_expires: u32,
    pub max_contacts_per_user: usize,
    /// Wrong passwords per source IP (IPv6 per /64).
    pub per_source: RateLimit,
    /// Wrong passwords per user, from any source.
    pub per_user: RateLimit,
    /// Nonces whose `nc` is remembered; the oldest is dropped beyond it.
    pub max_nonces: usize,
    /// Source buckets remembered; full ones are dropped first, then the nearest to full.
    pub max_sources: usize,
}

impl Default for Settings {
    fn default() -> Self {
        let limit = RateLimit {
            burst: 5,
            refill: Duration::from_secs(10),
        };
        Settings {
            realm: "trunkgate".into(),
            nonce_lifetime: Duration::from_secs(300),
            min_expires: 60,
            max_expires: 3600,
            default_expires: 600,
            max_contacts_per_user: 10,
            per_source: limit,
            per_user: limit,
            max_nonces: 4096,
            max_sources: 4096,
        }
    }
}

impl Settings {
    /// `max_expires >= min_expires`, the default between them, every cap at least 1.
    fn normalised(mut self) -> Settings {
        self.max_expires = self.max_expires.max(self.min_expires).max(1);
        self.default_expires = self
            .default_expires
            .clamp(self.min_expires.max(1), self.max_expires);
        self.max_contacts_per_user = self.max_contacts_per_user.max(1);
        self.max_nonces = self.max_nonces.max(1);
        self.max_sources = self.max_sources.max(1);
        self
    }
}

/// Why a REGISTER got its answer, for logs. Never contains a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// 200: bindings added, refreshed or removed.
    Registered,
    /// 200: no Contact, the bindings are listed.
    Queried,
    /// 401: no Authorization for our realm.
    NoCredentials,
    /// 401: an Authorization we cannot use (syntax, algorithm, qop, missing field).
    BadCredentials(&'static str),
    /// 401: no such user (charged to the source like a wrong password).
    UnknownUser,
    /// 401: the nonce is not one of ours.
    BadNonce,
    /// 401 `stale=true`: right password, expired nonce.
    StaleNonce,
    /// 401: an `nc` not above the last one accepted for the nonce.
    Replay,
    /// 401: the digest does not match the password (charged to source and user).
    WrongPassword,
    /// 403: the source is outside the user's `allow_cidrs`.
    SourceNotAllowed,
    /// 403: the digest username is not the To user.
    UserMismatch,
    /// 403: too many wrong passwords from this source; the password was not checked.
    RateLimitedSource,
    /// 403: too many wrong passwords for this user; the password was not checked.
    RateLimitedUser,
    /// 403: the request would leave more bindings than allowed; nothing changed.
    TooManyContacts,
    /// 400.
    BadRequest(&'static str),
    /// 404: the To URI has no user part (or is not sip/sips).
    NoAor,
    /// 405: not a REGISTER.
    NotRegister,
    /// 423 with `Min-Expires`.
    IntervalTooBrief,
    /// 500: same Call-ID with a CSeq not above the stored one (RFC 3261 §10.3 step 7).
    OutOfOrder,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Registered => f.write_str("bindings updated"),
            Why::Queried => f.write_str("bindings listed"),
            Why::NoCredentials => f.write_str("no credentials for our realm"),
            Why::BadCredentials(what) => write!(f, "unusable credentials: {what}"),
            Why::UnknownUser => f.write_str("unknown user"),
            Why::BadNonce => f.write_str("nonce not issued by us"),
            Why::StaleNonce => f.write_str("nonce expired"),
            Why::Replay => f.write_str("nonce count replayed"),
            Why::WrongPassword => f.write_str("wrong password"),
            Why::SourceNotAllowed => f.write_str("source not in the user's allow_cidrs"),
            Why::UserMismatch => f.write_str("digest username is not the To user"),
            Why::RateLimitedSource => f.write_str("too many wrong passwords from this source"),
            Why::RateLimitedUser => f.write_str("too many wrong passwords for this user"),
            Why::TooManyContacts => f.write_str("too many contacts for this user"),
            Why::BadRequest(what) => write!(f, "bad request: {what}"),
            Why::NoAor => f.write_str("To has no sip user"),
            Why::NotRegister => f.write_str("not a REGISTER"),
            Why::IntervalTooBrief => f.write_str("expiry below the minimum"),
            Why::OutOfOrder => f.write_str("Call-ID/CSeq out of order"),
        }
    }
}

/// The answer to one REGISTER: the shell builds the response around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// The standard reason phrase.
    pub reason: &'static str,
    /// Headers to add, in order (`WWW-Authenticate`, `Contact`, `Min-Expires`).
    pub headers: Vec<(&'static str, String)>,
    pub why: Why,
    /// The authenticated user, once the digest was accepted.
    pub user: Option<String>,
}

impl Reply {
    fn new(status: u16, why: Why) -> Reply {
        Reply {
            status,
            reason: reason_phrase(status),
            headers: Vec::new(),
            why,
            user: None,
        }
    }

    /// First header of that name (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The registrar: users, nonce state, wrong-password buckets and bindings.
pub struct Registrar {
    settings: Settings,
    users: HashMap<String, User>,
    nonces: Nonces,
    sources: Buckets<IpAddr>,
    user_failures: Buckets<String>,
    location: Location,
}

impl fmt::Debug for Registrar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registrar")
            .field("realm", &self.settings.realm)
            .field("users", &self.users.len())
            .field("bindings", &self.location.len())
            .finish_non_exhaustive()
    }
}

impl Registrar {
    /// `key` signs the nonces (draw it at start-up); `now` is the epoch nonce times count from.
    pub fn new(settings: Settings, users: Vec<User>, key: [u8; 32], now: Instant) -> Registrar {
        let settings = settings.normalised();
        let mut r = Registrar {
            nonces: Nonces::new(&key, now, settings.nonce_lifetime, settings.max_nonces),
            sources: Buckets::new(settings.max_sources),
            user_failures: Buckets::new(usize::MAX),
            location: Location::default(),
            users: HashMap::new(),
            settings,
        };
        r.set_users(users);
        r
    }

    /// Replaces the users (config reload). Bindings of removed users, and bindings whose
    /// source the new `allow_cidrs` exclude, are dropped; the rest are kept. A name given
    /// twice: the later entry wins.
    pub fn set_users(&mut self, users: Vec<User>) {
        self.users = users.into_iter().map(|u| (u.name.clone(), u)).collect();
        let users = &self.users;
        self.location.retain(|name, b| {
            users
                .get(name)
                .is_some_and(|u| u.allows(canonical(b.source.ip())))
        });
        self.user_failures.retain(|name| users.contains_key(name));
    }

    /// The unexpired bindings of `user`.
    /// The configured users' names.
    pub fn user_names(&self) -> Vec<String> {
        self.users.keys().cloned().collect()
    }

    pub fn contacts(&self, user: &str, now: Instant) -> Vec<Binding> {
        self.location.live(user, now)
    }

    /// Drops expired bindings, expired nonces and refilled buckets.
    pub fn expire(&mut self, now: Instant) {
        self.location.expire(now);
        self.nonces.prune(now);
        self.sources.prune(now);
        self.user_failures.prune(now);
    }

    /// When the next binding expires ([`Registrar::expire`] is due then).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.location.next_expiry()
    }

    /// Decides one REGISTER from `source`. `random` feeds the nonce of any challenge.
    pub fn handle(
        &mut self,
        now: Instant,
        source: SocketAddr,
        req: &Message,
        random: [u8; 16],
    ) -> Reply {
        let ip = canonical(source.ip());
        if req.method() != Some(&Method::Register) {
            let mut r = Reply::new(405, Why::NotRegister);
            r.headers.push(("Allow", "REGISTER".into()));
            return r;
        }
        let to = req.to_hdr();
        let aor = match (to.uri.scheme, to.uri.user) {
            (Scheme::Sip | Scheme::Sips, Some(u)) if !u.is_empty() => unescape(u).into_owned(),
            _ => return Reply::new(404, Why::NoAor),
        };
        if self.users.get(&aor).is_some_and(|u| !u.allows(ip)) {
            return Reply::new(403, Why::SourceNotAllowed);
        }
        // Unknown users are offered what a user with no `digest` setting is.
        let algs: Vec<Alg> = self
            .users
            .get(&aor)
            .map_or(Alg::BOTH.to_vec(), |u| u.algorithms().to_vec());
        let algs = &algs[..];
        let answer = match self.find_answer(req) {
            Ok(a) => a,
            Err(why) => return self.challenge(now, random, algs, why),
        };
        if answer.username != aor {
            return Reply::new(403, Why::UserMismatch);
        }
        let source_key = limit::source_key(ip);
        if self
            .sources
            .blocked(&source_key, &self.settings.per_source, now)
        {
            return Reply::new(403, Why::RateLimitedSource);
        }
        let Some(user) = self.users.get(&aor) else {
            self.sources
                .charge(source_key, &self.settings.per_source, now);
            return self.challenge(now, random, algs, Why::UnknownUser);
        };
        if self
            .user_failures
            .blocked(&user.name, &self.settings.per_user, now)
        {
            return Reply::new(403, Why::RateLimitedUser);
        }
        let checked = match digest::check(&answer, req, &self.settings.realm, algs) {
            Ok(c) => c,
            Err(Why::BadRequest(what)) => return Reply::new(400, Why::BadRequest(what)),
            Err(why) => return self.challenge(now, random, algs, why),
        };
        let Some(issued) = self.nonces.verify(&answer.nonce, now) else {
            return self.challenge(now, random, algs, Why::BadNonce);
        };
        let method = req.method().map_or("REGISTER", Method::as_str);
        if !digest::matches(&checked, &answer, &user.password, method) {
            let name = user.name.clone();
            self.sources
                .charge(source_key, &self.settings.per_source, now);
            self.user_failures
                .charge(name, &self.settings.per_user, now);
            return self.challenge(now, random, algs, Why::WrongPassword);
        }
        if self.nonces.is_stale(&issued, now) {
            return self.challenge(now, random, algs, Why::StaleNonce);
        }
        if !self.nonces.advance(issued, checked.nc, now) {
            return self.challenge(now, random, algs, Why::Replay);
        }
        let mut reply = self.bind(now, source, req, &aor);
        reply.user = Some(aor);
        reply
    }

    /// The first Authorization value for our realm; else why there is none.
    fn find_answer(&self, req: &Message) -> Result<Answer, Why> {
        let mut why = Why::NoCredentials;
        for value in req
            .header_values(&HeaderName::Authorization)
            .take(MAX_AUTHORIZATION_HEADERS)
        {
            match digest::parse_authorization(value) {
                Ok(a) if a.realm == self.settings.realm => return Ok(a),
                Ok(_) => why = Why::BadCredentials("realm is not ours"),
                Err(what) => why = Why::BadCredentials(what),
            }
        }
        Err(why)
    }

    /// 401 with a fresh nonce, one challenge per algorithm in `algs`; `stale=true` for
    /// [`Why::StaleNonce`].
    fn challenge(&self, now: Instant, random: [u8; 16], algs: &[Alg], why: Why) -> Reply {
        let nonce = self.nonces.mint(now, random);
        let mut r = Reply::new(401, why);
        let stale = why == Why::StaleNonce;
        r.headers = digest::challenge_headers(&self.settings.realm, &nonce, stale, algs);
        r
    }

    /// Applies the request's Contacts (RFC 3261 §10.3 steps 6–8) for an authenticated user.
    fn bind(&mut self, now: Instant, source: SocketAddr, req: &Message, user: &str) -> Reply {
        let s = &self.settings;
        let wanted = match contact::parse(req, s.min_expires, s.max_expires, s.default_expires) {
            Ok(w) => w,
            Err(Why::IntervalTooBrief) => {
                let mut r = Reply::new(423, Why::IntervalTooBrief);
                r.headers.push(("Min-Expires", s.min_expires.to_string()));
                return r;
            }
            Err(Why::TooManyContacts) => return Reply::new(403, Why::TooManyContacts),
            Err(why) => return Reply::new(400, why),
        };
        let why = match wanted {
            Wanted::Query => Why::Queried,
            Wanted::RemoveAll => {
                if let Err(why) = self.location.remove_all(user, req, now) {
                    return Reply::new(500, why);
                }
                Why::Registered
            }
            Wanted::List(list) => {
                let max = s.max_contacts_per_user;
                if let Err(why) = self.location.apply(user, &list, req, source, now, max) {
                    let status = if why == Why::OutOfOrder { 500 } else { 403 };
                    return Reply::new(status, why);
                }
                Why::Registered
            }
        };
        let mut r = Reply::new(200, why);
        for b in self.location.live(user, now) {
            r.headers.push(("Contact", b.header_value(now)));
        }
        r
    }
}

/// IPv4-mapped IPv6 sources (dual-stack sockets) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}
