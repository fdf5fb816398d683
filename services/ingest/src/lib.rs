//! Ingest: the HTTP front door for prisons, probation and treatment providers that cannot
//! produce to Kafka. It authenticates the source, checks it may send each event, validates
//! with the same rules the matcher applies, and answers `202` only once the broker has
//! acknowledged the write (`acks=all`, idempotent producer); if the broker cannot take it, the
//! answer is `503` with `Retry-After`, never `202`. Batches answer per row. Every
//! authenticated request leaves an audit row in PostgreSQL (counts, kinds, ids).
//!
//! Endpoints (documented in `openapi.yaml`, served at `/openapi.yaml`):
//! - `POST /v1/events/{kind}`: one JSON event, a JSON array, or NDJSON ([`api`]);
//! - `POST /v1/hmpps/events`: HMPPS domain events, SNS-wrapped or bare ([`hmpps`]);
//! - `POST /v1/treatment/extracts`: a provider's CSV extract ([`ndtms`]).

#![warn(missing_docs)]

pub mod api;
pub mod audit;
pub mod hmpps;
pub mod ndtms;
pub mod rows;
pub mod sources;
pub mod time;

#[cfg(test)]
mod fuzz;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use continuity_domain::KeyedHasher;
use continuity_runtime::{Checked, Clock, ClockSettings, DatabaseSettings, HashSecret};
use continuity_stream::KafkaSettings;
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};
use rdkafka::producer::FutureProducer;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::api::EventKind;
use crate::rows::{
    record_name, AcceptedEvent, Admitted, Decision, FieldProblem, Parsed, RowResult,
};
use crate::sources::{Principal, Role, SourceConfig, Sources};

/// The OpenAPI description, served at `/openapi.yaml`.
pub const OPENAPI: &str = include_str!("../openapi.yaml");

/// Configuration (file, then `CONTINUITY_*` environment variables).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// PostgreSQL, for the audit trail (`database_url`, `database_pool`).
    #[serde(flatten)]
    pub database: DatabaseSettings,
    /// The broker and topic names (`brokers`, `topic_prefix`).
    #[serde(flatten)]
    pub kafka: KafkaSettings,
    /// Secret for keyed hashes of message keys (`CONTINUITY_HASH_SECRET`); the matcher's.
    pub hash_secret: HashSecret,
    /// Address of the API and of `/metrics`, `/healthz`, `/readyz`.
    pub http_addr: SocketAddr,
    /// Sources, inline.
    pub sources: Vec<SourceConfig>,
    /// A TOML file of `[[sources]]`, added to the inline ones.
    pub sources_file: Option<PathBuf>,
    /// Requests per second per source, unless the source sets its own; bursts of twice that.
    pub requests_per_second: u32,
    /// Largest request body in bytes (413 above).
    pub max_body_bytes: usize,
    /// How long to wait for the broker's acknowledgement before answering 503, in ms.
    pub produce_timeout_ms: u64,
    /// Which CSV headers hold which field in treatment extracts.
    pub csv_columns: ndtms::Columns,
    /// Run migrations at start-up.
    pub migrate_on_start: bool,
    /// The clock (`fixed_now`; tests only).
    #[serde(flatten)]
    pub clock: ClockSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database: DatabaseSettings {
                database_pool: 6,
                ..DatabaseSettings::default()
            },
            kafka: KafkaSettings::default(),
            hash_secret: HashSecret::default(),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 9103)),
            sources: Vec::new(),
            sources_file: None,
            requests_per_second: 50,
            max_body_bytes: 32 * 1024 * 1024,
            produce_timeout_ms: 5_000,
            csv_columns: ndtms::Columns::default(),
            migrate_on_start: true,
            clock: ClockSettings::default(),
        }
    }
}

