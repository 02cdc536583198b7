//! An outbound call's INVITE as the trunk's configuration describes it: the next hop (the
//! outbound proxy, else the trunk, resolved A/AAAA), our advertised host, the Request-URI,
//! From/To, the caller-id header and the digest credentials.
//!
//! Must not: send anything or choose the socket (the endpoint task does).

use std::net::SocketAddr;

use super::dial::{Destination, DialRequest};
use crate::config::{Config, TrunkConfig};
use crate::core::sip::endpoint::DialSpec;
use crate::core::{Flow, Transport};

/// The From of a call placed without a caller id (RFC 3323 §4.1.1.3).
const ANONYMOUS: &str = "\"Anonymous\" <sip:anonymous@anonymous.invalid>";

/// The INVITE's addresses: where it goes (the outbound proxy, else the trunk), what it says.
/// An address that does not resolve leaves port 0, which the driver reports as a 503.
pub(super) async fn dial_spec(config: &Config, trunk: &TrunkConfig, req: &DialRequest) -> DialSpec {
    let Some(out) = trunk.outbound.as_ref() else {
        return unresolved_spec();
    };
    let transport = transport(out.transport);
    let next_hop = out.outbound_proxy.as_ref().unwrap_or(&out.address);
    let remote = resolve(next_hop).await;
    // Loose routing through the proxy (RFC 3261 §16.12): the Request-URI stays the trunk's.
    let route = out
        .outbound_proxy
        .as_ref()
        .map(|p| format!("<sip:{p};lr{}>", transport_param(transport)));
    let local_host = super::public_host(config).unwrap_or_else(|| {
        let any = if remote.is_ipv4() {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        };
        crate::core::sip::endpoint::uri_host(crate::io::sip_udp::local_ip_toward(any, remote))
    });
    let host = out.address.to_string();
    let tp = transport_param(transport);
    let (request_uri, to) = match &req.to {
        Destination::E164(n) => (
            format!("sip:{n}@{host}{tp}"),
            format!("<sip:{n}@{}>", out.address.host),
        ),
        Destination::Uri(u) => (u.clone(), format!("<{u}>")),
        // Registered phones are rung by `phone_spec`, never through a trunk; as a user part.
        Destination::User(n) => (
            format!("sip:{n}@{host}{tp}"),
            format!("<sip:{n}@{}>", out.address.host),
        ),
    };
    let domain = &out.from_domain;
    let (from, headers) = match &req.from {
        Some(f) => {
            let uri = format!("<sip:{f}@{domain}>");
            let headers = match out.caller_id {
                crate::config::CallerId::From => Vec::new(),
                crate::config::CallerId::Pai => {
                    vec![("P-Asserted-Identity".to_string(), uri.clone())]
                }
                crate::config::CallerId::Rpid => vec![(
                    "Remote-Party-ID".to_string(),
                    format!("{uri};party=calling;screen=yes;privacy=off"),
                )],
            };
            (uri, headers)
        }
        None => (ANONYMOUS.to_string(), Vec::new()),
    };
    let credentials = match out.read_credentials() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(trunk = %trunk.name, error = %e, "trunk credentials unreadable; dialling without");
            None
        }
    };
    DialSpec {
        flow: Flow {
            transport,
            local: SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0),
            remote,
            conn: None,
        },
        local_host,
        request_uri,
        from,
        to,
        route,
        headers,
        sdp: Vec::new(),
        credentials,
        // The name is the next hop's: the proxy's when there is one.
        tls_name: tls_name(out, next_hop),
    }
}

/// The INVITE toward a registered phone: to its Contact, on the flow its REGISTER came on
/// (its source address; its connection over TCP or TLS), no trunk, proxy or credentials.
pub(super) fn phone_spec(
    config: &Config,
    phone: &super::phones::Phone,
    user: &str,
    req: &DialRequest,
) -> DialSpec {
    let local_host = super::public_host(config)
        .unwrap_or_else(|| crate::core::sip::endpoint::uri_host(phone.flow.local.ip()));
    let from = match &req.from {
        Some(f) => format!("<sip:{f}@{local_host}>"),
        None => ANONYMOUS.to_string(),
    };
    DialSpec {
        flow: phone.flow,
        local_host: local_host.clone(),
        request_uri: phone.binding.uri.clone(),
        from,
        to: format!("<sip:{user}@{local_host}>"),
        route: None,
        headers: Vec::new(),
        sdp: Vec::new(),
        credentials: None,
        tls_name: None,
    }
}

/// The SIP transport a trunk's `outbound.transport` names.
pub(super) fn transport(t: crate::config::Transport) -> Transport {
    match t {
        crate::config::Transport::Tcp => Transport::Tcp,
        crate::config::Transport::Tls => Transport::Tls,
        crate::config::Transport::Udp => Transport::Udp,
    }
}

/// Over TLS with the host name checked: the name `hop`'s certificate must carry.
pub(super) fn tls_name(
    out: &crate::config::Outbound,
    hop: &crate::config::HostPort,
) -> Option<String> {
    let tls = out.transport == crate::config::Transport::Tls;
    (tls && out.tls_check_hostname).then(|| hop.bare_host().to_string())
}

/// The URI parameter for the transport: `sip:` URIs over TLS say `transport=tls` (a `sips:`
/// URI would promise TLS on every hop to the callee, RFC 5630, which we cannot).
pub(super) fn transport_param(t: Transport) -> &'static str {
    match t {
        Transport::Tcp => ";transport=tcp",
        Transport::Tls => ";transport=tls",
        Transport::Udp => "",
    }
}

pub(super) fn unresolved_spec() -> DialSpec {
    let any = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0);
    DialSpec {
        flow: Flow {
            transport: Transport::Udp,
            local: any,
            remote: any,
            conn: None,
        },
        local_host: String::new(),
        request_uri: String::new(),
        from: String::new(),
        to: String::new(),
        route: None,
        headers: Vec::new(),
        sdp: Vec::new(),
        credentials: None,
        tls_name: None,
    }
}

/// The next hop's address: the literal, else the first A/AAAA answer; port 0 when it does
/// not resolve.
async fn resolve(hop: &crate::config::HostPort) -> SocketAddr {
    if let Some(ip) = hop.ip() {
        return SocketAddr::new(ip, hop.port);
    }
    match tokio::net::lookup_host((hop.host.as_str(), hop.port)).await {
        Ok(mut addrs) => addrs
            .next()
            .unwrap_or(SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0)),
        Err(e) => {
            tracing::warn!(address = %hop, error = %e, "trunk address does not resolve");
            SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0)
        }
    }
}
