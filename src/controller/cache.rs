//! The node cache: the lean Node type the controller watches and reads (only the fields
//! `NodeView` needs are ever materialised; images, conditions and managedFields are
//! skipped while parsing) and the map of `NodeView` projections the workers read, stored
//! compactly. A change is "relevant" only when the projection changed beyond its
//! resourceVersion, so kubelet heartbeats cost one comparison and nothing else.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeSpec, NodeStatus, NodeSystemInfo, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Deserializer};

use crate::facts::is_uninitialized;
use crate::node_view::NodeView;

/// A Node as bare-ccm reads it from the API: watch events and write responses.
#[derive(Clone, Debug, Deserialize)]
pub struct LeanNode {
    #[serde(deserialize_with = "lean_meta")]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Option<LeanSpec>,
    #[serde(default)]
    pub status: Option<LeanStatus>,
}

/// The part of `spec` initialisation reads.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct LeanSpec {
    #[serde(rename = "providerID", default)]
    pub provider_id: Option<String>,
    #[serde(default)]
    pub taints: Option<Vec<Taint>>,
}

/// The part of `status` initialisation reads.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct LeanStatus {
    #[serde(default)]
    pub addresses: Option<Vec<NodeAddress>>,
    #[serde(rename = "nodeInfo", default)]
    pub node_info: Option<LeanNodeInfo>,
}

/// The two versions of `status.nodeInfo` that tell a k3s node (see `NodeView::k3s`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeanNodeInfo {
    #[serde(default)]
    pub kubelet_version: String,
    #[serde(default)]
    pub container_runtime_version: String,
}

/// The metadata fields bare-ccm uses; every other field (managedFields above all) is
/// skipped by the parser instead of being allocated.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeanMeta {
    name: Option<String>,
    resource_version: Option<String>,
    uid: Option<String>,
    creation_timestamp: Option<Time>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

fn lean_meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    let m = LeanMeta::deserialize(d)?;
    Ok(ObjectMeta {
        name: m.name,
        resource_version: m.resource_version,
        uid: m.uid,
        creation_timestamp: m.creation_timestamp,
        labels: m.labels,
        annotations: m.annotations,
        ..ObjectMeta::default()
    })
}

impl kube::Resource for LeanNode {
    type DynamicType = ();
    type Scope = k8s_openapi::ClusterResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Node".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "nodes".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl LeanNode {
    /// The projection the resolver reads. Consumes the node: nothing is copied.
    pub fn into_entry(self) -> Entry {
        let spec = self.spec.unwrap_or_default();
        let status = self.status.unwrap_or_default();
        let node = Node {
            metadata: self.metadata,
            spec: Some(NodeSpec {
                provider_id: spec.provider_id,
                taints: spec.taints,
                ..NodeSpec::default()
            }),
            status: Some(NodeStatus {
                addresses: status.addresses,
                node_info: status.node_info.map(|i| NodeSystemInfo {
                    kubelet_version: i.kubelet_version,
                    container_runtime_version: i.container_runtime_version,
                    ..NodeSystemInfo::default()
                }),
                ..NodeStatus::default()
            }),
        };
        Entry {
            view: NodeView::from_owned(node),
        }
    }
}

/// One cached node.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub view: NodeView,
}

/// How a new observation of a node relates to the cached one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// A node not cached before.
    New,
    /// Something the resolver reads changed.
    Changed,
    /// Only the resourceVersion moved (a heartbeat, a condition update, ...).
    Unchanged,
}

/// One cached node in a compact form: the projection's resolver inputs serialised into
/// a single allocation (about 1 KB for a k3s node, against ~2.5 KB as separate maps and
/// strings), so that the cache meets its budget of 2 KB per node. Equal bytes mean equal
/// inputs (maps are ordered), which makes the heartbeat check one `memcmp`.
struct Slot {
    resource_version: Box<str>,
    created: Option<Timestamp>,
    /// The node carries the uninitialized taint (for the gauge, without decoding).
    awaiting: bool,
    inputs: Box<[u8]>,
}

/// The serialised part of a [`NodeView`]: everything but name, resourceVersion and
/// creation time (kept in the slot).
type Inputs = (
    BTreeMap<String, String>,
    BTreeMap<String, String>,
    String,
    Vec<Taint>,
    Vec<NodeAddress>,
    bool,
);

