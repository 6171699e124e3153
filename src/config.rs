//! The bare-ccm configuration file: schema, defaults (which reproduce k3s's embedded CCM)
//! and validation with field paths, shared by `run`, `explain`, `check-config` and `doctor`.
//!
//! Parsing happens in two steps: serde reads the YAML into `Raw*` structs (unknown keys and
//! wrong types are errors with a line number), then [`validate`] checks every value and
//! collects *all* problems, each naming its key path, so one `check-config` run shows
//! everything to fix.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::resolve::AddressSource;
use crate::resolve::addresses::{AddressType, is_plausible_name, parse_ip};
use crate::resolve::labels::{check_label_key, check_label_value, check_settable_label_key};

/// The default providerID template, k3s's own scheme.
pub const DEFAULT_PROVIDER_ID: &str = "k3s://{node}";
/// The default instance type, as k3s's embedded CCM reports it.
pub const DEFAULT_INSTANCE_TYPE: &str = "k3s";
/// The placeholder replaced by the node name in providerID templates.
pub const NODE_PLACEHOLDER: &str = "{node}";
/// The default of `k3sAgentWait`. The k3s agent describes its node within a second of the
/// kubelet's registration (it watches for the Node, k3s `pkg/agent/run.go` `configureNode`),
/// and the server adds its role labels within a second more (`pkg/server/server.go`
/// `setNodeLabelsAndAnnotations` polls each second); 30 s covers an agent slowed by a busy
/// host without keeping a node without k3s's description tainted for long.
pub const DEFAULT_K3S_AGENT_WAIT: Duration = Duration::from_secs(30);
/// The largest `k3sAgentWait`: k3s >= 1.28.10 shuts itself down when its node is still
/// tainted 15 minutes after start, so a wait must end well before that.
pub const MAX_K3S_AGENT_WAIT: Duration = Duration::from_secs(600);

/// The parsed, validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Template of `spec.providerID`; `{node}` is the node name; "" never sets one.
    pub provider_id: String,
    /// Instance type when neither the node label nor the inventory gives one; "" for none.
    pub instance_type: String,
    /// Default zone; "" for none.
    pub zone: String,
    /// Default region; "" for none.
    pub region: String,
    /// Address sources in priority order.
    pub address_sources: Vec<AddressSource>,
    /// How the kubelet's provided-node-ip annotation constrains the addresses.
    pub provided_node_ip: ProvidedNodeIpMode,
    /// Refuse to initialise a node without an InternalIP.
    pub require_internal_ip: bool,
    /// Order IPv6 before IPv4 inside each address type.
    pub prefer_ipv6: bool,
    /// Labels added to every node that lacks them.
    pub extra_labels: BTreeMap<String, String>,
    /// Per-node data; the first matching entry applies.
    pub inventory: Vec<InventoryEntry>,
    /// How long a tainted k3s node may wait, after its registration, for the k3s agent's
    /// description before it is initialised anyway; zero never waits.
    pub k3s_agent_wait: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            provider_id: DEFAULT_PROVIDER_ID.to_string(),
            instance_type: DEFAULT_INSTANCE_TYPE.to_string(),
            zone: String::new(),
            region: String::new(),
            address_sources: AddressSource::CONFIGURABLE.to_vec(),
            provided_node_ip: ProvidedNodeIpMode::Strict,
            require_internal_ip: true,
            prefer_ipv6: false,
            extra_labels: BTreeMap::new(),
            inventory: Vec::new(),
            k3s_agent_wait: DEFAULT_K3S_AGENT_WAIT,
        }
    }
}

/// `providedNodeIP`: what to do when the kubelet's `--node-ip` disagrees with the addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProvidedNodeIpMode {
    /// Apply the upstream rule; a mismatch keeps the node uninitialised.
    #[default]
    Strict,
    /// Apply the rule when it matches; a mismatch is a warning and the list stays unfiltered.
    Prefer,
    /// Do not look at the annotation for filtering.
    Ignore,
}

impl ProvidedNodeIpMode {
    /// The config spelling, for messages and `explain`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProvidedNodeIpMode::Strict => "strict",
            ProvidedNodeIpMode::Prefer => "prefer",
            ProvidedNodeIpMode::Ignore => "ignore",
        }
    }
}

/// One `inventory` entry: which nodes it matches and what it sets for them.
#[derive(Clone, Debug, PartialEq)]
pub struct InventoryEntry {
    /// Which nodes the entry applies to.
    pub matcher: NodeMatcher,
    /// Ordered, typed addresses (IPs canonical).
    pub addresses: Vec<InventoryAddress>,
    /// providerID template override; "" for none.
    pub provider_id: String,
    /// Instance type override; "" for none.
    pub instance_type: String,
    /// Zone override; "" for none.
    pub zone: String,
    /// Region override; "" for none.
    pub region: String,
    /// Labels added to matching nodes that lack them.
    pub labels: BTreeMap<String, String>,
}

