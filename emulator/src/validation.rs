//! Object validation on create and update, and the 422 `Invalid` Status it produces, as
//! kube-apiserver does them. Owns only pure checks on `serde_json::Value`; deciding when to
//! validate (create, update, `/status`) belongs to the HTTP layer.
//!
//! Sources mirrored here (kubernetes/kubernetes at v1.33):
//! - apimachinery `pkg/util/validation/validation.go`: `IsQualifiedName`, `IsValidLabelValue`,
//!   `IsDNS1123Subdomain`, `IsDNS1123Label` and their exact messages;
//! - apimachinery `pkg/util/validation/field/errors.go`: `field.Error`, `ErrorBody`, the
//!   `FieldValue*` reasons;
//! - apimachinery `pkg/api/validation/objectmeta.go`: `ValidateObjectMeta`,
//!   `ValidateObjectMetaUpdate`, `ValidateAnnotations` (`TotalAnnotationSizeLimitB`);
//! - apimachinery `pkg/apis/meta/v1/validation/validation.go`: `ValidateLabels`;
//! - `pkg/apis/core/validation/validation.go`: `ValidateNode`, `ValidateNodeUpdate`,
//!   `validateNodeTaints`, `validateTaintEffect`;
//! - `pkg/registry/core/node/strategy.go`: which of those run for `nodes` and `nodes/status`;
//! - apimachinery `pkg/api/errors/errors.go`: `NewInvalid`, and `pkg/util/errors/errors.go`
//!   for how several messages are joined;
//! - `pkg/apis/core/validation/events.go`: `ValidateEventCreate`, `ValidateEventUpdate`,
//!   `legacyValidateEvent`, `validateV1EventSeries`, and `pkg/registry/core/event/strategy.go`
//!   (validation by request group version);
//! - apiserver `pkg/registry/rest/create.go` and `update.go`: the generic metadata checks
//!   with `path.ValidatePathSegmentName` after (create) or along with (update) the strategy's;
//! - `pkg/apis/coordination/validation/validation.go`: `ValidateLease`, `ValidateLeaseSpec`,
//!   `ValidateCoordinatedLeaseStrategy`;
//! - apimachinery `pkg/apis/meta/v1/validation/validation.go`: `ValidateDeleteOptions`.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value, json};

/// One invalid field, mirroring apimachinery `field.Error`, so the 422 body carries the same
/// causes a client of the real server would see.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The field path, e.g. `metadata.taints[0].effect`.
    pub field: String,
    /// What is wrong.
    pub kind: FieldErrorKind,
    /// Human-readable explanation (upstream `Detail`).
    pub detail: String,
    /// The offending value, printed in the message for the kinds that print one.
    pub bad_value: Option<Value>,
}

/// The kind of a field error, mirroring apimachinery `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// `FieldValueInvalid`: malformed value.
    Invalid,
    /// `FieldValueRequired`: missing value.
    Required,
    /// `FieldValueDuplicate`: a value that must be unique is not.
    Duplicate,
    /// `FieldValueNotSupported`: not one of an enumeration.
    NotSupported,
    /// `FieldValueForbidden`: well formed but not allowed here.
    Forbidden,
    /// `FieldValueTooLong`: longer than allowed.
    TooLong,
}

impl FieldErrorKind {
    /// The Status cause `reason` (upstream `ErrorType` value).
    pub fn reason(self) -> &'static str {
        match self {
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::TooLong => "FieldValueTooLong",
        }
    }

    /// The words starting each message (upstream `ErrorType.String`).
    fn label(self) -> &'static str {
        match self {
            FieldErrorKind::Invalid => "Invalid value",
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::TooLong => "Too long",
        }
    }
}

impl FieldError {
    fn new(field: &str, kind: FieldErrorKind, bad_value: Option<Value>, detail: &str) -> Self {
        FieldError {
            field: field.to_string(),
            kind,
            detail: detail.to_string(),
            bad_value,
        }
    }

    /// `field.Invalid`.
    pub fn invalid(field: &str, value: Value, detail: &str) -> Self {
        Self::new(field, FieldErrorKind::Invalid, Some(value), detail)
    }

    /// `field.Required`.
    pub fn required(field: &str, detail: &str) -> Self {
        Self::new(field, FieldErrorKind::Required, None, detail)
    }

    /// `field.Duplicate`.
    pub fn duplicate(field: &str, value: Value) -> Self {
        Self::new(field, FieldErrorKind::Duplicate, Some(value), "")
    }

    /// `field.NotSupported`: the detail lists the supported values, each Go-quoted.
    pub fn not_supported(field: &str, value: Value, supported: &[&str]) -> Self {
        let quoted: Vec<String> = supported.iter().map(|v| go_quote(v)).collect();
        let detail = format!("supported values: {}", quoted.join(", "));
        Self::new(field, FieldErrorKind::NotSupported, Some(value), &detail)
    }

