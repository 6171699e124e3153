//! Tests of RBAC evaluation, loading and grant expansion, on manifests shaped like a CCM's.

use super::*;

/// Manifests shaped like a CCM's RBAC: a ClusterRole for nodes and events bound
/// cluster-wide, a leader-election Role limited by resourceNames, a ClusterRole reused
/// through a RoleBinding, and a non-RBAC document that must be skipped.
const MANIFESTS: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata:
  name: bare-ccm
  namespace: kube-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: bare-ccm
rules:
  - apiGroups: [""]
    resources: ["nodes"]
    verbs: ["get", "list", "watch", "patch"]
  - apiGroups: [""]
    resources: ["nodes/status"]
    verbs: ["patch"]
  - apiGroups: ["", "events.k8s.io"]
    resources: ["events"]
    verbs: ["create", "patch"]
  - nonResourceURLs: ["/healthz", "/version*"]
    verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: bare-ccm
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: bare-ccm
subjects:
  - kind: ServiceAccount
    name: bare-ccm
    namespace: kube-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: bare-ccm-leader
  namespace: kube-system
rules:
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    verbs: ["create"]
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    resourceNames: ["bare-ccm"]
    verbs: ["get", "update"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: bare-ccm-leader
  namespace: kube-system
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: bare-ccm-leader
subjects:
  - kind: ServiceAccount
    name: bare-ccm
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: configmap-reader
rules:
  - apiGroups: [""]
    resources: ["configmaps"]
    verbs: ["get", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: readers
  namespace: default
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: configmap-reader
subjects:
  - kind: Group
    name: readers
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: bare-ccm
  namespace: kube-system
spec:
  replicas: 2
"#;

fn policy() -> RbacPolicy {
    match RbacPolicy::from_yaml(MANIFESTS) {
        Ok(policy) => policy,
        Err(e) => panic!("manifests must load: {e}"),
    }
}

fn ccm() -> UserInfo {
    UserInfo {
        name: "system:serviceaccount:kube-system:bare-ccm".into(),
        groups: vec![
            "system:serviceaccounts".into(),
            "system:serviceaccounts:kube-system".into(),
            "system:authenticated".into(),
        ],
    }
}

fn node_request<'a>(verb: &'a str, subresource: &'a str) -> RequestAttributes<'a> {
    RequestAttributes {
        verb,
        resource: "nodes",
        subresource,
        name: "node-1",
        ..Default::default()
    }
}

fn lease<'a>(verb: &'a str, namespace: &'a str, name: &'a str) -> RequestAttributes<'a> {
    RequestAttributes {
        verb,
        api_group: "coordination.k8s.io",
        resource: "leases",
        namespace,
        name,
        ..Default::default()
    }
}

#[test]
fn cluster_role_binding_grants_node_verbs_and_nothing_else() {
    let policy = policy();
    assert!(policy.authorize(&ccm(), &node_request("patch", "")));
    assert!(policy.authorize(&ccm(), &node_request("watch", "")));
    assert!(!policy.authorize(&ccm(), &node_request("delete", "")));
    assert!(!policy.authorize(&ccm(), &node_request("update", "")));
}

#[test]
fn status_subresource_needs_its_own_grant() {
    let policy = policy();
    assert!(policy.authorize(&ccm(), &node_request("patch", "status")));
    // "nodes" with get does not cover "nodes/status".
    assert!(!policy.authorize(&ccm(), &node_request("get", "status")));
}

#[test]
fn star_slash_subresource_and_star_verbs_match_like_upstream() {
    let yaml = r#"
kind: ClusterRole
metadata: {name: status-writer}
rules:
  - apiGroups: ["*"]
    resources: ["*/status"]
    verbs: ["*"]
---
kind: ClusterRoleBinding
metadata: {name: status-writer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: status-writer}
subjects: [{kind: User, name: alice}]
"#;
    let policy = RbacPolicy::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}"));
    let alice = UserInfo {
        name: "alice".into(),
        groups: vec![],
    };
    assert!(policy.authorize(&alice, &node_request("update", "status")));
    assert!(!policy.authorize(&alice, &node_request("update", "")));
}

#[test]
fn resource_names_limit_lease_access_to_the_named_lease() {
    let policy = policy();
    assert!(policy.authorize(&ccm(), &lease("get", "kube-system", "bare-ccm")));
    assert!(policy.authorize(&ccm(), &lease("update", "kube-system", "bare-ccm")));
    assert!(!policy.authorize(&ccm(), &lease("update", "kube-system", "other")));
    // Create carries no name, so only the rule without resourceNames allows it.
    assert!(policy.authorize(&ccm(), &lease("create", "kube-system", "")));
    // A list has no name either, and the named rule cannot grant it.
    assert!(!policy.authorize(&ccm(), &lease("get", "kube-system", "")));
}

