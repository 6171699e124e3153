//! Status heartbeats, and what a heartbeat answer sets off:
//! - status heartbeats are strategic merge patches of `nodes/status`, as
//!   `PatchNodeStatus` sends them (`CreateTwoWayMergePatch` output: the changed
//!   `lastHeartbeatTime` of each condition plus `$setElementOrder/conditions`);
//! - the heartbeat answer is the stored Node, so a heartbeat that finds the uninitialized
//!   taint gone (and a podCIDR assigned) immediately sends the status update with which
//!   the kubelet reports Ready (`ReadyCondition` in kubernetes
//!   `pkg/kubelet/nodestatus/setters.go`: reason `KubeletReady`, a new
//!   `lastTransitionTime`), at most one heartbeat period after initialisation;
//! - the simulated node lifecycle controller then removes `node.kubernetes.io/not-ready`
//!   (`doNoScheduleTaintingPass`: a Ready node carries no condition taint), conflict-safely
//!   as `controller.RemoveTaintOffNode` does, first from the Node just seen, re-read after a
//!   409. Once a node is Ready without the taint, its heartbeat answers are no longer read.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::controllers::remove_taint_key;
use super::fleet::{Fleet, Inner};
use super::glance::NodeGlance;
use super::node::{CONDITION_TYPES, timestamp_now};
use super::{KubeletError, NODES_PATH, NOT_READY_TAINT};
use crate::sync::lock;

/// Reason and message of the Ready condition of a ready kubelet (kubernetes
/// `pkg/kubelet/nodestatus/setters.go`, `ReadyCondition`).
const READY_REASON: &str = "KubeletReady";
const READY_MESSAGE: &str = "kubelet is posting ready status";
/// Heartbeat requests in flight at once, so a slow server slows heartbeats down instead
/// of piling up tasks.
pub(super) const HEARTBEATS_IN_FLIGHT: u32 = 256;

/// A registered node in the heartbeat rotation.
pub(super) struct SimulatedNode {
    pub(super) name: String,
    /// Set once the node is Ready without the not-ready taint; from then on its heartbeat
    /// answers are not parsed.
    pub(super) settled: AtomicBool,
}

/// Counts of heartbeats sent by a fleet, to show that heartbeat traffic existed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeartbeatStats {
    /// Heartbeat patches the server accepted.
    pub sent: u64,
    /// Heartbeat patches that failed (they are not retried: the next period covers them).
    pub failed: u64,
}

pub(super) struct Heartbeats {
    pub(super) cancel: CancellationToken,
    pub(super) task: JoinHandle<()>,
}

/// The strategic merge patch of `nodes/status` a kubelet sends when only the heartbeat
/// times changed (the output of `CreateTwoWayMergePatch` in `PatchNodeStatus`).
pub fn heartbeat_patch(now: &str) -> Value {
    let order: Vec<Value> = CONDITION_TYPES.iter().map(|t| json!({"type": t})).collect();
    let conditions: Vec<Value> = CONDITION_TYPES
        .iter()
        .map(|t| json!({"type": t, "lastHeartbeatTime": now}))
        .collect();
    json!({"status": {"$setElementOrder/conditions": order, "conditions": conditions}})
}

/// The strategic merge patch of `nodes/status` with which a kubelet reports that it became
/// Ready: the Ready condition turns True with a new transition time, the other conditions
/// only get their heartbeat.
pub fn ready_patch(now: &str) -> Value {
    let mut patch = heartbeat_patch(now);
    let ready = patch["status"]["conditions"]
        .as_array_mut()
        .and_then(|conditions| conditions.iter_mut().find(|c| c["type"] == "Ready"));
    if let Some(ready) = ready {
        ready["status"] = json!("True");
        ready["reason"] = json!(READY_REASON);
        ready["message"] = json!(READY_MESSAGE);
        ready["lastTransitionTime"] = json!(now);
    }
    patch
}

impl Fleet {
    /// Starts (or restarts with a new period) the status heartbeats of every registered
    /// node, including nodes registered later. Each node heartbeats once per `period`, the
    /// nodes spread evenly over the period. Must be called inside a Tokio runtime.
    pub fn start_heartbeats(&self, period: Duration) -> Result<(), KubeletError> {
        if period.is_zero() {
            return Err(KubeletError::ZeroPeriod);
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| KubeletError::NoRuntime)?;
        let cancel = CancellationToken::new();
        let task = runtime.spawn(heartbeat_loop(self.inner.clone(), period, cancel.clone()));
        if let Some(old) = lock(&self.inner.heartbeats).replace(Heartbeats { cancel, task }) {
            old.cancel.cancel();
        }
        Ok(())
    }

    /// Heartbeats sent and failed so far.
    pub fn heartbeat_stats(&self) -> HeartbeatStats {
        HeartbeatStats {
            sent: self.inner.sent.load(Ordering::Relaxed),
            failed: self.inner.failed.load(Ordering::Relaxed),
        }
    }
}

/// Sends one heartbeat per registered node per period, each node at its own offset in the
/// period, with a bounded number of requests in flight.
/// Slots per heartbeat period: a node waits at most `period / HEARTBEAT_SLOTS` after
/// registering for its first heartbeat.
const HEARTBEAT_SLOTS: u32 = 50;

