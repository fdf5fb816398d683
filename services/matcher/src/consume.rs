//! The consumer: reads the owned partitions from the offsets stored with the state, in
//! event-time order (`reader`), in batches, and applies each (`apply`), reading the next batch
//! while one applies. A database outage retries with backoff and reads nothing new; a lease that
//! moved drops the batch and reads the assignment again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use continuity_runtime::Clock;
use continuity_stream::{KafkaSettings, PartitionsContext};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;
use tokio::sync::watch;

use crate::apply::{Applier, ApplyError};
use crate::intake::{Batch, Incoming};
use crate::leases::Holdings;
use crate::reader::PartitionReader;
use crate::store;
use crate::Settings;

/// Point the consumer at the owned partitions, from the offsets stored with the state, and
/// read them through a [`PartitionReader`].
async fn assign(
    consumer: &Arc<StreamConsumer<PartitionsContext>>,
    pool: &PgPool,
    held: &Holdings,
    order_wait: Duration,
    offsets_missing: prometheus::IntCounter,
) -> anyhow::Result<(HashMap<(String, i32), i64>, PartitionReader)> {
    let stored = store::stored_offsets(pool).await?;
    let mut tpl = TopicPartitionList::new();
    let mut next = HashMap::new();
    for key in held.keys() {
        let offset = stored.get(key).copied().unwrap_or(0);
        tpl.add_partition_offset(&key.0, key.1, Offset::Offset(offset))?;
        next.insert(key.clone(), offset);
    }
    consumer.assign(&tpl)?;
    let partitions: Vec<(String, i32)> = held.keys().cloned().collect();
    let reader = PartitionReader::new(consumer, &partitions, order_wait, offsets_missing)?;
    Ok((next, reader))
}

/// Add a message to `batch`, unless it was already applied (read again after a
/// reassignment).
fn read_into(
    batch: &mut Batch,
    message: Incoming,
    next: &HashMap<(String, i32), i64>,
    applier: &Applier,
    clock: &dyn Clock,
) {
    if next
        .get(&(message.topic.clone(), message.partition))
        .is_some_and(|n| message.offset < *n)
    {
        return;
    }
    batch.push(
        message,
        continuity_domain::london_date(clock.now()),
        &applier.hasher,
    );
}

/// How applying a batch ended.
enum Applied {
    /// It committed.
    Committed,
    /// A lease moved: read the assignment again. The batch was not applied; its messages are
    /// read again from the stored offsets if this instance still holds their partitions.
    Reassign,
    /// The matcher is stopping.
    Stopped,
}

/// Apply `batch`, retrying until it commits. A database outage is not a poison message: it
/// retries with backoff, reading nothing new meanwhile.
async fn apply_until_done(
    applier: &Applier,
    batch: &Arc<Batch>,
    held: &Holdings,
    clock: &dyn Clock,
    held_rx: &watch::Receiver<Holdings>,
    stop: &mut watch::Receiver<bool>,
) -> Applied {
    let metrics = &applier.metrics;
    let mut backoff = Duration::from_millis(100);
    loop {
        let timer = metrics.apply_seconds.start_timer();
        let result = applier.apply(batch, held, clock.now()).await;
        timer.observe_duration();
        applier.note_write(&result);
        let e = match result {
            Ok(_report) => return Applied::Committed,
            Err(ApplyError::LostLease { topic, partition }) => {
                metrics.retries.with_label_values(&["lost_lease"]).inc();
                tracing::info!(topic = %topic, partition, "lease lost; dropping the batch");
                return Applied::Reassign;
            }
            Err(e) => e,
        };
        metrics.retries.with_label_values(&[e.reason()]).inc();
        // A concurrent writer won: retry soon, the state it committed is there to read.
        // Anything else backs off, doubling up to 5 s.
        let wait = if e.reason() == "conflict" {
            Duration::from_millis(10)
        } else {
            let wait = backoff;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            wait
        };
        tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "batch failed; retrying");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return Applied::Stopped,
        }
        // The lease may have moved while we waited.
        if held_rx.has_changed().unwrap_or(false) {
            return Applied::Reassign;
        }
    }
}

