//! The call driver: one task per call that owns its sockets (RTP port, agent WebSocket, the
//! webhook request) and feeds the sans-IO [`core::call::Call`] machine — every decision is the
//! machine's. At the end it writes the call's record, on every path, so no call goes
//! unreported (a panicking task included: [`run_guarded`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tracing::Instrument;

#[path = "call_bridge.rs"]
mod bridge_glue;
#[path = "call_notice.rs"]
mod notice_glue;
#[path = "call_recording.rs"]
mod recording_glue;

use super::agent_ws::WsConn;
use super::call_setup;
use super::events::StatusEvents;
use super::record;
use super::{routing, webhook, Admitted, CallMsg, Ctx, EndpointMsg, GatewayEvent};
use crate::config::Config;
use crate::core::agent::WsIn;
use crate::core::call::bridge::BRIDGED;
use crate::core::call::leg::{LegId, CALLER};
use crate::core::call::{self, Call, CallId, Ended, Input, Notice, Output};
use crate::core::hooks::answer::WebhookAnswer;
use crate::core::hooks::WebhookFailure;
use crate::core::sip::endpoint::{
    CallCommand, CallEvent, CallKey, DialSpec, EndReason, IncomingCall,
};
use crate::io::agent_ws::{self, AgentStream, ConnectError};
use crate::io::rtp::PortLease;
use crate::io::rtp_recv::RtpReceiver;

/// Runs a call task; if it panics (a bug), the call is still ended towards the caller and a
/// record is still written (with the call's own id), so no call is left hanging or
/// unreported.
pub async fn run_guarded(
    key: CallKey,
    info: IncomingCall,
    admitted: Admitted,
    events: mpsc::UnboundedReceiver<CallMsg>,
    ctl: mpsc::Sender<EndpointMsg>,
    ctx: Arc<Ctx>,
) {
    use futures_util::FutureExt;
    let saved = (info.clone(), admitted.clone());
    let task = run(key, info, admitted, events, ctl.clone(), ctx.clone());
    if let Err(panic) = std::panic::AssertUnwindSafe(task).catch_unwind().await {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let (info, admitted) = saved;
        tracing::error!(panic = %what, call_id = %admitted.call_id, sip_call_id = %info.sip_call_id, "call task failed; ending the call");
        let _ = ctl
            .send(EndpointMsg::Command {
                call: key,
                cmd: CallCommand::Hangup,
            })
            .await;
        let record = record::failed_and_wait(&ctx, &info, &admitted).await;
        ctx.registry.ended(&admitted.call_id, record.call);
        // Its record is on disk: a journal entry of the call (if it was answered) must not
        // become a second record on the next start.
        ctx.journal.ended(admitted.call_id.as_str());
        ctx.stats.calls_ended.fetch_add(1, Ordering::Relaxed);
    }
}

pub async fn run(
    key: CallKey,
    info: IncomingCall,
    admitted: Admitted,
    events: mpsc::UnboundedReceiver<CallMsg>,
    ctl: mpsc::Sender<EndpointMsg>,
    ctx: Arc<Ctx>,
) {
    let call_id = admitted.call_id.to_string();
    let span = tracing::info_span!("call", call_id = %call_id);
    ctx.stats.calls_started.fetch_add(1, Ordering::Relaxed);
    ctx.emit(GatewayEvent::CallStarted {
        call_id: call_id.clone(),
        from: info.from_user.clone(),
        to: info.request_user.clone(),
    });
    let config = ctx.config();
    let number = routing::find_number_by_did(&config, admitted.dialled.as_deref());
    let callback_url = number
        .and_then(|n| n.callback_url.clone())
        .or_else(|| config.callbacks.url.clone());
    span.in_scope(|| {
        tracing::info!(
            from = info.from_user.as_deref().unwrap_or(""),
            to = info.request_user.as_deref().unwrap_or(""),
            did = info.did.as_deref().unwrap_or(""),
            crt = info.crt.as_deref().unwrap_or(""),
            source = %info.source,
            "incoming call"
        )
    });
    let now = Instant::now();
    let machine = Call::new(
        now,
        call_setup::setup(&config, &info, &admitted),
        call_setup::settings(
            &config,
            &info.local_host,
            super::call_srtp::inbound(&config, admitted.trunk.as_deref(), number, info.transport),
        ),
    );
    let status = StatusEvents::new(callback_url, config.callbacks.events);
    let mut driver = Driver::new(machine, status, key, ctl, ctx.clone(), events);
    driver.trunk = admitted.trunk.clone();
    let ended = driver.run().instrument(span.clone()).await;
    let (call_id, status) = driver.finish();
    conclude(&ctx, &call_id, status, ended, &span).await;
}

