//! The HTTP endpoints, on two ports:
//!
//! - the plain port (`--bind-address:--port`, 127.0.0.1:10270 by default) serves only the
//!   probes: `/healthz` and `/livez` (the process serves) and `/readyz` (the node cache is
//!   synced; a standby replica watches too, so it is ready while waiting for the lease);
//! - the secure port (`--secure-bind-address:--secure-port`, 0.0.0.0:10271 by default)
//!   serves the probes and `/metrics` over HTTPS, every request authenticated and
//!   authorised against the API server ([`delegated`]) unless its path is always allowed.
//!
//! No endpoint changes the controller's state.

pub mod delegated;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::controller::Context;
use crate::metrics::CONTENT_TYPE;
use delegated::{Decision, DelegatedAuth, Reviewer};

/// The plain port's router: the probes only.
pub fn probes(ctx: Arc<Context>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/livez", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(ctx)
}

/// The secure port's router: the probes and `/metrics`, behind `auth`. The guard wraps
/// the whole router, unknown paths included, as upstream authorises before routing.
pub fn secure<R: Reviewer + 'static>(ctx: Arc<Context>, auth: Arc<DelegatedAuth<R>>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(ctx.clone())
        .merge(probes(ctx))
        .layer(axum::middleware::from_fn_with_state(auth, guard::<R>))
}

/// Serves `router` in plain HTTP on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Which of the two ports a listener is for (it names the flags that choose it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    Probes,
    Secure,
}

/// Binds `addr`, with an error that says which flags to change.
pub async fn bind(addr: SocketAddr, port: Port) -> anyhow::Result<tokio::net::TcpListener> {
    let flags = match port {
        Port::Probes => "--bind-address and --port",
        Port::Secure => "--secure-bind-address and --secure-port (0 disables the secure port)",
    };
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {addr}: {e}; pick a free address with {flags}")
    })
}

async fn guard<R: Reviewer>(
    State(auth): State<Arc<DelegatedAuth<R>>>,
    request: Request,
    next: Next,
) -> Response {
    let decision = auth
        .decide(
            request.method(),
            request.uri().path(),
            request.headers().get(header::AUTHORIZATION),
        )
        .await;
    match decision {
        Decision::Allow => next.run(request).await,
        Decision::Unauthorized => status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized"),
        Decision::Forbidden(message) => status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!("forbidden: {message}"),
        ),
        Decision::Failed(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "Internal Server Error: {:?}: {error}\n",
                request.uri().path()
            ),
        )
            .into_response(),
    }
}

/// A `Status` body as the API server's filters write it for 401 and 403.
fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    (
        code,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body.to_string(),
    )
        .into_response()
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
        let message = bind(addr, Port::Probes).await.unwrap_err().to_string();
        assert!(message.contains(&addr.to_string()), "{message}");
        assert!(message.contains("--port"), "{message}");
        assert!(message.contains("--bind-address"), "{message}");
        assert!(!message.contains("--secure-port"), "{message}");
        let message = bind(addr, Port::Secure).await.unwrap_err().to_string();
        assert!(message.contains("--secure-port"), "{message}");
        assert!(message.contains("--secure-bind-address"), "{message}");
    }
}
