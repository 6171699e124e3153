//! The shipped RBAC against the real authorizer (kube-apiserver with Node,RBAC, on the
//! test bed of tests/testbed). With every rule of the manifest's ClusterRole and Roles,
//! bare-ccm does everything it does (initialise nodes, write addresses, lead, record
//! Events about nodes and about its config) and the audit log shows no 403 for it, and
//! every rule authorised some of its requests. Then each rule is removed in turn, and the
//! behaviour that rule exists for fails, with the API server refusing exactly the
//! requests the rule covered.
//!
//! tests/rbac_proof.rs makes the same proof per verb on the emulator, where faults can
//! be injected to reach the rarer requests (a re-read after a conflict).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

#[allow(dead_code)]
mod support;
use support::testbed::{AuditEvent, Ccm, Joined, Testbed, exclusive, get_json};
use support::{LEASE, NS, TAINT, has_address, has_taint, manifest_documents, sa_user};

const SA: &str = "bare-ccm";

/// One rule of the shipped RBAC: which object holds it, its namespace (None for the
/// ClusterRole) and the rule itself.
#[derive(Clone, Debug)]
struct Rule {
    role: String,
    namespace: Option<String>,
    index: usize,
    rule: Value,
}

impl Rule {
    fn strings(&self, key: &str) -> Vec<String> {
        self.rule[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    }

    /// Whether the rule authorises the request `e` (the RBAC authorizer's matching,
    /// plugin/pkg/auth/authorizer/rbac/rbac.go RuleAllows).
    fn allows(&self, e: &AuditEvent) -> bool {
        let Some(o) = &e.object_ref else { return false };
        let resource = if o.subresource.is_empty() {
            o.resource.clone()
        } else {
            format!("{}/{}", o.resource, o.subresource)
        };
        let names = self.strings("resourceNames");
        self.namespace.as_ref().is_none_or(|ns| *ns == o.namespace)
            && self.strings("apiGroups").contains(&o.api_group)
            && self.strings("resources").contains(&resource)
            && self.strings("verbs").contains(&e.verb)
            && (names.is_empty() || names.contains(&o.name))
    }

    fn describe(&self) -> String {
        let scope = self.namespace.as_deref().unwrap_or("cluster");
        format!(
            "{} {} ({scope}) rule {}: {:?} {:?} {:?}",
            if self.namespace.is_some() {
                "Role"
            } else {
                "ClusterRole"
            },
            self.role,
            self.index,
            self.strings("resources"),
            self.strings("verbs"),
            self.strings("resourceNames"),
        )
    }
}

/// Every rule of the manifest's ClusterRoles and Roles.
fn shipped_rules() -> Vec<Rule> {
    manifest_documents()
        .iter()
        .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
        .flat_map(|d| {
            let role = d
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let namespace = (d["kind"] == "Role").then(|| {
                d.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            });
            d["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .map(move |(index, rule)| Rule {
                    role: role.clone(),
                    namespace: namespace.clone(),
                    index,
                    rule: rule.clone(),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Applies the manifest's ServiceAccount, ConfigMap and RBAC, without `drop` if given. Not
/// its Lease: bare-ccm creates a missing one, and the create rule is under test too.
fn apply_rbac(bed: &Testbed, drop: Option<&Rule>) {
    const KINDS: [&str; 6] = [
        "ServiceAccount",
        "ConfigMap",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ];
    let items: Vec<Value> = manifest_documents()
        .into_iter()
        .filter(|d| KINDS.iter().any(|k| d["kind"] == *k))
        .map(|mut d| {
            if let Some(rule) = drop {
                let same_role = d["kind"]
                    == if rule.namespace.is_some() {
                        "Role"
                    } else {
                        "ClusterRole"
                    }
                    && d.pointer("/metadata/name").and_then(Value::as_str)
                        == Some(rule.role.as_str())
                    && d.pointer("/metadata/namespace").and_then(Value::as_str)
                        == rule.namespace.as_deref();
                if same_role && let Some(rules) = d["rules"].as_array_mut() {
                    rules.remove(rule.index);
                }
            }
            d
        })
        .collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    bed.kubectl_with_input(&["apply", "-f", "-"], Some(&list.to_string()));
    // The RBAC authorizer reads roles through informers: give it a moment.
    std::thread::sleep(Duration::from_secs(1));
}

/// The config of the scenario: nodes named mm-* get an inventory InternalIP that their
/// kubelet's --node-ip contradicts, so they stay tainted with a Warning.
fn config(address: &str) -> String {
    format!(
        "extraLabels:\n  example.com/pool: blue\ninventory:\n  - nameRegex: \"^mm-.*\"\n    addresses:\n      - {{type: InternalIP, address: {address}}}\n"
    )
}

/// Polls `cond` every 200 ms for at most `limit`; whether it came true.
async fn within<F: Future<Output = bool>>(limit: Duration, mut cond: impl FnMut() -> F) -> bool {
    let start = Instant::now();
    loop {
        if cond().await {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// bare-ccm's requests in the audit log after the first `skip` entries.
fn ccm_requests(bed: &Testbed, skip: usize) -> Vec<AuditEvent> {
    let user = sa_user(SA);
    bed.audit()
        .into_iter()
        .skip(skip)
        .filter(|e| e.user.username == user)
        .collect()
}

/// Events in `namespace` about `object` with `reason` (events.k8s.io/v1).
async fn events(client: &kube::Client, namespace: &str, object: &str, reason: &str) -> Vec<Value> {
    let list = get_json(
        client,
        &format!("/apis/events.k8s.io/v1/namespaces/{namespace}/events"),
    )
    .await
    .unwrap_or_default();
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            e.pointer("/regarding/name").and_then(Value::as_str) == Some(object)
                && e["reason"] == reason
        })
        .cloned()
        .collect()
}

fn series(events: &[Value]) -> bool {
    events
        .iter()
        .any(|e| e.pointer("/series/count").and_then(Value::as_i64) >= Some(2))
}

async fn node(client: &kube::Client, name: &str) -> Value {
    get_json(client, &format!("/api/v1/nodes/{name}"))
        .await
        .unwrap_or_default()
}

/// Removes what a scenario left: its nodes, the Lease and the Events.
fn clean(bed: &Testbed, joined: &[Joined]) {
    if !joined.is_empty() {
        bed.leave(joined);
    }
    bed.kubectl(&["delete", "lease", LEASE, "-n", NS, "--ignore-not-found"]);
    bed.kubectl(&["delete", "events.events.k8s.io", "--all", "-n", NS]);
    bed.kubectl(&["delete", "events.events.k8s.io", "--all", "-n", "default"]);
}

/// Everything bare-ccm does, with all rules: each step must succeed.
async fn full_scenario(bed: &Testbed, client: &kube::Client, dir: &Path) -> Vec<Joined> {
    let ccm = Ccm::start(bed, dir, &config("10.99.0.1"), &[]);
    let log = || format!("bare-ccm log:\n{}", ccm.log_text());
    let lease_held = || async {
        get_json(
            client,
            &format!("/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/{LEASE}"),
        )
        .await
        .and_then(|l| l.pointer("/spec/holderIdentity").cloned())
        .is_some()
    };
    assert!(
        within(Duration::from_secs(20), lease_held).await,
        "no leader; {}",
        log()
    );

    let mut joined = bed.join(1, &["--prefix", "ok", "--external-ip"]);
    let ok = joined[0].clone();
    let external = ok.external_i_ps[0].clone();
    let done = within(Duration::from_secs(30), || async {
        let n = node(client, &ok.name).await;
        !has_taint(&n, TAINT) && has_address(&n, "ExternalIP", &external)
    })
    .await;
    assert!(
        done,
        "{} not initialised with ExternalIP {external}; {}",
        ok.name,
        log()
    );
    assert!(
        within(Duration::from_secs(15), || async {
            !events(client, "default", &ok.name, "Synced")
                .await
                .is_empty()
        })
        .await,
        "no Synced event; {}",
        log()
    );

    joined.extend(bed.join(1, &["--prefix", "mm"]));
    let mm = joined[1].name.clone();
    let warned = within(Duration::from_secs(20), || async {
        !events(client, "default", &mm, "InitializationFailed")
            .await
            .is_empty()
    })
    .await;
    assert!(warned, "no InitializationFailed on {mm}; {}", log());
    ccm.write_config(&config("10.99.0.2"));
    let repeated = within(Duration::from_secs(20), || async {
        series(&events(client, "default", &mm, "InitializationFailed").await)
    })
    .await;
    assert!(
        repeated,
        "the warning on {mm} was not repeated as a series; {}",
        log()
    );
    assert!(has_taint(&node(client, &mm).await, TAINT));

    ccm.write_config("noSuchKey: 1\n");
    let rejected = within(Duration::from_secs(15), || async {
        !events(client, NS, LEASE, "ConfigInvalid").await.is_empty()
    })
    .await;
    assert!(rejected, "no ConfigInvalid event; {}", log());
    ccm.write_config("otherUnknownKey: 1\n");
    let rejected_again = within(Duration::from_secs(15), || async {
        series(&events(client, NS, LEASE, "ConfigInvalid").await)
    })
    .await;
    assert!(
        rejected_again,
        "ConfigInvalid not repeated as a series; {}",
        log()
    );
    ccm.stop().await;
    joined
}

/// What bare-ccm fails to do without `rule`, and the check that it did fail.
async fn reduced_scenario(
    bed: &Testbed,
    client: &kube::Client,
    dir: &Path,
    rule: &Rule,
    skip: usize,
) -> Vec<Joined> {
    let ccm = Ccm::start(bed, dir, &config("10.99.0.1"), &[]);
    let resources = rule.strings("resources");
    let refused = |skip| {
        ccm_requests(bed, skip)
            .into_iter()
            .find(|e| e.code() == 403 && rule.allows(e))
    };
    let mut joined = Vec::new();
    let refusal =
        if resources.contains(&"events".to_string()) && rule.namespace.as_deref() == Some(NS) {
            // Events about the config: a rejected config file.
            within(Duration::from_secs(20), || async {
                get_json(
                    client,
                    &format!("/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/{LEASE}"),
                )
                .await
                .is_some()
            })
            .await;
            ccm.write_config("noSuchKey: 1\n");
            within(Duration::from_secs(20), || {
                std::future::ready(refused(skip).is_some())
            })
            .await;
            assert!(events(client, NS, LEASE, "ConfigInvalid").await.is_empty());
            refused(skip)
        } else {
            joined = bed.join(1, &["--prefix", "rb", "--external-ip"]);
            within(Duration::from_secs(30), || {
                std::future::ready(refused(skip).is_some())
            })
            .await;
            let name = &joined[0].name;
            let n = node(client, name).await;
            if resources.contains(&"events".to_string()) {
                assert!(
                    events(client, "default", name, "Synced").await.is_empty(),
                    "a Synced event was recorded without {}",
                    rule.describe()
                );
            } else {
                // Nodes, their status, or leadership: the node is never fully initialised.
                let external = &joined[0].external_i_ps[0];
                assert!(
                    has_taint(&n, TAINT) || !has_address(&n, "ExternalIP", external),
                    "{name} was initialised without {}",
                    rule.describe()
                );
            }
            refused(skip)
        };
    let refusal = refusal.unwrap_or_else(|| {
        panic!(
            "without {} the API server refused nothing of bare-ccm's; log:\n{}",
            rule.describe(),
            ccm.log_text()
        )
    });
    println!(
        "without {}: {} (refused)",
        rule.describe(),
        refusal.describe()
    );
    ccm.stop().await;
    joined
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_rule_is_needed_by_the_real_authorizer() {
    let _serial = exclusive().await;
    let bed = Testbed::start(&["--hollow-nodes", "0"]);
    let client = bed.client().await;
    let rules = shipped_rules();
    assert!(rules.len() >= 5, "{rules:?}");

    apply_rbac(&bed, None);
    let dir = tempfile::tempdir().unwrap();
    let before = bed.audit().len();
    let joined = full_scenario(&bed, &client, dir.path()).await;
    let requests = ccm_requests(&bed, before);
    let refused = AuditEvent::answered_with(&requests, 403);
    assert!(
        refused.is_empty(),
        "refused with the shipped RBAC: {refused:?}"
    );
    println!("{:<90} requests", "rule");
    let mut unused = Vec::new();
    for rule in &rules {
        let used = requests.iter().filter(|e| rule.allows(e)).count();
        println!("{:<90} {used}", rule.describe());
        if used == 0 {
            unused.push(rule.describe());
        }
    }
    assert!(
        unused.is_empty(),
        "rules no request of bare-ccm used: {unused:?}"
    );
    let uncovered: Vec<String> = requests
        .iter()
        .filter(|e| e.object_ref.is_some() && !rules.iter().any(|r| r.allows(e)))
        .map(AuditEvent::describe)
        .collect();
    assert!(
        uncovered.is_empty(),
        "requests no rule covers: {uncovered:?}"
    );
    clean(&bed, &joined);

    for rule in &rules {
        apply_rbac(&bed, Some(rule));
        let dir = tempfile::tempdir().unwrap();
        let before = bed.audit().len();
        let joined = reduced_scenario(&bed, &client, dir.path(), rule, before).await;
        apply_rbac(&bed, None);
        clean(&bed, &joined);
    }
}
