//! Placing calls: the trunk, the INVITE's addresses and numbers, the call task of a UAC call.
//!
//! A call placed here is registered at once (`queued`), so the API can find, list and hang it
//! up in every state; its task resolves the trunk, builds the machine with a
//! [`Route::Dial`] and runs the same driver inbound calls use.
//!
//! Must not: parse API requests (the API hands over a validated [`DialRequest`]) or remember
//! idempotency keys (the control handle does).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::call::{conclude, Driver, Outgoing};
use super::dial::{AgentSource, Destination, DialError, DialRequest, Dialed};
use super::events::StatusEvents;
use super::record::CallbackFormat;
use super::{call_setup, CallMsg, Ctx, EndpointMsg, GatewayEvent};
use crate::config::{Config, TrunkConfig};
use crate::core::agent::{AudioEncoding, Dialect};
use crate::core::call::dial::{DialPlan, OnAnswer};
use crate::core::call::leg::{AgentTarget, Answerer};
use crate::core::call::media::RtpSeed;
use crate::core::call::{Call, CallId, CallStatus, CallView, Direction, Route, Setup};
use crate::core::hooks::answer::WebhookAnswer;
use crate::core::hooks::request::IncomingCall as WebhookRequest;
use crate::core::sip::endpoint::{CallKey, DialSpec, OUTBOUND_KEYS};
use crate::core::{Flow, Transport};

static NEXT_KEY: AtomicU64 = AtomicU64::new(OUTBOUND_KEYS);

/// Admits and places one call; returns at once (the call rings in its own task).
pub(super) fn place(ctx: &Arc<Ctx>, req: DialRequest) -> Result<Dialed, DialError> {
    let config = ctx.config();
    let trunk = pick_trunk(&config, req.trunk.as_deref())?.clone();
    let call_id = CallId::from_random(fastrand::u128(..));
    let answerer = answerer(&req, &call_id, &trunk)?;
    let Some(ctl) = ctx.endpoint.upgrade() else {
        return Err(DialError::Draining);
    };
    let ticket = admit(ctx, &trunk, &req)?;
    let key = CallKey(NEXT_KEY.fetch_add(1, Ordering::Relaxed));
    let (tx, rx) = mpsc::unbounded_channel();
    let mut view = CallView::new(
        call_id.as_str(),
        Direction::Outbound,
        jiff::Timestamp::now().to_string(),
    );
    view.from = req.from.clone();
    view.to = Some(destination(&req.to).to_string());
    ctx.registry.insert(call_id.clone(), tx.clone(), view);
    let task = run(
        ctx.clone(),
        call_id.clone(),
        key,
        trunk,
        req,
        answerer,
        (tx, rx),
        ctl,
    );
    let gate = ctx.clone();
    let task = async move {
        task.await;
        release(&gate, &ticket);
    };
    if ctx.calls.spawn(task).is_err() {
        // The task (and its ticket) is gone with the workers: nothing runs the call.
        if let Some(mut view) = ctx.registry.get(&call_id) {
            view.status = CallStatus::Failed;
            ctx.registry.ended(&call_id, view);
        }
        return Err(DialError::Draining);
    }
    Ok(Dialed {
        call_id: call_id.to_string(),
        status: CallStatus::Queued,
        replayed: false,
    })
}

fn release(ctx: &Ctx, ticket: &crate::core::policy::OutboundTicket) {
    match ctx.outbound.lock() {
        Ok(mut g) => g.ended(ticket),
        Err(poisoned) => poisoned.into_inner().ended(ticket),
    }
}

