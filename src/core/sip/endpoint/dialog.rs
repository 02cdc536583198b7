//! One INVITE dialog, UAS or UAC side (RFC 3261 §12.1, §12.2, §15).
//!
//! Holds what in-dialog requests need: our tag, the peer's tag, the remote target and route
//! set, and both CSeq spaces. In-dialog requests we send go over the flow the call began on
//! (the same TCP connection, or the peer's address on UDP): that is where a caller behind NAT
//! or a proxy can be reached, whatever its Contact says.

use crate::core::sip::message::{HeaderName, Message, Method, OutMessage};
use crate::core::Flow;

/// Which side of the INVITE we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We received the INVITE.
    Uas,
    /// We sent it.
    Uac,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// INVITE received (UAS) or sent (UAC), no final response yet.
    Early,
    /// 2xx sent, waiting for the ACK (UAS only).
    Answered,
    /// ACK received (UAS) or 2xx received and acknowledged (UAC): the call is up.
    Confirmed,
    /// We sent BYE and wait for its answer.
    Terminating,
}

#[derive(Debug)]
pub struct SipCall {
    pub role: Role,
    /// The INVITE that began the dialog (ours, parsed back, on the UAC side).
    pub invite: Message,
    pub flow: Flow,
    /// The INVITE's transaction: the server key (UAS) or the client branch (UAC).
    pub invite_txn: String,
    pub local_tag: String,
    /// The peer's tag (UAC: the To tag of its 2xx; UAS: in the INVITE's From).
    pub remote_tag: Option<String>,
    pub state: CallState,
    pub remote_target: String,
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    pub remote_cseq: u32,
    /// Server transaction key of a re-INVITE being answered.
    pub reinvite_txn: Option<String>,
    pub reinvite: Option<Message>,
    /// CSeq and transaction of an answered re-INVITE waiting for its ACK.
    pub reinvite_ack: Option<(u32, String)>,
    /// Hangup asked for before the ACK came: BYE goes out once it does (§15).
    pub hangup_pending: bool,
    /// Why the call ends once our BYE completes (NoAck, or a plain local hangup).
    pub end_reason: Option<super::EndReason>,
    /// Whether the INVITE carried no SDP (we offer in the 2xx; the answer comes in the ACK).
    pub late_offer: bool,
    /// UAC: the ACK for the 2xx, sent again for each retransmission of it.
    pub ack: Option<Vec<u8>>,
    /// UAC: we want the INVITE cancelled (CANCEL sent or waiting for a provisional); a 2xx
    /// that still comes is acknowledged and hung up at once (§9.1, §15).
    pub cancel: bool,
    /// UAC: the host our INVITE advertised (Via, Contact); in-dialog requests use it too.
    pub local_host: String,
    /// UAC: answering the trunk's digest challenges.
    pub auth: Option<(
        crate::core::sip::auth::DigestClient,
        crate::core::sip::auth::RequestAuth,
    )>,
    /// The SDP we last sent (our 2xx body as UAS, our INVITE's as UAC, our last re-INVITE
    /// answer): a refresh by re-INVITE offers it again unchanged.
    pub local_sdp: Vec<u8>,
    /// The session timer (RFC 4028) and our refresh in flight.
    pub refresh: super::refresh::RefreshState,
    /// Our REFER in flight and the implicit subscriptions of accepted ones (RFC 3515).
    pub refer: super::refer::ReferState,
}

impl SipCall {
    pub fn new(invite: Message, flow: Flow, invite_txn: String, local_tag: String) -> Self {
        let remote_target = invite
            .contact()
            .map(|c| c.uri.raw.to_string())
            .unwrap_or_else(|| invite.from_hdr().uri.raw.to_string());
        let route_set = invite
            .header_values(&HeaderName::RecordRoute)
            .map(|v| v.trim().to_string())
            .collect();
        let remote_cseq = invite.cseq().seq;
        let late_offer = invite.body().is_empty();
        SipCall {
            role: Role::Uas,
            remote_tag: None,
            ack: None,
            cancel: false,
            auth: None,
            local_host: String::new(),
            invite,
            flow,
            invite_txn,
            local_tag,
            state: CallState::Early,
            remote_target,
            route_set,
            local_cseq: 0,
            remote_cseq,
            reinvite_txn: None,
            reinvite: None,
            reinvite_ack: None,
            hangup_pending: false,
            end_reason: None,
            late_offer,
            local_sdp: Vec::new(),
            refresh: Default::default(),
            refer: Default::default(),
        }
    }