/// After the machine's end: the record (spool + CDR, on disk before the journal entry
/// goes), the registry, the logs and the metrics; then the transcript's task, if any.
pub(super) async fn conclude(
    ctx: &Arc<Ctx>,
    call_id: &CallId,
    mut status: StatusEvents,
    ended: Box<Ended>,
    span: &tracing::Span,
) {
    // The machine's final view is settled (talk, turns, the bill per `[billing]`).
    let mut view = ended.view.clone();
    super::call_transcript::decide(ctx, &status, &mut view);
    super::call_transcript::keep_job(ctx, &status, &view).await;
    let record = status.completed(ctx, view).await;
    ctx.registry.ended(call_id, record.call.clone());
    span.in_scope(|| {
        tracing::info!(
            end_reason = %ended.reason.as_str(),
            sip_status = ?ended.view.sip_status,
            duration_s = record.call.duration_s,
            rtp_in = ended.rtp_in,
            rtp_out = ended.rtp_out,
            rtp_lost = ended.rtp_lost,
            srtp_refused = ended.srtp_refused,
            "call ended"
        )
    });
    ctx.stats.calls_ended.fetch_add(1, Ordering::Relaxed);
    let setup =
        super::call_stats::setup_time(&record.call.started_at, record.call.answered_at.as_deref());
    ctx.stats.calls.ended(
        &ended.reason.as_str(),
        setup,
        (ended.rtp_in, ended.rtp_out, ended.rtp_lost),
        ended.srtp_refused,
    );
    // Off this task: the transcript (if the record says `pending`) comes after the record.
    super::call_transcript::spawn(ctx, status, &record.call, span);
    ctx.emit(GatewayEvent::CallEnded {
        call_id: call_id.to_string(),
        reason: ended
            .sip_end
            .unwrap_or(EndReason::Rejected(ended.view.sip_status.unwrap_or(0))),
        end_reason: ended.reason.as_str(),
        rtp_in: ended.rtp_in,
        rtp_out: ended.rtp_out,
        record: Box::new(record),
    });
}

type Pending<T> = Pin<Box<dyn Future<Output = T> + Send>>;

struct Rtp {
    _lease: PortLease,
    sock: UdpSocket,
    rx: RtpReceiver,
}

/// What an outbound call's INVITE needs beyond the machine's offer.
pub(super) struct Outgoing {
    /// The INVITE without its SDP (the machine's offer completes it).
    pub spec: Box<DialSpec>,
    /// The call's own inbox, for the endpoint to report the dialog's events to.
    pub inbox: mpsc::UnboundedSender<CallMsg>,
}

pub(super) struct Driver {
    pub(super) call: Call,
    /// The call's status events and journal entry.
    status: StatusEvents,
    key: CallKey,
    ctl: mpsc::Sender<EndpointMsg>,
    ctx: Arc<Ctx>,
    config: Arc<Config>,
    events: mpsc::UnboundedReceiver<CallMsg>,
    rtp: Option<Rtp>,
    ws: Option<WsConn>,
    connecting: Option<Pending<Result<AgentStream, ConnectError>>>,
    webhook: Option<Pending<Result<WebhookAnswer, WebhookFailure>>>,
    ended: Option<Box<Ended>>,
    /// Outbound calls: the INVITE to send once the machine offers.
    pub(super) outgoing: Option<Outgoing>,
    /// The call's trunk (its `transfer` settings).
    pub(super) trunk: Option<String>,
    /// A `notify` transfer's POST to the PBX.
    notifying: Option<Pending<Result<u16, String>>>,
    /// The call's recording, from its first chunk; and whether a chunk could not be kept.
    recording: Option<super::recording::Recording>,
    recording_lost: bool,
    /// The bridged leg's socket, dialog and inbox (a `bridge` transfer, click-to-call).
    bridge_rtp: Option<Rtp>,
    bridge_key: Option<CallKey>,
    bridge_events: Option<mpsc::UnboundedReceiver<CallMsg>>,
    /// The bridged leg's outbound admission (released with the call), unless it was admitted
    /// when the call was placed (click-to-call's client).
    bridge_ticket: Option<crate::core::policy::OutboundTicket>,
    pub(super) bridge_preadmitted: bool,
}

