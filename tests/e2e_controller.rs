//! End-to-end: the real `bare-ccm run` binary against the API emulator over HTTPS, with a
//! service-account token and simulated kubelets. Assertions are on the stored objects and
//! on the emulator's request accounting, never on the controller's own logs.
//!
//! RBAC is enforced throughout, loaded from `manifests/bare-ccm.yaml` as shipped, plus the
//! kubelets' grants. Replicas that run as other ServiceAccounts get copies of the
//! manifest's bindings naming them (subjects only: the rules are exactly the manifest's).
//! Every test ends by checking that the controller was never answered 403.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bare_ccm_emulator::faults::InjectedStatus;
use bare_ccm_emulator::kubelet::{Fleet, KubeletSpec, NODE_RBAC, Registration};
use bare_ccm_emulator::rbac::RbacPolicy;
use serde_json::Value;
use tokio::process::Child;

#[allow(dead_code)]
mod support;
use support::{
    Cluster, FAST_ELECTION, LEASE, MANIFEST, NS, TAINT, addresses, events_about, eventually,
    free_port, has_taint, sa_user,
};

/// The simulated kubelets' user, in the group `NODE_RBAC` grants Node access to.
const KUBELET_USER: &str = "system:node:fleet";

/// The user the tests read `/metrics` as, allowed by the metrics-reader ClusterRole.
const SCRAPER: &str = "metrics-scraper";

const KUBELET_GROUP: &str = "system:nodes";

/// The manifest's ClusterRoleBindings and RoleBindings, copied so that they bind the same
/// roles to ServiceAccount `kube-system/<sa>`: only the name and the subjects change.
fn manifest_bindings_for(manifest: &[Value], sa: &str) -> Vec<Value> {
    let copies: Vec<Value> = manifest
        .iter()
        .filter(|doc| {
            matches!(
                doc["kind"].as_str(),
                Some("ClusterRoleBinding" | "RoleBinding")
            )
        })
        .map(|doc| {
            let mut copy = doc.clone();
            let name = doc
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            copy["metadata"]["name"] = Value::from(format!("{name}-{sa}"));
            copy["subjects"] = serde_json::json!([
                {"kind": "ServiceAccount", "name": sa, "namespace": NS}
            ]);
            copy
        })
        .collect();
    assert!(
        copies.iter().any(|d| d["kind"] == "ClusterRoleBinding")
            && copies.iter().any(|d| d["kind"] == "RoleBinding"),
        "{MANIFEST} has no ClusterRoleBinding or no RoleBinding to copy"
    );
    copies
}

/// `manifest`'s RBAC plus what the tests add: the simulated kubelets', and the scraper's
/// grant on `/metrics`.
fn test_rbac(manifest: &str) -> String {
    format!(
        "{manifest}\n---\n{NODE_RBAC}\n---\n{}\n---\n{}",
        support::METRICS_READER_ROLE,
        support::metrics_reader_binding(
            "metrics-scraper",
            &format!("kind: User\n    name: {SCRAPER}")
        )
    )
}

/// The RBAC the emulator enforces: the manifest as shipped (with the
/// `system:auth-delegator` binding until it ships one), the test grants of [`test_rbac`],
/// and the manifest's bindings for each ServiceAccount of `other_accounts`.
fn policy(other_accounts: &[&str]) -> RbacPolicy {
    let manifest = support::manifest_with_auth_delegator();
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&manifest).unwrap_or_else(|e| panic!("{MANIFEST}: {e}"));
    let mut yaml = test_rbac(&manifest);
    for sa in other_accounts {
        for binding in manifest_bindings_for(&docs, sa) {
            // JSON is YAML: each copied binding is one JSON document.
            yaml.push_str(&format!("\n---\n{binding}\n"));
        }
    }
    RbacPolicy::from_yaml(&yaml).unwrap_or_else(|e| panic!("{MANIFEST} + kubelet RBAC: {e}"))
}

/// What the controller scenarios read from a [`Cluster`] whose API server enforces the
/// shipped manifest's RBAC.
impl Cluster {
    /// A cluster whose controller runs as the manifest's ServiceAccount `bare-ccm`.
    async fn start() -> Cluster {
        Cluster::with_accounts(&[]).await
    }

    /// A cluster that also grants the manifest's roles to `other_accounts`.
    async fn with_accounts(other_accounts: &[&str]) -> Cluster {
        let c = Cluster::builder()
            .rbac(policy(other_accounts))
            .kubelets_as(KUBELET_USER, &[KUBELET_GROUP])
            .start()
            .await;
        let scraper = c.emu.issue_token(SCRAPER, &[]);
        std::fs::write(c.dir.path().join(SCRAPER_TOKEN), scraper).unwrap();
        c
    }

    /// Waits up to `secs` seconds (`what`) for an Event about `object` with `reason`;
    /// returns the first one and its text (events.k8s.io `note` or core `message`).
    async fn first_event(
        &self,
        object: &str,
        reason: &str,
        secs: u64,
        what: &str,
    ) -> (Value, String) {
        eventually(Duration::from_secs(secs), what, || {
            !self.events(object, reason).is_empty()
        })
        .await;
        let event = self.events(object, reason).swap_remove(0);
        let text = event
            .get("note")
            .or_else(|| event.get("message"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        (event, text)
    }

    /// Registers `spec` and waits up to `secs` seconds until bare-ccm has initialised it.
    async fn join(&self, spec: &KubeletSpec, secs: u64) {
        self.fleet.register(spec).await.unwrap();
        let what = format!("{} initialised", spec.name);
        eventually(Duration::from_secs(secs), &what, || {
            self.initialized(&spec.name)
        })
        .await;
    }

    /// Kubelets of this cluster whose registrations are followed as `registration` says.
    async fn fleet_with(&self, registration: Registration) -> Fleet {
        Fleet::with_registration(
            self.kubelet_client().await,
            Duration::from_secs(60),
            registration,
        )
    }

    /// A client authenticated as the simulated kubelets.
    async fn kubelet_client(&self) -> kube::Client {
        self.emu
            .client(&self.emu.issue_token(KUBELET_USER, &[KUBELET_GROUP]))
            .await
            .unwrap()
    }

    /// Asserts that every controller replica (a ServiceAccount in kube-system) made
    /// requests and that none was refused with 403: the manifest grants all it uses.
    fn assert_controller_never_forbidden(&self) {
        let prefix = format!("system:serviceaccount:{NS}:");
        let traffic: Vec<_> = self
            .emu
            .accounting()
            .attributed_requests()
            .into_iter()
            .filter(|(r, _)| r.user.starts_with(&prefix))
            .collect();
        assert!(
            !traffic.is_empty(),
            "no request from the controller was counted"
        );
        let forbidden: Vec<String> = traffic
            .iter()
            .filter(|(r, _)| r.code == 403)
            .map(|(r, n)| {
                format!(
                    "{} {} {}/{} group={:?} ns={:?} name={:?} x{n}",
                    r.user, r.verb, r.resource, r.subresource, r.api_group, r.namespace, r.name
                )
            })
            .collect();
        assert!(
            forbidden.is_empty(),
            "the controller was refused by the RBAC of {MANIFEST}:\n{}",
            forbidden.join("\n")
        );
    }

    fn node(&self, name: &str) -> Value {
        self.emu
            .get_object("nodes", None, name)
            .unwrap_or_else(|| panic!("node {name} not stored"))
    }

    /// Successful node writes (nodes and nodes/status) by `user`, per node.
    fn node_writes_by(&self, user: &str) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for w in self.emu.accounting().writes() {
            if w.resource == "nodes" && w.user == user && (200..300).contains(&w.code) {
                *out.entry(w.name.clone()).or_insert(0) += 1;
            }
        }
        out
    }

    /// Events about `object` with `reason`; node events live in `default`, events about
    /// the Lease in its namespace.
    fn events(&self, object: &str, reason: &str) -> Vec<Value> {
        let ns = if object == LEASE { NS } else { "default" };
        events_about(&self.emu, ns, object, reason)
    }
}

fn label<'a>(node: &'a Value, key: &str) -> Option<&'a str> {
    node.pointer("/metadata/labels")?.get(key)?.as_str()
}

