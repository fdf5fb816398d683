//! The outbox relay: publishes what state transactions wrote to the outbox, in order, each
//! pass in one Kafka transaction, and deletes the rows once the transaction has committed.
//! A `read_committed` consumer therefore sees every relayed message exactly once, whatever
//! crashes: nothing of an aborted pass is visible, and a committed pass is never published
//! again.
//!
//! How a committed pass is known not to be published again: each transaction also carries a
//! marker on `relay-position` naming the outbox rows it published, so a transaction and
//! "these rows are out" commit together in the broker. The rows are then deleted in
//! PostgreSQL; if that does not happen (a crash, the database gone), the next relay to lead
//! reads the last marker and deletes those rows before publishing anything.
//!
//! One relay leads at a time across all instances: the one holding a session advisory lock
//! on a connection of its own. On taking the lead it initialises its transactional producer,
//! which fences any earlier leader's producer (same `transactional.id`) and aborts the
//! transaction it left open, and only then reads the last marker. So an old leader that is
//! paused or cut off cannot commit after a new one has read the position: its commit is
//! fenced. A leader publishes one transaction at a time and does not begin the next until
//! the rows of the last one are deleted, so only the last marker can name rows still stored.

use std::time::Duration;

use continuity_stream::{KafkaSettings, Outgoing, Topic};
use rdkafka::producer::{FutureProducer, Producer};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;

use crate::metrics::Metrics;
use continuity_store::outbox;

/// Advisory lock id for the relay's lead.
const RELAY_LOCK: i64 = 0x636f_6e74_7265_6c61;

/// The relay's `transactional.id`, after the deployment's topic prefix.
const TRANSACTIONAL_ID: &str = "matcher-relay";

/// How long a transaction call (init, commit, abort) waits for the broker.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Outbox rows published per transaction.
const ROWS_PER_TRANSACTION: i64 = 8;

