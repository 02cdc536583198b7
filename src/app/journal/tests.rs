//! Journal tests on a real directory: what the writer thread leaves on disk, recovery of a
//! previous run's entries into records (CDR line + spool file), and unreadable entries moved
//! aside without a panic.

use std::time::Duration;

use serde_json::Value;

use super::*;
use crate::core::call::view::{CallStatus, Direction};
use crate::io::spool::{Spool, SpoolSettings};

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!(
        "tg-journal-{name}-{}-{:x}",
        std::process::id(),
        fastrand::u64(..)
    ));
    fs::create_dir_all(&dir).expect("dir");
    Scratch(dir)
}

fn view(call_id: &str) -> CallView {
    let mut v = CallView::new(call_id, Direction::Inbound, "2025-01-15T10:30:00Z".into());
    v.status = CallStatus::InProgress;
    v.from = Some("+48111".into());
    v.answered_at = Some("2025-01-15T10:30:02Z".into());
    v
}

fn rule(exclude_silence: bool) -> Rule {
    Rule {
        minimum_s: 10,
        increment_s: 1,
        exclude_silence,
    }
}

fn client() -> reqwest::Client {
    crate::io::tls::install_default_provider();
    let tls = crate::io::tls::client_config(None).expect("tls");
    crate::io::http::client(&tls, Duration::from_secs(1)).expect("client")
}

/// A record writer with a CDR file and a spool whose receiver is never up.
async fn writer(dir: &Path) -> (RecordWriter, PathBuf, PathBuf) {
    let spool_dir = dir.join("spool");
    let spool = Spool::open(
        SpoolSettings {
            dir: spool_dir.clone(),
            max_attempts: 1000,
            backoff: Duration::from_secs(3600),
            max_backoff: Duration::from_secs(3600),
            secret: None,
        },
        client(),
    )
    .expect("spool");
    let cdr = dir.join("cdr.jsonl");
    let file = fs::File::create(&cdr).expect("cdr");
    (
        RecordWriter::start(Some(spool), Some(file)).expect("writer"),
        cdr,
        spool_dir,
    )
}

