//! Connections: accepting TCP (and TLS) connections, serving HTTP/1.1 and HTTP/2 on each
//! through [`handle`](super::handler::handle), and cutting them all when a
//! refused-connections fault window starts or the server shuts down.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::handler::handle;

/// How often the refused-connections window is polled, to cut open connections when it
/// starts.
const REFUSAL_POLL: Duration = Duration::from_millis(20);

/// Pause after a failed `accept` before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

pub(super) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((tcp, _peer)) = accepted else {
            // Out of file descriptors or a reset during accept: back off briefly instead of
            // spinning.
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            continue;
        };
        if shared.faults.refusing() {
            // A refused connection: closed before any byte is exchanged.
            drop(tcp);
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let cut = Shared::token(&shared.conn_cut);
            let shutdown = shared.shutdown.clone();
            match acceptor {
                Some(acceptor) => {
                    let tls = tokio::select! {
                        _ = cut.cancelled() => return,
                        t = acceptor.accept(tcp) => t,
                    };
                    if let Ok(stream) = tls {
                        serve_connection(shared, TokioIo::new(stream), cut, shutdown).await;
                    }
                }
                None => serve_connection(shared, TokioIo::new(tcp), cut, shutdown).await,
            }
        });
    }
}

async fn serve_connection<I>(
    shared: Arc<Shared>,
    io: I,
    cut: CancellationToken,
    shutdown: CancellationToken,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(shared, req).await) }
    });
    let conn = builder.serve_connection(io, service);
    tokio::select! {
        _ = conn => {}
        _ = cut.cancelled() => {}
        _ = shutdown.cancelled() => {}
    }
}

/// Cuts every open connection and watch when a refused-connections window starts, as a
/// real outage breaks keep-alive connections and watches too.
pub(super) async fn refusal_monitor(shared: Arc<Shared>) {
    let mut was_refusing = false;
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tokio::time::sleep(REFUSAL_POLL) => {}
        }
        let refusing = shared.faults.refusing();
        if refusing && !was_refusing {
            Shared::cut(&shared.conn_cut);
            Shared::cut(&shared.watch_cut);
        }
        was_refusing = refusing;
    }
}