impl Checked for Settings {
    fn check(&self) -> Result<(), String> {
        self.hash_secret.expose().map(|_| ()).map_err(str::to_owned)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourcesFile {
    sources: Vec<SourceConfig>,
}

impl Settings {
    /// Every configured source: inline, then from `sources_file`.
    pub fn all_sources(&self) -> anyhow::Result<Vec<SourceConfig>> {
        let mut all = self.sources.clone();
        if let Some(path) = &self.sources_file {
            let file: SourcesFile = continuity_runtime::load_file(path)?;
            all.extend(file.sources);
        }
        Ok(all)
    }
}

/// The service's counters.
#[derive(Clone)]
pub struct Metrics {
    /// The registry served at `/metrics`.
    pub registry: Registry,
    requests: IntCounterVec,
    rows: IntCounterVec,
    events: IntCounterVec,
    seconds: HistogramVec,
    broker_failures: IntCounter,
}

impl Metrics {
    fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "continuity_ingest_requests_total",
                "Requests answered, by endpoint and HTTP status",
            ),
            &["endpoint", "status"],
        )?;
        let rows = IntCounterVec::new(
            Opts::new(
                "continuity_ingest_rows_total",
                "Rows (events, HMPPS messages, CSV lines) by endpoint and result",
            ),
            &["endpoint", "result"],
        )?;
        let events = IntCounterVec::new(
            Opts::new(
                "continuity_ingest_events_total",
                "Source events written to the broker, by record type",
            ),
            &["record"],
        )?;
        let seconds = HistogramVec::new(
            HistogramOpts::new(
                "continuity_ingest_request_seconds",
                "Time to answer a request, by endpoint",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["endpoint"],
        )?;
        let broker_failures = IntCounter::new(
            "continuity_ingest_broker_unavailable_total",
            "Requests answered 503 because the broker did not acknowledge in time",
        )?;
        for c in [&requests, &rows, &events] {
            registry.register(Box::new(c.clone()))?;
        }
        registry.register(Box::new(seconds.clone()))?;
        registry.register(Box::new(broker_failures.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            rows,
            events,
            seconds,
            broker_failures,
        })
    }
}

/// The running service's state.
pub struct Ingest {
    sources: Sources,
    kafka: KafkaSettings,
    /// The source topics' full names.
    topics: BTreeMap<continuity_stream::Topic, String>,
    /// Replaced after a failed send: an idempotent producer whose messages timed out may not
    /// recover its sequence state when the broker returns.
    producer: std::sync::RwLock<FutureProducer>,
    produce_timeout: Duration,
    pool: PgPool,
    audit_trail: audit::AuditTrail,
    hasher: KeyedHasher,
    clock: Arc<dyn Clock>,
    columns: ndtms::Columns,
    max_body_bytes: usize,
    /// Counters.
    pub metrics: Metrics,
}

impl Ingest {
    /// Connect (lazily) to PostgreSQL and the broker and load the sources.
    pub async fn new(settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let secret = settings.hash_secret.expose().map_err(anyhow::Error::msg)?;
        let configs = settings.all_sources()?;
        let sources = Sources::new(&configs, settings.requests_per_second)?;
        if sources.is_empty() {
            tracing::warn!("no sources are configured: every request will be refused (401)");
        }
        let pool = continuity_store::pool(
            settings.database.url(),
            settings.database.database_pool,
            Duration::from_secs(3),
            continuity_store::Access::General,
        )?;
        if settings.migrate_on_start {
            continuity_store::migrate(&pool).await?;
        }
        let kafka = settings.kafka.clone();
        let produce_timeout = Duration::from_millis(settings.produce_timeout_ms.max(1));
        let producer = kafka.producer_with_timeout(produce_timeout)?;
        Ok(Ingest {
            topics: continuity_stream::Topic::SOURCES
                .iter()
                .map(|t| (*t, kafka.topic(*t)))
                .collect(),
            sources,
            kafka,
            producer: std::sync::RwLock::new(producer),
            produce_timeout,
            audit_trail: audit::AuditTrail::start(pool.clone()),
            pool,
            hasher: KeyedHasher::new(secret),
            clock,
            columns: settings.csv_columns.clone(),
            max_body_bytes: settings.max_body_bytes,
            metrics: Metrics::new()?,
        })
    }

