//! One invalid field ([`FieldError`]) and the 422 `Invalid` Status a list of them makes,
//! so that a client of the emulator reads the same causes and message as from the real
//! server. Owns the wording of every message (`ErrorBody`) and Go's quoting of bad values;
//! which fields are invalid is the other modules' business.
//!
//! Sources: apimachinery `pkg/util/validation/field/errors.go` (`field.Error`, `ErrorBody`,
//! the `FieldValue*` reasons), apimachinery `pkg/api/errors/errors.go` (`NewInvalid`) and
//! `pkg/util/errors/errors.go` (how several messages are joined).

use std::fmt;

use serde_json::{Map, Value, json};

use crate::gofmt::go_quote;

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
    pub(super) fn new(
        field: &str,
        kind: FieldErrorKind,
        bad_value: Option<Value>,
        detail: &str,
    ) -> Self {
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
    let message = if errs.is_empty() {
        format!("{qualified} {} is invalid", go_quote(name))
    } else {
        format!(
            "{qualified} {} is invalid: {}",
            go_quote(name),
            aggregate(errs)
        )
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

/// The message of apimachinery `utilerrors.aggregate.Error` over `errs`: one distinct
/// message alone, several as `[a, b]`, repeats shown once, in order.
pub(crate) fn aggregate(errs: &[FieldError]) -> String {
    let mut unique: Vec<String> = Vec::new();
    for e in errs {
        let m = e.to_string();
        if !unique.contains(&m) {
            unique.push(m);
        }
    }
    match unique.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}
