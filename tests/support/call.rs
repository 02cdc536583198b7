//! One scripted call attempt over a [`Ua`] socket, with the caller number (From user), the
//! dialled DID (Request-URI and To user), extension headers and User-Agent of the test's
//! choosing: INVITE → final answer (ACKed, RFC 3261 §17.1.1.3 for non-2xx, §13.2.2.4 for
//! 2xx), BYE, answering the gateway's BYE, and the "nothing was answered" probe.
//!
//! Must not sleep: every wait is an event wait bounded by [`WAIT`].

#![allow(dead_code)]

use std::time::Duration;

use super::ua::{offer, Msg, Ua};

/// Upper bound of every wait for a SIP message that must come.
pub const WAIT: Duration = Duration::from_secs(5);

/// The identity of one call (one Call-ID); several calls may share a [`Ua`] socket.
#[derive(Debug, Clone)]
pub struct Call {
    pub call_id: String,
    pub from_tag: String,
    /// From user: the caller number admission reads.
    pub caller: String,
    /// Request-URI user.
    pub ruri_user: String,
    /// To user.
    pub to_user: String,
    pub headers: Vec<(String, String)>,
    pub user_agent: String,
    /// The gateway's tag, once a final answer came.
    pub to_tag: Option<String>,
    /// CSeq of the INVITE; in-dialog requests count up from here.
    pub cseq: u32,
}

impl Default for Call {
    fn default() -> Self {
        Call::new()
    }
}

impl Call {
    pub fn new() -> Call {
        Call {
            call_id: format!("{:x}@admission", fastrand::u64(..)),
            from_tag: format!("{:x}", fastrand::u32(..)),
            caller: "+48600100200".into(),
            ruri_user: "+48123456789".into(),
            to_user: "+48123456789".into(),
            headers: Vec::new(),
            user_agent: "scripted-ua".into(),
            to_tag: None,
            cseq: 1,
        }
    }

    pub fn caller(mut self, caller: &str) -> Call {
        self.caller = caller.into();
        self
    }

