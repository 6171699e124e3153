//! Supervision of the process's long-running tasks. Each of them (node watch, workers,
//! leader election, event writer, HTTP server, config reload) is meant to run until
//! shutdown; one that stops earlier (a panic, most likely) would otherwise leave the
//! process alive with less capacity while `/healthz` still says ok. Instead the process
//! stops and exits non-zero, so that its supervisor (the Deployment) restarts it.

use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

/// A task that stopped while the process was meant to keep running.
#[derive(Debug, thiserror::Error)]
#[error("{task} {how}; bare-ccm stops so that it is restarted with all its tasks")]
pub struct TaskFailed {
    /// Which task (or which kind of task, e.g. "a node sync worker").
    pub task: String,
    /// What happened to it, e.g. "panicked: <message>".
    pub how: String,
}

impl TaskFailed {
    fn panicked(task: &str, error: JoinError) -> TaskFailed {
        let payload = error.into_panic();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-text panic payload".to_string());
        TaskFailed {
            task: task.to_string(),
            how: format!("panicked: {message}"),
        }
    }
}

/// Waits for the first task of `set` that fails: one that panics, or one that returns
/// before `shutdown` is cancelled. Tasks that return after shutdown, or that were aborted,
/// are not failures. Each task returns its own name; `kind` names the tasks of the set
/// for a panic, whose task cannot say who it was. Never completes when no task fails.
pub async fn first_failure(
    set: &mut JoinSet<&'static str>,
    kind: &str,
    shutdown: &CancellationToken,
) -> TaskFailed {
    loop {
        match set.join_next().await {
            None => std::future::pending::<()>().await,
            Some(Ok(_)) if shutdown.is_cancelled() => {}
            Some(Ok(task)) => {
                return TaskFailed {
                    task: task.to_string(),
                    how: "stopped before shutdown".to_string(),
                };
            }
            Some(Err(e)) if e.is_panic() => return TaskFailed::panicked(kind, e),
            Some(Err(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_reported_with_its_message() {
        let shutdown = CancellationToken::new();
        let mut set = JoinSet::new();
        set.spawn(async { std::future::pending::<&'static str>().await });
        set.spawn(async { panic!("index out of range") });
        let failed = first_failure(&mut set, "a node sync worker", &shutdown).await;
        assert_eq!(failed.task, "a node sync worker");
        assert_eq!(failed.how, "panicked: index out of range");
    }

    #[tokio::test]
    async fn a_task_returning_before_shutdown_is_a_failure_after_shutdown_it_is_not() {
        let shutdown = CancellationToken::new();
        let mut set = JoinSet::new();
        set.spawn(async { "node watch" });
        let failed = first_failure(&mut set, "controller task", &shutdown).await;
        assert_eq!(failed.task, "node watch");

        shutdown.cancel();
        set.spawn(async { "node watch" });
        let waited = tokio::time::timeout(
            std::time::Duration::from_millis(100),
            first_failure(&mut set, "controller task", &shutdown),
        )
        .await;
        assert!(
            waited.is_err(),
            "a task ending after shutdown is no failure"
        );
    }
}