    /// `field.Forbidden`.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Self::new(field, FieldErrorKind::Forbidden, None, detail)
    }

    /// `field.TooLong` with a byte limit (the value itself is never printed).
    pub fn too_long(field: &str, max_bytes: usize) -> Self {
        let unit = if max_bytes == 1 { "byte" } else { "bytes" };
        let detail = format!("may not be more than {max_bytes} {unit}");
        Self::new(field, FieldErrorKind::TooLong, None, &detail)
    }

    /// The message without the field path (upstream `ErrorBody`), used in Status causes.
    pub fn body(&self) -> String {
        let mut s = match (self.kind, &self.bad_value) {
            (
                FieldErrorKind::Invalid | FieldErrorKind::Duplicate | FieldErrorKind::NotSupported,
                Some(v),
            ) => format!("{}: {}", self.kind.label(), render_bad_value(v)),
            _ => self.kind.label().to_string(),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// Renders a bad value as `ErrorBody` does: strings Go-quoted (`%q`), numbers and booleans
/// plainly, anything else with `json.Marshal`. Validation runs on the internal types, which
/// have no json tags, so structs print with Go field names in declaration order; the keys
/// of the structs we report (internal `NodeAddress`, `Taint`) are put in that order.
fn render_bad_value(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Object(map) => {
            // core.NodeAddress, core.Taint, core.ObjectReference, core.EventSource
            const GO_FIELD_ORDER: [&str; 15] = [
                "Type",
                "Address",
                "Key",
                "Value",
                "Effect",
                "TimeAdded",
                "Kind",
                "Namespace",
                "Name",
                "UID",
                "APIVersion",
                "ResourceVersion",
                "FieldPath",
                "Component",
                "Host",
            ];
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by_key(|k| {
                let rank = GO_FIELD_ORDER.iter().position(|o| o == k);
                (rank.unwrap_or(GO_FIELD_ORDER.len()), k.as_str())
            });
            let fields: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        Value::String((*k).clone()),
                        render_json(&map[k.as_str()])
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        other => render_json(other),
    }
}

fn render_json(v: &Value) -> String {
    match v {
        Value::Object(_) => render_bad_value(v),
        other => other.to_string(),
    }
}

/// Quotes a string as Go's `%q` does (`strconv.Quote`): printable characters are kept,
/// quotes and backslashes escaped, control characters written as escapes.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let cp = c as u32;
                if cp <= 0xffff {
                    out.push_str(&format!("\\u{cp:04x}"));
                } else {
                    out.push_str(&format!("\\U{cp:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ----- apimachinery pkg/util/validation/validation.go -----

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_MAX: usize = 63;
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MAX: usize = 63;
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_MAX: usize = 253;

/// apimachinery `pkg/api/validation/objectmeta.go` `TotalAnnotationSizeLimitB`.
pub const TOTAL_ANNOTATION_SIZE_LIMIT_BYTES: usize = 256 * 1024;

fn anchored(fmt: &str) -> Regex {
    match Regex::new(&format!("^(?:{fmt})$")) {
        Ok(re) => re,
        // The patterns are constants of this module, covered by the tests below.
        Err(e) => unreachable!("invalid built-in pattern {fmt}: {e}"),
    }
}

static QUALIFIED_NAME_RE: LazyLock<Regex> = LazyLock::new(|| anchored(QUALIFIED_NAME_FMT));
static LABEL_VALUE_RE: LazyLock<Regex> = LazyLock::new(|| anchored(LABEL_VALUE_FMT));
static DNS1123_LABEL_RE: LazyLock<Regex> = LazyLock::new(|| anchored(DNS1123_LABEL_FMT));
static DNS1123_SUBDOMAIN_RE: LazyLock<Regex> = LazyLock::new(|| anchored(DNS1123_SUBDOMAIN_FMT));

/// Upstream `MaxLenError`.
fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// Upstream `RegexError`: the message, examples, and the pattern.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut s = msg.to_string();
    if examples.is_empty() {
        return format!("{s} (regex used for validation is '{fmt}')");
    }
    s.push_str(" (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push_str(&format!("'{e}', "));
    }
    s.push_str(&format!("regex used for validation is '{fmt}')"));
    s
}

/// Upstream `IsQualifiedName`: `[prefix/]name`, the prefix a DNS-1123 subdomain and the name
/// at most 63 alphanumerics, `-`, `_`, `.`. Returns the reasons it is not, empty if it is.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errs.push(format!("name part {}", max_len_error(QUALIFIED_NAME_MAX)));
    }
    if !QUALIFIED_NAME_RE.is_match(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Upstream `IsValidLabelValue`: empty, or at most 63 alphanumerics, `-`, `_`, `.` starting
/// and ending alphanumeric.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errs.push(max_len_error(LABEL_VALUE_MAX));
    }
    if !LABEL_VALUE_RE.is_match(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Upstream `IsDNS1123Subdomain` (names of nodes, configmaps, leases, events).
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !DNS1123_SUBDOMAIN_RE.is_match(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Upstream `IsDNS1123Label` (names of namespaces).
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !DNS1123_LABEL_RE.is_match(value) {
        errs.push(regex_error(
            DNS1123_LABEL_ERR,
            DNS1123_LABEL_FMT,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

// ----- object metadata: apimachinery pkg/api/validation/objectmeta.go -----

fn str_at<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = obj;
    for key in path {
        match cur.get(key) {
            Some(v) => cur = v,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("")
}

fn string_map<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    let mut cur = obj;
    for key in path {
        cur = cur.get(key)?;
    }
    cur.as_object()
}

/// A label or annotation value as the typed server would read it; a non-string value never
/// reaches validation upstream (decoding fails first), so it is reported as invalid here.
fn map_value_str<'a>(field: &str, v: &'a Value, errs: &mut Vec<FieldError>) -> &'a str {
    match v {
        Value::String(s) => s,
        other => {
            errs.push(FieldError::invalid(
                field,
                other.clone(),
                "must be a string",
            ));
            ""
        }
    }
}

/// An apimachinery `ValidateNameFunc`: how a kind's names are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameRule {
    /// `NameIsDNSSubdomain`: core `ValidateNodeName`, `ValidateConfigMapName`, coordination
    /// `ValidateLeaseName`, events.k8s.io Events.
    Dns1123Subdomain,
    /// `ValidateNamespaceName`.
    Dns1123Label,
    /// apimachinery `pkg/api/validation/path` `ValidatePathSegmentName`: the generic rule
    /// `rest.BeforeCreate`/`BeforeUpdate` apply to every kind, and the only one a core/v1
    /// Event's name meets.
    PathSegment,
}

impl NameRule {
    /// The rule the kind's strategy applies: namespaces are labels, every other kind we
    /// serve a subdomain.
    fn for_kind(kind: &str) -> NameRule {
        if kind == "Namespace" {
            NameRule::Dns1123Label
        } else {
            NameRule::Dns1123Subdomain
        }
    }

    /// The reasons `name` breaks the rule. With `prefix` (for `generateName`) the DNS rules
    /// mask a trailing dash as upstream `maskTrailingDash` does, which replaces the last
    /// *two* bytes by `a`; the path-segment rule only checks the forbidden substrings.
    fn errors(self, name: &str, prefix: bool) -> Vec<String> {
        if self == NameRule::PathSegment {
            return path_segment_errors(name, prefix);
        }
        let name = match name.len().checked_sub(2).and_then(|end| name.get(..end)) {
            Some(head) if prefix && name.ends_with('-') => format!("{head}a"),
            _ => name.to_string(),
        };
        if self == NameRule::Dns1123Label {
            is_dns1123_label(&name)
        } else {
            is_dns1123_subdomain(&name)
        }
    }
}

/// Upstream `IsValidPathSegmentName` (`IsValidPathSegmentPrefix` with `prefix`): not `.` or
/// `..`, no `/` or `%`.
fn path_segment_errors(name: &str, prefix: bool) -> Vec<String> {
    if !prefix && (name == "." || name == "..") {
        return vec![format!("may not be '{name}'")];
    }
    ["/", "%"]
        .iter()
        .filter(|bad| name.contains(*bad))
        .map(|bad| format!("may not contain '{bad}'"))
        .collect()
}

/// apimachinery `v1validation.ValidateLabels`: every key a qualified name, every value a
/// label value; errors are reported on the `labels` path itself, not per key.
fn validate_labels(labels: Option<&Map<String, Value>>, field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels.into_iter().flatten() {
        for msg in is_qualified_name(k) {
            errs.push(FieldError::invalid(field, Value::String(k.clone()), &msg));
        }
        let value = map_value_str(field, v, &mut errs);
        for msg in is_valid_label_value(value) {
            errs.push(FieldError::invalid(
                field,
                Value::String(value.to_string()),
                &msg,
            ));
        }
    }
    errs
}

/// apimachinery `ValidateAnnotations`: keys are qualified names compared in lower case, and
/// keys plus values total at most 256 KiB.
fn validate_annotations(annotations: Option<&Map<String, Value>>, field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0usize;
    for (k, v) in annotations.into_iter().flatten() {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(field, Value::String(k.clone()), &msg));
        }
        total += k.len() + map_value_str(field, v, &mut errs).len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_BYTES {
        errs.push(FieldError::too_long(
            field,
            TOTAL_ANNOTATION_SIZE_LIMIT_BYTES,
        ));
    }
    errs
}

/// Validates `metadata` on create, as apimachinery `ValidateObjectMetaAccessor`: name (or
/// generateName) syntax for the object's `kind`, labels, annotations. Namespace checks are
/// left to the HTTP layer, which sets the namespace from the URL before validating, as the
/// real server does in `rest.BeforeCreate`.
pub fn validate_object_meta(obj: &Value) -> Vec<FieldError> {
    object_meta_errors(obj, NameRule::for_kind(str_at(obj, &["kind"])))
}

/// `ValidateObjectMetaAccessor` with the given name rule.
fn object_meta_errors(obj: &Value, rule: NameRule) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let generate_name = str_at(obj, &["metadata", "generateName"]);
    if !generate_name.is_empty() {
        for msg in rule.errors(generate_name, true) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                Value::String(generate_name.to_string()),
                &msg,
            ));
        }
    }
    let name = str_at(obj, &["metadata", "name"]);
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for msg in rule.errors(name, false) {
            errs.push(FieldError::invalid(
                "metadata.name",
                Value::String(name.to_string()),
                &msg,
            ));
        }
    }
    errs.extend(validate_labels(
        string_map(obj, &["metadata", "labels"]),
        "metadata.labels",
    ));
    errs.extend(validate_annotations(
        string_map(obj, &["metadata", "annotations"]),
        "metadata.annotations",
    ));
    errs
}

/// apimachinery `FieldImmutableErrorMsg`.
const FIELD_IMMUTABLE: &str = "field is immutable";

/// apimachinery `ValidateObjectMetaAccessorUpdate`: identity fields are immutable, labels and
/// annotations are checked again. An empty new uid is not an error: `rest.BeforeUpdate` fills
/// it from the stored object first. The `resourceVersion` requirement is the HTTP layer's.
/// Public so that the HTTP layer can run it for every kind on update, as `rest.BeforeUpdate`
/// does (`validateCommonFields`).
pub fn validate_object_meta_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let immutable = |field: &str, path: &[&str], errs: &mut Vec<FieldError>| {
        let (o, n) = (str_at(old, path), str_at(new, path));
        if o != n && !(path == ["metadata", "uid"] && n.is_empty()) {
            errs.push(FieldError::invalid(
                field,
                Value::String(n.to_string()),
                FIELD_IMMUTABLE,
            ));
        }
    };
    immutable("metadata.name", &["metadata", "name"], &mut errs);
    immutable("metadata.namespace", &["metadata", "namespace"], &mut errs);
    immutable("metadata.uid", &["metadata", "uid"], &mut errs);
    errs.extend(validate_labels(
        string_map(new, &["metadata", "labels"]),
        "metadata.labels",
    ));
    errs.extend(validate_annotations(
        string_map(new, &["metadata", "annotations"]),
        "metadata.annotations",
    ));
    errs
}

