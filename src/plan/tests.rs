//! Table tests of [`plan`] on its JSON: one row per kind of node.

use serde_json::{Value, json};

use super::*;
use crate::facts::UNINITIALIZED_TAINT;
use crate::resolve::AddressSource;
use crate::test_support::{node_addresses, resolved, sourced, string_map, uninitialized};

/// The pairs `(type, address)` of a node's `status.addresses` or of a resolution.
type Addresses<'a> = &'a [(&'a str, &'a str)];

fn view(
    tainted: bool,
    provider_id: &str,
    addresses: Addresses,
    labels: &[(&str, &str)],
) -> NodeView {
    NodeView {
        name: "n1".into(),
        provider_id: provider_id.into(),
        taints: if tainted {
            vec![uninitialized()]
        } else {
            Vec::new()
        },
        addresses: node_addresses(addresses),
        labels: string_map(labels),
        ..NodeView::default()
    }
}

fn res(
    tainted: bool,
    addresses: Addresses,
    labels: &[(&str, &str)],
    errors: &[ResolveError],
) -> Resolution {
    Resolution {
        node: "n1".into(),
        tainted,
        addresses: resolved(addresses, AddressSource::Annotations),
        provider_id: sourced("k3s://n1"),
        set_provider_id: tainted,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), sourced(v)))
            .collect(),
        warnings: Vec::new(),
        errors: errors.to_vec(),
    }
}

fn no_internal_ip() -> ResolveError {
    ResolveError::NoInternalIp {
        node: "n1".into(),
        inventory: false,
    }
}

/// How [`no_internal_ip`] is written in the plan's JSON.
const NO_INTERNAL_IP: &str = "no InternalIP for node n1: set --node-ip on the k3s agent, or annotate bare-ccm.io/internal-ip=<ip>";

const IP: Addresses = &[("InternalIP", "10.0.0.5")];

fn status_of(addresses: Addresses) -> Value {
    let list: Vec<Value> = addresses
        .iter()
        .map(|(t, a)| json!({"type": t, "address": a}))
        .collect();
    json!({"status": {"addresses": list}})
}

fn init_ops() -> Value {
    json!([
        {"op": "test", "path": "/spec/taints", "value": [
            {"key": UNINITIALIZED_TAINT, "value": "true", "effect": "NoSchedule"}
        ]},
        {"op": "remove", "path": "/spec/taints"},
        {"op": "add", "path": "/spec/providerID", "value": "k3s://n1"},
    ])
}

#[test]
fn each_kind_of_node_gets_its_plan() {
    let zone = [("topology.kubernetes.io/zone", "a")];
    let rows: Vec<(&str, NodeView, Resolution, Value)> = vec![
        (
            "a node no cloud controller initialised is left to its kubelet",
            view(false, "", &[], &[]),
            res(false, IP, &[], &[]),
            json!({"plan": "untouched"}),
        ),
        (
            "a tainted node that does not resolve keeps its taint",
            view(true, "", &[], &[]),
            res(true, IP, &[], &[no_internal_ip()]),
            json!({"plan": "blocked", "tainted": true, "errors": [NO_INTERNAL_IP]}),
        ),
        (
            "an initialised node that does not resolve keeps its addresses",
            view(false, "k3s://n1", &[], &[]),
            res(false, IP, &[], &[no_internal_ip()]),
            json!({"plan": "blocked", "tainted": false, "errors": [NO_INTERNAL_IP]}),
        ),
        (
            "an initialised node with its addresses and labels is unchanged",
            view(false, "k3s://n1", IP, &zone),
            res(false, IP, &zone, &[]),
            json!({"plan": "unchanged"}),
        ),
        (
            "an initialised node with other addresses is refreshed",
            view(false, "k3s://n1", &[("InternalIP", "10.0.0.4")], &[]),
            res(false, IP, &[], &[]),
            json!({"plan": "refresh", "status": status_of(IP), "labels": null}),
        ),
        (
            "an initialised node that lacks a label gets it",
            view(false, "k3s://n1", IP, &[]),
            res(false, IP, &zone, &[]),
            json!({"plan": "refresh", "status": null, "labels": [
                {"op": "test", "path": "/metadata/labels", "value": null},
                {"op": "add", "path": "/metadata/labels", "value": {"topology.kubernetes.io/zone": "a"}},
            ]}),
        ),
        (
            "a tainted node gets its addresses, then its initialisation",
            view(true, "", &[], &[]),
            res(true, IP, &[], &[]),
            json!({"plan": "initialize", "status": status_of(IP), "node": init_ops()}),
        ),
        (
            "a tainted node with its addresses already is only initialised",
            view(true, "", IP, &[]),
            res(true, IP, &[], &[]),
            json!({"plan": "initialize", "status": null, "node": init_ops()}),
        ),
    ];
    for (name, view, res, want) in rows {
        let got = serde_json::to_value(plan(&view, &res)).unwrap_or_default();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn status_and_node_give_the_writes_in_order() {
    let p = plan(&view(true, "", &[], &[]), &res(true, IP, &[], &[]));
    assert_eq!(p.status(), Some(&status_of(IP)));
    assert_eq!(p.node(), Some(&init_ops()));
    assert_eq!(Plan::Untouched.status(), None);
    assert_eq!(Plan::Unchanged.node(), None);
}
