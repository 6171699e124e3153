//! Object metadata, as apimachinery `pkg/api/validation/objectmeta.go` checks it
//! (`ValidateObjectMeta`, `ValidateObjectMetaUpdate`, `ValidateAnnotations`,
//! `TotalAnnotationSizeLimitB`) with `ValidateLabels` of apimachinery
//! `pkg/apis/meta/v1/validation/validation.go`: names by the kind's rule, labels,
//! annotations, and the identity fields an update may not change. Also the generic name
//! rule `rest.BeforeCreate`/`BeforeUpdate` apply (apiserver `pkg/registry/rest/create.go`,
//! `update.go`: `path.ValidatePathSegmentName`).

use serde_json::{Map, Value};

use super::{
    FieldError, is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_label_value,
    str_at, string_map,
};

/// apimachinery `pkg/api/validation/objectmeta.go` `TotalAnnotationSizeLimitB`.
pub const TOTAL_ANNOTATION_SIZE_LIMIT_BYTES: usize = 256 * 1024;

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
pub(super) enum NameRule {
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

/// The label and annotation rules, which create and update both run.
fn labels_and_annotations_errors(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_labels(string_map(obj, &["metadata", "labels"]), "metadata.labels");
    errs.extend(validate_annotations(
        string_map(obj, &["metadata", "annotations"]),
        "metadata.annotations",
    ));
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
pub(super) fn object_meta_errors(obj: &Value, rule: NameRule) -> Vec<FieldError> {
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
    errs.extend(labels_and_annotations_errors(obj));
    errs
}

/// apimachinery `FieldImmutableErrorMsg`.
pub(super) const FIELD_IMMUTABLE: &str = "field is immutable";

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
    errs.extend(labels_and_annotations_errors(new));
    errs
}