// ----- Node: pkg/apis/core/validation/validation.go -----

const TAINT_EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
const NODE_IMMUTABLE_PODCIDR: &str =
    "node updates may not change podCIDR except from \"\" to valid";

fn array_at<'a>(obj: &'a Value, path: &[&str]) -> &'a [Value] {
    let mut cur = obj;
    for key in path {
        match cur.get(key) {
            Some(v) => cur = v,
            None => return &[],
        }
    }
    cur.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The taint as `json.Marshal` prints the internal `core.Taint` (no json tags, so Go field
/// names and no omitempty) in a Duplicate error.
fn taint_value(key: &str, value: &str, effect: &str, time_added: Option<&Value>) -> Value {
    json!({
        "Key": key,
        "Value": value,
        "Effect": effect,
        "TimeAdded": time_added.cloned().unwrap_or(Value::Null),
    })
}

/// Upstream `validateNodeTaints`. Note the path: upstream passes `metadata` as the parent,
/// so the real server reports `metadata.taints[i]...`, not `spec.taints[i]...`.
fn validate_node_taints(taints: &[Value]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    for (i, taint) in taints.iter().enumerate() {
        let path = format!("metadata.taints[{i}]");
        let key = str_at(taint, &["key"]);
        let value = str_at(taint, &["value"]);
        let effect = str_at(taint, &["effect"]);
        for msg in is_qualified_name(key) {
            errs.push(FieldError::invalid(
                &format!("{path}.key"),
                Value::String(key.into()),
                &msg,
            ));
        }
        let value_errs = is_valid_label_value(value);
        if !value_errs.is_empty() {
            errs.push(FieldError::invalid(
                &format!("{path}.value"),
                Value::String(value.into()),
                &value_errs.join(";"),
            ));
        }
        // validateTaintEffect(allowEmpty=false)
        if effect.is_empty() {
            errs.push(FieldError::required(&format!("{path}.effect"), ""));
        } else if !TAINT_EFFECTS.contains(&effect) {
            errs.push(FieldError::not_supported(
                &format!("{path}.effect"),
                Value::String(effect.into()),
                &TAINT_EFFECTS,
            ));
        }
        let pair = (effect.to_string(), key.to_string());
        if seen.contains(&pair) {
            let mut dup = FieldError::duplicate(
                &path,
                taint_value(key, value, effect, taint.get("timeAdded")),
            );
            dup.detail = "taints must be unique by key and effect pair".into();
            errs.push(dup);
            continue;
        }
        seen.push(pair);
    }
    errs
}

/// Parses `ip/prefix` as Go's `net.ParseCIDR` accepts it.
fn is_valid_cidr(s: &str) -> Option<bool> {
    let (ip, bits) = s.split_once('/')?;
    let ip: std::net::IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some(ip.is_ipv4())
}

fn str_list(values: &[Value]) -> Vec<&str> {
    values.iter().map(|v| v.as_str().unwrap_or("")).collect()
}

/// Upstream `ValidateNode`: metadata, taints, and the pod CIDRs (each a CIDR, at most one per
/// IP family, no duplicates).
fn validate_node_create(node: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(node);
    errs.extend(validate_node_taints(array_at(node, &["spec", "taints"])));
    let cidrs_raw = array_at(node, &["spec", "podCIDRs"]);
    let cidrs = str_list(cidrs_raw);
    let list = Value::Array(cidrs_raw.to_vec());
    let families: Vec<Option<bool>> = cidrs.iter().map(|c| is_valid_cidr(c)).collect();
    for (i, family) in families.iter().enumerate() {
        if family.is_none() {
            errs.push(FieldError::invalid(
                &format!("spec.podCIDRs[{i}]"),
                list.clone(),
                "must be valid CIDR",
            ));
        }
    }
    if cidrs.len() > 1 {
        let dual = cidrs.len() == 2
            && families[0].is_some()
            && families[1].is_some()
            && families[0] != families[1];
        if !dual {
            errs.push(FieldError::invalid(
                "spec.podCIDRs",
                list.clone(),
                "may specify no more than one CIDR for each IP family",
            ));
        }
        for (i, c) in cidrs.iter().enumerate() {
            if cidrs[..i].contains(c) {
                errs.push(FieldError::duplicate(
                    &format!("spec.podCIDRs[{i}]"),
                    Value::String((*c).into()),
                ));
            }
        }
    }
    errs
}

/// Upstream `ValidateNodeUpdate`: metadata update rules, no duplicate (type, address) pair,
/// podCIDRs and providerID settable only from empty, taints, and an immutable externalID.
/// This alone is what `nodes/status` runs (`nodeStatusStrategy.ValidateUpdate`).
pub fn validate_node_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta_update(old, new);
    let addresses = array_at(new, &["status", "addresses"]);
    for (i, address) in addresses.iter().enumerate() {
        let same = |a: &Value| {
            str_at(a, &["type"]) == str_at(address, &["type"])
                && str_at(a, &["address"]) == str_at(address, &["address"])
        };
        if addresses[..i].iter().any(same) {
            // the internal core.NodeAddress, marshalled without json tags
            let value = json!({ "Type": str_at(address, &["type"]), "Address": str_at(address, &["address"]) });
            errs.push(FieldError::duplicate(
                &format!("status.addresses[{i}]"),
                value,
            ));
        }
    }
    let old_cidrs = str_list(array_at(old, &["spec", "podCIDRs"]));
    let new_cidrs = str_list(array_at(new, &["spec", "podCIDRs"]));
    if !old_cidrs.is_empty() {
        if old_cidrs.len() != new_cidrs.len() {
            errs.push(FieldError::forbidden(
                "spec.podCIDRs",
                NODE_IMMUTABLE_PODCIDR,
            ));
        } else {
            for (o, n) in old_cidrs.iter().zip(&new_cidrs) {
                if o != n {
                    errs.push(FieldError::forbidden(
                        "spec.podCIDRs",
                        NODE_IMMUTABLE_PODCIDR,
                    ));
                }
            }
        }
    }
    // 1.37 (`ValidateNodeUpdate`): `field.Invalid(spec.providerID, nil, ...)`, the nil
    // printed as `null`; changing and clearing have their own messages.
    let old_provider = str_at(old, &["spec", "providerID"]);
    let new_provider = str_at(new, &["spec", "providerID"]);
    if !old_provider.is_empty() && old_provider != new_provider {
        let why = if new_provider.is_empty() {
            "field cannot be cleared once set"
        } else {
            "field cannot be modified once set"
        };
        errs.push(FieldError::invalid("spec.providerID", Value::Null, why));
    }
    errs.extend(validate_node_taints(array_at(new, &["spec", "taints"])));
    if str_at(old, &["spec", "externalID"]) != str_at(new, &["spec", "externalID"]) {
        errs.push(FieldError::forbidden(
            "spec.externalID",
            "may not be updated",
        ));
    }
    errs
}

/// Validates a Node write to the main resource, as `nodeStrategy` does: on create (`old` is
/// None) `ValidateNode`; on update `ValidateNode` followed by `ValidateNodeUpdate`, so an
/// invalid taint is reported twice in the causes (the message shows it once), as upstream.
/// For `nodes/status` use [`validate_node_update`].
pub fn validate_node(old: Option<&Value>, new: &Value) -> Vec<FieldError> {
    let mut errs = validate_node_create(new);
    if let Some(old) = old {
        errs.extend(validate_node_update(old, new));
    }
    errs
}

// ----- Event: pkg/apis/core/validation/events.go, pkg/registry/core/event/strategy.go -----

/// The group whose Event writes get the strict checks (`ValidateEventCreate` applies them to
/// every request version except core/v1 and events.k8s.io/v1beta1; we serve only v1).
const EVENTS_GROUP: &str = "events.k8s.io";
/// Upstream `ReportingInstanceLengthLimit`.
const REPORTING_INSTANCE_LENGTH_LIMIT: usize = 128;
/// Upstream `ActionLengthLimit`.
const ACTION_LENGTH_LIMIT: usize = 128;
/// Upstream `ReasonLengthLimit`.
const REASON_LENGTH_LIMIT: usize = 128;
/// Upstream `NoteLengthLimit` (the core `message`).
const NOTE_LENGTH_LIMIT: usize = 1024;

