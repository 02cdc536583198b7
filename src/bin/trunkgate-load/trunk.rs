//! Outbound mode's far-end trunk: a SIP UAS on one UDP socket and one thread. Each INVITE
//! from the gateway gets 100 and 180 at once and a 200 OK with SDP after `--ring-ms`
//! (retransmitted until the ACK, RFC 3261 Timer G/H); the answered call streams the inbound
//! mode's tone-burst audio from the shared [`media::Engine`] (which measures the round trip
//! through the gateway and the echo agent) and is hung up with a BYE after `--duration`.
//! A BYE from the gateway is answered 200; a CANCEL while ringing 200 + 487. Every call's
//! moments and outcome go to the [`Timeline`].
//!
//! With `click_to_call` the far end answers both legs of each call — the manager
//! (`+4813…`) and then the client (`+4812…`), told apart by [`msg::call_leg`] — streams on
//! both (paired in the engine, so each times the audio relayed from the other), hangs up
//! the client leg after `--duration` and answers the gateway's BYE on the manager leg.
//!
//! Owns: the dialogs (by Call-ID) and their timers (one heap; they fire in `trunk_timers`),
//! the socket. The thread blocks
//! in `recv_from` until the next timer is due: no locks, one read buffer, one write buffer.
//! Must not: decide what a run measures (the outbound driver and the report do).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use trunkgate::core::sip::message::{Limits, Message};

use crate::media::Engine;
use crate::timeline::{End, Event, Leg, Timeline};
use crate::trunk_msg as msg;

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// 64 × T1: how long a 200 OK waits for its ACK, and a BYE for its answer.
const GIVE_UP: Duration = Duration::from_secs(32);
/// An ended dialog is kept this long to absorb retransmissions (ACK for a 487, BYE's 200).
const LINGER: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Settings {
    pub ring: Duration,
    pub duration: Duration,
    /// Two legs per call (manager, client); see the module docs.
    pub click_to_call: bool,
}

/// Counters of what the far end saw, for the report.
#[derive(Debug, Default)]
pub struct TrunkStats {
    pub invites: AtomicU64,
    /// INVITEs whose number named no call of this run (answered all the same).
    pub unknown: AtomicU64,
    pub retransmitted_in: AtomicU64,
    pub retransmitted_out: AtomicU64,
    pub unparsable: AtomicU64,
}

/// The running far end; dropping it does not stop it, [`Trunk::shutdown`] does.
pub struct Trunk {
    pub local: SocketAddr,
    pub stats: Arc<TrunkStats>,
    stop: Arc<AtomicBool>,
}

impl Trunk {
    pub fn start(
        addr: SocketAddr,
        settings: Settings,
        engine: Engine,
        calls: Arc<Timeline>,
    ) -> std::io::Result<Trunk> {
        let sock = UdpSocket::bind(addr)?;
        let _ = nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::RcvBuf, &(4 << 20));
        let local = sock.local_addr()?;
        let stats = Arc::new(TrunkStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut uas = Uas {
            sock,
            local,
            settings,
            engine,
            calls,
            stats: stats.clone(),
            dialogs: HashMap::new(),
            managers: HashMap::new(),
            timers: BinaryHeap::new(),
            next_key: 0,
            out: Vec::with_capacity(2048),
            head: String::with_capacity(1024),
        };
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("load-trunk".into())
            .spawn(move || uas.run(&flag))?;
        Ok(Trunk { local, stats, stop })
    }

    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ringing,
    /// 200 OK sent; `acked` once the ACK came.
    Answered {
        acked: bool,
    },
    /// Our BYE is out.
    Closing,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Answer,
    ResendOk,
    Bye,
    ResendBye,
    Reap,
}

struct Dialog {
    key: u64,
    n: Option<usize>,
    leg: Leg,
    invite: Message,
    src: SocketAddr,
    tag: String,
    /// The INVITE's response head with our tag (see [`msg::head_of`]).
    head: String,
    remote_rtp: Option<SocketAddr>,
    state: State,
    /// The last final response to the INVITE (200 or 487), for retransmissions.
    last: Vec<u8>,
    bye: Vec<u8>,
    answered: Option<Instant>,
    resend_every: Duration,
    resend_until: Instant,
}

struct Uas {
    sock: UdpSocket,
    local: SocketAddr,
    settings: Settings,
    engine: Engine,
    calls: Arc<Timeline>,
    stats: Arc<TrunkStats>,
    dialogs: HashMap<String, Dialog>,
    /// Click-to-call: the gateway's RTP address of each call's answered manager leg, until it
    /// ends (the client leg's stream is paired with it).
    managers: HashMap<usize, SocketAddr>,
    timers: BinaryHeap<Reverse<(Instant, Timer, String)>>,
    next_key: u64,
    out: Vec<u8>,
    head: String,
}

