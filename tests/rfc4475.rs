//! RFC 4475 torture messages replayed over real UDP and TCP sockets against a running
//! gateway; each outcome is compared with `../shared/conformance/rfc4475/expectations.json`.
//!
//! Addresses `192.0.2.x` are rewritten to `127.0.0.x` (same length) and `;rport` is added to
//! the top Via so UDP answers come back to the test socket; nothing leaves loopback. After
//! each message an OPTIONS probe follows on the same socket: the gateway handles a flow in
//! order, so once the probe is answered, anything the torture message caused has been seen.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use support::ua::{Msg, Ua};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/rfc4475")
}

/// Inserts `;rport` into the first value of the first Via header (after its sent-by).
fn add_rport(msg: &[u8]) -> Vec<u8> {
    let text = msg.to_vec();
    let mut pos = 0;
    while pos < text.len() {
        let line_end = find(&text[pos..], b"\n").map_or(text.len(), |i| pos + i + 1);
        let line = &text[pos..line_end];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = String::from_utf8_lossy(&line[..colon])
                .trim()
                .to_ascii_lowercase();
            if name == "via" || name == "v" {
                // The header value runs to the first CRLF not followed by white space.
                let start = pos + colon + 1;
                let mut end = start;
                while end < text.len() {
                    if text[end] == b'\n' && !matches!(text.get(end + 1), Some(b' ') | Some(b'\t'))
                    {
                        break;
                    }
                    end += 1;
                }
                let value_end = if end > 0 && text[end - 1] == b'\r' {
                    end - 1
                } else {
                    end
                };
                let insert_at = text[start..value_end]
                    .iter()
                    .position(|&b| b == b';' || b == b',')
                    .map_or(value_end, |i| start + i);
                let mut out = text[..insert_at].to_vec();
                out.extend_from_slice(b";rport");
                out.extend_from_slice(&text[insert_at..]);
                return out;
            }
        }
        pos = line_end;
    }
    text
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn prepare(name: &str, raw: &[u8]) -> Vec<u8> {
    let mut bytes = raw.to_vec();
    for i in 0..bytes.len().saturating_sub(8) {
        if &bytes[i..i + 8] == b"192.0.2." {
            bytes[i..i + 8].copy_from_slice(b"127.0.0.");
        }
    }
    if name == "baddn.dat" {
        bytes.extend_from_slice(b"\r\n");
    }
    add_rport(&bytes)
}

#[derive(Debug)]
struct Outcome {
    statuses: Vec<u16>,
    closed: bool,
}

fn accepts(pattern: &str, o: &Outcome) -> bool {
    let final_status = o.statuses.iter().copied().find(|&s| s >= 200);
    match pattern {
        "drop" => o.statuses.is_empty() && !o.closed,
        "close" => o.closed,
        "any" => final_status.is_some(),
        "provisional" => final_status.is_none() && !o.closed,
        "4xx" => final_status.is_some_and(|s| (400..500).contains(&s)),
        p if p.starts_with("not:") => {
            let banned: Vec<u16> = p[4..].split(',').filter_map(|s| s.parse().ok()).collect();
            final_status.is_some_and(|s| !banned.contains(&s))
        }
        p => p.parse::<u16>().ok() == final_status,
    }
}

async fn replay(ua: &mut Ua, bytes: &[u8], n: usize) -> Outcome {
    ua.send_bytes(bytes).await;
    let probe_id = format!("probe-{n}@test");
    let probe = format!(
        "OPTIONS sip:probe@{s} SIP/2.0\r\nVia: SIP/2.0/{t} {l};branch=z9hG4bKprobe{n};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@{l}>;tag=p{n}\r\nTo: <sip:probe@{s}>\r\n\
         Call-ID: {probe_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        s = ua.server,
        l = ua.local,
        t = if ua.is_tcp() { "TCP" } else { "UDP" },
    );
    ua.send(&probe).await;
    let mut statuses = Vec::new();
    loop {
        match ua.recv(Duration::from_secs(2)).await {
            Some(m) if is_probe(&m, &probe_id) => {
                return Outcome {
                    statuses,
                    closed: false,
                }
            }
            Some(m) => {
                if let Some(s) = m.status() {
                    statuses.push(s);
                }
            }
            None => {
                let closed = ua.is_tcp() && ua.closed_within(Duration::from_millis(50)).await;
                return Outcome { statuses, closed };
            }
        }
    }
}

fn is_probe(m: &Msg, id: &str) -> bool {
    m.header("Call-ID").or_else(|| m.header("i")) == Some(id)
}

async fn run(tcp: bool) {
    let gw = support::gw::start(
        if tcp { (32000, 32199) } else { (32200, 32399) },
        "builtin:echo",
        "",
    )
    .await;
    let spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(corpus_dir().join("expectations.json"))
            .expect("expectations.json"),
    )
    .expect("json");
    let files = spec["files"].as_object().expect("files");
    assert_eq!(files.len(), 50, "all 50 files listed");
    let mut failures = Vec::new();
    for (n, (name, exp)) in files.iter().enumerate() {
        let raw = std::fs::read(corpus_dir().join(name)).expect("read .dat");
        let bytes = prepare(name, &raw);
        let key = if tcp && exp.get("accept_tcp").is_some() {
            "accept_tcp"
        } else {
            "accept"
        };
        let patterns: Vec<&str> = exp[key]
            .as_array()
            .expect("accept")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let mut ua = if tcp {
            Ua::tcp(gw.tcp_addrs[0]).await
        } else {
            Ua::udp(gw.udp_addrs[0]).await
        };
        let outcome = replay(&mut ua, &bytes, n).await;
        if !patterns.iter().any(|p| accepts(p, &outcome)) {
            failures.push(format!(
                "{name}: expected one of {patterns:?}, got {outcome:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 50 failed over {}:\n{}",
        failures.len(),
        if tcp { "TCP" } else { "UDP" },
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc4475_over_udp() {
    run(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc4475_over_tcp() {
    run(true).await;
}
