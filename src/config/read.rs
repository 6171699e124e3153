//! The schema walk: reads the YAML tree into the `Raw*` structs, reporting unknown keys,
//! repeated keys and wrong types with their key path and line.

use std::collections::BTreeMap;

use super::problems::Problems;
use super::raw::*;
use super::schema::ProvidedNodeIpMode;
use super::yaml::{Spanned, Yaml};

/// The entries of a map value, each key with its text; reports non-scalar keys and
/// repeated keys (keeping the first). `None`, with a problem, when `v` is not a map;
/// an empty list for `null` (a section whose entries are all commented out).
pub(super) fn map_entries<'y>(
    path: &str,
    v: &'y Spanned<Yaml>,
    p: &mut Problems,
) -> Option<Vec<(Spanned<String>, &'y Spanned<Yaml>)>> {
    let entries = match &v.value {
        Yaml::Map(entries) => entries,
        Yaml::Null => return Some(Vec::new()),
        other => {
            p.push(
                path,
                v.line,
                format!("expected a map, found {}", other.kind()),
            );
            return None;
        }
    };
    let mut out: Vec<(Spanned<String>, &Spanned<Yaml>)> = Vec::new();
    for (key, value) in entries {
        let Some(text) = key.value.scalar_text() else {
            p.push(
                path,
                key.line,
                format!("a key must be a plain value, found {}", key.value.kind()),
            );
            continue;
        };
        if let Some((first, _)) = out.iter().find(|(k, _)| k.value == text) {
            // Label keys are quoted in paths, as `validate_labels` writes them.
            let shown = if text.chars().all(|c| c.is_ascii_alphanumeric()) {
                text.clone()
            } else {
                format!("{text:?}")
            };
            p.push(
                join(path, &shown),
                key.line,
                format!(
                    "is set twice{}; a key may appear only once: delete one of them",
                    first
                        .line
                        .map(|l| format!(" (first on line {l})"))
                        .unwrap_or_default()
                ),
            );
            continue;
        }
        out.push((
            Spanned {
                value: text,
                line: key.line,
            },
            value,
        ));
    }
    Some(out)
}

/// `base.key` as paths are written (the key alone at the top level).
pub(super) fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else {
        format!("{base}.{key}")
    }
}

/// A key that no schema field has: named with the accepted ones, and the likely intended
/// one when only the case differs (`providerId`).
pub(super) fn unknown_key(path: &str, key: &Spanned<String>, known: &[&str], p: &mut Problems) {
    let hint = known
        .iter()
        .find(|k| k.eq_ignore_ascii_case(&key.value))
        .map(|k| format!("; did you mean {k}?"))
        .unwrap_or_default();
    p.push(
        join(path, &key.value),
        key.line,
        format!("unknown key (expected one of {}){hint}", known.join(", ")),
    );
}

/// A string setting: text, or `None` when null; any other scalar is refused ("quote it").
/// A scalar kept as written, for a value that may be text or a number (`k3sAgentWait: 0`).
pub(super) fn scalar_value(
    path: &str,
    v: &Spanned<Yaml>,
    p: &mut Problems,
) -> Option<Spanned<RawLabelValue>> {
    let value = match &v.value {
        Yaml::Null => return None,
        Yaml::Text(s) => RawLabelValue::Text(s.clone()),
        Yaml::Seq(_) | Yaml::Map(_) => {
            p.push(
                path,
                v.line,
                format!("expected a duration, found {}", v.value.kind()),
            );
            return None;
        }
        other => RawLabelValue::NotText(other.scalar_text().unwrap_or_default()),
    };
    Some(Spanned {
        value,
        line: v.line,
    })
}

pub(super) fn text_value(
    path: &str,
    v: &Spanned<Yaml>,
    p: &mut Problems,
) -> Option<Spanned<String>> {
    match &v.value {
        Yaml::Text(s) => Some(Spanned {
            value: s.clone(),
            line: v.line,
        }),
        Yaml::Null => None,
        Yaml::Bool(_) | Yaml::Number(_) => {
            let shown = v.value.scalar_text().unwrap_or_default();
            p.push(
                path,
                v.line,
                format!("{shown} is not a string: quote it (\"{shown}\")"),
            );
            None
        }
        other => {
            p.push(
                path,
                v.line,
                format!("expected a string, found {}", other.kind()),
            );
            None
        }
    }
}

/// A boolean setting: only an unquoted `true`/`false` (YAML 1.2); `None` when null. A
/// quoted `"yes"`/`"true"` or a YAML 1.1 `yes`/`on` is refused, so a value meant as text
/// never silently switches a setting.
pub(super) fn bool_value(path: &str, v: &Spanned<Yaml>, p: &mut Problems) -> Option<bool> {
    match &v.value {
        Yaml::Bool(b) => Some(*b),
        Yaml::Null => None,
        other => {
            let shown = match other {
                Yaml::Text(s) => format!("{s:?}"),
                _ => other
                    .scalar_text()
                    .unwrap_or_else(|| other.kind().to_string()),
            };
            p.push(
                path,
                v.line,
                format!("must be true or false, unquoted (found {shown})"),
            );
            None
        }
    }
}

