//! The scripted trunk's side of an established call: in-dialog requests (BYE both ways,
//! refreshes by re-INVITE/UPDATE), its retransmissions and the background pump.

use super::*;

impl CallTask {
    /// The dialog: until either side's BYE (or the call's life ends).
    pub(super) async fn in_dialog(&mut self) {
        let mut until = self.script.bye_after.map(|d| Instant::now() + d);
        let mut bye_sent: Option<u32> = None;
        loop {
            match self.pump(until).await {
                Event::Bye | Event::Closed => return,
                // Our BYE was never answered.
                Event::Timeout if bye_sent.is_some() => return,
                Event::Timeout | Event::Cmd(Cmd::Bye) if bye_sent.is_none() => {
                    bye_sent = Some(self.send_bye().await);
                    until = Some(Instant::now() + 64 * self.t1);
                }
                Event::Response(m) => {
                    let (n, method) = cseq(&m).unwrap_or((0, String::new()));
                    let status = m.status().unwrap_or(0);
                    if method == "BYE" && Some(n) == bye_sent && status >= 200 {
                        self.note(|c| c.bye_status = Some(status));
                        return;
                    }
                }
                Event::Invite(m, _) => {
                    self.problem(format!(
                        "INVITE without To tag inside the dialog: {}",
                        m.start
                    ));
                }
                _ => {}
            }
        }
    }

