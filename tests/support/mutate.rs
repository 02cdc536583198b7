//! Seeded, mutated SIP INVITEs as an attacker (or a broken peer) sends them: about one in six
//! left valid (a call that is answered and then never ACKed), the rest bit-flipped,
//! truncated, with headers duplicated or deleted, oversized values, a wrong Content-Length,
//! a garbled start line or SDP. The same seed gives the same messages.

/// The `n`-th message of `rng`'s stream, from `from` (the address in Via/Contact).
pub fn invite(rng: &mut fastrand::Rng, n: usize, from: std::net::SocketAddr, tcp: bool) -> Vec<u8> {
    let transport = if tcp { "TCP" } else { "UDP" };
    let sdp = format!(
        "v=0\r\no=atk {n} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
        ip = from.ip(),
        port = 40000 + (n % 1000) * 2,
    );
    let mut lines: Vec<String> = vec![
        format!("INVITE sip:+4812345{:04}@127.0.0.1 SIP/2.0", n % 10_000),
        format!(
            "Via: SIP/2.0/{transport} {from};branch=z9hG4bK-atk-{n}-{:x}",
            rng.u32(..)
        ),
        "Max-Forwards: 70".into(),
        format!("From: \"+48600{n}\" <sip:+48600{n}@{}>;tag=a{n}", from.ip()),
        format!("To: <sip:+4812345{:04}@127.0.0.1>", n % 10_000),
        format!("Call-ID: atk-{n}-{:x}@{}", rng.u64(..), from.ip()),
        "CSeq: 1 INVITE".into(),
        format!("Contact: <sip:atk@{from}>"),
        "Content-Type: application/sdp".into(),
    ];
    let mut body = sdp.into_bytes();
    let valid = rng.usize(..6) == 0;
    let mut length: Option<usize> = None;
    if !valid {
        for _ in 0..rng.usize(1..4) {
            match rng.usize(..9) {
                0 => {
                    // Duplicate a header many times.
                    let i = rng.usize(1..lines.len());
                    let h = lines[i].clone();
                    for _ in 0..rng.usize(2..60) {
                        lines.insert(i, h.clone());
                    }
                }
                1 => {
                    let i = rng.usize(1..lines.len());
                    lines.remove(i);
                }
                2 => {
                    // An oversized value.
                    let big = "x".repeat(rng.usize(1000..9000));
                    lines.push(format!("X-Junk: {big}"));
                }
                3 => length = Some(body.len() + rng.usize(1..3000)),
                4 => length = Some(rng.usize(..body.len().max(1))),
                5 => lines[0] = garble(rng, &lines[0]),
                6 => {
                    let i = rng.usize(..body.len().max(1));
                    body.truncate(i);
                    body.extend((0..rng.usize(..200)).map(|_| rng.u8(..)));
                }
                7 => {
                    let i = rng.usize(1..lines.len());
                    lines[i] = garble(rng, &lines[i]);
                }
                _ => {
                    for _ in 0..rng.usize(1..30) {
                        lines.insert(
                            1,
                            format!(
                                "Via: SIP/2.0/UDP 10.{}.0.1;branch=z9hG4bK{}",
                                rng.u8(..),
                                rng.u32(..)
                            ),
                        );
                    }
                }
            }
        }
    }
    let mut out = Vec::with_capacity(1024 + body.len());
    for l in &lines {
        out.extend_from_slice(l.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let cl = length.unwrap_or(body.len());
    out.extend_from_slice(format!("Content-Length: {cl}\r\n\r\n").as_bytes());
    out.extend_from_slice(&body);
    if !valid && rng.usize(..4) == 0 {
        // Flip a few bytes anywhere, or cut the message short.
        if rng.bool() {
            for _ in 0..rng.usize(1..8) {
                let i = rng.usize(..out.len());
                out[i] ^= 1 << rng.u8(..8);
            }
        } else {
            out.truncate(rng.usize(1..out.len()));
        }
    }
    out
}

fn garble(rng: &mut fastrand::Rng, line: &str) -> String {
    let mut b = line.as_bytes().to_vec();
    for _ in 0..rng.usize(1..6) {
        if b.is_empty() {
            break;
        }
        let i = rng.usize(..b.len());
        b[i] = rng.u8(..);
    }
    String::from_utf8_lossy(&b).into_owned()
}
