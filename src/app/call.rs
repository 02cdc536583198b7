//! One task per call: routing (static number or inbound webhook while the caller hears
//! ringing), SDP negotiation, the RTP port, the agent connection (before answering), the media
//! loop, and the call record at the end — on every path, so no call goes unreported.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::agent_ws::{WsAgent, WsTarget};
use super::media::{Agent, MediaOutcome, MediaSession, MediaSetup};
use super::record::{self, CallSummary};
use super::{routing, webhook, Admitted, CallMsg, Ctx, EndpointMsg, GatewayEvent};
use crate::config::{AgentConfig, Config, Dialect as CfgDialect};
use crate::core::agent::echo::EchoAgent;
use crate::core::agent::{AudioEncoding, Dialect, StreamMeta};
// INTEGRATION(B): the registry's id, view and control commands.
use crate::core::call::{CallId, CallView, Command};
use crate::core::hooks::answer::WebhookAnswer;
use crate::core::hooks::callback::{CallStatus, Direction};
use crate::core::hooks::request;
use crate::core::sip::endpoint::{CallCommand, CallEvent, CallKey, EndReason, IncomingCall};
use crate::core::sip::sdp::{self, AnswerParams, Codec};

/// How a call went, for its record.
struct CallResult {
    end_reason: String,
    status: CallStatus,
    sip_status: Option<u16>,
    answered_at: Option<jiff::Timestamp>,
    media: Option<MediaOutcome>,
}

impl CallResult {
    fn rejected(status: u16, why: &str) -> Self {
        CallResult {
            end_reason: why.to_string(),
            status: match status {
                486 | 600 => CallStatus::Busy,
                _ => CallStatus::Failed,
            },
            sip_status: Some(status),
            answered_at: None,
            media: None,
        }
    }

    fn canceled() -> Self {
        CallResult {
            end_reason: "canceled".into(),
            status: CallStatus::Canceled,
            sip_status: Some(487),
            answered_at: None,
            media: None,
        }
    }
}

/// Runs a call task; if it panics (a bug), the call is still ended towards the caller and a
/// record is still written, so no call is left hanging or unreported.
pub async fn run_guarded(
    key: CallKey,
    info: IncomingCall,
    admitted: Admitted,
    events: mpsc::UnboundedReceiver<CallMsg>,
    ctl: mpsc::Sender<EndpointMsg>,
    ctx: Arc<Ctx>,
) {
    use futures_util::FutureExt;
    let saved = info.clone();
    // INTEGRATION(B): the call's id is minted here (the registry's key, the call_id of the
    // API, webhook, agent and record) until admission mints it.
    let id = CallId::from_random(fastrand::u128(..));
    let task = run(
        id.clone(),
        key,
        info,
        admitted,
        events,
        ctl.clone(),
        ctx.clone(),
    );
    if let Err(panic) = std::panic::AssertUnwindSafe(task).catch_unwind().await {
        // INTEGRATION(B): the registry shows the call ended (its last view, failed).
        if let Some(view) = ctx.registry.get(&id) {
            ctx.registry.ended(&id, record::failed_view(view));
        }
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(panic = %what, sip_call_id = %saved.sip_call_id, "call task failed; ending the call");
        let _ = ctl
            .send(EndpointMsg::Command {
                call: key,
                cmd: CallCommand::Hangup,
            })
            .await;
        record::rejected_and_wait(&ctx, &saved, 500, "internal_error").await;
        ctx.stats.calls_ended.fetch_add(1, Ordering::Relaxed);
    }
}