/// Outbound admission ("phone security" for the calls we place). A refusal is answered at
/// once and leaves a record (a `call.completed` with `status: failed`).
fn admit(
    ctx: &Arc<Ctx>,
    trunk: &TrunkConfig,
    req: &DialRequest,
) -> Result<crate::core::policy::OutboundTicket, DialError> {
    let now = crate::core::policy::Now {
        mono: Instant::now(),
        wall: jiff::Timestamp::now(),
    };
    let e164 = match &req.to {
        Destination::E164(n) => Some(n.as_str()),
        Destination::Uri(_) => None,
    };
    let verdict = match ctx.outbound.lock() {
        Ok(mut gate) => gate.admit(&now, &trunk.name, e164),
        Err(poisoned) => poisoned.into_inner().admit(&now, &trunk.name, e164),
    };
    let refusal = match verdict {
        Ok(ticket) => return Ok(ticket),
        Err(r) => r,
    };
    ctx.stats.policy_rejected.fetch_add(1, Ordering::Relaxed);
    let reason = refusal.reason.as_str();
    tracing::info!(to = destination(&req.to), trunk = %trunk.name, reason, scope = %refusal.scope, "outbound call refused by policy");
    let call_id = CallId::from_random(fastrand::u128(..));
    let at = now.wall.to_string();
    let mut view = CallView::new(call_id.as_str(), Direction::Outbound, at.clone());
    view.from = req.from.clone();
    view.to = Some(destination(&req.to).to_string());
    view.ended_at = Some(at);
    view.status = CallStatus::Failed;
    view.end_reason = Some(format!("outbound_policy_{reason}"));
    let record = super::record::envelope(
        crate::core::hooks::callback::CallbackEvent::Completed,
        1,
        view,
    );
    let config = ctx.config();
    let url = req.callback_url.clone().or(config.callbacks.url.clone());
    let ctx2 = ctx.clone();
    let format = callback_format(&config, req);
    tokio::spawn(
        async move { super::record::deliver(&ctx2, &record, url.as_deref(), &format).await },
    );
    // 429 for concurrency and rate (with Retry-After for rate), 403 for prefixes and hours.
    match refusal.reason.http_status() {
        429 if refusal.retry_after.is_none() => Err(DialError::Busy(reason.to_string())),
        429 => Err(DialError::Refused {
            reason: reason.to_string(),
            retry_after: refusal.retry_after,
        }),
        _ => Err(DialError::Refused {
            reason: reason.to_string(),
            retry_after: None,
        }),
    }
}

/// Twilio's form fields for calls created through the Twilio-compatible API, else JSON.
fn callback_format(config: &Config, req: &DialRequest) -> CallbackFormat {
    match req.twilio_form {
        true => CallbackFormat::TwilioForm {
            account_sid: config.api.account_sid.clone(),
        },
        false => CallbackFormat::Json,
    }
}

/// The named trunk, or the first one that places calls.
fn pick_trunk<'a>(config: &'a Config, name: Option<&str>) -> Result<&'a TrunkConfig, DialError> {
    let mut usable = config.trunks.iter().filter(|t| t.outbound.is_some());
    match name {
        Some(n) => usable
            .find(|t| t.name == n)
            .ok_or_else(|| DialError::NoTrunk(format!("trunk: no trunk {n:?} places calls"))),
        None => usable
            .next()
            .ok_or_else(|| DialError::NoTrunk("no [[trunk]] has `outbound`".into())),
    }
}

fn destination(to: &Destination) -> &str {
    match to {
        Destination::E164(n) | Destination::Uri(n) => n,
    }
}