impl Slot {
    fn encode(entry: &Entry) -> Slot {
        // Destructured so that a new NodeView field fails to compile here until it is
        // encoded too.
        let NodeView {
            name: _,
            resource_version,
            labels,
            annotations,
            provider_id,
            taints,
            addresses,
            created,
            k3s,
        } = &entry.view;
        let inputs =
            serde_json::to_vec(&(labels, annotations, provider_id, taints, addresses, k3s))
                .unwrap_or_default();
        Slot {
            resource_version: resource_version.as_str().into(),
            created: *created,
            awaiting: is_uninitialized(taints),
            inputs: inputs.into_boxed_slice(),
        }
    }

    fn decode(&self, name: &str) -> Option<Entry> {
        let (labels, annotations, provider_id, taints, addresses, k3s): Inputs =
            serde_json::from_slice(&self.inputs).ok()?;
        Some(Entry {
            view: NodeView {
                name: name.to_string(),
                resource_version: self.resource_version.to_string(),
                labels,
                annotations,
                provider_id,
                taints,
                addresses,
                created: self.created,
                k3s,
            },
        })
    }
}

/// Whether an observation with a lower resourceVersion than the cached one is dropped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ordering {
    /// Watch events, write responses and re-reads race each other: keep the newest.
    KeepNewer,
    /// A list is the truth as of now.
    Replace,
}

/// The projection cache: node name -> latest compact [`Entry`].
#[derive(Default)]
pub struct NodeCache {
    nodes: RwLock<HashMap<Box<str>, Slot>>,
}

