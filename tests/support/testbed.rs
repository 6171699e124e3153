//! The real control plane for end-to-end tests: `tests/testbed` (docs/testing.md) runs
//! kube-apiserver, etcd, kube-controller-manager, kube-scheduler and kubemark hollow
//! kubelets built from the Kubernetes Go modules. A test binary shares one test bed
//! ([`Testbed::shared`]) or starts its own; every test holds [`exclusive`] while it runs,
//! so that one bare-ccm at a time writes to a cluster and the two cores are not shared by
//! two control planes.
//!
//! There is no fallback: when Go is missing or the test bed does not come up, the test
//! fails and says why.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The repository root.
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Builds the test bed once per test process (`scripts/testbed.sh build`, a no-op when
/// the Go build cache is warm) and returns the program's path.
pub fn testbed_binary() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Command::new(format!("{ROOT}/scripts/testbed.sh"))
            .arg("build")
            .output()
            .unwrap_or_else(|e| panic!("cannot run scripts/testbed.sh build: {e}"));
        assert!(
            out.status.success(),
            "scripts/testbed.sh build failed (the real control plane needs Go 1.26+ and the Go module proxy):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(format!("{ROOT}/target/testbed/testbed"))
    })
}

/// A node the test bed started, as `testbed join` reports it.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Joined {
    pub name: String,
    pub internal_i_ps: Vec<String>,
    #[serde(default)]
    pub external_i_ps: Vec<String>,
    #[serde(default, rename = "kubeletNodeIP")]
    pub kubelet_node_ip: String,
    pub group: String,
    /// On eth1 of the node's own namespace (`join --own-netns`); no k3s flag names them.
    #[serde(default)]
    pub public_i_ps: Vec<String>,
    /// The node's own network namespace (`join --own-netns`), for `ip netns exec`.
    #[serde(default)]
    pub netns: String,
}

/// One running `testbed up`, stopped (and cleaned up) when dropped or when this test
/// process ends.
pub struct Testbed {
    child: Child,
    state: tempfile::TempDir,
    kubeconfig: PathBuf,
}

/// Serialises the tests of a binary that use a test bed.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// The start of a scenario on the shared test bed: the machine to itself (keep the guard),
/// the bed started with `args`, an admin client and a scratch directory.
pub async fn shared_scenario(
    args: &[&str],
) -> (
    tokio::sync::MutexGuard<'static, ()>,
    &'static Testbed,
    kube::Client,
    tempfile::TempDir,
) {
    let serial = exclusive().await;
    let bed = Testbed::shared(args);
    let client = bed.client().await;
    (serial, bed, client, tempfile::tempdir().unwrap())
}

