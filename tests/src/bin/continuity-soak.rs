//! `continuity-soak`: the whole pipeline held at ten times England's peak rate for half an
//! hour. Ingest, the matcher, the reporter and the worklist run as their own processes (the
//! release binaries beside this one) on the local stack, on the system clock, with a database
//! and topics of their own; a source sends every event as its own request through ingest, at
//! its turn. Every `--sample-seconds` it reads each process's resident memory (`/proc`), the
//! matcher's lag and the age of the outbox's oldest message (its `/metrics`). At the end it
//! counts each process's error log lines, prints a summary, and writes the samples as CSV and
//! as a plot (PNG).
//!
//! The rate comes from the generator: a year of England's releases with a treatment need
//! (`--people`, default 31,050: the adults who left treatment in secure settings in 2023-24,
//! OHID), their referrals and treatment events, counted by the hour of the events' own times;
//! the busiest hour times `--factor` (10).
//!
//!   scripts/soak.sh [--minutes 30] [--png docs/soak.png]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{Timelike, Utc};
use continuity_e2e::system::{Ingest, Process, Scratch, Service, Source, Wiring};
use continuity_e2e::{env, free_port, http_get};
use continuity_synthetic::{generate, Config};

#[derive(clap::Parser)]
#[command(
    about = "The whole pipeline at ten times the national peak rate, its memory, lag and outbox sampled"
)]
struct Args {
    /// Minutes of load.
    #[arg(long, default_value_t = 30)]
    minutes: u64,
    /// Multiple of the national peak hour's rate.
    #[arg(long, default_value_t = 10.0)]
    factor: f64,
    /// People released with a treatment need in a year, England.
    #[arg(long, default_value_t = 31_050)]
    people: usize,
    /// Seconds between samples.
    #[arg(long, default_value_t = 5)]
    sample_seconds: u64,
    /// The plot.
    #[arg(long, default_value = "target/soak/soak.png")]
    png: PathBuf,
    /// The samples.
    #[arg(long, default_value = "target/soak/soak.csv")]
    csv: PathBuf,
}

/// One sample.
#[derive(Debug, Clone)]
struct Sample {
    /// Seconds since the load began.
    at: f64,
    /// Events accepted by ingest so far.
    sent: usize,
    /// Resident memory of each process, MiB.
    rss: BTreeMap<&'static str, f64>,
    /// Messages on the source topics the matcher has not applied.
    lag: f64,
    /// Age of the outbox's oldest message, seconds.
    outbox_age: f64,
}

/// The year's events, the busiest hour's count and the rate to send at.
struct NationalRate {
    events_a_year: usize,
    busiest_hour: usize,
    per_second: f64,
}

fn national_rate(args: &Args) -> NationalRate {
    let today = Utc::now().date_naive();
    let year = generate(&Config {
        seed: 2026,
        people: args.people,
        start: today - chrono::Duration::days(365),
        days: 365,
        ..Config::default()
    });
    let mut hours: BTreeMap<(chrono::NaiveDate, u32), usize> = BTreeMap::new();
    for e in &year {
        let at = e.meta().occurred_at;
        *hours.entry((at.date_naive(), at.hour())).or_default() += 1;
    }
    let busiest_hour = hours.values().copied().max().unwrap_or(0);
    NationalRate {
        events_a_year: year.len(),
        busiest_hour,
        per_second: busiest_hour as f64 * args.factor / 3600.0,
    }
}

