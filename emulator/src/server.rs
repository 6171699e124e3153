//! The emulator itself: listening socket, TLS, HTTP/1.1 and HTTP/2, and the per-request
//! pipeline of kube-apiserver's handler chain (apiserver `pkg/server/config.go`,
//! `DefaultBuildHandlerChain`): authentication (401), authorization (403), then the
//! resource handler. Fault injection and accounting hook in here; the resource semantics
//! live in `registry` and `watch`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::accounting::{Accounting, WriteRecord};
use crate::auth::TokenRegistry;
use crate::error::EmulatorError;
use crate::faults::{Faults, InjectedStatus};
use crate::rbac::{RbacPolicy, UserInfo};
use crate::registry::{self, Reply, WriteInput};
use crate::resources::{self, StoreKind};
use crate::reviews::{self, Review};
use crate::routes::{self, RequestInfo, ResourceRequest, Route};
use crate::status::ApiError;
use crate::store::Store;
use crate::{discovery, kubeconfig, tls, watch};

/// The largest request body accepted, as kube-apiserver's `MaxRequestBodyBytes` (3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// How often the refused-connections window is polled, to cut open connections when it
/// starts.
const REFUSAL_POLL: Duration = Duration::from_millis(20);

/// Pause after a failed `accept` before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// How the emulator is started.
#[derive(Clone)]
pub struct EmulatorOptions {
    /// Serve HTTPS with a generated CA (true, the default) or plain HTTP.
    pub tls: bool,
    /// How many watch events are retained for resuming watches (default 100 000); a watch
    /// from an older resourceVersion gets 410 Expired.
    pub watch_history: usize,
    /// The RBAC policy enforced from the start (None: every authenticated user may do
    /// everything).
    pub rbac: Option<RbacPolicy>,
    /// How often watches with `allowWatchBookmarks` receive a BOOKMARK (the real watch
    /// cache sends one about every minute).
    pub bookmark_interval: Duration,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        EmulatorOptions {
            tls: true,
            watch_history: 100_000,
            rbac: None,
            bookmark_interval: Duration::from_secs(60),
        }
    }
}

