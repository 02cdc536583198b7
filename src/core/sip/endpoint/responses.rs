//! Building responses and choosing where they go (RFC 3261 §8.2.6, §18.2.2, RFC 3581).

use std::net::{IpAddr, SocketAddr};

use super::Endpoint;
use crate::core::sip::message::{parse_uri, Message, OutMessage};
use crate::core::Flow;

/// Where a stateless error response goes: back where the bytes came from.
pub fn reply_flow_raw(flow: &Flow) -> Flow {
    *flow
}

/// Where a response to `req` (received on `flow`) goes. Streams answer on the same connection;
/// UDP answers go to the source IP (we always stamp `received`), to the source port when the
/// client asked for `rport`, else to the Via sent-by port.
pub fn reply_flow(flow: &Flow, req: &Message) -> Flow {
    if flow.transport.is_reliable() {
        return *flow;
    }
    let via = req.top_via();
    let port = match via.rport() {
        Some(_) => flow.remote.port(),
        None => via.port.unwrap_or(5060),
    };
    Flow {
        remote: SocketAddr::new(flow.remote.ip(), port),
        ..*flow
    }
}

/// Formats a host for a SIP URI (IPv6 in brackets).
pub fn uri_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// Our Contact on `flow`, advertising `host` (and the flow's local port). Over TLS it is a
/// `sips:` URI when the request's URI (`request_uri`) was one (RFC 3261 §8.1.1.8), else
/// `sip:…;transport=tls`.
pub(super) fn contact_for(host: &str, flow: &Flow, request_uri: &str) -> String {
    let port = flow.local.port();
    let sips = request_uri
        .get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("sips:"));
    match flow.transport {
        crate::core::Transport::Udp => format!("<sip:trunkgate@{host}:{port}>"),
        crate::core::Transport::Tcp => format!("<sip:trunkgate@{host}:{port};transport=tcp>"),
        crate::core::Transport::Tls if sips => format!("<sips:trunkgate@{host}:{port}>"),
        crate::core::Transport::Tls => format!("<sip:trunkgate@{host}:{port};transport=tls>"),
    }
}

/// Body and extra headers of a response.
#[derive(Default)]
pub struct Extra<'a> {
    pub reason: Option<&'a str>,
    pub to_tag: Option<&'a str>,
    pub headers: Vec<(&'a str, String)>,
    pub sdp: Option<Vec<u8>>,
    pub contact: bool,
}

impl Endpoint {
    /// The host we advertise for a request that reached us on `flow`: the configured public
    /// address, else the local socket address, else (wildcard bind) the Request-URI host the
    /// peer used to reach us.
    pub(super) fn advertised_host(&self, flow: &Flow, req: Option<&Message>) -> String {
        if let Some(public) = &self.settings.public_address {
            return public.clone();
        }
        let ip = flow.local.ip();
        if !ip.is_unspecified() {
            return uri_host(ip);
        }
        req.and_then(|r| r.request_uri())
            .and_then(|u| parse_uri(u).ok().map(|u| u.host.to_string()))
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| uri_host(ip))
    }

    /// The host in-dialog requests of `call` advertise: for a UAC call, what its INVITE did
    /// (its Request-URI names the trunk, not us); for a UAS call, as for its INVITE.
    pub(super) fn dialog_host(&self, call: &super::dialog::SipCall) -> String {
        match call.role {
            super::dialog::Role::Uac => call.local_host.clone(),
            super::dialog::Role::Uas => self.advertised_host(&call.flow, Some(&call.invite)),
        }
    }

    /// Our Contact in requests we send inside `call`'s dialog: what our INVITE said (UAC), or
    /// as in our answer to theirs (UAS).
    pub(super) fn dialog_contact(&self, call: &super::dialog::SipCall) -> String {
        match call.role {
            super::dialog::Role::Uac => call
                .invite
                .header(&crate::core::sip::message::HeaderName::Contact)
                .map(str::to_string),
            super::dialog::Role::Uas => None,
        }
        .unwrap_or_else(|| self.contact_value(&call.flow, Some(&call.invite)))
    }

    pub(super) fn contact_value(&self, flow: &Flow, req: Option<&Message>) -> String {
        let uri = req.and_then(|r| r.request_uri()).unwrap_or("");
        contact_for(&self.advertised_host(flow, req), flow, uri)
    }

    /// Builds the bytes of a response to `req`.
    pub(super) fn response_bytes(
        &self,
        req: &Message,
        flow: &Flow,
        status: u16,
        extra: Extra,
    ) -> Vec<u8> {
        let mut resp = OutMessage::response_to(req, status, extra.reason, extra.to_tag);
        resp.stamp_top_via(flow.remote);
        resp.add_header("Server", self.settings.user_agent.clone());
        if extra.contact {
            resp.add_header("Contact", self.contact_value(flow, Some(req)));
            resp.add_header("Allow", super::ALLOW);
        }
        for (name, value) in extra.headers {
            resp.add_header(name, value);
        }
        if let Some(sdp) = extra.sdp {
            resp.set_body("application/sdp", sdp);
        }
        resp.to_bytes()
    }
}