/// How many Nodes carry the uninitialized taint now (0 when the list fails).
pub async fn tainted_nodes(client: &kube::Client) -> usize {
    let nodes = get_json(client, "/api/v1/nodes").await.unwrap_or_default();
    nodes["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| super::has_taint(n, super::TAINT))
        .count()
}

impl Testbed {
    /// The test bed of this test process, started on first use with `args` (later calls
    /// get the same one, whatever they pass).
    pub fn shared(args: &[&str]) -> &'static Testbed {
        static SHARED: OnceLock<Testbed> = OnceLock::new();
        SHARED.get_or_init(|| Testbed::start(args))
    }

    /// Starts a test bed and waits until it is ready (its first nodes may still be
    /// registering).
    pub fn start(args: &[&str]) -> Testbed {
        let bin = testbed_binary();
        let state = tempfile::Builder::new()
            .prefix("bare-ccm-testbed-")
            .tempdir()
            .expect("a temporary directory");
        let kubeconfig = state.path().join("admin.kubeconfig");
        let log = std::fs::File::create(state.path().join("up.log")).expect("up.log");
        let child = Command::new(bin)
            .arg("up")
            .arg("--state-dir")
            .arg(state.path().join("state"))
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .args(["--exit-with-pid", &std::process::id().to_string()])
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut bed = Testbed {
            child,
            state,
            kubeconfig,
        };
        let ready = bed.state_dir().join("ready.json");
        let start = Instant::now();
        while !ready.exists() {
            if let Ok(Some(status)) = bed.child.try_wait() {
                panic!("testbed up exited ({status}):\n{}", bed.up_log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "testbed not ready after 300 s:\n{}",
                bed.up_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        bed
    }

    /// The test bed's state directory (logs, audit log, kubeconfigs).
    pub fn state_dir(&self) -> PathBuf {
        self.state.path().join("state")
    }

    /// The admin kubeconfig (group system:masters).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// What `testbed up` printed (its progress and errors).
    pub fn up_log(&self) -> String {
        std::fs::read_to_string(self.state.path().join("up.log")).unwrap_or_default()
    }

    /// The log of one component (`apiserver`, `controller-manager`, a hollow group, ...).
    pub fn component_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.state_dir().join("logs").join(format!("{name}.log")))
            .unwrap_or_default()
    }

    fn control(&self, args: &[&str]) -> String {
        let out = Command::new(testbed_binary())
            .args(args)
            .arg("--state-dir")
            .arg(self.state_dir())
            .output()
            .expect("testbed control command");
        assert!(
            out.status.success(),
            "testbed {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `nodes` more hollow kubelets (`testbed join` flags in `flags`).
    pub fn join(&self, nodes: usize, flags: &[&str]) -> Vec<Joined> {
        let n = nodes.to_string();
        let mut args = vec!["join", "--nodes", n.as_str()];
        args.extend_from_slice(flags);
        let out = self.control(&args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("testbed join answered {out:?}: {e}"))
    }

    /// Stops the hollow kubelets of `nodes` and deletes their Nodes.
    pub fn leave(&self, nodes: &[Joined]) {
        let groups: Vec<&str> = nodes.iter().map(|n| n.group.as_str()).collect();
        self.control(&["leave", "--groups", &groups.join(",")]);
    }

    /// Adds `addresses` to interface `link` (eth0 or eth1) of `node`'s namespace.
    pub fn add_address(&self, node: &str, link: &str, addresses: &[&str]) {
        self.control(&[
            "address",
            "--node",
            node,
            "--link",
            link,
            "--add",
            &addresses.join(","),
        ]);
    }

    /// Sends a signal (STOP, CONT, TERM, KILL, RESTART) to a component.
    pub fn signal(&self, component: &str, signal: &str) {
        self.control(&["signal", "--component", component, "--signal", signal]);
    }

    /// The test bed's status (components, nodes, log and audit paths).
    pub fn status(&self) -> Value {
        serde_json::from_str(&self.control(&["status"])).expect("status JSON")
    }

    /// Runs kubectl as the admin; panics with its stderr when it fails.
    pub fn kubectl(&self, args: &[&str]) -> String {
        self.kubectl_with_input(args, None)
    }

    /// Applies the shipped manifest's ServiceAccount, ConfigMap and RBAC (not its
    /// workload, so that the test starts the controller itself).
    pub fn apply_manifest_without_workload(&self) {
        let items: Vec<Value> = super::manifest_documents()
            .into_iter()
            .filter(|d| d["kind"] != "Deployment" && d["kind"] != "DaemonSet")
            .collect();
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
        self.kubectl_with_input(&["apply", "-f", "-"], Some(&list.to_string()));
    }

    /// Runs kubectl as the admin with `input` on stdin.
    pub fn kubectl_with_input(&self, args: &[&str], input: Option<&str>) -> String {
        let out = self.try_kubectl(args, input);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl as the admin and returns its output, whatever its exit status.
    pub fn try_kubectl(&self, args: &[&str], input: Option<&str>) -> std::process::Output {
        use std::io::Write as _;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl (scripts/test.sh installs it)");
        if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
            stdin.write_all(input.as_bytes()).expect("kubectl stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// A kube client with the admin identity.
    pub async fn client(&self) -> kube::Client {
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("admin kubeconfig"),
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("admin kubeconfig");
        kube::Client::try_from(config).expect("admin client")
    }

    /// A kubeconfig for ServiceAccount `namespace/account`, with a token from the
    /// TokenRequest API (`kubectl create token`), written into `dir`.
    pub fn token_kubeconfig(&self, namespace: &str, account: &str, dir: &Path) -> PathBuf {
        let token = self.create_token(namespace, account, &[]);
        self.kubeconfig_with_token(&format!("{namespace}-{account}"), &token, dir)
    }

    /// A kubeconfig for ServiceAccount `namespace/account` with a token bound to Pod
    /// `namespace/pod` (TokenRequest `boundObjectRef`), as the kubelet mounts into a pod:
    /// when the pod is on a node, the token carries the node's name
    /// (`authentication.kubernetes.io/node-name`). Returns the path and the token.
    pub fn pod_token_kubeconfig(
        &self,
        namespace: &str,
        account: &str,
        pod: &str,
        dir: &Path,
    ) -> (PathBuf, String) {
        let bound = ["--bound-object-kind", "Pod", "--bound-object-name", pod];
        let token = self.create_token(namespace, account, &bound);
        let path = self.kubeconfig_with_token(&format!("{namespace}-{pod}"), &token, dir);
        (path, token)
    }

    /// A 2-hour token of ServiceAccount `namespace/account` from the TokenRequest API
    /// (`kubectl create token` with `extra` arguments), trimmed.
    fn create_token(&self, namespace: &str, account: &str, extra: &[&str]) -> String {
        let mut args = vec!["create", "token", account, "-n", namespace];
        args.extend_from_slice(extra);
        args.extend(["--duration", "2h"]);
        self.kubectl(&args).trim().to_string()
    }

    /// A kubeconfig for this test bed's API server authenticating with `token`, written
    /// into `dir` as `<name>.kubeconfig`.
    pub fn kubeconfig_with_token(&self, name: &str, token: &str, dir: &Path) -> PathBuf {
        let admin: Value = serde_saphyr::from_str(
            &std::fs::read_to_string(&self.kubeconfig).expect("admin kubeconfig"),
        )
        .expect("admin kubeconfig YAML");
        let cluster = &admin["clusters"][0]["cluster"];
        let config = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "testbed", "cluster": cluster}],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": "testbed", "context": {"cluster": "testbed", "user": name}}],
            "current-context": "testbed",
        });
        let path = dir.join(format!("{name}.kubeconfig"));
        std::fs::write(&path, config.to_string()).expect("write kubeconfig");
        path
    }

    /// Every request the audit log recorded so far (one entry per request: its final
    /// stage).
    pub fn audit(&self) -> Vec<AuditEvent> {
        let text = std::fs::read_to_string(self.state_dir().join("audit.log")).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<AuditEvent>(line).ok())
            .filter(|e| e.stage == "ResponseComplete" || e.stage == "Panic")
            .collect()
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
    }
}

/// One request as the API server's audit log records it (audit.k8s.io/v1 Event, level
/// Metadata).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub stage: String,
    pub verb: String,
    #[serde(rename = "requestURI")]
    pub request_uri: String,
    pub user: AuditUser,
    #[serde(default)]
    pub object_ref: Option<AuditObject>,
    #[serde(default)]
    pub response_status: Option<AuditStatus>,
    #[serde(default)]
    pub user_agent: String,
    pub request_received_timestamp: jiff::Timestamp,
    pub stage_timestamp: jiff::Timestamp,
}

