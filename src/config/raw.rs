//! The `Raw*` structs: the config as written, before validation (strings not yet parsed,
//! each value with its line).

use std::collections::BTreeMap;

use super::schema::ProvidedNodeIpMode;
use super::yaml::Spanned;

/// The config as written, after the schema walk: each field a value of the right type (or
/// absent), with its line, for [`validate`] to check.
#[derive(Debug, Default)]
pub(super) struct RawConfig {
    pub(super) provider_id: Option<Spanned<String>>,
    pub(super) instance_type: Option<Spanned<String>>,
    pub(super) zone: Option<Spanned<String>>,
    pub(super) region: Option<Spanned<String>>,
    /// The string items with their index in the list.
    pub(super) address_sources: Option<Vec<(usize, Spanned<String>)>>,
    /// Set, with its line, when `addressSources` is an empty list.
    pub(super) address_sources_empty: Option<Option<u64>>,
    pub(super) provided_node_ip: Option<ProvidedNodeIpMode>,
    pub(super) require_internal_ip: Option<bool>,
    pub(super) prefer_ipv6: Option<bool>,
    pub(super) extra_labels: BTreeMap<String, Spanned<RawLabelValue>>,
    /// The well-formed entries with their index in the list.
    pub(super) inventory: Vec<(usize, Spanned<RawInventoryEntry>)>,
    /// `k3sAgentWait` as written (a duration string, or `0`).
    pub(super) k3s_agent_wait: Option<Spanned<RawLabelValue>>,
    /// The `interfaces` section, when present.
    pub(super) interfaces: Option<RawInterfaces>,
}

#[derive(Debug, Default)]
pub(super) struct RawInterfaces {
    /// The string items of `ignore` with their index, when the key is set.
    pub(super) ignore: Option<Vec<(usize, Spanned<String>)>>,
    pub(super) rules: Option<RawRules>,
}

#[derive(Debug)]
pub(super) struct RawRules {
    /// The line of the list, for a problem about the list itself.
    pub(super) line: Option<u64>,
    /// The list has no item at all (not: no well-formed item).
    pub(super) empty: bool,
    /// The well-formed rules with their index.
    pub(super) rules: Vec<(usize, RawRule)>,
}

#[derive(Debug)]
pub(super) struct RawRule {
    pub(super) cidr: Spanned<String>,
    pub(super) type_: Spanned<String>,
}

#[derive(Debug, Default)]
pub(super) struct RawInventoryEntry {
    /// A matcher key was given but refused by the schema walk.
    pub(super) matcher_refused: bool,
    pub(super) name: Option<Spanned<String>>,
    pub(super) name_regex: Option<Spanned<String>>,
    pub(super) selector: Option<Spanned<RawSelector>>,
    /// The well-formed addresses with their index in the list.
    pub(super) addresses: Vec<(usize, Spanned<RawAddress>)>,
    pub(super) provider_id: Option<Spanned<String>>,
    pub(super) instance_type: Option<Spanned<String>>,
    pub(super) zone: Option<Spanned<String>>,
    pub(super) region: Option<Spanned<String>>,
    pub(super) labels: BTreeMap<String, Spanned<RawLabelValue>>,
}

#[derive(Debug, Default)]
pub(super) struct RawSelector {
    pub(super) match_labels: BTreeMap<String, Spanned<RawLabelValue>>,
}

/// A label value as written: YAML gives `example.com/gpu: true` a boolean and `rack: 7` a
/// number, and a label value is a string, so a scalar of another kind is kept apart here
/// and refused by validation with its key path ("quote it") instead of being converted.
#[derive(Debug)]
pub(super) enum RawLabelValue {
    /// A string scalar (quoted, or plain text that is not a boolean, number or null).
    Text(String),
    /// Any other scalar, as written back in YAML.
    NotText(String),
}

#[derive(Debug)]
pub(super) struct RawAddress {
    pub(super) type_: String,
    pub(super) address: String,
}
