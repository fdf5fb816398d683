//! Support for the end-to-end tests: a fresh database and fresh topics per test, matchers
//! run in-process with a hand-moved clock, polling helpers and readers of the output topics.
//! Used by `tests/tests/*.rs` and by the matcher's own crash test.

#![allow(missing_docs)]

pub mod disk;
pub mod partition;
pub mod system;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use continuity_domain::events::SourceEvent;
use continuity_domain::{assess, KeyedHasher, Rules};
use continuity_runtime::{Clock, Connections, DatabaseSettings, HashSecret};
use continuity_schema::{encode_source_event, AvroRecord};
use continuity_stream::{partition_key, KafkaSettings, Topic};
use rdkafka::consumer::Consumer;
use rdkafka::Message;
use sqlx::PgPool;
use tokio::sync::oneshot;

pub const SECRET: &str = "matcher-test-secret";

pub struct Env {
    pub kafka: KafkaSettings,
    pub db_url: String,
    pub pool: PgPool,
    /// The server's admin database, which the test's database was created from.
    pub admin_url: String,
}

impl Env {
    /// Drop the test's database and delete its topics (call at the end of a passing test; a
    /// failing one keeps them for inspection). Deleting topics keeps the local broker small:
    /// every test makes nine, and a broker restart loads every partition it holds.
    pub async fn cleanup(self) {
        delete_topics(&self.kafka).await;
        self.pool.close().await;
        let name = self
            .db_url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        if let Ok(admin) = PgPool::connect(&self.admin_url).await {
            let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
                .execute(&admin)
                .await;
        }
    }
}

/// Delete every topic of `kafka`'s prefix.
pub async fn delete_topics(kafka: &KafkaSettings) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .create()
        .unwrap();
    let names: Vec<String> = Topic::ALL.iter().map(|t| kafka.topic(*t)).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let _ = admin.delete_topics(&names, &AdminOptions::new()).await;
}

