//! The pipeline as operators run it, for the tests that kill and starve it: ingest, the matcher
//! and the reporter each as its own process (the binaries `cargo build` put beside the test),
//! on one test's database and topics, with a source that sends through ingest as a real
//! source's system does: every batch again until it is accepted, whatever ingest answered or
//! failed to answer. A service is killed with SIGKILL and started again on the same port, as
//! its supervisor would.
//!
//! What each fault test then asks is the crash test's question
//! ([`crate::ends_as_if_uninterrupted`]): do the cases, outcomes and flags equal the rules
//! applied to everything the source sent, with nothing published twice?

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use continuity::through_ingest::{self, Batch};
use continuity_domain::events::SourceEvent;

use crate::{free_port, get_status, Env, SECRET};

/// The binary `name` built with the caller (`target/<profile>/<name>`). `scripts/test.sh` builds
/// every binary of the workspace first; run alone, `cargo build --bins` does.
pub fn binary(name: &str) -> PathBuf {
    // A test runs as target/<profile>/deps/<test>-<hash>, a bench binary beside the services.
    let exe = std::env::current_exe().expect("the caller knows its own path");
    let mut dir = exe
        .parent()
        .expect("the caller runs under target/<profile>");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("deps is under target/<profile>");
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --bins` (scripts/test.sh does) before this test",
        path.display()
    );
    path
}

/// A service of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    /// `continuity-ingest serve`: the HTTP front door.
    Ingest,
    /// `continuity-matcher`: source topics to cases and flags.
    Matcher,
    /// `continuity-reporter serve`: the weekly report, with its catch-up at start.
    Reporter,
    /// `continuity-worklist`: the caseworkers' pages and webhooks.
    Worklist,
}

impl Service {
    /// Its binary.
    pub fn binary(self) -> &'static str {
        match self {
            Service::Ingest => "continuity-ingest",
            Service::Matcher => "continuity-matcher",
            Service::Reporter => "continuity-reporter",
            Service::Worklist => "continuity-worklist",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Service::Ingest | Service::Reporter | Service::Worklist => &["serve"],
            Service::Matcher => &[],
        }
    }
}

/// Where the services find their dependencies, and the settings every instance gets.
#[derive(Debug, Clone)]
pub struct Wiring {
    /// PostgreSQL as the services reach it (a proxy's port, in the partition test).
    pub database_url: String,
    /// The broker as the services reach it.
    pub brokers: String,
    /// The topic prefix.
    pub topic_prefix: String,
    /// The instant every service's clock is fixed at; the system clock when `None`.
    pub now: Option<DateTime<Utc>>,
    /// Settings for every service, `CONTINUITY_*` variables (`RUST_LOG` too).
    pub extra: Vec<(String, String)>,
    /// Where each service's log goes (`<dir>/<binary>.log`); the caller's output when `None`.
    pub log_dir: Option<PathBuf>,
}

impl Wiring {
    /// The services on `env`'s database and topics, their clocks at `now`.
    pub fn of(env: &Env, now: DateTime<Utc>) -> Self {
        Wiring {
            database_url: env.db_url.clone(),
            brokers: env.kafka.brokers.clone(),
            topic_prefix: env.kafka.topic_prefix.clone(),
            now: Some(now),
            extra: Vec::new(),
            log_dir: None,
        }
    }

    /// The matcher's settings for tests that kill it: leases expire after 2 s and are looked at
    /// every 300 ms, so a survivor or a restarted instance takes over within seconds.
    pub fn matcher(&self, instance: &str) -> Process {
        Process::start(
            Service::Matcher,
            self,
            free_port(),
            &[
                ("CONTINUITY_INSTANCE_ID", instance),
                ("CONTINUITY_LEASE_TTL_MS", "2000"),
                ("CONTINUITY_REBALANCE_MS", "300"),
                ("CONTINUITY_DEADLINE_INTERVAL_MS", "500"),
            ],
        )
    }
}

/// A service's process, killed if the test ends first: one left running would hold
/// `scripts/test.sh`'s output open.
pub struct Process {
    service: Service,
    child: Option<Child>,
    /// Its HTTP port: ingest's API, or the operations endpoint.
    pub port: u16,
    vars: Vec<(String, String)>,
    log: Option<PathBuf>,
}

impl Process {
    /// Start `service` on `port` with `vars` (its own settings, after the wiring's).
    pub fn start(service: Service, wiring: &Wiring, port: u16, vars: &[(&str, &str)]) -> Self {
        let mut all: Vec<(String, String)> = vec![
            (
                "CONTINUITY_DATABASE_URL".into(),
                wiring.database_url.clone(),
            ),
            ("CONTINUITY_BROKERS".into(), wiring.brokers.clone()),
            (
                "CONTINUITY_TOPIC_PREFIX".into(),
                wiring.topic_prefix.clone(),
            ),
            ("CONTINUITY_HASH_SECRET".into(), SECRET.into()),
            ("CONTINUITY_HTTP_ADDR".into(), format!("127.0.0.1:{port}")),
            ("RUST_LOG".into(), "warn".into()),
        ];
        all.extend(
            wiring
                .now
                .map(|now| ("CONTINUITY_FIXED_NOW".into(), now.to_rfc3339())),
        );
        all.extend(wiring.extra.iter().cloned());
        all.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let mut process = Process {
            service,
            child: None,
            port,
            vars: all,
            log: wiring
                .log_dir
                .as_ref()
                .map(|d| d.join(format!("{}.log", service.binary()))),
        };
        process.restart();
        process
    }

    /// Start it again (after [`Process::kill`]), on the same port with the same settings.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "{:?} is running", self.service);
        let stderr = match &self.log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            ),
            None => Stdio::inherit(),
        };
        let child = Command::new(binary(self.service.binary()))
            .args(self.service.args())
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", self.service.binary()));
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown of any kind.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and its exit status is a clean one.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            Command::new("kill").args(["-TERM", &pid]).status().unwrap();
            let status = child.wait().unwrap();
            assert!(
                status.success(),
                "{:?} exits cleanly on SIGTERM: {status}",
                self.service
            );
        }
    }

    /// Wait until its `/healthz` answers (it has started serving).
    pub async fn until_serving(&self, secs: u64) {
        let port = self.port;
        crate::eventually(
            secs,
            &format!("{:?} serving", self.service),
            || async move {
                tokio::task::spawn_blocking(move || {
                    std::net::TcpStream::connect(("127.0.0.1", port))
                })
                .await
                .is_ok_and(|c| c.is_ok())
                    && get_status(port, "/healthz").await == 200
            },
        )
        .await;
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A directory of the test's own under the system's temporary directory, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A new empty directory.
    pub fn new(what: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{what}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Ingest as its sources see it: a process with a token for every organisation that sends.
pub struct Ingest {
    /// The process.
    pub process: Process,
    /// Each organisation's token.
    pub tokens: BTreeMap<String, String>,
    _dir: Scratch,
}

impl Ingest {
    /// Start ingest with a token for each organisation of `events`.
    pub fn start(wiring: &Wiring, events: &[SourceEvent]) -> Self {
        let dir = Scratch::new("ingest");
        let orgs: std::collections::BTreeSet<String> =
            events.iter().map(|e| e.meta().source.to_string()).collect();
        through_ingest::write_sources(orgs.iter().map(String::as_str), &dir.0).unwrap();
        let tokens = through_ingest::read_tokens(&dir.0.join("tokens")).unwrap();
        let sources = dir.0.join("sources.toml");
        let process = Process::start(
            Service::Ingest,
            wiring,
            free_port(),
            &[
                ("CONTINUITY_SOURCES_FILE", sources.to_str().unwrap()),
                // A source sending as fast as it can is not what these tests limit.
                ("CONTINUITY_REQUESTS_PER_SECOND", "100000"),
            ],
        );
        Ingest {
            process,
            tokens,
            _dir: dir,
        }
    }
}

/// What a source saw while sending.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Requests made, retries included.
    pub requests: AtomicUsize,
    /// Requests that got no answer (connection refused, reset or closed mid-request).
    pub unanswered: AtomicUsize,
    /// Requests answered 5xx or 429 and sent again.
    pub refused: AtomicUsize,
    /// Requests answered `202`.
    pub accepted: AtomicUsize,
    /// Events ingest reported accepted.
    pub events: AtomicUsize,
    /// The longest wait for any answer, in milliseconds.
    pub slowest_ms: AtomicUsize,
    /// The body of the last 5xx or 429 answer.
    pub last_refusal: std::sync::Mutex<String>,
}

impl Delivery {
    /// A one-line account for the test's output.
    pub fn describe(&self) -> String {
        format!(
            "{} requests: {} accepted ({} events), {} unanswered, {} refused with 5xx or 429, slowest answer {} ms",
            self.requests.load(Ordering::Relaxed),
            self.accepted.load(Ordering::Relaxed),
            self.events.load(Ordering::Relaxed),
            self.unanswered.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
            self.slowest_ms.load(Ordering::Relaxed),
        )
    }
}

/// A source's system sending through ingest: each batch is sent until it is accepted, as a
/// real sender retries after a failure (ids make a resend harmless).
pub struct Source {
    port: u16,
    tokens: BTreeMap<String, String>,
    http: reqwest::Client,
    /// What it saw.
    pub delivery: Arc<Delivery>,
}

impl Source {
    /// A source for ingest on `port` with `tokens`.
    pub fn new(port: u16, tokens: BTreeMap<String, String>) -> Self {
        Source {
            port,
            tokens,
            http: reqwest::Client::builder()
                // A request in flight when the service dies fails at once; one left unanswered by
                // a service waiting on its dependencies is given up after this.
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            delivery: Arc::default(),
        }
    }

    /// `events` in batches of `size`, for [`Source::send`].
    pub fn batches(events: &[SourceEvent], size: usize) -> Vec<Batch> {
        through_ingest::batches(events, size).unwrap()
    }

    /// Send each batch in turn until ingest accepts it (`202`), for at most `secs` in all.
    /// Every error body is recorded for the identifier scan ([`crate::record_error_body`]).
    pub async fn send(&self, batches: &[Batch], secs: u64) {
        let until = tokio::time::Instant::now() + Duration::from_secs(secs);
        for batch in batches {
            self.send_one(batch, until).await;
        }
    }

    /// Send each batch at its turn of `per_second` (a late batch goes at once and the rest
    /// keep their turns), each until ingest accepts it, for at most `secs` in all. Returns each
    /// batch's time from its turn to its `202`.
    pub async fn send_paced(&self, batches: &[Batch], per_second: f64, secs: u64) -> Vec<Duration> {
        let until = tokio::time::Instant::now() + Duration::from_secs(secs);
        let mut turns = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
        turns.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut waits = Vec::with_capacity(batches.len());
        for batch in batches {
            let turn = turns.tick().await;
            self.send_one(batch, until).await;
            waits.push(turn.elapsed());
        }
        waits
    }

    async fn send_one(&self, batch: &Batch, until: tokio::time::Instant) {
        let d = &self.delivery;
        let token = &self.tokens[&batch.organisation];
        let url = format!("http://127.0.0.1:{}{}", self.port, batch.path);
        loop {
            assert!(
                tokio::time::Instant::now() < until,
                "a batch was still not accepted at the deadline: {}",
                d.describe()
            );
            d.requests.fetch_add(1, Ordering::Relaxed);
            let started = std::time::Instant::now();
            let answer = self
                .http
                .post(&url)
                .bearer_auth(token)
                .header("content-type", through_ingest::NDJSON)
                .body(batch.body.clone())
                .send()
                .await;
            let answer = match answer {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let retry_after = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    r.text().await.map(|body| (status, retry_after, body))
                }
                Err(e) => Err(e),
            };
            let waited = started.elapsed().as_millis() as usize;
            d.slowest_ms.fetch_max(waited, Ordering::Relaxed);
            match answer {
                Ok((202, _, body)) => {
                    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
                    let rows = answer["rows"].as_array().expect("a batch's rows");
                    assert_eq!(rows.len(), batch.rows, "a row per event: {body}");
                    d.accepted.fetch_add(1, Ordering::Relaxed);
                    d.events.fetch_add(rows.len(), Ordering::Relaxed);
                    return;
                }
                Ok((status, retry_after, body)) if status == 429 || status >= 500 => {
                    crate::record_error_body(status, &body);
                    d.refused.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut last) = d.last_refusal.lock() {
                        *last = format!("{status} {body}");
                    }
                    let wait = retry_after.map_or(200, |s| s.min(2) * 1000);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                Ok((status, _, body)) => {
                    crate::record_error_body(status, &body);
                    panic!("ingest refused a valid batch with {status}: {body}");
                }
                Err(_) => {
                    d.unanswered.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}
