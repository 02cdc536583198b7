//! Recordings on a real directory: the finished file's header and samples, a full queue marks
//! the recording incomplete (a writer held at a gate, so no timing), dropping a handle
//! finishes it, crash repair of `.part` files, retention sweeps, refused call ids, the URL
//! records give.

use std::sync::mpsc;

use super::*;

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!(
        "tg-recording-{name}-{}-{:x}",
        std::process::id(),
        fastrand::u64(..)
    ));
    fs::create_dir_all(&dir).expect("dir");
    Scratch(dir)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn samples(b: &[u8]) -> Vec<i16> {
    b.chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

#[test]
fn finished_file_has_the_right_header_and_samples_in_order() {
    let s = scratch("finish");
    let recs = Recordings::open(s.0.clone(), None).expect("open");
    let mut rec = recs.start("CA0001").expect("started");
    assert_eq!(rec.call_id(), "CA0001");
    assert!(recs.in_progress("CA0001"));
    assert_eq!(recs.finished("CA0001"), None);
    assert!(rec.push(vec![1, -1, 2, -2]));
    assert!(rec.push(vec![3, -3]));
    assert!(rec.push(vec![4, -4, 5])); // odd: the right sample is padded with silence
    let out = rec.finish();
    let path = s.0.join("CA0001.wav");
    assert_eq!(out.path, path);
    assert!(out.complete);
    assert_eq!(out.dropped_chunks, 0);
    assert_eq!(out.duration_s, 5.0 / 8000.0);
    let bytes = fs::read(&path).expect("wav");
    assert_eq!(bytes.len(), 44 + 20);
    assert_eq!(bytes[..44], encode_header(2, 8000, 20));
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(u32_at(&bytes, 4), 56);
    assert_eq!(u32_at(&bytes, 40), 20);
    let s16 = samples(&bytes[44..]);
    let left: Vec<i16> = s16.iter().step_by(2).copied().collect();
    let right: Vec<i16> = s16.iter().skip(1).step_by(2).copied().collect();
    assert_eq!(left, vec![1, 2, 3, 4, 5]);
    assert_eq!(right, vec![-1, -2, -3, -4, 0]);
    assert!(!s.0.join("CA0001.wav.part").exists());
    assert!(!recs.in_progress("CA0001"));
    assert_eq!(recs.finished("CA0001"), Some(path));
}

#[test]
fn an_empty_recording_is_a_valid_empty_wav() {
    let s = scratch("empty");
    let recs = Recordings::open(s.0.clone(), None).expect("open");
    let out = recs.start("empty_1").expect("started").finish();
    assert!(out.complete);
    assert_eq!(out.duration_s, 0.0);
    let bytes = fs::read(&out.path).expect("wav");
    assert_eq!(bytes, encode_header(2, 8000, 0));
}

#[test]
fn a_full_queue_drops_the_chunk_and_marks_the_recording_incomplete() {
    let s = scratch("full");
    let (open_gate, gate) = mpsc::channel();
    // Four messages: the start and three chunks fill it while the writer waits at the gate.
    let recs = Recordings::open_with(s.0.clone(), None, 4, Some(gate)).expect("open");
    let mut rec = recs.start("CAfull").expect("started");
    assert!(rec.push(vec![1, 1]));
    assert!(rec.push(vec![2, 2]));
    assert!(rec.push(vec![3, 3]));
    assert!(!rec.push(vec![4, 4]), "queue full: dropped");
    assert!(!rec.push(vec![5, 5]), "still full");
    open_gate.send(()).expect("gate");
    let out = rec.finish();
    assert!(!out.complete);
    assert_eq!(out.dropped_chunks, 2);
    assert_eq!(out.duration_s, 3.0 / 8000.0);
    let bytes = fs::read(&out.path).expect("wav");
    assert_eq!(bytes[..44], encode_header(2, 8000, 12));
    assert_eq!(samples(&bytes[44..]), vec![1, 1, 2, 2, 3, 3]);
}

#[test]
fn start_and_finish_that_find_the_queue_full_still_arrive_in_order() {
    let s = scratch("overflow");
    let (open_gate, gate) = mpsc::channel();
    let recs = Recordings::open_with(s.0.clone(), None, 2, Some(gate)).expect("open");
    let mut a = recs.start("A").expect("a");
    assert!(a.push(vec![7, 8]));
    // The queue is full: b's start goes through the side list, its chunk is dropped.
    let mut b = recs.start("B").expect("b");
    assert!(!b.push(vec![9, 9]));
    drop(b); // its finish through the side list too
    open_gate.send(()).expect("gate");
    let out = a.finish();
    assert!(out.complete, "{out:?}");
    assert_eq!(samples(&fs::read(&out.path).expect("a")[44..]), vec![7, 8]);
    // The writer handles messages in order: a second recording's finish comes after b's.
    let c = recs.start("C").expect("c").finish();
    assert!(c.complete);
    assert_eq!(
        fs::read(s.0.join("B.wav")).expect("b"),
        encode_header(2, 8000, 0)
    );
    assert!(!recs.in_progress("B"));
}

#[test]
fn dropping_a_recording_finishes_it() {
    let s = scratch("drop");
    let recs = Recordings::open(s.0.clone(), None).expect("open");
    let mut rec = recs.start("CAdrop").expect("started");
    assert!(rec.push(vec![5, 6, 7, 8]));
    drop(rec);
    // The writer takes messages in order: once a later recording is finished, so is this.
    assert!(recs.start("CAnext").expect("next").finish().complete);
    let path = recs.finished("CAdrop").expect("finished");
    let bytes = fs::read(path).expect("wav");
    assert_eq!(bytes[..44], encode_header(2, 8000, 8));
    assert_eq!(samples(&bytes[44..]), vec![5, 6, 7, 8]);
    assert!(!recs.in_progress("CAdrop"));
}

#[test]
fn a_running_recording_cannot_be_started_twice() {
    let s = scratch("twice");
    let recs = Recordings::open(s.0.clone(), None).expect("open");
    let rec = recs.start("CAtwice").expect("first");
    assert!(recs.start("CAtwice").is_none());
    assert!(rec.finish().complete);
    assert!(recs.start("CAtwice").is_some(), "again once finished");
}

#[test]
fn bad_call_ids_are_refused() {
    let s = scratch("ids");
    let recs = Recordings::open(s.0.clone(), None).expect("open");
    let long = "a".repeat(65);
    for bad in [
        "",
        "../x",
        "a/b",
        "a.b",
        "CA 1",
        "ü",
        long.as_str(),
        ".",
        "..",
    ] {
        assert!(recs.start(bad).is_none(), "{bad:?}");
        assert!(recs.finished(bad).is_none(), "{bad:?}");
        assert!(!recs.in_progress(bad), "{bad:?}");
    }
    assert!(valid_call_id(&"a".repeat(64)));
    assert!(valid_call_id("CA0123456789abcdef_-XYZ"));
    assert_eq!(fs::read_dir(&s.0).expect("dir").count(), 0);
}

#[test]
fn open_repairs_what_a_crash_left() {
    let s = scratch("repair");
    // A crash mid-write: the provisional header (zero sizes), 3 whole frames and half a frame.
    let mut torn = encode_header(2, 8000, 0).to_vec();
    for v in [1i16, -1, 2, -2, 3, -3, 4] {
        torn.extend_from_slice(&v.to_le_bytes());
    }
    fs::write(s.0.join("CAcrash.wav.part"), &torn).expect("part");
    // A crash right after creating the file: not even a whole header.
    fs::write(s.0.join("CAshort.wav.part"), b"RIFF").expect("short");
    fs::write(s.0.join("other.txt"), b"left alone").expect("other");
    let recs = Recordings::open(s.0.clone(), None).expect("open");
    assert!(!s.0.join("CAcrash.wav.part").exists());
    assert!(!recs.in_progress("CAcrash"));
    let bytes = fs::read(recs.finished("CAcrash").expect("repaired")).expect("wav");
    assert_eq!(bytes.len(), 44 + 12);
    assert_eq!(bytes[..44], encode_header(2, 8000, 12));
    assert_eq!(samples(&bytes[44..]), vec![1, -1, 2, -2, 3, -3]);
    let short = fs::read(recs.finished("CAshort").expect("repaired")).expect("wav");
    assert_eq!(short, encode_header(2, 8000, 0));
    assert_eq!(
        fs::read(s.0.join("other.txt")).expect("other"),
        b"left alone"
    );
}

#[test]
fn open_creates_the_directory() {
    let s = scratch("mkdir");
    let dir = s.0.join("a/b");
    let recs = Recordings::open(dir.clone(), None).expect("open");
    assert!(recs.start("x").expect("x").finish().complete);
    assert!(dir.join("x.wav").is_file());
}

#[test]
fn sweep_deletes_old_finished_recordings_only() {
    let s = scratch("sweep");
    let day = Duration::from_secs(86_400);
    let recs = Recordings::open(s.0.clone(), Some(day)).expect("open");
    for id in ["old", "new"] {
        assert!(recs.start(id).expect(id).finish().complete);
    }
    let running = recs.start("running").expect("running");
    // Finished with `new`'s and `old`'s, so the `.part` exists by now.
    assert!(recs.start("sync").expect("sync").finish().complete);
    let two_days_ago = SystemTime::now() - 2 * day;
    for name in ["old.wav", "running.wav.part", "notes.txt"] {
        if name == "notes.txt" {
            fs::write(s.0.join(name), b"x").expect("notes");
        }
        let f = File::options()
            .write(true)
            .open(s.0.join(name))
            .expect(name);
        f.set_modified(two_days_ago).expect("mtime");
    }
    assert_eq!(recs.sweep(), 1);
    assert!(recs.finished("old").is_none());
    assert!(recs.finished("new").is_some());
    assert!(recs.in_progress("running"));
    assert!(s.0.join("notes.txt").exists());
    assert_eq!(recs.sweep(), 0);
    assert!(running.finish().complete);
    let keep = Recordings::open(s.0.clone(), None).expect("no retention");
    assert_eq!(keep.sweep(), 0);
}

#[test]
fn an_unwritable_directory_is_an_incomplete_recording_not_a_panic() {
    let s = scratch("gone");
    let dir = s.0.join("recs");
    let recs = Recordings::open(dir.clone(), None).expect("open");
    fs::remove_dir_all(&dir).expect("rm");
    let mut rec = recs.start("CAgone").expect("started");
    assert!(rec.push(vec![1, 2]));
    let out = rec.finish();
    assert!(!out.complete);
    assert_eq!(out.duration_s, 0.0);
    assert!(!recs.in_progress("CAgone"));
    assert!(recs.finished("CAgone").is_none());
    assert_eq!(recs.sweep(), 0);
}

#[test]
fn the_url_names_a_usable_api_address_or_only_the_path() {
    let addr = |s: &str| s.parse::<std::net::SocketAddr>().ok();
    assert_eq!(
        url(addr("127.0.0.1:8080"), "CA1"),
        "http://127.0.0.1:8080/v1/calls/CA1/recording"
    );
    assert_eq!(
        url(addr("[::1]:8080"), "CA1"),
        "http://[::1]:8080/v1/calls/CA1/recording"
    );
    // Port 0 is what the config said, not where the API is.
    assert_eq!(url(addr("127.0.0.1:0"), "CA1"), "/v1/calls/CA1/recording");
    assert_eq!(url(None, "CA1"), "/v1/calls/CA1/recording");
}
