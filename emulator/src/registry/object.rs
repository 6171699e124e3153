//! A stored object as every verb reads and stamps it: its key and metadata, the stored
//! form beside the form a client sees (Events served through events.k8s.io/v1 are
//! converted, kubernetes `pkg/apis/events/v1`), and the fields the server owns (uid,
//! creationTimestamp, namespace) as `rest.BeforeCreate`/`BeforeUpdate` set them
//! (apiserver `pkg/registry/rest/create.go`, `update.go`).

use std::borrow::Cow;

use serde_json::{Map, Value, json};

use crate::event_versions;
use crate::resources::{ResourceDef, StoreKind};
use crate::routes::ResourceRequest;
use crate::status::ApiError;
use crate::store::Key;

/// The store key of the request's object.
pub(super) fn key(req: &ResourceRequest) -> Key {
    (req.namespace.clone(), req.name.clone())
}

/// The object's `metadata`, if it is an object.
pub(super) fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

/// A string field of `metadata`; "" when absent.
pub(super) fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    meta(obj)
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The object's `metadata` for writing, created (or replaced, if not an object) first.
pub(super) fn meta_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let root = obj.as_object_mut()?;
    let m = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    m.as_object_mut()
}

/// The client's view of a stored object: Events served through events.k8s.io/v1 are
/// converted; every other resource is served as stored (with kind/apiVersion).
pub(super) fn view<'a>(def: &ResourceDef, obj: &'a Value) -> Cow<'a, Value> {
    if def.is_events_v1() {
        Cow::Owned(event_versions::to_events_v1(obj))
    } else {
        Cow::Borrowed(obj)
    }
}

/// The stored form of an object a client sent through `def`.
pub(super) fn to_stored(def: &ResourceDef, obj: Value) -> Value {
    if def.is_events_v1() {
        event_versions::from_events_v1(&obj)
    } else {
        obj
    }
}

/// Sets the kind and apiVersion of the storage version, which stored objects carry
/// (core/v1 for Events, whichever group they were written through).
pub(super) fn set_stored_type(def: &ResourceDef, obj: &mut Value) {
    let (kind, api_version) = if def.store == StoreKind::Events {
        ("Event", "v1".to_string())
    } else {
        (def.kind, def.api_version())
    };
    if let Some(root) = obj.as_object_mut() {
        root.insert("kind".into(), json!(kind));
        root.insert("apiVersion".into(), json!(api_version));
    }
}

/// The resourceVersion a write just gave the object.
pub(super) fn txn_rv(obj: &Value) -> u64 {
    meta_str(obj, "resourceVersion").parse().unwrap_or(0)
}

/// Whether the object waits for finalizers before it may go.
pub(super) fn has_finalizers(obj: &Value) -> bool {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

/// The namespace of the body must be empty or the request's (`rest.BeforeCreate` /
/// `BeforeUpdate`: "the namespace of the provided object does not match the namespace sent
/// on the request"); cluster-scoped objects have their namespace cleared.
pub(super) fn settle_namespace(
    def: &ResourceDef,
    req: &ResourceRequest,
    obj: &mut Value,
) -> Result<(), ApiError> {
    let given = meta_str(obj, "namespace").to_string();
    let Some(m) = meta_mut(obj) else {
        return Ok(());
    };
    if def.namespaced {
        if !given.is_empty() && given != req.namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        m.insert("namespace".into(), json!(req.namespace));
    } else {
        m.remove("namespace");
    }
    Ok(())
}

/// A random UID, a version-4 UUID as the real server makes (apimachinery `pkg/util/uuid`).
pub(super) fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// RFC 3339 in whole seconds, the precision of `metav1.Time`.
pub(super) fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
