//! The matcher against the real broker and PostgreSQL: each test gets a fresh database and
//! fresh topics, runs matchers in-process with a hand-moved clock, produces source events and
//! checks the cases in PostgreSQL and the events on the output topics.

use std::collections::{BTreeMap, BTreeSet};

use continuity::{produce, sample};
use continuity_domain::{assess, Rules};
use continuity_e2e::*;
use continuity_runtime::{ManualClock, RunningClock};
use continuity_schema::{wire, AvroRecord, RecordType, Registry};
use continuity_stream::Topic;

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

    // The case read model counts the same outcomes, by their codes.
    let mut read: BTreeMap<String, u64> = BTreeMap::new();
    for (_, outcome, n) in continuity_store::cases::outcomes_by_area(&env.pool)
        .await
        .unwrap()
    {
        let code = match outcome.exclusion_code() {
            Some(r) => format!("{}:{r}", outcome.code()),
            None => outcome.code().to_string(),
        };
        *read.entry(code).or_default() += n;
    }
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for o in expected.values() {
        *want.entry(o.clone()).or_default() += 1;
    }
    assert_eq!(read, want);
    let facts = continuity_store::cases::facts(&env.pool).await.unwrap();
    assert_eq!((facts.cases.len(), facts.unknown), (expected.len(), 0));

    // Metrics are served and count what happened.
    let body = get_body(matcher.http, "/metrics").await;
    assert!(
        body.contains("continuity_matcher_events_consumed_total"),
        "{body}"
    );
    assert!(body.contains("result=\"dead_letter\""), "{body}");
    assert_eq!(get_status(matcher.http, "/readyz").await, 200);
    assert_eq!(get_status(matcher.http, "/healthz").await, 200);

    // Outbox drained to the topics.
    until_outbox_drained(&env.pool, 30).await;
    matcher.stop().await;

    // Every stored flag reads back through the read model with a kind and state it knows.
    let stored: i64 = sqlx::query_scalar("select count(*) from flags")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    let counted: u64 = continuity_store::cases::flag_counts(&env.pool)
        .await
        .unwrap()
        .iter()
        .map(|(_, _, n)| n)
        .sum();
    assert!(stored > 0);
    assert_eq!(counted, stored as u64);

    // The invalid release is on the dead-letter topic with where it came from and why.
    let dead = read_topic(&env.kafka, Topic::DeadLetter).await;
    assert_eq!(dead.len(), 1);
    let dead = wire::DeadLetter::from_message(&dead[0]).unwrap();
    assert_eq!(dead.original_topic, env.kafka.topic(Topic::Releases));
    assert_eq!(dead.error_kind, wire::ErrorKind::Invalid);
    assert!(dead.reason.contains("person.noms"), "{}", dead.reason);
    assert_eq!(dead.payload, sample.invalid[0]);

    // One case event per case at least, each case's events decodable, ids unique.
    let case_events = read_topic(&env.kafka, Topic::CaseEvents).await;
    let mut ids = BTreeSet::new();
    let mut cases = BTreeSet::new();
    for m in &case_events {
        let e = wire::CaseEvent::from_message(m).unwrap();
        assert!(ids.insert(e.envelope.event_id), "duplicate case event id");
        cases.insert(e.case_id);
    }
    assert_eq!(cases, expected.keys().copied().collect());

    // Flags: every flag the rules tell caseworkers of is published, and none due before the
    // flag horizon. Which others are published depends on how the events fell into batches:
    // a flag first derived while raised is told of, then settled, where one derived already
    // settled never is.
    let flags = read_topic(&env.kafka, Topic::Flags).await;
    let mut flag_ids = BTreeSet::new();
    let mut published = BTreeSet::new();
    let rules = Rules::default();
    for m in &flags {
        let f = wire::EngagementFlag::from_message(m).unwrap();
        assert!(
            flag_ids.insert(f.envelope.event_id),
            "duplicate flag event id"
        );
        let due = chrono::DateTime::from_timestamp_micros(f.due_at).unwrap();
        assert!(
            rules.within_flag_horizon(due, now()),
            "a flag due before the horizon was published"
        );
        published.insert(f.flag_id);
    }
    let rule_flags = assess(&sample.events, &rules, now()).cases;
    let rule_flags: Vec<_> = rule_flags.iter().flat_map(|c| &c.flags).collect();
    let told: BTreeSet<_> = rule_flags
        .iter()
        .filter(|f| f.notified)
        .map(|f| f.flag_id)
        .collect();
    assert!(!told.is_empty(), "the sample has flags to tell of");
    assert!(
        rule_flags
            .iter()
            .any(|f| !rules.within_flag_horizon(f.due_at, now())),
        "the sample has flags due before the horizon"
    );
    assert!(
        told.is_subset(&published),
        "a flag the rules tell of was not published"
    );
    assert_eq!(
        Registry::get().writer_of(&flags[0]).unwrap().record,
        RecordType::EngagementFlag
    );
    env.cleanup().await;
}

