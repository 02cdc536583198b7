//! Call transfer by REFER (RFC 3515) inside a confirmed dialog, UAS or UAC alike: our REFER
//! (one at a time, a client non-INVITE transaction through `start_client`), its final answer
//! as [`CallEvent::ReferResult`], the NOTIFYs of its implicit subscription (RFC 3515 §2.4.4,
//! RFC 6665) answered 200 and reported as [`CallEvent::ReferProgress`], and a REFER the peer
//! sends us (603 Declined: we take no transfers from peers).
//!
//! A NOTIFY is matched to one of our REFERs by `Event: refer;id=<the REFER's CSeq>` (without
//! an id, the oldest one); a NOTIFY for a REFER we did not send (or one refused, or one whose
//! subscription ended) gets 481, another event package 489 with `Allow-Events: refer`. The
//! message/sipfrag body is read leniently, whatever its Content-Type: a missing or unreadable
//! status line is status 0 and the NOTIFY still gets 200 — a 400 could make the notifier end
//! the subscription, and the owner would never hear `terminated`.
//!
//! Must not: decide what a transfer means for the call (the owner hangs up on success or
//! carries on after a failure), read the clock, or panic on what the peer sends.

use std::time::Instant;

use super::dialog::CallState;
use super::{CallEvent, CallKey, Endpoint};
use crate::core::sip::message::{HeaderName, Message, Method};
use crate::core::Flow;

/// A dialog's REFERs: the one in flight and the subscriptions of the accepted ones.
#[derive(Debug, Default)]
pub struct ReferState {
    /// Our REFER awaiting its final response: its client transaction key and CSeq.
    txn: Option<(String, u32)>,
    /// CSeqs of our REFERs whose subscription lives (sent, not refused, not terminated).
    subs: Vec<u32>,
}

/// A URI as a name-addr: `sip:b@x` → `<sip:b@x>`; a value with `<...>` stays as given.
fn name_addr(value: &str) -> String {
    let value = value.trim();
    if value.contains('<') {
        value.to_string()
    } else {
        format!("<{value}>")
    }
}

/// The event package and `id` parameter of an Event header (`refer;id=93`).
fn event_of(value: &str) -> (&str, Option<u32>) {
    let mut parts = value.split(';');
    let package = parts.next().unwrap_or("").trim();
    let id = parts.find_map(|p| {
        let (name, v) = p.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("id") {
            return None;
        }
        v.trim().trim_matches('"').parse().ok()
    });
    (package, id)
}

/// The status code of a message/sipfrag body's status line (`SIP/2.0 180 Ringing` → 180);
/// 0 when there is none or it is not one.
pub(super) fn sipfrag_status(body: &[u8]) -> u16 {
    let Some(line) = body
        .split(|b| *b == b'\n')
        .map(|l| l.trim_ascii())
        .find(|l| !l.is_empty())
    else {
        return 0;
    };
    let Ok(line) = std::str::from_utf8(line) else {
        return 0;
    };
    let mut parts = line.split_ascii_whitespace();
    let sip = parts
        .next()
        .and_then(|v| v.get(..4))
        .is_some_and(|v| v.eq_ignore_ascii_case("SIP/"));
    parts
        .next()
        .filter(|_| sip)
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (100..700).contains(c))
        .unwrap_or(0)
}

impl Endpoint {
    /// Sends REFER (see [`super::CallCommand::Refer`]), or reports at once why it cannot.
    pub(super) fn send_refer(
        &mut self,
        now: Instant,
        call_key: CallKey,
        refer_to: &str,
        referred_by: Option<&str>,
    ) {
        let Some(call) = self.calls.get(&call_key) else {
            return;
        };
        let refused = if call.refer.txn.is_some() {
            Some(491)
        } else if call.state != CallState::Confirmed {
            Some(481)
        } else if refer_to.trim().is_empty() {
            Some(400)
        } else {
            None
        };
        if let Some(status) = refused {
            return self.emit(call_key, CallEvent::ReferResult { status });
        }
        let host = self.dialog_host(call);
        let contact = self.dialog_contact(call);
        let branch = self.random_token();
        let ua = self.settings.user_agent.clone();
        let Some(call) = self.calls.get_mut(&call_key) else {
            return;
        };
        let mut req = call.request_out(Method::Refer, &branch, &host, &ua);
        req.add_header("Contact", contact);
        req.add_header("Refer-To", name_addr(refer_to));
        if let Some(by) = referred_by.filter(|b| !b.trim().is_empty()) {
            req.add_header("Referred-By", name_addr(by));
        }
        let seq = call.local_cseq;
        let key = format!("z9hG4bK{branch}");
        call.refer.txn = Some((key.clone(), seq));
        call.refer.subs.push(seq);
        let flow = call.flow;
        self.start_client(now, key, req.to_bytes(), flow, Some(call_key));
    }

