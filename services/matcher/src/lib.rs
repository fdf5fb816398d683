//! The matcher: consumes the source topics, keeps one case per release in PostgreSQL,
//! applies the 21-day rule and publishes case events and caseworker flags, effectively once.
//!
//! Tasks, all started by [`run`]:
//! - the consumer (`consume_loop`): reads owned partitions from the offsets stored in
//!   PostgreSQL, in event-time order (`reader`, `merge`), and applies batches (`apply`);
//! - the lease keeper: renews, takes and gives back partition leases (`leases`);
//! - the deadline clock: re-assesses cases whose next warning or overdue time has passed, so
//!   time moves on without new events;
//! - the relay: publishes the outbox (`relay`);
//! - the operations endpoint: `/metrics`, `/healthz`, `/readyz`.
//!
//! It holds no state in memory that matters: a SIGKILL at any point loses nothing, because
//! state, offsets and outgoing messages commit together.

#![warn(missing_docs)]

pub mod apply;
pub mod keys;
pub mod leases;
pub mod merge;
pub mod metrics;
pub mod outbox;
pub mod reader;
pub mod relay;
pub mod state;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use continuity_domain::{KeyedHasher, Rules};
use continuity_runtime::{Clock, ExposeSecret, SecretString};
use continuity_stream::{KafkaSettings, PartitionsContext, Topic};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;
use sqlx::PgPool;
use tokio::sync::watch;

use crate::apply::{Applier, ApplyError, Batch, Incoming};
use crate::leases::{Holdings, Leases};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::reader::PartitionReader;

/// The matcher's configuration (file, then `CONTINUITY_*` environment variables).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// PostgreSQL URL (`CONTINUITY_DATABASE_URL`).
    pub database_url: SecretString,
    /// Maximum database connections for batches and the deadline clock; leases, the relay,
    /// lag and health checks use up to 4 more.
    pub database_pool: u32,
    /// Kafka bootstrap servers (`CONTINUITY_BROKERS`).
    pub brokers: String,
    /// Prefix of every topic name.
    pub topic_prefix: String,
    /// Secret for keyed hashes (`CONTINUITY_HASH_SECRET`). Must be the same for every
    /// instance and never change without re-keying the store.
    pub hash_secret: SecretString,
    /// This instance's id; defaults to host name and process id.
    pub instance_id: Option<String>,
    /// Most messages per batch (one transaction).
    pub batch_size: usize,
    /// How long to wait to fill a batch, in milliseconds.
    pub linger_ms: u64,
    /// How long a partition with nothing read holds back the others, in milliseconds: its
    /// next message may be the earliest. Only while the broker has not said it is at its end.
    pub order_wait_ms: u64,
    /// Lease lifetime in milliseconds; a stopped instance's partitions move after this.
    pub lease_ttl_ms: u64,
    /// How often leases are renewed and rebalanced, in milliseconds.
    pub rebalance_ms: u64,
    /// How often the deadline clock runs, in milliseconds.
    pub deadline_interval_ms: u64,
    /// How often the relay looks for work when idle, in milliseconds.
    pub relay_interval_ms: u64,
    /// Address of `/metrics`, `/healthz`, `/readyz`.
    pub http_addr: SocketAddr,
    /// Run migrations at start-up.
    pub migrate_on_start: bool,
    /// Evaluate as at this instant instead of the wall clock: for replaying history to a
    /// point in time, and for tests. Unset in production.
    pub fixed_now: Option<DateTime<Utc>>,
    /// The rules of the measure.
    pub rules: Rules,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: SecretString::from("postgres://postgres@127.0.0.1:5432/postgres"),
            database_pool: 8,
            brokers: "127.0.0.1:9092".into(),
            topic_prefix: "continuity.".into(),
            hash_secret: SecretString::from(""),
            instance_id: None,
            batch_size: 2000,
            linger_ms: 20,
            order_wait_ms: 500,
            lease_ttl_ms: 10_000,
            rebalance_ms: 2_000,
            deadline_interval_ms: 30_000,
            relay_interval_ms: 50,
            http_addr: SocketAddr::from(([127, 0, 0, 1], 9101)),
            migrate_on_start: true,
            fixed_now: None,
            rules: Rules::default(),
        }
    }
}

impl Settings {
    /// The clock: fixed when `fixed_now` is set, the system clock otherwise.
    pub fn clock(&self) -> Arc<dyn Clock> {
        continuity_runtime::clock(self.fixed_now)
    }

    /// The topic names.
    pub fn kafka(&self) -> KafkaSettings {
        KafkaSettings {
            brokers: self.brokers.clone(),
            topic_prefix: self.topic_prefix.clone(),
        }
    }