/// A time field (`metav1.Time`, `metav1.MicroTime`) of a stored Event: `None` is Go's zero
/// time (absent, null or "").
fn time_at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a str> {
    Some(str_at(obj, path)).filter(|t| !t.is_empty())
}

/// A time as Go's `time.Time.String` prints it in the server's UTC zone (the bad value of an
/// immutable time field is printed with `String`, as a `fmt.Stringer`).
fn go_time_string(t: Option<&str>) -> String {
    let Some(raw) = t else {
        return "0001-01-01 00:00:00 +0000 UTC".to_string();
    };
    match raw.parse::<jiff::Timestamp>() {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%M:%S%.f +0000 UTC").to_string(),
        Err(_) => raw.to_string(),
    }
}

/// Whether two time fields hold the same instant (`apiequality.Semantic` compares times
/// with `Equal`).
fn same_time(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => match (a.parse::<jiff::Timestamp>(), b.parse::<jiff::Timestamp>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        },
        (a, b) => a == b,
    }
}

/// The internal `core.ObjectReference` as a bad value prints it (Go field names, no
/// omitempty); an absent reference reads as the zero struct.
fn object_reference(r: &Value) -> Value {
    let f = |k: &str| str_at(r, &[k]).to_string();
    json!({
        "Kind": f("kind"),
        "Namespace": f("namespace"),
        "Name": f("name"),
        "UID": f("uid"),
        "APIVersion": f("apiVersion"),
        "ResourceVersion": f("resourceVersion"),
        "FieldPath": f("fieldPath"),
    })
}

/// One immutable Event field, as `ValidateImmutableField` compares and prints it.
enum Immutable<'a> {
    /// Compared as JSON, printed as the bad value.
    Plain(Value),
    /// A time: compared as an instant, printed with Go's `Time.String`.
    Time(Option<&'a str>),
}

impl Immutable<'_> {
    fn same(&self, other: &Immutable<'_>) -> bool {
        match (self, other) {
            (Immutable::Plain(a), Immutable::Plain(b)) => a == b,
            (Immutable::Time(a), Immutable::Time(b)) => same_time(*a, *b),
            _ => false,
        }
    }

    /// The `field is immutable` error carrying this (new) value.
    fn error(self, field: &str) -> FieldError {
        match self {
            Immutable::Plain(v) => FieldError::invalid(field, v, FIELD_IMMUTABLE),
            // a fmt.Stringer prints unquoted, which a string bad value cannot express
            Immutable::Time(t) => FieldError::new(
                field,
                FieldErrorKind::Invalid,
                None,
                &format!("{}: {FIELD_IMMUTABLE}", go_time_string(t)),
            ),
        }
    }
}

/// The fields `ValidateEventUpdate` holds immutable, in its order (`reason` twice), read
/// from the stored core/v1 form under their internal names.
fn immutable_event_fields(e: &Value) -> Vec<(&'static str, Immutable<'_>)> {
    let text = |key: &str| Immutable::Plain(Value::String(str_at(e, &[key]).to_string()));
    let time = |key: &str| Immutable::Time(time_at(e, &[key]));
    let involved = object_reference(e.get("involvedObject").unwrap_or(&Value::Null));
    let source = json!({
        "Component": str_at(e, &["source", "component"]),
        "Host": str_at(e, &["source", "host"]),
    });
    let count = json!(e.get("count").and_then(Value::as_i64).unwrap_or(0));
    // a nil pointer prints as the string "null"
    let related = match e.get("related").filter(|r| !r.is_null()) {
        Some(r) => object_reference(r),
        None => json!("null"),
    };
    vec![
        ("involvedObject", Immutable::Plain(involved)),
        ("reason", text("reason")),
        ("message", text("message")),
        ("source", Immutable::Plain(source)),
        ("firstTimestamp", time("firstTimestamp")),
        ("lastTimestamp", time("lastTimestamp")),
        ("count", Immutable::Plain(count)),
        ("reason", text("reason")),
        ("type", text("type")),
        ("eventTime", time("eventTime")),
        ("action", text("action")),
        ("related", Immutable::Plain(related)),
        ("reportingController", text("reportingComponent")),
        ("reportingInstance", text("reportingInstance")),
    ]
}

/// Upstream `legacyValidateEvent`, on the stored core/v1 form. Events without `eventTime`
/// (the old API) only need their namespace to agree with the involved object's; events
/// with it also need a reporting controller, instance, action and reason within limits.
/// Field paths follow the internal type, so the core/v1 `reportingComponent` is reported as
/// `reportingController`.
fn legacy_event_errors(event: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let namespace = str_at(event, &["metadata", "namespace"]);
    let involved_ns = str_at(event, &["involvedObject", "namespace"]);
    let ns_mismatch = || {
        FieldError::invalid(
            "involvedObject.namespace",
            Value::String(involved_ns.to_string()),
            "does not match event.namespace",
        )
    };
    if time_at(event, &["eventTime"]).is_none() {
        // a cluster-scoped involved object allows "" or, for old clients, "default"
        let agrees = if involved_ns.is_empty() {
            namespace.is_empty() || namespace == "default"
        } else {
            namespace == involved_ns
        };
        if !agrees {
            errs.push(ns_mismatch());
        }
    } else {
        if involved_ns.is_empty() && namespace != "default" && namespace != "kube-system" {
            errs.push(ns_mismatch());
        }
        let controller = str_at(event, &["reportingComponent"]);
        if controller.is_empty() {
            errs.push(FieldError::required("reportingController", ""));
        }
        for msg in is_qualified_name(controller) {
            errs.push(FieldError::invalid(
                "reportingController",
                Value::String(controller.to_string()),
                &msg,
            ));
        }
        let limited = [
            ("reportingInstance", REPORTING_INSTANCE_LENGTH_LIMIT, true),
            ("action", ACTION_LENGTH_LIMIT, true),
            ("reason", REASON_LENGTH_LIMIT, true),
            ("message", NOTE_LENGTH_LIMIT, false),
        ];
        for (field, limit, required) in limited {
            let value = str_at(event, &[field]);
            if required && value.is_empty() {
                errs.push(FieldError::required(field, ""));
            }
            if value.len() > limit {
                errs.push(FieldError::invalid(
                    field,
                    json!(""),
                    &format!("can have at most {limit} characters"),
                ));
            }
        }
    }
    for msg in is_dns1123_subdomain(namespace) {
        errs.push(FieldError::invalid(
            "namespace",
            Value::String(namespace.to_string()),
            &msg,
        ));
    }
    errs
}

/// Upstream `validateV1EventSeries`.
fn event_series_errors(event: &Value) -> Vec<FieldError> {
    let Some(series) = event.get("series").filter(|s| !s.is_null()) else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
        errs.push(FieldError::invalid(
            "series.count",
            json!(""),
            "should be at least 2",
        ));
    }
    if time_at(series, &["lastObservedTime"]).is_none() {
        errs.push(FieldError::required("series.lastObservedTime", ""));
    }
    errs
}

/// Upstream `ValidateEventCreate`: the legacy rules, and for events.k8s.io the strict ones
/// (object metadata, series, `eventTime` required, type Normal or Warning, the deprecated
/// fields unset).
fn event_create_errors(event: &Value, strict: bool) -> Vec<FieldError> {
    let mut errs = legacy_event_errors(event);
    if !strict {
        return errs;
    }
    errs.extend(object_meta_errors(event, NameRule::Dns1123Subdomain));
    errs.extend(event_series_errors(event));
    if time_at(event, &["eventTime"]).is_none() {
        errs.push(FieldError::required("eventTime", ""));
    }
    let kind = str_at(event, &["type"]);
    if kind != "Normal" && kind != "Warning" {
        errs.push(FieldError::invalid(
            "type",
            json!(""),
            &format!("has invalid value: {kind}"),
        ));
    }
    let unset = |field: &str| FieldError::invalid(field, json!(""), "needs to be unset");
    for field in ["firstTimestamp", "lastTimestamp"] {
        if time_at(event, &[field]).is_some() {
            errs.push(unset(field));
        }
    }
    if event.get("count").and_then(Value::as_i64).unwrap_or(0) != 0 {
        errs.push(unset("count"));
    }
    if !str_at(event, &["source", "component"]).is_empty()
        || !str_at(event, &["source", "host"]).is_empty()
    {
        errs.push(unset("source"));
    }
    errs
}

