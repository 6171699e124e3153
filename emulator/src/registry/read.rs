//! GET and LIST: one object, or a page of a list cut from one consistent snapshot with
//! `limit` and `continue` (apiserver `pkg/endpoints/handlers/get.go`, `pkg/storage/etcd3/
//! store.go` `GetList`), as JSON or as a Table for `kubectl get`.

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value, json};

use super::list_options::{ContinueToken, Selectors, decode_continue, validate_list_options};
use super::object::{key, meta_str, view};
use super::table::{self, TableRequest};
use super::{Answer, Reply};
use crate::resources::ResourceDef;
use crate::routes::{ResourceRequest, query_param};
use crate::status::ApiError;
use crate::store::{ListSnapshot, Store};

/// GET, as the object or (for `kubectl get`) as a Table.
pub fn get(store: &Store, req: &ResourceRequest, table: Option<&TableRequest>) -> Answer {
    let not_found = || ApiError::not_found(req.def.group, req.def.resource, &req.name);
    if let Some(table) = table {
        let obj = store.get(req.def.store, &key(req)).ok_or_else(not_found)?;
        let mut list_meta = Map::new();
        list_meta.insert(
            "resourceVersion".into(),
            json!(meta_str(&obj, "resourceVersion")),
        );
        let rendered = table::render(req.def, table, &list_meta, &[&view(req.def, &obj)]);
        return Ok(Reply::json(200, &rendered, Vec::new()));
    }
    if req.def.is_events_v1() {
        let obj = store.get(req.def.store, &key(req)).ok_or_else(not_found)?;
        return Ok(Reply::json(200, &view(req.def, &obj), Vec::new()));
    }
    let json = store
        .get_json(req.def.store, &key(req))
        .ok_or_else(not_found)?;
    Ok(Reply::bytes(200, json, Vec::new()))
}

/// The message of a continue token whose snapshot is gone (apiserver
/// `pkg/storage/etcd3/store.go`, list on a compacted revision).
const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// LIST with selectors, `limit` and `continue`. Each page is cut from one consistent
/// snapshot taken by the first request, as etcd serves continuations at the first page's
/// revision.
pub fn list(
    store: &Store,
    req: &ResourceRequest,
    query: &str,
    table: Option<&TableRequest>,
) -> Answer {
    validate_list_options(query, false)?;
    // apiserver `pkg/storage/interfaces.go` `ValidateListOptions`, `ParseResourceVersion`.
    if let Some(rv) = query_param(query, "resourceVersion").filter(|v| !v.is_empty())
        && rv.parse::<u64>().is_err()
        && query_param(query, "continue").is_none_or(|c| c.is_empty())
    {
        return Err(ApiError::bad_request(format!(
            "invalid resource version: resourceVersion: Invalid value: {rv:?}: strconv.ParseUint: parsing {rv:?}: invalid syntax"
        )));
    }
    let selectors = Selectors::parse(req.def, query)?;
    let limit = match query_param(query, "limit").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n > 0 => Some(n as usize),
            Ok(_) => None,
            // The query parameter decoder's error (apimachinery `pkg/runtime/conversion.go`
            // `Convert_Slice_string_To_int64`, strconv.ParseInt).
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "strconv.ParseInt: parsing {s:?}: invalid syntax"
                )));
            }
        },
    };
    let (rv, items, offset) = match query_param(query, "continue").filter(|s| !s.is_empty()) {
        Some(token) => {
            // apiserver `pkg/storage/interfaces.go` `ValidateListOptions`: the token is
            // decoded first, then a resourceVersion beside it is refused, as a continue
            // token carries its own revision.
            let decoded = decode_continue(&token)?;
            if query_param(query, "resourceVersion").is_some_and(|v| !v.is_empty() && v != "0") {
                return Err(ApiError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let snap = store
                .snapshot(decoded.snapshot)
                .ok_or_else(|| ApiError::expired(CONTINUE_EXPIRED))?;
            (snap.rv, snap.items, decoded.offset)
        }
        None => {
            let ns = (!req.namespace.is_empty()).then_some(req.namespace.as_str());
            let (rv, all) = store.list(req.def.store, ns);
            let items: Vec<Arc<Value>> = all.into_iter().filter(|o| selectors.matches(o)).collect();
            (rv, Arc::new(items), 0)
        }
    };
    let start = offset.min(items.len());
    let end = limit.map_or(items.len(), |l| (start + l).min(items.len()));
    let mut list_meta = Map::new();
    list_meta.insert("resourceVersion".into(), json!(rv.to_string()));
    if end < items.len() {
        let snapshot = store.save_snapshot(ListSnapshot {
            rv,
            items: items.clone(),
        });
        let token = ContinueToken {
            v: "meta.k8s.io/v1".into(),
            rv,
            snapshot,
            offset: end,
        };
        let raw = serde_json::to_vec(&token).unwrap_or_default();
        list_meta.insert("continue".into(), json!(URL_SAFE_NO_PAD.encode(raw)));
        // Counted only for a list without selectors: with one, the server would have to
        // read every remaining object to count (apiserver `pkg/storage/etcd3/store.go`
        // `GetList`, and the watch cache's `list`: `if pred.Empty()`).
        if selectors.is_empty() {
            list_meta.insert("remainingItemCount".into(), json!(items.len() - end));
        }
    }
    let page = &items[start..end];
    if let Some(table) = table {
        let views: Vec<Cow<'_, Value>> = page.iter().map(|o| view(req.def, o)).collect();
        let objects: Vec<&Value> = views.iter().map(|v| v.as_ref()).collect();
        let rendered = table::render(req.def, table, &list_meta, &objects);
        return Ok(Reply::json(200, &rendered, Vec::new()));
    }
    let body = serialize_list(req.def, &list_meta, page);
    Ok(Reply::bytes(200, body, Vec::new()))
}

/// A list item as the real server writes it: typed list items carry no kind/apiVersion.
struct Item<'a>(&'a Value);

impl serde::Serialize for Item<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_object() {
            Some(obj) => {
                let mut map = s.serialize_map(None)?;
                for (k, v) in obj {
                    if k != "kind" && k != "apiVersion" {
                        map.serialize_entry(k, v)?;
                    }
                }
                map.end()
            }
            None => self.0.serialize(s),
        }
    }
}

pub(super) fn serialize_list(
    def: &ResourceDef,
    list_meta: &Map<String, Value>,
    items: &[Arc<Value>],
) -> Bytes {
    #[derive(serde::Serialize)]
    struct List<'a> {
        kind: String,
        #[serde(rename = "apiVersion")]
        api_version: String,
        metadata: &'a Map<String, Value>,
        items: Vec<Item<'a>>,
    }
    let converted: Vec<Value>;
    let refs: Vec<&Value> = if def.is_events_v1() {
        converted = items.iter().map(|o| view(def, o).into_owned()).collect();
        converted.iter().collect()
    } else {
        items.iter().map(|o| o.as_ref()).collect()
    };
    let list = List {
        kind: def.list_kind(),
        api_version: def.api_version(),
        metadata: list_meta,
        items: refs.into_iter().map(Item).collect(),
    };
    Bytes::from(serde_json::to_vec(&list).unwrap_or_default())
}
