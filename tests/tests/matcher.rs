//! The matcher against the real broker and PostgreSQL: each test gets a fresh database and
//! fresh topics, runs matchers in-process with a hand-moved clock, produces source events and
//! checks the cases in PostgreSQL and the events on the output topics.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use continuity::{produce, sample};
use continuity_domain::events::SourceEvent;
use continuity_domain::{assess, KeyedHasher, Outcome, Rules};
use continuity_runtime::{ManualClock, SecretString};
use continuity_schema::{encode_source_event, wire, AvroRecord, RecordType, Registry};
use continuity_stream::{partition_key, KafkaSettings, Topic};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use sqlx::PgPool;
use tokio::sync::oneshot;

const SECRET: &str = "matcher-test-secret";

struct Env {
    kafka: KafkaSettings,
    db_url: String,
    pool: PgPool,
}

async fn env() -> Env {
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin = PgPool::connect(&base).await.expect("DATABASE_URL answers");
    let name = format!("matcher_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("create database {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    let db_url = format!("{prefix}/{name}");
    let pool = PgPool::connect(&db_url).await.unwrap();
    continuity_store::migrate(&pool).await.unwrap();
    let brokers = std::env::var("CONTINUITY_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let kafka = KafkaSettings {
        brokers,
        topic_prefix: format!("m{}.", uuid::Uuid::new_v4().simple()),
    };
    kafka.ensure_topics(&Topic::ALL).await.unwrap();
    Env {
        kafka,
        db_url,
        pool,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    http: u16,
}

impl Running {
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}

fn start(env: &Env, instance: &str, clock: &ManualClock) -> Running {
    continuity_runtime::init_logging();
    let http = free_port();
    let settings = continuity_matcher::Settings {
        database_url: SecretString::from(env.db_url.clone()),
        brokers: env.kafka.brokers.clone(),
        topic_prefix: env.kafka.topic_prefix.clone(),
        hash_secret: SecretString::from(SECRET),
        instance_id: Some(instance.into()),
        linger_ms: 10,
        lease_ttl_ms: 3_000,
        rebalance_ms: 200,
        deadline_interval_ms: 100,
        relay_interval_ms: 20,
        http_addr: ([127, 0, 0, 1], http).into(),
        ..Default::default()
    };
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(continuity_matcher::run(
        settings,
        Arc::new(clock.clone()),
        async move {
            let _ = rx.await;
        },
    ));
    Running {
        stop: Some(tx),
        task,
        http,
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 9, 30, 0).unwrap()
}

fn messages(events: &[SourceEvent]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let hasher = KeyedHasher::new(SECRET.as_bytes());
    events
        .iter()
        .map(|e| (partition_key(e, &hasher), encode_source_event(e).unwrap()))
        .collect()
}

/// Wait until `check` is true, polling; fail after `secs`.
async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < until {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn outcomes(pool: &PgPool) -> BTreeMap<uuid::Uuid, String> {
    let rows: Vec<(uuid::Uuid, String, Option<String>)> =
        sqlx::query_as("select case_id, outcome, exclusion_reason from cases")
            .fetch_all(pool)
            .await
            .unwrap();
    rows.into_iter()
        .map(|(id, o, r)| (id, r.map_or(o.clone(), |r| format!("{o}:{r}"))))
        .collect()
}

fn expected_outcomes(events: &[SourceEvent], at: DateTime<Utc>) -> BTreeMap<uuid::Uuid, String> {
    assess(events, &Rules::default(), at)
        .cases
        .into_iter()
        .map(|c| {
            let o = match c.outcome {
                Outcome::Open => "OPEN".to_string(),
                Outcome::Engaged => "ENGAGED".into(),
                Outcome::NotEngaged => "NOT_ENGAGED".into(),
                Outcome::Withdrawn => "WITHDRAWN".into(),
                Outcome::Excluded(r) => format!("EXCLUDED:{}", r.code()),
            };
            (c.case_id.0, o)
        })
        .collect()
}

async fn applied(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from source_events")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Read everything on an output topic (from the start) until `quiet` passes with nothing new.
async fn read_topic(kafka: &KafkaSettings, topic: Topic, quiet: Duration) -> Vec<Vec<u8>> {
    let consumer: StreamConsumer = kafka
        .consumer(&format!("reader-{}", uuid::Uuid::new_v4()))
        .unwrap();
    consumer.subscribe(&[&kafka.topic(topic)]).unwrap();
    let mut out = Vec::new();
    while let Ok(Ok(m)) = tokio::time::timeout(quiet, consumer.recv()).await {
        out.push(m.payload().unwrap_or_default().to_vec());
    }
    out
}

#[tokio::test]
async fn sample_through_the_matcher_gives_the_rules_cases_flags_and_dead_letters() {
    let env = env().await;
    let clock = ManualClock::new(now());
    let today = continuity_domain::london_date(now());
    let sample = sample::sample(today);
    let mut msgs = messages(&sample.events);
    for bad in &sample.invalid {
        msgs.push((b"k".to_vec(), bad.clone()));
    }
    let producer = env.kafka.producer().unwrap();
    produce(&producer, &env.kafka, &msgs).await.unwrap();

    let matcher = start(&env, "m1", &clock);
    let n = sample.events.len() as i64;
    eventually(60, "every event applied", || async {
        applied(&env.pool).await == n
    })
    .await;
    let expected = expected_outcomes(&sample.events, now());
    assert_eq!(outcomes(&env.pool).await, expected);

    // Metrics are served and count what happened.
    let body = reqwest_like_get(matcher.http, "/metrics").await;
    assert!(
        body.contains("continuity_matcher_events_consumed_total"),
        "{body}"
    );
    assert!(body.contains("result=\"dead_letter\""), "{body}");
    assert_eq!(reqwest_like_status(matcher.http, "/readyz").await, 200);
    assert_eq!(reqwest_like_status(matcher.http, "/healthz").await, 200);

    // Outbox drained to the topics.
    eventually(30, "outbox drained", || async {
        sqlx::query_scalar::<_, i64>("select count(*) from outbox")
            .fetch_one(&env.pool)
            .await
            .unwrap()
            == 0
    })
    .await;
    matcher.stop().await;

    // The invalid release is on the dead-letter topic with where it came from and why.
    let dead = read_topic(&env.kafka, Topic::DeadLetter, Duration::from_secs(3)).await;
    assert_eq!(dead.len(), 1);
    let dead = wire::DeadLetter::from_message(&dead[0]).unwrap();
    assert_eq!(dead.original_topic, env.kafka.topic(Topic::Releases));
    assert_eq!(dead.error_kind, wire::ErrorKind::Invalid);
    assert!(dead.reason.contains("person.noms"), "{}", dead.reason);
    assert_eq!(dead.payload, sample.invalid[0]);

    // One case event per case at least, each case's events decodable, ids unique.
    let case_events = read_topic(&env.kafka, Topic::CaseEvents, Duration::from_secs(3)).await;
    let mut ids = BTreeSet::new();
    let mut cases = BTreeSet::new();
    for m in &case_events {
        let e = wire::CaseEvent::from_message(m).unwrap();
        assert!(ids.insert(e.envelope.event_id), "duplicate case event id");
        cases.insert(e.case_id);
    }
    assert_eq!(cases, expected.keys().copied().collect());

    // Flags: the raised ones match the rules' flags at `now`.
    let flags = read_topic(&env.kafka, Topic::Flags, Duration::from_secs(3)).await;
    let mut flag_ids = BTreeSet::new();
    for m in &flags {
        let f = wire::EngagementFlag::from_message(m).unwrap();
        assert!(
            flag_ids.insert(f.envelope.event_id),
            "duplicate flag event id"
        );
    }
    let rule_flags: usize = assess(&sample.events, &Rules::default(), now())
        .cases
        .iter()
        .map(|c| c.flags.len())
        .sum();
    assert_eq!(flags.len(), rule_flags);
    assert_eq!(
        Registry::get().writer_of(&flags[0]).unwrap().record,
        RecordType::EngagementFlag
    );
}

#[tokio::test]
async fn time_moves_cases_on_without_new_events() {
    let env = env().await;
    // Start the day after the release of the case opened 3 days ago in the sample.
    let clock = ManualClock::new(now());
    let today = continuity_domain::london_date(now());
    let sample = sample::sample(today);
    let producer = env.kafka.producer().unwrap();
    produce(&producer, &env.kafka, &messages(&sample.events))
        .await
        .unwrap();
    let matcher = start(&env, "m1", &clock);
    let n = sample.events.len() as i64;
    eventually(60, "every event applied", || async {
        applied(&env.pool).await == n
    })
    .await;
    let open_before: i64 = sqlx::query_scalar("select count(*) from cases where outcome = 'OPEN'")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(open_before, 2);

    // Three weeks later, with no new events, the deadline clock has closed both windows.
    let later = now() + chrono::Duration::days(21);
    clock.set(later);
    eventually(30, "windows closed by the clock", || async {
        outcomes(&env.pool).await == expected_outcomes(&sample.events, later)
    })
    .await;
    let overdue: i64 = sqlx::query_scalar(
        "select count(*) from flags where kind = 'OVERDUE' and state = 'RAISED' and notified",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        overdue, 3,
        "the two newly overdue cases page; the old one did already"
    );
    matcher.stop().await;
}

#[tokio::test]
async fn shuffled_and_duplicated_input_gives_the_same_state() {
    let env = env().await;
    let clock = ManualClock::new(now());
    let today = continuity_domain::london_date(now());
    let events = sample::sample(today).events;
    let mut msgs = messages(&events);
    let dup: Vec<_> = msgs.iter().step_by(3).cloned().collect();
    msgs.extend(dup);
    msgs.reverse();
    let producer = env.kafka.producer().unwrap();
    // Half before the matcher starts, half while it runs.
    let (a, b) = msgs.split_at(msgs.len() / 2);
    produce(&producer, &env.kafka, a).await.unwrap();
    let matcher = start(&env, "m1", &clock);
    produce(&producer, &env.kafka, b).await.unwrap();
    let n = events.len() as i64;
    eventually(60, "every event applied", || async {
        applied(&env.pool).await == n
    })
    .await;
    eventually(10, "same outcomes", || async {
        outcomes(&env.pool).await == expected_outcomes(&events, now())
    })
    .await;
    matcher.stop().await;
}

async fn http_get(port: u16, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, buf)
}

async fn reqwest_like_get(port: u16, path: &str) -> String {
    http_get(port, path).await.1
}

async fn reqwest_like_status(port: u16, path: &str) -> u16 {
    http_get(port, path).await.0
}
