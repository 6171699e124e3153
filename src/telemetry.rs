//! Logging setup: tracing to stderr, as text or JSON (`--log-format`), filtered by
//! `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

/// `--log-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the global subscriber. A second call (tests) is ignored.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A failed write to stderr (a closed pipe, a full disk) is otherwise reported with
    // `eprintln!`, which panics on that same broken stderr and takes the logging task
    // with it (tracing-subscriber `fmt/fmt_layer.rs`, `on_event`). Lost log lines are the
    // lesser harm.
    let result = match format {
        LogFormat::Text => builder.log_internal_errors(false).try_init(),
        LogFormat::Json => builder.json().log_internal_errors(false).try_init(),
    };
    // Err means a subscriber is already installed, which is fine.
    drop(result);
}
