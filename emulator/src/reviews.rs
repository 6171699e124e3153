//! TokenReview (authentication.k8s.io/v1) and SubjectAccessReview (authorization.k8s.io/v1):
//! the two create-only APIs a component uses to delegate the authentication and
//! authorization of its own endpoints to the API server (k8s.io/apiserver's delegating
//! authenticator and authorizer). Like kube-apiserver (kubernetes `pkg/registry/
//! authentication/tokenreview/storage.go`, `pkg/registry/authorization/subjectaccessreview/
//! rest.go`), the emulator answers them from its own token registry and RBAC policy and
//! stores nothing. They are not listed in discovery.

use serde_json::{Value, json};

use crate::auth::TokenRegistry;
use crate::rbac::{RbacPolicy, RequestAttributes, UserInfo};
use crate::status::ApiError;

/// Which review a POST asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Review {
    /// `POST /apis/authentication.k8s.io/v1/tokenreviews`.
    Token,
    /// `POST /apis/authorization.k8s.io/v1/subjectaccessreviews`.
    SubjectAccess,
}

impl Review {
    /// The API group, for authorization and accounting.
    pub fn group(self) -> &'static str {
        match self {
            Review::Token => "authentication.k8s.io",
            Review::SubjectAccess => "authorization.k8s.io",
        }
    }

    /// The plural resource.
    pub fn resource(self) -> &'static str {
        match self {
            Review::Token => "tokenreviews",
            Review::SubjectAccess => "subjectaccessreviews",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Review::Token => "TokenReview",
            Review::SubjectAccess => "SubjectAccessReview",
        }
    }
}

/// Answers a review: the object as sent, with its `status` filled in (201 Created, as the
/// real server answers).
pub fn answer(
    review: Review,
    body: &[u8],
    tokens: &TokenRegistry,
    policy: Option<&RbacPolicy>,
    discovery_granted: impl Fn(&str, &str) -> bool,
) -> Result<Value, ApiError> {
    let mut object: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not a {}: {e}", review.kind())))?;
    let expected = format!("{}/v1", review.group());
    if object.get("kind").and_then(Value::as_str) != Some(review.kind())
        || object.get("apiVersion").and_then(Value::as_str) != Some(expected.as_str())
    {
        return Err(ApiError::bad_request(format!(
            "expected a {} of {expected}",
            review.kind()
        )));
    }
    let spec = object.get("spec").cloned().unwrap_or(Value::Null);
    let status = match review {
        Review::Token => token_status(&spec, tokens)?,
        Review::SubjectAccess => access_status(&spec, policy, discovery_granted)?,
    };
    if let Some(map) = object.as_object_mut() {
        map.insert("status".into(), status);
        map.entry("metadata").or_insert_with(|| json!({}));
    }
    Ok(object)
}

/// `status` of a TokenReview: the user the token stands for, or `authenticated` absent
/// and an `error`, as the real server answers for a token it does not accept.
fn token_status(spec: &Value, tokens: &TokenRegistry) -> Result<Value, ApiError> {
    let token = spec.get("token").and_then(Value::as_str).unwrap_or("");
    if token.is_empty() {
        return Err(invalid(Review::Token, "spec.token", "Required value"));
    }
    Ok(match tokens.authenticate(token) {
        Some(user) => json!({
            "authenticated": true,
            "user": {"username": user.name, "groups": user.groups},
        }),
        None => json!({"user": {}, "error": "[invalid bearer token, token lookup failed]"}),
    })
}

