//! `cargo bench`: throughput of the hot paths, printed as operations per second.
//! Not a test: figures go into issue notes, never into assertions.

#[path = "hot_paths/call_frames.rs"]
mod call_frames;

use std::hint::black_box;
use std::time::{Duration, Instant};

use trunkgate::core::agent::{self, Dialect, StreamMeta, WsIn, WsOut};
use trunkgate::core::media::g711;
use trunkgate::core::media::resample::{resampler, Resample};
use trunkgate::core::sip::message::{Limits, Message};

const BODY: &str = "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";

fn invite() -> String {
    format!(
        "INVITE sip:+48123456789@gw.example.com:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK776asdhds;rport\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-proxy-1;received=10.0.0.1\r\n\
Max-Forwards: 70\r\n\
From: \"00919990152080|d444-69139d35-vce-daf-3883\" <sip:+919990152080@198.51.100.7>;tag=1928301774\r\n\
To: <sip:+48123456789@gw.example.com>\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:caller@198.51.100.7:5060>\r\n\
X-Workspace-ID: 2b37ba17-7b20-4b3e-b138-1161e351d5c5\r\n\
User-Agent: carrier-sbc/1.0\r\n\
Allow: INVITE, ACK, BYE, CANCEL, OPTIONS\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    )
}

fn bench(name: &str, per_iter: u64, unit: &str, mut f: impl FnMut()) {
    // Warm up, then run for about two seconds.
    for _ in 0..1000 {
        f();
    }
    let start = Instant::now();
    let mut iters = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        for _ in 0..1000 {
            f();
        }
        iters += 1000;
    }
    let secs = start.elapsed().as_secs_f64();
    let rate = (iters * per_iter) as f64 / secs;
    println!(
        "{name:<32} {rate:>14.0} {unit}/s   ({:.1} ns/iter)",
        secs * 1e9 / iters as f64
    );
}

fn main() {
    let limits = Limits::default();
    let text = invite();
    let bytes = text.as_bytes();
    if let Err(e) = Message::parse(bytes, &limits) {
        panic!("the benchmark INVITE must parse: {}", e.reason());
    }
    println!("typical INVITE: {} bytes", bytes.len());
    bench("sip parse typical INVITE", 1, "msgs", || {
        let m = Message::parse(black_box(bytes), &limits);
        black_box(m.is_ok());
    });
    bench("sip parse + read core headers", 1, "msgs", || {
        if let Ok(m) = Message::parse(black_box(bytes), &limits) {
            black_box((
                m.call_id().len(),
                m.cseq().seq,
                m.top_via().branch().is_some(),
                m.from_tag().is_some(),
            ));
        }
    });
    let msg = Message::parse(bytes, &limits).ok();
    bench("sip serialise INVITE", 1, "msgs", || {
        if let Some(m) = &msg {
            black_box(m.to_bytes());
        }
    });
    let pcm: Vec<i16> = (0..160)
        .map(|i| ((i as f32 * 0.3).sin() * 12000.0) as i16)
        .collect();
    let mut enc = [0u8; 160];
    let mut dec = [0i16; 160];
    bench("g711 ulaw encode (20 ms frame)", 160, "samples", || {
        g711::encode_ulaw(black_box(&pcm), &mut enc);
        black_box(&enc);
    });
    bench("g711 ulaw decode (20 ms frame)", 160, "samples", || {
        g711::decode_ulaw(black_box(&enc), &mut dec);
        black_box(&dec);
    });
    bench("g711 alaw encode (20 ms frame)", 160, "samples", || {
        g711::encode_alaw(black_box(&pcm), &mut enc);
        black_box(&enc);
    });
    bench("g711 alaw decode (20 ms frame)", 160, "samples", || {
        g711::decode_alaw(black_box(&enc), &mut dec);
        black_box(&dec);
    });
    let mut up = resampler(8000, 16000).expect("8k→16k");
    let mut down = resampler(16000, 8000).expect("16k→8k");
    let mut out16 = Vec::with_capacity(320);
    let mut out8 = Vec::with_capacity(160);
    bench("resample 8k→16k (20 ms frame)", 160, "samples", || {
        out16.clear();
        up.process(black_box(&pcm), &mut out16);
        black_box(&out16);
    });
    let pcm16: Vec<i16> = (0..320)
        .map(|i| ((i as f32 * 0.15).sin() * 12000.0) as i16)
        .collect();
    bench("resample 16k→8k (20 ms frame)", 320, "samples", || {
        out8.clear();
        down.process(black_box(&pcm16), &mut out8);
        black_box(&out8);
    });
    for dialect in [Dialect::Twilio, Dialect::Plivo, Dialect::Raw] {
        let meta = StreamMeta {
            call_id: "CA1".into(),
            stream_id: "MZ1".into(),
            sample_rate: 8000,
            direction: "inbound".into(),
            ..StreamMeta::default()
        };
        let mut codec = agent::codec(dialect, meta);
        let _ = codec.start(0);
        let name = dialect.as_str();
        bench(&format!("{name} encode caller frame"), 1, "frames", || {
            black_box(codec.audio(black_box(&pcm), 20));
        });
        let frame = codec.audio(&pcm, 40);
        let agent_msg = match (&frame, dialect) {
            (WsOut::Text(t), Dialect::Twilio) => {
                WsOut::Text(t.replace("\"track\":\"inbound\",", ""))
            }
            (WsOut::Text(t), _) => {
                let payload = t
                    .split("\"payload\":\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or("");
                WsOut::Text(format!("{{\"event\":\"playAudio\",\"media\":{{\"contentType\":\"audio/x-l16\",\"sampleRate\":8000,\"payload\":\"{payload}\"}}}}"))
            }
            (WsOut::Binary(b), _) => WsOut::Binary(b.clone()),
        };
        let check = match &agent_msg {
            WsOut::Text(t) => codec.decode(WsIn::Text(t)),
            WsOut::Binary(b) => codec.decode(WsIn::Binary(b)),
        };
        assert!(
            matches!(&check, Ok(ev) if ev.len() == 1),
            "{name}: the agent frame decodes to audio: {check:?}"
        );
        bench(&format!("{name} decode agent frame"), 1, "frames", || {
            let msg = match &agent_msg {
                WsOut::Text(t) => WsIn::Text(t),
                WsOut::Binary(b) => WsIn::Binary(b),
            };
            black_box(codec.decode(black_box(msg)).map(|v| v.len()).unwrap_or(0));
        });
    }
    call_frames::run(BODY, &mut |name, n, unit, f: &mut dyn FnMut()| {
        bench(name, n, unit, f)
    });
}