/// Resident memory of `pid` in MiB.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// The sum of a metric's series in a Prometheus text exposition.
fn metric(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Error and warning lines in a service's log.
fn log_lines(path: &Path) -> (usize, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let errors = text
        .lines()
        .filter(|l| l.contains("\"level\":\"ERROR\""))
        .count();
    let warnings = text
        .lines()
        .filter(|l| l.contains("\"level\":\"WARN\""))
        .count();
    (errors, warnings)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() -> anyhow::Result<()> {
    let args: Args = clap::Parser::parse();
    tokio::runtime::Runtime::new()?.block_on(soak(args))
}

async fn soak(args: Args) -> anyhow::Result<()> {
    let rate = national_rate(&args);
    println!(
        "national year: {} events for {} people; busiest hour {} events; x{} = {:.2} events/s",
        rate.events_a_year, args.people, rate.busiest_hour, args.factor, rate.per_second
    );
    // The load: people released over the last 60 days, so their windows are open and flags
    // fall due under the running clock, sent in the order their events happened.
    let total = (rate.per_second * args.minutes as f64 * 60.0).round() as usize;
    let today = Utc::now().date_naive();
    let mut events = generate(&Config {
        seed: 2027,
        people: Config::people_for_events(total),
        start: today - chrono::Duration::days(60),
        days: 60,
        ..Config::default()
    });
    events.retain(|e| e.meta().occurred_at <= Utc::now());
    events.sort_by_key(|e| e.meta().occurred_at);
    events.truncate(total);
    // One request an event, in the order the events happened.
    let batches: Vec<_> = events
        .iter()
        .flat_map(|e| Source::batches(std::slice::from_ref(e), 1))
        .collect();

    let env = env().await;
    let logs = Scratch::new("soak-logs");
    let mut wiring = Wiring::of(&env, Utc::now());
    wiring.now = None;
    wiring.log_dir = Some(logs.0.clone());
    // The load is a trickle; small pools leave the stack's connections to whatever runs beside.
    wiring
        .extra
        .push(("CONTINUITY_DATABASE_POOL".into(), "2".into()));
    let reports = Scratch::new("soak-reports");
    let worklist_port = free_port();
    let worklist_url = format!("http://localhost:{worklist_port}");
    let matcher = wiring.matcher("soak");
    let ingest = Ingest::start(&wiring, &events);
    let reporter = Process::start(
        Service::Reporter,
        &wiring,
        free_port(),
        &[("CONTINUITY_REPORTS_DIR", reports.0.to_str().unwrap_or("."))],
    );
    // The worklist's own tables (its sessions), as `scripts/run.sh` makes them.
    let migrated =
        std::process::Command::new(continuity_e2e::system::binary("continuity-worklist"))
            .arg("migrate")
            .env("CONTINUITY_DATABASE_URL", &env.db_url)
            .env("CONTINUITY_BROKERS", &env.kafka.brokers)
            .status()?;
    anyhow::ensure!(
        migrated.success(),
        "continuity-worklist migrate: {migrated}"
    );
    let assets = std::env::var("CONTINUITY_ASSETS_DIR")
        .context("CONTINUITY_ASSETS_DIR is not set: run scripts/soak.sh, which sets it")?;
    let worklist = Process::start(
        Service::Worklist,
        &wiring,
        worklist_port,
        &[
            ("CONTINUITY_PUBLIC_URL", worklist_url.as_str()),
            ("CONTINUITY_ASSETS_DIR", assets.as_str()),
        ],
    );
    for p in [&matcher, &ingest.process, &reporter, &worklist] {
        p.until_serving(120).await;
    }
    let processes: Vec<(&'static str, u32)> = [
        ("ingest", &ingest.process),
        ("matcher", &matcher),
        ("reporter", &reporter),
        ("worklist", &worklist),
    ]
    .into_iter()
    .map(|(name, p)| (name, p.pid().unwrap_or(0)))
    .collect();

    println!(
        "sending {} events, one a request, at {:.2}/s for {} min",
        batches.len(),
        rate.per_second,
        args.minutes
    );
    let source = Source::new(ingest.process.port, ingest.tokens.clone());
    let delivery = source.delivery.clone();
    let started = Instant::now();
    let budget = args.minutes * 60 + 600;
    let sending =
        tokio::spawn(async move { source.send_paced(&batches, rate.per_second, budget).await });

    let mut samples = Vec::new();
    let mut every = tokio::time::interval(Duration::from_secs(args.sample_seconds));
    loop {
        every.tick().await;
        let metrics = http_get(matcher.port, "/metrics").await.1;
        let sample = Sample {
            at: started.elapsed().as_secs_f64(),
            sent: delivery.events.load(std::sync::atomic::Ordering::Relaxed),
            rss: processes
                .iter()
                .map(|(name, pid)| (*name, rss_mib(*pid).unwrap_or(f64::NAN)))
                .collect(),
            lag: metric(&metrics, "continuity_matcher_consumer_lag"),
            outbox_age: metric(&metrics, "continuity_matcher_outbox_oldest_seconds"),
        };
        samples.push(sample);
        // The whole time asked for, and until the last event is in.
        if sending.is_finished() && started.elapsed() >= Duration::from_secs(args.minutes * 60) {
            break;
        }
    }
    let mut waits = sending.await.context("the source")?;
    let sent_for = started.elapsed();
    let accepted = delivery.events.load(std::sync::atomic::Ordering::Relaxed);

    waits.sort();
    let (lag_max, outbox_max) = samples.iter().fold((0f64, 0f64), |(l, o), s| {
        (l.max(s.lag), o.max(s.outbox_age))
    });
    println!(
        "sent {accepted} events in {:.1} min ({:.2}/s); {}",
        sent_for.as_secs_f64() / 60.0,
        accepted as f64 / sent_for.as_secs_f64(),
        delivery.describe()
    );
    println!(
        "each event's turn to its 202: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&waits, 0.5).as_secs_f64() * 1e3,
        percentile(&waits, 0.99).as_secs_f64() * 1e3,
        waits.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    println!("matcher lag: max {lag_max} messages; outbox oldest message: max {outbox_max} s ({} samples, every {} s)", samples.len(), args.sample_seconds);
    // Memory: the first five minutes against the last five (warm-up excluded from neither).
    let window = (300 / args.sample_seconds.max(1)) as usize;
    for (name, _) in &processes {
        let series: Vec<f64> = samples.iter().map(|s| s.rss[name]).collect();
        let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
        let first = mean(&series[..window.min(series.len())]);
        let last = mean(&series[series.len().saturating_sub(window)..]);
        let max = series.iter().copied().fold(0f64, f64::max);
        println!(
            "RSS {name}: first 5 min {first:.1} MiB, last 5 min {last:.1} MiB ({:+.1}%), max {max:.1} MiB",
            (last - first) / first * 100.0
        );
    }
    for (name, _) in &processes {
        let (errors, warnings) = log_lines(&logs.0.join(format!("continuity-{name}.log")));
        println!("log {name}: {errors} error lines, {warnings} warnings");
    }

    if let Some(dir) = args.csv.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut csv = String::from("seconds,events_accepted,lag_messages,outbox_oldest_seconds");
    for (name, _) in &processes {
        csv.push_str(&format!(",rss_{name}_mib"));
    }
    csv.push('\n');
    for s in &samples {
        csv.push_str(&format!(
            "{:.1},{},{},{}",
            s.at, s.sent, s.lag, s.outbox_age
        ));
        for (name, _) in &processes {
            csv.push_str(&format!(",{:.1}", s.rss[name]));
        }
        csv.push('\n');
    }
    std::fs::write(&args.csv, csv)?;
    plot(&args, &rate, &samples, &processes)?;
    println!(
        "samples {}; plot {}",
        args.csv.display(),
        args.png.display()
    );
    env.cleanup().await;
    Ok(())
}

/// Three panels over time: each process's resident memory, the matcher's lag, the outbox's
/// oldest message.
fn plot(
    args: &Args,
    rate: &NationalRate,
    samples: &[Sample],
    processes: &[(&'static str, u32)],
) -> anyhow::Result<()> {
    use plotters::prelude::*;
    // plotters draws text with a font it is given (no system font look-up is built in).
    let font = std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
        .context("the plot's font, /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf (Debian's fonts-dejavu-core)")?;
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(font.into_boxed_slice()),
    )
    .map_err(|_| anyhow::anyhow!("DejaVuSans.ttf is not a font plotters can read"))?;
    if let Some(dir) = args.png.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let root = BitMapBackend::new(&args.png, (1200, 1000)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(50);
    title.draw(&Text::new(
        format!(
            "{} min at {:.2} events/s ({}x the national peak hour), one event a request through ingest",
            args.minutes, rate.per_second, args.factor
        ),
        (20, 15),
        ("sans-serif", 20),
    ))?;
    let panels = body.split_evenly((3, 1));
    let minutes = samples.last().map_or(1.0, |s| s.at / 60.0).max(1.0);
    let colours = [&BLUE, &RED, &GREEN, &MAGENTA];

    let rss_max = samples
        .iter()
        .flat_map(|s| s.rss.values().copied())
        .filter(|v| v.is_finite())
        .fold(1.0f64, f64::max);
    let mut chart = ChartBuilder::on(&panels[0])
        .caption("resident memory (MiB)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..minutes, 0f64..rss_max * 1.2)?;
    chart.configure_mesh().x_desc("minutes").draw()?;
    for ((name, _), colour) in processes.iter().zip(colours) {
        chart
            .draw_series(LineSeries::new(
                samples.iter().map(|s| (s.at / 60.0, s.rss[name])),
                colour,
            ))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;

    for (panel, caption, value) in [
        (
            &panels[1],
            "matcher lag (messages not yet applied)",
            (|s: &Sample| s.lag) as fn(&Sample) -> f64,
        ),
        (
            &panels[2],
            "outbox: age of the oldest message (s)",
            |s: &Sample| s.outbox_age,
        ),
    ] {
        let top = samples.iter().map(value).fold(1.0f64, f64::max);
        let mut chart = ChartBuilder::on(panel)
            .caption(caption, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..minutes, 0f64..top * 1.2)?;
        chart.configure_mesh().x_desc("minutes").draw()?;
        chart.draw_series(LineSeries::new(
            samples.iter().map(|s| (s.at / 60.0, value(s))),
            &BLUE,
        ))?;
    }
    root.present()?;
    Ok(())
}
