//! Turning a request line into what is being asked: a discovery or health path, or a
//! resource request with its Kubernetes verb, group, resource, subresource, namespace and
//! name. Mirrors apiserver `pkg/endpoints/request/requestinfo.go` (`RequestInfoFactory`):
//! GET on a name is `get`, on a collection `list` (or `watch` with `watch=true|1`), POST is
//! `create`, PUT `update`, PATCH `patch`, DELETE on a name `delete`, on a collection
//! `deletecollection`.

use crate::rbac::RequestAttributes;
use crate::resources::{self, ResourceDef};
use crate::reviews::Review;
use crate::status::ApiError;

/// A request for a resource.
#[derive(Debug, Clone)]
pub struct ResourceRequest {
    /// The resource served.
    pub def: &'static ResourceDef,
    /// The Kubernetes verb.
    pub verb: &'static str,
    /// The subresource (`status`) or "".
    pub subresource: String,
    /// The namespace from the path, "" for cluster-scoped or all-namespace requests.
    pub namespace: String,
    /// The object name, "" for collections.
    pub name: String,
}

impl ResourceRequest {
    /// `nodes` or `nodes/status`, the form RBAC, faults and accounting use.
    pub fn resource_path(&self) -> String {
        if self.subresource.is_empty() {
            self.def.resource.to_string()
        } else {
            format!("{}/{}", self.def.resource, self.subresource)
        }
    }
}

/// What a path addresses.
#[derive(Debug, Clone)]
pub enum Route {
    /// `/version`.
    Version,
    /// `/healthz`, `/readyz`, `/livez` and their sub-checks.
    Health,
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    GroupList,
    /// `/apis/{group}`.
    Group(&'static str),
    /// `/api/v1` or `/apis/{group}/{version}`.
    ResourceList {
        /// API group.
        group: &'static str,
        /// API version.
        version: &'static str,
    },
    /// A resource request.
    Resource(ResourceRequest),
    /// A TokenReview or SubjectAccessReview (create only, never stored).
    Review(Review),
    /// A path outside every API group the server serves (`/apis/example.com/...`, `/foo`):
    /// answered by the aggregator's and the mux's NotFound handler, Go's `http.NotFound`
    /// (`404 page not found`, text/plain), not by an API group's handler (kube-aggregator
    /// `pkg/apiserver/handler_apis.go`, apiserver `pkg/server/mux/pathrecorder.go`).
    PageNotFound,
}

/// A request as kube-apiserver's authorizer sees it, derived from the URL alone before any
/// routing (apiserver `pkg/endpoints/request/requestinfo.go`,
/// `RequestInfoFactory.NewRequestInfo`). The authorization filter runs before the resource
/// handler in `DefaultBuildHandlerChain` (apiserver `pkg/server/config.go`), so requests
/// for resources the server does not serve are authorised too: an unauthorised caller gets
/// 403, not 404.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Whether the path is under `/api/{version}/` or `/apis/{group}/{version}/`.
    pub is_resource_request: bool,
    /// The Kubernetes verb, or the lower-case HTTP method for non-resource requests.
    pub verb: String,
    /// The URL path.
    pub path: String,
    /// The API group, "" for core.
    pub api_group: String,
    /// The plural resource, "" for non-resource requests.
    pub resource: String,
    /// The subresource, or "".
    pub subresource: String,
    /// The namespace; for the Namespace objects themselves, their own name, as upstream
    /// parses `/api/v1/namespaces/{name}`.
    pub namespace: String,
    /// The object name, or "" for collections.
    pub name: String,
}

impl RequestInfo {
    /// The attributes RBAC evaluates.
    pub fn attributes(&self) -> RequestAttributes<'_> {
        if self.is_resource_request {
            RequestAttributes {
                verb: &self.verb,
                api_group: &self.api_group,
                resource: &self.resource,
                subresource: &self.subresource,
                namespace: &self.namespace,
                name: &self.name,
                path: "",
            }
        } else {
            RequestAttributes {
                verb: &self.verb,
                path: &self.path,
                ..RequestAttributes::default()
            }
        }
    }
}

