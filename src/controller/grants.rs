//! What a 403 says is missing: the user, verb, resource and group of the API server's
//! Forbidden message, turned into RBAC advice for logs and Events.

/// What a 403 says is missing, parsed from the API server's Status message (apiserver
/// `pkg/endpoints/handlers/responsewriters/errors.go`, `forbiddenMessage`):
/// `nodes "x" is forbidden: User "U" cannot patch resource "nodes/status" in API group ""
/// at the cluster scope`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingGrant {
    pub user: String,
    pub verb: String,
    /// With its subresource, as RBAC writes it (`nodes/status`).
    pub resource: String,
    pub group: String,
    /// `at the cluster scope` or `in the namespace "NS"`.
    pub scope: String,
}

/// Parses a 403 message; `None` when it is not shaped like the API server's.
pub fn missing_grant(message: &str) -> Option<MissingGrant> {
    let (_, rest) = message.split_once("User \"")?;
    let (user, rest) = rest.split_once("\" cannot ")?;
    let (verb, rest) = rest.split_once(" resource \"")?;
    let (resource, rest) = rest.split_once("\" in API group \"")?;
    let (group, scope) = rest.split_once('"')?;
    Some(MissingGrant {
        user: user.to_string(),
        verb: verb.to_string(),
        resource: resource.to_string(),
        group: group.to_string(),
        scope: scope.trim().to_string(),
    })
}

/// RBAC advice for a failed request: the missing grant of a 403, nothing for any other
/// failure (a refused connection or a timeout is no RBAC problem).
pub fn forbidden_hint(error: &kube::Error) -> Option<String> {
    let kube::Error::Api(status) = error else {
        return None;
    };
    if status.code != 403 {
        return None;
    }
    Some(match missing_grant(&status.message) {
        Some(g) => format!(
            "{} may not {} {} in API group {:?} {}: check bare-ccm's RBAC",
            g.user, g.verb, g.resource, g.group, g.scope
        ),
        None => "forbidden: check bare-ccm's RBAC".to_string(),
    })
}
