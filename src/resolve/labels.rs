//! Node labels: the labels bare-ccm adds (instance type, zone and region under both GA and
//! beta keys, inventory labels, extra labels). A label already on the node is never
//! changed. Label syntax and the reserved-domain rule are in `facts::labels`.
//!
//! Pairs of GA and beta keys stay consistent: when one key of a pair exists, its value is
//! mirrored to the missing one; only when neither exists is the configured value written.
//! This is the "add a missing secondary key with the primary's value" half of upstream's
//! `labelReconcileInfo` (kubernetes/cloud-provider `controllers/node/node_controller.go`);
//! the other half, rewriting a differing secondary, is left out because bare-ccm never
//! changes a label that exists. The GA key wins when both exist.

use std::collections::BTreeMap;

pub use crate::facts::labels::{check_label_key, check_label_value};

use crate::config::{Config, InventoryEntry};

use super::resolution::{Sourced, Warning};

/// GA instance-type label.
pub const INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";
/// Beta instance-type label, still read by older tooling.
pub const INSTANCE_TYPE_BETA: &str = "beta.kubernetes.io/instance-type";
/// GA zone label.
pub const ZONE: &str = "topology.kubernetes.io/zone";
/// Beta zone label.
pub const ZONE_BETA: &str = "failure-domain.beta.kubernetes.io/zone";
/// GA region label.
pub const REGION: &str = "topology.kubernetes.io/region";
/// Beta region label.
pub const REGION_BETA: &str = "failure-domain.beta.kubernetes.io/region";

/// Computes the labels to add to a node with `existing` labels, plus warnings where a
/// configured value is not applied because the node already has a different one.
pub fn desired(
    existing: &BTreeMap<String, String>,
    config: &Config,
    entry: Option<(usize, &InventoryEntry)>,
    warnings: &mut Vec<Warning>,
) -> BTreeMap<String, Sourced> {
    let mut out = BTreeMap::new();
    let pick = |field: &str, inv: Option<&str>, cfg: &str| -> Option<Sourced> {
        if let (Some((i, e)), Some(v)) = (entry, inv.filter(|v| !v.is_empty())) {
            return Some(Sourced {
                value: v.to_string(),
                why: format!("inventory[{i}] ({}) {field}", e.matcher),
            });
        }
        (!cfg.is_empty()).then(|| Sourced {
            value: cfg.to_string(),
            why: format!("config {field}"),
        })
    };
    let pairs = [
        (
            INSTANCE_TYPE,
            INSTANCE_TYPE_BETA,
            pick(
                "instanceType",
                entry.map(|(_, e)| e.instance_type.as_str()),
                &config.instance_type,
            ),
        ),
        (
            ZONE,
            ZONE_BETA,
            pick("zone", entry.map(|(_, e)| e.zone.as_str()), &config.zone),
        ),
        (
            REGION,
            REGION_BETA,
            pick(
                "region",
                entry.map(|(_, e)| e.region.as_str()),
                &config.region,
            ),
        ),
    ];
    for (ga, beta, want) in pairs {
        add_pair(existing, ga, beta, want, &mut out, warnings);
    }

    let mut plain: Vec<(&String, &String, String)> = Vec::new();
    if let Some((i, e)) = entry {
        let why = format!("inventory[{i}] ({}) labels", e.matcher);
        plain.extend(e.labels.iter().map(|(k, v)| (k, v, why.clone())));
    }
    plain.extend(
        config
            .extra_labels
            .iter()
            .map(|(k, v)| (k, v, "config extraLabels".to_string())),
    );
    for (key, value, why) in plain {
        if out.contains_key(key) {
            continue;
        }
        match existing.get(key) {
            Some(have) if have != value => warnings.push(Warning::LabelKept {
                key: key.clone(),
                have: have.clone(),
                why,
                want: value.clone(),
            }),
            Some(_) => {}
            None => {
                out.insert(
                    key.clone(),
                    Sourced {
                        value: value.clone(),
                        why,
                    },
                );
            }
        }
    }
    out
}

fn add_pair(
    existing: &BTreeMap<String, String>,
    ga: &str,
    beta: &str,
    want: Option<Sourced>,
    out: &mut BTreeMap<String, Sourced>,
    warnings: &mut Vec<Warning>,
) {
    let mirror = |from: &str, v: &str| Sourced {
        value: v.to_string(),
        why: format!("mirrored from existing label {from}"),
    };
    match (existing.get(ga), existing.get(beta)) {
        (Some(g), have_beta) => {
            if have_beta.is_none() {
                out.insert(beta.to_string(), mirror(ga, g));
            }
            if let Some(w) = want.filter(|w| &w.value != g) {
                warnings.push(Warning::LabelKept {
                    key: ga.to_string(),
                    have: g.clone(),
                    why: w.why,
                    want: w.value,
                });
            }
        }
        (None, Some(b)) => {
            out.insert(ga.to_string(), mirror(beta, b));
        }
        (None, None) => {
            if let Some(w) = want {
                out.insert(ga.to_string(), w.clone());
                out.insert(beta.to_string(), w);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::labels::check_settable_label_key;

    #[test]
    fn label_keys_follow_kubernetes_syntax() {
        for ok in [
            "a",
            "app",
            "example.com/role",
            "bare-ccm.io/rack",
            "A_b.c-D",
            "x/y",
            &"a".repeat(63),
        ] {
            assert_eq!(check_label_key(ok), Ok(()), "{ok:?}");
        }
        for bad in [
            "",
            "/x",
            "x/",
            "-a",
            "a-",
            "a b",
            "Example.com/x",
            "a/b/c",
            "ex_ample.com/x",
            &"a".repeat(64),
            &format!("{}/x", "a".repeat(254)),
        ] {
            assert!(check_label_key(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn label_values_follow_kubernetes_syntax() {
        assert_eq!(check_label_value(""), Ok(()));
        assert_eq!(check_label_value("true"), Ok(()));
        assert_eq!(check_label_value("rack-1.a_b"), Ok(()));
        for bad in ["-x", "x-", "a b", "a/b", &"v".repeat(64)] {
            assert!(check_label_value(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn kubernetes_io_and_k8s_io_domains_are_refused() {
        for bad in [
            "kubernetes.io/foo",
            "node.kubernetes.io/foo",
            "k8s.io/foo",
            "a.b.k8s.io/foo",
            "sub.node-role.kubernetes.io/worker",
            "node-role.k8s.io/worker",
            "node-restriction.kubernetes.io/x",
        ] {
            let err = check_settable_label_key(bad).unwrap_err();
            assert!(err.contains("refused"), "{err}");
        }
        for ok in [
            "foo",
            "example.com/foo",
            "notkubernetes.io/foo",
            "k8s.io.example.com/x",
            "node-role.kubernetes.io/worker",
            "node-role.kubernetes.io/gpu-worker",
        ] {
            assert_eq!(check_settable_label_key(ok), Ok(()), "{ok:?}");
        }
    }
}
