//! An in-process HTTP receiver (axum on 127.0.0.1:0) that records every request it gets —
//! path, JSON body, raw body and `X-Trunkgate-Signature` — for tests of what the gateway POSTs
//! (fraud alerts).
//!
//! Must not judge what it receives: it answers 200 to everything; tests assert.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::{HeaderMap, Uri};
use axum::Router;
use tokio::sync::mpsc;
use trunkgate::core::hooks::sign::verify_signature;

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub body: serde_json::Value,
    /// The body bytes as received (what a signature covers).
    pub raw: Vec<u8>,
    pub signature: Option<String>,
}

impl Hit {
    /// Whether `X-Trunkgate-Signature` is an HMAC of the body under `secret`, made within the
    /// last five minutes.
    pub fn signed_by(&self, secret: &[u8]) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.signature
            .as_deref()
            .is_some_and(|sig| verify_signature(secret, sig, &self.raw, now, 300))
    }
}

pub struct Sink {
    pub addr: SocketAddr,
    rx: mpsc::UnboundedReceiver<Hit>,
    task: tokio::task::JoinHandle<()>,
}

impl Sink {
    pub async fn start() -> Sink {
        let (tx, rx) = mpsc::unbounded_channel();
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let raw = body.clone().into_bytes();
                let body = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
                let signature = headers
                    .get("x-trunkgate-signature")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let _ = tx.send(Hit {
                    path: uri.path().to_string(),
                    body,
                    raw,
                    signature,
                });
                "ok"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind sink");
        let addr = listener.local_addr().expect("sink addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Sink { addr, rx, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next request, or `None` after `wait` (an event wait: returns when one arrives).
    pub async fn next(&mut self, wait: Duration) -> Option<Hit> {
        tokio::time::timeout(wait, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// Requests already received, without waiting.
    pub fn drain(&mut self) -> Vec<Hit> {
        let mut out = Vec::new();
        while let Ok(h) = self.rx.try_recv() {
            out.push(h);
        }
        out
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}