pub async fn run(
    id: CallId,
    key: CallKey,
    info: IncomingCall,
    admitted: Admitted,
    events: mpsc::UnboundedReceiver<CallMsg>,
    ctl: mpsc::Sender<EndpointMsg>,
    ctx: Arc<Ctx>,
) {
    let call_id = id.to_string();
    let span = tracing::info_span!("call", call_id = %call_id);
    let started_at = jiff::Timestamp::now();
    ctx.stats.calls_started.fetch_add(1, Ordering::Relaxed);
    ctx.emit(GatewayEvent::CallStarted {
        call_id: call_id.clone(),
        from: info.from_user.clone(),
        to: info.request_user.clone(),
    });
    let config = ctx.config();
    let number = routing::find_number(&config, &info);
    let callback_url = number
        .and_then(|n| n.callback_url.clone())
        .or_else(|| config.callbacks.url.clone());
    let from_number = routing::caller_number(&info);
    let to_number = routing::dialled_did(&config, &info);
    // INTEGRATION(B): registered at start; the call task owns the command inbox's receiver.
    let view = record::first_view(&call_id, started_at, &from_number, &to_number, &info);
    let (inbox, commands) = mpsc::unbounded_channel();
    ctx.registry.insert(id.clone(), inbox, view.clone());
    let mut call = Call {
        key,
        call_id: call_id.clone(),
        info,
        events,
        ctl,
        ctx: ctx.clone(),
        config: config.clone(),
        ringing: false,
        admitted,
        from_number,
        to_number,
        commands,
        view,
        api_hangup: false,
    };
    let mut result = call.run().instrument(span.clone()).await;
    // INTEGRATION(B): hung up by the API before the answer (the INVITE got 480).
    if call.api_hangup && result.answered_at.is_none() {
        let why = crate::core::call::EndReason::ApiHangup;
        result.end_reason = why.as_str();
        result.status = why.call_status(false);
        result.sip_status = why.reject_status();
    }
    let (rtp_in, rtp_out, caller_talk, agent_talk, reason) = match result.media {
        Some(m) => (
            m.rtp_in,
            m.rtp_out,
            m.caller_talk,
            m.agent_talk,
            Some(m.reason),
        ),
        None => (0, 0, Vec::new(), Vec::new(), None),
    };
    let summary = CallSummary {
        call_id: call_id.clone(),
        direction: Direction::Inbound,
        from: call.from_number.clone(),
        to: call.to_number.clone(),
        did: call.info.did.clone(),
        crt: call.info.crt.clone(),
        started_at,
        answered_at: result.answered_at,
        ended_at: jiff::Timestamp::now(),
        status: result.status,
        end_reason: result.end_reason.clone(),
        sip_status: result.sip_status,
        caller_talk,
        agent_talk,
    };
    let record = record::build(&summary, &config.billing);
    // INTEGRATION(B): the final view; the inbox is dropped, the call stays visible a while.
    ctx.registry.ended(&id, record.call.clone());
    span.in_scope(|| {
        tracing::info!(
            end_reason = %result.end_reason,
            sip_status = ?result.sip_status,
            duration_s = record.call.duration_s,
            rtp_in,
            rtp_out,
            "call ended"
        )
    });
    record::deliver(&ctx, &record, callback_url.as_deref()).await;
    ctx.stats.calls_ended.fetch_add(1, Ordering::Relaxed);
    ctx.emit(GatewayEvent::CallEnded {
        call_id,
        reason: reason.unwrap_or(match result.status {
            CallStatus::Canceled => EndReason::Canceled,
            _ => EndReason::Rejected(result.sip_status.unwrap_or(0)),
        }),
        end_reason: result.end_reason,
        rtp_in,
        rtp_out,
        record: Box::new(record),
    });
}

struct Call {
    key: CallKey,
    call_id: String,
    info: IncomingCall,
    events: mpsc::UnboundedReceiver<CallMsg>,
    ctl: mpsc::Sender<EndpointMsg>,
    ctx: Arc<Ctx>,
    config: Arc<Config>,
    ringing: bool,
    admitted: Admitted,
    /// E.164 caller and dialled numbers, as admission and routing saw them.
    from_number: Option<String>,
    to_number: Option<String>,
    // INTEGRATION(B): control commands, the view the registry shows, and whether the API
    // hung up.
    commands: mpsc::UnboundedReceiver<Command>,
    view: CallView,
    api_hangup: bool,
}

