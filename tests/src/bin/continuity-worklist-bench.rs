//! `continuity-worklist-bench`: the worklist under load, over real HTTP against PostgreSQL.
//!
//! 1. **Page latency**: a national database of `--cases` cases (default 300,000) in which one
//!    provider (PRV000, the development issuer's keyworker) holds `--open` open, flagged cases
//!    (default 2,000) among its history; `--users` signed-in sessions (default 50) each
//!    request the worklist's first page back to back for `--seconds`. Prints p50/p95/p99 and
//!    requests per second.
//! 2. **Flag to worklist**: the matcher (in-process, real Kafka, a clock running in real time)
//!    holds `--days` cohorts of released people, one release date each; for each cohort the
//!    clock is set five seconds before its overdue instant and the worklist polled until its
//!    Overdue count includes them. Prints the delay from the due instant to seeing the flags,
//!    p50/p99: the deadline clock's wake-up plus writing and reading.
//!
//! Needs the local stack (`scripts/stack.sh up; source .stack/env`) and CONTINUITY_ASSETS_DIR
//! (`scripts/install-frontend.sh`). Run with `--release`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use continuity_domain::events::*;
use continuity_domain::*;
use continuity_e2e::{env, free_port, messages, until_all_applied};
use continuity_runtime::{ClockSettings, Connections, DatabaseSettings, RunningClock};
use continuity_schema::wire::{EngagementFlag, FlagKind, FlagState};
use continuity_worklist::dev_issuer::{DevIssuer, IssuerSettings};
use uuid::Uuid;

#[derive(clap::Parser)]
#[command(about = "Worklist page latency under concurrent users, and flag-to-worklist delay")]
struct Args {
    /// Cases in the national database.
    #[arg(long, default_value_t = 300_000)]
    cases: i64,
    /// Open flagged cases of the measured provider.
    #[arg(long, default_value_t = 2_000)]
    open: i64,
    /// Concurrent signed-in users.
    #[arg(long, default_value_t = 50)]
    users: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Cohorts for the flag-to-worklist delay (0 to skip it).
    #[arg(long, default_value_t = 20)]
    days: u32,
    /// Cases falling due at each cohort's instant; `--days 21 --per-day 4800` holds 100,800
    /// open cases, a national day's releases (as the 100,000 open cases).
    #[arg(long, default_value_t = 5)]
    per_day: u32,
    /// Cohorts measured (the earliest `--steps` of `--days`; all when unset).
    #[arg(long)]
    steps: Option<u32>,
    /// Treatment starts per second sent through ingest after the overdue steps, each timed
    /// from its `202` to its flag's resolution on `continuity.flags` (0 to skip).
    #[arg(long, default_value_t = 1_000)]
    resolve_rate: u32,
    /// Seconds of treatment starts at `--resolve-rate` (at most one per overdue case).
    #[arg(long, default_value_t = 10)]
    resolve_seconds: u32,
    /// The matcher's deadline clock interval in ms (its default, 1,000).
    #[arg(long, default_value_t = 1_000)]
    deadline_interval_ms: u64,
    /// Each user's pause between pages, in ms, for the second run (the first has none).
    #[arg(long, default_value_t = 1_000)]
    think_ms: u64,
    /// Keep the national database (its name is printed) for EXPLAIN.
    #[arg(long)]
    keep: bool,
    /// Years of England's history (31,050 people a year, about 109,000 events) replayed into
    /// the matcher while the flag and resolution latencies are measured, paced by its lag
    /// (`continuity::replay`); 0 for none.
    #[arg(long, default_value_t = 0)]
    history_years: u32,
    /// The most messages the replay lets wait for the matcher.
    #[arg(long, default_value_t = 2_000)]
    history_max_lag: i64,
}

fn now() -> DateTime<Utc> {
    continuity_e2e::now()
}

