//! CREATE, as apiserver `pkg/registry/generic/registry/store.go` `Create` runs it after
//! `rest.BeforeCreate` (`pkg/registry/rest/create.go`): server-owned fields set,
//! `generateName` resolved, the kinds' `PrepareForCreate` (Namespace), the TaintNodesByCondition
//! admission (Node), validation, and the NamespaceLifecycle check; plus the emulator's own
//! bootstrap objects.

use rand::Rng;
use serde_json::{Value, json};

use super::decode::decode_write_body;
use super::object::{
    meta_mut, meta_str, new_uid, now_rfc3339, set_stored_type, settle_namespace, txn_rv, view,
};
use super::validate::{invalid, validate};
use super::{Answer, Change, Reply, WriteInput};
use crate::resources::{Decoded, ResourceDef, StoreKind};
use crate::routes::ResourceRequest;
use crate::status::ApiError;
use crate::store::Store;
use crate::validation::FieldError;

/// CREATE (POST): 201 with the stored object; 409 AlreadyExists; 404 when the namespace
/// does not exist (NamespaceLifecycle admission); 422 when invalid.
pub fn create(store: &Store, req: &ResourceRequest, input: &WriteInput<'_>) -> Answer {
    let def = req.def;
    let Decoded {
        object: mut obj,
        unknown_fields,
    } = decode_write_body(def, input, "CreateOptions")?;
    // etcd3 `store.go` `Create` refuses an object that carries a resourceVersion, with a
    // plain error the handler turns into a 500 without reason (`ErrorToAPIStatus`); a
    // value that is not a positive number counts as unset (`APIObjectVersioner`).
    let given_rv = meta_str(&obj, "resourceVersion")
        .parse::<u64>()
        .unwrap_or(0);
    settle_namespace(def, req, &mut obj)?;
    set_stored_type(def, &mut obj);
    let dry_run = input.dry_run();
    // `rest.BeforeCreate`: system fields are the server's; generateName fills an empty name.
    let mut name = meta_str(&obj, "name").to_string();
    let generate = meta_str(&obj, "generateName").to_string();
    if name.is_empty() && !generate.is_empty() {
        name = generate_name(&generate);
    }
    if name.is_empty() {
        return Err(invalid(
            def,
            "",
            &[FieldError::required(
                "metadata.name",
                "name or generateName is required",
            )],
        ));
    }
    if let Some(m) = meta_mut(&mut obj) {
        m.insert("name".into(), json!(name));
        m.insert("uid".into(), json!(new_uid()));
        m.insert("creationTimestamp".into(), json!(now_rfc3339()));
        m.remove("resourceVersion");
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        m.remove("selfLink");
    }
    if def.store == StoreKind::Namespaces {
        // Namespace strategy PrepareForCreate: phase Active, the `kubernetes` finalizer
        // (kubernetes `pkg/registry/core/namespace/strategy.go`).
        // The `kubernetes.io/metadata.name` label is set on every namespace (kubernetes
        // `pkg/registry/core/namespace/strategy.go`, `PrepareForCreate`).
        if let Some(root) = obj.as_object_mut() {
            root.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
            root.insert("status".into(), json!({"phase": "Active"}));
        }
        if let Some(m) = meta_mut(&mut obj) {
            let labels = m.entry("labels").or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
    }
    if def.store == StoreKind::Nodes {
        add_not_ready_taint(&mut obj);
    }
    let errs = validate(def, "", None, &obj);
    if !errs.is_empty() {
        return Err(invalid(def, &name, &errs));
    }
    let k = (req.namespace.clone(), name.clone());
    store.write(|txn| {
        if def.namespaced
            && txn
                .get(
                    StoreKind::Namespaces,
                    &(String::new(), req.namespace.clone()),
                )
                .is_none()
        {
            return Err(ApiError::not_found("", "namespaces", &req.namespace));
        }
        if given_rv != 0 && !dry_run {
            return Err(ApiError::unknown_internal(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        if txn.get(def.store, &k).is_some() {
            return Err(ApiError::already_exists(def.group, def.resource, &name));
        }
        if dry_run {
            return Ok(
                Reply::json(201, &view(def, &obj), Vec::new()).with_warnings(&unknown_fields)
            );
        }
        let stored = txn.put(def.store, k.clone(), obj);
        let rv = txn_rv(&stored);
        let change = Change {
            namespace: req.namespace.clone(),
            name: name.clone(),
            before: None,
            after: Some(stored.clone()),
            rv,
        };
        Ok(Reply::json(201, &view(def, &stored), vec![change]).with_warnings(&unknown_fields))
    })
}

/// `generateName` + 5 random characters from the alphabet without vowels and confusable
/// digits, truncating the base to keep the name at most 63 characters (apiserver
/// `pkg/storage/names/generate.go`).
fn generate_name(base: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let base: String = base.chars().take(63 - 5).collect();
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{base}{suffix}")
}

/// The TaintNodesByCondition admission plugin, on by default: every Node is created with
/// `node.kubernetes.io/not-ready:NoSchedule`, appended unless a taint with that key and
/// effect is there (kubernetes `plugin/pkg/admission/nodetaint/admission.go`,
/// `addNotReadyTaint`); the node lifecycle controller removes it once the node is Ready.
fn add_not_ready_taint(node: &mut Value) {
    const KEY: &str = "node.kubernetes.io/not-ready";
    let Some(root) = node.as_object_mut() else {
        return;
    };
    let spec = root.entry("spec").or_insert_with(|| json!({}));
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    let taints = spec.entry("taints").or_insert_with(|| json!([]));
    if !taints.is_array() {
        return;
    }
    if let Some(list) = taints.as_array_mut()
        && !list
            .iter()
            .any(|t| t["key"] == KEY && t["effect"] == "NoSchedule")
    {
        list.push(json!({"key": KEY, "effect": "NoSchedule"}));
    }
}

/// A Namespace as a fresh cluster has it.
pub fn namespace_object(name: &str) -> Value {
    json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

/// Writes an object straight into the store, for the emulator's own bootstrap objects
/// (the default namespaces), with uid and creationTimestamp like any create.
pub fn bootstrap(store: &Store, def: &ResourceDef, namespace: &str, mut obj: Value) {
    let name = meta_str(&obj, "name").to_string();
    set_stored_type(def, &mut obj);
    if let Some(m) = meta_mut(&mut obj) {
        m.insert("uid".into(), json!(new_uid()));
        m.insert("creationTimestamp".into(), json!(now_rfc3339()));
    }
    store.write(|txn| txn.put(def.store, (namespace.to_string(), name), obj));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_not_ready_taint_is_appended_once() {
        let mut node = json!({"spec": {"taints": [{"key": "a", "effect": "NoExecute"}]}});
        add_not_ready_taint(&mut node);
        add_not_ready_taint(&mut node);
        assert_eq!(
            node["spec"]["taints"],
            json!([{"key": "a", "effect": "NoExecute"},
                   {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}])
        );
        // Same key, another effect: still added.
        let mut node = json!({"spec": {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]}});
        add_not_ready_taint(&mut node);
        assert_eq!(node["spec"]["taints"].as_array().map(Vec::len), Some(2));
    }
}
