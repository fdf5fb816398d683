//! Replaying history into a running pipeline without delaying live events: messages are
//! produced to the source topics a chunk at a time, each chunk only once the matcher's lag
//! (messages on the source topics it has not applied, `continuity_store::lag`) leaves room
//! for it under `max_lag`. A live event sent meanwhile therefore waits behind at most
//! `max_lag` messages, whatever the size of the history: at the matcher's ~14,000 events a
//! second on two cores, 2,000 is about 0.15 s.
//!
//! Why not a topic of its own read at lower priority: the matcher reads its partitions in
//! record-timestamp order and owns them through leases, so a history topic would need its own
//! leases, a reader that breaks that order on purpose, and a way for every source to say
//! which events are history. Holding the replay back at the producer keeps one path for every
//! event and needs nothing of the matcher.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use continuity_stream::{KafkaSettings, Topic};
use rdkafka::producer::FutureProducer;
use sqlx::PgPool;

/// Messages produced at a time.
const CHUNK: usize = 1_000;

/// How often the lag is looked at again while it leaves no room.
const RECHECK: Duration = Duration::from_millis(20);

/// What a replay came to.
#[derive(Debug, Default, Clone)]
pub struct Replayed {
    /// Messages produced.
    pub messages: usize,
    /// The highest lag seen before a chunk was produced.
    pub highest_lag: i64,
    /// Time spent waiting for room.
    pub waited: Duration,
    /// Time from start to the last acknowledgement.
    pub took: Duration,
}

/// Produce `messages` (partition key, payload) to their source topics, a chunk at a time, each
/// once the matcher's lag over the source topics is at most `max_lag` minus the chunk.
pub async fn produce_within_lag(
    producer: &FutureProducer,
    settings: &KafkaSettings,
    pool: &PgPool,
    messages: &[(Vec<u8>, Vec<u8>)],
    max_lag: i64,
) -> anyhow::Result<Replayed> {
    let consumer = Arc::new(
        settings
            .consumer("continuity-replay-lag")
            .context("a client to read the source topics' offsets")?,
    );
    let topics: Vec<String> = Topic::SOURCES.iter().map(|t| settings.topic(*t)).collect();
    let partitions = continuity_store::lag::partitions_of(consumer.clone(), topics).await?;
    let chunk = CHUNK.min(max_lag.max(1) as usize);
    let started = Instant::now();
    let mut replayed = Replayed::default();
    for part in messages.chunks(chunk) {
        let waiting = Instant::now();
        loop {
            let lag: i64 = continuity_store::lag::lag(pool, consumer.clone(), partitions.clone())
                .await?
                .iter()
                .map(|(_, n)| n)
                .sum();
            replayed.highest_lag = replayed.highest_lag.max(lag);
            if lag + part.len() as i64 <= max_lag {
                break;
            }
            tokio::time::sleep(RECHECK).await;
        }
        replayed.waited += waiting.elapsed();
        crate::produce(producer, settings, part).await?;
        replayed.messages += part.len();
    }
    replayed.took = started.elapsed();
    Ok(replayed)
}
