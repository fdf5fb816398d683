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
mod consume;
pub mod deadline;
pub mod grouping;
pub mod intake;
pub mod keys;
pub mod leases;
pub mod merge;
pub mod metrics;
pub mod reader;
pub mod relay;
pub mod state;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use continuity_domain::{KeyedHasher, Rules};
use continuity_runtime::{
    periodically, Checked, Clock, ClockSettings, Connections, HashSecret, Supervisor,
};
use continuity_stream::{KafkaSettings, Topic};
use serde::Deserialize;
use sqlx::PgPool;
use tokio::sync::watch;

use crate::apply::Applier;
use crate::consume::consume_loop;
use crate::deadline::deadline_loop;
use crate::leases::{Holdings, Leases};
use crate::metrics::Metrics;

/// The matcher's configuration (file, then `CONTINUITY_*` environment variables).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// PostgreSQL and the broker (`database_pool`: connections for batches and the deadline
    /// clock; leases, the relay, lag and health checks use up to 4 more).
    #[serde(flatten)]
    pub connections: Connections,
    /// Secret for keyed hashes (`CONTINUITY_HASH_SECRET`). Must be the same for every
    /// instance and never change without re-keying the store.
    pub hash_secret: HashSecret,
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
    /// The clock (`fixed_now`).
    #[serde(flatten)]
    pub clock: ClockSettings,
    /// The rules of the measure.
    pub rules: Rules,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            connections: Connections::with_pool(8),
            hash_secret: HashSecret::default(),
            instance_id: None,
            batch_size: 2000,
            linger_ms: 20,
            order_wait_ms: 500,
            lease_ttl_ms: 10_000,
            rebalance_ms: 2_000,
            deadline_interval_ms: 1_000,
            relay_interval_ms: 50,
            http_addr: SocketAddr::from(([127, 0, 0, 1], 9101)),
            migrate_on_start: true,
            clock: ClockSettings::default(),
            rules: Rules::default(),
        }
    }
}

impl Checked for Settings {
    fn check(&self) -> Result<(), String> {
        self.hash_secret.expose().map(|_| ()).map_err(str::to_owned)
    }
}

impl Settings {
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
    let hasher = KeyedHasher::new(settings.hash_secret.expose().map_err(anyhow::Error::msg)?);
    // Batches and the deadline clock look up keys; leases, the relay, lag and health checks
    // read small tables whole and get plans for their own parameters.
    let connect = |max, access| {
        continuity_store::pool(
            settings.connections.database.url(),
            max,
            Duration::from_secs(5),
            access,
        )
    };
    let batches = connect(
        settings.connections.database.database_pool,
        continuity_store::Access::KeyLookups,
    )?;
    let pool = connect(4, continuity_store::Access::General)?;
    if settings.migrate_on_start {
        continuity_store::migrate(&pool)
            .await
            .context("running migrations")?;
    }
    let kafka = settings.connections.kafka.clone();
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
    let source_topics: Vec<String> = Topic::SOURCES.iter().map(|t| kafka.topic(*t)).collect();
    metrics.zeroed(&source_topics);
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
        hasher,
        rules: settings.rules.clone(),
        kafka: kafka.clone(),
        instance,
        metrics: metrics.clone(),
        writes: continuity_runtime::Writes::default(),
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let (held_tx, held_rx) = watch::channel(Holdings::new());
    let mut tasks = Supervisor::new();
    tasks.spawn(
        "lease keeper",
        lease_loop(
            leases.clone(),
            held_tx,
            Duration::from_millis(settings.rebalance_ms),
            stop_rx.clone(),
        ),
    );
    tasks.spawn(
        "deadline clock",
        deadline_loop(
            applier.clone(),
            pool.clone(),
            clock.clone(),
            Duration::from_millis(settings.deadline_interval_ms),
            stop_rx.clone(),
        ),
    );
    tasks.spawn(
        "lag monitor",
        lag_loop(
            pool.clone(),
            kafka.clone(),
            metrics.clone(),
            held_rx.clone(),
            stop_rx.clone(),
        ),
    );
    let readiness = continuity_runtime::DatabaseAndBroker::new(pool.clone(), &kafka)?
        .with_writes(applier.writes.clone());
    let (addr, registry, mut http_stop) = (
        settings.http_addr,
        metrics.registry.clone(),
        stop_rx.clone(),
    );
    tasks.spawn("operations endpoint", async move {
        let stopped = async move {
            let _ = http_stop.wait_for(|s| *s).await;
        };
        if let Err(e) =
            continuity_runtime::serve_operations(addr, registry, readiness, stopped).await
        {
            tracing::error!(error = %e, "the operations endpoint failed");
        }
    });
    // The relay stops after the consumer and the deadline clock, so it publishes what their
    // last transactions wrote.
    let (relay_stop_tx, relay_stop_rx) = watch::channel(false);
    let mut relay = Supervisor::new();
    relay.spawn(
        "outbox relay",
        relay::Relay::new(
            pool.clone(),
            settings.connections.database.url().to_owned(),
            kafka.clone(),
            metrics.clone(),
        )
        .run(
            Duration::from_millis(settings.relay_interval_ms),
            relay_stop_rx,
        ),
    );

