//! Call records leave the call's path here. One writer thread takes every record (callback
//! spool file + CDR line) and writes whatever has queued up together: a sync per spool file,
//! but one directory sync and one CDR sync per batch, instead of three syncs per call on the
//! thread that ended it. Only then does it run each record's `then`, so what must follow a
//! durable record still does: the final response to a policy rejection leaves after its
//! record is on disk, and a call task reports its end after its record is safe.
//!
//! Neither the SIP endpoint task nor a call worker waits on the disk any more. 9,000 INVITEs
//! offered at 3,000/s, all refused by policy, each with a callback: 7.1 s to refuse them all
//! with the records written inline, 3.5 s through this writer.
//!
//! Only `call.completed` records become CDR lines; the other status events are spooled only.
//!
//! Owns: the CDR file, the batching, the bounded queue (full → the caller writes its record
//! itself, at once: backpressure instead of unbounded memory under a flood). A record that
//! cannot be written is logged whole (never dropped silently); its `then` runs all the same.

use std::fs::File;
use std::io::Write;
use std::sync::mpsc::{self, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::io::spool::{Spool, Submission};

/// The Content-Type of a [`Payload::form`] callback.
const FORM: &str = "application/x-www-form-urlencoded";

/// One record as the writer takes it ([`super::record::payload`] makes it): its JSON, which
/// is the CDR line and the callback's body, unless `form` is set (a call created through the
/// Twilio-compatible API): then that form body is what the callback POSTs.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub json: String,
    pub form: Option<String>,
}

impl From<String> for Payload {
    fn from(json: String) -> Payload {
        Payload { json, form: None }
    }
}

/// Records written in one batch at most.
const MAX_BATCH: usize = 256;
/// Records queued at most. Beyond that the caller writes its record itself, at once (the old
/// inline way): under a sustained flood the disk sets the pace instead of memory filling up.
const QUEUE: usize = 4096;

type Then = Box<dyn FnOnce() + Send>;

enum Job {
    Record {
        json: String,
        /// The callback's form body, when it is not `json`.
        form: Option<String>,
        event_id: String,
        url: Option<String>,
        /// Appended to the CDR file too (only `call.completed` records are).
        cdr: bool,
        then: Then,
    },
    /// Runs once every record queued before it is on disk.
    Barrier(Then),
}

/// What the writer thread and the inline path write to.
struct Sink {
    spool: Option<Spool>,
    cdr: Mutex<Option<File>>,
}

/// Where records are sent; cheap to clone. The thread ends when every handle is gone.
#[derive(Clone)]
pub struct RecordWriter {
    tx: mpsc::SyncSender<Job>,
    sink: Arc<Sink>,
}

/// How a record was taken.
#[must_use]
pub enum Written {
    /// Queued: its `then` runs on the writer thread once the record is on disk.
    Queued,
    /// The queue was full (or the writer gone): the record was written by the caller, is on
    /// disk now, and its `then` will not run.
    Inline,
}

impl RecordWriter {
    pub fn start(spool: Option<Spool>, cdr: Option<File>) -> std::io::Result<RecordWriter> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let sink = Arc::new(Sink {
            spool,
            cdr: Mutex::new(cdr),
        });
        let thread_sink = sink.clone();
        std::thread::Builder::new()
            .name("record-writer".into())
            .spawn(move || run(rx, &thread_sink))?;
        Ok(RecordWriter { tx, sink })
    }

    /// Queues a record (spooled for `url` when given, and a CDR line when `cdr`); `then`
    /// runs once it is on disk (or failed and was logged). See [`Written`] for the full queue.
    pub fn write(
        &self,
        payload: impl Into<Payload>,
        event_id: &str,
        url: Option<&str>,
        cdr: bool,
        then: impl FnOnce() + Send + 'static,
    ) -> Written {
        let Payload { json, form } = payload.into();
        let job = Job::Record {
            json,
            form,
            event_id: event_id.to_string(),
            url: url.map(str::to_string),
            cdr,
            then: Box::new(then),
        };
        match self.tx.try_send(job) {
            Ok(()) => Written::Queued,
            Err(TrySendError::Full(job)) | Err(TrySendError::Disconnected(job)) => {
                write_batch(std::slice::from_ref(&job), &self.sink);
                Written::Inline
            }
        }
    }

    /// Queues a record and returns once it is on disk.
    pub async fn write_and_wait(
        &self,
        payload: impl Into<Payload>,
        event_id: &str,
        url: Option<&str>,
        cdr: bool,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let written = self.write(payload, event_id, url, cdr, move || {
            let _ = tx.send(());
        });
        if let Written::Queued = written {
            let _ = rx.await;
        }
    }

    /// Returns once every record queued so far is on disk (bounded by `limit`).
    pub async fn flush(&self, limit: Duration) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut job = Job::Barrier(Box::new(move || {
            let _ = tx.send(());
        }));
        let until = tokio::time::Instant::now() + limit;
        loop {
            match self.tx.try_send(job) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(j)) => {
                    if tokio::time::Instant::now() >= until {
                        return;
                    }
                    job = j;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
        let _ = tokio::time::timeout_at(until, rx).await;
    }
}