/// How an inventory entry selects nodes.
#[derive(Clone, Debug)]
pub enum NodeMatcher {
    /// Exact node name.
    Name(String),
    /// Regex matched against the whole node name (compiled anchored).
    NameRegex(Regex),
    /// Every listed label must be present with the given value.
    Selector(BTreeMap<String, String>),
}

impl PartialEq for NodeMatcher {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (NodeMatcher::Name(a), NodeMatcher::Name(b)) => a == b,
            (NodeMatcher::NameRegex(a), NodeMatcher::NameRegex(b)) => a.as_str() == b.as_str(),
            (NodeMatcher::Selector(a), NodeMatcher::Selector(b)) => a == b,
            _ => false,
        }
    }
}

impl NodeMatcher {
    /// Whether a node with this name and these labels is selected.
    pub fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        match self {
            NodeMatcher::Name(n) => n == name,
            NodeMatcher::NameRegex(re) => re.is_match(name),
            NodeMatcher::Selector(sel) => sel.iter().all(|(k, v)| labels.get(k) == Some(v)),
        }
    }
}

impl fmt::Display for NodeMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeMatcher::Name(n) => write!(f, "name {n}"),
            // The stored regex is anchored as `^(?:...)$`; show what the user wrote.
            NodeMatcher::NameRegex(re) => {
                let s = re.as_str();
                let inner = s
                    .strip_prefix("^(?:")
                    .and_then(|s| s.strip_suffix(")$"))
                    .unwrap_or(s);
                write!(f, "nameRegex {inner}")
            }
            NodeMatcher::Selector(sel) => {
                let parts: Vec<String> = sel.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "selector {{{}}}", parts.join(","))
            }
        }
    }
}

/// One typed inventory address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryAddress {
    /// The NodeAddress type.
    pub type_: AddressType,
    /// The address, canonical when an IP.
    pub address: String,
}

/// One validation problem, located by key path and, when known, line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Key path, e.g. `inventory[2].nameRegex`.
    pub path: String,
    /// 1-based line in the file, when the YAML parser reported one.
    pub line: Option<u64>,
    /// What is wrong and, where useful, how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not YAML, or YAML that does not fit the schema (unknown key, wrong type).
    #[error("invalid config{}: {message}", in_file(file))]
    Parse {
        /// The file, when the text came from [`Config::load`].
        file: Option<PathBuf>,
        /// 1-based line of the problem, when known.
        line: Option<u64>,
        /// The parser's message, with a snippet of the offending line.
        message: String,
    },
    /// Well-formed YAML with invalid values: every problem found.
    #[error("invalid config{}:\n{}", in_file(file), problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file, when the text came from [`Config::load`].
        file: Option<PathBuf>,
        /// Every problem, in file order of the keys.
        problems: Vec<ConfigProblem>,
    },
}

/// " in FILE" for messages, or nothing.
fn in_file(file: &Option<PathBuf>) -> String {
    file.as_ref()
        .map(|f| format!(" in {}", f.display()))
        .unwrap_or_default()
}

impl Config {
    /// Parses and validates YAML text. An empty document gives the defaults.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = if is_blank_yaml(text) {
            RawConfig::default()
        } else {
            serde_saphyr::from_str_with_options(text, parse_options()).map_err(|e| {
                ConfigError::Parse {
                    file: None,
                    line: e.location().map(|l| l.line()).filter(|l| *l > 0),
                    message: e.to_string(),
                }
            })?
        };
        validate(raw)
    }

    /// Reads and parses a config file; errors name the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_yaml(&text).map_err(|e| match e {
            ConfigError::Parse { line, message, .. } => ConfigError::Parse {
                file: Some(path.to_path_buf()),
                line,
                // The parser's snippet header names its input "<input>".
                message: message.replace("<input>", &path.display().to_string()),
            },
            ConfigError::Invalid { problems, .. } => ConfigError::Invalid {
                file: Some(path.to_path_buf()),
                problems,
            },
            read => read,
        })
    }
}

/// The YAML reading rules: only YAML 1.2 booleans (`true`/`false`, not `yes`/`on`), so a
/// plain `yes` is a string; [`strict_bool`] and [`RawLabelValue`] then refuse any scalar of
/// the wrong kind instead of converting it.
fn parse_options() -> serde_saphyr::Options {
    serde_saphyr::options! { strict_booleans: true }
}

