//! Merging maps, as apimachinery `pkg/util/strategicpatch/patch.go` does it: `mergeMap`
//! (with `IgnoreUnmatchedNulls`: a null deletes), its `$patch` directives
//! (`handleDirectiveInMergeMap`), `$retainKeys` (`applyRetainKeysDirective`), and the lists
//! named by `$setElementOrder` merged first (`mergePatchIntoOriginal`).

use serde_json::{Map, Value};

use super::list::slice_element_type;
use super::order::{normalize_element_order, partition_by_presence, validate_patch_with_set_order};
use super::tags::{ListStrategy, list_strategy};
use super::{
    DELETE_FROM_PRIMITIVE_LIST, DIRECTIVE, Internal, Merger, RETAIN_KEYS, SET_ELEMENT_ORDER,
    StrategicMergeError, bad_primitive_list, bad_retain_keys, bad_set_element_order, go_type,
    sanitize,
};
use crate::gofmt::go_v;

impl Merger<'_> {
    /// Upstream `mergeMap`.
    pub(super) fn merge_map(
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
