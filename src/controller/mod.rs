//! The node controller: one watch on Nodes feeds the projection cache; relevant changes
//! queue the node's name; workers sync queued nodes (see `sync`) while this replica leads.
//! Every node is re-queued on gaining the lease, on a config change and every
//! `--node-status-update-frequency`, so nothing depends on a single event being seen.
//! It owns no metadata logic: that is `resolve` and `patch`.

pub mod cache;
pub mod client;
pub mod events;
pub mod kubelet_fight;
pub mod queue;
pub mod sync;
pub mod tasks;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio_util::sync::CancellationToken;

use crate::config_reload::SharedConfig;
use crate::leader::LeaderGate;
use crate::metrics::Metrics;
use crate::telemetry::Chain;
use cache::{LeanNode, NodeCache, Observed};
use events::{Events, REASON_WRITE_FORBIDDEN, REASON_WRITE_REJECTED, node_ref};
use queue::WorkQueue;
use sync::{Synced, Write};
use tasks::TaskFailed;

/// Why a node sync failed. Every variant names the node and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The resolver reported errors; the node keeps its taint (or its addresses).
    #[error("node {node}: metadata cannot be resolved: {}", errors.join("; "))]
    Unresolved { node: String, errors: Vec<String> },
    /// Others kept changing the node between our read and our write.
    #[error(
        "node {node}: the write conflicted with other writers {attempts} times in a row; retrying with backoff"
    )]
    Conflict { node: String, attempts: u32 },
    /// This replica does not hold the lease (or its renewal is overdue).
    #[error("node {node}: not written, this replica does not hold the leader lease")]
    NotLeader { node: String },
    /// The API server refused or did not answer.
    #[error(
        "node {node}: {write} failed: {source}; check that the API server is reachable and that bare-ccm may get/patch nodes and nodes/status"
    )]
    Api {
        node: String,
        write: Write,
        #[source]
        source: kube::Error,
    },
}

/// Every value of [`Error::metric_label`], exported with a count of 0 from the start.
pub const SYNC_FAILURE_REASONS: [&str; 7] = [
    "unresolved",
    "conflict",
    "not_leader",
    "throttled",
    "api_server_error",
    "api_rejected",
    "api_unreachable",
];

/// A refusal that retrying soon cannot fix: what the Warning Event and the log say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The Warning reason ([`REASON_WRITE_FORBIDDEN`] or [`REASON_WRITE_REJECTED`]).
    pub reason: &'static str,
    /// The Event note and log message: what was refused and what to do.
    pub note: String,
}

impl Error {
    /// The refusal when the API server answered 403 Forbidden (RBAC) or 422 Invalid (a
    /// write it will never accept; a failed JSON-patch `test` is a conflict instead, see
    /// `sync::is_failed_test`). Retrying such a write every 30 s only repeats the refusal;
    /// it is retried with [`REJECTED_BACKOFF`].
    pub fn rejection(&self) -> Option<Rejection> {
        let Error::Api {
            write,
            source: kube::Error::Api(status),
            ..
        } = self
        else {
            return None;
        };
        match status.code {
            403 => {
                let fix = match missing_grant(&status.message) {
                    Some(grant) => format!(
                        "{} may not {} {} in API group {:?} {}: grant it, e.g. re-apply the ClusterRole bare-ccm of manifests/bare-ccm.yaml",
                        grant.user, grant.verb, grant.resource, grant.group, grant.scope
                    ),
                    None => "check bare-ccm's RBAC (re-apply manifests/bare-ccm.yaml)".into(),
                };
                Some(Rejection {
                    reason: REASON_WRITE_FORBIDDEN,
                    note: format!("{write} is forbidden: {fix}"),
                })
            }
            422 => Some(Rejection {
                reason: REASON_WRITE_REJECTED,
                note: format!(
                    "{write} was refused by the API server as invalid: {}",
                    status.message
                ),
            }),
            _ => None,
        }
    }

