//! `-o text|json` of the reporting subcommands (`explain`, `check-config`, `doctor`, `sim`):
//! the one format enum and the one place that prints a report in either form.

use serde::Serialize;

/// Output format of a report.
// No doc comments on the variants: clap would print them as a list under every `-o`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

impl Output {
    /// Prints `report` on stdout as pretty JSON, or runs `text`, which prints it for humans.
    /// Err only when the report cannot be encoded as JSON; nothing is printed then.
    pub fn print<T: Serialize>(self, report: &T, text: impl FnOnce()) -> serde_json::Result<()> {
        match self {
            Output::Text => text(),
            Output::Json => println!("{}", serde_json::to_string_pretty(report)?),
        }
        Ok(())
    }
}