    fn instance(&self) -> String {
        self.instance_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "matcher".into());
            format!("{host}-{}", std::process::id())
        })
    }
}

/// Run the matcher until `shutdown` completes, then finish the batch in flight, publish the
/// outbox and give back the leases.
pub async fn run(
    settings: Settings,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if settings.hash_secret.expose_secret().is_empty() {
        anyhow::bail!(
            "CONTINUITY_HASH_SECRET is not set: set it to the deployment's secret for keyed hashes"
        );
    }
    // Batches and the deadline clock look up keys; leases, the relay, lag and health checks
    // read small tables whole and get plans for their own parameters.
    let connect = |max, access| {
        continuity_store::pool(
            settings.database_url.expose_secret(),
            max,
            Duration::from_secs(5),
            access,
        )
    };
    let batches = connect(settings.database_pool, continuity_store::Access::KeyLookups)?;
    let pool = connect(4, continuity_store::Access::General)?;
    if settings.migrate_on_start {
        continuity_store::migrate(&pool)
            .await
            .context("running migrations")?;
    }
    let kafka = settings.kafka();
    kafka.ensure_topics(&Topic::ALL).await?;
    // Topics that existed keep their configuration: say where it could lose events.
    match kafka.config_drift(&Topic::ALL).await {
        Ok(drift) => {
            for problem in drift {
                tracing::error!(
                    problem = %problem,
                    "topic configuration differs from the pipeline's; with source records deleted by retention, a replay or a matcher that falls behind cannot read them (runbooks/source-offsets-missing.md)"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read the topics' configuration"),
    }
    let metrics = Metrics::new()?;
    let instance = settings.instance();
    tracing::info!(instance = %instance, "matcher starting");

    let mut partitions = Vec::new();
    for topic in Topic::SOURCES {
        for p in 0..topic.partitions() {
            partitions.push((kafka.topic(topic), p));
        }
    }
    let leases = Leases::new(
        pool.clone(),
        instance.clone(),
        Duration::from_millis(settings.lease_ttl_ms),
        partitions,
    );
    leases.ensure_rows().await?;

    let applier = Applier {
        pool: batches,
        hasher: KeyedHasher::new(settings.hash_secret.expose_secret().as_bytes()),
        rules: settings.rules.clone(),
        kafka: kafka.clone(),
        instance,
        metrics: metrics.clone(),
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let (held_tx, held_rx) = watch::channel(Holdings::new());

    let lease_task = tokio::spawn(lease_loop(
        leases.clone(),
        held_tx,
        Duration::from_millis(settings.rebalance_ms),
        stop_rx.clone(),
    ));
    // The relay stops after the consumer and the deadline clock, so it publishes what their
    // last transactions wrote.
    let (relay_stop_tx, relay_stop_rx) = watch::channel(false);
    let relay_task = tokio::spawn(
        relay::Relay::new(
            pool.clone(),
            settings.database_url.expose_secret().to_owned(),
            kafka.clone(),
            metrics.clone(),
        )
        .run(
            Duration::from_millis(settings.relay_interval_ms),
            relay_stop_rx,
        ),
    );
    let deadline_task = tokio::spawn(deadline_loop(
        applier.clone(),
        pool.clone(),
        clock.clone(),
        Duration::from_millis(settings.deadline_interval_ms),
        stop_rx.clone(),
    ));
    let lag_task = tokio::spawn(lag_loop(
        pool.clone(),
        kafka.clone(),
        metrics.clone(),
        held_rx.clone(),
        stop_rx.clone(),
    ));
    let mut http_stop = stop_rx.clone();
    let http_task = tokio::spawn(continuity_runtime::serve_operations(
        settings.http_addr,
        metrics.registry.clone(),
        continuity_runtime::DatabaseAndBroker::new(pool.clone(), &kafka)?,
        async move {
            let _ = http_stop.wait_for(|s| *s).await;
        },
    ));

    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    let consumed = consume_loop(&applier, &kafka, &settings, held_rx, clock, stop_rx).await;

    // Clean shutdown: the batch in flight has committed; publish what it wrote, give back
    // the partitions so another instance takes over at once.
    let _ = lease_task.await;
    let _ = lag_task.await;
    let _ = deadline_task.await;
    let _ = relay_stop_tx.send(true);
    let _ = relay_task.await;
    leases.release_all().await?;
    let _ = http_task.await;
    tracing::info!("matcher stopped");
    consumed
}

async fn lease_loop(
    leases: Leases,
    held_tx: watch::Sender<Holdings>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut held = Holdings::new();
    loop {
        match leases.rebalance(&held).await {
            Ok(now_held) => {
                if now_held != held {
                    held = now_held;
                    let _ = held_tx.send(held.clone());
                }
            }
            Err(e) => tracing::warn!(error = %e, "lease rebalance failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Every 10 seconds: messages not yet applied on each owned partition (the broker's high
/// watermark minus the next offset stored with the state).
async fn lag_loop(
    pool: PgPool,
    kafka: KafkaSettings,
    metrics: Metrics,
    held_rx: watch::Receiver<Holdings>,
    mut stop: watch::Receiver<bool>,
) {
    let consumer = match kafka.consumer("continuity-matcher-lag") {
        Ok(c) => Arc::new(c),
        Err(e) => {
            tracing::error!(error = %e, "lag monitor cannot create a consumer");
            return;
        }
    };
    loop {
        let held: Vec<(String, i32)> = held_rx.borrow().keys().cloned().collect();
        let stored: HashMap<(String, i32), i64> = sqlx::query_as::<_, (String, i32, i64)>(
            "select topic, partition, next_offset from consumer_offsets",
        )
        .fetch_all(&pool)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(t, p, o)| ((t, p), o))
        .collect();
        let c = consumer.clone();
        let marks = tokio::task::spawn_blocking(move || {
            held.into_iter()
                .filter_map(|(t, p)| {
                    c.fetch_watermarks(&t, p, Duration::from_secs(2))
                        .ok()
                        .map(|(_, high)| ((t, p), high))
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        metrics.consumer_lag.reset();
        for ((topic, partition), high) in marks {
            let next = stored
                .get(&(topic.clone(), partition))
                .copied()
                .unwrap_or(0);
            metrics
                .consumer_lag
                .with_label_values(&[&topic, &partition.to_string()])
                .set((high - next).max(0));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// One pass of the deadline clock at `now`: re-assess up to `limit` components with a case
/// whose next due time has passed. Safe with several instances (`skip locked`). Returns the
/// number of components re-assessed.
pub async fn deadline_pass(
    applier: &Applier,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<usize, ApplyError> {
    let mut tx = applier.pool.begin().await?;
    let components: Vec<i64> = sqlx::query_scalar(
        "select id from components
         where merged_into is null and id in
           (select coalesce(c.merged_into, c.id)
            from cases k join components c on c.id = k.component
            where k.next_due_at <= $1
            order by k.next_due_at limit $2)
         order by id
         for update skip locked",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    if components.is_empty() {
        return Ok(0);
    }
    let mut outbox = Outbox::default();
    applier
        .reassess(&mut tx, &components, now, &mut outbox)
        .await?;
    outbox.write(&mut tx).await?;
    tx.commit().await?;
    Ok(components.len())
}

/// Run the deadline clock every `every`, and count the open cases on `pool` (a whole-table
/// count: not a key look-up).
async fn deadline_loop(
    applier: Applier,
    pool: PgPool,
    clock: Arc<dyn Clock>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let started = std::time::Instant::now();
        let result = loop {
            match deadline_pass(&applier, clock.now(), 500).await {
                Ok(500) => continue,
                other => break other,
            }
        };
        let label = match &result {
            Ok(_) => "ok",
            Err(e) => {
                tracing::warn!(error = %e, "deadline pass failed; retrying next tick");
                "error"
            }
        };
        applier
            .metrics
            .deadline_seconds
            .with_label_values(&[label])
            .observe(started.elapsed().as_secs_f64());
        if let Ok(open) =
            sqlx::query_scalar::<_, i64>("select count(*) from cases where outcome = 'OPEN'")
                .fetch_one(&pool)
                .await
        {
            applier.metrics.open_cases.set(open);
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Point the consumer at the owned partitions, from the offsets stored with the state, and
/// read them through a [`PartitionReader`].
async fn assign(
    consumer: &Arc<StreamConsumer<PartitionsContext>>,
    pool: &PgPool,
    held: &Holdings,
    order_wait: Duration,
    offsets_missing: prometheus::IntCounter,
) -> anyhow::Result<(HashMap<(String, i32), i64>, PartitionReader)> {
    let stored: Vec<(String, i32, i64)> =
        sqlx::query_as("select topic, partition, next_offset from consumer_offsets")
            .fetch_all(pool)
            .await?;
    let stored: HashMap<(String, i32), i64> =
        stored.into_iter().map(|(t, p, o)| ((t, p), o)).collect();
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
async fn consume_loop(
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
