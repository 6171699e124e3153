//! The kube-controller-manager's writes to a new Node, simulated (each switchable off with
//! [`Registration`](super::Registration) where a real one runs):
//! - **the node IPAM controller**: `spec.podCIDR` and `spec.podCIDRs` by a strategic merge
//!   patch without precondition, as `PatchNodeCIDRs` sends it (k8s.io/component-helpers
//!   `node/util/cidr.go`);
//! - **the node lifecycle controller**: the taint `node.kubernetes.io/not-ready:NoSchedule`
//!   on a node that is not Ready (`doNoScheduleTaintingPass`). The API server's
//!   TaintNodesByCondition admission already adds it to every created Node (kubernetes
//!   `plugin/pkg/admission/nodetaint`; the emulator does the same), so this step only
//!   matters for a node that lost it. Its removal once the node is Ready is in `heartbeat`.
//!
//! Taints are written as `controller.AddOrUpdateTaintOnNode` and `RemoveTaintOffNode` do
//! ([`Inner::edit_taints`], also used by the admin actions): the whole taint list with the
//! read resourceVersion as precondition, re-read after a 409 (kubernetes
//! `pkg/controller/controller_utils.go`, `PatchNodeTaints`).

use std::sync::Mutex;

use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::fleet::Inner;
use super::glance::{NodeGlance, TaintSnapshot};
use super::node::{not_ready_taint, pod_cidr};
use super::{KubeletError, NODES_PATH, NOT_READY_TAINT};
use crate::sync::lock;

/// The strategic merge patch of the node IPAM controller (k8s.io/component-helpers
/// `node/util/cidr.go`, `PatchNodeCIDRs`: `podCIDR` and `podCIDRs`, no precondition).
pub(super) fn nodeipam_patch(name: &str) -> Value {
    let cidr = pod_cidr(name);
    json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
}

impl Inner {
    /// The node IPAM controller's write.
    pub(super) async fn assign_pod_cidr(
        &self,
        node: &str,
        patch: &Value,
    ) -> Result<(), KubeletError> {
        self.retry("podCIDR assignment", node, || async {
            let request = kube::core::Request::new(NODES_PATH)
                .patch(node, &PatchParams::default(), &Patch::Strategic(patch))
                .map_err(kube::Error::BuildRequest)?;
            self.client.request_text(request).await.map(drop)
        })
        .await
    }

    /// The node lifecycle controller's `not-ready:NoSchedule` taint on a node that is not
    /// Ready, from a fresh read (`AddOrUpdateTaintOnNode`).
    pub(super) async fn taint_not_ready(&self, node: &str) -> Result<(), KubeletError> {
        let seen = self
            .retry("not-ready taint addition", node, || async {
                let request = kube::core::Request::new(NODES_PATH)
                    .get(node, &kube::api::GetParams::default())
                    .map_err(kube::Error::BuildRequest)?;
                let text = self.client.request_text(request).await?;
                serde_json::from_str::<NodeGlance>(&text).map_err(kube::Error::SerdeError)
            })
            .await?;
        if seen.is_ready() {
            return Ok(());
        }
        self.edit_taints(
            "not-ready taint addition",
            node,
            Some(seen.into_taints()),
            |taints| {
                if taints.iter().any(|t| t["key"] == NOT_READY_TAINT) {
                    return false;
                }
                taints.push(not_ready_taint());
                true
            },
        )
        .await
    }
}

impl Inner {
    /// Changes `spec.taints` conflict-safely: read the Node (or start from `known`, taints
    /// just seen), edit its taints, write them back with the read resourceVersion as a
    /// precondition, and start again from a fresh read on 409.
    pub(super) async fn edit_taints(
        &self,
        action: &'static str,
        node: &str,
        known: Option<TaintSnapshot>,
        edit: impl Fn(&mut Vec<Value>) -> bool,
    ) -> Result<(), KubeletError> {
        let known = Mutex::new(known);
        self.retry(action, node, || async {
            let seen = lock(&known).take();
            let TaintSnapshot {
                resource_version,
                mut taints,
            } = match seen {
                Some(seen) => seen,
                None => TaintSnapshot::of(self.nodes.get(node).await?),
            };
            if !edit(&mut taints) {
                return Ok(());
            }
            let taints = if taints.is_empty() {
                Value::Null
            } else {
                json!(taints)
            };
            let patch = json!({
                "metadata": {"resourceVersion": resource_version},
                "spec": {"taints": taints},
            });
            self.nodes
                .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(drop)
        })
        .await
    }
}

/// Removes every taint with `key` (any effect); returns whether one was there.
pub(super) fn remove_taint_key(taints: &mut Vec<Value>, key: &str) -> bool {
    let before = taints.len();
    taints.retain(|t| t["key"] != key);
    taints.len() != before
}