    /// Sends BYE in the dialog; returns its CSeq number.
    pub(super) async fn send_bye(&mut self) -> u32 {
        self.local_cseq += 1;
        let n = self.local_cseq;
        let target = header(&self.invite, "Contact")
            .map(uri_of)
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| header(&self.invite, "From").map(uri_of).unwrap_or_default())
            .to_string();
        let to = header(&self.invite, "To").unwrap_or_default();
        let from = if to.contains(";tag=") {
            to.to_string()
        } else {
            format!("{to};tag={}", self.to_tag)
        };
        let mut text = format!(
            "BYE {target} SIP/2.0\r\nVia: SIP/2.0/{} {};branch=z9hG4bKtb{:08x};rport\r\nMax-Forwards: 70\r\n",
            self.wire.transport.via(),
            self.wire.local,
            fastrand::u32(..)
        );
        for r in headers(&self.invite, "Record-Route") {
            text.push_str(&format!("Route: {r}\r\n"));
        }
        text.push_str(&format!(
            "From: {from}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {n} BYE\r\nUser-Agent: scripted-trunk\r\nContent-Length: 0\r\n\r\n",
            header(&self.invite, "From").unwrap_or_default(),
            header(&self.invite, "Call-ID").unwrap_or_default(),
        ));
        // UDP: to the gateway's Contact when it is a loopback address, else where the INVITE
        // came from; TCP: on the INVITE's connection.
        let peer = match self.peer {
            Peer::Udp(src) => Peer::Udp(
                uri_addr(&target)
                    .filter(|a| a.ip().is_loopback())
                    .unwrap_or(src),
            ),
            tcp => tcp,
        };
        self.wire.send(peer, text.as_bytes()).await;
        self.note(|c| c.bye_from = Some(Side::Trunk));
        if self.wire.transport == Transport::Udp {
            self.retx.push(Retx {
                cseq: n,
                request: true,
                bytes: text.into_bytes(),
                peer,
                next: Instant::now() + self.t1,
                interval: self.t1,
                give_up: Instant::now() + 64 * self.t1,
                is_2xx: false,
            });
        }
        n
    }

    /// Handles messages and timers until `until` (Timeout) or a message the script needs.
    pub(super) async fn pump(&mut self, until: Option<Instant>) -> Event {
        loop {
            if self.messages >= MAX_MESSAGES {
                return Event::Closed;
            }
            let next_retx = self.retx.iter().map(|r| r.next.min(r.give_up)).min();
            let wake = [until, next_retx, Some(self.life_end)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(self.life_end);
            tokio::select! {
                m = self.rx.recv() => {
                    let Some(inc) = m else { return Event::Closed };
                    self.messages += 1;
                    if let Some(ev) = self.background(inc).await {
                        return ev;
                    }
                }
                Some(c) = self.cmds.recv() => return Event::Cmd(c),
                _ = sleep_until(wake) => {
                    let now = Instant::now();
                    self.run_retx(now).await;
                    if now >= self.life_end {
                        return Event::Closed;
                    }
                    if until.is_some_and(|u| now >= u) {
                        return Event::Timeout;
                    }
                }
            }
        }
    }

    pub(super) async fn run_retx(&mut self, now: Instant) {
        let mut timed_out_2xx = false;
        let mut i = 0;
        while i < self.retx.len() {
            let r = &mut self.retx[i];
            if now >= r.give_up {
                timed_out_2xx |= r.is_2xx;
                self.retx.remove(i);
                continue;
            }
            if now >= r.next {
                let (peer, bytes) = (r.peer, r.bytes.clone());
                r.interval = (r.interval * 2).min(T2);
                r.next = now + r.interval;
                let is_2xx = r.is_2xx;
                self.wire.send(peer, &bytes).await;
                if is_2xx {
                    self.note(|c| c.ok_sent += 1);
                }
            }
            i += 1;
        }
        if timed_out_2xx {
            self.note(|c| c.ack_timeout = true);
        }
    }

    /// Everything the script does not wait for; Some when it does.
    pub(super) async fn background(&mut self, inc: Incoming) -> Option<Event> {
        let Incoming { msg, peer } = inc;
        let (n, cseq_method) = cseq(&msg).unwrap_or((0, String::new()));
        let Some(method) = msg.method().map(str::to_ascii_uppercase) else {
            // A response: stop retransmitting what it answers.
            self.retx.retain(|r| !(r.request && r.cseq == n));
            return (cseq_method == "BYE" || cseq_method == "UPDATE")
                .then_some(Event::Response(msg));
        };
        let in_dialog = msg.to_tag().is_some();
        match method.as_str() {
            "INVITE" if !in_dialog || !self.dialog => {
                if let Some((_, last)) = self.answered.iter().find(|(c, _)| *c == n) {
                    // A retransmission: the last answer again.
                    let last = last.clone();
                    self.wire.send(peer, &last).await;
                    return None;
                }
                if n == self.invite_cseq() {
                    return None; // retransmitted before any answer
                }
                Some(Event::Invite(msg, peer))
            }
            "INVITE" | "UPDATE" => {
                self.refresh(msg, peer, &method, n).await;
                None
            }
            "ACK" => {
                self.on_ack(&msg, peer, n);
                Some(Event::Ack)
            }
            "CANCEL" => {
                let r = response(&msg, 200, &self.to_tag, &[], "");
                self.wire.send(peer, r.as_bytes()).await;
                (n == self.invite_cseq() && !self.final_sent).then_some(Event::Cancel)
            }
            "BYE" => {
                let status = if self.dialog { 200 } else { 481 };
                let r = response(&msg, status, "", &[], "");
                self.wire.send(peer, r.as_bytes()).await;
                if !self.dialog {
                    return None;
                }
                self.note(|c| {
                    if c.bye_from.is_none() {
                        c.bye_from = Some(Side::Gateway);
                    }
                });
                self.retx.retain(|r| r.request);
                Some(Event::Bye)
            }
            _ => {
                let status = if in_dialog && self.dialog { 200 } else { 481 };
                let r = response(&msg, status, "", &[], "");
                self.wire.send(peer, r.as_bytes()).await;
                None
            }
        }
    }

    pub(super) fn on_ack(&mut self, msg: &Msg, peer: Peer, n: u32) {
        let is_2xx = self
            .retx
            .iter()
            .any(|r| r.cseq == n && !r.request && r.is_2xx)
            || (self.dialog && n == self.invite_cseq());
        self.retx.retain(|r| r.cseq != n || r.request);
        let mut problems = Vec::new();
        if n != self.invite_cseq() && !self.answered.iter().any(|(c, _)| *c == n) {
            problems.push(format!("ACK CSeq {n} matches no INVITE"));
        }
        if cseq(msg).is_some_and(|(_, m)| m != "ACK") {
            problems.push("ACK CSeq method is not ACK".into());
        }
        let uri = request_uri(msg).to_string();
        if is_2xx && n == self.invite_cseq() {
            if uri != self.contact {
                problems.push(format!(
                    "ACK Request-URI {uri} is not the 2xx Contact {}",
                    self.contact
                ));
            }
            // Late offer: the answer is in the ACK.
            if !self.media.started() && !msg.body.is_empty() {
                let to = sdp_addr(&msg.body);
                self.media.start(to, self.script.media, self.script.codec);
            }
        }
        let rec = super::super::Recorded {
            method: "ACK".into(),
            uri,
            status: None,
            msg: msg.clone(),
            peer,
            at: Instant::now(),
            call: Some(self.idx),
        };
        let current = n == self.invite_cseq();
        self.note(|c| {
            if current {
                c.acked = true;
                if is_2xx {
                    c.ack = Some(rec);
                }
            }
            c.problems.extend(problems);
        });
    }

    /// A re-INVITE or UPDATE in the dialog: a session refresh.
    pub(super) async fn refresh(&mut self, msg: Msg, peer: Peer, method: &str, n: u32) {
        let fresh = !self.shared.lock().calls.get(self.idx).is_some_and(|c| {
            c.refreshes
                .iter()
                .any(|r| r.cseq == n && r.method == method)
        });
        if !fresh {
            if let Some((_, last)) = self.answered.iter().find(|(c, _)| *c == n) {
                let last = last.clone();
                self.wire.send(peer, &last).await;
            }
            return;
        }
        let answer = match self.script.refreshes {
            Refreshes::Answer => true,
            Refreshes::Ignore => false,
            Refreshes::AnswerFirst(k) => self.refreshes_answered < k,
        };
        let se = header(&msg, "Session-Expires").map(str::to_string);
        let rec = Refresh {
            method: method.to_string(),
            cseq: n,
            at: Instant::now(),
            session_expires: se.clone(),
            has_sdp: !msg.body.is_empty(),
            answered: answer,
        };
        self.note(|c| c.refreshes.push(rec));
        if !answer {
            return;
        }
        self.refreshes_answered += 1;
        let mut extra = vec![self.contact_header()];
        let se = se.or_else(|| {
            self.script
                .session_timer
                .map(|t| format!("{};refresher={}", t.expires, t.refresher.token()))
        });
        if let Some(se) = se {
            let se = if se.contains("refresher=") {
                se
            } else {
                format!("{se};refresher=uac")
            };
            extra.push(("Session-Expires".into(), se));
            extra.push(("Require".into(), "timer".into()));
        }
        let body = if method == "INVITE" || !msg.body.is_empty() {
            self.sdp_version += 1;
            self.sdp(AnswerSdp::Normal)
        } else {
            String::new()
        };
        let text = response(&msg, 200, "", &extra, &body);
        self.wire.send(peer, text.as_bytes()).await;
        self.answered.push((n, text.clone().into_bytes()));
        if method == "INVITE" && self.wire.transport == Transport::Udp {
            self.retx.push(Retx {
                cseq: n,
                request: false,
                bytes: text.into_bytes(),
                peer,
                next: Instant::now() + self.t1,
                interval: self.t1,
                give_up: Instant::now() + 64 * self.t1,
                is_2xx: false,
            });
        }
        if media_changed(&msg.body, &self.invite.body) {
            self.problem("a refresh changed the gateway's media address".into());
        }
    }
}
