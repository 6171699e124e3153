//! The physical floor of node initialisation, for `bare-ccm sim --floor`: a minimal client
//! that makes exactly the writes bare-ccm made for each node, the moment the node appears.
//! It has no resolver, no leader election, no rate limit and no queue: one watch, and one
//! task per new node that sends the replayed writes back to back. bare-ccm's times divided
//! by the floor's say how much the controller itself costs on top of the API round trips.
//!
//! What to write is derived from what bare-ccm actually wrote in the same run (the stored
//! node after initialisation against the node as k3s describes it, plus bare-ccm's Event),
//! with node names substituted: that gives bare-ccm's decision (its addresses, providerID
//! and labels) without running the resolver. The requests themselves are built by
//! bare-ccm's own patch builders (`crate::patch`) from the node as the floor sees it, so
//! they are byte for byte bare-ccm's: the status merge patch without a precondition, the
//! JSON patch that tests the taints (and labels) it read, re-read and rebuilt after a
//! conflict. Like bare-ccm, it starts on a k3s node only once k3s has described it
//! (`k3s.io/node-args`, and a server's role label): the same job includes the wait.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::TryStreamExt;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::controller::cache::LeanNode;
use crate::controller::sync::is_failed_test;
use crate::node_view::NodeView;
use crate::patch::{init_patch, status_addresses_patch};
use crate::resolve::k3s_agent::{CONTROL_PLANE_LABEL, missing_from};
use crate::resolve::node_args::NODE_ARGS;
use crate::resolve::{AddressSource, Resolution, ResolvedAddress, Sourced};

/// Service account of the floor client, so its requests are told apart from bare-ccm's.
pub const FLOOR_ACCOUNT: &str = "bare-ccm-floor";

/// Field manager of the floor's writes.
const FIELD_MANAGER: &str = "bare-ccm-floor";

/// Immediate re-read-and-retry rounds after 409 Conflict, as bare-ccm does.
const CONFLICT_RETRIES: u32 = 5;

/// What bare-ccm wrote for one node: its decision, which of its two node writes it made,
/// and its Event, to replay on another node.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeWrites {
    /// bare-ccm's decision for the node, as the stored node shows it.
    pub resolution: Resolution,
    /// bare-ccm wrote `nodes/status` (the addresses).
    pub status: bool,
    /// bare-ccm wrote the node (taint, providerID, labels).
    pub node: bool,
    /// The `events.k8s.io/v1` Event bare-ccm created about the node.
    pub event: Option<Value>,
}

impl NodeWrites {
    /// Derives bare-ccm's writes from the node as it was before bare-ccm wrote
    /// (`registered`, as k3s described it) and as it is stored `after` initialisation.
    /// `wrote_status` and `wrote_node` say which of the two writes bare-ccm's write log
    /// shows for this node; `event` is bare-ccm's stored Event.
    pub fn derive(
        registered: &Value,
        after: &Value,
        wrote_status: bool,
        wrote_node: bool,
        event: Option<&Value>,
    ) -> NodeWrites {
        let text = |v: &Value, pointer: &str| -> String {
            v.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let addresses = after
            .pointer("/status/addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| {
                Some(ResolvedAddress {
                    type_: text(a, "/type").parse().ok()?,
                    address: text(a, "/address"),
                    source: AddressSource::Kubelet,
                })
            })
            .collect();
        let provider_id = text(after, "/spec/providerID");
        let before = registered
            .pointer("/metadata/labels")
            .and_then(Value::as_object);
        let labels = after
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(k, _)| before.is_none_or(|b| !b.contains_key(*k)))
            .map(|(k, v)| (k.clone(), replayed(v.as_str().unwrap_or_default())))
            .collect();
        NodeWrites {
            resolution: Resolution {
                node: text(after, "/metadata/name"),
                tainted: true,
                addresses,
                set_provider_id: text(registered, "/spec/providerID").is_empty()
                    && !provider_id.is_empty(),
                provider_id: replayed(&provider_id),
                labels,
                warnings: Vec::new(),
                errors: Vec::new(),
            },
            status: wrote_status,
            node: wrote_node,
            event: event.map(event_body),
        }
    }

    /// The same writes for node `to` instead of node `from` (every string holding `from`,
    /// e.g. the providerID, the Hostname address and the Event's name, is rewritten).
    pub fn renamed(&self, from: &str, to: &str) -> NodeWrites {
        let r = &self.resolution;
        let rename = |s: &str| s.replace(from, to);
        NodeWrites {
            resolution: Resolution {
                node: rename(&r.node),
                addresses: r
                    .addresses
                    .iter()
                    .map(|a| ResolvedAddress {
                        address: rename(&a.address),
                        ..a.clone()
                    })
                    .collect(),
                provider_id: replayed(&rename(&r.provider_id.value)),
                labels: r
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), replayed(&rename(&v.value))))
                    .collect(),
                ..r.clone()
            },
            event: self.event.as_ref().map(|e| replace_strings(e, from, to)),
            ..self.clone()
        }
    }
}