/// True when the text holds no YAML content (only blanks, comments, document markers).
fn is_blank_yaml(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(rename = "providerID")]
    provider_id: Option<Spanned<String>>,
    #[serde(rename = "instanceType")]
    instance_type: Option<Spanned<String>>,
    zone: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    #[serde(rename = "addressSources")]
    address_sources: Option<Vec<Spanned<String>>>,
    #[serde(rename = "providedNodeIP")]
    provided_node_ip: Option<ProvidedNodeIpMode>,
    #[serde(
        rename = "requireInternalIP",
        default,
        deserialize_with = "require_internal_ip"
    )]
    require_internal_ip: Option<bool>,
    #[serde(rename = "preferIPv6", default, deserialize_with = "prefer_ipv6")]
    prefer_ipv6: Option<bool>,
    #[serde(rename = "extraLabels", default, deserialize_with = "null_as_default")]
    extra_labels: BTreeMap<String, Spanned<RawLabelValue>>,
    #[serde(default, deserialize_with = "null_as_default")]
    inventory: Vec<Spanned<RawInventoryEntry>>,
    #[serde(rename = "k3sAgentWait")]
    k3s_agent_wait: Option<Spanned<RawLabelValue>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventoryEntry {
    name: Option<Spanned<String>>,
    #[serde(rename = "nameRegex")]
    name_regex: Option<Spanned<String>>,
    selector: Option<Spanned<RawSelector>>,
    #[serde(default, deserialize_with = "null_as_default")]
    addresses: Vec<Spanned<RawAddress>>,
    #[serde(rename = "providerID")]
    provider_id: Option<Spanned<String>>,
    #[serde(rename = "instanceType")]
    instance_type: Option<Spanned<String>>,
    zone: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "null_as_default")]
    labels: BTreeMap<String, Spanned<RawLabelValue>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSelector {
    #[serde(rename = "matchLabels", default, deserialize_with = "null_as_default")]
    match_labels: BTreeMap<String, Spanned<RawLabelValue>>,
}

/// A label value as written: YAML gives `example.com/gpu: true` a boolean and `rack: 7` a
/// number, and a label value is a string, so a scalar of another kind is kept apart here
/// and refused by validation with its key path ("quote it") instead of being converted.
#[derive(Debug)]
enum RawLabelValue {
    /// A string scalar (quoted, or plain text that is not a boolean, number or null).
    Text(String),
    /// Any other scalar, as written back in YAML.
    NotText(String),
}

