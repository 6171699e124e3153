//! Strategic merge patch (`application/strategic-merge-patch+json`) as kube-apiserver applies
//! it, driven by the `patchStrategy`/`patchMergeKey` struct tags of the kinds we serve.
//! Owns only the pure merge; preconditions, status handling and validation are the HTTP
//! layer's.
//!
//! Sources: apimachinery `pkg/util/strategicpatch/patch.go` (`StrategicMergeMapPatch` with
//! `MergeParallelList` and `IgnoreUnmatchedNulls`, `mergeMap`, `mergeSlice`,
//! `mergeSliceWithSpecialElements`, `normalizeElementOrder`, `mergeSortedSlice`,
//! `applyRetainKeysDirective`, `mergePatchIntoOriginal`), apimachinery
//! `pkg/util/mergepatch/errors.go` (messages), apiserver `pkg/endpoints/handlers/patch.go`
//! (`interpretStrategicMergePatchError`: which errors are 400, 422, or passed through as
//! 500), and the struct tags of `staging/src/k8s.io/api/core/v1/types.go`.
//!
//! One deliberate difference: values the patch adds where the original has nothing are
//! copied with directive keys (`$patch`, `$retainKeys`, ...) removed. Upstream copies them
//! as they are and lets decoding into the typed object drop them; for string maps (labels)
//! upstream would then keep a `$patch` key and fail validation, which we do not mimic.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::gofmt::go_v;

/// Why a strategic merge patch could not be applied; the variant picks the HTTP status.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum StrategicMergeError {
    /// The patch itself is malformed: 400 BadRequest.
    #[error("{0}")]
    BadRequest(String),
    /// The patch is well formed but cannot apply to this object (lists of lists): 422.
    /// Upstream answers with `NewGenericServerResponse(422, ...)`, whose message is generic;
    /// this text is its only cause.
    #[error("{0}")]
    Invalid(String),
    /// Any other merge failure; upstream passes it through unconverted, so the client sees a
    /// 500 with an empty reason.
    #[error("{0}")]
    Internal(String),
}

impl StrategicMergeError {
    /// The HTTP status code the real server answers with for this error.
    pub fn status_code(&self) -> u16 {
        match self {
            StrategicMergeError::BadRequest(_) => 400,
            StrategicMergeError::Invalid(_) => 422,
            StrategicMergeError::Internal(_) => 500,
        }
    }

    /// The `reason` field of the real server's Status body (empty for the 500 case).
    pub fn reason(&self) -> &'static str {
        match self {
            StrategicMergeError::BadRequest(_) => "BadRequest",
            StrategicMergeError::Invalid(_) => "Invalid",
            StrategicMergeError::Internal(_) => "",
        }
    }
}

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

use StrategicMergeError::{BadRequest, Internal, Invalid};

/// mergepatch `ErrBadPatchFormatForPrimitiveList` and friends (400 upstream).
fn bad_primitive_list() -> StrategicMergeError {
    BadRequest("invalid patch format of primitive list".into())
}
fn bad_retain_keys() -> StrategicMergeError {
    BadRequest("invalid patch format of retainKeys".into())
}
fn bad_set_element_order() -> StrategicMergeError {
    BadRequest("invalid patch format of setElementOrder list".into())
}

/// How a list field merges, from its struct tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListStrategy {
    /// No `patchStrategy`: the patch's list replaces the original.
    Atomic,
    /// `patchStrategy:"merge"` on scalars: union, `$deleteFromPrimitiveList` removes.
    MergeScalars,
    /// `patchStrategy:"merge" patchMergeKey:"<key>"` on structs: merged element-wise by key.
    MergeByKey(&'static str),
}

