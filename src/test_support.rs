//! Builders shared by the unit tests of the pure core (`resolve`, `patch`, `plan`,
//! `explain`), so each test module writes only what its cases differ in.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeAddress, Taint};

use crate::config::AddressSource;
use crate::facts::UNINITIALIZED_TAINT;
use crate::resolve::{ResolvedAddress, Sourced};

/// The uninitialized taint as a kubelet registers it.
pub fn uninitialized() -> Taint {
    Taint {
        key: UNINITIALIZED_TAINT.into(),
        value: Some("true".into()),
        effect: "NoSchedule".into(),
        time_added: None,
    }
}

/// `[(key, value)]` as an owned map (labels, annotations).
pub fn string_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `[(type, address)]` as a node's `status.addresses`.
pub fn node_addresses(pairs: &[(&str, &str)]) -> Vec<NodeAddress> {
    pairs
        .iter()
        .map(|(t, a)| NodeAddress {
            type_: t.to_string(),
            address: a.to_string(),
        })
        .collect()
}

/// `[(type, address)]` as resolved addresses from `source`; panics on an unknown type.
pub fn resolved(pairs: &[(&str, &str)], source: AddressSource) -> Vec<ResolvedAddress> {
    pairs
        .iter()
        .map(|(t, a)| ResolvedAddress {
            type_: t.parse().unwrap_or_else(|e| panic!("{e}")),
            address: a.to_string(),
            source,
        })
        .collect()
}

/// A value with the reason `config`.
pub fn sourced(value: &str) -> Sourced {
    Sourced {
        value: value.into(),
        why: "config".into(),
    }
}
