//! The emulator itself: listening socket, TLS, HTTP/1.1 and HTTP/2, and the per-request
//! pipeline of kube-apiserver's handler chain. This file owns the [`Emulator`] handle (how
//! tests start it, reach its tokens, kubeconfigs, faults and accounting, and read its store
//! directly) and the state every connection and request shares.
//!
//! `connection` accepts and serves connections; `handler` answers one request as the
//! handler chain does (authentication, authorization, then the resource handler, with
//! fault injection and accounting hooked in; the resource semantics live in `registry` and
//! `watch`); `response` writes the answer's shapes.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::accounting::Accounting;
use crate::auth::TokenRegistry;
use crate::error::EmulatorError;
use crate::faults::Faults;
use crate::rbac::RbacPolicy;
use crate::store::Store;
use crate::sync::{lock, read, write};
use crate::{kubeconfig, registry, resources, tls};
use connection::{accept_loop, refusal_monitor};

mod connection;
mod handler;
mod response;

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
        lock(slot).clone()
    }

    fn cut(slot: &Mutex<CancellationToken>) {
        let mut t = lock(slot);
        t.cancel();
        *t = CancellationToken::new();
    }

    fn rbac(&self) -> Option<Arc<RbacPolicy>> {
        read(&self.rbac).clone()
    }
}

/// A running API server emulator. Cloning gives another handle to the same server.
#[derive(Clone)]
pub struct Emulator {
    shared: Arc<Shared>,
}

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
        *write(&self.shared.rbac) = policy.map(Arc::new);
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

    /// The `spec.holderIdentity` of Lease `namespace/name` as stored (`None` without the
    /// Lease or the field): how `bare-ccm sim` and the e2e tests see who leads.
    pub fn lease_holder(&self, namespace: &str, name: &str) -> Option<String> {
        self.get_object("leases", Some(namespace), name)?
            .pointer("/spec/holderIdentity")?
            .as_str()
            .map(str::to_string)
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