/// The list strategy of the field at `path` (object keys from the root) in `kind`, from
/// `staging/src/k8s.io/api/core/v1/types.go` and `apimachinery/pkg/apis/meta/v1/types.go`.
/// Every list not named here has no patch strategy (ConfigMap, Lease and Event have none).
fn list_strategy(kind: &str, path: &[String]) -> ListStrategy {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match (kind, p.as_slice()) {
        // ObjectMeta: `Finalizers ... patchStrategy:"merge"`,
        // `OwnerReferences ... patchStrategy:"merge" patchMergeKey:"uid"`
        (_, ["metadata", "finalizers"]) => ListStrategy::MergeScalars,
        (_, ["metadata", "ownerReferences"]) => ListStrategy::MergeByKey("uid"),
        // NodeSpec: `PodCIDRs ... patchStrategy:"merge"`; `Taints` has no strategy (atomic)
        ("Node", ["spec", "podCIDRs"]) => ListStrategy::MergeScalars,
        // NodeStatus: `Addresses` and `Conditions ... patchStrategy:"merge" patchMergeKey:"type"`
        ("Node", ["status", "addresses"]) => ListStrategy::MergeByKey("type"),
        ("Node", ["status", "conditions"]) => ListStrategy::MergeByKey("type"),
        // NamespaceStatus: `Conditions ... patchStrategy:"merge" patchMergeKey:"type"`
        ("Namespace", ["status", "conditions"]) => ListStrategy::MergeByKey("type"),
        _ => ListStrategy::Atomic,
    }
}

/// mergepatch `ErrNoMergeKey`.
fn no_merge_key(m: &Map<String, Value>, key: &str) -> StrategicMergeError {
    Internal(format!(
        "map: {} does not contain declared merge key: {key}",
        go_v(&Value::Object(m.clone()))
    ))
}

/// The Go type of a decoded JSON value, as `reflect.TypeOf` tells them apart: integers
/// (decoded with `PreserveInts`) and floats differ.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

/// Removes directive keys and null map values from a value the patch adds, as decoding into
/// the typed object and `discardNullValuesFromPatch` do upstream.
fn sanitize(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, v)| !k.starts_with('$') && !v.is_null())
                .map(|(k, v)| (k, sanitize(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(sanitize).collect()),
        other => other,
    }
}

/// Applies a strategic merge patch to `original` with the merge rules of `kind` (the
/// object's `kind`, e.g. `Node`). A `null` patch changes nothing; a patch that is not a
/// JSON object is a 400, as the real server's decoding of it into a map fails.
pub fn apply_strategic_merge(
    kind: &str,
    original: &Value,
    patch: &Value,
) -> Result<Value, StrategicMergeError> {
    let patch = match patch {
        Value::Null => return Ok(original.clone()),
        Value::Object(m) => m.clone(),
        other => {
            let found = match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "bool",
            };
            return Err(BadRequest(format!(
                "json: cannot unmarshal {found} into Go value of type map[string]interface {{}}"
            )));
        }
    };
    let original = original.as_object().cloned().unwrap_or_default();
    let merger = Merger { kind };
    merger
        .merge_map(&mut Vec::new(), original, patch)
        .map(Value::Object)
}

/// Carries the kind whose struct tags drive the merge.
struct Merger<'a> {
    kind: &'a str,
}

