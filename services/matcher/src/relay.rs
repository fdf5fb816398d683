//! The outbox relay: publishes what state transactions wrote to the outbox (one row per
//! transaction, its messages in order), in order, with the idempotent producer, and deletes
//! the rows once the broker has acknowledged every message.
//! One relay runs at a time across all instances (a transaction-scoped advisory lock), which
//! keeps each case's events in the order they were written. A crash between publishing and
//! deleting publishes those messages again on restart: they keep their event ids, so
//! consumers drop the duplicates.

use rdkafka::producer::FutureProducer;
use sqlx::PgPool;

use crate::metrics::Metrics;

/// Advisory lock id for the relay.
const RELAY_LOCK: i64 = 0x636f_6e74_7265_6c61;

/// An outbox row: id, topics, keys, payloads.
type OutboxRow = (i64, Vec<String>, Vec<Option<Vec<u8>>>, Vec<Vec<u8>>);

/// Why a relay pass did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The broker did not acknowledge a message.
    #[error("broker did not acknowledge: {0}")]
    Broker(#[from] rdkafka::error::KafkaError),
}

/// Publish the messages of up to `transactions` outbox rows. Returns how many messages were
/// published (0: nothing to do, or another instance holds the relay).
pub async fn relay_once(
    pool: &PgPool,
    producer: &FutureProducer,
    transactions: i64,
    metrics: &Metrics,
) -> Result<usize, RelayError> {
    let mut tx = pool.begin().await?;
    let mine: bool = sqlx::query_scalar("select pg_try_advisory_xact_lock($1)")
        .bind(RELAY_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !mine {
        return Ok(0);
    }
    let rows: Vec<OutboxRow> =
        sqlx::query_as("select id, topics, keys, payloads from outbox order by id limit $1")
            .bind(transactions)
            .fetch_all(&mut *tx)
            .await?;
    if rows.is_empty() {
        metrics.outbox_backlog.set(0);
        metrics.outbox_oldest_seconds.set(0);
        return Ok(0);
    }
    let messages: Vec<continuity_stream::Outgoing<'_>> = rows
        .iter()
        .flat_map(|(_, topics, keys, payloads)| {
            topics
                .iter()
                .zip(keys)
                .zip(payloads)
                .map(|((topic, key), payload)| {
                    continuity_stream::Outgoing::new(
                        topic.as_str(),
                        key.as_deref(),
                        payload.as_slice(),
                    )
                })
        })
        .collect();
    let published = messages.len();
    continuity_stream::send_all(producer, messages).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    sqlx::query("delete from outbox where id = any($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    let (backlog, oldest): (i64, Option<f64>) = sqlx::query_as(
        "select coalesce(sum(messages), 0)::bigint,
                extract(epoch from now() - min(created_at))::float8
         from outbox",
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    metrics.outbox_backlog.set(backlog);
    metrics
        .outbox_oldest_seconds
        .set(oldest.unwrap_or(0.0) as i64);
    Ok(published)
}
