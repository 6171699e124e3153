//! Pure builders of the patches the controller sends. Each touches only the fields bare-ccm
//! owns, and none carries the whole-object `metadata.resourceVersion`:
//! - `nodes/status`: a JSON merge patch that replaces `status.addresses` whole. A merge
//!   patch of a list is atomic on the server, and upstream's `PatchNodeStatus`
//!   (component-helpers `node/util/status.go`) sends it without a precondition too, so the
//!   kubelet's and k3s's writes in a node's first second cost no 409s.
//! - `nodes`: a JSON patch (RFC 6902) that first `test`s `/spec/taints` (and, when it adds
//!   labels, `/metadata/labels`) against what the view saw, then writes. A taint or label
//!   changed meanwhile fails the `test`: the server answers 422 and nothing is written; the
//!   controller re-reads the node and retries, as for a 409.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::facts::UNINITIALIZED_TAINT;
use crate::node_view::NodeView;
use crate::resolve::Resolution;

/// The merge patch for `nodes/status` that replaces `status.addresses` whole, or `None`
/// when the node already has exactly these addresses, the desired list is empty (the
/// kubelet's addresses are then left alone), or the resolution has errors.
pub fn status_addresses_patch(node: &NodeView, res: &Resolution) -> Option<Value> {
    if res.addresses.is_empty() || !res.errors.is_empty() {
        return None;
    }
    let unchanged = node.addresses.len() == res.addresses.len()
        && node
            .addresses
            .iter()
            .zip(&res.addresses)
            .all(|(have, want)| have.type_ == want.type_.as_str() && have.address == want.address);
    if unchanged {
        return None;
    }
    let addresses: Vec<Value> = res
        .addresses
        .iter()
        .map(|a| json!({"type": a.type_.as_str(), "address": a.address}))
        .collect();
    Some(json!({"status": {"addresses": addresses}}))
}

/// Whether bare-ccm keeps this node's addresses current after initialisation: it carries no
/// uninitialized taint and has a `spec.providerID`, i.e. a cloud controller initialised it
/// and its kubelet runs with `--cloud-provider=external`. A node never initialised by a CCM
/// (no providerID) has a kubelet that rewrites `status.addresses` on every status update;
/// writing them would fight that kubelet forever (reference §2.9 refreshes *initialised*
/// nodes only).
pub fn is_refreshable(node: &NodeView) -> bool {
    !node.provider_id.is_empty() && !node.is_uninitialized()
}

/// The address-refresh write of an initialised node: the [`status_addresses_patch`] when
/// the node [`is_refreshable`], else `None`. The controller and `explain` both decide
/// refreshes with this one function.
pub fn refresh_patch(node: &NodeView, res: &Resolution) -> Option<Value> {
    if !is_refreshable(node) {
        return None;
    }
    status_addresses_patch(node, res)
}

/// The JSON patch for the node itself: `test` the taints (and the labels, when any are
/// added) the view saw; then remove the uninitialized taints (the others written back
/// unchanged and in order; the field removed when none remain), add `spec.providerID` when
/// the node has none, and add the missing labels. `None` when the node is not tainted (an
/// initialised node is never re-initialised), or when the resolution has errors.
pub fn init_patch(node: &NodeView, res: &Resolution) -> Option<Value> {
    if !res.errors.is_empty() || !node.is_uninitialized() {
        return None;
    }
    let remaining: Vec<_> = node
        .taints
        .iter()
        .filter(|t| t.key != UNINITIALIZED_TAINT)
        .collect();
    let labels = missing_labels(node, res);
    let mut ops = vec![test_op(
        "/spec/taints",
        serde_json::to_value(&node.taints).ok()?,
    )];
    if !labels.is_empty() {
        ops.push(labels_test(node));
    }
    ops.push(if remaining.is_empty() {
        json!({"op": "remove", "path": "/spec/taints"})
    } else {
        json!({"op": "replace", "path": "/spec/taints", "value": serde_json::to_value(remaining).ok()?})
    });
    if res.set_provider_id && node.provider_id.is_empty() && !res.provider_id.value.is_empty() {
        ops.push(json!({"op": "add", "path": "/spec/providerID", "value": res.provider_id.value}));
    }
    ops.extend(add_labels_ops(node, &labels));
    Some(Value::Array(ops))
}

