//! The one HTTP server loop every service runs its router on: hyper's HTTP/1.1 with a deadline
//! for a request's head, a bound on its size, and graceful shutdown.
//!
//! `axum::serve` installs no timer in hyper, and without one hyper's default header-read
//! timeout silently does nothing: a client that dribbles a request's head a byte at a time
//! (slowloris) holds its connection for ever. This loop is axum's accept loop with the timer
//! installed, which is all it adds; hyper itself enforces the deadline and answers an
//! oversized head with `431`.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// How long a client has to send a request's whole head (line and headers), from the
/// connection's start or, on a kept-alive connection, from the head's first byte.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest request head read, in bytes; a larger one is answered `431`.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How long requests in flight may take to finish once shutdown starts.
const DRAIN: Duration = Duration::from_secs(30);

/// Serve `router` on `listener` until `shutdown` completes, then stop accepting and let the
/// requests in flight finish (for up to 30 s).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    let builder = builder.http1_only();
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // wait a moment rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away or breaks the protocol ends only its own connection.
            let _ = connection.await;
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after 30 s of shutdown were cut off");
    }
    Ok(())
}