fn pair(t: &str, a: &str) -> (String, String) {
    (t.to_string(), a.to_string())
}

/// The file, next to the kubeconfigs a `Cluster` writes, holding the scraper's token.
const SCRAPER_TOKEN: &str = "metrics-scraper.token";

/// One `bare-ccm run` process, with its probes and its secure port on 127.0.0.1.
struct Ccm {
    child: Child,
    port: u16,
    secure_port: u16,
    /// The token `/metrics` is read with (the `Cluster`'s scraper).
    scraper: String,
    log: PathBuf,
}

impl Ccm {
    async fn start(kubeconfig: &Path, extra: &[&str]) -> Ccm {
        Ccm::start_logging_to(kubeconfig, extra, None).await
    }

    /// The controller of `c` with `--config config`, re-read every 200 ms.
    async fn with_config_file(c: &Cluster, config: &Path) -> Ccm {
        let config = config.to_str().unwrap();
        let args = ["--config", config, "--config-poll-interval", "200ms"];
        Ccm::start(&c.kubeconfig("bare-ccm"), &args).await
    }

    /// Starts with stderr to a pipe whose read end is closed at once, as when the log
    /// collector reading a container's output has gone: every log write fails (EPIPE).
    async fn start_with_stderr_closed(kubeconfig: &Path, extra: &[&str]) -> Ccm {
        let mut ccm = Ccm::start_logging_to(kubeconfig, extra, Some(Stdio::piped())).await;
        drop(ccm.child.stderr.take());
        ccm
    }

    /// Starts and waits until ready; stderr goes to `stderr`, or to the log file.
    async fn start_logging_to(kubeconfig: &Path, extra: &[&str], stderr: Option<Stdio>) -> Ccm {
        let (port, secure_port) = (free_port(), free_port());
        let log = kubeconfig.with_extension(format!("{port}.log"));
        let stderr = match stderr {
            Some(stderr) => stderr,
            None => std::fs::File::create(&log).unwrap().into(),
        };
        let child = support::run_command_with_secure_port(kubeconfig, port, secure_port)
            .args(extra)
            .env("RUST_LOG", "info,bare_ccm=debug")
            .stderr(stderr)
            .spawn()
            .unwrap();
        let scraper = std::fs::read_to_string(kubeconfig.with_file_name(SCRAPER_TOKEN))
            .expect("the Cluster's scraper token next to the kubeconfig");
        let ccm = Ccm {
            child,
            port,
            secure_port,
            scraper,
            log,
        };
        support::wait_ready(port, Duration::from_secs(20), || ccm.log_text()).await;
        ccm
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        support::http_get(self.port, path).await
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        support::signal(&self.child, sig);
    }

    /// `GET path` on the secure port with `token`.
    async fn get_secure(&self, path: &str, token: Option<&str>) -> Option<(u16, String)> {
        support::https_get(self.secure_port, path, token).await
    }

    /// The value of `series` on the secure `/metrics`, read as the scraper (0 when absent).
    async fn metric(&self, series: &str) -> f64 {
        let (code, body) = self
            .get_secure("/metrics", Some(&self.scraper))
            .await
            .expect("metrics served");
        assert_eq!(code, 200, "GET /metrics as {SCRAPER}: {body}");
        support::sample(&body, series).unwrap_or(0.0)
    }
}

impl Drop for Ccm {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- bare-ccm log (port {}) ---\n{}",
                self.port,
                self.log_text()
            );
        }
    }
}

