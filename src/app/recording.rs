//! Call recordings on disk (PROTOCOLS.md §3 `GET /v1/calls/{id}/recording`): one stereo 8 kHz
//! WAV per call in the recordings directory, `<call_id>.wav.part` while it is written,
//! `<call_id>.wav` once finished (or repaired after a crash).
//!
//! Owns: the directory's layout, the one writer thread that appends every call's audio (fed by
//! a bounded queue; a full queue drops the chunk and marks the recording incomplete, never
//! blocks the caller), patching the header and the rename on finish, crash repair of leftover
//! `.part` files on open, and retention sweeps.
//! Must not: block a call task (pushes are `try_send`; only `finish` waits, bounded), panic or
//! unwrap on an I/O error (they are logged and the recording marked incomplete), know about
//! HTTP, or decide which calls are recorded (the call driver does).
//!
//! Ordering: `push` and `finish` of one recording come from one owner (`&mut self`/`self`),
//! but a start or finish message that found the queue full goes through a side list the writer
//! drains after each message it receives; the finish message carries how many chunks were
//! queued, so the writer finishes a file only after its last queued chunk.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::core::media::wav::{encode_header, CHANNELS, HEADER_LEN, MAX_DATA_LEN, RATE};

/// Chunks (and start/finish messages) the writer's queue holds.
pub const QUEUE_CHUNKS: usize = 256;
/// How long [`Recording::finish`] waits for the writer to confirm.
pub const FINISH_WAIT: Duration = Duration::from_secs(2);
/// Bytes of one stereo 16-bit frame.
const FRAME: u64 = 4;

/// The recordings directory and its writer thread.
pub struct Recordings {
    dir: PathBuf,
    retention: Option<Duration>,
    shared: Arc<Shared>,
    tx: SyncSender<Msg>,
}

/// What the handles and the writer thread share.
struct Shared {
    /// Call ids with a recording started and not yet renamed to `.wav`.
    active: Mutex<HashSet<String>>,
    /// Start/finish messages that found the queue full; drained by the writer.
    overflow: Mutex<Vec<Msg>>,
}

/// One call's recording; dropping it without [`Recording::finish`] finishes it too.
pub struct Recording {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
    call_id: Arc<str>,
    path: PathBuf,
    /// Chunks queued to the writer.
    sent: u64,
    /// Chunks dropped because the queue was full.
    dropped: u64,
    /// Stereo frames queued (the duration if the writer does not answer in time).
    frames: u64,
    ended: bool,
}

/// What a finished recording leaves for the call's record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingOutcome {
    /// The finished `<dir>/<call_id>.wav`.
    pub path: PathBuf,
    /// Every chunk reached the file and every write succeeded.
    pub complete: bool,
    /// Seconds of audio in the file.
    pub duration_s: f64,
    pub dropped_chunks: u64,
}

enum Msg {
    Start {
        call_id: Arc<str>,
    },
    Chunk {
        call_id: Arc<str>,
        samples: Vec<i16>,
    },
    Finish {
        call_id: Arc<str>,
        /// Chunks queued before this message: the file is finished after the last of them.
        sent: u64,
        dropped: u64,
        reply: Option<SyncSender<RecordingOutcome>>,
    },
    /// Makes the writer look at the side list.
    Wake,
}

/// Whether `id` may name a recording file: `[A-Za-z0-9_-]{1,64}`.
pub fn valid_call_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The URL of a call's recording as records give it: on the control API's address when there
/// is one (`http://<addr>/v1/calls/<id>/recording`), else the path alone. An address with
/// port 0 is not one a client can use: the path alone too.
pub fn url(api: Option<std::net::SocketAddr>, call_id: &str) -> String {
    match api {
        Some(addr) if addr.port() != 0 => format!("http://{addr}/v1/calls/{call_id}/recording"),
        _ => format!("/v1/calls/{call_id}/recording"),
    }
}

impl Recordings {
    /// Creates `dir` if needed, repairs what a crash left (every `*.wav.part` gets its sizes
    /// from its length and becomes `.wav`), and starts the writer thread.
    pub fn open(dir: PathBuf, retention: Option<Duration>) -> io::Result<Recordings> {
        Recordings::open_with(dir, retention, QUEUE_CHUNKS, None)
    }