/// Read owned partitions in batches and apply them. The next batch is read and decoded while
/// the current one applies; it waits at most `linger_ms` after its first message for more,
/// and takes what has arrived meanwhile without waiting.
pub(crate) async fn consume_loop(
    applier: &Applier,
    kafka: &KafkaSettings,
    settings: &Settings,
    mut held_rx: watch::Receiver<Holdings>,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let consumer = Arc::new(kafka.partition_consumer("continuity-matcher")?);
    let metrics = &applier.metrics;
    let linger = Duration::from_millis(settings.linger_ms);
    let order_wait = Duration::from_millis(settings.order_wait_ms);
    let clock = clock.as_ref();
    let mut held = Holdings::new();
    let mut next: HashMap<(String, i32), i64> = HashMap::new();
    let mut reader: Option<PartitionReader> = None;
    let mut reassign = true;
    // The batch being read, and until when it waits for more messages.
    let mut ahead = Batch::default();
    let mut fill_until: Option<tokio::time::Instant> = None;
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        if reassign || held_rx.has_changed().unwrap_or(false) {
            held = held_rx.borrow_and_update().clone();
            drop(reader.take());
            let (stored, new_reader) = assign(
                &consumer,
                &applier.pool,
                &held,
                order_wait,
                metrics.offsets_missing.clone(),
            )
            .await?;
            next = stored;
            reader = Some(new_reader);
            metrics.partitions_owned.set(held.len() as i64);
            reassign = false;
            // What was read ahead is read again from the stored offsets.
            ahead = Batch::default();
            fill_until = None;
        }
        let Some(partitions) = reader.as_mut().filter(|_| !held.is_empty()) else {
            tokio::select! {
                _ = held_rx.changed() => reassign = true,
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
            continue;
        };
        if fill_until.is_none() {
            let first = tokio::select! {
                m = partitions.recv() => m,
                _ = held_rx.changed() => { reassign = true; continue }
                _ = stop.wait_for(|s| *s) => return Ok(()),
            };
            read_into(&mut ahead, first, &next, applier, clock);
            fill_until = Some(tokio::time::Instant::now() + linger);
        }
        let until = fill_until.unwrap_or_else(tokio::time::Instant::now);
        while ahead.len() < settings.batch_size {
            match tokio::time::timeout_at(until, partitions.recv()).await {
                Ok(m) => read_into(&mut ahead, m, &next, applier, clock),
                Err(_) => break,
            }
        }
        fill_until = None;
        if ahead.is_empty() {
            continue;
        }
        let batch = Arc::new(std::mem::take(&mut ahead));
        metrics.batch_size.observe(batch.len() as f64);

        // Apply, reading the next batch meanwhile.
        let outcome = {
            let applying = apply_until_done(applier, &batch, &held, clock, &held_rx, &mut stop);
            tokio::pin!(applying);
            loop {
                tokio::select! {
                    biased;
                    outcome = &mut applying => break outcome,
                    m = partitions.recv(), if ahead.len() < settings.batch_size => {
                        read_into(&mut ahead, m, &next, applier, clock);
                        fill_until.get_or_insert_with(|| tokio::time::Instant::now() + linger);
                    }
                }
            }
        };
        match outcome {
            Applied::Committed => {
                let mut tpl = TopicPartitionList::new();
                for m in batch.messages() {
                    let key = (m.topic.clone(), m.partition);
                    let n = next.entry(key).or_insert(0);
                    *n = (*n).max(m.offset + 1);
                    let _ = tpl.add_partition_offset(&m.topic, m.partition, Offset::Offset(*n));
                }
                // For lag monitoring only: the offsets that count are in PostgreSQL.
                let _ = consumer.commit(&tpl, CommitMode::Async);
            }
            Applied::Reassign => reassign = true,
            Applied::Stopped => return Ok(()),
        }
    }
}
