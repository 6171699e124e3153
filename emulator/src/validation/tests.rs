//! Tests of every rule set, with the exact messages the real server gives.

use serde_json::{Value, json};

use super::event::{EVENTS_GROUP, go_time_string};
use super::node::TAINT_EFFECTS;
use super::*;

const QNAME_REGEX_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn node(meta: Value, spec: Value) -> Value {
    json!({ "kind": "Node", "apiVersion": "v1", "metadata": meta, "spec": spec })
}

#[test]
fn qualified_names_follow_apimachinery_rules_and_messages() {
    let long = "a".repeat(64);
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("a", vec![]),
        ("node.kubernetes.io/exclude-from-external-load-balancers", vec![]),
        ("A_b.c-1", vec![]),
        ("-a", vec![QNAME_REGEX_MSG.to_string()]),
        ("/a", vec!["prefix part must be non-empty".to_string()]),
        ("a/", vec!["name part must be non-empty".to_string(), QNAME_REGEX_MSG.to_string()]),
        ("Example.com/a", vec![format!("prefix part {SUBDOMAIN_MSG}")]),
        (&long, vec!["name part must be no more than 63 characters".to_string()]),
        (
            "a/b/c",
            vec!["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_string()],
        ),
    ];
    for (input, want) in cases {
        assert_eq!(is_qualified_name(input), want, "input {input:?}");
    }
}

#[test]
fn label_values_may_be_empty_but_not_longer_than_63_or_malformed() {
    assert!(is_valid_label_value("").is_empty());
    assert!(is_valid_label_value("true").is_empty());
    assert_eq!(
        is_valid_label_value(&"v".repeat(64)),
        vec!["must be no more than 63 characters"]
    );
    assert_eq!(
        is_valid_label_value("-x"),
        vec![
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        ]
    );
}

#[test]
fn object_names_are_subdomains_except_namespaces_which_are_labels() {
    let ok = json!({ "kind": "ConfigMap", "metadata": { "name": "kube-root.ca" } });
    assert!(validate_object_meta(&ok).is_empty());
    let bad = json!({ "kind": "Lease", "metadata": { "name": "Lease_1" } });
    let errs = validate_object_meta(&bad);
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].to_string(),
        format!("metadata.name: Invalid value: \"Lease_1\": {SUBDOMAIN_MSG}")
    );
    let ns = json!({ "kind": "Namespace", "metadata": { "name": "a.b" } });
    assert_eq!(
        validate_object_meta(&ns)[0].detail,
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    );
    let missing = json!({ "kind": "Node", "metadata": {} });
    assert_eq!(
        validate_object_meta(&missing)[0].to_string(),
        "metadata.name: Required value: name or generateName is required"
    );
    let generated =
        json!({ "kind": "Event", "metadata": { "generateName": "n1-", "name": "n1-x2" } });
    assert!(validate_object_meta(&generated).is_empty());
}

#[test]
fn labels_are_checked_key_and_value_on_the_labels_path() {
    let obj = node(
        json!({ "name": "n1", "labels": { "bad key": "ok", "k": "bad value" } }),
        json!({}),
    );
    let errs = validate_object_meta(&obj);
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["metadata.labels", "metadata.labels"]);
    assert_eq!(
        errs[0].to_string(),
        format!("metadata.labels: Invalid value: \"bad key\": {QNAME_REGEX_MSG}")
    );
    assert!(
        errs[1]
            .to_string()
            .starts_with("metadata.labels: Invalid value: \"bad value\": a valid label must be")
    );
    assert!(errs.iter().all(|e| e.kind.reason() == "FieldValueInvalid"));
}

#[test]
fn annotations_total_at_most_256_kib_and_keys_ignore_case() {
    let fits = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES - 1);
    let obj = node(
        json!({ "name": "n1", "annotations": { "k": fits } }),
        json!({}),
    );
    assert_eq!(validate_object_meta(&obj), vec![]);
    let upper = node(
        json!({ "name": "n1", "annotations": { "Example.COM/Key": "" } }),
        json!({}),
    );
    assert_eq!(validate_object_meta(&upper), vec![]);
    let too_big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES);
    let obj = node(
        json!({ "name": "n1", "annotations": { "k": too_big } }),
        json!({}),
    );
    let errs = validate_object_meta(&obj);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].kind, FieldErrorKind::TooLong);
    assert_eq!(
        errs[0].to_string(),
        "metadata.annotations: Too long: may not be more than 262144 bytes"
    );
}