/// `status` of a SubjectAccessReview: the RBAC policy's decision for the user and groups
/// of the spec (the `system:masters` group and the bootstrap discovery URLs included).
fn access_status(
    spec: &Value,
    policy: Option<&RbacPolicy>,
    discovery_granted: impl Fn(&str, &str) -> bool,
) -> Result<Value, ApiError> {
    let user = UserInfo {
        name: spec
            .get("user")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        groups: spec
            .get("groups")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
    };
    if user.name.is_empty() && user.groups.is_empty() {
        return Err(invalid(
            Review::SubjectAccess,
            "spec.user",
            "at least one of user or group must be specified",
        ));
    }
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    let (resource, non_resource) = (
        spec.get("resourceAttributes"),
        spec.get("nonResourceAttributes"),
    );
    let allowed = match (resource, non_resource) {
        (Some(r), None) => {
            let (verb, group, res, sub, ns, name) = (
                text(r, "verb"),
                text(r, "group"),
                text(r, "resource"),
                text(r, "subresource"),
                text(r, "namespace"),
                text(r, "name"),
            );
            let attrs = RequestAttributes {
                verb: &verb,
                api_group: &group,
                resource: &res,
                subresource: &sub,
                namespace: &ns,
                name: &name,
                path: "",
            };
            policy.is_none_or(|p| p.authorize(&user, &attrs))
        }
        (None, Some(n)) => {
            let (verb, path) = (text(n, "verb"), text(n, "path"));
            let attrs = RequestAttributes {
                verb: &verb,
                path: &path,
                ..RequestAttributes::default()
            };
            let authenticated = user.groups.iter().any(|g| g == "system:authenticated");
            policy.is_none_or(|p| p.authorize(&user, &attrs))
                || (authenticated && discovery_granted(&verb, &path))
        }
        _ => {
            return Err(invalid(
                Review::SubjectAccess,
                "spec.resourceAttributes",
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            ));
        }
    };
    Ok(if allowed {
        json!({"allowed": true, "reason": "RBAC: allowed by the emulator's policy"})
    } else {
        json!({"allowed": false})
    })
}

/// 422 `Invalid`, as the real server's validation of the review answers.
fn invalid(review: Review, field: &str, message: &str) -> ApiError {
    let (kind, group) = (review.kind(), review.group());
    ApiError::invalid(json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!("{kind}.{group} \"\" is invalid: {field}: Invalid value: {message}"),
        "reason": "Invalid",
        "details": {"group": group, "kind": kind, "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}]},
        "code": 422,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: metrics-reader}
rules:
- nonResourceURLs: ["/metrics"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: metrics-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: metrics-reader}
subjects:
- {kind: User, name: scraper}
"#;

    fn never(_: &str, _: &str) -> bool {
        false
    }

    fn sar(user: &str, path: &str) -> Vec<u8> {
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": ["system:authenticated"],
                     "nonResourceAttributes": {"path": path, "verb": "get"}},
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_token_review_names_the_tokens_user_or_refuses_it() {
        let tokens = TokenRegistry::default();
        let token = tokens.issue("scraper", &["monitoring"]);
        let review = |t: &str| {
            let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                              "spec": {"token": t}});
            answer(
                Review::Token,
                body.to_string().as_bytes(),
                &tokens,
                None,
                never,
            )
            .unwrap()
        };
        let accepted = review(&token);
        assert_eq!(accepted["status"]["authenticated"], true);
        assert_eq!(accepted["status"]["user"]["username"], "scraper");
        assert_eq!(
            accepted["status"]["user"]["groups"],
            json!(["monitoring", "system:authenticated"])
        );
        let refused = review("forged");
        assert_eq!(refused["status"]["authenticated"], Value::Null);
        assert!(refused["status"]["error"].is_string());
    }

    #[test]
    fn an_access_review_applies_the_rbac_policy_to_non_resource_urls() {
        let policy = RbacPolicy::from_yaml(POLICY).unwrap();
        let tokens = TokenRegistry::default();
        let allowed = |user: &str, path: &str| {
            answer(
                Review::SubjectAccess,
                &sar(user, path),
                &tokens,
                Some(&policy),
                never,
            )
            .unwrap()["status"]["allowed"]
                == true
        };
        assert!(allowed("scraper", "/metrics"));
        assert!(!allowed("someone", "/metrics"));
        assert!(!allowed("scraper", "/other"));
        let open = answer(
            Review::SubjectAccess,
            &sar("x", "/healthz"),
            &tokens,
            Some(&policy),
            |v, p| v == "get" && p == "/healthz",
        )
        .unwrap();
        assert_eq!(open["status"]["allowed"], true, "bootstrap discovery URLs");
    }

    #[test]
    fn a_review_without_a_subject_or_attributes_is_invalid() {
        let tokens = TokenRegistry::default();
        let access_error = |spec: Value| {
            let body = json!({"apiVersion": "authorization.k8s.io/v1",
                              "kind": "SubjectAccessReview", "spec": spec});
            let answer = answer(
                Review::SubjectAccess,
                body.to_string().as_bytes(),
                &tokens,
                None,
                never,
            );
            answer.unwrap_err().code
        };
        let no_subject = json!({"nonResourceAttributes": {"path": "/metrics", "verb": "get"}});
        assert_eq!(access_error(no_subject), 422);
        assert_eq!(access_error(json!({"user": "u"})), 422);
        let err = answer(Review::Token, b"{}", &tokens, None, never).unwrap_err();
        assert_eq!(err.code, 400);
    }
}
