//! providerID templates: the `{node}` placeholder, their checks and their expansion.

/// The placeholder replaced by the node name in providerID templates.
pub const NODE_PLACEHOLDER: &str = "{node}";
/// A providerID template may use only the `{node}` placeholder and no whitespace.
pub fn check_provider_id_template(template: &str) -> Result<(), String> {
    if template.chars().any(char::is_whitespace) {
        return Err(format!("{template:?} must not contain whitespace"));
    }
    let rest = template.replace(NODE_PLACEHOLDER, "");
    if rest.contains('{') || rest.contains('}') {
        return Err(format!(
            "{template:?} has an unknown placeholder (only {NODE_PLACEHOLDER} is supported)"
        ));
    }
    Ok(())
}

/// A providerID template that applies to several nodes must contain `{node}`: without it
/// every node would get the same providerID, and a providerID is never changed once set.
pub fn check_has_node(template: &str) -> Result<(), String> {
    if template.is_empty() || template.contains(NODE_PLACEHOLDER) {
        return Ok(());
    }
    Err(format!(
        "{template:?} has no {NODE_PLACEHOLDER}: every node would get this same providerID, which can never be changed afterwards; add {NODE_PLACEHOLDER} (e.g. \"{template}{NODE_PLACEHOLDER}\")"
    ))
}

/// Expands a providerID template for one node.
pub fn expand_provider_id(template: &str, node: &str) -> String {
    template.replace(NODE_PLACEHOLDER, node)
}
