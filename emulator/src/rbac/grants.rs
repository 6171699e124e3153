//! A user's permissions one by one ([`GrantedRule`]): each rule a binding grants, expanded
//! to a single verb, API group, resource and name, so that a test can check which grant
//! each recorded request used and find grants no request needs. Printed as kubectl
//! spells them.

use super::{PolicyRule, RequestAttributes, rule_allows};

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

pub(super) fn expand_rule(
    rule: &PolicyRule,
    namespace: &Option<String>,
    out: &mut Vec<GrantedRule>,
) {
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
