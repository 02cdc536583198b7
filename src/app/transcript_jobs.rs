//! Pending transcripts on disk, so a `call.transcript` the record promised (`transcript:
//! "pending"`) still comes after the daemon is stopped or killed mid-transcription.
//!
//! Layout: `<[callbacks] spool_dir>/transcripts/<call_id>.json`, one [`Job`] per call whose
//! transcription has started and whose `call.transcript` is not spooled yet: written
//! (temporary file, fsync, rename, directory fsync) before the transcription starts and
//! removed once the event is in the callback spool (which then owns its delivery). On the
//! next start every job left is resumed ([`Jobs::pending`]): leftover temporary files are
//! removed, unreadable jobs are logged and moved to `transcripts/corrupt/` (their call's
//! `pending` cannot resolve: the job held its callback URL).
//!
//! Owns: the jobs' files and their format. Must not: transcribe, send events, or run on a
//! runtime thread (every function here does file I/O: call it on the blocking pool).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::recording::valid_call_id;

const VERSION: u32 = 1;

/// What a restart needs to finish one call's transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub v: u32,
    pub call_id: String,
    /// Where `call.transcript` goes (the call's callback URL; its callbacks are JSON).
    pub callback_url: String,
    /// The `seq` the `call.transcript` event takes (call.completed's + 1); with the call id
    /// it makes the event's `event_id`.
    pub seq: u32,
    /// The recording's (left, right) channel speakers.
    pub speakers: (String, String),
}

impl Job {
    pub fn new(call_id: &str, callback_url: &str, seq: u32, speakers: (&str, &str)) -> Job {
        Job {
            v: VERSION,
            call_id: call_id.to_string(),
            callback_url: callback_url.to_string(),
            seq,
            speakers: (speakers.0.to_string(), speakers.1.to_string()),
        }
    }
}

/// What [`Jobs::pending`] found besides the jobs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Files that could not be read, moved to `corrupt/`.
    pub corrupt: usize,
}

/// The jobs' directory; cheap to clone.
#[derive(Debug, Clone)]
pub struct Jobs {
    dir: PathBuf,
}

impl Jobs {
    /// The jobs under `spool_dir` (the directory is created on the first write).
    pub fn new(spool_dir: &Path) -> Jobs {
        Jobs {
            dir: spool_dir.join("transcripts"),
        }
    }

    /// Where `call_id`'s job is kept (`None`: not a call id a file may be named after; such
    /// a call was never recorded, so never transcribed).
    pub fn path(&self, call_id: &str) -> Option<PathBuf> {
        valid_call_id(call_id).then(|| self.dir.join(format!("{call_id}.json")))
    }

    /// Writes `job` durably: once this returns `Ok`, it survives a `kill -9` or a power loss.
    pub fn write(&self, job: &Job) -> std::io::Result<()> {
        let path = self.path(&job.call_id).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a valid call id")
        })?;
        fs::create_dir_all(&self.dir)?;
        let bytes = serde_json::to_vec(job).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("tmp");
        {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        fs::File::open(&self.dir)?.sync_all()
    }

    /// Removes `call_id`'s job (gone already is fine). Not fsynced: a job that reappears
    /// after a power loss is resumed, and its event has the same `event_id` as the one
    /// spooled.
    pub fn remove(&self, call_id: &str) {
        let Some(path) = self.path(call_id) else {
            return;
        };
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot remove a transcript job")
            }
        }
    }

    /// Every job a previous run left, in call id order. Temporary files (a write torn by the
    /// crash: its transcription had not started) are removed; unreadable jobs are logged
    /// and moved to `corrupt/`. Never panics on what it finds; no directory: no jobs.
    pub fn pending(&self) -> (Vec<Job>, Found) {
        let mut found = Found::default();
        let Ok(listing) = fs::read_dir(&self.dir) else {
            return (Vec::new(), found);
        };
        let mut paths: Vec<PathBuf> = listing.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        let mut jobs = Vec::new();
        for path in paths {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(stem) = name.strip_suffix(".json") else {
                continue;
            };
            match read_job(&path, stem) {
                Ok(job) => jobs.push(job),
                Err(why) => {
                    found.corrupt += 1;
                    tracing::error!(path = %path.display(), error = %why, "unreadable transcript job moved to corrupt/; its call.transcript is lost");
                    self.move_aside(&path);
                }
            }
        }
        (jobs, found)
    }

    fn move_aside(&self, path: &Path) {
        let Some(name) = path.file_name() else { return };
        let corrupt = self.dir.join("corrupt");
        let moved =
            fs::create_dir_all(&corrupt).and_then(|()| fs::rename(path, corrupt.join(name)));
        if let Err(e) = moved {
            tracing::error!(path = %path.display(), error = %e, "cannot move a transcript job aside; removing it");
            let _ = fs::remove_file(path);
        }
    }
}