/// Who answers the call.
enum Target {
    Builtin { answer_delay: Option<Duration> },
    Ws(Box<WsTarget>),
}

impl Call {
    async fn command(&self, cmd: CallCommand) {
        let _ = self
            .ctl
            .send(EndpointMsg::Command {
                call: self.key,
                cmd,
            })
            .await;
    }

    // INTEGRATION(B): the registry's view of the call changes status.
    fn publish(&mut self, status: CallStatus, answered_at: Option<jiff::Timestamp>) {
        self.view.status = status;
        if let Some(at) = answered_at {
            self.view.answered_at = Some(at.to_string());
        }
        let id = CallId::from_string(self.call_id.clone());
        self.ctx.registry.update(&id, self.view.clone());
    }

    async fn ring(&mut self) {
        if !self.ringing {
            self.ringing = true;
            self.command(CallCommand::Ringing).await;
            self.publish(CallStatus::Ringing, None); // INTEGRATION(B)
        }
    }

    /// Rejects the INVITE and waits for the endpoint to confirm the end.
    async fn reject(&mut self, status: u16, why: &str) -> CallResult {
        tracing::info!(status, reason = why, "call rejected");
        let cmd = CallCommand::Reject {
            status,
            reason: None,
            headers: Vec::new(),
        };
        self.command(cmd).await;
        match self.wait_end().await {
            EndReason::Canceled => CallResult::canceled(),
            _ => CallResult::rejected(status, why),
        }
    }

    async fn wait_end(&mut self) -> EndReason {
        loop {
            // INTEGRATION(B): an API hangup before the answer rejects the INVITE (480).
            let msg = tokio::select! {
                m = self.events.recv() => m,
                Some(cmd) = self.commands.recv(), if !self.api_hangup => {
                    if cmd == Command::Hangup {
                        self.api_reject().await;
                    }
                    continue;
                }
            };
            match msg {
                Some(CallMsg::Sip(CallEvent::Ended(r))) => return r,
                Some(_) => {}
                None => return EndReason::LocalBye(0),
            }
        }
    }

    // INTEGRATION(B): the control API hung up before the answer.
    async fn api_reject(&mut self) {
        tracing::info!("hung up by the control API before the answer");
        self.api_hangup = true;
        let why = crate::core::call::EndReason::ApiHangup;
        let status = why.reject_status().unwrap_or(480);
        let (reason, headers) = (None, Vec::new());
        self.command(CallCommand::Reject {
            status,
            reason,
            headers,
        })
        .await;
    }

