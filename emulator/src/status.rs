//! `Status` error bodies, shaped exactly as kube-apiserver writes them, so that kube-rs and
//! kubectl parse our errors the way they parse the real server's.
//!
//! Every constructor mirrors one of k8s.io/apimachinery `pkg/api/errors/errors.go`
//! (`NewNotFound`, `NewAlreadyExists`, `NewConflict`, `NewBadRequest`, `NewForbidden`,
//! `NewUnauthorized`, `NewMethodNotSupported`, `NewResourceExpired`, `NewInternalError`,
//! `NewServiceUnavailable`, `NewGenericServerResponse`): same `reason`,
//! `code`, `message` and `details`. This module builds values; it does no I/O.

use serde_json::{Map, Value, json};

use crate::rbac::RequestAttributes;

/// An API error ready to be sent: the HTTP code and the `Status` body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code (also `Status.code`).
    pub code: u16,
    /// The full `Status` object.
    pub body: Value,
}

/// The group-qualified resource name the real server prints in messages:
/// `nodes`, `leases.coordination.k8s.io` (apimachinery `schema.GroupResource.String`).
pub fn qualified_resource(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

impl ApiError {
    /// A failure `Status` with the given parts; `details` fields that are empty are omitted,
    /// as Go's `omitempty` does.
    fn new(code: u16, reason: &str, message: String, details: Map<String, Value>) -> ApiError {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        });
        if let Some(obj) = body.as_object_mut() {
            if !details.is_empty() {
                obj.insert("details".into(), Value::Object(details));
            }
            if reason.is_empty() {
                obj.remove("reason");
            }
        }
        ApiError { code, body }
    }

    /// A `Status` from apimachinery `NewGenericServerResponse`, whose `details` is always
    /// set, so an empty one is written as `"details":{}`.
    fn generic(code: u16, reason: &str, message: &str) -> ApiError {
        let mut err = ApiError::new(code, reason, message.into(), Map::new());
        if let Some(obj) = err.body.as_object_mut() {
            obj.insert("details".into(), Value::Object(Map::new()));
        }
        err
    }

    /// The real server's `details`: `{name, group, kind}` where kind is the plural resource.
    fn details(group: &str, resource: &str, name: &str) -> Map<String, Value> {
        let mut d = Map::new();
        if !name.is_empty() {
            d.insert("name".into(), json!(name));
        }
        if !group.is_empty() {
            d.insert("group".into(), json!(group));
        }
        if !resource.is_empty() {
            d.insert("kind".into(), json!(resource));
        }
        d
    }

    /// 404 `NotFound`: `nodes "x" not found`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> ApiError {
        let qr = qualified_resource(group, resource);
        ApiError::new(
            404,
            "NotFound",
            format!("{qr} \"{name}\" not found"),
            Self::details(group, resource, name),
        )
    }

    /// 404 `NotFound` for a path no resource serves; the message of the real server's
    /// unmatched-route handler (apiserver `NewGenericServerResponse` for 404).
    pub fn path_not_found() -> ApiError {
        ApiError::generic(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// 409 `AlreadyExists`: `nodes "x" already exists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> ApiError {
        let qr = qualified_resource(group, resource);
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{qr} \"{name}\" already exists"),
            Self::details(group, resource, name),
        )
    }

    /// 409 `Conflict` with the optimistic-concurrency message of the registry store
    /// (apiserver `pkg/registry/generic/registry/store.go`, `OptimisticLockErrorMsg`).
    pub fn conflict_modified(group: &str, resource: &str, name: &str) -> ApiError {
        Self::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 `Conflict`: `Operation cannot be fulfilled on nodes "x": <why>`.
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> ApiError {
        let qr = qualified_resource(group, resource);
        ApiError::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {qr} \"{name}\": {why}"),
            Self::details(group, resource, name),
        )
    }

    /// 400 `BadRequest` with the message as given.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message.into(), Map::new())
    }

    /// 401 `Unauthorized`, as the authentication filter writes it (apiserver
    /// `pkg/endpoints/handlers/responsewriters/errors.go`, `Unauthorized`).
    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized".into(), Map::new())
    }

    /// 403 `Forbidden` as the authorization filter writes it (apiserver
    /// `pkg/endpoints/handlers/responsewriters/errors.go`, `forbiddenMessage`):
    /// `nodes "n1" is forbidden: User "u" cannot patch resource "nodes/status" in API group ""
    /// at the cluster scope`, or for a non-resource request (apimachinery `NewForbidden` with
    /// an empty resource) `forbidden: User "u" cannot get path "/foo"`.
    pub fn forbidden(user: &str, attrs: &RequestAttributes) -> ApiError {
        let RequestAttributes {
            verb,
            api_group: group,
            resource,
            subresource,
            namespace,
            name,
            path,
        } = *attrs;
        if resource.is_empty() {
            return ApiError::new(
                403,
                "Forbidden",
                format!("forbidden: User \"{user}\" cannot {verb} path \"{path}\""),
                Map::new(),
            );
        }
        let qr = qualified_resource(group, resource);
        let subject = if name.is_empty() {
            qr
        } else {
            format!("{qr} \"{name}\"")
        };
        let full_resource = if subresource.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}/{subresource}")
        };
        let scope = if namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{namespace}\"")
        };
        ApiError::new(
            403,
            "Forbidden",
            format!(
                "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{full_resource}\" in API group \"{group}\" {scope}"
            ),
            Self::details(group, resource, name),
        )
    }

    /// 403 `Forbidden` from admission rather than authorization (apimachinery
    /// `NewForbidden`): `namespaces "default" is forbidden: <why>`.
    pub fn forbidden_with_reason(group: &str, resource: &str, name: &str, why: &str) -> ApiError {
        let qr = qualified_resource(group, resource);
        ApiError::new(
            403,
            "Forbidden",
            format!("{qr} \"{name}\" is forbidden: {why}"),
            Self::details(group, resource, name),
        )
    }

    /// 405 `MethodNotAllowed` for a method no route of the path serves: go-restful's
    /// answer, which the apiserver's service error handler turns into
    /// `NewGenericServerResponse(405, ...)` (apiserver `pkg/server/handler.go`,
    /// `serviceErrorHandler`).
    pub fn method_not_allowed() -> ApiError {
        ApiError::generic(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    /// 415 `UnsupportedMediaType` for a PATCH whose Content-Type is not a patch type: the
    /// answer of go-restful's route selection (no route `Consumes` the type), which the
    /// apiserver's service error handler turns into `NewGenericServerResponse(415, ...)`
    /// (apiserver `pkg/server/handler.go`, `serviceErrorHandler`; message
    /// `415: Unsupported Media Type`). The emulator gives the same answer to server-side
    /// apply (`application/apply-patch+yaml`), which the real server accepts and the
    /// emulator refuses on purpose, so that any use of it by bare-ccm shows in tests
    /// (docs/testing.md, "Emulator differences").
    pub fn unsupported_media_type() -> ApiError {
        ApiError::generic(415, "UnsupportedMediaType", "415: Unsupported Media Type")
    }

    /// 413 `RequestEntityTooLarge` (apimachinery `NewRequestEntityTooLargeError`).
    pub fn request_entity_too_large(limit: usize) -> ApiError {
        ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
            Map::new(),
        )
    }

    /// 415 `UnsupportedMediaType` for a create/update body in a serialization the emulator
    /// does not decode, with the real server's list of accepted types (apiserver
    /// `pkg/endpoints/handlers/negotiation`, `NewUnsupportedMediaTypeError`). Protobuf is
    /// listed as the real server accepts it; the emulator does not decode it, so a
    /// protobuf body gets this answer and client-go clients retry as JSON.
    pub fn unsupported_body_media_type() -> ApiError {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf".into(),
            Map::new(),
        )
    }

    /// 410 `Expired` (apimachinery `NewResourceExpired`).
    pub fn expired(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message.into(), Map::new())
    }

    /// 422 `Invalid` from `NewGenericServerResponse`, which the patch handler uses when a
    /// JSON patch fails to apply (apiserver `pkg/endpoints/handlers/patch.go`, `applyJSPatch`).
    pub fn generic_unprocessable() -> ApiError {
        ApiError::generic(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
        )
    }

    /// 422 with a prepared `Invalid` body (built by `validation::invalid_status`).
    pub fn invalid(body: Value) -> ApiError {
        ApiError { code: 422, body }
    }

    /// 500 `InternalError`: `Internal error occurred: <why>`.
    pub fn internal(why: &str) -> ApiError {
        let mut details = Map::new();
        details.insert("causes".into(), json!([{ "message": why }]));
        ApiError::new(
            500,
            "InternalError",
            format!("Internal error occurred: {why}"),
            details,
        )
    }

    /// 500 with no reason: what the real server answers for an error that is not an API
    /// status (apiserver `pkg/endpoints/handlers/responsewriters/status.go`,
    /// `ErrorToAPIStatus`: code 500, reason Unknown, the error text as message).
    pub fn unknown_internal(message: &str) -> ApiError {
        ApiError::new(500, "", message.to_string(), Map::new())
    }

    /// 503 `ServiceUnavailable` (apimachinery `NewServiceUnavailable`).
    pub fn service_unavailable(why: &str) -> ApiError {
        ApiError::new(503, "ServiceUnavailable", why.to_string(), Map::new())
    }

    /// The `reason` field, for logs and accounting.
    #[cfg(test)]
    pub fn reason(&self) -> &str {
        self.body
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// The `Status` `Success` body the real server returns for deletes of resources whose
/// registry does not return the deleted object (apiserver
/// `pkg/registry/generic/registry/store.go`, `Delete` → `&metav1.Status{Status: Success}`).
pub fn success(group: &str, resource: &str, name: &str, uid: &str) -> Value {
    let mut details = ApiError::details(group, resource, name);
    if !uid.is_empty() {
        details.insert("uid".into(), json!(uid));
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_matches_the_real_server_shape() {
        let e = ApiError::not_found("", "nodes", "x");
        assert_eq!(
            e.body,
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                   "message":"nodes \"x\" not found","reason":"NotFound",
                   "details":{"name":"x","kind":"nodes"},"code":404})
        );
    }

    #[test]
    fn forbidden_names_user_verb_subresource_and_scope() {
        let e = ApiError::forbidden(
            "system:serviceaccount:kube-system:bare-ccm",
            &RequestAttributes {
                verb: "patch",
                resource: "nodes",
                subresource: "status",
                name: "n1",
                ..RequestAttributes::default()
            },
        );
        assert_eq!(
            e.body["message"],
            "nodes \"n1\" is forbidden: User \"system:serviceaccount:kube-system:bare-ccm\" cannot patch resource \"nodes/status\" in API group \"\" at the cluster scope"
        );
        let e = ApiError::forbidden(
            "u",
            &RequestAttributes {
                verb: "list",
                api_group: "coordination.k8s.io",
                resource: "leases",
                namespace: "kube-system",
                ..RequestAttributes::default()
            },
        );
        assert_eq!(
            e.body["message"],
            "leases.coordination.k8s.io is forbidden: User \"u\" cannot list resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"kube-system\""
        );
        let e = ApiError::forbidden(
            "u",
            &RequestAttributes {
                verb: "post",
                path: "/logs",
                ..RequestAttributes::default()
            },
        );
        assert_eq!(
            e.body,
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                   "message":"forbidden: User \"u\" cannot post path \"/logs\"",
                   "reason":"Forbidden","code":403})
        );
    }

    #[test]
    fn generic_responses_carry_empty_details_as_upstream() {
        for e in [
            ApiError::path_not_found(),
            ApiError::method_not_allowed(),
            ApiError::generic_unprocessable(),
        ] {
            assert_eq!(e.body["details"], json!({}), "{}", e.body);
        }
        assert_eq!(
            ApiError::method_not_allowed().body["message"],
            "the server does not allow this method on the requested resource"
        );
    }
}
