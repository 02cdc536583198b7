//! Placing calls: the trunk, the INVITE's addresses and numbers, the call task of a UAC call.
//!
//! A call placed here is registered at once (`queued`), so the API can find, list and hang it
//! up in every state; its task resolves the trunk, builds the machine with a
//! [`Route::Dial`] and runs the same driver inbound calls use.
//!
//! Must not: parse API requests (the API hands over a validated [`DialRequest`]) or remember
//! idempotency keys (the control handle does).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::call::{conclude, Driver, Outgoing};
use super::dial::{AgentSource, Destination, DialError, DialRequest, Dialed};
use super::dial_spec::dial_spec;
use super::events::StatusEvents;
use super::outbound_admit::{admit, release};
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
use crate::core::sip::endpoint::{CallKey, OUTBOUND_KEYS};

static NEXT_KEY: AtomicU64 = AtomicU64::new(OUTBOUND_KEYS);

/// A fresh key for a dialog we start (an outbound call, a bridged leg).
pub(super) fn next_key() -> CallKey {
    CallKey(NEXT_KEY.fetch_add(1, Ordering::Relaxed))
}

/// Admits and places one call; returns at once (the call rings in its own task).
pub(super) fn place(ctx: &Arc<Ctx>, req: DialRequest) -> Result<Dialed, DialError> {
    let config = ctx.config();
    let trunk = pick_trunk(&config, req.trunk.as_deref())?.clone();
    if let AgentSource::Bridge {
        trunk: Some(first), ..
    } = &req.agent
    {
        pick_trunk(&config, Some(first)).map_err(|_| {
            DialError::NoTrunk(format!(
                "bridge_from_trunk: no trunk {first:?} places calls"
            ))
        })?;
    }
    if let AgentSource::Bridge {
        from: Destination::User(user),
        ..
    } = &req.agent
    {
        if !super::phones::Phones::knows(&config, user) {
            return Err(DialError::NotRegistered(
                format!("no [[user]] {user:?}"),
                false,
            ));
        }
        if ctx.phones.phone(user, std::time::Instant::now()).is_none() {
            return Err(DialError::NotRegistered(
                format!("no phone of user {user:?} is registered"),
                true,
            ));
        }
    }
    if let Some(why) = req
        .srtp
        .and_then(|mode| super::call_srtp::refusal(&config, &trunk, mode))
    {
        return Err(DialError::Invalid {
            field: "srtp",
            message: why,
        });
    }
    let call_id = CallId::from_random(fastrand::u128(..));
    let answerer = answerer(&req, &call_id, &trunk)?;
    let Some(ctl) = ctx.endpoint.upgrade() else {
        return Err(DialError::Draining);
    };
    let ticket = admit(ctx, &trunk, &req, &call_id)?;
    let key = next_key();
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

/// Twilio's form fields for calls created through the Twilio-compatible API, else JSON.
pub(super) fn callback_format(config: &Config, req: &DialRequest) -> CallbackFormat {
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

pub(super) fn destination(to: &Destination) -> &str {
    match to {
        Destination::E164(n) | Destination::Uri(n) | Destination::User(n) => n,
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
                    return Err(DialError::Invalid {
                        field: "Twiml",
                        message: "no <Connect><Stream url=…> in it".into(),
                    })
                }
            }
        }
        AgentSource::Bridge { .. } => {
            return Ok(OnAnswer::Bridge {
                to: destination(&req.to).to_string(),
            })
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
    // Click-to-call rings the manager first, through their trunk; `to` waits for the answer.
    let spec = match &req.agent {
        AgentSource::Bridge { from, trunk: first } => {
            // Checked when placed; a reload since then falls back to the call's trunk.
            let first = pick_trunk(&config, first.as_deref()).unwrap_or(&trunk);
            let mut manager = req.clone();
            manager.to = from.clone();
            let phone = match from {
                Destination::User(user) => ctx
                    .phones
                    .phone(user, std::time::Instant::now())
                    .map(|p| (p, user)),
                _ => None,
            };
            match phone {
                Some((phone, user)) => {
                    super::dial_spec::phone_spec(&config, &phone, user, &manager)
                }
                // A phone gone since the call was placed: no address, a 503 like any other.
                None if matches!(from, Destination::User(_)) => super::dial_spec::unresolved_spec(),
                None => {
                    dial_spec(&config, first, &manager)
                        .instrument(span.clone())
                        .await
                }
            }
        }
        _ => {
            dial_spec(&config, &trunk, &req)
                .instrument(span.clone())
                .await
        }
    };
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
        transfer: call_setup::transfer_policy(&config, Some(&trunk.name), "", &spec.local_host),
        record: req.record || config.recording.enabled,
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
        call_setup::settings(
            &config,
            &spec.local_host,
            super::call_srtp::outbound(&config, &trunk, req.srtp),
        ),
    );
    let callback_url = req.callback_url.clone().or(config.callbacks.url.clone());
    let events = req.status_events.unwrap_or(config.callbacks.events);
    let status =
        StatusEvents::new(callback_url, events).with_format(callback_format(&config, &req));
    let mut driver = Driver::new(machine, status, key, ctl, ctx.clone(), rx);
    driver.trunk = Some(trunk.name.clone());
    driver.bridge_preadmitted = matches!(req.agent, AgentSource::Bridge { .. });
    driver.outgoing = Some(Outgoing {
        spec: Box::new(spec),
        inbox: tx,
    });
    let ended = driver.run().instrument(span.clone()).await;
    let (call_id, status) = driver.finish();
    conclude(&ctx, &call_id, status, ended, &span).await;
}
