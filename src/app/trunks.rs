//! The registration driver: one [`Registration`] per `[[trunk]]` whose `outbound.register` is
//! set, owned by the endpoint task. Resolves the trunk's address (off the task), sends the
//! machine's requests through the endpoint task's UDP socket of the address family, or over
//! TCP/TLS hands them to the endpoint task ([`Trunks::take_stream_sends`]), which sends them
//! on its connection toward the trunk (opened when there is none, shared with calls), feeds it
//! the responses no endpoint transaction claimed and its timers, rebuilds on reload (an
//! unchanged trunk keeps its binding), unREGISTERs on drain, and publishes every trunk's state
//! in [`TrunkBoard`] for `GET /v1/trunks` and `/metrics`.
//!
//! Must not: decide anything about REGISTER (the sans-IO machine does), block the endpoint
//! task (names resolve in spawned tasks; UDP sends never wait), or log a password.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::Ctx;
use crate::config::{Config, Outbound};
use crate::core::sip::endpoint::uri_host;
use crate::core::sip::message::Message;
use crate::core::sip::register::{Params, Registration};
use crate::core::sip::txn::Timers;
use crate::core::Transport;

/// A trunk whose name did not resolve is tried again after this long.
const RESOLVE_RETRY: Duration = Duration::from_secs(30);

/// One trunk's registration as the API and metrics show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrunkState {
    pub name: String,
    pub registered: bool,
    pub last_error: Option<String>,
    /// RFC 3339, when the granted binding runs out.
    pub expires_at: Option<String>,
}

/// The shared, published states (in `Ctx`); written by the driver only.
#[derive(Debug, Default)]
pub struct TrunkBoard(Mutex<Vec<TrunkState>>);

impl TrunkBoard {
    pub fn snapshot(&self) -> Vec<TrunkState> {
        match self.0.lock() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn publish(&self, states: Vec<TrunkState>) {
        match self.0.lock() {
            Ok(mut v) => *v = states,
            Err(poisoned) => *poisoned.into_inner() = states,
        }
    }
}

/// What a registration is built from; a reload keeps a trunk whose spec is unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    name: String,
    outbound: Outbound,
    public_host: Option<String>,
    user_agent: String,
}

enum Slot {
    Resolving {
        id: u64,
    },
    Unresolved {
        retry_at: Instant,
        error: String,
    },
    /// Cannot register as configured (no listener of the family, unreadable credentials).
    Unusable(String),
    Running(Box<Running>),
}

struct Running {
    reg: Registration,
    out: Out,
    remote: SocketAddr,
}

/// How a registration's requests leave.
enum Out {
    Udp(Arc<UdpSocket>),
    /// Over the endpoint task's TCP/TLS connection toward the trunk; over TLS the certificate
    /// must name `tls_name` when set.
    Stream {
        transport: Transport,
        tls_name: Option<String>,
    },
}

/// A request for the endpoint task to send on its stream connection toward `remote`.
pub struct StreamSend {
    pub transport: Transport,
    pub remote: SocketAddr,
    pub tls_name: Option<String>,
    pub bytes: Vec<u8>,
}

struct Trunk {
    spec: Spec,
    slot: Slot,
}

/// A resolution finished (`id` names the request, so a stale answer is dropped).
pub struct Resolved {
    id: u64,
    result: Result<SocketAddr, String>,
}

pub struct Trunks {
    ctx: Arc<Ctx>,
    udp: Vec<Arc<UdpSocket>>,
    /// Our TCP and TLS listening addresses (advertised in Via/Contact over streams).
    stream_locals: StreamLocals,
    /// Requests queued for the endpoint task's stream connections.
    stream_out: Vec<StreamSend>,
    trunks: Vec<Trunk>,
    /// Stopped (removed or changed) registrations finishing their unREGISTER.
    retiring: Vec<Running>,
    next_id: u64,
    tx: mpsc::UnboundedSender<Resolved>,
    rx: mpsc::UnboundedReceiver<Resolved>,
    stopping: bool,
}

impl Trunks {
    pub fn new(ctx: Arc<Ctx>, udp: Vec<Arc<UdpSocket>>) -> Trunks {
        let (tx, rx) = mpsc::unbounded_channel();
        Trunks {
            ctx,
            udp,
            stream_locals: StreamLocals::default(),
            stream_out: Vec::new(),
            trunks: Vec::new(),
            retiring: Vec::new(),
            next_id: 0,
            tx,
            rx,
            stopping: false,
        }
    }

    /// Our stream listeners' addresses (for Via and Contact of REGISTER over TCP/TLS).
    pub fn set_stream_locals(&mut self, locals: StreamLocals) {
        self.stream_locals = locals;
    }

    /// What registrations queued for stream connections since the last call.
    pub fn take_stream_sends(&mut self) -> Vec<StreamSend> {
        std::mem::take(&mut self.stream_out)
    }