/// A value of bare-ccm's decision as the floor replays it.
fn replayed(value: &str) -> Sourced {
    Sourced {
        value: value.to_string(),
        why: "replayed from bare-ccm's run".to_string(),
    }
}

/// A stored Event as a client posts it: the fields the server sets on create are dropped.
fn event_body(stored: &Value) -> Value {
    let mut body = stored.clone();
    if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.retain(|k, _| k == "name" || k == "namespace");
    }
    body
}

fn replace_strings(value: &Value, from: &str, to: &str) -> Value {
    match value {
        Value::String(s) => Value::String(s.replace(from, to)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| replace_strings(v, from, to)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), replace_strings(v, from, to)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether bare-ccm would initialise the node now, but for its metadata: tainted, and
/// for a k3s node described by k3s.
fn ready_for_init(node: &NodeView) -> bool {
    node.is_uninitialized()
        && (!node.k3s
            || missing_from(
                node.annotations.get(NODE_ARGS).map(String::as_str),
                node.labels.contains_key(CONTROL_PLANE_LABEL),
            )
            .is_none())
}

/// Counters of a floor run.
#[derive(Debug, Default)]
pub struct FloorStats {
    /// 409 answers to the floor's writes.
    pub conflicts: AtomicU64,
    /// Writes that failed for another reason (none are expected without faults).
    pub failures: AtomicU64,
}

/// Why the floor client could not start.
#[derive(Debug, thiserror::Error)]
pub enum FloorError {
    /// Its thread or runtime could not be created.
    #[error("cannot start the floor client's thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The kubeconfig given to it does not describe a usable client.
    #[error("the floor client's kubeconfig is unusable: {0}")]
    Kubeconfig(String),
    /// Its warm-up reads or its watch failed.
    #[error("the floor client cannot reach the API server: {0}")]
    Api(#[from] kube::Error),
    /// Its thread ended before reporting.
    #[error("the floor client's thread ended unexpectedly")]
    Stopped,
}

/// The floor client while it runs. It has its own thread and runtime, as bare-ccm has
/// its own process, so neither shares a scheduler with the emulator.
pub struct Floor {
    cancel: CancellationToken,
    thread: std::thread::JoinHandle<()>,
    stats: Arc<FloorStats>,
}

impl Floor {
    /// Starts a client from `kubeconfig` (YAML) that watches Nodes from
    /// `resource_version` and replays `writes` (by node name) on every tainted node that
    /// appears, with at most `in_flight` nodes being written at once (0: no bound). That
    /// many connections are opened beforehand, so no replay waits for a TLS handshake.
    /// Returns once the watch is open, so nodes registered afterwards are all seen.
    pub async fn start(
        kubeconfig: String,
        resource_version: String,
        writes: HashMap<String, NodeWrites>,
        in_flight: usize,
    ) -> Result<Floor, FloorError> {
        let cancel = CancellationToken::new();
        let stats = Arc::new(FloorStats::default());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let (thread_cancel, thread_stats) = (cancel.clone(), stats.clone());
        let thread = std::thread::Builder::new()
            .name("floor".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let opened = async {
                        let client = client_from(&kubeconfig).await?;
                        warm_up(&client, in_flight).await?;
                        let first = open_watch(&client, &resource_version).await?;
                        Ok::<_, FloorError>((client, first))
                    }
                    .await;
                    let (client, first) = match opened {
                        Ok(opened) => {
                            let _ = ready_tx.send(Ok(()));
                            opened
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let permits = Arc::new(Semaphore::new(if in_flight == 0 {
                        Semaphore::MAX_PERMITS
                    } else {
                        in_flight
                    }));
                    let replayer = Replayer {
                        client,
                        writes: Arc::new(writes),
                        stats: thread_stats,
                        permits,
                    };
                    watch_loop(replayer, resource_version, first, thread_cancel).await;
                });
            })?;
        ready_rx.await.map_err(|_| FloorError::Stopped)??;
        Ok(Floor {
            cancel,
            thread,
            stats,
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> &FloorStats {
        &self.stats
    }

    /// Stops the client and waits for its thread.
    pub async fn stop(self) {
        self.cancel.cancel();
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

async fn client_from(kubeconfig: &str) -> Result<kube::Client, FloorError> {
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig)
        .map_err(|e| FloorError::Kubeconfig(e.to_string()))?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| FloorError::Kubeconfig(e.to_string()))?;
    Ok(kube::Client::try_from(config)?)
}

type EventStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<WatchEvent<LeanNode>, kube::Error>> + Send>,
>;

async fn open_watch(
    client: &kube::Client,
    resource_version: &str,
) -> Result<EventStream, kube::Error> {
    let request = kube::core::Request::new("/api/v1/nodes")
        .watch(&WatchParams::default().timeout(290), resource_version)
        .map_err(kube::Error::BuildRequest)?;
    let stream = client.request_events::<LeanNode>(request).await?;
    Ok(Box::pin(stream))
}

/// Opens `connections` keep-alive connections to the server with concurrent cheap reads.
pub async fn warm_up(client: &kube::Client, connections: usize) -> Result<(), kube::Error> {
    let request = || {
        kube::core::Request::new("/api/v1/namespaces")
            .get("default", &kube::api::GetParams::default())
            .map_err(kube::Error::BuildRequest)
    };
    futures::future::try_join_all(
        (0..connections).map(|_| async { client.request_text(request()?).await.map(drop) }),
    )
    .await
    .map(drop)
}

/// What a replay task needs.
#[derive(Clone)]
struct Replayer {
    client: kube::Client,
    writes: Arc<HashMap<String, NodeWrites>>,
    stats: Arc<FloorStats>,
    permits: Arc<Semaphore>,
}

async fn watch_loop(
    replayer: Replayer,
    mut resource_version: String,
    first: EventStream,
    cancel: CancellationToken,
) {
    let client = &replayer.client;
    let mut stream = Some(first);
    let mut started = std::collections::HashSet::new();
    while !cancel.is_cancelled() {
        let mut events = match stream.take() {
            Some(s) => s,
            None => match open_watch(client, &resource_version).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "floor watch failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        loop {
            let event = tokio::select! {
                _ = cancel.cancelled() => return,
                e = events.try_next() => e,
            };
            let node = match event {
                Ok(Some(WatchEvent::Added(n) | WatchEvent::Modified(n))) => n,
                Ok(Some(WatchEvent::Bookmark(b))) => {
                    resource_version = b.metadata.resource_version;
                    continue;
                }
                Ok(Some(WatchEvent::Deleted(_) | WatchEvent::Error(_))) => continue,
                Ok(None) | Err(_) => break,
            };
            let view = node.into_entry().view;
            resource_version.clone_from(&view.resource_version);
            if ready_for_init(&view)
                && replayer.writes.contains_key(&view.name)
                && started.insert(view.name.clone())
            {
                tokio::spawn(replay(replayer.clone(), view));
            }
        }
    }
}

/// Sends one node's writes back to back, as bare-ccm sends them: status, node, Event.
async fn replay(replayer: Replayer, mut view: NodeView) {
    let Ok(_permit) = replayer.permits.acquire().await else {
        return;
    };
    let Some(w) = replayer.writes.get(&view.name) else {
        return;
    };
    let (nodes, stats) = (
        Api::<LeanNode>::all(replayer.client.clone()),
        &*replayer.stats,
    );
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    let res = &w.resolution;
    if w.status
        && let Some(patch) = status_addresses_patch(&view, res)
    {
        match nodes
            .patch_status(&view.name, &params, &Patch::Merge(&patch))
            .await
        {
            Ok(node) => view = node.into_entry().view,
            Err(e) => return failed(stats, &view.name, &e),
        }
    }
    if w.node {
        let mut conflicts = 0;
        while let Some(patch) = init_patch(&view, res) {
            let ops = match serde_json::from_value(patch) {
                Ok(ops) => ops,
                Err(e) => return failed(stats, &view.name, &kube::Error::SerdeError(e)),
            };
            match nodes
                .patch(&view.name, &params, &Patch::Json::<()>(ops))
                .await
            {
                Ok(_) => break,
                Err(kube::Error::Api(s))
                    if (s.code == 409 || is_failed_test(&s)) && conflicts < CONFLICT_RETRIES =>
                {
                    conflicts += 1;
                    stats.conflicts.fetch_add(1, Ordering::Relaxed);
                    match nodes.get(&view.name).await {
                        Ok(node) => view = node.into_entry().view,
                        Err(e) => return failed(stats, &view.name, &e),
                    }
                }
                Err(e) => return failed(stats, &view.name, &e),
            }
        }
    }
    if let Some(event) = &w.event {
        let namespace = event
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let url = format!("/apis/events.k8s.io/v1/namespaces/{namespace}/events");
        let sent = match serde_json::to_vec(event) {
            Ok(body) => match kube::core::Request::new(url).create(&PostParams::default(), body) {
                Ok(request) => replayer.client.request_text(request).await.map(drop),
                Err(e) => Err(kube::Error::BuildRequest(e)),
            },
            Err(e) => Err(kube::Error::SerdeError(e)),
        };
        if sent.is_err() {
            stats.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn failed(stats: &FloorStats, node: &str, error: &kube::Error) {
    stats.failures.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(node, error = %error, "floor write failed");
}

#[cfg(test)]
mod tests;
