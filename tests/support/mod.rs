//! What the end-to-end test files share: the emulated [`Cluster`], starting `bare-ccm run`
//! against it, polling until a condition holds ([`eventually`]), and reading Nodes, Events and accounts the
//! way the controller writes them. Each scenario stays in its own file.

pub mod testbed;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bare_ccm_emulator::kubelet::{Fleet, KubeletSpec};
use bare_ccm_emulator::probe;
pub use bare_ccm_emulator::probe::http_get;
use bare_ccm_emulator::rbac::RbacPolicy;
use bare_ccm_emulator::{Emulator, EmulatorOptions};
use serde_json::Value;
use tokio::process::{Child, Command};

/// The taint every Node of an external cloud provider starts with, which bare-ccm removes.
pub const TAINT: &str = "node.cloudprovider.kubernetes.io/uninitialized";
/// The namespace of bare-ccm's ServiceAccounts, Lease and Events about the Lease.
pub const NS: &str = "kube-system";
/// The name of bare-ccm's leader-election Lease.
pub const LEASE: &str = "bare-ccm";
/// The shipped install manifest, whose RBAC the emulator enforces.
pub const MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/manifests/bare-ccm.yaml");

/// The text of the shipped install manifest.
pub fn manifest() -> String {
    std::fs::read_to_string(MANIFEST).unwrap_or_else(|e| panic!("cannot read {MANIFEST}: {e}"))
}

/// Leader election fast enough for tests (lease 4 s, renew deadline 3 s, retry 1 s), so
/// that renewals and failovers happen within a scenario.
pub const FAST_ELECTION: [&str; 6] = [
    "--leader-elect-lease-duration",
    "4s",
    "--leader-elect-renew-deadline",
    "3s",
    "--leader-elect-retry-period",
    "1s",
];

/// The user name the API server gives ServiceAccount `kube-system/<account>`.
pub fn sa_user(account: &str) -> String {
    format!("system:serviceaccount:{NS}:{account}")
}

