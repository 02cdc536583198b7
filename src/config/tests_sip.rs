//! Configuration tests for `[sip]` and `[rtp]`: listener addresses, session timers, the RTP
//! port range against the listeners, the public address, TLS settings and stream limits. The shipped
//! template's defaults are checked with every other section's in `tests.rs`.

use std::time::Duration;

use super::tests::{errors, ok};
use super::PublicAddress;

#[test]
fn bad_socket_address() {
    assert_eq!(
        errors("[sip]\nlisten_tcp = [\"0.0.0.0:5060\", \"0.0.0.0\"]\n"),
        "t.toml:2: sip.listen_tcp[1]: \"0.0.0.0\" is not a socket address (write e.g. \"0.0.0.0:5060\")"
    );
    assert_eq!(errors("[api]\nlisten = \"localhost:8080\"\n"), "t.toml:2: api.listen: \"localhost:8080\" is not a socket address (write e.g. \"0.0.0.0:5060\")");
    assert_eq!(
        errors("[sip]\nlisten_udp = [\"0.0.0.0:5060\", \"0.0.0.0:5060\"]\n"),
        "t.toml:2: sip.listen_udp[1]: 0.0.0.0:5060 is listed twice"
    );
}

#[test]
fn session_timer_keys() {
    let c = ok("");
    assert_eq!(c.sip.session_expires, Duration::from_secs(1800));
    assert_eq!(c.sip.min_se, Duration::from_secs(90));
    let c = ok("[sip]\nsession_expires = \"4s\"\nmin_se = \"2s\"\n");
    assert_eq!(
        (c.sip.session_expires, c.sip.min_se),
        (Duration::from_secs(4), Duration::from_secs(2))
    );
    assert_eq!(
        errors("[sip]\nsession_expires = \"60s\"\n"),
        "t.toml:2: sip.session_expires: 60s is below sip.min_se (90s)"
    );
    assert_eq!(
        errors("[sip]\nsession_expires = \"100s\"\nmin_se = \"2m\"\n"),
        "t.toml:3: sip.min_se: 120s is above sip.session_expires (100s)"
    );
    assert_eq!(
        errors("[sip]\nmin_se = \"1500ms\"\n"),
        "t.toml:2: sip.min_se: must be a whole number of seconds, at least 1s"
    );
    assert_eq!(
        errors("[sip]\nsession_expires = \"0s\"\n"),
        "t.toml:2: sip.session_expires: must be a whole number of seconds, at least 1s"
    );
}

#[test]
fn rtp_port_rules() {
    assert_eq!(
        errors("[rtp]\nport_min = 30000\nport_max = 20000\n"),
        "t.toml:3: rtp.port_max: 20000 must be greater than rtp.port_min (30000)"
    );
    assert_eq!(
        errors("[rtp]\nport_min = 10001\n"),
        "t.toml:2: rtp.port_min: 10001 is odd; RTP uses even ports (RTCP takes the odd one above)"
    );
    assert_eq!(
        errors("[rtp]\nptime_ms = 25\n"),
        "t.toml:2: rtp.ptime_ms: 25 is not one of 10, 20, 30, 40"
    );
}

#[test]
fn rtp_range_overlaps_listeners() {
    let text = "[sip]\nlisten_udp = [\"127.0.0.1:10002\", \"192.0.2.1:10004\"]\nlisten_tcp = []\n[api]\nlisten = \"[::]:15000\"\n[rtp]\nbind = \"127.0.0.1\"\n";
    assert_eq!(
        errors(text),
        [
            "t.toml:2: sip.listen_udp[0]: 127.0.0.1:10002 is inside the RTP port range 10000-20000 on 127.0.0.1",
            "t.toml:5: api.listen: [::]:15000 is inside the RTP port range 10000-20000 on 127.0.0.1",
        ]
        .join("\n")
    );
    // A default listener inside the range is reported at the range.
    assert_eq!(
        errors("[sip]\nlisten_tcp = []\n[rtp]\nport_min = 5000\nport_max = 6000\n"),
        "t.toml:4: rtp.port_min: the RTP port range 5000-6000 on 0.0.0.0 contains 0.0.0.0:5060 (default of sip.listen_udp[0])"
    );
    // Different specific addresses do not overlap.
    ok("[sip]\nlisten_udp = [\"192.0.2.1:10002\"]\n[rtp]\nbind = \"192.0.2.2\"\n");
}

