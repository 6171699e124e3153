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
//!
//! This file evaluates a policy; `load` reads one from manifests, `grants` lists a user's
//! permissions one by one.

use std::collections::BTreeMap;

use serde::Deserialize;

use grants::expand_rule;

mod grants;
mod load;
#[cfg(test)]
mod tests;

pub use grants::GrantedRule;
pub use load::RbacError;

/// The group kube-apiserver always authorises, before any RBAC evaluation.
pub const SYSTEM_MASTERS: &str = "system:masters";

/// The bootstrap ClusterRole of components that delegate authentication and authorization
/// to the API server.
pub const AUTH_DELEGATOR: &str = "system:auth-delegator";

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

impl RbacPolicy {
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
