//! The SIP endpoint (UAS and UAC of RFC 3261 §8, §12-15), sans-IO.
//!
//! Owns the server and client transactions, the dialogs of answered calls with their session
//! timers (RFC 4028, `refresh`) and transfers by REFER (RFC 3515, `refer`), and the rules for
//! what a user agent answers to requests that are not calls (OPTIONS, unknown methods, stray
//! BYEs). Calls are driven from outside: the endpoint reports [`CallEvent`]s and takes
//! [`CallCommand`]s, so the per-call logic (media, agent, policy) lives elsewhere.
//!
//! Contract: `handle(now, Input)`, then drain `poll_output()`; `poll_timeout()` says when to
//! call `handle_timeout(now)`. Every call gets exactly one [`CallEvent::Ended`], last.
//!
//! Must not: read the clock, touch sockets, decide admission or media.

mod checks;
mod commands;
mod dialog;
mod refer;
mod refresh;
mod requests;
mod responses;
mod timers;
mod types;
mod uac;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_refer;
#[cfg(test)]
mod tests_session;
#[cfg(test)]
mod tests_uac;
#[cfg(test)]
mod tests_uac_auth;
#[cfg(test)]
mod tests_uac_flows;

pub use responses::uri_host;
pub use types::*;

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use super::message::{Limits, Message};
use super::txn::{ClientNonInvite, ServerInvite, ServerNonInvite, TxnOut};
use crate::core::Flow;
use dialog::SipCall;
use timers::{TimerQueue, TimerRef};
use uac::{Dialing, InviteTxn};

/// Methods this endpoint implements (the Allow header).
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE";

#[derive(Debug)]
enum ServerTxnKind {
    Invite(ServerInvite),
    NonInvite(ServerNonInvite),
}

#[derive(Debug)]
struct ServerTxn {
    kind: ServerTxnKind,
    flow: Flow,
}

#[derive(Debug)]
struct ClientTxn {
    txn: ClientNonInvite,
    call: Option<CallKey>,
    flow: Flow,
}

/// The SIP user agent core of the gateway.
pub struct Endpoint {
    settings: Settings,
    rng: fastrand::Rng,
    next_call: u64,
    server_txns: HashMap<String, ServerTxn>,
    client_txns: HashMap<String, ClientTxn>,
    /// Our INVITEs' transactions, by branch.
    client_invites: HashMap<String, InviteTxn>,
    /// UAC calls not yet answered: what their INVITE is built from.
    dialing: HashMap<CallKey, Dialing>,
    calls: HashMap<CallKey, SipCall>,
    dialogs: HashMap<(String, String), CallKey>,
    invite_txn_calls: HashMap<String, CallKey>,
    timers: TimerQueue,
    out: VecDeque<Output>,
    scratch: Vec<TxnOut>,
    /// Out-of-dialog OPTIONS get 503 (a dispatcher probing us takes us out of rotation).
    draining: bool,
}

impl Endpoint {
    pub fn new(settings: Settings, seed: u64) -> Self {
        Endpoint {
            settings,
            rng: fastrand::Rng::with_seed(seed),
            next_call: 1,
            server_txns: HashMap::new(),
            client_txns: HashMap::new(),
            client_invites: HashMap::new(),
            dialing: HashMap::new(),
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            invite_txn_calls: HashMap::new(),
            timers: TimerQueue::default(),
            out: VecDeque::new(),
            scratch: Vec::new(),
            draining: false,
        }
    }

    /// Draining: out-of-dialog OPTIONS are answered 503 with Retry-After, so a load balancer
    /// that probes with OPTIONS (Kamailio's dispatcher) stops sending new calls before the
    /// running ones end. In-dialog OPTIONS are still answered 200.
    pub fn set_draining(&mut self, on: bool) {
        self.draining = on;
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Replaces the settings that may change on reload (user agent, public address, limits).
    pub fn set_settings(&mut self, settings: Settings) {
        self.settings = settings;
    }

    /// Number of calls the endpoint tracks (ringing or answered).
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Number of live transactions (for tests and metrics).
    pub fn transactions(&self) -> usize {
        self.server_txns.len() + self.client_txns.len() + self.client_invites.len()
    }

    pub fn handle(&mut self, now: Instant, input: Input) {
        match input {
            Input::Received { flow, bytes } => self.on_bytes(now, flow, bytes),
            Input::Command { call, cmd } => self.on_command(now, call, cmd),
            Input::ConnectionLost { conn } => self.on_connection_lost(now, conn),
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                TimerRef::Server(key) => self.server_timeout(now, key),
                TimerRef::Client(key) => self.client_timeout(now, key),
                TimerRef::Invite(key) => self.invite_timeout(now, key),
                TimerRef::CancelGuard(call) => self.cancel_guard(call),
                TimerRef::Session(call, gen) => self.session_timeout(now, call, gen),
            }
        }
    }

    fn limits(&self) -> &Limits {
        &self.settings.limits
    }

    fn on_bytes(&mut self, now: Instant, flow: Flow, bytes: Vec<u8>) {
        let msg = match Message::parse_owned(bytes, self.limits()) {
            Ok(msg) => msg,
            Err(err) => {
                if let Some(resp) = err.response(&self.settings.user_agent) {
                    let to = responses::reply_flow_raw(&flow);
                    self.out.push_back(Output::Transmit {
                        flow: to,
                        bytes: resp,
                    });
                }
                self.out.push_back(Output::Malformed {
                    flow,
                    reason: err.reason().to_string(),
                });
                return;
            }
        };
        if msg.is_request() {
            self.on_request(now, flow, msg);
        } else {
            self.on_response(now, flow, msg);
        }
    }