impl Driver {
    pub(super) fn new(
        call: Call,
        status: StatusEvents,
        key: CallKey,
        ctl: mpsc::Sender<EndpointMsg>,
        ctx: Arc<Ctx>,
        events: mpsc::UnboundedReceiver<CallMsg>,
    ) -> Driver {
        Driver {
            call,
            status,
            key,
            ctl,
            config: ctx.config(),
            ctx,
            events,
            rtp: None,
            ws: None,
            connecting: None,
            webhook: None,
            ended: None,
            outgoing: None,
            trunk: None,
            notifying: None,
            recording: None,
            recording_lost: false,
            bridge_rtp: None,
            bridge_key: None,
            bridge_events: None,
            bridge_ticket: None,
            bridge_preadmitted: false,
        }
    }

    /// The call is over: its sockets go now (the RTP port returns to the pool); what the
    /// record still needs is handed back (the driver itself need not live on in the task).
    pub(super) fn finish(self) -> (CallId, StatusEvents) {
        if let Some(ticket) = &self.bridge_ticket {
            super::outbound_admit::release(&self.ctx, ticket);
        }
        (self.call.id().clone(), self.status)
    }

    /// The machine offers: the INVITE goes to the endpoint task.
    async fn dial(&mut self, offer: Vec<u8>) {
        let Some(Outgoing { mut spec, inbox }) = self.outgoing.take() else {
            tracing::error!("the machine dialled twice, or an inbound call dialled");
            return;
        };
        spec.sdp = offer;
        if spec.flow.remote.port() == 0 {
            tracing::warn!("the trunk's address did not resolve");
            let _ = inbox.send(CallMsg::Sip(CallEvent::Ended(EndReason::Unreachable)));
            return;
        }
        let msg = EndpointMsg::Dial {
            call: self.key,
            spec,
            tx: inbox.clone(),
        };
        if self.ctl.send(msg).await.is_err() {
            let _ = inbox.send(CallMsg::Sip(CallEvent::Ended(EndReason::Unreachable)));
        }
    }
    pub(super) async fn run(&mut self) -> Box<Ended> {
        let far = || tokio::time::Instant::now() + Duration::from_secs(86_400);
        let sleep = tokio::time::sleep_until(far());
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        loop {
            self.drain().await;
            while let Some(chunk) = self.call.take_recording(false) {
                self.record(chunk);
            }
            if let Some(mut ended) = self.ended.take() {
                self.finish_recording(&mut ended).await;
                return ended;
            }
            let deadline = self.call.poll_timeout();
            if deadline != armed {
                armed = deadline;
                let at = deadline.map_or_else(far, tokio::time::Instant::from_std);
                sleep.as_mut().reset(at);
            }
            tokio::select! {
                r = recv_rtp(&mut self.rtp) => self.on_rtp(CALLER, r),
                r = recv_rtp(&mut self.bridge_rtp) => self.on_rtp(BRIDGED, r),
                m = bridge_glue::recv_bridge(&mut self.bridge_events) => self.on_bridge_msg(m),
                () = &mut sleep, if armed.is_some() => {
                    armed = None;
                    self.call.handle_timeout(Instant::now());
                    if let Some(ws) = &mut self.ws {
                        ws.flush();
                    }
                }
                msg = next_ws(&mut self.ws) => self.on_ws(msg),
                c = pending(&mut self.connecting) => self.on_connected(c),
                n = pending(&mut self.notifying) => {
                    self.notifying = None;
                    match &n {
                        Ok(status) => tracing::info!(status, "PBX notified of the transfer"),
                        Err(e) => tracing::warn!(error = %e, "PBX transfer notification failed"),
                    }
                    self.call.handle(Instant::now(), Input::NotifyResult(n));
                }
                a = pending(&mut self.webhook) => {
                    self.webhook = None;
                    match &a {
                        Err(e) => tracing::warn!(error = %e, "webhook failed"),
                        Ok(WebhookAnswer::Connect { callback_url, callback_events, .. })
                            if !self.call.is_answered() =>
                        {
                            // The answer may redirect this call's status events; the 180
                            // went out before it came, so call.ringing may be due now.
                            self.status.redirect(callback_url.clone(), *callback_events);
                            let view = self.call.view(Instant::now());
                            self.status.ringing(&self.ctx, &view);
                        }
                        Ok(_) => {}
                    }
                    self.call.handle(Instant::now(), Input::Webhook(a));
                }
                ev = self.events.recv() => {
                    let input = match ev {
                        Some(CallMsg::Sip(event)) => Input::Sip { leg: CALLER, event },
                        Some(CallMsg::Cut(why)) => {
                            tracing::info!(reason = ?why, "admission policy ends the call");
                            Input::Cut(why)
                        }
                        Some(CallMsg::Shutdown) => Input::Shutdown,
                        Some(CallMsg::Command(cmd)) => {
                            tracing::info!(command = ?cmd, "control API command");
                            Input::Command(cmd)
                        }
                        // The endpoint is gone: nothing more will come for this dialog.
                        None => Input::Sip {
                            leg: CALLER,
                            event: CallEvent::Ended(EndReason::LocalBye(0)),
                        },
                    };
                    self.call.handle(Instant::now(), input);
                }
            }
        }
    }

