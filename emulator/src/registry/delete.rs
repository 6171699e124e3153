//! DELETE and DELETECOLLECTION, as apiserver `pkg/registry/generic/registry/store.go`
//! `Delete` and `DeleteCollection` run them: `DeleteOptions` and their preconditions,
//! finalizers (an object with some is only marked), and the namespace lifecycle
//! (immortal namespaces; a deleted namespace's contents go with it).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::list_options::Selectors;
use super::object::{has_finalizers, key, meta_mut, meta_str, now_rfc3339, txn_rv, view};
use super::read::serialize_list;
use super::validate::invalid_unnamed;
use super::{Answer, Change, Reply, WriteInput};
use crate::resources::{ResourceDef, StoreKind};
use crate::routes::{ResourceRequest, query_param};
use crate::status::{self, ApiError};
use crate::store::{Key, Store, Txn};
use crate::validation;

/// `DeleteOptions.preconditions` of a DELETE body, if any.
fn preconditions(body: &[u8], query: &str) -> Result<(Option<String>, Option<String>), ApiError> {
    let mut opts: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
    };
    // The query parameters fill DeleteOptions as the body does (apiserver
    // `pkg/endpoints/handlers/delete.go`), then `ValidateDeleteOptions` checks them.
    if let Some(obj) = opts.as_object_mut() {
        if let Some(policy) = query_param(query, "propagationPolicy") {
            obj.insert("propagationPolicy".into(), json!(policy));
        }
        if let Some(orphan) = query_param(query, "orphanDependents") {
            obj.insert("orphanDependents".into(), json!(orphan == "true"));
        }
    }
    let errs = validation::validate_delete_options(&opts);
    if !errs.is_empty() {
        return Err(invalid_unnamed("DeleteOptions", "meta.k8s.io", &errs));
    }
    let pre = opts.get("preconditions");
    let get = |f: &str| {
        pre.and_then(|p| p.get(f))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Ok((get("uid"), get("resourceVersion")))
}

/// Deletes one object inside a transaction, with the preconditions of `DeleteOptions`
/// (apimachinery `storage.Preconditions.Check`: 409 Conflict "Precondition failed: ...").
fn delete_in_txn(
    txn: &mut Txn<'_>,
    def: &ResourceDef,
    k: &Key,
    pre: &(Option<String>, Option<String>),
    dry_run: bool,
) -> Result<Deletion, ApiError> {
    let old = txn
        .get(def.store, k)
        .ok_or_else(|| ApiError::not_found(def.group, def.resource, &k.1))?;
    // apiserver `pkg/registry/rest/delete.go` `BeforeDelete`: a conflict on the kind (not
    // the resource), `the UID in the precondition (...) does not match ...`.
    let checks = [
        (&pre.0, "uid", "UID", "deleted and then recreated"),
        (&pre.1, "resourceVersion", "ResourceVersion", "modified"),
    ];
    for (given, field, name, why) in checks {
        let current = meta_str(&old, field);
        if let Some(given) = given
            && given != current
        {
            return Err(ApiError::conflict(
                def.group,
                def.kind,
                &k.1,
                &format!(
                    "the {name} in the precondition ({given}) does not match the {name} in record ({current}). The object might have been {why}"
                ),
            ));
        }
    }
    let change = |after: Option<Arc<Value>>, rv: u64| Change {
        namespace: k.0.clone(),
        name: k.1.clone(),
        before: Some(old.clone()),
        after,
        rv,
    };
    // An object with finalizers is only marked for deletion: deletionTimestamp is set and
    // it stays until an update removes the last finalizer (apiserver store.go `Delete` →
    // `updateForGracefulDeletionAndFinalizers`).
    if has_finalizers(&old) {
        if !meta_str(&old, "deletionTimestamp").is_empty() || dry_run {
            return Ok(Deletion {
                change: None,
                pending: Some(old.clone()),
            });
        }
        let mut marked = (*old).clone();
        if let Some(m) = meta_mut(&mut marked) {
            m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
        }
        let stored = txn.put(def.store, k.clone(), marked);
        let rv = txn_rv(&stored);
        return Ok(Deletion {
            change: Some(change(Some(stored.clone()), rv)),
            pending: Some(stored),
        });
    }
    if dry_run {
        return Ok(Deletion {
            change: None,
            pending: None,
        });
    }
    let last = txn.remove(def.store, k);
    Ok(Deletion {
        change: Some(change(None, last.map_or(0, |l| txn_rv(&l)))),
        pending: None,
    })
}