/// The issuer and the worklist on loopback, against `db_url`; returns the worklist's port, the
/// issuer's, and what stops the worklist (before its database is dropped).
async fn serve(
    db_url: &str,
    kafka: &continuity_stream::KafkaSettings,
    clock_now: DateTime<Utc>,
) -> anyhow::Result<(u16, u16, tokio::sync::oneshot::Sender<()>)> {
    let (issuer_port, worklist_port) = (free_port(), free_port());
    let issuer = Arc::new(DevIssuer::new(IssuerSettings {
        http_addr: ([127, 0, 0, 1], issuer_port).into(),
        issuer_url: format!("http://localhost:{issuer_port}"),
        client_id: "continuity-worklist".into(),
        redirect_uri: format!("http://localhost:{worklist_port}/sign-in/callback"),
    })?);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", issuer_port)).await?;
    tokio::spawn(async move { axum::serve(listener, issuer.router()).await });
    let settings = continuity_worklist::Settings {
        connections: Connections {
            database: DatabaseSettings::new(db_url, 16),
            kafka: kafka.clone(),
        },
        http_addr: ([127, 0, 0, 1], worklist_port).into(),
        public_url: format!("http://localhost:{worklist_port}"),
        issuer_url: format!("http://localhost:{issuer_port}"),
        assets_dir: std::env::var("CONTINUITY_ASSETS_DIR")
            .context("CONTINUITY_ASSETS_DIR: run scripts/install-frontend.sh")?
            .into(),
        clock: ClockSettings {
            fixed_now: Some(clock_now),
        },
        ..Default::default()
    };
    continuity_worklist::migrate(&settings).await?;
    let app = Arc::new(continuity_worklist::Worklist::new(settings)?);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", worklist_port)).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(continuity_worklist::serve(app, listener, async move {
        let _ = stopped.await;
    }));
    Ok((worklist_port, issuer_port, stop))
}

/// A response header's text, or which one is missing.
fn header<'r>(r: &'r reqwest::Response, name: &str) -> anyhow::Result<&'r str> {
    r.headers()
        .get(name)
        .with_context(|| format!("sign-in: no {name} header ({})", r.status()))?
        .to_str()
        .map_err(anyhow::Error::from)
}