impl Uas {
    fn run(&mut self, stop: &AtomicBool) {
        let mut buf = vec![0u8; 65536];
        let limits = Limits::default();
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let wait = self
                .timers
                .peek()
                .map_or(Duration::from_millis(50), |Reverse((at, _, _))| {
                    at.saturating_duration_since(now)
                })
                .clamp(Duration::from_millis(1), Duration::from_millis(50));
            let _ = self.sock.set_read_timeout(Some(wait));
            match self.sock.recv_from(&mut buf) {
                Ok((len, src)) => match Message::parse(&buf[..len], &limits) {
                    Ok(m) if m.is_request() => self.on_request(&m, src),
                    Ok(m) => self.on_response(&m),
                    Err(_) => {
                        self.stats.unparsable.fetch_add(1, Ordering::Relaxed);
                    }
                },
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => {}
            }
            self.fire_due(Instant::now());
        }
    }

    fn send(&self, bytes: &[u8], to: SocketAddr) {
        let _ = self.sock.send_to(bytes, to);
    }

    fn at(&mut self, when: Instant, timer: Timer, call_id: &str) {
        self.timers
            .push(Reverse((when, timer, call_id.to_string())));
    }

    /// A response to `req` with its own head (BYE, CANCEL, OPTIONS…).
    fn answer(&mut self, req: &Message, status: u16, src: SocketAddr) {
        self.head.clear();
        msg::head_of(req, None, &mut self.head);
        self.out.clear();
        msg::response(&mut self.out, status, &self.head, None, "");
        self.send(&self.out, src);
    }

    fn on_request(&mut self, m: &Message, src: SocketAddr) {
        match m.method().map_or("", |x| x.as_str()) {
            "INVITE" => self.on_invite(m, src),
            "ACK" => {
                if let Some(d) = self.dialogs.get_mut(m.call_id()) {
                    if let State::Answered { acked: false } = d.state {
                        d.state = State::Answered { acked: true };
                        if let Some(n) = d.n {
                            self.calls.mark(n, d.leg.event(Event::Acked));
                        }
                    }
                }
            }
            "BYE" => {
                let known = self.dialogs.contains_key(m.call_id());
                self.answer(m, if known { 200 } else { 481 }, src);
                let first = self
                    .dialogs
                    .get(m.call_id())
                    .is_some_and(|d| matches!(d.state, State::Answered { .. }));
                if first {
                    self.finish(m.call_id(), End::GatewayBye);
                } else if self
                    .dialogs
                    .get(m.call_id())
                    .is_some_and(|d| d.state == State::Closing)
                {
                    // BYE glare: both hung up; ours was due, so the call ran its course.
                    self.finish(m.call_id(), End::ByeOk);
                }
            }
            "CANCEL" => self.on_cancel(m, src),
            // OPTIONS keep-alives, in-dialog UPDATE/INFO (session refresh, DTMF).
            _ => self.answer(m, 200, src),
        }
    }

    fn on_invite(&mut self, m: &Message, src: SocketAddr) {
        if let Some(d) = self.dialogs.get(m.call_id()) {
            if m.cseq().seq == d.invite.cseq().seq {
                // A retransmission: the last response again.
                self.stats.retransmitted_in.fetch_add(1, Ordering::Relaxed);
                let again = if d.last.is_empty() {
                    self.out.clear();
                    msg::response(&mut self.out, 180, &d.head, Some(self.local), "");
                    &self.out
                } else {
                    &d.last
                };
                self.send(again, d.src);
            } else {
                // A re-INVITE (session refresh): the same answer again.
                self.head.clear();
                msg::head_of(m, Some(&d.tag), &mut self.head);
                let sdp = msg::sdp_answer(m, self.engine.local());
                self.out.clear();
                msg::response(&mut self.out, 200, &self.head, Some(self.local), &sdp);
                self.send(&self.out, src);
            }
            return;
        }
        self.stats.invites.fetch_add(1, Ordering::Relaxed);
        let found = msg::call_leg(m).filter(|&(_, n)| n < self.calls.len());
        let n = found.map(|(_, n)| n);
        // Plain outbound calls have one leg whatever they dial.
        let leg = match found {
            Some((leg, _)) if self.settings.click_to_call => leg,
            _ => Leg::Called,
        };
        match n {
            Some(n) => self.calls.mark(n, leg.event(Event::Invite)),
            None => {
                self.stats.unknown.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.next_key += 1;
        let tag = format!("fe{:x}", self.next_key);
        let mut head = String::with_capacity(512);
        msg::head_of(m, Some(&tag), &mut head);
        // 100 carries no To tag (it makes no dialog).
        self.answer(m, 100, src);
        self.out.clear();
        msg::response(&mut self.out, 180, &head, Some(self.local), "");
        self.send(&self.out, src);
        let d = Dialog {
            key: self.next_key,
            n,
            leg,
            invite: m.clone(),
            src,
            tag,
            head,
            remote_rtp: crate::caller::answer_media(m),
            state: State::Ringing,
            last: Vec::new(),
            bye: Vec::new(),
            answered: None,
            resend_every: T1,
            resend_until: Instant::now(),
        };
        self.at(
            Instant::now() + self.settings.ring,
            Timer::Answer,
            m.call_id(),
        );
        self.dialogs.insert(m.call_id().to_string(), d);
    }

    fn on_cancel(&mut self, m: &Message, src: SocketAddr) {
        let ringing = self
            .dialogs
            .get(m.call_id())
            .is_some_and(|d| d.state == State::Ringing);
        let known = self.dialogs.contains_key(m.call_id());
        self.answer(m, if known { 200 } else { 481 }, src);
        if ringing {
            if let Some(d) = self.dialogs.get_mut(m.call_id()) {
                d.last.clear();
                msg::response(&mut d.last, 487, &d.head, None, "");
                let _ = self.sock.send_to(&d.last, d.src);
            }
            self.finish(m.call_id(), End::Cancelled);
        }
    }

    fn on_response(&mut self, m: &Message) {
        let status = m.status().unwrap_or(0);
        if m.cseq().method.as_str() != "BYE" || status < 200 {
            return;
        }
        let closing = self
            .dialogs
            .get(m.call_id())
            .is_some_and(|d| d.state == State::Closing);
        if closing {
            let end = if status == 200 {
                End::ByeOk
            } else {
                End::ByeAnswered(status)
            };
            self.finish(m.call_id(), end);
        }
    }
}

#[path = "trunk_timers.rs"]
mod timers;

#[cfg(test)]
#[path = "trunk_tests.rs"]
mod tests;