/// What a delete did: the committed change (none for dry runs and repeated deletes of an
/// object already marked), and the object when it only got marked for deletion because
/// finalizers remain.
struct Deletion {
    change: Option<Change>,
    pending: Option<Arc<Value>>,
}

/// DELETE: 200 with a `Status` Success naming the object (the generic registry's answer
/// when `ReturnDeletedObject` is false, as for every resource here); watchers get DELETED.
/// Deleting a Namespace removes what it contains (the namespace controller's job, done at
/// once here).
pub fn delete(store: &Store, req: &ResourceRequest, input: &WriteInput<'_>) -> Answer {
    let def = req.def;
    // The NamespaceLifecycle admission plugin protects the system namespaces (apiserver
    // `pkg/admission/plugin/namespace/lifecycle/admission.go`, `immortalNamespaces`).
    if def.store == StoreKind::Namespaces
        && matches!(req.name.as_str(), "default" | "kube-system" | "kube-public")
    {
        return Err(ApiError::forbidden_with_reason(
            def.group,
            def.resource,
            &req.name,
            "this namespace may not be deleted",
        ));
    }
    let pre = preconditions(input.body, input.query)?;
    let dry_run = input.dry_run();
    store.write(|txn| {
        let existing = txn.get(def.store, &key(req));
        let uid = existing
            .as_ref()
            .map(|o| meta_str(o, "uid").to_string())
            .unwrap_or_default();
        let deletion = delete_in_txn(txn, def, &key(req), &pre, dry_run)?;
        let mut changes: Vec<Change> = deletion.change.into_iter().collect();
        if let Some(pending) = deletion.pending {
            // Not deleted yet: the real handler answers 200 with the object as it now is.
            return Ok(Reply::json(200, &view(def, &pending), changes));
        }
        if def.store == StoreKind::Namespaces && !dry_run {
            // Every namespaced store once (the events.k8s.io view shares core's).
            for inner in crate::resources::RESOURCES
                .iter()
                .filter(|r| r.namespaced && !r.is_events_v1())
            {
                for obj in txn.list(inner.store, Some(&req.name)) {
                    let k = (req.name.clone(), meta_str(&obj, "name").to_string());
                    if let Ok(d) = delete_in_txn(txn, inner, &k, &(None, None), false) {
                        changes.extend(d.change);
                    }
                }
            }
        }
        if def.store == StoreKind::Namespaces
            && let Some(existing) = existing
        {
            // The namespace registry answers with the Namespace marked for deletion
            // (deletionTimestamp, phase Terminating; kubernetes
            // `pkg/registry/core/namespace/storage/storage.go` `REST.Delete`), which the
            // namespace controller then empties and removes. The emulator's controller is
            // instant: the namespace and its contents are already gone.
            let mut marked = (*existing).clone();
            if let Some(m) = meta_mut(&mut marked) {
                m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
                if let Some(rv) = changes.first().map(|c| c.rv) {
                    m.insert("resourceVersion".into(), json!(rv.to_string()));
                }
            }
            if let Some(root) = marked.as_object_mut() {
                root.insert("status".into(), json!({"phase": "Terminating"}));
            }
            return Ok(Reply::json(200, &marked, changes));
        }
        Ok(Reply::json(
            200,
            &status::success(def.group, def.resource, &req.name, &uid),
            changes,
        ))
    })
}

/// DELETECOLLECTION: deletes every object matching the selectors and answers with the list
/// of deleted objects (apiserver store.go `DeleteCollection`).
pub fn delete_collection(store: &Store, req: &ResourceRequest, input: &WriteInput<'_>) -> Answer {
    let def = req.def;
    let selectors = Selectors::parse(def, input.query)?;
    let dry_run = input.dry_run();
    store.write(|txn| {
        let ns = (!req.namespace.is_empty()).then_some(req.namespace.as_str());
        let targets: Vec<Key> = txn
            .list(def.store, ns)
            .into_iter()
            .filter(|o| selectors.matches(o))
            .map(|o| {
                (
                    meta_str(&o, "namespace").to_string(),
                    meta_str(&o, "name").to_string(),
                )
            })
            .collect();
        let mut changes = Vec::new();
        let mut deleted = Vec::new();
        for k in &targets {
            if let Some(obj) = txn.get(def.store, k) {
                deleted.push(obj);
            }
            changes.extend(delete_in_txn(txn, def, k, &(None, None), dry_run)?.change);
        }
        let mut list_meta = Map::new();
        list_meta.insert("resourceVersion".into(), json!(""));
        let body = serialize_list(def, &list_meta, &deleted);
        let changes = if dry_run { Vec::new() } else { changes };
        Ok(Reply::bytes(200, body, changes))
    })
}