    /// [`Recordings::open`] with a queue of `capacity` messages; with `gate`, the writer
    /// waits for one message (or its sender's drop) on it before taking anything (tests).
    pub(crate) fn open_with(
        dir: PathBuf,
        retention: Option<Duration>,
        capacity: usize,
        gate: Option<Receiver<()>>,
    ) -> io::Result<Recordings> {
        fs::create_dir_all(&dir)?;
        let repaired = repair_dir(&dir);
        if repaired > 0 {
            tracing::warn!(dir = %dir.display(), repaired, "recordings left unfinished by the previous run were repaired");
        }
        let shared = Arc::new(Shared {
            active: Mutex::new(HashSet::new()),
            overflow: Mutex::new(Vec::new()),
        });
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let writer = Writer {
            dir: dir.clone(),
            shared: shared.clone(),
            open: HashMap::new(),
            scratch: Vec::new(),
        };
        std::thread::Builder::new()
            .name("recording-writer".into())
            .spawn(move || {
                if let Some(gate) = gate {
                    let _ = gate.recv();
                }
                writer.run(rx);
            })?;
        Ok(Recordings {
            dir,
            retention,
            shared,
            tx,
        })
    }

    /// A recording for this call (`<dir>/<call_id>.wav.part`, created by the writer); `None`
    /// for an id that is not `[A-Za-z0-9_-]{1,64}` or whose recording is already running.
    pub fn start(&self, call_id: &str) -> Option<Recording> {
        if !valid_call_id(call_id) {
            return None;
        }
        if !lock(&self.shared.active).insert(call_id.to_string()) {
            return None;
        }
        let call_id: Arc<str> = Arc::from(call_id);
        let rec = Recording {
            tx: self.tx.clone(),
            shared: self.shared.clone(),
            path: self.dir.join(format!("{call_id}.wav")),
            call_id: call_id.clone(),
            sent: 0,
            dropped: 0,
            frames: 0,
            ended: false,
        };
        rec.send_control(Msg::Start { call_id });
        Some(rec)
    }

    /// The finished file for a call (`<dir>/<call_id>.wav`), if it exists.
    pub fn finished(&self, call_id: &str) -> Option<PathBuf> {
        if !valid_call_id(call_id) {
            return None;
        }
        let path = self.dir.join(format!("{call_id}.wav"));
        path.is_file().then_some(path)
    }

    /// Whether a call's recording is still being written.
    pub fn in_progress(&self, call_id: &str) -> bool {
        valid_call_id(call_id)
            && (lock(&self.shared.active).contains(call_id)
                || self.dir.join(format!("{call_id}.wav.part")).exists())
    }

    /// Deletes finished recordings whose mtime is older than the retention; returns how many.
    pub fn sweep(&self) -> usize {
        let Some(retention) = self.retention else {
            return 0;
        };
        let Some(cutoff) = SystemTime::now().checked_sub(retention) else {
            return 0;
        };
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot list recordings");
                return 0;
            }
        };
        let mut deleted = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "wav") {
                continue;
            }
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < cutoff);
            if !old {
                continue;
            }
            match fs::remove_file(&path) {
                Ok(()) => deleted += 1,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot delete an expired recording")
                }
            }
        }
        deleted
    }
}

impl Recording {
    /// Interleaved stereo samples (left, right, … at 8 kHz), appended by the writer thread.
    /// Never blocks: when the queue is full the chunk is dropped, the recording marked
    /// incomplete, and `false` returned. An odd trailing sample is padded with silence.
    pub fn push(&mut self, interleaved: Vec<i16>) -> bool {
        let frames = interleaved.len().div_ceil(2) as u64;
        let msg = Msg::Chunk {
            call_id: self.call_id.clone(),
            samples: interleaved,
        };
        match self.tx.try_send(msg) {
            Ok(()) => {
                self.sent += 1;
                self.frames += frames;
                true
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped += 1;
                false
            }
        }
    }

    /// The call this recording is for.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Ends it: the writer patches the header, fsyncs and renames `.part` → `.wav`. Waits up
    /// to [`FINISH_WAIT`] for the writer; past that the outcome is marked incomplete (the
    /// writer still finishes the file).
    pub fn finish(mut self) -> RecordingOutcome {
        let (reply, answer) = mpsc::sync_channel(1);
        self.end(Some(reply));
        answer
            .recv_timeout(FINISH_WAIT)
            .unwrap_or_else(|_| RecordingOutcome {
                path: self.path.clone(),
                complete: false,
                duration_s: self.frames as f64 / f64::from(RATE),
                dropped_chunks: self.dropped,
            })
    }