fn k3s_agents(prefix: &str, n: usize) -> Vec<KubeletSpec> {
    (0..n)
        .map(|i| {
            let ip = format!("10.{}.{}.{}", 1 + i / 65536, (i / 256) % 256, i % 256);
            KubeletSpec::k3s_agent(&format!("{prefix}-{i}"), &ip, None)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_gets_addresses_provider_id_labels_and_loses_the_taint() {
    let c = Cluster::start().await;
    let ccm = Ccm::start(&c.kubeconfig("bare-ccm"), &[]).await;
    c.join(&KubeletSpec::k3s_agent("n1", "10.0.0.5", None), 10)
        .await;

    let node = c.node("n1");
    assert_eq!(
        node.pointer("/spec/providerID").and_then(Value::as_str),
        Some("k3s://n1")
    );
    assert_eq!(
        label(&node, "node.kubernetes.io/instance-type"),
        Some("k3s")
    );
    assert_eq!(
        label(&node, "beta.kubernetes.io/instance-type"),
        Some("k3s")
    );
    assert_eq!(
        addresses(&node),
        vec![pair("InternalIP", "10.0.0.5"), pair("Hostname", "n1")]
    );
    let writes = c.node_writes_by(&sa_user("bare-ccm"));
    assert!(writes["n1"] <= 2, "writes: {writes:?}");
    eventually(Duration::from_secs(5), "Synced event", || {
        !c.events("n1", "Synced").is_empty()
    })
    .await;

    assert_eq!(ccm.get("/healthz").await.map(|r| r.0), Some(200));
    assert_eq!(ccm.metric("bare_ccm_node_initializations_total").await, 1.0);
    assert_eq!(
        ccm.metric("node_controller_cloud_provider_taint_removal_delay_seconds_count")
            .await,
        1.0
    );
    assert_eq!(ccm.metric("bare_ccm_leader").await, 1.0);
    assert_eq!(
        ccm.metric("bare_ccm_nodes_awaiting_initialization").await,
        0.0
    );
    // Upstream's names, fed by the queue, the client layer and the election.
    let queue = |m: &str| format!("{m}{{name=\"cloud-node\"}}");
    assert!(ccm.metric(&queue("workqueue_adds_total")).await >= 1.0);
    assert!(
        ccm.metric(&queue("workqueue_work_duration_seconds_count"))
            .await
            >= 1.0
    );
    assert!(
        ccm.metric(&queue("workqueue_queue_duration_seconds_count"))
            .await
            >= 1.0
    );
    assert_eq!(ccm.metric(&queue("workqueue_depth")).await, 0.0);
    assert_eq!(
        ccm.metric("leader_election_master_status{name=\"bare-ccm\"}")
            .await,
        1.0
    );
    let host = c.emu.url().trim_start_matches("https://").to_string();
    let patches =
        format!("rest_client_requests_total{{code=\"200\",host=\"{host}\",method=\"PATCH\"}}");
    assert!(ccm.metric(&patches).await >= 1.0, "{patches}");
    let latency =
        format!("rest_client_request_duration_seconds_count{{host=\"{host}\",verb=\"PATCH\"}}");
    assert!(ccm.metric(&latency).await >= 1.0, "{latency}");
    c.assert_controller_never_forbidden();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_are_plain_and_metrics_need_a_token_the_api_server_allows() {
    let c = Cluster::start().await;
    let ccm = Ccm::start(&c.kubeconfig("bare-ccm"), &[]).await;
    for path in ["/healthz", "/livez", "/readyz"] {
        assert_eq!(ccm.get(path).await.map(|r| r.0), Some(200), "plain {path}");
        assert_eq!(
            ccm.get_secure(path, None).await.map(|r| r.0),
            Some(200),
            "secure {path} needs no token"
        );
    }
    assert_eq!(
        ccm.get("/metrics").await.map(|r| r.0),
        Some(404),
        "the plain port serves only the probes"
    );

    let (code, body) = ccm.get_secure("/metrics", None).await.unwrap();
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("\"reason\":\"Unauthorized\""), "{body}");
    let (code, _) = ccm.get_secure("/metrics", Some("forged")).await.unwrap();
    assert_eq!(code, 401);
    let nobody = c.emu.issue_token("nobody", &[]);
    let (code, body) = ccm.get_secure("/metrics", Some(&nobody)).await.unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains(r#"forbidden: User \"nobody\" cannot get path \"/metrics\""#),
        "{body}"
    );
    let (code, body) = ccm
        .get_secure("/metrics", Some(&ccm.scraper))
        .await
        .unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("workqueue_depth{name=\"cloud-node\"}"),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"));

    // The API server reviewed each token once and each user's access once; the repeats
    // came from the caches.
    let reviews = |resource: &str| -> u64 {
        c.emu
            .accounting()
            .attributed_requests()
            .iter()
            .filter(|(r, _)| {
                r.user == sa_user("bare-ccm") && r.resource == resource && r.code == 201
            })
            .map(|(_, n)| n)
            .sum()
    };
    assert_eq!(
        (reviews("tokenreviews"), reviews("subjectaccessreviews")),
        (3, 2)
    );
    for token in [nobody.as_str(), ccm.scraper.as_str(), "forged"] {
        ccm.get_secure("/metrics", Some(token)).await.unwrap();
    }
    assert_eq!(
        (reviews("tokenreviews"), reviews("subjectaccessreviews")),
        (3, 2)
    );
    c.assert_controller_never_forbidden();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_nodes_joining_at_once_are_initialised_with_at_most_two_writes_each() {
    let c = Cluster::start().await;
    let _ccm = Ccm::start(&c.kubeconfig("bare-ccm"), &[]).await;
    c.fleet.start_heartbeats(Duration::from_secs(1)).unwrap();
    c.fleet
        .register_all(k3s_agents("burst", 200), None, 64)
        .await
        .unwrap();
    eventually(Duration::from_secs(60), "200 nodes initialised", || {
        (0..200).all(|i| c.initialized(&format!("burst-{i}")))
    })
    .await;
    // Let heartbeats run: they must cause no further writes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let writes = c.node_writes_by(&sa_user("bare-ccm"));
    assert_eq!(writes.len(), 200);
    assert!(writes.values().all(|w| *w <= 2), "writes: {writes:?}");
    assert!(c.fleet.heartbeat_stats().sent > 0);
    c.assert_controller_never_forbidden();
}

/// Node requests and Events have separate client-side buckets. With room for 10 requests
/// and practically no refill, the node client needs 8 (list, watch, 6 node patches) and the
/// Events client 6: a shared bucket (14) would leave some nodes tainted for ~1000 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synced_events_do_not_spend_the_node_writes_rate_limit() {
    let c = Cluster::start().await;
    let _ccm = Ccm::start(
        &c.kubeconfig("bare-ccm"),
        &["--kube-api-qps=0.001", "--kube-api-burst=10"],
    )
    .await;
    // Only the kubelets and the k3s agents write (they finish before bare-ccm's turn): a
    // simulated controller's write racing bare-ccm's would cost it a re-read and a retry.
    let fleet = c.fleet_with(Registration::real_cluster()).await;
    fleet
        .register_all(k3s_agents("limited", 6), None, 6)
        .await
        .unwrap();
    eventually(Duration::from_secs(20), "6 nodes initialised", || {
        (0..6).all(|i| c.initialized(&format!("limited-{i}")))
    })
    .await;
    eventually(Duration::from_secs(20), "a Synced event per node", || {
        (0..6).all(|i| !c.events(&format!("limited-{i}"), "Synced").is_empty())
    })
    .await;
    c.assert_controller_never_forbidden();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_stack_node_keeps_both_internal_ips() {
    let c = Cluster::start().await;
    let _ccm = Ccm::start(&c.kubeconfig("bare-ccm"), &[]).await;
    c.join(
        &KubeletSpec::k3s_agent("ds", "10.0.0.7", Some("fd00::7")),
        10,
    )
    .await;
    assert_eq!(
        addresses(&c.node("ds")),
        vec![
            pair("InternalIP", "10.0.0.7"),
            pair("InternalIP", "fd00::7"),
            pair("Hostname", "ds")
        ]
    );
    c.assert_controller_never_forbidden();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k3s_node_args_give_internal_and_external_ips() {
    let c = Cluster::start().await;
    let _ccm = Ccm::start(&c.kubeconfig("bare-ccm"), &[]).await;
    let mut spec = KubeletSpec::k3s_server("srv", "10.0.0.8", None);
    // The kubelet itself reports no InternalIP: only node-args knows it.
    spec.report_internal_ip = false;
    spec.provided_node_ip = None;
    if let Some(args) = spec.node_args.as_mut() {
        args.extend(["--node-external-ip".to_string(), "203.0.113.8".to_string()]);
    }
    c.join(&spec, 10).await;
    assert_eq!(
        addresses(&c.node("srv")),
        vec![
            pair("InternalIP", "10.0.0.8"),
            pair("ExternalIP", "203.0.113.8"),
            pair("Hostname", "srv")
        ]
    );
    assert_eq!(
        label(&c.node("srv"), "node-role.kubernetes.io/control-plane"),
        Some("true")
    );
    c.assert_controller_never_forbidden();
}

/// Issue 11 item 1: real k3s writes `k3s.io/node-args` (with `--node-external-ip`) after
/// the kubelet's create. bare-ccm must wait for it rather than initialise the node without
/// its ExternalIP (providerID and labels would then be final too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_k3s_node_is_initialised_once_the_agent_has_described_it_with_its_external_ip() {
    let c = Cluster::start().await;
    let ccm = Ccm::start(&c.kubeconfig("bare-ccm"), &[]).await;
    let fleet = c
        .fleet_with(Registration {
            agent_delay: Duration::from_millis(1500),
            ..Registration::default()
        })
        .await;
    let mut spec = KubeletSpec::k3s_agent("late", "10.0.4.1", None);
    if let Some(args) = spec.node_args.as_mut() {
        args.extend(["--node-external-ip".to_string(), "203.0.113.41".to_string()]);
    }
    let registered = Instant::now();
    fleet.register(&spec).await.unwrap();

    // The kubelet's InternalIP and provided-node-ip would resolve, but k3s has not spoken.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before_args = c.node("late");
    assert!(
        before_args["metadata"]["annotations"]
            .get("k3s.io/node-args")
            .is_none(),
        "the agent wrote too early for this test: {:?}",
        registered.elapsed()
    );
    assert!(
        has_taint(&before_args, TAINT),
        "initialised before node-args"
    );
    assert!(!c.node_writes_by(&sa_user("bare-ccm")).contains_key("late"));

    eventually(Duration::from_secs(10), "late initialised", || {
        c.initialized("late")
    })
    .await;
    assert!(registered.elapsed() >= Duration::from_millis(1500));
    assert_eq!(
        addresses(&c.node("late")),
        vec![
            pair("InternalIP", "10.0.4.1"),
            pair("ExternalIP", "203.0.113.41"),
            pair("Hostname", "late")
        ]
    );
    let writes = c.node_writes_by(&sa_user("bare-ccm"));
    assert!(writes["late"] <= 2, "writes: {writes:?}");
    assert!(c.events("late", "K3sAgentWaitExpired").is_empty());
    // Woken by the node-args event, not by polling: one failed-free sync per change.
    assert_eq!(
        ccm.metric("bare_ccm_node_sync_failures_total{reason=\"unresolved\"}")
            .await,
        0.0
    );
    c.assert_controller_never_forbidden();
}

/// Issue 11 item 1: an inventory selector on the server's role label, which k3s adds after
/// node-args, matches at initialisation (providerID can never change afterwards).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inventory_selector_on_the_k3s_server_role_label_matches_at_initialisation() {
    let c = Cluster::start().await;
    let config = c.dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "inventory:\n  - selector: {matchLabels: {node-role.kubernetes.io/control-plane: \"true\"}}\n    providerID: \"metal://cp/{node}\"\n",
    )
    .unwrap();
    let _ccm = Ccm::start(
        &c.kubeconfig("bare-ccm"),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let fleet = c
        .fleet_with(Registration {
            server_delay: Duration::from_millis(1000),
            ..Registration::default()
        })
        .await;
    fleet
        .register(&KubeletSpec::k3s_server("cp-1", "10.0.4.2", None))
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "cp-1 initialised", || {
        c.initialized("cp-1")
    })
    .await;
    assert_eq!(
        c.node("cp-1")
            .pointer("/spec/providerID")
            .and_then(Value::as_str),
        Some("metal://cp/cp-1")
    );
    c.assert_controller_never_forbidden();
}

/// Issue 11 item 1: the wait is bounded (`k3sAgentWait`), ends in a Warning, and never
/// applies to a node that does not run k3s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_k3s_node_never_described_is_initialised_when_the_wait_runs_out_and_others_never_wait() {
    let c = Cluster::start().await;
    let config = c.dir.path().join("config.yaml");
    std::fs::write(&config, "k3sAgentWait: 3s\n").unwrap();
    let _ccm = Ccm::start(
        &c.kubeconfig("bare-ccm"),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    // A k3s kubelet whose agent never describes the node.
    let mut silent = KubeletSpec::k3s_agent("silent", "10.0.4.3", None);
    silent.node_args = None;
    // A kubeadm kubelet with --node-ip.
    let mut kubeadm = KubeletSpec::new("kubeadm");
    kubeadm.node_ip = vec!["10.0.4.4".into()];
    c.fleet.register(&silent).await.unwrap();
    c.join(&kubeadm, 5).await;
    // The creationTimestamp has whole seconds: at least 2 s of the wait remain.
    assert!(
        has_taint(&c.node("silent"), TAINT),
        "the k3s node did not wait"
    );
    eventually(
        Duration::from_secs(10),
        "silent initialised when the wait ran out",
        || c.initialized("silent"),
    )
    .await;
    assert_eq!(
        addresses(&c.node("silent")),
        vec![pair("InternalIP", "10.0.4.3"), pair("Hostname", "silent")]
    );
    let (warning, text) = c
        .first_event(
            "silent",
            "K3sAgentWaitExpired",
            5,
            "K3sAgentWaitExpired warning",
        )
        .await;
    assert_eq!(warning["type"], "Warning");
    assert!(
        text.contains("annotation k3s.io/node-args") && text.contains("k3sAgentWait (3s)"),
        "{text}"
    );
    assert!(c.events("kubeadm", "K3sAgentWaitExpired").is_empty());
    c.assert_controller_never_forbidden();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provided_node_ip_mismatch_keeps_taint_and_warns_then_fixing_the_annotation_initialises() {
    let c = Cluster::start().await;
    let ccm = Ccm::start(&c.kubeconfig("bare-ccm"), &[]).await;
    let spec = support::mismatched_node_ip_kubelet("mm");
    c.fleet.register(&spec).await.unwrap();

    let (warning, text) = c
        .first_event(
            "mm",
            "InitializationFailed",
            10,
            "InitializationFailed warning",
        )
        .await;
    assert_eq!(warning["type"], "Warning");
    assert!(
        text.contains("10.0.0.9"),
        "the warning names the provided IP: {warning}"
    );
    assert!(has_taint(&c.node("mm"), TAINT));
    assert!(!c.node_writes_by(&sa_user("bare-ccm")).contains_key("mm"));
    // Parked until it changes: no retries with backoff while nothing changes.
    const UNRESOLVED: &str = "bare_ccm_node_sync_failures_total{reason=\"unresolved\"}";
    let failures = ccm.metric(UNRESOLVED).await;
    assert!(failures >= 1.0);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        ccm.metric(UNRESOLVED).await,
        failures,
        "retried without a change"
    );

    c.fleet
        .set_annotation("mm", "bare-ccm.io/internal-ip", Some("10.0.0.9"))
        .await
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "mm initialised after the fix",
        || c.initialized("mm"),
    )
    .await;
    assert_eq!(addresses(&c.node("mm"))[0], pair("InternalIP", "10.0.0.9"));
    c.assert_controller_never_forbidden();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_on_the_first_write_of_every_node_is_retried_to_success() {
    let c = Cluster::start().await;
    // bare-ccm's first write: the kubelets, k3s and the controllers write first.
    c.emu
        .faults()
        .fail_first_write_per_object_by(&sa_user("bare-ccm"), InjectedStatus::Conflict);
    let ccm = Ccm::start(&c.kubeconfig("bare-ccm"), &[]).await;
    c.fleet
        .register_all(k3s_agents("cf", 20), None, 20)
        .await
        .unwrap();
    eventually(
        Duration::from_secs(30),
        "20 nodes initialised despite 409s",
        || (0..20).all(|i| c.initialized(&format!("cf-{i}"))),
    )
    .await;
    for i in 0..20 {
        let node = c.node(&format!("cf-{i}"));
        assert_eq!(
            label(&node, "node.kubernetes.io/instance-type"),
            Some("k3s")
        );
        assert_eq!(addresses(&node)[0].0, "InternalIP");
    }
    assert!(ccm.metric("bare_ccm_node_initializations_total").await >= 20.0);
    let conflicts = c
        .emu
        .accounting()
        .attributed_requests()
        .iter()
        .filter(|(r, _)| r.user == sa_user("bare-ccm") && r.code == 409)
        .map(|(_, n)| n)
        .sum::<u64>();
    assert!(conflicts >= 20, "{conflicts} conflicts");
    c.assert_controller_never_forbidden();
}

/// How many of the controller's requests for `verb` on `nodes[/subresource]` were
/// answered `code`.
fn controller_requests(c: &Cluster, verb: &str, subresource: &str, code: u16) -> u64 {
    c.emu
        .accounting()
        .attributed_requests()
        .into_iter()
        .filter(|(r, _)| {
            r.user == sa_user("bare-ccm")
                && r.verb == verb
                && r.resource == "nodes"
                && r.subresource == subresource
                && r.code == code
        })
        .map(|(_, n)| n)
        .sum()
}

/// The node write is a JSON patch that tests the labels (and taints) the controller saw.
/// With 1 s of API latency, a label written by someone else lands between the controller's
/// status write and its node write: the server answers the failed `test` with 422, and the
/// controller re-reads the node and retries as for a 409 (not a permanent rejection). The
/// status write carries no resourceVersion, so it is never refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_added_between_read_and_write_fails_the_test_and_the_node_is_re_read() {
    let c = Cluster::start().await;
    let ccm = Ccm::start(&c.kubeconfig("bare-ccm"), &[]).await;
    eventually(Duration::from_secs(10), "lease acquired", || {
        c.lease_holder().is_some()
    })
    .await;
    let other = c.kubelet_client().await;
    c.emu.faults().set_latency(Duration::from_secs(1));
    let mut spec = KubeletSpec::new("race");
    spec.annotations
        .insert("bare-ccm.io/internal-ip".into(), "10.0.0.5".into());
    // Applied at +1 s; the controller's status write lands at about +2 s and its node
    // write, built from that answer, at about +3 s; this label lands at about +2.5 s.
    c.fleet.register(&spec).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let team = serde_json::json!({"metadata": {"labels": {"example.com/team": "storage"}}});
    kube::Api::<k8s_openapi::api::core::v1::Node>::all(other)
        .patch(
            "race",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&team),
        )
        .await
        .unwrap();
    eventually(Duration::from_secs(30), "race initialised", || {
        c.initialized("race")
    })
    .await;
    c.emu.faults().set_latency(Duration::ZERO);
    let node = c.node("race");
    assert_eq!(label(&node, "example.com/team"), Some("storage"));
    assert_eq!(
        label(&node, "node.kubernetes.io/instance-type"),
        Some("k3s")
    );
    assert_eq!(
        controller_requests(&c, "patch", "", 422),
        1,
        "the node write's test failed once"
    );
    assert!(
        controller_requests(&c, "get", "", 200) >= 1,
        "the node was re-read"
    );
    assert_eq!(controller_requests(&c, "patch", "status", 409), 0);
    let rejected = r#"bare_ccm_node_sync_failures_total{reason="api_rejected"}"#;
    assert_eq!(
        ccm.metric(rejected).await,
        0.0,
        "a failed test is no rejection"
    );
    c.assert_controller_never_forbidden();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taints_and_labels_added_concurrently_survive_initialisation() {
    let c = Cluster::start().await;
    let _ccm = Ccm::start(&c.kubeconfig("bare-ccm"), &[]).await;
    // Each "kubelet" edits its node right after registering it, racing the controller.
    let joins = k3s_agents("cc", 30).into_iter().map(|spec| {
        let fleet = &c.fleet;
        async move {
            fleet.register(&spec).await.unwrap();
            fleet
                .add_taint(&spec.name, "example.com/dedicated", "db", "NoSchedule")
                .await
                .unwrap();
            fleet
                .set_label(&spec.name, "example.com/team", Some("storage"))
                .await
                .unwrap();
        }
    });
    futures::future::join_all(joins).await;
    eventually(Duration::from_secs(30), "30 nodes initialised", || {
        (0..30).all(|i| c.initialized(&format!("cc-{i}")))
    })
    .await;
    for i in 0..30 {
        let node = c.node(&format!("cc-{i}"));
        assert!(
            has_taint(&node, "example.com/dedicated"),
            "cc-{i} lost a taint: {node}"
        );
        assert_eq!(label(&node, "example.com/team"), Some("storage"));
        assert_eq!(
            label(&node, "node.kubernetes.io/instance-type"),
            Some("k3s")
        );
    }
    c.assert_controller_never_forbidden();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_writes_wait_for_retry_after_then_succeed() {
    let c = Cluster::start().await;
    let _ccm = Ccm::start(&c.kubeconfig("bare-ccm"), &[]).await;
    c.emu.faults().fail_next(
        1,
        "patch",
        "nodes",
        InjectedStatus::TooManyRequests {
            retry_after_secs: 2,
        },
    );
    let start = Instant::now();
    // No simulated controller: the one node patch to throttle is bare-ccm's.
    let fleet = c.fleet_with(Registration::real_cluster()).await;
    fleet
        .register(&KubeletSpec::k3s_agent("slow", "10.0.2.1", None))
        .await
        .unwrap();
    eventually(Duration::from_secs(15), "slow initialised", || {
        c.initialized("slow")
    })
    .await;
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "Retry-After was not honoured"
    );
    let throttled = c
        .emu
        .accounting()
        .responses()
        .get(&("patch".to_string(), "nodes".to_string(), 429))
        .copied();
    assert_eq!(throttled, Some(1));
    c.assert_controller_never_forbidden();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_lease_is_taken_stops_writing_until_it_gets_it_back() {
    let c = Cluster::start().await;
    let ccm = Ccm::start(&c.kubeconfig("bare-ccm"), &FAST_ELECTION).await;
    eventually(Duration::from_secs(10), "lease acquired", || {
        c.lease_holder().is_some()
    })
    .await;
    // Another holder takes the lease and keeps renewing it.
    let admin = c.emu.client(&c.emu.admin_token()).await.unwrap();
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(admin, NS);
    let intruder = async {
        let mut taken = false;
        for _ in 0..12 {
            let mut lease = leases.get(LEASE).await.unwrap();
            let spec = lease.spec.get_or_insert_with(Default::default);
            spec.holder_identity = Some("intruder".into());
            spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                k8s_openapi::jiff::Timestamp::now(),
            ));
            taken |= leases
                .replace(LEASE, &Default::default(), &lease)
                .await
                .is_ok();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        taken
    };
    let probe = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        c.fleet
            .register(&KubeletSpec::k3s_agent("held", "10.0.3.1", None))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        c.initialized("held")
    };
    let (taken, initialised_while_held) = tokio::join!(intruder, probe);
    assert!(taken);
    assert_eq!(c.lease_holder().as_deref(), Some("intruder"));
    assert!(
        !initialised_while_held,
        "a replica without the lease wrote a node"
    );
    assert_eq!(ccm.metric("bare_ccm_leader").await, 0.0);
    // The intruder stopped renewing: after the lease duration the replica takes over.
    eventually(
        Duration::from_secs(15),
        "held initialised after takeover",
        || c.initialized("held"),
    )
    .await;
    assert_ne!(c.lease_holder().as_deref(), Some("intruder"));
    c.assert_controller_never_forbidden();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_the_lease_and_exits_within_five_seconds() {
    let c = Cluster::start().await;
    let mut ccm = Ccm::start(&c.kubeconfig("bare-ccm"), &[]).await;
    eventually(Duration::from_secs(10), "lease acquired", || {
        c.lease_holder().is_some()
    })
    .await;
    let start = Instant::now();
    ccm.signal("-TERM");
    let status = tokio::time::timeout(Duration::from_secs(5), ccm.child.wait())
        .await
        .expect("exited within 5 s")
        .unwrap();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        ccm.log_text()
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(c.lease_holder(), None, "lease released");
    c.assert_controller_never_forbidden();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_stderr_a_closed_pipe_nodes_are_still_initialised_and_sigterm_stops_within_five_seconds()
 {
    let c = Cluster::start().await;
    // Pipe closed before the controller logs anything but its first lines; the ready
    // check in `start` already needed the HTTP server to survive them.
    let mut ccm = Ccm::start_with_stderr_closed(&c.kubeconfig("bare-ccm"), &[]).await;
    c.fleet
        .register_all(k3s_agents("pipe", 5), None, 5)
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "every node initialised", || {
        (0..5).all(|i| c.initialized(&format!("pipe-{i}")))
    })
    .await;
    assert_eq!(
        ccm.get("/healthz").await.map(|(code, _)| code),
        Some(200),
        "still serving"
    );

    let start = Instant::now();
    ccm.signal("-TERM");
    let status = tokio::time::timeout(Duration::from_secs(5), ccm.child.wait())
        .await
        .expect("exited within 5 s")
        .unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(c.lease_holder(), None, "lease released");
    c.assert_controller_never_forbidden();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_never_initialised_by_a_cloud_controller_are_never_written_nor_warned_about() {
    let c = Cluster::start().await;
    // Registered and untainted before bare-ccm runs, without a providerID: their kubelets
    // are not external and own the addresses.
    let mut plain = KubeletSpec::k3s_agent("legacy", "10.0.0.7", None);
    if let Some(args) = plain.node_args.as_mut() {
        args.extend(["--node-external-ip".to_string(), "203.0.113.7".to_string()]);
    }
    let mut broken = KubeletSpec::new("legacy-broken");
    broken.node_ip = vec!["10.0.0.9".into()];
    broken
        .annotations
        .insert("bare-ccm.io/internal-ip".into(), "10.0.0.5".into());
    for spec in [&plain, &broken] {
        c.fleet.register(spec).await.unwrap();
        c.fleet.remove_taint(&spec.name, TAINT).await.unwrap();
    }
    let before = (
        addresses(&c.node("legacy")),
        addresses(&c.node("legacy-broken")),
    );

    let _ccm = Ccm::start(
        &c.kubeconfig("bare-ccm"),
        &["--node-status-update-frequency", "1s"],
    )
    .await;
    // A node bare-ccm does initialise, then several full re-checks of every node.
    c.join(&KubeletSpec::k3s_agent("fresh", "10.0.0.8", None), 10)
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let writes = c.node_writes_by(&sa_user("bare-ccm"));
    assert!(
        writes.contains_key("fresh"),
        "the controller was active: {writes:?}"
    );
    assert!(!writes.contains_key("legacy"), "{writes:?}");
    assert!(!writes.contains_key("legacy-broken"), "{writes:?}");
    assert_eq!(
        (
            addresses(&c.node("legacy")),
            addresses(&c.node("legacy-broken"))
        ),
        before
    );
    assert!(
        c.events("legacy-broken", "AddressResolutionFailed")
            .is_empty()
    );
    assert!(c.events("legacy", "AddressResolutionFailed").is_empty());
    c.assert_controller_never_forbidden();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_node_controller_disabled_the_process_is_ready_and_writes_nothing() {
    let c = Cluster::start().await;
    let mut ccm = Ccm::start(&c.kubeconfig("bare-ccm"), &["--controllers=-cloud-node"]).await;
    c.fleet
        .register(&KubeletSpec::k3s_agent("idle", "10.0.0.6", None))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(has_taint(&c.node("idle"), TAINT));
    assert!(c.node_writes_by(&sa_user("bare-ccm")).is_empty());
    assert_eq!(c.lease_holder(), None, "no lease without a controller");
    assert_eq!(ccm.get("/healthz").await.map(|(code, _)| code), Some(200));

    ccm.signal("-TERM");
    let status = tokio::time::timeout(Duration::from_secs(5), ccm.child.wait())
        .await
        .expect("exited within 5 s")
        .unwrap();
    assert!(status.success(), "exit status {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leader_is_killed_the_standby_takes_over_and_no_two_replicas_write_at_once() {
    let c = Cluster::with_accounts(&["ccm-a", "ccm-b"]).await;
    let mut a = Ccm::start(&c.kubeconfig("ccm-a"), &FAST_ELECTION).await;
    eventually(Duration::from_secs(10), "a leads", || {
        c.lease_holder().is_some()
    })
    .await;
    let a_identity = c.lease_holder().unwrap();
    let b = Ccm::start(&c.kubeconfig("ccm-b"), &FAST_ELECTION).await;
    c.fleet
        .register_all(k3s_agents("pre", 5), None, 5)
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "a initialises", || {
        (0..5).all(|i| c.initialized(&format!("pre-{i}")))
    })
    .await;
    assert_eq!(c.lease_holder().as_deref(), Some(a_identity.as_str()));
    assert_eq!(b.metric("bare_ccm_leader").await, 0.0);

    a.signal("-KILL");
    a.child.wait().await.unwrap();
    let killed_at = std::time::SystemTime::now();
    c.fleet
        .register_all(k3s_agents("post", 5), None, 5)
        .await
        .unwrap();
    eventually(
        Duration::from_secs(15),
        "b takes over and initialises",
        || (0..5).all(|i| c.initialized(&format!("post-{i}"))),
    )
    .await;
    assert_ne!(c.lease_holder().as_deref(), Some(a_identity.as_str()));

    let writes = c.emu.accounting().writes();
    let (ua, ub) = (sa_user("ccm-a"), sa_user("ccm-b"));
    assert!(
        writes
            .iter()
            .filter(|w| w.resource == "nodes")
            .all(|w| (w.user == ua && w.wall <= killed_at)
                || (w.user == ub && w.wall >= killed_at)
                || (w.user != ua && w.user != ub)),
        "a node write overlapped the leadership of the other replica"
    );
    assert!(writes.iter().any(|w| w.resource == "nodes" && w.user == ub));
    c.assert_controller_never_forbidden();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_cut_and_expired_resource_version_are_recovered() {
    let c = Cluster::start().await;
    let _ccm = Ccm::start(&c.kubeconfig("bare-ccm"), &[]).await;
    c.fleet
        .register_all(k3s_agents("w1", 5), None, 5)
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "first batch", || {
        (0..5).all(|i| c.initialized(&format!("w1-{i}")))
    })
    .await;
    c.emu.expire_resource_versions();
    c.emu.cut_watches();
    c.fleet
        .register_all(k3s_agents("w2", 5), None, 5)
        .await
        .unwrap();
    eventually(Duration::from_secs(20), "second batch after 410", || {
        (0..5).all(|i| c.initialized(&format!("w2-{i}")))
    })
    .await;
    c.assert_controller_never_forbidden();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_down_for_ten_seconds_then_back_is_survived() {
    let c = Cluster::start().await;
    let fleet = Fleet::with_retry_budget(c.kubelet_client().await, Duration::from_secs(30));
    let ccm = Ccm::start(&c.kubeconfig("bare-ccm"), &FAST_ELECTION).await;
    eventually(Duration::from_secs(10), "lease acquired", || {
        c.lease_holder().is_some()
    })
    .await;
    c.emu
        .faults()
        .refuse_connections_for(Duration::from_secs(10));
    // Registration retries through the outage; the nodes appear when the API is back.
    fleet
        .register_all(k3s_agents("down", 5), None, 5)
        .await
        .unwrap();
    eventually(
        Duration::from_secs(40),
        "nodes initialised after the outage",
        || (0..5).all(|i| c.initialized(&format!("down-{i}"))),
    )
    .await;
    assert_eq!(ccm.get("/healthz").await.map(|r| r.0), Some(200));
    c.assert_controller_never_forbidden();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_reload_applies_valid_files_and_rejects_invalid_ones() {
    let c = Cluster::start().await;
    let config = c.dir.path().join("config.yaml");
    std::fs::write(&config, "extraLabels:\n  example.com/pool: blue\n").unwrap();
    let _ccm = Ccm::with_config_file(&c, &config).await;
    c.join(&KubeletSpec::k3s_agent("r1", "10.0.1.1", None), 10)
        .await;
    assert_eq!(label(&c.node("r1"), "example.com/pool"), Some("blue"));

    std::fs::write(
        &config,
        "extraLabels:\n  example.com/pool: green\nnoSuchKey: 1\n",
    )
    .unwrap();
    eventually(
        Duration::from_secs(10),
        "ConfigInvalid warning on the lease",
        || !c.events(LEASE, "ConfigInvalid").is_empty(),
    )
    .await;
    c.join(&KubeletSpec::k3s_agent("r2", "10.0.1.2", None), 10)
        .await;
    assert_eq!(
        label(&c.node("r2"), "example.com/pool"),
        Some("blue"),
        "old config kept"
    );

    std::fs::write(&config, "extraLabels:\n  example.com/pool: green\n").unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.join(&KubeletSpec::k3s_agent("r3", "10.0.1.3", None), 10)
        .await;
    assert_eq!(label(&c.node("r3"), "example.com/pool"), Some("green"));
    // Labels already on a node are never overwritten by a new config.
    assert_eq!(label(&c.node("r1"), "example.com/pool"), Some("blue"));
    c.assert_controller_never_forbidden();
}

/// A config change adds what is missing to nodes initialised before it (zone labels, an
/// extra label, and the labels of an inventory entry whose selector matches only now),
/// and overwrites nothing: a label the node already has keeps its value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_change_adds_missing_labels_to_initialised_nodes_and_overwrites_none() {
    let c = Cluster::start().await;
    let config = c.dir.path().join("config.yaml");
    std::fs::write(&config, "extraLabels:\n  example.com/pool: blue\n").unwrap();
    let _ccm = Ccm::with_config_file(&c, &config).await;
    c.join(&KubeletSpec::k3s_agent("l1", "10.0.2.1", None), 10)
        .await;
    c.fleet
        .set_label("l1", "example.com/rack", Some("r7"))
        .await
        .unwrap();
    std::fs::write(
        &config,
        "zone: z1\nextraLabels:\n  example.com/pool: green\n  example.com/managed: \"yes\"\ninventory:\n  - selector: {matchLabels: {example.com/rack: r7}}\n    labels: {example.com/row: a}\n",
    )
    .unwrap();
    eventually(Duration::from_secs(10), "labels added to l1", || {
        let node = c.node("l1");
        label(&node, "topology.kubernetes.io/zone") == Some("z1")
            && label(&node, "example.com/managed") == Some("yes")
            && label(&node, "example.com/row") == Some("a")
    })
    .await;
    let node = c.node("l1");
    assert_eq!(
        label(&node, "failure-domain.beta.kubernetes.io/zone"),
        Some("z1")
    );
    assert_eq!(
        label(&node, "example.com/pool"),
        Some("blue"),
        "never overwritten"
    );
    assert_eq!(label(&node, "example.com/rack"), Some("r7"));
    c.assert_controller_never_forbidden();
}

/// A write refused with 403 is not retried every few seconds: it backs off from 5 minutes,
/// a Warning Event names the missing grant, and the node keeps its taint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_write_backs_off_for_minutes_and_a_warning_names_the_missing_grant() {
    let c = Cluster::start().await;
    let shipped = support::manifest_with_auth_delegator();
    let without_status = shipped.replace(
        "resources: [\"nodes/status\"]\n    verbs: [\"patch\"]",
        "resources: [\"nodes/status\"]\n    verbs: [\"get\"]",
    );
    assert_ne!(
        without_status, shipped,
        "the nodes/status rule is in {MANIFEST}"
    );
    let policy = RbacPolicy::from_yaml(&test_rbac(&without_status)).unwrap();
    c.emu.set_rbac(Some(policy));
    let ccm = Ccm::start(&c.kubeconfig("bare-ccm"), &[]).await;
    // Without the simulated controllers' writes, so that nothing but the backoff can
    // bring the node back to a worker.
    let fleet = c.fleet_with(Registration::real_cluster()).await;
    // The kubelet reports only a Hostname: the InternalIP needs a status write.
    let mut spec = KubeletSpec::new("f1");
    spec.annotations
        .insert("bare-ccm.io/internal-ip".into(), "10.0.3.1".into());
    fleet.register(&spec).await.unwrap();
    let (_, note) = c
        .first_event("f1", "WriteForbidden", 10, "WriteForbidden event")
        .await;
    assert!(
        note.contains("system:serviceaccount:kube-system:bare-ccm may not patch nodes/status"),
        "{note}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        controller_requests(&c, "patch", "status", 403),
        1,
        "retried within seconds"
    );
    assert!(has_taint(&c.node("f1"), TAINT));
    let rejected = r#"bare_ccm_node_sync_failures_total{reason="api_rejected"}"#;
    assert_eq!(ccm.metric(rejected).await, 1.0);
}

/// Event names stay valid DNS subdomains (at most 253 characters) for the longest node
/// names: a Normal `Synced` and a Warning are both stored for 253-character nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_about_nodes_with_253_character_names_are_stored() {
    let c = Cluster::start().await;
    let _ccm = Ccm::start(&c.kubeconfig("bare-ccm"), &[]).await;
    let admin = c.emu.client(&c.emu.admin_token()).await.unwrap();
    let nodes = kube::Api::<k8s_openapi::api::core::v1::Node>::all(admin);
    let ok_name = format!("{}.{}", "a".repeat(200), "b".repeat(52));
    let bad_name = format!("{}-{}", "c".repeat(235), "d".repeat(17));
    for (name, spec) in [
        (&ok_name, KubeletSpec::k3s_agent(&ok_name, "10.0.4.1", None)),
        (&bad_name, support::mismatched_node_ip_kubelet(&bad_name)),
    ] {
        assert_eq!(name.len(), 253);
        let mut node = bare_ccm_emulator::kubelet::node_object(&spec);
        // A label value holds at most 63 characters; the kubelet's hostname differs.
        node["metadata"]["labels"]["kubernetes.io/hostname"] = Value::from("host");
        // As k3s's agent has described it already, so it does not wait.
        if let Some(args) = &spec.node_args {
            node["metadata"]["annotations"]["k3s.io/node-args"] =
                Value::from(serde_json::to_string(args).unwrap());
        }
        let node = serde_json::from_value(node).unwrap();
        nodes.create(&Default::default(), &node).await.unwrap();
    }
    eventually(Duration::from_secs(10), "Synced event", || {
        !c.events(&ok_name, "Synced").is_empty()
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "InitializationFailed event",
        || !c.events(&bad_name, "InitializationFailed").is_empty(),
    )
    .await;
    for event in [
        &c.events(&ok_name, "Synced")[0],
        &c.events(&bad_name, "InitializationFailed")[0],
    ] {
        let name = event
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(name.len() <= 253, "{name}");
    }
    c.assert_controller_never_forbidden();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_api_server_ends_leadership_at_the_renew_deadline() {
    let c = Cluster::start().await;
    let ccm = Ccm::start(&c.kubeconfig("bare-ccm"), &FAST_ELECTION).await;
    eventually(Duration::from_secs(10), "lease acquired", || {
        c.lease_holder().is_some()
    })
    .await;
    assert_eq!(ccm.metric("bare_ccm_leader").await, 1.0);
    // Every request now takes 30 s: renewals hang. Each attempt is bounded by the renew
    // deadline (3 s), so the replica stops leading well before the answers come.
    c.emu.faults().set_latency(Duration::from_secs(30));
    let start = std::time::Instant::now();
    while ccm.metric("bare_ccm_leader").await != 0.0 {
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "still reporting leadership {:?} into a hung API server",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.emu.faults().set_latency(Duration::ZERO);
}
