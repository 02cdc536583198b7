//! The crash journal: every answered call has an entry on disk until its final record is, so
//! a call that was up when the daemon died still gets its `call.completed` on the next start
//! (PROTOCOLS.md §4: `end_reason: "gateway_restart"`, the duration up to its last checkpoint,
//! billed per `[billing]`, spooled to its callback URL and appended to the CDR).
//!
//! Layout, in `<callbacks.spool_dir>/journal/`, per call:
//! - `<call_id>.call.json` — written when the call is answered: file fsynced, renamed,
//!   directory fsynced. It survives a power loss.
//! - `<call_id>.ckpt.json` — the latest checkpoint (every `[callbacks] checkpoint`): one
//!   `pwrite` over the previous one at offset 0, padded with spaces to the longest written
//!   (JSON allows trailing white space), *without* fsync — no file is created or renamed per
//!   checkpoint (creating and renaming a file per call every few seconds was 3 % of the
//!   gateway's CPU at 500 calls). A `kill -9` (or a panic, or the OOM killer) keeps the page
//!   cache, so the checkpoint is there on the next start; after a power loss it may be missing
//!   or torn, and recovery falls back to the answer's entry (the duration is then up to the
//!   answer: the call is still reported).
//! - `corrupt/` — entries that could not be read, moved aside (and logged), never deleted.
//!
//! Both files hold a whole [`Entry`]; recovery prefers the checkpoint and takes the answer's
//! entry if the checkpoint is unreadable. An entry is removed once the call's final record is
//! on disk. A crash between the two leaves an entry whose recovered record has the same
//! `event_id` as the one already spooled (`evt-<call_id>-<seq>`), so the receiver's
//! de-duplication drops it (the CDR may hold both lines: the restart's says so).
//!
//! Built for 1,000 concurrent calls: the call worker only queues (no I/O, no fsync on its
//! thread); one `journal-writer` thread writes whatever has queued, a call's superseded
//! checkpoints in a batch are skipped, and one directory fsync covers a batch's answers.
//! With the queue full a checkpoint is dropped (the next one follows) and an answer or an end
//! waits for room (backpressure instead of unbounded memory).
//!
//! Owns: the journal's files and their format. Must not: build records itself (that is
//! [`crate::core::call::billing::settle`]) or decide when a call is answered or ends.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::record;
use super::record_writer::{RecordWriter, Written};
use crate::core::call::billing::Rule;
use crate::core::call::EndReason;
use crate::core::hooks::callback::{CallCompleted, CallView, CallbackEvent};
use crate::core::media::vad::Segment;

#[cfg(test)]
mod tests;

/// Operations queued at most (about 40 s of checkpoints of 1,000 calls every 5 s).
const QUEUE: usize = 8192;
/// Operations handled in one batch at most.
const MAX_BATCH: usize = 512;
const VERSION: u32 = 1;

/// One call's journal entry, as on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub v: u32,
    /// Where the recovered `call.completed` goes (`None`: CDR only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// The last `seq` the call used; the recovered record takes the next.
    pub seq: u32,
    /// A call created through the Twilio-compatible API: its recovered `call.completed` is
    /// Twilio's form fields naming this `AccountSid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twilio_account_sid: Option<String>,
    /// When this entry was written: the recovered record's `ended_at`.
    pub checkpoint_at: String,
    /// The call as it stood (`duration_s` up to `checkpoint_at`).
    pub call: CallView,
    /// Both sides' talk so far, `[start_ms, end_ms]` from the answer.
    #[serde(default)]
    pub caller_talk: Vec<[u64; 2]>,
    #[serde(default)]
    pub agent_talk: Vec<[u64; 2]>,
}

type Then = Box<dyn FnOnce() + Send>;

enum Op {
    Answered(Box<Entry>),
    Checkpoint(Box<Entry>),
    Ended(String),
    /// Runs once everything queued before it is done.
    Barrier(Then),
}

impl Op {
    fn call_id(&self) -> Option<&str> {
        match self {
            Op::Answered(e) | Op::Checkpoint(e) => Some(&e.call.call_id),
            Op::Ended(id) => Some(id),
            Op::Barrier(_) => None,
        }
    }
}

/// Where calls journal themselves; cheap to clone. The thread ends when every handle is gone.
#[derive(Clone)]
pub struct Journal {
    tx: Option<mpsc::SyncSender<Op>>,
    /// Checkpoints dropped because the queue was full.
    pub dropped_checkpoints: Arc<AtomicU64>,
}

