//! What a REGISTER says and what its 2xx grants (RFC 3261 §10.2.1, §10.2.4, §10.3 step 8):
//! the request's headers, the granted lifetime read from our own Contact, and the refresh time.
//!
//! Must not: keep state or choose identifiers (the registration gives Call-ID, tag, branch).

use std::time::Duration;

use super::{Params, MIN_REFRESH};
use crate::core::sip::message::{parse_name_addr, HeaderName, Message, Method, OutMessage};

/// One REGISTER's identifiers and lifetime (0: remove the binding).
pub(super) struct Request<'a> {
    pub params: &'a Params,
    /// `<uri>`.
    pub contact: &'a str,
    pub call_id: &'a str,
    pub from_tag: &'a str,
    pub cseq: u32,
    pub branch: &'a str,
    pub expires: u32,
}

/// The REGISTER without credentials (the registration adds them).
pub(super) fn request(r: &Request<'_>) -> OutMessage {
    let p = r.params;
    let mut m = OutMessage::request(Method::Register, &p.registrar);
    let via = format!(
        "SIP/2.0/{} {};branch={};rport",
        p.transport.via_token(),
        p.sent_by,
        r.branch
    );
    m.add_header("Via", via);
    m.add_header("Max-Forwards", "70");
    m.add_header("From", format!("<{}>;tag={}", p.aor, r.from_tag));
    m.add_header("To", format!("<{}>", p.aor));
    m.add_header("Call-ID", r.call_id);
    m.add_header("CSeq", format!("{} REGISTER", r.cseq));
    m.add_header("Contact", format!("{};expires={}", r.contact, r.expires));
    m.add_header("Expires", r.expires.to_string());
    if !p.user_agent.is_empty() {
        m.add_header("User-Agent", p.user_agent.as_str());
    }
    m
}

/// When to refresh a binding granted for `lifetime`: half of it or 30 s before its end,
/// whichever is sooner, but not sooner than [`MIN_REFRESH`] (or half a grant shorter than that).
pub fn refresh_delay(lifetime: Duration) -> Duration {
    let half = lifetime / 2;
    let early = lifetime.saturating_sub(Duration::from_secs(30));
    half.min(early).max(MIN_REFRESH.min(half))
}

/// The lifetime a 2xx grants us: our Contact's `expires` (the registrar lists every binding
/// of the AOR, §10.3 step 8), else the `Expires` header.
pub(super) fn granted_expiry(msg: &Message, our_contact: &str) -> Option<u32> {
    let ours = parse_name_addr(our_contact).ok()?;
    let from_contact = msg
        .header_values(&HeaderName::Contact)
        .filter_map(|v| parse_name_addr(v).ok())
        .find(|c| {
            c.uri.user == ours.uri.user
                && c.uri.host.eq_ignore_ascii_case(ours.uri.host)
                && c.uri.port.unwrap_or(5060) == ours.uri.port.unwrap_or(5060)
        })
        .and_then(|c| {
            c.params
                .get("expires")
                .flatten()?
                .trim()
                .parse::<u32>()
                .ok()
        });
    from_contact.or_else(|| {
        msg.header(&HeaderName::Expires)
            .and_then(|v| v.trim().parse::<u32>().ok())
    })
}
