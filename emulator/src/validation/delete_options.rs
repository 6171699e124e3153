//! The options of a DELETE, as apimachinery `pkg/apis/meta/v1/validation/validation.go`
//! `ValidateDeleteOptions` checks them.

use serde_json::Value;

use super::FieldError;

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
