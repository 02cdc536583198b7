//! One scripted call for agent-bridge tests: the scripted UA's INVITE with an offer for a
//! [`Caller`] media task, the answer (ACK, caller starts streaming), and either side's BYE,
//! with the instants the test needs to check the call record's duration.
//! Must not: wait without a bound (every wait is the UA's or the caller's, bounded).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;
use trunkgate::app::Gateway;

use super::caller::Caller;
use super::ua::{offer, Msg, Ua};

pub const WAIT: Duration = Duration::from_secs(5);

/// A call the gateway has not answered yet.
pub struct Ringing {
    pub ua: Ua,
    pub caller: Caller,
}

/// An answered call.
pub struct Call {
    pub ua: Ua,
    pub caller: Caller,
    pub tag: String,
    pub media: SocketAddr,
    /// When the 200 OK reached the UA.
    pub answered: Instant,
    cseq: u32,
}

/// Sends an INVITE (PCMU + telephone-event) to the gateway's UDP listener.
pub async fn dial(gw: &Gateway) -> Ringing {
    dial_to(gw.udp_addrs[0]).await
}

/// The same to a SIP address (a daemon process).
pub async fn dial_to(sip: SocketAddr) -> Ringing {
    let mut ua = Ua::udp(sip).await;
    let caller = Caller::bind().await;
    let invite = ua.request("INVITE", "inv1", 1, None, &offer(caller.addr, "0"));
    ua.send(&invite).await;
    Ringing { ua, caller }
}

/// A 200 OK for a request the gateway sent (its BYE).
pub fn ok_for(req: &Msg) -> String {
    let h = |n: &str| req.header(n).unwrap_or_default().to_owned();
    format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        h("Via"),
        h("From"),
        h("To"),
        h("Call-ID"),
        h("CSeq")
    )
}

impl Ringing {
    /// Waits for 180 Ringing (skipping 100 Trying).
    pub async fn expect_ringing(&mut self) -> Msg {
        self.ua.expect_status(180).await
    }

    /// Waits for a final status `status` (>= 300) and ACKs it.
    pub async fn expect_failure(&mut self, status: u16) -> Msg {
        let m = self
            .ua
            .expect(WAIT, &format!("final status {status}"), |m| {
                m.status().is_some_and(|s| s >= 200)
            })
            .await;
        assert_eq!(m.status(), Some(status), "final answer: {}", m.start);
        let ack = self.ua.request("ACK", "inv1", 1, m.to_tag().as_deref(), "");
        self.ua.send(&ack).await;
        m
    }

    /// Waits for the 200 OK, ACKs it and starts the caller's audio (`freq` Hz, 0 = silence).
    pub async fn expect_answer(mut self, freq: f32) -> Call {
        let ok = self
            .ua
            .expect(WAIT, "a final answer", |m| {
                m.status().is_some_and(|s| s >= 200)
            })
            .await;
        let answered = Instant::now();
        assert_eq!(ok.status(), Some(200), "answer: {}", ok.start);
        let tag = ok.to_tag().expect("To tag on 200");
        let media = ok.sdp_media().expect("SDP answer");
        let ack = self.ua.request("ACK", "ack1", 1, Some(&tag), "");
        self.ua.send(&ack).await;
        self.caller.start(media, freq);
        Call {
            ua: self.ua,
            caller: self.caller,
            tag,
            media,
            answered,
            cseq: 1,
        }
    }
}

impl Call {
    /// The caller hangs up; returns when the BYE was sent (its 200 is awaited).
    pub async fn hangup(&mut self) -> Instant {
        self.cseq += 1;
        let bye = self.ua.request(
            "BYE",
            &format!("bye{}", self.cseq),
            self.cseq,
            Some(&self.tag),
            "",
        );
        let at = Instant::now();
        self.ua.send(&bye).await;
        self.ua
            .expect(WAIT, "200 to BYE", |m| {
                m.status() == Some(200) && m.header("CSeq").is_some_and(|c| c.ends_with("BYE"))
            })
            .await;
        at
    }

    /// Waits for the gateway's BYE, answers 200, returns when it arrived.
    pub async fn expect_bye(&mut self, wait: Duration) -> Instant {
        let bye = self
            .ua
            .expect(wait, "BYE from the gateway", |m| m.method() == Some("BYE"))
            .await;
        let at = Instant::now();
        self.ua.send(&ok_for(&bye)).await;
        at
    }
}
