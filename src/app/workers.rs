//! Call workers: one single-threaded runtime per core, each on its own thread, running whole
//! call tasks (webhook, agent WebSocket, RTP, the call record).
//!
//! A call's sockets are created inside its task, so they are registered with that worker's
//! reactor: the packet that wakes a call, the call's timer and the call's task are all on one
//! thread. On the shared work-stealing runtime the same calls cost ~30 % more CPU (500 bridged
//! calls: 0.70 → 0.49 of a core with one thread), spent waking and parking workers across
//! cores and stealing tasks between them. Signalling (the SIP endpoint task, transports, the
//! API) stays on the main runtime and talks to calls over channels, as before.
//!
//! Owns: the worker threads and the choice of worker for a new call (the least loaded).
//! Dropping [`Workers`] stops the threads; the calls still on them are cancelled.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// Where calls are spawned; cheap to clone, does not keep the threads alive.
#[derive(Clone)]
pub struct Spawner {
    workers: Arc<[(Handle, AtomicUsize)]>,
    next: Arc<AtomicUsize>,
    stopped: Arc<AtomicBool>,
}

/// The workers have stopped (the gateway was dropped): the call was not started.
#[derive(Debug)]
pub struct Stopped;

impl Spawner {
    /// Runs `call` on the worker with the fewest calls (round-robin among equals).
    pub fn spawn<F>(&self, call: F) -> Result<(), Stopped>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.stopped.load(Ordering::Acquire) {
            return Err(Stopped);
        }
        let n = self.workers.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut best = start;
        for k in 0..n {
            let i = (start + k) % n;
            if self.workers[i].1.load(Ordering::Relaxed)
                < self.workers[best].1.load(Ordering::Relaxed)
            {
                best = i;
            }
        }
        let workers = self.workers.clone();
        workers[best].1.fetch_add(1, Ordering::Relaxed);
        let handle = workers[best].0.clone();
        handle.spawn(async move {
            // Counted down however the call ends (a panic is caught inside the call task).
            let _done = Done(workers, best);
            call.await;
        });
        Ok(())
    }

    /// Calls running on all workers.
    pub fn running(&self) -> usize {
        self.loads().iter().sum()
    }

    /// Calls running on each worker.
    pub fn loads(&self) -> Vec<usize> {
        self.workers
            .iter()
            .map(|(_, n)| n.load(Ordering::Relaxed))
            .collect()
    }
}

struct Done(Arc<[(Handle, AtomicUsize)]>, usize);

impl Drop for Done {
    fn drop(&mut self) {
        self.0[self.1].1.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The worker threads; dropping this stops them.
pub struct Workers {
    spawner: Spawner,
    _stop: Vec<oneshot::Sender<()>>,
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.spawner.stopped.store(true, Ordering::Release);
    }
}

impl Workers {
    /// `threads` workers (0 → one per core).
    pub fn start(threads: usize) -> std::io::Result<Workers> {
        let n = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        let mut handles = Vec::with_capacity(n);
        let mut stop = Vec::with_capacity(n);
        for i in 0..n {
            // The runtime is built (and dropped) on its own thread: a runtime must not be
            // dropped inside another one's async context, which `Gateway::start` is.
            let (handle_tx, handle_rx) = std::sync::mpsc::channel();
            let (tx, rx) = oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("call-worker-{i}"))
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = handle_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = handle_tx.send(Ok(rt.handle().clone()));
                    rt.block_on(async {
                        let _ = rx.await;
                    });
                })?;
            let handle = handle_rx
                .recv()
                .map_err(|_| std::io::Error::other("call worker thread ended at start"))??;
            handles.push((handle, AtomicUsize::new(0)));
            stop.push(tx);
        }
        Ok(Workers {
            spawner: Spawner {
                workers: handles.into(),
                next: Arc::new(AtomicUsize::new(0)),
                stopped: Arc::new(AtomicBool::new(false)),
            },
            _stop: stop,
        })
    }

    pub fn spawner(&self) -> Spawner {
        self.spawner.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_spread_over_workers_and_run_on_their_threads() {
        let workers = Workers::start(2).expect("workers");
        let s = workers.spawner();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (release_tx, release_rx) = tokio::sync::watch::channel(false);
        for _ in 0..4 {
            let tx = tx.clone();
            let mut release = release_rx.clone();
            s.spawn(async move {
                let name = std::thread::current().name().map(str::to_string);
                let _ = tx.send(name);
                let _ = release.wait_for(|r| *r).await;
            })
            .expect("workers running");
        }
        let mut names = Vec::new();
        for _ in 0..4 {
            names.push(rx.recv().await.flatten().expect("thread name"));
        }
        names.sort();
        assert_eq!(
            names,
            [
                "call-worker-0",
                "call-worker-0",
                "call-worker-1",
                "call-worker-1"
            ]
        );
        assert_eq!(s.loads(), vec![2, 2]);
        let _ = release_tx.send(true);
        // Each call's slot is given back when it ends (on the worker threads: polled, bounded).
        for _ in 0..5000 {
            if s.loads() == vec![0, 0] {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert_eq!(s.loads(), vec![0, 0]);
    }

    #[tokio::test]
    async fn dropping_the_workers_cancels_their_calls() {
        let workers = Workers::start(1).expect("workers");
        let s = workers.spawner();
        let (tx, rx) = oneshot::channel::<()>();
        let (started_tx, started_rx) = oneshot::channel::<()>();
        s.spawn(async move {
            let _ = started_tx.send(());
            std::future::pending::<()>().await;
            drop(tx);
        })
        .expect("workers running");
        let _ = started_rx.await;
        drop(workers);
        // The call's future is dropped with its runtime: the sender goes with it.
        assert!(rx.await.is_err());
        // And no new call is taken on.
        assert!(s.spawn(async {}).is_err());
    }
}
