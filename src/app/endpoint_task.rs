//! The SIP endpoint task: feeds transport bytes and call commands into the sans-IO
//! [`Endpoint`], sends what it outputs, drives its timers, runs admission (flood guard on
//! every datagram, `admit` on every new INVITE) and spawns a call task per admitted call.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Ctx;
use crate::core::call::CallId;
use crate::core::policy::{Admission, CutReason, FloodGuard, Now, Policy, Ticket};
use crate::core::sip::endpoint::{
    CallCommand, CallEvent, CallKey, DialSpec, EndReason as SipEnd, Endpoint, Input, Output,
    Settings,
};
use crate::core::{ConnId, Flow, Transport};
use crate::io::TransportEvent;

mod admit;

#[derive(Debug)]
pub enum EndpointMsg {
    Command {
        call: CallKey,
        cmd: CallCommand,
    },
    /// New settings and policy; `done` fires once they are in force.
    Reload {
        settings: Box<Settings>,
        policy: Box<Policy>,
        done: tokio::sync::oneshot::Sender<()>,
    },
    /// An outbound call's INVITE (from its call task, which chose `call` among the
    /// [`crate::core::sip::endpoint::OUTBOUND_KEYS`]): the endpoint task picks the socket
    /// or connection for `spec.flow`'s transport and remote, and the call's events go to `tx`.
    Dial {
        call: CallKey,
        spec: Box<DialSpec>,
        tx: mpsc::UnboundedSender<CallMsg>,
    },
    /// Refuse new calls (503), end running ones after `grace`; `done` fires once draining.
    Drain {
        grace: Duration,
        done: tokio::sync::oneshot::Sender<()>,
    },
}

/// What a call task hears: SIP events, or the admission policy cutting the call.
#[derive(Debug)]
pub enum CallMsg {
    Sip(CallEvent),
    /// Admission ends the call: per-call duration cap or daily voice minutes used up.
    Cut(CutReason),
    /// The drain's grace is over: end the call now.
    Shutdown,
    /// From the control API (through the registry).
    Command(crate::core::call::Command),
}

/// What admission decided about a call, for its task: computed once, carried everywhere.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// Minted here, at admission.
    pub call_id: CallId,
    pub trunk: Option<String>,
    /// The caller's number and the dialled DID (E.164), as admission judged them.
    pub caller: Option<String>,
    pub dialled: Option<String>,
}

struct Running {
    tx: mpsc::UnboundedSender<CallMsg>,
    /// Inbound admission's ticket (outbound calls hold theirs in the control handle).
    ticket: Option<Ticket>,
}

pub struct EndpointTask {
    ep: Endpoint,
    udp: HashMap<SocketAddr, Arc<UdpSocket>>,
    conns: HashMap<ConnId, mpsc::Sender<Vec<u8>>>,
    calls: HashMap<CallKey, Running>,
    admission: Admission,
    flood: FloodGuard,
    /// Trunks that set their own `flood_per_source`, by trunk index (rebuilt on reload).
    trunk_floods: HashMap<usize, FloodGuard>,
    next_eviction: Instant,
    ctx: Arc<Ctx>,
    ctl: mpsc::Sender<EndpointMsg>,
    drain_deadline: Option<Instant>,
    /// For connections we open toward trunks (weak: the transport channel still closes when
    /// the listeners are gone).
    transport_tx: Option<mpsc::WeakSender<TransportEvent>>,
    /// Our TCP and TLS listening addresses (advertised in Via/Contact on connections we open).
    locals: super::trunks::StreamLocals,
    /// Trust for TLS toward trunks (`None`: the trust anchors could not be loaded).
    tls_client: Option<crate::io::sip_tls::ClientTls>,
    /// The connection in use toward each trunk address, per transport and (TLS) the name its
    /// certificate was checked for: a connection verified for one name is not reused for
    /// another.
    trunk_conns: HashMap<(Transport, SocketAddr, Option<String>), ConnId>,
    /// REGISTER toward trunks; offered the responses no transaction claims.
    trunks: super::trunks::Trunks,
    /// Client certificates TLS connections presented (by connection), and each trunk's rule.
    peers: HashMap<ConnId, crate::io::client_cert::PeerCerts>,
    certs: super::trunk_certs::TrunkCerts,
}

/// Idle flood-guard keys are forgotten this often.
const EVICT_EVERY: Duration = Duration::from_secs(60);

fn now() -> Now {
    Now {
        mono: Instant::now().into_std(),
        wall: jiff::Timestamp::now(),
    }
}

