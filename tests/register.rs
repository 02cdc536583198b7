//! REGISTER toward a trunk over real sockets: a scripted registrar on loopback challenges the
//! first REGISTER (401, MD5 digest, checked with the crate's own `auth::respond`), grants a
//! 2 s binding to our Contact; `GET /v1/trunks` and `/metrics` show the trunk registered, a
//! refresh arrives before the binding runs out, and the shutdown removes it (`Expires: 0`).
//! Over TCP and TLS the registration shares its connection with the calls placed through the
//! trunk.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::net::UdpSocket;
use trunkgate::core::sip::auth::{parse_challenge, respond, Credentials};
use trunkgate::core::sip::message::{HeaderName, Limits, Message, Method, OutMessage};

use support::gw::scratch_dir;
use support::schema::assert_response;

const TOKEN: &str = "trunk-test-token";
const PASSWORD: &str = "reg-pass-123";
const CHALLENGE: &str = "Digest realm=\"carrier\", nonce=\"abc123\", qop=\"auth\", algorithm=MD5";
const WAIT: Duration = Duration::from_secs(5);

struct Registrar {
    sock: UdpSocket,
    /// REGISTERs received so far (for failure messages).
    seen: std::cell::Cell<u32>,
}

impl Registrar {
    /// The next REGISTER (anything else fails the test), and where it came from.
    async fn next(&self) -> (Message, SocketAddr) {
        let mut buf = vec![0u8; 65536];
        let (n, from) = tokio::time::timeout(WAIT, self.sock.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no REGISTER in time (after {})", self.seen.get()))
            .expect("recv");
        let msg = Message::parse(&buf[..n], &Limits::default()).expect("REGISTER parses");
        assert_eq!(msg.method(), Some(&Method::Register));
        self.seen.set(self.seen.get() + 1);
        (msg, from)
    }

    async fn answer(&self, req: &Message, to: SocketAddr, status: u16, headers: &[(&str, &str)]) {
        let mut out = OutMessage::response_to(req, status, None, Some("registrar"));
        for (n, v) in headers {
            out.add_header(n, *v);
        }
        self.sock.send_to(&out.to_bytes(), to).await.expect("send");
    }
}

fn expires(req: &Message) -> Option<u32> {
    req.header(&HeaderName::Expires)?.trim().parse().ok()
}

fn param<'a>(header: &'a str, name: &str) -> &'a str {
    let at = header.find(&format!("{name}=")).expect("param present") + name.len() + 1;
    let rest = &header[at..];
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    &rest[..rest.find(['"', ',']).unwrap_or(rest.len())]
}

