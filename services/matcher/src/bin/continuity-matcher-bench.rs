//! `continuity-matcher-bench [EVENTS] [SEED]`: replay generated events through the matcher and
//! report throughput, apply latency and memory, with the raw consume rate of the same topics as
//! the ceiling. Uses a fresh database and fresh topics on the local stack; run it with
//! `scripts/bench-matcher.sh` (release build). The matcher runs as its own process so its
//! memory is measured alone.
//!
//! Its length is the bench's report (throughput, latency, CPU by process, memory); it is one
//! program run by hand, not a module others use.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use continuity_domain::KeyedHasher;
use continuity_schema::{encode_source_event, Registry};
use continuity_stream::{partition_key, send_all, KafkaSettings, Outgoing, Topic};
use continuity_synthetic::{generate, Config};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;

const SECRET: &str = "bench-secret";

#[derive(clap::Parser)]
#[command(about = "Replay generated events through the matcher and report its throughput")]
struct Args {
    /// Events to generate (ten years of national-scale releases, scaled).
    #[arg(default_value_t = 1_000_000)]
    events: usize,
    /// Seed of the generator.
    #[arg(default_value_t = 1)]
    seed: u64,
    /// PostgreSQL URL of a database the bench may create others from.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    database_url: String,
    /// Kafka bootstrap servers.
    #[arg(long, env = "CONTINUITY_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Matcher processes on the same partitions.
    #[arg(long, env = "BENCH_INSTANCES", default_value_t = 1)]
    instances: usize,
    /// The matchers' batch size.
    #[arg(long, env = "BENCH_BATCH", default_value_t = 5000)]
    batch: usize,
    /// The matchers' RUST_LOG; their log (stderr) then goes to target/bench-matcher.log.
    #[arg(long, env = "BENCH_LOG")]
    log: Option<String>,
}

/// What the matchers' busy PostgreSQL sessions are doing, sampled every 20 ms until `stop`:
/// `running` (on a core in PostgreSQL, or ready to be), a wait event (`Lock:transactionid`: a
/// row another transaction holds; `LWLock:WALWrite`, `IO:WALSync`: the log), or `matcher` (a
/// transaction open and idle: PostgreSQL waiting for the matcher). How often each was seen,
/// and under `runnable N` how often the machine had N threads running or ready to run
/// (`procs_running` in /proc/stat): more than its cores means work queued for a core.
async fn sample_waits(
    pool: sqlx::PgPool,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> BTreeMap<String, u64> {
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    loop {
        let runnable = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("procs_running "))
                .and_then(|n| n.trim().parse::<u64>().ok())
        });
        if let Some(n) = runnable {
            // One fewer: the thread reading /proc/stat is itself running.
            *seen
                .entry(format!("runnable {}", n.saturating_sub(1)))
                .or_default() += 1;
        }
        let rows: Vec<(String,)> = sqlx::query_as(
            "select case when state = 'idle in transaction' then 'matcher'
                         when wait_event_type is null then 'running'
                         else wait_event_type || ':' || wait_event end
             from pg_stat_activity
             where datname = current_database() and pid <> pg_backend_pid()
               and state in ('active', 'idle in transaction')",
        )
        .fetch_all(&pool)
        .await
        .unwrap_or_default();
        for (what,) in rows {
            *seen.entry(what).or_default() += 1;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = stop.wait_for(|s| *s) => return seen,
        }
    }
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) used so far by every process whose id and command line
/// (program, then arguments) `matches`, from /proc. Processes that exited are not counted.
fn cpu_seconds(matches: impl Fn(u32, &[&str]) -> bool) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let tick = 100.0; // USER_HZ on Linux
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            let pid = e.file_name().to_string_lossy().parse().unwrap_or(0);
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                let line = String::from_utf8_lossy(&c);
                let words: Vec<&str> = line.split(['\0', ' ']).collect();
                matches(pid, &words)
            })
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|stat| {
            // Fields after the command name (which may hold spaces) start after ')'.
            let rest = stat.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let user: f64 = f.get(11)?.parse().ok()?;
            let system: f64 = f.get(12)?.parse().ok()?;
            Some((user + system) / tick)
        })
        .sum()
}

/// Seconds every core of the machine was busy (not idle or waiting on I/O) so far, from
/// /proc/stat: what every process together used, this bench's and anything beside it.
fn machine_busy_seconds() -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| {
            let fields: Vec<f64> = stat
                .lines()
                .next()?
                .split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal ...
            let total: f64 = fields.iter().take(8).sum();
            let idle = fields.get(3)? + fields.get(4)?;
            Some((total - idle) / tick)
        })
        .unwrap_or(0.0)
}

