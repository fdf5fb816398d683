//! The `continuity` command line's library: producing the sample scenario and generated events
//! to the source topics as a source would, reading them back (for tests of the wire path), and
//! the summary a person sees after a local run, and sending the sample through ingest as its
//! sources would ([`through_ingest`]). Services are their own binaries (`continuity-ingest`,
//! `continuity-matcher`, `continuity-reporter`).

#![warn(missing_docs)]

pub mod replay;
pub mod sample;
pub mod summary;
pub mod through_ingest;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use continuity_domain::events::{EventId, SourceEvent};
use continuity_domain::{assess, Assessment, FlagState, KeyedHasher, Outcome, Rules, Tally};
use continuity_schema::{decode_source_event, encode_source_event, Registry};
use continuity_stream::{partition_key, KafkaSettings, Topic};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;
use rdkafka::Message;

/// What came back from the broker.
#[derive(Debug, Default)]
pub struct Received {
    /// Valid source events.
    pub events: Vec<SourceEvent>,
    /// Rejected messages: where they were and why (no personal data in the reason).
    pub rejected: Vec<String>,
    /// Messages read that were not expected (from earlier runs) or were seen twice.
    pub skipped: usize,
}

/// Produce messages to their source topics and wait for the broker's acknowledgement.
pub async fn produce(
    producer: &FutureProducer,
    settings: &KafkaSettings,
    messages: &[(Vec<u8>, Vec<u8>)],
) -> anyhow::Result<()> {
    let registry = Registry::get();
    let mut names = Vec::with_capacity(messages.len());
    for (_, payload) in messages {
        let record = registry.writer_of(payload)?.record;
        let topic = Topic::for_record(record)
            .with_context(|| format!("{record:?} is not a source record"))?;
        names.push(settings.topic(topic));
    }
    continuity_stream::send_all(
        producer,
        names.iter().zip(messages).map(|(name, (key, payload))| {
            continuity_stream::Outgoing::new(
                name.as_str(),
                Some(key.as_slice()),
                payload.as_slice(),
            )
        }),
    )
    .await
    .context("the broker did not acknowledge every message")?;
    Ok(())
}

/// The messages a consumer waits for: valid events by id, rejected ones by their bytes.
#[derive(Debug, Default)]
pub struct Expected {
    /// Ids of the events that must arrive.
    pub events: BTreeSet<EventId>,
    /// Payloads that must arrive and be rejected.
    pub rejected: BTreeSet<Vec<u8>>,
}

impl Expected {
    /// What `messages` (key, payload) should produce once consumed.
    pub fn of(messages: &[(Vec<u8>, Vec<u8>)], today: chrono::NaiveDate) -> Self {
        let mut expected = Expected::default();
        for (_, payload) in messages {
            match decode_source_event(payload, today) {
                Ok(event) => {
                    expected.events.insert(event.id());
                }
                Err(_) => {
                    expected.rejected.insert(payload.clone());
                }
            }
        }
        expected
    }
}

/// Consume the source topics in `group` until every expected message has arrived, or fail
/// after `timeout`. Messages not expected (earlier runs on a long-lived broker) are skipped;
/// a message seen twice is kept once. Offsets are committed at the end.
pub async fn consume(
    settings: &KafkaSettings,
    group: &str,
    expected: &Expected,
    timeout: Duration,
    today: chrono::NaiveDate,
) -> anyhow::Result<Received> {
    let consumer: StreamConsumer = settings.consumer(group)?;
    let topics: Vec<String> = Topic::SOURCES.iter().map(|t| settings.topic(*t)).collect();
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&names)?;
    let mut events: BTreeMap<EventId, SourceEvent> = BTreeMap::new();
    let mut rejected: BTreeMap<Vec<u8>, String> = BTreeMap::new();
    let mut skipped = 0;
    let deadline = tokio::time::Instant::now() + timeout;
    while events.len() < expected.events.len() || rejected.len() < expected.rejected.len() {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .with_context(|| {
                format!(
                    "only {} of {} expected messages arrived within {timeout:?}",
                    events.len() + rejected.len(),
                    expected.events.len() + expected.rejected.len()
                )
            })??;
        let payload = message.payload().unwrap_or_default();
        match decode_source_event(payload, today) {
            Ok(event) if expected.events.contains(&event.id()) => {
                if events.insert(event.id(), event).is_some() {
                    skipped += 1;
                }
            }
            Err(e) if expected.rejected.contains(payload) => {
                let place = format!(
                    "{}[{}]@{}",
                    message.topic(),
                    message.partition(),
                    message.offset()
                );
                if rejected
                    .insert(payload.to_vec(), format!("{place}: {e}"))
                    .is_some()
                {
                    skipped += 1;
                }
            }
            _ => skipped += 1,
        }
    }
    consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync)?;
    Ok(Received {
        events: events.into_values().collect(),
        rejected: rejected.into_values().collect(),
        skipped,
    })
}