    /// A low-cardinality label for `bare_ccm_node_sync_failures_total{reason}`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Unresolved { .. } => "unresolved",
            Error::Conflict { .. } => "conflict",
            Error::NotLeader { .. } => "not_leader",
            Error::Api { source, .. } => match source {
                kube::Error::Api(s) if s.code == 429 => "throttled",
                kube::Error::Api(s) if s.code >= 500 => "api_server_error",
                kube::Error::Api(_) => "api_rejected",
                _ => "api_unreachable",
            },
        }
    }
}

/// Tunables of the controller (from `run`'s flags).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Concurrent workers (`--concurrent-node-syncs`).
    pub workers: usize,
    /// Full re-queue period (`--node-status-update-frequency`).
    pub resync: Duration,
    /// Delay before retrying a node refused for lack of leadership.
    pub not_leader_retry: Duration,
}

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

    fn observe(&self, node: LeanNode) -> Option<String> {
        self.record(node, NodeCache::observe)
    }

    /// Like `observe`, for a node of a (re-)list (see [`NodeCache::observe_listed`]).
    fn observe_listed(&self, node: LeanNode) -> Option<String> {
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

    fn forget(&self, name: &str) {
        self.cache.remove(name);
        self.reverts.forget(name);
        self.queue.forget(name);
        self.events.forget(name);
    }
}

/// Upper bound of the per-node backoff after a failed write that may heal by itself (5xx,
/// conflicts, throttling, an unreachable server; 403 and 422 use [`REJECTED_BACKOFF`]).
/// Upstream's controllers cap at 1000 s (client-go
/// `util/workqueue/default_rate_limiters.go`, `DefaultControllerRateLimiter`: 5 ms
/// doubling to 1000 s); bare-ccm runs at bootstrap, where a node waiting minutes for a
/// retry is a node without networking (its pods cannot be scheduled while the taint
/// stays), so 30 s bounds both the retry rate during an outage and the delay after it.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Per-node backoff after a 403 or 422 ([`Error::rejection`]): 5 minutes, doubling up to
/// 1000 s. Nothing but a fix of the RBAC or of the node makes such a write succeed, so a
/// fast retry only repeats the refusal (and its log line) every 30 s forever. 1000 s is
/// upstream's per-item cap (client-go `util/workqueue/default_rate_limiters.go`,
/// `DefaultControllerRateLimiter`: `NewTypedItemExponentialFailureRateLimiter(5ms,
/// 1000s)`); 5 minutes is the pace of a repeated Warning Event ([`events::REPEAT_INTERVAL`],
/// client-go's spam filter). A change of the node still retries it at once.
pub const REJECTED_BACKOFF: queue::Backoff = queue::Backoff {
    base: Duration::from_secs(300),
    max: Duration::from_secs(1000),
};

/// What a 403 says is missing, parsed from the API server's Status message (apiserver
/// `pkg/endpoints/handlers/responsewriters/errors.go`, `forbiddenMessage`):
/// `nodes "x" is forbidden: User "U" cannot patch resource "nodes/status" in API group ""
/// at the cluster scope`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingGrant {
    pub user: String,
    pub verb: String,
    /// With its subresource, as RBAC writes it (`nodes/status`).
    pub resource: String,
    pub group: String,
    /// `at the cluster scope` or `in the namespace "NS"`.
    pub scope: String,
}

/// Parses a 403 message; `None` when it is not shaped like the API server's.
pub fn missing_grant(message: &str) -> Option<MissingGrant> {
    let (_, rest) = message.split_once("User \"")?;
    let (user, rest) = rest.split_once("\" cannot ")?;
    let (verb, rest) = rest.split_once(" resource \"")?;
    let (resource, rest) = rest.split_once("\" in API group \"")?;
    let (group, scope) = rest.split_once('"')?;
    Some(MissingGrant {
        user: user.to_string(),
        verb: verb.to_string(),
        resource: resource.to_string(),
        group: group.to_string(),
        scope: scope.trim().to_string(),
    })
}

