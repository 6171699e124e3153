//! The work queue of node names: each name is queued at most once (a node queued twice is
//! processed once, with the latest cached view, which the worker reads when it starts), a
//! name being processed is never handed to a second worker, and failed names come back
//! after a per-node exponential backoff. Its size is bounded by the number of nodes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Per-node exponential backoff: `base * 2^failures`, capped at `max`.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay after the `failures`-th consecutive failure (1-based).
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(31);
        self.base.saturating_mul(1u32 << exp).min(self.max)
    }
}

#[derive(Default)]
struct Inner {
    ready: VecDeque<String>,
    /// Names in `ready`.
    queued: HashSet<String>,
    /// Names a worker holds now.
    processing: HashSet<String>,
    /// Names added while being processed: queued again when the worker is done.
    dirty: HashSet<String>,
    /// Names waiting for a delay, with their due time.
    delayed: HashMap<String, Instant>,
    /// Consecutive failures per name.
    failures: HashMap<String, u32>,
    shut_down: bool,
}

impl Inner {
    fn add(&mut self, name: &str) {
        if self.shut_down || self.queued.contains(name) {
            return;
        }
        if self.processing.contains(name) {
            self.dirty.insert(name.to_string());
            return;
        }
        self.delayed.remove(name);
        self.queued.insert(name.to_string());
        self.ready.push_back(name.to_string());
    }

    fn promote_due(&mut self, now: Instant) -> Option<Instant> {
        let due: Vec<String> = self
            .delayed
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            self.delayed.remove(&name);
            self.add(&name);
        }
        self.delayed.values().min().copied()
    }
}

/// The queue shared by the watch (producer) and the workers (consumers).
pub struct WorkQueue {
    inner: Mutex<Inner>,
    notify: Notify,
    backoff: Backoff,
}

