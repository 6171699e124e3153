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
//!
//! This file holds the entry point, the errors and what every step shares; `map` and
//! `list` merge, `order` orders merged lists, `tags` says how each list field merges.

use serde_json::{Map, Value};

use crate::gofmt::go_v;

mod list;
mod map;
mod order;
mod tags;
#[cfg(test)]
mod tests;

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