#[derive(Clone, Debug, serde::Deserialize)]
pub struct AuditUser {
    pub username: String,
    /// `authentication.kubernetes.io/credential-id` tells two tokens of one
    /// ServiceAccount apart (the token's JTI).
    #[serde(default)]
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

impl AuditUser {
    /// The credential the request was made with (a ServiceAccount token's JTI).
    pub fn credential(&self) -> Option<&str> {
        self.extra
            .get("authentication.kubernetes.io/credential-id")?
            .first()
            .map(String::as_str)
    }
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditObject {
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub api_group: String,
    #[serde(default)]
    pub subresource: String,
}

#[derive(Clone, Debug, serde::Deserialize)]
pub struct AuditStatus {
    pub code: u16,
}

impl AuditEvent {
    /// Whether the request asked to change something.
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }

    /// The response code (0 when the log has none).
    pub fn code(&self) -> u16 {
        self.response_status.as_ref().map_or(0, |s| s.code)
    }

    /// [`AuditEvent::describe`] of each of `events` answered with `code`, for assertions.
    pub fn answered_with<'a>(
        events: impl IntoIterator<Item = &'a AuditEvent>,
        code: u16,
    ) -> Vec<String> {
        events
            .into_iter()
            .filter(|e| e.code() == code)
            .map(AuditEvent::describe)
            .collect()
    }