impl Merger<'_> {
    /// Upstream `mergeMap`.
    fn merge_map(
        &self,
        path: &mut Vec<String>,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
    ) -> Result<Map<String, Value>, StrategicMergeError> {
        if let Some(directive) = patch.get(DIRECTIVE) {
            return match directive.as_str() {
                // handleDirectiveInMergeMap: replace = the patch itself; delete = empty map
                Some("replace") => {
                    patch.remove(DIRECTIVE);
                    match sanitize(Value::Object(patch)) {
                        Value::Object(m) => Ok(m),
                        _ => Ok(Map::new()),
                    }
                }
                Some("delete") => Ok(Map::new()),
                _ => Err(Internal(format!(
                    "unknown patch type: {} in map: {}",
                    go_v(directive),
                    go_v(&Value::Object(patch.clone()))
                ))),
            };
        }
        apply_retain_keys(&mut original, &mut patch)?;
        self.merge_set_element_order(path, &mut original, &mut patch)?;

        for (key, patch_value) in patch {
            let (key, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
                (
                    extract_key(&key, DELETE_FROM_PRIMITIVE_LIST, bad_primitive_list)?,
                    true,
                )
            } else {
                (key, false)
            };
            if patch_value.is_null() {
                // IgnoreUnmatchedNulls: null deletes the key, and is otherwise dropped
                original.remove(&key);
                continue;
            }
            if key.starts_with('$') {
                // an unknown directive: the typed decode upstream drops it
                continue;
            }
            let Some(original_value) = original.remove(&key) else {
                if !is_delete_list {
                    original.insert(key, sanitize(patch_value));
                }
                continue;
            };
            if go_type(&original_value) != go_type(&patch_value) {
                let kept = if is_delete_list {
                    original_value
                } else {
                    sanitize(patch_value)
                };
                original.insert(key, kept);
                continue;
            }
            path.push(key.clone());
            let merged = match (original_value, patch_value) {
                (Value::Object(o), Value::Object(p)) => {
                    self.merge_map(path, o, p).map(Value::Object)
                }
                (Value::Array(o), Value::Array(p)) => self
                    .merge_list_field(path, o, p, is_delete_list)
                    .map(Value::Array),
                (_, scalar) => Ok(scalar),
            };
            path.pop();
            original.insert(key, merged?);
        }
        Ok(original)
    }

    /// Upstream `mergeSliceHandler`: merge lists merge, others are replaced (a
    /// `$deleteFromPrimitiveList` always goes through the merge).
    fn merge_list_field(
        &self,
        path: &[String],
        original: Vec<Value>,
        patch: Vec<Value>,
        is_delete_list: bool,
    ) -> Result<Vec<Value>, StrategicMergeError> {
        match list_strategy(self.kind, path) {
            ListStrategy::Atomic if !is_delete_list => {
                Ok(patch.into_iter().map(sanitize).collect())
            }
            ListStrategy::MergeByKey(key) => {
                self.merge_list(path, original, patch, Some(key), is_delete_list)
            }
            _ => self.merge_list(path, original, patch, None, is_delete_list),
        }
    }

    /// Upstream `mergeSlice`.
    fn merge_list(
        &self,
        path: &[String],
        original: Vec<Value>,
        patch: Vec<Value>,
        merge_key: Option<&str>,
        is_delete_list: bool,
    ) -> Result<Vec<Value>, StrategicMergeError> {
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        let element_type = slice_element_type(&original, &patch)?;
        if element_type != "map" && merge_key.is_some() && !is_delete_list {
            // scalars in a keyed list: partitionMapsByPresentInList's ErrBadArgType
            return Err(Internal(format!(
                "expected a map[string]interface {{}}, but received a {element_type}"
            )));
        }
        if element_type != "map" {
            if is_delete_list {
                // deleteFromSlice: drop every element listed, keep the order
                return Ok(original
                    .into_iter()
                    .filter(|v| !patch.contains(v))
                    .collect());
            }
            let mut merged: Vec<Value> = Vec::new();
            for v in original.iter().chain(&patch) {
                if !merged.contains(v) {
                    merged.push(v.clone());
                }
            }
            let (patch_items, server_only) = partition_by_presence(merged, &patch, None);
            return Ok(normalize_element_order(
                patch_items,
                server_only,
                &patch,
                &original,
                None,
            ));
        }
        let Some(key) = merge_key else {
            return Err(Internal(
                "cannot merge lists without merge key for type string".into(),
            ));
        };
        let (original, patch) = merge_list_special_elements(original, patch, key)?;
        let mut merged = original.clone();
        let mut element_path = path.to_vec();
        for item in &patch {
            let Value::Object(p) = item else { continue };
            let Some(value) = p.get(key) else {
                return Err(no_merge_key(p, key));
            };
            match find_by_key(&merged, key, value)? {
                Some(i) => {
                    let Value::Object(o) = std::mem::take(&mut merged[i]) else {
                        continue;
                    };
                    merged[i] = Value::Object(self.merge_map(&mut element_path, o, p.clone())?);
                }
                None => merged.push(sanitize(item.clone())),
            }
        }
        for v in &merged {
            if let Value::Object(m) = v
                && !m.contains_key(key)
            {
                return Err(no_merge_key(m, key));
            }
        }
        let (patch_items, server_only) = partition_by_presence(merged, &patch, Some(key));
        Ok(normalize_element_order(
            patch_items,
            server_only,
            &patch,
            &original,
            Some(key),
        ))
    }

    /// Upstream `mergePatchIntoOriginal`: merges each list named by a
    /// `$setElementOrder/<field>` directive now, ordered by that directive, and removes both
    /// from the patch.
    fn merge_set_element_order(
        &self,
        path: &mut Vec<String>,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
    ) -> Result<(), StrategicMergeError> {
        let directives: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
            .cloned()
            .collect();
        for directive in directives {
            let order = match patch.remove(&directive) {
                Some(Value::Array(order)) => order,
                Some(other) => {
                    return Err(Internal(format!(
                        "expected a []interface {{}}, but received a {}",
                        go_type(&other)
                    )));
                }
                None => continue,
            };
            let field = extract_key(&directive, SET_ELEMENT_ORDER, bad_set_element_order)?;
            let as_list = |v: Option<&Value>| -> Result<Option<Vec<Value>>, StrategicMergeError> {
                match v {
                    None => Ok(None),
                    Some(Value::Array(items)) => Ok(Some(items.clone())),
                    Some(other) => Err(Internal(format!(
                        "expected a []interface {{}}, but received a {}",
                        go_type(other)
                    ))),
                }
            };
            let original_list = as_list(original.get(&field))?;
            let patch_list = as_list(patch.get(&field))?;
            path.push(field.clone());
            let strategy = list_strategy(self.kind, path);
            let merge_key = match strategy {
                ListStrategy::MergeByKey(k) => Some(k),
                _ => None,
            };
            let result = (|| {
                validate_patch_with_set_order(
                    patch_list.as_deref().unwrap_or(&[]),
                    &order,
                    merge_key,
                )?;
                let merged = match (&original_list, &patch_list) {
                    (Some(o), None) => o.clone(),
                    (None, Some(p)) => p.clone(),
                    (Some(o), Some(p)) => {
                        self.merge_list_field(path, o.clone(), p.clone(), false)?
                    }
                    (None, None) => return Ok(None),
                };
                let empty = Vec::new();
                let original_order = original_list.as_ref().unwrap_or(&empty);
                slice_element_type(original_order, patch_list.as_deref().unwrap_or(&[]))?;
                let (patch_items, server_only) = partition_by_presence(merged, &order, merge_key);
                Ok(Some(normalize_element_order(
                    patch_items,
                    server_only,
                    &order,
                    original_order,
                    merge_key,
                )))
            })();
            path.pop();
            if let Some(list) = result? {
                original.insert(field.clone(), Value::Array(list));
            }
            patch.remove(&field);
        }
        Ok(())
    }
}

