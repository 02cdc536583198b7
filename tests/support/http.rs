//! In-process HTTP peers for daemon tests (axum on 127.0.0.1): the platform's inbound-call
//! webhook, whose answer is set per test (JSON, TwiML, Plivo XML, an HTTP error, garbage, or
//! never answering; optionally held until the test releases it), and a callback receiver that
//! fails the first N deliveries with HTTP 500. Both record every request (headers, body,
//! arrival time) for the test to await.
//! Must not: sleep to wait for state, or outlive the test (servers are aborted on drop).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// One HTTP request as received.
#[derive(Debug, Clone)]
pub struct Req {
    pub at: Instant,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status this server answered (callbacks), 0 if it never answered.
    pub answered: u16,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body's `event_id`.
    pub fn event_id(&self) -> Option<String> {
        self.json()
            .get("event_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}

fn headers_of(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// A request log the test awaits.
struct Log {
    rx: mpsc::UnboundedReceiver<Req>,
    pending: VecDeque<Req>,
    history: Vec<Req>,
}

impl Log {
    async fn next(&mut self, what: &str, wait: Duration, pred: impl Fn(&Req) -> bool) -> Req {
        if let Some(i) = self.pending.iter().position(&pred) {
            if let Some(r) = self.pending.remove(i) {
                return r;
            }
        }
        let deadline = Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(r)) => {
                    self.history.push(r.clone());
                    if pred(&r) {
                        return r;
                    }
                    self.pending.push_back(r);
                }
                _ => panic!(
                    "timed out waiting for {what} ({} requests so far)",
                    self.history.len()
                ),
            }
        }
    }

    fn drain(&mut self) -> &[Req] {
        while let Ok(r) = self.rx.try_recv() {
            self.history.push(r.clone());
            self.pending.push_back(r);
        }
        &self.history
    }
}

async fn serve(listener: TcpListener, router: Router) -> JoinHandle<()> {
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    })
}

/// How the webhook answers.
#[derive(Debug, Clone)]
pub enum Answer {
    Body {
        content_type: &'static str,
        body: String,
    },
    Status(u16),
    /// Never answers (the gateway's timeout must fire).
    Hang,
}

impl Answer {
    pub fn json(v: Value) -> Answer {
        Answer::Body {
            content_type: "application/json",
            body: v.to_string(),
        }
    }

    pub fn xml(body: &str) -> Answer {
        Answer::Body {
            content_type: "application/xml",
            body: body.to_owned(),
        }
    }

    pub fn garbage() -> Answer {
        Answer::Body {
            content_type: "text/html",
            body: "<<< certainly not an answer".to_owned(),
        }
    }
}

struct HookState {
    answer: Mutex<Answer>,
    /// While false, answers wait (the request is logged first).
    open: watch::Receiver<bool>,
    tx: mpsc::UnboundedSender<Req>,
}

pub struct WebhookServer {
    pub url: String,
    state: Arc<HookState>,
    gate: watch::Sender<bool>,
    log: Log,
    task: JoinHandle<()>,
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn hook(State(s): State<Arc<HookState>>, headers: HeaderMap, body: Bytes) -> Response {
    let _ = s.tx.send(Req {
        at: Instant::now(),
        headers: headers_of(&headers),
        body: body.to_vec(),
        answered: 0,
    });
    let mut open = s.open.clone();
    let _ = open.wait_for(|o| *o).await;
    let answer = s
        .answer
        .lock()
        .map(|a| a.clone())
        .unwrap_or(Answer::Status(500));
    match answer {
        Answer::Body { content_type, body } => {
            ([("content-type", content_type)], body).into_response()
        }
        Answer::Status(code) => StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Answer::Hang => std::future::pending().await,
    }
}

impl WebhookServer {
    pub async fn start(answer: Answer) -> WebhookServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind webhook");
        let addr = listener.local_addr().expect("webhook addr");
        let (tx, rx) = mpsc::unbounded_channel();
        let (gate, open) = watch::channel(true);
        let state = Arc::new(HookState {
            answer: Mutex::new(answer),
            open,
            tx,
        });
        let router = Router::new().fallback(hook).with_state(state.clone());
        WebhookServer {
            url: format!("http://{addr}/incoming"),
            state,
            gate,
            log: Log {
                rx,
                pending: VecDeque::new(),
                history: Vec::new(),
            },
            task: serve(listener, router).await,
        }
    }

    pub fn set_answer(&self, answer: Answer) {
        if let Ok(mut a) = self.state.answer.lock() {
            *a = answer;
        }
    }

    /// Requests are logged but not answered until [`WebhookServer::release`].
    pub fn hold(&self) {
        self.gate.send_replace(false);
    }

    pub fn release(&self) {
        self.gate.send_replace(true);
    }

    pub async fn request(&mut self, wait: Duration) -> Req {
        self.log.next("a webhook request", wait, |_| true).await
    }

    pub fn requests(&mut self) -> &[Req] {
        self.log.drain()
    }
}

struct CbState {
    fail_first: usize,
    seen: AtomicUsize,
    tx: mpsc::UnboundedSender<Req>,
}

async fn callback(State(s): State<Arc<CbState>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let n = s.seen.fetch_add(1, Ordering::SeqCst);
    let status = if n < s.fail_first {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    };
    let _ = s.tx.send(Req {
        at: Instant::now(),
        headers: headers_of(&headers),
        body: body.to_vec(),
        answered: status.as_u16(),
    });
    status
}

pub struct CallbackServer {
    pub url: String,
    pub addr: SocketAddr,
    log: Log,
    task: JoinHandle<()>,
}

impl Drop for CallbackServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CallbackServer {
    /// A receiver on a fresh port that answers 500 to the first `fail_first` deliveries.
    pub async fn start(fail_first: usize) -> CallbackServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind callbacks");
        Self::on(listener, fail_first).await
    }

    /// The same on a given address (a port the gateway already tried while we were down).
    pub async fn start_on(addr: SocketAddr, fail_first: usize) -> std::io::Result<CallbackServer> {
        Ok(Self::on(TcpListener::bind(addr).await?, fail_first).await)
    }

    async fn on(listener: TcpListener, fail_first: usize) -> CallbackServer {
        let addr = listener.local_addr().expect("callback addr");
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(CbState {
            fail_first,
            seen: AtomicUsize::new(0),
            tx,
        });
        let router = Router::new().fallback(callback).with_state(state);
        CallbackServer {
            url: format!("http://{addr}/status"),
            addr,
            log: Log {
                rx,
                pending: VecDeque::new(),
                history: Vec::new(),
            },
            task: serve(listener, router).await,
        }
    }

    /// The next delivery that was answered with a 2xx.
    pub async fn success(&mut self, wait: Duration) -> Req {
        self.log
            .next("a successful callback delivery", wait, |r| {
                (200..300).contains(&r.answered)
            })
            .await
    }

    /// Every delivery so far, failed ones included.
    pub fn deliveries(&mut self) -> &[Req] {
        self.log.drain()
    }
}