/// A Node's `status.addresses` as (type, address) pairs, in order.
pub fn addresses(node: &Value) -> Vec<(String, String)> {
    node.pointer("/status/addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["type"].as_str().unwrap_or_default().to_string(),
                a["address"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Whether a Node's `status.addresses` has `address` of type `kind`.
pub fn has_address(node: &Value, kind: &str, address: &str) -> bool {
    addresses(node)
        .iter()
        .any(|(t, a)| t == kind && a == address)
}

/// `f(part)`, or "" when `part` is empty: the optional pieces of a described request.
pub fn unless_empty(part: &str, f: impl FnOnce(&str) -> String) -> String {
    if part.is_empty() {
        String::new()
    } else {
        f(part)
    }
}

/// Whether `node` carries a taint with `key`.
pub fn has_taint(node: &Value, key: &str) -> bool {
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .is_some_and(|ts| ts.iter().any(|t| t["key"] == key))
}

/// A TCP port on 127.0.0.1 that nothing listens on, for a controller's health server.
pub fn free_port() -> u16 {
    probe::free_port().expect("a free port on 127.0.0.1")
}

/// Polls `cond` every 50 ms until it holds; panics naming `what` after `timeout`.
pub async fn eventually(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    eventually_async(timeout, what, String::new, || std::future::ready(cond())).await;
}

/// [`eventually`], with `context()` (a controller's log) in the panic message.
pub async fn eventually_or_show(
    timeout: Duration,
    what: &str,
    context: impl Fn() -> String,
    mut cond: impl FnMut() -> bool,
) {
    eventually_async(timeout, what, context, || std::future::ready(cond())).await;
}

/// The one polling loop of the tests, for conditions that need a request (running
/// `bare-ccm doctor`, say): polls `cond` every 50 ms until it holds; after `timeout`
/// panics naming `what`, with `context()`.
pub async fn eventually_async<F, Fut>(
    timeout: Duration,
    what: &str,
    context: impl Fn() -> String,
    mut cond: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An in-process emulated cluster: the emulator, an admin client, simulated kubelets and
/// a directory for kubeconfigs and config files. Every e2e file starts its clusters here
/// ([`Cluster::builder`]) and adds, in an `impl Cluster` of its own, what its scenarios
/// read.
pub struct Cluster {
    pub emu: Emulator,
    pub client: kube::Client,
    pub fleet: Fleet,
    pub dir: tempfile::TempDir,
}

/// How a [`Cluster`] starts: without RBAC and with kubelets acting as admin by default.
#[derive(Default)]
pub struct ClusterBuilder {
    rbac: Option<RbacPolicy>,
    kubelet: Option<(String, Vec<String>)>,
    retry_budget: Option<Duration>,
}

impl ClusterBuilder {
    /// The API server enforces `policy` (the shipped manifest's RBAC, say).
    pub fn rbac(mut self, policy: RbacPolicy) -> Self {
        self.rbac = Some(policy);
        self
    }

    /// The simulated kubelets authenticate as `user` in `groups` instead of as admin.
    pub fn kubelets_as(mut self, user: &str, groups: &[&str]) -> Self {
        self.kubelet = Some((user.into(), groups.iter().map(|g| g.to_string()).collect()));
        self
    }

    /// The kubelets retry transient failures for up to `budget` per action (an outage
    /// scenario needs more than the outage).
    pub fn kubelet_retry_budget(mut self, budget: Duration) -> Self {
        self.retry_budget = Some(budget);
        self
    }

    pub async fn start(self) -> Cluster {
        let emu = Emulator::start(EmulatorOptions {
            rbac: self.rbac,
            ..EmulatorOptions::default()
        })
        .await
        .unwrap();
        let client = emu.client(&emu.admin_token()).await.unwrap();
        let kubelets = match &self.kubelet {
            None => client.clone(),
            Some((user, groups)) => {
                let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
                emu.client(&emu.issue_token(user, &groups)).await.unwrap()
            }
        };
        let fleet = match self.retry_budget {
            None => Fleet::new(kubelets),
            Some(budget) => Fleet::with_retry_budget(kubelets, budget),
        };
        Cluster {
            fleet,
            client,
            emu,
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

impl Cluster {
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    /// A kubeconfig for ServiceAccount `kube-system/<sa>`, written as `<sa>.kubeconfig`.
    pub fn kubeconfig(&self, sa: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{sa}.kubeconfig"));
        let token = self.emu.service_account_token(NS, sa);
        self.emu.write_kubeconfig(&token, &path).unwrap();
        path
    }

    /// A kubeconfig with the admin token, written as `admin.kubeconfig`.
    pub fn admin_kubeconfig(&self) -> PathBuf {
        let path = self.dir.path().join("admin.kubeconfig");
        self.emu
            .write_kubeconfig(&self.emu.admin_token(), &path)
            .unwrap();
        path
    }

    /// Whether Node `name` is stored and no longer carries the uninitialized taint.
    pub fn initialized(&self, name: &str) -> bool {
        self.emu
            .get_object("nodes", None, name)
            .is_some_and(|n| !has_taint(&n, TAINT))
    }

    /// The holder of bare-ccm's Lease.
    pub fn lease_holder(&self) -> Option<String> {
        self.emu.lease_holder(NS, LEASE)
    }
}

/// The Events in `namespace` about the object named `object` with `reason`, as stored (the
/// store keeps the core/v1 form, where `regarding` is `involvedObject`).
pub fn events_about(emu: &Emulator, namespace: &str, object: &str, reason: &str) -> Vec<Value> {
    emu.list_objects("events", Some(namespace))
        .into_iter()
        .filter(|e| {
            let regarding = e.get("regarding").or_else(|| e.get("involvedObject"));
            regarding
                .and_then(|r| r.get("name"))
                .and_then(Value::as_str)
                == Some(object)
                && e.get("reason").and_then(Value::as_str) == Some(reason)
        })
        .collect()
}

/// A kubelet started with `--node-ip 10.0.0.9` that reports no InternalIP, while its
/// `bare-ccm.io/internal-ip` annotation says 10.0.0.5: the provided node IP disagrees with
/// the configured address, so bare-ccm must warn and leave the Node tainted.
pub fn mismatched_node_ip_kubelet(name: &str) -> KubeletSpec {
    let mut spec = KubeletSpec::new(name);
    spec.node_ip = vec!["10.0.0.9".into()];
    spec.report_internal_ip = false;
    spec.annotations
        .insert("bare-ccm.io/internal-ip".into(), "10.0.0.5".into());
    spec
}

/// `bare-ccm run` with `kubeconfig`, serving the probes on 127.0.0.1:`port` and no secure
/// port (its default 10271 on 0.0.0.0 would collide between tests running at once),
/// ignoring any `KUBECONFIG` of the environment, stdout discarded, killed when its `Child`
/// is dropped. Callers add their flags, `RUST_LOG` and stderr, then spawn.
pub fn run_command(kubeconfig: &Path, port: u16) -> Command {
    run_command_with_secure_port(kubeconfig, port, 0)
}

/// [`run_command`] with the secure port (`/metrics`) on 127.0.0.1:`secure_port` (0: off).
pub fn run_command_with_secure_port(kubeconfig: &Path, port: u16, secure_port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bare-ccm"));
    command
        .arg("run")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--bind-address", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--secure-bind-address",
            "127.0.0.1",
            "--secure-port",
            &secure_port.to_string(),
        ])
        .env_remove("KUBECONFIG")
        .stdout(Stdio::null())
        .kill_on_drop(true);
    command
}

/// The ClusterRoleBinding that lets bare-ccm's ServiceAccount ask the API server to review
/// the tokens and access of its secure port's clients (upstream components bind the same
/// bootstrap ClusterRole).
pub const AUTH_DELEGATOR_BINDING: &str = "\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: bare-ccm:auth-delegator
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:auth-delegator
subjects:
  - kind: ServiceAccount
    name: bare-ccm
    namespace: kube-system
";

/// A ClusterRole allowing what a Prometheus needs to scrape the secure port.
pub const METRICS_READER_ROLE: &str = "\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: bare-ccm-metrics-reader
rules:
  - nonResourceURLs: [\"/metrics\"]
    verbs: [\"get\"]
";

/// A ClusterRoleBinding `name` of the chart's `bare-ccm-metrics-reader` ClusterRole to one
/// subject, given as its YAML fields (`kind: User\n    name: x`).
pub fn metrics_reader_binding(name: &str, subject: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: {name}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: bare-ccm-metrics-reader\nsubjects:\n  - {subject}\n"
    )
}

/// Whether the shipped manifest already binds bare-ccm to `system:auth-delegator`.
pub fn manifest_binds_auth_delegator() -> bool {
    manifest_documents().iter().any(|d| {
        d["kind"] == "ClusterRoleBinding"
            && d.pointer("/roleRef/name").and_then(Value::as_str) == Some("system:auth-delegator")
    })
}

/// The shipped manifest, plus [`AUTH_DELEGATOR_BINDING`] until the manifest has its own.
pub fn manifest_with_auth_delegator() -> String {
    let manifest = manifest();
    if manifest_binds_auth_delegator() {
        manifest
    } else {
        format!("{manifest}\n---\n{AUTH_DELEGATOR_BINDING}")
    }
}

/// `GET path` over HTTPS on 127.0.0.1:`port` with `token` as bearer token: the status code
/// and body, or `None` while nothing answers. The server's certificate must be valid for
/// `localhost` and chain to the last certificate it serves (the CA of a self-signed
/// serving certificate).
pub async fn https_get(port: u16, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(ServedCa(provider)))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let name = rustls::pki_types::ServerName::try_from("localhost").ok()?;
    let mut s = connector.connect(name, tcp).await.ok()?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    // A TLS peer may close without close_notify once the body is sent.
    let _ = s.read_to_end(&mut buf).await;
    let buf = String::from_utf8_lossy(&buf);
    let code = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// Trusts the last certificate a server sends as its CA, then verifies the chain and the
/// name as any TLS client does: the check that a self-signed serving certificate is well
/// formed, without knowing its CA in advance.
#[derive(Debug)]
struct ServedCa(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for ServedCa {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let ca = intermediates.last().ok_or(rustls::Error::General(
            "the server sent no CA certificate".into(),
        ))?;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(ca.clone().into_owned())
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            self.0.clone(),
        )
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, &[], server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The value of the sample `series` (name with its labels, exactly as exposed) in a
/// scrape, if present.
pub fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Waits until the controller on `port` answers `/readyz` with 200; panics with `log()`
/// after `timeout`.
pub async fn wait_ready(port: u16, timeout: Duration, log: impl Fn() -> String) {
    let start = Instant::now();
    while !matches!(http_get(port, "/readyz").await, Some((200, _))) {
        assert!(
            start.elapsed() < timeout,
            "bare-ccm not ready after {timeout:?}; log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `sig` (as `kill` spells it, e.g. `-TERM`) to the running `child`.
pub fn signal(child: &Child, sig: &str) {
    let pid = child.id().expect("process running").to_string();
    let sent = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .is_ok_and(|s| s.success());
    assert!(sent, "kill {sig} {pid} failed");
}

/// The documents of the shipped install manifest.
pub fn manifest_documents() -> Vec<Value> {
    serde_saphyr::from_multiple(&manifest()).unwrap_or_else(|e| panic!("{MANIFEST}: {e}"))
}

/// The workload (Deployment or DaemonSet) of the shipped manifest.
pub fn manifest_workload() -> Value {
    manifest_documents()
        .into_iter()
        .find(|d| d["kind"] == "Deployment" || d["kind"] == "DaemonSet")
        .unwrap_or_else(|| panic!("no Deployment or DaemonSet in {MANIFEST}"))
}

/// The flags the manifest's workload gives `bare-ccm run`, except those that only say
/// where the config file is, which addresses and ports to serve and how fast leader
/// election is (the test chooses those, e.g. [`FAST_ELECTION`]), so that the binary runs
/// as the manifest configures it (lease name and namespace in particular).
pub fn workload_flags() -> Vec<String> {
    const TEST_CHOSEN_FLAGS: [&str; 8] = [
        "--config=",
        "--port=",
        "--bind-address=",
        "--secure-port=",
        "--secure-bind-address=",
        "--leader-elect-lease-duration=",
        "--leader-elect-renew-deadline=",
        "--leader-elect-retry-period=",
    ];
    let workload = manifest_workload();
    let args = workload
        .pointer("/spec/template/spec/containers/0/args")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("the workload in {MANIFEST} has no container args"));
    let args: Vec<&str> = args.iter().filter_map(Value::as_str).collect();
    assert_eq!(
        args.first(),
        Some(&"run"),
        "the workload must run `bare-ccm run`"
    );
    args[1..]
        .iter()
        .inspect(|arg| {
            assert!(
                arg.starts_with("--") && arg.contains('='),
                "workload arg {arg:?}: write flags as --name=value"
            )
        })
        .filter(|arg| !TEST_CHOSEN_FLAGS.iter().any(|flag| arg.starts_with(flag)))
        .map(|arg| arg.to_string())
        .collect()
}

/// The `config.yaml` of the shipped ConfigMap.
pub fn manifest_config() -> String {
    manifest_documents()
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .and_then(|d| d.pointer("/data/config.yaml"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no ConfigMap with config.yaml in {MANIFEST}"))
        .to_string()
}