    /// The HTTP API with `/metrics`, `/healthz`, `/readyz` and `/openapi.yaml`.
    pub fn router(self: Arc<Self>) -> Result<Router, continuity_stream::StreamError> {
        let operations = continuity_runtime::operations_router(
            self.metrics.registry.clone(),
            continuity_runtime::DatabaseAndBroker::new(self.pool.clone(), &self.kafka)?,
        );
        Ok(Router::new()
            .route("/v1/events/{kind}", post(post_events))
            .route("/v1/hmpps/events", post(post_hmpps))
            .route("/v1/treatment/extracts", post(post_extract))
            .route(
                "/openapi.yaml",
                get(|| async { ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI) }),
            )
            .with_state(self)
            .merge(operations))
    }
}

/// Serve until `shutdown` completes; requests in flight finish first.
pub async fn serve(
    ingest: Arc<Ingest>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "ingest listening");
    axum::serve(listener, ingest.router()?)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// How a request's body is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// One JSON value: an object (a single event) or an array (a batch).
    Json,
    /// One JSON object per line (a batch).
    NdJson,
}

fn layout(headers: &HeaderMap) -> Layout {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if ct.contains("ndjson") || ct.contains("jsonl") || ct.contains("json-seq") {
        Layout::NdJson
    } else {
        Layout::Json
    }
}

/// The requests that carry events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// `POST /v1/events/{kind}`.
    Events(EventKind),
    /// `POST /v1/hmpps/events`.
    Hmpps,
    /// `POST /v1/treatment/extracts`, with its `extracted_at` query parameter.
    Extracts(ExtractedAt),
}

/// The `extracted_at` query parameter of an extract upload: the extract's own time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExtractedAt {
    /// Not given.
    NotGiven,
    /// Given and valid.
    At(DateTime<Utc>),
    /// Given, and not a date or date-time.
    Invalid,
}

impl Endpoint {
    /// Its name in metric labels and the audit trail (from fixed lists only).
    fn name(self) -> String {
        match self {
            Endpoint::Events(kind) => format!("events/{}", kind.path()),
            Endpoint::Hmpps => "hmpps".into(),
            Endpoint::Extracts(_) => "treatment-extracts".into(),
        }
    }

    /// Whether a role may use it at all.
    fn allows(self, role: Role) -> bool {
        match self {
            Endpoint::Events(kind) => role.may_send(kind.record()),
            Endpoint::Hmpps => role == Role::Hmpps,
            Endpoint::Extracts(_) => role == Role::TreatmentProvider,
        }
    }

    /// Why a role may not, in the sender's words.
    fn refusal(self, role: Role) -> String {
        match self {
            Endpoint::Events(kind) => {
                format!("a {} source may not send {}", role.name(), kind.path())
            }
            Endpoint::Hmpps => format!(
                "HMPPS domain events come from the HMPPS feed only; a {} source sends /v1/events/{{kind}}",
                role.name()
            ),
            Endpoint::Extracts(_) => format!(
                "treatment extracts come from treatment providers only; this is a {} source",
                role.name()
            ),
        }
    }
}

/// How the sender names a record field that validation names (`person.noms`).
enum FieldNames {
    /// The JSON form uses the record's own names.
    Record,
    /// An HMPPS event's field.
    Hmpps,
    /// The extract's own column.
    Columns(ndtms::ColumnNames),
}

impl FieldNames {
    fn name(&self, record_field: &str) -> String {
        match self {
            FieldNames::Record => record_field.to_owned(),
            FieldNames::Hmpps => hmpps::field_in_event(record_field).to_owned(),
            FieldNames::Columns(columns) => columns.name(record_field),
        }
    }
}

/// The rows of a request, whether it was a single event (answered on its own), and how the
/// sender names the fields.
struct Rows {
    rows: Vec<(u64, Parsed)>,
    single: bool,
    names: FieldNames,
    /// When each row was recorded, where the adapter knows it apart from the events (a
    /// treatment extract's rows), by row number.
    recorded: BTreeMap<u64, ndtms::Recorded>,
}

/// A failure of the whole request, or a refused single event, as `application/problem+json`
/// (RFC 9457) with any extension members.
struct Problem {
    status: StatusCode,
    title: &'static str,
    detail: String,
    extensions: serde_json::Map<String, Value>,
    retry_after: Option<u64>,
}

