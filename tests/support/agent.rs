//! An in-process WebSocket AGENT for daemon tests: accepts trunkgate's stream on
//! `ws://127.0.0.1:<port>/agent`, speaks the agent side of one dialect (see `agent/wire.rs`),
//! records what it sees (start, decoded caller audio, DTMF, mark echoes, cleared, stop, close,
//! spec violations) with arrival times, and follows a script: actions on start, a DTMF reply
//! to every caller digit, and whatever the test sends it later ([`AgentServer::act`]).
//! Must not: sleep to wait for state (every wait is on an event or a watch, bounded), or keep
//! a socket open after the server is dropped.

mod wire;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

pub use wire::{Dialect, StreamInfo};

/// Something the agent does.
#[derive(Debug, Clone)]
pub enum Action {
    /// `ms` of a `freq` Hz tone at the stream's rate, sent at once in `chunk_ms` pieces.
    Tone {
        freq: f32,
        ms: u32,
        chunk_ms: u32,
    },
    /// The same as L16 at `rate` whatever the stream's format (plivo lets an agent play
    /// another rate than the stream's).
    ToneAt {
        freq: f32,
        ms: u32,
        chunk_ms: u32,
        rate: u32,
    },
    Mark(String),
    Clear,
    Dtmf(String),
    Hangup,
    /// Asks for a transfer to this number or URI.
    Transfer(String),
    /// Drops the TCP connection without a WebSocket close.
    Drop,
    /// Starts the WebSocket close handshake.
    Close,
}

/// What the agent saw or did.
#[derive(Debug, Clone)]
pub enum Seen {
    /// A WebSocket connection was accepted (1 for the first).
    Connected(usize),
    Hello(Value),
    Start(Value),
    Dtmf(char),
    Marked(String),
    Cleared,
    Stop(Value),
    /// The stream ended: `clean` when trunkgate sent a close frame.
    Closed {
        clean: bool,
    },
    /// An action was carried out (its messages handed to the socket).
    Did(String),
    Violation(String),
    Other(Value),
}

#[derive(Debug, Clone)]
pub struct Note {
    pub at: Instant,
    pub seen: Seen,
}

/// The script an agent follows by itself.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub on_start: Vec<Action>,
    /// Sent as DTMF whenever the caller presses a digit.
    pub on_dtmf: Option<String>,
}

/// Caller audio as the agent decoded it, at the stream's rate.
#[derive(Debug, Clone, Default)]
pub struct Heard {
    pub rate: u32,
    pub pcm: Vec<i16>,
    pub frames: usize,
}

struct Shared {
    notes: mpsc::UnboundedSender<Note>,
    heard: Mutex<Heard>,
    heard_tx: watch::Sender<usize>,
    /// The latest connection's command queue.
    cmds: Mutex<Option<mpsc::UnboundedSender<Action>>>,
}

impl Shared {
    fn note(&self, seen: Seen) {
        let _ = self.notes.send(Note {
            at: Instant::now(),
            seen,
        });
    }
}

pub struct AgentServer {
    pub url: String,
    pub dialect: Dialect,
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Note>,
    pending: VecDeque<Note>,
    /// Every note received so far (including those returned by `expect`).
    pub history: Vec<Note>,
    heard_rx: watch::Receiver<usize>,
    task: JoinHandle<()>,
}