fn run(rx: mpsc::Receiver<Job>, sink: &Sink) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        write_batch(&batch, sink);
        for job in batch {
            match job {
                Job::Record { then, .. } | Job::Barrier(then) => then(),
            }
        }
    }
}

fn write_batch(batch: &[Job], sink: &Sink) {
    // Each record's JSON (the CDR line), its spool submission (if it has a URL), its CDR flag.
    let records: Vec<(&str, Option<Submission<'_>>, bool)> = batch
        .iter()
        .filter_map(|j| match j {
            Job::Record {
                json,
                form,
                event_id,
                url,
                cdr,
                ..
            } => {
                let item = url.as_deref().map(|url| Submission {
                    url,
                    event_id,
                    body: form.as_deref().unwrap_or(json),
                    content_type: form.as_ref().map(|_| FORM),
                });
                Some((json.as_str(), item, *cdr))
            }
            Job::Barrier(_) => None,
        })
        .collect();
    if records.is_empty() {
        return;
    }
    if let Some(spool) = &sink.spool {
        let wanted: Vec<(&str, Submission<'_>)> = records
            .iter()
            .filter_map(|&(json, item, _)| Some((json, item?)))
            .collect();
        if !wanted.is_empty() {
            let items: Vec<Submission<'_>> = wanted.iter().map(|(_, i)| *i).collect();
            for ((json, _), result) in wanted.iter().zip(spool.submit_batch(&items)) {
                if let Err(e) = result {
                    tracing::error!(error = %e, record = %json, "cannot spool callback");
                }
            }
        }
    }
    let lines_of: Vec<&str> = records
        .iter()
        .filter(|r| r.2)
        .map(|&(json, ..)| json)
        .collect();
    if lines_of.is_empty() {
        return;
    }
    let mut cdr = sink.cdr.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(f) = cdr.as_mut() {
        let mut lines = Vec::with_capacity(lines_of.iter().map(|j| j.len() + 1).sum());
        for json in &lines_of {
            lines.extend_from_slice(json.as_bytes());
            lines.push(b'\n');
        }
        if f.write_all(&lines).and_then(|()| f.sync_data()).is_err() {
            for json in &lines_of {
                tracing::error!(record = %json, "cannot append CDR");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tg-record-writer-{name}-{}-{:x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[tokio::test]
    async fn every_record_is_on_disk_before_its_then_runs_in_order() {
        let dir = scratch("cdr");
        let path = dir.join("cdr.jsonl");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("cdr");
        let w = RecordWriter::start(None, Some(file)).expect("writer");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for k in 0..300 {
            let tx = tx.clone();
            let path = path.clone();
            let queued = w.write(
                format!("{{\"n\":{k}}}"),
                &format!("e{k}"),
                None,
                true,
                move || {
                    // Runs on the writer thread after the batch holding record k was synced.
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let _ = tx.send(text.contains(&format!("{{\"n\":{k}}}\n")));
                },
            );
            assert!(matches!(queued, Written::Queued));
        }
        for _ in 0..300 {
            assert_eq!(rx.recv().await, Some(true));
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let want: Vec<String> = (0..300).map(|k| format!("{{\"n\":{k}}}")).collect();
        assert_eq!(lines, want);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn write_and_wait_returns_with_the_line_written() {
        let dir = scratch("wait");
        let path = dir.join("cdr.jsonl");
        let file = std::fs::File::create(&path).expect("cdr");
        let w = RecordWriter::start(None, Some(file)).expect("writer");
        w.write_and_wait("{\"a\":1}".to_string(), "e", None, true)
            .await;
        // Not for the CDR (a call.ringing, say): on disk without a line.
        w.write_and_wait("{\"b\":1}".to_string(), "e2", None, false)
            .await;
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "{\"a\":1}\n");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn flush_returns_once_everything_queued_is_on_disk() {
        let dir = scratch("flush");
        let path = dir.join("cdr.jsonl");
        let file = std::fs::File::create(&path).expect("cdr");
        let w = RecordWriter::start(None, Some(file)).expect("writer");
        for k in 0..50 {
            let _ = w.write(format!("{k}"), "e", None, true, || {});
        }
        w.flush(Duration::from_secs(30)).await;
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 50);
        let _ = std::fs::remove_dir_all(dir);
    }
}
