//! The per-request pipeline of kube-apiserver's handler chain (apiserver
//! `pkg/server/config.go`, `DefaultBuildHandlerChain`): injected latency, the
//! unauthenticated health and version paths, authentication (401), authorization (403)
//! before routing, then discovery, the reviews or the resource handler; faults and
//! accounting hook in here, the resource semantics live in `registry` and `watch`.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Request, Response};

use super::Shared;
use super::response::{
    Body, add_warnings, error_response, full, json_response, response, too_many_requests,
};
use crate::accounting::WriteRecord;
use crate::discovery;
use crate::faults::InjectedStatus;
use crate::rbac::UserInfo;
use crate::registry::{self, Reply, WriteInput};
use crate::resources::StoreKind;
use crate::reviews::{self, Review};
use crate::routes::{self, RequestInfo, ResourceRequest, Route};
use crate::status::ApiError;
use crate::watch;

/// The largest request body accepted, as kube-apiserver's `MaxRequestBodyBytes` (3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

fn bearer_token(req: &Request<Incoming>) -> Option<&str> {
    let value = req
        .headers()
        .get(hyper::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub(super) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let latency = shared.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let route = routes::route(&method, &path, &query);
    // Health and version are readable without credentials (bootstrap ClusterRole
    // `system:public-info-viewer`, bound to unauthenticated users; kubernetes
    // `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`).
    match &route {
        Ok(Route::Health) => {
            return response(
                200,
                "text/plain; charset=utf-8",
                full(Bytes::from_static(b"ok")),
            );
        }
        Ok(Route::Version) => return json_response(200, &discovery::version()),
        _ => {}
    }
    let Some(user) = bearer_token(&req).and_then(|t| shared.tokens.authenticate(t)) else {
        return error_response(&ApiError::unauthorized());
    };
    // Authorization comes before routing, on what the URL alone says, as in the real
    // handler chain: a caller without the grant gets 403 even for a resource this server
    // does not serve, and only an authorised one learns that it is 404.
    let info = routes::request_info(&method, &path, &query);
    let denied = shared
        .rbac()
        .filter(|policy| !discovery_granted(&info) && !policy.authorize(&user, &info.attributes()))
        .map(|_| ApiError::forbidden(&user.name, &info.attributes()));
    if let Some(denied) = &denied
        && !matches!(route, Ok(Route::Resource(_) | Route::Review(_)))
    {
        return error_response(denied);
    }
    match route {
        Err(e) => error_response(&e),
        Ok(Route::PageNotFound) => response(
            404,
            "text/plain; charset=utf-8",
            full(Bytes::from_static(b"404 page not found\n")),
        ),
        Ok(Route::Health | Route::Version) => error_response(&ApiError::path_not_found()),
        Ok(Route::CoreVersions) => {
            json_response(200, &discovery::core_versions(&shared.addr.to_string()))
        }
        Ok(Route::GroupList) => json_response(200, &discovery::group_list()),
        Ok(Route::Group(g)) => json_response(200, &discovery::group(g)),
        Ok(Route::ResourceList { group, version }) => {
            json_response(200, &discovery::resource_list(group, version))
        }
        Ok(Route::Review(review)) => {
            let resp = match denied {
                Some(denied) => error_response(&denied),
                None => serve_review(&shared, review, req).await,
            };
            let code = resp.status().as_u16();
            shared
                .accounting
                .record_request("create", review.resource(), code);
            shared
                .accounting
                .record_attributed_request(&user.name, &info.attributes(), code);
            resp
        }
        Ok(Route::Resource(r)) => {
            let resp = match denied {
                Some(denied) => error_response(&denied),
                None => serve_resource(&shared, &user, &r, req, &query).await,
            };
            let code = resp.status().as_u16();
            shared
                .accounting
                .record_request(r.verb, &r.resource_path(), code);
            shared
                .accounting
                .record_attributed_request(&user.name, &info.attributes(), code);
            resp
        }
    }
}

/// The non-resource URLs every authenticated user may GET through the bootstrap
/// ClusterRole `system:discovery`, bound to `system:authenticated` (kubernetes
/// `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`), so that a loaded policy
/// need not repeat them. A trailing `*` matches any suffix.
const DISCOVERY_URLS: [&str; 11] = [
    "/livez",
    "/readyz",
    "/healthz",
    "/version",
    "/version/",
    "/openapi",
    "/openapi/*",
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
];

fn discovery_granted(info: &RequestInfo) -> bool {
    !info.is_resource_request
        && info.verb == "get"
        && DISCOVERY_URLS
            .iter()
            .any(|url| match url.strip_suffix('*') {
                Some(prefix) => info.path.starts_with(prefix),
                None => info.path == *url,
            })
}

/// Answers a TokenReview or SubjectAccessReview (201 Created; nothing is stored).
async fn serve_review(
    shared: &Arc<Shared>,
    review: Review,
    req: Request<Incoming>,
) -> Response<Body> {
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error_response(&ApiError::request_entity_too_large(MAX_BODY)),
    };
    let policy = shared.rbac();
    let discovery = |verb: &str, path: &str| {
        discovery_granted(&RequestInfo {
            verb: verb.to_string(),
            path: path.to_string(),
            ..RequestInfo::default()
        })
    };
    match reviews::answer(review, &body, &shared.tokens, policy.as_deref(), discovery) {
        Ok(object) => json_response(201, &object),
        Err(e) => error_response(&e),
    }
}