    /// (Re)builds the registrations from `config`: unchanged trunks keep theirs, others are
    /// unREGISTERed and replaced.
    pub fn configure(&mut self, config: &Config, now: Instant) {
        if self.stopping {
            return;
        }
        let public_host = super::public_host(config);
        let specs = config.trunks.iter().filter_map(|t| {
            let outbound = t.outbound.clone().filter(|o| o.register)?;
            Some(Spec {
                name: t.name.clone(),
                outbound,
                public_host: public_host.clone(),
                user_agent: config.sip.user_agent.clone(),
            })
        });
        let mut old = std::mem::take(&mut self.trunks);
        for spec in specs {
            match old.iter().position(|t| t.spec == spec) {
                Some(i) => self.trunks.push(old.swap_remove(i)),
                None => {
                    let slot = self.resolve(&spec);
                    self.trunks.push(Trunk { spec, slot });
                }
            }
        }
        for t in old {
            self.retire(t.slot, now);
        }
        self.after(now);
    }

    /// Drain or shutdown: every binding is removed.
    pub fn stop_all(&mut self, now: Instant) {
        self.stopping = true;
        for t in std::mem::take(&mut self.trunks) {
            self.retire(t.slot, now);
        }
        self.after(now);
    }

    /// No unREGISTER is still waiting for its answer.
    pub fn is_idle(&self) -> bool {
        self.retiring.is_empty()
    }

    /// Offers a response no endpoint transaction claimed; true when a registration took it.
    pub fn on_response(&mut self, now: Instant, msg: &Message) -> bool {
        let taken = self.running_mut().any(|r| r.reg.handle_response(now, msg));
        self.after(now);
        taken
    }

    /// Waits for the next timer or resolution; cancel-safe (for `select!`).
    pub async fn wait(&mut self) -> Option<Resolved> {
        let at = self.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            r = self.rx.recv() => r,
            _ = async {
                match at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => None,
        }
    }

    /// What [`Trunks::wait`] returned: a resolution to use, or timers due.
    pub fn on_wake(&mut self, wake: Option<Resolved>, now: Instant) {
        if let Some(r) = wake {
            self.on_resolved(r, now);
        }
        for i in 0..self.trunks.len() {
            let due =
                matches!(self.trunks[i].slot, Slot::Unresolved { retry_at, .. } if retry_at <= now);
            if due {
                let spec = self.trunks[i].spec.clone();
                self.trunks[i].slot = self.resolve(&spec);
            }
        }
        for r in self.running_mut() {
            r.reg.handle_timeout(now);
        }
        self.after(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let regs = self.trunks.iter().filter_map(|t| match &t.slot {
            Slot::Running(r) => r.reg.poll_timeout(),
            Slot::Unresolved { retry_at, .. } => Some(*retry_at),
            _ => None,
        });
        regs.chain(self.retiring.iter().filter_map(|r| r.reg.poll_timeout()))
            .min()
    }

    fn running_mut(&mut self) -> impl Iterator<Item = &mut Running> {
        let active = self.trunks.iter_mut().filter_map(|t| match &mut t.slot {
            Slot::Running(r) => Some(r.as_mut()),
            _ => None,
        });
        active.chain(self.retiring.iter_mut())
    }

    fn retire(&mut self, slot: Slot, now: Instant) {
        if let Slot::Running(mut r) = slot {
            r.reg.stop(now);
            self.retiring.push(*r);
        }
    }

    /// Starts resolving a trunk's address in its own task.
    fn resolve(&mut self, spec: &Spec) -> Slot {
        self.next_id += 1;
        let (id, tx, address) = (
            self.next_id,
            self.tx.clone(),
            spec.outbound.address.to_string(),
        );
        tokio::spawn(async move {
            let result = match tokio::net::lookup_host(address.as_str()).await {
                Ok(mut addrs) => addrs.next().ok_or_else(|| "no address".to_string()),
                Err(e) => Err(e.to_string()),
            };
            let _ = tx.send(Resolved { id, result });
        });
        Slot::Resolving { id }
    }

    fn on_resolved(&mut self, r: Resolved, now: Instant) {
        let Some(t) = self
            .trunks
            .iter_mut()
            .find(|t| matches!(t.slot, Slot::Resolving { id } if id == r.id))
        else {
            return;
        };
        t.slot = match r.result {
            Err(e) => Slot::Unresolved {
                retry_at: now + RESOLVE_RETRY,
                error: format!("cannot resolve {}: {e}", t.spec.outbound.address),
            },
            Ok(remote) => match build(&t.spec, &self.udp, self.stream_locals, remote) {
                Ok(mut running) => {
                    tracing::info!(trunk = %t.spec.name, %remote, "registering with the trunk");
                    running.reg.start(now);
                    Slot::Running(Box::new(running))
                }
                Err(e) => Slot::Unusable(e),
            },
        };
    }

    /// Sends what the machines queued, forgets finished unREGISTERs, publishes the states.
    fn after(&mut self, now: Instant) {
        let mut streamed = Vec::new();
        for r in self.running_mut() {
            while let Some(bytes) = r.reg.poll_transmit() {
                match &r.out {
                    // Never waits: a full socket buffer is a loss the transaction retransmits.
                    Out::Udp(sock) => {
                        if let Err(e) = sock.try_send_to(&bytes, r.remote) {
                            if e.kind() != std::io::ErrorKind::WouldBlock {
                                r.reg.handle_transport_error(now, &e.to_string());
                            }
                        }
                    }
                    // A connection that cannot be opened shows as the transaction's timeout.
                    Out::Stream {
                        transport,
                        tls_name,
                    } => streamed.push(StreamSend {
                        transport: *transport,
                        remote: r.remote,
                        tls_name: tls_name.clone(),
                        bytes,
                    }),
                }
            }
        }
        self.stream_out.extend(streamed);
        self.retiring.retain(|r| !r.reg.is_done());
        let (mono, wall) = (now, jiff::Timestamp::now());
        let states = self.trunks.iter().map(|t| view(t, mono, wall)).collect();
        self.ctx.trunks.publish(states);
    }
}

fn view(t: &Trunk, mono: Instant, wall: jiff::Timestamp) -> TrunkState {
    let (registered, last_error, expires_at) = match &t.slot {
        Slot::Running(r) => {
            let st = r.reg.state();
            let at = st.expires_at.and_then(|at| {
                let left = jiff::SignedDuration::try_from(at.saturating_duration_since(mono));
                wall.checked_add(left.ok()?).ok()
            });
            (
                st.registered,
                st.last_error.clone(),
                at.map(|a| a.to_string()),
            )
        }
        Slot::Resolving { .. } => (false, None, None),
        Slot::Unresolved { error, .. } | Slot::Unusable(error) => {
            (false, Some(error.clone()), None)
        }
    };
    TrunkState {
        name: t.spec.name.clone(),
        registered,
        last_error,
        expires_at,
    }
}

/// Our stream listeners' addresses; `None` → the transport's default port is advertised.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamLocals {
    pub tcp: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
}

