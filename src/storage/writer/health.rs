//! Whether the writer thread still runs, for `/healthz` and for the requests that would wait on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Whether the writer thread still runs; it is gone only after a panic or a failure it cannot survive.
pub struct WriterHealth {
    alive: AtomicBool,
    stopped: Notify,
}

impl WriterHealth {
    /// The health of a writer about to be started.
    pub fn running() -> WriterHealth {
        WriterHealth {
            alive: AtomicBool::new(true),
            stopped: Notify::new(),
        }
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Resolves once the writer thread has ended, for whatever reason.
    pub async fn stopped(&self) {
        if self.is_alive() {
            self.stopped.notified().await;
        }
    }
}

/// Marks the writer gone when its thread ends, by return or by panic.
pub(super) struct AliveGuard(pub(super) Arc<WriterHealth>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.alive.store(false, Ordering::SeqCst);
        self.0.stopped.notify_one();
        if std::thread::panicking() {
            tracing::error!("the writer thread panicked: nothing more can be stored");
        }
    }
}
