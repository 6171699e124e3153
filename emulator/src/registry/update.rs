//! UPDATE and PATCH, as apiserver `pkg/registry/generic/registry/store.go` `Update` runs
//! them over etcd3 `GuaranteedUpdate`: the new object computed from the current one
//! (`handlers/update.go`, `handlers/patch.go`), `rest.BeforeUpdate`
//! (`pkg/registry/rest/update.go`), the Node and Namespace status rules
//! (kubernetes `pkg/registry/core/node/strategy.go`), validation, and a commit only if the
//! object did not change meanwhile.

use std::sync::Arc;

use serde_json::{Value, json};

use super::create::create;
use super::decode::{check_type, decode_patched, decode_write_body};
use super::object::{
    has_finalizers, key, meta, meta_mut, meta_str, set_stored_type, settle_namespace, to_stored,
    txn_rv, view,
};
use super::validate::{invalid, validate};
use super::{Answer, Change, Reply, WriteInput};
use crate::patch;
use crate::resources::{Decoded, ResourceDef, StoreKind};
use crate::routes::ResourceRequest;
use crate::status::ApiError;
use crate::store::Store;
use crate::validation::FieldError;

/// The etcd key of an object (apiserver `pkg/registry/generic/registry/store.go`
/// `NamespaceKeyFunc`/`NoNamespaceKeyFunc` under the resource's prefix; Nodes are kept
/// under their old name, `minions`).
fn storage_key(def: &ResourceDef, namespace: &str, name: &str) -> String {
    let prefix = match def.store {
        StoreKind::Nodes => "minions",
        _ => def.resource,
    };
    if namespace.is_empty() {
        format!("/registry/{prefix}/{name}")
    } else {
        format!("/registry/{prefix}/{namespace}/{name}")
    }
}

/// Copies `field` of `from` into `to` (or removes it from `to` when `from` has none).
fn keep_field(to: &mut Value, from: &Value, field: &str) {
    if let Some(root) = to.as_object_mut() {
        match from.get(field) {
            Some(v) => {
                root.insert(field.into(), v.clone());
            }
            None => {
                root.remove(field);
            }
        }
    }
}

/// The body's name must be the URL's (apiserver `pkg/endpoints/handlers/rest.go`,
/// `checkName`), checked before the object is looked up.
fn check_name(req: &ResourceRequest, obj: &Value) -> Result<(), ApiError> {
    let body_name = meta_str(obj, "name");
    if !body_name.is_empty() && body_name != req.name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({})",
            req.name
        )));
    }
    Ok(())
}

/// The checks and rewrites of the update path of PUT and PATCH: resourceVersion
/// precondition, `BeforeUpdate`, the status-subresource rules, validation. Runs without the
/// store lock against `old`; [`guaranteed_update`] commits only if `old` is still current.
fn prepare_update(req: &ResourceRequest, old: &Value, mut new: Value) -> Result<Value, ApiError> {
    let def = req.def;
    check_name(req, &new)?;
    // Optimistic concurrency: a given resourceVersion must be the current one; an empty one
    // is an unconditional update, allowed for every resource served here (their strategies'
    // `AllowUnconditionalUpdate` return true; store.go `Update`).
    let given_rv = meta_str(&new, "resourceVersion").to_string();
    let old_rv = meta_str(old, "resourceVersion").to_string();
    if !given_rv.is_empty() && given_rv != old_rv {
        return Err(ApiError::conflict_modified(
            def.group,
            def.resource,
            &req.name,
        ));
    }
    settle_namespace(def, req, &mut new)?;
    // `rest.BeforeUpdate`: uid is immutable (an empty one means "keep"), creationTimestamp
    // and the deletion fields are the server's.
    let given_uid = meta_str(&new, "uid").to_string();
    let old_uid = meta_str(old, "uid").to_string();
    if !given_uid.is_empty() && given_uid != old_uid {
        return Err(invalid(
            def,
            &req.name,
            &[FieldError::invalid(
                "metadata.uid",
                json!(given_uid),
                "field is immutable",
            )],
        ));
    }
    set_stored_type(def, &mut new);
    if let Some(m) = meta_mut(&mut new) {
        m.insert("name".into(), json!(req.name));
        m.insert("uid".into(), json!(old_uid));
        m.insert("resourceVersion".into(), json!(old_rv));
        for field in [
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            match meta(old).and_then(|om| om.get(field)) {
                Some(v) => {
                    m.insert(field.into(), v.clone());
                }
                None => {
                    m.remove(field);
                }
            }
        }
    }
    // Node status subresource (kubernetes `pkg/registry/core/node/strategy.go`):
    // `nodeStrategy.PrepareForUpdate` keeps the old status on writes to the node;
    // `nodeStatusStrategy.PrepareForUpdate` keeps the old spec on writes to `/status`.
    // The node status strategy does not reset metadata, so label/annotation changes sent
    // to `/status` are stored, as on the real server.
    if def.store == StoreKind::Nodes {
        if req.subresource == "status" {
            keep_field(&mut new, old, "spec");
        } else {
            keep_field(&mut new, old, "status");
        }
    }
    if def.store == StoreKind::Namespaces {
        keep_field(&mut new, old, "status");
    }
    let errs = validate(def, &req.subresource, Some(old), &new);
    if !errs.is_empty() {
        return Err(invalid(def, &req.name, &errs));
    }
    Ok(new)
}

