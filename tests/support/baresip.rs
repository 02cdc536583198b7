//! Drives the real `baresip` 1.0.0 SIP UA (Debian `baresip`) from tokio integration tests:
//! writes a private config dir, spawns `baresip -f <dir>`, controls it over `ctrl_tcp` and
//! exposes its events, so tests wait on "call established"/"call closed" instead of sleeping.
//! Must not: touch sound hardware or any address but 127.0.0.1, sleep to wait for state, or
//! leave processes behind (children are `kill_on_drop`, the temp dir is removed on drop).
//!
//! # Modules and config keys (see `config.rs`)
//! - `ctrl_tcp` (`ctrl_tcp_listen 127.0.0.1:<free>`): netstring-framed JSON. Commands are
//!   `{"command":"dial","params":"sip:..","token":"n"}`, relayed to the long commands of `menu`
//!   (so `menu.so` is required: it owns `dial`, `hangup`, `accept`, `sndcode`, `callstat`).
//!   Replies are `{"response":true,"ok":..,"data":"..","token":"n"}`; events are
//!   `{"event":true,"type":"CALL_ESTABLISHED","class":"call","id":<Call-ID>,"param":..}`.
//!   Only one control connection is supported by the module; this harness keeps one open.
//! - `aufile` (`audio_source aufile,<copy of play_wav>`): 1.0.0 has no aufile *player*.
//!   The whole file is loaded at call start; **when it ends, `menu` hangs the call up**
//!   (`CALL_CLOSED`, log `menu: audio error (0,end of file)`). Pad `play_wav` with silence to
//!   outlast the test's call, or use that as a scripted hangup.
//! - `aubridge` (`audio_player aubridge,harness-play`, same for `audio_alert`): a null sink.
//!   A working player is mandatory: without one the decoder is not set and nothing is recorded.
//! - `sndfile` (`snd_path <dir>/rec`): an audio filter that dumps each call to
//!   `dump-<YYYY-MM-DD-hh-mm-ss>-dec.wav` (received, after decoding) and `-enc.wav` (sent), as
//!   16-bit mono at the codec rate (8000 Hz for G.711). The header is only patched when the
//!   call is torn down (mid-call it says 0 data bytes); two calls starting in the same second
//!   of one instance overwrite each other. [`Baresip::save_recording`] and [`Baresip::quit`]
//!   move the newest dump to `record_wav` after checking the header is final.
//! - `g711` (`audio_codecs=` account param, e.g. `PCMU,PCMA`). Telephone-event/8000 (PT 101)
//!   is always offered; `sndcode <digits>` sends RFC 4733 events in RTP (not SIP INFO), each
//!   digit ~180 ms plus a gap; the receiving baresip emits `CALL_DTMF_START` (param = digit)
//!   and `CALL_DTMF_END`.
//! - `account` (`accounts`: `<sip:USER@127.0.0.1[;transport=tcp]>;regint=0;answermode=..`):
//!   no REGISTER; with `transport=tcp` baresip appends `;transport=tcp` to dialled URIs itself.
//! - `net_interface 127.0.0.1` (not `lo`, which 1.0.0 rejects) keeps SDP/RTP on loopback;
//!   `statmode_default off` silences the per-packet status line; no stdio/cons UI, no
//!   STUN/TURN/ICE, no video, no ALSA/pulse.
//!
//! # Quirks
//! - `sip_listen 127.0.0.1:0` binds UDP and TCP to *different* random ports, and TLS is
//!   always bound at SIP port + 1, so ports are picked here (and start retries on a clash).
//! - Readiness: baresip prints `baresip is ready.` on stdout (unbuffered) after loading all
//!   modules, including ctrl_tcp; only then do we connect.
//! - `quit` answers `Quit`, emits `SHUTDOWN` and `EXIT` events, closes the socket, exits 0
//!   within milliseconds; active calls are hung up first, so recordings are finalised.
//! - `CALL_CLOSED` is emitted just before the call (and its sndfile dump) is freed; a
//!   follow-up command's reply (`callstat`) is the barrier after which the file is complete.
//! - Events seen on the caller: CALL_LOCAL_SDP, CALL_RINGING, CALL_REMOTE_SDP,
//!   CALL_ESTABLISHED, CALL_RTCP, CALL_RTPESTAB (first RTP from the peer), CALL_CLOSED
//!   (param "Connection reset by user" after our hangup, "Connection reset by peer" after a
//!   BYE, "end of file" when the play file ran out, "Connection refused" for a closed TCP
//!   port). The callee sees CALL_INCOMING (manual answer mode) or goes straight to
//!   CALL_ESTABLISHED (auto). Over UDP an INVITE to a closed port is only given up after
//!   Timer B (32 s, "Connection timed out"): prefer short waits there.
//! - Timings on loopback: start ~15 ms per instance, dial to established+RTP ~40 ms, DTMF
//!   ~240 ms per digit, hangup to both `CALL_CLOSED` ~4 ms, `quit` ~2 ms. The jitter buffer
//!   (`jitter_buffer_delay 5-10`, default) delays but does not distort received audio.