impl WorkQueue {
    /// An empty queue whose failed names wait per `backoff`.
    pub fn new(backoff: Backoff) -> Self {
        WorkQueue {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            backoff,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Queues `name` now (no-op when already queued).
    pub fn add(&self, name: &str) {
        self.lock().add(name);
        self.notify.notify_one();
    }

    /// Queues `name` after `delay`, unless it is queued sooner by another call.
    pub fn add_after(&self, name: &str, delay: Duration) {
        let at = Instant::now() + delay;
        let mut inner = self.lock();
        if inner.shut_down || inner.queued.contains(name) {
            return;
        }
        let slot = inner.delayed.entry(name.to_string()).or_insert(at);
        if at < *slot {
            *slot = at;
        }
        drop(inner);
        // Wake a waiting worker so it re-arms its timer for the new due time.
        self.notify.notify_one();
    }

    /// Counts a failure of `name` and queues it after its backoff; returns the delay.
    pub fn retry_later(&self, name: &str) -> Duration {
        self.retry_later_with(name, self.backoff)
    }

    /// [`WorkQueue::retry_later`] with another backoff (for refusals that waiting briefly
    /// cannot fix); the failure count is the same.
    pub fn retry_later_with(&self, name: &str, backoff: Backoff) -> Duration {
        let failures = {
            let mut inner = self.lock();
            let n = inner.failures.entry(name.to_string()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        let delay = backoff.delay(failures);
        self.add_after(name, delay);
        delay
    }

    /// Queues `name` now, unless it waits out the backoff of a failure: the periodic
    /// re-check must not cut a backoff short (a change of the node still does, via `add`).
    pub fn add_unless_backing_off(&self, name: &str) {
        {
            let inner = self.lock();
            if inner.failures.contains_key(name) && inner.delayed.contains_key(name) {
                return;
            }
        }
        self.add(name);
    }

    /// Forgets `name`'s failures (after a success, or when the node is gone).
    pub fn forget(&self, name: &str) {
        self.lock().failures.remove(name);
    }

    /// Waits for the next name and marks it as being processed; `None` after shutdown.
    pub async fn next(&self) -> Option<String> {
        loop {
            let notified = self.notify.notified();
            let deadline = {
                let mut inner = self.lock();
                if inner.shut_down {
                    return None;
                }
                let deadline = inner.promote_due(Instant::now());
                if let Some(name) = inner.ready.pop_front() {
                    inner.queued.remove(&name);
                    inner.processing.insert(name.clone());
                    if !inner.ready.is_empty() {
                        // Let another idle worker pick up the rest.
                        self.notify.notify_one();
                    }
                    return Some(name);
                }
                deadline
            };
            match deadline {
                Some(at) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Marks `name` as no longer processed; re-queues it if it was added meanwhile.
    pub fn done(&self, name: &str) {
        let mut inner = self.lock();
        inner.processing.remove(name);
        if inner.dirty.remove(name) {
            inner.add(name);
            drop(inner);
            self.notify.notify_one();
        }
    }

    /// Names queued or waiting (for `/metrics` and tests).
    pub fn len(&self) -> usize {
        let inner = self.lock();
        inner.queued.len() + inner.delayed.len()
    }

    /// True when nothing is queued or waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops the queue: `next` returns `None` to every worker.
    pub fn shut_down(&self) {
        self.lock().shut_down = true;
        self.notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> WorkQueue {
        WorkQueue::new(Backoff {
            base: Duration::from_millis(5),
            max: Duration::from_secs(30),
        })
    }

    #[test]
    fn backoff_doubles_from_5ms_and_caps() {
        let b = Backoff {
            base: Duration::from_millis(5),
            max: Duration::from_secs(30),
        };
        assert_eq!(b.delay(1), Duration::from_millis(5));
        assert_eq!(b.delay(2), Duration::from_millis(10));
        assert_eq!(b.delay(4), Duration::from_millis(40));
        assert_eq!(b.delay(40), Duration::from_secs(30));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
    }

    #[tokio::test]
    async fn a_name_added_twice_is_processed_once() {
        let q = queue();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.next().await.as_deref(), Some("a"));
        assert_eq!(q.next().await.as_deref(), Some("b"));
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn a_name_added_while_processing_comes_back_after_done_not_before() {
        let q = queue();
        q.add("a");
        let a = q.next().await.unwrap();
        q.add("a");
        assert!(
            q.is_empty(),
            "not handed to a second worker while processing"
        );
        q.done(&a);
        assert_eq!(q.next().await.as_deref(), Some("a"));
    }

    #[tokio::test]
    async fn failed_names_return_after_growing_backoff_and_forget_resets_it() {
        let q = queue();
        let start = Instant::now();
        assert_eq!(q.retry_later("a"), Duration::from_millis(5));
        assert_eq!(q.retry_later("a"), Duration::from_millis(10));
        assert!(!q.is_empty());
        assert_eq!(q.next().await.as_deref(), Some("a"));
        assert!(start.elapsed() >= Duration::from_millis(5));
        assert!(q.is_empty(), "delayed twice, queued once");
        q.done("a");
        q.forget("a");
        assert_eq!(q.retry_later("a"), Duration::from_millis(5));
    }

    #[tokio::test]
    async fn a_periodic_add_leaves_a_failure_backoff_alone_but_not_a_plain_delay() {
        let q = queue();
        let long = Backoff {
            base: Duration::from_secs(300),
            max: Duration::from_secs(1000),
        };
        assert_eq!(q.retry_later_with("a", long), Duration::from_secs(300));
        q.add_unless_backing_off("a");
        assert!(q.lock().ready.is_empty(), "still backing off");
        q.add_after("b", Duration::from_secs(300));
        q.add_unless_backing_off("b");
        assert_eq!(q.next().await.as_deref(), Some("b"));
        q.add("a");
        assert_eq!(
            q.next().await.as_deref(),
            Some("a"),
            "a change still retries"
        );
    }

    #[tokio::test]
    async fn an_immediate_add_overrides_a_pending_delay() {
        let q = queue();
        q.add_after("a", Duration::from_secs(30));
        q.add("a");
        let start = Instant::now();
        assert_eq!(q.next().await.as_deref(), Some("a"));
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn shut_down_releases_waiting_workers() {
        let q = std::sync::Arc::new(queue());
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.next().await }
        });
        tokio::task::yield_now().await;
        q.shut_down();
        assert_eq!(waiter.await.unwrap(), None);
    }
}