struct Shared {
    store: Store,
    tokens: TokenRegistry,
    faults: Faults,
    accounting: Accounting,
    rbac: RwLock<Option<Arc<RbacPolicy>>>,
    watch_cut: Mutex<CancellationToken>,
    conn_cut: Mutex<CancellationToken>,
    shutdown: CancellationToken,
    url: String,
    addr: SocketAddr,
    ca_pem: Option<String>,
    admin_token: String,
    bookmark_interval: Duration,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn token(slot: &Mutex<CancellationToken>) -> CancellationToken {
        slot.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn cut(slot: &Mutex<CancellationToken>) {
        let mut t = slot.lock().unwrap_or_else(|p| p.into_inner());
        t.cancel();
        *t = CancellationToken::new();
    }

    fn rbac(&self) -> Option<Arc<RbacPolicy>> {
        self.rbac.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A running API server emulator. Cloning gives another handle to the same server.
#[derive(Clone)]
pub struct Emulator {
    shared: Arc<Shared>,
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

impl Emulator {
    /// Starts the emulator on 127.0.0.1 with an ephemeral port, with the namespaces a
    /// fresh cluster has (`default`, `kube-system`, `kube-public`, `kube-node-lease`).
    pub async fn start(opts: EmulatorOptions) -> Result<Emulator, EmulatorError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(EmulatorError::Bind)?;
        let addr = listener.local_addr().map_err(EmulatorError::Bind)?;
        let server_tls = if opts.tls {
            Some(tls::generate()?)
        } else {
            None
        };
        let scheme = if opts.tls { "https" } else { "http" };
        let store = Store::new(opts.watch_history);
        let ns_def = resources::find("", "v1", "namespaces");
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            if let Some(def) = ns_def {
                registry::bootstrap(&store, def, "", registry::namespace_object(ns));
            }
        }
        let tokens = TokenRegistry::default();
        let admin_token = tokens.issue("admin", &["system:masters"]);
        let shared = Arc::new(Shared {
            store,
            tokens,
            faults: Faults::default(),
            accounting: Accounting::default(),
            rbac: RwLock::new(opts.rbac.map(Arc::new)),
            watch_cut: Mutex::new(CancellationToken::new()),
            conn_cut: Mutex::new(CancellationToken::new()),
            shutdown: CancellationToken::new(),
            url: format!("{scheme}://{addr}"),
            addr,
            ca_pem: server_tls.as_ref().map(|t| t.ca_pem.clone()),
            admin_token,
            bookmark_interval: opts.bookmark_interval,
            tasks: Mutex::new(Vec::new()),
        });
        let acceptor = server_tls.map(|t| tokio_rustls::TlsAcceptor::from(t.config));
        let accept = tokio::spawn(accept_loop(shared.clone(), listener, acceptor));
        let monitor = tokio::spawn(refusal_monitor(shared.clone()));
        if let Ok(mut tasks) = shared.tasks.lock() {
            tasks.push(accept);
            tasks.push(monitor);
        }
        Ok(Emulator { shared })
    }

    /// The base URL, `https://127.0.0.1:PORT` (or `http://`).
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    /// The CA certificate (PEM) that signed the serving certificate; None over plain HTTP.
    pub fn ca_pem(&self) -> Option<String> {
        self.shared.ca_pem.clone()
    }

    /// A token for user `admin` in `system:masters`, which bypasses RBAC.
    pub fn admin_token(&self) -> String {
        self.shared.admin_token.clone()
    }

    /// Issues a token for any user and groups (`system:authenticated` is added).
    pub fn issue_token(&self, user: &str, groups: &[&str]) -> String {
        self.shared.tokens.issue(user, groups)
    }

    /// Issues a ServiceAccount token: user `system:serviceaccount:NS:NAME`, groups
    /// `system:serviceaccounts`, `system:serviceaccounts:NS`, `system:authenticated`
    /// (apiserver `pkg/authentication/serviceaccount/util.go`).
    pub fn service_account_token(&self, namespace: &str, name: &str) -> String {
        let user = format!("system:serviceaccount:{namespace}:{name}");
        let ns_group = format!("system:serviceaccounts:{namespace}");
        self.issue_token(&user, &["system:serviceaccounts", &ns_group])
    }

    /// A kubeconfig for `token` with the server URL and embedded CA data.
    pub fn kubeconfig_yaml(&self, token: &str) -> String {
        kubeconfig::render(&self.shared.url, self.shared.ca_pem.as_deref(), token)
    }

    /// Writes [`Emulator::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, token: &str, path: &std::path::Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml(token))
    }

    /// A kube-rs client for `token`, built from the generated kubeconfig, the same path a
    /// real user's client takes.
    pub async fn client(&self, token: &str) -> Result<kube::Client, EmulatorError> {
        let kc = kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml(token))
            .map_err(|e| EmulatorError::Kubeconfig(e.to_string()))?;
        let config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| EmulatorError::Kubeconfig(e.to_string()))?;
        kube::Client::try_from(config).map_err(|source| EmulatorError::Client {
            url: self.shared.url.clone(),
            source,
        })
    }

    /// The fault switches of this server.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The request counters and write log of this server.
    pub fn accounting(&self) -> &Accounting {
        &self.shared.accounting
    }

    /// Enables (Some) or disables (None) RBAC enforcement from the next request on.
    pub fn set_rbac(&self, policy: Option<RbacPolicy>) {
        *self.shared.rbac.write().unwrap_or_else(|p| p.into_inner()) = policy.map(Arc::new);
    }

    /// Ends every open watch stream now; clients see their watch end and re-watch.
    pub fn cut_watches(&self) {
        Shared::cut(&self.shared.watch_cut);
    }

    /// Drops the retained event window (and list snapshots): watches resuming from any
    /// older resourceVersion get 410 Expired, as after an etcd compaction.
    pub fn expire_resource_versions(&self) {
        self.shared.store.expire_history();
    }

    /// Reads an object straight from the store, for assertions. `resource` is the plural
    /// (`nodes`, `leases`, `events`, `configmaps`, `namespaces`).
    pub fn get_object(&self, resource: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let def = resources::find_by_plural(resource)?;
        let key = (namespace.unwrap_or("").to_string(), name.to_string());
        self.shared.store.get(def.store, &key).map(|o| (*o).clone())
    }

    /// Every stored object of a resource (optionally in one namespace), in key order.
    pub fn list_objects(&self, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        let Some(def) = resources::find_by_plural(resource) else {
            return Vec::new();
        };
        let (_, items) = self.shared.store.list(def.store, namespace);
        items.into_iter().map(|o| (*o).clone()).collect()
    }

    /// The latest resourceVersion.
    pub fn current_resource_version(&self) -> u64 {
        self.shared.store.current_rv()
    }

    /// Stops accepting, closes every connection and watch, and waits for the server tasks.
    pub async fn shutdown(self) {
        self.shared.shutdown.cancel();
        self.cut_watches();
        Shared::cut(&self.shared.conn_cut);
        let tasks: Vec<JoinHandle<()>> = match self.shared.tasks.lock() {
            Ok(mut t) => t.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        for t in tasks {
            let _ = t.await;
        }
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((tcp, _peer)) = accepted else {
            // Out of file descriptors or a reset during accept: back off briefly instead of
            // spinning.
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            continue;
        };
        if shared.faults.refusing() {
            // A refused connection: closed before any byte is exchanged.
            drop(tcp);
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let cut = Shared::token(&shared.conn_cut);
            let shutdown = shared.shutdown.clone();
            match acceptor {
                Some(acceptor) => {
                    let tls = tokio::select! {
                        _ = cut.cancelled() => return,
                        t = acceptor.accept(tcp) => t,
                    };
                    if let Ok(stream) = tls {
                        serve_connection(shared, TokioIo::new(stream), cut, shutdown).await;
                    }
                }
                None => serve_connection(shared, TokioIo::new(tcp), cut, shutdown).await,
            }
        });
    }
}