/// Who talks to the callee: the agent named now, or (Twilio's `Url`) the one the call's
/// webhook names when the callee answers.
fn answerer(
    req: &DialRequest,
    call_id: &CallId,
    trunk: &TrunkConfig,
) -> Result<OnAnswer, DialError> {
    let (url, dialect, sample_rate, parameters) = match &req.agent {
        AgentSource::Stream {
            url,
            dialect,
            sample_rate,
        } => (
            url.clone(),
            call_setup::map_dialect(*dialect),
            *sample_rate,
            Vec::new(),
        ),
        AgentSource::Twiml(twiml) => {
            match crate::core::hooks::parse_answer(Some("application/xml"), twiml.as_bytes()) {
                Ok(WebhookAnswer::Connect {
                    url,
                    dialect,
                    sample_rate,
                    parameters,
                    ..
                }) => (
                    url,
                    dialect.unwrap_or(Dialect::Twilio),
                    sample_rate.unwrap_or(8000),
                    parameters,
                ),
                _ => {
                    return Err(DialError::NoTrunk(
                        "Twiml: no <Connect><Stream url=…> in it".into(),
                    ))
                }
            }
        }
        AgentSource::Webhook { url } => {
            return Ok(OnAnswer::AskWebhook(Box::new(WebhookRequest {
                call_id: call_id.to_string(),
                from_number: req.from.clone(),
                to_number: Some(destination(&req.to).to_string()),
                trunk: Some(trunk.name.clone()),
                outbound_url: Some(url.clone()),
                ..WebhookRequest::default()
            })))
        }
    };
    if url.starts_with("builtin:") {
        return Ok(Answerer::Echo { answer_delay: None }.into());
    }
    let mut params = parameters;
    params.extend(req.parameters.iter().cloned());
    Ok(Answerer::Agent(AgentTarget {
        url,
        dialect,
        sample_rate,
        encoding: AudioEncoding::L16,
        parameters: params,
        extra_headers: None,
    })
    .into())
}

#[allow(clippy::too_many_arguments)]
async fn run(
    ctx: Arc<Ctx>,
    call_id: CallId,
    key: CallKey,
    trunk: TrunkConfig,
    req: DialRequest,
    answerer: OnAnswer,
    (tx, rx): (
        mpsc::UnboundedSender<CallMsg>,
        mpsc::UnboundedReceiver<CallMsg>,
    ),
    ctl: mpsc::Sender<EndpointMsg>,
) {
    let span = tracing::info_span!("call", call_id = %call_id);
    let config = ctx.config();
    ctx.stats.calls_started.fetch_add(1, Ordering::Relaxed);
    ctx.emit(GatewayEvent::CallStarted {
        call_id: call_id.to_string(),
        from: req.from.clone(),
        to: Some(destination(&req.to).to_string()),
    });
    let spec = dial_spec(&config, &trunk, &req)
        .instrument(span.clone())
        .await;
    span.in_scope(|| {
        tracing::info!(
            to = destination(&req.to),
            from = req.from.as_deref().unwrap_or(""),
            trunk = %trunk.name,
            remote = %spec.flow.remote,
            "placing call"
        )
    });
    let setup = Setup {
        id: call_id.clone(),
        direction: Direction::Outbound,
        started_wall: jiff::Timestamp::now(),
        from: req.from.clone(),
        to: Some(destination(&req.to).to_string()),
        did: None,
        crt: None,
        headers: Vec::new(),
        offer: None,
        route: Route::Dial(Box::new(DialPlan {
            answerer,
            ring_timeout: req.ring_timeout,
            time_limit: req.time_limit,
            early_media: req.early_media,
        })),
        seed: RtpSeed {
            seq: fastrand::u16(..),
            ts: fastrand::u32(..),
            ssrc: fastrand::u32(..),
        },
        stream_id: format!("MZ{:032x}", fastrand::u128(..)),
    };
    let machine = Call::new(
        Instant::now(),
        setup,
        call_setup::settings(&config, &spec.local_host),
    );
    let callback_url = req.callback_url.clone().or(config.callbacks.url.clone());
    let events = req.status_events.unwrap_or(config.callbacks.events);
    let status =
        StatusEvents::new(callback_url, events).with_format(callback_format(&config, &req));
    let mut driver = Driver::new(machine, status, key, ctl, ctx.clone(), rx);
    driver.outgoing = Some(Outgoing {
        spec: Box::new(spec),
        inbox: tx,
    });
    let ended = driver.run().instrument(span.clone()).await;
    conclude(&ctx, driver, ended, &span).await;
}

