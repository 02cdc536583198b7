//! Plays one [`Script`] for one Call-ID as a UAS: the INVITE transactions before the dialog
//! (challenge, digest check, 403, 422), provisionals and early media, the final answer with
//! UDP retransmission until the ACK (T1 doubling to T2, give up at 64*T1), CANCEL (200, 487),
//! then the dialog: answering the gateway's BYE, refreshes (re-INVITE with SDP, UPDATE), other
//! in-dialog requests, and its own BYE (scripted delay or [`super::Trunk::bye`]).
//! Everything it sees and does goes into the call's [`super::CallSummary`].
//! Must not: wait without a bound (every wait ends by [`MAX_CALL`]), handle more than
//! [`MAX_MESSAGES`] messages, or panic on what the gateway sends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use super::super::ua::Msg;
use super::digest::{self, challenge_value, Expected};
use super::media::{CallMedia, Codec};
use super::script::{AnswerSdp, Final, Refreshes, Script};
use super::wire::{Incoming, Peer, Wire};
use super::{cseq, header, headers, request_uri, Cmd, Refresh, Shared, Side, Transport};

mod dialog;

/// Longest a call task runs.
pub const MAX_CALL: Duration = Duration::from_secs(300);
/// Most messages one call handles.
pub const MAX_MESSAGES: usize = 10_000;
/// RFC 3261 T2.
const T2: Duration = Duration::from_secs(4);

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        422 => "Session Interval Too Small",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Scripted",
    }
}