/// The JSON patch that adds the labels an initialised node lacks (a config change, or an
/// inventory selector that matches only now): `test` of the labels the view saw, then one
/// `add` per label, so a label set meanwhile is never overwritten. `None` when nothing is
/// missing, when the node is not [`is_refreshable`] (tainted nodes get their labels from
/// [`init_patch`]; nodes no cloud controller initialised are left alone), or on errors.
pub fn labels_patch(node: &NodeView, res: &Resolution) -> Option<Value> {
    if !res.errors.is_empty() || !is_refreshable(node) {
        return None;
    }
    let labels = missing_labels(node, res);
    if labels.is_empty() {
        return None;
    }
    let mut ops = vec![labels_test(node)];
    ops.extend(add_labels_ops(node, &labels));
    Some(Value::Array(ops))
}

/// The resolved labels the node does not carry yet (the resolver already leaves out the
/// ones it has; this keeps the "never overwrite" rule local to the patch too).
fn missing_labels<'r>(node: &NodeView, res: &'r Resolution) -> BTreeMap<&'r str, &'r str> {
    res.labels
        .iter()
        .filter(|(k, _)| !node.labels.contains_key(*k))
        .map(|(k, v)| (k.as_str(), v.value.as_str()))
        .collect()
}

fn test_op(path: &str, value: Value) -> Value {
    json!({"op": "test", "path": path, "value": value})
}

/// `test` of `/metadata/labels` against the view's labels. A node without labels has no
/// `labels` field (the server omits an empty map): `null` then, which the API server's
/// JSON patch (gopkg.in/evanphx/json-patch.v4 `Patch.test`) takes as "absent".
fn labels_test(node: &NodeView) -> Value {
    let seen = if node.labels.is_empty() {
        Value::Null
    } else {
        json!(node.labels)
    };
    test_op("/metadata/labels", seen)
}

/// `add` operations for `labels`: one per key, or the whole map when the node has no
/// `labels` field (an `add` below a missing member would fail).
fn add_labels_ops(node: &NodeView, labels: &BTreeMap<&str, &str>) -> Vec<Value> {
    if labels.is_empty() {
        return Vec::new();
    }
    if node.labels.is_empty() {
        return vec![json!({"op": "add", "path": "/metadata/labels", "value": labels})];
    }
    labels
        .iter()
        .map(|(k, v)| {
            json!({"op": "add", "path": format!("/metadata/labels/{}", pointer_token(k)), "value": v})
        })
        .collect()
}

