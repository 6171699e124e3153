//! One sync of one node: resolve its cached view, then write what differs. For a tainted
//! node that is initialisation (at most two writes: `status.addresses` first, then the
//! taint/providerID/labels JSON patch built from the node the first write returned); for a
//! node a cloud controller initialised it is the refresh (its addresses, then the labels it
//! lacks, e.g. after a config change: a write each, or none when nothing changed); any
//! other node is left to its kubelet.
//! Which writes a node needs is decided by `crate::plan`; this module only executes the
//! plan. The metadata itself comes only from `resolve` and the patch builders.

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::Value;

use super::cache::{Entry, LeanNode};
use super::client;
use super::context::Context;
use super::error::{Error, Write};
use super::events::{
    REASON_ADDRESS_RESOLUTION_FAILED, REASON_INITIALIZATION_FAILED, REASON_K3S_AGENT_WAIT_EXPIRED,
    REASON_KUBELET_OWNS_ADDRESSES, node_ref,
};
use super::kubelet_fight::Verdict;
use crate::node_view::NodeView;
use crate::patch::{init_patch, labels_patch};
use crate::plan::{Plan, plan};
use crate::resolve::k3s_agent::agent_wait;
use crate::resolve::{Resolution, resolve};

/// Field manager of every bare-ccm write.
pub const FIELD_MANAGER: &str = "bare-ccm";

/// Immediate re-read-and-retry rounds after a conflict (a 409, or a failed JSON-patch
/// `test`) before falling back to backoff. Upstream retries up to 20 times with sleeps; a
/// fresh GET makes each round count.
pub const CONFLICT_RETRIES: u32 = 5;

/// What a sync did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synced {
    /// The node is gone.
    Gone,
    /// The uninitialized taint was removed.
    Initialized,
    /// An initialised node's addresses were rewritten, or its missing labels added.
    Refreshed,
    /// Nothing differed; nothing was written.
    Unchanged,
    /// A k3s node not yet described by k3s: nothing was written; look again after this
    /// long (the watch event of the description usually comes first).
    Waiting(Duration),
}

/// Syncs `name` from the cache, retrying conflicts a bounded number of times.
pub async fn sync_node(ctx: &Context, name: &str) -> Result<Synced, Error> {
    let mut conflicts = 0;
    loop {
        let Some(entry) = ctx.cache.get(name) else {
            return Ok(Synced::Gone);
        };
        match attempt(ctx, entry).await {
            Err(Error::Conflict { .. }) if conflicts < CONFLICT_RETRIES => {
                conflicts += 1;
                tracing::debug!(node = name, conflicts, "conflict; re-reading the node");
                match ctx.nodes.get_opt(name).await {
                    Ok(Some(node)) => {
                        ctx.cache.observe(node.into_entry());
                    }
                    Ok(None) => {
                        ctx.cache.remove(name);
                        return Ok(Synced::Gone);
                    }
                    Err(source) => {
                        return Err(Error::Api {
                            node: name.to_string(),
                            write: Write::Read,
                            source,
                        });
                    }
                }
            }
            Err(Error::Conflict { node, .. }) => {
                return Err(Error::Conflict {
                    node,
                    attempts: conflicts + 1,
                });
            }
            Err(Error::Api {
                source: kube::Error::Api(status),
                ..
            }) if status.code == 404 => {
                // Deleted while being synced; the watch delivers the deletion too.
                ctx.cache.remove(name);
                return Ok(Synced::Gone);
            }
            other => return other,
        }
    }
}

