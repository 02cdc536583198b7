//! Composition: binds the transports, runs the SIP endpoint task, spawns one task per call,
//! and exposes a [`Gateway`] handle (addresses, events, stats, drain) to `main` and to tests.
//!
//! The RTP hot path never goes through the endpoint task: each call task owns its socket.

mod agent_ws;
mod alerts;
mod call;
mod call_setup;
mod call_srtp;
pub mod call_stats;
mod call_transcript;
pub mod check;
pub mod control;
pub mod dial;
mod dial_spec;
mod endpoint_task;
pub mod events;
mod heap;
pub mod idempotency;
pub mod journal;
mod mail;
mod metrics;
pub mod notify;
mod outbound;
mod outbound_admit;
mod pbx_notify;
pub mod phones;
mod record;
mod record_writer;
pub mod recording;
pub mod registry;
mod registry_pack;
mod routing;
mod start;
pub mod transcribe;
mod transcript_jobs;
mod trunk_certs;
mod trunks;
mod webhook;
pub mod workers;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::config::Config;
use crate::core::hooks::callback::CallCompleted;
use crate::core::sip::endpoint::EndReason;
use crate::io::conn_limit::ConnLimits;
use crate::io::rtp::PortPool;
use crate::io::sip_tls::{self, ClientTls, ServerTls};
use crate::io::spool::Spool;
use crate::io::{http, tls};
use crate::io::{sip_tcp, sip_udp};
pub use endpoint_task::{Admitted, CallMsg, EndpointMsg};
pub use start::{endpoint_settings, policy, StartError};
use start::{handshake_quota, open_cdr, open_spool, outbound_policy, public_host, read_secret};

/// What happened, for tests, logs and (later) metrics and callbacks.
#[derive(Debug, Clone, PartialEq)]
pub enum GatewayEvent {
    CallStarted {
        call_id: String,
        from: Option<String>,
        to: Option<String>,
    },
    CallAnswered {
        call_id: String,
    },
    Dtmf {
        call_id: String,
        digit: char,
    },
    CallEnded {
        call_id: String,
        /// What the SIP side saw.
        reason: EndReason,
        /// The record's `end_reason` (caller_hangup, agent_hangup, webhook_reject, ...).
        end_reason: String,
        rtp_in: u64,
        rtp_out: u64,
        /// The call record as delivered to callbacks and the CDR.
        record: Box<CallCompleted>,
    },
}

/// Counters shared by every task.
#[derive(Debug, Default)]
pub struct Stats {
    pub calls_started: AtomicU64,
    pub calls_ended: AtomicU64,
    pub malformed: AtomicU64,
    /// Agent frames dropped because the agent (or our queue towards the caller) was full.
    pub agent_dropped_frames: AtomicU64,
    /// Agent messages that could not be decoded (bad JSON, base64, sizes...).
    pub agent_frame_errors: AtomicU64,
    /// Well-formed agent messages with events we do not use.
    pub agent_ignored_events: AtomicU64,
    /// SIP datagrams/messages dropped by the per-source flood guard.
    pub flood_dropped: AtomicU64,
    /// Requests dropped for a blocked User-Agent.
    pub blocked_user_agent: AtomicU64,
    /// API requests refused for missing or wrong credentials.
    pub api_auth_failures: AtomicU64,
    /// INVITEs answered with a policy rejection (403/480/486/503).
    pub policy_rejected: AtomicU64,
    /// INVITEs dropped silently by policy.
    pub policy_dropped: AtomicU64,
    /// Calls transcribed (their `call.transcript` carries turns).
    pub transcripts_sent: AtomicU64,
    /// Transcriptions that failed (their `call.transcript` carries an `error`).
    pub transcripts_failed: AtomicU64,
    /// Times freed heap memory was given back after a burst ([`heap`]).
    pub heap_trims: AtomicU64,
    /// How calls ended and how they were refused (see [`call_stats`]).
    pub calls: call_stats::CallStats,
}

impl Stats {
    pub fn active_calls(&self) -> u64 {
        // Saturating: the two counters are read separately and may be a moment apart.
        self.calls_started
            .load(Ordering::Relaxed)
            .saturating_sub(self.calls_ended.load(Ordering::Relaxed))
    }
}

