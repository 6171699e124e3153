//! Validation: checks every value of the `Raw*` config, collecting *all* problems with
//! their key paths, and builds the `Config`.

use std::collections::BTreeMap;
use std::time::Duration;

use regex::Regex;

use super::interfaces::{InterfaceRule, InterfacesConfig};
use super::problems::Problems;
use super::raw::*;
use super::schema::*;
use super::sources::{AddressSource, with_implied_sources};
use super::template::{check_has_node, check_provider_id_template};
use super::yaml::{Spanned, line_of};
use crate::facts::address::{AddressType, Cidr, is_plausible_name, parse_ip};
use crate::facts::interfaces::check_pattern;
use crate::facts::labels::{check_label_key, check_label_value, check_settable_label_key};

/// Checks every value of the well-formed `raw` config, adding each problem to `p`, and
/// returns the config (meaningful only when `p` stays empty).
pub(super) fn validate(raw: RawConfig, p: &mut Problems) -> Config {
    let defaults = Config::default();

    let provider_id = match raw.provider_id {
        Some(t) => {
            if let Err(msg) =
                check_provider_id_template(&t.value).and_then(|()| check_has_node(&t.value))
            {
                p.push("providerID", line_of(&t), msg);
            }
            t.value
        }
        None => defaults.provider_id,
    };

    let mut label_value = |key: &str, v: Option<Spanned<String>>, default: String| match v {
        Some(v) => {
            if let Err(msg) = check_label_value(&v.value) {
                p.push(
                    key,
                    line_of(&v),
                    format!("{msg} (it becomes a label value)"),
                );
            }
            v.value
        }
        None => default,
    };
    let instance_type = label_value("instanceType", raw.instance_type, defaults.instance_type);
    let zone = label_value("zone", raw.zone, String::new());
    let region = label_value("region", raw.region, String::new());

    let require_internal_ip = raw
        .require_internal_ip
        .unwrap_or(defaults.require_internal_ip);
    let address_sources = match (raw.address_sources, raw.address_sources_empty) {
        (Some(_), Some(line)) if require_internal_ip => {
            p.push(
                "addressSources",
                line,
                "an empty list can give no node an InternalIP while requireInternalIP is true; list at least one source",
            );
            Vec::new()
        }
        (Some(list), _) => validate_sources(&list, p),
        (None, _) => defaults.address_sources,
    };

    let extra_labels = validate_labels("extraLabels", raw.extra_labels, p);
    let k3s_agent_wait = match raw.k3s_agent_wait {
        Some(v) => match k3s_agent_wait(&v.value) {
            Ok(wait) => wait,
            Err(msg) => {
                p.push("k3sAgentWait", line_of(&v), msg);
                Duration::ZERO
            }
        },
        None => defaults.k3s_agent_wait,
    };

    let interfaces = validate_interfaces(raw.interfaces, p);

    let mut names = BTreeMap::new();
    let inventory = raw
        .inventory
        .into_iter()
        .filter_map(|(i, e)| {
            check_duplicate_name(i, &e, &mut names, p);
            validate_entry(i, e, p)
        })
        .collect();

    Config {
        provider_id,
        instance_type,
        zone,
        region,
        address_sources,
        provided_node_ip: raw.provided_node_ip.unwrap_or_default(),
        require_internal_ip,
        prefer_ipv6: raw.prefer_ipv6.unwrap_or(defaults.prefer_ipv6),
        extra_labels,
        inventory,
        k3s_agent_wait,
        interfaces,
    }
}

/// `interfaces`: each `ignore` pattern, each rule's CIDR and type. `ignore` replaces the
/// default list; without `rules` the built-in rules apply.
pub(super) fn validate_interfaces(
    raw: Option<RawInterfaces>,
    p: &mut Problems,
) -> InterfacesConfig {
    let mut out = InterfacesConfig::default();
    let Some(raw) = raw else {
        return out;
    };
    if let Some(list) = raw.ignore {
        out.ignore = list
            .into_iter()
            .filter_map(|(i, s)| match check_pattern(&s.value) {
                Ok(()) => Some(s.value),
                Err(msg) => {
                    p.push(format!("interfaces.ignore[{i}]"), line_of(&s), msg);
                    None
                }
            })
            .collect();
    }
    if let Some(raw_rules) = raw.rules {
        if raw_rules.empty {
            p.push(
                "interfaces.rules",
                raw_rules.line,
                "an empty list places no address: delete rules for the built-in ones, or leave interfaces out of addressSources",
            );
        }
        let mut rules = Vec::new();
        for (i, rule) in raw_rules.rules {
            let path = format!("interfaces.rules[{i}]");
            let cidr = rule
                .cidr
                .value
                .parse::<Cidr>()
                .map_err(|msg| p.push(format!("{path}.cidr"), line_of(&rule.cidr), msg))
                .ok();
            let type_ = match rule.type_.value.as_str() {
                "InternalIP" => Some(Some(AddressType::InternalIP)),
                "ExternalIP" => Some(Some(AddressType::ExternalIP)),
                "ignore" => Some(None),
                other => {
                    p.push(
                        format!("{path}.type"),
                        line_of(&rule.type_),
                        format!(
                            "unknown type {other:?} (expected InternalIP, ExternalIP or ignore)"
                        ),
                    );
                    None
                }
            };
            if let (Some(cidr), Some(type_)) = (cidr, type_) {
                rules.push(InterfaceRule { cidr, type_ });
            }
        }
        out.rules = Some(rules);
    }
    out
}

