//! The semantics of each verb on a resource, as kube-apiserver's generic registry applies
//! them: create, get, list, update, patch, delete and deletecollection, with
//! resourceVersion preconditions, the Node status subresource, decoding of bodies and patch
//! results into the resource's type (unknown fields dropped with a warning, `omitempty`
//! applied), validation, no-op detection, `ListOptions` validation, the Event version
//! conversion, and Table answers for `kubectl get` (`table`).
//!
//! Sources: apiserver `pkg/registry/generic/registry/store.go` (Create/Update/Delete),
//! `pkg/registry/rest/create.go` (`BeforeCreate`), `pkg/registry/rest/update.go`
//! (`BeforeUpdate`), `pkg/endpoints/handlers/{create,update,patch,delete,get}.go`, and
//! kubernetes `pkg/registry/core/node/strategy.go`. Every check and write of one request runs
//! inside one store transaction. No HTTP here: the server turns [`Reply`] and [`ApiError`]
//! into responses.

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use rand::Rng;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value, json};

pub mod table;

use crate::event_versions;
use crate::patch;
use crate::resources::{Decoded, FieldValidation, ResourceDef, StoreKind};
use crate::routes::{ResourceRequest, query_param};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{self, ApiError};
use crate::store::{Key, ListSnapshot, Store, Txn};
use crate::validation::{self, FieldError, FieldErrorKind};
use table::TableRequest;

/// One committed change, for accounting.
#[derive(Debug, Clone)]
pub struct Change {
    /// Namespace of the object ("" when cluster-scoped).
    pub namespace: String,
    /// Name of the object.
    pub name: String,
    /// The object before (None on create).
    pub before: Option<Arc<Value>>,
    /// The object after (None on delete).
    pub after: Option<Arc<Value>>,
    /// The resourceVersion the change produced.
    pub rv: u64,
}

/// A successful answer: HTTP code, serialized body, and the committed changes (empty for
/// reads, no-op writes and dry runs).
#[derive(Debug)]
pub struct Reply {
    /// HTTP status code.
    pub code: u16,
    /// JSON body.
    pub body: Bytes,
    /// What was written.
    pub changes: Vec<Change>,
    /// `Warning` header texts (unknown fields dropped under `fieldValidation=Warn`).
    pub warnings: Vec<String>,
}

impl Reply {
    fn json(code: u16, value: &Value, changes: Vec<Change>) -> Reply {
        Reply {
            code,
            body: Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
            changes,
            warnings: Vec::new(),
        }
    }

    fn with_warnings(mut self, unknown_fields: &[String]) -> Reply {
        self.warnings = unknown_fields
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        self
    }
}

/// The parts of a write request the registry needs beyond the route.
pub struct WriteInput<'a> {
    /// The request body.
    pub body: &'a [u8],
    /// The Content-Type (for PATCH).
    pub content_type: &'a str,
    /// The raw query string.
    pub query: &'a str,
}

impl WriteInput<'_> {
    /// `dryRun=All`: run every check, persist nothing (apiserver
    /// `pkg/endpoints/handlers/rest.go`, `dryrun.IsDryRun`).
    fn dry_run(&self) -> bool {
        query_param(self.query, "dryRun").is_some_and(|v| v == "All")
    }

    /// The `fieldValidation` directive; an unsupported value is 422 on the write's options
    /// kind (`CreateOptions`, `UpdateOptions`, `PatchOptions`), as apimachinery
    /// `pkg/apis/meta/v1/validation` `ValidateFieldValidation` reports it.
    fn field_validation(&self, options_kind: &str) -> Result<FieldValidation, ApiError> {
        let given = query_param(self.query, "fieldValidation");
        FieldValidation::parse(given.as_deref()).ok_or_else(|| {
            invalid_unnamed(
                options_kind,
                "meta.k8s.io",
                &[FieldError::not_supported(
                    "fieldValidation",
                    json!(given.unwrap_or_default()),
                    &["", "Ignore", "Strict", "Warn"],
                )],
            )
        })
    }
}

fn key(req: &ResourceRequest) -> Key {
    (req.namespace.clone(), req.name.clone())
}

fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    meta(obj)
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn meta_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
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
fn view<'a>(def: &ResourceDef, obj: &'a Value) -> Cow<'a, Value> {
    if def.is_events_v1() {
        Cow::Owned(event_versions::to_events_v1(obj))
    } else {
        Cow::Borrowed(obj)
    }
}

/// The stored form of an object a client sent through `def`.
fn to_stored(def: &ResourceDef, obj: Value) -> Value {
    if def.is_events_v1() {
        event_versions::from_events_v1(&obj)
    } else {
        obj
    }
}

/// Stored objects carry kind and apiVersion of their storage version (core/v1 for Events).
fn stored_type(def: &ResourceDef) -> (&'static str, String) {
    if def.store == StoreKind::Events {
        ("Event", "v1".to_string())
    } else {
        (def.kind, def.api_version())
    }
}

/// Decodes a create/update body. JSON and YAML are accepted, as by the real server's
/// serializers (apimachinery `pkg/runtime/serializer/codec_factory.go`); protobuf is not
/// implemented by the emulator and is answered with 415 UnsupportedMediaType. client-go
/// falls back to JSON after a 415 only for CBOR (`rest/client.go`,
/// `requestClientContentConfigProvider.UnsupportedMediaType`), so kubectl commands that
/// write through typed clients in protobuf (`kubectl create configmap`) fail here.
fn parse_body(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    let value: Value = match patch::media_type(content_type).as_str() {
        "" | "application/json" | "*/*" => serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "the object provided is unrecognized or could not be decoded: {e}"
            ))
        })?,
        "application/yaml" => {
            let text = std::str::from_utf8(body)
                .map_err(|e| ApiError::bad_request(format!("the body is not UTF-8: {e}")))?;
            serde_saphyr::from_str(text).map_err(|e| {
                ApiError::bad_request(format!(
                    "the object provided is unrecognized or could not be decoded: {e}"
                ))
            })?
        }
        _ => return Err(ApiError::unsupported_body_media_type()),
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the object provided is unrecognized: the body must be a JSON object",
        ));
    }
    Ok(value)
}

/// Rejects a body whose apiVersion/kind names another type, as the decoder does; missing
/// apiVersion/kind are filled in, as the real handlers default them. The message is the
/// handler's `transformDecodeError` (apiserver `pkg/endpoints/handlers/rest.go`) around
/// the scheme's error: a kind the scheme has in the body's version cannot be converted
/// (apimachinery `pkg/runtime/scheme.go` `Convert`: `converting (v1.Pod) to (core.Node):
/// unknown conversion`), any other is not registered (`scheme.go` `New`: `no kind "Widget"
/// is registered for version "v1" in scheme ...`). The emulator knows the kinds it serves.
fn check_type(def: &ResourceDef, obj: &mut Value) -> Result<(), ApiError> {
    let expected_version = def.api_version();
    let given_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let given_kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let version = if given_version.is_empty() {
        expected_version.as_str()
    } else {
        given_version
    };
    let kind = if given_kind.is_empty() {
        def.kind
    } else {
        given_kind
    };
    if version != expected_version || kind != def.kind {
        let short_version = version.rsplit('/').next().unwrap_or(version);
        let registered = crate::resources::RESOURCES
            .iter()
            .any(|r| r.api_version() == version && r.kind == kind);
        let why = if registered {
            let internal = match def.group {
                "" => "core",
                group => group.split('.').next().unwrap_or(group),
            };
            format!(
                "converting ({short_version}.{kind}) to ({internal}.{}): unknown conversion",
                def.kind
            )
        } else {
            format!(
                "no kind {kind:?} is registered for version {version:?} in scheme \"pkg/runtime/scheme.go:111\""
            )
        };
        return Err(ApiError::bad_request(format!(
            "{kind} in version {short_version:?} cannot be handled as a {}: {why}",
            def.kind
        )));
    }
    if let Some(root) = obj.as_object_mut() {
        root.insert("apiVersion".into(), json!(expected_version));
        root.insert("kind".into(), json!(def.kind));
    }
    Ok(())
}