    let stopper = Arc::clone(&stop_tx);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stopper.send(true);
    });
    // Runs until shutdown, unless a background task ends first: then the service stops,
    // saying which (the batch in flight, if any, is rolled back and read again next time).
    // Tasks end by themselves once stop is asked: only an end before that is a failure.
    let stopping = stop_rx.clone();
    let consuming = consume_loop(&applier, &kafka, &settings, held_rx, clock, stop_rx);
    tokio::pin!(consuming);
    let consumed = tokio::select! {
        biased;
        consumed = &mut consuming => consumed,
        failure = tasks.next_exit() => {
            let asked = *stopping.borrow();
            if asked {
                consuming.await
            } else {
                Err(failure)
            }
        }
        failure = relay.next_exit() => Err(failure),
    };

    // The batch in flight has committed; stop the other tasks, publish what was written, give
    // back the partitions so another instance takes over at once.
    let _ = stop_tx.send(true);
    let stopped = tasks.join(SHUTDOWN_TIMEOUT).await;
    let _ = relay_stop_tx.send(true);
    let relayed = relay.join(SHUTDOWN_TIMEOUT).await;
    leases.release_all().await?;
    tracing::info!("matcher stopped");
    consumed.and(stopped).and(relayed)
}

/// How long stopping tasks may take before they are aborted.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);

async fn lease_loop(
    leases: Leases,
    held_tx: watch::Sender<Holdings>,
    every: Duration,
    stop: watch::Receiver<bool>,
) {
    // What this instance holds, between passes (no pass runs while another does).
    let held = std::sync::Mutex::new(Holdings::new());
    periodically(every, stop, || async {
        let before = match held.lock() {
            Ok(h) => h.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        match leases.rebalance(&before).await {
            Ok(now_held) if now_held != before => {
                match held.lock() {
                    Ok(mut h) => *h = now_held.clone(),
                    Err(poisoned) => *poisoned.into_inner() = now_held.clone(),
                }
                let _ = held_tx.send(now_held);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "lease rebalance failed; retrying"),
        }
    })
    .await;
}

/// Every 10 seconds: messages not yet applied on each owned partition (the broker's high
/// watermark minus the next offset stored with the state). A look-up that fails leaves the
/// last figures, rather than showing lag the matcher does not have.
async fn lag_loop(
    pool: PgPool,
    kafka: KafkaSettings,
    metrics: Metrics,
    held_rx: watch::Receiver<Holdings>,
    stop: watch::Receiver<bool>,
) {
    let consumer = match kafka.consumer("continuity-matcher-lag") {
        Ok(c) => Arc::new(c),
        Err(e) => {
            tracing::error!(error = %e, "lag monitor cannot create a consumer");
            return;
        }
    };
    periodically(Duration::from_secs(10), stop, || async {
        let held: Vec<(String, i32)> = held_rx.borrow().keys().cloned().collect();
        let lags = match continuity_store::lag::lag(&pool, consumer.clone(), held).await {
            Ok(lags) => lags,
            Err(e) => {
                tracing::warn!(error = %e, "lag not measured");
                return;
            }
        };
        metrics.consumer_lag.reset();
        for ((topic, partition), lag) in lags {
            metrics
                .consumer_lag
                .with_label_values(&[&topic, &partition.to_string()])
                .set(lag);
        }
    })
    .await;
}