    /// The dialled DID, in both the Request-URI and To.
    pub fn did(mut self, did: &str) -> Call {
        self.ruri_user = did.into();
        self.to_user = did.into();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Call {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn user_agent(mut self, ua: &str) -> Call {
        self.user_agent = ua.into();
        self
    }

    /// A request of this call from `ua`'s socket.
    pub fn request(&self, ua: &Ua, method: &str, branch: &str, cseq: u32, body: &str) -> String {
        let to_tag = self
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        let extra: String = self
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\r\n"))
            .collect();
        let ct = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!(
            "{method} sip:{ruri}@{server} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{caller}@{local}>;tag={ft}\r\n\
             To: <sip:{to}@{server}>{to_tag}\r\n\
             Call-ID: {cid}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:caller@{local}>\r\n\
             {extra}User-Agent: {agent}\r\n\
             {ct}Content-Length: {len}\r\n\r\n{body}",
            ruri = self.ruri_user,
            server = ua.server,
            local = ua.local,
            caller = self.caller,
            to = self.to_user,
            ft = self.from_tag,
            cid = self.call_id,
            agent = self.user_agent,
            len = body.len(),
        )
    }

    fn is_mine(&self, m: &Msg, method: &str) -> bool {
        m.header("Call-ID") == Some(self.call_id.as_str())
            && m.header("CSeq").is_some_and(|c| c.ends_with(method))
    }

    /// Sends the INVITE (an SDP offer for `rtp`) and returns its final answer; 1xx are
    /// skipped, a non-2xx final is ACKed on the INVITE's branch, a 2xx with a new one.
    pub async fn invite(&mut self, ua: &mut Ua, rtp: std::net::SocketAddr) -> Msg {
        let branch = format!("inv{:x}", fastrand::u32(..));
        let invite = self.request(ua, "INVITE", &branch, self.cseq, &offer(rtp, "0"));
        ua.send(&invite).await;
        let fin = ua
            .expect(WAIT, "a final answer to the INVITE", |m| {
                self.is_mine(m, "INVITE") && m.status().is_some_and(|s| s >= 200)
            })
            .await;
        self.to_tag = fin.to_tag();
        let ack_branch = if fin.status() == Some(200) {
            format!("ack{:x}", fastrand::u32(..))
        } else {
            branch
        };
        ua.send(&self.request(ua, "ACK", &ack_branch, self.cseq, ""))
            .await;
        fin
    }

    /// INVITE that must be answered 200 OK (after a 100 Trying: admitted).
    pub async fn establish(&mut self, ua: &mut Ua, rtp: std::net::SocketAddr) -> Msg {
        let fin = self.invite(ua, rtp).await;
        assert_eq!(
            fin.status(),
            Some(200),
            "call {} should be admitted and answered: {}",
            self.call_id,
            fin.start
        );
        fin
    }

    /// INVITE that must be refused with `status`; returns the answer (for Retry-After).
    pub async fn refused(&mut self, ua: &mut Ua, rtp: std::net::SocketAddr, status: u16) -> Msg {
        let fin = self.invite(ua, rtp).await;
        assert_eq!(
            fin.status(),
            Some(status),
            "call {} from {} (caller {}, DID {}): {}",
            self.call_id,
            ua.local,
            self.caller,
            self.ruri_user,
            fin.start
        );
        fin
    }

    /// BYE from the caller, answered 200 OK.
    pub async fn hang_up(&mut self, ua: &mut Ua) {
        self.cseq += 1;
        let branch = format!("bye{:x}", fastrand::u32(..));
        ua.send(&self.request(ua, "BYE", &branch, self.cseq, ""))
            .await;
        let ok = ua
            .expect(WAIT, "the answer to our BYE", |m| {
                self.is_mine(m, "BYE") && m.status().is_some()
            })
            .await;
        assert_eq!(ok.status(), Some(200), "BYE answered {}", ok.start);
    }
}

/// A UA socket bound to `ip` (any free port; "[::1]" for IPv6), talking to `server`.
pub async fn ua_from(ip: &str, server: std::net::SocketAddr) -> Ua {
    let bind = format!("{ip}:0").parse().expect("test address");
    Ua::udp_from(bind, server).await
}

/// The `Retry-After` seconds of an answer (the value before any comment or parameter).
pub fn retry_after(m: &Msg) -> Option<u64> {
    m.header("Retry-After")?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Answers a request from the gateway (its BYE) with `status`, copying the dialog headers.
pub async fn answer(ua: &mut Ua, req: &Msg, status: u16) {
    let h = |n: &str| req.header(n).unwrap_or_default().to_string();
    let text = format!(
        "SIP/2.0 {status} OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        h("Via"),
        h("From"),
        h("To"),
        h("Call-ID"),
        h("CSeq"),
    );
    ua.send(&text).await;
}

/// Proves that nothing was (or will be) answered to what `ua` sent before: an OPTIONS probe
/// from the same socket is answered 200 and is the FIRST message that arrives. The gateway
/// reads one socket in order and answers an INVITE (100 Trying, or a final status) before it
/// reads the next datagram, so any answer to the earlier request would have come first.
pub async fn assert_nothing_answered(ua: &mut Ua, what: &str) {
    let probe = Call::new();
    let branch = format!("probe{:x}", fastrand::u32(..));
    ua.send(&probe.request(ua, "OPTIONS", &branch, 1, "")).await;
    let first = ua
        .recv(WAIT)
        .await
        .unwrap_or_else(|| panic!("no answer to the OPTIONS probe after {what}"));
    assert_eq!(
        first.header("Call-ID"),
        Some(probe.call_id.as_str()),
        "{what} was answered: {} {:?}",
        first.start,
        first.header("CSeq")
    );
    assert_eq!(first.status(), Some(200), "probe answered {}", first.start);
}
