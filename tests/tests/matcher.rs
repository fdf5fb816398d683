//! The matcher against the real broker and PostgreSQL: each test gets a fresh database and
//! fresh topics, runs matchers in-process with a hand-moved clock, produces source events and
//! checks the cases in PostgreSQL and the events on the output topics.

use std::collections::BTreeSet;
use std::time::Duration;

use continuity::{produce, sample};
use continuity_domain::{assess, Rules};
use continuity_e2e::*;
use continuity_runtime::ManualClock;
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
