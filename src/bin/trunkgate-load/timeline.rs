//! Outbound mode's per-call record, shared by the three threads that see a call: the API
//! driver (request sent, 201), the far-end trunk (INVITE, 200 OK sent, ACK, the end and its
//! media figures) and the echo agent (WebSocket connected, start message). A click-to-call
//! call has two SIP legs at the far end ([`Leg`]): each has its own moments and outcome.
//!
//! Owns: one slot per call index, preallocated for the run, written without locks (each event
//! time is an `AtomicU64` of nanoseconds since the run's start, 0 = not yet; strings and the
//! outcome are `OnceLock`s set once), and the wake-up of the driver when a call ends.
//! Must not: interpret the figures (the outbound driver and its report do).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::media::MediaStats;

/// The moments of a call, in the order they normally happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `POST /v1/calls` sent.
    Posted = 0,
    /// Its 201 received.
    Created,
    /// The gateway's INVITE reached the far end.
    Invite,
    /// The far end sent its 200 OK.
    Answered,
    /// The gateway's ACK for it arrived.
    Acked,
    /// The gateway's agent leg opened its WebSocket (handshake seen).
    AgentConnected,
    /// The agent got the dialect's start message.
    AgentStart,
    /// The call ended at the far end (BYE answered, or a failure).
    Ended,
    /// The far end sent its BYE.
    ByeSent,
    /// Click-to-call: the manager leg's [`Event::Invite`] … [`Event::ByeSent`].
    MgrInvite,
    MgrAnswered,
    MgrAcked,
    MgrEnded,
    MgrByeSent,
}

const EVENTS: usize = 14;

/// Which of a call's SIP legs the far end sees: the dialled `to` (the only leg of a plain
/// outbound call; the client of a click-to-call) or the click-to-call manager
/// (`bridge_from`), rung first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    Called,
    Manager,
}

impl Leg {
    /// `event` (one of Invite, Answered, Acked, Ended, ByeSent) as this leg's.
    pub fn event(self, event: Event) -> Event {
        match (self, event) {
            (Leg::Called, e) => e,
            (Leg::Manager, Event::Invite) => Event::MgrInvite,
            (Leg::Manager, Event::Answered) => Event::MgrAnswered,
            (Leg::Manager, Event::Acked) => Event::MgrAcked,
            (Leg::Manager, Event::Ended) => Event::MgrEnded,
            (Leg::Manager, Event::ByeSent) => Event::MgrByeSent,
            (Leg::Manager, e) => e,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Leg::Called => "client",
            Leg::Manager => "manager",
        }
    }
}

/// How a call ended, as the far end saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The far end's BYE after `--duration` was answered 200.
    ByeOk,
    /// The far end's BYE got this final answer.
    ByeAnswered(u16),
    /// The far end's BYE got no answer.
    ByeTimeout,
    /// The gateway sent BYE first.
    GatewayBye,
    /// The gateway cancelled the INVITE (200 + 487 sent).
    Cancelled,
    /// The 200 OK was never acknowledged.
    NoAck,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub end: End,
    pub media: MediaStats,
    /// 200 OK sent → end, seconds (the call-seconds of the CPU figure).
    pub seconds: f64,
}

#[derive(Default)]
struct Slot {
    at: [AtomicU64; EVENTS],
    /// The agent's `callSid` (twilio) or `call_id` (raw) from its start message.
    agent_call_id: OnceLock<String>,
    outcome: OnceLock<Outcome>,
    ended: Notify,
    /// The manager leg's (click-to-call).
    mgr_outcome: OnceLock<Outcome>,
    mgr_ended: Notify,
}

impl Slot {
    fn leg(&self, leg: Leg) -> (&OnceLock<Outcome>, &Notify) {
        match leg {
            Leg::Called => (&self.outcome, &self.ended),
            Leg::Manager => (&self.mgr_outcome, &self.mgr_ended),
        }
    }
}

pub struct Timeline {
    start: Instant,
    slots: Vec<Slot>,
}

