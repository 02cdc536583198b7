//! Registry unit tests on the in-memory store with explicit instants: retention, eviction by
//! count, list filters and order, commands to running and ended calls.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::*;
use crate::core::call::{CallStatus, Direction};

fn view(id: &CallId, status: CallStatus) -> CallView {
    let mut v = CallView::new(
        id.as_str(),
        Direction::Inbound,
        "2025-01-15T10:30:00Z".into(),
    );
    v.status = status;
    v
}

fn id(n: u128) -> CallId {
    CallId::from_random(n)
}

fn ids(views: &[CallView]) -> Vec<String> {
    views.iter().map(|v| v.call_id.clone()).collect()
}

/// A store with calls 1..=n inserted at `t0` (1 first) and their receivers.
/// The command a call's inbox received.
fn command(msg: Option<CallMsg>) -> Option<Command> {
    match msg {
        Some(CallMsg::Command(c)) => Some(c),
        _ => None,
    }
}

fn store_with(
    n: u128,
    retention: Duration,
    max_ended: usize,
    t0: Instant,
) -> (MemoryStore, Vec<mpsc::UnboundedReceiver<CallMsg>>) {
    let s = MemoryStore::new(retention, max_ended);
    let mut rxs = Vec::new();
    for i in 1..=n {
        let (tx, rx) = mpsc::unbounded_channel();
        s.insert(t0, id(i), tx, view(&id(i), CallStatus::Queued));
        rxs.push(rx);
    }
    (s, rxs)
}

#[test]
fn running_call_updates_and_takes_commands() {
    let t0 = Instant::now();
    let (s, mut rxs) = store_with(1, Duration::from_secs(60), 10, t0);
    s.update(t0, &id(1), view(&id(1), CallStatus::Ringing));
    assert_eq!(
        s.get(t0, &id(1)).map(|v| v.status),
        Some(CallStatus::Ringing)
    );
    assert_eq!(s.send(t0, &id(1), Command::Hangup), Ok(()));
    assert_eq!(command(rxs[0].try_recv().ok()), Some(Command::Hangup));
    assert_eq!(s.get(t0, &id(2)), None);
    assert_eq!(
        s.send(t0, &id(2), Command::Hangup),
        Err(SendError::NotFound)
    );
}

#[test]
fn ended_call_keeps_its_final_view_drops_its_inbox_and_expires() {
    let t0 = Instant::now();
    let ret = Duration::from_secs(3600);
    let (s, mut rxs) = store_with(1, ret, 10, t0);
    let t1 = t0 + Duration::from_secs(5);
    let mut done = view(&id(1), CallStatus::Completed);
    done.end_reason = Some("api_hangup".into());
    s.ended(t1, &id(1), done.clone());
    // The inbox is gone: the call's receiver sees the channel closed.
    assert!(matches!(
        rxs[0].try_recv(),
        Err(mpsc::error::TryRecvError::Disconnected)
    ));
    assert_eq!(s.send(t1, &id(1), Command::Hangup), Err(SendError::Ended));
    // Late updates do not overwrite the final view.
    s.update(t1, &id(1), view(&id(1), CallStatus::InProgress));
    assert_eq!(s.get(t1, &id(1)), Some(done.clone()));
    assert_eq!(
        s.get(t1 + ret - Duration::from_millis(1), &id(1)),
        Some(done)
    );
    assert_eq!(s.get(t1 + ret, &id(1)), None, "expired after the retention");
    assert_eq!(
        s.send(t1 + ret, &id(1), Command::Hangup),
        Err(SendError::NotFound)
    );
}

#[test]
fn running_calls_never_expire() {
    let t0 = Instant::now();
    let (s, _rxs) = store_with(1, Duration::from_secs(1), 1, t0);
    let later = t0 + Duration::from_secs(86_400);
    assert!(s.get(later, &id(1)).is_some());
}

#[test]
fn ended_calls_beyond_the_bound_evict_the_oldest_ended() {
    let t0 = Instant::now();
    let (s, _rxs) = store_with(5, Duration::from_secs(3600), 2, t0);
    // Calls end in the order 3, 1, 4; only the last two ended are kept.
    for (k, n) in [3, 1, 4].into_iter().enumerate() {
        let at = t0 + Duration::from_secs(k as u64 + 1);
        s.ended(at, &id(n), view(&id(n), CallStatus::Completed));
    }
    let now = t0 + Duration::from_secs(10);
    assert_eq!(s.get(now, &id(3)), None, "oldest ended call evicted");
    assert!(s.get(now, &id(1)).is_some());
    assert!(s.get(now, &id(4)).is_some());
    // Running calls are not counted against the bound.
    assert!(s.get(now, &id(2)).is_some() && s.get(now, &id(5)).is_some());
}

#[test]
fn zero_retention_forgets_at_once() {
    let t0 = Instant::now();
    let (s, _rxs) = store_with(1, Duration::ZERO, 10, t0);
    s.ended(t0, &id(1), view(&id(1), CallStatus::Completed));
    assert_eq!(s.get(t0, &id(1)), None);
}