/// The update loop of the registry store (apiserver `store.go` `Update` over etcd3
/// `GuaranteedUpdate`): read the current object, compute the new one without holding the
/// lock, then commit only if the object did not change meanwhile, else start again from the
/// newer object (where a resourceVersion precondition then fails with 409). Ok(None) when
/// the object does not exist.
fn guaranteed_update(
    store: &Store,
    req: &ResourceRequest,
    dry_run: bool,
    compute: impl Fn(&Value) -> Result<Decoded, ApiError>,
) -> Result<Option<Reply>, ApiError> {
    let def = req.def;
    let k = key(req);
    loop {
        let Some(old) = store.get(def.store, &k) else {
            return Ok(None);
        };
        let Decoded {
            object,
            unknown_fields,
        } = compute(&old)?;
        let new = prepare_update(req, &old, object)?;
        // A write that changes nothing is not persisted: no new resourceVersion, no watch
        // event (etcd3 `store.go` `GuaranteedUpdate`: when the new data equals the existing
        // data the write is skipped and the existing object returned).
        let changed = new != *old;
        let committed = store.write(|txn| {
            let current = txn.get(def.store, &k)?;
            if !Arc::ptr_eq(&current, &old) {
                return Some(None);
            }
            if !changed || dry_run {
                return Some(Some(Reply::json(200, &view(def, &new), Vec::new())));
            }
            // An update that removes the last finalizer of an object marked for deletion
            // deletes it (apiserver store.go `Update`, `ShouldDeleteDuringUpdate`).
            if !meta_str(&new, "deletionTimestamp").is_empty() && !has_finalizers(&new) {
                let last = txn.remove(def.store, &k)?;
                let change = Change {
                    namespace: req.namespace.clone(),
                    name: req.name.clone(),
                    before: Some(old.clone()),
                    after: None,
                    rv: txn_rv(&last),
                };
                return Some(Some(Reply::json(200, &view(def, &last), vec![change])));
            }
            let stored = txn.put(def.store, k.clone(), new);
            let change = Change {
                namespace: req.namespace.clone(),
                name: req.name.clone(),
                before: Some(old.clone()),
                after: Some(stored.clone()),
                rv: txn_rv(&stored),
            };
            Some(Some(Reply::json(200, &view(def, &stored), vec![change])))
        });
        match committed {
            None => return Ok(None),
            Some(Some(reply)) => return Ok(Some(reply.with_warnings(&unknown_fields))),
            Some(None) => continue,
        }
    }
}

/// UPDATE (PUT): 404 when absent (no resource here allows create-on-update except core
/// Events, whose strategy does), 409 on a stale resourceVersion.
pub fn update(store: &Store, req: &ResourceRequest, input: &WriteInput<'_>) -> Answer {
    let def = req.def;
    // The handler decodes the body, then checks its name against the URL before the
    // object is looked up (apiserver `handlers/update.go` UpdateResource, `checkName`).
    let decoded = decode_write_body(def, input, "UpdateOptions")?;
    check_name(req, &decoded.object)?;
    let dry_run = input.dry_run();
    // The uid of a PUT body is a precondition of the storage update (apiserver
    // `pkg/registry/rest/update.go` `defaultUpdatedObjectInfo.Preconditions`, checked by
    // etcd3 `GuaranteedUpdate` through `storage.Preconditions.Check`): a mismatch is a
    // 409 wrapping the StorageError, before any validation.
    let given_uid = meta_str(&decoded.object, "uid").to_string();
    let compute = |old: &Value| {
        let old_uid = meta_str(old, "uid");
        if !given_uid.is_empty() && given_uid != old_uid {
            return Err(ApiError::conflict(
                def.group,
                def.resource,
                &req.name,
                &format!(
                    "StorageError: invalid object, Code: 4, Key: {}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: {given_uid}, UID in object meta: {old_uid}",
                    storage_key(def, &req.namespace, &req.name)
                ),
            ));
        }
        Ok(decoded.clone())
    };
    match guaranteed_update(store, req, dry_run, compute)? {
        Some(reply) => Ok(reply),
        // Event strategy `AllowCreateOnUpdate` is true (kubernetes
        // `pkg/registry/core/event/strategy.go`): a PUT of a missing Event creates it.
        None if def.store == StoreKind::Events => create(store, req, input),
        None => Err(ApiError::not_found(def.group, def.resource, &req.name)),
    }
}

/// PATCH: applies the patch to the current object (in the client's API version), then
/// the result follows the update path; a `metadata.resourceVersion` in the result that is
/// not the current one fails with 409, which makes it a precondition.
pub fn patch(store: &Store, req: &ResourceRequest, input: &WriteInput<'_>) -> Answer {
    let def = req.def;
    let dry_run = input.dry_run();
    let kind = patch::PatchKind::from_content_type(input.content_type)?;
    let validation = input.field_validation("PatchOptions")?;
    let compute = |old: &Value| {
        let original = view(def, old);
        let mut patched = patch::apply(kind, def.kind, &original, input.body)?;
        check_type(def, &mut patched)?;
        let decoded = decode_patched(def, kind, input.body, &patched, validation)?;
        Ok(Decoded {
            object: to_stored(def, decoded.object),
            unknown_fields: decoded.unknown_fields,
        })
    };
    guaranteed_update(store, req, dry_run, compute)?
        .ok_or_else(|| ApiError::not_found(def.group, def.resource, &req.name))
}
