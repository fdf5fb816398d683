//! The audit trail: one row in `ingest_audit` per authenticated request (who, which endpoint,
//! the status answered, rows by result, accepted events by kind, their ids). Never a value
//! from the request body.
//!
//! Requests answered at the same moment are written together: a writer takes every row
//! waiting, inserts them with one statement and one commit, and tells each request whether
//! its row is stored; up to four writers run at once. Each request waits for its own row before it answers, so there
//! is still no answer without an audit row; under load one commit serves many requests
//! instead of one each.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

/// Most rows written by one statement.
const MOST_PER_WRITE: usize = 512;

/// Writes under way at once, each on its own connection.
const WRITERS: usize = 4;

/// How long a request waits for its audit row before it answers 503. A database cut off by
/// the network answers nothing for minutes; the sender is told at once to try again. The
/// write itself goes on, so a row may be stored for a request that was answered 503: the
/// trail then holds the sender's retry as well, and the event ids make the retry harmless.
pub const AUDIT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// One request's audit row.
#[derive(Debug, Clone)]
pub struct AuditRow {
    /// When the request was received.
    pub received_at: DateTime<Utc>,
    /// The configured source name.
    pub source: String,
    /// The source's organisation code.
    pub organisation: String,
    /// The endpoint, e.g. `events/referrals`, `hmpps`, `treatment-extracts`.
    pub endpoint: String,
    /// The HTTP status answered.
    pub status: u16,
    /// Rows accepted.
    pub accepted: i32,
    /// Rows ignored (events this pipeline does not use).
    pub ignored: i32,
    /// Rows refused (invalid or not allowed).
    pub rejected: i32,
    /// Events written, by record type.
    pub kinds: BTreeMap<String, u64>,
    /// The written events' ids.
    pub event_ids: Vec<Uuid>,
}

/// The audit row could not be stored; the cause is logged once by the writer.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the audit trail could not be written")]
pub struct AuditUnavailable;

type Pending = (AuditRow, oneshot::Sender<Result<(), AuditUnavailable>>);

/// The handle requests record through; cheap to clone.
#[derive(Clone)]
pub struct AuditTrail {
    rows: mpsc::UnboundedSender<Pending>,
}

impl AuditTrail {
    /// Start the writer on `pool`. It runs until every handle is dropped.
    pub fn start(pool: PgPool) -> Self {
        let (rows, waiting) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(pool, waiting));
        Self { rows }
    }

    /// Store `row`; returns once it is committed, or [`AuditUnavailable`] when that has not
    /// happened within [`AUDIT_DEADLINE`].
    pub async fn record(&self, row: AuditRow) -> Result<(), AuditUnavailable> {
        let (done, stored) = oneshot::channel();
        self.rows.send((row, done)).map_err(|_| AuditUnavailable)?;
        // The writer gone (it never stops while handles exist) reads as unavailable.
        match tokio::time::timeout(AUDIT_DEADLINE, stored).await {
            Ok(stored) => stored.unwrap_or(Err(AuditUnavailable)),
            Err(_) => Err(AuditUnavailable),
        }
    }
}

async fn write_loop(pool: PgPool, mut waiting: mpsc::UnboundedReceiver<Pending>) {
    let writers = Arc::new(Semaphore::new(WRITERS));
    loop {
        // A writer first, then whatever is waiting by then: rows gather while every writer
        // is busy, and a row never waits for a write it is not part of.
        let Ok(writer) = Arc::clone(&writers).acquire_owned().await else {
            return;
        };
        let mut batch: Vec<Pending> = Vec::new();
        if waiting.recv_many(&mut batch, MOST_PER_WRITE).await == 0 {
            return;
        }
        let pool = pool.clone();
        // Each request hears its result through its own channel; if this task failed, its
        // requests would hear "unavailable" from their dropped senders.
        tokio::spawn(async move {
            let rows: Vec<&AuditRow> = batch.iter().map(|(row, _)| row).collect();
            let result = insert(&pool, &rows).await.map_err(|e| {
                tracing::error!(error = %e, rows = rows.len(), "audit write failed");
                AuditUnavailable
            });
            for (_, done) in batch {
                // A request that stopped waiting (its client went away) needs no answer.
                let _ = done.send(result);
            }
            drop(writer);
        });
    }
}

async fn insert(pool: &PgPool, rows: &[&AuditRow]) -> Result<(), sqlx::Error> {
    let column = |f: fn(&AuditRow) -> i32| rows.iter().map(|r| f(r)).collect::<Vec<i32>>();
    // Each row's event ids as one comma-separated text: `unnest` would flatten an array of
    // arrays into one.
    let ids: Vec<String> = rows
        .iter()
        .map(|r| {
            r.event_ids
                .iter()
                .map(Uuid::to_string)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    sqlx::query(
        "insert into ingest_audit (audit_id, received_at, source, organisation, endpoint, \
         status, accepted, ignored, rejected, kinds, event_ids) \
         select audit_id, received_at, source, organisation, endpoint, status, \
                accepted, ignored, rejected, kinds, \
                coalesce(string_to_array(nullif(ids, ''), ',')::uuid[], '{}') \
         from unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::smallint[], \
                     $6::int[], $7::int[], $8::int[], $9::jsonb[], $10::text[], $11::uuid[]) \
              as r(received_at, source, organisation, endpoint, status, accepted, ignored, \
                   rejected, kinds, ids, audit_id)",
    )
    .bind(rows.iter().map(|r| r.received_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.source.as_str()).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| r.organisation.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.endpoint.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.status as i16).collect::<Vec<_>>())
    .bind(column(|r| r.accepted))
    .bind(column(|r| r.ignored))
    .bind(column(|r| r.rejected))
    .bind(
        rows.iter()
            .map(|r| serde_json::json!(r.kinds))
            .collect::<Vec<_>>(),
    )
    .bind(ids)
    // Time-ordered ids: each insert lands at the right edge of the primary key's index
    // instead of on a random page (a random page is a full page image in the WAL after every
    // checkpoint).
    .bind(rows.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
    .execute(pool)
    .await?;
    Ok(())
}
