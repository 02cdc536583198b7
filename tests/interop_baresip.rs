//! Interop with a real SIP UA: baresip (Debian package) calls `trunkgate demo` — the embedded
//! demo configuration, with its fixed ports swapped for free ones so tests can run side by
//! side — over UDP, TCP and TLS, plays a 1000 Hz tone, sends RFC 4733 DTMF, and hangs up when
//! its play file ends. The test checks that the gateway saw the digits and that baresip's
//! recording holds its own tone (echoed) and the digits' tones (played back by the agent).
//! With baresip's `mediaenc=srtp-mand` (RTP/SAVP, SDES keys) the same call runs on SRTP —
//! baresip drops what does not decrypt, so the echo proves both directions — and the
//! refusals are 488s: SRTP off, a plain caller where SRTP is required, and SDES keys over
//! plain UDP where `rtp.srtp_allow_plain_sip` is false.

mod support;

use std::time::Duration;

use support::baresip::{Baresip, BaresipOptions, TempDir, Transport};
use support::gw::{self, wait_event};
use support::wav;
use trunkgate::app::GatewayEvent;
use trunkgate::config::SrtpMode;
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

/// How one call is placed: baresip's transport and `mediaenc`, the gateway's SRTP settings.
#[derive(Clone, Copy)]
struct Case {
    transport: Transport,
    ports: (u16, u16),
    mediaenc: Option<&'static str>,
    srtp: SrtpMode,
    allow_plain: bool,
}

impl Case {
    fn plain(transport: Transport, ports: (u16, u16)) -> Case {
        Case {
            transport,
            ports,
            mediaenc: None,
            srtp: SrtpMode::Optional,
            allow_plain: false,
        }
    }
}

/// The demo (with a TLS listener a test CA signed, for TLS) as `case` sets SRTP.
async fn gateway(case: Case, pki: &mut support::pki::Pki) -> trunkgate::app::Gateway {
    let mut config = demo_config(case.ports);
    config.rtp.srtp = case.srtp;
    config.rtp.srtp_allow_plain_sip = case.allow_plain;
    if case.transport == Transport::Tls {
        let leaf = pki.leaf(&["localhost", "127.0.0.1"]);
        config.sip.listen_tls = vec!["127.0.0.1:0".parse().expect("addr")];
        config.sip.tls = Some(trunkgate::config::TlsFiles {
            cert_file: leaf.cert,
            key_file: leaf.key,
        });
    }
    trunkgate::app::Gateway::start(config)
        .await
        .expect("demo starts")
}

fn target(gw: &trunkgate::app::Gateway, transport: Transport) -> String {
    match transport {
        Transport::Udp => format!("sip:echo@{}", gw.udp_addrs[0]),
        Transport::Tcp => format!("sip:echo@{}", gw.tcp_addrs[0]),
        Transport::Tls => format!("sip:echo@{};transport=tls", gw.tls_addrs[0]),
    }
}

async fn call_through(case: Case) {
    let mut pki = support::pki::Pki::new();
    let gw = gateway(case, &mut pki).await;
    let transport = case.transport;
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
    opts.mediaenc = case.mediaenc;
    opts.sip_trace = case.mediaenc.is_some();
    let mut ua = Baresip::start(opts).await.expect("baresip starts");
    ua.dial(&target(&gw, transport)).await.expect("dial");
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
    if case.mediaenc == Some("srtp-mand") {
        // Our answer (in baresip's SIP trace) took the RTP/SAVP stream with a key of ours.
        let log = ua.log();
        let answer = log
            .split("SIP/2.0 200 OK")
            .nth(1)
            .expect("the 200 OK in baresip's trace");
        assert!(
            answer.contains("RTP/SAVP") && answer.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_"),
            "answer: {}",
            &answer[..answer.len().min(1500)]
        );
    }
    let _ = ua.quit().await;
    assert_eq!(gw.rtp_ports_in_use(), 0);
}

/// Dials and expects the call refused with 488 before it was answered.
async fn refused_488(case: Case) {
    let mut pki = support::pki::Pki::new();
    let gw = gateway(case, &mut pki).await;
    let dir = TempDir::new("tg-interop-488").expect("temp dir");
    let play = dir.path().join("play.wav");
    wav::write_wav_8k(&play, &wav::silence(1000, 8000)).expect("write play.wav");
    let mut opts = BaresipOptions::new(case.transport, &play);
    opts.ca_file = Some(pki.ca_file());
    opts.mediaenc = case.mediaenc;
    let mut ua = Baresip::start(opts).await.expect("baresip starts");
    ua.dial(&target(&gw, case.transport)).await.expect("dial");
    let closed = ua
        .wait_event("CALL_CLOSED", Duration::from_secs(10))
        .await
        .expect("call refused");
    assert!(
        closed.param.as_deref().unwrap_or("").contains("488"),
        "{closed:?}"
    );
    assert!(
        ua.events().iter().all(|e| e.kind != "CALL_ESTABLISHED"),
        "never answered"
    );
    let _ = ua.quit().await;
    assert_eq!(gw.rtp_ports_in_use(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_demo_over_udp() {
    call_through(Case::plain(Transport::Udp, (33000, 33099))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_demo_over_tcp() {
    call_through(Case::plain(Transport::Tcp, (33100, 33199))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_demo_over_tls() {
    call_through(Case::plain(Transport::Tls, (33200, 33299))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_on_srtp_over_tls() {
    call_through(Case {
        mediaenc: Some("srtp-mand"),
        ..Case::plain(Transport::Tls, (39420, 39439))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_on_srtp_over_udp_where_allowed() {
    call_through(Case {
        mediaenc: Some("srtp-mand"),
        srtp: SrtpMode::Required,
        allow_plain: true,
        ..Case::plain(Transport::Udp, (39440, 39459))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srtp_refusals_are_488() {
    // An SRTP-mandatory caller where SRTP is off.
    refused_488(Case {
        mediaenc: Some("srtp-mand"),
        srtp: SrtpMode::Off,
        ..Case::plain(Transport::Tls, (39460, 39469))
    })
    .await;
    // A plain caller where SRTP is required.
    refused_488(Case {
        srtp: SrtpMode::Required,
        allow_plain: true,
        ..Case::plain(Transport::Udp, (39470, 39479))
    })
    .await;
    // SDES keys over plain UDP with rtp.srtp_allow_plain_sip false: "optional" runs plain,
    // so an RTP/SAVP-only offer cannot be taken.
    refused_488(Case {
        mediaenc: Some("srtp-mand"),
        ..Case::plain(Transport::Udp, (39480, 39489))
    })
    .await;
}
