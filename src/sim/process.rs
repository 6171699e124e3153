//! The `bare-ccm run` child of `sim`: start it on a free port, wait for its `/readyz`
//! and its Lease, read its memory, stop it with SIGTERM.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bare_ccm_emulator::Emulator;
use bare_ccm_emulator::probe::{free_port, http_get};
use tokio::process::{Child, Command};

/// The service account the controller runs as, as in the shipped manifest.
pub(super) const CONTROLLER_NAMESPACE: &str = "kube-system";
pub(super) const CONTROLLER_ACCOUNT: &str = "bare-ccm";

/// The glibc allocator setting of the container image (the Dockerfile's
/// `ENV MALLOC_MMAP_THRESHOLD_`), given to the controller process so that `sim` measures
/// the memory of the shipped configuration.
pub(super) const MALLOC_MMAP_THRESHOLD: &str = "131072";

/// The controller process, with the port of its HTTP endpoints.
pub(super) struct Controller {
    pub(super) child: Child,
    pub(super) port: u16,
}

pub(super) fn spawn_controller(kubeconfig: &Path, extra: &[String]) -> anyhow::Result<Controller> {
    let exe = std::env::current_exe().context("cannot find the bare-ccm executable")?;
    let port = free_port().context("cannot find a free port for the controller")?;
    let mut cmd = Command::new(exe);
    cmd.arg("run")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--bind-address", "127.0.0.1", "--port", &port.to_string()])
        // Nothing scrapes the sim's controller; its secure port would only take 10271.
        .args(["--secure-port", "0"])
        .args(extra)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .env("MALLOC_MMAP_THRESHOLD_", MALLOC_MMAP_THRESHOLD)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let child = cmd.spawn().context("cannot start `bare-ccm run`")?;
    Ok(Controller { child, port })
}

/// Polls the controller's `/readyz` until it answers 200; returns the milliseconds since
/// `started`.
pub(super) async fn wait_ready(
    port: u16,
    started: Instant,
    limit: Duration,
) -> anyhow::Result<f64> {
    loop {
        if let Some((200, _)) = http_get(port, "/readyz").await {
            return Ok(started.elapsed().as_secs_f64() * 1000.0);
        }
        if started.elapsed() > limit {
            anyhow::bail!(
                "the controller's /readyz on port {port} did not answer 200 within {limit:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The controller is ready to work once it holds the Lease.
pub(super) async fn wait_for_leader(emulator: &Emulator, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let holder = emulator
            .lease_holder(CONTROLLER_NAMESPACE, CONTROLLER_ACCOUNT)
            .unwrap_or_default();
        if !holder.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("the controller did not take the lease within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(super) async fn stop_controller(mut child: Child) {
    if let Some(pid) = child.id() {
        // SIGTERM lets the controller release its lease; fall back to a kill.
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
    }
    if tokio::time::timeout(Duration::from_secs(6), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// One memory figure of a process in bytes, e.g. `VmRSS` or `RssAnon`, from
/// `/proc/PID/status` (0 where unavailable).
pub fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| status_kib(&s, field))
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// The value in KiB of `field` in the text of `/proc/PID/status` (`VmRSS:  1234 kB`).
pub(super) fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}
