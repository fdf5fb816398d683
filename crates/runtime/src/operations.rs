//! The operations endpoint every service serves: `/metrics` (Prometheus text), `/healthz` (the
//! process runs) and `/readyz` (its dependencies answer).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, Registry, TextEncoder};

/// Decides whether the service is ready (its dependencies answer).
pub trait Readiness: Send + Sync + 'static {
    /// `Ok` when ready; otherwise what is not.
    fn check(&self) -> impl Future<Output = Result<(), String>> + Send;
}

/// Ready when PostgreSQL answers a query and the broker answers a metadata request: what a
/// service that reads or writes both needs. The broker client is made once and reconnects by
/// itself; each probe only asks it.
pub struct DatabaseAndBroker {
    pool: sqlx::PgPool,
    broker: rdkafka::producer::FutureProducer,
}

impl DatabaseAndBroker {
    /// A probe of `pool` and the broker `kafka` names.
    pub fn new(
        pool: sqlx::PgPool,
        kafka: &continuity_stream::KafkaSettings,
    ) -> Result<Self, continuity_stream::StreamError> {
        Ok(DatabaseAndBroker {
            pool,
            broker: kafka.producer()?,
        })
    }
}

impl Readiness for DatabaseAndBroker {
    async fn check(&self) -> Result<(), String> {
        sqlx::query("select 1")
            .execute(&self.pool)
            .await
            .map_err(|_| "database does not answer".to_owned())?;
        let broker = self.broker.clone();
        tokio::task::spawn_blocking(move || {
            use rdkafka::producer::Producer;
            broker
                .client()
                .fetch_metadata(None, std::time::Duration::from_secs(2))
                .map(|_| ())
                .map_err(|e| format!("broker: {e}"))
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

struct HttpState<R> {
    registry: Registry,
    readiness: R,
}

/// Serve `/metrics` (Prometheus text), `/healthz` (the process runs) and `/readyz` (its
/// dependencies answer) until `shutdown` completes.
pub async fn serve_operations<R: Readiness>(
    addr: SocketAddr,
    registry: Registry,
    readiness: R,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(address = %listener.local_addr()?, "operations endpoint listening");
    serve_operations_on(listener, registry, readiness, shutdown).await
}

/// As [`serve_operations`], on a listener the caller bound (port 0 in tests).
pub async fn serve_operations_on<R: Readiness>(
    listener: tokio::net::TcpListener,
    registry: Registry,
    readiness: R,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    crate::http::serve(listener, operations_router(registry, readiness), shutdown).await?;
    Ok(())
}

/// The `/metrics`, `/healthz` and `/readyz` routes, for a service that serves more (merge its
/// own routes into this router).
pub fn operations_router<R: Readiness>(registry: Registry, readiness: R) -> Router {
    let state = Arc::new(HttpState {
        registry,
        readiness,
    });
    Router::new()
        .route("/metrics", get(metrics::<R>))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready::<R>))
        .with_state(state)
}

async fn metrics<R: Readiness>(State(state): State<Arc<HttpState<R>>>) -> impl IntoResponse {
    let mut buffer = Vec::new();
    let encoder = TextEncoder::new();
    match encoder.encode(&state.registry.gather(), &mut buffer) {
        Ok(()) => (
            StatusCode::OK,
            [("content-type", encoder.format_type().to_owned())],
            buffer,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "text/plain".to_owned())],
            e.to_string().into_bytes(),
        ),
    }
}

/// How long `/readyz` waits for the dependencies before it answers not ready. A database or
/// broker cut off by the network answers nothing (a query on an open connection waits for
/// TCP to give up, minutes later); the probe must still answer, within the orchestrator's
/// probe timeout (3 s in `k8s/`).
pub const READINESS_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

async fn ready<R: Readiness>(State(state): State<Arc<HttpState<R>>>) -> impl IntoResponse {
    let why = match tokio::time::timeout(READINESS_DEADLINE, state.readiness.check()).await {
        Ok(Ok(())) => return (StatusCode::OK, "ready\n".to_owned()),
        Ok(Err(why)) => why,
        Err(_) => format!(
            "its dependencies did not answer within {} s (database or broker unreachable)",
            READINESS_DEADLINE.as_secs()
        ),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("not ready: {why}\n"),
    )
}
