//! Proof that the RBAC shipped in `manifests/bare-ccm.yaml` is least privilege: the real
//! `bare-ccm run` binary, authenticated as the ServiceAccount `kube-system/bare-ccm`, runs
//! against the API emulator with RBAC enforced from exactly the manifest's Roles,
//! ClusterRoles and bindings, through a scenario that makes it use every capability it has
//! (initialisation, conflict re-read, refresh, Warning Events and their series, watch
//! recovery, leader election, config rejection, lease release). Then:
//!
//! 1. the controller was never refused (no 403): the manifest grants all it uses;
//! 2. every granted permission authorised at least one of its requests: the manifest grants
//!    nothing it does not use (the table of grant → request count is printed);
//! 3. with one rule removed the controller is refused exactly there, so the proof is not
//!    vacuous.
//!
//! Discovery and `/version` are not part of the proof: kube-apiserver grants them to every
//! authenticated user through the bootstrap ClusterRoles `system:discovery` and
//! `system:public-info-viewer` (kubernetes
//! `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`), so the manifest needs no
//! rule for them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bare_ccm_emulator::Emulator;
use bare_ccm_emulator::accounting::AttributedRequest;
use bare_ccm_emulator::faults::InjectedStatus;
use bare_ccm_emulator::kubelet::KubeletSpec;
use bare_ccm_emulator::rbac::{GrantedRule, RbacPolicy, UserInfo};
use serde_json::Value;
use tokio::process::Child;

#[allow(dead_code)]
mod support;
use support::{
    Cluster, FAST_ELECTION, LEASE, MANIFEST, NS, TAINT, events_about, eventually_or_show,
    free_port, has_address, has_taint, manifest,
};

const SA: &str = "bare-ccm";
const USER: &str = "system:serviceaccount:kube-system:bare-ccm";

fn shipped_policy() -> RbacPolicy {
    RbacPolicy::from_yaml(&manifest()).unwrap_or_else(|e| panic!("{MANIFEST}: {e}"))
}

/// The manifest's RBAC with every rule for which `drop` holds removed (at least one must
/// be), re-read through the same loader.
fn policy_without(drop: impl Fn(&Value) -> bool) -> RbacPolicy {
    let mut docs: Vec<Value> =
        serde_saphyr::from_multiple(&manifest()).unwrap_or_else(|e| panic!("{MANIFEST}: {e}"));
    let mut removed = 0;
    for doc in &mut docs {
        if let Some(rules) = doc.get_mut("rules").and_then(Value::as_array_mut) {
            let before = rules.len();
            rules.retain(|rule| !drop(rule));
            removed += before - rules.len();
        }
    }
    assert!(removed > 0, "no rule to remove in {MANIFEST}");
    // JSON is YAML: each document is written back as one JSON line.
    let yaml: Vec<String> = docs.iter().map(Value::to_string).collect();
    RbacPolicy::from_yaml(&yaml.join("\n---\n")).unwrap_or_else(|e| panic!("{e}"))
}

/// The flags the manifest's workload gives `bare-ccm run`, checking that it runs as the
/// ServiceAccount under test: the proof holds for that identity, and only for it.
fn deployment_flags() -> Vec<String> {
    let workload = support::manifest_workload();
    assert_eq!(
        (
            workload.pointer("/metadata/namespace"),
            workload.pointer("/spec/template/spec/serviceAccountName"),
        ),
        (Some(&Value::from(NS)), Some(&Value::from(SA))),
        "the workload in {MANIFEST} must run as ServiceAccount {NS}/{SA}"
    );
    support::workload_flags()
}

/// The ServiceAccount as the authenticator presents it to the authorizer (apiserver
/// `pkg/authentication/serviceaccount/util.go`).
fn service_account() -> UserInfo {
    UserInfo {
        name: USER.into(),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{NS}"),
            "system:authenticated".into(),
        ],
    }
}

/// The controller's requests, as counted by the emulator.
fn controller_traffic(emu: &Emulator) -> Vec<(AttributedRequest, u64)> {
    emu.accounting()
        .attributed_requests()
        .into_iter()
        .filter(|(request, _)| request.user == USER)
        .collect()
}

/// How many requests of `traffic` each grant authorises (refused requests aside).
fn usage(grants: &[GrantedRule], traffic: &[(AttributedRequest, u64)]) -> Vec<(String, u64)> {
    grants
        .iter()
        .map(|grant| {
            let used = traffic
                .iter()
                .filter(|(request, _)| request.code != 403 && grant.allows(&request.attributes()))
                .map(|(_, count)| count)
                .sum();
            (grant.to_string(), used)
        })
        .collect()
}