impl EndpointTask {
    pub fn new(
        settings: Settings,
        policy: Policy,
        udp: Vec<Arc<UdpSocket>>,
        ctx: Arc<Ctx>,
        ctl: mpsc::Sender<EndpointMsg>,
    ) -> Self {
        let trunks = super::trunks::Trunks::new(ctx.clone(), udp.clone());
        let udp = udp
            .into_iter()
            .filter_map(|s| s.local_addr().ok().map(|a| (a, s)))
            .collect();
        let flood = FloodGuard::new(global_flood(&policy), Instant::now().into_std());
        let certs = super::trunk_certs::TrunkCerts::load(&ctx.config());
        EndpointTask {
            ep: Endpoint::new(settings, fastrand::u64(..)),
            udp,
            conns: HashMap::new(),
            calls: HashMap::new(),
            admission: Admission::new(policy),
            flood,
            trunk_floods: HashMap::new(),
            next_eviction: Instant::now() + EVICT_EVERY,
            ctx,
            ctl,
            drain_deadline: None,
            transport_tx: None,
            locals: Default::default(),
            tls_client: None,
            trunk_conns: HashMap::new(),
            trunks,
            peers: HashMap::new(),
            certs,
        }
    }

    /// Lets the task open TCP connections toward trunks (outbound calls).
    pub fn with_outbound(
        mut self,
        transport: &mpsc::Sender<TransportEvent>,
        tcp_local: Option<SocketAddr>,
    ) -> Self {
        self.transport_tx = Some(transport.downgrade());
        self.locals.tcp = tcp_local;
        self.trunks.set_stream_locals(self.locals);
        self
    }

    /// Lets the task open TLS connections toward trunks, advertising `tls_local`.
    pub fn with_tls(
        mut self,
        client: Option<crate::io::sip_tls::ClientTls>,
        tls_local: Option<SocketAddr>,
    ) -> Self {
        self.tls_client = client;
        self.locals.tls = tls_local;
        self.trunks.set_stream_locals(self.locals);
        self
    }

    pub async fn run(
        mut self,
        mut ctl: mpsc::Receiver<EndpointMsg>,
        mut transport: mpsc::Receiver<TransportEvent>,
    ) {
        self.trunks
            .configure(&self.ctx.config(), Instant::now().into_std());
        loop {
            let timer = self.ep.poll_timeout().map(Instant::from_std);
            let cut_at = self.admission.next_deadline().map(Instant::from_std);
            let hangup_at = self.drain_deadline;
            tokio::select! {
                msg = ctl.recv() => match msg {
                    Some(msg) => self.on_ctl(msg),
                    None => return,
                },
                ev = transport.recv() => match ev {
                    Some(ev) => self.on_transport(ev),
                    None if self.drain_deadline.is_none() => return,
                    None => {}
                },
                _ = sleep_until(timer) => {
                    self.ep.handle_timeout(Instant::now().into_std());
                }
                _ = sleep_until(cut_at) => self.cut_calls(),
                wake = self.trunks.wait() => self.trunks.on_wake(wake, Instant::now().into_std()),
                _ = tokio::time::sleep_until(self.next_eviction) => {
                    let now = Instant::now().into_std();
                    self.flood.evict_idle(now);
                    self.trunk_floods.values_mut().for_each(|g| g.evict_idle(now));
                    self.hang_up_orphans(now);
                    self.next_eviction = Instant::now() + EVICT_EVERY;
                }
                _ = sleep_until(hangup_at) => {
                    self.drain_deadline = None;
                    for running in self.calls.values() {
                        let _ = running.tx.send(CallMsg::Shutdown);
                    }
                    for key in self.calls.keys().copied().collect::<Vec<_>>() {
                        self.ep.handle(Instant::now().into_std(), Input::Command { call: key, cmd: CallCommand::Hangup });
                    }
                }
            }
            self.send_trunk_streams().await;
            self.flush().await;
            if self.draining()
                && self.calls.is_empty()
                && self.ep.active_calls() == 0
                && self.trunks.is_idle()
            {
                return;
            }
        }
    }

    fn draining(&self) -> bool {
        self.drain_deadline.is_some() || self.ctx.draining.load(Ordering::Relaxed)
    }

