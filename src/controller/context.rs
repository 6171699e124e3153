//! The state every task of the controller shares: the API handle, the node cache, the work
//! queue, Events, metrics, the leader gate and the current config.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::Api;

use super::cache::{self, LeanNode, NodeCache, Observed};
use super::error::{MAX_BACKOFF, SYNC_FAILURE_REASONS};
use super::events::Events;
use super::kubelet_fight;
use super::queue::{self, WorkQueue};
use super::settings::Settings;
use crate::config_reload::SharedConfig;
use crate::leader::LeaderGate;
use crate::metrics::Metrics;

/// Everything a worker needs, shared by all tasks of the controller.
pub struct Context {
    pub nodes: Api<LeanNode>,
    pub events: Events,
    pub metrics: Arc<Metrics>,
    pub cache: NodeCache,
    pub queue: WorkQueue,
    /// What became of each node's address refreshes (a kubelet fighting them).
    pub reverts: kubelet_fight::RevertWatch,
    pub gate: Arc<LeaderGate>,
    pub config: Arc<SharedConfig>,
    pub settings: Settings,
    synced: AtomicBool,
}

impl Context {
    /// A context with an empty cache and queue.
    pub fn new(
        client: kube::Client,
        events: Events,
        metrics: Arc<Metrics>,
        gate: Arc<LeaderGate>,
        config: Arc<SharedConfig>,
        settings: Settings,
    ) -> Self {
        metrics.expect_sync_failure_reasons(&SYNC_FAILURE_REASONS);
        let queue = WorkQueue::with_metrics(
            queue::Backoff {
                base: Duration::from_millis(5),
                max: MAX_BACKOFF,
            },
            metrics.queue.clone(),
        );
        Context {
            nodes: Api::all(client),
            events,
            metrics,
            cache: NodeCache::default(),
            reverts: kubelet_fight::RevertWatch::default(),
            queue,
            gate,
            config,
            settings,
            synced: AtomicBool::new(false),
        }
    }

    /// True once the first full list of Nodes is in the cache.
    pub fn cache_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Records that the first full list of Nodes is in the cache; true the first time.
    pub(super) fn mark_synced(&self) -> bool {
        !self.synced.swap(true, Ordering::AcqRel)
    }

    /// Declares that no controller runs (`--controllers=-cloud-node`): there is no node
    /// cache to wait for, so `/readyz` answers ready.
    pub fn run_without_controller(&self) {
        self.synced.store(true, Ordering::Release);
    }

    /// Queues every cached node.
    pub fn enqueue_all(&self) {
        for name in self.cache.names() {
            self.queue.add(&name);
        }
    }

    /// Refreshes the gauges derived from the cache (called before each scrape).
    pub fn update_gauges(&self) {
        let awaiting = self.cache.awaiting_initialization();
        self.metrics
            .nodes_awaiting_initialization
            .set(i64::try_from(awaiting).unwrap_or(i64::MAX));
        self.metrics.leader.set(i64::from(self.gate.is_leading()));
        self.queue.update_unfinished_work();
    }

    pub(super) fn observe(&self, node: LeanNode) -> Option<String> {
        self.record(node, NodeCache::observe)
    }

    /// Like `observe`, for a node of a (re-)list (see [`NodeCache::observe_listed`]).
    pub(super) fn observe_listed(&self, node: LeanNode) -> Option<String> {
        self.record(node, NodeCache::observe_listed)
    }

    fn record(
        &self,
        node: LeanNode,
        store: fn(&NodeCache, cache::Entry) -> Observed,
    ) -> Option<String> {
        let entry = node.into_entry();
        let name = entry.view.name.clone();
        match store(&self.cache, entry) {
            Observed::New | Observed::Changed => {
                self.queue.add(&name);
                Some(name)
            }
            Observed::Unchanged => Some(name),
        }
    }

    pub(super) fn forget(&self, name: &str) {
        self.cache.remove(name);
        self.reverts.forget(name);
        self.queue.forget(name);
        self.events.forget(name);
    }
}