impl Problem {
    fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            title,
            detail: detail.into(),
            extensions: serde_json::Map::new(),
            retry_after: None,
        }
    }

    /// Add an extension member (`errors`, `rows`).
    fn with(mut self, name: &str, value: Value) -> Self {
        self.extensions.insert(name.to_owned(), value);
        self
    }

    fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    fn into_response(self) -> Response {
        let mut body = self.extensions;
        body.insert(
            "type".into(),
            json!(format!("urn:continuity:problem:{}", slug(self.title))),
        );
        body.insert("title".into(), json!(self.title));
        body.insert("status".into(), json!(self.status.as_u16()));
        body.insert("detail".into(), json!(self.detail));
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            Value::Object(body).to_string(),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"continuity-ingest\""),
            );
        }
        response
    }
}

fn slug(title: &str) -> String {
    title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// Split a JSON or NDJSON body into values, one per row, and say whether it was one object;
/// a line that is not JSON is a rejected row of its own.
#[allow(clippy::type_complexity)]
fn json_rows(
    body: &[u8],
    layout: Layout,
) -> Result<(Vec<(u64, Result<Value, FieldProblem>)>, bool), Problem> {
    match layout {
        Layout::Json => {
            let value: Value = serde_json::from_slice(body).map_err(|e| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "Body is not JSON",
                    format!(
                        "the body is not valid JSON (line {} column {}); send one JSON object, an array of them, or NDJSON with Content-Type application/x-ndjson",
                        e.line(),
                        e.column()
                    ),
                )
                .with("errors", json!([FieldProblem::new("(body)", "is not valid JSON")]))
            })?;
            Ok(match value {
                Value::Array(items) => (
                    items
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (i as u64 + 1, Ok(v)))
                        .collect(),
                    false,
                ),
                other => (vec![(1, Ok(other))], true),
            })
        }
        Layout::NdJson => Ok((
            body.split(|b| *b == b'\n')
                .enumerate()
                .filter(|(_, line)| line.iter().any(|b| !b.is_ascii_whitespace()))
                .map(|(i, line)| {
                    let parsed = serde_json::from_slice(line).map_err(|e| {
                        FieldProblem::new(
                            "(line)",
                            format!("is not valid JSON (column {})", e.column()),
                        )
                    });
                    (i as u64 + 1, parsed)
                })
                .collect(),
            false,
        )),
    }
}

async fn post_events(
    State(app): State<Arc<Ingest>>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match EventKind::from_path(&kind) {
        Some(kind) => app.handle(Endpoint::Events(kind), &headers, body).await,
        None => {
            let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.path()).collect();
            Problem::new(
                StatusCode::NOT_FOUND,
                "Unknown event kind",
                format!("the event kinds are {}", known.join(", ")),
            )
            .into_response()
        }
    }
}

async fn post_hmpps(State(app): State<Arc<Ingest>>, headers: HeaderMap, body: Body) -> Response {
    app.handle(Endpoint::Hmpps, &headers, body).await
}

async fn post_extract(
    State(app): State<Arc<Ingest>>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let extracted_at = match query.as_ref().map(|q| q.get("extracted_at")) {
        Ok(None) => ExtractedAt::NotGiven,
        Ok(Some(raw)) => ndtms::recorded_instant(raw, app.clock.now())
            .map_or(ExtractedAt::Invalid, ExtractedAt::At),
        Err(_) => ExtractedAt::Invalid,
    };
    app.handle(Endpoint::Extracts(extracted_at), &headers, body)
        .await
}

/// The rows of a `POST /v1/events/{kind}` body sent by `source` at `now`.
fn event_rows(
    kind: EventKind,
    layout: Layout,
    body: &[u8],
    source: &str,
    now: DateTime<Utc>,
) -> Result<Rows, Problem> {
    let (values, single) = json_rows(body, layout)?;
    let rows = values
        .into_iter()
        .map(|(n, value)| {
            let parsed = value.and_then(|value| {
                let envelope = continuity_schema::wire::Envelope {
                    event_id: Uuid::nil(),
                    occurred_at: now.timestamp_micros(),
                    source: source.to_owned(),
                    schema_version: 1,
                };
                kind.parse_value(&value, envelope)
                    .map_err(|e| FieldProblem::new(e.field, e.problem))
            });
            let parsed = match parsed {
                Ok(record) => Parsed::one(record),
                Err(problem) => Parsed::Rejected(vec![problem]),
            };
            (n, parsed)
        })
        .collect();
    Ok(Rows {
        rows,
        single,
        names: FieldNames::Record,
        recorded: BTreeMap::new(),
    })
}