    fn on_ctl(&mut self, msg: EndpointMsg) {
        let now = Instant::now().into_std();
        match msg {
            EndpointMsg::Command { call, cmd } => self.ep.handle(now, Input::Command { call, cmd }),
            EndpointMsg::Reload {
                settings,
                policy,
                done,
            } => {
                self.ep.set_settings(*settings);
                let flood = global_flood(&policy);
                if flood != self.flood.flood() {
                    self.flood.set_flood(flood, now);
                }
                self.admission.set_policy(*policy);
                self.trunk_floods.clear();
                self.trunks.configure(&self.ctx.config(), now);
                self.certs = super::trunk_certs::TrunkCerts::load(&self.ctx.config());
                let _ = done.send(());
            }
            EndpointMsg::Dial { call, mut spec, tx } => {
                let tls_name = spec.tls_name.clone();
                // A registered phone's flow (its REGISTER's socket or connection) is used as
                // it is; a phone's connection that has closed cannot be rung.
                let phone = match spec.flow.transport {
                    Transport::Udp => self.udp.contains_key(&spec.flow.local),
                    _ => spec.flow.conn.is_some(),
                };
                let flow = match phone {
                    true if spec.flow.conn.is_none_or(|c| self.conns.contains_key(&c)) => {
                        Some(spec.flow)
                    }
                    true => None,
                    false => self.outbound_flow(spec.flow.transport, spec.flow.remote, tls_name),
                };
                match flow {
                    Some(flow) => {
                        spec.flow = flow;
                        self.calls.insert(call, Running { tx, ticket: None });
                        self.ep.dial(now, call, *spec);
                    }
                    None => {
                        tracing::warn!(remote = %spec.flow.remote, transport = ?spec.flow.transport, "no socket toward the trunk");
                        let _ = tx.send(CallMsg::Sip(CallEvent::Ended(SipEnd::Unreachable)));
                    }
                }
            }
            EndpointMsg::Drain { grace, done } => {
                self.ctx.draining.store(true, Ordering::Relaxed);
                self.ep.set_draining(true);
                self.drain_deadline = Some(Instant::now() + grace);
                self.trunks.stop_all(now);
                let _ = done.send(());
            }
        }
    }

    /// The flow an INVITE toward `remote` goes on: a UDP socket of the same address family,
    /// or the TCP or TLS connection to it (opened now if there is none; over TLS the
    /// certificate must name `tls_name` when given).
    fn outbound_flow(
        &mut self,
        transport: Transport,
        remote: SocketAddr,
        tls_name: Option<String>,
    ) -> Option<Flow> {
        match transport {
            Transport::Udp => {
                let local = *self.udp.keys().find(|a| a.is_ipv4() == remote.is_ipv4())?;
                Some(Flow {
                    transport,
                    local,
                    remote,
                    conn: None,
                })
            }
            Transport::Tcp | Transport::Tls => {
                let local = self.locals.advertised(transport);
                let key = (transport, remote, tls_name);
                let conn = match self.trunk_conns.get(&key) {
                    Some(id) if self.conns.contains_key(id) => *id,
                    _ => {
                        let events = self.transport_tx.as_ref()?.upgrade()?;
                        let limits = self.ep.settings().limits.clone();
                        let (id, tx) = match transport {
                            Transport::Tls => {
                                let tls = self.tls_client.as_ref()?;
                                let (name, check) = match &key.2 {
                                    Some(n) => (n.as_str(), true),
                                    None => ("", false),
                                };
                                crate::io::sip_tls::dial(remote, name, check, tls, limits, events)
                            }
                            _ => crate::io::sip_tcp::dial(remote, limits, events),
                        };
                        self.conns.insert(id, tx);
                        self.trunk_conns.insert(key, id);
                        id
                    }
                };
                Some(Flow {
                    transport,
                    local,
                    remote,
                    conn: Some(conn),
                })
            }
        }
    }

