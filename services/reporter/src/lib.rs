//! The reporter: the continuity rate against the 75% ambition, from the cases the matcher keeps
//! in PostgreSQL.
//!
//! - `report`: the weekly commissioners' report (HTML and CSV, disclosure control applied),
//!   written under `reports_dir/<week>/` for any week;
//! - `publish`: `ContinuityPerformance` events for the report's cohorts on the performance
//!   topic, published (suppressed) and internal figures, with stable ids;
//! - `serve`: both on a schedule (default Monday 06:00 Europe/London, for the week just
//!   ended) and on demand (`POST /reports/<week>`), the reports over HTTP, operators' gauges
//!   on `/metrics` (internal figures, one series per local authority), `/healthz`, `/readyz`.

#![warn(missing_docs)]

pub mod pages;
pub mod publish;
pub mod report;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Duration, Utc, Weekday};
use continuity_domain::{
    tabulate, Breakdown, CaseFacts, CellKey, CohortPeriod, Outcome, Regions, Rules, Tally,
};
use continuity_runtime::{Checked, ClockSettings, Connections, Readiness, Supervisor};
use prometheus::{
    GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};
use serde::Deserialize;
use sqlx::PgPool;

use crate::report::Report;

/// The name outputs carry as their source.
pub const SOURCE: &str = "continuity-reporter";

/// The reporter's configuration (file, then `CONTINUITY_*` environment variables).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// PostgreSQL (the matcher's store, read only) and the broker.
    #[serde(flatten)]
    pub connections: Connections,
    /// Where reports are written and served from.
    pub reports_dir: PathBuf,
    /// Address of the reports, `/metrics`, `/healthz` and `/readyz`.
    pub http_addr: SocketAddr,
    /// Days after a cohort's last window closes before its figures are final.
    pub settling_days: u32,
    /// A CSV lookup of local authority to region (GSS codes) replacing the shipped one
    /// (`crates/reference/data/england-upper-tier-local-authorities.csv`); either that file's columns or
    /// `local_authority,region` pairs.
    pub regions_file: Option<PathBuf>,
    /// Day of the weekly run (Europe/London).
    pub schedule_weekday: Weekday,
    /// Hour of the weekly run (Europe/London).
    pub schedule_hour: u32,
    /// At start, run the last scheduled week's report at once when no figures were published
    /// since that run was due (the reporter was down then).
    pub catch_up: bool,
    /// The clock (`fixed_now`: replays and tests).
    #[serde(flatten)]
    pub clock: ClockSettings,
    /// The rules of the measure (the window length is used).
    pub rules: Rules,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            connections: Connections::with_pool(4),
            reports_dir: PathBuf::from("reports"),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 9102)),
            settling_days: 28,
            regions_file: None,
            schedule_weekday: Weekday::Mon,
            schedule_hour: 6,
            catch_up: true,
            clock: ClockSettings::default(),
            rules: Rules::default(),
        }
    }
}

impl Checked for Settings {}

impl Settings {
    /// The region lookup.
    pub fn regions(&self) -> anyhow::Result<Regions> {
        match &self.regions_file {
            Some(path) => load_regions(path),
            None => default_regions(),
        }
    }
}

/// The region of every English upper-tier local authority, shipped with the project
/// (`crates/reference`, ONS codes in force from May 2025; provenance in its README).
const UTLA_REGIONS: &str = continuity_reference::UTLA_REGIONS;

/// Codes data before the 2025 recoding still carries, and the region each is in.
const FORMER_CODES: [(&str, &str); 2] = [
    ("E08000016", "E12000003"), // Barnsley, now E08000038
    ("E08000019", "E12000003"), // Sheffield, now E08000039
];

/// The shipped lookup ([`UTLA_REGIONS`]).
pub fn default_regions() -> anyhow::Result<Regions> {
    parse_regions(UTLA_REGIONS, "the shipped lookup")
}

/// Read a lookup file: the shipped format (`utla_code,utla_name,region_code,region_name`) or
/// `local_authority,region` pairs (a header line is allowed).
pub fn load_regions(path: &Path) -> anyhow::Result<Regions> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("regions_file {}: cannot read it", path.display()))?;
    parse_regions(&text, &format!("regions_file {}", path.display()))
}