/// The rows of a `POST /v1/hmpps/events` body sent by `source`.
fn hmpps_rows(layout: Layout, body: &[u8], source: &str) -> Result<Rows, Problem> {
    let (values, single) = json_rows(body, layout)?;
    let rows = values
        .into_iter()
        .map(|(n, value)| {
            let parsed = match value {
                Err(p) => Parsed::Rejected(vec![p]),
                Ok(v) => hmpps::adapt(&v, source),
            };
            (n, parsed)
        })
        .collect();
    Ok(Rows {
        rows,
        single,
        names: FieldNames::Hmpps,
        recorded: BTreeMap::new(),
    })
}

/// The rows of a treatment extract sent by the provider `source` at `now`.
fn extract_rows(
    columns: &ndtms::Columns,
    body: &[u8],
    source: &str,
    extracted_at: ExtractedAt,
    received_at: DateTime<Utc>,
) -> Result<Rows, Problem> {
    let extracted_at = match extracted_at {
        ExtractedAt::NotGiven => None,
        ExtractedAt::At(at) => Some(at),
        ExtractedAt::Invalid => return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "Invalid query parameter",
            "extracted_at must be a date (YYYY-MM-DD) or a date-time such as 2026-11-20T14:09:54Z",
        )
        .with(
            "errors",
            json!([FieldProblem::new(
                "extracted_at",
                "is not a date or date-time"
            )]),
        )),
    };
    let upload = ndtms::Upload {
        extracted_at,
        received_at,
    };
    let extract = ndtms::parse(body, columns, source, upload).map_err(|problem| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unusable extract",
            "the extract's header does not have the columns needed",
        )
        .with("errors", json!([problem]))
    })?;
    Ok(Rows {
        rows: extract.rows,
        single: false,
        names: FieldNames::Columns(extract.columns),
        recorded: extract.recorded,
    })
}

impl Ingest {
    async fn handle(
        self: &Arc<Self>,
        endpoint: Endpoint,
        headers: &HeaderMap,
        body: Body,
    ) -> Response {
        let started = std::time::Instant::now();
        let name = endpoint.name();
        let response = self.answer(endpoint, &name, headers, body).await;
        self.metrics
            .requests
            .with_label_values(&[name.as_str(), response.status().as_str()])
            .inc();
        self.metrics
            .seconds
            .with_label_values(&[name.as_str()])
            .observe(started.elapsed().as_secs_f64());
        response
    }

    async fn answer(
        &self,
        endpoint: Endpoint,
        name: &str,
        headers: &HeaderMap,
        body: Body,
    ) -> Response {
        let Some(principal) = self.authenticate(headers) else {
            return Problem::new(
                StatusCode::UNAUTHORIZED,
                "Not authenticated",
                "send the source's token as Authorization: Bearer <token>",
            )
            .into_response();
        };
        let received_at = self.clock.now();
        // The rate limit comes first, so no request, allowed or not, costs more than its share.
        if let Err(wait) = principal.admit_request() {
            return Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                format!("this source's request rate is limited; retry after {wait} s, or send fewer, larger batches"),
            )
            .retry_after(wait)
            .into_response();
        }
        if !endpoint.allows(principal.role) {
            self.audit(&principal, name, received_at, 403, &[], &[])
                .await
                .ok();
            return Problem::new(
                StatusCode::FORBIDDEN,
                "Not allowed",
                endpoint.refusal(principal.role),
            )
            .into_response();
        }
        let body = match self.read_body(headers, body).await {
            Ok(b) => b,
            Err(p) => return p.into_response(),
        };
        let source = principal.organisation.as_str();
        let parsed = match endpoint {
            Endpoint::Events(kind) => event_rows(kind, layout(headers), &body, source, received_at),
            Endpoint::Hmpps => hmpps_rows(layout(headers), &body, source),
            Endpoint::Extracts(at) => extract_rows(&self.columns, &body, source, at, received_at),
        };
        let rows = match parsed {
            Ok(r) => r,
            Err(p) => {
                self.audit(&principal, name, received_at, p.status.as_u16(), &[], &[])
                    .await
                    .ok();
                return p.into_response();
            }
        };

