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

/// Whether a service's own writes reach PostgreSQL, as its write path last found: a server
/// that answers `select 1` may still refuse every write (its disk full, a read-only standby
/// after a failover, no connection slots left). Only for a service whose work does not arrive
/// through the load balancer (the matcher): one that is sent no traffic while not ready would
/// never write again to find out it can.
#[derive(Debug, Clone, Default)]
pub struct Writes(Arc<std::sync::Mutex<Option<String>>>);

impl Writes {
    /// A write committed.
    pub fn succeeded(&self) {
        if let Ok(mut last) = self.0.lock() {
            *last = None;
        }
    }

    /// A write failed with `error`.
    pub fn failed(&self, error: &sqlx::Error) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some(database_failure(error));
        }
    }

    /// `Err` with the reason while the last write failed.
    fn check(&self) -> Result<(), String> {
        match self.0.lock().ok().and_then(|last| last.clone()) {
            None => Ok(()),
            Some(why) => Err(format!("its last write to the database failed: {why}")),
        }
    }
}

/// What went wrong with a database statement, for an operator: the SQLSTATE and its name for
/// the server's refusals, never the server's message, which can quote a value.
pub fn database_failure(error: &sqlx::Error) -> String {
    match error.as_database_error().and_then(|e| e.code()) {
        Some(code) => {
            let name = match code.as_ref() {
                "53100" => "disk full",
                "53200" => "out of memory",
                "53300" => "too many connections",
                "25006" => "read-only transaction (a standby?)",
                "57P01" | "57P02" | "57P03" => "server shutting down or starting",
                "40001" | "40P01" => "conflict with a concurrent transaction",
                _ => "refused",
            };
            format!("PostgreSQL: {name} (SQLSTATE {code})")
        }
        // Connection, pool and protocol errors say nothing about the data.
        None => format!("PostgreSQL: {error}"),
    }
}

/// Ready when PostgreSQL answers a query and the broker answers a metadata request: what a
/// service that reads or writes both needs. The broker client is made once and reconnects by
/// itself; each probe only asks it. With [`DatabaseAndBroker::with_writes`], also not ready
/// while the service's last write failed.
pub struct DatabaseAndBroker {
    pool: sqlx::PgPool,
    broker: rdkafka::producer::FutureProducer,
    writes: Option<Writes>,
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
            writes: None,
        })
    }

    /// Also not ready while the last write `writes` saw failed.
    pub fn with_writes(self, writes: Writes) -> Self {
        DatabaseAndBroker {
            writes: Some(writes),
            ..self
        }
    }
}

impl Readiness for DatabaseAndBroker {
    async fn check(&self) -> Result<(), String> {
        sqlx::query("select 1")
            .execute(&self.pool)
            .await
            .map_err(|_| "database does not answer".to_owned())?;
        if let Some(writes) = &self.writes {
            writes.check()?;
        }
        let broker = self.broker.clone();
        tokio::task::spawn_blocking(move || {
            use rdkafka::producer::Producer;
            broker
                .client()
                // Within the whole probe's deadline, so a broker that is down is named as such.
                .fetch_metadata(None, READINESS_DEADLINE / 2)
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