mod config;
mod ctrl;

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

#[allow(unused_imports)]
pub use config::{Ports, TempDir};
use ctrl::CtrlMsg;
pub use ctrl::Event;

const READY_LINE: &str = "baresip is ready.";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);
/// ctrl_tcp formats "command params" into a 256-byte buffer.
const MAX_COMMAND_LEN: usize = 255;
const START_ATTEMPTS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    /// SIP over TLS; set [`BaresipOptions::ca_file`] to the server's CA.
    Tls,
}

#[derive(Debug, Clone)]
pub struct BaresipOptions {
    /// User part of the account AOR `sip:<user>@127.0.0.1`.
    pub user: String,
    pub transport: Transport,
    /// Played as the microphone; use 8000 Hz mono 16-bit (`wav::write_wav_8k`). Copied.
    pub play_wav: PathBuf,
    /// Where the received audio of the (last) call is moved by `quit`/`save_recording`.
    pub record_wav: Option<PathBuf>,
    pub auto_answer: bool,
    /// Codec names for the account's `audio_codecs`, in preference order.
    pub codecs: Vec<&'static str>,
    /// Pass `-s`: SIP messages are printed to the log (see [`Baresip::log`]).
    pub sip_trace: bool,
    pub binary: PathBuf,
    pub module_path: PathBuf,
    /// `sip_cafile`: the CA that signed the TLS server's certificate.
    pub ca_file: Option<PathBuf>,
    /// `sip_certificate`: certificate and key (one PEM file) of baresip's own TLS listener
    /// (on `sip + 1`), for calls it receives over TLS.
    pub certificate: Option<PathBuf>,
    /// The account's `mediaenc` (`srtp`: RTP/AVP with SDES keys, `srtp-mand`: RTP/SAVP
    /// only); loads the srtp module. `None` → plain RTP.
    pub mediaenc: Option<&'static str>,
    /// Register the account (every 60 s) with the registrar on this loopback port, over the
    /// account's transport, with this password (`auth_pass`). `None` → never registers.
    pub register: Option<(u16, String)>,
}

impl BaresipOptions {
    /// PCMU, manual answer, no recording, binary and modules from `TRUNKGATE_BARESIP` /
    /// `TRUNKGATE_BARESIP_MODULES` or the Debian locations.
    pub fn new(transport: Transport, play_wav: impl Into<PathBuf>) -> Self {
        let env_or = |k: &str, d: &str| std::env::var_os(k).map_or_else(|| d.into(), Into::into);
        BaresipOptions {
            user: "test".into(),
            transport,
            play_wav: play_wav.into(),
            record_wav: None,
            auto_answer: false,
            codecs: vec!["PCMU"],
            sip_trace: false,
            binary: env_or("TRUNKGATE_BARESIP", "/usr/bin/baresip"),
            module_path: env_or("TRUNKGATE_BARESIP_MODULES", "/usr/lib/baresip/modules"),
            ca_file: None,
            certificate: None,
            mediaenc: None,
            register: None,
        }
    }
}

/// What `quit` hands back.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// stdout+stderr, ANSI colours stripped.
    pub log: String,
    pub events: Vec<Event>,
    /// `record_wav`, if set and a call was recorded.
    pub recording: Option<PathBuf>,
}