        // Each row is refused with its answer, or admitted: its records join what is sent.
        let today = continuity_domain::london_date(received_at);
        let mut accepted: Vec<Admitted> = Vec::new();
        let mut decided: Vec<(u64, Result<std::ops::Range<usize>, RowResult>)> =
            Vec::with_capacity(rows.rows.len());
        for (n, parsed) in rows.rows {
            let field_name = |f: &str| rows.names.name(f);
            match rows::admit(parsed, &principal, today, &self.hasher, &field_name) {
                Decision::Send(admitted) => {
                    let from = accepted.len();
                    accepted.extend(admitted);
                    decided.push((n, Ok(from..accepted.len())));
                }
                Decision::Done(result) => decided.push((n, Err(result))),
            }
        }
        if let Err(p) = self.send(&accepted).await {
            let refused: Vec<(u64, RowResult)> = decided
                .into_iter()
                .filter_map(|(n, d)| d.err().map(|r| (n, r)))
                .collect();
            self.audit(&principal, name, received_at, 503, &[], &refused)
                .await
                .ok();
            return p.into_response();
        }
        let results: Vec<(u64, RowResult)> = decided
            .into_iter()
            .map(|(n, d)| {
                let result = match d {
                    Ok(range) => RowResult::Accepted {
                        events: accepted[range].iter().map(AcceptedEvent::of).collect(),
                        recorded: rows.recorded.get(&n).cloned(),
                    },
                    Err(refused) => refused,
                };
                (n, result)
            })
            .collect();
        let response = answer_rows(&results, rows.single);
        let status = response.status().as_u16();
        let audited = self
            .audit(&principal, name, received_at, status, &accepted, &results)
            .await;
        if audited.is_err() {
            return Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Audit unavailable",
                "the events were written but the audit trail could not be; resend the same request (it creates nothing new)",
            )
            .retry_after(5)
            .into_response();
        }
        self.count(name, &results);
        response
    }

    fn authenticate(&self, headers: &HeaderMap) -> Option<Arc<Principal>> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        self.sources.authenticate(token.trim())
    }

    async fn read_body(&self, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Problem> {
        let too_large = || {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Body too large",
                format!(
                    "the body is over {} bytes; split it into smaller batches",
                    self.max_body_bytes
                ),
            )
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > self.max_body_bytes) {
            return Err(too_large());
        }
        match axum::body::to_bytes(body, self.max_body_bytes).await {
            Ok(b) => Ok(b.to_vec()),
            // axum reports the limit as an error whose text says so; nothing else is typed.
            Err(e) if e.to_string().contains("length limit") => Err(too_large()),
            Err(_) => Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "Body not read",
                "the request body could not be read completely",
            )),
        }
    }

    /// Write every admitted record and wait for the broker's acknowledgement of all of them.
    async fn send(&self, admitted: &[Admitted]) -> Result<(), Problem> {
        if admitted.is_empty() {
            return Ok(());
        }
        let mut messages: Vec<continuity_stream::Outgoing<'_>> = Vec::with_capacity(admitted.len());
        for a in admitted {
            let Some(topic) = self.topics.get(&a.topic) else {
                tracing::error!(topic = ?a.topic, "an admitted record has no source topic");
                return Err(self.unavailable());
            };
            messages.push(continuity_stream::Outgoing::new(
                topic.as_str(),
                Some(a.key.as_slice()),
                a.payload.as_slice(),
            ));
        }
        let producer = match self.producer.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let sent = tokio::time::timeout(
            self.produce_timeout + Duration::from_secs(1),
            continuity_stream::send_all(&producer, messages),
        )
        .await;
        match sent {
            Ok(Ok(())) => {
                for a in admitted {
                    self.metrics
                        .events
                        .with_label_values(&[record_name(a.record).as_str()])
                        .inc();
                }
                Ok(())
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the broker did not acknowledge; answering 503");
                Err(self.unavailable())
            }
            Err(_) => {
                tracing::warn!("the broker did not acknowledge in time; answering 503");
                Err(self.unavailable())
            }
        }
    }

    fn unavailable(&self) -> Problem {
        self.metrics.broker_failures.inc();
        match self.kafka.producer_with_timeout(self.produce_timeout) {
            Ok(fresh) => match self.producer.write() {
                Ok(mut p) => *p = fresh,
                Err(poisoned) => *poisoned.into_inner() = fresh,
            },
            Err(e) => tracing::error!(error = %e, "could not create a new producer"),
        }
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Broker unavailable",
            "the events could not be written now and none is accepted; resend the same request later (resending creates nothing new)",
        )
        .retry_after(10)
    }

    /// One audit row: who sent what, the answer, the rows by result and the events written.
    async fn audit(
        &self,
        principal: &Principal,
        endpoint: &str,
        received_at: DateTime<Utc>,
        status: u16,
        written: &[Admitted],
        results: &[(u64, RowResult)],
    ) -> Result<(), audit::AuditUnavailable> {
        let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
        for a in written {
            *kinds.entry(record_name(a.record)).or_default() += 1;
        }
        let count = |f: fn(&RowResult) -> bool| results.iter().filter(|(_, r)| f(r)).count() as i32;
        self.audit_trail
            .record(audit::AuditRow {
                received_at,
                source: principal.name.clone(),
                organisation: principal.organisation.as_str().to_owned(),
                endpoint: endpoint.to_owned(),
                status,
                accepted: count(|r| matches!(r, RowResult::Accepted { .. })),
                ignored: count(|r| matches!(r, RowResult::Ignored { .. })),
                rejected: count(|r| {
                    matches!(r, RowResult::Rejected { .. } | RowResult::Forbidden { .. })
                }),
                kinds,
                event_ids: written.iter().map(|a| a.id).collect(),
            })
            .await
    }

    fn count(&self, endpoint: &str, results: &[(u64, RowResult)]) {
        for (_, r) in results {
            self.metrics
                .rows
                .with_label_values(&[endpoint, r.code()])
                .inc();
        }
    }
}

