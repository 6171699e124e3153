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

use crate::facts::address::{AddressType, Cidr, is_plausible_name, parse_ip};
use crate::facts::interfaces::check_pattern;
use crate::facts::labels::{check_label_key, check_label_value, check_settable_label_key};

mod interfaces;
mod sources;

pub use interfaces::{InterfaceRule, InterfacesConfig, default_rules};
pub use sources::{AddressSource, UnknownAddressSource};

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
    /// How the `interfaces` source reads `bare-ccm agent`'s annotation.
    pub interfaces: InterfacesConfig,
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
            interfaces: InterfacesConfig::default(),
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
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
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

impl ConfigError {
    /// The problems as `check-config -o json` lists them: a parse or read error is one
    /// problem with an empty path.
    pub fn problems(&self) -> Vec<ConfigProblem> {
        match self {
            ConfigError::Invalid { problems, .. } => problems.clone(),
            ConfigError::Parse { line, message, .. } => vec![ConfigProblem {
                path: String::new(),
                line: *line,
                message: message.lines().next().unwrap_or_default().to_string(),
            }],
            ConfigError::Read { .. } => vec![ConfigProblem {
                path: String::new(),
                line: None,
                message: self.to_string(),
            }],
        }
    }
}

/// " in FILE" for messages, or nothing.
fn in_file(file: &Option<PathBuf>) -> String {
    file.as_ref()
        .map(|f| format!(" in {}", f.display()))
        .unwrap_or_default()
}

impl Config {
    /// Parses and validates YAML text. An empty document gives the defaults. Errors call
    /// the text `config.yaml` (the key of bare-ccm's ConfigMap).
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, None, 0)
    }

    /// Reads and parses a config file; errors name the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, Some(path), 0)
    }

    /// Parses and validates `text`, read from `file` (named in errors) where it starts after
    /// line `line_offset` (a `config.yaml` embedded in a manifest): every line in a problem
    /// is a line of `file`. Every problem is reported, not only the first; only YAML that
    /// does not parse at all stops at its first error.
    pub fn parse(text: &str, file: Option<&Path>, line_offset: u64) -> Result<Config, ConfigError> {
        let mut p = Problems(Vec::new());
        let raw = match parse_tree(text) {
            Ok(None) => RawConfig::default(),
            Ok(Some(root)) => read_config(&root, &mut p),
            Err(e) => {
                let name =
                    file.map_or_else(|| "config.yaml".to_string(), |f| f.display().to_string());
                let message = e.render_with_options(serde_saphyr::render_options! {
                    source_name: Some(name.as_str()),
                    line_offset: line_offset,
                });
                return Err(ConfigError::Parse {
                    file: file.map(Path::to_path_buf),
                    line: e
                        .location()
                        .map(|l| l.line())
                        .filter(|l| *l > 0)
                        .map(|l| l + line_offset),
                    message,
                });
            }
        };
        let config = validate(raw, &mut p);
        if p.0.is_empty() {
            return Ok(config);
        }
        let mut problems = p.0;
        for problem in &mut problems {
            problem.line = problem.line.map(|l| l + line_offset);
        }
        problems.sort_by_key(|problem| problem.line.unwrap_or(u64::MAX));
        Err(ConfigError::Invalid {
            file: file.map(Path::to_path_buf),
            problems,
        })
    }
}

/// The YAML reading rules: only YAML 1.2 booleans (`true`/`false`, not `yes`/`on`), so a
/// plain `yes` is a string; duplicate keys reach the schema walk, which reports them.
fn parse_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
    }
}

/// True when the text holds no YAML content (only blanks, comments, document markers).
fn is_blank_yaml(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    })
}

/// A value and the 1-based line where it starts (when the parser knew it).
#[derive(Clone, Debug, PartialEq)]
struct Spanned<T> {
    value: T,
    line: Option<u64>,
}

/// A YAML value as written, before the schema is applied: a scalar keeps what YAML made of
/// it, so a number or boolean where text is wanted can be refused ("quote it") rather
/// than converted, and a map keeps every entry, duplicates included, in file order.
#[derive(Clone, Debug, PartialEq)]
enum Yaml {
    Null,
    /// A string scalar (quoted, or plain text YAML reads as no other type).
    Text(String),
    Bool(bool),
    /// A number, as it reads back.
    Number(String),
    Seq(Vec<Spanned<Yaml>>),
    Map(Vec<(Spanned<Yaml>, Spanned<Yaml>)>),
}

impl<'de> Deserialize<'de> for Spanned<Yaml> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<Yaml>::deserialize(d)?;
        Ok(Spanned {
            line: Some(s.referenced.line()).filter(|l| *l > 0),
            value: s.value,
        })
    }
}

