//! One scripted caller per call: INVITE (retransmitted on UDP) → 200 → ACK → real-time PCMU
//! with a 100 ms 1 kHz burst each second → BYE. Measures setup time, the round trip of each
//! burst (sent onset → echoed onset), RTP loss and late packets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::time::{Instant, MissedTickBehavior};
use trunkgate::core::media::dtmf::DtmfSender;
use trunkgate::core::media::tone::ToneGen;
use trunkgate::core::media::{g711, rtp};
use trunkgate::core::sip::framing::{Frame, Framer};
use trunkgate::core::sip::message::{Limits, Message};

use crate::{procfs, Args};

/// What happened to one call.
#[derive(Debug, Default, Clone)]
pub struct CallResult {
    pub status: Option<u16>,
    pub setup: Option<Duration>,
    pub rtts: Vec<Duration>,
    pub sent: u32,
    pub received: u32,
    pub lost: u32,
    pub late: u32,
    pub error: Option<String>,
    pub seconds: f64,
    /// INVITE sent → BYE answered (or failure).
    pub total: Option<Duration>,
    /// BYE sent → 200.
    pub bye: Option<Duration>,
}

impl CallResult {
    pub fn ok(&self) -> bool {
        self.status == Some(200) && self.error.is_none()
    }
}

pub struct Results {
    pub calls: Vec<CallResult>,
    pub wall: Duration,
    pub peak: Option<procfs::Sample>,
    pub peak_active: usize,
}

impl Results {
    pub fn completed(&self) -> usize {
        self.calls.iter().filter(|c| c.ok()).count()
    }
}

const BURST_EVERY: u32 = 50; // frames (1 s)
const BURST_LEN: u32 = 5; // frames (100 ms)
const ONSET_ENERGY: f64 = 2000.0; // mean |sample| of an echoed burst frame is ~6000

pub async fn run_all(args: &Args, pid: Option<u32>) -> Results {
    let slots = Arc::new(Semaphore::new(args.concurrency));
    let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(args.calls);
    let start = Instant::now();
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    pace.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = tokio::spawn(sample_peak(pid, active.clone(), done.clone()));
    for n in 0..args.calls {
        pace.tick().await;
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let args = args.clone();
        let active = active.clone();
        handles.push(tokio::spawn(async move {
            active.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let r = one_call(&args, n).await;
            active.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            drop(permit);
            r
        }));
    }
    let mut calls = Vec::with_capacity(handles.len());
    for h in handles {
        calls.push(h.await.unwrap_or_else(|e| CallResult {
            error: Some(format!("task: {e}")),
            ..CallResult::default()
        }));
    }
    let wall = start.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (peak, peak_active) = sampler.await.ok().flatten().unwrap_or((None, 0));
    Results {
        calls,
        wall,
        peak,
        peak_active,
    }
}

/// Samples the gateway while calls run; keeps the sample with the most active calls (and,
/// among those, the highest RSS).
async fn sample_peak(
    pid: Option<u32>,
    active: Arc<std::sync::atomic::AtomicUsize>,
    done: Arc<std::sync::atomic::AtomicBool>,
) -> Option<(Option<procfs::Sample>, usize)> {
    let pid = pid?;
    let mut best: (Option<procfs::Sample>, usize) = (None, 0);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        if done.load(std::sync::atomic::Ordering::Relaxed) {
            return Some(best);
        }
        let n = active.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(s) = procfs::sample(pid) {
            let better =
                n > best.1 || (n == best.1 && best.0.as_ref().is_none_or(|b| s.rss_kb > b.rss_kb));
            if better {
                best = (Some(s), n);
            }
        }
    }
}

enum Sig {
    Udp(UdpSocket),
    Tcp(TcpStream, Framer),
}

struct Leg {
    sig: Sig,
    buf: Vec<u8>,
    target: SocketAddr,
    local: SocketAddr,
    transport: &'static str,
    call_id: String,
    from_tag: String,
}