impl Journal {
    /// Opens (creating) `dir` and starts the writer thread; on failure logs it and returns
    /// a journal that does nothing (calls still work; a crash then loses their records).
    pub fn open(dir: &Path) -> Journal {
        let started = fs::create_dir_all(dir.join("corrupt")).and_then(|()| {
            let (tx, rx) = mpsc::sync_channel(QUEUE);
            let dir = dir.to_path_buf();
            std::thread::Builder::new()
                .name("journal-writer".into())
                .spawn(move || run(&dir, rx))
                .map(|_| tx)
        });
        match started {
            Ok(tx) => Journal {
                tx: Some(tx),
                dropped_checkpoints: Arc::default(),
            },
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "cannot open the call journal; calls up during a crash will have no record");
                Journal::disabled()
            }
        }
    }

    /// A journal that keeps nothing.
    pub fn disabled() -> Journal {
        Journal {
            tx: None,
            dropped_checkpoints: Arc::default(),
        }
    }

    /// The call is answered: its entry (fsynced). `callback_url`: where its `call.completed`
    /// goes; `seq`: the last status event seq it used; `twilio_account_sid`: set when its
    /// callbacks are Twilio's form fields.
    pub fn answered(
        &self,
        view: &CallView,
        callback_url: Option<String>,
        seq: u32,
        twilio_account_sid: Option<String>,
    ) {
        let entry = Entry {
            v: VERSION,
            callback_url,
            seq,
            twilio_account_sid,
            checkpoint_at: jiff::Timestamp::now().to_string(),
            call: view.clone(),
            caller_talk: Vec::new(),
            agent_talk: Vec::new(),
        };
        self.send(Op::Answered(Box::new(entry)));
    }

    /// A checkpoint of an answered call: `view.duration_s` up to now, the talk so far.
    pub fn checkpoint(&self, view: &CallView, caller: &[Segment], agent: &[Segment]) {
        let pairs = |s: &[Segment]| s.iter().map(|g| [g.start_ms, g.end_ms]).collect();
        let entry = Entry {
            v: VERSION,
            // Filled in from the answer's entry by the writer thread.
            callback_url: None,
            seq: 0,
            twilio_account_sid: None,
            checkpoint_at: jiff::Timestamp::now().to_string(),
            call: view.clone(),
            caller_talk: pairs(caller),
            agent_talk: pairs(agent),
        };
        let Some(tx) = &self.tx else { return };
        if let Err(TrySendError::Full(_)) = tx.try_send(Op::Checkpoint(Box::new(entry))) {
            self.dropped_checkpoints.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The call's final record is on disk: its entry goes.
    pub fn ended(&self, call_id: &str) {
        self.send(Op::Ended(call_id.to_string()));
    }

    /// Returns once everything queued so far is done (bounded by `limit`).
    pub async fn flush(&self, limit: Duration) {
        let Some(tx) = self.tx.clone() else { return };
        let (done, rx) = tokio::sync::oneshot::channel();
        let barrier = Op::Barrier(Box::new(move || {
            let _ = done.send(());
        }));
        // The blocking send happens off the runtime's threads.
        let queued = tokio::task::spawn_blocking(move || tx.send(barrier).is_ok());
        if tokio::time::timeout(limit, async {
            if queued.await.unwrap_or(false) {
                let _ = rx.await;
            }
        })
        .await
        .is_err()
        {
            tracing::warn!("call journal not flushed in time");
        }
    }

    fn send(&self, op: Op) {
        let Some(tx) = &self.tx else { return };
        if let Err(TrySendError::Full(op)) = tx.try_send(op) {
            // Rare (the writer is behind by thousands of operations): wait for room rather
            // than lose an answer (a crash would lose the record) or an end (a restart would
            // report a finished call again).
            let _ = tx.send(op);
        }
    }
}

/// Per answered call: where its record goes, its last seq (checkpoints carry neither), and the
/// longest checkpoint written so far (the next one is padded to it).
/// Per answered call: its callback URL, last seq, Twilio AccountSid, longest checkpoint.
type Calls = HashMap<String, (Option<String>, u32, Option<String>, usize)>;

fn run(dir: &Path, rx: mpsc::Receiver<Op>) {
    let mut calls: Calls = HashMap::new();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        write_batch(dir, batch, &mut calls);
    }
}

