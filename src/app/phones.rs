//! The managers' phones: the registrar (`core::sip::registrar`) shared by the endpoint task,
//! which hands it every REGISTER, and click-to-call (`bridge_from = "user:alice"`), which
//! asks where a user's phone can be rung; plus the flow each registration came on, so the
//! INVITE reaches the phone the way its REGISTER came (its source address, its TCP or TLS
//! connection: NAT-friendly, RFC 5626's connection reuse without its `reg-id`s).
//!
//! Owns: the registrar's lock, its key, the flows of registered sources, reloading users.
//! Must not: hold the lock across an await, log a password (the registrar's replies and
//! `Why` carry none), or decide anything about calls.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crate::config::Config;
use crate::core::sip::message::Message;
use crate::core::sip::registrar::{Alg, Binding, Registrar, Reply, Settings, User};
use crate::core::Flow;

/// Flows remembered beyond this are pruned to the registered ones.
const MAX_FLOWS: usize = 4096;

pub struct Phones {
    inner: Mutex<Inner>,
}

struct Inner {
    registrar: Registrar,
    /// The flow of the latest successful REGISTER from each source.
    flows: HashMap<SocketAddr, Flow>,
}

/// Where to ring one registered phone.
#[derive(Debug, Clone)]
pub struct Phone {
    pub binding: Binding,
    pub flow: Flow,
}

/// The registrar's users from the configuration; users whose password cannot be read are
/// left out (and said so: `--check-config` reports them before a start).
fn users(config: &Config) -> Vec<User> {
    let mut users = Vec::with_capacity(config.users.len());
    for (i, u) in config.users.iter().enumerate() {
        match u.read_password() {
            Ok(password) => users.push(User {
                name: u.name.clone(),
                password: password.expose().to_owned(),
                allow_cidrs: u.allow_cidrs.clone(),
                digest: u
                    .digest
                    .iter()
                    .map(|a| match a.as_str() {
                        "MD5" => Alg::Md5,
                        _ => Alg::Sha256,
                    })
                    .collect(),
            }),
            Err(e) => {
                tracing::error!(error = %format!("user[{i}].password_file: {e}"), "[[user]] left out")
            }
        }
    }
    users
}

impl Phones {
    pub fn new(config: &Config, now: Instant) -> Phones {
        let mut key = [0u8; 32];
        // The nonces' MAC key; without the system's randomness, one from the process's.
        if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key).is_err() {
            key = std::array::from_fn(|_| fastrand::u8(..));
        }
        let registrar = Registrar::new(Settings::default(), users(config), key, now);
        Phones {
            inner: Mutex::new(Inner {
                registrar,
                flows: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// New users (a reload): bindings of removed users go.
    pub fn reload(&self, config: &Config) {
        let users = users(config);
        self.lock().registrar.set_users(users);
    }

    /// Decides one REGISTER that came on `flow`.
    pub fn register(&self, now: Instant, flow: Flow, msg: &Message) -> Reply {
        let random = fastrand::u128(..).to_le_bytes();
        let mut inner = self.lock();
        inner.registrar.expire(now);
        let reply = inner.registrar.handle(now, flow.remote, msg, random);
        if reply.status == 200 {
            inner.flows.insert(flow.remote, flow);
            if inner.flows.len() > MAX_FLOWS {
                inner.prune(now);
            }
        }
        reply
    }

    /// The user's most recently registered live phone, if any.
    pub fn phone(&self, user: &str, now: Instant) -> Option<Phone> {
        let inner = self.lock();
        let bindings = inner.registrar.contacts(user, now);
        bindings
            .into_iter()
            .filter(|b| b.is_live(now))
            .filter_map(|b| {
                let flow = *inner.flows.get(&b.source)?;
                Some(Phone { binding: b, flow })
            })
            .max_by_key(|p| p.binding.expires)
    }

    /// Whether `user` is a configured user.
    pub fn knows(config: &Config, user: &str) -> bool {
        config.users.iter().any(|u| u.name == user)
    }
}

impl Inner {
    /// Keeps only the flows some live binding still uses.
    fn prune(&mut self, now: Instant) {
        let names: Vec<String> = self.registrar.user_names();
        let mut used = std::collections::HashSet::new();
        for name in names {
            for b in self.registrar.contacts(&name, now) {
                used.insert(b.source);
            }
        }
        self.flows.retain(|addr, _| used.contains(addr));
    }
}
