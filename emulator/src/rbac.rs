//! RBAC authorisation as kube-apiserver's RBAC authorizer performs it, so that a test run
//! with RBAC enabled fails exactly where the real cluster would answer 403 Forbidden.
//!
//! Sources: kubernetes `plugin/pkg/auth/authorizer/rbac/rbac.go` (`RuleAllows`,
//! `VisitRulesFor` in `pkg/registry/rbac/validation/rule.go`) and
//! `pkg/apis/rbac/v1/evaluation_helpers.go` (`VerbMatches`, `APIGroupMatches`,
//! `ResourceMatches`, `ResourceNameMatches`, `NonResourceURLMatches`); the RBAC
//! documentation <https://kubernetes.io/docs/reference/access-authn-authz/rbac/>.
//!
//! - ClusterRoleBindings grant their ClusterRole's rules everywhere.
//! - A RoleBinding grants a Role of its own namespace, or a ClusterRole, but only for
//!   requests in the binding's namespace (never for cluster-scoped resources such as nodes).
//! - A rule's `resources` entry `nodes` does not grant `nodes/status`; `nodes/status`,
//!   `*/status` and `*` do.
//! - `resourceNames` restrict by object name; requests without a name (create, list,
//!   watch) never match a rule that has `resourceNames`.
//! - The group `system:masters` is always allowed (kube-apiserver's privileged-group
//!   authorizer, which runs before RBAC).
//! - The bootstrap ClusterRole `system:auth-delegator` exists in every policy, as in every
//!   cluster (`bootstrappolicy/policy.go`: create `tokenreviews` and
//!   `subjectaccessreviews`); it grants nothing until bound.
//!
//! Not modelled: `aggregationRule` on ClusterRoles (the aggregated rules are not filled in)
//! and roleRefs to roles that do not exist (they grant nothing, as upstream).
//!
//! This module only evaluates policy; the server decides when to consult it.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The group kube-apiserver always authorises, before any RBAC evaluation.
pub const SYSTEM_MASTERS: &str = "system:masters";

/// The bootstrap ClusterRole of components that delegate authentication and authorization
/// to the API server.
pub const AUTH_DELEGATOR: &str = "system:auth-delegator";

/// Errors loading RBAC objects from YAML.
#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    /// The text is not valid YAML.
    #[error("RBAC policy is not valid YAML: {0}; fix the syntax of the manifest")]
    Yaml(String),
    /// An RBAC document has a missing or malformed field.
    #[error("RBAC document {index} ({kind} {name:?}): field `{field}`: {message}")]
    Field {
        /// The 1-based position of the document in the YAML stream.
        index: usize,
        /// The document's `kind`.
        kind: String,
        /// The document's `metadata.name` (empty when missing).
        name: String,
        /// The path of the faulty field, e.g. `rules[1]`.
        field: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

/// The authenticated caller, as the authenticator hands it to the authorizer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name; a ServiceAccount is `system:serviceaccount:<namespace>:<name>`.
    pub name: String,
    /// The user's groups (e.g. `system:serviceaccounts`, `system:authenticated`).
    pub groups: Vec<String>,
}

/// What a request asks to do, in the terms of kube-apiserver's `authorizer.Attributes`.
/// A request with an empty `resource` is a non-resource request (`/version`, `/healthz`)
/// and is matched on `path` against `nonResourceURLs`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestAttributes<'a> {
    /// The request verb: get, list, watch, create, update, patch, delete (for non-resource
    /// requests, the lower-case HTTP method).
    pub verb: &'a str,
    /// The API group, "" for core/v1.
    pub api_group: &'a str,
    /// The plural resource (`nodes`), or "" for a non-resource request.
    pub resource: &'a str,
    /// The subresource (`status`), or "".
    pub subresource: &'a str,
    /// The namespace, or "" for cluster-scoped resources and cluster-wide lists.
    pub namespace: &'a str,
    /// The object name, or "" for create, list and watch.
    pub name: &'a str,
    /// The URL path, used only for non-resource requests.
    pub path: &'a str,
}