/// A signed-in session's cookie, through the real authorisation-code flow.
async fn sign_in(
    http: &reqwest::Client,
    worklist: u16,
    issuer: u16,
    user: &str,
) -> anyhow::Result<String> {
    let base = format!("http://localhost:{worklist}");
    let start = http.get(format!("{base}/sign-in")).send().await?;
    let cookie = header(&start, "set-cookie")?
        .split(';')
        .next()
        .unwrap_or("")
        .to_owned();
    let authorize = header(&start, "location")?.to_owned();
    let query = authorize.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut form: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    form.push(("user_name".into(), user.into()));
    let chosen = http
        .post(format!("http://localhost:{issuer}/oauth/authorize"))
        .form(&form)
        .send()
        .await?;
    let callback = header(&chosen, "location")?.to_owned();
    let landed = http.get(callback).header("cookie", &cookie).send().await?;
    let cookie = landed
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
        .unwrap_or(cookie);
    anyhow::ensure!(
        landed.status().as_u16() == 303,
        "sign-in failed: {}",
        landed.status()
    );
    Ok(cookie)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Fill a fresh database with `cases` cases, `open` of them PRV000's open and flagged.
async fn national(pool: &sqlx::PgPool, cases: i64, open: i64) -> anyhow::Result<()> {
    let today = continuity_domain::london_date(now());
    sqlx::query("insert into components (merged_into) select null from generate_series(1, $1)")
        .bind(cases)
        .execute(pool)
        .await?;
    // Everyone's history: releases over 400 days, 150 areas and providers, 120 prisons;
    // PRV000's first `open` rows are released in the last 21 days and not yet engaged.
    sqlx::query(
        "insert into cases (case_id, component, release_id, release_date, local_authority, prison,
            provider, outcome, next_due_at, person_identifier, state, probation_service, crn,
            noms_number, nhs_number, raised_flag, flag_settled_at)
         select md5('case' || i)::uuid, i, 'R' || i,
                case when i <= $2 then $3::date - (i % 21)::int else $3::date - (i % 400)::int end,
                'E06' || lpad((i % 150)::text, 6, '0'), 'P' || lpad((i % 120)::text, 3, '0'),
                case when i <= $2 then 'PRV000' else 'PRV' || lpad((1 + i % 149)::text, 3, '0') end,
                case when i <= $2 then 'OPEN' when i % 100 < 48 then 'ENGAGED'
                     when i % 100 < 95 then 'NOT_ENGAGED' else 'EXCLUDED' end,
                null, 'A' || lpad(i::text, 6, '0'), ''::bytea,
                'probation-' || (i % 12),
                'X' || lpad(i::text, 6, '0'), 'A' || lpad((i % 10000)::text, 4, '0') || 'AA', null,
                case when i <= $2 then 'AT_RISK' when i % 100 >= 48 and i % 100 < 95 then 'OVERDUE' end,
                case when i > $2 and i % 100 < 48 then now() - (i % 30) * interval '1 day' end
         from generate_series(1, $1) i",
    )
    .bind(cases)
    .bind(open)
    .bind(today)
    .execute(pool)
    .await?;
    // Flags: the open cases at risk (day 7) and some overdue; the rest's history settled.
    sqlx::query(
        "insert into flags (flag_id, case_id, kind, at_risk_day, state, due_at, raised_at,
            settled_at, notified)
         select md5('flag' || c.release_id)::uuid, c.case_id,
                case when c.outcome = 'OPEN' then 'AT_RISK' else 'OVERDUE' end,
                case when c.outcome = 'OPEN' then 7 end,
                case when c.outcome in ('OPEN', 'NOT_ENGAGED') then 'RAISED' else 'RESOLVED_ENGAGED' end,
                now(), now(), case when c.outcome in ('OPEN', 'NOT_ENGAGED') then null else now() end,
                true
         from cases c where c.outcome <> 'EXCLUDED'",
    )
    .execute(pool)
    .await?;
    sqlx::query("analyze").execute(pool).await?;
    Ok(())
}

async fn page_latency(args: &Args) -> anyhow::Result<()> {
    let env = env().await;
    let t = Instant::now();
    national(&env.pool, args.cases, args.open).await?;
    println!(
        "national database: {} cases, PRV000 open {}, loaded in {:.1} s",
        args.cases,
        args.open,
        t.elapsed().as_secs_f64()
    );
    let (worklist, issuer, stop) = serve(&env.db_url, &env.kafka, now()).await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(args.users)
        .build()?;
    let mut cookies = Vec::new();
    for _ in 0..args.users {
        cookies.push(sign_in(&http, worklist, issuer, "KEYWORKER").await?);
    }
    let url = format!("http://localhost:{worklist}/worklist?tab=at-risk");
    // Warm up: plans, connections, caches.
    for c in cookies.iter().take(5) {
        let r = http.get(&url).header("cookie", c).send().await?;
        anyhow::ensure!(r.status().is_success(), "worklist answered {}", r.status());
        let body = r.text().await?;
        anyhow::ensure!(
            body.contains(&format!("At risk ({})", args.open)),
            "the page does not show the {} open cases",
            args.open
        );
    }
    for think in [0, args.think_ms] {
        load(args, &http, &url, &cookies, Duration::from_millis(think)).await?;
    }
    let _ = stop.send(());
    if args.keep {
        println!("kept database {}", env.db_url);
        return Ok(());
    }
    env.cleanup().await;
    Ok(())
}

