//! The far-end trunk's timers: the answer after the ring, 200 OK and BYE retransmissions
//! (doubling from T1 to T2, given up after 64 × T1), the BYE after `--duration`, and the end of
//! a call (its media figures and outcome to the timeline, the dialog kept a while for
//! retransmissions, then reaped).

use std::cmp::Reverse;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{State, Timer, Uas, GIVE_UP, LINGER, T1, T2};
use crate::timeline::{End, Event, Leg, Outcome};
use crate::trunk_msg as msg;

impl Uas {
    pub(super) fn fire_due(&mut self, now: Instant) {
        while let Some(Reverse((at, _, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, timer, call_id))) = self.timers.pop() else {
                break;
            };
            self.fire(timer, &call_id, now);
        }
    }

    fn fire(&mut self, timer: Timer, call_id: &str, now: Instant) {
        let Some(d) = self.dialogs.get_mut(call_id) else {
            return;
        };
        match (timer, d.state) {
            (Timer::Answer, State::Ringing) => {
                let sdp = msg::sdp_answer(&d.invite, self.engine.local());
                d.last.clear();
                msg::response(&mut d.last, 200, &d.head, Some(self.local), &sdp);
                let _ = self.sock.send_to(&d.last, d.src);
                d.state = State::Answered { acked: false };
                d.answered = Some(now);
                d.resend_every = T1;
                d.resend_until = now + GIVE_UP;
                if let Some(n) = d.n {
                    self.calls.mark(n, d.leg.event(Event::Answered));
                }
                let frames = |d: Duration| (d.as_secs_f64() * 50.0).round() as u32;
                let (leg, n) = (d.leg, d.n);
                match (d.remote_rtp, self.settings.click_to_call, leg) {
                    (Some(rtp), false, _) => {
                        let stream = n.map(|n| n as u64 * 2);
                        self.engine
                            .add(stream, rtp, frames(self.settings.duration), false)
                    }
                    // The manager talks until the gateway's BYE (bounded: the stream stops
                    // a while after the client leg's BYE was due).
                    (Some(rtp), true, Leg::Manager) => {
                        let most = self.settings.ring + self.settings.duration + GIVE_UP;
                        let stream = n.map(|n| n as u64 * 2 + 1);
                        self.engine.add_relay(stream, rtp, frames(most));
                        if let Some(n) = n {
                            self.managers.insert(n, rtp);
                        }
                    }
                    (Some(rtp), true, Leg::Called) => {
                        let stream = n.map(|n| n as u64 * 2);
                        self.engine
                            .add_relay(stream, rtp, frames(self.settings.duration));
                        if let Some(mgr) = n.and_then(|n| self.managers.get(&n)) {
                            self.engine.pair(rtp, *mgr);
                        }
                    }
                    (None, ..) => {}
                }
                self.at(now + T1, Timer::ResendOk, call_id);
                // Click-to-call: the client hangs up; the gateway BYEs the manager.
                if leg == Leg::Called {
                    let bye_at = now + self.settings.duration + Duration::from_millis(200);
                    self.at(bye_at, Timer::Bye, call_id);
                }
            }
            (Timer::ResendOk, State::Answered { acked: false }) => {
                if now >= d.resend_until {
                    self.send_bye(call_id, now);
                    self.finish(call_id, End::NoAck);
                    return;
                }
                let _ = self.sock.send_to(&d.last, d.src);
                self.stats.retransmitted_out.fetch_add(1, Ordering::Relaxed);
                d.resend_every = (d.resend_every * 2).min(T2);
                let next = now + d.resend_every;
                self.at(next, Timer::ResendOk, call_id);
            }
            (Timer::Bye, State::Answered { .. }) => self.send_bye(call_id, now),
            (Timer::ResendBye, State::Closing) => {
                if now >= d.resend_until {
                    self.finish(call_id, End::ByeTimeout);
                    return;
                }
                let _ = self.sock.send_to(&d.bye, d.src);
                self.stats.retransmitted_out.fetch_add(1, Ordering::Relaxed);
                d.resend_every = (d.resend_every * 2).min(T2);
                let next = now + d.resend_every;
                self.at(next, Timer::ResendBye, call_id);
            }
            (Timer::Reap, State::Done) => {
                self.dialogs.remove(call_id);
            }
            _ => {}
        }
    }

    fn send_bye(&mut self, call_id: &str, now: Instant) {
        let Some(d) = self.dialogs.get_mut(call_id) else {
            return;
        };
        d.bye = msg::bye(&d.invite, &d.tag, self.local, d.key);
        let _ = self.sock.send_to(&d.bye, d.src);
        if let Some(n) = d.n {
            self.calls.mark(n, d.leg.event(Event::ByeSent));
        }
        d.state = State::Closing;
        d.resend_every = T1;
        d.resend_until = now + GIVE_UP;
        self.at(now + T1, Timer::ResendBye, call_id);
    }

    /// The call is over for the far end: its media figures and outcome go to the timeline;
    /// the dialog lingers for retransmissions.
    pub(super) fn finish(&mut self, call_id: &str, end: End) {
        let Some(d) = self.dialogs.get_mut(call_id) else {
            return;
        };
        if d.state == State::Done {
            return;
        }
        d.state = State::Done;
        let media = d
            .remote_rtp
            .filter(|_| d.answered.is_some())
            .map(|rtp| self.engine.remove(rtp))
            .unwrap_or_default();
        let seconds = d.answered.map_or(0.0, |a| a.elapsed().as_secs_f64());
        if let Some(n) = d.n {
            self.calls.finish_leg(
                n,
                d.leg,
                Outcome {
                    end,
                    media,
                    seconds,
                },
            );
            if d.leg == Leg::Manager {
                self.managers.remove(&n);
            }
        }
        self.at(Instant::now() + LINGER, Timer::Reap, call_id);
    }
}