impl<'de> Deserialize<'de> for RawLabelValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawLabelValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a label value (a string)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawLabelValue, E> {
                Ok(RawLabelValue::Text(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<RawLabelValue, E> {
                Ok(RawLabelValue::NotText(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawLabelValue, E> {
                Ok(RawLabelValue::NotText(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawLabelValue, E> {
                Ok(RawLabelValue::NotText(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<RawLabelValue, E> {
                Ok(RawLabelValue::NotText(v.to_string()))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<RawLabelValue, E> {
                Ok(RawLabelValue::NotText("null".to_string()))
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<RawLabelValue, E> {
                self.visit_unit()
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `requireInternalIP`, read with [`strict_bool`].
fn require_internal_ip<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    strict_bool(d, "requireInternalIP")
}

/// `preferIPv6`, read with [`strict_bool`].
fn prefer_ipv6<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    strict_bool(d, "preferIPv6")
}

/// Reads a boolean setting: only an unquoted `true`/`false` (YAML 1.2). serde-saphyr
/// otherwise converts quoted `"yes"`/`"true"` and YAML 1.1 `yes`/`on` to booleans, so a
/// value meant as text would silently switch a setting. Empty means "not set".
fn strict_bool<'de, D: serde::Deserializer<'de>>(
    d: D,
    key: &'static str,
) -> Result<Option<bool>, D::Error> {
    struct Visitor(&'static str);
    impl serde::de::Visitor<'_> for Visitor {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{}: true or false, unquoted", self.0)
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Option<bool>, E> {
            Ok(Some(v))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Option<bool>, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Option<bool>, E> {
            Ok(None)
        }
    }
    d.deserialize_any(Visitor(key))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAddress {
    #[serde(rename = "type")]
    type_: String,
    address: String,
}

/// Reads an empty YAML value (`key:` with nothing after it) as the type's default, so a
/// section whose entries are all commented out is not an error.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// Collects problems while validating.
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn push(&mut self, path: impl Into<String>, line: Option<u64>, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            path: path.into(),
            line,
            message: message.into(),
        });
    }
}

/// The line of a spanned value, when the parser knew it.
fn line_of<T>(s: &Spanned<T>) -> Option<u64> {
    Some(s.referenced.line()).filter(|l| *l > 0)
}

fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let mut p = Problems(Vec::new());
    let defaults = Config::default();

    let provider_id = match raw.provider_id {
        Some(t) => {
            if let Err(msg) = check_provider_id_template(&t.value) {
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
    let address_sources = match raw.address_sources {
        Some(list) if list.is_empty() && require_internal_ip => {
            p.push(
                "addressSources",
                None,
                "an empty list can give no node an InternalIP while requireInternalIP is true; list at least one source",
            );
            Vec::new()
        }
        Some(list) => validate_sources(&list, &mut p),
        None => defaults.address_sources,
    };

    let extra_labels = validate_labels("extraLabels", raw.extra_labels, &mut p);
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

    let mut names = BTreeMap::new();
    let inventory = raw
        .inventory
        .into_iter()
        .enumerate()
        .filter_map(|(i, e)| {
            check_duplicate_name(i, &e, &mut names, &mut p);
            validate_entry(i, e, &mut p)
        })
        .collect();

    if !p.0.is_empty() {
        return Err(ConfigError::Invalid {
            file: None,
            problems: p.0,
        });
    }
    Ok(Config {
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
    })
}

impl Config {
    /// What `check-config` prints about a valid file beyond "OK": the settings whose
    /// effective value is not written out in it (the implied `k3s-annotations` rank).
    pub fn effective_summary(&self) -> String {
        let order: Vec<&str> = self.address_sources.iter().map(|s| s.as_str()).collect();
        format!(
            "address sources, highest priority first: {}\nk3sAgentWait: {}s",
            order.join(", "),
            self.k3s_agent_wait.as_secs_f64()
        )
    }
}

/// `k3sAgentWait`: a duration with its unit (`30s`, `1m`, `1m30s`), or `0`; at most
/// [`MAX_K3S_AGENT_WAIT`].
fn k3s_agent_wait(value: &RawLabelValue) -> Result<Duration, String> {
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

fn validate_sources(list: &[Spanned<String>], p: &mut Problems) -> Vec<AddressSource> {
    with_implied_k3s_annotations(listed_sources(list, p))
}

/// Configs written before `k3s-annotations` existed list `annotations` for both key sets.
/// Such a list keeps reading the `k3s.io/*` keys, ranked as the default ranks them: right
/// after `annotations` or `k3s-node-args`, whichever comes later. A list naming
/// `k3s-annotations` itself, or not naming `annotations`, is taken as written.
pub fn with_implied_k3s_annotations(mut sources: Vec<AddressSource>) -> Vec<AddressSource> {
    let position = |src| sources.iter().position(|s| *s == src);
    if position(AddressSource::K3sAnnotations).is_some() {
        return sources;
    }
    let Some(annotations) = position(AddressSource::Annotations) else {
        return sources;
    };
    let after = position(AddressSource::K3sNodeArgs).map_or(annotations, |n| n.max(annotations));
    sources.insert(after + 1, AddressSource::K3sAnnotations);
    sources
}

/// The listed sources, each checked; problems are collected.
fn listed_sources(list: &[Spanned<String>], p: &mut Problems) -> Vec<AddressSource> {
    let mut out: Vec<AddressSource> = Vec::new();
    for (i, s) in list.iter().enumerate() {
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
fn validate_labels(
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
fn label_text(value: &Spanned<RawLabelValue>) -> Result<String, String> {
    match &value.value {
        RawLabelValue::Text(text) => check_label_value(text).map(|()| text.clone()),
        RawLabelValue::NotText(v) => Err(format!(
            "label value {v} is not a string: quote it (\"{v}\")"
        )),
    }
}

/// The text and line of an optional spanned string; "" and no line when absent.
fn text_of(v: Option<Spanned<String>>) -> (String, Option<u64>) {
    v.map(|v| {
        let line = line_of(&v);
        (v.value, line)
    })
    .unwrap_or_default()
}

fn validate_entry(
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
    for (j, a) in e.addresses.iter().enumerate() {
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
    if !provider_id.is_empty()
        && let Err(msg) = check_provider_id_template(&provider_id)
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
fn check_duplicate_name(
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

/// Expands a providerID template for one node.
pub fn expand_provider_id(template: &str, node: &str) -> String {
    template.replace(NODE_PLACEHOLDER, node)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(yaml: &str) -> Vec<String> {
        match Config::from_yaml(yaml) {
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.iter().map(ToString::to_string).collect()
            }
            other => panic!("expected validation problems, got {other:?}"),
        }
    }

    #[test]
    fn empty_file_gives_k3s_compatible_defaults() {
        for text in ["", "\n# only a comment\n", "---\n"] {
            let c = Config::from_yaml(text).unwrap();
            assert_eq!(c, Config::default());
        }
        let c = Config::default();
        assert_eq!(c.provider_id, "k3s://{node}");
        assert_eq!(c.instance_type, "k3s");
        assert_eq!(c.zone, "");
        assert_eq!(
            c.address_sources,
            vec![
                AddressSource::Inventory,
                AddressSource::Annotations,
                AddressSource::K3sNodeArgs,
                AddressSource::K3sAnnotations,
                AddressSource::ProvidedNodeIp,
                AddressSource::Kubelet
            ]
        );
        assert_eq!(c.provided_node_ip, ProvidedNodeIpMode::Strict);
        assert!(c.require_internal_ip);
        assert!(!c.prefer_ipv6);
        assert_eq!(c.k3s_agent_wait, Duration::from_secs(30));
    }

    /// Issue 11 item 2: stale `k3s.io/*` keys must rank below node-args, and a list written
    /// before `k3s-annotations` existed keeps reading them.
    #[test]
    fn k3s_annotations_rank_below_node_args_unless_listed() {
        use AddressSource::*;
        for (listed, effective) in [
            (
                "[inventory, annotations, k3s-node-args, provided-node-ip, kubelet]",
                vec![
                    Inventory,
                    Annotations,
                    K3sNodeArgs,
                    K3sAnnotations,
                    ProvidedNodeIp,
                    Kubelet,
                ],
            ),
            (
                "[annotations, kubelet]",
                vec![Annotations, K3sAnnotations, Kubelet],
            ),
            (
                "[k3s-node-args, annotations]",
                vec![K3sNodeArgs, Annotations, K3sAnnotations],
            ),
            (
                "[annotations, k3s-annotations, k3s-node-args]",
                vec![Annotations, K3sAnnotations, K3sNodeArgs],
            ),
            (
                "[k3s-annotations, annotations]",
                vec![K3sAnnotations, Annotations],
            ),
            ("[k3s-node-args, kubelet]", vec![K3sNodeArgs, Kubelet]),
        ] {
            let c = Config::from_yaml(&format!("addressSources: {listed}\n")).unwrap();
            assert_eq!(c.address_sources, effective, "{listed}");
        }
    }

    #[test]
    fn k3s_agent_wait_takes_a_duration_with_its_unit() {
        for (yaml, wait) in [
            ("k3sAgentWait: 45s\n", 45),
            ("k3sAgentWait: 2m\n", 120),
            ("k3sAgentWait: 1m30s\n", 90),
            ("k3sAgentWait: 0s\n", 0),
            ("k3sAgentWait: 0\n", 0),
        ] {
            let c = Config::from_yaml(yaml).unwrap();
            assert_eq!(c.k3s_agent_wait, Duration::from_secs(wait), "{yaml}");
        }
        assert_eq!(
            problems("k3sAgentWait: 30\n"),
            [
                "k3sAgentWait: 30 is not a duration: give its unit, e.g. 30s or 1m (0 never waits) (line 1)"
            ]
        );
        assert_eq!(
            problems("k3sAgentWait: soon\n"),
            [
                "k3sAgentWait: \"soon\" is not a duration: use e.g. 30s, 1m or 1m30s (0s never waits) (line 1)"
            ]
        );
        assert!(problems("k3sAgentWait: 11m\n")[0].contains("longer than 600s"));
        assert!(problems("k3sAgentWait: -5s\n")[0].contains("is not a duration"));
    }

    #[test]
    fn the_documented_example_parses() {
        let yaml = r#"
providerID: "k3s://{node}"
instanceType: "k3s"
zone: ""
region: ""
addressSources: [inventory, annotations, k3s-node-args, provided-node-ip, kubelet]
providedNodeIP: strict
requireInternalIP: true
preferIPv6: false
extraLabels: {}
inventory:
  - name: node-a
    addresses:
      - {type: InternalIP, address: 10.0.0.5}
      - {type: ExternalIP, address: 203.0.113.5}
    providerID: ""
    instanceType: ""
    zone: ""
    region: ""
    labels: {}
"#;
        let c = Config::from_yaml(yaml).unwrap();
        assert_eq!(c.inventory.len(), 1);
        let e = &c.inventory[0];
        assert_eq!(e.matcher, NodeMatcher::Name("node-a".into()));
        assert_eq!(
            e.addresses,
            vec![
                InventoryAddress {
                    type_: AddressType::InternalIP,
                    address: "10.0.0.5".into()
                },
                InventoryAddress {
                    type_: AddressType::ExternalIP,
                    address: "203.0.113.5".into()
                },
            ]
        );
        assert_eq!(
            Config {
                inventory: vec![],
                ..c
            },
            Config::default()
        );
    }

    #[test]
    fn all_keys_are_read() {
        let yaml = r#"
providerID: "metal://dc1/{node}"
instanceType: m1
zone: z1
region: r1
addressSources: [k3s-node-args, kubelet]
providedNodeIP: prefer
requireInternalIP: false
preferIPv6: true
extraLabels: {example.com/managed: "yes"}
inventory:
  - nameRegex: "gpu-[0-9]+"
    instanceType: gpu
    labels: {example.com/gpu: "true"}
  - selector: {matchLabels: {example.com/rack: r7}}
    zone: z7
"#;
        let c = Config::from_yaml(yaml).unwrap();
        assert_eq!(c.provider_id, "metal://dc1/{node}");
        assert_eq!(
            (c.instance_type.as_str(), c.zone.as_str(), c.region.as_str()),
            ("m1", "z1", "r1")
        );
        assert_eq!(
            c.address_sources,
            vec![AddressSource::K3sNodeArgs, AddressSource::Kubelet]
        );
        assert_eq!(c.provided_node_ip, ProvidedNodeIpMode::Prefer);
        assert!(!c.require_internal_ip);
        assert!(c.prefer_ipv6);
        assert_eq!(
            c.extra_labels
                .get("example.com/managed")
                .map(String::as_str),
            Some("yes")
        );
        assert_eq!(c.inventory[0].instance_type, "gpu");
        assert_eq!(c.inventory[1].zone, "z7");
        assert_eq!(c.inventory[0].matcher.to_string(), "nameRegex gpu-[0-9]+");
        assert_eq!(
            c.inventory[1].matcher.to_string(),
            "selector {example.com/rack=r7}"
        );
    }

    #[test]
    fn name_regex_matches_the_whole_name_only() {
        let c = Config::from_yaml("inventory:\n  - nameRegex: 'web-[0-9]'\n").unwrap();
        let m = &c.inventory[0].matcher;
        let none = BTreeMap::new();
        assert!(m.matches("web-1", &none));
        assert!(!m.matches("web-12", &none));
        assert!(!m.matches("xweb-1", &none));
    }

    #[test]
    fn selector_needs_every_label() {
        let c = Config::from_yaml("inventory:\n  - selector: {matchLabels: {a: '1', b: '2'}}\n")
            .unwrap();
        let m = &c.inventory[0].matcher;
        let labels = |l: &[(&str, &str)]| {
            l.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(m.matches("n", &labels(&[("a", "1"), ("b", "2"), ("c", "3")])));
        assert!(!m.matches("n", &labels(&[("a", "1")])));
        assert!(!m.matches("n", &labels(&[("a", "1"), ("b", "3")])));
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        for (yaml, line, key) in [
            ("zone: a\nbogus: 1\n", 2, "bogus"),
            ("inventory:\n  - name: a\n    adresses: []\n", 3, "adresses"),
            (
                "inventory:\n  - selector: {matchExpressions: []}\n",
                2,
                "matchExpressions",
            ),
            (
                "inventory:\n  - name: a\n    addresses: [{type: InternalIP, address: 10.0.0.1, extra: 1}]\n",
                3,
                "extra",
            ),
        ] {
            match Config::from_yaml(yaml) {
                Err(ConfigError::Parse {
                    line: l, message, ..
                }) => {
                    assert_eq!(l, Some(line), "{message}");
                    assert!(
                        message.contains(&format!("unknown field `{key}`")),
                        "{message}"
                    );
                }
                other => panic!("{yaml:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn wrong_types_and_bad_modes_are_parse_errors() {
        for yaml in [
            "providedNodeIP: sometimes\n",
            "requireInternalIP: maybe\n",
            "inventory: {}\n",
            "zone: [a]\n",
        ] {
            assert!(
                matches!(
                    Config::from_yaml(yaml),
                    Err(ConfigError::Parse { line: Some(1), .. })
                ),
                "{yaml:?}"
            );
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_key_path_and_line() {
        let yaml = r#"providerID: "k3s://{name}"
addressSources: [inventory, foo, kubelet, kubelet, node-name]
extraLabels:
  kubernetes.io/foo: x
  example.com/ok: "-bad-"
  "bad key!": v
inventory:
  - name: a
    nameRegex: b
  - nameRegex: "("
  - name: c
    addresses:
      - {type: InternalIP, address: 10.0.0.300}
      - {type: ExternalIP, address: "203.0.113.5/32"}
      - {type: PublicIP, address: 1.2.3.4}
      - {type: Hostname, address: "a b"}
    providerID: "x {node}"
    labels: {k8s.io/x: y}
  - {}
  - selector: {matchLabels: {"-x": y}}
"#;
        let got = problems(yaml);
        let expected = [
            r#"providerID: "k3s://{name}" has an unknown placeholder (only {node} is supported) (line 1)"#,
            r#"addressSources[1]: unknown source "foo" (expected one of inventory, annotations, k3s-node-args, k3s-annotations, provided-node-ip, kubelet) (line 2)"#,
            r#"addressSources[3]: source "kubelet" is listed twice (line 2)"#,
            r#"addressSources[4]: "node-name" is the built-in Hostname fallback, not a configurable source (expected one of inventory, annotations, k3s-node-args, k3s-annotations, provided-node-ip, kubelet) (line 2)"#,
            r#"extraLabels."bad key!": label key "bad key!": name part must be 1-63 characters of [A-Za-z0-9._-], starting and ending alphanumeric (line 6)"#,
            r#"extraLabels."example.com/ok": label value "-bad-" must be empty or 1-63 characters of [A-Za-z0-9._-], starting and ending alphanumeric (line 5)"#,
            r#"extraLabels."kubernetes.io/foo": label key "kubernetes.io/foo": keys under kubernetes.io/ or k8s.io/ (and subdomains) are refused; use your own prefix, or the instanceType/zone/region settings (line 4)"#,
            r#"inventory[0]: exactly one of name, nameRegex, selector must be set (line 8)"#,
            r#"inventory[2].addresses[0].address: "10.0.0.300" is not a valid InternalIP (one IP address, no prefix length) (line 13)"#,
            r#"inventory[2].addresses[1].address: "203.0.113.5/32" is not a valid ExternalIP (one IP address, no prefix length) (line 14)"#,
            r#"inventory[2].addresses[2].type: unknown address type "PublicIP" (expected one of InternalIP, ExternalIP, InternalDNS, ExternalDNS, Hostname) (line 15)"#,
            r#"inventory[2].addresses[3].address: "a b" is not a valid Hostname (empty, or contains whitespace or commas) (line 16)"#,
            r#"inventory[2].providerID: "x {node}" must not contain whitespace (line 17)"#,
            r#"inventory[2].labels."k8s.io/x": label key "k8s.io/x": keys under kubernetes.io/ or k8s.io/ (and subdomains) are refused; use your own prefix, or the instanceType/zone/region settings (line 18)"#,
            r#"inventory[3]: exactly one of name, nameRegex, selector must be set (line 19)"#,
            r#"inventory[4].selector.matchLabels."-x": label key "-x": name part must be 1-63 characters of [A-Za-z0-9._-], starting and ending alphanumeric (line 20)"#,
        ];
        let regex_problem = got
            .iter()
            .find(|p| p.starts_with("inventory[1].nameRegex: invalid regex \"(\": "));
        assert!(
            regex_problem.is_some_and(|p| p.contains("unclosed group")
                && !p.contains("^(?:")
                && p.ends_with("(line 10)")),
            "{got:#?}"
        );
        let rest: Vec<&String> = got
            .iter()
            .filter(|p| !p.starts_with("inventory[1]"))
            .collect();
        assert_eq!(rest, expected.iter().collect::<Vec<_>>(), "{got:#?}");
    }

    #[test]
    fn empty_sections_read_as_empty() {
        let c = Config::from_yaml(
            "zone:\nextraLabels:\ninventory:\n  - name: a\n    addresses:\n    labels:\n    zone:\n",
        )
        .unwrap();
        assert!(c.extra_labels.is_empty());
        assert_eq!(c.zone, "");
        assert!(c.inventory[0].addresses.is_empty() && c.inventory[0].labels.is_empty());
        assert_eq!(
            Config::from_yaml("inventory:\n").unwrap(),
            Config::default()
        );
    }

    #[test]
    fn instance_type_zone_and_region_must_be_label_values() {
        let yaml = "instanceType: \"bare metal\"\nzone: z1\nregion: \"-r\"\ninventory:\n  - name: a\n    zone: \"rack/7\"\n";
        let got = problems(yaml);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(
            got[0].starts_with("instanceType: label value \"bare metal\" must be empty or"),
            "{}",
            got[0]
        );
        assert!(
            got[0].ends_with("(it becomes a label value) (line 1)"),
            "{}",
            got[0]
        );
        assert!(
            got[1].starts_with("region: label value \"-r\""),
            "{}",
            got[1]
        );
        assert!(
            got[2].starts_with("inventory[0].zone: label value \"rack/7\""),
            "{}",
            got[2]
        );
    }

    #[test]
    fn booleans_must_be_unquoted_true_or_false() {
        for (yaml, key) in [
            ("requireInternalIP: \"yes\"\n", "requireInternalIP"),
            ("requireInternalIP: 'false'\n", "requireInternalIP"),
            ("preferIPv6: \"true\"\n", "preferIPv6"),
            ("preferIPv6: yes\n", "preferIPv6"),
            ("preferIPv6: on\n", "preferIPv6"),
            ("zone: z\npreferIPv6: 1\n", "preferIPv6"),
        ] {
            match Config::from_yaml(yaml) {
                Err(ConfigError::Parse { line, message, .. }) => {
                    assert_eq!(
                        line,
                        Some(yaml.lines().count() as u64),
                        "{yaml:?}: {message}"
                    );
                    assert!(
                        message.contains(&format!("expected {key}: true or false, unquoted")),
                        "{yaml:?}: {message}"
                    );
                }
                other => panic!("{yaml:?} must be refused, got {other:?}"),
            }
        }
        let c = Config::from_yaml("requireInternalIP: false\npreferIPv6: True\n").unwrap();
        assert!(!c.require_internal_ip && c.prefer_ipv6);
        let c = Config::from_yaml("requireInternalIP:\npreferIPv6: ~\n").unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn label_values_must_be_strings() {
        let yaml = "extraLabels:\n  example.com/a: true\n  example.com/b: 7\n  example.com/ok: \"true\"\ninventory:\n  - selector: {matchLabels: {example.com/rack: 7}}\n    labels:\n      example.com/c: null\n";
        assert_eq!(
            problems(yaml),
            vec![
                r#"extraLabels."example.com/a": label value true is not a string: quote it ("true") (line 2)"#,
                r#"extraLabels."example.com/b": label value 7 is not a string: quote it ("7") (line 3)"#,
                r#"inventory[0].selector.matchLabels."example.com/rack": label value 7 is not a string: quote it ("7") (line 6)"#,
                r#"inventory[0].labels."example.com/c": label value null is not a string: quote it ("null") (line 8)"#,
            ]
        );
        let c =
            Config::from_yaml("extraLabels: {example.com/ok: \"true\", example.com/yes: yes}\n")
                .unwrap();
        assert_eq!(c.extra_labels["example.com/ok"], "true");
        // YAML 1.2: a plain `yes` is text, not a boolean.
        assert_eq!(c.extra_labels["example.com/yes"], "yes");
    }

    #[test]
    fn inventory_problems_point_at_the_key_line() {
        let yaml = "inventory:\n  - name: a\n    providerID: \"a b\"\n    instanceType: \"x y\"\n    zone: \"-z\"\n    region: \"r/1\"\n  - nameRegex: \"(\"\n  - name: \"\"\n";
        let got = problems(yaml);
        let lines: Vec<(&str, &str)> = got
            .iter()
            .map(|p| {
                let path = p.split(':').next().unwrap_or_default();
                let line = p.rsplit("(line ").next().unwrap_or_default();
                (path, line)
            })
            .collect();
        assert_eq!(
            lines,
            vec![
                ("inventory[0].providerID", "3)"),
                ("inventory[0].instanceType", "4)"),
                ("inventory[0].zone", "5)"),
                ("inventory[0].region", "6)"),
                ("inventory[1].nameRegex", "7)"),
                ("inventory[2].name", "8)"),
            ],
            "{got:#?}"
        );
    }

    #[test]
    fn two_entries_with_the_same_name_are_refused() {
        let yaml =
            "inventory:\n  - name: a\n    zone: z1\n  - name: b\n  - zone: z2\n    name: a\n";
        assert_eq!(
            problems(yaml),
            vec![
                r#"inventory[2].name: "a" is already the name of inventory[0]; this entry can never match (the first matching entry wins): merge the two (line 6)"#
            ]
        );
    }

    #[test]
    fn duplicate_keys_are_refused() {
        assert!(matches!(
            Config::from_yaml("zone: a\nzone: b\n"),
            Err(ConfigError::Parse { line: Some(2), .. })
        ));
    }

    #[test]
    fn empty_address_sources_need_require_internal_ip_off() {
        assert_eq!(
            problems("addressSources: []\n"),
            vec![
                "addressSources: an empty list can give no node an InternalIP while requireInternalIP is true; list at least one source"
            ]
        );
        let c = Config::from_yaml("addressSources: []\nrequireInternalIP: false\n").unwrap();
        assert!(c.address_sources.is_empty());
    }

    #[test]
    fn empty_name_is_refused() {
        assert_eq!(
            problems("inventory:\n  - name: ''\n"),
            vec!["inventory[0].name: must not be empty (line 2)"]
        );
    }

    #[test]
    fn invalid_config_error_lists_every_problem() {
        let err = Config::from_yaml("addressSources: [a, b]\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("invalid config:\n  addressSources[0]: unknown source \"a\""),
            "{text}"
        );
        assert!(
            text.contains("\n  addressSources[1]: unknown source \"b\""),
            "{text}"
        );
    }

    #[test]
    fn load_reads_a_file_and_names_it_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "zone: z\n").unwrap();
        assert_eq!(Config::load(&path).unwrap().zone, "z");
        std::fs::write(&path, "zone: z\nbogus: 1\n").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        let shown = path.display().to_string();
        assert!(
            err.starts_with(&format!("invalid config in {shown}: ")),
            "{err}"
        );
        assert!(err.contains(&format!("--> {shown}:2:1")), "{err}");
        std::fs::write(&path, "addressSources: [x]\n").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("invalid config in {shown}:\n  addressSources[0]")),
            "{err}"
        );
        let missing = dir.path().join("missing.yaml");
        let err = Config::load(&missing).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read config file ") && err.contains("missing.yaml"),
            "{err}"
        );
    }

    #[test]
    fn provider_id_templates() {
        assert_eq!(check_provider_id_template("k3s://{node}"), Ok(()));
        assert_eq!(
            check_provider_id_template("metal://dc/{node}/{node}"),
            Ok(())
        );
        assert_eq!(check_provider_id_template(""), Ok(()));
        assert!(check_provider_id_template("a{b}").is_err());
        assert!(check_provider_id_template("a{node").is_err());
        assert_eq!(expand_provider_id("k3s://{node}", "n1"), "k3s://n1");
    }
}
