//! Loading a policy from YAML manifests: every Role, ClusterRole, RoleBinding and
//! ClusterRoleBinding of a multi-document stream (and of `List` documents), with errors
//! that name the document and field, and the bootstrap ClusterRole
//! `system:auth-delegator` every cluster has (`bootstrappolicy/policy.go`).

use serde::Deserialize;
use serde_json::Value;

use super::{AUTH_DELEGATOR, Binding, PolicyRule, RbacPolicy, RoleRef};

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
}
