//! Node validation, as `pkg/apis/core/validation/validation.go` does it (`ValidateNode`,
//! `ValidateNodeUpdate`, `validateNodeTaints`, `validateTaintEffect`), and which of those
//! run for `nodes` and for `nodes/status` (`pkg/registry/core/node/strategy.go`).

use serde_json::{Value, json};

use super::{
    FieldError, array_at, is_qualified_name, is_valid_label_value, str_at, str_list,
    validate_object_meta, validate_object_meta_update,
};

pub(super) const TAINT_EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
const NODE_IMMUTABLE_PODCIDR: &str =
    "node updates may not change podCIDR except from \"\" to valid";

/// The taint as `json.Marshal` prints the internal `core.Taint` (no json tags, so Go field
/// names and no omitempty) in a Duplicate error.
fn taint_value(key: &str, value: &str, effect: &str, time_added: Option<&Value>) -> Value {
    json!({
        "Key": key,
        "Value": value,
        "Effect": effect,
        "TimeAdded": time_added.cloned().unwrap_or(Value::Null),
    })
}

/// Upstream `validateNodeTaints`. Note the path: upstream passes `metadata` as the parent,
/// so the real server reports `metadata.taints[i]...`, not `spec.taints[i]...`.
fn validate_node_taints(taints: &[Value]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    for (i, taint) in taints.iter().enumerate() {
        let path = format!("metadata.taints[{i}]");
        let key = str_at(taint, &["key"]);
        let value = str_at(taint, &["value"]);
        let effect = str_at(taint, &["effect"]);
        for msg in is_qualified_name(key) {
            errs.push(FieldError::invalid(
                &format!("{path}.key"),
                Value::String(key.into()),
                &msg,
            ));
        }
        let value_errs = is_valid_label_value(value);
        if !value_errs.is_empty() {
            errs.push(FieldError::invalid(
                &format!("{path}.value"),
                Value::String(value.into()),
                &value_errs.join(";"),
            ));
        }
        // validateTaintEffect(allowEmpty=false)
        if effect.is_empty() {
            errs.push(FieldError::required(&format!("{path}.effect"), ""));
        } else if !TAINT_EFFECTS.contains(&effect) {
            errs.push(FieldError::not_supported(
                &format!("{path}.effect"),
                Value::String(effect.into()),
                &TAINT_EFFECTS,
            ));
        }
        let pair = (effect.to_string(), key.to_string());
        if seen.contains(&pair) {
            let mut dup = FieldError::duplicate(
                &path,
                taint_value(key, value, effect, taint.get("timeAdded")),
            );
            dup.detail = "taints must be unique by key and effect pair".into();
            errs.push(dup);
            continue;
        }
        seen.push(pair);
    }
    errs
}

/// Parses `ip/prefix` as Go's `net.ParseCIDR` accepts it.
fn is_valid_cidr(s: &str) -> Option<bool> {
    let (ip, bits) = s.split_once('/')?;
    let ip: std::net::IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some(ip.is_ipv4())
}

/// Upstream `ValidateNode`: metadata, taints, and the pod CIDRs (each a CIDR, at most one per
/// IP family, no duplicates).
fn validate_node_create(node: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(node);
    errs.extend(validate_node_taints(array_at(node, &["spec", "taints"])));
    let cidrs_raw = array_at(node, &["spec", "podCIDRs"]);
    let cidrs = str_list(cidrs_raw);
    let list = Value::Array(cidrs_raw.to_vec());
    let families: Vec<Option<bool>> = cidrs.iter().map(|c| is_valid_cidr(c)).collect();
    for (i, family) in families.iter().enumerate() {
        if family.is_none() {
            errs.push(FieldError::invalid(
                &format!("spec.podCIDRs[{i}]"),
                list.clone(),
                "must be valid CIDR",
            ));
        }
    }
    if cidrs.len() > 1 {
        let dual = cidrs.len() == 2
            && families[0].is_some()
            && families[1].is_some()
            && families[0] != families[1];
        if !dual {
            errs.push(FieldError::invalid(
                "spec.podCIDRs",
                list.clone(),
                "may specify no more than one CIDR for each IP family",
            ));
        }
        for (i, c) in cidrs.iter().enumerate() {
            if cidrs[..i].contains(c) {
                errs.push(FieldError::duplicate(
                    &format!("spec.podCIDRs[{i}]"),
                    Value::String((*c).into()),
                ));
            }
        }
    }
    errs
}

/// Upstream `ValidateNodeUpdate`: metadata update rules, no duplicate (type, address) pair,
/// podCIDRs and providerID settable only from empty, taints, and an immutable externalID.
/// This alone is what `nodes/status` runs (`nodeStatusStrategy.ValidateUpdate`).
pub fn validate_node_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta_update(old, new);
    let addresses = array_at(new, &["status", "addresses"]);
    for (i, address) in addresses.iter().enumerate() {
        let same = |a: &Value| {
            str_at(a, &["type"]) == str_at(address, &["type"])
                && str_at(a, &["address"]) == str_at(address, &["address"])
        };
        if addresses[..i].iter().any(same) {
            // the internal core.NodeAddress, marshalled without json tags
            let value = json!({ "Type": str_at(address, &["type"]), "Address": str_at(address, &["address"]) });
            errs.push(FieldError::duplicate(
                &format!("status.addresses[{i}]"),
                value,
            ));
        }
    }
    let old_cidrs = str_list(array_at(old, &["spec", "podCIDRs"]));
    let new_cidrs = str_list(array_at(new, &["spec", "podCIDRs"]));
    if !old_cidrs.is_empty() {
        if old_cidrs.len() != new_cidrs.len() {
            errs.push(FieldError::forbidden(
                "spec.podCIDRs",
                NODE_IMMUTABLE_PODCIDR,
            ));
        } else {
            for (o, n) in old_cidrs.iter().zip(&new_cidrs) {
                if o != n {
                    errs.push(FieldError::forbidden(
                        "spec.podCIDRs",
                        NODE_IMMUTABLE_PODCIDR,
                    ));
                }
            }
        }
    }
    // 1.37 (`ValidateNodeUpdate`): `field.Invalid(spec.providerID, nil, ...)`, the nil
    // printed as `null`; changing and clearing have their own messages.
    let old_provider = str_at(old, &["spec", "providerID"]);
    let new_provider = str_at(new, &["spec", "providerID"]);
    if !old_provider.is_empty() && old_provider != new_provider {
        let why = if new_provider.is_empty() {
            "field cannot be cleared once set"
        } else {
            "field cannot be modified once set"
        };
        errs.push(FieldError::invalid("spec.providerID", Value::Null, why));
    }
    errs.extend(validate_node_taints(array_at(new, &["spec", "taints"])));
    if str_at(old, &["spec", "externalID"]) != str_at(new, &["spec", "externalID"]) {
        errs.push(FieldError::forbidden(
            "spec.externalID",
            "may not be updated",
        ));
    }
    errs
}

/// Validates a Node write to the main resource, as `nodeStrategy` does: on create (`old` is
/// None) `ValidateNode`; on update `ValidateNode` followed by `ValidateNodeUpdate`, so an
/// invalid taint is reported twice in the causes (the message shows it once), as upstream.
/// For `nodes/status` use [`validate_node_update`].
pub fn validate_node(old: Option<&Value>, new: &Value) -> Vec<FieldError> {
    let mut errs = validate_node_create(new);
    if let Some(old) = old {
        errs.extend(validate_node_update(old, new));
    }
    errs
}