/// Decodes a create/update body into the resource's type (`Decoded`); a body that does
/// not fit the type, or that has unknown fields under `fieldValidation=Strict`, is 400 with
/// the message of apiserver `pkg/endpoints/handlers/rest.go` `transformDecodeError`:
/// `Node in version "v1" cannot be handled as a Node: <decoder error>`.
fn decode_body(
    def: &ResourceDef,
    obj: &Value,
    validation: FieldValidation,
) -> Result<Decoded, ApiError> {
    let cannot = |why: String| {
        ApiError::bad_request(format!(
            "{kind} in version {version:?} cannot be handled as a {kind}: {why}",
            kind = def.kind,
            version = def.version,
        ))
    };
    let decoded = def.decode(obj).map_err(cannot)?;
    match validation {
        FieldValidation::Strict if !decoded.unknown_fields.is_empty() => {
            Err(cannot(strict_decoding_error(&decoded.unknown_fields)))
        }
        FieldValidation::Ignore => Ok(Decoded {
            unknown_fields: Vec::new(),
            ..decoded
        }),
        _ => Ok(decoded),
    }
}

/// A create or update body as the handler decodes it: JSON or YAML, its kind/apiVersion
/// checked, decoded into the resource's type under `fieldValidation` (`options` names the
/// options kind for its errors), in stored form.
fn decode_write_body(
    def: &ResourceDef,
    input: &WriteInput<'_>,
    options: &str,
) -> Result<Decoded, ApiError> {
    let mut obj = parse_body(input.body, input.content_type)?;
    check_type(def, &mut obj)?;
    let decoded = decode_body(def, &obj, input.field_validation(options)?)?;
    Ok(Decoded {
        object: to_stored(def, decoded.object),
        unknown_fields: decoded.unknown_fields,
    })
}

/// apimachinery `pkg/runtime/error.go` `strictDecodingError.Error`: `strict decoding
/// error: unknown field "a", unknown field "b"`.
fn strict_decoding_error(unknown_fields: &[String]) -> String {
    let fields: Vec<String> = unknown_fields
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    format!("strict decoding error: {}", fields.join(", "))
}

/// Decodes a patch result. A result that does not fit the type, or has unknown fields
/// under `Strict`, is 422 `"" is invalid: patch: Invalid value: "<value>": <error>`
/// (apiserver `pkg/endpoints/handlers/patch.go`, `applyPatchToCurrentObject`: the JSON and
/// merge patchers name the patched object, the strategic one the patch map as Go's `%+v`
/// prints it).
fn decode_patched(
    def: &ResourceDef,
    kind: patch::PatchKind,
    body: &[u8],
    patched: &Value,
    validation: FieldValidation,
) -> Result<Decoded, ApiError> {
    let invalid_patch = |why: String| {
        let bad_value = match kind {
            patch::PatchKind::Strategic => serde_json::from_slice::<Value>(body)
                .map(|v| go_print(&v))
                .unwrap_or_default(),
            _ => serde_json::to_string(patched).unwrap_or_default(),
        };
        invalid_unnamed(
            "",
            "",
            &[FieldError::invalid("patch", json!(bad_value), &why)],
        )
    };
    let decoded = def.decode(patched).map_err(invalid_patch)?;
    match validation {
        FieldValidation::Strict if !decoded.unknown_fields.is_empty() => Err(invalid_patch(
            strict_decoding_error(&decoded.unknown_fields),
        )),
        FieldValidation::Ignore => Ok(Decoded {
            unknown_fields: Vec::new(),
            ..decoded
        }),
        _ => Ok(decoded),
    }
}

