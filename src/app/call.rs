//! One task per call: routing, SDP negotiation, the RTP port, the agent, and the media loop
//! until the endpoint reports the call's end. Always releases the port and reports the end.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::media::{MediaSession, MediaSetup};
use super::{routing, Ctx, EndpointMsg, GatewayEvent};
use crate::core::sip::endpoint::{CallCommand, CallEvent, CallKey, EndReason, IncomingCall};
use crate::core::sip::sdp::{self, AnswerParams, Codec};

pub async fn run(
    key: CallKey,
    info: IncomingCall,
    events: mpsc::UnboundedReceiver<CallEvent>,
    ctl: mpsc::Sender<EndpointMsg>,
    ctx: Arc<Ctx>,
) {
    let call_id = format!("tg-{:016x}", fastrand::u64(..));
    let span = tracing::info_span!("call", call_id = %call_id);
    ctx.stats.calls_started.fetch_add(1, Ordering::Relaxed);
    ctx.emit(GatewayEvent::CallStarted {
        call_id: call_id.clone(),
        from: info.from_user.clone(),
        to: info.request_user.clone(),
    });
    let (reason, rtp_in, rtp_out) = run_inner(key, &call_id, info, events, &ctl, &ctx)
        .instrument(span.clone())
        .await;
    span.in_scope(|| tracing::info!(?reason, rtp_in, rtp_out, "call ended"));
    ctx.stats.calls_ended.fetch_add(1, Ordering::Relaxed);
    ctx.emit(GatewayEvent::CallEnded {
        call_id,
        reason,
        rtp_in,
        rtp_out,
    });
}

async fn command(ctl: &mpsc::Sender<EndpointMsg>, call: CallKey, cmd: CallCommand) {
    let _ = ctl.send(EndpointMsg::Command { call, cmd }).await;
}

async fn reject(ctl: &mpsc::Sender<EndpointMsg>, call: CallKey, status: u16, reason: &str) {
    let cmd = CallCommand::Reject {
        status,
        reason: Some(reason.to_string()),
        headers: Vec::new(),
    };
    command(ctl, call, cmd).await;
}

/// Waits for the endpoint's Ended (after a reject or hangup we asked for).
async fn wait_end(events: &mut mpsc::UnboundedReceiver<CallEvent>) -> EndReason {
    while let Some(ev) = events.recv().await {
        if let CallEvent::Ended(r) = ev {
            return r;
        }
    }
    EndReason::LocalBye(0)
}

async fn run_inner(
    key: CallKey,
    call_id: &str,
    info: IncomingCall,
    mut events: mpsc::UnboundedReceiver<CallEvent>,
    ctl: &mpsc::Sender<EndpointMsg>,
    ctx: &Arc<Ctx>,
) -> (EndReason, u64, u64) {
    let config = ctx.config();
    tracing::info!(
        from = info.from_user.as_deref().unwrap_or(""),
        to = info.request_user.as_deref().unwrap_or(""),
        did = info.did.as_deref().unwrap_or(""),
        crt = info.crt.as_deref().unwrap_or(""),
        source = %info.source,
        "incoming call"
    );
    let Some(agent) = routing::agent_for(&config, &info).cloned() else {
        reject(ctl, key, 404, "No Route For Number").await;
        return (wait_end(&mut events).await, 0, 0);
    };
    let advertise = advertised_ip(
        config.rtp.bind,
        &info.local_host,
        config.sip.public_address.is_some(),
    );
    let params = AnswerParams {
        prefs: vec![Codec::Pcmu, Codec::Pcma],
        address: advertise,
        port: 0,
        ptime_ms: config.rtp.ptime_ms,
        session_id: fastrand::u64(1..u64::MAX / 2),
        session_version: 1,
        user: "trunkgate".to_string(),
    };
    let offer = match info
        .offer
        .as_deref()
        .map(|b| sdp::parse(&String::from_utf8_lossy(b)))
    {
        Some(Ok(o)) => Some(o),
        Some(Err(e)) => {
            tracing::info!(error = %e, "unparsable SDP offer");
            reject(ctl, key, 488, "Unparsable SDP").await;
            return (wait_end(&mut events).await, 0, 0);
        }
        None => None,
    };
    // Check the codecs before taking a port.
    if let Some(o) = &offer {
        if let Err(e) = sdp::answer(o, &params) {
            tracing::info!(error = %e, "no acceptable media");
            reject(ctl, key, 488, "Not Acceptable Here").await;
            return (wait_end(&mut events).await, 0, 0);
        }
    }
    if let Some(delay) = answer_delay(&agent.url) {
        // The built-in agent can be told to take its time, as a webhook or a remote agent
        // would: the caller hears ringing meanwhile and may cancel.
        command(ctl, key, CallCommand::Ringing).await;
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            ev = wait_end(&mut events) => return (ev, 0, 0),
        }
    }
    let Some((lease, sock)) = ctx.ports.bind(config.rtp.bind).await else {
        tracing::warn!("RTP port pool exhausted");
        reject(ctl, key, 503, "No Media Ports").await;
        return (wait_end(&mut events).await, 0, 0);
    };
    let params = AnswerParams {
        port: lease.port(),
        ..params
    };
    let setup = MediaSetup {
        call: key,
        call_id: call_id.to_string(),
        params,
        offer,
        agent,
        rtp_timeout: config.rtp.rtp_timeout,
    };
    let mut media = match MediaSession::new(setup, sock) {
        Ok(m) => m,
        Err(e) => {
            tracing::info!(error = %e, "media setup failed");
            reject(ctl, key, 488, "Not Acceptable Here").await;
            return (wait_end(&mut events).await, 0, 0);
        }
    };
    command(
        ctl,
        key,
        CallCommand::Answer {
            sdp: media.local_sdp(),
        },
    )
    .await;
    let reason = media.run(&mut events, ctl, ctx).await;
    let counts = media.counts();
    drop(media);
    drop(lease);
    (reason, counts.0, counts.1)
}

/// `builtin:echo?answer_delay_ms=N` → ring for N ms before answering.
fn answer_delay(url: &str) -> Option<std::time::Duration> {
    let query = url.strip_prefix("builtin:")?.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "answer_delay_ms").then(|| v.parse().ok().map(std::time::Duration::from_millis))?
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
