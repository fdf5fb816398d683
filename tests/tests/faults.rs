//! The whole pipeline under faults, each service its own process (`continuity_e2e::system`):
//! ingest and the reporter killed with SIGKILL at random points and started again; PostgreSQL
//! restarted, then cut off by a network partition for 60 s, under a source sending. Each test
//! ends with the crash test's check: the cases, outcomes and flags equal the rules applied to
//! everything the source sent, nothing published twice, and for the reporter, the figures and
//! pages an uninterrupted run makes. The matcher's own kills are in
//! `services/matcher/tests/crash.rs`.
//!
//! `CONTINUITY_FAULT_KILLS` sets the kills per service (3 here; `scripts/evidence.sh` asks
//! for 10).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use continuity::produce;
use continuity_domain::CohortPeriod;
use continuity_e2e::partition::Partition;
use continuity_e2e::system::{Delivery, Ingest, Process, Scratch, Service, Source, Wiring};
use continuity_e2e::*;
use continuity_runtime::{ClockSettings, Connections, DatabaseSettings};
use continuity_stream::Topic;
use continuity_synthetic::{generate, Config};
use rand::{Rng, SeedableRng};

/// These tests start and kill processes and time nothing, but each loads both cores: they run
/// one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Kills per service: `CONTINUITY_FAULT_KILLS`, 3 unless set.
fn kills() -> usize {
    std::env::var("CONTINUITY_FAULT_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(3)
}

/// Tuesday 16 December 2025, the day after the weekly report for 2025-W50 was due.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 12, 16, 12, 0, 0).unwrap()
}

/// About `n` generated events of releases in 2025.
fn events(seed: u64, n: usize) -> Vec<continuity_domain::events::SourceEvent> {
    generate(&Config {
        seed,
        people: Config::people_for_events(n),
        start: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        days: 330,
        ..Config::default()
    })
}

/// The matcher and ingest as processes on `wiring`, and a source sending about 20,000
/// generated events (seed `seed`) through ingest in batches of 100 in the background: a
/// request is in flight most of the time, so a fault lands in one.
struct Streaming {
    events: Vec<continuity_domain::events::SourceEvent>,
    matcher: Process,
    ingest: Ingest,
    delivery: std::sync::Arc<Delivery>,
    /// Batches to send.
    requests: usize,
    sending: tokio::task::JoinHandle<()>,
}

impl Streaming {
    async fn start(wiring: &Wiring, seed: u64) -> Self {
        let events = events(seed, 20_000);
        let matcher = wiring.matcher("faults");
        let ingest = Ingest::start(wiring, &events);
        ingest.process.until_serving(60).await;
        let source = Source::new(ingest.process.port, ingest.tokens.clone());
        let delivery = source.delivery.clone();
        let batches = Source::batches(&events, 100);
        let requests = batches.len();
        let sending = tokio::spawn(async move { source.send(&batches, 900).await });
        Streaming {
            events,
            matcher,
            ingest,
            delivery,
            requests,
            sending,
        }
    }

    /// Batches accepted so far.
    fn accepted(&self) -> usize {
        self.delivery.accepted.load(Ordering::Relaxed)
    }

    /// Wait until `n` batches are accepted.
    async fn until_accepted(&self, n: usize, what: &str) {
        eventually(600, what, || async { self.accepted() >= n }).await;
    }

    /// Wait for the source to finish and the matcher to apply and publish everything; print
    /// what the source saw; stop both services cleanly and check the end state.
    async fn end_as_if_uninterrupted(self, env: &Env) {
        let Streaming {
            events,
            mut matcher,
            mut ingest,
            delivery,
            sending,
            ..
        } = self;
        sending.await.unwrap();
        until_all_applied(&env.pool, &events, 600).await;
        until_outbox_drained(&env.pool, 120).await;
        eprintln!("source: {}", delivery.describe());
        ingest.process.stop();
        matcher.stop();
        ends_as_if_uninterrupted(env, &events, now()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_killed_at_random_points_loses_nothing_and_doubles_nothing() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let env = env().await;
    let mut stream = Streaming::start(&Wiring::of(&env, now()), 31).await;
    let requests = stream.requests;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let mut progress = Vec::new();
    for _ in 0..kills() {
        // Each kill at a random point of the next part of the stream.
        let at = stream.accepted() + rng.random_range(5..requests / (kills() + 1));
        stream
            .until_accepted(at, "the source's next batches accepted")
            .await;
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..200))).await;
        stream.ingest.process.kill();
        progress.push(stream.accepted());
        stream.ingest.process.restart();
    }
    eprintln!("ingest killed after {progress:?} of {requests} batches accepted");
    assert!(
        progress.iter().all(|p| *p < requests),
        "every kill landed mid-stream: {progress:?}"
    );
    let delivery = stream.delivery.clone();
    stream.end_as_if_uninterrupted(&env).await;
    assert!(
        delivery.unanswered.load(Ordering::Relaxed) > 0,
        "a kill cut a request off: {}",
        delivery.describe()
    );
    // No 202 without its audit row: every batch the source saw accepted has one.
    let audited: i64 = sqlx::query_scalar("select count(*) from ingest_audit where status = 202")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert!(
        audited >= delivery.accepted.load(Ordering::Relaxed) as i64,
        "{audited} accepted requests audited; the source saw {}",
        delivery.describe()
    );
    env.cleanup().await;
}

