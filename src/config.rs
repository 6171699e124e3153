//! The bare-ccm configuration file: schema, defaults (which reproduce k3s's embedded CCM)
//! and validation with field paths, shared by `run`, `explain`, `check-config` and `doctor`.

/// The parsed, validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {}

impl Default for Config {
    fn default() -> Self {
        Config {}
    }
}
