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

mod answer;
mod body;
mod endpoint;
mod metrics;
mod object;
mod problem;
mod publish;
mod settings;

#[cfg(test)]
mod fuzz;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use continuity_domain::KeyedHasher;
use continuity_runtime::Clock;
use sqlx::PgPool;

use crate::api::EventKind;
use crate::endpoint::{Endpoint, ExtractedAt};
use crate::problem::Refused;
use crate::publish::Publisher;
use crate::rows::{record_name, AcceptedEvent, Admitted, Decision, RowResult};
use crate::sources::{Principal, Sources};

pub use crate::metrics::Metrics;
pub use crate::settings::Settings;

/// The OpenAPI description, served at `/openapi.yaml`.
pub const OPENAPI: &str = include_str!("../openapi.yaml");

/// The running service's state.
pub struct Ingest {
    sources: Sources,
    publisher: Publisher,
    pool: PgPool,
    audit_trail: audit::AuditTrail,
    hasher: KeyedHasher,
    clock: Arc<dyn Clock>,
    columns: ndtms::Columns,
    allocation_probation_service: Option<String>,
    max_body_bytes: usize,
    /// Counters.
    pub metrics: Metrics,
}

/// What an authenticated request came to, for its audit row: what was written and each row's
/// result (none when the request was refused whole).
struct Audited {
    principal: Arc<Principal>,
    received_at: DateTime<Utc>,
    written: Vec<Admitted>,
    results: Vec<(u64, RowResult)>,
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
            settings.connections.database.url(),
            settings.connections.database.database_pool,
            Duration::from_secs(3),
            continuity_store::Access::General,
        )?;
        if settings.migrate_on_start {
            continuity_store::migrate(&pool).await?;
        }
        let produce_timeout = Duration::from_millis(settings.produce_timeout_ms.max(1));
        Ok(Ingest {
            sources,
            publisher: Publisher::new(settings.connections.kafka.clone(), produce_timeout)?,
            audit_trail: audit::AuditTrail::start(pool.clone()),
            pool,
            hasher: KeyedHasher::new(secret),
            clock,
            columns: settings.csv_columns.clone(),
            allocation_probation_service: settings.allocation_probation_service.clone(),
            max_body_bytes: settings.max_body_bytes,
            metrics: Metrics::new(&configs.iter().map(|c| c.name.as_str()).collect::<Vec<_>>())?,
        })
    }

    /// The HTTP API with `/metrics`, `/healthz`, `/readyz` and `/openapi.yaml`.
    pub fn router(self: Arc<Self>) -> Result<Router, continuity_stream::StreamError> {
        let operations = continuity_runtime::operations_router(
            self.metrics.registry.clone(),
            continuity_runtime::DatabaseAndBroker::new(self.pool.clone(), self.publisher.kafka())?,
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

    /// Answer one request to an endpoint that carries events, audit it, and count it.
    async fn handle(
        self: &Arc<Self>,
        endpoint: Endpoint,
        headers: &HeaderMap,
        body: Body,
    ) -> Response {
        let started = std::time::Instant::now();
        let name = endpoint.name();
        let (mut response, audited) = match self.authenticate(headers) {
            None => {
                let (status, refused) = match self.sources.admit_unauthenticated() {
                    Ok(()) => ("401", Refused::NotAuthenticated),
                    Err(retry_after) => ("429", Refused::TooManyRequests { retry_after }),
                };
                self.metrics
                    .refused
                    .with_label_values(&[metrics::UNAUTHENTICATED, status])
                    .inc();
                (refused.into_response(), None)
            }
            Some(principal) => {
                let mut audited = Audited {
                    principal,
                    received_at: self.clock.now(),
                    written: Vec::new(),
                    results: Vec::new(),
                };
                // The rate limit comes first, so no request, allowed or not, costs more than
                // its share; a request refused by it is not audited (a flood would otherwise
                // write a row each).
                match audited.principal.admit_request() {
                    Err(retry_after) => (
                        Refused::TooManyRequests { retry_after }.into_response(),
                        None,
                    ),
                    Ok(()) => {
                        let response = self
                            .answer(endpoint, headers, body, &mut audited)
                            .await
                            .unwrap_or_else(IntoResponse::into_response);
                        (response, Some(audited))
                    }
                }
            }
        };
        // The audit is the last step: no answer leaves without its row stored.
        if let Some(audited) = audited {
            let status = response.status();
            if status == StatusCode::FORBIDDEN && audited.results.is_empty() {
                // Refused whole: the source sent to an endpoint its role may not use.
                self.metrics
                    .refused
                    .with_label_values(&[audited.principal.name.as_str(), "403"])
                    .inc();
            }
            if self.audit(&audited, &name, status.as_u16()).await.is_err()
                && status != StatusCode::SERVICE_UNAVAILABLE
            {
                response = Refused::AuditUnavailable {
                    written: !audited.written.is_empty(),
                }
                .into_response();
            } else {
                self.count_rows(&name, &audited.results);
            }
        }
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

    /// Read, parse, admit and write the request's rows, recording in `audited` what was
    /// written and each row's result.
    async fn answer(
        &self,
        endpoint: Endpoint,
        headers: &HeaderMap,
        body: Body,
        audited: &mut Audited,
    ) -> Result<Response, Refused> {
        let principal = Arc::clone(&audited.principal);
        let received_at = audited.received_at;
        if !endpoint.allows(principal.role) {
            return Err(Refused::NotAllowed(endpoint.refusal(principal.role)));
        }
        let body = self.read_body(headers, body).await?;
        let source = principal.organisation.as_str();
        let layout = body::layout(headers);
        let rows = match endpoint {
            Endpoint::Events(kind) => body::event_rows(kind, layout, &body, source, received_at),
            Endpoint::Hmpps => body::hmpps_rows(
                layout,
                &body,
                source,
                self.allocation_probation_service.as_deref(),
            ),
            Endpoint::Extracts(at) => {
                body::extract_rows(&self.columns, &body, source, at, received_at)
            }
        }?;

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
        if let Err(refused) = self.publisher.send(&accepted, &self.metrics).await {
            // Nothing was written: the audit row carries only the rows refused on their own.
            audited.results = decided
                .into_iter()
                .filter_map(|(n, d)| d.err().map(|r| (n, r)))
                .collect();
            return Err(refused);
        }
        audited.results = decided
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
        audited.written = accepted;
        Ok(answer::answer_rows(&audited.results, rows.single))
    }

    fn authenticate(&self, headers: &HeaderMap) -> Option<Arc<Principal>> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        self.sources.authenticate(token.trim())
    }

    async fn read_body(&self, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Refused> {
        let too_large = Refused::BodyTooLarge {
            limit: self.max_body_bytes,
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > self.max_body_bytes) {
            return Err(too_large);
        }
        match axum::body::to_bytes(body, self.max_body_bytes).await {
            Ok(b) => Ok(b.to_vec()),
            // axum reports the limit as an error whose text says so; nothing else is typed.
            Err(e) if e.to_string().contains("length limit") => Err(too_large),
            Err(_) => Err(Refused::BodyNotRead),
        }
    }

    /// One audit row: who sent what, the answer, the rows by result and the events written.
    async fn audit(
        &self,
        audited: &Audited,
        endpoint: &str,
        status: u16,
    ) -> Result<(), audit::AuditUnavailable> {
        let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
        for a in &audited.written {
            *kinds.entry(record_name(a.record)).or_default() += 1;
        }
        let results = &audited.results;
        let count = |f: fn(&RowResult) -> bool| results.iter().filter(|(_, r)| f(r)).count() as i32;
        self.audit_trail
            .record(audit::AuditRow {
                received_at: audited.received_at,
                source: audited.principal.name.clone(),
                organisation: audited.principal.organisation.as_str().to_owned(),
                endpoint: endpoint.to_owned(),
                status,
                accepted: count(|r| matches!(r, RowResult::Accepted { .. })),
                ignored: count(|r| matches!(r, RowResult::Ignored { .. })),
                rejected: count(|r| {
                    matches!(r, RowResult::Rejected { .. } | RowResult::Forbidden { .. })
                }),
                kinds,
                event_ids: audited.written.iter().map(|a| a.id).collect(),
            })
            .await
    }

    fn count_rows(&self, endpoint: &str, results: &[(u64, RowResult)]) {
        for (_, r) in results {
            self.metrics
                .rows
                .with_label_values(&[endpoint, r.code()])
                .inc();
        }
    }
}

/// Serve until `shutdown` completes; requests in flight finish first.
pub async fn serve(
    ingest: Arc<Ingest>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "ingest listening");
    continuity_runtime::http::serve(listener, ingest.router()?, shutdown).await?;
    Ok(())
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
            Refused::UnknownEventKind {
                known: known.join(", "),
            }
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