/// Every file under `dir`, by its path below `dir`.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.insert(path.strip_prefix(root).unwrap().to_owned(), bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Whether a file under `dir` was written at or after `since`.
fn written_since(dir: &Path, since: std::time::SystemTime) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            written_since(&path, since)
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|m| m >= since)
        }
    })
}

/// What `published_figures` holds: cohort id to (content, status, revision).
async fn published_figures(env: &Env) -> BTreeMap<uuid::Uuid, (uuid::Uuid, String, i32)> {
    sqlx::query_as::<_, (uuid::Uuid, uuid::Uuid, String, i32)>(
        "select cohort_id, content, status, revision from published_figures",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(id, content, status, revision)| (id, (content, status, revision)))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reporter_killed_at_random_points_ends_with_the_figures_and_pages_of_an_uninterrupted_run(
) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let env = env().await;
    let events = events(32, 20_000);
    let producer = env.kafka.producer().unwrap();
    produce(&producer, &env.kafka, &messages(&events))
        .await
        .unwrap();
    let wiring = Wiring::of(&env, now());
    let mut matcher = wiring.matcher("faults");
    until_all_applied(&env.pool, &events, 600).await;
    until_outbox_drained(&env.pool, 120).await;
    matcher.stop();

    // The uninterrupted run, in process, to a topic prefix and directory of its own; what it
    // records is cleared so the reporter's processes start as if nothing had been published.
    let reference_dir = Scratch::new("reports-reference");
    let mut reference_kafka = env.kafka.clone();
    reference_kafka.topic_prefix = format!("{}reference.", env.kafka.topic_prefix);
    reference_kafka
        .ensure_topics(&[Topic::Performance])
        .await
        .unwrap();
    let reporter = continuity_reporter::Reporter::connect(continuity_reporter::Settings {
        connections: Connections {
            database: DatabaseSettings::new(env.db_url.clone(), 2),
            kafka: reference_kafka.clone(),
        },
        reports_dir: reference_dir.0.clone(),
        clock: ClockSettings {
            fixed_now: Some(now()),
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let week = CohortPeriod::iso_week(NaiveDate::from_ymd_opt(2025, 12, 14).unwrap());
    let started = std::time::Instant::now();
    reporter.run(week, Some(now())).await.unwrap();
    let run = started.elapsed();
    let reference_figures = published_figures(&env).await;
    let reference_pages = files(&reference_dir.0);
    let reference_messages: BTreeSet<Vec<u8>> = read_topic(&reference_kafka, Topic::Performance)
        .await
        .into_iter()
        .collect();
    sqlx::query("delete from published_figures")
        .execute(&env.pool)
        .await
        .unwrap();
    assert!(reference_pages.len() > 100 && reference_figures.len() > 1000);

    // Each start finds nothing published since Monday's run was due and runs it at once; each
    // is killed at a random point of that run, every other one while it writes its pages. One
    // that finished first is cleared, so the next start runs it again.
    let reports = Scratch::new("reports");
    let reports_dir = reports.0.to_str().unwrap().to_owned();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(13);
    let mut interrupted = 0;
    let mut process: Option<Process> = None;
    for kill in 0..kills() {
        let mut reporter = match process.take() {
            Some(mut p) => {
                p.restart();
                p
            }
            None => Process::start(
                Service::Reporter,
                &wiring,
                free_port(),
                &[("CONTINUITY_REPORTS_DIR", &reports_dir)],
            ),
        };
        let started = std::time::SystemTime::now();
        reporter.until_serving(60).await;
        if kill % 2 == 0 {
            // At a random point of the run.
            let life = rng.random_range(0..run.as_millis().max(1) as u64);
            tokio::time::sleep(Duration::from_millis(life)).await;
        } else {
            // While it writes the pages: a few milliseconds after the first is written.
            let dir = reports.0.clone();
            eventually(60, "the reporter writing its pages", || {
                let dir = dir.clone();
                async move { written_since(&dir, started) }
            })
            .await;
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..20))).await;
        }
        reporter.kill();
        // A statement the reporter sent before it died still completes in PostgreSQL.
        eventually(60, "the killed reporter's statements ended", || async {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from pg_stat_activity where datname = current_database()
                 and pid <> pg_backend_pid() and state <> 'idle'",
            )
            .fetch_one(&env.pool)
            .await
            .is_ok_and(|n| n == 0)
        })
        .await;
        let published = published_figures(&env).await;
        if published.len() < reference_figures.len() {
            interrupted += 1;
        } else {
            sqlx::query("delete from published_figures")
                .execute(&env.pool)
                .await
                .unwrap();
        }
        // A page written is a whole page: what a commissioner opens is never half-written
        // (a file being written has the suffix `.partial` until it is whole, and is not served).
        for (path, bytes) in files(&reports.0) {
            if path.extension().is_some_and(|e| e == "partial") {
                continue;
            }
            assert!(
                reference_pages.get(&path) == Some(&bytes),
                "{} after a kill is not the page an uninterrupted run writes",
                path.display()
            );
        }
        process = Some(reporter);
    }
    eprintln!(
        "reporter killed {} times, {interrupted} of them mid-run (an uninterrupted run took {run:?})",
        kills()
    );
    assert!(interrupted > 0, "a kill landed mid-run");

    // The last start runs to the end.
    let mut reporter = process.unwrap();
    reporter.restart();
    eventually(300, "every figure published", || async {
        published_figures(&env).await.len() == reference_figures.len()
    })
    .await;
    reporter.stop();

    assert_eq!(published_figures(&env).await, reference_figures);
    assert_eq!(
        files(&reports.0),
        reference_pages,
        "the pages of an uninterrupted run"
    );
    // On the topic: every figure, and nothing an uninterrupted run does not publish. A run cut
    // off after sending repeats what it sent, ids and all, which consumers take once.
    let messages = read_topic(&env.kafka, Topic::Performance).await;
    let distinct: BTreeSet<Vec<u8>> = messages.iter().cloned().collect();
    eprintln!(
        "{} performance messages, {} distinct, as the uninterrupted run's {}",
        messages.len(),
        distinct.len(),
        reference_messages.len()
    );
    assert_eq!(distinct, reference_messages);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_restarted_then_cut_off_for_60_s_loses_nothing_and_doubles_nothing() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // A server of the test's own, reached by the services through a partition it can cut.
    let pg = PgNode::start_plain();
    let env = env_on(&pg.url(), &brokers()).await;
    let partition = Partition::start(([127, 0, 0, 1], pg.port).into()).await;
    let mut wiring = Wiring::of(&env, now());
    wiring.database_url = env
        .db_url
        .replace(&format!(":{}/", pg.port), &format!(":{}/", partition.port));
    let stream = Streaming::start(&wiring, 33).await;
    let requests = stream.requests;
    let accepted = || stream.accepted();

    // Restarted a third of the way through the stream.
    stream
        .until_accepted(requests / 3, "a third of the stream accepted")
        .await;
    pg.restart();
    let restarted_after = accepted();

    // Cut off for 60 s two thirds of the way through.
    stream
        .until_accepted(requests * 2 / 3, "two thirds of the stream accepted")
        .await;
    partition.cut();
    let cut_at = std::time::Instant::now();
    let cut_after = accepted();
    let delivery = stream.delivery.clone();
    let refused_before = delivery.refused.load(Ordering::Relaxed);
    let ports = [stream.matcher.port, stream.ingest.process.port];
    for (service, port) in ["matcher", "ingest"].into_iter().zip(ports) {
        eventually(
            30,
            &format!("{service} not ready while cut off"),
            || async {
                let (status, body) = http_get(port, "/readyz").await;
                status == 503 && body.contains("did not answer")
            },
        )
        .await;
    }
    // Ingest tells the source to try again instead of holding it until the network returns.
    eventually(30, "ingest answering 503 while cut off", || async {
        delivery.refused.load(Ordering::Relaxed) > refused_before
    })
    .await;
    let told_after = cut_at.elapsed();
    let applied_in_cut = applied(&env.pool).await;
    tokio::time::sleep(Duration::from_secs(60).saturating_sub(cut_at.elapsed())).await;
    assert_eq!(
        applied(&env.pool).await,
        applied_in_cut,
        "nothing is applied while the database is cut off"
    );
    partition.heal();

    for port in ports {
        eventually(60, "ready again", || async {
            get_status(port, "/readyz").await == 200
        })
        .await;
    }
    eprintln!(
        "PostgreSQL restarted after {restarted_after} and cut off for 60 s after {cut_after} of {requests} batches accepted; the source was told to retry {told_after:?} into the cut"
    );
    assert!(restarted_after < requests && cut_after < requests);
    stream.end_as_if_uninterrupted(&env).await;
    env.cleanup().await;
}

