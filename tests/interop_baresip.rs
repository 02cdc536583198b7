//! Interop with a real SIP UA: baresip (Debian package) calls `trunkgate demo` — the embedded
//! demo configuration, with its fixed ports swapped for free ones so tests can run side by
//! side — over UDP, TCP and TLS, plays a 1000 Hz tone, sends RFC 4733 DTMF, and hangs up when
//! its play file ends. The test checks that the gateway saw the digits and that baresip's
//! recording holds its own tone (echoed) and the digits' tones (played back by the agent).

mod support;

use std::time::Duration;

use support::baresip::{Baresip, BaresipOptions, TempDir, Transport};
use support::gw::{self, wait_event};
use support::wav;
use trunkgate::app::GatewayEvent;
use trunkgate::core::media::tone::{detect_dtmf, detect_tone};
use trunkgate::core::sip::endpoint::EndReason;

const DIGITS: &str = "159#";

/// The embedded demo config on free ports, with its files in a temp dir.
fn demo_config(ports: (u16, u16)) -> trunkgate::config::Config {
    let files = gw::scratch_dir("demo");
    let text = trunkgate::config::DEMO_TOML
        .replace("127.0.0.1:5060", "127.0.0.1:0")
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("port_min = 20000", &format!("port_min = {}", ports.0))
        .replace("port_max = 29999", &format!("port_max = {}", ports.1))
        .replace("./trunkgate-data", &files.display().to_string());
    assert!(
        text.contains(&format!("port_min = {}", ports.0)),
        "demo config layout changed"
    );
    trunkgate::config::parse(&text, "demo.toml").expect("demo config")
}

async fn call_through(transport: Transport, ports: (u16, u16)) {
    let mut config = demo_config(ports);
    // Over TLS: the demo with a TLS listener whose certificate a test CA signed.
    let mut pki = support::pki::Pki::new();
    if transport == Transport::Tls {
        let leaf = pki.leaf(&["localhost", "127.0.0.1"]);
        config.sip.listen_tls = vec!["127.0.0.1:0".parse().expect("addr")];
        config.sip.tls = Some(trunkgate::config::TlsFiles {
            cert_file: leaf.cert,
            key_file: leaf.key,
        });
    }
    let gw = trunkgate::app::Gateway::start(config)
        .await
        .expect("demo starts");
    let mut events = gw.subscribe();
    let dir = TempDir::new("tg-interop").expect("temp dir");
    // 4.5 s of audio: the call ends (baresip sends BYE) when the file ends.
    let mut samples = wav::silence(300, 8000);
    samples.extend(wav::tone(1000.0, 4200, 0.5, 8000));
    let play = dir.path().join("play.wav");
    wav::write_wav_8k(&play, &samples).expect("write play.wav");
    let mut opts = BaresipOptions::new(transport, &play);
    opts.record_wav = Some(dir.path().join("heard.wav"));
    opts.ca_file = Some(pki.ca_file());
    let mut ua = Baresip::start(opts).await.expect("baresip starts");
    let target = match transport {
        Transport::Udp => format!("sip:echo@{}", gw.udp_addrs[0]),
        Transport::Tcp => format!("sip:echo@{}", gw.tcp_addrs[0]),
        Transport::Tls => format!("sip:echo@{};transport=tls", gw.tls_addrs[0]),
    };
    ua.dial(&target).await.expect("dial");
    ua.wait_established(Duration::from_secs(10))
        .await
        .expect("call established");
    ua.send_dtmf(DIGITS).await.expect("send dtmf");

    let mut seen = String::new();
    while seen.len() < DIGITS.len() {
        let ev = wait_event(&mut events, Duration::from_secs(10), |e| {
            matches!(e, GatewayEvent::Dtmf { .. })
        })
        .await;
        if let GatewayEvent::Dtmf { digit, .. } = ev {
            seen.push(digit);
        }
    }
    assert_eq!(seen, DIGITS, "digits seen by the gateway, in order");

    let ended = wait_event(&mut events, Duration::from_secs(15), |e| {
        matches!(e, GatewayEvent::CallEnded { .. })
    })
    .await;
    assert!(
        matches!(
            ended,
            GatewayEvent::CallEnded {
                reason: EndReason::RemoteBye,
                ..
            }
        ),
        "{ended:?}"
    );
    ua.wait_event("CALL_CLOSED", Duration::from_secs(5))
        .await
        .expect("baresip sees the end");
    let heard_path = ua
        .save_recording(&dir.path().join("heard.wav"))
        .await
        .expect("recording");
    let heard = wav::read_wav(&heard_path).expect("read recording");
    assert_eq!(heard.sample_rate, 8000);

    // 100 ms windows: the echoed 1000 Hz tone and each digit's tone must be there.
    let windows: Vec<&[i16]> = heard.samples.chunks(800).collect();
    let tone_windows = windows
        .iter()
        .filter(|w| w.len() == 800 && detect_tone(w, 8000, 1000.0) > 0.5)
        .count();
    assert!(
        tone_windows >= 10,
        "echoed tone in {tone_windows} of {} windows",
        windows.len()
    );
    let heard_digits: String = windows
        .iter()
        .filter_map(|w| detect_dtmf(&w[..w.len().min(320)], 8000))
        .fold(String::new(), |mut acc, d| {
            if !acc.ends_with(d) {
                acc.push(d);
            }
            acc
        });
    for d in DIGITS.chars() {
        assert!(
            heard_digits.contains(d),
            "digit {d} played back (heard {heard_digits:?})"
        );
    }
    let _ = ua.quit().await;
    assert_eq!(gw.rtp_ports_in_use(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_demo_over_udp() {
    call_through(Transport::Udp, (33000, 33099)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_demo_over_tcp() {
    call_through(Transport::Tcp, (33100, 33199)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_demo_over_tls() {
    call_through(Transport::Tls, (33200, 33299)).await;
}
