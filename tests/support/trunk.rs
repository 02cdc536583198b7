//! A scripted far-end SIP trunk for daemon tests of outbound calls: it listens on
//! `127.0.0.1:0` over UDP or TCP, takes one [`Script`] per incoming INVITE (a queue, then a
//! default), plays it (digest challenge and check, 422, provisionals, early media, the final
//! answer, RTP echo or tone, BYE, session-timer refreshes, CANCEL), and records everything
//! for assertions: every request ([`Trunk::next_request`]), a summary per call
//! ([`Trunk::calls`], [`Trunk::wait_call`]) and the audio the gateway sent
//! ([`Trunk::capture`], analysed with the caller harness's [`Heard`]).
//!
//! Owns: the dispatcher (requests by Call-ID to one task per call; REGISTER and out-of-dialog
//! OPTIONS answered 200, other strays 481) and the observation API. Submodules: `wire`
//! (sockets, TCP framing), `script` (the per-call plan), `call` (playing it), `record`
//! (what the observation API returns), `digest`
//! (challenge and check, computed independently of trunkgate's client), `media` (RTP).
//! Must not: sleep to wait for state (every wait is on a change notification, bounded),
//! talk to anything but loopback, or panic on what the gateway sends.

mod call;
pub mod digest;
pub mod media;
mod record;
pub mod script;
pub mod wire;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

// Re-exported so a test needs one `use support::trunk::*`.
#[allow(unused_imports)]
pub use self::digest::{Algorithm, AuthCheck};
#[allow(unused_imports)]
pub use self::media::{Capture, Codec, Media};
pub use self::record::{CallSummary, Recorded, Refresh, Side};
#[allow(unused_imports)]
pub use self::script::{
    AnswerSdp, Challenge, ChallengeKind, Final, Refresher, Refreshes, Script, SessionTimer,
};
#[allow(unused_imports)]
pub use self::wire::Peer;
use super::caller::Heard;
use super::ua::Msg;

/// Most calls one trunk takes (later INVITEs get 503).
pub const MAX_CALLS: usize = 1000;
/// Most requests recorded (later ones are still handled, not recorded).
pub const MAX_RECORDED: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    /// TCP with TLS ([`Trunk::start_tls`]): what the gateway's TLS client sees.
    Tls,
}

impl Transport {
    pub fn token(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    pub fn via(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

/// A command from the test to a running call.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// Send BYE now.
    Bye,
}

pub(crate) struct State {
    requests: Vec<Recorded>,
    taken: Vec<bool>,
    responses: Vec<Recorded>,
    pub(crate) calls: Vec<CallSummary>,
    captures: Vec<Capture>,
    cmds: Vec<mpsc::UnboundedSender<Cmd>>,
    queue: VecDeque<Script>,
    default: Script,
    pub(crate) t1: Duration,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    changed: watch::Sender<u64>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread poisons nothing we cannot keep reading.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the state and wakes every waiter.
    pub(crate) fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.lock());
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
        out
    }

    pub(crate) fn call(&self, idx: usize, f: impl FnOnce(&mut CallSummary)) {
        self.update(|s| {
            if let Some(c) = s.calls.get_mut(idx) {
                f(c);
            }
        });
    }
}

/// The scripted trunk. Dropping it stops every task and socket.
pub struct Trunk {
    shared: Arc<Shared>,
    pub addr: SocketAddr,
    pub transport: Transport,
    tasks: Vec<JoinHandle<()>>,
    server_names: wire::ServerNames,
}

impl Drop for Trunk {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Trunk {
    /// Listens on 127.0.0.1:0; every INVITE gets [`Script::answer`] until told otherwise.
    pub async fn start(transport: Transport) -> Trunk {
        Trunk::with_script(transport, Script::answer()).await
    }

    /// Listens with `default` for every INVITE not taken by a queued script.
    pub async fn with_script(transport: Transport, default: Script) -> Trunk {
        Trunk::listen(transport, None, default).await
    }

    /// Listens for TLS on 127.0.0.1:0 with `tls` (its certificate), `default` for every INVITE.
    pub async fn start_tls(tls: Arc<rustls::ServerConfig>, default: Script) -> Trunk {
        Trunk::listen(Transport::Tls, Some(tls), default).await
    }