/// Whose disk fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Full {
    Broker,
    Database,
}

/// A server's data on a small disk of its own, filled a third of the way through a stream sent
/// through ingest: ingest refuses with 503 and says why, the matcher reports not ready and
/// says why; the space is given back (and the server started again if it stopped, as its
/// supervisor would), and without being restarted the services take up the stream where it
/// stood and end as an uninterrupted run.
async fn disk_full(full: Full, seed: u64) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let Some(disk) = continuity_e2e::disk::small_disk(512) else {
        return;
    };
    let (broker, pg) = match full {
        Full::Broker => (Some(KafkaNode::start_in(disk.dir.join("kafka"))), None),
        Full::Database => (
            None,
            Some(PgNode::start_plain_in(disk.dir.join("postgres"))),
        ),
    };
    let env = env_on(
        &pg.as_ref().map_or_else(admin_url, PgNode::url),
        &broker.as_ref().map_or_else(brokers, KafkaNode::brokers),
    )
    .await;
    let stream = Streaming::start(&Wiring::of(&env, now()), seed).await;
    let (requests, delivery, port) = (
        stream.requests,
        stream.delivery.clone(),
        stream.matcher.port,
    );
    stream
        .until_accepted(requests / 3, "a third of the stream accepted")
        .await;
    disk.fill(2);
    let filled_after = stream.accepted();
    let refused_before = delivery.refused.load(Ordering::Relaxed);
    eventually(300, "ingest refusing work", || async {
        delivery.refused.load(Ordering::Relaxed) > refused_before
    })
    .await;
    let ingest_said = delivery.last_refusal.lock().unwrap().clone();
    eventually(300, "the matcher not ready", || async {
        get_status(port, "/readyz").await == 503
    })
    .await;
    let matcher_said = http_get(port, "/readyz").await.1;
    let stopped = match full {
        Full::Broker => broker.as_ref().is_some_and(|b| !b.running()),
        Full::Database => sqlx::PgPool::connect(&env.admin_url).await.is_err(),
    };
    eprintln!(
        "{full:?}'s disk full after {filled_after} of {requests} batches accepted; ingest answered: {}; the matcher: {}; the server {}",
        // The status and the problem's title: the figures' line in docs/evidence.md ends at a
        // brace.
        ingest_said
            .split_once(' ')
            .and_then(|(status, body)| {
                let title = serde_json::from_str::<serde_json::Value>(body).ok()?["title"]
                    .as_str()?
                    .to_owned();
                Some(format!("{status} \"{title}\""))
            })
            .unwrap_or_else(|| ingest_said.trim().to_owned()),
        matcher_said.trim(),
        if stopped { "stopped" } else { "stayed up" }
    );
    let why = match full {
        Full::Broker => "Broker unavailable",
        Full::Database => "Audit unavailable",
    };
    assert!(
        ingest_said.starts_with("503") && ingest_said.contains(why),
        "{ingest_said}"
    );
    assert!(matcher_said.contains("not ready: "), "{matcher_said}");

    disk.free();
    if stopped {
        match (&broker, &pg) {
            (Some(broker), _) => broker.restart(),
            (_, Some(pg)) => pg.start_again(),
            _ => unreachable!(),
        }
    }
    eventually(120, "the matcher ready again", || async {
        get_status(port, "/readyz").await == 200
    })
    .await;
    stream.end_as_if_uninterrupted(&env).await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_brokers_disk_full_refuses_work_says_why_and_recovers_when_space_returns() {
    disk_full(Full::Broker, 34).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_databases_disk_full_refuses_work_says_why_and_recovers_when_space_returns() {
    disk_full(Full::Database, 35).await;
}