/// One permission a user holds, expanded to a single verb, API group, resource and
/// resource name, so a test can check that every granted permission is exercised.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GrantedRule {
    /// One verb (may be `*`).
    pub verb: String,
    /// One API group (may be `*`); "" for non-resource URLs.
    pub api_group: String,
    /// One resource, with the subresource joined by `/` (`nodes/status`); "" for
    /// non-resource URLs.
    pub resource: String,
    /// The object name the grant is limited to, or None for any name.
    pub resource_name: Option<String>,
    /// The namespace the grant is limited to (via a RoleBinding), or None for cluster-wide.
    pub namespace: Option<String>,
    /// The non-resource URL granted (e.g. `/healthz`), or None for a resource rule.
    pub non_resource_url: Option<String>,
}

impl GrantedRule {
    /// Whether this one permission alone authorises the request, so that a test can count
    /// which grant each recorded request used (and find grants no request needs).
    pub fn allows(&self, attrs: &RequestAttributes) -> bool {
        if self
            .namespace
            .as_deref()
            .is_some_and(|ns| ns != attrs.namespace)
        {
            return false;
        }
        let rule = PolicyRule {
            verbs: vec![self.verb.clone()],
            api_groups: vec![self.api_group.clone()],
            resources: vec![self.resource.clone()],
            resource_names: self.resource_name.iter().cloned().collect(),
            non_resource_urls: self.non_resource_url.iter().cloned().collect(),
        };
        rule_allows(&rule, attrs)
    }
}

/// kubectl's spelling: `verb resource[.group][/subresource] ["name"] (scope)`, e.g.
/// `update leases.coordination.k8s.io "bare-ccm" in namespace kube-system`.
impl std::fmt::Display for GrantedRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(url) = &self.non_resource_url {
            return write!(f, "{} {url}", self.verb);
        }
        let (resource, subresource) = match self.resource.split_once('/') {
            Some((resource, subresource)) => (resource, Some(subresource)),
            None => (self.resource.as_str(), None),
        };
        write!(f, "{} {resource}", self.verb)?;
        if !self.api_group.is_empty() {
            write!(f, ".{}", self.api_group)?;
        }
        if let Some(subresource) = subresource {
            write!(f, "/{subresource}")?;
        }
        if let Some(name) = &self.resource_name {
            write!(f, " {name:?}")?;
        }
        match &self.namespace {
            Some(namespace) => write!(f, " in namespace {namespace}"),
            None => f.write_str(" cluster-wide"),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyRule {
    verbs: Vec<String>,
    #[serde(default)]
    api_groups: Vec<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    resource_names: Vec<String>,
    #[serde(default, rename = "nonResourceURLs")]
    non_resource_urls: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
struct RoleRef {
    #[serde(rename = "apiGroup", default)]
    _api_group: String,
    kind: String,
    name: String,
}

#[derive(Clone, Debug, Deserialize)]
struct Subject {
    kind: String,
    name: String,
    #[serde(default)]
    namespace: String,
}

#[derive(Clone, Debug)]
struct Binding {
    /// "" for a ClusterRoleBinding.
    namespace: String,
    role_ref: RoleRef,
    subjects: Vec<Subject>,
}

/// A loaded set of Roles, ClusterRoles and their bindings, evaluated like the real RBAC
/// authorizer.
#[derive(Clone, Debug, Default)]
pub struct RbacPolicy {
    cluster_roles: BTreeMap<String, Vec<PolicyRule>>,
    /// Keyed by (namespace, name).
    roles: BTreeMap<(String, String), Vec<PolicyRule>>,
    bindings: Vec<Binding>,
}

/// Location of a document, for error messages.
struct DocContext<'a> {
    index: usize,
    kind: &'a str,
    name: &'a str,
}

impl DocContext<'_> {
    fn error(&self, field: &str, message: impl ToString) -> RbacError {
        RbacError::Field {
            index: self.index,
            kind: self.kind.to_owned(),
            name: self.name.to_owned(),
            field: field.to_owned(),
            message: message.to_string(),
        }
    }

    /// Deserialises one element of a document, naming the field on failure.
    fn parse<T: for<'de> Deserialize<'de>>(
        &self,
        field: &str,
        value: &Value,
    ) -> Result<T, RbacError> {
        T::deserialize(value).map_err(|e| self.error(field, e))
    }

    /// Deserialises each element of an optional list field.
    fn parse_list<T: for<'de> Deserialize<'de>>(
        &self,
        doc: &Value,
        field: &str,
    ) -> Result<Vec<T>, RbacError> {
        match doc.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.parse(&format!("{field}[{i}]"), item))
                .collect(),
            Some(_) => Err(self.error(field, "expected a list")),
        }
    }
}

