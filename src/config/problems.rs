//! What is wrong with a config: each problem located by key path and line, and the error
//! `Config::parse` returns with all of them.

use std::fmt;
use std::path::PathBuf;

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
pub(super) fn in_file(file: &Option<PathBuf>) -> String {
    file.as_ref()
        .map(|f| format!(" in {}", f.display()))
        .unwrap_or_default()
}

/// Collects problems while validating.
pub(super) struct Problems(pub(super) Vec<ConfigProblem>);

impl Problems {
    pub(super) fn push(
        &mut self,
        path: impl Into<String>,
        line: Option<u64>,
        message: impl Into<String>,
    ) {
        self.0.push(ConfigProblem {
            path: path.into(),
            line,
            message: message.into(),
        });
    }
}