#[test]
fn role_binding_grants_only_in_its_namespace() {
    let policy = policy();
    assert!(!policy.authorize(&ccm(), &lease("get", "default", "bare-ccm")));
    assert!(!policy.authorize(&ccm(), &lease("get", "", "bare-ccm")));
}

#[test]
fn cluster_role_through_role_binding_is_limited_to_the_binding_namespace() {
    let policy = policy();
    let reader = UserInfo {
        name: "bob".into(),
        groups: vec!["readers".into()],
    };
    let configmaps = |namespace| RequestAttributes {
        verb: "list",
        resource: "configmaps",
        namespace,
        ..Default::default()
    };
    assert!(policy.authorize(&reader, &configmaps("default")));
    assert!(!policy.authorize(&reader, &configmaps("kube-system")));
    assert!(!policy.authorize(&reader, &configmaps("")));
}

#[test]
fn service_account_subject_must_match_namespace_and_name() {
    let policy = policy();
    let impostor = UserInfo {
        name: "system:serviceaccount:default:bare-ccm".into(),
        groups: vec![],
    };
    assert!(!policy.authorize(&impostor, &node_request("get", "")));
    let user_named_like_sa = UserInfo {
        name: "bare-ccm".into(),
        groups: vec![],
    };
    assert!(!policy.authorize(&user_named_like_sa, &node_request("get", "")));
}

#[test]
fn system_masters_is_always_allowed() {
    let admin = UserInfo {
        name: "kubernetes-admin".into(),
        groups: vec![SYSTEM_MASTERS.into()],
    };
    assert!(RbacPolicy::default().authorize(&admin, &node_request("delete", "")));
}

#[test]
fn non_resource_urls_match_exactly_or_by_trailing_star() {
    let policy = policy();
    let get = |path| RequestAttributes {
        verb: "get",
        path,
        ..Default::default()
    };
    assert!(policy.authorize(&ccm(), &get("/healthz")));
    assert!(policy.authorize(&ccm(), &get("/version")));
    assert!(policy.authorize(&ccm(), &get("/version/extra")));
    assert!(!policy.authorize(&ccm(), &get("/healthz/etcd")));
    assert!(!policy.authorize(&ccm(), &get("/api")));
}

#[test]
fn rules_for_expands_every_grant_with_its_scope() {
    let rules = policy().rules_for(&ccm());
    let has = |verb: &str, group: &str, resource: &str, name: Option<&str>, ns: Option<&str>| {
        rules.iter().any(|r| {
            r.verb == verb
                && r.api_group == group
                && r.resource == resource
                && r.resource_name.as_deref() == name
                && r.namespace.as_deref() == ns
                && r.non_resource_url.is_none()
        })
    };
    assert!(has("patch", "", "nodes/status", None, None));
    assert!(has("create", "events.k8s.io", "events", None, None));
    assert!(has(
        "update",
        "coordination.k8s.io",
        "leases",
        Some("bare-ccm"),
        Some("kube-system")
    ));
    assert!(has(
        "create",
        "coordination.k8s.io",
        "leases",
        None,
        Some("kube-system")
    ));
    assert!(
        rules
            .iter()
            .any(|r| r.non_resource_url.as_deref() == Some("/healthz"))
    );
    // 4 node verbs + 1 status + 2 verbs × 2 groups of events + 2 URLs + 1 + 2 lease.
    assert_eq!(rules.len(), 4 + 1 + 4 + 2 + 1 + 2);
    assert!(policy().rules_for(&UserInfo::default()).is_empty());
}

