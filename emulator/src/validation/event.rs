//! Event validation, as `pkg/apis/core/validation/events.go` does it (`ValidateEventCreate`,
//! `ValidateEventUpdate`, `legacyValidateEvent`, `validateV1EventSeries`), by the API group
//! the Event was written through (`pkg/registry/core/event/strategy.go`), and with the
//! generic metadata checks of apiserver `pkg/registry/rest/create.go` and `update.go`
//! after (create) or along with (update) the strategy's.

use serde_json::{Value, json};

use super::meta::{FIELD_IMMUTABLE, NameRule, object_meta_errors};
use super::{
    FieldError, FieldErrorKind, is_dns1123_subdomain, is_qualified_name, str_at,
    validate_object_meta_update,
};

/// The group whose Event writes get the strict checks (`ValidateEventCreate` applies them to
/// every request version except core/v1 and events.k8s.io/v1beta1; we serve only v1).
pub(super) const EVENTS_GROUP: &str = "events.k8s.io";
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
pub(super) fn go_time_string(t: Option<&str>) -> String {
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
