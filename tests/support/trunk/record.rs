//! What the trunk's observation API hands a test: each received message as a [`Recorded`],
//! and per call a [`CallSummary`] (auth checks, statuses sent, ACK, CANCEL, BYE, refreshes,
//! media addresses, protocol mistakes noticed).
//! Must not: hold behaviour; plain data filled in by `call.rs` and the dispatcher.

use std::net::SocketAddr;

use tokio::time::Instant;

use super::super::ua::Msg;
use super::digest::AuthCheck;
use super::wire::Peer;
use super::{cseq, header, headers};

/// One SIP message the trunk received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Request method, or for a response the CSeq method.
    pub method: String,
    /// Request-URI (empty for responses).
    pub uri: String,
    /// Status of a response (None for requests).
    pub status: Option<u16>,
    pub msg: Msg,
    pub peer: Peer,
    pub at: Instant,
    /// Index into [`Trunk::calls`] of the call it belongs to.
    pub call: Option<usize>,
}

impl Recorded {
    pub fn source(&self) -> SocketAddr {
        self.peer.addr()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.msg, name)
    }

    /// Every value of a header that may repeat (Via, Record-Route, Supported, ...).
    pub fn headers(&self, name: &str) -> Vec<&str> {
        headers(&self.msg, name)
    }

    pub fn body(&self) -> &str {
        &self.msg.body
    }

    /// The CSeq number.
    pub fn cseq(&self) -> Option<u32> {
        cseq(&self.msg).map(|(n, _)| n)
    }
}

/// Who sent the BYE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Gateway,
    Trunk,
}

/// One refresh (re-INVITE or UPDATE) the gateway sent in the dialog.
#[derive(Debug, Clone)]
pub struct Refresh {
    pub method: String,
    pub cseq: u32,
    pub at: Instant,
    pub session_expires: Option<String>,
    pub has_sdp: bool,
    pub answered: bool,
}

/// What happened to one call (one Call-ID) so far.
#[derive(Debug, Clone)]
pub struct CallSummary {
    pub index: usize,
    pub call_id: String,
    /// INVITE transactions (distinct CSeq numbers) before the dialog: 2 after one challenge.
    pub invites: usize,
    /// One check per INVITE that answered a challenge, in order.
    pub auth: Vec<AuthCheck>,
    /// The last check's result (None: no challenge answered).
    pub auth_ok: Option<bool>,
    /// Statuses the trunk sent to INVITEs, first transmissions, in order.
    pub sent: Vec<u16>,
    /// The final status of the last INVITE.
    pub final_status: Option<u16>,
    pub to_tag: String,
    /// The Contact URI in the trunk's 2xx: the ACK's and BYE's Request-URI must be it.
    pub contact: String,
    /// Transmissions of the 2xx (1 + retransmissions until the ACK).
    pub ok_sent: usize,
    /// The last final response was ACKed.
    pub acked: bool,
    /// The ACK of the 2xx.
    pub ack: Option<Recorded>,
    /// The 2xx was retransmitted for 64*T1 without an ACK.
    pub ack_timeout: bool,
    pub canceled: bool,
    pub bye_from: Option<Side>,
    /// The gateway's answer to the trunk's BYE.
    pub bye_status: Option<u16>,
    pub refreshes: Vec<Refresh>,
    /// The gateway's SDP offer (INVITE body).
    pub offer: String,
    /// Where the trunk sends RTP (the offer's address).
    pub media_to: Option<SocketAddr>,
    /// The trunk's RTP socket.
    pub media_addr: Option<SocketAddr>,
    pub ended: bool,
    /// Protocol mistakes the trunk noticed (ACK Request-URI or CSeq, CSeq not raised, ...).
    pub problems: Vec<String>,
}

impl CallSummary {
    pub(crate) fn new(index: usize, call_id: &str) -> CallSummary {
        CallSummary {
            index,
            call_id: call_id.into(),
            invites: 0,
            auth: Vec::new(),
            auth_ok: None,
            sent: Vec::new(),
            final_status: None,
            to_tag: String::new(),
            contact: String::new(),
            ok_sent: 0,
            acked: false,
            ack: None,
            ack_timeout: false,
            canceled: false,
            bye_from: None,
            bye_status: None,
            refreshes: Vec::new(),
            offer: String::new(),
            media_to: None,
            media_addr: None,
            ended: false,
            problems: Vec::new(),
        }
    }
}