/// Pairs of (local authority, region) from CSV `text` (names quoted where they hold commas);
/// `what` names the source in errors.
fn parse_regions(text: &str, what: &str) -> anyhow::Result<Regions> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut columns = (0, 1);
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{what} line {}: not CSV", n + 1))?;
        if n == 0 {
            let at = |name: &str| record.iter().position(|f| f.eq_ignore_ascii_case(name));
            if let (Some(la), Some(region)) = (at("utla_code"), at("region_code")) {
                columns = (la, region);
                continue;
            }
            if record.get(0) == Some("local_authority") {
                continue;
            }
        }
        match (record.get(columns.0), record.get(columns.1)) {
            (Some(la), Some(region)) if !la.is_empty() && !region.is_empty() => {
                pairs.push((la.to_owned(), region.to_owned()));
            }
            _ => anyhow::bail!(
                "{what} line {}: expected a local authority code and its region code",
                n + 1
            ),
        }
    }
    for (former, region) in FORMER_CODES {
        if !pairs.iter().any(|(la, _)| la == former) {
            pairs.push((former.to_owned(), region.to_owned()));
        }
    }
    Ok(Regions::new(pairs))
}

/// Every case's facts, from the case read model; rows a newer matcher wrote with codes this
/// build does not know are left out, with a warning.
async fn load_cases(pool: &PgPool) -> anyhow::Result<Vec<CaseFacts>> {
    let facts = continuity_store::cases::facts(pool)
        .await
        .context("reading cases")?;
    if facts.unknown > 0 {
        tracing::warn!(
            cases = facts.unknown,
            "cases with an outcome this build does not know were left out"
        );
    }
    Ok(facts.cases)
}

/// Every cohort's tallies as at the end of the reporting week.
fn cells_for(
    cases: &[CaseFacts],
    regions: &Regions,
    week: CohortPeriod,
) -> BTreeMap<CellKey, Tally> {
    tabulate(cases, regions, week.date_range().1)
}

/// Where a report's files are.
#[derive(Debug, Clone)]
pub struct Written {
    /// The HTML page.
    pub html: PathBuf,
    /// The CSV.
    pub csv: PathBuf,
}

/// Write the report's HTML and CSV under `dir/<week>/`, the national page as
/// `dir/<week>/national.html` and a page per local authority under
/// `dir/<week>/areas/<code>.html`. Each file is replaced whole ([`replace_file`]).
pub fn write_report(dir: &Path, report: &Report) -> anyhow::Result<Written> {
    let week = report.week.to_string();
    let at = dir.join(&week);
    let areas = at.join("areas");
    std::fs::create_dir_all(&areas).with_context(|| format!("creating {}", areas.display()))?;
    let html = at.join(format!("continuity-{week}.html"));
    let csv = at.join(format!("continuity-{week}.csv"));
    replace_file(&html, report.html().as_bytes())?;
    replace_file(&csv, report.csv().as_bytes())?;
    replace_file(&at.join("national.html"), report.national_html().as_bytes())?;
    for area in report.local_authorities() {
        let page = areas.join(format!("{area}.html"));
        replace_file(&page, report.area_html(area).as_bytes())?;
    }
    Ok(Written { html, csv })
}

/// Write `bytes` to `path` by writing a temporary file beside it and renaming it over `path`:
/// a reader (the page being served, a commissioner's download) sees the old file or the new
/// one, never part of one, even when the reporter is killed mid-write. A leftover temporary
/// file is overwritten by the next run.
fn replace_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".partial");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, bytes)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// Operators' gauges: internal figures (no disclosure control) over the report's 52 cohorts,
/// one series per local authority (about 150), plus England.
#[derive(Clone)]
pub struct Metrics {
    /// The registry served on `/metrics`.
    pub registry: Registry,
    rate: GaugeVec,
    cases: IntGaugeVec,
    last_report: IntGaugeVec,
    runs: IntCounterVec,
    run_seconds: Histogram,
    published: IntCounter,
}

