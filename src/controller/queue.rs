//! The work queue of node names: each name is queued at most once (a node queued twice is
//! processed once, with the latest cached view, which the worker reads when it starts), a
//! name being processed is never handed to a second worker, and failed names come back
//! after a per-node exponential backoff. Its size is bounded by the number of nodes.
//!
//! It feeds upstream's workqueue metrics the way client-go's queue does
//! (k8s.io/client-go `util/workqueue/queue.go` and `metrics.go`): an add that marks a name
//! waiting counts in `adds` and `depth`, taking it ends its queue duration, `done` ends its
//! work duration, and every delayed add counts as a retry (`delaying_queue.go`,
//! `AddAfter`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::metrics::QueueMetrics;

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
    /// When each waiting name (queued or dirty) was first added, for the queue duration.
    added_at: HashMap<String, Instant>,
    /// When each name being processed was taken, for the work duration.
    started_at: HashMap<String, Instant>,
    metrics: QueueMetrics,
    shut_down: bool,
}

impl Inner {
    fn add(&mut self, name: &str) {
        if self.shut_down || self.queued.contains(name) {
            return;
        }
        if self.processing.contains(name) {
            if self.dirty.insert(name.to_string()) {
                self.counted_add(name);
            }
            return;
        }
        self.delayed.remove(name);
        self.queued.insert(name.to_string());
        self.ready.push_back(name.to_string());
        self.counted_add(name);
    }

    /// Counts an add that made `name` wait (upstream: `metrics.add` when the item enters
    /// the dirty set).
    fn counted_add(&mut self, name: &str) {
        self.metrics.adds.inc();
        self.added_at
            .entry(name.to_string())
            .or_insert_with(Instant::now);
        self.update_depth();
    }

    fn update_depth(&self) {
        let depth = self.queued.len() + self.dirty.len();
        self.metrics
            .depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
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
        Self::with_metrics(backoff, QueueMetrics::default())
    }

    /// [`WorkQueue::new`], reporting to `metrics`.
    pub fn with_metrics(backoff: Backoff, metrics: QueueMetrics) -> Self {
        WorkQueue {
            inner: Mutex::new(Inner {
                metrics,
                ..Inner::default()
            }),
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
        if inner.shut_down {
            return;
        }
        inner.metrics.retries.inc();
        if inner.queued.contains(name) {
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
                    let now = Instant::now();
                    if let Some(added) = inner.added_at.remove(&name) {
                        let waited = now.saturating_duration_since(added);
                        inner.metrics.queue_duration.observe(waited.as_secs_f64());
                    }
                    inner.started_at.insert(name.clone(), now);
                    inner.update_depth();
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

    /// Marks `name` as no longer processed; re-queues it if it was added meanwhile (that
    /// add was counted when it came).
    pub fn done(&self, name: &str) {
        let mut inner = self.lock();
        inner.processing.remove(name);
        if let Some(started) = inner.started_at.remove(name) {
            let worked = Instant::now().saturating_duration_since(started);
            inner.metrics.work_duration.observe(worked.as_secs_f64());
        }
        if inner.dirty.remove(name) {
            if !inner.shut_down {
                inner.delayed.remove(name);
                inner.queued.insert(name.to_string());
                inner.ready.push_back(name.to_string());
            }
            inner.update_depth();
            drop(inner);
            self.notify.notify_one();
        }
    }

    /// Sets the gauges of the syncs in progress (upstream refreshes them every 500 ms;
    /// here they are computed when scraped).
    pub fn update_unfinished_work(&self) {
        let inner = self.lock();
        let now = Instant::now();
        let (total, oldest) = inner
            .started_at
            .values()
            .map(|t| now.saturating_duration_since(*t).as_secs_f64())
            .fold((0.0, 0.0), |(total, oldest): (f64, f64), age| {
                (total + age, oldest.max(age))
            });
        inner.metrics.unfinished_work.set(total);
        inner.metrics.longest_running_processor.set(oldest);
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
    async fn metrics_follow_client_gos_workqueue() {
        let metrics = QueueMetrics::default();
        let q = WorkQueue::with_metrics(
            Backoff {
                base: Duration::from_millis(5),
                max: Duration::from_secs(30),
            },
            metrics.clone(),
        );
        let count = |h: &prometheus_client::metrics::histogram::Histogram| {
            let mut text = String::new();
            let mut registry = prometheus_client::registry::Registry::default();
            registry.register("h", "h", h.clone());
            prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix("h_count ")?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(metrics.adds.get(), 2, "a duplicate add is not counted");
        assert_eq!(metrics.depth.get(), 2);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let a = q.next().await.unwrap();
        assert_eq!(metrics.depth.get(), 1);
        assert_eq!(count(&metrics.queue_duration), 1);
        q.add("a");
        assert_eq!(metrics.adds.get(), 3, "an add while processing counts");
        assert_eq!(metrics.depth.get(), 2, "and waits in the depth");
        q.add("a");
        assert_eq!(metrics.adds.get(), 3);
        tokio::time::sleep(Duration::from_millis(10)).await;
        q.update_unfinished_work();
        assert!(metrics.longest_running_processor.get() >= 0.010);
        assert_eq!(
            metrics.unfinished_work.get(),
            metrics.longest_running_processor.get(),
            "one sync in progress"
        );
        q.done(&a);
        assert_eq!(count(&metrics.work_duration), 1);
        assert_eq!(
            metrics.depth.get(),
            2,
            "a is queued again, not counted again"
        );
        assert_eq!(metrics.adds.get(), 3);
        q.update_unfinished_work();
        assert_eq!(metrics.unfinished_work.get(), 0.0);

        assert_eq!(q.retry_later("c"), Duration::from_millis(5));
        q.add_after("d", Duration::from_secs(30));
        assert_eq!(metrics.retries.get(), 2, "every delayed add is a retry");
        assert_eq!(metrics.depth.get(), 2, "delayed names are not in the depth");
        assert_eq!(metrics.adds.get(), 3);
        for _ in 0..3 {
            let name = q.next().await.unwrap();
            q.done(&name);
        }
        assert_eq!(metrics.adds.get(), 4, "c counted when it became due");
        assert_eq!(metrics.depth.get(), 0);
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