#[test]
fn provider_id_may_only_change_from_empty() {
    let with = |id: &str| node(json!({ "name": "n1" }), json!({ "providerID": id }));
    let modified = "spec.providerID: Invalid value: null: field cannot be modified once set";
    let cleared = "spec.providerID: Invalid value: null: field cannot be cleared once set";
    let cases = [
        ("", "", None),
        ("", "bare://n1", None),
        ("bare://n1", "bare://n1", None),
        ("bare://n1", "bare://n2", Some(modified)),
        ("bare://n1", "", Some(cleared)),
    ];
    for (old, new, want) in cases {
        let errs = validate_node(Some(&with(old)), &with(new));
        let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            want.into_iter().map(String::from).collect::<Vec<_>>(),
            "{old:?} -> {new:?}"
        );
    }
    let errs = validate_node_update(&with("a"), &with("b"));
    assert_eq!(errs[0].kind.reason(), "FieldValueInvalid");
}

#[test]
fn taints_are_validated_on_the_metadata_path_as_upstream_reports_them() {
    let taints = json!([
        { "key": "ok", "value": "v", "effect": "NoSchedule" },
        { "key": "ok", "effect": "NoExecute" },
        { "key": "e", "effect": "Sometimes" },
        { "key": "-bad", "value": "-bad", "effect": "" },
        { "key": "ok", "value": "other", "effect": "NoSchedule" },
    ]);
    let errs = validate_node(
        None,
        &node(json!({ "name": "n1" }), json!({ "taints": taints })),
    );
    let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(got.len(), 5, "{got:#?}");
    assert_eq!(
        got[0],
        "metadata.taints[2].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""
    );
    assert_eq!(
        got[1],
        format!("metadata.taints[3].key: Invalid value: \"-bad\": {QNAME_REGEX_MSG}")
    );
    assert!(
        got[2].starts_with(
            "metadata.taints[3].value: Invalid value: \"-bad\": a valid label must be"
        )
    );
    assert_eq!(got[3], "metadata.taints[3].effect: Required value");
    assert_eq!(
        got[4],
        "metadata.taints[4]: Duplicate value: {\"Key\":\"ok\",\"Value\":\"other\",\"Effect\":\"NoSchedule\",\"TimeAdded\":null}: taints must be unique by key and effect pair"
    );
    let reasons: Vec<&str> = errs.iter().map(|e| e.kind.reason()).collect();
    assert_eq!(
        reasons,
        [
            "FieldValueNotSupported",
            "FieldValueInvalid",
            "FieldValueInvalid",
            "FieldValueRequired",
            "FieldValueDuplicate"
        ]
    );
}

#[test]
fn node_update_reports_taint_errors_twice_like_node_strategy() {
    let old = node(json!({ "name": "n1" }), json!({}));
    let new = node(
        json!({ "name": "n1" }),
        json!({ "taints": [{ "key": "k", "effect": "Bad" }] }),
    );
    let errs = validate_node(Some(&old), &new);
    assert_eq!(errs.len(), 2);
    assert_eq!(errs[0], errs[1]);
    let status = invalid_status("Node", "", "n1", &errs);
    assert_eq!(
        status["details"]["causes"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        status["message"],
        "Node \"n1\" is invalid: metadata.taints[0].effect: Unsupported value: \"Bad\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""
    );
    // the status subresource runs ValidateNodeUpdate only
    assert_eq!(validate_node_update(&old, &new).len(), 1);
}

#[test]
fn node_update_rejects_exact_duplicate_addresses_and_identity_changes() {
    let old = node(
        json!({ "name": "n1", "uid": "u1" }),
        json!({ "podCIDRs": ["10.42.0.0/24"] }),
    );
    let mut new = node(
        json!({ "name": "n2", "uid": "u2" }),
        json!({ "podCIDRs": ["10.42.1.0/24"] }),
    );
    new["status"] = json!({ "addresses": [
        { "type": "InternalIP", "address": "10.0.0.5" },
        { "type": "InternalIP", "address": "fd00::5" },
        { "type": "InternalIP", "address": "10.0.0.5" },
    ] });
    let got: Vec<String> = validate_node_update(&old, &new)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        got,
        [
            "metadata.name: Invalid value: \"n2\": field is immutable",
            "metadata.uid: Invalid value: \"u2\": field is immutable",
            "status.addresses[2]: Duplicate value: {\"Type\":\"InternalIP\",\"Address\":\"10.0.0.5\"}",
            "spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid",
        ]
    );
    // an empty uid is filled from the stored object upstream, so it is no change
    let mut same = old.clone();
    same["metadata"]["uid"] = json!("");
    assert!(validate_node_update(&old, &same).is_empty());
}

