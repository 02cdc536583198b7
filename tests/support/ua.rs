//! A scripted SIP user agent for daemon tests: sends hand-written SIP text over real UDP,
//! TCP or TLS sockets on loopback and reads what the gateway answers. It parses answers with plain
//! string handling (not the gateway's parser), so the two check each other.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// One SIP message as the test sees it.
#[derive(Debug, Clone)]
pub struct Msg {
    pub start: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Msg {
    pub fn parse(text: &str) -> Option<Msg> {
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.split("\r\n");
        let start = lines.next()?.to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        Some(Msg {
            start,
            headers,
            body: body.to_string(),
        })
    }

    pub fn status(&self) -> Option<u16> {
        let rest = self.start.strip_prefix("SIP/2.0 ")?;
        rest.get(..3)?.parse().ok()
    }

    pub fn method(&self) -> Option<&str> {
        if self.start.starts_with("SIP/2.0") {
            None
        } else {
            self.start.split(' ').next()
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn to_tag(&self) -> Option<String> {
        let to = self.header("To").or_else(|| self.header("t"))?;
        Some(to.split(";tag=").nth(1)?.split(';').next()?.to_string())
    }

    /// The `m=audio` port and `c=` address of an SDP body.
    pub fn sdp_media(&self) -> Option<SocketAddr> {
        let ip = self
            .body
            .lines()
            .find_map(|l| l.strip_prefix("c=IN IP4 "))?
            .trim();
        let port = self
            .body
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))?
            .split(' ')
            .next()?;
        format!("{ip}:{port}").parse().ok()
    }
}

enum Sock {
    Udp(UdpSocket),
    Tcp(TcpStream, Vec<u8>),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>, Vec<u8>),
}

pub struct Ua {
    sock: Sock,
    pub local: SocketAddr,
    pub server: SocketAddr,
    pub call_id: String,
    pub from_tag: String,
    transport: &'static str,
}

impl Ua {
    pub async fn udp(server: SocketAddr) -> Ua {
        Self::udp_from("127.0.0.1:0".parse().unwrap(), server).await
    }

    pub async fn udp_from(bind: SocketAddr, server: SocketAddr) -> Ua {
        let sock = UdpSocket::bind(bind).await.expect("bind ua");
        let local = sock.local_addr().unwrap();
        Ua::new(Sock::Udp(sock), local, server, "UDP")
    }

    pub async fn tcp(server: SocketAddr) -> Ua {
        let s = TcpStream::connect(server).await.expect("connect");
        let local = s.local_addr().unwrap();
        Ua::new(Sock::Tcp(s, Vec::new()), local, server, "TCP")
    }