#[test]
fn lists_filter_and_come_newest_first() {
    let t0 = Instant::now();
    let (s, _rxs) = store_with(5, Duration::from_secs(60), 10, t0);
    s.ended(t0, &id(2), view(&id(2), CallStatus::Completed));
    s.ended(t0, &id(4), view(&id(4), CallStatus::Busy));
    let all = |f, n| ids(&s.list(t0, f, n));
    let n = |k: u128| id(k).to_string();
    assert_eq!(all(ListFilter::Active, 10), [n(5), n(3), n(1)]);
    assert_eq!(all(ListFilter::Ended, 10), [n(4), n(2)]);
    assert_eq!(all(ListFilter::All, 10), [n(5), n(4), n(3), n(2), n(1)]);
    assert_eq!(all(ListFilter::All, 2), [n(5), n(4)]);
    assert_eq!(all(ListFilter::Active, 1), [n(5)]);
    assert!(all(ListFilter::All, 0).is_empty());
    // Expired calls leave the lists too.
    let later = t0 + Duration::from_secs(60);
    assert_eq!(
        ids(&s.list(later, ListFilter::Ended, 10)),
        Vec::<String>::new()
    );
    assert_eq!(ids(&s.list(later, ListFilter::All, 10)), [n(5), n(3), n(1)]);
}

#[test]
fn the_registry_reads_the_clock_itself() {
    let r = Registry::in_memory(Duration::from_secs(60), 10);
    let (tx, mut rx) = mpsc::unbounded_channel();
    r.insert(id(7), tx, view(&id(7), CallStatus::Queued));
    r.update(&id(7), view(&id(7), CallStatus::InProgress));
    assert_eq!(
        r.list(ListFilter::Active, 5).first().map(|v| v.status),
        Some(CallStatus::InProgress)
    );
    assert_eq!(
        r.send(
            &id(7),
            Command::Dtmf {
                digits: "1#".into()
            }
        ),
        Ok(())
    );
    assert_eq!(
        command(rx.try_recv().ok()),
        Some(Command::Dtmf {
            digits: "1#".into()
        })
    );
    r.ended(&id(7), view(&id(7), CallStatus::Completed));
    assert_eq!(r.send(&id(7), Command::Hangup), Err(SendError::Ended));
    assert_eq!(r.get(&id(7)).map(|v| v.status), Some(CallStatus::Completed));
}

#[test]
fn a_closed_inbox_reads_as_ended() {
    let t0 = Instant::now();
    let (s, rxs) = store_with(1, Duration::from_secs(60), 10, t0);
    drop(rxs);
    assert_eq!(s.send(t0, &id(1), Command::Hangup), Err(SendError::Ended));
}

#[test]
fn an_ended_view_comes_back_as_it_went_in() {
    let t0 = Instant::now();
    let (s, _rxs) = store_with(1, Duration::from_secs(60), 10, t0);
    let mut v = view(&id(1), CallStatus::Completed);
    v.from = Some("+48500100200".into());
    v.to = Some("+48123456789".into());
    v.did = Some("+48123456789".into());
    v.crt = Some("crt-7".into());
    v.answered_at = Some("2025-01-15T10:30:02Z".into());
    v.ended_at = Some("2025-01-15T10:31:00Z".into());
    v.duration_s = 58.5;
    v.billable_s = 58;
    v.end_reason = Some("caller_hangup".into());
    v.sip_status = Some(200);
    v.recording_url = Some("file:///var/lib/trunkgate/r.wav".into());
    v.recording_complete = Some(true);
    s.ended(t0, &id(1), v.clone());
    assert_eq!(s.get(t0, &id(1)), Some(v.clone()));
    assert_eq!(s.list(t0, ListFilter::Ended, 5), vec![v]);
}

#[test]
fn ended_views_share_chunks_that_go_when_their_views_have_gone() {
    let t0 = Instant::now();
    let n = 400;
    let (s, _rxs) = store_with(n, Duration::from_secs(60), 10_000, t0);
    for i in 1..=n {
        s.ended(t0, &id(i), view(&id(i), CallStatus::Completed));
    }
    let chunks = s.inner.lock().map(|i| i.packed.chunks()).unwrap_or(0);
    assert!((2..10).contains(&chunks), "{chunks} chunks for {n} views");
    // Re-ending a call (a later update of its final view) keeps one copy visible.
    let mut again = view(&id(7), CallStatus::Completed);
    again.billable_s = 99;
    s.ended(t0, &id(7), again.clone());
    assert_eq!(s.get(t0, &id(7)), Some(again));
    // All expire: one chunk is left, for the next view.
    let later = t0 + Duration::from_secs(61);
    assert_eq!(s.list(later, ListFilter::Ended, 10), vec![]);
    assert_eq!(s.inner.lock().map(|i| i.packed.chunks()).unwrap_or(0), 1);
    s.insert(
        later,
        id(1000),
        mpsc::unbounded_channel().0,
        view(&id(1000), CallStatus::Queued),
    );
    s.ended(later, &id(1000), view(&id(1000), CallStatus::Failed));
    assert_eq!(
        s.get(later, &id(1000)).map(|v| v.status),
        Some(CallStatus::Failed)
    );
}