/// The INVITE's addresses: where it goes (the outbound proxy, else the trunk), what it says.
/// An address that does not resolve leaves port 0, which the driver reports as a 503.
async fn dial_spec(config: &Config, trunk: &TrunkConfig, req: &DialRequest) -> DialSpec {
    let Some(out) = trunk.outbound.as_ref() else {
        return unresolved_spec();
    };
    let transport = match out.transport {
        crate::config::Transport::Tcp => Transport::Tcp,
        crate::config::Transport::Tls => Transport::Tls,
        crate::config::Transport::Udp => Transport::Udp,
    };
    let next_hop = out.outbound_proxy.as_ref().unwrap_or(&out.address);
    let remote = resolve(next_hop).await;
    // Loose routing through the proxy (RFC 3261 §16.12): the Request-URI stays the trunk's.
    let route = out
        .outbound_proxy
        .as_ref()
        .map(|p| format!("<sip:{p};lr{}>", transport_param(transport)));
    let local_host = super::public_host(config).unwrap_or_else(|| {
        let any = if remote.is_ipv4() {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        };
        crate::core::sip::endpoint::uri_host(crate::io::sip_udp::local_ip_toward(any, remote))
    });
    let host = out.address.to_string();
    let tp = transport_param(transport);
    let (request_uri, to) = match &req.to {
        Destination::E164(n) => (
            format!("sip:{n}@{host}{tp}"),
            format!("<sip:{n}@{}>", out.address.host),
        ),
        Destination::Uri(u) => (u.clone(), format!("<{u}>")),
    };
    let domain = &out.from_domain;
    let (from, headers) = match &req.from {
        Some(f) => {
            let uri = format!("<sip:{f}@{domain}>");
            let headers = match out.caller_id {
                crate::config::CallerId::From => Vec::new(),
                crate::config::CallerId::Pai => {
                    vec![("P-Asserted-Identity".to_string(), uri.clone())]
                }
                crate::config::CallerId::Rpid => vec![(
                    "Remote-Party-ID".to_string(),
                    format!("{uri};party=calling;screen=yes;privacy=off"),
                )],
            };
            (uri, headers)
        }
        None => (
            "\"Anonymous\" <sip:anonymous@anonymous.invalid>".to_string(),
            Vec::new(),
        ),
    };
    let credentials = match out.read_credentials() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(trunk = %trunk.name, error = %e, "trunk credentials unreadable; dialling without");
            None
        }
    };
    DialSpec {
        flow: Flow {
            transport,
            local: SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0),
            remote,
            conn: None,
        },
        local_host,
        request_uri,
        from,
        to,
        route,
        headers,
        sdp: Vec::new(),
        credentials,
    }
}

fn transport_param(t: Transport) -> &'static str {
    match t {
        Transport::Tcp => ";transport=tcp",
        Transport::Udp | Transport::Tls => "",
    }
}

fn unresolved_spec() -> DialSpec {
    let any = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0);
    DialSpec {
        flow: Flow {
            transport: Transport::Udp,
            local: any,
            remote: any,
            conn: None,
        },
        local_host: String::new(),
        request_uri: String::new(),
        from: String::new(),
        to: String::new(),
        route: None,
        headers: Vec::new(),
        sdp: Vec::new(),
        credentials: None,
    }
}

/// The next hop's address: the literal, else the first A/AAAA answer; port 0 when it does
/// not resolve.
async fn resolve(hop: &crate::config::HostPort) -> SocketAddr {
    if let Some(ip) = hop.ip() {
        return SocketAddr::new(ip, hop.port);
    }
    match tokio::net::lookup_host((hop.host.as_str(), hop.port)).await {
        Ok(mut addrs) => addrs
            .next()
            .unwrap_or(SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0)),
        Err(e) => {
            tracing::warn!(address = %hop, error = %e, "trunk address does not resolve");
            SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0)
        }
    }
}
