//! Merging lists, as apimachinery `pkg/util/strategicpatch/patch.go` does it
//! (`mergeSliceHandler`, `mergeSlice`, `mergeSliceWithSpecialElements`,
//! `sliceElementType`, `findMapInSliceBasedOnKeyValue`): atomic lists are replaced, merge
//! lists of scalars are united, keyed lists merged element by element, with the `$patch`
//! directives of their elements and `$deleteFromPrimitiveList`.

use serde_json::Value;

use super::order::{normalize_element_order, partition_by_presence};
use super::tags::{ListStrategy, list_strategy};
use super::{
    DIRECTIVE, Internal, Invalid, Merger, StrategicMergeError, go_type, no_merge_key, sanitize,
};
use crate::gofmt::go_v;

impl Merger<'_> {
    /// Upstream `mergeSliceHandler`: merge lists merge, others are replaced (a
    /// `$deleteFromPrimitiveList` always goes through the merge).
    pub(super) fn merge_list_field(
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
}

/// Upstream `sliceElementType`: all elements of both lists share one Go type, which is not a
/// list (lists of lists are the one 422).
pub(super) fn slice_element_type(
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