impl Metrics {
    /// Create and register the gauges.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("continuity_reporter".into()), None)?;
        let rate = GaugeVec::new(
            Opts::new(
                "rate",
                "Continuity rate over the latest report's 52 weekly cohorts, with its 95% interval",
            ),
            &["area", "bound"],
        )?;
        let cases = IntGaugeVec::new(
            Opts::new(
                "cases",
                "Cases by area and outcome group (finalised cohorts; open now)",
            ),
            &["area", "group"],
        )?;
        let last_report = IntGaugeVec::new(
            Opts::new(
                "last_report_timestamp_seconds",
                "When a report was last written",
            ),
            &["result"],
        )?;
        let runs = IntCounterVec::new(
            Opts::new("runs_total", "Report runs, by result (ok, failed)"),
            &["result"],
        )?;
        let run_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "run_duration_seconds",
                "Time to read the cases, compute, write and publish one report",
            )
            .buckets(vec![0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0]),
        )?;
        let published = IntCounter::new(
            "figures_published_total",
            "Figures published on the performance topic",
        )?;
        // Every known series exists from start, at zero, so increase() sees the first run.
        for result in ["ok", "failed"] {
            runs.with_label_values(&[result]);
        }
        registry.register(Box::new(rate.clone()))?;
        registry.register(Box::new(cases.clone()))?;
        registry.register(Box::new(last_report.clone()))?;
        registry.register(Box::new(runs.clone()))?;
        registry.register(Box::new(run_seconds.clone()))?;
        registry.register(Box::new(published.clone()))?;
        Ok(Self {
            registry,
            rate,
            cases,
            last_report,
            runs,
            run_seconds,
            published,
        })
    }

    fn record(&self, report: &Report, cells: &BTreeMap<CellKey, Tally>, cases: &[CaseFacts]) {
        let mut by_area: BTreeMap<String, Tally> = BTreeMap::new();
        for ((period, breakdown, area), tally) in cells {
            let area = match breakdown {
                Breakdown::England => "england".to_string(),
                Breakdown::LocalAuthority => area.clone(),
                _ => continue,
            };
            if report.cohorts.contains(period) {
                by_area.entry(area).or_default().merge(tally);
            }
        }
        self.rate.reset();
        self.cases.reset();
        for (area, tally) in &by_area {
            if let Some(r) = tally.rate() {
                for (bound, v) in [("rate", r.rate), ("lower", r.lower), ("upper", r.upper)] {
                    self.rate.with_label_values(&[area, bound]).set(v);
                }
            }
            for (group, n) in [("finalised", tally.finalised), ("engaged", tally.engaged)] {
                self.cases.with_label_values(&[area, group]).set(n as i64);
            }
        }
        for case in cases.iter().filter(|c| c.outcome == Outcome::Open) {
            for area in ["england", case.local_authority.as_str()] {
                self.cases.with_label_values(&[area, "open"]).inc();
            }
        }
    }
}

/// Everything one run needs.
pub struct Reporter {
    /// Configuration.
    pub settings: Settings,
    /// The matcher's store.
    pub pool: PgPool,
    /// Gauges.
    pub metrics: Metrics,
    /// Region lookup.
    pub regions: Regions,
}

impl Reporter {
    /// Connect (the reporter only reads the store) and load the region lookup.
    pub async fn connect(settings: Settings) -> anyhow::Result<Self> {
        let pool = continuity_store::pool(
            settings.connections.database.url(),
            settings.connections.database.database_pool,
            std::time::Duration::from_secs(10),
            continuity_store::Access::General,
        )
        .context("database_url")?;
        Ok(Self {
            regions: settings.regions()?,
            metrics: Metrics::new()?,
            settings,
            pool,
        })
    }

    /// Compute `week`'s figures and set the gauges from them, writing and publishing nothing:
    /// what a restarted reporter serves on `/metrics` until its next scheduled run.
    pub async fn refresh_gauges(&self, week: CohortPeriod) -> anyhow::Result<()> {
        self.figures(week).await.map(drop)
    }

    /// `week`'s report and cells from the cases now stored; the gauges set from them.
    async fn figures(
        &self,
        week: CohortPeriod,
    ) -> anyhow::Result<(Report, BTreeMap<CellKey, Tally>)> {
        let cases = load_cases(&self.pool).await?;
        let cells = cells_for(&cases, &self.regions, week);
        let report = report::build(
            &cells,
            &self.regions,
            week,
            &self.settings.rules,
            self.settings.settling_days,
        );
        self.metrics.record(&report, &cells, &cases);
        Ok((report, cells))
    }

    /// Build and write the report for `week`; with `publish_at`, also publish its figures.
    pub async fn run(
        &self,
        week: CohortPeriod,
        publish_at: Option<DateTime<Utc>>,
    ) -> anyhow::Result<(Report, Written, usize)> {
        let started = std::time::Instant::now();
        let result = self.run_once(week, publish_at).await;
        self.metrics
            .run_seconds
            .observe(started.elapsed().as_secs_f64());
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        self.metrics.runs.with_label_values(&[outcome]).inc();
        self.metrics
            .last_report
            .with_label_values(&[outcome])
            .set(Utc::now().timestamp());
        if let Ok((_, _, n)) = &result {
            self.metrics.published.inc_by(*n as u64);
        }
        result
    }

