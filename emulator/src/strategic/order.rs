//! The order of a merged list, as apimachinery `pkg/util/strategicpatch/patch.go` sets it:
//! patch items in the patch's (or `$setElementOrder`'s) order, server-only items in the
//! live order, interleaved (`normalizeElementOrder`, `mergeSortedSlice`, the
//! `partition*ByPresentInList` helpers), and the check that a patch list follows its
//! `$setElementOrder` list (`validatePatchWithSetOrderList`).

use std::cmp::Ordering;

use serde_json::Value;

use super::{DIRECTIVE, Internal, SET_ELEMENT_ORDER, StrategicMergeError, bad_set_element_order};
use crate::gofmt::go_v;

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
pub(super) fn partition_by_presence(
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
pub(super) fn normalize_element_order(
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
pub(super) fn validate_patch_with_set_order(
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
