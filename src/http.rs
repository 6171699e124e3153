//! The HTTP endpoints: `/healthz` (the process serves), `/readyz` (the node cache is
//! synced; a standby replica watches too, so it is ready while waiting for the lease) and
//! `/metrics`. All are read-only: no endpoint changes the controller's state.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::controller::Context;
use crate::metrics::CONTENT_TYPE;

/// The router, separate from [`serve`] so tests can call it without a socket.
pub fn router(ctx: Arc<Context>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(ctx)
}

/// Serves [`router`] on `addr` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ctx: Arc<Context>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(ctx))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Binds `addr`, with an error that says which flag to change.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {addr}: {e}; pick a free address with --bind-address and --port"
        )
    })
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(ctx): State<Arc<Context>>) -> impl IntoResponse {
    if ctx.cache_synced() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "node cache not synced yet")
    }
}

async fn metrics(State(ctx): State<Arc<Context>>) -> impl IntoResponse {
    ctx.update_gauges();
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], ctx.metrics.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_port_names_the_flags_that_choose_another() {
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let message = bind(addr).await.unwrap_err().to_string();
        assert!(message.contains(&addr.to_string()), "{message}");
        assert!(message.contains("--port"), "{message}");
        assert!(message.contains("--bind-address"), "{message}");
        assert!(!message.contains("--secure-port"), "{message}");
    }
}