/// The text items of a list with their indexes; an item that is not text is a problem
/// and left out.
fn text_items(
    path: &str,
    items: &[Spanned<Yaml>],
    p: &mut Problems,
) -> Vec<(usize, Spanned<String>)> {
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| text_value(&format!("{path}[{i}]"), item, p).map(|s| (i, s)))
        .collect()
}

/// A list setting: its items, or an empty list when null.
pub(super) fn list_items<'y>(
    path: &str,
    v: &'y Spanned<Yaml>,
    p: &mut Problems,
) -> Option<&'y [Spanned<Yaml>]> {
    match &v.value {
        Yaml::Seq(items) => Some(items),
        Yaml::Null => Some(&[]),
        other => {
            p.push(
                path,
                v.line,
                format!("expected a list, found {}", other.kind()),
            );
            None
        }
    }
}

/// A map of label keys to label values (`extraLabels`, `labels`, `matchLabels`).
pub(super) fn label_map(
    path: &str,
    v: &Spanned<Yaml>,
    p: &mut Problems,
) -> BTreeMap<String, Spanned<RawLabelValue>> {
    let mut out = BTreeMap::new();
    for (key, value) in map_entries(path, v, p).unwrap_or_default() {
        let raw = match &value.value {
            Yaml::Text(s) => RawLabelValue::Text(s.clone()),
            Yaml::Seq(_) | Yaml::Map(_) => {
                let msg = format!(
                    "expected a label value (a string), found {}",
                    value.value.kind()
                );
                p.push(format!("{path}.{:?}", key.value), value.line, msg);
                continue;
            }
            other => RawLabelValue::NotText(other.scalar_text().unwrap_or_default()),
        };
        let line = value.line.or(key.line);
        out.insert(key.value, Spanned { value: raw, line });
    }
    out
}

pub(super) const TOP_KEYS: [&str; 12] = [
    "providerID",
    "instanceType",
    "zone",
    "region",
    "addressSources",
    "providedNodeIP",
    "requireInternalIP",
    "preferIPv6",
    "extraLabels",
    "inventory",
    "k3sAgentWait",
    "interfaces",
];

pub(super) const INTERFACES_KEYS: [&str; 2] = ["ignore", "rules"];

pub(super) const ENTRY_KEYS: [&str; 9] = [
    "name",
    "nameRegex",
    "selector",
    "addresses",
    "providerID",
    "instanceType",
    "zone",
    "region",
    "labels",
];

/// Applies the schema to the tree: every unknown key, wrong type and repeated key is a
/// problem, and whatever is well-formed is kept for [`validate`], so one run reports both.
pub(super) fn read_config(root: &Spanned<Yaml>, p: &mut Problems) -> RawConfig {
    let mut raw = RawConfig::default();
    let Some(entries) = map_entries("", root, p) else {
        return raw;
    };
    for (key, v) in entries {
        let path = key.value.as_str();
        match path {
            "providerID" => raw.provider_id = text_value(path, v, p),
            "instanceType" => raw.instance_type = text_value(path, v, p),
            "zone" => raw.zone = text_value(path, v, p),
            "region" => raw.region = text_value(path, v, p),
            "addressSources" if v.value != Yaml::Null => {
                let Some(items) = list_items(path, v, p) else {
                    continue;
                };
                if items.is_empty() {
                    raw.address_sources_empty = Some(v.line);
                }
                raw.address_sources = Some(text_items(path, items, p));
            }
            "addressSources" => {}
            "providedNodeIP" => {
                raw.provided_node_ip =
                    text_value(path, v, p).and_then(|mode| match mode.value.as_str() {
                        "strict" => Some(ProvidedNodeIpMode::Strict),
                        "prefer" => Some(ProvidedNodeIpMode::Prefer),
                        "ignore" => Some(ProvidedNodeIpMode::Ignore),
                        other => {
                            p.push(
                                path,
                                mode.line,
                                format!(
                                    "unknown mode {other:?} (expected strict, prefer or ignore)"
                                ),
                            );
                            None
                        }
                    });
            }
            "requireInternalIP" => raw.require_internal_ip = bool_value(path, v, p),
            "preferIPv6" => raw.prefer_ipv6 = bool_value(path, v, p),
            "extraLabels" => raw.extra_labels = label_map(path, v, p),
            "k3sAgentWait" => raw.k3s_agent_wait = scalar_value(path, v, p),
            "interfaces" => raw.interfaces = Some(read_interfaces(path, v, p)),
            "inventory" => {
                raw.inventory = list_items(path, v, p)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| {
                        read_entry(&format!("inventory[{i}]"), item, p).map(|e| (i, e))
                    })
                    .collect();
            }
            _ => unknown_key("", &key, &TOP_KEYS, p),
        }
    }
    raw
}