/// RBAC advice for a failed request: the missing grant of a 403, nothing for any other
/// failure (a refused connection or a timeout is no RBAC problem).
pub fn forbidden_hint(error: &kube::Error) -> Option<String> {
    let kube::Error::Api(status) = error else {
        return None;
    };
    if status.code != 403 {
        return None;
    }
    Some(match missing_grant(&status.message) {
        Some(g) => format!(
            "{} may not {} {} in API group {:?} {}: check bare-ccm's RBAC",
            g.user, g.verb, g.resource, g.group, g.scope
        ),
        None => "forbidden: check bare-ccm's RBAC".to_string(),
    })
}

/// When an unresolvable node is looked at again if neither it nor the config changed.
/// Issue 3 asks to retry such nodes when the node or the config changes, which the watch
/// and the config reload already do; this bounds a stuck fleet to one WARN line and one
/// resolution per node per 5 minutes, the pace of the repeated Warning event.
pub const UNRESOLVED_RETRY: Duration = Duration::from_secs(300);

/// Nodes per page of the initial (and every re-)list. A page of realistic Nodes (10–20 KB
/// each with images and managedFields) is received and held whole while it is parsed, and
/// glibc's allocator can keep that transient memory afterwards. Measured with
/// `bare-ccm sim --existing-nodes 5000` (anonymous RSS after the list, before the image's
/// `MALLOC_MMAP_THRESHOLD_` setting): pages of 250 left 18.4 MiB, 150 14.0, 100 12.1, 50
/// 10.7, while the time to ready stayed at 0.50–0.54 s for all four; see
/// docs/performance.md. (Replacing the allocator did not help: mimalloc and jemalloc both
/// kept more.)
const LIST_PAGE_SIZE: u32 = 50;

/// Runs the watch, the workers and the periodic re-queue until `shutdown`. Returns once
/// every worker has stopped (or after a short grace period). When one of them fails
/// (see [`tasks::first_failure`]) it cancels `shutdown` itself and returns the failure.
pub async fn run(
    ctx: Arc<Context>,
    client: kube::Client,
    shutdown: CancellationToken,
) -> Result<(), TaskFailed> {
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(named(
        "node watch",
        watch_nodes(ctx.clone(), client, shutdown.clone()),
    ));
    tasks.spawn(named(
        "leadership follower",
        follow_leadership(ctx.clone(), shutdown.clone()),
    ));
    tasks.spawn(named(
        "periodic re-queue",
        resync(ctx.clone(), shutdown.clone()),
    ));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..ctx.settings.workers.max(1) {
        workers.spawn(named(
            "a node sync worker",
            worker(ctx.clone(), shutdown.clone()),
        ));
    }
    let failure = tokio::select! {
        _ = shutdown.cancelled() => None,
        failed = tasks::first_failure(&mut workers, "a node sync worker", &shutdown) => Some(failed),
        failed = tasks::first_failure(&mut tasks, "a controller task", &shutdown) => Some(failed),
    };
    if let Some(failed) = &failure {
        tracing::error!(error = %failed, "controller task failed; stopping");
        shutdown.cancel();
    }
    ctx.queue.shut_down();
    // A worker in the middle of a write gets a moment to finish it; then it is cut off.
    let drained = tokio::time::timeout(Duration::from_secs(2), async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        workers.abort_all();
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    failure.map_or(Ok(()), Err)
}

/// `task`, returning `name` when it ends (for [`tasks::first_failure`]).
pub async fn named(name: &'static str, task: impl Future<Output = ()>) -> &'static str {
    task.await;
    name
}

async fn watch_nodes(ctx: Arc<Context>, client: kube::Client, shutdown: CancellationToken) {
    let api: Api<LeanNode> = Api::all(client);
    let stream = watcher::watcher(api, watcher::Config::default().page_size(LIST_PAGE_SIZE))
        .default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut listed: Option<HashSet<String>> = None;
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            event = stream.next() => event,
        };
        let Some(event) = event else { return };
        match event {
            Ok(Event::Init) => listed = Some(HashSet::new()),
            Ok(Event::InitApply(node)) => {
                if let (Some(name), Some(listed)) = (ctx.observe_listed(node), listed.as_mut()) {
                    listed.insert(name);
                }
            }
            Ok(Event::InitDone) => {
                if let Some(listed) = listed.take() {
                    for gone in ctx.cache.retain_only(&listed) {
                        ctx.forget(&gone);
                    }
                }
                if !ctx.synced.swap(true, Ordering::AcqRel) {
                    tracing::info!(nodes = ctx.cache.len(), "node cache synced");
                }
            }
            Ok(Event::Apply(node)) => {
                ctx.observe(node);
            }
            Ok(Event::Delete(node)) => {
                if let Some(name) = node.metadata.name.as_deref() {
                    ctx.forget(name);
                }
            }
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "node watch failed; re-listing with backoff");
            }
        }
    }
}