impl Drop for AgentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AgentServer {
    pub async fn start(dialect: Dialect, script: Script) -> AgentServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind agent");
        let addr = listener.local_addr().expect("agent addr");
        let (tx, rx) = mpsc::unbounded_channel();
        let (heard_tx, heard_rx) = watch::channel(0);
        let shared = Arc::new(Shared {
            notes: tx,
            heard: Mutex::new(Heard::default()),
            heard_tx,
            cmds: Mutex::new(None),
        });
        let task = tokio::spawn(accept_loop(listener, dialect, script, shared.clone()));
        AgentServer {
            url: format!("ws://{addr}/agent"),
            dialect,
            shared,
            rx,
            pending: VecDeque::new(),
            history: Vec::new(),
            heard_rx,
            task,
        }
    }

    /// Tells the current connection to carry out `action`.
    pub fn act(&self, action: Action) {
        let cmds = self.shared.cmds.lock().expect("cmds lock");
        cmds.as_ref()
            .expect("no agent connection yet")
            .send(action)
            .expect("agent connection gone");
    }

    /// The oldest unconsumed note matching `pred`; others stay queued. Panics after `wait`.
    pub async fn expect(
        &mut self,
        what: &str,
        wait: Duration,
        pred: impl Fn(&Seen) -> bool,
    ) -> Note {
        if let Some(i) = self.pending.iter().position(|n| pred(&n.seen)) {
            if let Some(n) = self.pending.remove(i) {
                return n;
            }
        }
        let deadline = Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(n)) => {
                    self.history.push(n.clone());
                    if pred(&n.seen) {
                        return n;
                    }
                    self.pending.push_back(n);
                }
                Ok(None) => panic!("agent server ended while waiting for {what}"),
                Err(_) => panic!(
                    "timed out waiting for the agent to see {what}; seen: {:?}",
                    self.history.iter().map(|n| &n.seen).collect::<Vec<_>>()
                ),
            }
        }
    }

    /// The start message (waits for it).
    pub async fn start_msg(&mut self, wait: Duration) -> Value {
        match self
            .expect("start", wait, |s| matches!(s, Seen::Start(_)))
            .await
            .seen
        {
            Seen::Start(v) => v,
            _ => unreachable!(),
        }
    }

    /// Drains whatever arrived so far into `history` without waiting.
    pub fn drain(&mut self) {
        while let Ok(n) = self.rx.try_recv() {
            self.history.push(n.clone());
            self.pending.push_back(n);
        }
    }

    /// Spec violations seen so far.
    pub fn violations(&mut self) -> Vec<String> {
        self.drain();
        self.history
            .iter()
            .filter_map(|n| match &n.seen {
                Seen::Violation(v) => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    /// DTMF digits received so far, in order.
    pub fn digits(&mut self) -> String {
        self.drain();
        self.history
            .iter()
            .filter_map(|n| match n.seen {
                Seen::Dtmf(d) => Some(d),
                _ => None,
            })
            .collect()
    }

    pub fn heard(&self) -> Heard {
        self.shared.heard.lock().expect("heard lock").clone()
    }

    /// Waits until the caller audio heard so far satisfies `pred`; false after `wait`.
    pub async fn wait_heard(&mut self, wait: Duration, pred: impl Fn(&Heard) -> bool) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            if pred(&self.heard()) {
                return true;
            }
            match tokio::time::timeout_at(deadline, self.heard_rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return pred(&self.heard()),
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, dialect: Dialect, script: Script, shared: Arc<Shared>) {
    let mut count = 0;
    while let Ok((tcp, _)) = listener.accept().await {
        count += 1;
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut cmds) = shared.cmds.lock() {
            *cmds = Some(tx);
        }
        tokio::spawn(session(
            tcp,
            count,
            dialect,
            script.clone(),
            rx,
            shared.clone(),
        ));
    }
}

async fn session(
    tcp: TcpStream,
    conn: usize,
    dialect: Dialect,
    script: Script,
    mut cmds: mpsc::UnboundedReceiver<Action>,
    shared: Arc<Shared>,
) {
    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
        shared.note(Seen::Violation("WebSocket handshake failed".into()));
        return;
    };
    shared.note(Seen::Connected(conn));
    let (mut sink, mut stream) = ws.split();
    let mut checker = wire::Checker::new(dialect);
    let mut problems = Vec::new();
    loop {
        let actions: Vec<Action> = tokio::select! {
            msg = stream.next() => {
                let msg = match msg {
                    Some(Ok(Message::Close(_))) => {
                        shared.note(Seen::Closed { clean: true });
                        // Let tungstenite answer the close, then end.
                        while let Some(Ok(_)) = stream.next().await {}
                        return;
                    }
                    Some(Ok(m)) => m,
                    Some(Err(_)) | None => {
                        shared.note(Seen::Closed { clean: false });
                        return;
                    }
                };
                let incoming = checker.decode(&msg, &mut problems);
                for p in problems.drain(..) {
                    shared.note(Seen::Violation(p));
                }
                match incoming {
                    Some(wire::Incoming::Audio(pcm)) => {
                        if let Ok(mut h) = shared.heard.lock() {
                            h.rate = checker.info().map_or(0, |i| i.rate);
                            h.pcm.extend_from_slice(&pcm);
                            h.frames += 1;
                            shared.heard_tx.send_replace(h.frames);
                        }
                        Vec::new()
                    }
                    Some(wire::Incoming::Start(v, _)) => {
                        shared.note(Seen::Start(v));
                        script.on_start.clone()
                    }
                    Some(wire::Incoming::Dtmf(d)) => {
                        shared.note(Seen::Dtmf(d));
                        script.on_dtmf.iter().map(|r| Action::Dtmf(r.clone())).collect()
                    }
                    Some(wire::Incoming::Hello(v)) => { shared.note(Seen::Hello(v)); Vec::new() }
                    Some(wire::Incoming::Marked(m)) => { shared.note(Seen::Marked(m)); Vec::new() }
                    Some(wire::Incoming::Cleared) => { shared.note(Seen::Cleared); Vec::new() }
                    Some(wire::Incoming::Stop(v)) => { shared.note(Seen::Stop(v)); Vec::new() }
                    Some(wire::Incoming::Other(v)) => { shared.note(Seen::Other(v)); Vec::new() }
                    None => Vec::new(),
                }
            }
            cmd = cmds.recv() => match cmd {
                Some(a) => vec![a],
                None => return,
            },
        };
        for action in actions {
            let info = checker.info().cloned().unwrap_or_default();
            let label = format!("{action:?}");
            let msgs = match action {
                Action::Tone { freq, ms, chunk_ms } => {
                    wire::tone(dialect, &info, freq, ms, chunk_ms)
                }
                Action::ToneAt {
                    freq,
                    ms,
                    chunk_ms,
                    rate,
                } => {
                    let at = StreamInfo {
                        rate,
                        mulaw: false,
                        ..info
                    };
                    wire::tone(dialect, &at, freq, ms, chunk_ms)
                }
                Action::Mark(name) => vec![wire::mark(dialect, &info, &name)],
                Action::Clear => vec![wire::clear(dialect, &info)],
                Action::Dtmf(d) => vec![wire::dtmf(dialect, &d)],
                Action::Hangup => vec![wire::hangup(dialect)],
                Action::Transfer(to) => vec![wire::transfer(dialect, &to)],
                Action::Close => vec![Message::Close(None)],
                Action::Drop => {
                    shared.note(Seen::Did(label));
                    // Dropping both halves closes the TCP stream without a close frame.
                    return;
                }
            };
            for m in msgs {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
            shared.note(Seen::Did(label));
        }
    }
}