    /// A dialog for our own INVITE (UAC): the remote target is its Request-URI until a 2xx
    /// names a Contact.
    pub fn uac(invite: Message, flow: Flow, branch: String, local_tag: String) -> Self {
        let remote_target = invite.request_uri().unwrap_or("").to_string();
        let local_cseq = invite.cseq().seq;
        SipCall {
            role: Role::Uac,
            route_set: invite
                .header_values(&HeaderName::Route)
                .map(|v| v.trim().to_string())
                .collect(),
            invite,
            flow,
            invite_txn: branch,
            local_tag,
            remote_tag: None,
            state: CallState::Early,
            remote_target,
            local_cseq,
            remote_cseq: 0,
            reinvite_txn: None,
            reinvite: None,
            reinvite_ack: None,
            hangup_pending: false,
            end_reason: None,
            late_offer: false,
            ack: None,
            cancel: false,
            auth: None,
            local_host: String::new(),
            local_sdp: Vec::new(),
            refresh: Default::default(),
            refer: Default::default(),
        }
    }

    /// Our From and our To for requests we send: UAS — their To with our tag, and their
    /// From; UAC — our INVITE's From, and its To with their tag.
    fn local_and_remote(&self) -> (String, String) {
        if self.role == Role::Uac {
            let from = self.invite.header(&HeaderName::From).unwrap_or("").trim();
            let to = self.invite.header(&HeaderName::To).unwrap_or("").trim();
            let remote = match &self.remote_tag {
                Some(tag) => format!("{to};tag={tag}"),
                None => to.to_string(),
            };
            return (from.to_string(), remote);
        }
        let to = self.invite.header(&HeaderName::To).unwrap_or("").trim();
        let local = if self.invite.to_tag().is_some() {
            to.to_string()
        } else {
            format!("{to};tag={}", self.local_tag)
        };
        let remote = self
            .invite
            .header(&HeaderName::From)
            .unwrap_or("")
            .trim()
            .to_string();
        (local, remote)
    }

    /// Builds an in-dialog request (BYE, INFO...) with a fresh branch.
    pub fn request(
        &mut self,
        method: Method,
        branch: &str,
        via_host: &str,
        user_agent: &str,
    ) -> Vec<u8> {
        self.local_cseq += 1;
        self.build(method, self.local_cseq, branch, via_host, user_agent)
    }

    /// The ACK for the 2xx to our INVITE (§13.2.2.4): to the remote target along the route
    /// set, the INVITE's CSeq number, a branch of its own.
    pub fn ack_for_2xx(&self, branch: &str, via_host: &str, user_agent: &str) -> Vec<u8> {
        let seq = self.invite.cseq().seq;
        self.build(Method::Ack, seq, branch, via_host, user_agent)
    }

    /// The ACK for the 2xx to our re-INVITE with CSeq `seq`.
    pub fn ack_for(&self, seq: u32, branch: &str, via_host: &str, user_agent: &str) -> Vec<u8> {
        self.build(Method::Ack, seq, branch, via_host, user_agent)
    }

    /// An in-dialog request with a fresh CSeq that the caller completes (headers, body).
    pub fn request_out(
        &mut self,
        method: Method,
        branch: &str,
        via_host: &str,
        user_agent: &str,
    ) -> OutMessage {
        self.local_cseq += 1;
        self.build_out(method, self.local_cseq, branch, via_host, user_agent)
    }

    /// A request inside the dialog: to the remote target along the route set.
    fn build(
        &self,
        method: Method,
        cseq: u32,
        branch: &str,
        via_host: &str,
        user_agent: &str,
    ) -> Vec<u8> {
        self.build_out(method, cseq, branch, via_host, user_agent)
            .to_bytes()
    }

    fn build_out(
        &self,
        method: Method,
        cseq: u32,
        branch: &str,
        via_host: &str,
        user_agent: &str,
    ) -> OutMessage {
        let (local, remote) = self.local_and_remote();
        let mut req = OutMessage::request(method.clone(), &self.remote_target);
        req.add_header(
            "Via",
            format!(
                "SIP/2.0/{} {}:{};branch=z9hG4bK{};rport",
                self.flow.transport.via_token(),
                via_host,
                self.flow.local.port(),
                branch
            ),
        );
        req.add_header("Max-Forwards", "70");
        for route in &self.route_set {
            req.add_header("Route", route.clone());
        }
        req.add_header("From", local);
        req.add_header("To", remote);
        req.add_header("Call-ID", self.invite.call_id().to_string());
        req.add_header("CSeq", format!("{cseq} {}", method.as_str()));
        req.add_header("User-Agent", user_agent.to_string());
        req
    }
}