/// A JSON value as Go's `fmt` `%+v` prints the `map[string]interface{}` it decodes into:
/// `map[spec:map[taints:x]]`, keys sorted, lists as `[a b]`, null as `<nil>`.
fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(go_print).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_print(&m[k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// A 422 of apimachinery `NewInvalid` for an object without a name (the patch decoder's
/// and `ListOptions`): `details` carries no empty `name`/`kind`, as Go's `omitempty` drops
/// them.
fn invalid_unnamed(kind: &str, group: &str, errs: &[FieldError]) -> ApiError {
    let mut body = validation::invalid_status(kind, group, "", errs);
    if let Some(details) = body.get_mut("details").and_then(Value::as_object_mut) {
        details.retain(|_, v| v.as_str() != Some(""));
    }
    ApiError::invalid(body)
}

/// The namespace of the body must be empty or the request's (`rest.BeforeCreate` /
/// `BeforeUpdate`: "the namespace of the provided object does not match the namespace sent
/// on the request"); cluster-scoped objects have their namespace cleared.
fn settle_namespace(
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
fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// RFC 3339 in whole seconds, the precision of `metav1.Time`.
fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
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

/// Validation of the object as its strategy does it: Node has its own rules (which include
/// the metadata rules), and writes to `nodes/status` run only the update rules
/// (`nodeStatusStrategy.ValidateUpdate` calls `ValidateNodeUpdate` alone); Events are
/// validated by the rules of the API group they were written through (kubernetes
/// `pkg/registry/core/event/strategy.go`, `pkg/apis/core/validation/events.go`), Leases by
/// `pkg/apis/coordination/validation`; the others use the common ObjectMeta validation.
/// `new` (and `old`) are in the stored form.
fn validate(
    def: &ResourceDef,
    subresource: &str,
    old: Option<&Value>,
    new: &Value,
) -> Vec<FieldError> {
    match (def.store, old) {
        (StoreKind::Nodes, Some(old)) if subresource == "status" => {
            validation::validate_node_update(old, new)
        }
        (StoreKind::Nodes, _) => validation::validate_node(old, new),
        (StoreKind::Events, _) => validation::validate_event(old, new, def.group),
        (StoreKind::Leases, _) => validation::validate_lease(new),
        _ => validation::validate_object_meta(new),
    }
}

/// 422 Invalid for `errs`, named by the kind of the strategy that validated: Events
/// written through events.k8s.io are validated by the core Event strategy, whose errors
/// name the internal kind `Event` without a group (kubernetes
/// `pkg/registry/events/rest/storage_events.go` reuses the core event storage). A cause
/// reported twice by the hand-written rules appears once, as in 1.37, where the
/// declaratively validated rules (`+k8s:` tags, apiserver `pkg/registry/rest/validate.go`)
/// replace the duplicates `ValidateNode` + `ValidateNodeUpdate` and the Event update
/// rules used to report.
fn invalid(def: &ResourceDef, name: &str, errs: &[FieldError]) -> ApiError {
    let group = if def.store == StoreKind::Events {
        ""
    } else {
        def.group
    };
    let mut unique: Vec<FieldError> = Vec::with_capacity(errs.len());
    for e in errs {
        if !unique.contains(e) {
            unique.push(e.clone());
        }
    }
    ApiError::invalid(validation::invalid_status(def.kind, group, name, &unique))
}

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

/// GET, as the object or (for `kubectl get`) as a Table.
pub fn get(
    store: &Store,
    req: &ResourceRequest,
    table: Option<&TableRequest>,
) -> Result<Reply, ApiError> {
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
    Ok(Reply {
        code: 200,
        body: json,
        changes: Vec::new(),
        warnings: Vec::new(),
    })
}

/// The label and field selectors of a LIST or WATCH; a malformed one is a 400 with the
/// parser's message, as the real server answers.
pub struct Selectors {
    label: Option<LabelSelector>,
    field: Option<FieldSelector>,
}

impl Selectors {
    /// Parses `labelSelector` and `fieldSelector` from the query; the field labels a
    /// selector may use depend on the group and kind, as each upstream registry declares
    /// them (core/v1 and events.k8s.io/v1 Events differ).
    pub fn parse(def: &ResourceDef, query: &str) -> Result<Selectors, ApiError> {
        let label = query_param(query, "labelSelector")
            .filter(|s| !s.is_empty())
            .map(|s| LabelSelector::parse(&s))
            .transpose()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let field = query_param(query, "fieldSelector")
            .filter(|s| !s.is_empty())
            .map(|s| FieldSelector::parse_for_resource(def.group, def.kind, &s))
            .transpose()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Selectors { label, field })
    }

    /// Whether neither selector was given (apimachinery `SelectionPredicate.Empty`).
    pub fn is_empty(&self) -> bool {
        self.label.is_none() && self.field.is_none()
    }

    /// Whether the stored object passes both selectors.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = meta(obj)
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object);
        self.label.as_ref().is_none_or(|l| l.matches(labels))
            && self.field.as_ref().is_none_or(|f| f.matches(obj))
    }
}