    /// Connects over TLS from `bind` (port 0: any), checking the server's certificate for
    /// `name` against `config`'s roots; the handshake's error if it fails.
    pub async fn tls_from(
        bind: SocketAddr,
        server: SocketAddr,
        config: std::sync::Arc<rustls::ClientConfig>,
        name: &str,
    ) -> std::io::Result<Ua> {
        let sock = tokio::net::TcpSocket::new_v4()?;
        sock.bind(bind)?;
        let tcp = sock.connect(server).await?;
        let local = tcp.local_addr()?;
        let name = rustls::pki_types::ServerName::try_from(name.to_owned())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let tls = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "tls handshake"))??;
        Ok(Ua::new(
            Sock::Tls(Box::new(tls), Vec::new()),
            local,
            server,
            "TLS",
        ))
    }

    /// The certificate the TLS server presented (leaf, DER).
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        let Sock::Tls(s, _) = &self.sock else {
            return None;
        };
        Some(s.get_ref().1.peer_certificates()?.first()?.to_vec())
    }

    fn new(sock: Sock, local: SocketAddr, server: SocketAddr, transport: &'static str) -> Ua {
        Ua {
            sock,
            local,
            server,
            call_id: format!("{:x}@test", fastrand::u64(..)),
            from_tag: format!("{:x}", fastrand::u32(..)),
            transport,
        }
    }

    pub fn is_tcp(&self) -> bool {
        matches!(self.sock, Sock::Tcp(..) | Sock::Tls(..))
    }

    /// A request in this UA's dialog identity.
    pub fn request(
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
            "{method} sip:+48123456789@{server} SIP/2.0\r\n\
             Via: SIP/2.0/{t} {local};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: \"00919990152080|crt-77\" <sip:+919990152080@{local}>;tag={ft}\r\n\
             To: <sip:+48123456789@{server}>{to_tag}\r\n\
             Call-ID: {cid}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:caller@{local}>\r\n\
             X-Workspace-ID: ws-test\r\n\
             User-Agent: scripted-ua\r\n\
             {ct}Content-Length: {len}\r\n\r\n{body}",
            server = self.server,
            local = self.local,
            t = self.transport,
            ft = self.from_tag,
            cid = self.call_id,
            len = body.len(),
        )
    }

    pub async fn send(&mut self, text: &str) {
        self.send_bytes(text.as_bytes()).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        match &mut self.sock {
            Sock::Udp(s) => {
                s.send_to(bytes, self.server).await.expect("send");
            }
            Sock::Tcp(s, _) => s.write_all(bytes).await.expect("write"),
            Sock::Tls(s, _) => {
                s.write_all(bytes).await.expect("write");
                s.flush().await.expect("flush");
            }
        }
    }

    /// The next message, or None after `wait` (an event wait, not a sleep: it returns as
    /// soon as a message arrives).
    pub async fn recv(&mut self, wait: Duration) -> Option<Msg> {
        tokio::time::timeout(wait, self.recv_inner())
            .await
            .ok()
            .flatten()
    }

    async fn recv_inner(&mut self) -> Option<Msg> {
        match &mut self.sock {
            Sock::Udp(s) => {
                let mut buf = vec![0u8; 65536];
                loop {
                    let (n, _) = s.recv_from(&mut buf).await.ok()?;
                    if let Some(m) = Msg::parse(&String::from_utf8_lossy(&buf[..n])) {
                        return Some(m);
                    }
                }
            }
            Sock::Tcp(s, pending) => read_frame(s, pending).await,
            Sock::Tls(s, pending) => read_frame(s.as_mut(), pending).await,
        }
    }

    /// Reads until a message matches, failing the test after `wait`.
    pub async fn expect(&mut self, wait: Duration, what: &str, pred: impl Fn(&Msg) -> bool) -> Msg {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await {
                Some(m) if pred(&m) => return m,
                Some(_) => continue,
                None => panic!("timed out waiting for {what}"),
            }
        }
    }

    pub async fn expect_status(&mut self, status: u16) -> Msg {
        self.expect(Duration::from_secs(5), &format!("status {status}"), |m| {
            m.status() == Some(status)
        })
        .await
    }

    /// Whether the TCP peer closed the connection within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        match &mut self.sock {
            Sock::Udp(_) => false,
            Sock::Tcp(s, _) => closed(s, wait).await,
            Sock::Tls(s, _) => closed(s.as_mut(), wait).await,
        }
    }
}

/// Whether the stream is closed by the peer within `wait` (what arrives is discarded).
pub async fn closed(s: &mut (impl tokio::io::AsyncRead + Unpin), wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let fut = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(wait, fut).await.unwrap_or(false)
}

async fn read_frame(
    s: &mut (impl tokio::io::AsyncRead + Unpin),
    pending: &mut Vec<u8>,
) -> Option<Msg> {
    loop {
        if let Some(m) = take_frame(pending) {
            return Some(m);
        }
        let mut buf = [0u8; 8192];
        let n = s.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        pending.extend_from_slice(&buf[..n]);
    }
}

/// Splits one Content-Length framed message off a TCP buffer.
pub fn take_frame(pending: &mut Vec<u8>) -> Option<Msg> {
    while pending.starts_with(b"\r\n") {
        pending.drain(..2);
    }
    let text = String::from_utf8_lossy(pending).into_owned();
    let end = text.find("\r\n\r\n")? + 4;
    let head = &text[..end];
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            (n.trim().eq_ignore_ascii_case("content-length") || n.trim() == "l")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    if pending.len() < end + len {
        return None;
    }
    let msg: Vec<u8> = pending.drain(..end + len).collect();
    Msg::parse(&String::from_utf8_lossy(&msg))
}

/// A PCMU SDP offer for an RTP socket at `rtp`.
pub fn offer(rtp: SocketAddr, codecs: &str) -> String {
    let ip = rtp.ip();
    let port = rtp.port();
    format!(
        "v=0\r\no=ua 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {codecs} 101\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}
