//! The flags of `bare-ccm run` and their parsers. Names and defaults follow the upstream
//! cloud-controller-manager where one exists; nothing here starts anything.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use crate::telemetry::LogFormat;

/// Default plain HTTP port of the probes (`/healthz`, `/readyz`, `/livez`): clear of every
/// port a k3s or kubeadm host binds (docs/reference.md#ports).
pub const DEFAULT_PORT: u16 = 10270;

/// Default HTTPS port of `/metrics` and the probes, next to [`DEFAULT_PORT`] and equally
/// clear of the ports k3s and kubeadm bind (upstream CCMs use 10258, which k3s's own
/// cloud-controller may hold for ServiceLB).
pub const DEFAULT_SECURE_PORT: u16 = 10271;

/// The flags of `bare-ccm run`. Names and defaults follow the upstream
/// cloud-controller-manager where one exists.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Kubeconfig file; default: $KUBECONFIG, ~/.kube/config, then the in-cluster service account.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// Config file (YAML), re-read when it changes; default: k3s's embedded CCM's behaviour.
    #[arg(long)]
    pub config: Option<PathBuf>,

    /// How often the config file is checked for changes.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub config_poll_interval: Duration,

    /// Nodes synced concurrently (upstream's default: 1).
    // Why 128 (a burst initialises at about this many nodes per API round trip), with the
    // measurements: docs/reference.md and docs/performance.md.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrent_node_syncs: u16,

    /// Period of the full re-check of every node's addresses (upstream's flag and default).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub node_status_update_frequency: Duration,

    /// Client-side API requests per second, per client (node writes, Events); 0 disables.
    // A safety net against runaway loops, not the normal brake (docs/reference.md says why
    // upstream's 20 would queue a burst for minutes).
    #[arg(long, default_value_t = 500.0)]
    pub kube_api_qps: f64,

    /// Requests allowed at once above --kube-api-qps, per client.
    // 5000 joining nodes (one write each) initialise without waiting for the limiter.
    #[arg(long, default_value_t = 5000)]
    pub kube_api_burst: u32,

    /// Elect a leader on a Lease so that only one replica writes.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,

    /// How long a lease is valid without renewal; a standby takes over after it.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,

    /// A leader whose last renewal is older than this stops writing.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,

    /// Interval between lease renewals (and acquisition attempts).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,

    /// Name of the Lease.
    #[arg(long, default_value = "bare-ccm")]
    pub leader_elect_resource_name: String,

    /// Namespace of the Lease.
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,

    /// Address of the plain HTTP port (the probes only).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind_address: IpAddr,

    /// Port of /healthz, /readyz and /livez in plain HTTP; 0 picks a free port.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// HTTPS port of /metrics (token-authenticated) and the probes; 0 disables it.
    #[arg(long, default_value_t = DEFAULT_SECURE_PORT)]
    pub secure_port: u16,

    /// Address of the secure port.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub secure_bind_address: IpAddr,

    /// PEM certificate chain of the secure port; default: a self-signed one made at start.
    #[arg(long, value_name = "FILE", requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key of --tls-cert-file.
    #[arg(long, value_name = "FILE", requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,

    /// Paths the secure port serves without a token (exact, or a prefix ending in *).
    #[arg(long, value_delimiter = ',', default_value = crate::http::delegated::DEFAULT_ALWAYS_ALLOW_PATHS, value_parser = parse_allow_path)]
    pub authorization_always_allow_paths: Vec<String>,

    /// Controllers to run, upstream's syntax (`*`, `NAME`, `-NAME`); bare-ccm has `cloud-node`.
    // The first entry naming a controller decides; without it the process serves only the
    // probes and /metrics (docs/reference.md).
    #[arg(long, value_delimiter = ',', default_value = "*", allow_hyphen_values = true, value_parser = parse_controller)]
    pub controllers: Vec<String>,

    /// Log format; the filter comes from RUST_LOG (default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Ignored, with a warning: bare-ccm is itself the cloud provider.
    // Accepted so that a manifest written for another CCM does not crash-loop.
    #[arg(long, value_name = "NAME")]
    pub cloud_provider: Option<String>,

    /// Ignored, with a warning: upstream's log verbosity. Use RUST_LOG instead.
    #[arg(long = "v", value_name = "N")]
    pub verbosity: Option<u32>,
}