/// The sample for today (`now()`), sent and applied by a matcher on `clock`, still running.
async fn sample_applied(env: &Env, clock: &ManualClock) -> (sample::Sample, Running) {
    let sample = sample::sample(continuity_domain::london_date(now()));
    let producer = env.kafka.producer().unwrap();
    produce(&producer, &env.kafka, &messages(&sample.events))
        .await
        .unwrap();
    let matcher = start(env, "m1", clock);
    let n = sample.events.len() as i64;
    eventually(60, "every event applied", || async {
        applied(&env.pool).await == n
    })
    .await;
    (sample, matcher)
}

#[tokio::test]
async fn time_moves_cases_on_without_new_events() {
    let env = env().await;
    // Start the day after the release of the case opened 3 days ago in the sample.
    let clock = ManualClock::new(now());
    let (sample, matcher) = sample_applied(&env, &clock).await;
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
    env.cleanup().await;
}

#[tokio::test]
async fn the_deadline_clock_wakes_at_the_due_instant_not_at_its_poll() {
    let env = env().await;
    let (_, matcher) = sample_applied(&env, &ManualClock::new(now())).await;
    matcher.stop().await;
    let due: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select min(next_due_at) from cases where next_due_at is not null")
            .fetch_one(&env.pool)
            .await
            .unwrap();

    // Two seconds before the case is due, on a clock that runs, with the poll at ten
    // minutes: only a wake-up at the due instant moves the case on within the wait below.
    let running = RunningClock::new(due - chrono::Duration::seconds(2));
    let matcher = start_configured(&env, "m1", &running, |s| {
        s.deadline_interval_ms = 600_000;
    });
    eventually(
        120,
        "the case due re-assessed at its due instant",
        || async {
            let still_due: i64 =
                sqlx::query_scalar("select count(*) from cases where next_due_at <= $1")
                    .bind(due)
                    .fetch_one(&env.pool)
                    .await
                    .unwrap();
            still_due == 0
        },
    )
    .await;
    matcher.stop().await;
    env.cleanup().await;
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
    env.cleanup().await;
}