impl StreamLocals {
    /// What Via and Contact advertise on a connection we open over `transport` (TCP or
    /// TLS): our listener, so the peer can also connect back; else 0.0.0.0 and the default.
    pub fn advertised(&self, transport: Transport) -> SocketAddr {
        let (listener, port) = match transport {
            Transport::Tls => (self.tls, 5061),
            _ => (self.tcp, 5060),
        };
        listener.unwrap_or_else(|| SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), port))
    }
}

/// The registration of `spec` toward `remote`: from our UDP socket of its family, or over
/// the endpoint task's TCP/TLS connection (advertising our listener of that transport).
fn build(
    spec: &Spec,
    udp: &[Arc<UdpSocket>],
    streams: StreamLocals,
    remote: SocketAddr,
) -> Result<Running, String> {
    let o = &spec.outbound;
    let transport = super::dial_spec::transport(o.transport);
    let param = super::dial_spec::transport_param(transport);
    let (out, local) = match transport {
        Transport::Udp => {
            let (sock, local) = udp
                .iter()
                .filter_map(|s| Some((s, s.local_addr().ok()?)))
                .find(|(_, a)| a.is_ipv4() == remote.is_ipv4())
                .ok_or_else(|| format!("no UDP listener for {remote}'s address family"))?;
            (Out::Udp(sock.clone()), local)
        }
        Transport::Tcp | Transport::Tls => {
            let out = Out::Stream {
                transport,
                tls_name: super::dial_spec::tls_name(o, &o.address),
            };
            (out, streams.advertised(transport))
        }
    };
    let host = match &spec.public_host {
        Some(h) => h.clone(),
        None => uri_host(crate::io::sip_udp::local_ip_toward(local.ip(), remote)),
    };
    let sent_by = format!("{host}:{}", local.port());
    let domain = &o.from_domain;
    let credentials = o.read_credentials().map_err(|e| e.to_string())?;
    let params = Params {
        registrar: format!("sip:{}{param}", o.address),
        aor: format!("sip:{}@{domain}", o.username),
        contact: format!("<sip:{}@{sent_by}{param}>", o.username),
        expires: u32::try_from(o.register_expires.as_secs()).unwrap_or(u32::MAX),
        credentials,
        transport,
        sent_by,
        user_agent: spec.user_agent.clone(),
        timers: Timers::default(),
    };
    Ok(Running {
        reg: Registration::new(params, fastrand::u64(..)),
        out,
        remote,
    })
}