/// Shared state every call task reads.
pub struct Ctx {
    pub config: RwLock<Arc<Config>>,
    pub ports: PortPool,
    pub events: broadcast::Sender<GatewayEvent>,
    pub stats: Stats,
    /// Set on SIGTERM: new calls are refused with 503.
    pub draining: std::sync::atomic::AtomicBool,
    pub tls: Arc<rustls::ClientConfig>,
    pub http: reqwest::Client,
    /// Durable callback delivery; `None` when the spool directory could not be opened.
    pub spool: Option<Spool>,
    /// Call records (callback spool + CDR), written off the call's path.
    pub records: record_writer::RecordWriter,
    /// Answered calls, journaled so that a crash still produces their records.
    pub journal: journal::Journal,
    /// Call recordings (`None`: the directory could not be opened).
    pub recordings: Option<Arc<recording::Recordings>>,
    /// Transcripts started and not spooled yet, on disk (`<spool_dir>/transcripts`).
    transcript_jobs: transcript_jobs::Jobs,
    /// The control API's bound address (`[api] listen` may say port 0), for `recording_url`.
    pub api_addr: std::sync::OnceLock<SocketAddr>,
    /// HMAC key for webhook and callback signatures.
    pub secret: Option<Arc<Vec<u8>>>,
    /// Where call tasks run (see [`workers`]).
    pub calls: workers::Spawner,
    /// Every call by id: its control inbox and its view (see [`registry`]).
    pub registry: Arc<registry::Registry>,
    /// The SIP endpoint task's inbox, for calls we place (weak: the task still ends when
    /// the gateway is dropped).
    pub endpoint: mpsc::WeakSender<EndpointMsg>,
    /// `Idempotency-Key`s of placed calls (see [`idempotency`]).
    pub idempotency: idempotency::Keys,
    /// Outbound admission: counts and windows of the calls we place.
    pub outbound: std::sync::Mutex<crate::core::policy::OutboundGate>,
    /// Each registering trunk's state, published by the endpoint task's driver.
    pub trunks: trunks::TrunkBoard,
    /// Fraud-alert mail through `[smtp]` (rebuilt on reload).
    mail: mail::Mail,
    /// The `[[user]]`s' phones registered here (see [`phones`]).
    pub phones: phones::Phones,
}

impl Ctx {
    pub fn config(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn emit(&self, ev: GatewayEvent) {
        let _ = self.events.send(ev);
    }
}

/// Binds a stream (TCP or TLS) listener and records the address it got.
async fn bind_stream(
    transport: &'static str,
    addr: SocketAddr,
    bound: &mut Vec<SocketAddr>,
) -> Result<tokio::net::TcpListener, StartError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            transport,
            addr,
            source,
        })?;
    if let Ok(a) = listener.local_addr() {
        bound.push(a);
    }
    Ok(listener)
}

/// A running gateway.
pub struct Gateway {
    pub udp_addrs: Vec<SocketAddr>,
    pub tcp_addrs: Vec<SocketAddr>,
    pub tls_addrs: Vec<SocketAddr>,
    /// Per-source limits of the stream listeners (reloadable).
    streams: Arc<ConnLimits>,
    /// The TLS listeners' certificate (swapped on reload), when there are any.
    server_tls: Option<Arc<ServerTls>>,
    /// The control API's address, when `[api] listen` is set.
    pub api_addr: Option<SocketAddr>,
    ctx: Arc<Ctx>,
    ctl: mpsc::Sender<EndpointMsg>,
    done: Option<oneshot::Receiver<()>>,
    /// The call worker threads; they stop (cancelling leftover calls) with the gateway.
    _workers: workers::Workers,
}