    fn on_transport(&mut self, ev: TransportEvent) {
        match ev {
            TransportEvent::Received { flow, bytes } => {
                let now = Instant::now().into_std();
                let ip = flow.remote.ip();
                // A trunk's own limit replaces the global one for its sources.
                let allowed = match self.admission.policy().trunk_flood(ip) {
                    Some((i, flood)) if flood.burst > 0 => self
                        .trunk_floods
                        .entry(i)
                        .or_insert_with(|| FloodGuard::new(flood, now))
                        .check(ip, now),
                    Some(_) => true,
                    None => self.flood.check(ip, now),
                };
                if !allowed {
                    self.ctx.stats.flood_dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                self.ep.handle(now, Input::Received { flow, bytes });
            }
            TransportEvent::ConnOpened { id, tx, peer } => {
                self.conns.insert(id, tx);
                if let Some(peer) = peer {
                    self.peers.insert(id, peer);
                }
            }
            TransportEvent::ConnClosed { id } => {
                self.peers.remove(&id);
                if self.trunk_conns.values().any(|c| *c == id) {
                    self.trunk_conns.retain(|_, c| *c != id);
                    let now = Instant::now().into_std();
                    self.ep.handle(now, Input::ConnectionLost { conn: id });
                }
                self.conns.remove(&id);
            }
        }
    }

    async fn flush(&mut self) {
        while let Some(out) = self.ep.poll_output() {
            match out {
                Output::Transmit { flow, bytes } => self.transmit(flow, bytes).await,
                Output::Event { call, event } => self.on_call_event(call, event),
                Output::Malformed { flow, reason } => {
                    self.ctx.stats.malformed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(remote = %flow.remote, %reason, "malformed SIP message");
                }
                Output::Blocked { flow } => {
                    self.ctx
                        .stats
                        .blocked_user_agent
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(remote = %flow.remote, "request from a blocked user agent dropped");
                }
                Output::Register { flow, msg } => {
                    let now = Instant::now().into_std();
                    let reply = self.ctx.phones.register(now, flow, &msg);
                    tracing::debug!(remote = %flow.remote, status = reply.status, why = ?reply.why, "REGISTER");
                    self.ep
                        .answer_register(now, flow, &msg, reply.status, reply.headers);
                }
                Output::UnmatchedResponse { flow, msg } => {
                    if !self.trunks.on_response(Instant::now().into_std(), &msg) {
                        tracing::debug!(remote = %flow.remote, "response to no transaction dropped");
                    }
                }
            }
        }
        while let Some(alert) = self.admission.poll_alert() {
            super::alerts::send(&self.ctx, alert);
        }
    }

    /// REGISTERs toward TCP/TLS trunks go on the connection toward the trunk (opened when
    /// there is none, shared with calls); what cannot be sent is the transaction's timeout.
    async fn send_trunk_streams(&mut self) {
        for s in self.trunks.take_stream_sends() {
            match self.outbound_flow(s.transport, s.remote, s.tls_name) {
                Some(flow) => self.transmit(flow, s.bytes).await,
                None => {
                    tracing::debug!(remote = %s.remote, "no connection toward the trunk for REGISTER")
                }
            }
        }
    }

    async fn transmit(&mut self, flow: Flow, bytes: Vec<u8>) {
        match flow.transport {
            Transport::Udp => {
                if let Some(sock) = self.udp.get(&flow.local) {
                    if let Err(e) = sock.send_to(&bytes, flow.remote).await {
                        tracing::debug!(remote = %flow.remote, error = %e, "udp send failed");
                    }
                }
            }
            Transport::Tcp | Transport::Tls => {
                let sent = match flow.conn.and_then(|c| self.conns.get(&c)) {
                    Some(tx) => tx.try_send(bytes).is_ok(),
                    None => false,
                };
                if !sent {
                    tracing::debug!(remote = %flow.remote, "stream connection gone; message dropped");
                }
            }
        }
    }

    /// Dialogs whose call task is gone (it failed: [`super::call::run_guarded`] ends the
    /// caller's leg, but a bridged leg's key died with the task) are hung up here.
    fn hang_up_orphans(&mut self, now: std::time::Instant) {
        let orphans: Vec<CallKey> = self
            .calls
            .iter()
            .filter(|(_, r)| r.tx.is_closed())
            .map(|(k, _)| *k)
            .collect();
        for call in orphans {
            tracing::warn!(?call, "a dialog outlived its call task; hanging it up");
            let cmd = CallCommand::Hangup;
            self.ep.handle(now, Input::Command { call, cmd });
        }
    }

    fn on_call_event(&mut self, call: CallKey, event: CallEvent) {
        match event {
            CallEvent::Incoming(info) => self.on_incoming(call, *info),
            CallEvent::Ended(reason) => {
                if let Some(running) = self.calls.remove(&call) {
                    if let Some(ticket) = &running.ticket {
                        self.admission.call_ended(ticket, &now());
                    }
                    let _ = running.tx.send(CallMsg::Sip(CallEvent::Ended(reason)));
                }
            }
            other => {
                if let Some(running) = self.calls.get(&call) {
                    let _ = running.tx.send(CallMsg::Sip(other));
                }
            }
        }
    }

    /// Calls that reached a duration or daily-minutes cap are told to hang up.
    fn cut_calls(&mut self) {
        for (id, why) in self.admission.calls_to_cut_why(&now()) {
            let mine = |r: &&Running| r.ticket.as_ref().is_some_and(|t| t.id() == id);
            if let Some(running) = self.calls.values().find(mine) {
                let _ = running.tx.send(CallMsg::Cut(why));
            }
        }
    }
}

fn global_flood(policy: &Policy) -> crate::core::policy::Flood {
    policy
        .global()
        .flood_per_source
        .unwrap_or(crate::core::policy::Flood {
            burst: 0,
            per_second: 0,
        })
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