#[test]
fn each_granted_rule_allows_exactly_the_requests_its_scope_covers() {
    let rules = policy().rules_for(&ccm());
    let find = |shown: &str| {
        rules
            .iter()
            .find(|r| r.to_string() == shown)
            .unwrap_or_else(|| panic!("no grant {shown:?} in {rules:#?}"))
    };
    let named_update =
        find(r#"update leases.coordination.k8s.io "bare-ccm" in namespace kube-system"#);
    assert!(named_update.allows(&lease("update", "kube-system", "bare-ccm")));
    assert!(!named_update.allows(&lease("update", "kube-system", "other")));
    assert!(!named_update.allows(&lease("get", "kube-system", "bare-ccm")));

    let status = find("patch nodes/status cluster-wide");
    assert!(status.allows(&node_request("patch", "status")));
    assert!(!status.allows(&node_request("patch", "")));
    assert!(!find("patch nodes cluster-wide").allows(&node_request("patch", "status")));

    let healthz = find("get /healthz");
    let get_healthz = RequestAttributes {
        verb: "get",
        path: "/healthz",
        ..Default::default()
    };
    assert!(healthz.allows(&get_healthz));
    assert!(!healthz.allows(&node_request("get", "")));

    let reader = UserInfo {
        name: "bob".into(),
        groups: vec!["readers".into()],
    };
    let reader_rules = policy().rules_for(&reader);
    let list = reader_rules
        .iter()
        .find(|r| r.to_string() == "list configmaps in namespace default")
        .unwrap_or_else(|| panic!("{reader_rules:#?}"));
    let in_namespace = |namespace| RequestAttributes {
        verb: "list",
        resource: "configmaps",
        namespace,
        ..Default::default()
    };
    assert!(list.allows(&in_namespace("default")));
    assert!(!list.allows(&in_namespace("kube-system")));
}

#[test]
fn missing_verbs_error_names_document_and_field() {
    let yaml = "kind: ConfigMap\nmetadata: {name: x}\n---\nkind: ClusterRole\nmetadata: {name: broken}\nrules:\n  - apiGroups: [\"\"]\n    resources: [nodes]\n";
    let err = match RbacPolicy::from_yaml(yaml) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a rule without verbs must be rejected"),
    };
    assert!(err.contains("document 2"), "{err}");
    assert!(err.contains("\"broken\""), "{err}");
    assert!(err.contains("rules[0]"), "{err}");
    assert!(err.contains("verbs"), "{err}");
}

#[test]
fn cluster_role_binding_to_a_role_is_rejected() {
    let yaml = "kind: ClusterRoleBinding\nmetadata: {name: b}\nroleRef: {kind: Role, name: r}\nsubjects: []\n";
    let err = RbacPolicy::from_yaml(yaml)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("roleRef.kind"), "{err}");
}

#[test]
fn the_bootstrap_auth_delegator_role_grants_the_reviews_once_bound() {
    let binding = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: bare-ccm:auth-delegator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:auth-delegator}
subjects: [{kind: ServiceAccount, name: bare-ccm, namespace: kube-system}]
"#;
    let user = UserInfo {
        name: "system:serviceaccount:kube-system:bare-ccm".into(),
        groups: vec!["system:serviceaccounts".into()],
    };
    let review = |group: &'static str, resource: &'static str| RequestAttributes {
        verb: "create",
        api_group: group,
        resource,
        ..RequestAttributes::default()
    };
    let unbound = RbacPolicy::from_yaml(MANIFESTS).unwrap();
    assert!(!unbound.authorize(&user, &review("authentication.k8s.io", "tokenreviews")));
    let bound = RbacPolicy::from_yaml(&format!("{MANIFESTS}\n---\n{binding}")).unwrap();
    assert!(bound.authorize(&user, &review("authentication.k8s.io", "tokenreviews")));
    assert!(bound.authorize(
        &user,
        &review("authorization.k8s.io", "subjectaccessreviews")
    ));
    assert!(!bound.authorize(
        &user,
        &review("authorization.k8s.io", "selfsubjectrulesreviews")
    ));
}

#[test]
fn invalid_yaml_is_reported_as_yaml_error() {
    let err = RbacPolicy::from_yaml("kind: [unclosed")
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, RbacError::Yaml(_)), "{err}");
}

proptest::proptest! {
    #[test]
    fn arbitrary_text_never_panics_the_loader(text in "\\PC{0,200}") {
        let _ = RbacPolicy::from_yaml(&text);
    }

    #[test]
    fn arbitrary_rule_fields_never_panic(
        verbs in proptest::collection::vec("[a-z*]{0,6}", 0..3),
        resources in proptest::collection::vec("[a-z*/]{0,10}", 0..3),
        names in proptest::collection::vec("[a-z-]{0,6}", 0..2),
    ) {
        let yaml = format!(
            "kind: ClusterRole\nmetadata: {{name: r}}\nrules:\n  - verbs: {verbs:?}\n    apiGroups: [\"\"]\n    resources: {resources:?}\n    resourceNames: {names:?}\n---\nkind: ClusterRoleBinding\nmetadata: {{name: b}}\nroleRef: {{kind: ClusterRole, name: r}}\nsubjects: [{{kind: User, name: u}}]\n"
        );
        let policy = RbacPolicy::from_yaml(&yaml);
        proptest::prop_assert!(policy.is_ok(), "{:?}", policy.err());
        let user = UserInfo { name: "u".into(), groups: vec![] };
        if let Ok(policy) = policy {
            let _ = policy.authorize(&user, &node_request("get", "status"));
            let _ = policy.rules_for(&user);
        }
    }
}