impl NodeCache {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Box<str>, Slot>> {
        match self.nodes.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Box<str>, Slot>> {
        match self.nodes.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Stores `entry` and says whether it differs from the cached one in anything but its
    /// resourceVersion. An entry older than the cached one (a write response overtaken
    /// by a watch event, say) is ignored as `Unchanged`.
    pub fn observe(&self, entry: Entry) -> Observed {
        self.store(entry, Ordering::KeepNewer)
    }

    /// Stores an entry of a (re-)list, which describes the cluster as it is now: it
    /// replaces the cached entry even when its resourceVersion is lower, since after an
    /// etcd restore resourceVersions go backwards and the cached ones no longer exist.
    pub fn observe_listed(&self, entry: Entry) -> Observed {
        self.store(entry, Ordering::Replace)
    }

    fn store(&self, entry: Entry, ordering: Ordering) -> Observed {
        let slot = Slot::encode(&entry);
        let mut nodes = self.write();
        match nodes.get_mut(entry.view.name.as_str()) {
            None => {
                nodes.insert(entry.view.name.into_boxed_str(), slot);
                Observed::New
            }
            Some(cached) => {
                if ordering == Ordering::KeepNewer
                    && is_older(&slot.resource_version, &cached.resource_version)
                {
                    return Observed::Unchanged;
                }
                let same = cached.inputs == slot.inputs;
                *cached = slot;
                if same {
                    Observed::Unchanged
                } else {
                    Observed::Changed
                }
            }
        }
    }

    /// Forgets a deleted node.
    pub fn remove(&self, name: &str) {
        self.write().remove(name);
    }

    /// Keeps only the nodes named in `names` (after a re-list), returning the dropped ones.
    pub fn retain_only(&self, names: &std::collections::HashSet<String>) -> Vec<String> {
        let mut nodes = self.write();
        let gone: Vec<String> = nodes
            .keys()
            .filter(|n| !names.contains(&***n))
            .map(|n| n.to_string())
            .collect();
        for name in &gone {
            nodes.remove(name.as_str());
        }
        gone
    }

    /// The cached entry of `name`, decoded.
    pub fn get(&self, name: &str) -> Option<Entry> {
        self.read().get(name)?.decode(name)
    }

    /// Every cached node name.
    pub fn names(&self) -> Vec<String> {
        self.read().keys().map(|n| n.to_string()).collect()
    }

    /// Number of cached nodes.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// True when no node is cached.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Number of cached nodes that carry the uninitialized taint.
    pub fn awaiting_initialization(&self) -> usize {
        self.read().values().filter(|s| s.awaiting).count()
    }
}

/// resourceVersions are opaque to clients in general; etcd-backed API servers issue
/// increasing integers, and only when both are integers is an observation strictly older
/// than the cached one dropped. Anything else is taken as new.
fn is_older(candidate: &str, cached: &str) -> bool {
    match (candidate.parse::<u64>(), cached.parse::<u64>()) {
        (Ok(c), Ok(k)) => c < k,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_json(rv: &str, extra_label: Option<&str>) -> serde_json::Value {
        let mut labels = serde_json::json!({"kubernetes.io/hostname": "n1"});
        if let Some(l) = extra_label {
            labels[l] = serde_json::json!("x");
        }
        serde_json::json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": "n1", "resourceVersion": rv, "uid": "u1",
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": labels,
                "managedFields": [{"manager": "kubelet", "operation": "Update", "fieldsV1": {"f:status": {}}}]
            },
            "spec": {"taints": [{"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"}]},
            "status": {
                "addresses": [{"type": "Hostname", "address": "n1"}],
                "images": [{"names": ["registry/image:1"], "sizeBytes": 1}],
                "nodeInfo": {"kubeletVersion": "v1.33.4+k3s1", "containerRuntimeVersion": "containerd://2.0.5-k3s1", "machineID": "m", "bootID": "b"},
                "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-01-01T00:00:00Z"}]
            }
        })
    }

    #[test]
    fn lean_node_keeps_only_what_the_resolver_reads() {
        let n: LeanNode = serde_json::from_value(node_json("5", None)).unwrap();
        assert_eq!(n.metadata.name.as_deref(), Some("n1"));
        assert_eq!(n.metadata.resource_version.as_deref(), Some("5"));
        assert!(n.metadata.managed_fields.is_none());
        let taints = n.spec.as_ref().unwrap().taints.as_ref().unwrap();
        assert_eq!(
            taints[0].key,
            "node.cloudprovider.kubernetes.io/uninitialized"
        );
        assert_eq!(
            n.status.as_ref().unwrap().addresses.as_ref().unwrap().len(),
            1
        );
        let view = n.into_entry().view;
        assert!(view.k3s);
        assert_eq!(view.created.map(|t| t.as_second()), Some(1_767_225_600));
    }

    fn entry(rv: &str, extra_label: Option<&str>) -> Entry {
        serde_json::from_value::<LeanNode>(node_json(rv, extra_label))
            .unwrap()
            .into_entry()
    }

    /// A cache that has observed node n1 at `rv` with the label `team`.
    fn cache_with_team(rv: &str) -> NodeCache {
        let cache = NodeCache::default();
        cache.observe(entry(rv, Some("team")));
        cache
    }

    /// Asserts that the cache holds n1 at `rv`, with the label `team` or without it.
    #[track_caller]
    fn assert_n1_cached(cache: &NodeCache, rv: &str, team: bool) {
        let cached = cache.get("n1").unwrap();
        assert_eq!(cached.view.resource_version, rv);
        assert_eq!(cached.view.labels.contains_key("team"), team);
    }

    #[test]
    fn heartbeat_is_unchanged_and_a_label_change_is_changed() {
        let cache = NodeCache::default();
        assert_eq!(cache.observe(entry("5", None)), Observed::New);
        assert_eq!(cache.observe(entry("6", None)), Observed::Unchanged);
        assert_eq!(cache.get("n1").unwrap().view.resource_version, "6");
        assert_eq!(cache.observe(entry("7", Some("team"))), Observed::Changed);
        assert_eq!(cache.get("n1").unwrap().view.resource_version, "7");
    }

    #[test]
    fn cached_entries_decode_to_the_observed_projection() {
        let cache = NodeCache::default();
        let e = entry("5", Some("team"));
        cache.observe(e.clone());
        assert_eq!(cache.get("n1"), Some(e));
        assert_eq!(cache.awaiting_initialization(), 1);
        cache.remove("n1");
        assert_eq!(cache.get("n1"), None);
    }

    #[test]
    fn a_relist_replaces_even_a_newer_cached_entry() {
        // After an etcd restore the list carries lower resourceVersions than the cache.
        let cache = cache_with_team("900");
        assert_eq!(cache.observe_listed(entry("40", None)), Observed::Changed);
        assert_n1_cached(&cache, "40", false);
        // Watch events after the re-list are newer than it again.
        assert_eq!(cache.observe(entry("41", Some("team"))), Observed::Changed);
    }

    #[test]
    fn an_older_observation_never_replaces_a_newer_one() {
        let cache = cache_with_team("9");
        assert_eq!(cache.observe(entry("8", None)), Observed::Unchanged);
        assert_n1_cached(&cache, "9", true);
    }
}