/// Every user requests `url` until the time is up, pausing `think` after each page.
async fn load(
    args: &Args,
    http: &reqwest::Client,
    url: &str,
    cookies: &[String],
    think: Duration,
) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let tasks: Vec<_> = cookies
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, cookie)| {
            let (http, url) = (http.clone(), url.to_owned());
            // Users start spread over one pause, not all at once.
            let offset = think.mul_f64(i as f64 / args.users.max(1) as f64);
            tokio::spawn(async move {
                tokio::time::sleep(offset).await;
                let mut times = Vec::new();
                while Instant::now() < until {
                    let t = Instant::now();
                    let r = http.get(&url).header("cookie", &cookie).send().await;
                    let ok = match r {
                        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if ok {
                        times.push(t.elapsed());
                    }
                    tokio::time::sleep(think).await;
                }
                times
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await?);
    }
    let wall = started.elapsed();
    all.sort();
    println!(
        "worklist page, {} users pausing {} ms for {} s: {} requests, {:.0}/s; p50 {}, p95 {}, p99 {}, max {}",
        args.users,
        think.as_millis(),
        args.seconds,
        all.len(),
        all.len() as f64 / wall.as_secs_f64(),
        ms(percentile(&all, 0.50)),
        ms(percentile(&all, 0.95)),
        ms(percentile(&all, 0.99)),
        ms(*all.last().unwrap_or(&Duration::ZERO)),
    );
    Ok(())
}

/// People released on consecutive days, each a case of PRV000 with no engagement.
fn cohorts(days: u32, per_day: u32) -> anyhow::Result<Vec<SourceEvent>> {
    let mut out = Vec::new();
    let first = continuity_domain::london_date(now()) - chrono::Duration::days(21);
    let source = OrganisationCode::parse("prison-healthcare")?;
    let area = LocalAuthorityCode::parse("E06000001")?;
    let mut n = 0u128;
    let mut meta = |at: DateTime<Utc>| {
        n += 1;
        EventMeta {
            event_id: EventId(Uuid::from_u128(0xbe0c_0000_0000 + n)),
            occurred_at: at,
            source: source.clone(),
        }
    };
    for day in 0..days {
        let release = first + chrono::Duration::days(i64::from(day));
        for k in 0..per_day {
            let i = day * per_day + k;
            // A distinct NOMS number for each of up to 260,000 people.
            let Ok(noms) = Identifier::parse(IdentifierKind::Noms, &noms_of(i)) else {
                continue;
            };
            let referred = release - chrono::Duration::days(5);
            out.push(SourceEvent::Referral(Referral {
                meta: meta(start_of_london_day(referred)),
                referral_id: format!("BENCH-{i}"),
                person: PersonRef {
                    identifiers: vec![noms.clone()],
                    attributor: None,
                },
                referred_on: referred,
                origin: ReferralOrigin::Prison,
                expected_release: Some(release),
                need: TreatmentNeed {
                    local_authority: area.clone(),
                    provider: ProviderCode::parse("PRV000").ok(),
                },
            }));
            out.push(SourceEvent::Release(PrisonRelease {
                meta: meta(start_of_london_day(release)),
                release_id: format!("BENCH-{i}-{release}"),
                person: PersonRef {
                    identifiers: vec![noms],
                    attributor: None,
                },
                release_date: release,
                planned: false,
                reason: ReleaseReason::Released,
                movement_code: Some("CR".into()),
                prison: PrisonCode::parse("MDI").ok(),
                need: None,
            }));
        }
    }
    Ok(out)
}

async fn flag_latency(args: &Args) -> anyhow::Result<()> {
    let env = env().await;
    let rules = Rules::default();
    let first = continuity_domain::london_date(now()) - chrono::Duration::days(21);
    // The clock runs in real time, from before the first cohort is overdue.
    let clock = RunningClock::new(rules.overdue_at(first) - chrono::Duration::hours(1));
    let per_day = args.per_day;
    let events = cohorts(args.days, per_day)?;
    // Each OVERDUE flag raised on continuity.flags, with when it was read.
    let mut arrivals = flag_arrivals(&env.kafka)?;
    let producer = env.kafka.producer()?;
    continuity::produce(&producer, &env.kafka, &messages(&events)).await?;
    // The matcher as the tests start it, with the deadline interval asked for.
    let matcher = start_with_interval(&env, &clock, args.deadline_interval_ms);
    until_all_applied(&env.pool, &events, 120).await;
    // The worklist reads the real database (its clock matters only for snoozes and dates).
    let (worklist, issuer, stop) = serve(&env.db_url, &env.kafka, now()).await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cookie = sign_in(&http, worklist, issuer, "KEYWORKER").await?;
    let url = format!("http://localhost:{worklist}/worklist?tab=overdue");
    let history = (args.history_years > 0).then(|| replay_history(&env, args));
    let mut delays = Vec::new();
    let mut on_topic = Vec::new();
    let steps = args.steps.unwrap_or(args.days).min(args.days);
    for day in 0..steps {
        let release = first + chrono::Duration::days(i64::from(day));
        // Five seconds before the cohort falls due (the deadline clock looks ahead three);
        // the delay counts from the due instant.
        let lead = Duration::from_secs(5);
        clock.set(rules.overdue_at(release) - chrono::Duration::from_std(lead)?);
        let due = Instant::now() + lead;
        let want = format!("Overdue ({})", (day + 1) * per_day);
        loop {
            let body = http
                .get(&url)
                .header("cookie", &cookie)
                .send()
                .await?
                .text()
                .await?;
            if body.contains(&want) {
                break;
            }
            anyhow::ensure!(
                due.elapsed() < Duration::from_secs(300),
                "flags never appeared"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        delays.push(Instant::now().saturating_duration_since(due));
        // Every flag of the cohort on the topic, each timed from the due instant.
        let due_at = rules.overdue_at(release).timestamp_micros();
        let mut seen = 0;
        // Every flag of the cohort within five minutes, or the bench fails.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        while seen < per_day {
            let (flag, read) = tokio::time::timeout_at(deadline, arrivals.recv())
                .await
                .context("flags missing from continuity.flags")?
                .context("the flag reader stopped")?;
            if flag.kind == FlagKind::Overdue
                && flag.state == FlagState::Raised
                && flag.due_at == due_at
            {
                seen += 1;
                on_topic.push(read.saturating_duration_since(due));
            }
        }
    }
    on_topic.sort();
    println!(
        "due instant to the flag on continuity.flags, {} flags, {} open cases: p50 {}, p99 {}, max {}",
        on_topic.len(),
        args.days * per_day,
        ms(percentile(&on_topic, 0.50)),
        ms(percentile(&on_topic, 0.99)),
        ms(*on_topic.last().unwrap_or(&Duration::ZERO)),
    );
    delays.sort();
    println!(
        "due instant to the flag on the worklist, {steps} steps of {per_day} cases, running clock, deadline poll {} ms: p50 {}, p99 {}, max {}",
        args.deadline_interval_ms,
        ms(percentile(&delays, 0.50)),
        ms(percentile(&delays, 0.99)),
        ms(*delays.last().unwrap_or(&Duration::ZERO)),
    );
    if args.resolve_rate > 0 {
        let people = (steps * per_day).min(args.resolve_rate * args.resolve_seconds);
        resolution_latency(
            &env,
            &clock,
            &mut arrivals,
            people,
            per_day,
            args.resolve_rate,
        )
        .await?;
    }
    if let Some(history) = history {
        let running = !history.is_finished();
        let replayed = tokio::task::spawn_blocking(move || history.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the history replay panicked"))??;
        println!(
            "history replayed meanwhile: {} years, {} events in {:.1} s ({:.0}/s), matcher lag at most {} (limit {}), still replaying when the last latency was measured: {}",
            args.history_years,
            replayed.messages,
            replayed.took.as_secs_f64(),
            replayed.messages as f64 / replayed.took.as_secs_f64(),
            replayed.highest_lag,
            args.history_max_lag,
            if running { "yes" } else { "no" }
        );
    }
    let _ = stop.send(());
    matcher.stop().await;
    env.cleanup().await;
    Ok(())
}

/// Replay `--history-years` of England's generated history into the matcher in the
/// background, paced by its lag.
fn replay_history(
    env: &continuity_e2e::Env,
    args: &Args,
) -> std::thread::JoinHandle<anyhow::Result<continuity::replay::Replayed>> {
    let years = args.history_years;
    let max_lag = args.history_max_lag;
    let (kafka, pool) = (env.kafka.clone(), env.pool.clone());
    let runtime = tokio::runtime::Handle::current();
    // A thread of its own: the producer's futures are not `Send` for every lifetime, which
    // `tokio::spawn` asks.
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let today = continuity_domain::london_date(now());
            let history = continuity_synthetic::generate(&continuity_synthetic::Config {
                seed: 1_000 + u64::from(years),
                people: 31_050 * years as usize,
                // Ending two months before the cohorts: none of it falls due while they do.
                start: today - chrono::Duration::days(i64::from(years) * 365 + 60),
                days: years * 365,
                ..Default::default()
            });
            println!("history: {} events generated; replaying", history.len());
            let producer = kafka.producer()?;
            continuity::replay::produce_within_lag(
                &producer,
                &kafka,
                &pool,
                &messages(&history),
                max_lag,
            )
            .await
        })
    })
}