/// Upstream `extractKey`: `<prefix>/<field>`, anything else is the prefix's format error.
fn extract_key(
    key: &str,
    prefix: &str,
    format_error: fn() -> StrategicMergeError,
) -> Result<String, StrategicMergeError> {
    match key.split_once('/') {
        Some((p, field)) if p == prefix => Ok(field.to_string()),
        _ => Err(format_error()),
    }
}

/// Upstream `applyRetainKeysDirective`: keys of the original not listed are cleared; a patch
/// key (other than nulls and directives) missing from the list is a 400.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), StrategicMergeError> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(bad_retain_keys());
    };
    let listed = |k: &str| retain.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        let directive =
            k.starts_with(DELETE_FROM_PRIMITIVE_LIST) || k.starts_with(SET_ELEMENT_ORDER);
        if !v.is_null() && !directive && !listed(k) {
            return Err(bad_retain_keys());
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// Upstream `sliceElementType`: all elements of both lists share one Go type, which is not a
/// list (lists of lists are the one 422).
fn slice_element_type(
    original: &[Value],
    patch: &[Value],
) -> Result<&'static str, StrategicMergeError> {
    let mut all = original.iter().chain(patch);
    let Some(first) = all.next() else {
        return Err(Internal("no elements in any of the given slices".into()));
    };
    let t = go_type(first);
    if t == "slice" {
        return Err(Invalid("lists of lists are not supported".into()));
    }
    if t == "nil" {
        return Err(Internal("list elements must not be null".into()));
    }
    if all.any(|v| go_type(v) != t) {
        let lists = format!(
            "[{} {}]",
            go_v(&Value::Array(original.to_vec())),
            go_v(&Value::Array(patch.to_vec()))
        );
        return Err(Internal(format!(
            "list element types are not identical: {lists}"
        )));
    }
    Ok(t)
}

