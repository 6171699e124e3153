//! Validation as each kind's strategy runs it, and the 422 `Invalid` answers it makes:
//! which rules of `validation` apply to a write, and how the Status names the kind.

use serde_json::Value;

use crate::resources::{ResourceDef, StoreKind};
use crate::status::ApiError;
use crate::validation::{self, FieldError};

/// Validation of the object as its strategy does it: Node has its own rules (which include
/// the metadata rules), and writes to `nodes/status` run only the update rules
/// (`nodeStatusStrategy.ValidateUpdate` calls `ValidateNodeUpdate` alone); Events are
/// validated by the rules of the API group they were written through (kubernetes
/// `pkg/registry/core/event/strategy.go`, `pkg/apis/core/validation/events.go`), Leases by
/// `pkg/apis/coordination/validation`; the others use the common ObjectMeta validation.
/// `new` (and `old`) are in the stored form.
pub(super) fn validate(
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
pub(super) fn invalid(def: &ResourceDef, name: &str, errs: &[FieldError]) -> ApiError {
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

/// A 422 of apimachinery `NewInvalid` for an object without a name (the patch decoder's
/// and `ListOptions`): `details` carries no empty `name`/`kind`, as Go's `omitempty` drops
/// them.
pub(super) fn invalid_unnamed(kind: &str, group: &str, errs: &[FieldError]) -> ApiError {
    let mut body = validation::invalid_status(kind, group, "", errs);
    if let Some(details) = body.get_mut("details").and_then(Value::as_object_mut) {
        details.retain(|_, v| v.as_str() != Some(""));
    }
    ApiError::invalid(body)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