#[test]
fn pod_cidrs_must_be_cidrs_one_per_family() {
    let with = |cidrs: Value| node(json!({ "name": "n1" }), json!({ "podCIDRs": cidrs }));
    assert!(validate_node(None, &with(json!(["10.42.0.0/24", "fd00:42::/64"]))).is_empty());
    let got: Vec<String> = validate_node(None, &with(json!(["10.42.0.0/24", "10.43.0.0/24"])))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        got,
        [
            "spec.podCIDRs: Invalid value: [\"10.42.0.0/24\",\"10.43.0.0/24\"]: may specify no more than one CIDR for each IP family"
        ]
    );
    let got = validate_node(None, &with(json!(["nope"])));
    assert_eq!(
        got[0].to_string(),
        "spec.podCIDRs[0]: Invalid value: [\"nope\"]: must be valid CIDR"
    );
}

#[test]
fn invalid_status_is_shaped_like_new_invalid() {
    let errs = vec![
        FieldError::forbidden(
            "spec.providerID",
            "node updates may not change providerID except from \"\" to valid",
        ),
        FieldError::not_supported("metadata.taints[0].effect", json!("X"), &TAINT_EFFECTS),
    ];
    let status = invalid_status("Node", "", "n1", &errs);
    assert_eq!(
        status,
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Node \"n1\" is invalid: [spec.providerID: Forbidden: node updates may not change providerID except from \"\" to valid, metadata.taints[0].effect: Unsupported value: \"X\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"]",
            "reason": "Invalid",
            "details": {
                "name": "n1",
                "kind": "Node",
                "causes": [
                    { "reason": "FieldValueForbidden", "message": "Forbidden: node updates may not change providerID except from \"\" to valid", "field": "spec.providerID" },
                    { "reason": "FieldValueNotSupported", "message": "Unsupported value: \"X\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"", "field": "metadata.taints[0].effect" },
                ],
            },
            "code": 422,
        })
    );
    let lease = invalid_status("Lease", "coordination.k8s.io", "l", &[]);
    assert_eq!(
        lease["message"],
        "Lease.coordination.k8s.io \"l\" is invalid"
    );
    assert_eq!(lease["details"]["group"], "coordination.k8s.io");
}

/// A core/v1-form Event in `ns` about a Node, written the old way (no eventTime).
fn old_style_event(ns: &str) -> Value {
    json!({
        "kind": "Event", "apiVersion": "v1",
        "metadata": { "name": "n1.17a2b", "namespace": ns },
        "involvedObject": { "kind": "Node", "name": "n1" },
        "reason": "Registered", "message": "registered", "type": "Normal",
        "source": { "component": "kubelet" }, "count": 1,
        "firstTimestamp": "2026-11-26T14:00:00Z", "lastTimestamp": "2026-11-26T14:00:00Z",
    })
}

/// A core/v1-form Event as events.k8s.io/v1 writers (kube-rs, client-go) send it.
fn new_style_event() -> Value {
    json!({
        "kind": "Event", "apiVersion": "v1",
        "metadata": { "name": "n1.17a2b", "namespace": "default" },
        "involvedObject": { "kind": "Node", "name": "n1", "uid": "u1" },
        "eventTime": "2026-11-26T14:00:00.123456Z",
        "reportingComponent": "bare-ccm", "reportingInstance": "bare-ccm-host1",
        "action": "Initialize", "reason": "Initialized", "message": "addresses set",
        "type": "Normal",
    })
}