async fn serve_connection<I>(
    shared: Arc<Shared>,
    io: I,
    cut: CancellationToken,
    shutdown: CancellationToken,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(shared, req).await) }
    });
    let conn = builder.serve_connection(io, service);
    tokio::select! {
        _ = conn => {}
        _ = cut.cancelled() => {}
        _ = shutdown.cancelled() => {}
    }
}

/// Cuts every open connection and watch when a refused-connections window starts, as a
/// real outage breaks keep-alive connections and watches too.
async fn refusal_monitor(shared: Arc<Shared>) {
    let mut was_refusing = false;
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tokio::time::sleep(REFUSAL_POLL) => {}
        }
        let refusing = shared.faults.refusing();
        if refusing && !was_refusing {
            Shared::cut(&shared.conn_cut);
            Shared::cut(&shared.watch_cut);
        }
        was_refusing = refusing;
    }
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).boxed_unsync()
}

fn response(code: u16, content_type: &'static str, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    let bytes = Bytes::from(serde_json::to_vec(value).unwrap_or_default());
    response(code, "application/json", full(bytes))
}

fn error_response(err: &ApiError) -> Response<Body> {
    json_response(err.code, &err.body)
}

/// The text API priority and fairness answers a rejected request with: not a `Status`
/// but Go's `http.Error` (`text/plain`, `X-Content-Type-Options: nosniff`, a trailing
/// newline) plus `Retry-After` (apiserver `pkg/server/filters/maxinflight.go`,
/// `tooManyRequests`, called by the `priority-and-fairness.go` filter).
fn too_many_requests(retry_after_secs: u64) -> Response<Body> {
    let mut resp = response(
        429,
        "text/plain; charset=utf-8",
        full(Bytes::from_static(
            b"Too many requests, please try again later.\n",
        )),
    );
    let headers = resp.headers_mut();
    headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
    headers.insert(
        hyper::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// One `Warning: 299 - "<text>"` header per warning, the text quoted and escaped as
/// apiserver `pkg/endpoints/handlers/responsewriters` / `pkg/warning` write it (RFC 7234
/// warn-code 299, agent `-`).
fn add_warnings(resp: &mut Response<Body>, warnings: &[String]) {
    for text in warnings {
        let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append(hyper::header::WARNING, v);
        }
    }
}

fn bearer_token(req: &Request<Incoming>) -> Option<&str> {
    let value = req
        .headers()
        .get(hyper::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
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