    async fn run(&mut self) -> CallResult {
        tracing::info!(
            from = self.info.from_user.as_deref().unwrap_or(""),
            to = self.info.request_user.as_deref().unwrap_or(""),
            did = self.info.did.as_deref().unwrap_or(""),
            crt = self.info.crt.as_deref().unwrap_or(""),
            source = %self.info.source,
            "incoming call"
        );
        let target = match self.choose_target().await {
            Ok(t) => t,
            Err(r) => return r,
        };
        let params = self.answer_params();
        let offer = match self
            .info
            .offer
            .as_deref()
            .map(|b| sdp::parse(&String::from_utf8_lossy(b)))
        {
            Some(Ok(o)) => Some(o),
            Some(Err(e)) => {
                tracing::info!(error = %e, "unparsable SDP offer");
                return self.reject(488, "sdp_unparsable").await;
            }
            None => None,
        };
        if let Some(o) = &offer {
            if let Err(e) = sdp::answer(o, &params) {
                tracing::info!(error = %e, "no acceptable media");
                return self.reject(488, "no_common_codec").await;
            }
        }
        let (agent, ws_target) = match target {
            Target::Builtin { answer_delay } => {
                if let Some(delay) = answer_delay {
                    // The built-in agent can be told to take its time, as a webhook or a
                    // remote agent would: the caller hears ringing and may cancel.
                    self.ring().await;
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        r = self.wait_end() => return ended_early(r),
                    }
                }
                (Agent::Echo(EchoAgent::new(8000)), None)
            }
            Target::Ws(t) => {
                self.ring().await;
                let deadline = self.config.agent.connect_timeout;
                let ctx = self.ctx.clone();
                let connected = tokio::select! {
                    c = WsAgent::connect(&t, &ctx, deadline) => c,
                    r = self.wait_end() => return ended_early(r),
                };
                match connected {
                    Ok(ws) => (Agent::Ws(Box::new(ws)), Some(t)),
                    Err(e) => {
                        tracing::warn!(error = %e, url = %t.url, "agent connect failed");
                        return self.reject(480, "agent_connect_failed").await;
                    }
                }
            }
        };
        let Some((lease, sock)) = self.ctx.ports.bind(self.config.rtp.bind).await else {
            tracing::warn!("RTP port pool exhausted");
            return self.reject(503, "no_media_ports").await;
        };
        let setup = MediaSetup {
            call: self.key,
            call_id: self.call_id.clone(),
            params: AnswerParams {
                port: lease.port(),
                ..params
            },
            offer,
            rtp_timeout: self.config.rtp.rtp_timeout,
            on_disconnect: self.config.agent.on_disconnect,
            connect_timeout: self.config.agent.connect_timeout,
            target: ws_target.map(|t| *t),
        };
        let media = match MediaSession::new(setup, sock, agent) {
            Ok(m) => m,
            Err(e) => {
                tracing::info!(error = %e, "media setup failed");
                return self.reject(488, "no_common_codec").await;
            }
        };
        self.command(CallCommand::Answer {
            sdp: media.local_sdp(),
        })
        .await;
        let answered_at = Some(jiff::Timestamp::now());
        self.publish(CallStatus::InProgress, answered_at); // INTEGRATION(B)
        let outcome = media
            .run(&mut self.events, &mut self.commands, &self.ctl, &self.ctx)
            .await;
        drop(lease);
        let draining = self.ctx.draining.load(Ordering::Relaxed);
        let end_reason = match (outcome.reason, outcome.local_end) {
            (EndReason::RemoteBye, _) => "caller_hangup".to_string(),
            (EndReason::NoAck, _) => "no_ack".to_string(),
            (EndReason::Canceled, _) => "canceled".to_string(),
            (_, Some(local)) => local.as_str().to_string(),
            _ if draining => "shutdown".to_string(),
            _ => "local_hangup".to_string(),
        };
        CallResult {
            end_reason,
            status: CallStatus::Completed,
            sip_status: Some(200),
            answered_at,
            media: Some(outcome),
        }
    }

    /// The agent for this call: the webhook's answer (while ringing), else the number's
    /// static agent; a rejection is returned as the call's result.
    async fn choose_target(&mut self) -> std::result::Result<Target, CallResult> {
        let config = self.config.clone();
        let number = routing::find_number(&config, &self.info);
        let static_agent = number.and_then(|n| n.agent.clone());
        let Some(url) = config.webhook.url.clone() else {
            return match static_agent {
                Some(a) => Ok(self.static_target(&a)),
                None => Err(self.reject(404, "no_route").await),
            };
        };
        self.ring().await;
        let req = self.webhook_request();
        let ctx = self.ctx.clone();
        let answer = tokio::select! {
            a = webhook::ask(&ctx, &config, &url, &req) => a,
            r = self.wait_end() => return Err(ended_early(r)),
        };
        match answer {
            Ok(WebhookAnswer::Connect {
                url,
                dialect,
                sample_rate,
                encoding,
                parameters,
                extra_headers,
                ..
            }) => {
                let fallback = static_agent.as_ref();
                let dialect = dialect
                    .or(fallback.map(|a| map_dialect(a.dialect)))
                    .unwrap_or(Dialect::Twilio);
                let rate = sample_rate
                    .or(fallback.map(|a| a.sample_rate))
                    .unwrap_or(8000);
                let meta = self.stream_meta(
                    rate,
                    encoding.unwrap_or_default(),
                    parameters,
                    extra_headers,
                );
                Ok(Target::Ws(Box::new(WsTarget { url, dialect, meta })))
            }
            Ok(WebhookAnswer::Reject { status }) => {
                Err(self.reject(status, "webhook_reject").await)
            }
            Err(failure) => {
                tracing::warn!(error = %failure, "inbound webhook failed");
                match static_agent {
                    Some(a) => {
                        tracing::info!("falling back to the number's static agent");
                        Ok(self.static_target(&a))
                    }
                    None => Err(self.reject(failure.sip_status(), failure.as_str()).await),
                }
            }
        }
    }

    fn static_target(&self, agent: &AgentConfig) -> Target {
        if agent.url.starts_with("builtin:") {
            return Target::Builtin {
                answer_delay: answer_delay(&agent.url),
            };
        }
        let meta = self.stream_meta(agent.sample_rate, AudioEncoding::L16, Vec::new(), None);
        Target::Ws(Box::new(WsTarget {
            url: agent.url.clone(),
            dialect: map_dialect(agent.dialect),
            meta,
        }))
    }

    fn stream_meta(
        &self,
        sample_rate: u32,
        encoding: AudioEncoding,
        custom_parameters: Vec<(String, String)>,
        extra_headers: Option<String>,
    ) -> StreamMeta {
        StreamMeta {
            call_id: self.call_id.clone(),
            stream_id: format!("MZ{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
            account_id: "trunkgate".into(),
            from: self.from_number.clone(),
            to: self.to_number.clone(),
            did: self.info.did.clone(),
            crt: self.info.crt.clone(),
            direction: "inbound".into(),
            custom_parameters,
            extra_headers,
            sample_rate,
            encoding,
        }
    }

    fn webhook_request(&self) -> request::IncomingCall {
        let header = |name: &str| {
            self.info
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        request::IncomingCall {
            call_id: self.call_id.clone(),
            sip_call_id: self.info.sip_call_id.clone(),
            from_number: self.from_number.clone(),
            to_number: self.to_number.clone(),
            did: self.info.did.clone(),
            crt: self.info.crt.clone(),
            workspace_id: header("X-Workspace-ID"),
            trunk: self.admitted.trunk.clone(),
            source_ip: Some(self.info.source.ip().to_string()),
            headers: self.info.headers.clone(),
        }
    }

    fn answer_params(&self) -> AnswerParams {
        AnswerParams {
            prefs: vec![Codec::Pcmu, Codec::Pcma],
            address: advertised_ip(
                self.config.rtp.bind,
                &self.info.local_host,
                self.config.sip.public_address.is_some(),
            ),
            port: 0,
            ptime_ms: self.config.rtp.ptime_ms,
            session_id: fastrand::u64(1..u64::MAX / 2),
            session_version: 1,
            user: "trunkgate".to_string(),
        }
    }
}

/// The caller hung up (CANCEL) while we were still working on the call.
fn ended_early(r: EndReason) -> CallResult {
    match r {
        EndReason::Canceled => CallResult::canceled(),
        EndReason::Rejected(s) => CallResult::rejected(s, "rejected"),
        _ => CallResult::rejected(0, "ended_before_answer"),
    }
}

fn map_dialect(d: CfgDialect) -> Dialect {
    match d {
        CfgDialect::Twilio => Dialect::Twilio,
        CfgDialect::Plivo => Dialect::Plivo,
        CfgDialect::Raw => Dialect::Raw,
    }
}

/// `builtin:echo?answer_delay_ms=N` → ring for N ms before answering.
fn answer_delay(url: &str) -> Option<Duration> {
    let query = url.strip_prefix("builtin:")?.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "answer_delay_ms").then(|| v.parse().ok().map(Duration::from_millis))?
    })
}

/// The address for SDP `c=`: the public address when configured, else the RTP bind
/// address when specific, else the local address the INVITE reached.
fn advertised_ip(bind: IpAddr, local_host: &str, public: bool) -> IpAddr {
    if !public && !bind.is_unspecified() {
        return bind;
    }
    local_host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .unwrap_or(if bind.is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            bind
        })
}
