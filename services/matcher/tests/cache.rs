//! The component cache never serves a stale component: two appliers, each with its own cache
//! (as two instances have), take turns applying small batches of one stream, so every
//! component is changed by one while the other holds an older copy of it. The cases must still
//! be exactly the rules applied to the whole stream, and the second applier must have reloaded
//! what the first changed (misses), not used its own copy.

use std::collections::HashMap;

use chrono::{TimeZone, Utc};
use continuity_domain::{KeyedHasher, Rules};
use continuity_e2e::*;
use continuity_matcher::apply::{Applier, Held, Incoming};
use continuity_matcher::cache::ComponentCache;
use continuity_matcher::metrics::Metrics;
use continuity_schema::{encode_source_event, Registry};
use continuity_stream::Topic;
use continuity_synthetic::{generate, Config};

fn applier(env: &Env) -> Applier {
    Applier {
        pool: env.pool.clone(),
        hasher: KeyedHasher::new(SECRET.as_bytes()),
        rules: Rules::default(),
        kafka: env.kafka.clone(),
        instance: "cache-test".into(),
        metrics: Metrics::new().unwrap(),
        cache: ComponentCache::new(10_000),
    }
}

fn cache_count(a: &Applier, result: &str) -> u64 {
    a.metrics.cache.with_label_values(&[result]).get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_changed_elsewhere_is_reloaded_not_served_from_the_cache() {
    let env = env().await;
    let config = Config {
        seed: 7,
        people: 300,
        start: chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        days: 120,
        ..Config::default()
    };
    let events = generate(&config);
    let now = Utc.with_ymd_and_hms(2025, 8, 1, 12, 0, 0).unwrap();

    // One partition per source topic, held by both appliers (the fence checks the holder).
    let mut held = HashMap::new();
    let mut batch = Vec::new();
    for (offset, e) in events.iter().enumerate() {
        let payload = encode_source_event(e).unwrap();
        let record = Registry::get().writer_of(&payload).unwrap().record;
        let topic = env.kafka.topic(Topic::for_record(record).unwrap());
        held.insert((topic.clone(), 0), Held { epoch: 1 });
        batch.push(Incoming {
            topic,
            partition: 0,
            offset: offset as i64,
            key: None,
            payload,
        });
    }
    for (topic, partition) in held.keys() {
        sqlx::query(
            "insert into partition_leases (topic, partition, holder, epoch, expires_at)
             values ($1, $2, 'cache-test', 1, now() + interval '1 hour')",
        )
        .bind(topic)
        .bind(partition)
        .execute(&env.pool)
        .await
        .unwrap();
    }

    // Events in time order, so a person's events fall in different batches; the appliers
    // alternate batch by batch.
    let (first, second) = (applier(&env), applier(&env));
    for (i, chunk) in batch.chunks(25).enumerate() {
        let which = if i % 2 == 0 { &first } else { &second };
        which.apply(chunk, &held, now).await.unwrap();
    }

    let (stored, expected) = (outcomes(&env.pool).await, expected_outcomes(&events, now));
    let wrong = expected
        .iter()
        .filter(|(id, o)| stored.get(*id) != Some(*o))
        .count();
    assert_eq!(
        (wrong, stored.len()),
        (0, expected.len()),
        "cases whose outcome differs from the rules, and case counts"
    );
    for a in [&first, &second] {
        assert!(cache_count(a, "hit") > 0, "each applier reuses its own work");
        assert!(
            cache_count(a, "miss") > 0,
            "each applier reloads components the other changed"
        );
    }
    env.cleanup().await;
}