/// Produce the sample scenario, read it back in a consumer group and apply the rules in
/// process (no matcher): the wire path from producer to rules, used by the end-to-end tests.
pub async fn run_sample(
    settings: &KafkaSettings,
    hasher: &KeyedHasher,
    now: DateTime<Utc>,
) -> anyhow::Result<(Assessment, Received, String)> {
    let today = continuity_domain::london_date(now);
    settings.ensure_topics(&Topic::ALL).await?;
    let sample = sample::sample(today);
    let mut messages = Vec::new();
    for event in &sample.events {
        messages.push((partition_key(event, hasher), encode_source_event(event)?));
    }
    for invalid in &sample.invalid {
        messages.push((b"invalid".to_vec(), invalid.clone()));
    }
    let producer = settings.producer()?;
    produce(&producer, settings, &messages).await?;
    let group = format!("continuity-sample-{}", uuid::Uuid::new_v4());
    let expected = Expected::of(&messages, today);
    let received = consume(settings, &group, &expected, Duration::from_secs(60), today).await?;
    let assessment = assess(&received.events, &Rules::default(), now);
    let summary = summarise(&assessment, &received, now);
    Ok((assessment, received, summary))
}

fn outcome_label(o: Outcome) -> String {
    match o.exclusion_code() {
        Some(reason) => format!("{} ({reason})", o.code()),
        None => o.code().to_owned(),
    }
}

/// A table of the cases and the rate per local authority. Case ids, dates and codes only: no
/// personal data.
pub fn summarise(a: &Assessment, received: &Received, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} source events applied, {} rejected, as at {}\n",
        received.events.len(),
        received.rejected.len(),
        now.format("%Y-%m-%d %H:%M UTC")
    );
    let _ = writeln!(
        out,
        "{:<8} {:<10} {:<9} {:<6} {:<33} {:<22} flags",
        "case", "released", "area", "prison", "outcome", "engagement"
    );
    for c in &a.cases {
        let engagement = c
            .engagement
            .as_ref()
            .map(|e| format!("{} {}", e.date, e.timeliness))
            .unwrap_or_else(|| "-".into());
        let flags: Vec<String> = c
            .flags
            .iter()
            .map(|f| {
                let kind = match f.kind {
                    continuity_domain::FlagKind::AtRisk(d) => format!("at-risk-{d}"),
                    continuity_domain::FlagKind::Overdue => "overdue".into(),
                };
                let state = match f.state {
                    FlagState::Raised => "RAISED",
                    FlagState::ResolvedEngaged => "resolved",
                    FlagState::ResolvedExcluded => "resolved(excluded)",
                    FlagState::Withdrawn => "withdrawn",
                };
                format!("{kind}:{state}")
            })
            .collect();
        let _ = writeln!(
            out,
            "{:<8} {:<10} {:<9} {:<6} {:<33} {:<22} {}",
            &c.case_id.0.to_string()[..8],
            c.release_date,
            c.local_authority,
            c.prison.as_ref().map(|p| p.as_str()).unwrap_or("-"),
            outcome_label(c.outcome),
            engagement,
            if flags.is_empty() {
                "-".into()
            } else {
                flags.join(" ")
            }
        );
    }
    let mut by_area: BTreeMap<String, Tally> = BTreeMap::new();
    for c in &a.cases {
        by_area
            .entry(c.local_authority.to_string())
            .or_default()
            .add(c.outcome);
        by_area.entry("all".into()).or_default().add(c.outcome);
    }
    let _ = writeln!(
        out,
        "\ncontinuity rate (engaged within 21 days / finalised; ambition 75%):"
    );
    for (area, t) in &by_area {
        let rate = t
            .rate()
            .map(|r| {
                format!(
                    "{:.0}% (95% CI {:.0}-{:.0}%)",
                    r.rate * 100.0,
                    r.lower * 100.0,
                    r.upper * 100.0
                )
            })
            .unwrap_or_else(|| "n/a".into());
        let excluded: u64 = t.excluded.values().sum();
        let _ = writeln!(
            out,
            "  {area:<10} {}/{} finalised engaged = {rate}; open {}; excluded {excluded}",
            t.engaged, t.finalised, t.open
        );
    }
    if !received.rejected.is_empty() {
        let _ = writeln!(out, "\nrejected messages:");
        for r in &received.rejected {
            let _ = writeln!(out, "  {r}");
        }
    }
    out
}

/// The sample scenario (with its invalid record) and `weeks` weeks of generated events up to
/// `now`: what the run command sends through ingest.
pub fn sample_events(
    now: DateTime<Utc>,
    weeks: u32,
    seed: u64,
) -> (Vec<SourceEvent>, Vec<Vec<u8>>) {
    let today = continuity_domain::london_date(now);
    let sample = sample::sample(today);
    let days = weeks * 7;
    let generated = continuity_synthetic::generate(&continuity_synthetic::Config {
        seed,
        people: (weeks as usize) * 150,
        start: today - chrono::Duration::days(i64::from(days)),
        days,
        local_authorities: 40,
        prisons: 30,
    });
    let mut events = sample.events;
    events.extend(
        generated
            .into_iter()
            .filter(|e| e.meta().occurred_at <= now),
    );
    (events, sample.invalid)
}