impl Gateway {
    /// Binds every listener of `config` and starts serving.
    pub async fn start(config: Config) -> Result<Gateway, StartError> {
        let (events, _) = broadcast::channel(1024);
        let ports = PortPool::new(config.rtp.port_min, config.rtp.port_max);
        let settings = endpoint_settings(&config);
        let limits = settings.limits.clone();
        tls::install_default_provider();
        let tls = tls::client_config(config.agent.extra_ca_file.as_deref())?;
        let http = http::client(
            &tls,
            config
                .webhook
                .timeout
                .max(std::time::Duration::from_secs(10)),
        )?;
        let secret = match &config.webhook.secret_file {
            Some(path) => Some(Arc::new(
                read_secret("webhook.secret_file", path)?.into_bytes(),
            )),
            None => None,
        };
        let spool = open_spool(&config, &http, secret.clone());
        let cdr = config.callbacks.cdr_file.as_ref().and_then(|p| open_cdr(p));
        let workers = workers::Workers::start(0).map_err(StartError::Workers)?;
        let records =
            record_writer::RecordWriter::start(spool.clone(), cdr).map_err(StartError::Workers)?;
        // Recordings are written only for calls that ask (or with `[recording] enabled`);
        // a directory that cannot be opened leaves calls unrecorded, not refused. Opening
        // repairs what a crash left, before the journal's records name those files.
        let recordings = match recording::Recordings::open(
            config.recording.dir.clone(),
            config.recording.retention,
        ) {
            Ok(r) => {
                let r = Arc::new(r);
                if config.recording.retention.is_some() {
                    tokio::spawn(recording::sweep_every_hour(Arc::downgrade(&r)));
                }
                Some(r)
            }
            Err(e) => {
                tracing::warn!(dir = %config.recording.dir.display(), error = %e, "recordings directory unusable; calls are not recorded");
                None
            }
        };
        // Calls that were up when the previous run died get their records before any new
        // call is taken; a call's recording cut by the crash is named in its record.
        let journal_dir = config.callbacks.spool_dir.join("journal");
        let listen = config.api.listen;
        let cut_recording = |call_id: &str| {
            let recordings = recordings.as_ref()?;
            recordings
                .finished(call_id)
                .map(|_| recording::url(listen, call_id))
        };
        let recovered = journal::recover(
            &journal_dir,
            &records,
            record::rule(&config.billing),
            &cut_recording,
        )
        .await;
        if recovered != journal::Recovered::default() {
            tracing::warn!(
                records = recovered.records,
                corrupt = recovered.corrupt,
                "calls found up in the journal from the previous run were reported"
            );
        }
        let journal = journal::Journal::open(&journal_dir);
        let (tx, rx) = mpsc::channel::<EndpointMsg>(4096);
        let ctx = Arc::new(Ctx {
            outbound: std::sync::Mutex::new(crate::core::policy::OutboundGate::new(
                outbound_policy(&config),
            )),
            endpoint: tx.downgrade(),
            config: RwLock::new(Arc::new(config.clone())),
            ports,
            events,
            stats: Stats::default(),
            draining: Default::default(),
            tls,
            http,
            spool,
            records,
            journal,
            recordings,
            transcript_jobs: transcript_jobs::Jobs::new(&config.callbacks.spool_dir),
            api_addr: std::sync::OnceLock::new(),
            secret,
            calls: workers.spawner(),
            registry: Arc::new(registry::Registry::in_memory(
                config.api.call_retention,
                registry::MAX_ENDED,
            )),
            idempotency: idempotency::Keys::default(),
            trunks: Default::default(),
            mail: mail::Mail::start(&config.smtp)?,
            phones: phones::Phones::new(&config, std::time::Instant::now()),
        });
        // Transcripts a stopped or killed run left pending (their recordings repaired above)
        // are finished in the background.
        call_transcript::resume(&ctx);
        let (ttx, trx) = mpsc::channel(4096);
        let mut udp_socks = Vec::new();
        let mut udp_addrs = Vec::new();
        for addr in &config.sip.listen_udp {
            let sock = sip_udp::bind(*addr)
                .await
                .map_err(|source| StartError::Bind {
                    transport: "UDP",
                    addr: *addr,
                    source,
                })?;
            if let Ok(a) = sock.local_addr() {
                udp_addrs.push(a);
            }
            tokio::spawn(sip_udp::recv_loop(
                sock.clone(),
                limits.max_message,
                ttx.clone(),
            ));
            udp_socks.push(sock);
        }
        let streams = ConnLimits::new(
            config.sip.max_connections_per_source as usize,
            handshake_quota(&config),
            std::time::Instant::now(),
        );
        let mut tcp_addrs = Vec::new();
        for addr in &config.sip.listen_tcp {
            let listener = bind_stream("TCP", *addr, &mut tcp_addrs).await?;
            tokio::spawn(sip_tcp::accept_loop(
                listener,
                streams.clone(),
                limits.clone(),
                ttx.clone(),
            ));
        }
        let server_tls = match &config.sip.tls {
            Some(files) if !config.sip.listen_tls.is_empty() => Some(Arc::new(ServerTls::load(
                &files.cert_file,
                &files.key_file,
                &trunk_certs::client_cas(&config),
                config.sip.tls_handshake_timeout,
            )?)),
            _ => None,
        };
        let mut tls_addrs = Vec::new();
        if let Some(tls) = &server_tls {
            for addr in &config.sip.listen_tls {
                let listener = bind_stream("TLS", *addr, &mut tls_addrs).await?;
                let (streams, limits, ttx) = (streams.clone(), limits.clone(), ttx.clone());
                tokio::spawn(sip_tls::accept_loop(
                    listener,
                    tls.clone(),
                    streams,
                    limits,
                    ttx,
                ));
            }
        }
        // Trust for TLS toward trunks; a bad CA file only stops TLS trunks (it was checked).
        let tls_client = match ClientTls::new(config.sip.tls_ca_file.as_deref()) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "no TLS toward trunks");
                None
            }
        };
        let api_addr = match config.api.listen {
            Some(addr) => {
                let token = match &config.api.token_file {
                    Some(path) => Some(read_secret("api.token_file", path)?),
                    None => None,
                };
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind {
                        transport: "HTTP API",
                        addr,
                        source,
                    })?;
                let bound = listener.local_addr().ok();
                if let Some(addr) = bound {
                    let _ = ctx.api_addr.set(addr);
                }
                let settings = crate::api::Settings {
                    token,
                    open: config.api.is_open(),
                    twilio_account: config
                        .api
                        .twilio_compat
                        .then(|| config.api.account_sid.clone()),
                    trusted_proxies: config.api.trusted_proxies.clone(),
                };
                let control =
                    control::Control::new(ctx.clone()).with_recordings(ctx.recordings.clone());
                crate::api::spawn(listener, control, settings);
                bound
            }
            None => None,
        };
        let (done_tx, done_rx) = oneshot::channel();
        let task = endpoint_task::EndpointTask::new(
            settings,
            policy(&config),
            udp_socks,
            ctx.clone(),
            tx.clone(),
        )
        .with_outbound(&ttx, tcp_addrs.first().copied())
        .with_tls(tls_client, tls_addrs.first().copied());
        drop(ttx);
        tokio::spawn(async move {
            task.run(rx, trx).await;
            let _ = done_tx.send(());
        });
        tokio::spawn(heap::trim_after_bursts(Arc::downgrade(&ctx)));
        Ok(Gateway {
            udp_addrs,
            tcp_addrs,
            tls_addrs,
            streams,
            server_tls,
            api_addr,
            ctx,
            ctl: tx,
            done: Some(done_rx),
            _workers: workers,
        })
    }

    /// The handle the control API is given (and tests may use directly).
    pub fn control(&self) -> control::Control {
        control::Control::new(self.ctx.clone()).with_recordings(self.ctx.recordings.clone())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<GatewayEvent> {
        self.ctx.events.subscribe()
    }

    pub fn stats(&self) -> &Stats {
        &self.ctx.stats
    }

    /// RTP ports currently leased by calls.
    pub fn rtp_ports_in_use(&self) -> usize {
        self.ctx.ports.in_use()
    }

    /// Swaps in a new configuration (already validated) and returns once it is in force.
    /// Listeners are not re-bound; calls in progress and admission counters are kept.
    pub async fn reload(&self, config: Config) {
        self.streams.configure(
            config.sip.max_connections_per_source as usize,
            handshake_quota(&config),
            std::time::Instant::now(),
        );
        if let (Some(tls), Some(files)) = (&self.server_tls, &config.sip.tls) {
            let timeout = config.sip.tls_handshake_timeout;
            let cas = trunk_certs::client_cas(&config);
            match tls.reload(&files.cert_file, &files.key_file, &cas, timeout) {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "TLS certificate not reloaded; the old one stays in force")
                }
            }
        }
        let settings = endpoint_settings(&config);
        let policy = policy(&config);
        if let Ok(mut gate) = self.ctx.outbound.lock() {
            gate.set_policy(outbound_policy(&config));
        }
        self.ctx.mail.reload(&config.smtp);
        self.ctx.phones.reload(&config);
        if let Ok(mut c) = self.ctx.config.write() {
            *c = Arc::new(config);
        }
        let (done, applied) = oneshot::channel();
        let msg = EndpointMsg::Reload {
            settings: Box::new(settings),
            policy: Box::new(policy),
            done,
        };
        if self.ctl.send(msg).await.is_ok() {
            // Returns once the new policy is in force, so what follows is judged by it.
            let _ = applied.await;
        }
    }

    /// Starts draining and returns once it is in force: from then on new calls get 503
    /// and running calls are hung up after `grace` (see [`Gateway::shutdown`]).
    pub async fn drain(&self, grace: Duration) {
        let (done, in_force) = oneshot::channel();
        if self
            .ctl
            .send(EndpointMsg::Drain { grace, done })
            .await
            .is_ok()
        {
            let _ = in_force.await;
        }
    }

    /// Graceful drain: new calls get 503, running calls may finish for up to `grace`, then
    /// they are hung up; returns when every call has ended and its record is on disk (or
    /// after `grace` + 5 s). The SIP side of a call ends before its task has written the
    /// record, so the call tasks are waited for too before the workers stop.
    pub async fn shutdown(mut self, grace: Duration) {
        let until = tokio::time::Instant::now() + grace + Duration::from_secs(5);
        self.drain(grace).await;
        if let Some(done) = self.done.take() {
            let _ = tokio::time::timeout_at(until, done).await;
        }
        // Polled: call tasks end on other threads and signal nothing here (bounded).
        while self.ctx.calls.running() > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        self.ctx
            .records
            .flush(left.max(Duration::from_secs(1)))
            .await;
        // Ended calls' journal entries go too, or the next start would report them again.
        self.ctx.journal.flush(Duration::from_secs(5)).await;
        // The callbacks of the calls just ended get a short chance to go out now (bounded;
        // what is left stays spooled and goes out on the next start).
        if let Some(spool) = &self.ctx.spool {
            let give_up = tokio::time::Instant::now() + Duration::from_secs(2);
            while spool.pending() > 0 && tokio::time::Instant::now() < give_up {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
