//! Status callbacks in Twilio's form fields, for calls created through the Twilio-compatible
//! API (PROTOCOLS.md §3): what Twilio POSTs to a `StatusCallback` (`CallSid`, `CallStatus`,
//! `Direction`, `SequenceNumber`, …), built from the one call view. Also the two Twilio
//! formats the REST resource shares: RFC 2822 times and the `direction` names.
//!
//! Owns: Twilio's field names and value formats. Must not: read a clock (the event's time is
//! passed in), encode or send the form (the callback sender does), or sign it.

use super::callback::CallbackEvent;
use crate::core::call::{CallStatus, CallView, Direction};

/// The REST API version Twilio callbacks name.
pub const API_VERSION: &str = "2010-04-01";

/// Twilio's `direction` / `Direction`: `inbound`, or `outbound-api` for calls placed through
/// the API.
pub fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound-api",
    }
}

/// An ISO-8601 timestamp as Twilio writes times: `Tue, 31 Aug 2010 20:36:28 +0000`.
pub fn rfc2822(iso: Option<&str>) -> Option<String> {
    let ts: jiff::Timestamp = iso?.parse().ok()?;
    Some(ts.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string())
}

/// The `CallStatus` a callback for `event` reports: `ringing`, `in-progress`, or the call's
/// final status for `completed` (`completed`, `busy`, `no-answer`, `failed`, `canceled`).
pub fn call_status(view: &CallView, event: CallbackEvent) -> &'static str {
    match event {
        CallbackEvent::Ringing => CallStatus::Ringing.as_str(),
        CallbackEvent::Answered | CallbackEvent::Transfer | CallbackEvent::Leg => {
            CallStatus::InProgress.as_str()
        }
        // A transcript is never sent as Twilio's form; it would come after the end.
        CallbackEvent::Completed | CallbackEvent::Transcript if view.status.is_active() => {
            CallStatus::Completed.as_str()
        }
        CallbackEvent::Completed | CallbackEvent::Transcript => view.status.as_str(),
    }
}