/// The failure message for each grant no request used.
fn unused(usage: &[(String, u64)]) -> Vec<String> {
    usage
        .iter()
        .filter(|(_, used)| *used == 0)
        .map(|(grant, _)| format!("grant {grant} is never used: remove it from {MANIFEST}"))
        .collect()
}

fn table(usage: &[(String, u64)]) -> String {
    let width = usage.iter().map(|(g, _)| g.len()).max().unwrap_or(0);
    let mut out = format!("{:<width$}  requests\n", "grant (manifests/bare-ccm.yaml)");
    for (grant, used) in usage {
        out.push_str(&format!("{grant:<width$}  {used}\n"));
    }
    out
}

fn describe(request: &AttributedRequest) -> String {
    let group = support::unless_empty(&request.api_group, |g| format!(".{g}"));
    let sub = support::unless_empty(&request.subresource, |s| format!("/{s}"));
    format!(
        "{} {}{group}{sub} name={:?} namespace={:?} -> {}",
        request.verb, request.resource, request.name, request.namespace, request.code
    )
}

/// What the RBAC proof reads from a [`Cluster`] whose API server enforces the policy under
/// test (its kubelets are admins, outside that policy).
impl Cluster {
    async fn start(policy: RbacPolicy) -> Cluster {
        Cluster::builder().rbac(policy).start().await
    }

    fn node(&self, name: &str) -> Option<Value> {
        self.emu.get_object("nodes", None, name)
    }

    fn renew_time(&self) -> Option<Value> {
        self.emu
            .get_object("leases", Some(NS), LEASE)?
            .pointer("/spec/renewTime")
            .cloned()
    }

    /// The Events in `namespace` about `object` with `reason`, as stored (the store keeps
    /// the core/v1 form, where `regarding` is `involvedObject`).
    fn events(&self, namespace: &str, object: &str, reason: &str) -> Vec<Value> {
        events_about(&self.emu, namespace, object, reason)
    }

    /// Whether an Event about `object` with `reason` was repeated as a series (which
    /// kube-runtime's recorder writes with a patch).
    fn has_series(&self, namespace: &str, object: &str, reason: &str) -> bool {
        self.events(namespace, object, reason)
            .iter()
            .any(|e| e.pointer("/series/count").and_then(Value::as_i64) >= Some(2))
    }
}

/// A k3s agent (`--node-ip 10.0.0.5` in its node-args) whose kubelet reports only its
/// Hostname address: initialising it takes both writes, `nodes/status` (the InternalIP)
/// and `nodes` (the taint).
fn hostname_only_agent(name: &str) -> KubeletSpec {
    let mut spec = KubeletSpec::k3s_agent(name, "10.0.0.5", None);
    spec.report_internal_ip = false;
    spec
}

/// One `bare-ccm run` process with the Deployment's flags, killed when dropped.
struct Ccm {
    child: Child,
    log: PathBuf,
    secure_port: u16,
}

