//! The endpoint's inputs, outputs and settings.

use std::net::SocketAddr;

use crate::core::sip::message::Limits;
use crate::core::sip::txn::Timers;
use crate::core::{Flow, Transport};

/// Identifies one call (one INVITE dialog) inside the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub u64);

/// Keys at or above this are chosen by the owner for calls it dials; the endpoint numbers
/// incoming calls from 1 and never reaches them.
pub const OUTBOUND_KEYS: u64 = 1 << 62;

#[derive(Debug, Clone)]
pub struct Settings {
    pub user_agent: String,
    /// Host advertised in Contact (and by the call in SDP) instead of the local socket address.
    pub public_address: Option<String>,
    pub timers: Timers,
    pub limits: Limits,
    /// Requests whose User-Agent contains one of these (case-insensitive) are dropped unanswered.
    pub blocked_user_agents: Vec<String>,
    /// RFC 4028: the session interval we ask for, in seconds (our INVITEs, and the 2xx to a
    /// peer that supports timers but asked for none).
    pub session_expires: u32,
    /// RFC 4028: the smallest session interval we accept, in seconds (smaller → 422).
    pub min_se: u32,
    /// Out-of-dialog REGISTERs are handed to the shell ([`Output::Register`]) to answer with
    /// [`super::Endpoint::answer_register`]; off, they get 405.
    pub registrar: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            user_agent: "trunkgate".to_string(),
            public_address: None,
            timers: Timers::default(),
            limits: Limits::default(),
            blocked_user_agents: Vec::new(),
            session_expires: crate::core::sip::session_timer::DEFAULT_SESSION_EXPIRES,
            min_se: crate::core::sip::session_timer::DEFAULT_MIN_SE,
            registrar: false,
        }
    }
}

#[derive(Debug)]
pub enum Input {
    /// One datagram (UDP) or one framed message (TCP/TLS).
    Received { flow: Flow, bytes: Vec<u8> },
    /// A decision of the call's owner.
    Command { call: CallKey, cmd: CallCommand },
    /// A stream connection (TCP/TLS) closed or never came up: our INVITEs still waiting on
    /// it fail at once instead of at Timer B.
    ConnectionLost { conn: crate::core::ConnId },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallCommand {
    /// The verdict on a new INVITE (every [`CallEvent::Incoming`] needs one, given at once):
    /// go on — 100 Trying is sent now.
    Proceed,
    /// The verdict on a new INVITE: forget it without any answer (scanners, floods).
    Drop,
    /// 180 Ringing (early dialog, no SDP).
    Ringing,
    /// 200 OK with this SDP body (an answer, or an offer when the INVITE had none).
    Answer {
        sdp: Vec<u8>,
    },
    /// A final failure response to the INVITE (before answer).
    Reject {
        status: u16,
        reason: Option<String>,
        headers: Vec<(String, String)>,
    },
    /// Answer to a re-INVITE: 200 with SDP, or a failure status.
    ReInviteAnswer {
        sdp: Vec<u8>,
    },
    ReInviteReject {
        status: u16,
    },
    /// End the call: BYE once answered, 480 while still ringing.
    Hangup,
    /// Transfer (RFC 3515): send REFER inside the confirmed dialog, UAS or UAC alike, with
    /// `Refer-To: <refer_to>` (a SIP URI; angle brackets are added unless it has them) and
    /// `Referred-By` when given. Its outcome is one [`CallEvent::ReferResult`]; the
    /// transferee's reports follow as [`CallEvent::ReferProgress`]. One REFER at a time: a
    /// second while one is unanswered gets `ReferResult { status: 491 }` at once, unsent; a
    /// call not yet confirmed (or hanging up) gets 481, an empty `refer_to` 400, both unsent.
    /// A call that ends first reports only its `Ended` (no `ReferResult` after it).
    Refer {
        refer_to: String,
        referred_by: Option<String>,
    },
}

#[derive(Debug)]
pub enum Output {
    Transmit {
        flow: Flow,
        bytes: Vec<u8>,
    },
    Event {
        call: CallKey,
        event: CallEvent,
    },
    /// A message that could not be parsed (already answered with 400 when possible).
    Malformed {
        flow: Flow,
        reason: String,
    },
    /// A request from a blocked User-Agent, dropped unanswered.
    Blocked {
        flow: Flow,
    },
    /// A response that matches none of the endpoint's transactions. Requests sent outside the
    /// endpoint (REGISTER toward trunks) get their answers here; anything else is dropped.
    UnmatchedResponse {
        flow: Flow,
        msg: crate::core::sip::message::Message,
    },
    /// An out-of-dialog REGISTER (with `registrar` on), well formed: the shell decides and
    /// answers it with [`super::Endpoint::answer_register`]. Its retransmissions, once
    /// answered, get the same answer from the transaction.
    Register {
        flow: Flow,
        msg: Box<crate::core::sip::message::Message>,
    },
}

/// Why the endpoint forgot a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The caller sent BYE.
    RemoteBye,
    /// We sent BYE (answered with this status; 408 when unanswered).
    LocalBye(u16),
    /// The caller cancelled while ringing (487 sent).
    Canceled,
    /// We rejected the INVITE with this status.
    Rejected(u16),
    /// Our 2xx was never acknowledged; BYE was sent.
    NoAck,
    /// Our INVITE got this final non-2xx (408 for no answer at all — Timer B).
    Refused(u16),
    /// Our INVITE could not be sent: the next hop does not resolve, or its connection failed.
    Unreachable,
    /// The trunk challenged again after we answered its challenge (or we hold no
    /// credentials for it): the status of the challenge.
    AuthFailed(u16),
    /// The session timer ran out (RFC 4028 §10): the peer stopped refreshing, or our refresh
    /// failed with 408/481 or went unanswered. We sent BYE.
    SessionExpired,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// A new INVITE. The owner must answer at once with `Proceed`, `Reject` or `Drop`
    /// (admission runs here, before anything is sent, so a dropped scanner hears nothing).
    Incoming(Box<IncomingCall>),
    /// The 2xx was acknowledged; carries the SDP answer of a late-offer call.
    Acked {
        sdp: Option<Vec<u8>>,
    },
    ReInvite {
        sdp: Option<Vec<u8>>,
    },
    /// INFO inside the dialog (e.g. application/dtmf-relay); already answered 200.
    Info {
        content_type: String,
        body: Vec<u8>,
    },
    /// A provisional response to our INVITE (101-199; 100 is not reported), with its SDP
    /// (early media) when it had one.
    Progress {
        status: u16,
        sdp: Option<Vec<u8>>,
    },
    /// Our INVITE was answered (2xx, already acknowledged); the SDP answer if it had one.
    Answered {
        sdp: Option<Vec<u8>>,
    },
    /// Our INVITE was redirected (3xx): the Contact it named. `Ended(Refused(3xx))` follows.
    Redirected {
        contact: String,
    },
    /// The final answer to our REFER ([`CallCommand::Refer`]): 2xx (202, 200) accepted,
    /// 300-699 refused, 408 when it went unanswered (Timer F), 491/481 when it was never
    /// sent (see the command).
    ReferResult {
        status: u16,
    },
    /// A NOTIFY (`Event: refer`) about our accepted REFER, already answered 200: the status
    /// code of its message/sipfrag body (`SIP/2.0 180 Ringing` → 180; 0 when the body is
    /// missing or unreadable), and whether it ends the subscription
    /// (`Subscription-State: terminated`; no more reports for this REFER follow). It may
    /// come before the REFER's `ReferResult` (a NOTIFY may overtake the 202, RFC 6665).
    ReferProgress {
        status: u16,
        terminated: bool,
    },
    Ended(EndReason),
}