fn messages(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

#[test]
fn old_style_events_only_need_namespaces_to_agree() {
    let mismatch = "involvedObject.namespace: Invalid value: \"\": does not match event.namespace";
    let cases = [
        ("default", ""),
        ("kube-system", mismatch),
        ("other", mismatch),
    ];
    for (ns, want) in cases {
        let got = messages(&validate_event(None, &old_style_event(ns), ""));
        let want: Vec<String> = [want]
            .iter()
            .filter(|w| !w.is_empty())
            .map(|w| w.to_string())
            .collect();
        assert_eq!(got, want, "{ns}");
    }
    let mut pod_event = old_style_event("apps");
    pod_event["involvedObject"] = json!({ "kind": "Pod", "namespace": "web", "name": "p" });
    assert_eq!(
        messages(&validate_event(None, &pod_event, "")),
        ["involvedObject.namespace: Invalid value: \"web\": does not match event.namespace"]
    );
}

#[test]
fn events_with_event_time_need_reporting_fields_even_through_core_v1() {
    let mut event = new_style_event();
    for key in [
        "reportingComponent",
        "reportingInstance",
        "action",
        "reason",
    ] {
        event.as_object_mut().map(|o| o.remove(key));
    }
    event["metadata"]["namespace"] = json!("kube-system");
    assert_eq!(
        messages(&validate_event(None, &event, "")),
        [
            "reportingController: Required value".to_string(),
            "reportingController: Invalid value: \"\": name part must be non-empty".to_string(),
            format!("reportingController: Invalid value: \"\": {QNAME_REGEX_MSG}"),
            "reportingInstance: Required value".to_string(),
            "action: Required value".to_string(),
            "reason: Required value".to_string(),
        ]
    );
    // with eventTime a cluster-scoped object's events live in default or kube-system
    let mut elsewhere = new_style_event();
    elsewhere["metadata"]["namespace"] = json!("other");
    assert_eq!(
        messages(&validate_event(None, &elsewhere, "")),
        ["involvedObject.namespace: Invalid value: \"\": does not match event.namespace"]
    );
}

#[test]
fn event_length_limits_apply_to_both_versions() {
    let mut at_limit = new_style_event();
    at_limit["reportingInstance"] = json!("i".repeat(128));
    at_limit["action"] = json!("a".repeat(128));
    at_limit["reason"] = json!("r".repeat(128));
    at_limit["message"] = json!("m".repeat(1024));
    assert_eq!(validate_event(None, &at_limit, EVENTS_GROUP), vec![]);
    let mut over = new_style_event();
    over["reportingInstance"] = json!("i".repeat(129));
    over["action"] = json!("a".repeat(129));
    over["reason"] = json!("r".repeat(129));
    over["message"] = json!("m".repeat(1025));
    let want = [
        "reportingInstance: Invalid value: \"\": can have at most 128 characters",
        "action: Invalid value: \"\": can have at most 128 characters",
        "reason: Invalid value: \"\": can have at most 128 characters",
        "message: Invalid value: \"\": can have at most 1024 characters",
    ];
    for group in ["", EVENTS_GROUP] {
        assert_eq!(
            messages(&validate_event(None, &over, group)),
            want,
            "{group:?}"
        );
    }
    let bad_controller = {
        let mut e = new_style_event();
        e["reportingComponent"] = json!("bare ccm");
        e
    };
    assert_eq!(
        messages(&validate_event(None, &bad_controller, "")),
        [format!(
            "reportingController: Invalid value: \"bare ccm\": {QNAME_REGEX_MSG}"
        )]
    );
}

#[test]
fn events_v1_create_requires_event_time_a_known_type_and_no_deprecated_fields() {
    assert_eq!(
        validate_event(None, &new_style_event(), EVENTS_GROUP),
        vec![]
    );
    let mut event = old_style_event("default");
    event["type"] = json!("Info");
    event["series"] = json!({ "count": 1 });
    assert_eq!(
        messages(&validate_event(None, &event, EVENTS_GROUP)),
        [
            "series.count: Invalid value: \"\": should be at least 2",
            "series.lastObservedTime: Required value",
            "eventTime: Required value",
            "type: Invalid value: \"\": has invalid value: Info",
            "firstTimestamp: Invalid value: \"\": needs to be unset",
            "lastTimestamp: Invalid value: \"\": needs to be unset",
            "count: Invalid value: \"\": needs to be unset",
            "source: Invalid value: \"\": needs to be unset",
        ]
    );
    // core/v1 accepts the same object: legacy rules only
    assert_eq!(validate_event(None, &event, ""), vec![]);
}

#[test]
fn core_v1_event_names_need_only_be_path_segments() {
    let named = |name: &str| {
        let mut e = old_style_event("default");
        e["metadata"]["name"] = json!(name);
        e
    };
    assert_eq!(validate_event(None, &named("Node_N1.Ready"), ""), vec![]);
    assert_eq!(
        messages(&validate_event(None, &named("Node_N1.Ready"), EVENTS_GROUP))[0],
        format!("metadata.name: Invalid value: \"Node_N1.Ready\": {SUBDOMAIN_MSG}")
    );
    assert_eq!(
        messages(&validate_event(None, &named(".."), "")),
        ["metadata.name: Invalid value: \"..\": may not be '..'"]
    );
    assert_eq!(
        messages(&validate_event(None, &named("a%b/c"), "")),
        [
            "metadata.name: Invalid value: \"a%b/c\": may not contain '/'",
            "metadata.name: Invalid value: \"a%b/c\": may not contain '%'",
        ]
    );
    // the generic checks run only once the strategy's pass
    let mut both = named("..");
    both["metadata"]["namespace"] = json!("other");
    assert_eq!(
        messages(&validate_event(None, &both, "")),
        ["involvedObject.namespace: Invalid value: \"\": does not match event.namespace"]
    );
}

#[test]
fn events_v1_updates_keep_every_field_but_the_series_and_metadata() {
    let mut old = new_style_event();
    old["metadata"]["uid"] = json!("e-uid");
    let mut series = old.clone();
    series["series"] = json!({ "count": 2, "lastObservedTime": "2026-11-26T14:05:00.000001Z" });
    series["metadata"]["labels"] = json!({ "k": "v" });
    assert_eq!(validate_event(Some(&old), &series, EVENTS_GROUP), vec![]);
    let mut changed = old.clone();
    changed["reason"] = json!("Other");
    changed["message"] = json!("changed");
    changed["eventTime"] = json!("2026-11-26T14:00:01Z");
    changed["involvedObject"]["name"] = json!("n2");
    changed["related"] = json!({ "kind": "Pod", "name": "p" });
    changed["count"] = json!(3);
    changed["series"] = json!({ "count": 1, "lastObservedTime": "2026-11-26T14:05:00Z" });
    assert_eq!(
        messages(&validate_event(Some(&old), &changed, EVENTS_GROUP)),
        [
            "series.count: Invalid value: \"\": should be at least 2",
            "involvedObject: Invalid value: {\"Kind\":\"Node\",\"Namespace\":\"\",\"Name\":\"n2\",\"UID\":\"u1\",\"APIVersion\":\"\",\"ResourceVersion\":\"\",\"FieldPath\":\"\"}: field is immutable",
            "reason: Invalid value: \"Other\": field is immutable",
            "message: Invalid value: \"changed\": field is immutable",
            "count: Invalid value: 3: field is immutable",
            "reason: Invalid value: \"Other\": field is immutable",
            "eventTime: Invalid value: 2026-11-26 14:00:01 +0000 UTC: field is immutable",
            "related: Invalid value: {\"Kind\":\"Pod\",\"Namespace\":\"\",\"Name\":\"p\",\"UID\":\"\",\"APIVersion\":\"\",\"ResourceVersion\":\"\",\"FieldPath\":\"\"}: field is immutable",
        ]
    );
    // the same instant written differently is no change
    let mut same_time = old.clone();
    same_time["eventTime"] = json!("2026-11-26T15:00:00.123456+01:00");
    assert_eq!(validate_event(Some(&old), &same_time, EVENTS_GROUP), vec![]);
    // an unchanged invalid series is not checked again
    let mut bad_series = old.clone();
    bad_series["series"] = json!({ "count": 1 });
    let mut relabelled = bad_series.clone();
    relabelled["metadata"]["labels"] = json!({ "k": "v" });
    assert_eq!(
        validate_event(Some(&bad_series), &relabelled, EVENTS_GROUP),
        vec![]
    );
    let mut cleared = old.clone();
    cleared["eventTime"] = Value::Null;
    cleared["reportingComponent"] = json!("bare-ccm");
    let got = messages(&validate_event(Some(&old), &cleared, EVENTS_GROUP));
    assert!(
        got.contains(
            &"eventTime: Invalid value: 0001-01-01 00:00:00 +0000 UTC: field is immutable"
                .to_string()
        ),
        "{got:#?}"
    );
}

#[test]
fn core_v1_event_updates_may_change_fields_but_not_identity() {
    let mut old = old_style_event("default");
    old["metadata"]["uid"] = json!("e-uid");
    let mut bumped = old.clone();
    bumped["count"] = json!(2);
    bumped["lastTimestamp"] = json!("2026-11-26T14:01:00Z");
    bumped["message"] = json!("registered again");
    assert_eq!(validate_event(Some(&old), &bumped, ""), vec![]);
    let mut renamed = bumped.clone();
    renamed["metadata"]["uid"] = json!("other");
    assert_eq!(
        messages(&validate_event(Some(&old), &renamed, "")),
        ["metadata.uid: Invalid value: \"other\": field is immutable"]
    );
}

#[test]
fn go_time_strings_trim_trailing_zeros_like_time_string() {
    assert_eq!(
        go_time_string(Some("2026-11-26T14:00:00.120000Z")),
        "2026-11-26 14:00:00.12 +0000 UTC"
    );
    assert_eq!(
        go_time_string(Some("2026-11-26T16:00:00+02:00")),
        "2026-11-26 14:00:00 +0000 UTC"
    );
}

fn lease(spec: Value) -> Value {
    json!({ "kind": "Lease", "metadata": { "name": "bare-ccm", "namespace": "kube-system" }, "spec": spec })
}

#[test]
fn lease_specs_follow_coordination_validation() {
    let valid = lease(json!({
        "holderIdentity": "host1_1a2b", "leaseDurationSeconds": 15, "leaseTransitions": 0,
        "acquireTime": "2026-11-26T14:00:00.000000Z", "renewTime": "2026-11-26T14:00:10.000000Z",
    }));
    assert_eq!(validate_lease(&valid), vec![]);
    assert_eq!(validate_lease(&lease(json!({}))), vec![]);
    let cases = [
        (
            json!({ "leaseDurationSeconds": 0 }),
            "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
        ),
        (
            json!({ "leaseDurationSeconds": -5 }),
            "spec.leaseDurationSeconds: Invalid value: -5: must be greater than 0",
        ),
        (
            json!({ "leaseTransitions": -1 }),
            "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            json!({ "strategy": "Newest" }),
            "spec.strategy.strategy: Unsupported value: \"Newest\": supported values: \"OldestEmulationVersion\"",
        ),
        (
            json!({ "preferredHolder": "host2" }),
            "spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined",
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(
            messages(&validate_lease(&lease(spec.clone()))),
            [want],
            "{spec}"
        );
    }
    let prefixed = lease(json!({ "strategy": "example.com/Mine", "preferredHolder": "h" }));
    assert_eq!(validate_lease(&prefixed), vec![]);
    let bad_prefix = lease(json!({ "strategy": "Example.com/Mine" }));
    assert_eq!(
        messages(&validate_lease(&bad_prefix)),
        [format!(
            "spec.strategy.strategy: Invalid value: \"Example.com/Mine\": prefix part {SUBDOMAIN_MSG}"
        )]
    );
    let mut bad_name = valid.clone();
    bad_name["metadata"]["name"] = json!("Bare_CCM");
    assert_eq!(
        messages(&validate_lease(&bad_name)),
        [format!(
            "metadata.name: Invalid value: \"Bare_CCM\": {SUBDOMAIN_MSG}"
        )]
    );
}

#[test]
fn delete_options_accept_only_the_three_propagation_policies() {
    for policy in ["Orphan", "Background", "Foreground"] {
        assert_eq!(
            validate_delete_options(&json!({ "propagationPolicy": policy })),
            vec![]
        );
    }
    assert_eq!(
        validate_delete_options(&json!({ "orphanDependents": true })),
        vec![]
    );
    assert_eq!(validate_delete_options(&json!({})), vec![]);
    let errs = validate_delete_options(&json!({ "propagationPolicy": "Sideways" }));
    let status = invalid_status("DeleteOptions", "meta.k8s.io", "", &errs);
    assert_eq!(status["code"], 422);
    assert_eq!(
        status["message"],
        "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"Sideways\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
    );
    assert_eq!(
        status["details"],
        json!({
            "group": "meta.k8s.io",
            "kind": "DeleteOptions",
            "causes": [{
                "reason": "FieldValueNotSupported",
                "message": "Unsupported value: \"Sideways\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"",
                "field": "propagationPolicy",
            }],
        })
    );
    let both = validate_delete_options(
        &json!({ "propagationPolicy": "Orphan", "orphanDependents": false }),
    );
    assert_eq!(
        messages(&both),
        [
            "propagationPolicy: Invalid value: \"Orphan\": orphanDependents and deletionPropagation cannot be both set"
        ]
    );
}