/// A response to `req`: its Vias, From, Call-ID and CSeq, its To with `to_tag` added (unless
/// empty or already tagged), then `extra` headers and `body` (SDP when not empty).
pub fn response(
    req: &Msg,
    status: u16,
    to_tag: &str,
    extra: &[(String, String)],
    body: &str,
) -> String {
    let mut out = format!("SIP/2.0 {status} {}\r\n", reason(status));
    for v in headers(req, "Via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    let to = header(req, "To").unwrap_or_default();
    let to = if to_tag.is_empty() || req.to_tag().is_some() || to.contains(";tag=") {
        to.to_string()
    } else {
        format!("{to};tag={to_tag}")
    };
    for (n, v) in [
        ("From", header(req, "From").unwrap_or_default()),
        ("To", to.as_str()),
        ("Call-ID", header(req, "Call-ID").unwrap_or_default()),
        ("CSeq", header(req, "CSeq").unwrap_or_default()),
    ] {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    for (n, v) in extra {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("Server: scripted-trunk\r\n");
    if !body.is_empty() {
        out.push_str("Content-Type: application/sdp\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out
}

/// The URI inside a Contact/Route value (`"x" <sip:..>;p` or `sip:..;p`).
pub fn uri_of(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => value.get(a + 1..b).unwrap_or_default(),
        _ => value.split(';').next().unwrap_or_default().trim(),
    }
}

/// host:port of a `sip:` URI with a numeric host (default port 5060).
pub fn uri_addr(uri: &str) -> Option<SocketAddr> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))?;
    let host = rest.rsplit('@').next()?.split([';', '?']).next()?;
    host.parse()
        .ok()
        .or_else(|| format!("{host}:5060").parse().ok())
}

/// The `c=`/`m=audio` address of an SDP body.
fn sdp_addr(body: &str) -> Option<SocketAddr> {
    let m = Msg {
        start: String::new(),
        headers: Vec::new(),
        body: body.to_string(),
    };
    m.sdp_media()
}

enum Event {
    /// A new INVITE transaction on this Call-ID before the dialog.
    Invite(Msg, Peer),
    /// CANCEL of the pending INVITE (already answered 200).
    Cancel,
    /// The gateway's BYE (already answered 200).
    Bye,
    /// A response to the trunk's own request.
    Response(Msg),
    /// An ACK (already recorded).
    Ack,
    Cmd(Cmd),
    Timeout,
    Closed,
}

/// A message retransmitted over UDP until answered.
struct Retx {
    /// CSeq number it belongs to, and whether it is our request (else our final response).
    cseq: u32,
    request: bool,
    bytes: Vec<u8>,
    peer: Peer,
    next: Instant,
    interval: Duration,
    give_up: Instant,
    is_2xx: bool,
}

pub struct CallTask {
    idx: usize,
    shared: Arc<Shared>,
    wire: Wire,
    script: Script,
    t1: Duration,
    media: CallMedia,
    rx: mpsc::UnboundedReceiver<Incoming>,
    cmds: mpsc::UnboundedReceiver<Cmd>,
    /// The current INVITE and where it came from.
    invite: Msg,
    peer: Peer,
    /// INVITE CSeq numbers seen, with the last response sent to each.
    answered: Vec<(u32, Vec<u8>)>,
    final_sent: bool,
    to_tag: String,
    contact: String,
    dialog: bool,
    retx: Vec<Retx>,
    local_cseq: u32,
    sdp_version: u32,
    refreshes_answered: usize,
    messages: usize,
    life_end: Instant,
}

impl CallTask {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        idx: usize,
        shared: Arc<Shared>,
        wire: Wire,
        script: Script,
        t1: Duration,
        media: CallMedia,
        rx: mpsc::UnboundedReceiver<Incoming>,
        cmds: mpsc::UnboundedReceiver<Cmd>,
    ) -> CallTask {
        let params = match wire.transport {
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
            Transport::Udp => "",
        };
        let contact = format!("sip:{}@{}{params}", script.contact_user, wire.local);
        CallTask {
            idx,
            shared,
            wire,
            script,
            t1,
            media,
            rx,
            cmds,
            invite: Msg {
                start: String::new(),
                headers: Vec::new(),
                body: String::new(),
            },
            peer: Peer::Udp(SocketAddr::from(([127, 0, 0, 1], 0))),
            answered: Vec::new(),
            final_sent: false,
            to_tag: format!("tr{:08x}", fastrand::u32(..)),
            contact,
            dialog: false,
            retx: Vec::new(),
            local_cseq: fastrand::u32(1..10_000),
            sdp_version: 1,
            refreshes_answered: 0,
            messages: 0,
            life_end: Instant::now() + MAX_CALL,
        }
    }

    fn note(&self, f: impl FnOnce(&mut super::CallSummary)) {
        self.shared.call(self.idx, f);
    }

    fn problem(&self, p: String) {
        self.note(|c| c.problems.push(p));
    }

    fn invite_cseq(&self) -> u32 {
        cseq(&self.invite).map(|(n, _)| n).unwrap_or(0)
    }

    pub async fn run(mut self, first: Incoming) {
        let to_tag = self.to_tag.clone();
        let media_addr = self.media.addr;
        self.note(|c| {
            c.to_tag = to_tag;
            c.media_addr = Some(media_addr);
        });
        self.take_invite(first.msg, first.peer);
        if self.setup().await {
            self.in_dialog().await;
        }
        self.media.stop();
        self.note(|c| c.ended = true);
        // Linger (bounded) to absorb retransmissions and answer late BYEs.
        let linger = Instant::now() + 64 * self.t1;
        while !matches!(
            self.pump(Some(linger)).await,
            Event::Timeout | Event::Closed
        ) {}
    }

    fn take_invite(&mut self, msg: Msg, peer: Peer) {
        let (offer, to) = (msg.body.clone(), sdp_addr(&msg.body));
        self.invite = msg;
        self.peer = peer;
        self.final_sent = false;
        self.note(|c| {
            c.invites += 1;
            c.offer = offer;
            c.media_to = to;
        });
    }

    /// Sends a response to the current INVITE (recorded; final ones retransmitted on UDP).
    async fn respond_invite(&mut self, status: u16, extra: &[(String, String)], body: &str) {
        let tag = if status > 100 {
            self.to_tag.clone()
        } else {
            String::new()
        };
        let text = response(&self.invite, status, &tag, extra, body);
        let n = self.invite_cseq();
        self.wire.send(self.peer, text.as_bytes()).await;
        match self.answered.iter_mut().find(|(c, _)| *c == n) {
            Some(slot) => slot.1 = text.clone().into_bytes(),
            None => self.answered.push((n, text.clone().into_bytes())),
        }
        let is_final = status >= 200;
        self.note(|c| {
            c.sent.push(status);
            if is_final {
                c.final_status = Some(status);
                c.acked = false;
            }
            if (200..300).contains(&status) {
                c.ok_sent += 1;
            }
        });
        if is_final {
            self.final_sent = true;
            if self.wire.transport == Transport::Udp {
                self.retx.push(Retx {
                    cseq: n,
                    request: false,
                    bytes: text.into_bytes(),
                    peer: self.peer,
                    next: Instant::now() + self.t1,
                    interval: self.t1,
                    give_up: Instant::now() + 64 * self.t1,
                    is_2xx: (200..300).contains(&status),
                });
            }
        }
    }

    /// The trunk's SDP (answer) for its RTP socket.
    /// The version in `o=` stays for 183 and 200, and rises for each refresh answer.
    fn sdp(&self, mode: AnswerSdp) -> String {
        let (ip, port) = (self.media.addr.ip(), self.media.addr.port());
        let (pts, maps) = match mode {
            AnswerSdp::NoCommonCodec => ("18".to_string(), "a=rtpmap:18 G729/8000\r\n".to_string()),
            _ => {
                let c: Codec = self.script.codec;
                (
                    format!("{} 101", c.pt()),
                    format!(
                        "a=rtpmap:{} {}/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n",
                        c.pt(),
                        c.name()
                    ),
                )
            }
        };
        format!(
            "v=0\r\no=trunk 1 {v} IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP {pts}\r\n{maps}a=ptime:20\r\na=sendrecv\r\n",
            v = self.sdp_version
        )
    }

    fn start_media(&mut self) {
        let to = sdp_addr(&self.invite.body);
        self.media.start(to, self.script.media, self.script.codec);
    }

    fn contact_header(&self) -> (String, String) {
        ("Contact".into(), format!("<{}>", self.contact))
    }

    /// The INVITE transactions up to the final answer; true when a dialog is up.
    async fn setup(&mut self) -> bool {
        let mut nonce = self.script.challenge.as_ref().map(|c| {
            c.nonce
                .clone()
                .unwrap_or_else(|| format!("{:016x}", fastrand::u64(..)))
        });
        let (mut stale_done, mut again_done, mut min_se_done) = (false, false, false);
        let from_tag = from_tag(&self.invite);
        // Each turn answers one INVITE transaction; a script needs at most a few.
        for _ in 0..16 {
            if let (Some(ch), Some(n)) = (self.script.challenge.clone(), nonce.clone()) {
                let answer = header(&self.invite, ch.kind.answer_header()).map(str::to_string);
                if let Some(answer) = &answer {
                    let check = digest::verify(
                        ch.kind.answer_header(),
                        Some(answer),
                        &Expected {
                            username: &ch.username,
                            password: &ch.password,
                            realm: &ch.realm,
                            nonce: &n,
                            opaque: &ch.opaque,
                            alg: ch.alg,
                            method: "INVITE",
                            request_uri: request_uri(&self.invite),
                        },
                    );
                    let ok = check.ok;
                    self.note(|c| {
                        c.auth_ok = Some(ok);
                        c.auth.push(check);
                    });
                    if !ok {
                        self.respond_invite(403, &[], "").await;
                        self.wait_ack().await;
                        return false;
                    }
                }
                let rechallenge = match () {
                    _ if answer.is_none() => Some(false),
                    _ if ch.stale_once && !stale_done => {
                        stale_done = true;
                        Some(true)
                    }
                    _ if ch.again && !again_done => {
                        again_done = true;
                        Some(false)
                    }
                    _ => None,
                };
                if let Some(stale) = rechallenge {
                    if answer.is_some() {
                        let fresh = format!("{:016x}", fastrand::u64(..));
                        nonce = Some(fresh);
                    }
                    let value = challenge_value(
                        &ch.realm,
                        nonce.as_deref().unwrap_or_default(),
                        &ch.opaque,
                        ch.alg,
                        stale,
                    );
                    let extra = [(ch.kind.challenge_header().to_string(), value)];
                    self.respond_invite(ch.kind.status(), &extra, "").await;
                    if !self.next_invite(&from_tag).await {
                        return false;
                    }
                    continue;
                }
            }
            if let (Some(min), false) = (self.script.min_se, min_se_done) {
                min_se_done = true;
                let extra = [("Min-SE".to_string(), min.to_string())];
                self.respond_invite(422, &extra, "").await;
                if !self.next_invite(&from_tag).await {
                    return false;
                }
                continue;
            }
            return self.progress().await;
        }
        self.problem("more than 16 INVITE transactions before the answer".into());
        false
    }

    /// Waits for the next INVITE transaction (after a challenge or 422); false if none came.
    async fn next_invite(&mut self, first_from_tag: &str) -> bool {
        let before = self.invite_cseq();
        let until = Instant::now() + 64 * self.t1;
        loop {
            match self.pump(Some(until)).await {
                Event::Invite(m, peer) => {
                    let n = cseq(&m).map(|(n, _)| n).unwrap_or(0);
                    if n <= before {
                        self.problem(format!("INVITE retry CSeq {n} not above {before}"));
                    }
                    if from_tag(&m) != first_from_tag {
                        self.problem("INVITE retry changed the From tag".into());
                    }
                    self.take_invite(m, peer);
                    return true;
                }
                Event::Timeout | Event::Closed => return false,
                _ => continue,
            }
        }
    }

    /// Provisionals, then the final answer; true when a dialog is up.
    async fn progress(&mut self) -> bool {
        let steps = self.script.provisional.clone();
        for p in steps {
            if self.wait_step(p.after).await {
                return self.canceled().await;
            }
            let mut extra = Vec::new();
            if p.status > 100 {
                extra.push(self.contact_header());
            }
            let body = if p.sdp {
                self.sdp(AnswerSdp::Normal)
            } else {
                String::new()
            };
            self.respond_invite(p.status, &extra, &body).await;
            if p.sdp {
                self.start_media();
            }
        }
        match self.script.final_.clone() {
            Final::Ok { after, sdp } => {
                if self.wait_step(after).await {
                    return self.canceled().await;
                }
                self.answer(sdp).await;
                true
            }
            Final::Reject { status, after } => {
                if self.wait_step(after).await {
                    return self.canceled().await;
                }
                self.respond_invite(status, &[], "").await;
                self.wait_ack().await;
                false
            }
            Final::Redirect {
                status,
                contact,
                after,
            } => {
                if self.wait_step(after).await {
                    return self.canceled().await;
                }
                let extra = [("Contact".to_string(), format!("<{contact}>"))];
                self.respond_invite(status, &extra, "").await;
                self.wait_ack().await;
                false
            }
            Final::Never => {
                if self.wait_step(MAX_CALL).await {
                    return self.canceled().await;
                }
                false
            }
        }
    }

    /// Sends the 2xx (dialog up).
    async fn answer(&mut self, sdp: AnswerSdp) {
        let mut extra = vec![self.contact_header()];
        if let Some(t) = self.script.session_timer {
            extra.push((
                "Session-Expires".into(),
                format!("{};refresher={}", t.expires, t.refresher.token()),
            ));
            let h = if t.require { "Require" } else { "Supported" };
            extra.push((h.into(), "timer".into()));
        }
        let body = match sdp {
            AnswerSdp::None => String::new(),
            m => self.sdp(m),
        };
        let contact = self.contact.clone();
        self.note(|c| c.contact = contact);
        self.dialog = true;
        self.respond_invite(200, &extra, &body).await;
        if sdp == AnswerSdp::Normal {
            self.start_media();
        }
    }

    /// Waits `d` before the next step; true if the INVITE was CANCELed meanwhile.
    async fn wait_step(&mut self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            match self.pump(Some(until)).await {
                Event::Cancel => return true,
                Event::Timeout | Event::Closed => return false,
                Event::Invite(m, _) => {
                    self.problem(format!(
                        "new INVITE transaction while one is pending: {}",
                        m.start
                    ));
                }
                _ => continue,
            }
        }
    }

    /// After CANCEL: 487 (or, in the race script, the 200 OK anyway).
    async fn canceled(&mut self) -> bool {
        self.note(|c| c.canceled = true);
        if self.script.cancel_race {
            let sdp = match self.script.final_ {
                Final::Ok { sdp, .. } => sdp,
                _ => AnswerSdp::Normal,
            };
            self.answer(sdp).await;
            return true;
        }
        self.respond_invite(487, &[], "").await;
        self.wait_ack().await;
        false
    }

    /// Waits (bounded) until the last final response is ACKed or its retransmissions end.
    async fn wait_ack(&mut self) {
        let until = Instant::now() + 64 * self.t1;
        for _ in 0..MAX_MESSAGES {
            let acked = self
                .shared
                .lock()
                .calls
                .get(self.idx)
                .is_none_or(|c| c.acked);
            if acked || matches!(self.pump(Some(until)).await, Event::Timeout | Event::Closed) {
                return;
            }
        }
    }
}

fn from_tag(m: &Msg) -> String {
    header(m, "From")
        .and_then(|f| f.split(";tag=").nth(1))
        .and_then(|t| t.split(';').next())
        .unwrap_or_default()
        .to_string()
}

fn media_changed(new: &str, old: &str) -> bool {
    !new.is_empty() && sdp_addr(new) != sdp_addr(old)
}
