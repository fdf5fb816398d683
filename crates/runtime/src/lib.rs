//! What every service shares at its edges: layered configuration, JSON logs, the HTTP server
//! for `/metrics`, `/healthz` and `/readyz`, the clock, and shutdown on SIGTERM or Ctrl-C.
//! One way to do each, so services differ only in their work.

#![warn(missing_docs)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use prometheus::{Encoder, Registry, TextEncoder};
use serde::de::DeserializeOwned;

/// Load configuration: an optional TOML file, then `CONTINUITY_`-prefixed environment
/// variables with `__` between nested keys (`CONTINUITY_DATABASE__URL`). Later sources win.
pub fn load_config<T: DeserializeOwned>(file: Option<&Path>) -> anyhow::Result<T> {
    let mut builder = config::Config::builder();
    if let Some(path) = file {
        builder = builder.add_source(config::File::from(path).required(true));
    }
    let settings = builder
        .add_source(
            config::Environment::with_prefix("CONTINUITY")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true),
        )
        .build()?;
    settings
        .try_deserialize()
        .map_err(|e| anyhow::anyhow!("configuration is invalid: {e}"))
}

/// JSON logs to stderr, filtered by `RUST_LOG` (default `info`). Call once, first.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rdkafka=warn,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

/// Where time comes from: the wall clock in production, a hand-moved one in tests.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock a test moves by hand.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    /// Move the clock to `to`.
    pub fn set(&self, to: DateTime<Utc>) {
        if let Ok(mut now) = self.0.lock() {
            *now = to;
        }
    }

    /// Move the clock on by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        if let Ok(mut now) = self.0.lock() {
            *now += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
            .lock()
            .map(|t| *t)
            .unwrap_or_else(|e| *e.into_inner())
    }
}

/// The clock a service runs on: fixed at `fixed_now` when set (replays and tests), the
/// system clock otherwise.
pub fn clock(fixed_now: Option<DateTime<Utc>>) -> Arc<dyn Clock> {
    match fixed_now {
        Some(t) => Arc::new(ManualClock::new(t)),
        None => Arc::new(SystemClock),
    }
}

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
    axum::serve(listener, operations_router(registry, readiness))
        .with_graceful_shutdown(shutdown)
        .await?;
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

async fn ready<R: Readiness>(State(state): State<Arc<HttpState<R>>>) -> impl IntoResponse {
    match state.readiness.check().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested");
}

pub use secrecy::{ExposeSecret, SecretString};