impl Ccm {
    /// The controller's log, for the message of a timed-out wait.
    fn log(&self) -> impl Fn() -> String + '_ {
        || format!("; bare-ccm log:\n{}", self.log_text())
    }

    async fn start(kubeconfig: &Path, extra: &[&str]) -> Ccm {
        let (port, secure_port) = (free_port(), free_port());
        let log = kubeconfig.with_extension("log");
        let child = support::run_command_with_secure_port(kubeconfig, port, secure_port)
            .args(deployment_flags())
            .args(FAST_ELECTION)
            .args(extra)
            .env("RUST_LOG", "info,bare_ccm=debug")
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let ccm = Ccm {
            child,
            log,
            secure_port,
        };
        support::wait_ready(port, Duration::from_secs(20), || ccm.log_text()).await;
        ccm
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status within 5 s.
    async fn terminate(&mut self) -> std::process::ExitStatus {
        support::signal(&self.child, "-TERM");
        tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("no exit 5 s after SIGTERM; log:\n{}", self.log_text()))
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_rbac_grants_everything_the_controller_uses_and_nothing_more() {
    let policy = shipped_policy();
    let c = Cluster::start(policy.clone()).await;
    let config = c.dir.path().join("config.yaml");
    std::fs::write(&config, "extraLabels:\n  example.com/pool: blue\n").unwrap();
    let config_arg = config.to_str().unwrap();
    let mut ccm = Ccm::start(
        &c.kubeconfig(SA),
        &["--config", config_arg, "--config-poll-interval", "200ms"],
    )
    .await;
    let wait = Duration::from_secs(15);
    let annotate = async |node: &str, key: &str, value: &str| {
        c.fleet
            .set_annotation(node, key, Some(value))
            .await
            .unwrap();
    };

    // Leader election: get (404), create, then renewals (update).
    eventually_or_show(wait, "the lease is taken", ccm.log(), || {
        c.lease_holder().is_some()
    })
    .await;
    let acquired = c.renew_time();
    eventually_or_show(wait, "the lease is renewed", ccm.log(), || {
        c.renew_time() != acquired
    })
    .await;

    // A node joins tainted; the first status write gets 409, so the node is re-read.
    c.emu
        .faults()
        .fail_next(1, "patch", "nodes/status", InjectedStatus::Conflict);
    c.fleet.register(&hostname_only_agent("n1")).await.unwrap();
    eventually_or_show(wait, "n1 initialised", ccm.log(), || c.initialized("n1")).await;

    // An address change after initialisation is written by the refresh.
    annotate("n1", "bare-ccm.io/external-ip", "203.0.113.5").await;
    eventually_or_show(wait, "n1 refreshed with its ExternalIP", ccm.log(), || {
        c.node("n1")
            .is_some_and(|n| has_address(&n, "ExternalIP", "203.0.113.5"))
    })
    .await;

    // provided-node-ip mismatch: a Warning, then (another wrong address) its series.
    let mm = support::mismatched_node_ip_kubelet("mm");
    c.fleet.register(&mm).await.unwrap();
    eventually_or_show(wait, "InitializationFailed on mm", ccm.log(), || {
        !c.events("default", "mm", "InitializationFailed").is_empty()
    })
    .await;
    annotate("mm", "bare-ccm.io/internal-ip", "10.0.0.6").await;
    eventually_or_show(
        wait,
        "the warning on mm repeated as a series",
        ccm.log(),
        || c.has_series("default", "mm", "InitializationFailed"),
    )
    .await;
    assert!(c.node("mm").is_some_and(|n| has_taint(&n, TAINT)));
    annotate("mm", "bare-ccm.io/internal-ip", "10.0.0.9").await;
    eventually_or_show(wait, "mm initialised once fixed", ccm.log(), || {
        c.initialized("mm")
    })
    .await;

    // Watch cut with an expired resourceVersion: the controller lists again.
    c.emu.expire_resource_versions();
    c.emu.cut_watches();
    c.fleet
        .register(&KubeletSpec::k3s_agent("w1", "10.0.0.7", None))
        .await
        .unwrap();
    eventually_or_show(wait, "w1 initialised after the re-list", ccm.log(), || {
        c.initialized("w1")
    })
    .await;

    // Rejected config files: a Warning on the Lease, then its series.
    std::fs::write(&config, "noSuchKey: 1\n").unwrap();
    eventually_or_show(wait, "ConfigInvalid on the lease", ccm.log(), || {
        !c.events(NS, LEASE, "ConfigInvalid").is_empty()
    })
    .await;
    std::fs::write(&config, "otherUnknownKey: 1\n").unwrap();
    eventually_or_show(
        wait,
        "the config warning repeated as a series",
        ccm.log(),
        || c.has_series(NS, LEASE, "ConfigInvalid"),
    )
    .await;

    // A scrape of the secure port: bare-ccm asks for a TokenReview and a
    // SubjectAccessReview. system:auth-delegator is bootstrap policy, not the manifest's:
    // its grants are bare-ccm's once the manifest binds it, and must then be used too.
    if support::manifest_binds_auth_delegator() {
        let scraper = c.emu.issue_token("scraper", &[]);
        let answer = support::https_get(ccm.secure_port, "/metrics", Some(&scraper)).await;
        assert_eq!(answer.map(|r| r.0), Some(403), "reviewed, and not allowed");
    }

    // SIGTERM releases the lease.
    let status = ccm.terminate().await;
    assert!(status.success(), "exit {status}; log:\n{}", ccm.log_text());
    assert_eq!(c.lease_holder(), None, "lease released");

    let traffic = controller_traffic(&c.emu);
    let requests: Vec<String> = traffic
        .iter()
        .map(|(r, n)| format!("  {n:>4} × {}", describe(r)))
        .collect();
    let requests = requests.join("\n");
    println!("requests of {USER}:\n{requests}");

    // 1. Nothing the controller did was refused.
    let refused: Vec<String> = traffic
        .iter()
        .filter(|(r, _)| r.code == 403)
        .map(|(r, _)| describe(r))
        .collect();
    assert!(
        refused.is_empty(),
        "{MANIFEST} lacks grants the controller needs (403):\n{}",
        refused.join("\n")
    );
    // The per-grant matching agrees with the authorizer: each request is covered.
    let grants = policy.rules_for(&service_account());
    for (request, _) in &traffic {
        assert!(
            grants.iter().any(|g| g.allows(&request.attributes())),
            "no grant covers {}",
            describe(request)
        );
    }

    // 2. Every grant was used.
    let used = usage(&grants, &traffic);
    println!("{}", table(&used));
    let never = unused(&used);
    assert!(never.is_empty(), "{}\n{}", never.join("\n"), table(&used));

    // The check itself is not vacuous: a grant the controller never needs is reported.
    let mut widened = grants.clone();
    widened.push(GrantedRule {
        verb: "delete".into(),
        api_group: String::new(),
        resource: "nodes".into(),
        resource_name: None,
        namespace: None,
        non_resource_url: None,
    });
    assert_eq!(
        unused(&usage(&widened, &traffic)),
        [format!(
            "grant delete nodes cluster-wide is never used: remove it from {MANIFEST}"
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_nodes_status_grant_the_controller_is_refused_and_the_node_stays_tainted() {
    let is_status_rule = |rule: &Value| {
        rule.get("resources")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|x| x == "nodes/status"))
    };
    let reduced = policy_without(is_status_rule);
    let c = Cluster::start(reduced.clone()).await;
    let ccm = Ccm::start(&c.kubeconfig(SA), &[]).await;
    c.fleet.register(&hostname_only_agent("n1")).await.unwrap();

    let refused_status_patch = || {
        controller_traffic(&c.emu).into_iter().find(|(r, _)| {
            r.code == 403 && r.verb == "patch" && r.resource == "nodes" && r.subresource == "status"
        })
    };
    eventually_or_show(
        Duration::from_secs(15),
        "a 403 on patch nodes/status",
        ccm.log(),
        || refused_status_patch().is_some(),
    )
    .await;
    let (refused, _) = refused_status_patch().unwrap();
    assert_eq!(refused.name, "n1");
    // The removed rule, and only it, makes the difference for that request.
    let sa = service_account();
    assert!(shipped_policy().authorize(&sa, &refused.attributes()));
    assert!(!reduced.authorize(&sa, &refused.attributes()));

    // Without its addresses the node is never initialised, and nothing else was refused.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        c.node("n1").is_some_and(|n| has_taint(&n, TAINT)),
        "n1 was initialised"
    );
    let other_refusals: Vec<String> = controller_traffic(&c.emu)
        .iter()
        .filter(|(r, _)| r.code == 403 && r.subresource != "status")
        .map(|(r, _)| describe(r))
        .collect();
    assert!(other_refusals.is_empty(), "{other_refusals:?}");
}

/// The agent's manifest, which installs `bare-ccm agent` and not the controller.
const AGENT_MANIFEST: &str = "bare-ccm-agent.yaml";

/// The proof runs on `bare-ccm.yaml`; the other variants must grant exactly the same. The
/// agent's manifest grants the controller nothing, and its own ServiceAccount only what
/// the agent uses: get and patch nodes (its admission policy narrows the patch further).
#[test]
fn every_manifest_variant_grants_the_same_permissions() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/manifests");
    let shipped = shipped_policy().rules_for(&service_account());
    let mut variants = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let policy =
            RbacPolicy::from_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if path.file_name().and_then(|n| n.to_str()) == Some(AGENT_MANIFEST) {
            assert_eq!(policy.rules_for(&service_account()), Vec::new());
            let agent = UserInfo {
                name: format!("system:serviceaccount:{NS}:bare-ccm-agent"),
                ..service_account()
            };
            let granted: Vec<(String, String, String)> = policy
                .rules_for(&agent)
                .into_iter()
                .map(|r| (r.verb, r.api_group, r.resource))
                .collect();
            let node = |verb: &str| (verb.to_string(), String::new(), "nodes".to_string());
            assert_eq!(
                granted,
                vec![node("get"), node("patch")],
                "{AGENT_MANIFEST}"
            );
            continue;
        }
        assert_eq!(
            policy.rules_for(&service_account()),
            shipped,
            "{} grants other permissions than {MANIFEST}",
            path.display()
        );
        variants += 1;
    }
    assert!(variants >= 2, "no variant besides {MANIFEST} in {dir}");
}
