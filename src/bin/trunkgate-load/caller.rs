//! One scripted caller per call: INVITE (retransmitted on UDP) → 200 → ACK → real-time PCMU
//! with a 100 ms 1 kHz burst each second (streamed by [`media::Engine`], which measures the
//! round trips, loss and late packets) → BYE. Measures setup and BYE times.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::time::{Instant, MissedTickBehavior};
use trunkgate::core::media::srtp::SrtpSession;
use trunkgate::core::sip::framing::{Frame, Framer};
use trunkgate::core::sip::message::{Limits, Message};
use trunkgate::core::sip::sdp::crypto::{Crypto, Suite};

use crate::{media, procfs, Args};

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
    /// The direction split of the echoes and the shaping of what we sent.
    pub echo: crate::marks::EchoStats,
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

pub async fn run_all(args: &Args, pid: Option<u32>) -> Result<Results, String> {
    let engine = media::Engine::start_shaped(args.bind, crate::shape::Shape::from_args(args))
        .map_err(|e| format!("rtp engine: {e}"))?;
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
        let engine = engine.clone();
        handles.push(tokio::spawn(async move {
            active.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let r = one_call(&args, &engine, n).await;
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
    engine.shutdown();
    Ok(Results {
        calls,
        wall,
        peak,
        peak_active,
    })
}

/// Samples the gateway while calls run; keeps the sample with the most active calls (and,
/// among those, the highest RSS).
pub async fn sample_peak(
    pid: Option<u32>,
    active: Arc<std::sync::atomic::AtomicUsize>,
    done: Arc<std::sync::atomic::AtomicBool>,
) -> Option<(Option<procfs::Sample>, usize)> {
    let pid = pid?;
    let mut best: (Option<procfs::Sample>, usize) = (None, 0);
    // A full sample walks the gateway's fds and the kernel's UDP and TCP tables (thousands of
    // sockets at peak): every 250 ms that cost this tool a tenth of a core, hence 2 s.
    let mut tick = tokio::time::interval(Duration::from_secs(2));
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

/// [`sdp_offer`] as RTP/SAVP with our SDES key.
fn srtp_offer(rtp: SocketAddr, key: &Crypto) -> String {
    sdp_offer(rtp).replace("RTP/AVP", "RTP/SAVP") + &format!("a=crypto:{}\r\n", key.value())
}

/// A random AES_CM_128_HMAC_SHA1_80 key (tag 1) for one call.
fn random_key() -> Crypto {
    use ring::rand::SecureRandom;
    let mut key_salt = vec![0u8; 30];
    let _ = ring::rand::SystemRandom::new().fill(&mut key_salt);
    Crypto {
        tag: 1,
        suite: Suite::AesCm128HmacSha1_80,
        key_salt,
    }
}

/// The gateway's key in its answer, for our tag and suite.
fn answered_key(resp: &Message, ours: &Crypto) -> Option<Crypto> {
    let text = std::str::from_utf8(resp.body()).ok()?;
    let sd = trunkgate::core::sip::sdp::parse(text).ok()?;
    let m = sd
        .media
        .iter()
        .find(|m| m.media == "audio" && m.port != 0)?;
    m.crypto
        .iter()
        .filter_map(|c| Crypto::parse(c).ok())
        .find(|c| c.tag == ours.tag && c.suite == ours.suite)
}

pub fn sdp_offer(rtp: SocketAddr) -> String {
    format!(
        "v=0\r\no=load 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
        ip = rtp.ip(),
        port = rtp.port()
    )
}

async fn one_call(args: &Args, engine: &media::Engine, n: usize) -> CallResult {
    let mut result = CallResult::default();
    match call_inner(args, engine, n, &mut result).await {
        Ok(()) => {}
        Err(e) => result.error = Some(e),
    }
    result
}

async fn call_inner(
    args: &Args,
    engine: &media::Engine,
    n: usize,
    result: &mut CallResult,
) -> Result<(), String> {
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
    let key = args.srtp.then(random_key);
    let offer = match &key {
        Some(k) => srtp_offer(engine.local(), k),
        None => sdp_offer(engine.local()),
    };
    let invite = leg.request("INVITE", &format!("i{n}"), 1, None, &offer);
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
    let srtp = match &key {
        None => None,
        Some(ours) => {
            let theirs = answered_key(&resp, ours).ok_or("200 OK without our SRTP suite")?;
            Some(SrtpSession::new(ours, &theirs).map_err(|e| e.to_string())?)
        }
    };
    let answered = Instant::now();
    let hung_up = stream(args, engine, n, remote, srtp, &mut leg, result).await;
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

pub fn answer_media(resp: &Message) -> Option<SocketAddr> {
    let text = std::str::from_utf8(resp.body()).ok()?;
    let sd = trunkgate::core::sip::sdp::parse(text).ok()?;
    let m = sd
        .media
        .iter()
        .find(|m| m.media == "audio" && m.port != 0)?;
    let ip = m.connection.as_ref().or(sd.connection.as_ref())?.ip()?;
    Some(SocketAddr::new(ip, m.port))
}

/// Streams audio for the call's duration (on the shared engine) while answering the gateway's
/// requests; returns true if the gateway hung up first.
async fn stream(
    args: &Args,
    engine: &media::Engine,
    n: usize,
    remote: SocketAddr,
    srtp: Option<SrtpSession>,
    leg: &mut Leg,
    r: &mut CallResult,
) -> bool {
    let frames = (args.duration * 50.0).round() as u32;
    // 200 ms beyond the last frame for the last echoes to come back.
    let end = Instant::now() + Duration::from_secs_f64(args.duration) + Duration::from_millis(200);
    let stream = Some(n as u64);
    match srtp {
        Some(srtp) => engine.add_srtp(stream, remote, frames, args.dtmf, srtp),
        None => engine.add(stream, remote, frames, args.dtmf),
    }
    let mut hung_up = false;
    let mut sig_closed = false;
    let finish = tokio::time::sleep_until(end);
    tokio::pin!(finish);
    loop {
        tokio::select! {
            () = &mut finish => break,
            m = leg.recv_any(), if !sig_closed => {
                match m {
                    Some(m) if m.is_request() && leg.answer_request(&m).await => {
                        hung_up = true;
                        break;
                    }
                    Some(_) => {}
                    None => sig_closed = true,
                }
            }
        }
    }
    let stats = engine.remove(remote);
    r.rtts = stats.rtts;
    r.sent = stats.sent;
    r.received = stats.received;
    r.lost = stats.lost;
    r.late = stats.late;
    r.echo = stats.echo;
    hung_up
}
