//! The physical floor of node initialisation, for `bare-ccm sim --floor`: a minimal client
//! that makes exactly the writes bare-ccm made for each node, the moment the node appears.
//! It has no resolver, no leader election, no rate limit and no queue: one watch, and one
//! task per new node that sends the replayed writes back to back. bare-ccm's times divided
//! by the floor's say how much the controller itself costs on top of the API round trips.
//!
//! The writes are derived from what bare-ccm actually wrote in the same run (the stored
//! node after initialisation against the node as k3s describes it, plus bare-ccm's Event),
//! with node names substituted, and carry the same `metadata.resourceVersion`
//! preconditions. Like bare-ccm, it starts on a k3s node only once k3s has described it
//! (`k3s.io/node-args`, and a server's role label): the same job includes the wait.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::TryStreamExt;
use kube::api::{Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::resolve::UNINITIALIZED_TAINT;
use crate::resolve::k3s_agent::{is_k3s_node, missing_from};

/// Service account of the floor client, so its requests are told apart from bare-ccm's.
pub const FLOOR_ACCOUNT: &str = "bare-ccm-floor";

/// Field manager of the floor's writes.
const FIELD_MANAGER: &str = "bare-ccm-floor";

/// Immediate re-read-and-retry rounds after 409 Conflict, as bare-ccm does.
const CONFLICT_RETRIES: u32 = 5;

/// The writes bare-ccm made for one node, as bodies to replay on another node. The node
/// patches carry no precondition here: the replay adds the resourceVersion it has just
/// seen, exactly as bare-ccm does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeWrites {
    /// The JSON merge patch of `nodes/status`, when bare-ccm wrote the addresses.
    pub status: Option<Value>,
    /// The JSON merge patch of the node (taints, providerID, labels).
    pub node: Option<Value>,
    /// The `events.k8s.io/v1` Event bare-ccm created about the node.
    pub event: Option<Value>,
}

impl NodeWrites {
    /// Derives bare-ccm's writes from the node as the kubelet `registered` it and as it is
    /// stored `after` initialisation. `wrote_status` and `wrote_node` say which of the two
    /// writes bare-ccm's write log shows for this node; `event` is bare-ccm's stored Event.
    pub fn derive(
        registered: &Value,
        after: &Value,
        wrote_status: bool,
        wrote_node: bool,
        event: Option<&Value>,
    ) -> NodeWrites {
        let status = wrote_status.then(|| {
            json!({"status": {"addresses": after.pointer("/status/addresses").cloned().unwrap_or(Value::Null)}})
        });
        let node = wrote_node.then(|| node_patch(registered, after));
        NodeWrites {
            status,
            node,
            event: event.map(event_body),
        }
    }

    /// The same writes for node `to` instead of node `from` (every string value holding
    /// `from`, e.g. the providerID, Hostname address and Event name, is rewritten).
    pub fn renamed(&self, from: &str, to: &str) -> NodeWrites {
        let rename = |v: &Option<Value>| v.as_ref().map(|v| replace_strings(v, from, to));
        NodeWrites {
            status: rename(&self.status),
            node: rename(&self.node),
            event: rename(&self.event),
        }
    }
}