    async fn listen(
        transport: Transport,
        tls: Option<Arc<rustls::ServerConfig>>,
        default: Script,
    ) -> Trunk {
        let (tx, rx) = mpsc::unbounded_channel();
        let (wire, mut tasks) = wire::bind(transport, tls, tx).await;
        let server_names = wire.server_names.clone();
        let (changed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                requests: Vec::new(),
                taken: Vec::new(),
                responses: Vec::new(),
                calls: Vec::new(),
                captures: Vec::new(),
                cmds: Vec::new(),
                queue: VecDeque::new(),
                default,
                t1: Duration::from_millis(500),
            }),
            changed,
        });
        let addr = wire.local;
        tasks.push(tokio::spawn(dispatch(rx, wire, shared.clone())));
        Trunk {
            shared,
            addr,
            transport,
            tasks,
            server_names,
        }
    }

    /// Over TLS: the server name (SNI) each accepted connection asked for, in order; a
    /// handshake that failed is not listed.
    pub fn tls_server_names(&self) -> Vec<Option<String>> {
        self.server_names
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    /// The script for every INVITE the queue does not cover.
    pub fn set_default(&self, s: Script) {
        self.shared.update(|st| st.default = s);
    }

    /// Queues a script for the next new INVITE (one per Call-ID, in order).
    pub fn push(&self, s: Script) {
        self.shared.update(|st| st.queue.push_back(s));
    }

    /// RFC 3261 T1 for the trunk's UDP retransmissions (default 500 ms).
    pub fn set_t1(&self, t1: Duration) {
        self.shared.update(|st| st.t1 = t1);
    }

    /// The `outbound = { ... }` inline table of a `[[trunk]]` pointing at this trunk.
    pub fn outbound_toml(&self, username: &str, password_file: &std::path::Path) -> String {
        format!(
            "outbound = {{ address = \"{}\", transport = \"{}\", username = \"{username}\", password_file = \"{}\" }}",
            self.addr,
            self.transport.token(),
            password_file.display()
        )
    }

    /// Waits (bounded) until `f` returns Some on the state.
    async fn wait<T>(
        &self,
        wait: Duration,
        mut f: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        let mut rx = self.shared.changed.subscribe();
        let deadline = Instant::now() + wait;
        loop {
            if let Some(v) = f(&mut self.shared.lock()) {
                return Some(v);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return f(&mut self.shared.lock()),
            }
        }
    }

    /// The oldest request with `method` not returned before (retransmissions included, each
    /// once), waiting up to `wait`.
    pub async fn next_request(&self, method: &str, wait: Duration) -> Option<Recorded> {
        self.next_request_where(wait, |r| r.method.eq_ignore_ascii_case(method))
            .await
    }

    /// The oldest not yet returned request that satisfies `pred`.
    pub async fn next_request_where(
        &self,
        wait: Duration,
        pred: impl Fn(&Recorded) -> bool,
    ) -> Option<Recorded> {
        self.wait(wait, |s| {
            let i = (0..s.requests.len()).find(|&i| !s.taken[i] && pred(&s.requests[i]))?;
            s.taken[i] = true;
            Some(s.requests[i].clone())
        })
        .await
    }

    /// [`Trunk::next_request`] that fails the test after `wait`.
    pub async fn expect_request(&self, method: &str, wait: Duration) -> Recorded {
        self.next_request(method, wait)
            .await
            .unwrap_or_else(|| panic!("trunk: no {method} within {wait:?}"))
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// Every response the gateway sent the trunk (to its BYE, ...).
    pub fn responses(&self) -> Vec<Recorded> {
        self.shared.lock().responses.clone()
    }

    pub fn calls(&self) -> Vec<CallSummary> {
        self.shared.lock().calls.clone()
    }

    /// Waits until call `idx` exists and satisfies `pred`; returns its summary.
    pub async fn wait_call(
        &self,
        idx: usize,
        wait: Duration,
        pred: impl Fn(&CallSummary) -> bool,
    ) -> Option<CallSummary> {
        self.wait(wait, |s| s.calls.get(idx).filter(|c| pred(c)).cloned())
            .await
    }

    /// [`Trunk::wait_call`] that fails the test with the summary after `wait`.
    pub async fn expect_call(
        &self,
        idx: usize,
        wait: Duration,
        what: &str,
        pred: impl Fn(&CallSummary) -> bool,
    ) -> CallSummary {
        match self.wait_call(idx, wait, pred).await {
            Some(c) => c,
            None => panic!(
                "trunk call {idx}: not {what} within {wait:?}: {:#?}",
                self.shared.lock().calls.get(idx)
            ),
        }
    }

    /// Call `idx`'s captured RTP from the gateway (None before its INVITE).
    pub fn capture(&self, idx: usize) -> Option<Capture> {
        self.shared.lock().captures.get(idx).cloned()
    }

    /// Waits until call `idx`'s captured audio satisfies `pred`.
    pub async fn wait_heard(
        &self,
        idx: usize,
        wait: Duration,
        pred: impl Fn(&Heard) -> bool,
    ) -> bool {
        let deadline = Instant::now() + wait;
        let Some(cap) = self.wait(wait, |s| s.captures.get(idx).cloned()).await else {
            return false;
        };
        let mut changed = cap.changed.clone();
        loop {
            if cap.heard.lock().is_ok_and(|h| pred(&h)) {
                return true;
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => continue,
                _ => return cap.heard.lock().is_ok_and(|h| pred(&h)),
            }
        }
    }

    /// Makes call `idx` send BYE now (false if it is not running).
    pub fn bye(&self, idx: usize) -> bool {
        self.shared
            .lock()
            .cmds
            .get(idx)
            .is_some_and(|tx| tx.send(Cmd::Bye).is_ok())
    }
}

/// A header by full or compact name.
pub fn header<'a>(m: &'a Msg, name: &str) -> Option<&'a str> {
    headers(m, name).into_iter().next()
}

