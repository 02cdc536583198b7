//! SIP over TLS, over real sockets: requests on a TLS listener are answered on the same
//! connection with TLS in Via and Contact; a reload swaps the certificate for new
//! connections and keeps open ones; per-source connection caps, the handshake quota and the
//! handshake timeout hold off a flooding or silent client while others are served (a call
//! from another source is set up while one source is over its handshake quota); outbound
//! calls reach a TLS trunk with SNI and the certificate checked (or, switched off per trunk,
//! only its chain). baresip over TLS is in `interop_baresip.rs`.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use support::gw;
use support::leg::WAIT;
use support::pki::{Leaf, Pki};
use support::placing::{self, Setup};
use support::trunk::{Script, Trunk};
use support::ua::Ua;
use trunkgate::app::Gateway;

/// A gateway with a TLS listener presenting `leaf`, plus `sip_keys` in `[sip]` and
/// `tls_keys` in `[sip.tls]`; `flood` replaces the test default quota.
fn tls_config(
    ports: (u16, u16),
    leaf: &Leaf,
    sip_keys: &str,
    tls_keys: &str,
    flood: &str,
) -> String {
    let tls = format!(
        "[sip.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n{tls_keys}\n",
        leaf.cert.display(),
        leaf.key.display()
    );
    gw::config_text(ports, "builtin:echo", &tls)
        .replace(
            "[sip]\n",
            &format!("[sip]\nlisten_tls = [\"127.0.0.1:0\"]\n{sip_keys}\n"),
        )
        .replace("burst = 100000, per_second = 100000", flood)
}

async fn start(text: &str) -> Gateway {
    let cfg = trunkgate::config::parse(text, "test").unwrap_or_else(|e| panic!("config: {e}"));
    Gateway::start(cfg).await.expect("gateway starts")
}

const TEST_FLOOD: &str = "burst = 100000, per_second = 100000";

fn from(ip: &str) -> SocketAddr {
    format!("{ip}:0").parse().expect("address")
}

