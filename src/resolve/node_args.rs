//! The `k3s.io/node-args` annotation: the k3s agent's command line as a JSON array, from
//! which `--node-ip` intent is recovered after k3s dropped its address annotations
//! (reference §1; k3s issues 10037 and 12060).
//!
//! Flags read (k3s `pkg/cli/cmds/agent.go`): `--node-ip`/`-i` (InternalIP),
//! `--node-external-ip` (ExternalIP), `--node-internal-dns` (InternalDNS) and
//! `--node-external-dns` (ExternalDNS). Each may repeat and holds a comma list. k3s writes
//! `--flag=value` split into two elements; the joined form is accepted too.

pub use crate::facts::NODE_ARGS;

use super::addresses::{AddressType, Candidate};
use super::resolution::Warning;
use crate::facts::NODE_ARGS_REDACTED;

/// The address type a flag of interest gives, or `None` for any other flag.
fn flag_type(flag: &str) -> Option<AddressType> {
    match flag {
        "--node-ip" | "-i" => Some(AddressType::InternalIP),
        "--node-external-ip" => Some(AddressType::ExternalIP),
        "--node-internal-dns" => Some(AddressType::InternalDNS),
        "--node-external-dns" => Some(AddressType::ExternalDNS),
        _ => None,
    }
}

/// Parses the annotation value into address candidates, in argument order. Malformed JSON,
/// non-string elements, redacted values, missing values and invalid addresses are skipped,
/// each with a warning; the rest of the array is still read.
pub fn candidates(value: &str, warnings: &mut Vec<Warning>) -> Vec<Candidate> {
    let elements: Vec<serde_json::Value> = match serde_json::from_str(value) {
        Ok(elements) => elements,
        Err(e) => {
            warnings.push(Warning::NodeArgsNotArray {
                reason: e.to_string(),
            });
            return Vec::new();
        }
    };
    let args: Vec<String> = elements
        .into_iter()
        .enumerate()
        .filter_map(|(i, element)| match element {
            serde_json::Value::String(arg) => Some(arg),
            other => {
                warnings.push(Warning::NodeArgsNotString {
                    index: i,
                    element: other.to_string(),
                });
                None
            }
        })
        .collect();
    let mut out = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, v)) if arg.starts_with('-') => (flag, Some(v)),
            _ => (arg.as_str(), None),
        };
        let Some(type_) = flag_type(flag) else {
            continue;
        };
        let Some(list) = inline.or_else(|| iter.next().map(String::as_str)) else {
            warnings.push(Warning::NodeArgsNoValue {
                flag: flag.to_string(),
            });
            continue;
        };
        for part in list.split(',') {
            if part == NODE_ARGS_REDACTED {
                warnings.push(Warning::NodeArgsRedacted {
                    flag: flag.to_string(),
                });
                continue;
            }
            let origin = format!("{flag} in annotation {NODE_ARGS}");
            Candidate::parse_into(type_, part, &origin, &mut out, warnings);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use AddressType::*;

    fn run(json: &str) -> (Vec<(AddressType, String)>, Vec<String>) {
        let mut warnings = Vec::new();
        let got = candidates(json, &mut warnings)
            .into_iter()
            .map(|c| (c.type_, c.address))
            .collect();
        (got, warnings.iter().map(ToString::to_string).collect())
    }

    fn c(t: AddressType, a: &str) -> (AddressType, String) {
        (t, a.to_string())
    }

    /// Asserts that `json` reads as `want`, with no warning.
    #[track_caller]
    fn assert_reads(json: &str, want: &[(AddressType, String)]) {
        let (got, warnings) = run(json);
        assert_eq!(got, want);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn split_form_with_dual_stack_comma_list() {
        assert_reads(
            r#"["agent","--node-ip","10.0.0.5,fd00::5","--node-external-ip","203.0.113.5","--kubelet-arg","cloud-provider=external"]"#,
            &[
                c(InternalIP, "10.0.0.5"),
                c(InternalIP, "fd00::5"),
                c(ExternalIP, "203.0.113.5"),
            ],
        );
    }

    #[test]
    fn short_alias_equals_form_and_repeated_flags() {
        assert_reads(
            r#"["server","-i","10.0.0.1","--node-ip=fd00::1","--node-external-ip","1.2.3.4","--node-external-ip=2001:db8::4"]"#,
            &[
                c(InternalIP, "10.0.0.1"),
                c(InternalIP, "fd00::1"),
                c(ExternalIP, "1.2.3.4"),
                c(ExternalIP, "2001:db8::4"),
            ],
        );
    }

    #[test]
    fn dns_flags_give_dns_addresses() {
        let (got, _) = run(
            r#"["agent","--node-internal-dns","n1.lan","--node-external-dns","n1.example.com"]"#,
        );
        assert_eq!(
            got,
            vec![c(InternalDNS, "n1.lan"), c(ExternalDNS, "n1.example.com")]
        );
    }

    #[test]
    fn redacted_and_invalid_values_are_skipped_with_one_warning_each() {
        let (got, warnings) = run(
            r#"["agent","--node-ip","********","--node-ip","10.0.0.7,nope,10.0.0.300","--token","********"]"#,
        );
        assert_eq!(got, vec![c(InternalIP, "10.0.0.7")]);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].contains("redacted") && warnings[0].contains("--node-ip"));
        assert!(warnings[1].contains("\"nope\"") && warnings[1].contains(NODE_ARGS));
        assert!(warnings[2].contains("\"10.0.0.300\""));
    }

    #[test]
    fn flag_without_value_at_the_end_warns() {
        let (got, warnings) = run(r#"["agent","--node-ip"]"#);
        assert!(got.is_empty());
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("has no value"));
    }

    #[test]
    fn other_flags_and_their_values_are_ignored() {
        assert_reads(
            r#"["agent","--node-label","role=db","--node-name","n1","--with-node-id","--node-ip-extra","10.0.0.1","--node-ip=1.1.1.1"]"#,
            &[c(InternalIP, "1.1.1.1")],
        );
    }

    #[test]
    fn non_string_elements_are_skipped_and_the_rest_is_read() {
        let (got, warnings) = run(r#"["agent",1,"--node-ip",null,"10.0.0.5",{"a":1}]"#);
        assert_eq!(got, vec![c(InternalIP, "10.0.0.5")]);
        assert_eq!(
            warnings,
            vec![
                "ignoring element 1 (1) of annotation k3s.io/node-args: not a string",
                "ignoring element 3 (null) of annotation k3s.io/node-args: not a string",
                "ignoring element 5 ({\"a\":1}) of annotation k3s.io/node-args: not a string",
            ]
        );
        let (got, warnings) = run(r#"["agent","--node-ip","10.0.0.5",1]"#);
        assert_eq!(got, vec![c(InternalIP, "10.0.0.5")]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }

    #[test]
    fn malformed_json_is_one_warning() {
        for bad in ["", "not json", "{\"a\":1}", "[\"agent\",", "null"] {
            let (got, warnings) = run(bad);
            assert!(got.is_empty(), "{bad:?}");
            assert_eq!(warnings.len(), 1, "{bad:?}");
            assert!(warnings[0].contains(NODE_ARGS));
        }
    }
}