/// The answer of an injected failure: 429 as the flow-control filter writes it, the
/// others as the `Status` JSON the real server sends for them.
fn injected(status: InjectedStatus, r: &ResourceRequest) -> Response<Body> {
    let err = match status {
        InjectedStatus::TooManyRequests { retry_after_secs } => {
            return too_many_requests(retry_after_secs);
        }
        InjectedStatus::InternalError => ApiError::internal("injected fault: etcd request failed"),
        InjectedStatus::ServiceUnavailable => {
            ApiError::service_unavailable("the server is currently unable to handle the request")
        }
        InjectedStatus::Conflict => {
            ApiError::conflict_modified(r.def.group, r.def.resource, &r.name)
        }
    };
    error_response(&err)
}

async fn serve_resource(
    shared: &Arc<Shared>,
    user: &UserInfo,
    r: &ResourceRequest,
    req: Request<Incoming>,
    query: &str,
) -> Response<Body> {
    if let Some(status) =
        shared
            .faults
            .take_failure_for(&user.name, r.verb, &r.resource_path(), &r.name)
    {
        return injected(status, r);
    }
    let result = match r.verb {
        "watch" => {
            return match watch::WatchRequest::parse(r, query) {
                Ok(w) => {
                    let cut = Shared::token(&shared.watch_cut);
                    let body = watch::start(&shared.store, w, cut, shared.bookmark_interval);
                    response(200, "application/json", body)
                }
                Err(e) => error_response(&e),
            };
        }
        "get" | "list" => {
            let accept = req
                .headers()
                .get(hyper::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let table = registry::table::negotiate(accept, query);
            if r.verb == "get" {
                registry::get(&shared.store, r, table.as_ref())
            } else {
                registry::list(&shared.store, r, query, table.as_ref())
            }
        }
        _ => {
            let content_type = req
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return error_response(&ApiError::request_entity_too_large(MAX_BODY)),
            };
            let input = WriteInput {
                body: &body,
                content_type: &content_type,
                query,
            };
            match r.verb {
                "create" => registry::create(&shared.store, r, &input),
                "update" => registry::update(&shared.store, r, &input),
                "patch" => registry::patch(&shared.store, r, &input),
                "delete" => registry::delete(&shared.store, r, &input),
                _ => registry::delete_collection(&shared.store, r, &input),
            }
        }
    };
    match result {
        Ok(reply) => {
            record_changes(shared, user, r, &reply);
            let mut resp = response(reply.code, "application/json", full(reply.body));
            add_warnings(&mut resp, &reply.warnings);
            resp
        }
        Err(e) => error_response(&e),
    }
}

/// Logs every committed write (who, what, when) and feeds Node changes to the per-node
/// timestamps.
fn record_changes(shared: &Shared, user: &UserInfo, r: &ResourceRequest, reply: &Reply) {
    for change in &reply.changes {
        shared.accounting.record_write(WriteRecord {
            at: Instant::now(),
            wall: SystemTime::now(),
            user: user.name.clone(),
            verb: r.verb.to_string(),
            resource: r.def.resource.to_string(),
            subresource: r.subresource.clone(),
            namespace: change.namespace.clone(),
            name: change.name.clone(),
            code: reply.code,
            resource_version: change.rv.to_string(),
        });
        if r.def.store == StoreKind::Nodes {
            shared.accounting.observe_node(
                &change.name,
                change.before.as_deref(),
                change.after.as_deref(),
            );
        }
    }
}
