//! Lease validation, as `pkg/apis/coordination/validation/validation.go` does it
//! (`ValidateLease`, `ValidateLeaseSpec`, `ValidateCoordinatedLeaseStrategy`).

use serde_json::Value;

use super::meta::{NameRule, object_meta_errors};
use super::{FieldError, is_qualified_name};

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
