//! Tests of strategic merge patch, through `apply_strategic_merge`, on the kinds' tags.

use super::*;
use serde_json::json;

fn node() -> Value {
    json!({
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": "n1",
            "labels": { "a": "1", "b": "2" },
            "finalizers": ["x", "y"],
        },
        "spec": {
            "taints": [
                { "key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule" },
                { "key": "node.kubernetes.io/not-ready", "effect": "NoSchedule" },
            ],
        },
        "status": {
            "addresses": [
                { "type": "InternalIP", "address": "10.0.0.5" },
                { "type": "Hostname", "address": "h1" },
            ],
            "conditions": [
                { "type": "Ready", "status": "False", "reason": "KubeletNotReady" },
                { "type": "MemoryPressure", "status": "False" },
            ],
        },
    })
}

fn merged(patch: Value) -> Value {
    match apply_strategic_merge("Node", &node(), &patch) {
        Ok(v) => v,
        Err(e) => panic!("patch {patch} failed: {e}"),
    }
}

#[test]
fn maps_merge_recursively_and_null_deletes_a_key() {
    let out = merged(json!({ "metadata": { "labels": { "b": null, "c": "3", "gone": null } } }));
    assert_eq!(out["metadata"]["labels"], json!({ "a": "1", "c": "3" }));
    assert_eq!(out["metadata"]["name"], "n1");
    assert_eq!(out["status"], node()["status"]);
}

#[test]
fn taints_have_no_patch_strategy_so_the_list_is_replaced_whole() {
    let out = merged(
        json!({ "spec": { "taints": [{ "key": "k", "value": "v", "effect": "NoSchedule" }] } }),
    );
    assert_eq!(
        out["spec"]["taints"],
        json!([{ "key": "k", "value": "v", "effect": "NoSchedule" }])
    );
    let out = merged(json!({ "spec": { "taints": [] } }));
    assert_eq!(out["spec"]["taints"], json!([]));
}

#[test]
fn addresses_and_conditions_merge_by_type() {
    let out = merged(json!({ "status": {
        "addresses": [{ "type": "ExternalIP", "address": "203.0.113.5" }],
        "conditions": [{ "type": "Ready", "status": "True", "reason": "KubeletReady" }],
    } }));
    // patch items not in the live list go first (mergeSortedSlice), the rest keep their order
    assert_eq!(
        out["status"]["addresses"],
        json!([
            { "type": "ExternalIP", "address": "203.0.113.5" },
            { "type": "InternalIP", "address": "10.0.0.5" },
            { "type": "Hostname", "address": "h1" },
        ])
    );
    assert_eq!(
        out["status"]["conditions"],
        json!([
            { "type": "Ready", "status": "True", "reason": "KubeletReady" },
            { "type": "MemoryPressure", "status": "False" },
        ])
    );
}

#[test]
fn delete_and_replace_directives_in_merge_lists() {
    let out =
        merged(json!({ "status": { "addresses": [{ "type": "Hostname", "$patch": "delete" }] } }));
    assert_eq!(
        out["status"]["addresses"],
        json!([{ "type": "InternalIP", "address": "10.0.0.5" }])
    );
    let out = merged(json!({ "status": { "addresses": [
        { "$patch": "replace" },
        { "type": "InternalIP", "address": "10.0.0.9" },
    ] } }));
    assert_eq!(
        out["status"]["addresses"],
        json!([{ "type": "InternalIP", "address": "10.0.0.9" }])
    );
    let err = apply_strategic_merge(
        "Node",
        &node(),
        &json!({ "status": { "addresses": [{ "$patch": "delete" }] } }),
    );
    assert_eq!(
        err,
        Err(Internal(
            "map: map[$patch:delete] does not contain declared merge key: type".into()
        ))
    );
}

#[test]
fn delete_and_replace_directives_on_maps() {
    let out = merged(json!({ "metadata": { "labels": { "$patch": "replace", "z": "26" } } }));
    assert_eq!(out["metadata"]["labels"], json!({ "z": "26" }));
    // upstream handleDirectiveInMergeMap: `$patch: delete` leaves an empty map
    let out = merged(json!({ "metadata": { "labels": { "$patch": "delete" } } }));
    assert_eq!(out["metadata"]["labels"], json!({}));
    let err = apply_strategic_merge(
        "Node",
        &node(),
        &json!({ "metadata": { "labels": { "$patch": "frobnicate" } } }),
    );
    assert_eq!(
        err,
        Err(Internal(
            "unknown patch type: frobnicate in map: map[$patch:frobnicate]".into()
        ))
    );
    assert_eq!(
        err.map_err(|e| (e.status_code(), e.reason())),
        Err((500, ""))
    );
}

#[test]
fn primitive_merge_lists_union_and_delete_from_primitive_list() {
    let out = merged(json!({ "metadata": { "finalizers": ["z", "x"] } }));
    assert_eq!(out["metadata"]["finalizers"], json!(["z", "x", "y"]));
    let out = merged(json!({ "metadata": { "$deleteFromPrimitiveList/finalizers": ["x"] } }));
    assert_eq!(out["metadata"]["finalizers"], json!(["y"]));
    let err = apply_strategic_merge(
        "Node",
        &node(),
        &json!({ "metadata": { "$deleteFromPrimitiveList": ["x"] } }),
    );
    assert_eq!(
        err,
        Err(BadRequest("invalid patch format of primitive list".into()))
    );
    assert_eq!(err.map_err(|e| e.status_code()), Err(400));
}