    fn end(&mut self, reply: Option<SyncSender<RecordingOutcome>>) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.send_control(Msg::Finish {
            call_id: self.call_id.clone(),
            sent: self.sent,
            dropped: self.dropped,
            reply,
        });
    }

    /// A start or finish message: never lost to a full queue (the side list takes it).
    fn send_control(&self, msg: Msg) {
        match self.tx.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(msg)) => {
                lock(&self.shared.overflow).push(msg);
                // The writer drains the side list after each message it receives: either
                // this wake-up is queued, or the queue is still full and it will receive
                // another message after the push above.
                let _ = self.tx.try_send(Msg::Wake);
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::warn!(call_id = %self.call_id, "the recording writer has stopped");
            }
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.end(None);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One file being written.
struct Open {
    /// `None` once creating or writing it failed.
    file: Option<BufWriter<File>>,
    data_len: u64,
    received: u64,
    failed: bool,
    /// A finish that arrived before its last chunks (through the side list).
    finish: Option<(u64, u64, Option<SyncSender<RecordingOutcome>>)>,
}

struct Writer {
    dir: PathBuf,
    shared: Arc<Shared>,
    open: HashMap<Arc<str>, Open>,
    /// The little-endian bytes of one chunk (reused: no allocation per chunk).
    scratch: Vec<u8>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        while let Ok(msg) = rx.recv() {
            let overflow = std::mem::take(&mut *lock(&self.shared.overflow));
            for m in overflow {
                self.handle(m);
            }
            self.handle(msg);
        }
        // Every handle is gone: anything still open is finished as it stands.
        let overflow = std::mem::take(&mut *lock(&self.shared.overflow));
        for m in overflow {
            self.handle(m);
        }
        let left: Vec<Arc<str>> = self.open.keys().cloned().collect();
        for id in left {
            self.complete(&id, 0, None);
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Start { call_id } => {
                self.entry(&call_id);
            }
            Msg::Wake => {}
            Msg::Chunk { call_id, samples } => {
                self.append(&call_id, &samples);
                let ready = self.open.get_mut(&call_id).and_then(|o| {
                    let last = o.finish.as_ref().is_some_and(|f| o.received >= f.0);
                    if last {
                        o.finish.take()
                    } else {
                        None
                    }
                });
                if let Some((_, dropped, reply)) = ready {
                    self.complete(&call_id, dropped, reply);
                }
            }
            Msg::Finish {
                call_id,
                sent,
                dropped,
                reply,
            } => {
                let open = self.entry(&call_id);
                if open.received < sent {
                    open.finish = Some((sent, dropped, reply));
                } else {
                    self.complete(&call_id, dropped, reply);
                }
            }
        }
    }

    /// The call's open file, created (with a provisional header) on first use.
    fn entry(&mut self, call_id: &Arc<str>) -> &mut Open {
        let dir = &self.dir;
        self.open.entry(call_id.clone()).or_insert_with(|| {
            let path = dir.join(format!("{call_id}.wav.part"));
            let file = File::create(&path).and_then(|f| {
                let mut w = BufWriter::new(f);
                w.write_all(&encode_header(CHANNELS, RATE, 0))?;
                w.flush()?;
                Ok(w)
            });
            match file {
                Ok(w) => Open {
                    file: Some(w),
                    data_len: 0,
                    received: 0,
                    failed: false,
                    finish: None,
                },
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot create a recording");
                    Open {
                        file: None,
                        data_len: 0,
                        received: 0,
                        failed: true,
                        finish: None,
                    }
                }
            }
        })
    }

    fn append(&mut self, call_id: &Arc<str>, samples: &[i16]) {
        let mut buf = std::mem::take(&mut self.scratch);
        self.write_chunk(call_id, samples, &mut buf);
        self.scratch = buf;
    }

    fn write_chunk(&mut self, call_id: &Arc<str>, samples: &[i16], buf: &mut Vec<u8>) {
        let open = self.entry(call_id);
        open.received += 1;
        let frames = samples.len().div_ceil(2) as u64;
        let bytes = frames * FRAME;
        if open.data_len + bytes > u64::from(MAX_DATA_LEN) {
            if !open.failed {
                tracing::warn!(%call_id, "recording reached the WAV size limit; the rest is not recorded");
            }
            open.failed = true;
            return;
        }
        let Some(w) = open.file.as_mut() else {
            return;
        };
        buf.clear();
        for s in samples {
            buf.extend_from_slice(&s.to_le_bytes());
        }
        if samples.len() % 2 == 1 {
            buf.extend_from_slice(&0i16.to_le_bytes());
        }
        let mut result = w.write_all(buf);
        // Flushed every second chunk (40 ms of audio at 20 ms chunks), so `kill -9` keeps
        // all but the last chunk or so.
        if result.is_ok() && open.received % 2 == 0 {
            result = w.flush();
        }
        match result {
            Ok(()) => open.data_len += bytes,
            Err(e) => {
                tracing::warn!(%call_id, error = %e, "cannot write a recording; it stops here");
                open.failed = true;
                open.file = None;
            }
        }
    }

    /// Patches the sizes, fsyncs, renames to `.wav` and answers.
    fn complete(
        &mut self,
        call_id: &Arc<str>,
        dropped: u64,
        reply: Option<SyncSender<RecordingOutcome>>,
    ) {
        let Some(open) = self.open.remove(call_id) else {
            return;
        };
        let part = self.dir.join(format!("{call_id}.wav.part"));
        let path = self.dir.join(format!("{call_id}.wav"));
        let mut ok = !open.failed;
        let data_len = u32::try_from(open.data_len).unwrap_or(MAX_DATA_LEN);
        if let Some(w) = open.file {
            let patched = w
                .into_inner()
                .map_err(|e| e.into_error())
                .and_then(|mut f| {
                    f.seek(SeekFrom::Start(0))?;
                    f.write_all(&encode_header(CHANNELS, RATE, data_len))?;
                    f.sync_all()
                });
            if let Err(e) = patched {
                tracing::warn!(path = %part.display(), error = %e, "cannot finish a recording's header");
                ok = false;
            }
        } else if part.exists() {
            // A write failed midway: the sizes from what reached the file, as after a crash.
            if let Err(e) = repair(&part) {
                tracing::warn!(path = %part.display(), error = %e, "cannot repair a failed recording");
            }
        }
        if part.exists() {
            if let Err(e) = fs::rename(&part, &path) {
                tracing::warn!(path = %part.display(), error = %e, "cannot rename a finished recording");
                ok = false;
            }
        }
        lock(&self.shared.active).remove(&**call_id);
        let outcome = RecordingOutcome {
            path,
            complete: ok && dropped == 0,
            duration_s: f64::from(data_len) / FRAME as f64 / f64::from(RATE),
            dropped_chunks: dropped,
        };
        if let Some(reply) = reply {
            let _ = reply.try_send(outcome);
        }
    }
}