/// The job at `path`, checked: its version, and a call id that is the file's name.
fn read_job(path: &Path, stem: &str) -> Result<Job, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let job: Job = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if job.v != VERSION {
        return Err(format!("unknown transcript job version {}", job.v));
    }
    if job.call_id != stem {
        return Err(format!("names call {:?}, not its file's", job.call_id));
    }
    if job.seq == 0 || job.callback_url.is_empty() {
        return Err("no seq or no callback URL".into());
    }
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn scratch(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "tg-tjobs-{name}-{}-{:x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        fs::create_dir_all(&dir).expect("dir");
        Scratch(dir)
    }

    fn job(call_id: &str, seq: u32) -> Job {
        Job::new(call_id, "http://127.0.0.1:9/cb", seq, ("caller", "agent"))
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        n.sort();
        n
    }

    #[test]
    fn written_jobs_are_read_back_whole_and_removed() {
        let s = scratch("rw");
        let jobs = Jobs::new(&s.0);
        assert_eq!(
            jobs.pending(),
            (Vec::new(), Found::default()),
            "no directory"
        );
        let (a, b) = (job("call-a", 2), job("call-b", 5));
        jobs.write(&b).expect("write b");
        jobs.write(&a).expect("write a");
        let mut b2 = b.clone();
        b2.speakers = ("client".into(), "manager".into());
        jobs.write(&b2).expect("rewrite b");
        assert_eq!(
            names(&s.0.join("transcripts")),
            ["call-a.json", "call-b.json"]
        );
        assert_eq!(jobs.pending(), (vec![a, b2], Found::default()));
        jobs.remove("call-a");
        jobs.remove("call-a");
        jobs.remove("never-written");
        assert_eq!(names(&s.0.join("transcripts")), ["call-b.json"]);
    }

    #[test]
    fn a_call_id_that_is_no_file_name_gets_no_job() {
        let s = scratch("badid");
        let jobs = Jobs::new(&s.0);
        assert!(jobs.path("../escape").is_none());
        assert!(jobs.write(&job("../escape", 2)).is_err());
        assert!(jobs.write(&job("", 2)).is_err());
        jobs.remove("../escape");
        assert_eq!(jobs.pending().0, Vec::new());
    }

    #[test]
    fn corrupt_and_partial_files_are_moved_aside_and_the_rest_resume() {
        let s = scratch("corrupt");
        let jobs = Jobs::new(&s.0);
        let good = job("call-ok", 3);
        jobs.write(&good).expect("write");
        let dir = s.0.join("transcripts");
        let whole = serde_json::to_string(&job("call-cut", 2)).expect("json");
        let cut = &whole[..whole.len() / 2];
        fs::write(dir.join("call-cut.json"), cut).expect("write torn");
        fs::write(dir.join("call-torn.tmp"), cut).expect("write tmp");
        fs::write(dir.join("call-bin.json"), [0xff, 0x00, 0x7b]).expect("write binary");
        let other = serde_json::to_string(&job("call-other", 2)).expect("json");
        fs::write(dir.join("call-renamed.json"), other).expect("write misnamed");
        let mut future = serde_json::to_value(job("call-v9", 2)).expect("json");
        future["v"] = 9.into();
        fs::write(dir.join("call-v9.json"), future.to_string()).expect("write v9");
        let mut no_seq = job("call-seq0", 0);
        no_seq.seq = 0;
        fs::write(
            dir.join("call-seq0.json"),
            serde_json::to_string(&no_seq).expect("json"),
        )
        .expect("write seq 0");
        fs::write(dir.join("notes.txt"), "not a job").expect("write other");

        let (found, what) = jobs.pending();
        assert_eq!(found, vec![good]);
        assert_eq!(what.corrupt, 5);
        assert_eq!(names(&dir), ["call-ok.json", "corrupt", "notes.txt"]);
        assert_eq!(
            names(&dir.join("corrupt")),
            [
                "call-bin.json",
                "call-cut.json",
                "call-renamed.json",
                "call-seq0.json",
                "call-v9.json"
            ]
        );
        // A second start finds only the good job again.
        assert_eq!(jobs.pending(), (vec![job("call-ok", 3)], Found::default()));
    }
}