async fn attempt(ctx: &Context, entry: Entry) -> Result<Synced, Error> {
    let name = entry.view.name.clone();
    let created = entry.view.created;
    let config = ctx.config.current();
    let now = k8s_openapi::jiff::Timestamp::now();
    let wait = agent_wait(&entry.view, config.k3s_agent_wait, now);
    if let Some(retry_in) = wait.retry_in(now) {
        tracing::debug!(node = %name, ?retry_in, "waiting for k3s to describe the node");
        return Ok(Synced::Waiting(retry_in));
    }
    if let Some(note) = wait.expired_warning(&name, config.k3s_agent_wait) {
        tracing::warn!(node = %name, "{note}");
        ctx.events
            .warn(node_ref(&name), REASON_K3S_AGENT_WAIT_EXPIRED, &note);
    }
    let res = resolve(&entry.view, &config);
    match plan(&entry.view, &res) {
        // Never initialised by a cloud controller: its kubelet owns the addresses, so
        // bare-ccm neither writes them nor warns about them (see `is_refreshable`).
        Plan::Untouched => Ok(Synced::Unchanged),
        Plan::Blocked { tainted, errors } => {
            let reason = if tainted {
                REASON_INITIALIZATION_FAILED
            } else {
                REASON_ADDRESS_RESOLUTION_FAILED
            };
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            let note = errors.join("; ");
            ctx.events.warn(node_ref(&name), reason, &note);
            Err(Error::Unresolved { node: name, errors })
        }
        planned => {
            for warning in &res.warnings {
                tracing::debug!(node = %name, %warning, "resolver warning");
            }
            match planned {
                Plan::Initialize { status, node } => {
                    initialize(ctx, entry.view, &res, status, node, created).await
                }
                Plan::Refresh { status, labels } => {
                    refresh(ctx, entry.view, &res, status, labels).await
                }
                _ => Ok(Synced::Unchanged),
            }
        }
    }
}

/// Executes [`Plan::Initialize`]: the status write, then the node patch. After a status
/// write the node patch is built again from the node the server returned, so its `test`s
/// check the taints and labels there now.
async fn initialize(
    ctx: &Context,
    view: NodeView,
    res: &Resolution,
    status: Option<Value>,
    node: Value,
    created: Option<k8s_openapi::jiff::Timestamp>,
) -> Result<Synced, Error> {
    let name = view.name.clone();
    let node = match status {
        Some(patch) => {
            let fresh = write(ctx, &name, Write::Addresses, &patch)
                .await?
                .into_entry();
            let rebuilt = init_patch(&fresh.view, res);
            ctx.cache.observe(fresh);
            match rebuilt {
                Some(node) => node,
                None => return Ok(Synced::Unchanged),
            }
        }
        None => node,
    };
    let fresh = write(ctx, &name, Write::Init, &node).await?.into_entry();
    ctx.cache.observe(fresh);
    let since_creation = since(created);
    ctx.metrics.node_initialized(since_creation);
    tracing::info!(
        node = %name,
        provider_id = %res.provider_id.value,
        addresses = res.addresses.len(),
        labels = res.labels.len(),
        "node initialized"
    );
    ctx.events.synced(&name);
    ctx.metrics
        .initial_sync_delay
        .observe(since(created).as_secs_f64());
    Ok(Synced::Initialized)
}

/// Executes [`Plan::Refresh`]: the addresses (unless the node's kubelet writes its own
/// back, see `kubelet_fight`), then the missing labels, built again from the node the
/// status write returned when there was one.
async fn refresh(
    ctx: &Context,
    mut view: NodeView,
    res: &Resolution,
    status: Option<Value>,
    mut labels: Option<Value>,
) -> Result<Synced, Error> {
    let name = view.name.clone();
    let mut wrote_addresses = false;
    if let Some(patch) = status.filter(|_| kubelet_leaves_addresses(ctx, &view)) {
        let before = view.addresses.clone();
        let fresh = write(ctx, &name, Write::Addresses, &patch)
            .await?
            .into_entry();
        wrote_addresses = true;
        view = fresh.view.clone();
        ctx.reverts.wrote(&name, before, view.addresses.clone());
        ctx.cache.observe(fresh);
        labels = labels_patch(&view, res);
        tracing::info!(node = %name, "addresses refreshed");
    }
    let mut added_labels = false;
    if let Some(patch) = labels {
        let node = write(ctx, &name, Write::Labels, &patch).await?;
        ctx.cache.observe(node.into_entry());
        added_labels = true;
        tracing::info!(node = %name, labels = res.labels.len(), "missing labels added");
    }
    Ok(if wrote_addresses || added_labels {
        Synced::Refreshed
    } else {
        Synced::Unchanged
    })
}

/// Whether an initialised node's addresses may be refreshed: not when its kubelet has put
/// its own list back over bare-ccm's (see `kubelet_fight`); then a Warning says why.
fn kubelet_leaves_addresses(ctx: &Context, view: &NodeView) -> bool {
    match ctx.reverts.before_write(&view.name, &view.addresses) {
        Verdict::Write => true,
        Verdict::KubeletOwnsAddresses { reverts } => {
            let name = &view.name;
            let note = format!(
                "the kubelet of node {name} wrote its own addresses back over bare-ccm's {reverts} times: it does not run with --cloud-provider=external, so it owns status.addresses and bare-ccm stops writing them. Fix: on k3s start the node with --kubelet-arg=cloud-provider=external (kubeadm: KUBELET_EXTRA_ARGS=--cloud-provider=external) and restart k3s/the kubelet"
            );
            tracing::warn!(node = %name, reverts, "kubelet owns the addresses; not writing them");
            ctx.events
                .warn(node_ref(name), REASON_KUBELET_OWNS_ADDRESSES, &note);
            false
        }
    }
}