    /// Datagrams the leg's socket received, into the machine.
    fn on_rtp(&mut self, leg: LegId, r: std::io::Result<usize>) {
        let rtp = if leg == BRIDGED {
            &self.bridge_rtp
        } else {
            &self.rtp
        };
        let (Ok(n), Some(rtp)) = (r, rtp) else {
            return;
        };
        let now = Instant::now();
        for i in 0..n {
            if let Some((data, from)) = rtp.rx.datagram(i) {
                self.call.handle(now, Input::Rtp { leg, data, from });
            }
        }
    }

    fn on_ws(&mut self, msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) {
        let now = Instant::now();
        let leg = call::leg::ANSWERER;
        match msg {
            Some(Ok(Message::Text(t))) => self.call.handle(
                now,
                Input::AgentMessage {
                    leg,
                    msg: WsIn::Text(t.as_str()),
                },
            ),
            Some(Ok(Message::Binary(b))) => self.call.handle(
                now,
                Input::AgentMessage {
                    leg,
                    msg: WsIn::Binary(&b),
                },
            ),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            other => {
                match other {
                    Some(Err(e)) => tracing::info!(error = %e, "agent WebSocket failed"),
                    _ => tracing::info!("agent WebSocket closed"),
                }
                if let Some(mut ws) = self.ws.take() {
                    ws.mark_closed();
                    ws.close();
                }
                self.call.handle(now, Input::AgentClosed { leg });
            }
        }
    }

    fn on_connected(&mut self, c: Result<AgentStream, ConnectError>) {
        self.connecting = None;
        let leg = call::leg::ANSWERER;
        let now = Instant::now();
        match c {
            Ok(stream) => {
                self.ws = Some(WsConn::new(stream));
                self.call.handle(now, Input::AgentConnected { leg });
            }
            Err(e) => {
                tracing::warn!(error = %e, "agent connect failed");
                let error = e.to_string();
                self.call
                    .handle(now, Input::AgentConnectFailed { leg, error });
            }
        }
    }

