//! The UAS side of one INVITE dialog (RFC 3261 §12.1.1, §12.2, §15).
//!
//! Holds what in-dialog requests need: our tag, the peer's From as our To, the remote target
//! and route set, and both CSeq spaces. In-dialog requests we send go back over the flow the
//! INVITE came in on (the same TCP connection, or the source address on UDP): that is where a
//! caller behind NAT or a proxy can be reached, whatever its Contact says.

use crate::core::sip::message::{HeaderName, Message, Method, OutMessage};
use crate::core::Flow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// INVITE received, no final response yet.
    Early,
    /// 2xx sent, waiting for the ACK.
    Answered,
    /// ACK received: the call is up.
    Confirmed,
    /// We sent BYE and wait for its answer.
    Terminating,
}

#[derive(Debug)]
pub struct UasCall {
    pub invite: Message,
    pub flow: Flow,
    pub invite_txn: String,
    pub local_tag: String,
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
}

impl UasCall {
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
        UasCall {
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
        }
    }

    /// Our From (their To with our tag) and our To (their From) for requests we send.
    fn local_and_remote(&self) -> (String, String) {
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
        req.add_header("CSeq", format!("{} {}", self.local_cseq, method.as_str()));
        req.add_header("User-Agent", user_agent.to_string());
        req.to_bytes()
    }
}
