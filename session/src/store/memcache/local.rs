//! Per-key queues inside one process, so that this process's writers of one
//! session take turns instead of racing each other's compare-and-swap.
//!
//! Only an optimisation: correctness between processes comes from the CAS
//! tokens. A key's queue exists while someone holds or waits for it.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// The queues, by key.
#[derive(Default)]
pub(crate) struct Queues {
    queues: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

/// A turn at one key; the next waiter's turn begins when it is dropped.
pub(crate) struct Turn<'a> {
    queues: &'a Queues,
    key: String,
    queue: Arc<AsyncMutex<()>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Queues {
    /// Waits for this process's turn at `key`.
    pub(crate) async fn turn(&self, key: &str) -> Turn<'_> {
        let queue = self
            .queues
            .lock()
            .entry(key.to_owned())
            .or_default()
            .clone();
        let mut turn = Turn {
            queues: self,
            key: key.to_owned(),
            queue: queue.clone(),
            guard: None,
        };
        turn.guard = Some(queue.lock_owned().await);
        turn
    }

    /// How many keys have a queue (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.queues.lock().len()
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.guard = None;
        let mut queues = self.queues.queues.lock();
        // The map's reference and ours: nobody else holds or waits.
        // (A waiter cancelled mid-wait may leave one more reference for a
        // moment; the key's next user then removes the queue.)
        if Arc::strong_count(&self.queue) <= 2
            && let Some(queue) = queues.get(&self.key)
            && Arc::ptr_eq(queue, &self.queue)
        {
            queues.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_turn_at_a_time_per_key_and_queues_go_away() {
        let queues = Arc::new(Queues::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (queues, inside) = (queues.clone(), inside.clone());
                tokio::spawn(async move {
                    for _ in 0..20 {
                        let key = if i % 2 == 0 { "a" } else { "b" };
                        let _turn = queues.turn(key).await;
                        // At most one holder per key, two keys.
                        assert!(inside.fetch_add(1, Ordering::SeqCst) < 2);
                        tokio::task::yield_now().await;
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(queues.len(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_leaves_nothing_behind_for_long() {
        let queues = Queues::default();
        let held = queues.turn("k").await;
        // Cancelled while waiting.
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(10), queues.turn("k")).await;
        assert!(waiting.is_err());
        drop(held);
        drop(queues.turn("k").await);
        assert_eq!(queues.len(), 0);
    }
}