    async fn run_once(
        &self,
        week: CohortPeriod,
        publish_at: Option<DateTime<Utc>>,
    ) -> anyhow::Result<(Report, Written, usize)> {
        let (report, cells) = self.figures(week).await?;
        let written = write_report(&self.settings.reports_dir, &report)?;
        let published = match publish_at {
            Some(now) => {
                publish::publish(
                    &self.pool,
                    &self.settings.connections.kafka,
                    &report,
                    &cells,
                    now,
                )
                .await?
            }
            None => 0,
        };
        Ok((report, written, published))
    }
}

struct Ready(PgPool);

impl Readiness for Ready {
    async fn check(&self) -> Result<(), String> {
        sqlx::query("select 1")
            .execute(&self.0)
            .await
            .map(|_| ())
            .map_err(|_| "database does not answer".into())
    }
}

/// One scheduled run: write and publish `week`'s report, logging what happened.
async fn scheduled_run(reporter: &Reporter, week: CohortPeriod, now: DateTime<Utc>) {
    match reporter.run(week, Some(now)).await {
        Ok((_, written, n)) => tracing::info!(
            week = %week, messages = n, html = %written.html.display(),
            "weekly report written and published"
        ),
        Err(e) => tracing::error!(week = %week, error = %e, "weekly report failed"),
    }
}

/// Serve the reports and run the weekly schedule until `shutdown`.
pub async fn serve(
    reporter: Arc<Reporter>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let clock = reporter.settings.clock.clock();
    // The last scheduled run at or before now, and the week it reports on.
    let last_due = report::next_run(
        clock.now() - Duration::days(7),
        reporter.settings.schedule_weekday,
        reporter.settings.schedule_hour,
    );
    let last_week =
        CohortPeriod::iso_week(continuity_domain::london_date(last_due - Duration::days(1)));
    let missed = match publish::last_published(&reporter.pool).await {
        Ok(Some(at)) => {
            reporter
                .metrics
                .last_report
                .with_label_values(&["ok"])
                .set(at.timestamp());
            at < last_due
        }
        Ok(None) => true,
        Err(e) => {
            tracing::warn!(error = %e, "could not read when figures were last published");
            false
        }
    };
    let catch_up = missed && reporter.settings.catch_up;
    if !catch_up {
        // The gauges as at the last scheduled run, so dashboards are not empty after a restart.
        if let Err(e) = reporter.refresh_gauges(last_week).await {
            tracing::warn!(error = %e, "could not compute the gauges at start; they fill at the next run");
        }
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Supervisor::new();
    {
        let reporter = reporter.clone();
        let mut stopped = stopped.clone();
        tasks.spawn("weekly report", async move {
            if catch_up {
                tracing::warn!(week = %last_week, "no figures published since the last scheduled run: running it now");
                scheduled_run(&reporter, last_week, clock.now()).await;
            }
            loop {
                let now = clock.now();
                let next = report::next_run(
                    now,
                    reporter.settings.schedule_weekday,
                    reporter.settings.schedule_hour,
                );
                // A run due now or in the past (the clock moved) starts at once.
                let wait = (next - now).to_std().unwrap_or(std::time::Duration::ZERO);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stopped.wait_for(|s| *s) => return,
                }
                // The run reports on the week just ended.
                let week = CohortPeriod::iso_week(continuity_domain::london_date(
                    next - Duration::days(1),
                ));
                scheduled_run(&reporter, week, clock.now()).await;
            }
        });
    }
    let app = continuity_runtime::operations_router(
        reporter.metrics.registry.clone(),
        Ready(reporter.pool.clone()),
    )
    .merge(
        Router::new()
            .route("/", get(index))
            .route("/reports", get(index))
            .route("/reports/{week}", post(run_now))
            .route("/reports/{week}/{file}", get(file))
            .with_state(reporter),
    );
    tracing::info!(address = %listener.local_addr()?, "reporter listening");
    let served = continuity_runtime::http::serve(listener, app, shutdown);
    let result = tokio::select! {
        served = served => served.map_err(anyhow::Error::from),
        failure = tasks.next_exit() => Err(failure),
    };
    let _ = stop.send(true);
    let joined = tasks.join(std::time::Duration::from_secs(30)).await;
    result.and(joined)
}