fn cdr_lines(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn the_writer_keeps_an_answered_call_until_it_ends() {
    let d = scratch("writer");
    let dir = d.0.join("journal");
    let journal = Journal::open(&dir);
    let v = view("CA01");
    journal.answered(&v, Some("http://127.0.0.1:9/cb".into()), 2, None);
    journal.flush(Duration::from_secs(10)).await;
    assert_eq!(names(&dir), ["CA01.call.json"]);
    let base = read_entry(&dir.join("CA01.call.json")).expect("entry");
    assert_eq!(base.seq, 2);
    assert_eq!(base.call, v);

    let mut running = v.clone();
    running.duration_s = 12.5;
    let talk = [Segment {
        start_ms: 1000,
        end_ms: 3000,
    }];
    journal.checkpoint(&running, &talk, &[]);
    journal.flush(Duration::from_secs(10)).await;
    assert_eq!(names(&dir), ["CA01.call.json", "CA01.ckpt.json"]);
    let ckpt = read_entry(&dir.join("CA01.ckpt.json")).expect("checkpoint");
    // The checkpoint carries what the answer's entry knew (URL, seq) and the running state.
    assert_eq!(ckpt.callback_url.as_deref(), Some("http://127.0.0.1:9/cb"));
    assert_eq!(ckpt.seq, 2);
    assert_eq!(ckpt.call.duration_s, 12.5);
    assert_eq!(ckpt.caller_talk, vec![[1000, 3000]]);

    journal.ended("CA01");
    // A checkpoint racing the end, and one for a call never answered, write nothing.
    journal.checkpoint(&running, &talk, &[]);
    journal.checkpoint(&view("CA02"), &[], &[]);
    journal.flush(Duration::from_secs(10)).await;
    assert!(names(&dir).is_empty(), "{:?}", names(&dir));
}

#[tokio::test]
async fn a_previous_runs_entries_become_gateway_restart_records() {
    let d = scratch("recover");
    let dir = d.0.join("journal");
    // The previous run: two answered calls, one checkpointed, then the process is gone.
    {
        let journal = Journal::open(&dir);
        // CAa was created through the Twilio-compatible API: its callbacks are forms.
        let account = Some("AC1".to_string());
        journal.answered(
            &view("CAa"),
            Some("http://127.0.0.1:9/a".into()),
            1,
            account,
        );
        journal.answered(&view("CAb"), None, 0, None);
        let mut running = view("CAa");
        running.duration_s = 42.0;
        let caller = [Segment {
            start_ms: 0,
            end_ms: 12_000,
        }];
        let agent = [Segment {
            start_ms: 20_000,
            end_ms: 23_000,
        }];
        journal.checkpoint(&running, &caller, &agent);
        journal.flush(Duration::from_secs(10)).await;
    }
    let ckpt_at = read_entry(&dir.join("CAa.ckpt.json"))
        .expect("checkpoint")
        .checkpoint_at;
    // A checkpoint torn mid-write by the crash: its temporary file.
    fs::write(dir.join("CAa.ckpt.tmp"), b"{\"v\":1,\"cal").expect("tmp");

    let (records, cdr, spool) = writer(&d.0).await;
    // CAa's recording was cut by the crash (and repaired); CAb was not recorded.
    let cut = |id: &str| (id == "CAa").then(|| format!("/v1/calls/{id}/recording"));
    let found = recover(&dir, &records, rule(true), &cut).await;
    assert_eq!(
        found,
        Recovered {
            records: 2,
            corrupt: 0
        }
    );
    let lines = cdr_lines(&cdr);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let a = lines
        .iter()
        .find(|l| l["call_id"] == "CAa")
        .expect("CAa's record");
    assert_eq!(a["event"], "call.completed");
    assert_eq!(a["end_reason"], "gateway_restart");
    assert_eq!(a["status"], "completed");
    assert_eq!(a["sip_status"], 200);
    assert_eq!(a["seq"], 2);
    assert_eq!(a["event_id"], "evt-CAa-2");
    assert_eq!(a["ended_at"], ckpt_at.as_str());
    assert_eq!(a["duration_s"], 42.0);
    assert_eq!(a["talk_s"]["caller"], 12.0);
    assert_eq!(a["talk_s"]["agent"], 3.0);
    // Silence excluded: the first 10 s in full, then 2 s (caller) + 3 s (agent) of speech.
    assert_eq!(a["billable_s"], 15);
    assert_eq!(a["billing"]["counted"], "speech");
    assert_eq!(a["recording_url"], "/v1/calls/CAa/recording");
    assert_eq!(
        a["recording_complete"], false,
        "the rest was never recorded"
    );
    let b = lines
        .iter()
        .find(|l| l["call_id"] == "CAb")
        .expect("CAb's record");
    assert_eq!(b["duration_s"], 0.0, "no checkpoint: up to the answer");
    assert_eq!(b["billable_s"], 10, "the minimum");
    assert_eq!(b["seq"], 1);
    assert!(b.get("recording_url").is_none() && b.get("recording_complete").is_none());
    // Only CAa had a callback URL: one spool file, for it.
    let spooled: Vec<String> = names(&spool)
        .into_iter()
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(spooled.len(), 1, "{spooled:?}");
    let env: Value = serde_json::from_slice(&fs::read(spool.join(&spooled[0])).expect("read"))
        .expect("envelope");
    assert_eq!(env["url"], "http://127.0.0.1:9/a");
    assert_eq!(env["event_id"], "evt-CAa-2");
    // The checkpoint kept the answer's AccountSid: the record is Twilio's form (the CDR line
    // above is the JSON record all the same).
    assert_eq!(env["content_type"], "application/x-www-form-urlencoded");
    let form = env["body"].as_str().unwrap_or_default();
    assert!(form.starts_with("CallSid=CAa&AccountSid=AC1&"), "{form}");
    assert!(form.contains("&CallStatus=completed&"), "{form}");
    assert!(form.contains("&CallDuration=42&"), "{form}");
    // Every entry is gone once its record is on disk; a second start finds nothing.
    assert!(names(&dir).is_empty(), "{:?}", names(&dir));
    assert_eq!(
        recover(&dir, &records, rule(true), &cut).await,
        Recovered::default()
    );
    assert_eq!(cdr_lines(&cdr).len(), 2);
}

#[tokio::test]
async fn unreadable_entries_are_moved_aside_never_a_panic() {
    let d = scratch("corrupt");
    let dir = d.0.join("journal");
    fs::create_dir_all(&dir).expect("dir");
    let good = Entry {
        v: VERSION,
        callback_url: None,
        seq: 0,
        twilio_account_sid: None,
        checkpoint_at: "2025-01-15T10:31:00Z".into(),
        call: view("CAt"),
        caller_talk: vec![],
        agent_talk: vec![],
    };
    // A torn checkpoint over a good answer's entry: the answer's entry is used.
    fs::write(
        dir.join("CAt.call.json"),
        serde_json::to_vec(&good).expect("json"),
    )
    .expect("w");
    fs::write(dir.join("CAt.ckpt.json"), b"{\"v\":1,\"seq\":").expect("w");
    // Garbage of every kind, alone.
    fs::write(dir.join("CAg.call.json"), b"\x00\xff\xfe garbage").expect("w");
    fs::write(dir.join("CAe.call.json"), b"").expect("w");
    fs::write(dir.join("CAn.call.json"), b"[1,2,3]").expect("w");
    let mut future = good.clone();
    future.v = 99;
    fs::write(
        dir.join("CAv.ckpt.json"),
        serde_json::to_vec(&future).expect("json"),
    )
    .expect("w");
    // Not ours: left alone.
    fs::write(dir.join("README"), b"hello").expect("w");

    let (records, cdr, _) = writer(&d.0).await;
    let found = recover(&dir, &records, rule(false), &|_| None).await;
    assert_eq!(
        found,
        Recovered {
            records: 1,
            corrupt: 5
        }
    );
    let lines = cdr_lines(&cdr);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["call_id"], "CAt");
    assert_eq!(lines[0]["ended_at"], "2025-01-15T10:31:00Z");
    assert_eq!(lines[0]["billing"]["counted"], "duration");
    assert_eq!(names(&dir), ["README"]);
    assert_eq!(
        names(&dir.join("corrupt")),
        [
            "CAe.call.json",
            "CAg.call.json",
            "CAn.call.json",
            "CAt.ckpt.json",
            "CAv.ckpt.json"
        ]
    );
}

