//! The SIP endpoint task: feeds transport bytes and call commands into the sans-IO
//! [`Endpoint`], sends what it outputs, drives its timers, and spawns a call task per INVITE.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Ctx;
use crate::core::sip::endpoint::{
    CallCommand, CallEvent, CallKey, Endpoint, Input, Output, Settings,
};
use crate::core::{ConnId, Flow, Transport};
use crate::io::TransportEvent;

#[derive(Debug)]
pub enum EndpointMsg {
    Command { call: CallKey, cmd: CallCommand },
    Reload(Box<Settings>),
    Drain { grace: Duration },
}

pub struct EndpointTask {
    ep: Endpoint,
    udp: HashMap<SocketAddr, Arc<UdpSocket>>,
    conns: HashMap<ConnId, mpsc::Sender<Vec<u8>>>,
    calls: HashMap<CallKey, mpsc::UnboundedSender<CallEvent>>,
    ctx: Arc<Ctx>,
    ctl: mpsc::Sender<EndpointMsg>,
    drain_deadline: Option<Instant>,
}

impl EndpointTask {
    pub fn new(
        settings: Settings,
        udp: Vec<Arc<UdpSocket>>,
        ctx: Arc<Ctx>,
        ctl: mpsc::Sender<EndpointMsg>,
    ) -> Self {
        let udp = udp
            .into_iter()
            .filter_map(|s| s.local_addr().ok().map(|a| (a, s)))
            .collect();
        EndpointTask {
            ep: Endpoint::new(settings, fastrand::u64(..)),
            udp,
            conns: HashMap::new(),
            calls: HashMap::new(),
            ctx,
            ctl,
            drain_deadline: None,
        }
    }

    pub async fn run(
        mut self,
        mut ctl: mpsc::Receiver<EndpointMsg>,
        mut transport: mpsc::Receiver<TransportEvent>,
    ) {
        loop {
            let timer = self.ep.poll_timeout().map(Instant::from_std);
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
                _ = sleep_until(hangup_at) => {
                    self.drain_deadline = None;
                    for key in self.calls.keys().copied().collect::<Vec<_>>() {
                        self.ep.handle(Instant::now().into_std(), Input::Command { call: key, cmd: CallCommand::Hangup });
                    }
                }
            }
            self.flush().await;
            if self.draining() && self.calls.is_empty() && self.ep.active_calls() == 0 {
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
            EndpointMsg::Reload(settings) => self.ep.set_settings(*settings),
            EndpointMsg::Drain { grace } => {
                self.ctx.draining.store(true, Ordering::Relaxed);
                self.drain_deadline = Some(Instant::now() + grace);
            }
        }
    }

    fn on_transport(&mut self, ev: TransportEvent) {
        match ev {
            TransportEvent::Received { flow, bytes } => {
                self.ep
                    .handle(Instant::now().into_std(), Input::Received { flow, bytes });
            }
            TransportEvent::ConnOpened { id, tx } => {
                self.conns.insert(id, tx);
            }
            TransportEvent::ConnClosed { id } => {
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

    fn on_call_event(&mut self, call: CallKey, event: CallEvent) {
        let now = Instant::now().into_std();
        match event {
            CallEvent::Incoming(info) => {
                if self.draining() {
                    let cmd = CallCommand::Reject {
                        status: 503,
                        reason: Some("Shutting Down".into()),
                        headers: vec![("Retry-After".into(), "30".into())],
                    };
                    self.ep.handle(now, Input::Command { call, cmd });
                    return;
                }
                let (tx, rx) = mpsc::unbounded_channel();
                self.calls.insert(call, tx);
                tokio::spawn(super::call::run(
                    call,
                    *info,
                    rx,
                    self.ctl.clone(),
                    self.ctx.clone(),
                ));
            }
            CallEvent::Ended(reason) => {
                if let Some(tx) = self.calls.remove(&call) {
                    let _ = tx.send(CallEvent::Ended(reason));
                }
            }
            other => {
                if let Some(tx) = self.calls.get(&call) {
                    let _ = tx.send(other);
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
