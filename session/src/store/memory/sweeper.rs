//! The background thread that sweeps expired sessions out of an idle store.

use std::sync::Weak;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;

use super::{SWEEP_PERIOD, Shards};

/// Owning this keeps the store's sweeper thread running; dropping it (with
/// the store) wakes the thread, which then ends at once.
///
/// A thread rather than a task on the async runtime: it needs no runtime
/// (nor its timer, which a runtime may have disabled) and never delays the
/// runtime's tasks while it sweeps.
pub(super) struct Sweeper {
    pub(super) _stop: mpsc::Sender<()>,
    /// Only tests wait for the thread; otherwise it ends on its own.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) thread: thread::JoinHandle<()>,
}

impl Sweeper {
    /// Starts the thread. It holds the shards weakly, so it never keeps a
    /// dropped store's sessions alive. `None` if no thread could be started;
    /// the store then sweeps only on its calls.
    pub(super) fn start(shards: Weak<Shards>) -> Option<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let spawned = thread::Builder::new()
            .name("typed-sessions-memory-sweeper".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(SWEEP_PERIOD) {
                    let Some(shards) = shards.upgrade() else {
                        return;
                    };
                    shards.sweep_due();
                }
            });
        match spawned {
            Ok(thread) => Some(Self {
                _stop: stop,
                thread,
            }),
            Err(error) => {
                tracing::warn!(
                    %error,
                    "MemoryStore could not start its sweeper thread; \
                     expired sessions are swept only when the store is called"
                );
                None
            }
        }
    }
}
