//! Property tests of the emulator's Node validation, the rules the real kube-apiserver
//! applies to every write bare-ccm makes (taint syntax, label syntax, providerID
//! immutability). Random inputs must never panic, and every bad taint effect, duplicate
//! key+effect pair and bad label is always reported on the path the real server names.
//! CI runs them with PROPTEST_CASES=10000 (scripts/test.sh).

use bare_ccm_emulator::validation::{
    FieldErrorKind, is_qualified_name, is_valid_label_value, validate_node, validate_node_update,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// The effects a taint may have (k8s.io/api `core/v1/types.go`, `TaintEffect`).
const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("node.cloudprovider.kubernetes.io/uninitialized".to_string()),
        Just("node.kubernetes.io/not-ready".to_string()),
        "[a-z]{1,8}",
        "[a-z]{1,6}\\.example\\.com/[a-z0-9][a-z0-9._-]{0,10}",
        "[ -~]{0,20}",
        any::<String>(),
    ]
}

fn value() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        "[A-Za-z0-9]{0,10}".prop_map(Some),
        "[ -~]{0,70}".prop_map(Some),
    ]
}

fn effect() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(EFFECTS.to_vec()).prop_map(str::to_string),
        1 => Just(String::new()),
        1 => "[A-Za-z]{1,12}",
    ]
}

fn taint() -> impl Strategy<Value = (String, Option<String>, String)> {
    (key(), value(), effect())
}

fn taint_json((key, value, effect): &(String, Option<String>, String)) -> Value {
    let mut t = json!({"key": key, "effect": effect});
    if let Some(v) = value {
        t["value"] = json!(v);
    }
    t
}

fn node(labels: Map<String, Value>, provider_id: &str, taints: &[Value]) -> Value {
    json!({
        "kind": "Node", "apiVersion": "v1",
        "metadata": {"name": "n1", "labels": labels},
        "spec": {"providerID": provider_id, "taints": taints},
    })
}

fn errors_at(errs: &[bare_ccm_emulator::validation::FieldError], field: &str) -> usize {
    errs.iter().filter(|e| e.field == field).count()
}

proptest! {
    #[test]
    fn every_bad_taint_effect_and_duplicate_is_reported_and_nothing_panics(
        taints in prop::collection::vec(taint(), 0..8),
    ) {
        let body: Vec<Value> = taints.iter().map(taint_json).collect();
        let errs = validate_node(None, &node(Map::new(), "", &body));
        for (i, (key, value, effect)) in taints.iter().enumerate() {
            let effect_errs = errors_at(&errs, &format!("metadata.taints[{i}].effect"));
            prop_assert_eq!(effect_errs, usize::from(!EFFECTS.contains(&effect.as_str())),
                "taint {} effect {:?}: {:?}", i, effect, errs);
            let duplicate = taints[..i].iter().any(|(k, _, e)| k == key && e == effect);
            let dup_errs = errs.iter().filter(|e| {
                e.field == format!("metadata.taints[{i}]") && e.kind == FieldErrorKind::Duplicate
            }).count();
            prop_assert_eq!(dup_errs, usize::from(duplicate), "taint {}: {:?}", i, errs);
            let key_errs = errors_at(&errs, &format!("metadata.taints[{i}].key"));
            prop_assert_eq!(key_errs, is_qualified_name(key).len());
            let value_errs = errors_at(&errs, &format!("metadata.taints[{i}].value"));
            let value_ok = is_valid_label_value(value.as_deref().unwrap_or("")).is_empty();
            prop_assert_eq!(value_errs, usize::from(!value_ok));
        }
    }

    #[test]
    fn unique_well_formed_taints_are_accepted_in_any_order(
        keys in prop::collection::btree_set("[a-z]{1,8}(\\.example\\.com/[a-z]{1,8})?", 0..6),
        effect_index in 0usize..3,
    ) {
        let body: Vec<Value> = keys
            .iter()
            .map(|k| json!({"key": k, "value": "v", "effect": EFFECTS[effect_index]}))
            .collect();
        let errs = validate_node(None, &node(Map::new(), "", &body));
        prop_assert!(errs.is_empty(), "{:?}", errs);
        let mut reversed = body.clone();
        reversed.reverse();
        prop_assert!(validate_node(None, &node(Map::new(), "", &reversed)).is_empty());
    }

    #[test]
    fn labels_are_rejected_exactly_when_key_or_value_syntax_is_wrong(
        labels in prop::collection::btree_map(key(), value(), 0..6),
    ) {
        let map: Map<String, Value> = labels
            .iter()
            .map(|(k, v)| (k.clone(), json!(v.clone().unwrap_or_default())))
            .collect();
        let errs = validate_node(None, &node(map, "", &[]));
        let expected_bad = labels.iter().any(|(k, v)| {
            !is_qualified_name(k).is_empty()
                || !is_valid_label_value(v.as_deref().unwrap_or("")).is_empty()
        });
        let label_errs = errs.iter().filter(|e| e.field.starts_with("metadata.labels")).count();
        prop_assert_eq!(label_errs > 0, expected_bad, "{:?} -> {:?}", labels, errs);
    }

    #[test]
    fn provider_id_may_only_change_from_empty(
        old in prop_oneof![Just(String::new()), "[a-z0-9:/-]{1,20}"],
        new in prop_oneof![Just(String::new()), "[a-z0-9:/-]{1,20}"],
    ) {
        let errs = validate_node_update(&node(Map::new(), &old, &[]), &node(Map::new(), &new, &[]));
        // 1.37: `Invalid` ("field cannot be modified/cleared once set").
        let refused = errs
            .iter()
            .any(|e| e.field == "spec.providerID" && e.kind == FieldErrorKind::Invalid);
        prop_assert_eq!(refused, !old.is_empty() && old != new);
    }

    #[test]
    fn arbitrary_json_nodes_never_panic(
        raw in prop_oneof![
            any::<String>().prop_map(Value::String),
            prop::collection::vec(any::<i64>(), 0..4).prop_map(|v| json!({"spec": {"taints": v}})),
            any::<String>().prop_map(|s| json!({"metadata": {"labels": s}, "spec": {"taints": [{"key": s}]}})),
            any::<bool>().prop_map(|b| json!({"spec": {"taints": [{"key": b, "effect": b}]}})),
        ],
    ) {
        let _ = validate_node(None, &raw);
        let _ = validate_node(Some(&raw), &raw);
        let _ = validate_node_update(&raw, &raw);
    }
}