    /// `verb resource[/subresource][.group] [namespace/]name -> code`, for messages.
    pub fn describe(&self) -> String {
        let o = self.object_ref.clone().unwrap_or_default();
        let sub = super::unless_empty(&o.subresource, |s| format!("/{s}"));
        let group = super::unless_empty(&o.api_group, |g| format!(".{g}"));
        let ns = super::unless_empty(&o.namespace, |n| format!("{n}/"));
        format!(
            "{} {}{sub}{group} {ns}{} -> {}",
            self.verb,
            o.resource,
            o.name,
            self.code()
        )
    }
}

/// GET `path` on the API server with `client`; `None` on 404.
pub async fn get_json(client: &kube::Client, path: &str) -> Option<Value> {
    let request = http::Request::get(path)
        .body(Vec::new())
        .expect("a GET request");
    match client.request::<Value>(request).await {
        Ok(v) => Some(v),
        Err(kube::Error::Api(s)) if s.code == 404 => None,
        Err(e) => panic!("GET {path}: {e}"),
    }
}

/// `bare-ccm run` on the host as the manifest runs it (its flags, with a fast leader
/// election), as ServiceAccount `kube-system/bare-ccm` with a token of its own from the
/// TokenRequest API, and a config file the test may rewrite. Its probes and its secure
/// port listen on free ports of 127.0.0.1. Killed when dropped.
pub struct Ccm {
    child: tokio::process::Child,
    log: PathBuf,
    config: PathBuf,
    port: u16,
    secure_port: u16,
}

impl Ccm {
    /// Starts bare-ccm with `config` as its config file and `extra` flags; does not wait
    /// for it to be ready (see [`Ccm::wait_ready`]).
    pub fn start(bed: &Testbed, dir: &Path, config: &str, extra: &[&str]) -> Ccm {
        std::fs::create_dir_all(dir).expect("the replica's directory");
        let kubeconfig = bed.token_kubeconfig(super::NS, "bare-ccm", dir);
        let config_path = dir.join("config.yaml");
        std::fs::write(&config_path, config).expect("config file");
        let log = dir.join("bare-ccm.log");
        let port = super::free_port();
        let secure_port = super::free_port();
        let child = super::run_command_with_secure_port(&kubeconfig, port, secure_port)
            .args(super::workload_flags())
            .args(super::FAST_ELECTION)
            .arg("--config")
            .arg(&config_path)
            .args(["--config-poll-interval", "200ms"])
            .args(extra)
            .env("RUST_LOG", "info,bare_ccm=debug")
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("bare-ccm run");
        Ccm {
            child,
            log,
            config: config_path,
            port,
            secure_port,
        }
    }

    /// The port of the plain probes.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The HTTPS port of `/metrics`.
    pub fn secure_port(&self) -> u16 {
        self.secure_port
    }

    /// Waits until `/readyz` answers 200 (the node cache is synced).
    pub async fn wait_ready(&self) {
        super::wait_ready(self.port, Duration::from_secs(30), || self.log_text()).await;
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("bare-ccm running")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.config, text).expect("config file");
    }

    /// SIGTERM, and the exit within 10 s.
    pub async fn stop(mut self) {
        super::signal(&self.child, "-TERM");
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}