/// The answer to a request's rows. A single event is answered on its own (202, or 422/403 as
/// a problem); a batch with every row accepted or ignored is 202, with some refused 207, with
/// none accepted a 422 problem listing the rows.
fn answer_rows(results: &[(u64, RowResult)], single: bool) -> Response {
    if let (true, [(_, result)]) = (single, results) {
        return match result {
            RowResult::Accepted { .. } | RowResult::Ignored { .. } => {
                json_response(StatusCode::ACCEPTED, &json!(result))
            }
            RowResult::Rejected { errors } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid event",
                describe(errors),
            )
            .with("errors", json!(errors))
            .into_response(),
            RowResult::Forbidden { detail } => {
                Problem::new(StatusCode::FORBIDDEN, "Not allowed", detail.clone()).into_response()
            }
        };
    }
    let n = |f: fn(&RowResult) -> bool| results.iter().filter(|(_, r)| f(r)).count();
    let accepted = n(|r| matches!(r, RowResult::Accepted { .. }));
    let ignored = n(|r| matches!(r, RowResult::Ignored { .. }));
    let refused = results.len() - accepted - ignored;
    let rows: Vec<Value> = results
        .iter()
        .map(|(row, r)| {
            let mut v = json!(r);
            v["row"] = json!(row);
            v
        })
        .collect();
    if refused > 0 && accepted == 0 {
        return Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "No row accepted",
            format!("{refused} rows refused; see rows"),
        )
        .with("accepted", json!(0))
        .with("ignored", json!(ignored))
        .with("rejected", json!(refused))
        .with("rows", json!(rows))
        .into_response();
    }
    let status = if refused == 0 {
        StatusCode::ACCEPTED
    } else {
        StatusCode::MULTI_STATUS
    };
    json_response(
        status,
        &json!({
            "accepted": accepted,
            "ignored": ignored,
            "rejected": refused,
            "rows": rows,
        }),
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn describe(errors: &[FieldProblem]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.problem))
        .collect::<Vec<_>>()
        .join("; ")
}
