//! Ingest's Prometheus metrics: requests by endpoint and status, rows by result, events
//! written by record type, answer time, and broker failures. Labels come from fixed lists only.

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

/// The service's counters.
#[derive(Clone)]
pub struct Metrics {
    /// The registry served at `/metrics`.
    pub registry: Registry,
    pub(crate) requests: IntCounterVec,
    pub(crate) rows: IntCounterVec,
    pub(crate) events: IntCounterVec,
    pub(crate) seconds: HistogramVec,
    pub(crate) broker_failures: IntCounter,
}

impl Metrics {
    pub(crate) fn new() -> Result<Self, prometheus::Error> {
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