/// Checks one `--authorization-always-allow-paths` entry (only a trailing `*`).
fn parse_allow_path(entry: &str) -> Result<String, String> {
    crate::http::delegated::AlwaysAllowPaths::new(&[entry]).map(|_| entry.to_string())
}

/// Parses a Go-style duration as upstream flags take it: `15s`, `500ms`, `5m`, `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let span: k8s_openapi::jiff::SignedDuration = text
        .parse()
        .map_err(|e| format!("invalid duration {text:?} ({e}); use e.g. 15s, 500ms, 5m"))?;
    Duration::try_from(span).map_err(|_| format!("duration {text:?} must not be negative"))
}

/// The node controller's name in `--controllers`: upstream's name for the controller that
/// initialises nodes (kubernetes/cloud-provider `app/controllermanager.go`,
/// `DefaultInitFuncConstructors["cloud-node"]`).
pub const NODE_CONTROLLER: &str = "cloud-node";

/// The name recent upstream releases also accept for it (`cloud-node` became its alias).
const NODE_CONTROLLER_ALIAS: &str = "cloud-node-controller";

/// Checks one `--controllers` entry: `*`, or a known controller name with an optional
/// leading `-`; returns it with an alias replaced by the name.
pub fn parse_controller(entry: &str) -> Result<String, String> {
    let (minus, name) = match entry.strip_prefix('-') {
        Some(name) => ("-", name),
        None => ("", entry),
    };
    match name {
        "*" if minus.is_empty() => Ok(entry.to_string()),
        NODE_CONTROLLER | NODE_CONTROLLER_ALIAS => Ok(format!("{minus}{NODE_CONTROLLER}")),
        _ => Err(format!(
            "unknown controller {entry:?}; bare-ccm has one controller, {NODE_CONTROLLER}: use *, {NODE_CONTROLLER} or -{NODE_CONTROLLER}"
        )),
    }
}