/// Every value of a header (full or compact name), in order.
pub fn headers<'a>(m: &'a Msg, name: &str) -> Vec<&'a str> {
    let compact = match name.to_ascii_lowercase().as_str() {
        "via" => "v",
        "from" => "f",
        "to" => "t",
        "call-id" => "i",
        "contact" => "m",
        "content-length" => "l",
        "content-type" => "c",
        "supported" => "k",
        "session-expires" => "x",
        _ => "",
    };
    m.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name) || (!compact.is_empty() && n == compact))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// CSeq number and method.
pub fn cseq(m: &Msg) -> Option<(u32, String)> {
    let v = header(m, "CSeq")?;
    let mut it = v.split_whitespace();
    let n = it.next()?.parse().ok()?;
    Some((n, it.next()?.to_ascii_uppercase()))
}

/// Request-URI of a request.
pub fn request_uri(m: &Msg) -> &str {
    m.start.split(' ').nth(1).unwrap_or_default()
}

async fn dispatch(
    mut rx: mpsc::UnboundedReceiver<wire::Incoming>,
    wire: wire::Wire,
    shared: Arc<Shared>,
) {
    let mut calls: HashMap<String, (usize, mpsc::UnboundedSender<wire::Incoming>)> = HashMap::new();
    // The call tasks end with this task (the set is dropped when it is aborted).
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(inc) = rx.recv().await {
        while tasks.try_join_next().is_some() {}
        let call_id = header(&inc.msg, "Call-ID").unwrap_or_default().to_string();
        let method = inc.msg.method().map(str::to_ascii_uppercase);
        let known = calls.get(&call_id).map(|(i, _)| *i);
        let is_new_invite = known.is_none()
            && method.as_deref() == Some("INVITE")
            && !call_id.is_empty()
            && inc.msg.to_tag().is_none();
        let new_idx = if is_new_invite {
            Some(shared.lock().calls.len())
        } else {
            None
        };
        record(&shared, &inc, method.as_deref(), known.or(new_idx));
        if let Some((_, tx)) = calls.get(&call_id) {
            let _ = tx.send(inc);
            continue;
        }
        let Some(method) = method else { continue };
        match (new_idx, method.as_str()) {
            (Some(idx), _) if idx < MAX_CALLS => {
                let (tx, call_rx) = mpsc::unbounded_channel();
                let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
                let media = media::CallMedia::bind().await;
                let (script, t1) = shared.update(|s| {
                    s.calls.push(CallSummary::new(idx, &call_id));
                    s.captures.push(media.capture.clone());
                    s.cmds.push(cmd_tx);
                    let script = s.queue.pop_front().unwrap_or_else(|| s.default.clone());
                    (script, s.t1)
                });
                let task = call::CallTask::new(
                    idx,
                    shared.clone(),
                    wire.clone(),
                    script,
                    t1,
                    media,
                    call_rx,
                    cmd_rx,
                );
                tasks.spawn(task.run(inc));
                calls.insert(call_id, (idx, tx));
            }
            (Some(_), _) => {
                let r = call::response(&inc.msg, 503, "", &[], "");
                wire.send(inc.peer, r.as_bytes()).await;
            }
            (None, "ACK") => {}
            (None, "REGISTER") => {
                let contact = header(&inc.msg, "Contact").unwrap_or_default();
                let expires = header(&inc.msg, "Expires").unwrap_or("3600");
                let extra = [(
                    "Contact".to_string(),
                    format!("{contact};expires={expires}"),
                )];
                let r = call::response(&inc.msg, 200, "trunk", &extra, "");
                wire.send(inc.peer, r.as_bytes()).await;
            }
            (None, "OPTIONS") => {
                let r = call::response(&inc.msg, 200, "trunk", &[], "");
                wire.send(inc.peer, r.as_bytes()).await;
            }
            (None, _) => {
                let r = call::response(&inc.msg, 481, "trunk", &[], "");
                wire.send(inc.peer, r.as_bytes()).await;
            }
        }
    }
}

fn record(shared: &Shared, inc: &wire::Incoming, method: Option<&str>, call: Option<usize>) {
    let rec = Recorded {
        method: method
            .map(str::to_string)
            .or_else(|| cseq(&inc.msg).map(|(_, m)| m))
            .unwrap_or_default(),
        uri: if method.is_some() {
            request_uri(&inc.msg).to_string()
        } else {
            String::new()
        },
        status: inc.msg.status(),
        msg: inc.msg.clone(),
        peer: inc.peer,
        at: Instant::now(),
        call,
    };
    shared.update(|s| {
        if s.requests.len() + s.responses.len() >= MAX_RECORDED {
            return;
        }
        if method.is_some() {
            s.requests.push(rec);
            s.taken.push(false);
        } else {
            s.responses.push(rec);
        }
    });
}
