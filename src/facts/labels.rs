//! Kubernetes label syntax (`IsQualifiedName`, label values) and the reserved-domain rule
//! for labels a cloud provider may add. Imports nothing of ours.

const MAX_NAME: usize = 63;
const MAX_PREFIX: usize = 253;

/// Checks a label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters of `[A-Za-z0-9._-]` starting and ending alphanumeric (Kubernetes
/// `IsQualifiedName`).
pub fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        return Err(format!(
            "label key {key:?}: prefix {prefix:?} must be a lowercase DNS subdomain of at most {MAX_PREFIX} characters"
        ));
    }
    if !is_label_name(name) {
        return Err(format!(
            "label key {key:?}: name part must be 1-{MAX_NAME} characters of [A-Za-z0-9._-], starting and ending alphanumeric"
        ));
    }
    Ok(())
}

/// Checks a label value: empty, or at most 63 characters of `[A-Za-z0-9._-]` starting and
/// ending alphanumeric.
pub fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_label_name(value) {
        Ok(())
    } else {
        Err(format!(
            "label value {value:?} must be empty or 1-{MAX_NAME} characters of [A-Za-z0-9._-], starting and ending alphanumeric"
        ))
    }
}

/// The prefix of node-role labels (`kubectl get nodes` shows their names as ROLES).
pub const NODE_ROLE_PREFIX: &str = "node-role.kubernetes.io";

/// Refuses keys under `kubernetes.io/` or `k8s.io/` (and subdomains), as upstream refuses
/// such additional labels from a cloud provider: they are reserved for Kubernetes itself.
/// One exception, on purpose: `node-role.kubernetes.io/*`. The NodeRestriction admission
/// plugin forbids a kubelet to set these on itself (k8s.io/kubernetes
/// `plugin/pkg/admission/noderestriction/admission.go` `getForbiddenLabels`; they are not
/// among k8s.io/kubelet's `IsKubeletLabel`), so some controller has to. Kubernetes itself
/// only displays them (kubectl's ROLES column, `pkg/printers/internalversion`).
pub fn check_settable_label_key(key: &str) -> Result<(), String> {
    let Some((prefix, _)) = key.split_once('/') else {
        return Ok(());
    };
    if prefix == NODE_ROLE_PREFIX {
        return Ok(());
    }
    let reserved = ["kubernetes.io", "k8s.io"]
        .iter()
        .any(|d| prefix == *d || prefix.ends_with(&format!(".{d}")));
    if reserved {
        Err(format!(
            "label key {key:?}: keys under kubernetes.io/ or k8s.io/ (and subdomains) are refused, except node-role.kubernetes.io/; use your own prefix, or the instanceType/zone/region settings"
        ))
    } else {
        Ok(())
    }
}

fn is_label_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_PREFIX
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && is_lower_alnum(b[0])
                && is_lower_alnum(b[b.len() - 1])
                && b.iter().all(|c| is_lower_alnum(*c) || *c == b'-')
        })
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}