    /// Carries out everything the machine asked for, packets first.
    async fn drain(&mut self) {
        loop {
            while let Some((leg, to, packet)) = self.call.poll_transmit() {
                let rtp = if leg == BRIDGED {
                    &self.bridge_rtp
                } else {
                    &self.rtp
                };
                if let Some(rtp) = rtp {
                    let _ = rtp.sock.send_to(packet, to).await;
                }
            }
            let Some(out) = self.call.poll_output() else {
                return;
            };
            match out {
                Output::Sip { leg, cmd } => {
                    let key = if leg == BRIDGED {
                        self.bridge_key
                    } else {
                        Some(self.key)
                    };
                    if let Some(call) = key {
                        let _ = self.ctl.send(EndpointMsg::Command { call, cmd }).await;
                    }
                }
                Output::AgentSend { msg, .. } => {
                    if let Some(ws) = &mut self.ws {
                        ws.send(msg, &self.ctx);
                    }
                }
                Output::LeasePort { leg } => {
                    let port = match self.ctx.ports.bind(self.config.rtp.bind).await {
                        Some((lease, sock)) => {
                            let port = lease.port();
                            let rtp = Rtp {
                                _lease: lease,
                                sock,
                                rx: RtpReceiver::new(),
                            };
                            self.set_rtp(leg, rtp);
                            Some(port)
                        }
                        None => {
                            tracing::warn!("RTP port pool exhausted");
                            None
                        }
                    };
                    self.call.handle(Instant::now(), Input::Port { leg, port });
                }
                Output::ConnectAgent { url, .. } => {
                    let tls = self.ctx.tls.clone();
                    let deadline = self.config.agent.connect_timeout;
                    self.connecting = Some(Box::pin(async move {
                        agent_ws::connect(&url, &[], tls, deadline).await
                    }));
                }
                Output::CloseAgent { .. } => {
                    self.connecting = None;
                    if let Some(ws) = self.ws.take() {
                        ws.close();
                    }
                }
                Output::AskWebhook(req) => {
                    let (ctx, config) = (self.ctx.clone(), self.config.clone());
                    // An outbound call asks its own URL (Twilio's `Url`), never the
                    // inbound webhook's.
                    let url = match &req.outbound_url {
                        Some(url) => Some(url.clone()),
                        None => config.webhook.url.clone(),
                    };
                    self.webhook = Some(Box::pin(async move {
                        match url {
                            Some(url) => webhook::ask(&ctx, &config, &url, &req).await,
                            None => Err(WebhookFailure::Transport("no webhook URL".into())),
                        }
                    }));
                }
                Output::Dial {
                    offer,
                    to: Some(to),
                    ..
                } => self.dial_bridge(offer, to).await,
                Output::Dial { offer, .. } => self.dial(offer).await,
                Output::NotifyPbx { to } => self.notify_pbx(to),
                Output::Notice(n) => self.on_notice(n),
                Output::Ended(e) => self.ended = Some(e),
            }
        }
    }

    /// A `notify` transfer: the trunk's template goes to the PBX.
    fn notify_pbx(&mut self, to: String) {
        let cfg = self
            .trunk
            .as_deref()
            .and_then(|name| self.config.trunks.iter().find(|t| t.name == name))
            .and_then(|t| t.transfer.clone());
        let (ctx, view) = (self.ctx.clone(), self.call.view(Instant::now()));
        self.notifying = Some(Box::pin(async move {
            match cfg {
                Some(cfg) => super::pbx_notify::send(&ctx, &cfg, &view, &to).await,
                None => Err("the call's trunk has no transfer settings".into()),
            }
        }));
    }
}

async fn recv_rtp(rtp: &mut Option<Rtp>) -> std::io::Result<usize> {
    match rtp {
        Some(r) => r.rx.recv(&r.sock).await,
        None => std::future::pending().await,
    }
}

async fn next_ws(
    ws: &mut Option<WsConn>,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match ws {
        Some(ws) => ws.next().await,
        None => std::future::pending().await,
    }
}

async fn pending<T>(fut: &mut Option<Pending<T>>) -> T {
    match fut {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}