/// An INVITE to send (the UAC side): everything but the transaction and dialog details,
/// which the endpoint chooses (branch, tags, Call-ID, CSeq).
#[derive(Debug, Clone)]
pub struct DialSpec {
    /// Where the INVITE goes (the trunk, or its outbound proxy) and from which socket.
    pub flow: Flow,
    /// Host (and the port of `flow.local`) we advertise in Via and Contact.
    pub local_host: String,
    pub request_uri: String,
    /// The From value without a tag, e.g. `"+48111" <sip:+48111@carrier.example>`.
    pub from: String,
    /// The To value, e.g. `<sip:+48222@carrier.example>`.
    pub to: String,
    /// A Route header value (an outbound proxy, loose routing), if any.
    pub route: Option<String>,
    /// Extra headers (P-Asserted-Identity, X-...).
    pub headers: Vec<(String, String)>,
    /// Our SDP offer.
    pub sdp: Vec<u8>,
    /// Digest credentials for 401/407 challenges.
    pub credentials: Option<crate::core::sip::auth::Credentials>,
    /// Over TLS: the name the next hop's certificate must carry (its host as configured, also
    /// sent as SNI); `None` → the chain is verified, the name is not.
    pub tls_name: Option<String>,
}

/// What the endpoint learned from a new INVITE.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingCall {
    pub sip_call_id: String,
    pub from_uri: String,
    pub from_user: Option<String>,
    pub from_display: Option<String>,
    pub to_uri: String,
    pub to_user: Option<String>,
    pub request_user: Option<String>,
    /// From a `"DID|CRT"` display name (`core::number::did_crt`: the DID E.164-normalised).
    pub did: Option<String>,
    pub crt: Option<String>,
    /// Extension headers (`X-...`) as received, in order.
    pub headers: Vec<(String, String)>,
    pub user_agent: Option<String>,
    pub source: SocketAddr,
    pub transport: Transport,
    /// The TCP or TLS connection it came on.
    pub conn: Option<crate::core::ConnId>,
    /// Host to advertise in SDP `c=` (public address, else our local address).
    pub local_host: String,
    pub offer: Option<Vec<u8>>,
}
