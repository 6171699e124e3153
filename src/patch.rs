//! Pure builders of the conflict-safe patches the controller sends. Each touches only the
//! fields bare-ccm owns and carries the view's `metadata.resourceVersion` as a precondition:
//! both are JSON merge patches, and the API server answers 409 Conflict when the node
//! changed since the view was taken (a merge patch replaces lists whole, so the taint and
//! address lists must not be written from a stale read).

use serde_json::{Map, Value, json};

use crate::node_view::NodeView;
use crate::resolve::{Resolution, UNINITIALIZED_TAINT};

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
            .all(|(have, want)| have.type_ == want.type_ && have.address == want.address);
    if unchanged {
        return None;
    }
    let addresses: Vec<Value> = res
        .addresses
        .iter()
        .map(|a| json!({"type": a.type_, "address": a.address}))
        .collect();
    Some(with_precondition(
        node,
        json!({"status": {"addresses": addresses}}),
    ))
}

/// Whether bare-ccm keeps this node's addresses current after initialisation: it carries no
/// uninitialized taint and has a `spec.providerID`, i.e. a cloud controller initialised it
/// and its kubelet runs with `--cloud-provider=external`. A node never initialised by a CCM
/// (no providerID) has a kubelet that rewrites `status.addresses` on every status update;
/// writing them would fight that kubelet forever (reference §2.9 refreshes *initialised*
/// nodes only).
pub fn is_refreshable(node: &NodeView) -> bool {
    !node.provider_id.is_empty() && !node.taints.iter().any(|t| t.key == UNINITIALIZED_TAINT)
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

/// The merge patch for the node itself: uninitialized taints removed (the others written
/// back unchanged and in order, `null` when none remain), providerID set when empty, labels
/// added when absent. `None` when there is nothing to write, when the node is not tainted
/// (an initialised node is never re-initialised), or when the resolution has errors.
pub fn init_patch(node: &NodeView, res: &Resolution) -> Option<Value> {
    if !res.errors.is_empty() || !node.taints.iter().any(|t| t.key == UNINITIALIZED_TAINT) {
        return None;
    }
    let remaining: Vec<_> = node
        .taints
        .iter()
        .filter(|t| t.key != UNINITIALIZED_TAINT)
        .collect();
    let mut spec = Map::new();
    spec.insert(
        "taints".to_string(),
        if remaining.is_empty() {
            Value::Null
        } else {
            serde_json::to_value(remaining).ok()?
        },
    );
    if res.set_provider_id && node.provider_id.is_empty() && !res.provider_id.value.is_empty() {
        spec.insert("providerID".to_string(), json!(res.provider_id.value));
    }
    let labels: Map<String, Value> = res
        .labels
        .iter()
        .filter(|(k, _)| !node.labels.contains_key(*k))
        .map(|(k, v)| (k.clone(), json!(v.value)))
        .collect();
    let mut patch = json!({"spec": spec});
    if !labels.is_empty() {
        patch["metadata"] = json!({"labels": labels});
    }
    Some(with_precondition(node, patch))
}

/// Adds `metadata.resourceVersion` (when the view has one) to a patch.
fn with_precondition(node: &NodeView, mut patch: Value) -> Value {
    if !node.resource_version.is_empty() {
        patch["metadata"]["resourceVersion"] = json!(node.resource_version);
    }
    patch
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{NodeAddress, Taint};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::resolve::{AddressSource, ResolvedAddress, Sourced};

    fn taint(key: &str, value: Option<&str>, effect: &str) -> Taint {
        Taint {
            key: key.to_string(),
            value: value.map(str::to_string),
            effect: effect.to_string(),
            time_added: None,
        }
    }

    fn uninit() -> Taint {
        taint(UNINITIALIZED_TAINT, Some("true"), "NoSchedule")
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
            addresses: addresses
                .iter()
                .map(|(t, a)| ResolvedAddress {
                    type_: t.to_string(),
                    address: a.to_string(),
                    source: AddressSource::Annotations,
                })
                .collect(),
            provider_id: Sourced {
                value: "k3s://n1".into(),
                why: "config".into(),
            },
            set_provider_id: true,
            labels: labels
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        Sourced {
                            value: v.to_string(),
                            why: "config".into(),
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
            warnings: vec![],
            errors: vec![],
        }
    }

    #[test]
    fn status_patch_replaces_the_whole_address_list_with_a_precondition() {
        let mut node = view(vec![uninit()]);
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
                "metadata": {"resourceVersion": "42"},
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
        let node = view(vec![uninit()]);
        assert_eq!(status_addresses_patch(&node, &res(&[], &[])), None);
        let mut failed = res(&[("Hostname", "n1")], &[]);
        failed.errors.push("no InternalIP".into());
        assert_eq!(status_addresses_patch(&node, &failed), None);
    }

    #[test]
    fn init_patch_removes_only_the_uninitialized_taint_and_keeps_others_whole() {
        let added = Time(jiff::Timestamp::from_second(1_700_000_000).unwrap());
        let mut keep = taint("example.com/maintenance", Some("yes"), "NoExecute");
        keep.time_added = Some(added);
        let node = view(vec![
            taint("node.kubernetes.io/not-ready", None, "NoSchedule"),
            uninit(),
            keep,
            taint(UNINITIALIZED_TAINT, None, "NoExecute"),
        ]);
        let patch = init_patch(&node, &res(&[], &[])).unwrap();
        assert_eq!(
            patch["spec"]["taints"],
            json!([
                {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
                {"key": "example.com/maintenance", "value": "yes", "effect": "NoExecute", "timeAdded": "2023-11-14T22:13:20Z"},
            ])
        );
        assert_eq!(patch["metadata"]["resourceVersion"], json!("42"));
    }

    #[test]
    fn init_patch_full_shape() {
        let mut node = view(vec![uninit()]);
        node.labels
            .insert("node.kubernetes.io/instance-type".into(), "big".into());
        let r = res(
            &[("InternalIP", "10.0.0.5")],
            &[
                ("beta.kubernetes.io/instance-type", "big"),
                ("node.kubernetes.io/instance-type", "k3s"),
            ],
        );
        assert_eq!(
            init_patch(&node, &r),
            Some(json!({
                "metadata": {
                    "resourceVersion": "42",
                    "labels": {"beta.kubernetes.io/instance-type": "big"}
                },
                "spec": {"taints": null, "providerID": "k3s://n1"}
            }))
        );
    }

    #[test]
    fn init_patch_never_sets_a_provider_id_the_node_already_has() {
        let mut node = view(vec![uninit()]);
        node.provider_id = "k3s://other".into();
        let patch = init_patch(&node, &res(&[], &[])).unwrap();
        assert_eq!(
            patch,
            json!({"metadata": {"resourceVersion": "42"}, "spec": {"taints": null}})
        );
        let mut r = res(&[], &[]);
        r.set_provider_id = false;
        let patch = init_patch(&view(vec![uninit()]), &r).unwrap();
        assert!(patch["spec"].get("providerID").is_none());
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
        r.errors.push("no InternalIP for node n1".into());
        assert_eq!(init_patch(&view(vec![uninit()]), &r), None);
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
                "metadata": {"resourceVersion": "42"},
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
        node.taints.push(uninit());
        let r = res(&[("InternalIP", "10.0.0.6")], &[]);
        assert!(!is_refreshable(&node));
        assert_eq!(refresh_patch(&node, &r), None);
    }

    #[test]
    fn view_without_resource_version_gives_an_unconditional_patch() {
        let mut node = view(vec![uninit()]);
        node.resource_version.clear();
        let patch = init_patch(&node, &res(&[], &[])).unwrap();
        assert!(patch.get("metadata").is_none(), "{patch}");
    }
}
