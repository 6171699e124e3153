//! What the simulated components retry and how: the failures a real client retries
//! (server errors, throttling, conflicts, refused connections), with a doubling, jittered
//! backoff, until the fleet's retry budget runs out.

use std::time::{Duration, Instant};

use super::KubeletError;
use super::fleet::Inner;

/// Default time a request is retried through transient failures before giving up.
pub(super) const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(60);
/// First and largest pause between retries.
const BACKOFF_START: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Whether a failure is worth retrying: the ones a real client retries (server errors,
/// throttling, conflicts) and transport failures such as refused connections.
fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => match status.code {
            409 => status.reason != "AlreadyExists",
            429 | 500 | 502 | 503 | 504 => true,
            _ => false,
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

pub(super) fn is_already_exists(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409 && status.reason == "AlreadyExists")
}

impl Inner {
    /// Runs `attempt` until it succeeds, fails for good, or transient failures outlast the
    /// retry budget. Backoff doubles from 20 ms to 1 s, with jitter so that thousands of
    /// kubelets do not retry in lockstep; a server-requested Retry-After wins.
    pub(super) async fn retry<T, F, Fut>(
        &self,
        action: &'static str,
        node: &str,
        mut attempt: F,
    ) -> Result<T, KubeletError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let start = Instant::now();
        let mut pause = BACKOFF_START;
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(source) if !is_transient(&source) => {
                    return Err(KubeletError::Request {
                        action,
                        node: node.to_owned(),
                        source,
                    });
                }
                Err(source) if start.elapsed() >= self.retry_budget => {
                    return Err(KubeletError::RetriesExhausted {
                        action,
                        node: node.to_owned(),
                        budget: self.retry_budget,
                        source,
                    });
                }
                // A 429's `Retry-After` header is honoured by the kube-rs client's own retry
                // policy before the error reaches here (kube-client `client/retry.rs`); what
                // gets here backs off with jitter.
                Err(_) => {
                    let jitter = rand::random_range(0..=pause.as_millis() as u64 / 2);
                    tokio::time::sleep(pause + Duration::from_millis(jitter)).await;
                    pause = (pause * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}