impl<'de> Deserialize<'de> for Yaml {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Yaml;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Yaml, E> {
                Ok(Yaml::Text(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Yaml, E> {
                Ok(Yaml::Bool(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Yaml, E> {
                Ok(Yaml::Number(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Yaml, E> {
                Ok(Yaml::Number(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Yaml, E> {
                Ok(Yaml::Number(v.to_string()))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Yaml, E> {
                Ok(Yaml::Null)
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Yaml, E> {
                Ok(Yaml::Null)
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Yaml, D::Error> {
                Yaml::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Yaml, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = a.next_element::<Spanned<Yaml>>()? {
                    items.push(item);
                }
                Ok(Yaml::Seq(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Yaml, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = a.next_key::<Spanned<Yaml>>()? {
                    entries.push((key, a.next_value::<Spanned<Yaml>>()?));
                }
                Ok(Yaml::Map(entries))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Yaml {
    /// What a message calls this kind of value.
    fn kind(&self) -> &'static str {
        match self {
            Yaml::Null => "nothing",
            Yaml::Text(_) => "a string",
            Yaml::Bool(_) => "a boolean",
            Yaml::Number(_) => "a number",
            Yaml::Seq(_) => "a list",
            Yaml::Map(_) => "a map",
        }
    }

    /// A scalar as written back (for keys and messages).
    fn scalar_text(&self) -> Option<String> {
        match self {
            Yaml::Text(s) | Yaml::Number(s) => Some(s.clone()),
            Yaml::Bool(b) => Some(b.to_string()),
            Yaml::Null => Some("null".into()),
            Yaml::Seq(_) | Yaml::Map(_) => None,
        }
    }
}

/// The YAML of a config as a tree; `None` for a document without content.
fn parse_tree(text: &str) -> Result<Option<Spanned<Yaml>>, serde_saphyr::Error> {
    if is_blank_yaml(text) {
        return Ok(None);
    }
    let root: Spanned<Yaml> = serde_saphyr::from_str_with_options(text, parse_options())?;
    Ok((root.value != Yaml::Null).then_some(root))
}

/// Where `check-config` found the config text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// The config YAML itself.
    pub text: String,
    /// Lines of the input before the config's first line (0 for a config file).
    pub line_offset: u64,
    /// `None` for a config file, else `ConfigMap NAMESPACE/NAME` (the key is [`CONFIG_KEY`]).
    pub config_map: Option<String>,
}

/// The ConfigMap that holds bare-ccm's config in the shipped manifests.
pub const CONFIG_MAP: &str = "bare-ccm-config";
/// Its key that holds the config file (mounted as `/etc/bare-ccm/config.yaml`).
pub const CONFIG_KEY: &str = "config.yaml";

/// Finds the config in `text`: a config file as it is; a ConfigMap document (its
/// [`CONFIG_KEY`]); or, in a manifest of several documents, the ConfigMap [`CONFIG_MAP`].
/// Lines of an embedded config are counted from the input's first line, so a problem's line
/// points into the manifest. YAML that does not parse is treated as a config file (its
/// parse error is then reported); `Err` says why no config was found.
pub fn locate_config(text: &str) -> Result<Located, String> {
    let as_file = Located {
        text: text.to_string(),
        line_offset: 0,
        config_map: None,
    };
    let Ok(docs) = serde_saphyr::from_multiple_with_options::<Spanned<Yaml>>(text, parse_options())
    else {
        return Ok(as_file);
    };
    let docs: Vec<&Spanned<Yaml>> = docs.iter().filter(|d| d.value != Yaml::Null).collect();
    let field = |doc: &Spanned<Yaml>, name: &str| -> Option<Spanned<Yaml>> {
        let Yaml::Map(entries) = &doc.value else {
            return None;
        };
        entries
            .iter()
            .find(|(k, _)| k.value == Yaml::Text(name.to_string()))
            .map(|(_, v)| v.clone())
    };
    let text_of = |v: Option<Spanned<Yaml>>| match v.map(|v| v.value) {
        Some(Yaml::Text(s)) => Some(s),
        _ => None,
    };
    let kind = |doc: &Spanned<Yaml>| text_of(field(doc, "kind"));
    let is_object = |doc: &Spanned<Yaml>| kind(doc).is_some() && field(doc, "apiVersion").is_some();
    if docs.len() <= 1 && !docs.iter().any(|d| is_object(d)) {
        return Ok(as_file);
    }
    let config_maps: Vec<&Spanned<Yaml>> = docs
        .iter()
        .copied()
        .filter(|d| kind(d).as_deref() == Some("ConfigMap"))
        .collect();
    let name_of = |doc: &Spanned<Yaml>| {
        let meta = field(doc, "metadata");
        let name = meta.as_ref().and_then(|m| text_of(field(m, "name")));
        let namespace = meta.as_ref().and_then(|m| text_of(field(m, "namespace")));
        (
            name.unwrap_or_default(),
            namespace.unwrap_or_else(|| "default".into()),
        )
    };
    let chosen = match config_maps.as_slice() {
        [only] if docs.len() == 1 => *only,
        _ => config_maps
            .iter()
            .copied()
            .find(|d| name_of(d).0 == CONFIG_MAP)
            .ok_or_else(|| {
                if docs.len() == 1 {
                    format!(
                        "it holds a {}, not a bare-ccm config or its ConfigMap",
                        kind(docs[0]).unwrap_or_default()
                    )
                } else {
                    format!(
                        "no ConfigMap {CONFIG_MAP} among its {} documents",
                        docs.len()
                    )
                }
            })?,
    };
    let (name, namespace) = name_of(chosen);
    let described = format!("ConfigMap {namespace}/{name}");
    let value = field(chosen, "data")
        .and_then(|data| field(&data, CONFIG_KEY))
        .ok_or_else(|| format!("{described} has no data key {CONFIG_KEY}"))?;
    let Yaml::Text(config) = &value.value else {
        return Err(format!("{described}: data.{CONFIG_KEY} is not a string"));
    };
    // A block scalar (`config.yaml: |`) starts on the line after its indicator and keeps
    // its lines; a scalar on the key's own line starts on that line.
    let line = value.line.unwrap_or(1);
    let indicator = text
        .lines()
        .nth(usize::try_from(line.saturating_sub(1)).unwrap_or(usize::MAX))
        .map(|l| l.split(" #").next().unwrap_or(l).trim_end())
        .is_some_and(|l| {
            l.rsplit_once(':').is_some_and(|(_, rest)| {
                let rest = rest.trim();
                rest.starts_with('|') || rest.starts_with('>')
            })
        });
    Ok(Located {
        text: config.clone(),
        line_offset: if indicator {
            line
        } else {
            line.saturating_sub(1)
        },
        config_map: Some(described),
    })
}

/// The entries of a map value, each key with its text; reports non-scalar keys and
/// repeated keys (keeping the first). `None`, with a problem, when `v` is not a map;
/// an empty list for `null` (a section whose entries are all commented out).
fn map_entries<'y>(
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
fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else {
        format!("{base}.{key}")
    }
}

/// A key that no schema field has: named with the accepted ones, and the likely intended
/// one when only the case differs (`providerId`).
fn unknown_key(path: &str, key: &Spanned<String>, known: &[&str], p: &mut Problems) {
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
fn scalar_value(path: &str, v: &Spanned<Yaml>, p: &mut Problems) -> Option<Spanned<RawLabelValue>> {
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

fn text_value(path: &str, v: &Spanned<Yaml>, p: &mut Problems) -> Option<Spanned<String>> {
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
fn bool_value(path: &str, v: &Spanned<Yaml>, p: &mut Problems) -> Option<bool> {
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

/// A list setting: its items, or an empty list when null.
fn list_items<'y>(
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
fn label_map(
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

const TOP_KEYS: [&str; 12] = [
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

const INTERFACES_KEYS: [&str; 2] = ["ignore", "rules"];

const ENTRY_KEYS: [&str; 9] = [
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
fn read_config(root: &Spanned<Yaml>, p: &mut Problems) -> RawConfig {
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
                raw.address_sources = Some(
                    items
                        .iter()
                        .enumerate()
                        .filter_map(|(i, item)| {
                            text_value(&format!("{path}[{i}]"), item, p).map(|s| (i, s))
                        })
                        .collect(),
                );
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

fn read_entry(
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
fn read_interfaces(base: &str, v: &Spanned<Yaml>, p: &mut Problems) -> RawInterfaces {
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
                out.ignore = Some(
                    items
                        .iter()
                        .enumerate()
                        .filter_map(|(i, item)| {
                            text_value(&format!("{path}[{i}]"), item, p).map(|s| (i, s))
                        })
                        .collect(),
                );
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

/// One `interfaces.rules` entry: both `cidr` and `type` are required.
fn read_rule(path: &str, v: &Spanned<Yaml>, p: &mut Problems) -> Option<RawRule> {
    let entries = map_entries(path, v, p)?;
    let (mut cidr, mut type_) = (None, None);
    let mut refused = false;
    for (key, value) in entries {
        let slot = match key.value.as_str() {
            "cidr" => &mut cidr,
            "type" => &mut type_,
            _ => {
                unknown_key(path, &key, &["cidr", "type"], p);
                continue;
            }
        };
        *slot = text_value(&join(path, &key.value), value, p);
        refused |= slot.is_none() && value.value != Yaml::Null;
    }
    match (cidr, type_) {
        (Some(cidr), Some(type_)) => Some(RawRule { cidr, type_ }),
        _ if refused => None,
        (c, _) => {
            let missing = if c.is_none() { "cidr" } else { "type" };
            p.push(
                join(path, missing),
                v.line,
                "missing: a rule needs a cidr and a type",
            );
            None
        }
    }
}

fn read_address(path: &str, v: &Spanned<Yaml>, p: &mut Problems) -> Option<Spanned<RawAddress>> {
    let entries = map_entries(path, v, p)?;
    let (mut type_, mut address) = (None, None);
    let mut refused = false;
    for (key, value) in entries {
        let slot = match key.value.as_str() {
            "type" => &mut type_,
            "address" => &mut address,
            _ => {
                unknown_key(path, &key, &["type", "address"], p);
                continue;
            }
        };
        *slot = text_value(&join(path, &key.value), value, p);
        refused |= slot.is_none() && value.value != Yaml::Null;
    }
    match (type_, address) {
        (Some(t), Some(a)) => Some(Spanned {
            value: RawAddress {
                type_: t.value,
                address: a.value,
            },
            line: v.line,
        }),
        // A value refused above is not also reported missing.
        _ if refused => None,
        (t, _) => {
            let missing = if t.is_none() { "type" } else { "address" };
            p.push(
                join(path, missing),
                v.line,
                "missing: an address needs a type and an address",
            );
            None
        }
    }
}

/// The config as written, after the schema walk: each field a value of the right type (or
/// absent), with its line, for [`validate`] to check.
#[derive(Debug, Default)]
struct RawConfig {
    provider_id: Option<Spanned<String>>,
    instance_type: Option<Spanned<String>>,
    zone: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    /// The string items with their index in the list.
    address_sources: Option<Vec<(usize, Spanned<String>)>>,
    /// Set, with its line, when `addressSources` is an empty list.
    address_sources_empty: Option<Option<u64>>,
    provided_node_ip: Option<ProvidedNodeIpMode>,
    require_internal_ip: Option<bool>,
    prefer_ipv6: Option<bool>,
    extra_labels: BTreeMap<String, Spanned<RawLabelValue>>,
    /// The well-formed entries with their index in the list.
    inventory: Vec<(usize, Spanned<RawInventoryEntry>)>,
    /// `k3sAgentWait` as written (a duration string, or `0`).
    k3s_agent_wait: Option<Spanned<RawLabelValue>>,
    /// The `interfaces` section, when present.
    interfaces: Option<RawInterfaces>,
}

#[derive(Debug, Default)]
struct RawInterfaces {
    /// The string items of `ignore` with their index, when the key is set.
    ignore: Option<Vec<(usize, Spanned<String>)>>,
    rules: Option<RawRules>,
}

#[derive(Debug)]
struct RawRules {
    /// The line of the list, for a problem about the list itself.
    line: Option<u64>,
    /// The list has no item at all (not: no well-formed item).
    empty: bool,
    /// The well-formed rules with their index.
    rules: Vec<(usize, RawRule)>,
}

#[derive(Debug)]
struct RawRule {
    cidr: Spanned<String>,
    type_: Spanned<String>,
}

#[derive(Debug, Default)]
struct RawInventoryEntry {
    /// A matcher key was given but refused by the schema walk.
    matcher_refused: bool,
    name: Option<Spanned<String>>,
    name_regex: Option<Spanned<String>>,
    selector: Option<Spanned<RawSelector>>,
    /// The well-formed addresses with their index in the list.
    addresses: Vec<(usize, Spanned<RawAddress>)>,
    provider_id: Option<Spanned<String>>,
    instance_type: Option<Spanned<String>>,
    zone: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    labels: BTreeMap<String, Spanned<RawLabelValue>>,
}

#[derive(Debug, Default)]
struct RawSelector {
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

#[derive(Debug)]
struct RawAddress {
    type_: String,
    address: String,
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
    s.line
}

/// Checks every value of the well-formed `raw` config, adding each problem to `p`, and
/// returns the config (meaningful only when `p` stays empty).
fn validate(raw: RawConfig, p: &mut Problems) -> Config {
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
fn validate_interfaces(raw: Option<RawInterfaces>, p: &mut Problems) -> InterfacesConfig {
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

fn validate_sources(list: &[(usize, Spanned<String>)], p: &mut Problems) -> Vec<AddressSource> {
    with_implied_sources(listed_sources(list, p))
}

/// A listed `addressSources` with the sources added since such lists were written:
/// [`with_implied_interfaces`], then [`with_implied_k3s_annotations`].
pub fn with_implied_sources(sources: Vec<AddressSource>) -> Vec<AddressSource> {
    with_implied_k3s_annotations(with_implied_interfaces(sources))
}

/// Configs written before `interfaces` existed. A list that reads a node's own account of
/// its addresses (`k3s-node-args` or `provided-node-ip`) reads the agent's too, which the
/// same node states: right after `k3s-node-args`, else right before `provided-node-ip`,
/// as the default ranks it. The agent is opt-in, so without it this adds nothing. A list
/// naming neither (`[inventory]`: only what the operator wrote) is taken as written, and
/// so is one naming `interfaces`.
pub fn with_implied_interfaces(mut sources: Vec<AddressSource>) -> Vec<AddressSource> {
    let position = |src| sources.iter().position(|s| *s == src);
    if position(AddressSource::Interfaces).is_some() {
        return sources;
    }
    let at = match (
        position(AddressSource::K3sNodeArgs),
        position(AddressSource::ProvidedNodeIp),
    ) {
        (Some(node_args), _) => node_args + 1,
        (None, Some(provided)) => provided,
        (None, None) => return sources,
    };
    sources.insert(at, AddressSource::Interfaces);
    sources
}

/// Configs written before `k3s-annotations` existed list `annotations` for both key sets.
/// Such a list keeps reading the `k3s.io/*` keys, ranked as the default ranks them: right
/// after `annotations`, `k3s-node-args` or `interfaces`, whichever comes last. A list
/// naming `k3s-annotations` itself, or not naming `annotations`, is taken as written.
pub fn with_implied_k3s_annotations(mut sources: Vec<AddressSource>) -> Vec<AddressSource> {
    let position = |src| sources.iter().position(|s| *s == src);
    if position(AddressSource::K3sAnnotations).is_some() {
        return sources;
    }
    let Some(annotations) = position(AddressSource::Annotations) else {
        return sources;
    };
    let after = [AddressSource::K3sNodeArgs, AddressSource::Interfaces]
        .into_iter()
        .filter_map(position)
        .fold(annotations, usize::max);
    sources.insert(after + 1, AddressSource::K3sAnnotations);
    sources
}

/// The listed sources, each checked; problems are collected.
fn listed_sources(list: &[(usize, Spanned<String>)], p: &mut Problems) -> Vec<AddressSource> {
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
                AddressSource::Interfaces,
                AddressSource::K3sAnnotations,
                AddressSource::ProvidedNodeIp,
                AddressSource::Kubelet
            ]
        );
        assert_eq!(c.interfaces, InterfacesConfig::default());
        assert_eq!(c.provided_node_ip, ProvidedNodeIpMode::Strict);
        assert!(c.require_internal_ip);
        assert!(!c.prefer_ipv6);
        assert_eq!(c.k3s_agent_wait, Duration::from_secs(30));
    }

    /// Issue 11 item 2: stale `k3s.io/*` keys must rank below node-args, and a list written
    /// before `k3s-annotations` existed keeps reading them. Issue 14: a list written before
    /// `interfaces` existed reads it where it reads the node's own account of its
    /// addresses, and a list without one (only what operators wrote) does not.
    #[test]
    fn sources_added_later_take_their_default_rank_unless_listed() {
        use AddressSource::*;
        for (listed, effective) in [
            (
                "[inventory, annotations, k3s-node-args, provided-node-ip, kubelet]",
                vec![
                    Inventory,
                    Annotations,
                    K3sNodeArgs,
                    Interfaces,
                    K3sAnnotations,
                    ProvidedNodeIp,
                    Kubelet,
                ],
            ),
            (
                "[inventory, annotations, k3s-node-args, k3s-annotations, provided-node-ip, kubelet]",
                vec![
                    Inventory,
                    Annotations,
                    K3sNodeArgs,
                    Interfaces,
                    K3sAnnotations,
                    ProvidedNodeIp,
                    Kubelet,
                ],
            ),
            (
                "[annotations, kubelet]",
                vec![Annotations, K3sAnnotations, Kubelet],
            ),
            ("[inventory]", vec![Inventory]),
            (
                "[k3s-node-args, annotations]",
                vec![K3sNodeArgs, Interfaces, Annotations, K3sAnnotations],
            ),
            (
                "[annotations, k3s-annotations, k3s-node-args]",
                vec![Annotations, K3sAnnotations, K3sNodeArgs, Interfaces],
            ),
            (
                "[k3s-annotations, annotations]",
                vec![K3sAnnotations, Annotations],
            ),
            (
                "[k3s-node-args, kubelet]",
                vec![K3sNodeArgs, Interfaces, Kubelet],
            ),
            (
                "[annotations, provided-node-ip]",
                vec![Annotations, Interfaces, K3sAnnotations, ProvidedNodeIp],
            ),
            (
                "[interfaces, k3s-node-args, annotations]",
                vec![Interfaces, K3sNodeArgs, Annotations, K3sAnnotations],
            ),
            (
                "[provided-node-ip, interfaces]",
                vec![ProvidedNodeIp, Interfaces],
            ),
        ] {
            let c = Config::from_yaml(&format!("addressSources: {listed}\n")).unwrap();
            assert_eq!(c.address_sources, effective, "{listed}");
        }
    }

    #[test]
    fn interfaces_rules_and_ignore_are_checked_with_their_paths_and_lines() {
        let yaml = "interfaces:\n  ignore: [eth0, \"a b\", 7]\n  rules:\n    - {cidr: 10.0.0.0/8, type: InternalIP}\n    - {cidr: 10.1.0.0/8, type: ExternalIP}\n    - {cidr: 300.0.0.0/8, type: Internal}\n    - {cidr: \"fc00::/7\"}\n    - {type: ignore, via: eth1}\n    - [10.0.0.0/8]\n  colour: blue\n";
        assert_eq!(
            problems(yaml),
            [
                // Problems of one line: the schema walk's first, then the values'.
                r#"interfaces.ignore[2]: 7 is not a string: quote it ("7") (line 2)"#,
                r#"interfaces.ignore[1]: "a b" is not an interface name pattern (a name, where * matches any characters, e.g. veth*) (line 2)"#,
                r#"interfaces.rules[1].cidr: "10.1.0.0/8" has host bits set: the network is 10.0.0.0/8 (line 5)"#,
                r#"interfaces.rules[2].cidr: "300.0.0.0/8" is not a CIDR (an address and a prefix length, e.g. 10.0.0.0/8 or fc00::/7) (line 6)"#,
                r#"interfaces.rules[2].type: unknown type "Internal" (expected InternalIP, ExternalIP or ignore) (line 6)"#,
                "interfaces.rules[3].type: missing: a rule needs a cidr and a type (line 7)",
                "interfaces.rules[4].via: unknown key (expected one of cidr, type) (line 8)",
                "interfaces.rules[4].cidr: missing: a rule needs a cidr and a type (line 8)",
                "interfaces.rules[5]: expected a map, found a list (line 9)",
                "interfaces.colour: unknown key (expected one of ignore, rules) (line 10)",
            ]
        );
        assert_eq!(
            problems("interfaces:\n  rules: []\n"),
            [
                "interfaces.rules: an empty list places no address: delete rules for the built-in ones, or leave interfaces out of addressSources (line 2)"
            ]
        );
        assert_eq!(
            problems("interfaces: [eth0]\n"),
            ["interfaces: expected a map, found a list (line 1)"]
        );
        // Null sections are the defaults; an empty ignore list skips no interface.
        let c = Config::from_yaml("interfaces:\n  rules:\n  ignore:\n").unwrap();
        assert_eq!(c.interfaces, InterfacesConfig::default());
        let c = Config::from_yaml("interfaces:\n  ignore: []\n").unwrap();
        assert!(c.interfaces.ignore.is_empty());
        assert_eq!(c.interfaces.rules, None);
    }

    /// Issue 14 item 4: node-role labels may be set; the rest of kubernetes.io stays refused.
    #[test]
    fn node_role_labels_are_allowed_in_extra_labels_and_inventory_labels() {
        let c = Config::from_yaml(
            "extraLabels:\n  node-role.kubernetes.io/worker: \"true\"\ninventory:\n  - nameRegex: \"gpu-.*\"\n    labels:\n      node-role.kubernetes.io/gpu: \"\"\n",
        )
        .unwrap();
        assert_eq!(c.extra_labels["node-role.kubernetes.io/worker"], "true");
        assert_eq!(c.inventory[0].labels["node-role.kubernetes.io/gpu"], "");
        let got = problems(
            "extraLabels:\n  node-role.kubernetes.io/worker: \"true\"\n  node.kubernetes.io/role: x\n  sub.node-role.kubernetes.io/y: x\n",
        );
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(
            got[0].starts_with(r#"extraLabels."node.kubernetes.io/role": label key"#),
            "{got:#?}"
        );
        assert!(
            got[1].starts_with(r#"extraLabels."sub.node-role.kubernetes.io/y": label key"#),
            "{got:#?}"
        );
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
addressSources: [k3s-node-args, kubelet, interfaces]
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
k3sAgentWait: 10s
interfaces:
  ignore: [eth9, "wg*"]
  rules:
    - {cidr: 192.168.0.0/16, type: InternalIP}
    - {cidr: 10.0.0.0/8,     type: ignore}
    - {cidr: 0.0.0.0/0,      type: ExternalIP}
"#;
        let c = Config::from_yaml(yaml).unwrap();
        assert_eq!(c.provider_id, "metal://dc1/{node}");
        assert_eq!(c.k3s_agent_wait, Duration::from_secs(10));
        assert_eq!(
            (c.instance_type.as_str(), c.zone.as_str(), c.region.as_str()),
            ("m1", "z1", "r1")
        );
        assert_eq!(
            c.address_sources,
            vec![
                AddressSource::K3sNodeArgs,
                AddressSource::Kubelet,
                AddressSource::Interfaces
            ]
        );
        assert_eq!(c.interfaces.ignore, ["eth9", "wg*"]);
        assert_eq!(
            c.interfaces
                .rules
                .iter()
                .flatten()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "192.168.0.0/16 -> InternalIP",
                "10.0.0.0/8 -> ignore",
                "0.0.0.0/0 -> ExternalIP"
            ]
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
    fn unknown_keys_are_problems_with_their_path_and_line() {
        for (yaml, line, path) in [
            ("zone: a\nbogus: 1\n", 2, "bogus"),
            (
                "inventory:\n  - name: a\n    adresses: []\n",
                3,
                "inventory[0].adresses",
            ),
            (
                "inventory:\n  - selector: {matchExpressions: []}\n",
                2,
                "inventory[0].selector.matchExpressions",
            ),
            (
                "inventory:\n  - name: a\n    addresses: [{type: InternalIP, address: 10.0.0.1, extra: 1}]\n",
                3,
                "inventory[0].addresses[0].extra",
            ),
        ] {
            let got = problems(yaml);
            assert_eq!(got.len(), 1, "{yaml:?}: {got:?}");
            assert!(
                got[0].starts_with(&format!("{path}: unknown key (expected one of "))
                    && got[0].ends_with(&format!("(line {line})")),
                "{yaml:?}: {got:?}"
            );
        }
        assert_eq!(
            problems("providerId: x\n"),
            [
                "providerId: unknown key (expected one of providerID, instanceType, zone, region, addressSources, providedNodeIP, requireInternalIP, preferIPv6, extraLabels, inventory, k3sAgentWait, interfaces); did you mean providerID? (line 1)"
            ]
        );
    }

    #[test]
    fn wrong_types_and_bad_modes_are_problems_with_their_line() {
        for (yaml, expected) in [
            (
                "providedNodeIP: sometimes\n",
                r#"providedNodeIP: unknown mode "sometimes" (expected strict, prefer or ignore) (line 1)"#,
            ),
            (
                "requireInternalIP: maybe\n",
                r#"requireInternalIP: must be true or false, unquoted (found "maybe") (line 1)"#,
            ),
            (
                "inventory: {}\n",
                "inventory: expected a list, found a map (line 1)",
            ),
            (
                "zone: [a]\n",
                "zone: expected a string, found a list (line 1)",
            ),
            (
                "inventory:\n  - name: a\n    addresses: [{type: InternalIP}]\n",
                "inventory[0].addresses[0].address: missing: an address needs a type and an address (line 3)",
            ),
        ] {
            assert_eq!(problems(yaml), [expected], "{yaml:?}");
        }
    }

    #[test]
    fn numbers_and_booleans_where_a_string_is_required_are_refused() {
        let yaml = "zone: 7\nregion: true\ninstanceType: 1.5\nproviderID: 12\naddressSources: [kubelet, 3]\ninventory:\n  - name: 42\n    addresses: [{type: Hostname, address: 7}]\n";
        assert_eq!(
            problems(yaml),
            [
                r#"zone: 7 is not a string: quote it ("7") (line 1)"#,
                r#"region: true is not a string: quote it ("true") (line 2)"#,
                r#"instanceType: 1.5 is not a string: quote it ("1.5") (line 3)"#,
                r#"providerID: 12 is not a string: quote it ("12") (line 4)"#,
                r#"addressSources[1]: 3 is not a string: quote it ("3") (line 5)"#,
                r#"inventory[0].name: 42 is not a string: quote it ("42") (line 7)"#,
                r#"inventory[0].addresses[0].address: 7 is not a string: quote it ("7") (line 8)"#,
            ]
        );
        let c = Config::from_yaml("zone: \"7\"\ninventory:\n  - name: \"42\"\n").unwrap();
        assert_eq!(c.zone, "7");
        assert_eq!(c.inventory[0].matcher, NodeMatcher::Name("42".into()));
    }

    #[test]
    fn one_run_reports_unknown_keys_wrong_types_duplicates_and_bad_values_together() {
        let yaml = "zone: 7\nbogus: 1\nregion: r\nregion: s\naddressSources: [dns]\ninventory:\n  - name: a\n    labels: {example.com/x: \"-\"}\n    colour: blue\n";
        let got = problems(yaml);
        let paths: Vec<&str> = got
            .iter()
            .map(|p| p.split(':').next().unwrap_or_default())
            .collect();
        assert_eq!(
            paths,
            [
                "zone",
                "bogus",
                "region",
                "addressSources[0]",
                "inventory[0].labels.\"example.com/x\"",
                "inventory[0].colour",
            ],
            "{got:#?}"
        );
    }

    #[test]
    fn a_provider_id_template_must_tell_nodes_apart() {
        assert_eq!(
            problems("providerID: \"metal://rack1\"\n"),
            [
                r#"providerID: "metal://rack1" has no {node}: every node would get this same providerID, which can never be changed afterwards; add {node} (e.g. "metal://rack1{node}") (line 1)"#
            ]
        );
        let yaml = "inventory:\n  - nameRegex: \"gpu-.*\"\n    providerID: \"metal://gpu\"\n  - name: n1\n    providerID: \"metal://n1\"\n";
        let got = problems(yaml);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with(r#"inventory[0].providerID: "metal://gpu" has no {node}"#),
            "{got:?}"
        );
        // One node by name may get a fixed providerID; "" writes none.
        Config::from_yaml(
            "providerID: \"\"\ninventory:\n  - name: n1\n    providerID: \"metal://n1\"\n",
        )
        .unwrap();
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
            r#"addressSources[1]: unknown source "foo" (expected one of inventory, annotations, k3s-node-args, interfaces, k3s-annotations, provided-node-ip, kubelet) (line 2)"#,
            r#"addressSources[3]: source "kubelet" is listed twice (line 2)"#,
            r#"addressSources[4]: "node-name" is the built-in Hostname fallback, not a configurable source (expected one of inventory, annotations, k3s-node-args, interfaces, k3s-annotations, provided-node-ip, kubelet) (line 2)"#,
            r#"extraLabels."kubernetes.io/foo": label key "kubernetes.io/foo": keys under kubernetes.io/ or k8s.io/ (and subdomains) are refused, except node-role.kubernetes.io/; use your own prefix, or the instanceType/zone/region settings (line 4)"#,
            r#"extraLabels."example.com/ok": label value "-bad-" must be empty or 1-63 characters of [A-Za-z0-9._-], starting and ending alphanumeric (line 5)"#,
            r#"extraLabels."bad key!": label key "bad key!": name part must be 1-63 characters of [A-Za-z0-9._-], starting and ending alphanumeric (line 6)"#,
            r#"inventory[0]: exactly one of name, nameRegex, selector must be set (line 8)"#,
            r#"inventory[2].addresses[0].address: "10.0.0.300" is not a valid InternalIP (one IP address, no prefix length) (line 13)"#,
            r#"inventory[2].addresses[1].address: "203.0.113.5/32" is not a valid ExternalIP (one IP address, no prefix length) (line 14)"#,
            r#"inventory[2].addresses[2].type: unknown address type "PublicIP" (expected one of InternalIP, ExternalIP, InternalDNS, ExternalDNS, Hostname) (line 15)"#,
            r#"inventory[2].addresses[3].address: "a b" is not a valid Hostname (empty, or contains whitespace or commas) (line 16)"#,
            r#"inventory[2].providerID: "x {node}" must not contain whitespace (line 17)"#,
            r#"inventory[2].labels."k8s.io/x": label key "k8s.io/x": keys under kubernetes.io/ or k8s.io/ (and subdomains) are refused, except node-role.kubernetes.io/; use your own prefix, or the instanceType/zone/region settings (line 18)"#,
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
        for (yaml, key, found) in [
            (
                "requireInternalIP: \"yes\"\n",
                "requireInternalIP",
                "\"yes\"",
            ),
            (
                "requireInternalIP: 'false'\n",
                "requireInternalIP",
                "\"false\"",
            ),
            ("preferIPv6: \"true\"\n", "preferIPv6", "\"true\""),
            ("preferIPv6: yes\n", "preferIPv6", "\"yes\""),
            ("preferIPv6: on\n", "preferIPv6", "\"on\""),
            ("zone: z\npreferIPv6: 1\n", "preferIPv6", "1"),
        ] {
            let line = yaml.lines().count();
            assert_eq!(
                problems(yaml),
                [format!(
                    "{key}: must be true or false, unquoted (found {found}) (line {line})"
                )],
                "{yaml:?}"
            );
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
    fn duplicate_keys_are_refused_in_plain_words() {
        assert_eq!(
            problems("zone: a\nzone: b\n"),
            [
                "zone: is set twice (first on line 1); a key may appear only once: delete one of them (line 2)"
            ]
        );
        assert_eq!(
            problems("extraLabels:\n  example.com/a: x\n  example.com/a: y\n"),
            [
                r#"extraLabels."example.com/a": is set twice (first on line 2); a key may appear only once: delete one of them (line 3)"#
            ]
        );
    }

    #[test]
    fn empty_address_sources_need_require_internal_ip_off() {
        assert_eq!(
            problems("addressSources: []\n"),
            vec![
                "addressSources: an empty list can give no node an InternalIP while requireInternalIP is true; list at least one source (line 1)"
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
        let shown = path.display().to_string();
        std::fs::write(&path, "zone: z\nbogus: 1\n").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("invalid config in {shown}:\n  bogus: unknown key")),
            "{err}"
        );
        // YAML that does not parse: the snippet names the file, never "<input>".
        std::fs::write(&path, "zone: z\nregion: [a\n").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("invalid config in {shown}: ")),
            "{err}"
        );
        assert!(err.contains(&format!("--> {shown}:")), "{err}");
        assert!(!err.contains("<input>"), "{err}");
        let err = Config::from_yaml("region: [a\n").unwrap_err().to_string();
        assert!(err.contains("--> config.yaml:"), "{err}");
        let missing = dir.path().join("missing.yaml");
        let err = Config::load(&missing).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read config file ") && err.contains("missing.yaml"),
            "{err}"
        );
    }

    #[test]
    fn an_embedded_config_reports_lines_of_the_file_it_is_in() {
        let err = Config::parse("zone: z\nbogus: 1\n", Some(Path::new("m.yaml")), 40)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid config in m.yaml:\n  bogus: unknown key"),
            "{err}"
        );
        assert!(err.ends_with("(line 42)"), "{err}");
        match Config::parse("zone: [a\n", Some(Path::new("m.yaml")), 40) {
            Err(ConfigError::Parse { line, message, .. }) => {
                assert!(line.is_some_and(|l| l > 40), "{line:?}");
                assert!(message.contains("m.yaml:4"), "{message}");
            }
            other => panic!("{other:?}"),
        }
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
        assert!(check_has_node("k3s://n1").is_err());
        assert_eq!(check_has_node("k3s://{node}"), Ok(()));
        assert_eq!(expand_provider_id("k3s://{node}", "n1"), "k3s://n1");
    }
}