#[tokio::test]
async fn a_missing_directory_is_nothing_to_recover() {
    let d = scratch("missing");
    let (records, cdr, _) = writer(&d.0).await;
    assert_eq!(
        recover(&d.0.join("nope"), &records, rule(false), &|_| None).await,
        Recovered::default()
    );
    assert!(cdr_lines(&cdr).is_empty());
}

#[test]
fn file_stems_are_safe() {
    assert_eq!(file_stem("CA0123abcd"), "CA0123abcd");
    assert_eq!(file_stem("../../etc/passwd"), "etcpasswd");
    assert_eq!(file_stem("/"), "call");
}

#[test]
fn a_shorter_checkpoint_overwrites_a_longer_one_whole() {
    let dir = scratch("overwrite");
    let path = dir.0.join("CA1.ckpt.json");
    let mut long = Entry {
        v: VERSION,
        callback_url: Some("http://127.0.0.1:9/cb".into()),
        seq: 2,
        twilio_account_sid: None,
        checkpoint_at: "2026-01-01T00:00:05Z".into(),
        call: view("CA1"),
        caller_talk: vec![[0, 1000], [2000, 3000], [4000, 4500]],
        agent_talk: vec![[1000, 2000]],
    };
    let first = super::overwrite_entry(&path, &long, 0).expect("first checkpoint");
    long.caller_talk.clear();
    long.agent_talk.clear();
    long.checkpoint_at = "2026-01-01T00:00:10Z".into();
    let second = super::overwrite_entry(&path, &long, first).expect("second checkpoint");
    assert_eq!(second, first, "padded to the longest");
    assert_eq!(super::read_entry(&path), Ok(long), "the newer entry, whole");
}