impl RbacPolicy {
    /// Loads every ClusterRole, Role, ClusterRoleBinding and RoleBinding from a
    /// multi-document YAML stream (such as the project's manifests), skipping documents of
    /// other kinds. A `List` document's `items` are read too.
    pub fn from_yaml(docs: &str) -> Result<RbacPolicy, RbacError> {
        let values: Vec<Value> =
            serde_saphyr::from_multiple(docs).map_err(|e| RbacError::Yaml(e.to_string()))?;
        let mut policy = RbacPolicy::default();
        for (i, doc) in values.iter().enumerate() {
            policy.add_document(i + 1, doc)?;
        }
        let create = |group: &str, resource: &str| PolicyRule {
            verbs: vec!["create".into()],
            api_groups: vec![group.into()],
            resources: vec![resource.into()],
            ..PolicyRule::default()
        };
        policy
            .cluster_roles
            .entry(AUTH_DELEGATOR.to_string())
            .or_insert_with(|| {
                vec![
                    create("authentication.k8s.io", "tokenreviews"),
                    create("authorization.k8s.io", "subjectaccessreviews"),
                ]
            });
        Ok(policy)
    }

    fn add_document(&mut self, index: usize, doc: &Value) -> Result<(), RbacError> {
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
        if kind.ends_with("List") {
            if let Some(items) = doc.get("items").and_then(Value::as_array) {
                for item in items {
                    self.add_document(index, item)?;
                }
            }
            return Ok(());
        }
        if !matches!(
            kind,
            "ClusterRole" | "Role" | "ClusterRoleBinding" | "RoleBinding"
        ) {
            return Ok(());
        }
        let name = doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let ctx = DocContext { index, kind, name };
        if name.is_empty() {
            return Err(ctx.error("metadata.name", "is required"));
        }
        let namespace = doc
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        let namespaced = matches!(kind, "Role" | "RoleBinding");
        if namespaced && namespace.is_empty() {
            return Err(ctx.error(
                "metadata.namespace",
                "is required for a namespaced object (the emulator applies no default)",
            ));
        }
        match kind {
            "ClusterRole" => {
                let rules = ctx.parse_list(doc, "rules")?;
                self.cluster_roles.insert(name.to_owned(), rules);
            }
            "Role" => {
                let rules = ctx.parse_list(doc, "rules")?;
                self.roles
                    .insert((namespace.to_owned(), name.to_owned()), rules);
            }
            _ => {
                let role_ref: RoleRef = match doc.get("roleRef") {
                    Some(value) => ctx.parse("roleRef", value)?,
                    None => return Err(ctx.error("roleRef", "is required")),
                };
                let allowed = if namespaced {
                    ["Role", "ClusterRole"].as_slice()
                } else {
                    ["ClusterRole"].as_slice()
                };
                if !allowed.contains(&role_ref.kind.as_str()) {
                    return Err(ctx.error(
                        "roleRef.kind",
                        format!("must be one of {allowed:?}, got {:?}", role_ref.kind),
                    ));
                }
                let subjects = ctx.parse_list(doc, "subjects")?;
                self.bindings.push(Binding {
                    namespace: if namespaced {
                        namespace.to_owned()
                    } else {
                        String::new()
                    },
                    role_ref,
                    subjects,
                });
            }
        }
        Ok(())
    }

    /// Whether `user` may perform the request described by `attrs`.
    pub fn authorize(&self, user: &UserInfo, attrs: &RequestAttributes) -> bool {
        if user.groups.iter().any(|g| g == SYSTEM_MASTERS) {
            return true;
        }
        self.bindings_for(user)
            .filter(|binding| binding.namespace.is_empty() || binding.namespace == attrs.namespace)
            .any(|binding| {
                self.rules_of(binding)
                    .iter()
                    .any(|rule| rule_allows(rule, attrs))
            })
    }