    fn alloc_call_key(&mut self) -> CallKey {
        let key = CallKey(self.next_call);
        self.next_call += 1;
        key
    }

    fn random_token(&mut self) -> String {
        format!("{:016x}", self.rng.u64(..))
    }

    fn emit(&mut self, call: CallKey, event: CallEvent) {
        self.out.push_back(Output::Event { call, event });
    }

    fn transmit(&mut self, flow: Flow, bytes: Vec<u8>) {
        self.out.push_back(Output::Transmit { flow, bytes });
    }

    /// Carries out what a transaction asked for, then schedules its next timer.
    fn drain_txn_out(&mut self, flow: Flow) -> (bool, bool) {
        let mut terminated = false;
        let mut no_ack_or_timeout = false;
        let outs = std::mem::take(&mut self.scratch);
        for o in &outs {
            match o {
                TxnOut::Send(bytes) => self.transmit(flow, bytes.clone()),
                TxnOut::Terminated => terminated = true,
                TxnOut::NoAck | TxnOut::Timeout | TxnOut::TransportError => {
                    no_ack_or_timeout = true
                }
            }
        }
        self.scratch = outs;
        self.scratch.clear();
        (terminated, no_ack_or_timeout)
    }

    fn schedule_server(&mut self, key: &str) {
        if let Some(t) = self.server_txns.get(key) {
            let next = match &t.kind {
                ServerTxnKind::Invite(i) => i.next_timeout(),
                ServerTxnKind::NonInvite(n) => n.next_timeout(),
            };
            if let Some(at) = next {
                self.timers.push(at, TimerRef::Server(key.to_string()));
            }
        }
    }

    /// Starts a client non-INVITE transaction (BYE, CANCEL, UPDATE) under `key` on `flow`;
    /// its final response goes to `call`'s owner logic when there is one.
    fn start_client(
        &mut self,
        now: Instant,
        key: String,
        bytes: Vec<u8>,
        flow: Flow,
        call: Option<CallKey>,
    ) {
        let mut outs = std::mem::take(&mut self.scratch);
        let reliable = flow.transport.is_reliable();
        let txn = ClientNonInvite::start(now, bytes, reliable, self.settings.timers, &mut outs);
        self.scratch = outs;
        self.drain_txn_out(flow);
        self.client_txns
            .insert(key.clone(), ClientTxn { txn, call, flow });
        self.schedule_client(&key);
    }

    fn schedule_client(&mut self, key: &str) {
        if let Some(at) = self.client_txns.get(key).and_then(|t| t.txn.next_timeout()) {
            self.timers.push(at, TimerRef::Client(key.to_string()));
        }
    }

    /// The final response (or 408 for none) to a client non-INVITE transaction of a call:
    /// our refresh, our REFER, or anything else (a BYE).
    fn on_call_txn_final(
        &mut self,
        now: Instant,
        call: CallKey,
        key: &str,
        status: u16,
        msg: Option<&Message>,
    ) {
        if self.is_refresh_txn(call, key) {
            self.on_refresh_final(now, call, status, msg);
        } else if self.is_refer_txn(call, key) {
            self.on_refer_final(call, status);
        } else {
            self.on_client_final(call, status);
        }
    }

    fn server_timeout(&mut self, now: Instant, key: String) {
        let Some(txn) = self.server_txns.get_mut(&key) else {
            return;
        };
        let flow = txn.flow;
        let mut outs = std::mem::take(&mut self.scratch);
        match &mut txn.kind {
            ServerTxnKind::Invite(i) => {
                if i.next_timeout().is_some_and(|t| t <= now) {
                    i.on_timeout(now, &mut outs);
                }
            }
            ServerTxnKind::NonInvite(n) => {
                if n.next_timeout().is_some_and(|t| t <= now) {
                    n.on_timeout(now, &mut outs);
                }
            }
        }
        self.scratch = outs;
        let (terminated, no_ack) = self.drain_txn_out(flow);
        if no_ack {
            if let Some(call) = self.invite_txn_calls.get(&key).copied() {
                self.on_no_ack(now, call);
            }
        }
        if terminated {
            self.server_txns.remove(&key);
            self.invite_txn_calls.remove(&key);
        } else {
            self.schedule_server(&key);
        }
    }

    fn client_timeout(&mut self, now: Instant, key: String) {
        let Some(entry) = self.client_txns.get_mut(&key) else {
            return;
        };
        let mut outs = std::mem::take(&mut self.scratch);
        if entry.txn.next_timeout().is_some_and(|t| t <= now) {
            entry.txn.on_timeout(now, &mut outs);
        }
        let (call, flow) = (entry.call, entry.flow);
        self.scratch = outs;
        let (terminated, timeout) = self.drain_txn_out(flow);
        if let (true, Some(call)) = (timeout, call) {
            self.on_call_txn_final(now, call, &key, 408, None);
        }
        if terminated {
            self.client_txns.remove(&key);
        } else {
            self.schedule_client(&key);
        }
    }
}