/// Why a relay pass did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The broker did not take the messages, or the transaction failed.
    #[error("broker: {0}")]
    Broker(#[from] rdkafka::error::KafkaError),
    /// The relay position could not be read.
    #[error("reading the relay position: {0}")]
    Position(#[from] continuity_stream::StreamError),
    /// The relay position holds something this version cannot read.
    #[error("the relay position's last marker is not readable ({0}); it is written only by the matcher's relay")]
    Marker(#[from] serde_json::Error),
}

/// What each relay transaction records on `relay-position` (JSON: internal bookkeeping of
/// one service, not a contract with consumers).
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    /// The outbox rows the transaction published.
    outbox_ids: Vec<i64>,
}

/// The lead: the connection holding the advisory lock, and the producer initialised for it.
struct Lead {
    lock: PgConnection,
    producer: FutureProducer,
}

/// The relay of one matcher instance.
pub struct Relay {
    pool: PgPool,
    database_url: String,
    kafka: KafkaSettings,
    metrics: Metrics,
    lead: Option<Lead>,
}

impl Relay {
    /// A relay publishing the outbox in `pool`'s database; it takes the lead with a connection
    /// of its own to `database_url`.
    pub fn new(pool: PgPool, database_url: String, kafka: KafkaSettings, metrics: Metrics) -> Self {
        Self {
            pool,
            database_url,
            kafka,
            metrics,
            lead: None,
        }
    }

    /// Publish until `stop`, looking for work every `idle` when there is none. On stop, what is
    /// in the outbox is published first (if this relay leads), so a clean shutdown leaves
    /// nothing behind.
    pub async fn run(mut self, idle: Duration, mut stop: watch::Receiver<bool>) {
        let mut backoff = idle;
        loop {
            let stopping = *stop.borrow();
            let wait = match self.publish_once().await {
                Ok(0) if stopping => return,
                Ok(0) => idle,
                Ok(_) => {
                    backoff = idle;
                    Duration::ZERO
                }
                Err(e) => {
                    tracing::warn!(error = %e, "relay failed; retrying");
                    self.lead = None;
                    if stopping {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    backoff
                }
            };
            if !stopping {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
            }
        }
    }

    /// Publish the messages of up to [`ROWS_PER_TRANSACTION`] outbox rows in one transaction.
    /// Returns how many messages were published (0: nothing to do, or another instance leads).
    /// After an error the lead is dropped and taken again, with the recovery that implies.
    pub async fn publish_once(&mut self) -> Result<usize, RelayError> {
        if !self.lead().await? {
            return Ok(0);
        }
        let rows = outbox::oldest(&self.pool, ROWS_PER_TRANSACTION).await?;
        if rows.is_empty() {
            self.update_backlog().await?;
            return Ok(0);
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let marker = serde_json::to_vec(&Marker {
            outbox_ids: ids.clone(),
        })?;
        let position = self.kafka.topic(Topic::RelayPosition);
        let messages: Vec<Outgoing<'_>> = rows
            .iter()
            .flat_map(outbox::Pending::messages)
            .chain(std::iter::once(Outgoing::new(
                &position,
                Some(b"relay".as_slice()),
                &marker,
            )))
            .collect();
        let published = messages.len() - 1;
        let Some(lead) = self.lead.as_ref() else {
            return Ok(0);
        };
        let producer = lead.producer.clone();
        producer.begin_transaction()?;
        if let Err(e) = continuity_stream::send_all(&producer, messages).await {
            let _ = blocking(move || producer.abort_transaction(TRANSACTION_TIMEOUT)).await;
            return Err(e.into());
        }
        blocking(move || producer.commit_transaction(TRANSACTION_TIMEOUT)).await?;
        // The broker holds the rows' messages; if this delete does not happen, the next lead
        // deletes them from the marker.
        outbox::delete(&self.pool, &ids).await?;
        self.update_backlog().await?;
        Ok(published)
    }

    /// Hold the lead, taking it if it is free: returns false while another instance leads.
    async fn lead(&mut self) -> Result<bool, RelayError> {
        if let Some(lead) = self.lead.as_mut() {
            // A lost connection has lost the lock with it.
            if sqlx::query("select 1")
                .execute(&mut lead.lock)
                .await
                .is_ok()
            {
                return Ok(true);
            }
            self.lead = None;
            tracing::warn!("the relay's lock connection was lost; taking the lead again");
        }
        let mut lock = PgConnection::connect(&self.database_url).await?;
        let mine: bool = sqlx::query_scalar("select pg_try_advisory_lock($1)")
            .bind(RELAY_LOCK)
            .fetch_one(&mut lock)
            .await?;
        if !mine {
            return Ok(false);
        }
        let producer = self.kafka.transactional_producer(TRANSACTIONAL_ID)?;
        let init = producer.clone();
        blocking(move || init.init_transactions(TRANSACTION_TIMEOUT)).await?;
        // Fenced: no earlier leader can commit now. What the last one committed but did not
        // delete is named by the last marker.
        if let Some(last) = self.kafka.last_message(Topic::RelayPosition, 0).await? {
            let marker: Marker = serde_json::from_slice(&last)?;
            outbox::delete(&self.pool, &marker.outbox_ids).await?;
        }
        tracing::info!("the relay leads");
        self.lead = Some(Lead { lock, producer });
        Ok(true)
    }

    async fn update_backlog(&self) -> Result<(), RelayError> {
        let (messages, oldest) = outbox::backlog(&self.pool).await?;
        self.metrics.outbox_backlog.set(messages);
        self.metrics.outbox_oldest_seconds.set(oldest as i64);
        Ok(())
    }
}

/// Run one of librdkafka's blocking transaction calls off the async threads.
async fn blocking(
    call: impl FnOnce() -> Result<(), rdkafka::error::KafkaError> + Send + 'static,
) -> Result<(), rdkafka::error::KafkaError> {
    tokio::task::spawn_blocking(call)
        .await
        .unwrap_or(Err(rdkafka::error::KafkaError::Canceled))
}