async fn get(http: &reqwest::Client, base: &str, path: &str) -> (u16, String) {
    let resp = tokio::time::timeout(
        WAIT,
        http.get(format!("{base}{path}")).bearer_auth(TOKEN).send(),
    )
    .await
    .expect("API answers in time")
    .expect("HTTP");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

#[tokio::test]
async fn register_challenge_refresh_and_unregister() {
    let registrar = Registrar {
        sock: UdpSocket::bind("127.0.0.1:0").await.expect("bind"),
        seen: Default::default(),
    };
    let reg_addr = registrar.sock.local_addr().expect("addr");
    let dir = scratch_dir("register");
    let (token_file, password_file) = (dir.join("api.token"), dir.join("trunk.password"));
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token file");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("password file");
    let trunk = format!(
        "[[trunk]]\nname = \"carrier\"\noutbound = {{ address = \"{reg_addr}\", transport = \"udp\", \
         username = \"alice\", password_file = \"{}\", register = true }}\n",
        password_file.display()
    );
    let api = format!(
        "listen = \"127.0.0.1:0\"\ntoken_file = \"{}\"",
        token_file.display()
    );
    let text = support::gw::config_text((38600, 38619), "builtin:echo", &trunk)
        .replace("listen = \"\"", &api);
    let cfg = trunkgate::config::parse(&text, "test").expect("config");
    let gw = trunkgate::app::Gateway::start(cfg).await.expect("start");
    let base = format!("http://{}", gw.api_addr.expect("API"));
    let http = reqwest::Client::new();

    // First REGISTER: no credentials yet; challenged.
    let (first, from) = registrar.next().await;
    assert_eq!(
        first.request_uri(),
        Some(format!("sip:{reg_addr}").as_str())
    );
    assert_eq!(first.header(&HeaderName::Authorization), None);
    assert_eq!(expires(&first), Some(600));
    assert_eq!(from, gw.udp_addrs[0], "sent from the gateway's SIP socket");
    let contact = first.contact().expect("Contact").uri.raw.to_owned();
    assert_eq!(contact, format!("sip:alice@{}", gw.udp_addrs[0]));
    registrar
        .answer(&first, from, 401, &[("WWW-Authenticate", CHALLENGE)])
        .await;

    // The answer to the challenge, checked with our own computation.
    let (authed, from) = registrar.next().await;
    assert_eq!(authed.call_id(), first.call_id());
    assert!(authed.cseq().seq > first.cseq().seq);
    let value = authed
        .header(&HeaderName::Authorization)
        .expect("Authorization")
        .to_owned();
    let challenge = parse_challenge(CHALLENGE).expect("challenge");
    let expect = respond(
        &Credentials::new("alice", PASSWORD),
        &challenge,
        "REGISTER",
        &format!("sip:{reg_addr}"),
        param(&value, "cnonce"),
        1,
    )
    .expect("respond");
    assert_eq!(param(&value, "response"), expect.response, "{value}");
    let granted = format!("<{contact}>;expires=2");
    let other = "<sip:someone-else@198.51.100.7>;expires=3600";
    let both = format!("{other}, {granted}");
    registrar
        .answer(&authed, from, 200, &[("Contact", &both)])
        .await;

    // The API shows it registered (bounded poll: the state is published by another task).
    let until = tokio::time::Instant::now() + WAIT;
    let trunks: Value = loop {
        let (status, body) = get(&http, &base, "/v1/trunks").await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("JSON");
        if v["trunks"][0]["registered"] == true {
            break v;
        }
        assert!(tokio::time::Instant::now() < until, "never registered: {v}");
        tokio::task::yield_now().await;
    };
    assert_eq!(trunks["trunks"][0]["name"], "carrier");
    assert_eq!(trunks["trunks"][0]["last_error"], Value::Null);
    let at = trunks["trunks"][0]["expires_at"]
        .as_str()
        .expect("expires_at");
    let at: jiff::Timestamp = at.parse().expect("RFC 3339");
    let left = at.duration_since(jiff::Timestamp::now());
    assert!(
        left <= jiff::SignedDuration::from_secs(3),
        "about 2 s granted: {left:?}"
    );
    let (_, doc) = get(&http, &base, "/v1/openapi.json").await;
    let doc: Value = serde_json::from_str(&doc).expect("document");
    assert_response(&doc, "/v1/trunks", "get", 200, &trunks);
    let (_, metrics) = get(&http, &base, "/metrics").await;
    assert!(
        metrics.contains("trunkgate_trunk_registered{trunk=\"carrier\"} 1"),
        "{metrics}"
    );

    // The refresh comes before the 2 s binding runs out, with credentials up front.
    let granted_at = std::time::Instant::now();
    let (refresh, from) = registrar.next().await;
    assert!(
        granted_at.elapsed() < Duration::from_secs(2),
        "refreshed in time"
    );
    assert_eq!(refresh.call_id(), first.call_id());
    assert_eq!(expires(&refresh), Some(600));
    let value = refresh
        .header(&HeaderName::Authorization)
        .expect("proactive credentials");
    assert_eq!(param(value, "nc"), "00000002");
    registrar
        .answer(&refresh, from, 200, &[("Contact", &granted)])
        .await;

    // Shutdown removes the binding; the gateway waits for the answer.
    let stopping = tokio::spawn(gw.shutdown(Duration::from_millis(200)));
    let unregister = loop {
        let (req, from) = registrar.next().await;
        registrar.answer(&req, from, 200, &[]).await;
        if expires(&req) == Some(0) {
            break req;
        }
    };
    assert_eq!(unregister.call_id(), first.call_id());
    let c = unregister.contact().expect("Contact");
    assert_eq!(c.params.get("expires").flatten(), Some("0"));
    tokio::time::timeout(WAIT, stopping)
        .await
        .expect("shutdown finishes")
        .expect("shutdown task");
}

/// REGISTER over a stream transport toward the scripted trunk: Via, Contact and the
/// Request-URI name the transport, the API shows the trunk registered, a call placed through
/// the trunk goes on the same connection, and the drain removes the binding on it too.
async fn registers_over_a_stream(transport: support::trunk::Transport, ports: (u16, u16)) {
    use support::trunk::{Script, Transport, Trunk};
    let mut pki = support::pki::Pki::new();
    let (trunk, host, sections) = match transport {
        Transport::Tls => {
            let leaf = pki.leaf(&["localhost"]);
            let trunk = Trunk::start_tls(pki.server_config(&leaf), Script::answer()).await;
            let ca = format!("[sip.tls]\nca_file = \"{}\"\n", pki.ca_file().display());
            (trunk, "localhost", ca)
        }
        other => (Trunk::start(other).await, "127.0.0.1", String::new()),
    };
    let (token, via) = (transport.token(), transport.via());
    let trunk_keys = format!(
        "outbound = {{ address = \"{host}:{}\", transport = \"{token}\", username = \"alice\", register = true }}",
        trunk.addr.port()
    );
    let setup = support::placing::Setup {
        sections: &sections,
        trunk_keys: &trunk_keys,
        ..Default::default()
    };
    let (gw, api) = support::placing::start(ports, setup).await;
    let register = trunk.expect_request("REGISTER", WAIT).await;
    let uri = format!("sip:{host}:{};transport={token}", trunk.addr.port());
    assert_eq!(register.uri, uri);
    let via_value = support::trunk::header(&register.msg, "Via").expect("Via");
    assert!(
        via_value.starts_with(&format!("SIP/2.0/{via} ")),
        "{via_value}"
    );
    let contact = support::trunk::header(&register.msg, "Contact").expect("Contact");
    assert!(
        contact.contains(&format!(";transport={token}")),
        "{contact}"
    );
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        let v = api.get("/v1/trunks").await;
        if v["trunks"][0]["registered"] == true {
            break;
        }
        assert!(tokio::time::Instant::now() < until, "never registered: {v}");
        let mut changed = gw.subscribe();
        let _ = tokio::time::timeout(Duration::from_millis(50), changed.recv()).await;
    }
    // A call through the trunk reuses the registration's connection.
    let (status, body) = api
        .post(
            "/v1/calls",
            &serde_json::json!({"to": "+48123456789", "websocket_url": "ws://127.0.0.1:9/x"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let invite = trunk.expect_request("INVITE", WAIT).await;
    assert_eq!(
        invite.peer, register.peer,
        "one connection for REGISTER and the call"
    );
    gw.shutdown(Duration::from_millis(200)).await;
    let unregister = trunk
        .next_request_where(WAIT, |r| {
            r.method == "REGISTER"
                && support::trunk::header(&r.msg, "Expires").map(str::trim) == Some("0")
        })
        .await
        .expect("unREGISTER on shutdown");
    assert_eq!(unregister.peer, register.peer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_over_tcp() {
    registers_over_a_stream(support::trunk::Transport::Tcp, (39340, 39349)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_over_tls() {
    registers_over_a_stream(support::trunk::Transport::Tls, (39350, 39359)).await;
}
