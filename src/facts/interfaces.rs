//! Interface-name facts: the virtual links whose addresses never reach a node, and the
//! `veth*`-style patterns that name them. Imports nothing of ours.

/// Interface names skipped unless configured otherwise: loopback, and the virtual links of
/// CNIs (flannel, Calico, Cilium), container runtimes (docker, bridges, veth pairs),
/// kube-proxy's IPVS dummy, IP-in-IP tunnels, NodeLocal DNSCache and libvirt. Their
/// addresses are not how anyone reaches the node.
pub const DEFAULT_IGNORE: [&str; 13] = [
    "lo",
    "cni*",
    "flannel*",
    "cali*",
    "cilium*",
    "docker*",
    "br-*",
    "veth*",
    "vxlan*",
    "kube-ipvs0",
    "tunl0",
    "nodelocaldns",
    "virbr*",
];

/// Whether interface `name` matches a pattern of `patterns`; `*` matches any run of
/// characters (as `ip link` users write `veth*`), every other character itself.
pub fn ignored_by<'p>(name: &str, patterns: &'p [String]) -> Option<&'p str> {
    patterns
        .iter()
        .find(|p| glob_match(p.as_bytes(), name.as_bytes()))
        .map(String::as_str)
}

fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| glob_match(rest, &name[i..])),
        Some((c, rest)) => name
            .split_first()
            .is_some_and(|(n, tail)| n == c && glob_match(rest, tail)),
    }
}

/// Checks an `ignore` pattern: non-empty, no whitespace and no `/` (an interface name has
/// neither).
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() || pattern.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(format!(
            "{pattern:?} is not an interface name pattern (a name, where * matches any characters, e.g. veth*)"
        ));
    }
    Ok(())
}