/// The PostgreSQL server the tests use (`DATABASE_URL`, its admin database).
pub fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The broker the tests use (`CONTINUITY_BROKERS`).
pub fn brokers() -> String {
    std::env::var("CONTINUITY_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A fresh database on the tests' server and fresh topics on the tests' broker.
pub async fn env() -> Env {
    env_on(&admin_url(), &brokers()).await
}

/// As [`env`], the database on the server whose admin database is `base` and the topics on
/// the broker `brokers` (servers of the test's own).
pub async fn env_on(base: &str, brokers: &str) -> Env {
    let admin = PgPool::connect(base)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL answers at {base}: {e}"));
    let name = format!("matcher_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("create database {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    let db_url = format!("{prefix}/{name}");
    let pool = PgPool::connect(&db_url).await.unwrap();
    continuity_store::migrate(&pool).await.unwrap();
    let kafka = KafkaSettings {
        brokers: brokers.to_owned(),
        topic_prefix: format!("m{}.", uuid::Uuid::new_v4().simple()),
        security: Default::default(),
    };
    kafka.ensure_topics(&Topic::ALL).await.unwrap();
    Env {
        kafka,
        db_url,
        pool,
        admin_url: base.to_owned(),
    }
}

/// An Apache Kafka node of a test's own (`scripts/kafka-node.sh`), for tests that stop and
/// start a broker without disturbing the others. Its state is under a fresh temporary
/// directory, removed by [`KafkaNode::remove`].
pub struct KafkaNode {
    dir: std::path::PathBuf,
    /// The client port on 127.0.0.1.
    pub port: u16,
    controller: u16,
    /// The TLS + SCRAM-SHA-256 listener on `localhost`, when started with one.
    pub sasl_ssl_port: Option<u16>,
    /// The key set that listener's OAUTHBEARER tokens are checked against, if it takes them.
    jwks_url: Option<String>,
}

/// Run `scripts/<name>` with `args` and assert it succeeded. The scripts wait for what they
/// start; other tasks of the test's runtime go on meanwhile.
pub fn run_script(name: &str, args: &[&str]) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(name);
    let run = || {
        std::process::Command::new(&script)
            .args(args)
            .status()
            .unwrap_or_else(|e| panic!("scripts/{name}: {e}"))
    };
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    let status = if multi_thread {
        tokio::task::block_in_place(run)
    } else {
        run()
    };
    assert!(status.success(), "scripts/{name} {args:?}: {status}");
}

impl KafkaNode {
    fn script(args: &[&str]) {
        run_script("kafka-node.sh", args);
    }

    /// Format and start a node on free ports; returns once it answers metadata.
    pub fn start() -> Self {
        Self::start_in(
            std::env::temp_dir().join(format!("kafka-{}", uuid::Uuid::new_v4().simple())),
        )
    }

    /// As [`KafkaNode::start`], its state under `dir` (a small file system of its own, in the
    /// disk-full test).
    pub fn start_in(dir: std::path::PathBuf) -> Self {
        let node = KafkaNode {
            dir,
            port: free_port(),
            controller: free_port(),
            sasl_ssl_port: None,
            jwks_url: None,
        };
        node.restart();
        node
    }

    /// [`KafkaNode::start`] with a TLS + SCRAM-SHA-256 listener as well: its CA is
    /// [`KafkaNode::tls_file`]`("ca.pem")` (and `other-ca.pem` signed nothing); the user is
    /// `continuity`, the password `continuity-secret`. With `jwks_url` the listener also
    /// takes OAUTHBEARER tokens signed by a key of that set with audience `kafka` (the set is
    /// read when the node starts, so it must be served by then).
    pub fn start_secured(jwks_url: Option<String>) -> Self {
        let dir = std::env::temp_dir().join(format!("kafka-{}", uuid::Uuid::new_v4().simple()));
        let node = KafkaNode {
            dir,
            port: free_port(),
            controller: free_port(),
            sasl_ssl_port: Some(free_port()),
            jwks_url,
        };
        node.restart();
        node
    }

    /// A file of the TLS material the node was started with.
    pub fn tls_file(&self, name: &str) -> std::path::PathBuf {
        self.dir.join("tls").join(name)
    }

    /// Start the node again on its storage; returns once it answers metadata.
    pub fn restart(&self) {
        let mut args = vec![
            "start".to_owned(),
            self.dir_str().to_owned(),
            self.port.to_string(),
            self.controller.to_string(),
        ];
        args.extend(self.sasl_ssl_port.map(|p| p.to_string()));
        args.extend(self.jwks_url.clone());
        Self::script(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// Whether its process is alive.
    pub fn running(&self) -> bool {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka-node.sh");
        std::process::Command::new(script)
            .args(["running", self.dir_str()])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Kill the node with SIGKILL.
    pub fn kill(&self) {
        Self::script(&["kill", self.dir_str()]);
    }

    /// Bootstrap servers for clients.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stop the node and delete its storage.
    pub fn remove(self) {
        Self::script(&["kill", self.dir_str()]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn dir_str(&self) -> &str {
        self.dir.to_str().expect("temporary directory is UTF-8")
    }
}

/// A PostgreSQL cluster of a test's own (`scripts/pg-node.sh`), for tests that restart, cut
/// off or fill a database server without disturbing the others. Stopped and its directory
/// removed when dropped.
pub struct PgNode {
    dir: std::path::PathBuf,
    /// Its port on 127.0.0.1 (`localhost` for TLS).
    pub port: u16,
}

impl PgNode {
    fn script(args: &[&str]) {
        run_script("pg-node.sh", args);
    }

    /// A cluster without TLS under a fresh temporary directory; returns once it answers.
    pub fn start_plain() -> Self {
        Self::start_plain_in(
            std::env::temp_dir().join(format!("pg-{}", uuid::Uuid::new_v4().simple())),
        )
    }

    /// A cluster without TLS with its data under `dir` (a small file system of its own, in
    /// the disk-full test); returns once it answers.
    pub fn start_plain_in(dir: std::path::PathBuf) -> Self {
        let node = PgNode {
            dir,
            port: free_port(),
        };
        node.start_again();
        node
    }

    /// A cluster that accepts TLS connections only, its certificate for `localhost` signed
    /// by [`PgNode::file`]`("ca.pem")` (`other-ca.pem` signed nothing).
    pub fn start_tls() -> Self {
        let node = PgNode {
            dir: std::env::temp_dir().join(format!("pg-tls-{}", uuid::Uuid::new_v4().simple())),
            port: free_port(),
        };
        Self::script(&["start", node.dir_str(), &node.port.to_string()]);
        node
    }

    /// Start a plain cluster again after [`PgNode::stop`].
    pub fn start_again(&self) {
        Self::script(&["start", self.dir_str(), &self.port.to_string(), "plain"]);
    }

    /// Stop it (fast: sessions are cut) and start it again.
    pub fn restart(&self) {
        Self::script(&["restart", self.dir_str()]);
    }

    /// Its admin database, without TLS.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A file of its directory (the TLS material, `postgres.log`).
    pub fn file(&self, name: &str) -> std::path::PathBuf {
        self.dir.join(name)
    }

    fn dir_str(&self) -> &str {
        self.dir.to_str().expect("temporary directory is UTF-8")
    }
}

impl Drop for PgNode {
    fn drop(&mut self) {
        let _ = std::process::Command::new(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-node.sh"),
        )
        .args(["stop", self.dir_str()])
        .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub http: u16,
}

impl Running {
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}

pub fn start(env: &Env, instance: &str, clock: &(impl Clock + Clone)) -> Running {
    start_configured(env, instance, clock, |_| {})
}

/// As [`start`], with the test settings changed by `tweak`.
pub fn start_configured(
    env: &Env,
    instance: &str,
    clock: &(impl Clock + Clone),
    tweak: impl FnOnce(&mut continuity_matcher::Settings),
) -> Running {
    continuity_runtime::init_logging();
    let http = free_port();
    let settings = continuity_matcher::Settings {
        connections: Connections {
            database: DatabaseSettings::new(env.db_url.clone(), 8),
            kafka: env.kafka.clone(),
        },
        hash_secret: HashSecret::new(SECRET).unwrap(),
        instance_id: Some(instance.into()),
        linger_ms: 10,
        lease_ttl_ms: 3_000,
        rebalance_ms: 200,
        deadline_interval_ms: 100,
        relay_interval_ms: 20,
        http_addr: ([127, 0, 0, 1], http).into(),
        ..Default::default()
    };
    let mut settings = settings;
    tweak(&mut settings);
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(continuity_matcher::run(
        settings,
        Arc::new(clock.clone()),
        async move {
            let _ = rx.await;
        },
    ));
    Running {
        stop: Some(tx),
        task,
        http,
    }
}

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 9, 30, 0).unwrap()
}

pub fn messages(events: &[SourceEvent]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let hasher = KeyedHasher::new(SECRET.as_bytes());
    events
        .iter()
        .map(|e| (partition_key(e, &hasher), encode_source_event(e).unwrap()))
        .collect()
}

/// Wait until `check` is true, polling; fail after `secs`.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < until {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

pub async fn outcomes(pool: &PgPool) -> BTreeMap<uuid::Uuid, String> {
    let rows: Vec<(uuid::Uuid, String, Option<String>)> =
        sqlx::query_as("select case_id, outcome, exclusion_reason from cases")
            .fetch_all(pool)
            .await
            .unwrap();
    rows.into_iter()
        .map(|(id, o, r)| (id, r.map_or(o.clone(), |r| format!("{o}:{r}"))))
        .collect()
}

pub fn expected_outcomes(
    events: &[SourceEvent],
    at: DateTime<Utc>,
) -> BTreeMap<uuid::Uuid, String> {
    assess(events, &Rules::default(), at)
        .cases
        .into_iter()
        .map(|c| {
            let o = match c.outcome.exclusion_code() {
                Some(r) => format!("{}:{r}", c.outcome.code()),
                None => c.outcome.code().to_string(),
            };
            (c.case_id.0, o)
        })
        .collect()
}

pub async fn applied(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from source_events")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Each partition's end offset (high watermark) of `topic` now. A topic just created may have
/// no leader yet: each partition is asked again until it answers, for up to 120 s.
pub async fn end_offsets(kafka: &KafkaSettings, topic: Topic) -> BTreeMap<i32, i64> {
    let name = kafka.topic(topic);
    let consumer = kafka
        .partition_consumer(&format!("offsets-{}", uuid::Uuid::new_v4()))
        .unwrap();
    let until = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut ends = BTreeMap::new();
    for p in 0..topic.partitions() {
        let high = loop {
            match consumer.fetch_watermarks(&name, p, Duration::from_secs(10)) {
                Ok((_, high)) => break high,
                Err(_) if tokio::time::Instant::now() < until => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("{name}[{p}]: no end offset in 120 s: {e}"),
            }
        };
        ends.insert(p, high);
    }
    ends
}

/// Wait until the matcher has consumed every source topic to its end offsets as they are
/// now (its stored `consumer_offsets`).
pub async fn until_sources_consumed(env: &Env, secs: u64) {
    let mut want = 0;
    for topic in Topic::SOURCES {
        want += end_offsets(&env.kafka, topic).await.values().sum::<i64>();
    }
    eventually(
        secs,
        "the matcher at the source topics' end offsets",
        || async {
            sqlx::query_scalar::<_, i64>(
                "select coalesce(sum(next_offset), 0)::bigint from consumer_offsets",
            )
            .fetch_one(&env.pool)
            .await
            .is_ok_and(|n| n >= want)
        },
    )
    .await;
}

/// Read everything on a topic, from the start to the end offsets it has when the call begins
/// (every partition read until the broker reports its end). Call it once what is to be read has
/// been acknowledged (the outbox drained, the producer flushed): it waits for offsets, never for
/// a quiet period. Committed messages only (`read_committed`).
pub async fn read_topic(kafka: &KafkaSettings, topic: Topic) -> Vec<Vec<u8>> {
    let name = kafka.topic(topic);
    let consumer = kafka
        .partition_consumer(&format!("reader-{}", uuid::Uuid::new_v4()))
        .unwrap();
    // The end offsets now: each partition is read until it reaches its own (the last message
    // before it, or the end of the log), never until nothing arrives for a while.
    let until = tokio::time::Instant::now() + Duration::from_secs(120);
    let ends = end_offsets(kafka, topic).await;
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in ends.keys() {
        tpl.add_partition_offset(&name, *p, rdkafka::Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut open: std::collections::BTreeSet<i32> = ends
        .iter()
        .filter(|(_, high)| **high > 0)
        .map(|(p, _)| *p)
        .collect();
    let mut out = Vec::new();
    while !open.is_empty() {
        match tokio::time::timeout_at(until, consumer.recv()).await {
            Err(_) => {
                panic!("{name}: partitions {open:?} did not reach their end offsets in 120 s")
            }
            Ok(Ok(m)) => {
                out.push(m.payload().unwrap_or_default().to_vec());
                if m.offset() + 1 >= ends[&m.partition()] {
                    open.remove(&m.partition());
                }
            }
            // The end of the log as the broker has it now, which is at or past the end offset
            // recorded above: the offsets a transaction's marker takes end a partition here.
            Ok(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            Ok(Err(e)) => panic!("reading {name}: {e}"),
        }
    }
    out
}

/// The end state equals the rules applied to the whole stream, as if nothing had been
/// interrupted: the same cases and outcomes, every flag the rules derive in the same state, no
/// flag left standing that the rules do not derive, and on the topics the last state of every
/// flag told of, with no flag or case event seen twice.
pub async fn ends_as_if_uninterrupted(
    env: &Env,
    events: &[SourceEvent],
    now: chrono::DateTime<Utc>,
) {
    // Cases and outcomes: exactly the rules applied to the whole stream.
    let expected = assess(events, &Rules::default(), now);
    assert_eq!(outcomes(&env.pool).await, expected_outcomes(events, now));

    // Flags caseworkers are told of: the same set, in the same final states. The others are
    // kept on their cases only.
    let derived: Vec<_> = expected.cases.iter().flat_map(|c| &c.flags).collect();
    let want: BTreeMap<uuid::Uuid, String> = derived
        .iter()
        .filter(|f| f.notified)
        .map(|f| (f.flag_id, f.state.code().to_string()))
        .collect();
    assert!(
        !want.is_empty() && want.len() < derived.len(),
        "flags both within and beyond the horizon"
    );
    let got: BTreeMap<uuid::Uuid, String> =
        sqlx::query_as::<_, (uuid::Uuid, String)>("select flag_id, state from flags")
            .fetch_all(&env.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    for (id, state) in &want {
        assert_eq!(got.get(id), Some(state), "flag {id}");
    }
    let extra: Vec<_> = got
        .iter()
        .filter(|(id, _)| !want.contains_key(id))
        .collect();
    assert!(
        extra.iter().all(|(_, s)| *s != "RAISED"),
        "a flag the rules do not derive is left standing"
    );
    eprintln!(
        "{} flags derived by the rules; {} more raised on partial knowledge and settled",
        want.len(),
        extra.len()
    );

    // On the topic: the last published state of every flag caseworkers are told of is its
    // final state, and no other flag is published. The relay publishes in Kafka transactions
    // with its position, so a `read_committed` consumer sees no message twice, however the
    // kills fell between publishing and deleting from the outbox.
    let published = read_topic(&env.kafka, Topic::Flags).await;
    let mut last: BTreeMap<uuid::Uuid, String> = BTreeMap::new();
    let mut ids = std::collections::BTreeSet::new();
    let mut redelivered = 0;
    for m in &published {
        let f = continuity_schema::wire::EngagementFlag::from_message(m).unwrap();
        if !ids.insert(f.envelope.event_id) {
            redelivered += 1;
        }
        last.insert(f.flag_id, f.state.code().to_string());
    }
    eprintln!(
        "{} flag messages, {} distinct, {redelivered} seen twice",
        published.len(),
        ids.len()
    );
    assert_eq!(
        last, got,
        "last published state of every flag told of is its final state"
    );
    assert_eq!(redelivered, 0, "no flag message is seen twice");
    let case_events = read_topic(&env.kafka, Topic::CaseEvents).await;
    let distinct: std::collections::BTreeSet<uuid::Uuid> = case_events
        .iter()
        .map(|m| {
            continuity_schema::wire::CaseEvent::from_message(m)
                .unwrap()
                .envelope
                .event_id
        })
        .collect();
    eprintln!(
        "{} case events, {} distinct",
        case_events.len(),
        distinct.len()
    );
    assert_eq!(
        distinct.len(),
        case_events.len(),
        "no case event is seen twice"
    );
}

/// The number of distinct events (duplicates share an id).
pub fn unique_events(events: &[SourceEvent]) -> i64 {
    events
        .iter()
        .map(|e| e.id())
        .collect::<std::collections::BTreeSet<_>>()
        .len() as i64
}

/// Wait until every distinct event in `events` has been applied.
pub async fn until_all_applied(pool: &PgPool, events: &[SourceEvent], secs: u64) {
    let n = unique_events(events);
    eventually(secs, "every event applied", || async {
        applied(pool).await == n
    })
    .await;
}

/// Wait until the relay has published everything in the outbox.
pub async fn until_outbox_drained(pool: &PgPool, secs: u64) {
    eventually(secs, "outbox drained", || async {
        sqlx::query_scalar::<_, i64>("select count(*) from outbox")
            .fetch_one(pool)
            .await
            .is_ok_and(|n| n == 0)
    })
    .await;
}

/// Wait until two matchers hold 12 of the 24 source partitions each, and work has started.
pub async fn until_two_share_the_work(env: &Env) {
    eventually(30, "two matchers holding 12 partitions each", || async {
        let h = holders(env).await;
        h.len() == 2 && h.iter().all(|(_, n)| *n == 12)
    })
    .await;
    eventually(60, "some events applied", || async {
        applied(&env.pool).await > 0
    })
    .await;
}

/// Lease holders with unexpired leases and how many partitions each holds.
pub async fn holders(env: &Env) -> Vec<(String, i64)> {
    sqlx::query_as(
        "select holder, count(*) from partition_leases
         where holder is not null and expires_at > now() group by holder order by holder",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

/// One HTTP/1.1 request on loopback: the status and the body (headers dropped).
pub async fn http(method: &str, port: u16, path: &str) -> (u16, String) {
    let r = request(port, method, path, &[], b"").await;
    (r.status, r.body)
}

/// An HTTP response: status, headers (names lower-cased) and body.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request on loopback with headers and a body (`Connection: close`; the
/// response is read to the end).
pub async fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (413) before reading the whole body; a failed write is fine.
    let _ = s.write_all(body).await;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    record_error_body(status, body);
    HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// Keep an error body a service answered (status 400 and above) for the identifier scan: each
/// is appended as one line to the file `CONTINUITY_ERROR_BODIES` names (`scripts/test.sh` sets
/// it and scans the file with the suite's output). Every test's HTTP client calls this.
///
/// Not kept: a page shown again with what was wrong in its form (422, HTML). It answers a
/// caseworker whose organisation holds the case (any other is refused before the form is
/// read, and that refusal is kept), so it shows the case's references by design.
pub fn record_error_body(status: u16, body: &str) {
    use std::io::Write as _;
    let form_shown_again = status == 422 && body.trim_start().starts_with("<!DOCTYPE html>");
    if status < 400 || form_shown_again {
        return;
    }
    let Some(path) = std::env::var_os("CONTINUITY_ERROR_BODIES") else {
        return;
    };
    let line = format!("{status} {}\n", body.replace(['\r', '\n'], " "));
    // One write per line on a file opened for appending: lines from the suite's threads and
    // processes do not interleave.
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(line.as_bytes());
    }
}

pub async fn http_get(port: u16, path: &str) -> (u16, String) {
    http("GET", port, path).await
}

pub async fn http_post(port: u16, path: &str) -> (u16, String) {
    http("POST", port, path).await
}

pub async fn get_body(port: u16, path: &str) -> String {
    http_get(port, path).await.1
}

pub async fn get_status(port: u16, path: &str) -> u16 {
    http_get(port, path).await.0
}

/// Finds personal identifiers by their shape in text a service wrote (a log line, a metrics
/// exposition, an error body): NOMS numbers, CRNs, NHS numbers with a valid check digit,
/// attributors in their canonical form, and the value `PLANTED7X` the ingest tests plant. Used
/// by `continuity-scan-output` over the suite's output and by tests over what they read.
pub struct IdentifierScan {
    patterns: Vec<(&'static str, regex_lite::Regex)>,
}

impl Default for IdentifierScan {
    fn default() -> Self {
        Self::new()
    }
}

impl IdentifierScan {
    /// Text with an identifier's shape that names nobody: the format example in the NOMS
    /// field's error.
    const EXAMPLES: &'static [&'static str] = &["two letters (A1234BC)"];

    pub fn new() -> Self {
        let patterns = [
            ("NOMS number", r"\b[A-Z][0-9]{4}[A-Z]{2}\b"),
            ("CRN", r"\b[A-Z][0-9]{6}\b"),
            ("NHS number", r"\b[0-9]{10}\b"),
            (
                "attributor",
                r"\b[A-Z]{2}\|[0-9]{4}-[0-9]{2}-[0-9]{2}\|[A-Z]\b",
            ),
            ("planted value", r"PLANTED7X"),
        ];
        IdentifierScan {
            patterns: patterns
                .into_iter()
                .map(|(kind, p)| (kind, regex_lite::Regex::new(p).unwrap()))
                .collect(),
        }
    }

    /// Each identifier in `line`: its kind and up to 80 characters before it, with it.
    pub fn find(&self, line: &str) -> Vec<(&'static str, String)> {
        let mut line = line.to_owned();
        for example in Self::EXAMPLES {
            line = line.replace(example, "");
        }
        let mut found = Vec::new();
        for (kind, re) in &self.patterns {
            for m in re.find_iter(&line) {
                // Ten digits that are a JSON number (`"at":1796231142`) are a time or a
                // count, not an identifier, which is always a string; a tenth of them pass
                // the check digit.
                let bare_number = line[..m.start()].trim_end().ends_with(':');
                if *kind == "NHS number" && (bare_number || !nhs_check_digit_valid(m.as_str())) {
                    continue;
                }
                let start = line[..m.start()]
                    .char_indices()
                    .rev()
                    .nth(80)
                    .map_or(0, |(i, _)| i);
                found.push((*kind, line[start..m.end()].to_owned()));
            }
        }
        found
    }
}

/// Whether ten digits are a valid NHS number (modulus 11).
pub fn nhs_check_digit_valid(digits: &str) -> bool {
    let d: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != 10 || digits.len() != 10 {
        return false;
    }
    let sum: u32 = d[..9].iter().zip((2..=10).rev()).map(|(x, w)| x * w).sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        c => c,
    };
    check != 10 && check == d[9]
}

#[cfg(test)]
mod identifier_scan_tests {
    use super::*;

    #[test]
    fn identifiers_are_found_by_shape_and_the_format_example_is_not() {
        assert!(nhs_check_digit_valid("9434765919"));
        assert!(!nhs_check_digit_valid("9434765918"));
        let scan = IdentifierScan::new();
        let kinds = |t: &str| scan.find(t).into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(kinds("noms A1001AA crn X100001"), ["NOMS number", "CRN"]);
        assert_eq!(kinds("nhs=9434765919 ts=1764681234567"), ["NHS number"]);
        assert_eq!(
            kinds(r#"{"nhs":"9434765919","at":9434765919}"#),
            ["NHS number"]
        );
        assert_eq!(kinds("key JS|1990-04-01|M"), ["attributor"]);
        assert!(kinds("must look like one letter, four digits, two letters (A1234BC)").is_empty());
        assert!(kinds("case 01a23753-c1cc-7785-a89e-ea46f269446b E10000025 PRV001").is_empty());
    }
}
