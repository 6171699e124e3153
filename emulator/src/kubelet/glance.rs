//! What the simulated kubelet and controllers read of a Node answer: a few fields parsed
//! without building the rest into values ([`NodeGlance`]), and a Node's taints with the
//! resourceVersion they were read at ([`TaintSnapshot`]).

use k8s_openapi::api::core::v1::Node;
use serde::Deserialize;
use serde_json::{Value, json};

use super::UNINITIALIZED_TAINT;

/// The few fields of a Node answer the simulated kubelet and node lifecycle controller
/// look at; everything else in the answer is skipped without being built into values.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct NodeGlance {
    metadata: GlanceMetadata,
    spec: GlanceSpec,
    status: GlanceStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct GlanceMetadata {
    resource_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GlanceSpec {
    #[serde(rename = "podCIDR")]
    pod_cidr: Option<String>,
    taints: Vec<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GlanceStatus {
    conditions: Vec<GlanceCondition>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GlanceCondition {
    #[serde(rename = "type")]
    kind: String,
    status: String,
}

impl NodeGlance {
    pub(super) fn has_taint(&self, key: &str) -> bool {
        self.spec.taints.iter().any(|t| t["key"] == key)
    }

    pub(super) fn is_ready(&self) -> bool {
        self.status
            .conditions
            .iter()
            .any(|c| c.kind == "Ready" && c.status == "True")
    }

    /// Whether flannel would be up: the CCM removed the uninitialized taint (flannel's
    /// pods do not tolerate it) and the node has a pod CIDR to configure.
    pub(super) fn network_ready(&self) -> bool {
        !self.has_taint(UNINITIALIZED_TAINT)
            && self.spec.pod_cidr.as_deref().is_some_and(|c| !c.is_empty())
    }

    pub(super) fn into_taints(self) -> TaintSnapshot {
        TaintSnapshot {
            resource_version: self.metadata.resource_version,
            taints: self.spec.taints,
        }
    }
}

/// A Node's taints with the resourceVersion they were read at.
pub(super) struct TaintSnapshot {
    pub(super) resource_version: Option<String>,
    pub(super) taints: Vec<Value>,
}

impl TaintSnapshot {
    pub(super) fn of(node: Node) -> TaintSnapshot {
        TaintSnapshot {
            resource_version: node.metadata.resource_version,
            taints: node
                .spec
                .and_then(|spec| spec.taints)
                .unwrap_or_default()
                .iter()
                .map(|taint| json!(taint))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet::node::{described_node, node_object, not_ready_taint};
    use crate::kubelet::{KubeletSpec, NOT_READY_TAINT};

    #[test]
    fn network_is_ready_only_without_the_uninitialized_taint_and_with_a_pod_cidr() {
        let glance =
            |node: &Value| serde_json::from_value::<NodeGlance>(node.clone()).unwrap_or_default();
        let spec = KubeletSpec::new("worker-1");
        let registered = glance(&node_object(&spec));
        assert!(!registered.network_ready());
        assert!(!registered.is_ready());
        assert!(!registered.has_taint(NOT_READY_TAINT));

        let mut node = described_node(&spec);
        assert!(!glance(&node).network_ready(), "still tainted");
        node["spec"]["taints"] = json!([not_ready_taint()]);
        assert!(glance(&node).network_ready());

        node["spec"]["podCIDR"] = Value::Null;
        assert!(!glance(&node).network_ready());
    }
}
