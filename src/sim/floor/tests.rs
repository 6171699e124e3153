//! Tests of the floor client: the writes it derives from a run and replays.

use k8s_openapi::api::core::v1::{NodeAddress, Taint};
use serde_json::json;

use super::*;
use crate::facts::UNINITIALIZED_TAINT;

fn view(k3s: bool, node_args: Option<&str>, control_plane: bool) -> NodeView {
    let mut view = NodeView {
        name: "n".into(),
        k3s,
        taints: vec![Taint {
            key: UNINITIALIZED_TAINT.into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        }],
        ..NodeView::default()
    };
    if let Some(args) = node_args {
        view.annotations.insert(NODE_ARGS.into(), args.into());
    }
    if control_plane {
        view.labels
            .insert(CONTROL_PLANE_LABEL.into(), "true".into());
    }
    view
}

/// The floor starts when bare-ccm would: on a tainted node, for a k3s node once k3s has
/// described it.
#[test]
fn the_floor_starts_on_a_k3s_node_once_k3s_described_it() {
    assert!(!ready_for_init(&view(true, None, false)));
    assert!(ready_for_init(&view(false, None, false)));
    assert!(ready_for_init(&view(true, Some(r#"["agent"]"#), false)));
    assert!(!ready_for_init(&view(true, Some(r#"["server"]"#), false)));
    assert!(ready_for_init(&view(true, Some(r#"["server"]"#), true)));
    let mut untainted = view(false, None, false);
    untainted.taints.clear();
    assert!(!ready_for_init(&untainted));
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

/// The registered node as the floor's watch shows it.
fn registered_view(name: &str) -> NodeView {
    let mut node = registered();
    node["metadata"]["name"] = json!(name);
    node["metadata"]["resourceVersion"] = json!("5");
    let lean: LeanNode = serde_json::from_value(node).unwrap();
    lean.into_entry().view
}

#[test]
fn the_replayed_writes_are_bare_ccms_requests() {
    let event = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "reason": "Synced",
        "metadata": {"name": "sim-node-00001.abc", "namespace": "default", "uid": "u", "resourceVersion": "9"},
        "regarding": {"kind": "Node", "name": "sim-node-00001"}
    });
    let w = NodeWrites::derive(&registered(), &initialised(), true, true, Some(&event));
    let node = registered_view("sim-node-00001");
    // The status write: the addresses, no precondition.
    assert_eq!(
        status_addresses_patch(&node, &w.resolution),
        Some(json!({"status": {"addresses": [
            {"type": "InternalIP", "address": "10.0.0.2"},
            {"type": "Hostname", "address": "sim-node-00001"}
        ]}}))
    );
    // The node write: bare-ccm's JSON patch, testing what the floor read.
    let mut with_addresses = node.clone();
    with_addresses.addresses = vec![
        NodeAddress {
            type_: "InternalIP".into(),
            address: "10.0.0.2".into(),
        },
        NodeAddress {
            type_: "Hostname".into(),
            address: "sim-node-00001".into(),
        },
    ];
    let patch = init_patch(&with_addresses, &w.resolution).unwrap();
    let ops = patch.as_array().unwrap();
    assert_eq!(ops[0]["op"], "test");
    assert_eq!(ops[0]["path"], "/spec/taints");
    assert!(
        ops.contains(&json!({"op": "replace", "path": "/spec/taints", "value": [
            {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
        ]}))
    );
    assert!(ops.contains(
        &json!({"op": "add", "path": "/spec/providerID", "value": "k3s://sim-node-00001"})
    ));
    assert!(ops.contains(&json!({"op": "add", "path": "/metadata/labels/node.kubernetes.io~1instance-type", "value": "k3s"})));
    let event = w.event.unwrap_or_default();
    assert_eq!(
        event["metadata"],
        json!({"name": "sim-node-00001.abc", "namespace": "default"})
    );
}

#[test]
fn writes_bare_ccm_did_not_make_are_not_replayed() {
    let w = NodeWrites::derive(&registered(), &initialised(), false, true, None);
    assert!(!w.status && w.node && w.event.is_none());
    // A providerID the node had before is not bare-ccm's to set.
    let mut before = registered();
    before["spec"]["providerID"] = json!("k3s://sim-node-00001");
    let w = NodeWrites::derive(&before, &initialised(), true, true, None);
    assert!(!w.resolution.set_provider_id);
}

#[test]
fn renaming_rewrites_every_mention_of_the_node() {
    let w = NodeWrites::derive(&registered(), &initialised(), true, true, None)
        .renamed("sim-node-00001", "floor-node-00001");
    assert_eq!(w.resolution.node, "floor-node-00001");
    assert_eq!(w.resolution.provider_id.value, "k3s://floor-node-00001");
    let status = status_addresses_patch(&registered_view("floor-node-00001"), &w.resolution)
        .unwrap_or_default();
    assert_eq!(
        status["status"]["addresses"][1]["address"],
        "floor-node-00001"
    );
    assert_eq!(status["status"]["addresses"][0]["address"], "10.0.0.2");
}