impl Leg {
    async fn send(&mut self, msg: &str) -> std::io::Result<()> {
        match &mut self.sig {
            Sig::Udp(s) => s.send_to(msg.as_bytes(), self.target).await.map(|_| ()),
            Sig::Tcp(s, _) => s.write_all(msg.as_bytes()).await,
        }
    }

    /// The next SIP message, or None at the deadline.
    async fn recv(&mut self, until: Instant) -> Option<Message> {
        tokio::time::timeout_at(until, self.recv_any()).await.ok()?
    }

    /// The next SIP message (None when the connection closed).
    async fn recv_any(&mut self) -> Option<Message> {
        let limits = Limits::default();
        match &mut self.sig {
            Sig::Udp(s) => loop {
                let (n, _) = s.recv_from(&mut self.buf).await.ok()?;
                if let Ok(m) = Message::parse(&self.buf[..n], &limits) {
                    return Some(m);
                }
            },
            Sig::Tcp(s, framer) => loop {
                while let Ok(Some(f)) = framer.next_frame() {
                    if let Frame::Message(bytes) = f {
                        if let Ok(m) = Message::parse_owned(bytes, &limits) {
                            return Some(m);
                        }
                    }
                }
                let n = s.read(&mut self.buf).await.ok()?;
                if n == 0 {
                    return None;
                }
                framer.push(&self.buf[..n]);
            },
        }
    }

    fn request(
        &self,
        method: &str,
        branch: &str,
        cseq: u32,
        to_tag: Option<&str>,
        body: &str,
    ) -> String {
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let ct = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!(
            "{method} sip:+48123456789@{target} SIP/2.0\r\n\
             Via: SIP/2.0/{t} {local};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:+919990152080@{local}>;tag={ft}\r\n\
             To: <sip:+48123456789@{target}>{to_tag}\r\n\
             Call-ID: {cid}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:load@{local}>\r\n\
             User-Agent: trunkgate-load\r\n\
             {ct}Content-Length: {len}\r\n\r\n{body}",
            target = self.target,
            local = self.local,
            t = self.transport,
            ft = self.from_tag,
            cid = self.call_id,
            len = body.len(),
        )
    }

    /// Sends a request and waits for its final response, retransmitting on UDP (Timer E/A).
    async fn transact(
        &mut self,
        req: &str,
        method: &str,
        wait: Duration,
    ) -> Result<Message, String> {
        let until = Instant::now() + wait;
        let mut interval = Duration::from_millis(500);
        self.send(req).await.map_err(|e| e.to_string())?;
        let mut resend_at = Instant::now() + interval;
        loop {
            let next = if matches!(self.sig, Sig::Udp(_)) {
                resend_at.min(until)
            } else {
                until
            };
            match self.recv(next).await {
                Some(m) => {
                    if m.is_request() {
                        self.answer_request(&m).await;
                        continue;
                    }
                    let ours = m.cseq().method.as_str() == method && m.call_id() == self.call_id;
                    match m.status() {
                        Some(s) if ours && s >= 200 => return Ok(m),
                        _ => continue,
                    }
                }
                None if Instant::now() >= until => {
                    return Err(format!("no final answer to {method}"))
                }
                None => {
                    self.send(req).await.map_err(|e| e.to_string())?;
                    interval = (interval * 2).min(Duration::from_secs(4));
                    resend_at = Instant::now() + interval;
                }
            }
        }
    }

    /// Answers requests from the gateway (a BYE after an RTP timeout, OPTIONS) with 200.
    async fn answer_request(&mut self, m: &Message) -> bool {
        let mut out = String::from("SIP/2.0 200 OK\r\n");
        for (name, raw, value) in m.headers() {
            let keep = matches!(
                name,
                trunkgate::core::sip::message::HeaderName::Via
                    | trunkgate::core::sip::message::HeaderName::From
                    | trunkgate::core::sip::message::HeaderName::To
                    | trunkgate::core::sip::message::HeaderName::CallId
                    | trunkgate::core::sip::message::HeaderName::CSeq
            );
            if keep {
                out.push_str(&format!("{raw}: {value}\r\n"));
            }
        }
        out.push_str("Content-Length: 0\r\n\r\n");
        let _ = self.send(&out).await;
        m.method().map(|x| x.as_str()) == Some("BYE")
    }
}