fn write_batch(dir: &Path, batch: Vec<Op>, calls: &mut Calls) {
    // A call's answer or checkpoint followed in this batch by a newer checkpoint or its end
    // need not be written: only the last state counts.
    let mut last_ckpt: HashMap<&str, usize> = HashMap::new();
    let mut ended: HashSet<&str> = HashSet::new();
    for (i, op) in batch.iter().enumerate() {
        match op {
            Op::Checkpoint(e) => {
                last_ckpt.insert(&e.call.call_id, i);
            }
            Op::Ended(id) => {
                ended.insert(id);
            }
            _ => {}
        }
    }
    let skip: Vec<bool> = batch
        .iter()
        .enumerate()
        .map(|(i, op)| match op {
            Op::Checkpoint(e) => {
                ended.contains(e.call.call_id.as_str())
                    || last_ckpt.get(e.call.call_id.as_str()) != Some(&i)
            }
            Op::Answered(e) => ended.contains(e.call.call_id.as_str()),
            _ => false,
        })
        .collect();
    let mut sync_dir = false;
    let mut thens = Vec::new();
    for (op, skip) in batch.into_iter().zip(skip) {
        let id = op.call_id().map(file_stem);
        match (op, id) {
            (Op::Answered(entry), Some(id)) => {
                calls.insert(
                    entry.call.call_id.clone(),
                    (
                        entry.callback_url.clone(),
                        entry.seq,
                        entry.twilio_account_sid.clone(),
                        0,
                    ),
                );
                if !skip {
                    let path = dir.join(format!("{id}.call.json"));
                    match write_entry(&path, &entry, true) {
                        Ok(()) => sync_dir = true,
                        Err(e) => {
                            tracing::error!(call_id = %entry.call.call_id, error = %e, "cannot journal an answered call")
                        }
                    }
                }
            }
            (Op::Checkpoint(mut entry), Some(id)) => {
                let Some((url, seq, account, longest)) = calls.get_mut(&entry.call.call_id) else {
                    continue;
                };
                if skip {
                    continue;
                }
                entry.callback_url = url.clone();
                entry.seq = *seq;
                entry.twilio_account_sid = account.clone();
                let path = dir.join(format!("{id}.ckpt.json"));
                match overwrite_entry(&path, &entry, *longest) {
                    Ok(len) => *longest = len,
                    Err(e) => {
                        tracing::warn!(call_id = %entry.call.call_id, error = %e, "cannot write a call checkpoint")
                    }
                }
            }
            (Op::Ended(call_id), Some(id)) => {
                calls.remove(&call_id);
                remove_entry(dir, &id);
            }
            (Op::Barrier(then), _) => thens.push(then),
            _ => {}
        }
    }
    if sync_dir {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    for then in thens {
        then();
    }
}

/// A call id as a file name: letters, digits, `-` and `_` only.
fn file_stem(call_id: &str) -> String {
    let s: String = call_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(96)
        .collect();
    if s.is_empty() {
        "call".into()
    } else {
        s
    }
}

/// Writes `entry` to a temporary file and renames it over `path` (fsyncing the file first
/// when `durable`), so `path` is always either the old entry or the new one, whole.
fn write_entry(path: &Path, entry: &Entry, durable: bool) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        if durable {
            f.sync_data()?;
        }
    }
    fs::rename(&tmp, path)
}

/// Writes `entry` over the file at `path` in one `pwrite` at offset 0, padded with spaces to
/// `longest` (the longest entry written there before), so no stale bytes follow it; returns
/// the length now written.
fn overwrite_entry(path: &Path, entry: &Entry, longest: usize) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut bytes = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
    if bytes.len() < longest {
        bytes.resize(longest, b' ');
    }
    let f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    f.write_all_at(&bytes, 0)?;
    Ok(bytes.len())
}

/// Removes a call's files: the checkpoint first, so a crash in between leaves the fsynced
/// entry, which recovery reads as before.
fn remove_entry(dir: &Path, stem: &str) {
    for suffix in ["ckpt.json", "call.json"] {
        let path = dir.join(format!("{stem}.{suffix}"));
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot remove a journal entry")
            }
        }
    }
}

/// What start-up recovery found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Calls whose `call.completed` was written (spool and CDR).
    pub records: usize,
    /// Files that could not be read, moved to `corrupt/`.
    pub corrupt: usize,
}

