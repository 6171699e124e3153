//! The bare-ccm configuration file: schema, defaults (which reproduce k3s's embedded CCM)
//! and validation with field paths, shared by `run`, `explain`, `check-config` and `doctor`.
//!
//! Parsing happens in two steps: the schema walk (`read`) reads the YAML tree (`yaml`) into
//! the `Raw*` structs (`raw`; unknown keys and wrong types are problems with a line number),
//! then `validate` checks every value and collects *all* problems (`problems`), each naming
//! its key path, so one `check-config` run shows everything to fix. The result is a
//! `schema::Config`; `sources`, `interfaces` and `template` hold the parts other modules
//! read too.

use std::path::Path;

mod interfaces;
mod problems;
mod raw;
mod read;
mod schema;
mod sources;
mod template;
mod validate;
mod yaml;

pub use interfaces::{InterfaceRule, InterfacesConfig, default_rules};
use problems::Problems;
pub use problems::{ConfigError, ConfigProblem};
use raw::RawConfig;
use read::read_config;
pub use schema::{
    Config, DEFAULT_INSTANCE_TYPE, DEFAULT_K3S_AGENT_WAIT, DEFAULT_PROVIDER_ID, InventoryAddress,
    InventoryEntry, MAX_K3S_AGENT_WAIT, NodeMatcher, ProvidedNodeIpMode,
};
pub use sources::{
    AddressSource, UnknownAddressSource, with_implied_interfaces, with_implied_k3s_annotations,
    with_implied_sources,
};
pub use template::{
    NODE_PLACEHOLDER, check_has_node, check_provider_id_template, expand_provider_id,
};
use validate::validate;
use yaml::parse_tree;
pub use yaml::{CONFIG_KEY, CONFIG_MAP, Located, locate_config};

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

#[cfg(test)]
mod tests;
