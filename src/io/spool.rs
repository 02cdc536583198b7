//! At-least-once delivery of callbacks: every record is written to an on-disk spool (file
//! written, fsynced, renamed, directory fsynced) before the first attempt, retried with
//! exponential backoff, and removed only after a 2xx. Pending files are picked up again at
//! start-up, so a restart — `kill -9` included — loses nothing. A record that exhausts its
//! attempts moves to `dead/`, still on disk.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Semaphore};

/// What one spool file holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Envelope {
    pub url: String,
    pub event_id: String,
    pub attempts: u32,
    /// The body, as sent.
    pub body: String,
    /// The body's Content-Type; `None` (every file written before it was recorded too):
    /// `application/json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// One callback to spool: where it goes, its event id, its body and the body's type
/// (`None`: JSON).
#[derive(Debug, Clone, Copy)]
pub struct Submission<'a> {
    pub url: &'a str,
    pub event_id: &'a str,
    pub body: &'a str,
    pub content_type: Option<&'a str>,
}

#[derive(Debug, Default)]
pub struct SpoolStats {
    pub submitted: AtomicU64,
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub dead: AtomicU64,
}

#[derive(Clone)]
pub struct SpoolSettings {
    pub dir: PathBuf,
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// HMAC key for `X-Trunkgate-Signature`.
    pub secret: Option<Arc<Vec<u8>>>,
}

/// A handle to the spool; cheap to clone.
#[derive(Clone)]
pub struct Spool {
    settings: Arc<SpoolSettings>,
    tx: mpsc::UnboundedSender<PathBuf>,
    pub stats: Arc<SpoolStats>,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl Spool {
    /// Opens (creating) the spool directory, queues every pending file, starts delivering.
    pub fn open(settings: SpoolSettings, client: reqwest::Client) -> std::io::Result<Spool> {
        fs::create_dir_all(&settings.dir)?;
        fs::create_dir_all(settings.dir.join("dead"))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut pending: Vec<PathBuf> = fs::read_dir(&settings.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        pending.sort();
        for p in pending {
            let _ = tx.send(p);
        }
        let spool = Spool {
            settings: Arc::new(settings),
            tx,
            stats: Arc::new(SpoolStats::default()),
        };
        tokio::spawn(deliver_loop(spool.clone(), rx, client));
        Ok(spool)
    }

    /// Durably records several callbacks — each written and synced, all renamed, then one
    /// directory sync for the lot — then queues them. One result per item, in order; `Ok`
    /// means that file is on disk. (`syncfs` once per batch instead of a sync per file was
    /// measured slower: it flushes everything else on the filesystem too.)
    pub fn submit_batch(&self, items: &[Submission<'_>]) -> Vec<std::io::Result<PathBuf>> {
        let staged: Vec<std::io::Result<(PathBuf, PathBuf)>> = items
            .iter()
            .map(|item| {
                let env = Envelope {
                    url: item.url.to_string(),
                    event_id: item.event_id.to_string(),
                    attempts: 0,
                    body: item.body.to_string(),
                    content_type: item.content_type.map(str::to_string),
                };
                let path = self.new_path(item.event_id);
                let tmp = path.with_extension("tmp");
                let bytes = serde_json::to_vec(&env).map_err(std::io::Error::other)?;
                let mut f = fs::File::create(&tmp)?;
                f.write_all(&bytes)?;
                f.sync_data()?;
                Ok((tmp, path))
            })
            .collect();
        let results: Vec<std::io::Result<PathBuf>> = staged
            .into_iter()
            .map(|s| {
                let (tmp, path) = s?;
                fs::rename(&tmp, &path)?;
                Ok(path)
            })
            .collect();
        if results.iter().any(Result::is_ok) {
            if let Ok(d) = fs::File::open(&self.settings.dir) {
                let _ = d.sync_all();
            }
        }
        for path in results.iter().flatten() {
            self.stats.submitted.fetch_add(1, Ordering::Relaxed);
            let _ = self.tx.send(path.clone());
        }
        results
    }

    fn new_path(&self, event_id: &str) -> PathBuf {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let name = format!(
            "{:013}-{:06}-{}.json",
            now.as_millis(),
            SEQ.fetch_add(1, Ordering::Relaxed) % 1_000_000,
            sanitize(event_id)
        );
        self.settings.dir.join(name)
    }

    /// Files still waiting for delivery.
    pub fn pending(&self) -> usize {
        fs::read_dir(&self.settings.dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0)
    }
}

fn sanitize(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect()
}

/// Writes `env` to `path` so that a crash leaves either the old file, or the new one whole.
fn write_atomic(path: &Path, env: &Envelope) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec(env).map_err(std::io::Error::other)?;
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

async fn deliver_loop(
    spool: Spool,
    mut rx: mpsc::UnboundedReceiver<PathBuf>,
    client: reqwest::Client,
) {
    let slots = Arc::new(Semaphore::new(16));
    while let Some(path) = rx.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let spool = spool.clone();
        let client = client.clone();
        tokio::spawn(async move {
            attempt(&spool, &client, path).await;
            drop(permit);
        });
    }
}

async fn attempt(spool: &Spool, client: &reqwest::Client, path: PathBuf) {
    let Ok(text) = tokio::fs::read(&path).await else {
        return;
    };
    let Ok(mut env) = serde_json::from_slice::<Envelope>(&text) else {
        tracing::error!(path = %path.display(), "unreadable spool file moved to dead/");
        move_dead(spool, &path);
        return;
    };
    let outcome = super::http::signed_post(
        client,
        &env.url,
        env.content_type.as_deref().unwrap_or("application/json"),
        &[("X-Trunkgate-Event-Id", &env.event_id)],
        env.body.clone().into_bytes(),
        spool.settings.secret.as_deref().map(Vec::as_slice),
        None,
    )
    .await;
    let ok = matches!(&outcome, Ok(r) if r.status().is_success());
    if ok {
        tracing::info!(event_id = %env.event_id, "callback delivered");
        spool.stats.delivered.fetch_add(1, Ordering::Relaxed);
        let _ = tokio::fs::remove_file(&path).await;
        return;
    }
    spool.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
    env.attempts += 1;
    let why = match outcome {
        Ok(r) => format!("HTTP {}", r.status()),
        Err(e) => e.to_string(),
    };
    if env.attempts >= spool.settings.max_attempts {
        tracing::error!(event_id = %env.event_id, attempts = env.attempts, %why, "callback given up; kept in dead/");
        let _ = write_atomic(&path, &env);
        move_dead(spool, &path);
        return;
    }
    if let Err(e) = write_atomic(&path, &env) {
        tracing::error!(error = %e, "cannot update spool file");
    }
    let exp = env.attempts.saturating_sub(1).min(16);
    let delay = (spool.settings.backoff * 2u32.pow(exp)).min(spool.settings.max_backoff);
    tracing::warn!(event_id = %env.event_id, attempts = env.attempts, %why, retry_in = ?delay, "callback failed");
    let tx = spool.tx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let _ = tx.send(path);
    });
}

fn move_dead(spool: &Spool, path: &Path) {
    spool.stats.dead.fetch_add(1, Ordering::Relaxed);
    if let Some(name) = path.file_name() {
        let _ = fs::rename(path, spool.settings.dir.join("dead").join(name));
    }
}