/// Whether `--controllers` enables the node controller, by upstream's rule
/// (k8s.io/controller-manager `app/helper.go`, `IsControllerEnabled`): the first entry
/// naming it decides; else `*` enables it; else it is off.
pub fn node_controller_enabled(controllers: &[String]) -> bool {
    let disable = format!("-{NODE_CONTROLLER}");
    let mut star = false;
    for entry in controllers {
        if entry == NODE_CONTROLLER {
            return true;
        }
        if *entry == disable {
            return false;
        }
        star |= entry == "*";
    }
    star
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn go_style_durations_parse() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn defaults_follow_upstream_where_upstream_has_the_flag() {
        let cli = Cli::try_parse_from(["run"]).unwrap();
        let a = cli.run;
        assert!(a.leader_elect);
        assert_eq!(a.leader_elect_lease_duration, Duration::from_secs(15));
        assert_eq!(a.leader_elect_renew_deadline, Duration::from_secs(10));
        assert_eq!(a.leader_elect_retry_period, Duration::from_secs(2));
        assert_eq!(a.leader_elect_resource_namespace, "kube-system");
        assert_eq!(a.leader_elect_resource_name, "bare-ccm");
        assert_eq!(a.node_status_update_frequency, Duration::from_secs(300));
        assert_eq!(a.port, DEFAULT_PORT);
    }

    #[test]
    fn probes_stay_local_and_metrics_are_on_the_secure_port_by_default() {
        let a = Cli::try_parse_from(["run"]).unwrap().run;
        assert_eq!(a.bind_address, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!((a.port, a.secure_port), (10270, 10271));
        assert_eq!(a.secure_bind_address, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(a.tls_cert_file, None);
        assert_eq!(
            a.authorization_always_allow_paths,
            ["/healthz", "/readyz", "/livez"]
        );
        let a = Cli::try_parse_from([
            "run",
            "--secure-port=0",
            "--authorization-always-allow-paths=/healthz,/debug/*",
        ])
        .unwrap()
        .run;
        assert_eq!(a.secure_port, 0);
        assert_eq!(a.authorization_always_allow_paths, ["/healthz", "/debug/*"]);
    }

    #[test]
    fn a_certificate_needs_its_key_and_stars_only_end_a_path() {
        for args in [
            &["run", "--tls-cert-file=/c.pem"][..],
            &["run", "--tls-private-key-file=/k.pem"][..],
            &["run", "--authorization-always-allow-paths=/a*b"][..],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        assert!(
            Cli::try_parse_from([
                "run",
                "--tls-cert-file=/c.pem",
                "--tls-private-key-file=/k.pem"
            ])
            .is_ok()
        );
    }

    #[test]
    fn leader_elect_can_be_switched_off_the_upstream_way() {
        let cli = Cli::try_parse_from(["run", "--leader-elect=false"]).unwrap();
        assert!(!cli.run.leader_elect);
        let cli = Cli::try_parse_from(["run", "--leader-elect"]).unwrap();
        assert!(cli.run.leader_elect);
    }

    fn controllers(args: &[&str]) -> Result<Vec<String>, clap::Error> {
        let argv = std::iter::once("run").chain(args.iter().copied());
        Cli::try_parse_from(argv).map(|cli| cli.run.controllers)
    }

    #[test]
    fn controllers_flag_follows_upstream_syntax() {
        let enabled = |args: &[&str]| node_controller_enabled(&controllers(args).unwrap());
        assert!(enabled(&[]), "default *");
        assert!(enabled(&["--controllers", "*"]));
        assert!(enabled(&["--controllers", "cloud-node"]));
        assert!(enabled(&["--controllers=cloud-node-controller"]));
        assert!(!enabled(&["--controllers", "-cloud-node"]));
        assert!(!enabled(&["--controllers", "*,-cloud-node"]));
        assert!(!enabled(&["--controllers", "-cloud-node,*"]));
        assert!(enabled(&["--controllers", "cloud-node,-cloud-node"]));
    }

    #[test]
    fn unknown_controllers_are_refused_naming_the_known_one() {
        for bad in ["service", "-route", "-*", ""] {
            let message = controllers(&["--controllers", bad])
                .unwrap_err()
                .to_string();
            assert!(message.contains("cloud-node"), "{bad}: {message}");
        }
    }

    #[test]
    fn upstream_cloud_provider_and_verbosity_flags_are_accepted_and_nothing_else() {
        let cli = Cli::try_parse_from(["run", "--cloud-provider=external", "--v=2"]).unwrap();
        assert_eq!(cli.run.cloud_provider.as_deref(), Some("external"));
        assert_eq!(cli.run.verbosity, Some(2));
        let cli = Cli::try_parse_from(["run", "--cloud-provider", "k3s", "--v", "4"]).unwrap();
        assert_eq!(cli.run.cloud_provider.as_deref(), Some("k3s"));
        for unknown in [
            "--allocate-node-cidrs=false",
            "--configure-cloud-routes=false",
        ] {
            let err = Cli::try_parse_from(["run", unknown])
                .err()
                .map(|e| e.kind());
            assert_eq!(
                err,
                Some(clap::error::ErrorKind::UnknownArgument),
                "{unknown}"
            );
        }
    }

    #[test]
    fn zero_workers_is_refused() {
        assert!(Cli::try_parse_from(["run", "--concurrent-node-syncs", "0"]).is_err());
    }
}