/// A JSON pointer reference token (RFC 6901 §4): `~` becomes `~0`, then `/` becomes `~1`.
pub fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{NodeAddress, Taint};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::resolve::{AddressSource, ResolveError};
    use crate::test_support::{resolved, sourced, uninitialized};

    fn taint(key: &str, value: Option<&str>, effect: &str) -> Taint {
        Taint {
            key: key.to_string(),
            value: value.map(str::to_string),
            effect: effect.to_string(),
            time_added: None,
        }
    }

    fn no_internal_ip() -> ResolveError {
        ResolveError::NoInternalIp {
            node: "n1".into(),
            inventory: false,
        }
    }

    fn view(taints: Vec<Taint>) -> NodeView {
        NodeView {
            name: "n1".into(),
            resource_version: "42".into(),
            taints,
            ..NodeView::default()
        }
    }

    fn res(addresses: &[(&str, &str)], labels: &[(&str, &str)]) -> Resolution {
        Resolution {
            node: "n1".into(),
            tainted: true,
            addresses: resolved(addresses, AddressSource::Annotations),
            provider_id: sourced("k3s://n1"),
            set_provider_id: true,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), sourced(v)))
                .collect(),
            warnings: vec![],
            errors: vec![],
        }
    }

    #[test]
    fn status_patch_replaces_the_whole_address_list_without_a_precondition() {
        let mut node = view(vec![uninitialized()]);
        node.addresses = vec![NodeAddress {
            type_: "Hostname".into(),
            address: "n1".into(),
        }];
        let r = res(
            &[
                ("InternalIP", "10.0.0.5"),
                ("InternalIP", "fd00::5"),
                ("Hostname", "n1"),
            ],
            &[],
        );
        assert_eq!(
            status_addresses_patch(&node, &r),
            Some(json!({
                "status": {"addresses": [
                    {"type": "InternalIP", "address": "10.0.0.5"},
                    {"type": "InternalIP", "address": "fd00::5"},
                    {"type": "Hostname", "address": "n1"},
                ]}
            }))
        );
    }

    #[test]
    fn status_patch_is_none_when_addresses_are_already_right() {
        let mut node = view(vec![]);
        node.addresses = vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: "10.0.0.5".into(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: "n1".into(),
            },
        ];
        let r = res(&[("InternalIP", "10.0.0.5"), ("Hostname", "n1")], &[]);
        assert_eq!(status_addresses_patch(&node, &r), None);
        // Same set in another order is a change: order is part of the contract.
        let swapped = res(&[("Hostname", "n1"), ("InternalIP", "10.0.0.5")], &[]);
        assert!(status_addresses_patch(&node, &swapped).is_some());
    }

    #[test]
    fn status_patch_leaves_kubelet_addresses_when_nothing_resolved_or_on_error() {
        let node = view(vec![uninitialized()]);
        assert_eq!(status_addresses_patch(&node, &res(&[], &[])), None);
        let mut failed = res(&[("Hostname", "n1")], &[]);
        failed.errors.push(no_internal_ip());
        assert_eq!(status_addresses_patch(&node, &failed), None);
    }

    #[test]
    fn init_patch_tests_the_taints_seen_and_writes_back_all_but_the_uninitialized_one() {
        let added = Time(jiff::Timestamp::from_second(1_700_000_000).unwrap());
        let mut keep = taint("example.com/maintenance", Some("yes"), "NoExecute");
        keep.time_added = Some(added);
        let node = view(vec![
            taint("node.kubernetes.io/not-ready", None, "NoSchedule"),
            uninitialized(),
            keep,
            taint(UNINITIALIZED_TAINT, None, "NoExecute"),
        ]);
        let mut r = res(&[], &[]);
        r.set_provider_id = false;
        assert_eq!(
            init_patch(&node, &r),
            Some(json!([
                {"op": "test", "path": "/spec/taints", "value": [
                    {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
                    {"key": UNINITIALIZED_TAINT, "value": "true", "effect": "NoSchedule"},
                    {"key": "example.com/maintenance", "value": "yes", "effect": "NoExecute", "timeAdded": "2023-11-14T22:13:20Z"},
                    {"key": UNINITIALIZED_TAINT, "effect": "NoExecute"},
                ]},
                {"op": "replace", "path": "/spec/taints", "value": [
                    {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
                    {"key": "example.com/maintenance", "value": "yes", "effect": "NoExecute", "timeAdded": "2023-11-14T22:13:20Z"},
                ]},
            ]))
        );
    }

    #[test]
    fn init_patch_full_shape_tests_labels_and_adds_only_missing_ones_with_escaped_paths() {
        let mut node = view(vec![uninitialized()]);
        node.labels
            .insert("node.kubernetes.io/instance-type".into(), "big".into());
        let r = res(
            &[("InternalIP", "10.0.0.5")],
            &[
                ("beta.kubernetes.io/instance-type", "big"),
                ("node.kubernetes.io/instance-type", "k3s"),
                ("example.com/a~b", "x"),
            ],
        );
        assert_eq!(
            init_patch(&node, &r),
            Some(json!([
                {"op": "test", "path": "/spec/taints", "value": [
                    {"key": UNINITIALIZED_TAINT, "value": "true", "effect": "NoSchedule"},
                ]},
                {"op": "test", "path": "/metadata/labels", "value": {"node.kubernetes.io/instance-type": "big"}},
                {"op": "remove", "path": "/spec/taints"},
                {"op": "add", "path": "/spec/providerID", "value": "k3s://n1"},
                {"op": "add", "path": "/metadata/labels/beta.kubernetes.io~1instance-type", "value": "big"},
                {"op": "add", "path": "/metadata/labels/example.com~1a~0b", "value": "x"},
            ]))
        );
    }

    #[test]
    fn a_node_without_labels_gets_the_whole_map_after_a_test_for_absence() {
        let node = view(vec![uninitialized()]);
        let patch = init_patch(&node, &res(&[], &[("example.com/a", "1"), ("b", "2")])).unwrap();
        let ops = patch.as_array().unwrap();
        assert!(
            ops.contains(&json!({"op": "test", "path": "/metadata/labels", "value": null})),
            "{patch}"
        );
        assert_eq!(
            ops.last(),
            Some(
                &json!({"op": "add", "path": "/metadata/labels", "value": {"b": "2", "example.com/a": "1"}})
            )
        );
    }

    #[test]
    fn init_patch_adding_no_label_does_not_test_the_labels() {
        let mut node = view(vec![uninitialized()]);
        node.labels.insert("example.com/a".into(), "1".into());
        let patch = init_patch(&node, &res(&[], &[])).unwrap();
        assert!(
            !patch.to_string().contains("/metadata/labels"),
            "labels changed by others must not fail a patch that adds none: {patch}"
        );
    }

    #[test]
    fn init_patch_never_sets_a_provider_id_the_node_already_has() {
        let mut node = view(vec![uninitialized()]);
        node.provider_id = "k3s://other".into();
        let patch = init_patch(&node, &res(&[], &[])).unwrap();
        assert!(!patch.to_string().contains("providerID"), "{patch}");
        let mut r = res(&[], &[]);
        r.set_provider_id = false;
        let patch = init_patch(&view(vec![uninitialized()]), &r).unwrap();
        assert!(!patch.to_string().contains("providerID"), "{patch}");
    }

    #[test]
    fn no_patch_carries_the_resource_version() {
        let node = view(vec![uninitialized()]);
        let r = res(&[("InternalIP", "10.0.0.5")], &[("example.com/a", "b")]);
        for patch in [status_addresses_patch(&node, &r), init_patch(&node, &r)] {
            let text = patch.unwrap().to_string();
            assert!(!text.contains("resourceVersion"), "{text}");
        }
    }

    #[test]
    fn pointer_tokens_escape_tilde_before_slash() {
        assert_eq!(pointer_token("a/b"), "a~1b");
        assert_eq!(pointer_token("a~1"), "a~01");
        assert_eq!(pointer_token("~/"), "~0~1");
    }

    #[test]
    fn untainted_node_is_untouched() {
        let node = view(vec![taint("example.com/x", None, "NoSchedule")]);
        assert_eq!(
            init_patch(&node, &res(&[], &[("example.com/a", "b")])),
            None
        );
    }

    #[test]
    fn unresolvable_node_keeps_its_taint() {
        let mut r = res(&[], &[]);
        r.errors.push(no_internal_ip());
        assert_eq!(init_patch(&view(vec![uninitialized()]), &r), None);
    }

    fn initialised(provider_id: &str) -> NodeView {
        let mut node = view(vec![taint("example.com/x", None, "NoSchedule")]);
        node.provider_id = provider_id.into();
        node.addresses = vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: "10.0.0.5".into(),
            },
            NodeAddress {
                type_: "ExternalIP".into(),
                address: "203.0.113.5".into(),
            },
        ];
        node
    }

    #[test]
    fn refresh_rewrites_the_addresses_of_a_node_initialised_by_a_ccm() {
        let node = initialised("k3s://n1");
        let mut r = res(&[("InternalIP", "10.0.0.5"), ("Hostname", "n1")], &[]);
        r.tainted = false;
        assert!(is_refreshable(&node));
        assert_eq!(
            refresh_patch(&node, &r),
            Some(json!({
                "status": {"addresses": [
                    {"type": "InternalIP", "address": "10.0.0.5"},
                    {"type": "Hostname", "address": "n1"},
                ]}
            }))
        );
        let same = res(
            &[("InternalIP", "10.0.0.5"), ("ExternalIP", "203.0.113.5")],
            &[],
        );
        assert_eq!(refresh_patch(&node, &same), None);
    }

    #[test]
    fn refresh_leaves_a_node_without_provider_id_to_its_kubelet() {
        let node = initialised("");
        let r = res(&[("InternalIP", "10.0.0.5"), ("Hostname", "n1")], &[]);
        assert!(!is_refreshable(&node));
        assert_eq!(refresh_patch(&node, &r), None);
    }

    #[test]
    fn refresh_never_touches_a_tainted_node() {
        let mut node = initialised("k3s://n1");
        node.taints.push(uninitialized());
        let r = res(&[("InternalIP", "10.0.0.6")], &[]);
        assert!(!is_refreshable(&node));
        assert_eq!(refresh_patch(&node, &r), None);
    }

    #[test]
    fn an_initialised_node_gets_only_its_missing_labels_after_a_test_of_its_labels() {
        let mut node = initialised("k3s://n1");
        node.labels.insert("example.com/pool".into(), "blue".into());
        let mut r = res(
            &[("InternalIP", "10.0.0.5")],
            &[
                ("example.com/pool", "green"),
                ("topology.kubernetes.io/zone", "z1"),
            ],
        );
        r.tainted = false;
        assert_eq!(
            labels_patch(&node, &r),
            Some(json!([
                {"op": "test", "path": "/metadata/labels", "value": {"example.com/pool": "blue"}},
                {"op": "add", "path": "/metadata/labels/topology.kubernetes.io~1zone", "value": "z1"},
            ])),
            "the existing label is never overwritten"
        );
        r.labels.remove("topology.kubernetes.io/zone");
        assert_eq!(labels_patch(&node, &r), None, "nothing missing, no write");
    }

    #[test]
    fn labels_after_init_only_for_nodes_a_cloud_controller_initialised() {
        let r = res(&[], &[("example.com/a", "b")]);
        assert_eq!(labels_patch(&initialised(""), &r), None, "no providerID");
        let mut tainted = initialised("k3s://n1");
        tainted.taints.push(uninitialized());
        assert_eq!(labels_patch(&tainted, &r), None, "init_patch does it");
        let mut failed = r.clone();
        failed.errors.push(no_internal_ip());
        assert_eq!(labels_patch(&initialised("k3s://n1"), &failed), None);
    }
}