/// Upstream `ValidateEventUpdate`: the legacy rules, and for events.k8s.io the metadata
/// update rules, the series when it changed, and the immutability of every other field
/// (with `reason` checked twice, as upstream does).
fn event_update_errors(old: &Value, new: &Value, strict: bool) -> Vec<FieldError> {
    let mut errs = legacy_event_errors(new);
    if !strict {
        return errs;
    }
    errs.extend(validate_object_meta_update(old, new));
    let series = |e: &Value| e.get("series").filter(|s| !s.is_null()).cloned();
    if series(old) != series(new) {
        errs.extend(event_series_errors(new));
    }
    let olds = immutable_event_fields(old);
    for ((field, n), (_, o)) in immutable_event_fields(new).into_iter().zip(&olds) {
        if !n.same(o) {
            errs.push(n.error(field));
        }
    }
    errs
}

/// Validates an Event write as kube-apiserver does for the request's API group (`""` for
/// core/v1, `"events.k8s.io"` for events.k8s.io/v1); `old` is the stored Event on update.
/// Both objects are in the stored core/v1 form (convert an events.k8s.io/v1 body with
/// `event_versions::from_events_v1` first): the real server also validates the internal
/// Event, so errors name the internal fields (`involvedObject`, `message`,
/// `reportingController`) whichever version was written.
///
/// The event strategy replaces the kind's usual metadata rules, so a core/v1 Event's name
/// need only be a valid path segment. On create the strategy's errors, if any, are
/// returned alone, else the generic metadata errors (`rest.BeforeCreate`); on update both
/// are reported together (`rest.BeforeUpdate`).
pub fn validate_event(old: Option<&Value>, new: &Value, group: &str) -> Vec<FieldError> {
    let strict = group == EVENTS_GROUP;
    match old {
        None => {
            let errs = event_create_errors(new, strict);
            if errs.is_empty() {
                object_meta_errors(new, NameRule::PathSegment)
            } else {
                errs
            }
        }
        Some(old) => {
            let mut errs = object_meta_errors(new, NameRule::PathSegment);
            errs.extend(validate_object_meta_update(old, new));
            errs.extend(event_update_errors(old, new, strict));
            errs
        }
    }
}

// ----- Lease: pkg/apis/coordination/validation/validation.go -----

/// Upstream `validLeaseStrategies`.
const LEASE_STRATEGIES: [&str; 1] = ["OldestEmulationVersion"];

/// Validates a Lease as coordination `ValidateLease` does: metadata (a DNS-1123 subdomain
/// name) and the spec (`ValidateLeaseSpec`): a positive `leaseDurationSeconds`, a
/// non-negative `leaseTransitions`, a known or prefixed `strategy`, and `preferredHolder`
/// only with a strategy. `holderIdentity`, `acquireTime` and `renewTime` have no rules.
pub fn validate_lease(new: &Value) -> Vec<FieldError> {
    let mut errs = object_meta_errors(new, NameRule::Dns1123Subdomain);
    let spec = new.get("spec").unwrap_or(&Value::Null);
    let set = |key: &str| spec.get(key).filter(|v| !v.is_null());
    if let Some(d) = set("leaseDurationSeconds").filter(|d| d.as_i64().is_none_or(|d| d <= 0)) {
        errs.push(FieldError::invalid(
            "spec.leaseDurationSeconds",
            d.clone(),
            "must be greater than 0",
        ));
    }
    if let Some(t) = set("leaseTransitions").filter(|t| t.as_i64().is_none_or(|t| t < 0)) {
        errs.push(FieldError::invalid(
            "spec.leaseTransitions",
            t.clone(),
            "must be greater than or equal to 0",
        ));
    }
    let strategy = set("strategy").map(|s| s.as_str().unwrap_or(""));
    if let Some(strategy) = strategy {
        // upstream appends "strategy" to a path that already ends in it
        let field = "spec.strategy.strategy";
        let value = Value::String(strategy.to_string());
        if !strategy.contains('/') {
            if !LEASE_STRATEGIES.contains(&strategy) {
                errs.push(FieldError::not_supported(field, value, &LEASE_STRATEGIES));
            }
        } else {
            for msg in is_qualified_name(strategy) {
                errs.push(FieldError::invalid(field, value.clone(), &msg));
            }
        }
    }
    let holder = set("preferredHolder").and_then(Value::as_str).unwrap_or("");
    if !holder.is_empty() && strategy.is_none_or(str::is_empty) {
        errs.push(FieldError::forbidden(
            "spec.preferredHolder",
            "may only be specified if `strategy` is defined",
        ));
    }
    errs
}

// ----- DeleteOptions: apimachinery pkg/apis/meta/v1/validation/validation.go -----

/// Upstream `metav1.DeletionPropagation` values, and the "nil" its error lists.
const PROPAGATION_POLICIES: [&str; 4] = ["Foreground", "Background", "Orphan", "nil"];

/// Validates the options of a DELETE as `ValidateDeleteOptions` does: `propagationPolicy`
/// must be Foreground, Background or Orphan, and may not be combined with
/// `orphanDependents`. `options` is the DeleteOptions body with any `propagationPolicy` /
/// `orphanDependents` query parameters merged in. The delete handler answers errors with
/// `invalid_status("DeleteOptions", "meta.k8s.io", "", &errs)`
/// (apiserver `pkg/endpoints/handlers/delete.go`).
pub fn validate_delete_options(options: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let set = |key: &str| options.get(key).filter(|v| !v.is_null());
    let Some(policy) = set("propagationPolicy") else {
        return errs;
    };
    if set("orphanDependents").is_some() {
        errs.push(FieldError::invalid(
            "propagationPolicy",
            policy.clone(),
            "orphanDependents and deletionPropagation cannot be both set",
        ));
    }
    let known = policy
        .as_str()
        .is_some_and(|p| PROPAGATION_POLICIES[..3].contains(&p));
    if !known {
        errs.push(FieldError::not_supported(
            "propagationPolicy",
            policy.clone(),
            &PROPAGATION_POLICIES,
        ));
    }
    errs
}