async fn heartbeat_loop(inner: Arc<Inner>, period: Duration, cancel: CancellationToken) {
    let in_flight = inner.heartbeats_in_flight.clone();
    // The period is cut into slots and each node beats in the slot of its registration
    // index, once per period. A node registered a moment ago beats within one slot rather
    // than after a whole round, so even a sub-second burst of joining nodes meets
    // heartbeat traffic, as it does in a real cluster.
    let slot_len = period / HEARTBEAT_SLOTS;
    for tick in 0u64.. {
        let start = tokio::time::Instant::now();
        let slot = usize::try_from(tick % u64::from(HEARTBEAT_SLOTS)).unwrap_or(0);
        let due_nodes: Vec<Arc<SimulatedNode>> = lock(&inner.registered)
            .iter()
            .skip(slot)
            .step_by(HEARTBEAT_SLOTS as usize)
            .cloned()
            .collect();
        let count = due_nodes.len().max(1) as f64;
        for (index, node) in due_nodes.into_iter().enumerate() {
            let due = start + slot_len.mul_f64(index as f64 / count);
            let permit = tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(due) => {
                    match in_flight.clone().acquire_owned().await {
                        Ok(permit) => permit,
                        Err(_) => return,
                    }
                }
            };
            let inner = inner.clone();
            tokio::spawn(async move {
                let ok = send_heartbeat(&inner, &node).await;
                let counter = if ok { &inner.sent } else { &inner.failed };
                counter.fetch_add(1, Ordering::Relaxed);
                drop(permit);
            });
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep_until(start + slot_len) => {}
        }
    }
}

/// One status heartbeat. The answer is read only until the node is Ready without the
/// not-ready taint, to keep the simulated kubelets' own CPU use small next to the system
/// under test.
async fn send_heartbeat(inner: &Inner, node: &SimulatedNode) -> bool {
    let Ok(answer) = patch_status(inner, &node.name, &heartbeat_patch(&timestamp_now())).await
    else {
        return false;
    };
    if !node.settled.load(Ordering::Relaxed) {
        let settled = become_ready(inner, &node.name, &answer).await;
        node.settled.store(settled, Ordering::Relaxed);
    }
    true
}

/// Sends a strategic merge patch of `nodes/status` as the kubelet's `PatchNodeStatus` does,
/// and returns the stored Node as text.
async fn patch_status(inner: &Inner, name: &str, patch: &Value) -> Result<String, kube::Error> {
    let request = kube::core::Request::new(NODES_PATH)
        .patch_subresource(
            "status",
            name,
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .map_err(kube::Error::BuildRequest)?;
    inner.client.request_text(request).await
}

/// Moves a node towards Ready from the Node a heartbeat just returned: the kubelet
/// reports Ready once its network is up, then the (simulated) node lifecycle controller
/// removes the not-ready taint. Returns whether the node is Ready without that taint. A failed step is
/// left to the next heartbeat, as the real components retry on their next sync.
async fn become_ready(inner: &Inner, name: &str, answer: &str) -> bool {
    let Ok(mut seen) = serde_json::from_str::<NodeGlance>(answer) else {
        return false;
    };
    if !seen.is_ready() {
        if !seen.network_ready() {
            return false;
        }
        let reported = patch_status(inner, name, &ready_patch(&timestamp_now())).await;
        match reported.map(|text| serde_json::from_str::<NodeGlance>(&text)) {
            Ok(Ok(after)) => seen = after,
            _ => return false,
        }
    }
    if !seen.has_taint(NOT_READY_TAINT) {
        return true;
    }
    if inner.registration.lifecycle.is_none() {
        // A real node lifecycle controller removes it; later heartbeats look again.
        return false;
    }
    inner
        .edit_taints(
            "not-ready taint removal",
            name,
            Some(seen.into_taints()),
            |taints| remove_taint_key(taints, NOT_READY_TAINT),
        )
        .await
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_patch_only_bumps_heartbeat_times_in_kubelet_order() {
        let patch = heartbeat_patch("2026-01-01T00:00:00Z");
        assert_eq!(
            patch,
            json!({"status": {
                "$setElementOrder/conditions": [
                    {"type": "MemoryPressure"}, {"type": "DiskPressure"},
                    {"type": "PIDPressure"}, {"type": "Ready"},
                ],
                "conditions": [
                    {"type": "MemoryPressure", "lastHeartbeatTime": "2026-01-01T00:00:00Z"},
                    {"type": "DiskPressure", "lastHeartbeatTime": "2026-01-01T00:00:00Z"},
                    {"type": "PIDPressure", "lastHeartbeatTime": "2026-01-01T00:00:00Z"},
                    {"type": "Ready", "lastHeartbeatTime": "2026-01-01T00:00:00Z"},
                ],
            }})
        );
    }

    #[test]
    fn ready_patch_turns_only_the_ready_condition_true_with_a_new_transition_time() {
        let now = "2026-01-01T00:00:00Z";
        let patch = ready_patch(now);
        let conditions = patch["status"]["conditions"].as_array().cloned();
        let conditions = conditions.unwrap_or_default();
        assert_eq!(conditions.len(), 4);
        assert_eq!(
            conditions[3],
            json!({
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now, "lastTransitionTime": now,
            })
        );
        let beats = heartbeat_patch(now)["status"]["conditions"]
            .as_array()
            .cloned();
        assert_eq!(conditions[..3], beats.unwrap_or_default()[..3]);
        assert_eq!(
            patch["status"]["$setElementOrder/conditions"],
            heartbeat_patch(now)["status"]["$setElementOrder/conditions"]
        );
    }
}