/// Time since `created` (zero when unknown or in the future).
fn since(created: Option<k8s_openapi::jiff::Timestamp>) -> Duration {
    created
        .and_then(|c| {
            k8s_openapi::jiff::Timestamp::now()
                .duration_since(c)
                .try_into()
                .ok()
        })
        .unwrap_or_default()
}

/// Sends one patch, if this replica may write: a merge patch to `nodes/status`, a JSON
/// patch (see `crate::patch`) to the node.
async fn write(ctx: &Context, name: &str, which: Write, patch: &Value) -> Result<LeanNode, Error> {
    if !ctx.gate.may_write() {
        return Err(Error::NotLeader {
            node: name.to_string(),
        });
    }
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    let result = match which {
        Write::Addresses => {
            ctx.nodes
                .patch_status(name, &params, &Patch::Merge(patch))
                .await
        }
        Write::Init | Write::Labels | Write::Read => match serde_json::from_value(patch.clone()) {
            Ok(ops) => {
                ctx.nodes
                    .patch(name, &params, &Patch::Json::<()>(ops))
                    .await
            }
            Err(e) => Err(kube::Error::SerdeError(e)),
        },
    };
    result.map_err(|source| match &source {
        // The client dropped the write: the lease was lost while it waited.
        _ if client::is_fenced(&source) => Error::NotLeader {
            node: name.to_string(),
        },
        // Only the node write is a JSON patch with `test` operations.
        kube::Error::Api(status)
            if status.code == 409 || (which != Write::Addresses && is_failed_test(status)) =>
        {
            Error::Conflict {
                node: name.to_string(),
                attempts: 1,
            }
        }
        _ => Error::Api {
            node: name.to_string(),
            write: which,
            source,
        },
    })
}

/// Whether a 422 is the API server's answer to a JSON patch that does not apply to the
/// current object, i.e. one of our `test` operations failed because the node changed.
/// kube-apiserver answers it with `NewGenericServerResponse(422, ...)` (apiserver
/// `pkg/endpoints/handlers/patch.go`, `applyJSPatch`): reason Invalid, the generic message
/// "the server rejected our request due to an error in our request" and empty `details`,
/// whereas a validation error (`NewInvalid`) names the kind and the object in `details`.
/// A server that passes the json-patch text on ("testing value /spec/taints failed: test
/// failed", gopkg.in/evanphx/json-patch.v4) is recognised too.
pub fn is_failed_test(status: &kube::core::Status) -> bool {
    status.code == 422
        && (status.message.contains("test failed")
            || status
                .details
                .as_ref()
                .is_none_or(|d| d.kind.is_empty() && d.name.is_empty() && d.causes.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(body: serde_json::Value) -> kube::core::Status {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn a_failed_json_patch_test_is_a_conflict_and_a_validation_error_is_not() {
        // What kube-apiserver sends for a failed `test` (NewGenericServerResponse).
        let failed = status(serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "the server rejected our request due to an error in our request",
            "reason": "Invalid", "details": {}, "code": 422
        }));
        assert!(is_failed_test(&failed));
        let passed_on = status(serde_json::json!({
            "status": "Failure", "code": 422, "reason": "Invalid",
            "message": "testing value /spec/taints failed: test failed"
        }));
        assert!(is_failed_test(&passed_on));
        // A field validation error (NewInvalid) names the object: permanent, not a conflict.
        let invalid = status(serde_json::json!({
            "status": "Failure", "code": 422, "reason": "Invalid",
            "message": "Node \"n1\" is invalid: spec.providerID: Forbidden: node updates may not change providerID except from \"\" to valid",
            "details": {"name": "n1", "kind": "Node", "causes": [{"reason": "FieldValueForbidden", "field": "spec.providerID"}]}
        }));
        assert!(!is_failed_test(&invalid));
        let conflict = status(
            serde_json::json!({"status": "Failure", "code": 409, "reason": "Conflict", "details": {}}),
        );
        assert!(!is_failed_test(&conflict));
    }
}