/// The NOMS number the cohorts give person `i`.
fn noms_of(i: u32) -> String {
    // From Z down: the generator's history (`--history-years`) numbers its people from A.
    let letter = char::from(b'Z' - (i / 10_000 % 26) as u8);
    format!("{letter}{:04}BB", i % 10_000)
}

/// Treatment starts for the first `people` of the cohorts of `per_day` (all overdue), sent through ingest at `rate` a
/// second, each timed from its `202` to its flag's resolution on `continuity.flags`.
async fn resolution_latency(
    env: &continuity_e2e::Env,
    clock: &RunningClock,
    arrivals: &mut tokio::sync::mpsc::UnboundedReceiver<(EngagementFlag, Instant)>,
    people: u32,
    per_day: u32,
    rate: u32,
) -> anyhow::Result<()> {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU32, Ordering};
    const TOKEN: &str = "bench-provider-token";
    // Each measured person's case, by the release id the cohorts give it.
    let cases: HashMap<String, Uuid> =
        sqlx::query_as::<_, (Uuid, String)>("select case_id, release_id from cases")
            .fetch_all(&env.pool)
            .await?
            .into_iter()
            .map(|(case, release)| (release, case))
            .collect();
    let first = continuity_domain::london_date(now()) - chrono::Duration::days(21);
    let case_of = |i: u32| {
        let release = first + chrono::Duration::days(i64::from(i / per_day));
        cases.get(&format!("BENCH-{i}-{release}")).copied()
    };
    let port = free_port();
    let settings = continuity_ingest::Settings {
        connections: Connections {
            database: DatabaseSettings::new(env.db_url.clone(), 8),
            kafka: env.kafka.clone(),
        },
        hash_secret: continuity_runtime::HashSecret::new(continuity_e2e::SECRET)
            .context("the bench's hash secret")?,
        http_addr: ([127, 0, 0, 1], port).into(),
        sources: vec![continuity_ingest::sources::SourceConfig {
            name: "bench-provider".into(),
            organisation: "PRV000".into(),
            role: continuity_ingest::sources::Role::TreatmentProvider,
            token_sha256: continuity_ingest::sources::token_hash(TOKEN),
            requests_per_second: Some(rate * 4),
        }],
        ..Default::default()
    };
    let ingest =
        Arc::new(continuity_ingest::Ingest::new(&settings, Arc::new(clock.clone())).await?);
    let listener = tokio::net::TcpListener::bind(settings.http_addr).await?;
    let (stop_ingest, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(continuity_ingest::serve(ingest, listener, async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let today = continuity_domain::london_date(continuity_runtime::Clock::now(clock));
    let next = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let (http, next) = (http.clone(), next.clone());
            let url = format!("http://127.0.0.1:{port}/v1/events/treatment-starts");
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                let mut refused = 0u32;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= people {
                        return (accepted, refused);
                    }
                    // Person i's start is due at i / rate seconds: a steady rate, not a burst.
                    let at = started + Duration::from_secs_f64(f64::from(i) / f64::from(rate));
                    tokio::time::sleep_until(at.into()).await;
                    let body = serde_json::json!({
                        "episode_id": format!("BENCH-EP-{i}"),
                        "provider": "PRV000",
                        "local_authority": "E06000001",
                        "person": {"noms": noms_of(i)},
                        "triage_date": today.to_string(),
                    });
                    let answer = http.post(&url).bearer_auth(TOKEN).json(&body).send().await;
                    match answer {
                        Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED => {
                            accepted.push((i, Instant::now()))
                        }
                        _ => refused += 1,
                    }
                }
            })
        })
        .collect();
    let mut accepted_at = HashMap::new();
    let mut refused = 0;
    for w in workers {
        let (accepted, r) = w.await?;
        refused += r;
        accepted_at.extend(accepted);
    }
    let sent_for = started.elapsed();
    let mut resolved_at: HashMap<Uuid, Instant> = HashMap::new();
    let wanted: HashMap<Uuid, u32> = accepted_at
        .keys()
        .filter_map(|i| Some((case_of(*i)?, *i)))
        .collect();
    // Every resolution within five minutes, or the bench fails.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while resolved_at.len() < wanted.len() {
        let (flag, read) = tokio::time::timeout_at(deadline, arrivals.recv())
            .await
            .context("resolutions missing from continuity.flags")?
            .context("the flag reader stopped")?;
        if flag.state == FlagState::ResolvedEngaged && wanted.contains_key(&flag.case_id) {
            resolved_at.entry(flag.case_id).or_insert(read);
        }
    }
    let _ = stop_ingest.send(());
    let mut delays: Vec<Duration> = wanted
        .iter()
        .filter_map(|(case, i)| {
            Some(
                resolved_at
                    .get(case)?
                    .saturating_duration_since(*accepted_at.get(i)?),
            )
        })
        .collect();
    delays.sort();
    println!(
        "treatment start's 202 to its flag's resolution on continuity.flags, {} starts at {rate}/s asked ({:.0}/s sent, {refused} not accepted): p50 {}, p99 {}, max {}",
        delays.len(),
        f64::from(people) / sent_for.as_secs_f64(),
        ms(percentile(&delays, 0.50)),
        ms(percentile(&delays, 0.99)),
        ms(*delays.last().unwrap_or(&Duration::ZERO)),
    );
    Ok(())
}

/// Read `continuity.flags` from its start in a task of its own: each flag message, and the
/// moment it was read.
fn flag_arrivals(
    kafka: &continuity_stream::KafkaSettings,
) -> anyhow::Result<tokio::sync::mpsc::UnboundedReceiver<(EngagementFlag, Instant)>> {
    use continuity_schema::AvroRecord;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::Message;
    let consumer: StreamConsumer = kafka.consumer("continuity-bench-flags")?;
    consumer.subscribe(&[&kafka.topic(continuity_stream::Topic::Flags)])?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(m) = consumer.recv().await {
            let read = Instant::now();
            let Some(Ok(flag)) = m.payload().map(EngagementFlag::from_message) else {
                continue;
            };
            if tx.send((flag, read)).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

fn start_with_interval(
    env: &continuity_e2e::Env,
    clock: &RunningClock,
    interval_ms: u64,
) -> continuity_e2e::Running {
    continuity_e2e::start_configured(env, "bench", clock, |s| {
        s.deadline_interval_ms = interval_ms
    })
}

fn main() -> anyhow::Result<()> {
    let args: Args = clap::Parser::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        page_latency(&args).await?;
        if args.days > 0 {
            flag_latency(&args).await?;
        }
        Ok(())
    })
}
