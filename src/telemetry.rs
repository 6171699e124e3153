//! Logging setup: tracing to stderr, as text or JSON (`--log-format`), filtered by
//! `RUST_LOG` (default `info`); colours only on a terminal. And [`Chain`], the one way an
//! error and its causes are printed.

use std::fmt;
use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Directive;

/// kube's HTTP trace layer logs every failed request at ERROR ("failed with error client
/// error (Connect)", kube-client `client/builder.rs`, `on_failure`) before bare-ccm logs
/// the same failure with its context: one fault, two lines. Off unless `RUST_LOG` names
/// kube_client itself.
const KUBE_TRACE_LAYER: &str = "kube_client::client::builder=off";

/// `--log-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the global subscriber. A second call (tests) is ignored.
pub fn init(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(std::env::var("RUST_LOG").ok().as_deref()))
        .with_ansi(std::io::stderr().is_terminal())
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

/// The log filter: `RUST_LOG` (default `info`), with kube's duplicate failure lines off
/// unless `RUST_LOG` mentions kube_client.
fn filter(rust_log: Option<&str>) -> EnvFilter {
    let spec = rust_log.filter(|s| !s.trim().is_empty()).unwrap_or("info");
    let filter = EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("info"));
    match KUBE_TRACE_LAYER.parse::<Directive>() {
        Ok(off) if !spec.contains("kube_client") => filter.add_directive(off),
        _ => filter,
    }
}

/// An error with its causes, `: `-separated, each cause left out when the text before
/// already contains it (kube's and anyhow's messages often repeat their source). So a
/// refused connection reads "ServiceError: client error (Connect): tcp connect error:
/// Connection refused (os error 111)" instead of stopping at "client error (Connect)".
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'a));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !text.is_empty() && !shown.contains(&text) {
                shown.push_str(": ");
                shown.push_str(&text);
            }
            source = cause.source();
        }
        f.write_str(&shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);

    impl fmt::Display for E {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn a_chain_shows_every_cause_once() {
        let refused = E(
            "ServiceError: client error (Connect)",
            Some(Box::new(E(
                "client error (Connect)",
                Some(Box::new(E(
                    "tcp connect error",
                    Some(Box::new(E("Connection refused (os error 111)", None))),
                ))),
            ))),
        );
        assert_eq!(
            Chain(&refused).to_string(),
            "ServiceError: client error (Connect): tcp connect error: Connection refused (os error 111)"
        );
    }

    #[test]
    fn kube_trace_layer_lines_are_off_unless_asked_for() {
        let shown = |spec: Option<&str>| filter(spec).to_string();
        assert!(shown(None).contains(KUBE_TRACE_LAYER), "{}", shown(None));
        assert!(shown(Some("debug")).contains(KUBE_TRACE_LAYER));
        assert!(!shown(Some("info,kube_client=debug")).contains(KUBE_TRACE_LAYER));
    }
}