impl Timeline {
    pub fn new(calls: usize) -> Timeline {
        Timeline {
            start: Instant::now(),
            slots: (0..calls).map(|_| Slot::default()).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Records `event` for call `n` now, unless it was recorded before (the first time
    /// counts: a retransmitted INVITE is not a new arrival). Out-of-range `n` is ignored.
    pub fn mark(&self, n: usize, event: Event) {
        if let Some(s) = self.slots.get(n) {
            let nanos = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
            let _ = s.at[event as usize].compare_exchange(
                0,
                nanos.saturating_add(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// When `event` happened to call `n`, since the run's start.
    pub fn at(&self, n: usize, event: Event) -> Option<Duration> {
        let v = self.slots.get(n)?.at[event as usize].load(Ordering::Relaxed);
        (v != 0).then(|| Duration::from_nanos(v - 1))
    }

    /// `from` → `to` of call `n`, when both happened in that order.
    pub fn between(&self, n: usize, from: Event, to: Event) -> Option<Duration> {
        self.at(n, to)?.checked_sub(self.at(n, from)?)
    }

    pub fn set_agent_call_id(&self, n: usize, id: &str) {
        if let Some(s) = self.slots.get(n) {
            let _ = s.agent_call_id.set(id.to_string());
        }
    }

    pub fn agent_call_id(&self, n: usize) -> Option<&str> {
        self.slots.get(n)?.agent_call_id.get().map(String::as_str)
    }

    /// The far end is done with call `n`: records the outcome (the first one counts) and
    /// wakes the driver waiting in [`Timeline::ended`].
    #[cfg(test)]
    pub fn finish(&self, n: usize, outcome: Outcome) {
        self.finish_leg(n, Leg::Called, outcome);
    }

    /// [`Timeline::finish`] for one leg of call `n`.
    pub fn finish_leg(&self, n: usize, leg: Leg, outcome: Outcome) {
        if let Some(s) = self.slots.get(n) {
            self.mark(n, leg.event(Event::Ended));
            let (once, notify) = s.leg(leg);
            let _ = once.set(outcome);
            notify.notify_one();
        }
    }

    pub fn outcome(&self, n: usize) -> Option<&Outcome> {
        self.outcome_of(n, Leg::Called)
    }

    pub fn outcome_of(&self, n: usize, leg: Leg) -> Option<&Outcome> {
        self.slots.get(n)?.leg(leg).0.get()
    }

    /// Resolves once call `n` has ended (at once if it already has).
    pub async fn ended(&self, n: usize) {
        self.ended_leg(n, Leg::Called).await;
    }

    /// Resolves once `leg` of call `n` has ended (at once if it already has).
    pub async fn ended_leg(&self, n: usize, leg: Leg) {
        if let Some(s) = self.slots.get(n) {
            let (once, notify) = s.leg(leg);
            if once.get().is_none() {
                notify.notified().await;
            }
        }
    }
}

/// The call index the load tool encodes in the last 9 digits of a dialled number, agent path
/// or anything else it names per call.
pub fn index_of(text: &str) -> Option<usize> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let tail = digits.get(digits.len().checked_sub(9)?..)?;
    tail.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_mark_counts_and_order_is_kept() {
        let t = Timeline::new(2);
        t.mark(1, Event::Posted);
        let first = t.at(1, Event::Posted).expect("marked");
        std::thread::sleep(Duration::from_millis(2));
        t.mark(1, Event::Posted);
        assert_eq!(t.at(1, Event::Posted), Some(first));
        t.mark(1, Event::Created);
        assert!(t.between(1, Event::Posted, Event::Created).expect("both") >= Duration::ZERO);
        assert_eq!(t.at(0, Event::Posted), None);
        t.mark(7, Event::Posted); // out of range: ignored
    }

    #[test]
    fn finish_wakes_a_waiter_even_when_it_comes_first() {
        let t = Timeline::new(1);
        let out = Outcome {
            end: End::ByeOk,
            media: MediaStats::default(),
            seconds: 1.0,
        };
        t.finish(0, out.clone());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(1), t.ended(0))
                .await
                .expect("already ended");
        });
        assert_eq!(t.outcome(0).map(|o| o.end.clone()), Some(End::ByeOk));
        assert!(t.at(0, Event::Ended).is_some());
    }

    #[test]
    fn call_indexes_come_from_the_last_nine_digits() {
        assert_eq!(index_of("+4812000000042"), Some(42));
        assert_eq!(index_of("4812000001999"), Some(1999));
        assert_eq!(index_of("/agent/000000007"), Some(7));
        assert_eq!(index_of("12345"), None);
    }
}