fn sdp_offer(rtp: SocketAddr) -> String {
    format!(
        "v=0\r\no=load 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
        ip = rtp.ip(),
        port = rtp.port()
    )
}

async fn one_call(args: &Args, n: usize) -> CallResult {
    let mut result = CallResult::default();
    match call_inner(args, n, &mut result).await {
        Ok(()) => {}
        Err(e) => result.error = Some(e),
    }
    result
}

async fn call_inner(args: &Args, n: usize, result: &mut CallResult) -> Result<(), String> {
    let bind = SocketAddr::new(args.bind, 0);
    let (sig, local, transport) = if args.transport.eq_ignore_ascii_case("tcp") {
        let s = TcpStream::connect(args.target)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let local = s.local_addr().map_err(|e| e.to_string())?;
        let _ = s.set_nodelay(true);
        (Sig::Tcp(s, Framer::new(65536)), local, "TCP")
    } else {
        let s = UdpSocket::bind(bind)
            .await
            .map_err(|e| format!("bind: {e}"))?;
        let local = s.local_addr().map_err(|e| e.to_string())?;
        (Sig::Udp(s), local, "UDP")
    };
    let mut leg = Leg {
        sig,
        buf: vec![0u8; 65536],
        target: args.target,
        local,
        transport,
        call_id: format!("load-{n}-{:x}@trunkgate-load", fastrand::u64(..)),
        from_tag: format!("{:x}", fastrand::u32(..)),
    };
    let rtp_sock = UdpSocket::bind(bind)
        .await
        .map_err(|e| format!("rtp bind: {e}"))?;
    let rtp_local = rtp_sock.local_addr().map_err(|e| e.to_string())?;
    let invite = leg.request("INVITE", &format!("i{n}"), 1, None, &sdp_offer(rtp_local));
    let t0 = Instant::now();
    let resp = leg
        .transact(&invite, "INVITE", Duration::from_secs(32))
        .await?;
    result.status = resp.status();
    let to_tag = resp.to_tag().map(str::to_string);
    let ack = leg.request("ACK", &format!("a{n}"), 1, to_tag.as_deref(), "");
    if resp.status() != Some(200) {
        let _ = leg.send(&ack).await;
        return Err(format!("INVITE answered {}", resp.status().unwrap_or(0)));
    }
    result.setup = Some(t0.elapsed());
    leg.send(&ack).await.map_err(|e| e.to_string())?;
    let remote = answer_media(&resp).ok_or("200 OK without usable SDP")?;
    let answered = Instant::now();
    let hung_up = stream(args, &rtp_sock, remote, &mut leg, result).await;
    result.seconds = answered.elapsed().as_secs_f64();
    if !hung_up {
        let bye = leg.request("BYE", &format!("b{n}"), 2, to_tag.as_deref(), "");
        let t_bye = Instant::now();
        let r = leg.transact(&bye, "BYE", Duration::from_secs(32)).await?;
        result.bye = Some(t_bye.elapsed());
        result.total = Some(t0.elapsed());
        if r.status() != Some(200) {
            return Err(format!("BYE answered {}", r.status().unwrap_or(0)));
        }
    } else {
        return Err("the gateway hung up".into());
    }
    Ok(())
}

fn answer_media(resp: &Message) -> Option<SocketAddr> {
    let text = std::str::from_utf8(resp.body()).ok()?;
    let sd = trunkgate::core::sip::sdp::parse(text).ok()?;
    let m = sd
        .media
        .iter()
        .find(|m| m.media == "audio" && m.port != 0)?;
    let ip = m.connection.as_ref().or(sd.connection.as_ref())?.ip()?;
    Some(SocketAddr::new(ip, m.port))
}