/// apimachinery `pkg/apis/meta/internalversion/validation` `ValidateListOptions`, as the
/// list and watch handlers run it (apiserver `pkg/endpoints/handlers/get.go`
/// `ListResource`): 422 `ListOptions.meta.k8s.io "" is invalid: ...`. The WatchList
/// feature gate is on (the default since 1.34), so a watch may set `sendInitialEvents`
/// with `resourceVersionMatch=NotOlderThan`.
pub fn validate_list_options(query: &str, watch: bool) -> Result<(), ApiError> {
    let given = |k: &str| query_param(query, k).filter(|v| !v.is_empty());
    let rv_match = given("resourceVersionMatch");
    let rv = given("resourceVersion");
    let continue_token = given("continue");
    let send_initial_events = query_param(query, "sendInitialEvents").is_some();
    let mut errs = Vec::new();
    let field = "resourceVersionMatch";
    if watch {
        if send_initial_events && rv_match.as_deref() != Some("NotOlderThan") {
            errs.push(FieldError::forbidden(
                field,
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if let Some(m) = &rv_match {
            if !send_initial_events {
                errs.push(FieldError::forbidden(
                    field,
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                ));
            }
            if m != "NotOlderThan" {
                errs.push(FieldError::not_supported(
                    field,
                    json!(m),
                    &["NotOlderThan"],
                ));
            }
            if continue_token.is_some() {
                errs.push(FieldError::forbidden(
                    field,
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
        }
    } else {
        if let Some(m) = &rv_match {
            if rv.is_none() {
                errs.push(FieldError::forbidden(
                    field,
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            if continue_token.is_some() {
                errs.push(FieldError::forbidden(
                    field,
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            if m != "Exact" && m != "NotOlderThan" {
                errs.push(FieldError::not_supported(
                    field,
                    json!(m),
                    &["Exact", "NotOlderThan", ""],
                ));
            }
            if m == "Exact" && rv.as_deref() == Some("0") {
                errs.push(FieldError::forbidden(
                    field,
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
        }
        if send_initial_events {
            errs.push(FieldError::forbidden(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for list",
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(invalid_unnamed("ListOptions", "meta.k8s.io", &errs))
    }
}

/// The decoded `continue` token: which snapshot, where to resume.
#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: u64,
    snapshot: u64,
    offset: usize,
}

/// Decodes a `continue` token; a malformed one is 400 `invalid continue token: continue key
/// is not valid: ...` (apiserver `pkg/storage/continue.go` `DecodeContinue`, wrapped by
/// `pkg/storage/interfaces.go` `ValidateListOptions`), with the base64 decoder's or, for
/// a token that does not start like JSON, encoding/json's message.
fn decode_continue(token: &str) -> Result<ContinueToken, ApiError> {
    let invalid = |why: String| {
        ApiError::bad_request(format!(
            "invalid continue token: continue key is not valid: {why}"
        ))
    };
    // Go's `base64.RawURLEncoding` ignores the unused bits of the last symbol.
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    );
    let raw = lenient.decode(token.as_bytes()).map_err(|e| match e {
        base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _) => {
            invalid(format!("illegal base64 data at input byte {at}"))
        }
        other => invalid(other.to_string()),
    })?;
    serde_json::from_slice::<ContinueToken>(&raw)
        .map_err(|e| invalid(go_json_start_error(&raw).unwrap_or_else(|| e.to_string())))
}

/// encoding/json's error for a document whose first byte cannot start a JSON value
/// (`scanner.go` `stateBeginValue`: `invalid character 'x' looking for beginning of
/// value`, the byte quoted by `quoteChar`); None when it starts like JSON.
fn go_json_start_error(data: &[u8]) -> Option<String> {
    let &c = data
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))?;
    if matches!(
        c,
        b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n'
    ) {
        return None;
    }
    // `quoteChar`: strconv.Quote of the byte as a rune, between single quotes.
    let quoted = match c {
        b'\'' => "\\'".to_string(),
        b'"' => "\"".to_string(),
        0x07 => "\\a".into(),
        0x08 => "\\b".into(),
        0x0c => "\\f".into(),
        0x0b => "\\v".into(),
        0x20..=0x7e => (c as char).to_string(),
        0x00..=0x1f | 0x7f => format!("\\x{c:02x}"),
        0x80..=0xa0 | 0xad => format!("\\u{:04x}", u32::from(c)),
        _ => char::from(c).to_string(),
    };
    Some(format!(
        "invalid character '{quoted}' looking for beginning of value"
    ))
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
) -> Result<Reply, ApiError> {
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
    Ok(Reply {
        code: 200,
        body,
        changes: Vec::new(),
        warnings: Vec::new(),
    })
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

fn serialize_list(
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

/// CREATE (POST): 201 with the stored object; 409 AlreadyExists; 404 when the namespace
/// does not exist (NamespaceLifecycle admission); 422 when invalid.
pub fn create(
    store: &Store,
    req: &ResourceRequest,
    input: &WriteInput<'_>,
) -> Result<Reply, ApiError> {
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
    let (kind, api_version) = stored_type(def);
    if let Some(root) = obj.as_object_mut() {
        root.insert("kind".into(), json!(kind));
        root.insert("apiVersion".into(), json!(api_version));
    }
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
            &[FieldError {
                field: "metadata.name".into(),
                kind: FieldErrorKind::Required,
                detail: "name or generateName is required".into(),
                bad_value: None,
            }],
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

fn txn_rv(obj: &Value) -> u64 {
    meta_str(obj, "resourceVersion").parse().unwrap_or(0)
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
    let (kind, api_version) = stored_type(def);
    // `rest.BeforeUpdate`: uid is immutable (an empty one means "keep"), creationTimestamp
    // and the deletion fields are the server's.
    let given_uid = meta_str(&new, "uid").to_string();
    let old_uid = meta_str(old, "uid").to_string();
    if !given_uid.is_empty() && given_uid != old_uid {
        return Err(invalid(
            def,
            &req.name,
            &[FieldError {
                field: "metadata.uid".into(),
                kind: FieldErrorKind::Invalid,
                detail: "field is immutable".into(),
                bad_value: Some(json!(given_uid)),
            }],
        ));
    }
    if let Some(root) = new.as_object_mut() {
        root.insert("kind".into(), json!(kind));
        root.insert("apiVersion".into(), json!(api_version));
    }
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
pub fn update(
    store: &Store,
    req: &ResourceRequest,
    input: &WriteInput<'_>,
) -> Result<Reply, ApiError> {
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
pub fn patch(
    store: &Store,
    req: &ResourceRequest,
    input: &WriteInput<'_>,
) -> Result<Reply, ApiError> {
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
    if let Some(uid) = &pre.0
        && uid != meta_str(&old, "uid")
    {
        return Err(ApiError::conflict(
            def.group,
            def.kind,
            &k.1,
            &format!(
                "the UID in the precondition ({uid}) does not match the UID in record ({}). The object might have been deleted and then recreated",
                meta_str(&old, "uid")
            ),
        ));
    }
    if let Some(rv) = &pre.1
        && rv != meta_str(&old, "resourceVersion")
    {
        return Err(ApiError::conflict(
            def.group,
            def.kind,
            &k.1,
            &format!(
                "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({}). The object might have been modified",
                meta_str(&old, "resourceVersion")
            ),
        ));
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

fn has_finalizers(obj: &Value) -> bool {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

/// DELETE: 200 with a `Status` Success naming the object (the generic registry's answer
/// when `ReturnDeletedObject` is false, as for every resource here); watchers get DELETED.
/// Deleting a Namespace removes what it contains (the namespace controller's job, done at
/// once here).
pub fn delete(
    store: &Store,
    req: &ResourceRequest,
    input: &WriteInput<'_>,
) -> Result<Reply, ApiError> {
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
pub fn delete_collection(
    store: &Store,
    req: &ResourceRequest,
    input: &WriteInput<'_>,
) -> Result<Reply, ApiError> {
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
        Ok(Reply {
            code: 200,
            body,
            changes,
            warnings: Vec::new(),
        })
    })
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
    let (kind, api_version) = stored_type(def);
    if let Some(root) = obj.as_object_mut() {
        root.insert("kind".into(), json!(kind));
        root.insert("apiVersion".into(), json!(api_version));
    }
    if let Some(m) = meta_mut(&mut obj) {
        m.insert("uid".into(), json!(new_uid()));
        m.insert("creationTimestamp".into(), json!(now_rfc3339()));
    }
    store.write(|txn| txn.put(def.store, (namespace.to_string(), name), obj));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_continue_token_is_reported_as_the_go_decoders_do() {
        let message = |token: &str| {
            decode_continue(token)
                .err()
                .and_then(|e| e.body["message"].as_str().map(str::to_string))
                .unwrap_or_default()
        };
        // "garbage" decodes (trailing bits ignored, as Go's RawURLEncoding does) to bytes
        // that are not JSON.
        assert_eq!(
            message("garbage"),
            "invalid continue token: continue key is not valid: invalid character '\\u0081' looking for beginning of value"
        );
        assert_eq!(
            message("a*b"),
            "invalid continue token: continue key is not valid: illegal base64 data at input byte 1"
        );
    }

    #[test]
    fn go_json_start_errors_quote_the_byte_like_quote_char() {
        assert_eq!(
            go_json_start_error(b"  x"),
            Some("invalid character 'x' looking for beginning of value".into())
        );
        assert_eq!(
            go_json_start_error(b"'"),
            Some("invalid character '\\'' looking for beginning of value".into())
        );
        assert_eq!(
            go_json_start_error(&[0x01]),
            Some("invalid character '\\x01' looking for beginning of value".into())
        );
        assert_eq!(go_json_start_error(b"{\"v\":1}"), None);
    }

    #[test]
    fn a_body_of_another_kind_is_refused_with_the_decoders_message() {
        let nodes = crate::resources::find("", "v1", "nodes").expect("nodes");
        let message = |body: Value| {
            let mut body = body;
            check_type(nodes, &mut body)
                .err()
                .and_then(|e| e.body["message"].as_str().map(str::to_string))
                .unwrap_or_default()
        };
        assert_eq!(
            message(json!({"apiVersion": "v1", "kind": "Pod"})),
            "Pod in version \"v1\" cannot be handled as a Node: converting (v1.Pod) to (core.Node): unknown conversion"
        );
        assert_eq!(
            message(json!({"apiVersion": "v1", "kind": "Widget"})),
            "Widget in version \"v1\" cannot be handled as a Node: no kind \"Widget\" is registered for version \"v1\" in scheme \"pkg/runtime/scheme.go:111\""
        );
        assert_eq!(
            message(json!({"apiVersion": "apps/v1", "kind": "Node"})),
            "Node in version \"v1\" cannot be handled as a Node: no kind \"Node\" is registered for version \"apps/v1\" in scheme \"pkg/runtime/scheme.go:111\""
        );
        let mut bare = json!({"metadata": {"name": "n"}});
        assert!(check_type(nodes, &mut bare).is_ok());
        assert_eq!(bare["kind"], "Node");
    }

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

    #[test]
    fn duplicate_causes_are_reported_once_and_events_name_the_core_kind() {
        let nodes = crate::resources::find("", "v1", "nodes").expect("nodes");
        let err = FieldError::invalid("metadata.labels", json!("-bad"), "bad");
        let status = invalid(nodes, "n", &[err.clone(), err]).body;
        assert_eq!(
            status["details"]["causes"].as_array().map(Vec::len),
            Some(1)
        );
        let events = crate::resources::find("events.k8s.io", "v1", "events").expect("events");
        let status = invalid(events, "e", &[]).body;
        assert_eq!(status["details"].get("group"), None);
        assert_eq!(status["message"], "Event \"e\" is invalid");
    }
}