#[test]
fn set_element_order_orders_the_merged_list_and_is_stripped() {
    let out = merged(json!({ "status": {
        "$setElementOrder/addresses": [{ "type": "Hostname" }, { "type": "InternalIP" }],
        "addresses": [{ "type": "InternalIP", "address": "10.0.0.6" }],
    } }));
    assert_eq!(
        out["status"]["addresses"],
        json!([{ "type": "Hostname", "address": "h1" }, { "type": "InternalIP", "address": "10.0.0.6" }])
    );
    assert!(out["status"].get("$setElementOrder/addresses").is_none());
    let err = apply_strategic_merge(
        "Node",
        &node(),
        &json!({ "status": { "$setElementOrder": [] } }),
    );
    assert_eq!(
        err,
        Err(BadRequest(
            "invalid patch format of setElementOrder list".into()
        ))
    );
}

#[test]
fn retain_keys_clears_unlisted_keys_and_rejects_unlisted_patch_keys() {
    let out =
        merged(json!({ "spec": { "$retainKeys": ["providerID"], "providerID": "bare://n1" } }));
    assert_eq!(out["spec"], json!({ "providerID": "bare://n1" }));
    let err = apply_strategic_merge(
        "Node",
        &node(),
        &json!({ "spec": { "$retainKeys": ["x"], "providerID": "p" } }),
    );
    assert_eq!(
        err,
        Err(BadRequest("invalid patch format of retainKeys".into()))
    );
}

#[test]
fn lists_of_lists_are_unprocessable_and_non_object_patches_bad_requests() {
    let original = json!({ "metadata": { "finalizers": [["a"]] } });
    let err = apply_strategic_merge(
        "Node",
        &original,
        &json!({ "metadata": { "finalizers": [["b"]] } }),
    );
    assert_eq!(err, Err(Invalid("lists of lists are not supported".into())));
    assert_eq!(err.map_err(|e| e.status_code()), Err(422));
    let err = apply_strategic_merge("Node", &node(), &json!([{ "op": "add" }]));
    assert_eq!(
        err,
        Err(BadRequest(
            "json: cannot unmarshal array into Go value of type map[string]interface {}".into()
        ))
    );
    assert_eq!(
        apply_strategic_merge("Node", &node(), &Value::Null),
        Ok(node())
    );
}

#[test]
fn other_kinds_treat_lists_as_atomic_except_object_meta_tags() {
    let lease = json!({ "kind": "Lease", "metadata": { "name": "l", "finalizers": ["a"] }, "spec": { "holderIdentity": "x" } });
    let out = apply_strategic_merge(
        "Lease",
        &lease,
        &json!({ "metadata": { "finalizers": ["b"] }, "spec": { "holderIdentity": "y" } }),
    );
    // finalizers merge (new items first, as mergeSortedSlice orders them)
    assert_eq!(
        out,
        Ok(
            json!({ "kind": "Lease", "metadata": { "name": "l", "finalizers": ["b", "a"] }, "spec": { "holderIdentity": "y" } })
        )
    );
    // a Lease has no address list strategy: the same shape is replaced whole
    let odd = json!({ "status": { "addresses": [{ "type": "A", "address": "1" }] } });
    let out = apply_strategic_merge(
        "Lease",
        &odd,
        &json!({ "status": { "addresses": [{ "type": "B", "address": "2" }] } }),
    );
    assert_eq!(
        out,
        Ok(json!({ "status": { "addresses": [{ "type": "B", "address": "2" }] } }))
    );
}

/// Why bare-ccm never writes `status.addresses` with a strategic merge patch: the merge
/// key `type` is not unique in a dual-stack list. Each patch element is merged into the
/// *first* live element of its type (upstream `findMapInSliceBasedOnKeyValue`), so both
/// new InternalIPs land on the old IPv4 entry (the IPv6 one winning), the old IPv6
/// entry survives untouched, and the new IPv4 address is lost. A JSON merge patch
/// replaces the list and gives the intended result.
#[test]
fn strategic_merge_by_type_corrupts_dual_stack_addresses() {
    let live = json!({ "kind": "Node", "metadata": { "name": "n1" }, "status": { "addresses": [
        { "type": "InternalIP", "address": "10.0.0.5" },
        { "type": "InternalIP", "address": "fd00::5" },
        { "type": "Hostname", "address": "h1" },
    ] } });
    let wanted = json!([
        { "type": "InternalIP", "address": "10.0.0.6" },
        { "type": "InternalIP", "address": "fd00::6" },
        { "type": "Hostname", "address": "h1" },
    ]);
    let patch = json!({ "status": { "addresses": wanted } });

    let strategic = apply_strategic_merge("Node", &live, &patch);
    assert_eq!(
        strategic.map(|n| n["status"]["addresses"].clone()),
        Ok(json!([
            { "type": "InternalIP", "address": "fd00::6" },
            { "type": "InternalIP", "address": "fd00::5" },
            { "type": "Hostname", "address": "h1" },
        ]))
    );

    let mut merge_patched = live.clone();
    json_patch::merge(&mut merge_patched, &patch);
    assert_eq!(merge_patched["status"]["addresses"], wanted);
}