/// Repairs every `*.wav.part` in `dir`: sizes rewritten from the length (cut to whole frames),
/// renamed to `.wav`. Returns how many were repaired.
fn repair_dir(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut repaired = 0;
    for entry in entries.flatten() {
        let part = entry.path();
        let Some(name) = part.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".wav.part") else {
            continue;
        };
        let path = dir.join(format!("{stem}.wav"));
        match repair(&part).and_then(|()| fs::rename(&part, &path)) {
            Ok(()) => repaired += 1,
            Err(e) => {
                tracing::warn!(path = %part.display(), error = %e, "cannot repair an unfinished recording")
            }
        }
    }
    repaired
}

/// Rewrites a crashed recording's header from its length, truncated to whole frames.
fn repair(part: &Path) -> io::Result<()> {
    let mut f = OpenOptions::new().read(true).write(true).open(part)?;
    let len = f.metadata()?.len();
    let data = (len.saturating_sub(HEADER_LEN as u64) / FRAME * FRAME).min(u64::from(MAX_DATA_LEN));
    f.set_len(HEADER_LEN as u64 + data)?;
    f.seek(SeekFrom::Start(0))?;
    let data = u32::try_from(data).unwrap_or(MAX_DATA_LEN);
    f.write_all(&encode_header(CHANNELS, RATE, data))?;
    f.sync_all()
}

/// `[recording] retention`: old recordings are deleted hourly (and once at start), off the
/// runtime's threads; ends with the gateway.
pub async fn sweep_every_hour(recordings: std::sync::Weak<Recordings>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        let Some(r) = recordings.upgrade() else {
            return;
        };
        let deleted = tokio::task::spawn_blocking(move || r.sweep())
            .await
            .unwrap_or(0);
        if deleted > 0 {
            tracing::info!(deleted, "recordings past their retention deleted");
        }
    }
}

#[cfg(test)]
#[path = "recording_tests.rs"]
mod tests;