#[test]
fn public_address_and_templates() {
    let c = ok("[sip]\npublic_address = \"sip.example.com\"\n");
    assert_eq!(
        c.sip.public_address,
        Some(PublicAddress::Host("sip.example.com".into()))
    );
    assert_eq!(
        errors("[sip]\npublic_address = \"0.0.0.0\"\n"),
        "t.toml:2: sip.public_address: \"0.0.0.0\" cannot be advertised: it is not a routable address"
    );
    assert_eq!(
        errors("[sip]\npublic_address = \"nat box\"\n"),
        "t.toml:2: sip.public_address: \"nat box\" is neither an IP address nor a host name"
    );
    assert_eq!(
        errors(
            "[[trunk]]\nname = \"t\"\ntransfer = { mode = \"refer\", body = { x = [1, nan] } }\n"
        ),
        "t.toml:3: trunk[0].transfer.body.x[1]: NaN cannot be sent as JSON"
    );
}

#[test]
fn tls_listener_needs_files() {
    assert_eq!(
        errors("[sip]\nlisten_tls = [\"0.0.0.0:5061\"]\n"),
        "t.toml:2: sip.listen_tls: TLS listeners need sip.tls.cert_file and sip.tls.key_file"
    );
    assert_eq!(
        errors("[sip.tls]\ncert_file = \"c.pem\"\n"),
        "t.toml:1: sip.tls: cert_file and key_file must be set together"
    );
}

#[test]
fn tls_settings_and_stream_limits() {
    let c = ok("");
    assert_eq!(c.sip.tls_handshake_timeout, Duration::from_secs(10));
    assert_eq!(c.sip.tls_ca_file, None);
    assert_eq!(c.sip.max_connections_per_source, 64);
    let c = ok(concat!(
        "[sip]\nmax_connections_per_source = 0\n",
        "[sip.tls]\nca_file = \"/etc/ca.pem\"\nhandshake_timeout = \"2s\"\n",
        "[[trunk]]\nname = \"t\"\n",
        "outbound = { address = \"192.0.2.1:5061\", transport = \"tls\", tls_check_hostname = false }\n",
    ));
    assert_eq!(c.sip.max_connections_per_source, 0);
    assert_eq!(
        c.sip.tls_ca_file.as_deref(),
        Some(std::path::Path::new("/etc/ca.pem"))
    );
    assert_eq!(c.sip.tls_handshake_timeout, Duration::from_secs(2));
    let out = c.trunks[0].outbound.as_ref().expect("outbound");
    assert_eq!(out.transport, super::types::Transport::Tls);
    assert!(!out.tls_check_hostname);
    let c =
        ok("[[trunk]]\nname = \"t\"\noutbound = { address = \"h:5061\", transport = \"tls\" }\n");
    assert!(c.trunks[0]
        .outbound
        .as_ref()
        .is_some_and(|o| o.tls_check_hostname));
    assert_eq!(
        errors("[sip.tls]\nhandshake_timeout = \"0s\"\n"),
        "t.toml:2: sip.tls.handshake_timeout: must be more than 0s and at most 60s"
    );
    assert_eq!(
        errors("[sip.tls]\nhandshake_timeout = \"61s\"\n"),
        "t.toml:2: sip.tls.handshake_timeout: must be more than 0s and at most 60s"
    );
}

/// `[[trunk]] tls_client_ca` / `tls_client_names`: parsed, names only with a CA, a CA only
/// with a TLS listener to ask on.
#[test]
fn trunk_client_certificates() {
    const TLS: &str = concat!(
        "[sip]\nlisten_tls = [\"127.0.0.1:5061\"]\n",
        "[sip.tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n",
    );
    let c = super::tests::ok(&format!(
        "{TLS}[[trunk]]\nname = \"a\"\ntls_client_ca = \"/etc/trunkgate/a-ca.pem\"\n\
         tls_client_names = [\"SBC.Carrier.example\"]\n[[trunk]]\nname = \"b\"\n"
    ));
    assert_eq!(
        c.trunks[0].tls_client_ca.as_deref(),
        Some(std::path::Path::new("/etc/trunkgate/a-ca.pem"))
    );
    assert_eq!(c.trunks[0].tls_client_names, ["sbc.carrier.example"]);
    assert_eq!(c.trunks[1].tls_client_ca, None);
    let e = super::tests::errors(&format!(
        "{TLS}[[trunk]]\nname = \"a\"\ntls_client_names = [\"x.example\", \"not a name\"]\n"
    ));
    assert!(
        e.contains("trunk[0].tls_client_names: only with tls_client_ca"),
        "{e}"
    );
    assert!(
        e.contains("trunk[0].tls_client_names[1]: \"not a name\" is not a DNS name"),
        "{e}"
    );
    let e = super::tests::errors("[[trunk]]\nname = \"a\"\ntls_client_ca = \"/ca.pem\"\n");
    assert!(
        e.contains("trunk[0].tls_client_ca: client certificates are asked on TLS"),
        "{e}"
    );
    let e = super::tests::errors(&format!(
        "{TLS}[[trunk]]\nname = \"a\"\ntls_client_ca = \"\"\n"
    ));
    assert!(
        e.contains("trunk[0].tls_client_ca: must name a CA file"),
        "{e}"
    );
}
