//! Which agent answers a call: the `[[number]]` whose DID matches the dialled number
//! (Request-URI user, then To user, then the DID of a `"DID|CRT"` display name), else a
//! catch-all `did = "*"`; and the trunk a bridged leg leaves through.
//!
//! Owns: the order the candidates are tried in and the exact-then-`"*"` lookup. Must not
//! normalise numbers itself: `core::number` holds the one rule (config DIDs went through it at
//! load time, call numbers go through it here).

use crate::config::{Config, DidPattern, NumberConfig, TrunkConfig};
use crate::core::number::normalise_e164;
use crate::core::sip::endpoint::IncomingCall;

/// The caller's number as E.164: the From user, else the DID of a `"DID|CRT"` display name.
pub fn caller_number(call: &IncomingCall) -> Option<String> {
    call.from_user
        .as_deref()
        .and_then(normalise_e164)
        .or_else(|| call.did.clone())
}

/// The dialled DID, as routing and admission both see it: the first candidate (Request-URI
/// user, To user, display-name DID; E.164-normalised) that has its own `[[number]]`, else the
/// first that is a number at all.
pub fn dialled_did(config: &Config, call: &IncomingCall) -> Option<String> {
    let candidates = [
        call.request_user.as_deref(),
        call.to_user.as_deref(),
        call.did.as_deref(),
    ];
    let numbers: Vec<String> = candidates
        .into_iter()
        .flatten()
        .filter_map(normalise_e164)
        .collect();
    numbers
        .iter()
        .find(|e164| exact(config, e164).is_some())
        .or(numbers.first())
        .cloned()
}

/// The `[[number]]` for an already normalised DID (e.g. [`dialled_did`]'s, computed once at
/// admission): the exact match, else the catch-all `did = "*"`.
pub fn find_number_by_did<'a>(config: &'a Config, did: Option<&str>) -> Option<&'a NumberConfig> {
    did.and_then(|d| exact(config, d)).or_else(|| {
        config
            .numbers
            .iter()
            .find(|n| matches!(n.did, DidPattern::Any))
    })
}

/// The `[[number]]` for a call, as admission computes it (tests; the gateway routes by the
/// DID admission fixed).
/// The trunk a bridged leg of a call from `name` leaves through: that trunk if it places
/// calls, else the first that does.
pub(super) fn bridge_trunk<'a>(config: &'a Config, name: Option<&str>) -> Option<&'a TrunkConfig> {
    let places = |t: &&TrunkConfig| t.outbound.is_some();
    name.and_then(|n| config.trunks.iter().filter(places).find(|t| t.name == n))
        .or_else(|| config.trunks.iter().find(places))
}

#[cfg(test)]
fn find_number<'a>(config: &'a Config, call: &IncomingCall) -> Option<&'a NumberConfig> {
    find_number_by_did(config, dialled_did(config, call).as_deref())
}

fn exact<'a>(config: &'a Config, did: &str) -> Option<&'a NumberConfig> {
    config
        .numbers
        .iter()
        .find(|n| matches!(&n.did, DidPattern::Exact(d) if d == did))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Transport;

    fn call(request_user: &str, to_user: &str, did: Option<&str>) -> IncomingCall {
        IncomingCall {
            sip_call_id: "c".into(),
            from_uri: "sip:48600100200@pbx".into(),
            from_user: Some("48600100200".into()),
            from_display: None,
            to_uri: "sip:x@gw".into(),
            to_user: Some(to_user.into()),
            request_user: Some(request_user.into()),
            did: did.map(str::to_owned),
            crt: None,
            headers: Vec::new(),
            user_agent: None,
            source: std::net::SocketAddr::from(([127, 0, 0, 1], 5060)),
            transport: Transport::Udp,
            conn: None,
            local_host: "127.0.0.1".into(),
            offer: None,
        }
    }

    fn config(with_catch_all: bool) -> Config {
        let mut text = String::from(
            "[[number]]\ndid = \"0048 111\"\nagent = { url = \"builtin:echo\" }\n\
             [[number]]\ndid = \"+48222\"\nagent = { url = \"builtin:echo\" }\n",
        );
        if with_catch_all {
            text.push_str("[[number]]\ndid = \"*\"\nagent = { url = \"builtin:echo\" }\n");
        }
        crate::config::parse(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn did_of(n: Option<&NumberConfig>) -> Option<DidPattern> {
        n.map(|n| n.did.clone())
    }

    #[test]
    fn candidates_in_order_first_routed_wins() {
        let cfg = config(true);
        let exact = |d: &str| Some(DidPattern::Exact(d.into()));
        // The Request-URI user routes when it has a number of its own.
        let c = call("48111;user=phone", "+48 222", None);
        assert_eq!(dialled_did(&cfg, &c).as_deref(), Some("+48111"));
        assert_eq!(did_of(find_number(&cfg, &c)), exact("+48111"));
        // Otherwise the first routed candidate (the To user, separators dropped).
        let c = call("gateway", "+48 (222)", Some("+48111"));
        assert_eq!(dialled_did(&cfg, &c).as_deref(), Some("+48222"));
        // The display-name DID is the last resort.
        let c = call("gateway", "echo", Some("+48111"));
        assert_eq!(dialled_did(&cfg, &c).as_deref(), Some("+48111"));
        // No routed candidate: the first number is the DID, routed to "*".
        let c = call("0048999", "+48333", None);
        assert_eq!(dialled_did(&cfg, &c).as_deref(), Some("+48999"));
        assert_eq!(did_of(find_number(&cfg, &c)), Some(DidPattern::Any));
        assert_eq!(caller_number(&c).as_deref(), Some("+48600100200"));
        // No number at all.
        let c = call("echo", "bob", None);
        assert_eq!(dialled_did(&cfg, &c), None);
        assert_eq!(did_of(find_number(&cfg, &c)), Some(DidPattern::Any));
    }

    #[test]
    fn by_did_exact_else_catch_all() {
        let cfg = config(true);
        let exact = |d: &str| Some(DidPattern::Exact(d.into()));
        assert_eq!(
            did_of(find_number_by_did(&cfg, Some("+48222"))),
            exact("+48222")
        );
        assert_eq!(
            did_of(find_number_by_did(&cfg, Some("+48111"))),
            exact("+48111")
        );
        assert_eq!(
            did_of(find_number_by_did(&cfg, Some("+48999"))),
            Some(DidPattern::Any)
        );
        assert_eq!(
            did_of(find_number_by_did(&cfg, None)),
            Some(DidPattern::Any)
        );
        let strict = config(false);
        assert_eq!(did_of(find_number_by_did(&strict, Some("+48999"))), None);
        assert_eq!(did_of(find_number_by_did(&strict, None)), None);
    }
}
