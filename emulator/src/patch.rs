//! Applying a PATCH body to the current object, by patch type, with the status codes of
//! apiserver `pkg/endpoints/handlers/patch.go`:
//! - `application/json-patch+json` (RFC 6902): an undecodable patch is 400 BadRequest; a
//!   patch that fails to apply (a failed `test`, a missing path) is 422 from
//!   `NewGenericServerResponse(http.StatusUnprocessableEntity, ...)` (`applyJSPatch`),
//!   whose message is the generic "the server rejected our request due to an error in our
//!   request" (the json-patch error text is dropped). As the server's
//!   gopkg.in/evanphx/json-patch.v4 (`Patch.test`), a `test` for `null` passes when the
//!   member is absent, where RFC 6902 (and the `json_patch` crate) would fail it.
//! - `application/merge-patch+json` (RFC 7386): a body that is not JSON is 400.
//! - `application/strategic-merge-patch+json`: `strategic::apply_strategic_merge`, with
//!   BadRequest → 400 and Invalid → 422 (`interpretStrategicMergePatchError`).
//! - `application/apply-patch+yaml` (server-side apply) and anything else: 415, so that any
//!   use of server-side apply in bare-ccm is visible in tests.

use serde_json::Value;

use crate::status::ApiError;
use crate::strategic::{self, StrategicMergeError};

/// The supported patch types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// RFC 6902 JSON patch.
    Json,
    /// RFC 7386 JSON merge patch.
    Merge,
    /// Kubernetes strategic merge patch.
    Strategic,
}

/// The media type of a Content-Type header, lower-cased, without parameters such as
/// `charset`: what the server's content negotiation compares.
pub(crate) fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

impl PatchKind {
    /// The patch type of a Content-Type header (parameters such as `charset` ignored).
    pub fn from_content_type(content_type: &str) -> Result<PatchKind, ApiError> {
        match media_type(content_type).as_str() {
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            _ => Err(ApiError::unsupported_media_type()),
        }
    }
}

/// A merge or strategic merge patch body: it must be a JSON object.
fn patch_object(body: &[u8]) -> Result<Value, ApiError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    if !patch.is_object() {
        return Err(ApiError::bad_request("invalid JSON document"));
    }
    Ok(patch)
}

/// Applies `body` to `original` (the object as the client sees it).
pub fn apply(
    kind: PatchKind,
    object_kind: &str,
    original: &Value,
    body: &[u8],
) -> Result<Value, ApiError> {
    match kind {
        PatchKind::Json => {
            let ops: json_patch::Patch =
                serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
            let ops = json_patch::Patch(
                ops.0
                    .into_iter()
                    .filter(|op| !is_test_for_absent_member(original, op))
                    .collect(),
            );
            let mut doc = original.clone();
            json_patch::patch(&mut doc, &ops).map_err(|_| ApiError::generic_unprocessable())?;
            Ok(doc)
        }
        PatchKind::Merge => {
            let patch = patch_object(body)?;
            let mut doc = original.clone();
            json_patch::merge(&mut doc, &patch);
            Ok(doc)
        }
        PatchKind::Strategic => {
            let patch = patch_object(body)?;
            strategic::apply_strategic_merge(object_kind, original, &patch).map_err(|e| match e {
                StrategicMergeError::BadRequest(m) => ApiError::bad_request(m),
                StrategicMergeError::Invalid(_) => ApiError::generic_unprocessable(),
                StrategicMergeError::Internal(m) => ApiError::unknown_internal(&m),
            })
        }
    }
}

/// A `test` of `null` at a member that is absent from an object that exists: evanphx
/// json-patch v4 passes it (`Patch.test`: `val == nil` and a nil value), so the emulator
/// drops it before applying the patch. Operations run in order, so only a `test` before any
/// change of its parent is judged against `original`; bare-ccm puts its tests first.
fn is_test_for_absent_member(original: &Value, op: &json_patch::PatchOperation) -> bool {
    let json_patch::PatchOperation::Test(test) = op else {
        return false;
    };
    let path = test.path.as_str();
    let Some((parent, _)) = path.rsplit_once('/') else {
        return false;
    };
    test.value.is_null()
        && original.pointer(path).is_none()
        && original.pointer(parent).is_some_and(Value::is_object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types_map_to_patch_kinds_and_apply_is_415() {
        assert_eq!(
            PatchKind::from_content_type("application/merge-patch+json; charset=utf-8").ok(),
            Some(PatchKind::Merge)
        );
        assert_eq!(
            PatchKind::from_content_type("application/apply-patch+yaml")
                .err()
                .map(|e| e.code),
            Some(415)
        );
    }

    #[test]
    fn failed_json_patch_test_is_422_and_malformed_patch_is_400() {
        let obj = json!({"metadata":{"name":"n"}});
        let failed = apply(
            PatchKind::Json,
            "Node",
            &obj,
            br#"[{"op":"test","path":"/metadata/name","value":"other"}]"#,
        );
        assert_eq!(
            failed.err().map(|e| e.body),
            Some(json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "the server rejected our request due to an error in our request",
                "reason": "Invalid", "details": {}, "code": 422
            })),
            "apimachinery NewGenericServerResponse(422, \"\", GroupResource{{}}, \"\", err, 0, false)"
        );
        let malformed = apply(PatchKind::Json, "Node", &obj, br#"{"op":"add"}"#);
        assert_eq!(malformed.err().map(|e| e.code), Some(400));
    }

    #[test]
    fn merge_patch_null_deletes_and_maps_merge() {
        let obj = json!({"metadata":{"labels":{"a":"1","b":"2"}}});
        let out = apply(
            PatchKind::Merge,
            "Node",
            &obj,
            br#"{"metadata":{"labels":{"a":null,"c":"3"}}}"#,
        );
        assert_eq!(
            out.ok(),
            Some(json!({"metadata":{"labels":{"b":"2","c":"3"}}}))
        );
    }

    #[test]
    fn a_test_for_null_passes_on_an_absent_member_and_fails_on_a_present_one() {
        let unlabelled = json!({"metadata": {"name": "n"}, "spec": {}});
        let patch = br#"[{"op":"test","path":"/metadata/labels","value":null},
                         {"op":"add","path":"/metadata/labels","value":{"a":"1"}}]"#;
        assert_eq!(
            apply(PatchKind::Json, "Node", &unlabelled, patch).ok(),
            Some(json!({"metadata": {"name": "n", "labels": {"a": "1"}}, "spec": {}}))
        );
        let labelled = json!({"metadata": {"name": "n", "labels": {"b": "2"}}});
        assert_eq!(
            apply(PatchKind::Json, "Node", &labelled, patch)
                .err()
                .map(|e| (e.code, e.reason().to_string())),
            Some((422, "Invalid".into()))
        );
        // The parent must exist, as in evanphx's `findObject`.
        let no_parent = br#"[{"op":"test","path":"/status/addresses","value":null}]"#;
        assert_eq!(
            apply(PatchKind::Json, "Node", &unlabelled, no_parent)
                .err()
                .map(|e| e.code),
            Some(422)
        );
    }
}