/// Parses a request as `RequestInfoFactory` does, with the API prefixes `api` (no group)
/// and `apis`, the special verbs `watch` and `proxy` as path prefixes, and the Namespace
/// subresources `status` and `finalize`. The one request upstream refuses to parse
/// (`/api/v1/watch` with nothing after it) is treated as a non-resource request.
pub fn request_info(method: &str, path: &str, query: &str) -> RequestInfo {
    let non_resource = RequestInfo {
        verb: method.to_ascii_lowercase(),
        path: path.to_string(),
        ..RequestInfo::default()
    };
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (api_group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] if !rest.is_empty() => ("", rest),
        ["apis", group, _version, rest @ ..] if !rest.is_empty() => (*group, rest),
        _ => return non_resource,
    };
    let (special_verb, rest) = match rest {
        [verb @ ("watch" | "proxy"), rest @ ..] if !rest.is_empty() => (Some(*verb), rest),
        ["watch" | "proxy"] => return non_resource,
        _ => (None, rest),
    };
    let (namespace, parts) = match rest {
        ["namespaces", namespace, resource, tail @ ..]
            if !matches!(*resource, "status" | "finalize") =>
        {
            let mut parts = vec![*resource];
            parts.extend_from_slice(tail);
            (*namespace, parts)
        }
        ["namespaces", namespace, ..] => (*namespace, rest.to_vec()),
        _ => ("", rest.to_vec()),
    };
    let part = |i: usize| parts.get(i).copied().unwrap_or("").to_string();
    let subresource = if special_verb == Some("proxy") {
        String::new()
    } else {
        part(2)
    };
    let name = part(1);
    let verb = match (special_verb, method) {
        (Some(verb), _) => verb,
        (None, "POST") => "create",
        (None, "GET" | "HEAD") if name.is_empty() && is_watch(query) => "watch",
        (None, "GET" | "HEAD") if name.is_empty() => "list",
        (None, "GET" | "HEAD") => "get",
        (None, "PUT") => "update",
        (None, "PATCH") => "patch",
        (None, "DELETE") if name.is_empty() => "deletecollection",
        (None, "DELETE") => "delete",
        (None, _) => "",
    };
    RequestInfo {
        is_resource_request: true,
        verb: verb.to_string(),
        path: path.to_string(),
        api_group: api_group.to_string(),
        resource: part(0),
        subresource,
        namespace: namespace.to_string(),
        name,
    }
}

/// Whether the query asks for a watch (`watch=true` or `watch=1`, as apimachinery parses
/// booleans in `ListOptions`).
pub fn is_watch(query: &str) -> bool {
    query_param(query, "watch").is_some_and(|v| v == "true" || v == "1")
}

/// The decoded value of a query parameter.
pub fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

/// Decodes `%XX` escapes and `+` (form encoding) in a query component.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Routes a request; Err is the Status to answer (404 for unknown paths, 405 for a method
/// the addressed resource does not support).
pub fn route(method: &str, path: &str, query: &str) -> Result<Route, ApiError> {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segments.as_slice() {
        ["version"] => Ok(Route::Version),
        [h, ..] if matches!(*h, "healthz" | "readyz" | "livez") => Ok(Route::Health),
        ["api"] => Ok(Route::CoreVersions),
        ["apis"] => Ok(Route::GroupList),
        ["api", "v1"] => Ok(Route::ResourceList {
            group: "",
            version: "v1",
        }),
        ["apis", "authentication.k8s.io", "v1", "tokenreviews"] => {
            review_route(method, Review::Token)
        }
        ["apis", "authorization.k8s.io", "v1", "subjectaccessreviews"] => {
            review_route(method, Review::SubjectAccess)
        }
        ["apis", group, ..] if !resources::groups().iter().any(|(g, _)| g == group) => {
            Ok(Route::PageNotFound)
        }
        ["apis", group] => resources::groups()
            .into_iter()
            .find(|(g, _)| g == group)
            .map(|(g, _)| Route::Group(g))
            .ok_or_else(ApiError::path_not_found),
        ["apis", group, version] => resources::groups()
            .into_iter()
            .find(|(g, v)| g == group && v == version)
            .map(|(group, version)| Route::ResourceList { group, version })
            .ok_or_else(ApiError::path_not_found),
        ["api", "v1", rest @ ..] => resource_route(method, "", "v1", rest, query),
        ["apis", group, version, rest @ ..] => resource_route(method, group, version, rest, query),
        ["api", ..] => Err(ApiError::path_not_found()),
        _ => Ok(Route::PageNotFound),
    }
}

/// The reviews take only POST (kube-apiserver registers them with `create` alone).
fn review_route(method: &str, review: Review) -> Result<Route, ApiError> {
    if method == "POST" {
        Ok(Route::Review(review))
    } else {
        Err(ApiError::method_not_allowed())
    }
}