/// `k3sAgentWait`: a duration with its unit (`30s`, `1m`, `1m30s`), or `0`; at most
/// [`MAX_K3S_AGENT_WAIT`].
pub(super) fn k3s_agent_wait(value: &RawLabelValue) -> Result<Duration, String> {
    let text = match value {
        RawLabelValue::Text(text) => text.as_str(),
        RawLabelValue::NotText(zero) if zero == "0" => return Ok(Duration::ZERO),
        RawLabelValue::NotText(other) => {
            return Err(format!(
                "{other} is not a duration: give its unit, e.g. 30s or 1m (0 never waits)"
            ));
        }
    };
    let wait = text
        .parse::<jiff::SignedDuration>()
        .ok()
        .and_then(|d| Duration::try_from(d).ok())
        .ok_or_else(|| {
            format!("{text:?} is not a duration: use e.g. 30s, 1m or 1m30s (0s never waits)")
        })?;
    if wait > MAX_K3S_AGENT_WAIT {
        return Err(format!(
            "{text:?} is longer than {}s: k3s shuts itself down when its node is still tainted 15 minutes after start",
            MAX_K3S_AGENT_WAIT.as_secs()
        ));
    }
    Ok(wait)
}

pub(super) fn validate_sources(
    list: &[(usize, Spanned<String>)],
    p: &mut Problems,
) -> Vec<AddressSource> {
    with_implied_sources(listed_sources(list, p))
}

/// The listed sources, each checked; problems are collected.
pub(super) fn listed_sources(
    list: &[(usize, Spanned<String>)],
    p: &mut Problems,
) -> Vec<AddressSource> {
    let mut out: Vec<AddressSource> = Vec::new();
    for (i, s) in list {
        let path = format!("addressSources[{i}]");
        match s.value.parse::<AddressSource>() {
            Ok(src) if !AddressSource::CONFIGURABLE.contains(&src) => p.push(
                path,
                line_of(s),
                format!(
                    "{:?} is the built-in Hostname fallback, not a configurable source (expected one of {})",
                    s.value,
                    AddressSource::configurable_names()
                ),
            ),
            Ok(src) if out.contains(&src) => {
                p.push(path, line_of(s), format!("source {:?} is listed twice", s.value))
            }
            Ok(src) => out.push(src),
            Err(e) => p.push(path, line_of(s), e.to_string()),
        }
    }
    out
}

/// Validates label keys/values and the reserved-domain rule; returns the valid labels.
pub(super) fn validate_labels(
    base: &str,
    labels: BTreeMap<String, Spanned<RawLabelValue>>,
    p: &mut Problems,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (key, value) in labels {
        let path = format!("{base}.{key:?}");
        let mut ok = true;
        if let Err(msg) = check_label_key(&key).and_then(|()| check_settable_label_key(&key)) {
            p.push(path.clone(), line_of(&value), msg);
            ok = false;
        }
        match label_text(&value) {
            Ok(text) if ok => {
                out.insert(key, text);
            }
            Ok(_) => {}
            Err(msg) => p.push(path, line_of(&value), msg),
        }
    }
    out
}

/// The text of a label value, or the problem: not a string, or not a valid value.
pub(super) fn label_text(value: &Spanned<RawLabelValue>) -> Result<String, String> {
    match &value.value {
        RawLabelValue::Text(text) => check_label_value(text).map(|()| text.clone()),
        RawLabelValue::NotText(v) => Err(format!(
            "label value {v} is not a string: quote it (\"{v}\")"
        )),
    }
}

/// The text and line of an optional spanned string; "" and no line when absent.
pub(super) fn text_of(v: Option<Spanned<String>>) -> (String, Option<u64>) {
    v.map(|v| {
        let line = line_of(&v);
        (v.value, line)
    })
    .unwrap_or_default()
}

