//! Node labels: Kubernetes label syntax, the reserved-domain rule, and the labels bare-ccm
//! adds (instance type, zone and region under both GA and beta keys, inventory labels,
//! extra labels). A label already on the node is never changed.
//!
//! Pairs of GA and beta keys stay consistent: when one key of a pair exists, its value is
//! mirrored to the missing one; only when neither exists is the configured value written.
//! This is the "add a missing secondary key with the primary's value" half of upstream's
//! `labelReconcileInfo` (kubernetes/cloud-provider `controllers/node/node_controller.go`);
//! the other half, rewriting a differing secondary, is left out because bare-ccm never
//! changes a label that exists. The GA key wins when both exist.

use std::collections::BTreeMap;

use crate::config::{Config, InventoryEntry};

use super::Sourced;

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

const MAX_NAME: usize = 63;
const MAX_PREFIX: usize = 253;

/// Checks a label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters of `[A-Za-z0-9._-]` starting and ending alphanumeric (Kubernetes
/// `IsQualifiedName`).
pub fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        return Err(format!(
            "label key {key:?}: prefix {prefix:?} must be a lowercase DNS subdomain of at most {MAX_PREFIX} characters"
        ));
    }
    if !is_label_name(name) {
        return Err(format!(
            "label key {key:?}: name part must be 1-{MAX_NAME} characters of [A-Za-z0-9._-], starting and ending alphanumeric"
        ));
    }
    Ok(())
}

/// Checks a label value: empty, or at most 63 characters of `[A-Za-z0-9._-]` starting and
/// ending alphanumeric.
pub fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_label_name(value) {
        Ok(())
    } else {
        Err(format!(
            "label value {value:?} must be empty or 1-{MAX_NAME} characters of [A-Za-z0-9._-], starting and ending alphanumeric"
        ))
    }
}

/// The prefix of node-role labels (`kubectl get nodes` shows their names as ROLES).
pub const NODE_ROLE_PREFIX: &str = "node-role.kubernetes.io";

/// Refuses keys under `kubernetes.io/` or `k8s.io/` (and subdomains), as upstream refuses
/// such additional labels from a cloud provider: they are reserved for Kubernetes itself.
/// One exception, on purpose: `node-role.kubernetes.io/*`. The NodeRestriction admission
/// plugin forbids a kubelet to set these on itself (k8s.io/kubernetes
/// `plugin/pkg/admission/noderestriction/admission.go` `getForbiddenLabels`; they are not
/// among k8s.io/kubelet's `IsKubeletLabel`), so some controller has to. Kubernetes itself
/// only displays them (kubectl's ROLES column, `pkg/printers/internalversion`).
pub fn check_settable_label_key(key: &str) -> Result<(), String> {
    let Some((prefix, _)) = key.split_once('/') else {
        return Ok(());
    };
    if prefix == NODE_ROLE_PREFIX {
        return Ok(());
    }
    let reserved = ["kubernetes.io", "k8s.io"]
        .iter()
        .any(|d| prefix == *d || prefix.ends_with(&format!(".{d}")));
    if reserved {
        Err(format!(
            "label key {key:?}: keys under kubernetes.io/ or k8s.io/ (and subdomains) are refused, except node-role.kubernetes.io/; use your own prefix, or the instanceType/zone/region settings"
        ))
    } else {
        Ok(())
    }
}

fn is_label_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_PREFIX
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && is_lower_alnum(b[0])
                && is_lower_alnum(b[b.len() - 1])
                && b.iter().all(|c| is_lower_alnum(*c) || *c == b'-')
        })
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Computes the labels to add to a node with `existing` labels, plus warnings where a
/// configured value is not applied because the node already has a different one.
pub fn desired(
    existing: &BTreeMap<String, String>,
    config: &Config,
    entry: Option<(usize, &InventoryEntry)>,
    warnings: &mut Vec<String>,
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
            Some(have) if have != value => warnings.push(format!(
                "label {key}={have} already on the node is kept; {why} wants {value:?}"
            )),
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
    warnings: &mut Vec<String>,
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
                warnings.push(format!(
                    "label {ga}={g} already on the node is kept; {} wants {:?}",
                    w.why, w.value
                ));
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