fn resource_route(
    method: &str,
    group: &str,
    version: &str,
    rest: &[&str],
    query: &str,
) -> Result<Route, ApiError> {
    // `namespaces/{ns}/{resource}/...` addresses a namespaced resource; `namespaces` alone or
    // `namespaces/{name}[/sub]` addresses the Namespace objects themselves.
    let (namespace, rest) = match rest {
        ["namespaces", ns, resource, tail @ ..] if !resource.is_empty() => {
            let def =
                resources::find(group, version, resource).ok_or_else(ApiError::path_not_found)?;
            if !def.namespaced {
                return Err(ApiError::path_not_found());
            }
            let mut parts = vec![*resource];
            parts.extend_from_slice(tail);
            ((*ns).to_string(), parts)
        }
        _ => (String::new(), rest.to_vec()),
    };
    let (resource, name, subresource) = match rest.as_slice() {
        [resource] => (*resource, "", ""),
        [resource, name] => (*resource, *name, ""),
        [resource, name, sub] => (*resource, *name, *sub),
        _ => return Err(ApiError::path_not_found()),
    };
    let def = resources::find(group, version, resource).ok_or_else(ApiError::path_not_found)?;
    if !subresource.is_empty() && !def.subresources.contains(&subresource) {
        return Err(ApiError::path_not_found());
    }
    // A namespaced resource addressed without a namespace serves only the all-namespace
    // list and watch; a name there is a 404 as in the real server.
    if def.namespaced && namespace.is_empty() && !name.is_empty() {
        return Err(ApiError::path_not_found());
    }
    let verb = match (method, name.is_empty()) {
        ("GET", false) => "get",
        ("GET", true) if is_watch(query) => "watch",
        ("GET", true) => "list",
        ("POST", true) if subresource.is_empty() => "create",
        ("PUT", false) => "update",
        ("PATCH", false) => "patch",
        ("DELETE", false) if subresource.is_empty() => "delete",
        ("DELETE", true) if def.verbs().contains(&"deletecollection") => "deletecollection",
        _ => {
            return Err(ApiError::method_not_allowed());
        }
    };
    if def.namespaced && namespace.is_empty() && !matches!(verb, "list" | "watch") {
        return Err(ApiError::method_not_allowed());
    }
    Ok(Route::Resource(ResourceRequest {
        def,
        verb,
        subresource: subresource.to_string(),
        namespace,
        name: name.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(method: &str, path: &str, query: &str) -> ResourceRequest {
        match route(method, path, query) {
            Ok(Route::Resource(r)) => r,
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    #[test]
    fn verbs_follow_the_request_info_factory() {
        assert_eq!(res("GET", "/api/v1/nodes", "").verb, "list");
        assert_eq!(res("GET", "/api/v1/nodes", "watch=1").verb, "watch");
        assert_eq!(res("GET", "/api/v1/nodes", "watch=true").verb, "watch");
        assert_eq!(res("GET", "/api/v1/nodes/n1", "").verb, "get");
        assert_eq!(res("POST", "/api/v1/nodes", "").verb, "create");
        assert_eq!(res("PUT", "/api/v1/nodes/n1", "").verb, "update");
        let s = res("PATCH", "/api/v1/nodes/n1/status", "");
        assert_eq!(
            (s.verb, s.resource_path()),
            ("patch", "nodes/status".to_string())
        );
        assert_eq!(res("DELETE", "/api/v1/nodes/n1", "").verb, "delete");
        assert_eq!(res("DELETE", "/api/v1/nodes", "").verb, "deletecollection");
    }

    #[test]
    fn namespaced_paths_carry_namespace_and_group() {
        let l = res(
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/bare-ccm",
            "",
        );
        assert_eq!(
            (l.def.group, l.namespace.as_str(), l.name.as_str()),
            ("coordination.k8s.io", "kube-system", "bare-ccm")
        );
        let all = res("GET", "/apis/events.k8s.io/v1/events", "");
        assert_eq!((all.verb, all.namespace.as_str()), ("list", ""));
        let ns = res("GET", "/api/v1/namespaces/default", "");
        assert_eq!(
            (ns.def.resource, ns.name.as_str()),
            ("namespaces", "default")
        );
    }

    #[test]
    fn request_info_parses_any_resource_path_like_the_request_info_factory() {
        let info = |method, path, query| request_info(method, path, query);
        let services = info("GET", "/api/v1/namespaces/default/services", "");
        assert_eq!(
            services,
            RequestInfo {
                is_resource_request: true,
                verb: "list".into(),
                path: "/api/v1/namespaces/default/services".into(),
                resource: "services".into(),
                namespace: "default".into(),
                ..RequestInfo::default()
            }
        );
        let widget = info("PATCH", "/apis/example.com/v1/widgets/w1/scale", "");
        assert_eq!(
            (
                widget.verb.as_str(),
                widget.api_group.as_str(),
                widget.resource.as_str(),
                widget.name.as_str(),
                widget.subresource.as_str()
            ),
            ("patch", "example.com", "widgets", "w1", "scale")
        );
        assert_eq!(info("GET", "/api/v1/nodes", "watch=1").verb, "watch");
        assert_eq!(info("DELETE", "/api/v1/nodes", "").verb, "deletecollection");
        assert_eq!(info("POST", "/api/v1/nodes/n1", "").verb, "create");
        assert_eq!(info("HEAD", "/api/v1/nodes/n1", "").verb, "get");
        assert_eq!(info("OPTIONS", "/api/v1/nodes/n1", "").verb, "");
        // The special verbs ride in the path; proxy takes no subresource.
        let watch = info("GET", "/api/v1/watch/namespaces/ns/pods/p", "");
        assert_eq!(
            (
                watch.verb.as_str(),
                watch.namespace.as_str(),
                watch.resource.as_str(),
                watch.name.as_str()
            ),
            ("watch", "ns", "pods", "p")
        );
        let proxy = info("GET", "/api/v1/proxy/nodes/n1/metrics", "");
        assert_eq!(
            (proxy.verb.as_str(), proxy.subresource.as_str()),
            ("proxy", "")
        );
    }

    #[test]
    fn a_namespace_is_its_own_namespace_to_the_authorizer() {
        let ns = request_info("GET", "/api/v1/namespaces/kube-system", "");
        assert_eq!(
            (
                ns.resource.as_str(),
                ns.name.as_str(),
                ns.namespace.as_str()
            ),
            ("namespaces", "kube-system", "kube-system")
        );
        let status = request_info("PUT", "/api/v1/namespaces/kube-system/status", "");
        assert_eq!(
            (
                status.resource.as_str(),
                status.name.as_str(),
                status.subresource.as_str()
            ),
            ("namespaces", "kube-system", "status")
        );
        let all = request_info("GET", "/api/v1/namespaces", "");
        assert_eq!((all.verb.as_str(), all.namespace.as_str()), ("list", ""));
    }

    #[test]
    fn discovery_and_other_short_paths_are_non_resource_requests() {
        for path in [
            "/",
            "/api",
            "/api/v1",
            "/apis/apps/v1",
            "/logs/kubelet.log",
            "/api/v1/watch",
        ] {
            let info = request_info("GET", path, "");
            assert!(!info.is_resource_request, "{path}");
            assert_eq!((info.verb.as_str(), info.path.as_str()), ("get", path));
            assert_eq!(info.attributes().resource, "");
            assert_eq!(info.attributes().path, path);
        }
        assert_eq!(request_info("POST", "/apis", "").verb, "post");
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        assert_eq!(
            route("GET", "/api/v1/services", "").err().map(|e| e.code),
            Some(404)
        );
        assert_eq!(
            route("GET", "/api/v1/nodes/n1/proxy", "")
                .err()
                .map(|e| e.code),
            Some(404)
        );
        assert_eq!(
            route("POST", "/api/v1/nodes/n1", "").err().map(|e| e.code),
            Some(405)
        );
        assert_eq!(
            route("PUT", "/api/v1/nodes", "").err().map(|e| e.code),
            Some(405)
        );
        assert_eq!(
            route("DELETE", "/api/v1/namespaces", "")
                .err()
                .map(|e| e.code),
            Some(405)
        );
    }

    #[test]
    fn paths_outside_the_served_groups_are_the_plain_not_found_page() {
        for path in ["/apis/example.com", "/apis/example.com/v1/widgets", "/foo"] {
            assert!(
                matches!(route("GET", path, ""), Ok(Route::PageNotFound)),
                "{path}"
            );
        }
        // A known group without that version, or the core group, answers a Status.
        for path in ["/apis/apps/v2", "/api/v2", "/api/v1/widgets"] {
            assert_eq!(route("GET", path, "").err().map(|e| e.code), Some(404));
        }
    }

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(
            query_param("labelSelector=a%3Db%2Cc+in+(x)&limit=5", "labelSelector").as_deref(),
            Some("a=b,c in (x)")
        );
        assert_eq!(query_param("limit=5", "limit").as_deref(), Some("5"));
        assert_eq!(query_param("limit=5", "continue"), None);
    }
}