/// The node patch that turns `registered` into `after` in the fields bare-ccm owns: the
/// whole remaining taint list (`null` when empty, as bare-ccm writes it), the providerID
/// when it was set, and the labels that were added.
fn node_patch(registered: &Value, after: &Value) -> Value {
    let taints = after
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())
        .map(|t| Value::Array(t.clone()))
        .unwrap_or(Value::Null);
    let mut spec = Map::new();
    spec.insert("taints".into(), taints);
    let provider_id = after.pointer("/spec/providerID");
    if provider_id.is_some() && provider_id != registered.pointer("/spec/providerID") {
        spec.insert(
            "providerID".into(),
            provider_id.cloned().unwrap_or(Value::Null),
        );
    }
    let before = registered
        .pointer("/metadata/labels")
        .and_then(Value::as_object);
    let added: Map<String, Value> = after
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(k, _)| before.is_none_or(|b| !b.contains_key(*k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut patch = json!({"spec": spec});
    if !added.is_empty() {
        patch["metadata"] = json!({"labels": added});
    }
    patch
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

/// Adds the precondition `metadata.resourceVersion` to a merge patch.
fn with_precondition(patch: &Value, resource_version: &str) -> Value {
    let mut patch = patch.clone();
    patch["metadata"]["resourceVersion"] = json!(resource_version);
    patch
}

/// The only fields the floor reads from a Node: everything else is skipped by the parser.
#[derive(Clone, Debug, Deserialize)]
struct MinimalNode {
    metadata: MinimalMeta,
    #[serde(default)]
    spec: MinimalSpec,
    #[serde(default)]
    status: MinimalStatus,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MinimalMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    resource_version: String,
    #[serde(default)]
    annotations: MinimalAnnotations,
    #[serde(default)]
    labels: MinimalLabels,
}

/// Of the annotations, k3s's node-args only.
#[derive(Clone, Debug, Default, Deserialize)]
struct MinimalAnnotations {
    #[serde(rename = "k3s.io/node-args")]
    node_args: Option<String>,
}

/// Of the labels, the k3s server's role label only.
#[derive(Clone, Debug, Default, Deserialize)]
struct MinimalLabels {
    #[serde(rename = "node-role.kubernetes.io/control-plane")]
    control_plane: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct MinimalSpec {
    #[serde(default)]
    taints: Vec<MinimalTaint>,
}

#[derive(Clone, Debug, Deserialize)]
struct MinimalTaint {
    key: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct MinimalStatus {
    #[serde(rename = "nodeInfo", default)]
    node_info: MinimalNodeInfo,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MinimalNodeInfo {
    #[serde(default)]
    kubelet_version: String,
    #[serde(default)]
    container_runtime_version: String,
}

impl MinimalNode {
    /// Whether bare-ccm would initialise the node now, but for its metadata: tainted, and
    /// for a k3s node described by k3s.
    fn ready_for_init(&self) -> bool {
        let tainted = self
            .spec
            .taints
            .iter()
            .any(|t| t.key == UNINITIALIZED_TAINT);
        let info = &self.status.node_info;
        let k3s = is_k3s_node(&info.kubelet_version, &info.container_runtime_version);
        let meta = &self.metadata;
        tainted
            && (!k3s
                || missing_from(
                    meta.annotations.node_args.as_deref(),
                    meta.labels.control_plane.is_some(),
                )
                .is_none())
    }
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
    Box<dyn futures::Stream<Item = Result<WatchEvent<MinimalNode>, kube::Error>> + Send>,
>;

async fn open_watch(
    client: &kube::Client,
    resource_version: &str,
) -> Result<EventStream, kube::Error> {
    let request = kube::core::Request::new("/api/v1/nodes")
        .watch(&WatchParams::default().timeout(290), resource_version)
        .map_err(kube::Error::BuildRequest)?;
    let stream = client.request_events::<MinimalNode>(request).await?;
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
            resource_version.clone_from(&node.metadata.resource_version);
            if node.ready_for_init()
                && replayer.writes.contains_key(&node.metadata.name)
                && started.insert(node.metadata.name.clone())
            {
                tokio::spawn(replay(replayer.clone(), node.metadata));
            }
        }
    }
}

/// Sends one node's writes back to back: status, node, Event.
async fn replay(replayer: Replayer, meta: MinimalMeta) {
    let Ok(_permit) = replayer.permits.acquire().await else {
        return;
    };
    let Some(w) = replayer.writes.get(&meta.name) else {
        return;
    };
    let (client, stats) = (&replayer.client, &*replayer.stats);
    let mut resource_version = meta.resource_version;
    for (subresource, patch) in [("status", &w.status), ("", &w.node)] {
        let Some(patch) = patch else { continue };
        match patch_node(
            client,
            &meta.name,
            subresource,
            patch,
            resource_version,
            stats,
        )
        .await
        {
            Ok(rv) => resource_version = rv,
            Err(e) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(node = %meta.name, error = %e, "floor write failed");
                return;
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
                Ok(request) => client.request_text(request).await.map(drop),
                Err(e) => Err(kube::Error::BuildRequest(e)),
            },
            Err(e) => Err(kube::Error::SerdeError(e)),
        };
        if sent.is_err() {
            stats.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One merge patch with a resourceVersion precondition, re-reading the node and retrying
/// on 409. Returns the node's resourceVersion after the write.
async fn patch_node(
    client: &kube::Client,
    name: &str,
    subresource: &str,
    patch: &Value,
    mut resource_version: String,
    stats: &FloorStats,
) -> Result<String, kube::Error> {
    let nodes = kube::core::Request::new("/api/v1/nodes");
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    let mut conflicts = 0;
    loop {
        let body = with_precondition(patch, &resource_version);
        let request = if subresource.is_empty() {
            nodes.patch(name, &params, &Patch::Merge(&body))
        } else {
            nodes.patch_subresource(subresource, name, &params, &Patch::Merge(&body))
        }
        .map_err(kube::Error::BuildRequest)?;
        match client.request::<MinimalNode>(request).await {
            Ok(node) => return Ok(node.metadata.resource_version),
            Err(kube::Error::Api(s)) if s.code == 409 && conflicts < CONFLICT_RETRIES => {
                conflicts += 1;
                stats.conflicts.fetch_add(1, Ordering::Relaxed);
                let get = nodes
                    .get(name, &kube::api::GetParams::default())
                    .map_err(kube::Error::BuildRequest)?;
                resource_version = client
                    .request::<MinimalNode>(get)
                    .await?
                    .metadata
                    .resource_version;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::k3s_agent::CONTROL_PLANE_LABEL;
    use crate::resolve::node_args::NODE_ARGS;

    /// The floor starts when bare-ccm would: on a tainted node, for a k3s node once k3s has
    /// described it (the serde renames of `MinimalNode` spell bare-ccm's constants).
    #[test]
    fn the_floor_starts_on_a_k3s_node_once_k3s_described_it() {
        let node = |annotations: Value, labels: Value, kubelet: &str| -> MinimalNode {
            serde_json::from_value(json!({
                "metadata": {"name": "n", "resourceVersion": "1", "annotations": annotations, "labels": labels},
                "spec": {"taints": [{"key": UNINITIALIZED_TAINT, "effect": "NoSchedule"}]},
                "status": {"nodeInfo": {"kubeletVersion": kubelet, "containerRuntimeVersion": "containerd://2.0.5"}},
            }))
            .unwrap()
        };
        let k3s = "v1.33.4+k3s1";
        assert!(!node(json!({}), json!({}), k3s).ready_for_init());
        assert!(node(json!({}), json!({}), "v1.33.4").ready_for_init());
        let agent = json!({NODE_ARGS: r#"["agent"]"#});
        assert!(node(agent, json!({}), k3s).ready_for_init());
        let server = json!({NODE_ARGS: r#"["server"]"#});
        assert!(!node(server.clone(), json!({}), k3s).ready_for_init());
        assert!(node(server, json!({CONTROL_PLANE_LABEL: "true"}), k3s).ready_for_init());
    }

    fn registered() -> Value {
        json!({
            "metadata": {"name": "sim-node-00001", "labels": {"kubernetes.io/hostname": "sim-node-00001"}},
            "spec": {"taints": [
                {"key": UNINITIALIZED_TAINT, "value": "true", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
            ]},
            "status": {"addresses": [{"type": "Hostname", "address": "sim-node-00001"}]}
        })
    }

    fn initialised() -> Value {
        json!({
            "metadata": {"name": "sim-node-00001", "resourceVersion": "77", "labels": {
                "kubernetes.io/hostname": "sim-node-00001",
                "node.kubernetes.io/instance-type": "k3s"
            }},
            "spec": {"providerID": "k3s://sim-node-00001", "taints": [
                {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
            ]},
            "status": {"addresses": [
                {"type": "InternalIP", "address": "10.0.0.2"},
                {"type": "Hostname", "address": "sim-node-00001"}
            ]}
        })
    }

    #[test]
    fn derived_writes_are_the_fields_bare_ccm_changed() {
        let event = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event", "reason": "Synced",
            "metadata": {"name": "sim-node-00001.abc", "namespace": "default", "uid": "u", "resourceVersion": "9"},
            "regarding": {"kind": "Node", "name": "sim-node-00001"}
        });
        let w = NodeWrites::derive(&registered(), &initialised(), true, true, Some(&event));
        assert_eq!(
            w.status,
            Some(json!({"status": {"addresses": [
                {"type": "InternalIP", "address": "10.0.0.2"},
                {"type": "Hostname", "address": "sim-node-00001"}
            ]}}))
        );
        assert_eq!(
            w.node,
            Some(json!({
                "spec": {"providerID": "k3s://sim-node-00001", "taints": [
                    {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
                ]},
                "metadata": {"labels": {"node.kubernetes.io/instance-type": "k3s"}}
            }))
        );
        let event = w.event.unwrap_or_default();
        assert_eq!(
            event["metadata"],
            json!({"name": "sim-node-00001.abc", "namespace": "default"})
        );
        assert_eq!(event["reason"], "Synced");
    }

    #[test]
    fn writes_bare_ccm_did_not_make_are_not_replayed() {
        let w = NodeWrites::derive(&registered(), &initialised(), false, true, None);
        assert_eq!((w.status, w.event), (None, None));
        assert!(w.node.is_some());
    }

    #[test]
    fn no_remaining_taint_is_written_as_null_and_a_kept_provider_id_is_not_written() {
        let mut before = registered();
        before["spec"]["providerID"] = json!("k3s://sim-node-00001");
        let mut after = initialised();
        after["spec"]["taints"] = json!([]);
        let patch = node_patch(&before, &after);
        assert_eq!(patch["spec"], json!({"taints": null}));
    }

    #[test]
    fn renaming_rewrites_every_mention_of_the_node() {
        let w = NodeWrites::derive(&registered(), &initialised(), true, true, None)
            .renamed("sim-node-00001", "floor-node-00001");
        let node = w.node.unwrap_or_default();
        assert_eq!(node["spec"]["providerID"], "k3s://floor-node-00001");
        let status = w.status.unwrap_or_default();
        assert_eq!(
            status["status"]["addresses"][1]["address"],
            "floor-node-00001"
        );
        assert_eq!(status["status"]["addresses"][0]["address"], "10.0.0.2");
    }

    #[test]
    fn precondition_is_added_next_to_existing_metadata() {
        let patch = json!({"metadata": {"labels": {"a": "b"}}, "spec": {"taints": null}});
        assert_eq!(
            with_precondition(&patch, "12"),
            json!({"metadata": {"labels": {"a": "b"}, "resourceVersion": "12"}, "spec": {"taints": null}})
        );
    }
}