/// On start, before any call: every entry left in `dir` by a previous run becomes its call's
/// `call.completed` (`gateway_restart`), written through `records`; each entry is removed
/// once its record is on disk. `recording(call_id)` names the call's recording when the
/// crash left one (repaired already): the record gets it as `recording_url`, with
/// `recording_complete: false` (the rest of the call was never recorded). Unreadable files
/// are moved to `corrupt/` and logged; leftover temporary files are removed. Never panics on
/// what it finds.
pub async fn recover(
    dir: &Path,
    records: &RecordWriter,
    rule: Rule,
    recording: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Recovered {
    let mut found = Recovered::default();
    let Ok(listing) = fs::read_dir(dir) else {
        return found;
    };
    // Per call (file stem): the answer's entry and the checkpoint, if present.
    let mut calls: BTreeMap<String, [Option<PathBuf>; 2]> = BTreeMap::new();
    for path in listing.filter_map(|e| e.ok().map(|e| e.path())) {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(".tmp") {
            // A checkpoint (or an answer) torn mid-write; the previous file still stands.
            let _ = fs::remove_file(&path);
        } else if let Some(stem) = name.strip_suffix(".ckpt.json") {
            calls.entry(stem.to_string()).or_default()[0] = Some(path.clone());
        } else if let Some(stem) = name.strip_suffix(".call.json") {
            calls.entry(stem.to_string()).or_default()[1] = Some(path.clone());
        }
    }
    for (stem, files) in calls {
        let mut entry = None;
        for path in files.iter().flatten() {
            match read_entry(path) {
                Ok(e) if entry.is_none() => entry = Some(e),
                Ok(_) => {}
                Err(why) => {
                    found.corrupt += 1;
                    tracing::error!(path = %path.display(), error = %why, "unreadable call journal entry moved to corrupt/");
                    move_aside(dir, path);
                }
            }
        }
        let Some(mut entry) = entry else {
            tracing::error!(call = %stem, "no readable journal entry for a call that was up; its record is lost");
            continue;
        };
        if let Some(url) = recording(&entry.call.call_id) {
            entry.call.recording_url = Some(url);
            entry.call.recording_complete = Some(false);
        }
        let format = match entry.twilio_account_sid.clone() {
            Some(account_sid) => record::CallbackFormat::TwilioForm { account_sid },
            None => record::CallbackFormat::Json,
        };
        let (record, url) = recovered_record(entry, rule);
        tracing::info!(call_id = %record.call.call_id, duration_s = record.call.duration_s, "call was up when the gateway stopped; reporting it");
        let payload = record::payload(&record, &format);
        let (gone_dir, gone_stem) = (dir.to_path_buf(), stem.clone());
        let written = records.write(payload, &record.event_id, url.as_deref(), true, move || {
            remove_entry(&gone_dir, &gone_stem)
        });
        if let Written::Inline = written {
            remove_entry(dir, &stem);
        }
        found.records += 1;
    }
    if found.records > 0 {
        records.flush(Duration::from_secs(30)).await;
    }
    found
}

fn read_entry(path: &Path) -> Result<Entry, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let entry: Entry = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if entry.v != VERSION {
        return Err(format!("unknown journal version {}", entry.v));
    }
    Ok(entry)
}

fn move_aside(dir: &Path, path: &Path) {
    let Some(name) = path.file_name() else { return };
    let corrupt = dir.join("corrupt");
    let _ = fs::create_dir_all(&corrupt);
    if let Err(e) = fs::rename(path, corrupt.join(name)) {
        tracing::error!(path = %path.display(), error = %e, "cannot move a journal entry aside");
    }
}

/// The record of a call found in the journal, and where it goes.
pub fn recovered_record(entry: Entry, rule: Rule) -> (CallCompleted, Option<String>) {
    let why = EndReason::GatewayRestart;
    let mut view = entry.call;
    view.status = why.call_status(true);
    view.sip_status = why.sip_status(true);
    view.end_reason = Some(why.as_str());
    if view.answered_at.is_none() {
        view.answered_at = Some(entry.checkpoint_at.clone());
    }
    view.ended_at = Some(entry.checkpoint_at);
    let segments = |pairs: &[[u64; 2]]| -> Vec<Segment> {
        pairs
            .iter()
            .map(|&[start_ms, end_ms]| Segment { start_ms, end_ms })
            .collect()
    };
    let (caller, agent) = (segments(&entry.caller_talk), segments(&entry.agent_talk));
    crate::core::call::billing::settle(&mut view, &caller, &agent, rule);
    let seq = entry.seq.saturating_add(1);
    (
        record::envelope(CallbackEvent::Completed, seq, view),
        entry.callback_url,
    )
}
