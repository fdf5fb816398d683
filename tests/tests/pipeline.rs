//! End-to-end through the real broker (started by `scripts/stack.sh up`, address in
//! `CONTINUITY_BROKERS`): Avro single-object messages survive the broker unchanged, invalid
//! ones are rejected naming the field, consumer groups resume from committed offsets, and the
//! sample scenario ends in the expected cases. Each test uses its own fresh topics.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use continuity::{consume, produce, run_sample, sample, Expected};
use continuity_domain::{assess, KeyedHasher, Outcome, Rules};
use continuity_schema::encode_source_event;
use continuity_stream::{partition_key, KafkaSettings, Topic};

fn settings() -> KafkaSettings {
    let brokers = std::env::var("CONTINUITY_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    KafkaSettings {
        brokers,
        topic_prefix: format!("test-{}.", uuid::Uuid::new_v4().simple()),
        security: Default::default(),
    }
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 9, 30, 0).unwrap()
}

#[tokio::test]
async fn sample_scenario_through_the_broker_ends_in_the_expected_cases() {
    let settings = settings();
    let hasher = KeyedHasher::new(b"test-secret");
    let (assessment, received, summary) = run_sample(&settings, &hasher, now()).await.unwrap();

    // Nothing lost or altered by the broker: the same events, the same cases as applying the
    // sample directly.
    let today = continuity_domain::london_date(now());
    let direct = sample::sample(today);
    let mut sent: Vec<_> = direct.events.clone();
    let mut got = received.events.clone();
    sent.sort_by_key(|e| e.id());
    got.sort_by_key(|e| e.id());
    assert_eq!(got, sent);
    assert_eq!(assessment, assess(&direct.events, &Rules::default(), now()));

    // The invalid release is rejected, naming the field, without the value.
    assert_eq!(received.rejected.len(), 1);
    assert!(
        received.rejected[0].contains("person.noms"),
        "{}",
        received.rejected[0]
    );
    assert!(!received.rejected[0].contains("A10O1AA"));

    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for c in &assessment.cases {
        let key = match c.outcome {
            Outcome::Excluded(r) => format!("excluded:{}", r.code()),
            o => format!("{o:?}"),
        };
        *outcomes.entry(key).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = [
        ("Engaged", 4),
        ("NotEngaged", 2),
        ("Open", 2),
        ("Withdrawn", 1),
        ("excluded:died", 2),
        ("excluded:readmitted", 1),
        ("excluded:released_outside_england", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(outcomes, expected, "{summary}");
    assert!(summary.contains("continuity rate"));
}

#[tokio::test]
async fn consumer_group_resumes_after_its_committed_offsets() {
    let settings = settings();
    settings.ensure_topics(&Topic::ALL).await.unwrap();
    let hasher = KeyedHasher::new(b"test-secret");
    let today = continuity_domain::london_date(now());
    let events = sample::sample(today).events;
    let messages: Vec<(Vec<u8>, Vec<u8>)> = events
        .iter()
        .map(|e| (partition_key(e, &hasher), encode_source_event(e).unwrap()))
        .collect();
    let (first, second) = messages.split_at(10);
    let producer = settings.producer().unwrap();
    let wait = Duration::from_secs(60);

    produce(&producer, &settings, first).await.unwrap();
    let got = consume(
        &settings,
        "resume",
        &Expected::of(first, today),
        wait,
        today,
    )
    .await
    .unwrap();
    assert_eq!((got.events.len(), got.skipped), (first.len(), 0));

    // The same group resumes after its commit: the first batch is not read again.
    produce(&producer, &settings, second).await.unwrap();
    let got = consume(
        &settings,
        "resume",
        &Expected::of(second, today),
        wait,
        today,
    )
    .await
    .unwrap();
    assert_eq!((got.events.len(), got.skipped), (second.len(), 0));

    // A new group starts from the beginning and reads both batches.
    let everything = Expected::of(&messages, today);
    let all = consume(&settings, "fresh", &everything, wait, today)
        .await
        .unwrap();
    assert_eq!(all.events.len(), messages.len());
}

#[tokio::test]
async fn partition_keys_are_keyed_hashes_never_identifiers() {
    // Keys are 32-byte keyed hashes that depend on the secret, never raw identifiers.
    let hasher = KeyedHasher::new(b"test-secret");
    let today = continuity_domain::london_date(now());
    let events = sample::sample(today).events;
    for e in &events {
        let key = partition_key(e, &hasher);
        assert_eq!(key.len(), 32);
        assert!(!String::from_utf8_lossy(&key).contains("A10"));
    }
    let other = KeyedHasher::new(b"another-secret");
    assert_ne!(
        partition_key(&events[0], &hasher),
        partition_key(&events[0], &other)
    );
}