/// Upstream `findMapInSliceBasedOnKeyValue`: the first element whose merge key equals.
fn find_by_key(
    list: &[Value],
    key: &str,
    value: &Value,
) -> Result<Option<usize>, StrategicMergeError> {
    for (i, v) in list.iter().enumerate() {
        let Value::Object(m) = v else {
            return Err(Internal(format!("value for key {i} is not a map.")));
        };
        if m.get(key) == Some(value) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// Upstream `mergeSliceWithSpecialElements`: `{<key>: v, $patch: delete}` removes every
/// element with that key; `{$patch: replace}` makes the rest of the patch the whole list.
fn merge_list_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), StrategicMergeError> {
    let mut plain = Vec::new();
    let mut replace = false;
    for item in patch {
        let Value::Object(m) = &item else {
            plain.push(item);
            continue;
        };
        match m.get(DIRECTIVE) {
            None => plain.push(item),
            Some(d) if d == "delete" => {
                let Some(value) = m.get(key) else {
                    return Err(no_merge_key(m, key));
                };
                while let Some(i) = find_by_key(&original, key, value)? {
                    original.remove(i);
                }
            }
            Some(d) if d == "replace" => replace = true,
            Some(d) if d == "merge" => {
                return Err(Internal(
                    "merging lists cannot yet be specified in the patch".into(),
                ));
            }
            Some(d) => {
                return Err(Internal(format!(
                    "unknown patch type: {} in map: {}",
                    go_v(d),
                    go_v(&item)
                )));
            }
        }
    }
    if replace {
        let items: Vec<Value> = plain.into_iter().map(sanitize).collect();
        return Ok((items, Vec::new()));
    }
    Ok((original, plain))
}

/// The identity of an element for ordering: its merge key value, or itself for scalars.
fn identity<'a>(v: &'a Value, key: Option<&str>) -> Option<&'a Value> {
    match key {
        Some(k) => v.get(k),
        None => Some(v),
    }
}

/// Upstream `index`: position of the first element of `list` with the same identity.
fn index_of(list: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    let id = identity(item, key)?;
    list.iter().position(|v| identity(v, key) == Some(id))
}

/// Upstream `partitionMapsByPresentInList` / `partitionPrimitivesByPresentInList`: elements
/// whose identity appears in `by`, and the others.
fn partition_by_presence(
    merged: Vec<Value>,
    by: &[Value],
    key: Option<&str>,
) -> (Vec<Value>, Vec<Value>) {
    merged
        .into_iter()
        .partition(|v| index_of(by, v, key).is_some())
}

/// Upstream `normalizeElementOrder`: patch items sorted (stably) by `patch_order`,
/// server-only items by `server_order`, then interleaved by `mergeSortedSlice`.
fn normalize_element_order(
    mut patch_items: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let by = |order: &[Value]| {
        let order = order.to_vec();
        move |a: &Value, b: &Value| -> Ordering {
            let ia = index_of(&order, a, key).unwrap_or(usize::MAX);
            let ib = index_of(&order, b, key).unwrap_or(usize::MAX);
            ia.cmp(&ib)
        }
    };
    patch_items.sort_by(by(patch_order));
    server_only.sort_by(by(server_order));
    merge_sorted(server_only, patch_items, server_order, key)
}

/// Upstream `mergeSortedSlice`: inserts each server-only item before the next patch item
/// when both are found in the live order and the server-only one comes first.
fn merge_sorted(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => return out,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                matches!((index_of(server_order, l, key), index_of(server_order, r, key)), (Some(li), Some(ri)) if li < ri)
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
}

/// Upstream `validatePatchWithSetOrderList`: the patch list's items (deletions aside) must
/// appear in the `$setElementOrder` list in the same relative order.
fn validate_patch_with_set_order(
    patch_list: &[Value],
    order: &[Value],
    key: Option<&str>,
) -> Result<(), StrategicMergeError> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let is_delete = |v: &Value| v.get(DIRECTIVE).and_then(Value::as_str) == Some("delete");
    let items: Vec<&Value> = patch_list
        .iter()
        .filter(|v| key.is_none() || !is_delete(v))
        .collect();
    let (mut pi, mut oi) = (0, 0);
    while pi < items.len() && oi < order.len() {
        if items[pi].get(DIRECTIVE).is_some() {
            pi += 1;
            continue;
        }
        let (a, b) = (identity(items[pi], key), identity(&order[oi], key));
        if a.is_none() || b.is_none() {
            return Err(bad_set_element_order());
        }
        if a == b {
            pi += 1;
        }
        oi += 1;
    }
    if pi < items.len() {
        return Err(Internal(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
            go_v(&Value::Array(patch_list.to_vec())),
            go_v(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
        let out =
            merged(json!({ "metadata": { "labels": { "b": null, "c": "3", "gone": null } } }));
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
        let out = merged(
            json!({ "status": { "addresses": [{ "type": "Hostname", "$patch": "delete" }] } }),
        );
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
}