/// OPTIONS on `ua`, answered 200 over the same connection.
async fn options_ok(ua: &mut Ua, branch: &str, cseq: u32) -> support::ua::Msg {
    let req = ua.request("OPTIONS", branch, cseq, None, "");
    ua.send(&req).await;
    ua.expect_status(200).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_requests_are_answered_and_a_reload_swaps_the_certificate_not_the_connections() {
    let mut pki = Pki::new();
    let leaf = pki.leaf(&["localhost", "127.0.0.1"]);
    let text = tls_config((39300, 39309), &leaf, "", "", TEST_FLOOD);
    let gw = start(&text).await;
    let server = gw.tls_addrs[0];
    let mut ua = Ua::tls_from(from("127.0.0.1"), server, pki.client_config(), "localhost")
        .await
        .expect("TLS handshake with the test CA");
    let ok = options_ok(&mut ua, "tls1", 1).await;
    let via = ok.header("Via").expect("Via");
    assert!(via.starts_with("SIP/2.0/TLS "), "{via}");
    let first = ua.peer_certificate().expect("server certificate");

    // A client that trusts another CA does not get through.
    let stranger = Pki::new();
    let refused = Ua::tls_from(
        from("127.0.0.1"),
        server,
        stranger.client_config(),
        "localhost",
    )
    .await;
    assert!(
        refused.is_err(),
        "a certificate from an unknown CA is refused"
    );

    // Renewed on disk, then reloaded: new connections get the new certificate, the open one
    // keeps working.
    pki.reissue(&leaf, &["localhost", "127.0.0.1"]);
    let cfg = trunkgate::config::parse(&text, "test").expect("config");
    gw.reload(cfg).await;
    options_ok(&mut ua, "tls2", 2).await;
    assert_eq!(ua.peer_certificate().as_deref(), Some(first.as_slice()));
    let mut fresh = Ua::tls_from(from("127.0.0.1"), server, pki.client_config(), "localhost")
        .await
        .expect("handshake after reload");
    options_ok(&mut fresh, "tls3", 1).await;
    let renewed = fresh.peer_certificate().expect("certificate");
    assert_ne!(renewed, first, "the renewed certificate is served");
    let on_disk = std::fs::read_to_string(&leaf.cert).expect("cert");
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(on_disk.as_bytes())
        .map(|c: rustls::pki_types::CertificateDer<'static>| c.to_vec())
        .expect("pem");
    assert_eq!(renewed, der);

    // A certificate file broken on disk is not swapped in: the old one stays in force.
    std::fs::write(&leaf.key, "not a key").expect("break key");
    let cfg = trunkgate::config::parse(&text, "test").expect("config");
    gw.reload(cfg).await;
    let mut after = Ua::tls_from(from("127.0.0.1"), server, pki.client_config(), "localhost")
        .await
        .expect("still served");
    options_ok(&mut after, "tls4", 1).await;
    assert_eq!(after.peer_certificate(), Some(renewed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_source_are_capped_on_tls_and_tcp() {
    let mut pki = Pki::new();
    let leaf = pki.leaf(&["localhost"]);
    // A long handshake timeout: what is closed below is closed by the cap, not the timeout.
    let text = tls_config(
        (39310, 39319),
        &leaf,
        "max_connections_per_source = 2",
        "handshake_timeout = \"60s\"",
        TEST_FLOOD,
    );
    let gw = start(&text).await;
    let (tls, tcp) = (gw.tls_addrs[0], gw.tcp_addrs[0]);
    let connect = |bind: &str, to: SocketAddr| {
        let bind = from(bind);
        async move {
            let s = tokio::net::TcpSocket::new_v4().expect("socket");
            s.bind(bind).expect("bind");
            s.connect(to).await.expect("connect")
        }
    };
    // Two silent connections from .7 (no handshake) fill its allowance on the TLS port...
    let mut held = vec![
        connect("127.0.0.7", tls).await,
        connect("127.0.0.7", tls).await,
    ];
    // (the gateway has counted them once it closes the next one)
    let mut third = connect("127.0.0.7", tls).await;
    assert!(
        support::ua::closed(&mut third, WAIT).await,
        "a third connection from the same source is closed"
    );
    // ...and on the TCP port, where the same cap counts the same source.
    let mut over_tcp = connect("127.0.0.7", tcp).await;
    assert!(
        support::ua::closed(&mut over_tcp, WAIT).await,
        "TCP counts too"
    );
    // Another source is served meanwhile.
    let mut other = Ua::tls_from(from("127.0.0.8"), tls, pki.client_config(), "localhost")
        .await
        .expect("another source gets its handshake");
    options_ok(&mut other, "cap1", 1).await;
    // The held connections are still open (the 60 s handshake timeout has not run).
    for s in &mut held {
        assert!(!support::ua::closed(s, Duration::from_millis(200)).await);
    }
    // Closing one frees a slot for that source.
    held.pop();
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut served = false;
    while !served && tokio::time::Instant::now() < deadline {
        // The gateway notices the close asynchronously; retry, bounded.
        served = match Ua::tls_from(from("127.0.0.7"), tls, pki.client_config(), "localhost").await
        {
            Ok(mut ua) => {
                options_ok(&mut ua, "cap2", 1).await;
                true
            }
            Err(_) => false,
        };
    }
    assert!(served, "a freed slot takes a new connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_follow_the_flood_quota_and_silent_ones_time_out() {
    let mut pki = Pki::new();
    let leaf = pki.leaf(&["localhost"]);
    let text = tls_config(
        (39320, 39329),
        &leaf,
        "",
        "handshake_timeout = \"1s\"",
        "burst = 3, per_second = 1",
    );
    let gw = start(&text).await;
    let tls = gw.tls_addrs[0];
    // Three handshakes at once from .9 are within its burst; the fourth is refused unanswered.
    let mut kept = Vec::new();
    for _ in 0..3 {
        let ua = Ua::tls_from(from("127.0.0.9"), tls, pki.client_config(), "localhost").await;
        kept.push(ua.expect("within the burst"));
    }
    let fourth = Ua::tls_from(from("127.0.0.9"), tls, pki.client_config(), "localhost").await;
    assert!(fourth.is_err(), "a fourth handshake at once is refused");
    let mut other = Ua::tls_from(from("127.0.0.10"), tls, pki.client_config(), "localhost")
        .await
        .expect("another source has its own quota");
    // While .9 keeps knocking (refused), a call from the other source is set up and ended
    // over its TLS connection (INVITE, ACK, BYE: within the same quota for SIP requests).
    let knocking = Ua::tls_from(from("127.0.0.9"), tls, pki.client_config(), "localhost").await;
    assert!(knocking.is_err(), "still over the quota");
    let rtp = support::rtp::RtpPeer::bind().await;
    let mut call = support::call::Call::new();
    call.establish(&mut other, rtp.addr()).await;
    call.hang_up(&mut other).await;

    // A connection that never starts its handshake is closed after the timeout (1 s here).
    let s = tokio::net::TcpSocket::new_v4().expect("socket");
    s.bind(from("127.0.0.11")).expect("bind");
    let mut silent = s.connect(tls).await.expect("connect");
    assert!(
        support::ua::closed(&mut silent, WAIT).await,
        "a silent client is dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_calls_reach_a_tls_trunk_with_the_certificate_checked() {
    let mut pki = Pki::new();
    let named = pki.leaf(&["localhost"]);
    let trunk = Trunk::start_tls(pki.server_config(&named), Script::answer().reject(486)).await;
    let ca = pki.ca_file();
    let port = trunk.addr.port();
    // One trunk by name (checked), one by IP with a certificate that names only a host:
    // refused with the check on, dialled with it off.
    let sip_keys = "";
    let sections = format!("[sip.tls]\nca_file = \"{}\"\n", ca.display());
    let trunk_keys = format!(
        "outbound = {{ address = \"localhost:{port}\", transport = \"tls\" }}\n\
         [[trunk]]\nname = \"by-ip\"\n\
         outbound = {{ address = \"127.0.0.1:{port}\", transport = \"tls\" }}\n\
         [[trunk]]\nname = \"by-ip-unchecked\"\n\
         outbound = {{ address = \"127.0.0.1:{port}\", transport = \"tls\", tls_check_hostname = false }}\n"
    );
    let setup = Setup {
        sections: &sections,
        trunk_keys: &trunk_keys,
        sip_keys,
        ..Setup::default()
    };
    let (gw, api) = placing::start((39330, 39339), setup).await;
    let mut events = gw.subscribe();
    let place = |trunk: &'static str| {
        let api = &api;
        async move {
            let (status, body) = api
                .post(
                    "/v1/calls",
                    &json!({"to": "+48123456789", "from": "+48111222333", "trunk": trunk,
                            "websocket_url": "ws://127.0.0.1:9/never"}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            body["call_id"].as_str().expect("call_id").to_string()
        }
    };

    let id = place("carrier").await;
    let invite = trunk.expect_request("INVITE", WAIT).await;
    assert!(invite.uri.ends_with(";transport=tls"), "{}", invite.uri);
    let via = support::trunk::header(&invite.msg, "Via").expect("Via");
    assert!(via.starts_with("SIP/2.0/TLS "), "{via}");
    let contact = support::trunk::header(&invite.msg, "Contact").expect("Contact");
    assert!(contact.contains(";transport=tls"), "{contact}");
    let (reason, record) = placing::ended(&mut events, &id, WAIT).await;
    assert_eq!(record["status"], "busy", "{reason} {record}");
    assert_eq!(
        trunk.tls_server_names(),
        vec![Some("localhost".to_string())]
    );

    // By IP with the name checked: the handshake fails, nothing reaches the trunk.
    let id = place("by-ip").await;
    let (reason, record) = placing::ended(&mut events, &id, WAIT).await;
    assert_eq!(record["status"], "failed", "{reason} {record}");
    assert_eq!(
        trunk.tls_server_names().len(),
        1,
        "no second handshake completed"
    );

    // By IP with the check off: the chain is still verified, the INVITE arrives (no SNI for
    // an address).
    let id = place("by-ip-unchecked").await;
    trunk.expect_request("INVITE", WAIT).await;
    let (_, record) = placing::ended(&mut events, &id, WAIT).await;
    assert_eq!(record["status"], "busy", "{record}");
    assert_eq!(trunk.tls_server_names().get(1), Some(&None));
}

/// `--check-config` refuses what would stop the TLS listener or TLS trunks at start: a key
/// that does not belong to the certificate, and a CA file that holds no certificate.
#[test]
fn check_config_catches_a_mismatched_key_and_a_bad_ca_file() {
    let mut pki = Pki::new();
    let (one, two) = (pki.leaf(&["localhost"]), pki.leaf(&["localhost"]));
    let bad_ca = gw::scratch_dir("tls-check").join("ca.pem");
    std::fs::write(&bad_ca, "not a certificate\n").expect("write");
    let mixed = Leaf {
        cert: one.cert.clone(),
        key: two.key.clone(),
    };
    let ca_key = format!("ca_file = \"{}\"", bad_ca.display());
    let text = tls_config((39390, 39399), &mixed, "", &ca_key, TEST_FLOOD);
    let file = gw::scratch_dir("tls-check").join("trunkgate.toml");
    std::fs::write(&file, text).expect("config file");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trunkgate"))
        .arg("--check-config")
        .arg(&file)
        .output()
        .expect("run --check-config");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("sip.tls: "),
        "the key/certificate mismatch: {text}"
    );
    assert!(text.contains("sip.tls.ca_file: "), "the CA file: {text}");
    // The matching pair and no CA file pass.
    let text = tls_config((39390, 39399), &one, "", "", TEST_FLOOD)
        .replace("listen = \"\"", "listen = \"\"\ntoken_file = \"\"");
    std::fs::write(&file, text).expect("config file");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trunkgate"))
        .arg("--check-config")
        .arg(&file)
        .output()
        .expect("run --check-config");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The real binary: a baresip call over TLS is up when the certificate is renewed on disk and
/// SIGHUP reloads it; the call goes on (echo heard after the reload, then a normal hangup)
/// while a new connection is served the renewed certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_renews_the_certificate_during_a_live_tls_call() {
    use support::baresip::{Baresip, BaresipOptions, TempDir, Transport};
    let dir = TempDir::new("tg-tls-sighup").expect("temp dir");
    let play = dir.path().join("play.wav");
    // Long enough to outlast the reload; the test hangs up itself.
    let mut samples = support::wav::silence(200, 8000);
    samples.extend(support::wav::tone(1000.0, 20_000, 0.5, 8000));
    support::wav::write_wav_8k(&play, &samples).expect("play.wav");
    let mut opts = BaresipOptions::new(Transport::Tls, &play);
    if !opts.binary.exists() {
        eprintln!("note: baresip not installed; skipping (scripts/test.sh installs it)");
        return;
    }
    let mut pki = Pki::new();
    let leaf = pki.leaf(&["localhost", "127.0.0.1"]);
    opts.ca_file = Some(pki.ca_file());
    let tls_port = 39401;
    let text = tls_config((39402, 39419), &leaf, "", "", TEST_FLOOD).replace(
        "listen_tls = [\"127.0.0.1:0\"]",
        &format!("listen_tls = [\"127.0.0.1:{tls_port}\"]"),
    );
    let file = gw::scratch_dir("tls-sighup").join("trunkgate.toml");
    std::fs::write(&file, text).expect("config file");
    let mut daemon = support::daemon::Daemon::start(&file).await;
    let server: SocketAddr = format!("127.0.0.1:{tls_port}").parse().expect("addr");
    let first = Ua::tls_from(from("127.0.0.1"), server, pki.client_config(), "localhost")
        .await
        .expect("handshake")
        .peer_certificate()
        .expect("certificate");

    let mut ua = Baresip::start(opts).await.expect("baresip starts");
    ua.dial(&format!("sip:echo@{server};transport=tls"))
        .await
        .expect("dial");
    ua.wait_established(WAIT).await.expect("call over TLS");
    pki.reissue(&leaf, &["localhost", "127.0.0.1"]);
    daemon.signal("HUP");
    daemon.wait_log("TLS certificate reloaded", WAIT).await;
    let renewed = Ua::tls_from(from("127.0.0.1"), server, pki.client_config(), "localhost")
        .await
        .expect("handshake after SIGHUP")
        .peer_certificate()
        .expect("certificate");
    assert_ne!(
        renewed, first,
        "new connections get the renewed certificate"
    );
    // The live call was not dropped: in-dialog requests still reach the gateway over the
    // call's connection (DTMF as INFO is not needed: the hangup's BYE is answered).
    assert!(
        ua.wait_event("CALL_CLOSED", Duration::from_millis(500))
            .await
            .is_err(),
        "the call survives the reload"
    );
    ua.hangup().await.expect("hang up");
    let closed = ua
        .wait_event("CALL_CLOSED", WAIT)
        .await
        .expect("the call ends");
    let finished = ua.quit().await.expect("baresip quits");
    assert!(
        !finished.log.contains("408") && !finished.log.contains("Request Timeout"),
        "the BYE was answered over TLS: {closed:?}\n{}",
        finished.log
    );
    daemon.stop().await;
}

/// `[[trunk]] tls_client_ca` + `tls_client_names`: a call from the trunk's address over TLS
/// gets in only with a client certificate from the trunk's CA naming its SBC; without one, or
/// naming another host, or from another CA (the listener asks for a certificate but does not
/// insist: other peers connect without), it is refused with 403 and its record says why. A
/// peer outside the trunk needs no certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_with_a_client_ca_admits_only_its_certificates() {
    use support::call::Call;
    use support::rtp::RtpPeer;
    let mut server_pki = Pki::new();
    let leaf = server_pki.leaf(&["localhost", "127.0.0.1"]);
    let mut carrier = Pki::new();
    let sbc = carrier.leaf(&["sbc.carrier.example"]);
    let other_host = carrier.leaf(&["other.example"]);
    let mut stranger_ca = Pki::new();
    let _ = &mut carrier;
    let forged = stranger_ca.leaf(&["sbc.carrier.example"]);
    let extra = format!(
        "[[trunk]]\nname = \"carrier\"\nmatch_cidrs = [\"127.0.0.2/32\"]\n\
         tls_client_ca = \"{}\"\ntls_client_names = [\"sbc.carrier.example\"]\n",
        carrier.ca_file().display()
    );
    let text = tls_config((39540, 39559), &leaf, "", "", TEST_FLOOD)
        .replace("[[number]]", &format!("{extra}[[number]]"));
    let gw = start(&text).await;
    let server = gw.tls_addrs[0];
    let rtp = RtpPeer::bind().await;
    let trust = server_pki.client_config();
    let connect = |bind: &'static str, config| async move {
        Ua::tls_from(from(bind), server, config, "localhost")
            .await
            .expect("handshake")
    };
    // The SBC's certificate: admitted, answered, hung up.
    let mut ua = connect("127.0.0.2", server_pki.client_config_with(&sbc)).await;
    let mut call = Call::new();
    call.establish(&mut ua, rtp.addr()).await;
    call.hang_up(&mut ua).await;
    // No certificate, or one naming another host: 403.
    let mut ua = connect("127.0.0.2", trust.clone()).await;
    Call::new().refused(&mut ua, rtp.addr(), 403).await;
    let mut ua = connect("127.0.0.2", server_pki.client_config_with(&other_host)).await;
    Call::new().refused(&mut ua, rtp.addr(), 403).await;
    // Another CA's certificate is refused by the handshake itself.
    let forged_conn = Ua::tls_from(
        from("127.0.0.2"),
        server,
        server_pki.client_config_with(&forged),
        "localhost",
    )
    .await;
    if let Ok(mut ua) = forged_conn {
        // TLS 1.3: the client learns of the refusal on its first read.
        let req = ua.request("OPTIONS", "forged1", 1, None, "");
        ua.send(&req).await;
        assert!(
            ua.recv(Duration::from_secs(2)).await.is_none(),
            "no answer on a refused handshake"
        );
    }
    // Outside the trunk, no certificate is asked of a call.
    let mut ua = connect("127.0.0.3", trust.clone()).await;
    let mut call = Call::new();
    call.establish(&mut ua, rtp.addr()).await;
    call.hang_up(&mut ua).await;
}
