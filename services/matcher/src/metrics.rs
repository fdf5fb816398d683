//! The matcher's Prometheus metrics. Labels are topics, results and kinds: never anything
//! about a person.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// The `result` of a consumed message.
pub const CONSUMED: [&str; 3] = ["applied", "duplicate", "dead_letter"];

/// The `kind` of a dead letter.
pub const DEAD_LETTER_KINDS: [&str; 2] = ["undecodable", "invalid"];

/// The `result` of a deadline-clock pass.
pub const DEADLINE_RESULTS: [&str; 2] = ["ok", "error"];

/// Every metric the matcher exports.
#[derive(Clone)]
pub struct Metrics {
    /// The registry served on `/metrics`.
    pub registry: Registry,
    /// Source messages consumed, by topic and result (applied, duplicate, dead_letter).
    pub consumed: IntCounterVec,
    /// Seconds to apply one batch (one transaction).
    pub apply_seconds: Histogram,
    /// Messages per batch.
    pub batch_size: Histogram,
    /// Messages not yet consumed, by topic and partition (owned partitions only).
    pub consumer_lag: IntGaugeVec,
    /// Cases whose window is open.
    pub open_cases: IntGauge,
    /// Flag transitions written, by kind and state.
    pub flags: IntCounterVec,
    /// Case events written, by change.
    pub case_events: IntCounterVec,
    /// Messages waiting in the outbox.
    pub outbox_backlog: IntGauge,
    /// Age in seconds of the oldest message waiting in the outbox.
    pub outbox_oldest_seconds: IntGauge,
    /// Messages sent to the dead-letter topic, by source topic and error kind.
    pub dead_letters: IntCounterVec,
    /// Partitions this instance holds a lease on.
    pub partitions_owned: IntGauge,
    /// Batches that failed and were retried, by reason.
    pub retries: IntCounterVec,
    /// Seconds a deadline-clock pass took.
    pub deadline_seconds: HistogramVec,
    /// Times an owned partition's next offset was no longer on the broker (its records were
    /// deleted, e.g. by retention): nothing more is read from it, nothing is skipped.
    pub offsets_missing: IntCounter,
}

impl Metrics {
    /// Create and register every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("continuity_matcher".into()), None)?;
        let consumed = IntCounterVec::new(
            Opts::new("events_consumed_total", "Source messages consumed"),
            &["topic", "result"],
        )?;
        let apply_seconds = Histogram::with_opts(
            HistogramOpts::new("apply_seconds", "Seconds to apply one batch").buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
                0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
            ]),
        )?;
        let batch_size = Histogram::with_opts(
            HistogramOpts::new("batch_size", "Messages per batch").buckets(vec![
                1.0, 10.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
            ]),
        )?;
        let consumer_lag = IntGaugeVec::new(
            Opts::new(
                "consumer_lag",
                "Messages not yet consumed on owned partitions",
            ),
            &["topic", "partition"],
        )?;
        let open_cases = IntGauge::new("open_cases", "Cases whose window is open")?;
        let flags = IntCounterVec::new(
            Opts::new("flags_total", "Flag transitions published to caseworkers"),
            &["kind", "state"],
        )?;
        let case_events = IntCounterVec::new(
            Opts::new("case_events_total", "Case events written"),
            &["change"],
        )?;
        let outbox_backlog = IntGauge::new("outbox_backlog", "Messages waiting in the outbox")?;
        let outbox_oldest_seconds = IntGauge::new(
            "outbox_oldest_seconds",
            "Age of the oldest message waiting in the outbox",
        )?;
        let dead_letters = IntCounterVec::new(
            Opts::new(
                "dead_letters_total",
                "Messages sent to the dead-letter topic",
            ),
            &["topic", "kind"],
        )?;
        let partitions_owned = IntGauge::new("partitions_owned", "Partitions this instance holds")?;
        let retries = IntCounterVec::new(
            Opts::new("batch_retries_total", "Batches retried"),
            &["reason"],
        )?;
        let deadline_seconds = HistogramVec::new(
            HistogramOpts::new("deadline_pass_seconds", "Seconds per deadline-clock pass"),
            &["result"],
        )?;
        let offsets_missing = IntCounter::new(
            "offsets_missing_total",
            "Times an owned partition's next offset was no longer on the broker",
        )?;
        for m in [
            Box::new(consumed.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(apply_seconds.clone()),
            Box::new(batch_size.clone()),
            Box::new(consumer_lag.clone()),
            Box::new(open_cases.clone()),
            Box::new(flags.clone()),
            Box::new(case_events.clone()),
            Box::new(outbox_backlog.clone()),
            Box::new(outbox_oldest_seconds.clone()),
            Box::new(dead_letters.clone()),
            Box::new(partitions_owned.clone()),
            Box::new(retries.clone()),
            Box::new(deadline_seconds.clone()),
            Box::new(offsets_missing.clone()),
        ] {
            registry.register(m)?;
        }
        Ok(Self {
            registry,
            consumed,
            apply_seconds,
            batch_size,
            consumer_lag,
            open_cases,
            flags,
            case_events,
            outbox_backlog,
            outbox_oldest_seconds,
            dead_letters,
            partitions_owned,
            retries,
            deadline_seconds,
            offsets_missing,
        })
    }

    /// Create every series whose labels are known at start, at zero, for the source topics
    /// `topics` (full names). A series that first appears at its first increment reads as
    /// no change to `increase()`, so an alert on it could not fire for that first event.
    pub fn zeroed(&self, topics: &[String]) {
        for topic in topics {
            for result in CONSUMED {
                self.consumed.with_label_values(&[topic, result]);
            }
            for kind in DEAD_LETTER_KINDS {
                self.dead_letters.with_label_values(&[topic, kind]);
            }
        }
        for reason in crate::apply::ApplyError::REASONS {
            self.retries.with_label_values(&[reason]);
        }
        for kind in ["AT_RISK", "OVERDUE"] {
            for state in continuity_domain::FlagState::ALL {
                self.flags.with_label_values(&[kind, state.code()]);
            }
        }
        for change in continuity_domain::CaseChangeKind::ALL {
            self.case_events.with_label_values(&[change.code()]);
        }
        for result in DEADLINE_RESULTS {
            self.deadline_seconds.with_label_values(&[result]);
        }
    }
}
