//! The node controller: one watch on Nodes feeds the projection cache; relevant changes
//! queue the node's name; workers sync queued nodes (see `sync`) while this replica leads.
//! Every node is re-queued on gaining the lease, on a config change and every
//! `--node-status-update-frequency`, so nothing depends on a single event being seen.
//! It owns no metadata logic: that is `resolve`, `patch` and `plan`.

pub mod cache;
pub mod client;
mod context;
mod error;
pub mod events;
pub mod grants;
pub mod kubelet_fight;
pub mod queue;
mod settings;
pub mod sync;
pub mod tasks;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio_util::sync::CancellationToken;

use crate::telemetry::Chain;
use cache::LeanNode;
pub use context::Context;
pub use error::{
    Error, MAX_BACKOFF, REJECTED_BACKOFF, Rejection, Retry, SYNC_FAILURE_REASONS, UNRESOLVED_RETRY,
    Write,
};
use events::node_ref;
pub use grants::{MissingGrant, forbidden_hint, missing_grant};
pub use settings::Settings;
use sync::Synced;
use tasks::TaskFailed;

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
                if ctx.mark_synced() {
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
                match e.retry(&ctx.settings) {
                    Retry::After(delay) => {
                        ctx.queue.add_after(&name, delay);
                        tracing::debug!(node = %name, "not leading; node left for later");
                    }
                    Retry::Park(delay) => {
                        ctx.queue.forget(&name);
                        ctx.queue.add_after(&name, delay);
                        tracing::warn!(error = %e, retry_in = ?delay, "node parked until it or the config changes");
                    }
                    Retry::Refused(rejection) => {
                        let delay = ctx.queue.retry_later_with(&name, REJECTED_BACKOFF);
                        ctx.events
                            .warn(node_ref(&name), rejection.reason, &rejection.note);
                        tracing::error!(node = %name, retry_in = ?delay, "{}", rejection.note);
                    }
                    Retry::Backoff => {
                        let delay = ctx.queue.retry_later(&name);
                        tracing::warn!(error = %Chain(&e), retry_in = ?delay, "node sync failed");
                    }
                }
            }
        }
        ctx.queue.done(&name);
    }
}