fn is_postgres(_pid: u32, command: &[&str]) -> bool {
    let program = command.first().copied().unwrap_or_default();
    program.starts_with("postgres") || program.ends_with("/postgres")
}

/// Apache Kafka: a JVM running `kafka.Kafka` (scripts/kafka-node.sh).
fn is_broker(_pid: u32, command: &[&str]) -> bool {
    command.first().is_some_and(|p| p.ends_with("java")) && command.contains(&"kafka.Kafka")
}

/// A WAL position in PostgreSQL's notation, for pg_waldump.
fn lsn(bytes: i64) -> String {
    format!("{:X}/{:X}", bytes >> 32, bytes & 0xffff_ffff)
}

/// The one number `sql` returns.
async fn scalar(pool: &sqlx::PgPool, sql: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(pool).await?)
}

/// PostgreSQL's current WAL position in bytes.
async fn wal_bytes(pool: &sqlx::PgPool) -> anyhow::Result<i64> {
    scalar(
        pool,
        "select (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint",
    )
    .await
}

/// PostgreSQL's time per statement during the run, when the server has `pg_stat_statements`
/// loaded (e.g. `BENCH_PG_SETTINGS="shared_preload_libraries=pg_stat_statements"`).
struct Statements(bool);

impl Statements {
    /// Reset the statistics, if they are available.
    async fn start(pool: &sqlx::PgPool) -> Self {
        let ok = sqlx::query("create extension if not exists pg_stat_statements")
            .execute(pool)
            .await
            .is_ok()
            && sqlx::query("select pg_stat_statements_reset()")
                .execute(pool)
                .await
                .is_ok();
        Self(ok)
    }

    /// Print the statements that took the most time, per event.
    async fn report(&self, pool: &sqlx::PgPool, events: usize) {
        if !self.0 {
            return;
        }
        let rows: Vec<(String, i64, f64, i64, i64)> = sqlx::query_as(
            "select regexp_replace(query, '\\s+', ' ', 'g'), calls, total_exec_time, wal_bytes::bigint, rows
             from pg_stat_statements s join pg_database d on d.oid = s.dbid
             where d.datname = current_database()
             order by total_exec_time desc limit 15",
        )
        .fetch_all(pool)
        .await
        .unwrap_or_default();
        println!("PostgreSQL per event by statement (us, WAL bytes, rows; calls, statement):");
        for (query, calls, ms, wal, rows) in rows {
            let short: String = query.chars().take(90).collect();
            println!(
                "  {:>6.1} {:>6} {:>6.2} {:>8}  {short}",
                ms * 1000.0 / events as f64,
                wal / events as i64,
                rows as f64 / events as f64,
                calls
            );
        }
    }
}

/// Percentile from a Prometheus histogram's cumulative buckets, interpolated linearly.
fn percentile(buckets: &[(f64, f64)], q: f64) -> f64 {
    let total = buckets.last().map(|b| b.1).unwrap_or(0.0);
    let target = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= target {
            if count == prev.1 || le.is_infinite() {
                return prev.0;
            }
            return prev.0 + (le - prev.0) * (target - prev.1) / (count - prev.1);
        }
        prev = (le, count);
    }
    prev.0
}

async fn metrics(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return String::new();
    };
    let _ = s
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await;
    let mut body = String::new();
    let _ = s.read_to_string(&mut body).await;
    body
}