/// The 422 `Invalid` Status body for these errors, shaped as apimachinery `NewInvalid`: the
/// message is `<Kind[.group]> "<name>" is invalid: <errors>`, where several distinct
/// messages are joined as `[a, b]` and repeated ones shown once (`utilerrors.aggregate`),
/// and every error becomes a cause `{reason, message (without field), field}`.
pub fn invalid_status(kind: &str, group: &str, name: &str, errs: &[FieldError]) -> Value {
    let qualified = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let mut unique: Vec<String> = Vec::new();
    for e in errs {
        let m = e.to_string();
        if !unique.contains(&m) {
            unique.push(m);
        }
    }
    let message = match unique.as_slice() {
        [] => format!("{qualified} {} is invalid", go_quote(name)),
        [one] => format!("{qualified} {} is invalid: {one}", go_quote(name)),
        many => format!(
            "{qualified} {} is invalid: [{}]",
            go_quote(name),
            many.join(", ")
        ),
    };
    let causes: Vec<Value> = errs
        .iter()
        .map(|e| json!({ "reason": e.kind.reason(), "message": e.body(), "field": e.field }))
        .collect();
    let mut details = Map::new();
    // StatusDetails.name is omitempty
    if !name.is_empty() {
        details.insert("name".into(), Value::String(name.into()));
    }
    if !group.is_empty() {
        details.insert("group".into(), Value::String(group.into()));
    }
    details.insert("kind".into(), Value::String(kind.into()));
    details.insert("causes".into(), Value::Array(causes));
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Invalid",
        "details": details,
        "code": 422,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const QNAME_REGEX_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

    fn node(meta: Value, spec: Value) -> Value {
        json!({ "kind": "Node", "apiVersion": "v1", "metadata": meta, "spec": spec })
    }

    #[test]
    fn qualified_names_follow_apimachinery_rules_and_messages() {
        let long = "a".repeat(64);
        let cases: Vec<(&str, Vec<String>)> = vec![
            ("a", vec![]),
            ("node.kubernetes.io/exclude-from-external-load-balancers", vec![]),
            ("A_b.c-1", vec![]),
            ("-a", vec![QNAME_REGEX_MSG.to_string()]),
            ("/a", vec!["prefix part must be non-empty".to_string()]),
            ("a/", vec!["name part must be non-empty".to_string(), QNAME_REGEX_MSG.to_string()]),
            ("Example.com/a", vec![format!("prefix part {SUBDOMAIN_MSG}")]),
            (&long, vec!["name part must be no more than 63 characters".to_string()]),
            (
                "a/b/c",
                vec!["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_string()],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(is_qualified_name(input), want, "input {input:?}");
        }
    }

    #[test]
    fn label_values_may_be_empty_but_not_longer_than_63_or_malformed() {
        assert!(is_valid_label_value("").is_empty());
        assert!(is_valid_label_value("true").is_empty());
        assert_eq!(
            is_valid_label_value(&"v".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
        assert_eq!(
            is_valid_label_value("-x"),
            vec![
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
            ]
        );
    }

    #[test]
    fn object_names_are_subdomains_except_namespaces_which_are_labels() {
        let ok = json!({ "kind": "ConfigMap", "metadata": { "name": "kube-root.ca" } });
        assert!(validate_object_meta(&ok).is_empty());
        let bad = json!({ "kind": "Lease", "metadata": { "name": "Lease_1" } });
        let errs = validate_object_meta(&bad);
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            format!("metadata.name: Invalid value: \"Lease_1\": {SUBDOMAIN_MSG}")
        );
        let ns = json!({ "kind": "Namespace", "metadata": { "name": "a.b" } });
        assert_eq!(
            validate_object_meta(&ns)[0].detail,
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        );
        let missing = json!({ "kind": "Node", "metadata": {} });
        assert_eq!(
            validate_object_meta(&missing)[0].to_string(),
            "metadata.name: Required value: name or generateName is required"
        );
        let generated =
            json!({ "kind": "Event", "metadata": { "generateName": "n1-", "name": "n1-x2" } });
        assert!(validate_object_meta(&generated).is_empty());
    }

    #[test]
    fn labels_are_checked_key_and_value_on_the_labels_path() {
        let obj = node(
            json!({ "name": "n1", "labels": { "bad key": "ok", "k": "bad value" } }),
            json!({}),
        );
        let errs = validate_object_meta(&obj);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["metadata.labels", "metadata.labels"]);
        assert_eq!(
            errs[0].to_string(),
            format!("metadata.labels: Invalid value: \"bad key\": {QNAME_REGEX_MSG}")
        );
        assert!(
            errs[1].to_string().starts_with(
                "metadata.labels: Invalid value: \"bad value\": a valid label must be"
            )
        );
        assert!(errs.iter().all(|e| e.kind.reason() == "FieldValueInvalid"));
    }

    #[test]
    fn annotations_total_at_most_256_kib_and_keys_ignore_case() {
        let fits = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES - 1);
        let obj = node(
            json!({ "name": "n1", "annotations": { "k": fits } }),
            json!({}),
        );
        assert_eq!(validate_object_meta(&obj), vec![]);
        let upper = node(
            json!({ "name": "n1", "annotations": { "Example.COM/Key": "" } }),
            json!({}),
        );
        assert_eq!(validate_object_meta(&upper), vec![]);
        let too_big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES);
        let obj = node(
            json!({ "name": "n1", "annotations": { "k": too_big } }),
            json!({}),
        );
        let errs = validate_object_meta(&obj);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].kind, FieldErrorKind::TooLong);
        assert_eq!(
            errs[0].to_string(),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
    }

    #[test]
    fn provider_id_may_only_change_from_empty() {
        let with = |id: &str| node(json!({ "name": "n1" }), json!({ "providerID": id }));
        let modified = "spec.providerID: Invalid value: null: field cannot be modified once set";
        let cleared = "spec.providerID: Invalid value: null: field cannot be cleared once set";
        let cases = [
            ("", "", None),
            ("", "bare://n1", None),
            ("bare://n1", "bare://n1", None),
            ("bare://n1", "bare://n2", Some(modified)),
            ("bare://n1", "", Some(cleared)),
        ];
        for (old, new, want) in cases {
            let errs = validate_node(Some(&with(old)), &with(new));
            let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
            assert_eq!(
                got,
                want.into_iter().map(String::from).collect::<Vec<_>>(),
                "{old:?} -> {new:?}"
            );
        }
        let errs = validate_node_update(&with("a"), &with("b"));
        assert_eq!(errs[0].kind.reason(), "FieldValueInvalid");
    }

    #[test]
    fn taints_are_validated_on_the_metadata_path_as_upstream_reports_them() {
        let taints = json!([
            { "key": "ok", "value": "v", "effect": "NoSchedule" },
            { "key": "ok", "effect": "NoExecute" },
            { "key": "e", "effect": "Sometimes" },
            { "key": "-bad", "value": "-bad", "effect": "" },
            { "key": "ok", "value": "other", "effect": "NoSchedule" },
        ]);
        let errs = validate_node(
            None,
            &node(json!({ "name": "n1" }), json!({ "taints": taints })),
        );
        let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(got.len(), 5, "{got:#?}");
        assert_eq!(
            got[0],
            "metadata.taints[2].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""
        );
        assert_eq!(
            got[1],
            format!("metadata.taints[3].key: Invalid value: \"-bad\": {QNAME_REGEX_MSG}")
        );
        assert!(got[2].starts_with(
            "metadata.taints[3].value: Invalid value: \"-bad\": a valid label must be"
        ));
        assert_eq!(got[3], "metadata.taints[3].effect: Required value");
        assert_eq!(
            got[4],
            "metadata.taints[4]: Duplicate value: {\"Key\":\"ok\",\"Value\":\"other\",\"Effect\":\"NoSchedule\",\"TimeAdded\":null}: taints must be unique by key and effect pair"
        );
        let reasons: Vec<&str> = errs.iter().map(|e| e.kind.reason()).collect();
        assert_eq!(
            reasons,
            [
                "FieldValueNotSupported",
                "FieldValueInvalid",
                "FieldValueInvalid",
                "FieldValueRequired",
                "FieldValueDuplicate"
            ]
        );
    }

    #[test]
    fn node_update_reports_taint_errors_twice_like_node_strategy() {
        let old = node(json!({ "name": "n1" }), json!({}));
        let new = node(
            json!({ "name": "n1" }),
            json!({ "taints": [{ "key": "k", "effect": "Bad" }] }),
        );
        let errs = validate_node(Some(&old), &new);
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0], errs[1]);
        let status = invalid_status("Node", "", "n1", &errs);
        assert_eq!(
            status["details"]["causes"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(
            status["message"],
            "Node \"n1\" is invalid: metadata.taints[0].effect: Unsupported value: \"Bad\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""
        );
        // the status subresource runs ValidateNodeUpdate only
        assert_eq!(validate_node_update(&old, &new).len(), 1);
    }

    #[test]
    fn node_update_rejects_exact_duplicate_addresses_and_identity_changes() {
        let old = node(
            json!({ "name": "n1", "uid": "u1" }),
            json!({ "podCIDRs": ["10.42.0.0/24"] }),
        );
        let mut new = node(
            json!({ "name": "n2", "uid": "u2" }),
            json!({ "podCIDRs": ["10.42.1.0/24"] }),
        );
        new["status"] = json!({ "addresses": [
            { "type": "InternalIP", "address": "10.0.0.5" },
            { "type": "InternalIP", "address": "fd00::5" },
            { "type": "InternalIP", "address": "10.0.0.5" },
        ] });
        let got: Vec<String> = validate_node_update(&old, &new)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "metadata.name: Invalid value: \"n2\": field is immutable",
                "metadata.uid: Invalid value: \"u2\": field is immutable",
                "status.addresses[2]: Duplicate value: {\"Type\":\"InternalIP\",\"Address\":\"10.0.0.5\"}",
                "spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid",
            ]
        );
        // an empty uid is filled from the stored object upstream, so it is no change
        let mut same = old.clone();
        same["metadata"]["uid"] = json!("");
        assert!(validate_node_update(&old, &same).is_empty());
    }

    #[test]
    fn pod_cidrs_must_be_cidrs_one_per_family() {
        let with = |cidrs: Value| node(json!({ "name": "n1" }), json!({ "podCIDRs": cidrs }));
        assert!(validate_node(None, &with(json!(["10.42.0.0/24", "fd00:42::/64"]))).is_empty());
        let got: Vec<String> = validate_node(None, &with(json!(["10.42.0.0/24", "10.43.0.0/24"])))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "spec.podCIDRs: Invalid value: [\"10.42.0.0/24\",\"10.43.0.0/24\"]: may specify no more than one CIDR for each IP family"
            ]
        );
        let got = validate_node(None, &with(json!(["nope"])));
        assert_eq!(
            got[0].to_string(),
            "spec.podCIDRs[0]: Invalid value: [\"nope\"]: must be valid CIDR"
        );
    }

    #[test]
    fn invalid_status_is_shaped_like_new_invalid() {
        let errs = vec![
            FieldError::forbidden(
                "spec.providerID",
                "node updates may not change providerID except from \"\" to valid",
            ),
            FieldError::not_supported("metadata.taints[0].effect", json!("X"), &TAINT_EFFECTS),
        ];
        let status = invalid_status("Node", "", "n1", &errs);
        assert_eq!(
            status,
            json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "Node \"n1\" is invalid: [spec.providerID: Forbidden: node updates may not change providerID except from \"\" to valid, metadata.taints[0].effect: Unsupported value: \"X\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"]",
                "reason": "Invalid",
                "details": {
                    "name": "n1",
                    "kind": "Node",
                    "causes": [
                        { "reason": "FieldValueForbidden", "message": "Forbidden: node updates may not change providerID except from \"\" to valid", "field": "spec.providerID" },
                        { "reason": "FieldValueNotSupported", "message": "Unsupported value: \"X\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"", "field": "metadata.taints[0].effect" },
                    ],
                },
                "code": 422,
            })
        );
        let lease = invalid_status("Lease", "coordination.k8s.io", "l", &[]);
        assert_eq!(
            lease["message"],
            "Lease.coordination.k8s.io \"l\" is invalid"
        );
        assert_eq!(lease["details"]["group"], "coordination.k8s.io");
    }

    #[test]
    fn go_quote_escapes_like_strconv_quote() {
        assert_eq!(go_quote("a\"b\\c\nd\u{1}é"), "\"a\\\"b\\\\c\\nd\\x01é\"");
    }

    /// A core/v1-form Event in `ns` about a Node, written the old way (no eventTime).
    fn old_style_event(ns: &str) -> Value {
        json!({
            "kind": "Event", "apiVersion": "v1",
            "metadata": { "name": "n1.17a2b", "namespace": ns },
            "involvedObject": { "kind": "Node", "name": "n1" },
            "reason": "Registered", "message": "registered", "type": "Normal",
            "source": { "component": "kubelet" }, "count": 1,
            "firstTimestamp": "2026-11-26T14:00:00Z", "lastTimestamp": "2026-11-26T14:00:00Z",
        })
    }

    /// A core/v1-form Event as events.k8s.io/v1 writers (kube-rs, client-go) send it.
    fn new_style_event() -> Value {
        json!({
            "kind": "Event", "apiVersion": "v1",
            "metadata": { "name": "n1.17a2b", "namespace": "default" },
            "involvedObject": { "kind": "Node", "name": "n1", "uid": "u1" },
            "eventTime": "2026-11-26T14:00:00.123456Z",
            "reportingComponent": "bare-ccm", "reportingInstance": "bare-ccm-host1",
            "action": "Initialize", "reason": "Initialized", "message": "addresses set",
            "type": "Normal",
        })
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn old_style_events_only_need_namespaces_to_agree() {
        let mismatch =
            "involvedObject.namespace: Invalid value: \"\": does not match event.namespace";
        let cases = [
            ("default", ""),
            ("kube-system", mismatch),
            ("other", mismatch),
        ];
        for (ns, want) in cases {
            let got = messages(&validate_event(None, &old_style_event(ns), ""));
            let want: Vec<String> = [want]
                .iter()
                .filter(|w| !w.is_empty())
                .map(|w| w.to_string())
                .collect();
            assert_eq!(got, want, "{ns}");
        }
        let mut pod_event = old_style_event("apps");
        pod_event["involvedObject"] = json!({ "kind": "Pod", "namespace": "web", "name": "p" });
        assert_eq!(
            messages(&validate_event(None, &pod_event, "")),
            ["involvedObject.namespace: Invalid value: \"web\": does not match event.namespace"]
        );
    }

    #[test]
    fn events_with_event_time_need_reporting_fields_even_through_core_v1() {
        let mut event = new_style_event();
        for key in [
            "reportingComponent",
            "reportingInstance",
            "action",
            "reason",
        ] {
            event.as_object_mut().map(|o| o.remove(key));
        }
        event["metadata"]["namespace"] = json!("kube-system");
        assert_eq!(
            messages(&validate_event(None, &event, "")),
            [
                "reportingController: Required value".to_string(),
                "reportingController: Invalid value: \"\": name part must be non-empty".to_string(),
                format!("reportingController: Invalid value: \"\": {QNAME_REGEX_MSG}"),
                "reportingInstance: Required value".to_string(),
                "action: Required value".to_string(),
                "reason: Required value".to_string(),
            ]
        );
        // with eventTime a cluster-scoped object's events live in default or kube-system
        let mut elsewhere = new_style_event();
        elsewhere["metadata"]["namespace"] = json!("other");
        assert_eq!(
            messages(&validate_event(None, &elsewhere, "")),
            ["involvedObject.namespace: Invalid value: \"\": does not match event.namespace"]
        );
    }

    #[test]
    fn event_length_limits_apply_to_both_versions() {
        let mut at_limit = new_style_event();
        at_limit["reportingInstance"] = json!("i".repeat(128));
        at_limit["action"] = json!("a".repeat(128));
        at_limit["reason"] = json!("r".repeat(128));
        at_limit["message"] = json!("m".repeat(1024));
        assert_eq!(validate_event(None, &at_limit, EVENTS_GROUP), vec![]);
        let mut over = new_style_event();
        over["reportingInstance"] = json!("i".repeat(129));
        over["action"] = json!("a".repeat(129));
        over["reason"] = json!("r".repeat(129));
        over["message"] = json!("m".repeat(1025));
        let want = [
            "reportingInstance: Invalid value: \"\": can have at most 128 characters",
            "action: Invalid value: \"\": can have at most 128 characters",
            "reason: Invalid value: \"\": can have at most 128 characters",
            "message: Invalid value: \"\": can have at most 1024 characters",
        ];
        for group in ["", EVENTS_GROUP] {
            assert_eq!(
                messages(&validate_event(None, &over, group)),
                want,
                "{group:?}"
            );
        }
        let bad_controller = {
            let mut e = new_style_event();
            e["reportingComponent"] = json!("bare ccm");
            e
        };
        assert_eq!(
            messages(&validate_event(None, &bad_controller, "")),
            [format!(
                "reportingController: Invalid value: \"bare ccm\": {QNAME_REGEX_MSG}"
            )]
        );
    }

    #[test]
    fn events_v1_create_requires_event_time_a_known_type_and_no_deprecated_fields() {
        assert_eq!(
            validate_event(None, &new_style_event(), EVENTS_GROUP),
            vec![]
        );
        let mut event = old_style_event("default");
        event["type"] = json!("Info");
        event["series"] = json!({ "count": 1 });
        assert_eq!(
            messages(&validate_event(None, &event, EVENTS_GROUP)),
            [
                "series.count: Invalid value: \"\": should be at least 2",
                "series.lastObservedTime: Required value",
                "eventTime: Required value",
                "type: Invalid value: \"\": has invalid value: Info",
                "firstTimestamp: Invalid value: \"\": needs to be unset",
                "lastTimestamp: Invalid value: \"\": needs to be unset",
                "count: Invalid value: \"\": needs to be unset",
                "source: Invalid value: \"\": needs to be unset",
            ]
        );
        // core/v1 accepts the same object: legacy rules only
        assert_eq!(validate_event(None, &event, ""), vec![]);
    }

    #[test]
    fn core_v1_event_names_need_only_be_path_segments() {
        let named = |name: &str| {
            let mut e = old_style_event("default");
            e["metadata"]["name"] = json!(name);
            e
        };
        assert_eq!(validate_event(None, &named("Node_N1.Ready"), ""), vec![]);
        assert_eq!(
            messages(&validate_event(None, &named("Node_N1.Ready"), EVENTS_GROUP))[0],
            format!("metadata.name: Invalid value: \"Node_N1.Ready\": {SUBDOMAIN_MSG}")
        );
        assert_eq!(
            messages(&validate_event(None, &named(".."), "")),
            ["metadata.name: Invalid value: \"..\": may not be '..'"]
        );
        assert_eq!(
            messages(&validate_event(None, &named("a%b/c"), "")),
            [
                "metadata.name: Invalid value: \"a%b/c\": may not contain '/'",
                "metadata.name: Invalid value: \"a%b/c\": may not contain '%'",
            ]
        );
        // the generic checks run only once the strategy's pass
        let mut both = named("..");
        both["metadata"]["namespace"] = json!("other");
        assert_eq!(
            messages(&validate_event(None, &both, "")),
            ["involvedObject.namespace: Invalid value: \"\": does not match event.namespace"]
        );
    }

    #[test]
    fn events_v1_updates_keep_every_field_but_the_series_and_metadata() {
        let mut old = new_style_event();
        old["metadata"]["uid"] = json!("e-uid");
        let mut series = old.clone();
        series["series"] = json!({ "count": 2, "lastObservedTime": "2026-11-26T14:05:00.000001Z" });
        series["metadata"]["labels"] = json!({ "k": "v" });
        assert_eq!(validate_event(Some(&old), &series, EVENTS_GROUP), vec![]);
        let mut changed = old.clone();
        changed["reason"] = json!("Other");
        changed["message"] = json!("changed");
        changed["eventTime"] = json!("2026-11-26T14:00:01Z");
        changed["involvedObject"]["name"] = json!("n2");
        changed["related"] = json!({ "kind": "Pod", "name": "p" });
        changed["count"] = json!(3);
        changed["series"] = json!({ "count": 1, "lastObservedTime": "2026-11-26T14:05:00Z" });
        assert_eq!(
            messages(&validate_event(Some(&old), &changed, EVENTS_GROUP)),
            [
                "series.count: Invalid value: \"\": should be at least 2",
                "involvedObject: Invalid value: {\"Kind\":\"Node\",\"Namespace\":\"\",\"Name\":\"n2\",\"UID\":\"u1\",\"APIVersion\":\"\",\"ResourceVersion\":\"\",\"FieldPath\":\"\"}: field is immutable",
                "reason: Invalid value: \"Other\": field is immutable",
                "message: Invalid value: \"changed\": field is immutable",
                "count: Invalid value: 3: field is immutable",
                "reason: Invalid value: \"Other\": field is immutable",
                "eventTime: Invalid value: 2026-11-26 14:00:01 +0000 UTC: field is immutable",
                "related: Invalid value: {\"Kind\":\"Pod\",\"Namespace\":\"\",\"Name\":\"p\",\"UID\":\"\",\"APIVersion\":\"\",\"ResourceVersion\":\"\",\"FieldPath\":\"\"}: field is immutable",
            ]
        );
        // the same instant written differently is no change
        let mut same_time = old.clone();
        same_time["eventTime"] = json!("2026-11-26T15:00:00.123456+01:00");
        assert_eq!(validate_event(Some(&old), &same_time, EVENTS_GROUP), vec![]);
        // an unchanged invalid series is not checked again
        let mut bad_series = old.clone();
        bad_series["series"] = json!({ "count": 1 });
        let mut relabelled = bad_series.clone();
        relabelled["metadata"]["labels"] = json!({ "k": "v" });
        assert_eq!(
            validate_event(Some(&bad_series), &relabelled, EVENTS_GROUP),
            vec![]
        );
        let mut cleared = old.clone();
        cleared["eventTime"] = Value::Null;
        cleared["reportingComponent"] = json!("bare-ccm");
        let got = messages(&validate_event(Some(&old), &cleared, EVENTS_GROUP));
        assert!(
            got.contains(
                &"eventTime: Invalid value: 0001-01-01 00:00:00 +0000 UTC: field is immutable"
                    .to_string()
            ),
            "{got:#?}"
        );
    }

    #[test]
    fn core_v1_event_updates_may_change_fields_but_not_identity() {
        let mut old = old_style_event("default");
        old["metadata"]["uid"] = json!("e-uid");
        let mut bumped = old.clone();
        bumped["count"] = json!(2);
        bumped["lastTimestamp"] = json!("2026-11-26T14:01:00Z");
        bumped["message"] = json!("registered again");
        assert_eq!(validate_event(Some(&old), &bumped, ""), vec![]);
        let mut renamed = bumped.clone();
        renamed["metadata"]["uid"] = json!("other");
        assert_eq!(
            messages(&validate_event(Some(&old), &renamed, "")),
            ["metadata.uid: Invalid value: \"other\": field is immutable"]
        );
    }

    #[test]
    fn go_time_strings_trim_trailing_zeros_like_time_string() {
        assert_eq!(
            go_time_string(Some("2026-11-26T14:00:00.120000Z")),
            "2026-11-26 14:00:00.12 +0000 UTC"
        );
        assert_eq!(
            go_time_string(Some("2026-11-26T16:00:00+02:00")),
            "2026-11-26 14:00:00 +0000 UTC"
        );
    }

    fn lease(spec: Value) -> Value {
        json!({ "kind": "Lease", "metadata": { "name": "bare-ccm", "namespace": "kube-system" }, "spec": spec })
    }

    #[test]
    fn lease_specs_follow_coordination_validation() {
        let valid = lease(json!({
            "holderIdentity": "host1_1a2b", "leaseDurationSeconds": 15, "leaseTransitions": 0,
            "acquireTime": "2026-11-26T14:00:00.000000Z", "renewTime": "2026-11-26T14:00:10.000000Z",
        }));
        assert_eq!(validate_lease(&valid), vec![]);
        assert_eq!(validate_lease(&lease(json!({}))), vec![]);
        let cases = [
            (
                json!({ "leaseDurationSeconds": 0 }),
                "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
            ),
            (
                json!({ "leaseDurationSeconds": -5 }),
                "spec.leaseDurationSeconds: Invalid value: -5: must be greater than 0",
            ),
            (
                json!({ "leaseTransitions": -1 }),
                "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                json!({ "strategy": "Newest" }),
                "spec.strategy.strategy: Unsupported value: \"Newest\": supported values: \"OldestEmulationVersion\"",
            ),
            (
                json!({ "preferredHolder": "host2" }),
                "spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined",
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(
                messages(&validate_lease(&lease(spec.clone()))),
                [want],
                "{spec}"
            );
        }
        let prefixed = lease(json!({ "strategy": "example.com/Mine", "preferredHolder": "h" }));
        assert_eq!(validate_lease(&prefixed), vec![]);
        let bad_prefix = lease(json!({ "strategy": "Example.com/Mine" }));
        assert_eq!(
            messages(&validate_lease(&bad_prefix)),
            [format!(
                "spec.strategy.strategy: Invalid value: \"Example.com/Mine\": prefix part {SUBDOMAIN_MSG}"
            )]
        );
        let mut bad_name = valid.clone();
        bad_name["metadata"]["name"] = json!("Bare_CCM");
        assert_eq!(
            messages(&validate_lease(&bad_name)),
            [format!(
                "metadata.name: Invalid value: \"Bare_CCM\": {SUBDOMAIN_MSG}"
            )]
        );
    }

    #[test]
    fn delete_options_accept_only_the_three_propagation_policies() {
        for policy in ["Orphan", "Background", "Foreground"] {
            assert_eq!(
                validate_delete_options(&json!({ "propagationPolicy": policy })),
                vec![]
            );
        }
        assert_eq!(
            validate_delete_options(&json!({ "orphanDependents": true })),
            vec![]
        );
        assert_eq!(validate_delete_options(&json!({})), vec![]);
        let errs = validate_delete_options(&json!({ "propagationPolicy": "Sideways" }));
        let status = invalid_status("DeleteOptions", "meta.k8s.io", "", &errs);
        assert_eq!(status["code"], 422);
        assert_eq!(
            status["message"],
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"Sideways\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
        );
        assert_eq!(
            status["details"],
            json!({
                "group": "meta.k8s.io",
                "kind": "DeleteOptions",
                "causes": [{
                    "reason": "FieldValueNotSupported",
                    "message": "Unsupported value: \"Sideways\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"",
                    "field": "propagationPolicy",
                }],
            })
        );
        let both = validate_delete_options(
            &json!({ "propagationPolicy": "Orphan", "orphanDependents": false }),
        );
        assert_eq!(
            messages(&both),
            [
                "propagationPolicy: Invalid value: \"Orphan\": orphanDependents and deletionPropagation cannot be both set"
            ]
        );
    }
}
