//! The matcher's lag: source messages on the broker not yet applied, per partition, as the
//! broker's high watermark minus the next offset the matcher stored in `consumer_offsets`
//! (committed with the state it produced, so the figure is exact). The matcher exports it for
//! the partitions it holds; the worklist holds notifications while the total is high.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use sqlx::PgPool;

/// A topic partition.
pub type Partition = (String, i32);

/// How long the broker has to answer each look-up.
const BROKER_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the lag could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum LagError {
    /// `consumer_offsets` could not be read.
    #[error("the matcher's stored offsets could not be read (check PostgreSQL): {0}")]
    Database(#[from] sqlx::Error),
    /// The broker did not answer.
    #[error("the broker's offsets could not be read (check Kafka): {0}")]
    Broker(#[from] rdkafka::error::KafkaError),
    /// The blocking look-up was cancelled or panicked.
    #[error("the broker look-up did not finish")]
    Interrupted,
}

/// The next offset stored for each partition.
pub async fn stored_offsets(pool: &PgPool) -> Result<HashMap<Partition, i64>, sqlx::Error> {
    let rows: Vec<(String, i32, i64)> =
        sqlx::query_as("select topic, partition, next_offset from consumer_offsets")
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|(t, p, o)| ((t, p), o)).collect())
}

/// Every partition of `topics`, from the broker's metadata.
pub async fn partitions_of(
    consumer: Arc<StreamConsumer>,
    topics: Vec<String>,
) -> Result<Vec<Partition>, LagError> {
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for topic in topics {
            let metadata = consumer.fetch_metadata(Some(&topic), BROKER_TIMEOUT)?;
            for t in metadata.topics() {
                out.extend(t.partitions().iter().map(|p| (t.name().to_owned(), p.id())));
            }
        }
        Ok(out)
    })
    .await
    .map_err(|_| LagError::Interrupted)?
}

/// Messages not yet applied in each of `partitions` (never negative; a partition the matcher
/// never read counts from offset 0).
pub async fn lag(
    pool: &PgPool,
    consumer: Arc<StreamConsumer>,
    partitions: Vec<Partition>,
) -> Result<Vec<(Partition, i64)>, LagError> {
    let stored = stored_offsets(pool).await?;
    let marks = tokio::task::spawn_blocking(move || {
        partitions
            .into_iter()
            .map(|(t, p)| {
                consumer
                    .fetch_watermarks(&t, p, BROKER_TIMEOUT)
                    .map(|(_, high)| ((t, p), high))
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|_| LagError::Interrupted)??;
    Ok(marks
        .into_iter()
        .map(|(partition, high)| {
            let next = stored.get(&partition).copied().unwrap_or(0);
            (partition, (high - next).max(0))
        })
        .collect())
}