async fn index(State(r): State<Arc<Reporter>>) -> Response {
    let mut weeks: Vec<String> = match std::fs::read_dir(&r.settings.reports_dir) {
        Ok(d) => d
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|w| report::parse_week(w).is_ok())
            .collect(),
        // No report written yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            tracing::error!(error = %e, dir = %r.settings.reports_dir.display(), "the reports directory cannot be read");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the reports directory cannot be read; see the reporter's log\n",
            )
                .into_response();
        }
    };
    weeks.sort_unstable_by(|a, b| b.cmp(a));
    let items: String = weeks
        .iter()
        .map(|w| {
            format!(
                "<li>{w}: <a href=\"/reports/{w}/continuity-{w}.html\">report</a>, \
                 <a href=\"/reports/{w}/national\">every local authority</a>, \
                 <a href=\"/reports/{w}/continuity-{w}.csv\">CSV</a></li>"
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Continuity reports</title></head>\
         <body><h1>Continuity of care: weekly reports</h1><ul>{items}</ul></body></html>"
    ))
    .into_response()
}

async fn file(
    State(r): State<Arc<Reporter>>,
    UrlPath((week, file)): UrlPath<(String, String)>,
) -> Response {
    let Ok(period) = report::parse_week(&week) else {
        return (StatusCode::NOT_FOUND, "no such week\n").into_response();
    };
    let week = period.to_string();
    // A local authority's page by its code (`/reports/2026-W48/E10000025`), or a report file.
    let (path, content_type) = if let Ok(area) = continuity_domain::LocalAuthorityCode::parse(&file)
    {
        (
            r.settings
                .reports_dir
                .join(&week)
                .join("areas")
                .join(format!("{area}.html")),
            "text/html; charset=utf-8",
        )
    } else if file == "national" {
        (
            r.settings.reports_dir.join(&week).join("national.html"),
            "text/html; charset=utf-8",
        )
    } else if file == format!("continuity-{week}.html") {
        (
            r.settings.reports_dir.join(&week).join(&file),
            "text/html; charset=utf-8",
        )
    } else if file == format!("continuity-{week}.csv") {
        (
            r.settings.reports_dir.join(&week).join(&file),
            "text/csv; charset=utf-8",
        )
    } else {
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    };
    match std::fs::read(&path) {
        Ok(body) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(_) if path.parent().is_some_and(|p| p.ends_with("areas") && p.is_dir()) => (
            StatusCode::NOT_FOUND,
            format!("no figures for that local authority in week {week}: it has no releases in these weeks, or is not in England\n"),
        )
            .into_response(),
        Err(_) => (
            StatusCode::NOT_FOUND,
            format!("no report for {week} yet: POST /reports/{week} to produce it\n"),
        )
            .into_response(),
    }
}

async fn run_now(State(r): State<Arc<Reporter>>, UrlPath(week): UrlPath<String>) -> Response {
    let period = match report::parse_week(&week) {
        Ok(p) => p,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let now = r.settings.clock.clock().now();
    match r.run(period, Some(now)).await {
        Ok((report, _, n)) => (
            StatusCode::OK,
            format!(
                "report {week} written; {n} figures published; England {}\n",
                report
                    .headline()
                    .map_or("no finalised cases".into(), |h| format!(
                        "{:.1}%",
                        h.rate * 100.0
                    ))
            ),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(week = %period, error = %e, "report on demand failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "report failed; see the reporter's log\n",
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_lookup_places_every_english_upper_tier_authority_in_its_region() {
        let regions = default_regions().unwrap();
        assert_eq!(regions.region_of("E06000023"), "E12000009"); // "Bristol, City of": quoted
        assert_eq!(regions.region_of("E09000001"), "E12000007"); // City of London
        assert_eq!(regions.region_of("E08000038"), "E12000003"); // Barnsley
        assert_eq!(regions.region_of("E08000016"), "E12000003"); // Barnsley's former code
        assert_eq!(
            regions.region_of("W06000015"),
            continuity_domain::performance::UNKNOWN
        );
        let rows = UTLA_REGIONS
            .lines()
            .skip(1)
            .filter(|l| !l.is_empty())
            .count();
        assert_eq!(rows, 153);
        let pairs = parse_regions("local_authority,region\nE10000025,E12000008\n", "t").unwrap();
        assert_eq!(pairs.region_of("E10000025"), "E12000008");
        let e = parse_regions("E10000025\n", "t").unwrap_err().to_string();
        assert!(e.contains("t line 1"), "{e}");
    }
}