fn histogram(body: &str, name: &str) -> Vec<(f64, f64)> {
    body.lines()
        .filter(|l| l.starts_with(&format!("{name}_bucket")))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let count = l.rsplit(' ').next()?.parse().ok()?;
            Some((le, count))
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args {
        events,
        seed,
        database_url: base,
        brokers,
        instances,
        batch,
        log,
    } = clap::Parser::parse();
    let batch = batch.to_string();

    // Fresh database and topics.
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S");
    let db = format!("bench_{stamp}");
    let admin = sqlx::PgPool::connect(&base).await.context("DATABASE_URL")?;
    sqlx::query(&format!("create database {db}"))
        .execute(&admin)
        .await?;
    let (prefix, _) = base
        .rsplit_once('/')
        .context("DATABASE_URL has no database")?;
    let db_url = format!("{prefix}/{db}");
    let kafka = KafkaSettings {
        brokers,
        topic_prefix: format!("bench{stamp}."),
        security: Default::default(),
    };
    kafka.ensure_topics(&Topic::ALL).await?;

    // Generate: ten years of national-scale releases.
    let t = Instant::now();
    let config = Config {
        seed,
        people: Config::people_for_events(events),
        start: chrono::NaiveDate::from_ymd_opt(2015, 4, 1).unwrap_or_default(),
        days: 3650,
        ..Config::default()
    };
    let generated = generate(&config);
    let hasher = KeyedHasher::new(SECRET.as_bytes());
    let registry = Registry::get();
    let mut encoded = Vec::with_capacity(generated.len());
    for e in &generated {
        let payload = encode_source_event(e)?;
        let topic =
            Topic::for_record(registry.writer_of(&payload)?.record).context("source record")?;
        // Stamped with when it was recorded, as if each had been sent then: a replay reads
        // the topics in the order the live stream would have delivered them.
        let recorded = e.meta().occurred_at.timestamp_millis();
        encoded.push((
            kafka.topic(topic),
            partition_key(e, &hasher),
            payload,
            recorded,
        ));
    }
    let n = encoded.len();
    let end = config.start + chrono::Duration::days(i64::from(config.days) + 60);
    drop(generated);
    println!(
        "generated {n} events for {} people in {:.1}s",
        config.people,
        t.elapsed().as_secs_f64()
    );

    // Produce.
    let producer = kafka.producer()?;
    let broker_before_produce = cpu_seconds(is_broker);
    let t = Instant::now();
    for chunk in encoded.chunks(50_000) {
        send_all(
            &producer,
            chunk.iter().map(|(t, k, p, recorded)| Outgoing {
                timestamp: Some(*recorded),
                ..Outgoing::new(t.as_str(), Some(k.as_slice()), p.as_slice())
            }),
        )
        .await?;
    }
    let produce_secs = t.elapsed().as_secs_f64();
    let broker_produce_cpu = cpu_seconds(is_broker) - broker_before_produce;
    drop(encoded);

    // Ceiling: raw consume of the same topics, no processing.
    let consumer: StreamConsumer = kafka.consumer("bench-raw")?;
    let names: Vec<String> = Topic::SOURCES.iter().map(|t| kafka.topic(*t)).collect();
    consumer.subscribe(&names.iter().map(String::as_str).collect::<Vec<_>>())?;
    let broker_before_raw = cpu_seconds(is_broker);
    let t = Instant::now();
    let mut bytes = 0usize;
    // Every message produced above, within ten minutes, or the bench fails.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    for _ in 0..n {
        let m = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .context("the raw consume did not read every message within 10 minutes")??;
        bytes += m.payload().map_or(0, <[u8]>::len);
    }
    let raw_secs = t.elapsed().as_secs_f64();
    let broker_raw_cpu = cpu_seconds(is_broker) - broker_before_raw;
    drop(consumer);

    // The matcher, release build, as its own process.
    let exe = std::env::current_exe()?
        .parent()
        .context("bench binary has a directory")?
        .join("continuity-matcher");
    let log_to = || -> anyhow::Result<Stdio> {
        Ok(match &log {
            Some(_) => Stdio::from(std::fs::File::create("target/bench-matcher.log")?),
            None => Stdio::null(),
        })
    };
    let mut others: Vec<Child> = Vec::new();
    let mut other_ports = Vec::new();
    for i in 1..instances {
        let other_port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        other_ports.push(other_port);
        others.push(
            Command::new(&exe)
                .env("CONTINUITY_DATABASE_URL", &db_url)
                .env("CONTINUITY_BROKERS", &kafka.brokers)
                .env("CONTINUITY_TOPIC_PREFIX", &kafka.topic_prefix)
                .env("CONTINUITY_HASH_SECRET", SECRET)
                .env("CONTINUITY_INSTANCE_ID", format!("bench-{i}"))
                .env("CONTINUITY_FIXED_NOW", format!("{end}T12:00:00Z"))
                .env("CONTINUITY_HTTP_ADDR", format!("127.0.0.1:{other_port}"))
                .env("CONTINUITY_BATCH_SIZE", &batch)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()?,
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut matcher: Child = Command::new(&exe)
        .env("CONTINUITY_DATABASE_URL", &db_url)
        .env("CONTINUITY_BROKERS", &kafka.brokers)
        .env("CONTINUITY_TOPIC_PREFIX", &kafka.topic_prefix)
        .env("CONTINUITY_HASH_SECRET", SECRET)
        .env("CONTINUITY_INSTANCE_ID", "bench")
        .env("CONTINUITY_FIXED_NOW", format!("{end}T12:00:00Z"))
        .env("CONTINUITY_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("CONTINUITY_BATCH_SIZE", &batch)
        .env("RUST_LOG", log.as_deref().unwrap_or("warn"))
        .stderr(log_to()?)
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let pool = sqlx::PgPool::connect(&db_url).await?;
    let statements = Statements::start(&pool).await;
    let (stop_sampling, sampling) = tokio::sync::watch::channel(false);
    let waits = tokio::spawn(sample_waits(pool.clone(), sampling));
    let wal_before = wal_bytes(&pool).await?;
    let cpu_before = [cpu_seconds(is_postgres), cpu_seconds(is_broker)];
    let busy_before = machine_busy_seconds();
    let t = Instant::now();
    let mut first_at = None;
    let mut rss_samples: BTreeMap<u64, u64> = BTreeMap::new();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let consumed: Option<i64> =
            sqlx::query_scalar("select sum(next_offset)::bigint from consumer_offsets")
                .fetch_one(&pool)
                .await
                .unwrap_or(None);
        let consumed = consumed.unwrap_or(0) as usize;
        if consumed > 0 && first_at.is_none() {
            first_at = Some(t.elapsed());
        }
        let decile = (consumed * 10 / n.max(1)) as u64;
        rss_samples
            .entry(decile)
            .or_insert_with(|| rss_kib(matcher.id(), "VmRSS:"));
        if consumed >= n {
            break;
        }
        if let Ok(Some(status)) = matcher.try_wait() {
            anyhow::bail!("matcher exited early: {status}");
        }
    }
    let total_secs = t.elapsed().as_secs_f64();
    let _ = stop_sampling.send(true);
    let waits = waits.await?;
    let wal = wal_bytes(&pool).await? - wal_before;
    // This bench's matchers only: another matcher of the same build may run beside it.
    let ours: Vec<u32> = std::iter::once(matcher.id())
        .chain(others.iter().map(Child::id))
        .collect();
    let matcher_cpu = cpu_seconds(|pid, _| ours.contains(&pid));
    let busy = machine_busy_seconds() - busy_before;
    let cpu = [
        cpu_seconds(is_postgres) - cpu_before[0],
        cpu_seconds(is_broker) - cpu_before[1],
    ];
    let start_secs = first_at.map_or(0.0, |d| d.as_secs_f64());
    let peak = rss_kib(matcher.id(), "VmHWM:");
    let body = metrics(port).await;
    // Batches retried, by reason, over every instance.
    let mut retries: BTreeMap<String, f64> = BTreeMap::new();
    for p in std::iter::once(port).chain(other_ports.iter().copied()) {
        for line in metrics(p).await.lines() {
            let Some(rest) = line.strip_prefix("continuity_matcher_batch_retries_total{reason=\"")
            else {
                continue;
            };
            if let Some((reason, value)) = rest.split_once("\"} ") {
                *retries.entry(reason.to_owned()).or_default() += value.parse().unwrap_or(0.0);
            }
        }
    }
    let apply = histogram(&body, "continuity_matcher_apply_seconds");
    let sizes = histogram(&body, "continuity_matcher_batch_size");
    let cases = scalar(&pool, "select count(*) from cases").await?;
    let outbox = scalar(
        &pool,
        "select coalesce(sum(messages), 0)::bigint from outbox",
    )
    .await?;
    let out_consumer: StreamConsumer = kafka.consumer("bench-outputs")?;
    let mut outputs = 0i64;
    for topic in [Topic::CaseEvents, Topic::Flags] {
        for p in 0..topic.partitions() {
            let name = kafka.topic(topic);
            outputs += out_consumer
                .fetch_watermarks(&name, p, Duration::from_secs(5))
                .map_or(0, |(_, high)| high);
        }
    }
    let open = continuity_store::cases::open_cases(&pool).await?;
    let keys = scalar(&pool, "select count(*) from match_keys").await?;
    let components = scalar(
        &pool,
        "select count(*) from components where merged_into is null",
    )
    .await?;
    for child in others.iter_mut().chain(std::iter::once(&mut matcher)) {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }

    let applied_rate = n as f64 / (total_secs - start_secs).max(0.001);
    let raw_rate = n as f64 / raw_secs;
    let per_event = |secs: f64| secs * 1e6 / n as f64;
    println!("events                     {n} ({instances} matcher instance(s))");
    println!(
        "produce                    {:.0} events/s (broker CPU {:.0} us per event)",
        n as f64 / produce_secs,
        per_event(broker_produce_cpu)
    );
    println!(
        "raw consume (ceiling)      {raw_rate:.0} events/s ({:.1} MB; broker CPU {:.0} us per event)",
        bytes as f64 / 1e6,
        per_event(broker_raw_cpu)
    );
    println!(
        "matcher end to end         {applied_rate:.0} events/s ({:.1}s after the first commit; start-up {start_secs:.1}s)",
        total_secs - start_secs
    );
    println!("ratio matcher / raw        {:.2}", applied_rate / raw_rate);
    let retried: Vec<String> = retries
        .iter()
        .map(|(reason, n)| format!("{reason} {n:.0}"))
        .collect();
    println!(
        "batch retries              {} (all instances)",
        retried.join(", ")
    );
    println!(
        "apply latency per batch    p50 {:.0} ms, p99 {:.0} ms (batch size p50 {:.0})",
        percentile(&apply, 0.5) * 1000.0,
        percentile(&apply, 0.99) * 1000.0,
        percentile(&sizes, 0.5)
    );
    let applying: f64 = body
        .lines()
        .find(|l| l.starts_with("continuity_matcher_apply_seconds_sum"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    println!(
        "time in apply              {:.0}% of the run (the rest: waiting for messages)",
        applying * 100.0 / (total_secs - start_secs).max(0.001)
    );
    println!(
        "matcher peak RSS           {:.0} MiB (one instance)",
        peak as f64 / 1024.0
    );
    let deciles: Vec<String> = rss_samples
        .iter()
        .map(|(d, kib)| format!("{}%:{}", d * 10, kib / 1024))
        .collect();
    println!("matcher RSS by progress    {} (MiB)", deciles.join(" "));
    println!(
        "CPU per event              matcher {:.0} us, PostgreSQL {:.0} us, broker {:.0} us ({:.1} cores busy with them; the machine's {} cores {:.1} busy in all)",
        per_event(matcher_cpu),
        per_event(cpu[0]),
        per_event(cpu[1]),
        (matcher_cpu + cpu[0] + cpu[1]) / total_secs,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        busy / total_secs
    );
    let (runnable, waits): (BTreeMap<String, u64>, BTreeMap<String, u64>) = waits
        .into_iter()
        .partition(|(what, _)| what.starts_with("runnable "));
    let readings = runnable.values().sum::<u64>().max(1) as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let queued: u64 = runnable
        .iter()
        .filter(|(what, _)| {
            what.trim_start_matches("runnable ")
                .parse::<u64>()
                .is_ok_and(|n| n > cores)
        })
        .map(|(_, n)| n)
        .sum();
    let mean: f64 = runnable
        .iter()
        .filter_map(|(what, n)| {
            let threads: f64 = what.trim_start_matches("runnable ").parse().ok()?;
            Some(threads * *n as f64)
        })
        .sum::<f64>()
        / readings;
    println!(
        "threads ready to run       {mean:.1} on average; more than the {cores} cores in {:.0}% of readings (every 20 ms)",
        queued as f64 * 100.0 / readings
    );
    let samples = waits.values().sum::<u64>().max(1) as f64;
    let mut by_count: Vec<(&String, &u64)> = waits.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1));
    let shares: Vec<String> = by_count
        .iter()
        .take(8)
        .map(|(what, n)| format!("{what} {:.0}%", **n as f64 * 100.0 / samples))
        .collect();
    println!(
        "matchers' sessions         {} (sampled every 20 ms: what each busy session waited on)",
        shares.join(", ")
    );
    println!(
        "WAL per event              {:.0} bytes (LSN {} to {})",
        wal as f64 / n as f64,
        lsn(wal_before),
        lsn(wal_before + wal)
    );
    println!("outputs                    {outputs} published, {outbox} still in the outbox");
    println!("cases                      {cases} ({open} open)");
    println!(
        "match keys                 {keys} ({:.2} per event; {components} components)",
        keys as f64 / n as f64
    );
    statements.report(&pool, n).await;
    if std::env::var_os("BENCH_PG_SETTINGS").is_some_and(|v| !v.is_empty()) {
        println!("database                   {db} (in the throwaway cluster, removed on exit)");
    } else {
        println!("database                   {db} (drop it with: dropdb {db})");
    }
    Ok(())
}
