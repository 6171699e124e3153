//! The address annotations: `bare-ccm.io/*` written by operators (source `annotations`), and
//! the `k3s.io/*` keys of the same names that a k3s agent writes while its embedded CCM is
//! enabled (source `k3s-annotations`). They are two sources because they are current at
//! different times: an operator's annotation is current until the operator changes it; a
//! `k3s.io/*` key only while k3s's embedded CCM runs. With `--disable-cloud-controller`
//! current k3s removes them and older releases stop updating them, so they can be stale
//! after a re-IP, and rank below `k3s.io/node-args`, which the agent rewrites at each start.

use std::collections::BTreeMap;

pub use crate::facts::ADDRESS_ANNOTATIONS;

use super::addresses::Candidate;
use super::resolution::Warning;

/// Whose keys a source reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// `bare-ccm.io/*`: the `annotations` source.
    BareCcm,
    /// `k3s.io/*`: the `k3s-annotations` source.
    K3s,
}

/// Reads `owner`'s address annotations into candidates (type order, then value order).
/// Values are comma lists; spaces around a comma are tolerated, empty parts ignored, and
/// invalid parts skipped with a warning naming the annotation and the value.
pub fn candidates(
    annotations: &BTreeMap<String, String>,
    owner: Owner,
    warnings: &mut Vec<Warning>,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (type_, ours, k3s) in ADDRESS_ANNOTATIONS {
        let key = match owner {
            Owner::BareCcm => ours,
            Owner::K3s => k3s,
        };
        let Some(value) = annotations.get(key).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        let origin = format!("annotation {key}");
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            Candidate::parse_into(type_, part, &origin, &mut out, warnings);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::address::AddressType::{self, *};
    use crate::facts::is_address_annotation;

    fn read(owner: Owner, list: &[(&str, &str)]) -> (Vec<(AddressType, String)>, Vec<String>) {
        let map = list
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut warnings = Vec::new();
        let got = candidates(&map, owner, &mut warnings)
            .into_iter()
            .map(|c| (c.type_, c.address))
            .collect();
        (got, warnings.iter().map(ToString::to_string).collect())
    }

    /// Both sources' keys read together, the k3s.io ones first.
    fn run(list: &[(&str, &str)]) -> (Vec<(AddressType, String)>, Vec<String>) {
        let (mut got, mut warnings) = read(Owner::K3s, list);
        let (ours, more) = read(Owner::BareCcm, list);
        got.extend(ours);
        warnings.extend(more);
        (got, warnings.iter().map(ToString::to_string).collect())
    }

    fn c(t: AddressType, a: &str) -> (AddressType, String) {
        (t, a.to_string())
    }

    /// Asserts that both sources read from `list` give `want`, with no warning.
    #[track_caller]
    fn assert_reads(list: &[(&str, &str)], want: &[(AddressType, String)]) {
        let (got, warnings) = run(list);
        assert_eq!(got, want);
        assert!(warnings.is_empty());
    }

    #[test]
    fn each_source_reads_only_its_own_keys() {
        let list = [
            ("bare-ccm.io/internal-ip", "10.0.0.5"),
            ("k3s.io/internal-ip", "10.9.9.9"),
            ("k3s.io/external-ip", "203.0.113.5"),
            ("k3s.io/hostname", "n1"),
        ];
        assert_eq!(
            read(Owner::BareCcm, &list).0,
            vec![c(InternalIP, "10.0.0.5")]
        );
        assert_eq!(
            read(Owner::K3s, &list).0,
            vec![
                c(InternalIP, "10.9.9.9"),
                c(ExternalIP, "203.0.113.5"),
                c(Hostname, "n1")
            ]
        );
    }

    #[test]
    fn empty_values_give_nothing() {
        let list = [("bare-ccm.io/internal-ip", " "), ("k3s.io/internal-ip", "")];
        assert_eq!(read(Owner::BareCcm, &list).0, vec![]);
        assert_eq!(read(Owner::K3s, &list).0, vec![]);
    }

    #[test]
    fn comma_separated_dual_stack_value_is_two_addresses_not_one() {
        // Reference §6: other CCMs parse "v4,v6" as one IP and fail with "too many colons".
        assert_reads(
            &[("k3s.io/internal-ip", "10.0.0.1,fd00::1")],
            &[c(InternalIP, "10.0.0.1"), c(InternalIP, "fd00::1")],
        );
    }

    #[test]
    fn spaces_around_commas_are_tolerated() {
        assert_reads(
            &[("bare-ccm.io/internal-ip", "10.0.0.1, fd00::1 ,")],
            &[c(InternalIP, "10.0.0.1"), c(InternalIP, "fd00::1")],
        );
    }

    #[test]
    fn bad_ip_is_skipped_with_a_warning_naming_annotation_and_value() {
        let (got, warnings) = run(&[
            ("bare-ccm.io/internal-ip", "10.0.0.1,10.0.0.999"),
            ("bare-ccm.io/external-ip", "fd00::1::2"),
        ]);
        assert_eq!(got, vec![c(InternalIP, "10.0.0.1")]);
        assert_eq!(
            warnings,
            vec![
                "ignoring invalid InternalIP \"10.0.0.999\" from annotation bare-ccm.io/internal-ip: not an IP address",
                "ignoring invalid ExternalIP \"fd00::1::2\" from annotation bare-ccm.io/external-ip: not an IP address",
            ]
        );
    }

    #[test]
    fn dns_and_hostname_values_are_kept_verbatim() {
        let (got, _) = run(&[
            ("bare-ccm.io/internal-dns", "n1.lan,n1.corp"),
            ("bare-ccm.io/external-dns", "n1.example.com"),
            ("bare-ccm.io/hostname", "n1"),
        ]);
        assert_eq!(
            got,
            vec![
                c(InternalDNS, "n1.lan"),
                c(InternalDNS, "n1.corp"),
                c(ExternalDNS, "n1.example.com"),
                c(Hostname, "n1")
            ]
        );
    }

    #[test]
    fn relevant_keys_are_recognised() {
        assert!(is_address_annotation("k3s.io/hostname"));
        assert!(is_address_annotation("bare-ccm.io/external-dns"));
        assert!(!is_address_annotation("bare-ccm.io/other"));
    }
}
