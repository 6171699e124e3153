//! Object validation on create and update, and the 422 `Invalid` Status it produces, as
//! kube-apiserver does them. Owns only pure checks on `serde_json::Value`; deciding when to
//! validate (create, update, `/status`) belongs to the HTTP layer.
//!
//! One file per rule set, each citing the upstream code it mirrors (kubernetes/kubernetes
//! at v1.33, with the 1.37 changes noted where they apply):
//! - `field_error`: `field.Error`, its messages, and the 422 `Invalid` Status;
//! - `syntax`: qualified names, label values, DNS-1123 names;
//! - `meta`: object metadata on create and update;
//! - `node`, `event`, `lease`: the kinds with their own strategy rules;
//! - `delete_options`: the options of a DELETE.
//!
//! This file holds what every rule set shares: reading fields of the JSON object, where
//! a missing or mistyped field reads as Go's zero value.

use serde_json::{Map, Value};

mod delete_options;
mod event;
mod field_error;
mod lease;
mod meta;
mod node;
mod syntax;
#[cfg(test)]
mod tests;

pub use crate::gofmt::go_quote;
pub use delete_options::validate_delete_options;
pub use event::validate_event;
pub(crate) use field_error::aggregate;
pub use field_error::{FieldError, FieldErrorKind, invalid_status};
pub use lease::validate_lease;
pub use meta::{
    TOTAL_ANNOTATION_SIZE_LIMIT_BYTES, validate_object_meta, validate_object_meta_update,
};
pub use node::{validate_node, validate_node_update};
pub use syntax::{is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_label_value};

/// The string at `path`; "" when a step is missing or the value is not a string.
fn str_at<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = obj;
    for key in path {
        match cur.get(key) {
            Some(v) => cur = v,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("")
}

/// The object (labels, annotations) at `path`, if there is one.
fn string_map<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    let mut cur = obj;
    for key in path {
        cur = cur.get(key)?;
    }
    cur.as_object()
}

/// The list at `path`; empty when a step is missing or the value is not a list.
fn array_at<'a>(obj: &'a Value, path: &[&str]) -> &'a [Value] {
    let mut cur = obj;
    for key in path {
        match cur.get(key) {
            Some(v) => cur = v,
            None => return &[],
        }
    }
    cur.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The strings of a list, a non-string read as "".
fn str_list(values: &[Value]) -> Vec<&str> {
    values.iter().map(|v| v.as_str().unwrap_or("")).collect()
}