pub(super) fn validate_entry(
    i: usize,
    entry: Spanned<RawInventoryEntry>,
    p: &mut Problems,
) -> Option<InventoryEntry> {
    let line = line_of(&entry);
    let e = entry.value;
    let base = format!("inventory[{i}]");
    let before = p.0.len();

    let matcher = match (e.name, e.name_regex, e.selector) {
        (Some(name), None, None) => {
            if name.value.is_empty() {
                p.push(format!("{base}.name"), line_of(&name), "must not be empty");
            }
            Some(NodeMatcher::Name(name.value))
        }
        // Compiled once as written (so errors quote the user's pattern), then anchored.
        (None, Some(re), None) => {
            let compiled =
                Regex::new(&re.value).and_then(|_| Regex::new(&format!("^(?:{})$", re.value)));
            match compiled {
                Ok(r) => Some(NodeMatcher::NameRegex(r)),
                Err(err) => {
                    let msg = format!("invalid regex {:?}: {err}", re.value);
                    p.push(format!("{base}.nameRegex"), line_of(&re), msg);
                    None
                }
            }
        }
        (None, None, Some(sel)) => {
            let mut labels = BTreeMap::new();
            for (k, v) in sel.value.match_labels {
                let path = format!("{base}.selector.matchLabels.{k:?}");
                if let Err(msg) = check_label_key(&k) {
                    p.push(path.clone(), line_of(&v), msg);
                }
                match label_text(&v) {
                    Ok(text) => {
                        labels.insert(k, text);
                    }
                    Err(msg) => p.push(path, line_of(&v), msg),
                }
            }
            Some(NodeMatcher::Selector(labels))
        }
        _ if e.matcher_refused => None,
        _ => {
            p.push(
                base.clone(),
                line,
                "exactly one of name, nameRegex, selector must be set",
            );
            None
        }
    };

    let mut addresses = Vec::new();
    for (j, a) in &e.addresses {
        let path = format!("{base}.addresses[{j}]");
        let aline = line_of(a);
        match a.value.type_.parse::<AddressType>() {
            Ok(t) if t.is_ip() => match parse_ip(&a.value.address) {
                Some(ip) => addresses.push(InventoryAddress {
                    type_: t,
                    address: ip.to_string(),
                }),
                None => p.push(
                    format!("{path}.address"),
                    aline,
                    format!(
                        "{:?} is not a valid {t} (one IP address, no prefix length)",
                        a.value.address
                    ),
                ),
            },
            Ok(t) => {
                if is_plausible_name(&a.value.address) {
                    addresses.push(InventoryAddress {
                        type_: t,
                        address: a.value.address.clone(),
                    });
                } else {
                    p.push(
                        format!("{path}.address"),
                        aline,
                        format!(
                            "{:?} is not a valid {t} (empty, or contains whitespace or commas)",
                            a.value.address
                        ),
                    );
                }
            }
            Err(err) => p.push(format!("{path}.type"), aline, err.to_string()),
        }
    }

    let (provider_id, pline) = text_of(e.provider_id);
    // An entry matching one node by name may give it a fixed providerID; one matching
    // several nodes must tell them apart with {node}.
    let one_node = matches!(matcher, Some(NodeMatcher::Name(_)));
    if !provider_id.is_empty()
        && let Err(msg) = check_provider_id_template(&provider_id).and_then(|()| {
            if one_node {
                Ok(())
            } else {
                check_has_node(&provider_id)
            }
        })
    {
        p.push(format!("{base}.providerID"), pline, msg);
    }
    let mut label_setting = |key: &str, v: Option<Spanned<String>>| {
        let (value, vline) = text_of(v);
        if let Err(msg) = check_label_value(&value) {
            let msg = format!("{msg} (it becomes a label value)");
            p.push(format!("{base}.{key}"), vline, msg);
        }
        value
    };
    let instance_type = label_setting("instanceType", e.instance_type);
    let zone = label_setting("zone", e.zone);
    let region = label_setting("region", e.region);
    let labels = validate_labels(&format!("{base}.labels"), e.labels, p);

    if p.0.len() > before {
        return None;
    }
    Some(InventoryEntry {
        matcher: matcher?,
        addresses,
        provider_id,
        instance_type,
        zone,
        region,
        labels,
    })
}

/// Two entries with the same `name`: the first matching entry wins, so the later one could
/// never apply; refusing it avoids a silently ignored block of settings. `first` maps each
/// name seen so far to its entry index.
pub(super) fn check_duplicate_name(
    i: usize,
    entry: &Spanned<RawInventoryEntry>,
    first: &mut BTreeMap<String, usize>,
    p: &mut Problems,
) {
    let Some(name) = entry.value.name.as_ref() else {
        return;
    };
    match first.get(&name.value) {
        Some(j) => p.push(
            format!("inventory[{i}].name"),
            line_of(name),
            format!(
                "{:?} is already the name of inventory[{j}]; this entry can never match (the first matching entry wins): merge the two",
                name.value
            ),
        ),
        None => {
            first.insert(name.value.clone(), i);
        }
    }
}