pub(super) fn read_entry(
    base: &str,
    v: &Spanned<Yaml>,
    p: &mut Problems,
) -> Option<Spanned<RawInventoryEntry>> {
    let entries = map_entries(base, v, p)?;
    let mut e = RawInventoryEntry::default();
    for (key, value) in entries {
        let path = join(base, &key.value);
        match key.value.as_str() {
            "name" | "nameRegex" => {
                let text = text_value(&path, value, p);
                // Refused already: "exactly one of" would only repeat it.
                e.matcher_refused |= text.is_none() && value.value != Yaml::Null;
                if key.value == "name" {
                    e.name = text;
                } else {
                    e.name_regex = text;
                }
            }
            "selector" => {
                let Some(fields) = map_entries(&path, value, p) else {
                    e.matcher_refused = true;
                    continue;
                };
                if value.value == Yaml::Null {
                    continue;
                }
                let mut selector = RawSelector::default();
                for (field, labels) in fields {
                    if field.value == "matchLabels" {
                        selector.match_labels = label_map(&join(&path, "matchLabels"), labels, p);
                    } else {
                        unknown_key(&path, &field, &["matchLabels"], p);
                    }
                }
                e.selector = Some(Spanned {
                    value: selector,
                    line: value.line,
                });
            }
            "addresses" => {
                for (j, a) in list_items(&path, value, p)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    let apath = format!("{path}[{j}]");
                    if let Some(address) = read_address(&apath, a, p) {
                        e.addresses.push((j, address));
                    }
                }
            }
            "providerID" => e.provider_id = text_value(&path, value, p),
            "instanceType" => e.instance_type = text_value(&path, value, p),
            "zone" => e.zone = text_value(&path, value, p),
            "region" => e.region = text_value(&path, value, p),
            "labels" => e.labels = label_map(&path, value, p),
            _ => unknown_key(base, &key, &ENTRY_KEYS, p),
        }
    }
    Some(Spanned {
        value: e,
        line: v.line,
    })
}

/// The `interfaces` section: `ignore` (name patterns) and `rules` (`{cidr, type}` maps).
pub(super) fn read_interfaces(base: &str, v: &Spanned<Yaml>, p: &mut Problems) -> RawInterfaces {
    let mut out = RawInterfaces::default();
    for (key, value) in map_entries(base, v, p).unwrap_or_default() {
        let path = join(base, &key.value);
        match key.value.as_str() {
            // Null: the section's entries are commented out.
            "ignore" | "rules" if value.value == Yaml::Null => {}
            "ignore" => {
                let Some(items) = list_items(&path, value, p) else {
                    continue;
                };
                out.ignore = Some(text_items(&path, items, p));
            }
            "rules" => {
                let Some(items) = list_items(&path, value, p) else {
                    continue;
                };
                let rules = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| {
                        read_rule(&format!("{path}[{i}]"), item, p).map(|r| (i, r))
                    })
                    .collect();
                out.rules = Some(RawRules {
                    line: value.line,
                    empty: items.is_empty(),
                    rules,
                });
            }
            _ => unknown_key(base, &key, &INTERFACES_KEYS, p),
        }
    }
    out
}

/// The two required text keys `keys` of a map entry, or `None` when one is missing or
/// refused (each problem reported once: a value refused for its type is not also missing).
fn required_pair(
    path: &str,
    v: &Spanned<Yaml>,
    p: &mut Problems,
    keys: [&str; 2],
    missing_message: &str,
) -> Option<(Spanned<String>, Spanned<String>)> {
    let entries = map_entries(path, v, p)?;
    let mut slots: [Option<Spanned<String>>; 2] = [None, None];
    let mut refused = false;
    for (key, value) in entries {
        let Some(i) = keys.iter().position(|k| *k == key.value) else {
            unknown_key(path, &key, &keys, p);
            continue;
        };
        slots[i] = text_value(&join(path, &key.value), value, p);
        refused |= slots[i].is_none() && value.value != Yaml::Null;
    }
    match slots {
        [Some(first), Some(second)] => Some((first, second)),
        _ if refused => None,
        [first, _] => {
            let missing = if first.is_none() { keys[0] } else { keys[1] };
            p.push(join(path, missing), v.line, missing_message);
            None
        }
    }
}

/// One `interfaces.rules` entry: both `cidr` and `type` are required.
pub(super) fn read_rule(path: &str, v: &Spanned<Yaml>, p: &mut Problems) -> Option<RawRule> {
    let (cidr, type_) = required_pair(
        path,
        v,
        p,
        ["cidr", "type"],
        "missing: a rule needs a cidr and a type",
    )?;
    Some(RawRule { cidr, type_ })
}

pub(super) fn read_address(
    path: &str,
    v: &Spanned<Yaml>,
    p: &mut Problems,
) -> Option<Spanned<RawAddress>> {
    let (t, a) = required_pair(
        path,
        v,
        p,
        ["type", "address"],
        "missing: an address needs a type and an address",
    )?;
    Some(Spanned {
        value: RawAddress {
            type_: t.value,
            address: a.value,
        },
        line: v.line,
    })
}