async fn follow_leadership(ctx: Arc<Context>, shutdown: CancellationToken) {
    let mut changes = ctx.gate.subscribe();
    loop {
        let leading = *changes.borrow_and_update();
        ctx.metrics.leader.set(i64::from(leading));
        if leading {
            ctx.enqueue_all();
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = changes.changed() => if changed.is_err() { return },
        }
    }
}

async fn resync(ctx: Arc<Context>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(ctx.settings.resync);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                if ctx.gate.is_leading() {
                    for name in ctx.cache.names() {
                        ctx.queue.add_unless_backing_off(&name);
                    }
                }
            }
        }
    }
}

async fn worker(ctx: Arc<Context>, shutdown: CancellationToken) {
    let mut changes = ctx.gate.subscribe();
    loop {
        while !ctx.gate.is_leading() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = changes.changed() => if changed.is_err() { return },
            }
        }
        let Some(name) = ctx.queue.next().await else {
            return;
        };
        match sync::sync_node(&ctx, &name).await {
            Ok(outcome) => {
                ctx.queue.forget(&name);
                if outcome == Synced::Gone {
                    ctx.events.forget(&name);
                }
                if let Synced::Waiting(retry_in) = outcome {
                    ctx.queue.add_after(&name, retry_in);
                }
            }
            Err(e) => {
                ctx.metrics.sync_failed(e.metric_label());
                if let Error::NotLeader { .. } = e {
                    ctx.queue.add_after(&name, ctx.settings.not_leader_retry);
                    tracing::debug!(node = %name, "not leading; node left for later");
                } else if let Error::Unresolved { .. } = e {
                    // Only a change can fix it, and a change re-queues the node (watch,
                    // config reload); the slow retry is a safety net, not the mechanism.
                    ctx.queue.forget(&name);
                    ctx.queue.add_after(&name, UNRESOLVED_RETRY);
                    tracing::warn!(error = %e, retry_in = ?UNRESOLVED_RETRY, "node parked until it or the config changes");
                } else if let Some(rejection) = e.rejection() {
                    let delay = ctx.queue.retry_later_with(&name, REJECTED_BACKOFF);
                    ctx.events
                        .warn(node_ref(&name), rejection.reason, &rejection.note);
                    tracing::error!(node = %name, retry_in = ?delay, "{}", rejection.note);
                } else {
                    let delay = ctx.queue.retry_later(&name);
                    tracing::warn!(error = %Chain(&e), retry_in = ?delay, "node sync failed");
                }
            }
        }
        ctx.queue.done(&name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> Error {
        Error::Api {
            node: "n".into(),
            write: Write::Addresses,
            source: kube::Error::Api(
                kube::core::Status::failure("x", "y")
                    .with_code(code)
                    .boxed(),
            ),
        }
    }

    fn api_with(code: u16, message: &str) -> Error {
        Error::Api {
            node: "n1".into(),
            write: Write::Addresses,
            source: kube::Error::Api(
                kube::core::Status::failure(message, "Forbidden")
                    .with_code(code)
                    .boxed(),
            ),
        }
    }

    const FORBIDDEN: &str = r#"nodes "n1" is forbidden: User "system:serviceaccount:kube-system:bare-ccm" cannot patch resource "nodes/status" in API group "" at the cluster scope"#;

    #[test]
    fn a_403_names_the_missing_verb_resource_and_user() {
        assert_eq!(
            missing_grant(FORBIDDEN),
            Some(MissingGrant {
                user: "system:serviceaccount:kube-system:bare-ccm".into(),
                verb: "patch".into(),
                resource: "nodes/status".into(),
                group: "".into(),
                scope: "at the cluster scope".into(),
            })
        );
        let lease = r#"leases.coordination.k8s.io "bare-ccm" is forbidden: User "u" cannot update resource "leases" in API group "coordination.k8s.io" in the namespace "kube-system""#;
        let grant = missing_grant(lease).unwrap();
        assert_eq!(
            (
                grant.verb.as_str(),
                grant.resource.as_str(),
                grant.group.as_str()
            ),
            ("update", "leases", "coordination.k8s.io")
        );
        assert_eq!(grant.scope, r#"in the namespace "kube-system""#);
        assert_eq!(missing_grant("forbidden"), None);

        let rejection = api_with(403, FORBIDDEN).rejection().unwrap();
        assert_eq!(rejection.reason, "WriteForbidden");
        assert_eq!(
            rejection.note,
            r#"writing status.addresses (nodes/status) is forbidden: system:serviceaccount:kube-system:bare-ccm may not patch nodes/status in API group "" at the cluster scope: grant it, e.g. re-apply the ClusterRole bare-ccm of manifests/bare-ccm.yaml"#
        );
    }

    #[test]
    fn only_403_and_422_are_rejections() {
        assert_eq!(
            api_with(422, "Node \"n1\" is invalid: x")
                .rejection()
                .map(|r| r.reason),
            Some("WriteRejected")
        );
        for code in [400, 409, 429, 500, 503] {
            assert_eq!(api_with(code, "x").rejection(), None, "{code}");
        }
        let unreachable = Error::Api {
            node: "n".into(),
            write: Write::Init,
            source: kube::Error::TlsRequired,
        };
        assert_eq!(unreachable.rejection(), None);
    }

    #[test]
    fn rbac_advice_only_for_a_403() {
        let forbidden = kube::Error::Api(
            kube::core::Status::failure(FORBIDDEN, "Forbidden")
                .with_code(403)
                .boxed(),
        );
        let hint = forbidden_hint(&forbidden).unwrap();
        assert!(hint.contains("may not patch nodes/status"), "{hint}");
        let refused = kube::Error::Service(Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused",
        )));
        assert_eq!(forbidden_hint(&refused), None);
        let unavailable = kube::Error::Api(
            kube::core::Status::failure("x", "ServiceUnavailable")
                .with_code(503)
                .boxed(),
        );
        assert_eq!(forbidden_hint(&unavailable), None);
    }

    #[test]
    fn rejections_back_off_from_five_minutes_to_upstreams_1000_seconds() {
        assert_eq!(REJECTED_BACKOFF.delay(1), Duration::from_secs(300));
        assert_eq!(REJECTED_BACKOFF.delay(2), Duration::from_secs(600));
        assert_eq!(REJECTED_BACKOFF.delay(3), Duration::from_secs(1000));
        assert_eq!(REJECTED_BACKOFF.delay(30), Duration::from_secs(1000));
    }

    #[test]
    fn every_failure_label_is_exported_from_the_start() {
        let errors = [
            Error::Unresolved {
                node: "n".into(),
                errors: vec!["no IP".into()],
            },
            Error::Conflict {
                node: "n".into(),
                attempts: 6,
            },
            Error::NotLeader { node: "n".into() },
            api(429),
            api(503),
            api(422),
            Error::Api {
                node: "n".into(),
                write: Write::Init,
                source: kube::Error::TlsRequired,
            },
        ];
        let mut labels: Vec<&str> = errors.iter().map(Error::metric_label).collect();
        labels.sort_unstable();
        let mut expected = SYNC_FAILURE_REASONS;
        expected.sort_unstable();
        assert_eq!(labels, expected);
    }
}