/// Streams audio for the call's duration; returns true if the gateway hung up first.
async fn stream(
    args: &Args,
    sock: &UdpSocket,
    remote: SocketAddr,
    leg: &mut Leg,
    r: &mut CallResult,
) -> bool {
    let frames = (args.duration * 50.0).round() as u32;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut gen = ToneGen::single(1000.0, 8000.0, 8000);
    let (mut seq, mut ts, ssrc) = (fastrand::u16(..), fastrand::u32(..), fastrand::u32(..));
    let mut pcm = [0i16; 160];
    let mut payload = [0u8; 160];
    let mut out = Vec::with_capacity(172);
    let mut buf = vec![0u8; 2048];
    let mut dec = [0i16; 160];
    let mut burst_sent: Option<Instant> = None;
    let mut in_echo = false;
    let mut last_arrival: Option<Instant> = None;
    let (mut first_seq, mut max_seq): (Option<u16>, u16) = (None, 0);
    let dtmf_at = frames / 2;
    let mut dtmf: Vec<(u32, trunkgate::core::media::dtmf::DtmfPacket)> = Vec::new();
    let mut sent = 0u32;
    let end = Instant::now() + Duration::from_secs_f64(args.duration) + Duration::from_millis(200);
    let finish = tokio::time::sleep_until(end);
    tokio::pin!(finish);
    let mut sig_closed = false;
    loop {
        tokio::select! {
            _ = tick.tick(), if sent < frames => {
                let phase = sent % BURST_EVERY;
                if args.dtmf && sent == dtmf_at {
                    if let Ok(p) = DtmfSender::new(8000).packets('5', 100, 20, 10) {
                        dtmf = p.into_iter().map(|p| (ts, p)).rev().collect();
                    }
                }
                out.clear();
                if let Some((event_ts, p)) = dtmf.pop() {
                    let h = rtp::RtpHeader { marker: p.marker, payload_type: 101, sequence: seq, timestamp: event_ts, ssrc };
                    rtp::write(&h, &p.payload, &mut out);
                } else {
                    if phase < BURST_LEN {
                        gen.fill(&mut pcm);
                        if phase == 0 { burst_sent = Some(Instant::now()); in_echo = false; }
                    } else {
                        pcm = [0; 160];
                    }
                    g711::encode_ulaw(&pcm, &mut payload);
                    let h = rtp::RtpHeader { marker: sent == 0, payload_type: 0, sequence: seq, timestamp: ts, ssrc };
                    rtp::write(&h, &payload, &mut out);
                }
                if sock.send_to(&out, remote).await.is_ok() { r.sent += 1; }
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(160);
                sent += 1;
            }
            got = sock.recv_from(&mut buf) => {
                let Ok((len, _)) = got else { continue };
                let Ok(pkt) = rtp::parse(&buf[..len]) else { continue };
                let now = Instant::now();
                r.received += 1;
                if let Some(prev) = last_arrival {
                    if now.duration_since(prev) > Duration::from_millis(60) { r.late += 1; }
                }
                last_arrival = Some(now);
                let s = pkt.header.sequence;
                match first_seq {
                    None => { first_seq = Some(s); max_seq = s; }
                    Some(_) => if s.wrapping_sub(max_seq) < 0x8000 { max_seq = s; },
                }
                if pkt.header.payload_type != 0 { continue; }
                let k = pkt.payload.len().min(160);
                g711::decode_ulaw(&pkt.payload[..k], &mut dec[..k]);
                let energy = dec[..k].iter().map(|&x| f64::from(x).abs()).sum::<f64>() / k.max(1) as f64;
                if energy > ONSET_ENERGY && !in_echo {
                    in_echo = true;
                    if let Some(t) = burst_sent {
                        let rtt = now.duration_since(t);
                        if rtt < Duration::from_millis(900) { r.rtts.push(rtt); }
                    }
                }
            }
            // One timer for the whole call, not one per loop turn.
            () = &mut finish => break,
            m = leg.recv_any(), if !sig_closed => {
                match m {
                    Some(m) if m.is_request() && leg.answer_request(&m).await => return true,
                    Some(_) => {}
                    None => sig_closed = true,
                }
            }
        }
        if sent >= frames && Instant::now() >= end {
            break;
        }
    }
    if let Some(first) = first_seq {
        let expected = u32::from(max_seq.wrapping_sub(first)) + 1;
        r.lost = expected.saturating_sub(r.received);
    }
    false
}