/// One running baresip. Dropping it kills the process and removes its directory.
pub struct Baresip {
    opts: BaresipOptions,
    ports: Ports,
    child: Child,
    write: OwnedWriteHalf,
    rx: mpsc::UnboundedReceiver<CtrlMsg>,
    /// Events received but not yet returned by a `wait_*` call, oldest first.
    pending: VecDeque<Event>,
    history: Vec<Event>,
    log: Arc<Mutex<String>>,
    pumps: Vec<JoinHandle<()>>,
    next_token: u64,
    closed: Option<String>,
    // Last, so the directory outlives the process on drop.
    dir: config::TempDir,
}

impl Baresip {
    pub async fn start(opts: BaresipOptions) -> io::Result<Baresip> {
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(&opts).await {
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("baresip start failed")))
    }

    async fn start_once(opts: &BaresipOptions) -> io::Result<Baresip> {
        let dir = config::TempDir::new("trunkgate-baresip")?;
        let play = dir.path().join("play.wav");
        std::fs::copy(&opts.play_wav, &play).map_err(|e| annotate(e, &opts.play_wav))?;
        let ports = config::pick_ports()?;
        config::write_dir(dir.path(), opts, ports, config::check_config_path(&play)?)?;

        let mut cmd = Command::new(&opts.binary);
        cmd.arg("-f").arg(dir.path());
        if opts.sip_trace {
            cmd.arg("-s");
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| annotate(e, &opts.binary))?;

        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = oneshot::channel();
        let mut pumps = Vec::new();
        if let Some(out) = child.stdout.take() {
            pumps.push(tokio::spawn(pump(out, log.clone(), Some(ready_tx))));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(tokio::spawn(pump(err, log.clone(), None)));
        }
        let startup = tokio::select! {
            r = ready_rx => r.map_err(|_| "baresip closed stdout before it was ready".to_owned()),
            s = child.wait() => Err(format!("baresip exited during startup: {s:?}")),
            _ = tokio::time::sleep(STARTUP_TIMEOUT) => Err("baresip startup timed out".into()),
        };
        if let Err(why) = startup {
            let text = log_text(&log);
            let kind = if text.contains("in use") {
                io::ErrorKind::AddrInUse
            } else {
                io::ErrorKind::Other
            };
            return Err(io::Error::new(kind, format!("{why}\n{}", tail(&text))));
        }
        // A taken ctrl port is only a warning to baresip; it still reports ready.
        if log_text(&log).contains("ctrl_tcp: failed to listen") {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "ctrl_tcp port taken",
            ));
        }

        let stream = TcpStream::connect(("127.0.0.1", ports.ctrl)).await?;
        let (read, write) = stream.into_split();
        let mut me = Baresip {
            opts: opts.clone(),
            ports,
            child,
            write,
            rx: ctrl::spawn_reader(read),
            pending: VecDeque::new(),
            history: Vec::new(),
            log,
            pumps,
            next_token: 1,
            closed: None,
            dir,
        };
        // Proves the control port belongs to this instance, not whoever won a port race.
        let info = me.command("reginfo", None).await?;
        if !info.contains(&config::aor(&me.opts)) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("foreign ctrl: {info}"),
            ));
        }
        Ok(me)
    }

    /// `sip:<user>@127.0.0.1:<port>` (with `;transport=tcp` for TCP, the TLS port and
    /// `;transport=tls` for TLS): how others reach it.
    pub fn local_uri(&self) -> String {
        let (port, t) = match self.opts.transport {
            Transport::Udp => (self.ports.sip, ""),
            Transport::Tcp => (self.ports.sip, ";transport=tcp"),
            Transport::Tls => (self.ports.sip + 1, ";transport=tls"),
        };
        format!("{}:{port}{t}", config::aor(&self.opts))
    }

    pub fn ports(&self) -> Ports {
        self.ports
    }

    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything printed so far (stdout+stderr, ANSI stripped).
    pub fn log(&self) -> String {
        log_text(&self.log)
    }

    /// Every event received so far, including ones already returned by `wait_*`.
    pub fn events(&self) -> &[Event] {
        &self.history
    }

    /// Sends one command and returns its reply text; `Err` if baresip reports failure.
    pub async fn command(&mut self, command: &str, params: Option<&str>) -> io::Result<String> {
        if let Some(why) = &self.closed {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, why.clone()));
        }
        let len = command.len() + params.map_or(0, |p| p.len() + 1);
        if len > MAX_COMMAND_LEN || command.contains(char::is_whitespace) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "command too long/invalid",
            ));
        }
        let token = self.next_token.to_string();
        self.next_token += 1;
        ctrl::send(
            &mut self.write,
            &ctrl::encode_command(command, params, &token),
        )
        .await?;
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let msg = self.recv_until(deadline).await;
            match msg.map_err(|e| self.explain(e, &format!(" waiting for `{command}` reply")))? {
                CtrlMsg::Response {
                    ok,
                    data,
                    token: Some(t),
                } if t == token => {
                    return if ok {
                        Ok(data)
                    } else {
                        Err(io::Error::other(format!(
                            "baresip `{command}` failed: {data}"
                        )))
                    };
                }
                CtrlMsg::Event(e) => self.pending.push_back(e),
                CtrlMsg::Response { .. } | CtrlMsg::Closed(_) => {}
            }
        }
    }

    /// Next message or a timeout/closed error; records events in the history.
    async fn recv_until(&mut self, deadline: Instant) -> io::Result<CtrlMsg> {
        if let Some(why) = &self.closed {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, why.clone()));
        }
        let msg = match tokio::time::timeout_at(deadline, self.rx.recv()).await {
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")),
            Ok(None) => CtrlMsg::Closed("control reader ended".into()),
            Ok(Some(m)) => m,
        };
        match &msg {
            CtrlMsg::Closed(why) => {
                self.closed = Some(why.clone());
                Err(io::Error::new(io::ErrorKind::BrokenPipe, why.clone()))
            }
            CtrlMsg::Event(e) => {
                self.history.push(e.clone());
                Ok(msg)
            }
            CtrlMsg::Response { .. } => Ok(msg),
        }
    }

    /// Waits for the next event of type `kind` (e.g. `CALL_ESTABLISHED`, `CALL_CLOSED`).
    pub async fn wait_event(&mut self, kind: &str, within: Duration) -> io::Result<Event> {
        self.wait_for(kind, within, |e| e.kind == kind).await
    }

    /// Waits for the oldest unconsumed event matching `pred`; other events stay queued.
    /// On timeout or exit the error lists recent events and the log tail.
    pub async fn wait_for<F>(&mut self, what: &str, within: Duration, pred: F) -> io::Result<Event>
    where
        F: Fn(&Event) -> bool,
    {
        if let Some(i) = self.pending.iter().position(&pred) {
            if let Some(e) = self.pending.remove(i) {
                return Ok(e);
            }
        }
        let deadline = Instant::now() + within;
        loop {
            match self.recv_until(deadline).await {
                Ok(CtrlMsg::Event(e)) if pred(&e) => return Ok(e),
                Ok(CtrlMsg::Event(e)) => self.pending.push_back(e),
                Ok(_) => {}
                Err(err) => return Err(self.explain(err, &format!(" waiting for {what}"))),
            }
        }
    }

    /// Waits for `CALL_ESTABLISHED`, failing as soon as a `CALL_CLOSED` (rejected, refused,
    /// timed out) comes first instead of running into the timeout.
    pub async fn wait_established(&mut self, within: Duration) -> io::Result<Event> {
        let either = |e: &Event| e.kind == "CALL_ESTABLISHED" || e.kind == "CALL_CLOSED";
        let e = self.wait_for("CALL_ESTABLISHED", within, either).await?;
        if e.kind == "CALL_CLOSED" {
            let why = format!("call closed before it was established: {}", e.raw);
            return Err(self.explain(io::Error::new(io::ErrorKind::ConnectionRefused, why), ""));
        }
        Ok(e)
    }

    fn explain(&self, err: io::Error, doing: &str) -> io::Error {
        let kinds: Vec<&str> = self
            .history
            .iter()
            .rev()
            .take(15)
            .map(|e| &*e.kind)
            .collect();
        let msg = format!(
            "{}: {err}{doing}; last events (newest first): {kinds:?}\n{}",
            self.opts.user,
            tail(&self.log())
        );
        io::Error::new(err.kind(), msg)
    }

    /// Places a call. The reply only means "INVITE sent": wait for events for the outcome.
    pub async fn dial(&mut self, uri: &str) -> io::Result<()> {
        self.command("dial", Some(uri)).await.map(drop)
    }

    /// Answers an incoming call (after `CALL_INCOMING`) when `auto_answer` is off.
    pub async fn answer(&mut self) -> io::Result<()> {
        self.command("accept", None).await.map(drop)
    }

    /// Sends DTMF as RFC 4733 telephone-events on the current call; queued, ~240 ms per digit.
    pub async fn send_dtmf(&mut self, digits: &str) -> io::Result<()> {
        if digits.is_empty() || !digits.chars().all(|c| "0123456789*#ABCD".contains(c)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "DTMF digits: 0-9*#A-D",
            ));
        }
        self.command("sndcode", Some(digits)).await.map(drop)
    }

    /// Hangs up the current call; `CALL_CLOSED` follows.
    pub async fn hangup(&mut self) -> io::Result<()> {
        self.command("hangup", None).await.map(drop)
    }

    /// Moves the newest finished call recording (received audio) to `dest`. Call after
    /// `CALL_CLOSED`; errors if no dump exists or its WAV header is not final yet.
    pub async fn save_recording(&mut self, dest: &Path) -> io::Result<PathBuf> {
        // Commands are handled after the event handler that frees the call has returned.
        self.command("callstat", None).await?;
        self.move_recording(dest)
    }

    /// Saved dumps are removed from `rec/`, so whatever is left there is unsaved.
    fn move_recording(&self, dest: &Path) -> io::Result<PathBuf> {
        let rec = self.dir.path().join("rec");
        let mut dumps: Vec<String> = std::fs::read_dir(&rec)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with("-dec.wav"))
            .collect();
        dumps.sort();
        let name = dumps.pop().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no new recording in {rec:?}"),
            )
        })?;
        let src = rec.join(&name);
        let bytes = std::fs::read(&src)?;
        if !super::wav::is_finalized(&bytes) {
            return Err(io::Error::other(format!(
                "{src:?} not finalised (call still up?)"
            )));
        }
        std::fs::write(dest, &bytes)?;
        std::fs::remove_file(&src)?;
        Ok(dest.to_owned())
    }

    /// Sends `quit`, waits for the process to exit (killing it after a timeout), then moves
    /// the last recording to `record_wav` and returns the log and all events.
    pub async fn quit(mut self) -> io::Result<Finished> {
        if self.closed.is_none() {
            let token = self.next_token.to_string();
            let frame = ctrl::encode_command("quit", None, &token);
            // baresip may close the socket before or after replying; both are fine.
            if ctrl::send(&mut self.write, &frame).await.is_ok() {
                let deadline = Instant::now() + EXIT_TIMEOUT;
                while self.recv_until(deadline).await.is_ok() {}
            }
        }
        let status = match timeout(EXIT_TIMEOUT, self.child.wait()).await {
            Ok(s) => s?,
            Err(_) => {
                self.child.kill().await?;
                self.child.wait().await?
            }
        };
        for p in self.pumps.drain(..) {
            let _ = timeout(EXIT_TIMEOUT, p).await;
        }
        let recording = match self.opts.record_wav.clone() {
            Some(dest) => match self.move_recording(&dest) {
                Ok(p) => Some(p),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        Ok(Finished {
            status,
            log: self.log(),
            events: std::mem::take(&mut self.history),
            recording,
        })
    }
}

fn annotate(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn log_text(log: &Mutex<String>) -> String {
    log.lock().map(|s| s.clone()).unwrap_or_default()
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(40);
    format!(
        "--- baresip log tail ---\n{}",
        lines.get(from..).unwrap_or_default().join("\n")
    )
}

/// Copies one output stream into `log` line by line; fires `ready` on baresip's ready line.
async fn pump<R>(r: R, log: Arc<Mutex<String>>, mut ready: Option<oneshot::Sender<()>>)
where
    R: AsyncRead + Unpin,
{
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = strip_ansi(&String::from_utf8_lossy(&buf));
        if line.trim_end() == READY_LINE {
            if let Some(tx) = ready.take() {
                let _ = tx.send(());
            }
        }
        if let Ok(mut l) = log.lock() {
            l.push_str(&line);
        }
    }
}

/// Removes `ESC [ ... letter` colour sequences baresip puts around warnings and SIP traces.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
