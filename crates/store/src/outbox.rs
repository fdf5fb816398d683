//! The outbox table: messages a transaction causes, written in that transaction (one row per
//! transaction, its messages in order as parallel arrays) and read, then deleted, by the
//! matcher's relay once the broker holds them. The matcher's state transactions and the
//! worklist's recorded actions write it; one relay publishes both. The only module that knows
//! the table.

use sqlx::{PgConnection, PgPool};

/// Messages to publish, written to the outbox table in the caller's transaction as one row.
#[derive(Default)]
pub struct Outbox {
    topics: Vec<String>,
    keys: Vec<Option<Vec<u8>>>,
    payloads: Vec<Vec<u8>>,
}

impl Outbox {
    /// Move `other`'s messages to the end of this one.
    pub fn append(&mut self, mut other: Outbox) {
        self.topics.append(&mut other.topics);
        self.keys.append(&mut other.keys);
        self.payloads.append(&mut other.payloads);
    }

    /// Add one message at the end.
    pub fn push(&mut self, topic: String, key: Option<Vec<u8>>, payload: Vec<u8>) {
        self.topics.push(topic);
        self.keys.push(key);
        self.payloads.push(payload);
    }

    /// Write the messages, in order, as one outbox row (nothing when there are none).
    pub async fn write(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.topics.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "insert into outbox (messages, topics, keys, payloads) values ($1, $2, $3, $4)",
        )
        .bind(self.topics.len() as i32)
        .bind(&self.topics)
        .bind(&self.keys)
        .bind(&self.payloads)
        .execute(tx)
        .await?;
        Ok(())
    }
}

/// One stored outbox row: the messages one state transaction caused, in order.
#[derive(sqlx::FromRow)]
pub struct Pending {
    /// The row's id (ascending in the order rows were inserted).
    pub id: i64,
    /// Full topic name of each message.
    pub topics: Vec<String>,
    /// Key of each message.
    pub keys: Vec<Option<Vec<u8>>>,
    /// Value of each message.
    pub payloads: Vec<Vec<u8>>,
}

impl Pending {
    /// The row's messages, in order.
    pub fn messages(&self) -> impl Iterator<Item = continuity_stream::Outgoing<'_>> {
        self.topics
            .iter()
            .zip(&self.keys)
            .zip(&self.payloads)
            .map(|((topic, key), payload)| {
                continuity_stream::Outgoing::new(topic, key.as_deref(), payload)
            })
    }
}

/// The oldest `limit` rows, in order.
pub async fn oldest(pool: &PgPool, limit: i64) -> Result<Vec<Pending>, sqlx::Error> {
    sqlx::query_as("select id, topics, keys, payloads from outbox order by id limit $1")
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// Delete rows whose messages the broker holds.
pub async fn delete(pool: &PgPool, ids: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query("delete from outbox where id = any($1)")
        .bind(ids)
        .execute(pool)
        .await?;
    Ok(())
}

/// Messages waiting, and the age in seconds of the oldest row.
pub async fn backlog(pool: &PgPool) -> Result<(i64, f64), sqlx::Error> {
    let (messages, oldest): (i64, Option<f64>) = sqlx::query_as(
        "select coalesce(sum(messages), 0)::bigint,
                extract(epoch from now() - min(created_at))::float8
         from outbox",
    )
    .fetch_one(pool)
    .await?;
    Ok((messages, oldest.unwrap_or(0.0)))
}