/// The form fields of one status callback: `view` as it stood at `event`, the call's `seq`
/// (from 1, as in the JSON envelope; Twilio's `SequenceNumber` counts from 0) and the
/// event's time `at` (ISO-8601). `CallDuration` (whole seconds) only on `completed`, like
/// Twilio; absent `From`/`To` are left out.
pub fn form_fields(
    view: &CallView,
    event: CallbackEvent,
    account_sid: &str,
    seq: u32,
    at: &str,
) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("CallSid", view.call_id.clone()),
        ("AccountSid", account_sid.to_string()),
    ];
    if let Some(from) = &view.from {
        out.push(("From", from.clone()));
    }
    if let Some(to) = &view.to {
        out.push(("To", to.clone()));
    }
    out.push(("CallStatus", call_status(view, event).to_string()));
    out.push(("Direction", direction(view.direction).to_string()));
    if event == CallbackEvent::Completed {
        let whole = if view.duration_s.is_finite() && view.duration_s > 0.0 {
            view.duration_s.floor() as u64
        } else {
            0
        };
        out.push(("CallDuration", whole.to_string()));
        if let Some(sip) = view.sip_status {
            out.push(("SipResponseCode", sip.to_string()));
        }
    }
    out.push(("Timestamp", rfc2822(Some(at)).unwrap_or_default()));
    out.push(("SequenceNumber", seq.saturating_sub(1).to_string()));
    out.push(("CallbackSource", "call-progress-events".to_string()));
    out.push(("ApiVersion", API_VERSION.to_string()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> CallView {
        let mut v = CallView::new("CA0123", Direction::Outbound, "2025-01-15T10:30:00Z".into());
        v.from = Some("+48600100200".into());
        v.to = Some("+48123456789".into());
        v
    }

    fn get<'a>(fields: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn ringing_like_twilio() {
        let mut v = view();
        v.status = CallStatus::Ringing;
        let f = form_fields(&v, CallbackEvent::Ringing, "AC1", 1, "2025-01-15T10:30:01Z");
        let names: Vec<&str> = f.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [
                "CallSid",
                "AccountSid",
                "From",
                "To",
                "CallStatus",
                "Direction",
                "Timestamp",
                "SequenceNumber",
                "CallbackSource",
                "ApiVersion"
            ]
        );
        assert_eq!(get(&f, "CallSid"), Some("CA0123"));
        assert_eq!(get(&f, "AccountSid"), Some("AC1"));
        assert_eq!(get(&f, "CallStatus"), Some("ringing"));
        assert_eq!(get(&f, "Direction"), Some("outbound-api"));
        assert_eq!(
            get(&f, "Timestamp"),
            Some("Wed, 15 Jan 2025 10:30:01 +0000")
        );
        assert_eq!(get(&f, "SequenceNumber"), Some("0"));
        assert_eq!(get(&f, "CallbackSource"), Some("call-progress-events"));
        assert_eq!(get(&f, "ApiVersion"), Some("2010-04-01"));
        assert_eq!(get(&f, "CallDuration"), None);
    }

    #[test]
    fn answered_and_completed() {
        let mut v = view();
        v.status = CallStatus::InProgress;
        let f = form_fields(
            &v,
            CallbackEvent::Answered,
            "AC1",
            2,
            "2025-01-15T10:30:05Z",
        );
        assert_eq!(get(&f, "CallStatus"), Some("in-progress"));
        assert_eq!(get(&f, "SequenceNumber"), Some("1"));
        v.status = CallStatus::Completed;
        v.duration_s = 61.9;
        v.sip_status = Some(200);
        let f = form_fields(
            &v,
            CallbackEvent::Completed,
            "AC1",
            3,
            "2025-01-15T10:31:07Z",
        );
        assert_eq!(get(&f, "CallStatus"), Some("completed"));
        assert_eq!(get(&f, "CallDuration"), Some("61"));
        assert_eq!(get(&f, "SipResponseCode"), Some("200"));
        for status in [
            CallStatus::Busy,
            CallStatus::NoAnswer,
            CallStatus::Failed,
            CallStatus::Canceled,
        ] {
            v.status = status;
            v.duration_s = 0.0;
            let f = form_fields(
                &v,
                CallbackEvent::Completed,
                "AC1",
                2,
                "2025-01-15T10:31:07Z",
            );
            assert_eq!(get(&f, "CallStatus"), Some(status.as_str()));
            assert_eq!(get(&f, "CallDuration"), Some("0"));
        }
        v.duration_s = f64::NAN;
        let f = form_fields(&v, CallbackEvent::Completed, "AC1", 0, "not a time");
        assert_eq!(get(&f, "CallDuration"), Some("0"));
        assert_eq!(get(&f, "SequenceNumber"), Some("0"));
        assert_eq!(get(&f, "Timestamp"), Some(""));
    }

    #[test]
    fn inbound_without_numbers() {
        let v = CallView::new("CA9", Direction::Inbound, "2025-01-15T10:30:00Z".into());
        let f = form_fields(
            &v,
            CallbackEvent::Completed,
            "AC1",
            1,
            "2025-01-15T10:30:00Z",
        );
        assert_eq!(get(&f, "Direction"), Some("inbound"));
        assert_eq!((get(&f, "From"), get(&f, "To")), (None, None));
        assert_eq!(get(&f, "CallStatus"), Some("completed"));
    }

    #[test]
    fn times_like_twilio() {
        assert_eq!(
            rfc2822(Some("2010-08-31T20:36:28.123Z")).as_deref(),
            Some("Tue, 31 Aug 2010 20:36:28 +0000")
        );
        assert_eq!(
            rfc2822(Some("2025-01-05T07:08:09Z")).as_deref(),
            Some("Sun, 05 Jan 2025 07:08:09 +0000")
        );
        assert_eq!(rfc2822(Some("yesterday")), None);
        assert_eq!(rfc2822(None), None);
    }
}