fn generated(people: usize) -> Vec<continuity_domain::events::SourceEvent> {
    continuity_synthetic::generate(&continuity_synthetic::Config {
        seed: 3,
        people,
        start: chrono::NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
        days: 150,
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_matchers_share_the_work_and_the_survivor_takes_over_a_clean_stop() {
    let env = env().await;
    let clock = ManualClock::new(now());
    let events = generated(2500);
    let msgs = messages(&events);
    let (first, second) = msgs.split_at(msgs.len() / 2);
    let producer = env.kafka.producer().unwrap();
    produce(&producer, &env.kafka, first).await.unwrap();

    let m1 = start(&env, "one", &clock);
    let m2 = start(&env, "two", &clock);
    until_two_share_the_work(&env).await;

    // Stop one cleanly mid-stream: it hands its partitions back and the other takes them.
    m1.stop().await;
    let stopped = std::time::Instant::now();
    eventually(10, "the survivor holds every partition", || async {
        holders(&env).await == vec![("two".to_string(), 24)]
    })
    .await;
    eprintln!("takeover after a clean stop: {:?}", stopped.elapsed());

    produce(&producer, &env.kafka, second).await.unwrap();
    until_all_applied(&env.pool, &events, 120).await;
    eventually(10, "the same outcomes as one matcher", || async {
        outcomes(&env.pool).await == expected_outcomes(&events, now())
    })
    .await;
    m2.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_pauses_the_matcher_and_loses_nothing() {
    let env = env().await;
    let clock = ManualClock::new(now());
    let events = generated(1500);
    let msgs = messages(&events);
    let (first, second) = msgs.split_at(msgs.len() / 2);
    let producer = env.kafka.producer().unwrap();
    let matcher = start(&env, "m1", &clock);
    produce(&producer, &env.kafka, first).await.unwrap();
    let unique_first = unique_events(&events[..first.len()]);
    eventually(60, "the first half applied", || async {
        applied(&env.pool).await == unique_first
    })
    .await;

    // The database goes away: no new connections, existing ones cut.
    let name = env.db_url.rsplit('/').next().unwrap().to_string();
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    env.pool.close().await;
    sqlx::query(&format!("alter database {name} allow_connections false"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1")
        .bind(&name)
        .execute(&admin)
        .await
        .unwrap();
    produce(&producer, &env.kafka, second).await.unwrap();
    let retried = || async {
        let body = get_body(matcher.http, "/metrics").await;
        body.lines().any(|l| {
            l.starts_with("continuity_matcher_batch_retries_total{reason=\"database\"}")
                && !l.ends_with(" 0")
        })
    };
    eventually(30, "the matcher retrying against the database", retried).await;
    assert_eq!(
        get_status(matcher.http, "/readyz").await,
        503,
        "not ready without its database"
    );

    // Back: everything is applied once.
    sqlx::query(&format!("alter database {name} allow_connections true"))
        .execute(&admin)
        .await
        .unwrap();
    let pool = sqlx::PgPool::connect(&env.db_url).await.unwrap();
    until_all_applied(&pool, &events, 120).await;
    eventually(10, "the same outcomes", || async {
        outcomes(&pool).await == expected_outcomes(&events, now())
    })
    .await;
    assert_eq!(get_status(matcher.http, "/readyz").await, 200);
    matcher.stop().await;
    env.cleanup().await;
}

/// The relay's recovery: a relay that committed its Kafka transaction and died before deleting
/// the rows from the outbox leaves them there; the next relay to lead finds them named by the
/// last marker on `relay-position`, deletes them and publishes nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_published_by_a_relay_that_died_before_deleting_them_are_not_published_again() {
    use continuity_matcher::{metrics::Metrics, relay::Relay};
    use continuity_store::outbox::Outbox;
    let env = env().await;
    let flags = env.kafka.topic(Topic::Flags);
    let write = |payloads: &'static [&'static [u8]]| {
        let (pool, flags) = (env.pool.clone(), flags.clone());
        async move {
            let mut outbox = Outbox::default();
            for p in payloads {
                outbox.push(flags.clone(), Some(b"k".to_vec()), p.to_vec());
            }
            let mut c = pool.acquire().await.unwrap();
            outbox.write(&mut c).await.unwrap();
        }
    };
    let relay = || {
        Relay::new(
            env.pool.clone(),
            env.db_url.clone(),
            env.kafka.clone(),
            Metrics::new().unwrap(),
        )
    };
    write(&[b"one", b"two"]).await;
    write(&[b"three"]).await;
    sqlx::query("create table saved as select * from outbox")
        .execute(&env.pool)
        .await
        .unwrap();
    let mut first = relay();
    assert_eq!(first.publish_once().await.unwrap(), 3);
    // The crash: the relay's lead (its lock connection) is gone and its delete never happened.
    drop(first);
    sqlx::query("insert into outbox overriding system value select * from saved")
        .execute(&env.pool)
        .await
        .unwrap();
    write(&[b"four"]).await;

    // The next relay leads once the server has seen the first one's lock connection close.
    let mut next = relay();
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut published = 0;
    while published == 0 {
        assert!(
            tokio::time::Instant::now() < until,
            "the next relay never led"
        );
        published = next.publish_once().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(published, 1, "only the row written after the crash");
    until_outbox_drained(&env.pool, 30).await;
    let mut on_topic = read_topic(&env.kafka, Topic::Flags).await;
    on_topic.sort();
    let want: Vec<Vec<u8>> = [b"four".as_slice(), b"one", b"three", b"two"]
        .map(<[u8]>::to_vec)
        .to_vec();
    assert_eq!(on_topic, want, "every row once, none twice");
    env.cleanup().await;
}

/// A source partition whose next offset the broker no longer holds (its first records
/// deleted, as retention would) is not read on from the earliest it still holds, which would
/// skip those events without a trace: the matcher reads nothing more from it, counts it, and
/// reads every other partition to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_whose_records_were_deleted_is_not_skipped_past() {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let env = env().await;
    let clock = ManualClock::new(now());
    let sample = sample::sample(continuity_domain::london_date(now()));
    let producer = env.kafka.producer().unwrap();
    produce(&producer, &env.kafka, &messages(&sample.events))
        .await
        .unwrap();
    let releases = env.kafka.topic(Topic::Releases);
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &env.kafka.brokers)
        .create()
        .unwrap();
    let marks = |topic: &str, p: i32| {
        client
            .fetch_watermarks(topic, p, std::time::Duration::from_secs(10))
            .unwrap()
    };
    let (victim, _) = (0..Topic::Releases.partitions())
        .map(|p| (p, marks(&releases, p).1))
        .max_by_key(|(_, high)| *high)
        .unwrap();
    assert!(
        marks(&releases, victim).1 >= 2,
        "the partition holds records"
    );
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", &env.kafka.brokers)
        .create()
        .unwrap();
    let mut before = TopicPartitionList::new();
    before
        .add_partition_offset(&releases, victim, Offset::Offset(1))
        .unwrap();
    admin
        .delete_records(&before, &AdminOptions::new())
        .await
        .unwrap();

    let matcher = start(&env, "m1", &clock);
    // Every other partition is read to its end.
    let mut others = Vec::new();
    for topic in Topic::SOURCES {
        let name = env.kafka.topic(topic);
        for p in 0..topic.partitions() {
            if (name.as_str(), p) != (releases.as_str(), victim) {
                others.push((name.clone(), p, marks(&name, p).1));
            }
        }
    }
    eventually(60, "every other partition applied to its end", || async {
        let stored: std::collections::BTreeMap<(String, i32), i64> =
            sqlx::query_as::<_, (String, i32, i64)>(
                "select topic, partition, next_offset from consumer_offsets",
            )
            .fetch_all(&env.pool)
            .await
            .unwrap()
            .into_iter()
            .map(|(t, p, o)| ((t, p), o))
            .collect();
        others
            .iter()
            .all(|(t, p, high)| *high == 0 || stored.get(&(t.clone(), *p)) == Some(high))
    })
    .await;
    eventually(30, "the missing offset counted", || async {
        get_body(matcher.http, "/metrics")
            .await
            .contains("continuity_matcher_offsets_missing_total 1")
    })
    .await;
    let victim_offset: Option<i64> = sqlx::query_scalar(
        "select next_offset from consumer_offsets where topic = $1 and partition = $2",
    )
    .bind(&releases)
    .bind(victim)
    .fetch_optional(&env.pool)
    .await
    .unwrap();
    assert_eq!(victim_offset, None, "nothing read past the deleted records");
    matcher.stop().await;
    env.cleanup().await;
}
