//! Ingest's Prometheus metrics: requests by endpoint and status, requests refused whole by
//! authentication or authorisation by source, rows by result, events written by record type,
//! answer time, and broker failures. Labels come from fixed lists and the configured source
//! names only, and every series with known labels exists from start at zero (a series that
//! first appears at its first increment reads as no change to `increase()`).

use continuity_schema::wire::SourceRecord;
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

use crate::endpoint::Endpoint;
use crate::rows::RowResult;

/// The `source` of a refused request that named no configured source.
pub(crate) const UNAUTHENTICATED: &str = "unauthenticated";

/// The statuses an endpoint that carries events answers with.
const ANSWERED: [&str; 10] = [
    "202", "207", "400", "401", "403", "413", "422", "429", "500", "503",
];

/// The service's counters.
#[derive(Clone)]
pub struct Metrics {
    /// The registry served at `/metrics`.
    pub registry: Registry,
    pub(crate) requests: IntCounterVec,
    pub(crate) refused: IntCounterVec,
    pub(crate) rows: IntCounterVec,
    pub(crate) events: IntCounterVec,
    pub(crate) seconds: HistogramVec,
    pub(crate) broker_failures: IntCounter,
}

impl Metrics {
    /// The metrics, with every known series at zero for the configured `sources` (names).
    pub(crate) fn new(sources: &[&str]) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "continuity_ingest_requests_total",
                "Requests answered, by endpoint and HTTP status",
            ),
            &["endpoint", "status"],
        )?;
        let refused = IntCounterVec::new(
            Opts::new(
                "continuity_ingest_requests_refused_total",
                "Requests refused whole: 401 (source `unauthenticated`: no valid token; 429 when more than 10 a second), or 403 (a source sending what its role may not)",
            ),
            &["source", "status"],
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
        for c in [&requests, &refused, &rows, &events] {
            registry.register(Box::new(c.clone()))?;
        }
        registry.register(Box::new(seconds.clone()))?;
        registry.register(Box::new(broker_failures.clone()))?;
        refused.with_label_values(&[UNAUTHENTICATED, "401"]);
        refused.with_label_values(&[UNAUTHENTICATED, "429"]);
        for source in sources {
            refused.with_label_values(&[source, "403"]);
        }
        for endpoint in Endpoint::names() {
            for status in ANSWERED {
                requests.with_label_values(&[endpoint.as_str(), status]);
            }
            for result in RowResult::CODES {
                rows.with_label_values(&[endpoint.as_str(), result]);
            }
            seconds.with_label_values(&[endpoint.as_str()]);
        }
        for record in SourceRecord::TYPES {
            events.with_label_values(&[record.name()]);
        }
        Ok(Metrics {
            registry,
            requests,
            refused,
            rows,
            events,
            seconds,
            broker_failures,
        })
    }
}
