//! Long polling without polling the database: a receive that found nothing waits on
//! its queue's notifier, which a send in this process wakes. A send in another process
//! cannot wake it, so a waiter also looks again every `LONG_POLL_RECHECK`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// How often a long poll looks again without being woken.
pub const LONG_POLL_RECHECK: Duration = Duration::from_secs(1);
/// Queues with waiters this process tracks at most (beyond it, waiters only recheck).
const QUEUES_WAITED_ON_MAX: usize = 100_000;

#[derive(Default)]
pub struct Waiters {
    queues: Mutex<HashMap<i64, Arc<Notify>>>,
}

impl Waiters {
    /// The notifier of a queue a receive is about to wait on.
    pub fn notifier(&self, queue_id: i64) -> Arc<Notify> {
        let mut queues = self.queues.lock().expect("waiters");
        if queues.len() >= QUEUES_WAITED_ON_MAX && !queues.contains_key(&queue_id) {
            // Forget queues nobody waits on any more.
            queues.retain(|_, n| Arc::strong_count(n) > 1);
            if queues.len() >= QUEUES_WAITED_ON_MAX {
                return Arc::new(Notify::new());
            }
        }
        queues.entry(queue_id).or_default().clone()
    }

    /// Wakes a queue's waiters (a message was sent or became visible).
    pub fn wake(&self, queue_id: i64) {
        let queues = self.queues.lock().expect("waiters");
        if let Some(n) = queues.get(&queue_id) {
            n.notify_waiters();
        }
    }

    /// Forgets a queue's notifier once nobody waits on it.
    pub fn release(&self, queue_id: i64) {
        let mut queues = self.queues.lock().expect("waiters");
        if queues
            .get(&queue_id)
            .is_some_and(|n| Arc::strong_count(n) == 1)
        {
            queues.remove(&queue_id);
        }
    }
}
