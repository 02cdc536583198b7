//! Idempotency keys on a virtual clock: replay, reuse, expiry after 24 h, failures not
//! remembered, the bound, and two concurrent requests that dial once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use super::*;
use crate::core::call::CallStatus;

fn dialed(id: &str) -> Dialed {
    Dialed {
        call_id: id.to_string(),
        status: CallStatus::Queued,
        replayed: false,
    }
}

fn request(to: &str) -> DialRequest {
    use super::super::dial::{AgentSource, Destination};
    let agent = AgentSource::Webhook {
        url: "https://platform.example/answer".into(),
    };
    let mut req = DialRequest::new(Destination::E164(to.into()), agent);
    req.idempotency_key = Some("k1".into());
    req
}

#[test]
fn same_key_same_request_replays_the_first_call() {
    let keys = Keys::default();
    let t0 = Instant::now();
    let fp = fingerprint(&request("+48123456789"));
    let dials = AtomicUsize::new(0);
    let place = |id: &str| {
        dials.fetch_add(1, Ordering::SeqCst);
        Ok(dialed(id))
    };
    let first = keys.dial_once("k1", fp, t0, || place("CA1"));
    assert_eq!(first, Ok(dialed("CA1")));
    let later = t0 + TTL - Duration::from_secs(1);
    let again = keys.dial_once("k1", fp, later, || place("CA2"));
    assert_eq!(
        again,
        Ok(Dialed {
            replayed: true,
            ..dialed("CA1")
        })
    );
    assert_eq!(dials.load(Ordering::SeqCst), 1, "dialled once");
    // Another key is another call.
    assert_eq!(
        keys.dial_once("k2", fp, later, || place("CA3")),
        Ok(dialed("CA3"))
    );
    assert_eq!(keys.len(), 2);
}

#[test]
fn same_key_other_request_is_refused() {
    let keys = Keys::default();
    let t0 = Instant::now();
    let a = fingerprint(&request("+48123456789"));
    let b = fingerprint(&request("+48123456780"));
    assert_ne!(a, b);
    assert_eq!(fingerprint(&request("+48123456789")), a, "stable");
    assert!(keys.dial_once("k1", a, t0, || Ok(dialed("CA1"))).is_ok());
    let reused = keys.dial_once("k1", b, t0, || Ok(dialed("CA2")));
    assert_eq!(reused, Err(DialError::KeyReused));
}

#[test]
fn keys_expire_after_24_hours() {
    let keys = Keys::default();
    let t0 = Instant::now();
    let fp = fingerprint(&request("+48123456789"));
    assert!(keys.dial_once("k1", fp, t0, || Ok(dialed("CA1"))).is_ok());
    let next_day = t0 + TTL;
    let fresh = keys.dial_once("k1", fp, next_day, || Ok(dialed("CA2")));
    assert_eq!(fresh, Ok(dialed("CA2")), "a new call after 24 h");
    // The other request is fine too once the key has expired.
    let other = fingerprint(&request("+48123456780"));
    let day3 = next_day + TTL;
    assert_eq!(
        keys.dial_once("k1", other, day3, || Ok(dialed("CA3"))),
        Ok(dialed("CA3"))
    );
    assert_eq!(keys.len(), 1, "expired keys are swept");
}

#[test]
fn failed_dials_are_not_remembered() {
    let keys = Keys::default();
    let t0 = Instant::now();
    let fp = fingerprint(&request("+48123456789"));
    let refused = DialError::Refused {
        reason: "calls_per_second".into(),
        retry_after: Some(Duration::from_millis(200)),
    };
    assert_eq!(
        keys.dial_once("k1", fp, t0, || Err(refused.clone())),
        Err(refused)
    );
    assert!(keys.is_empty());
    assert_eq!(
        keys.dial_once("k1", fp, t0, || Ok(dialed("CA1"))),
        Ok(dialed("CA1")),
        "the retry dials"
    );
}

#[test]
fn bounded_memory_refuses_rather_than_forgets() {
    let keys = Keys::new(TTL, 3);
    let t0 = Instant::now();
    let fp = fingerprint(&request("+48123456789"));
    for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
        let at = t0 + Duration::from_secs(i as u64);
        assert!(keys.dial_once(key, fp, at, || Ok(dialed(key))).is_ok());
    }
    let full = keys.dial_once("d", fp, t0 + Duration::from_secs(5), || Ok(dialed("d")));
    assert!(matches!(full, Err(DialError::Busy(_))), "{full:?}");
    // Known keys still replay while full.
    let replay = keys.dial_once("a", fp, t0 + Duration::from_secs(5), || Ok(dialed("x")));
    assert_eq!(
        replay.map(|d| (d.call_id, d.replayed)),
        Ok(("a".into(), true))
    );
    // Once the first has expired there is room again.
    let later = t0 + TTL + Duration::from_millis(500);
    assert_eq!(
        keys.dial_once("d", fp, later, || Ok(dialed("d"))),
        Ok(dialed("d"))
    );
    assert_eq!(keys.len(), 3, "a expired, b c d remain");
}

#[test]
fn concurrent_identical_requests_dial_once() {
    let keys = Arc::new(Keys::default());
    let dials = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(8));
    let fp = fingerprint(&request("+48123456789"));
    let now = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (keys, dials, barrier) = (keys.clone(), dials.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                keys.dial_once("same", fp, now, || {
                    dials.fetch_add(1, Ordering::SeqCst);
                    Ok(dialed(&format!("CA{i}")))
                })
            })
        })
        .collect();
    let results: Vec<Dialed> = threads
        .into_iter()
        .filter_map(|t| t.join().ok())
        .filter_map(Result::ok)
        .collect();
    assert_eq!(results.len(), 8);
    assert_eq!(dials.load(Ordering::SeqCst), 1, "never dialled twice");
    let first = &results
        .iter()
        .find(|d| !d.replayed)
        .map(|d| d.call_id.clone());
    assert!(first.is_some());
    assert_eq!(results.iter().filter(|d| d.replayed).count(), 7);
    assert!(results.iter().all(|d| Some(&d.call_id) == first.as_ref()));
}