    /// Every permission `user` holds, one entry per verb × API group × resource ×
    /// resource name (or per verb × non-resource URL), sorted and without duplicates.
    pub fn rules_for(&self, user: &UserInfo) -> Vec<GrantedRule> {
        let mut out = Vec::new();
        for binding in self.bindings_for(user) {
            let namespace = (!binding.namespace.is_empty()).then(|| binding.namespace.clone());
            for rule in self.rules_of(binding) {
                expand_rule(rule, &namespace, &mut out);
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn bindings_for<'s>(&'s self, user: &'s UserInfo) -> impl Iterator<Item = &'s Binding> + 's {
        self.bindings.iter().filter(move |binding| {
            binding
                .subjects
                .iter()
                .any(|subject| applies_to(user, subject, &binding.namespace))
        })
    }

    fn rules_of(&self, binding: &Binding) -> &[PolicyRule] {
        let rules = if binding.role_ref.kind == "Role" {
            self.roles
                .get(&(binding.namespace.clone(), binding.role_ref.name.clone()))
        } else {
            self.cluster_roles.get(&binding.role_ref.name)
        };
        rules.map(Vec::as_slice).unwrap_or(&[])
    }
}

/// `appliesToUser` of rbac.go: a ServiceAccount subject without a namespace takes the
/// binding's namespace.
fn applies_to(user: &UserInfo, subject: &Subject, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.name == subject.name,
        "Group" => user.groups.contains(&subject.name),
        "ServiceAccount" => {
            let namespace = if subject.namespace.is_empty() {
                binding_namespace
            } else {
                &subject.namespace
            };
            !namespace.is_empty()
                && user
                    .name
                    .strip_prefix("system:serviceaccount:")
                    .and_then(|rest| rest.split_once(':'))
                    .is_some_and(|(ns, name)| ns == namespace && name == subject.name)
        }
        _ => false,
    }
}

fn contains_or_star(list: &[String], value: &str) -> bool {
    list.iter().any(|item| item == "*" || item == value)
}

/// `RuleAllows` of rbac.go with the helpers of evaluation_helpers.go.
fn rule_allows(rule: &PolicyRule, attrs: &RequestAttributes) -> bool {
    if !contains_or_star(&rule.verbs, attrs.verb) {
        return false;
    }
    if attrs.resource.is_empty() {
        return rule.non_resource_urls.iter().any(|url| {
            url == "*"
                || url == attrs.path
                || url
                    .strip_suffix('*')
                    .is_some_and(|prefix| attrs.path.starts_with(prefix))
        });
    }
    contains_or_star(&rule.api_groups, attrs.api_group)
        && resource_matches(rule, attrs.resource, attrs.subresource)
        && (rule.resource_names.is_empty() || rule.resource_names.iter().any(|n| n == attrs.name))
}

/// `ResourceMatches`: `*`, the exact `resource/subresource`, or `*/subresource`.
fn resource_matches(rule: &PolicyRule, resource: &str, subresource: &str) -> bool {
    rule.resources.iter().any(|granted| {
        if granted == "*" {
            return true;
        }
        if subresource.is_empty() {
            return granted == resource;
        }
        granted
            .split_once('/')
            .is_some_and(|(r, s)| s == subresource && (r == resource || r == "*"))
    })
}

fn expand_rule(rule: &PolicyRule, namespace: &Option<String>, out: &mut Vec<GrantedRule>) {
    for verb in &rule.verbs {
        for url in &rule.non_resource_urls {
            out.push(GrantedRule {
                verb: verb.clone(),
                api_group: String::new(),
                resource: String::new(),
                resource_name: None,
                namespace: None,
                non_resource_url: Some(url.clone()),
            });
        }
        for group in &rule.api_groups {
            for resource in &rule.resources {
                let names: Vec<Option<String>> = if rule.resource_names.is_empty() {
                    vec![None]
                } else {
                    rule.resource_names.iter().cloned().map(Some).collect()
                };
                for resource_name in names {
                    out.push(GrantedRule {
                        verb: verb.clone(),
                        api_group: group.clone(),
                        resource: resource.clone(),
                        resource_name,
                        namespace: namespace.clone(),
                        non_resource_url: None,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
        let has =
            |verb: &str, group: &str, resource: &str, name: Option<&str>, ns: Option<&str>| {
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
}