    /// Whether `key` is the client transaction of our REFER in flight.
    pub(super) fn is_refer_txn(&self, call_key: CallKey, key: &str) -> bool {
        self.calls
            .get(&call_key)
            .and_then(|c| c.refer.txn.as_ref())
            .is_some_and(|(k, _)| k == key)
    }

    /// The final answer to our REFER (408 for none): a refusal ends its subscription too.
    pub(super) fn on_refer_final(&mut self, call_key: CallKey, status: u16) {
        let Some(call) = self.calls.get_mut(&call_key) else {
            return;
        };
        let Some((_, seq)) = call.refer.txn.take() else {
            return;
        };
        if !(200..300).contains(&status) {
            call.refer.subs.retain(|s| *s != seq);
        }
        self.emit(call_key, CallEvent::ReferResult { status });
    }

    /// A NOTIFY inside the dialog of `call_key` (see the module header).
    pub(super) fn on_notify(
        &mut self,
        now: Instant,
        flow: Flow,
        msg: Message,
        key: String,
        call_key: CallKey,
    ) {
        let (package, id) = event_of(msg.header(&HeaderName::Event).unwrap_or(""));
        if !package.eq_ignore_ascii_case("refer") {
            let headers = vec![("Allow-Events", "refer".to_string())];
            return self.respond_new(now, flow, &msg, key, 489, headers);
        }
        let Some(call) = self.calls.get_mut(&call_key) else {
            return self.respond_new(now, flow, &msg, key, 481, Vec::new());
        };
        let found = match id {
            Some(id) => call.refer.subs.iter().position(|s| *s == id),
            None => (!call.refer.subs.is_empty()).then_some(0),
        };
        let Some(index) = found else {
            return self.respond_new(now, flow, &msg, key, 481, Vec::new());
        };
        let terminated = msg
            .header(&HeaderName::SubscriptionState)
            .and_then(|v| v.split(';').next())
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("terminated"));
        if terminated {
            call.refer.subs.remove(index);
        }
        let status = sipfrag_status(msg.body());
        self.respond_new(now, flow, &msg, key, 200, Vec::new());
        self.emit(call_key, CallEvent::ReferProgress { status, terminated });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipfrag_status_lines() {
        assert_eq!(sipfrag_status(b"SIP/2.0 180 Ringing\r\n"), 180);
        assert_eq!(sipfrag_status(b"\r\n  SIP/2.0 200 OK"), 200);
        assert_eq!(sipfrag_status(b"sip/2.0 486 Busy Here\r\nFrom: x\r\n"), 486);
        for junk in [
            &b""[..],
            b"garbage",
            b"SIP/2.0",
            b"SIP/2.0 99 X",
            b"SIP/2.0 abc",
            b"\xff\xfe",
        ] {
            assert_eq!(sipfrag_status(junk), 0, "{junk:?}");
        }
    }

    #[test]
    fn event_headers_and_refer_to_values() {
        assert_eq!(event_of("refer"), ("refer", None));
        assert_eq!(event_of("refer;id=93 "), ("refer", Some(93)));
        assert_eq!(event_of(" refer ; ID=\"7\""), ("refer", Some(7)));
        assert_eq!(event_of("refer;id=x"), ("refer", None));
        assert_eq!(event_of("presence"), ("presence", None));
        assert_eq!(name_addr(" sip:b@x "), "<sip:b@x>");
        assert_eq!(name_addr("\"B\" <sip:b@x>"), "\"B\" <sip:b@x>");
    }
}
