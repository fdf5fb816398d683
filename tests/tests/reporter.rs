//! The reporter against real PostgreSQL, the real broker and real HTTP, on a generated year of
//! cases stored in the matcher's `cases` table:
//! - every cohort the reporter computes equals an independent plain-SQL computation, cell by
//!   cell;
//! - the report is produced on demand over HTTP, served as HTML and CSV, and its figures are
//!   published with the same ids when published again;
//! - the weekly, national and area pages render in headless Chromium with their charts, pass
//!   axe-core, and the national table sorts;
//! - a final figure that changes is republished as a revision, and only that cell.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use continuity_domain::{assess, Breakdown, Rules};
use continuity_e2e::*;
use continuity_reporter::{Reporter, Settings};
use continuity_runtime::{ClockSettings, Connections, DatabaseSettings};
use continuity_schema::{wire, AvroRecord};
use continuity_stream::Topic;
use continuity_synthetic::{generate, Config};

/// As at 17 May 2026: the windows of financial year 2025-26 have all closed, so it is the
/// report's year.
const WEEK: &str = "2026-W20";

/// A year of generated events, assessed by the rules, stored as the matcher stores cases.
async fn a_year_of_cases(env: &Env) -> usize {
    let events = generate(&Config {
        seed: 11,
        people: 4_000,
        start: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        days: 365,
        ..Config::default()
    });
    let now = Utc.with_ymd_and_hms(2026, 3, 9, 12, 0, 0).unwrap();
    let cases = assess(&events, &Rules::default(), now).cases;
    let component: i64 = sqlx::query_scalar("insert into components default values returning id")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    for c in &cases {
        sqlx::query(
            "insert into cases (case_id, component, release_id, release_date, local_authority,
                prison, provider, outcome, exclusion_reason, state)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, '\\x')",
        )
        .bind(c.case_id.0)
        .bind(component)
        .bind(&c.release_id)
        .bind(c.release_date)
        .bind(c.local_authority.to_string())
        .bind(c.prison.as_ref().map(|p| p.to_string()))
        .bind(c.provider.as_ref().map(|p| p.to_string()))
        .bind(c.outcome.code())
        .bind(c.outcome.exclusion_code())
        .execute(&env.pool)
        .await
        .unwrap();
    }
    cases.len()
}

/// (period, breakdown, area) -> (finalised, engaged, open), in plain SQL.
async fn cohorts_by_sql(env: &Env) -> BTreeMap<(String, String, String), (i64, i64, i64)> {
    let rows: Vec<(String, String, String, i64, i64, i64)> = sqlx::query_as(
        r#"
        with c as (
            select release_date d, local_authority la, coalesce(prison, 'UNKNOWN') prison,
                   coalesce(provider, 'UNKNOWN') provider, outcome
            from cases where outcome <> 'WITHDRAWN'),
        p as (
            select to_char(d, 'IYYY') || '-W' || to_char(d, 'IW') period, c.* from c
            union all
            select to_char(d, 'YYYY-MM'), c.* from c
            union all
            select 'FY' || fy || '-' || lpad(((fy + 1) % 100)::text, 2, '0'), x.d, x.la,
                   x.prison, x.provider, x.outcome
            from (select case when extract(month from d) >= 4 then extract(year from d)::int
                              else extract(year from d)::int - 1 end fy, c.* from c) x
            union all
            select 'FY' || fy || '-' || lpad(((fy + 1) % 100)::text, 2, '0') || '-Q'
                       || ((extract(month from x.d)::int + 8) % 12 / 3 + 1),
                   x.d, x.la, x.prison, x.provider, x.outcome
            from (select case when extract(month from d) >= 4 then extract(year from d)::int
                              else extract(year from d)::int - 1 end fy, c.* from c) x
            union all
            select 'R12-' || to_char(m, 'YYYY-MM'), c.*
            from c cross join lateral generate_series(date_trunc('month', d),
                date_trunc('month', d) + interval '11 months', interval '1 month') m),
        b as (
            select period, 'england' breakdown, 'E92000001' area, outcome from p
            union all select period, 'local_authority', la, outcome from p where la like 'E%'
            union all select period, 'prison', prison, outcome from p
            union all select period, 'provider', provider, outcome from p)
        select period, breakdown, area,
               count(*) filter (where outcome in ('ENGAGED', 'NOT_ENGAGED')),
               count(*) filter (where outcome = 'ENGAGED'),
               count(*) filter (where outcome = 'OPEN')
        from b group by 1, 2, 3
        "#,
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(p, b, a, f, e, o)| ((p, b, a), (f, e, o)))
        .collect()
}

fn settings(env: &Env, dir: &std::path::Path) -> Settings {
    Settings {
        connections: Connections {
            database: DatabaseSettings::new(env.db_url.clone(), 4),
            kafka: env.kafka.clone(),
        },
        reports_dir: dir.to_path_buf(),
        // Tests run the reports they check; the start-up catch-up has a test of its own.
        catch_up: false,
        clock: ClockSettings {
            fixed_now: Some(Utc.with_ymd_and_hms(2026, 3, 9, 6, 0, 0).unwrap()),
        },
        ..Settings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cohort_equals_an_independent_sql_computation() {
    let env = env().await;
    let n = a_year_of_cases(&env).await;
    assert!(n > 1_000, "a year of cases ({n})");
    let cases = continuity_store::cases::facts(&env.pool)
        .await
        .unwrap()
        .cases;
    // Some go to Wales: their releases are England's exclusions, never rows of their own.
    assert!(cases.iter().any(|c| c.local_authority.starts_with('W')));
    let today = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap();
    let cells = continuity_domain::tabulate(&cases, &continuity_domain::Regions::default(), today);
    let ours: BTreeMap<_, _> = cells
        .iter()
        .filter(|((_, b, _), _)| *b != Breakdown::Region)
        .map(|((p, b, a), t)| {
            (
                (p.to_string(), b.code().to_string(), a.clone()),
                (t.finalised as i64, t.engaged as i64, t.open as i64),
            )
        })
        .collect();
    let theirs = cohorts_by_sql(&env).await;
    let differing: Vec<_> = theirs
        .iter()
        .filter(|(k, v)| ours.get(*k) != Some(*v))
        .take(5)
        .collect();
    assert!(
        differing.is_empty(),
        "cells that differ from SQL: {differing:?}"
    );
    assert_eq!(ours.len(), theirs.len(), "the same cells");
    assert!(
        ours.len() > 5_000,
        "every cohort, every area ({})",
        ours.len()
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_report_is_served_published_idempotently_and_renders() {
    let env = env().await;
    a_year_of_cases(&env).await;
    let dir = std::env::temp_dir().join(format!("reports-{}", uuid::Uuid::new_v4().simple()));
    let reporter = Arc::new(Reporter::connect(settings(&env, &dir)).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(continuity_reporter::serve(reporter, listener, async {
        let _ = stopped.await;
    }));

    // Before any run, the gauges already hold the last scheduled week's figures (computed at
    // start, so a restarted reporter's dashboards are not empty), and nothing was written.
    let metrics = get_body(port, "/metrics").await;
    assert!(metrics.contains("continuity_reporter_rate{"), "{metrics}");

    // Not produced yet: a clear 404; a bad week: 400.
    let (status, body) = http_get(port, &format!("/reports/{WEEK}/continuity-{WEEK}.html")).await;
    assert_eq!(status, 404);
    assert!(body.contains("POST /reports/"), "{body}");
    assert_eq!(http_post(port, "/reports/2026-W99").await.0, 400);

    // On demand, twice: the same figures, the same event ids.
    let (status, first) = http_post(port, &format!("/reports/{WEEK}")).await;
    assert_eq!(status, 200, "{first}");
    let (_, second) = http_post(port, &format!("/reports/{WEEK}")).await;
    assert_eq!(first, second);
    let published: usize = first
        .split(';')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(published > 100, "{first}");
    let messages = read_topic(&env.kafka, Topic::Performance).await;
    assert_eq!(messages.len(), 2 * published, "both runs reached the topic");
    let ids: std::collections::BTreeSet<_> = messages
        .iter()
        .map(|m| {
            wire::ContinuityPerformance::from_message(m)
                .unwrap()
                .envelope
                .event_id
        })
        .collect();
    assert_eq!(ids.len(), published, "republishing repeats the same ids");
    let figures: Vec<_> = messages
        .iter()
        .map(|m| wire::ContinuityPerformance::from_message(m).unwrap())
        .collect();
    assert!(figures
        .iter()
        .any(|f| f.suppressed && f.finalised.is_none()));
    assert!(figures
        .iter()
        .filter(|f| f.audience == wire::Audience::Published)
        .all(|f| f.suppressed
            || f.finalised.is_none_or(|n| n == 0 || n >= 5)
            || f.breakdown == wire::Breakdown::England));

    // Months, rolling 12 months and financial years are published too, for both audiences.
    // A published rolling 12 months is the sum of its twelve published months, and is
    // withheld when any of them is.
    for kind in [
        wire::PeriodKind::Month,
        wire::PeriodKind::Rolling12Months,
        wire::PeriodKind::FinancialYear,
        wire::PeriodKind::Quarter,
    ] {
        for audience in [wire::Audience::Published, wire::Audience::Internal] {
            assert!(
                figures
                    .iter()
                    .any(|f| f.period_kind == kind && f.audience == audience),
                "{kind:?} {audience:?}"
            );
        }
    }
    let published = |kind: wire::PeriodKind| {
        figures
            .iter()
            .filter(move |f| f.period_kind == kind && f.audience == wire::Audience::Published)
    };
    let months: BTreeMap<(String, String, String), Option<i64>> =
        published(wire::PeriodKind::Month)
            .map(|f| {
                (
                    (
                        format!("{:?}", f.breakdown),
                        f.area_code.clone(),
                        f.period.clone(),
                    ),
                    f.finalised,
                )
            })
            .collect();
    let newest = months.keys().map(|(_, _, p)| p.clone()).max().unwrap();
    let mut checked = 0;
    for r12 in
        published(wire::PeriodKind::Rolling12Months).filter(|f| f.period == format!("R12-{newest}"))
    {
        let parts: Vec<Option<i64>> = months
            .iter()
            .filter(|((b, a, _), _)| *b == format!("{:?}", r12.breakdown) && *a == r12.area_code)
            .map(|(_, v)| *v)
            .collect();
        let sum: Option<i64> = parts.iter().copied().sum();
        if !parts.is_empty() {
            assert_eq!(r12.finalised, sum, "{} {:?}", r12.area_code, r12.breakdown);
            checked += 1;
        }
    }
    assert!(checked > 10, "{checked}");
    assert!(published(wire::PeriodKind::Rolling12Months).any(|f| f.suppressed));
    // Local authorities, prisons and providers are published by year and quarter only; a
    // year is published for most authorities although most of their quarters are withheld.
    assert!(!figures
        .iter()
        .any(|f| f.audience == wire::Audience::Published
            && matches!(
                f.period_kind,
                wire::PeriodKind::IsoWeek | wire::PeriodKind::Month
            )
            && matches!(
                f.breakdown,
                wire::Breakdown::LocalAuthority
                    | wire::Breakdown::Prison
                    | wire::Breakdown::Provider
            )));
    let la_year: Vec<_> = published(wire::PeriodKind::FinancialYear)
        .filter(|f| f.breakdown == wire::Breakdown::LocalAuthority && f.period == "FY2025-26")
        .collect();
    // About 20 cases each here: most years are published, few of their quarters.
    let shown = la_year.iter().filter(|f| !f.suppressed).count();
    assert!(
        shown * 4 >= la_year.len() * 3,
        "{shown} of {} years published",
        la_year.len()
    );
    let la_quarters = published(wire::PeriodKind::Quarter)
        .filter(|f| f.breakdown == wire::Breakdown::LocalAuthority);
    assert!(
        la_quarters.clone().any(|f| f.suppressed) && la_quarters.clone().any(|f| !f.suppressed)
    );

    // Served: the page with its headline and chart, the CSV with its header, the index.
    let html = get_body(port, &format!("/reports/{WEEK}/continuity-{WEEK}.html")).await;
    assert!(
        html.contains("id=\"headline\"") && html.contains("<svg"),
        "page"
    );
    assert!(html.contains("[c]"), "suppressed cells are marked");
    let csv = get_body(port, &format!("/reports/{WEEK}/continuity-{WEEK}.csv")).await;
    assert!(csv.starts_with(continuity_reporter::report::CSV_HEADER));
    assert!(csv.lines().count() > 1_000);
    // Tidy: one row per breakdown, area and period; England's rows (52 weeks, their total, two
    // years, eight quarters and eight rolling years, where they have cases) under its own
    // breakdown only.
    let rows: Vec<Vec<String>> = csv.lines().skip(1).map(csv_fields).collect();
    let rows: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r.iter().map(String::as_str).collect())
        .collect();
    assert!(
        rows.iter().all(|r| r.len() == 16),
        "16 columns in every row"
    );
    let keys: std::collections::BTreeSet<(&str, &str, &str)> =
        rows.iter().map(|r| (r[0], r[1], r[3])).collect();
    assert_eq!(
        keys.len(),
        rows.len(),
        "each breakdown, area and period once"
    );
    let areas: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[1])).collect();
    assert!(!areas.iter().any(|(_, a)| *a == "ALL"));
    let england: Vec<&str> = areas
        .iter()
        .filter(|(_, a)| *a == "E92000001")
        .map(|(b, _)| *b)
        .collect();
    // (Quarters before the generated year have no cases, and no row.)
    assert!(england.len() >= 53 + 11, "{}", england.len());
    assert!(england.iter().all(|b| *b == "england"));
    assert!(!rows
        .iter()
        .any(|r| r[0] == "local_authority" && r[4] == "iso_week"));
    // Each local authority has a page of its own by its code: the reading guide first, then
    // its year in words against its region, England and 75%; an unknown one answers 404.
    let la = rows
        .iter()
        .find(|r| {
            r[0] == "local_authority"
                && r[4] == "financial_year"
                && r[3] == "FY2025-26"
                && r[15] == "false"
        })
        .map(|r| r[1])
        .expect("a local authority's published year");
    let (status, page) = http_get(port, &format!("/reports/{WEEK}/{la}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.find("How to read this") < page.find("id=\"headline\""));
    assert!(page.contains("against the region, England and the 75% ambition"));
    assert!(page.contains("<th scope=\"row\">England</th>"));
    assert!(page.contains("The last eight quarters"));
    let (status, _) = http_get(port, &format!("/reports/{WEEK}/E06999999")).await;
    assert_eq!(status, 404);
    let (status, national) = http_get(port, &format!("/reports/{WEEK}/national")).await;
    assert_eq!(status, 200);
    assert!(national.contains("class=\"chart funnel\"") && national.contains("99.8% limits"));
    // Areas outside England are never rows.
    assert!(!areas
        .iter()
        .any(|(b, a)| *b == "local_authority" && !a.starts_with('E')));
    assert!(get_body(port, "/reports").await.contains(WEEK));
    let metrics = get_body(port, "/metrics").await;
    assert!(metrics.contains("continuity_reporter_rate{area=\"england\",bound=\"rate\"}"));

    // Rendered as a person sees it, served over HTTP: axe-core on the weekly, national and
    // area pages, charts drawn, sorting, screenshots kept under target/browser-screenshots.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shots = root.join("target/browser-screenshots");
    let modules = std::env::var("CONTINUITY_BROWSER_MODULES")
        .expect("CONTINUITY_BROWSER_MODULES (scripts/test.sh sets it)");
    let out = tokio::process::Command::new("node")
        .arg(root.join("tests/browser/report.mjs"))
        .env("CONTINUITY_BROWSER_MODULES", modules)
        .env(
            "REPORT_URL",
            format!("http://127.0.0.1:{port}/reports/{WEEK}"),
        )
        .env("WEEK", WEEK)
        .env("AREA", la)
        .env("SCREENSHOTS", &shots)
        .output()
        .await
        .expect("node runs (scripts/test.sh installs what it needs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("browser checks passed"));
    for shot in ["weekly", "national", "area"] {
        assert!(shots.join(format!("report-{shot}.png")).exists(), "{shot}");
    }

    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    env.cleanup().await;
}

/// A CSV line's fields (RFC 4180 quoting: names such as "Bristol, City of").
fn csv_fields(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// The last message of each England weekly cell on the topic, by period.
fn england_weeks(messages: &[Vec<u8>]) -> BTreeMap<String, wire::ContinuityPerformance> {
    messages
        .iter()
        .map(|m| wire::ContinuityPerformance::from_message(m).unwrap())
        .filter(|f| {
            f.breakdown == wire::Breakdown::England
                && f.period_kind == wire::PeriodKind::IsoWeek
                && f.audience == wire::Audience::Published
        })
        .map(|f| (f.period.clone(), f))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_figure_that_changes_is_republished_as_a_revision() {
    let env = env().await;
    a_year_of_cases(&env).await;
    let dir = std::env::temp_dir().join(format!("reports-{}", uuid::Uuid::new_v4().simple()));
    let s = settings(&env, &dir);
    let now = s.clock.fixed_now.unwrap();
    let reporter = Reporter::connect(s).await.unwrap();
    // A week whose 52 cohorts are all within the generated year.
    let week = continuity_reporter::report::parse_week("2026-W10").unwrap();
    reporter.run(week, Some(now)).await.unwrap();
    let first = england_weeks(&read_topic(&env.kafka, Topic::Performance).await);
    let (period, before) = first
        .iter()
        .find(|(_, f)| f.status == wire::FigureStatus::Final && f.engaged.is_some())
        .map(|(p, f)| (p.clone(), f.clone()))
        .expect("a final England week");

    // Each week carries its change since the week before, in percentage points.
    let weeks: Vec<&wire::ContinuityPerformance> = first.values().collect();
    let mut compared = 0;
    for pair in weeks.windows(2) {
        if let (Some(a), Some(b)) = (pair[0].rate, pair[1].rate) {
            let change = pair[1]
                .change
                .expect("a change where both weeks have a rate");
            assert!(
                (change - (b - a) * 100.0).abs() < 1e-9,
                "{}",
                pair[1].period
            );
            compared += 1;
        }
    }
    assert!(compared > 40, "{compared}");

    // Late community data: a not-engaged case of that week turns out engaged.
    let changed = sqlx::query(
        "update cases set outcome = 'ENGAGED' where case_id = (
             select case_id from cases where outcome = 'NOT_ENGAGED'
             and release_date between $1 and $2 limit 1)",
    )
    .bind(continuity_schema::date_from_days(before.period_start).unwrap())
    .bind(continuity_schema::date_from_days(before.period_end).unwrap())
    .execute(&env.pool)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(changed, 1);
    reporter.run(week, Some(now)).await.unwrap();
    let all = read_topic(&env.kafka, Topic::Performance).await;
    let second = england_weeks(&all);
    let after = &second[&period];
    assert_eq!(after.cohort_id, before.cohort_id, "the same cell");
    assert_eq!(after.status, wire::FigureStatus::Revision);
    assert_eq!(after.revision, 1);
    assert_eq!(after.engaged, before.engaged.map(|n| n + 1));
    assert_ne!(after.envelope.event_id, before.envelope.event_id);
    // The week after keeps its counts, but its change since the week before moved: a revision
    // too. Every other England week is republished unchanged, with the same id.
    let next = first.range(period.clone()..).nth(1).map(|(p, _)| p.clone());
    for (p, f) in &first {
        if Some(p) == next.as_ref() {
            assert_eq!(
                (second[p].engaged, second[p].revision),
                (f.engaged, 1),
                "{p}"
            );
            assert_ne!(second[p].change, f.change, "{p}");
        } else if *p != period {
            assert_eq!(second[p].envelope.event_id, f.envelope.event_id, "{p}");
            assert_eq!(second[p].revision, 0, "{p}");
        }
    }
    // Publishing again repeats the revision, not a new one.
    reporter.run(week, Some(now)).await.unwrap();
    let third = england_weeks(&read_topic(&env.kafka, Topic::Performance).await);
    assert_eq!(third[&period].envelope.event_id, after.envelope.event_id);
    assert_eq!(third[&period].revision, 1);
    // Content hashed the way an older build did (scheme 1) is not a change: no figure becomes
    // a revision, or a further one, when the reporter first meets it.
    sqlx::query("update published_figures set content_scheme = 1, content = gen_random_uuid()")
        .execute(&env.pool)
        .await
        .unwrap();
    reporter.run(week, Some(now)).await.unwrap();
    let fourth = england_weeks(&read_topic(&env.kafka, Topic::Performance).await);
    for (p, f) in &third {
        assert_eq!(fourth[p].revision, f.revision, "{p}");
        assert_eq!(fourth[p].status, f.status, "{p}");
    }
    let schemes: Vec<i16> =
        sqlx::query_scalar("select distinct content_scheme from published_figures")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(schemes, [continuity_schema::CONTENT_SCHEME]);
    let _ = std::fs::remove_dir_all(&dir);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_missed_while_the_reporter_was_down_is_run_at_start() {
    let env = env().await;
    a_year_of_cases(&env).await;
    let dir = std::env::temp_dir().join(format!("reports-{}", uuid::Uuid::new_v4().simple()));
    let s = Settings {
        catch_up: true,
        ..settings(&env, &dir)
    };
    // Nothing was ever published: the run due on Monday 9 March 06:00 (the settings' clock)
    // was missed, and reports on week 2026-W10.
    let reporter = Arc::new(Reporter::connect(s).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(continuity_reporter::serve(reporter, listener, async {
        let _ = stopped.await;
    }));
    let pool = env.pool.clone();
    eventually(120, "the missed week's figures published", || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("select count(*) from published_figures")
                .fetch_one(&pool)
                .await
                .unwrap()
                > 0
        }
    })
    .await;
    assert!(dir
        .join("2026-W10")
        .join("continuity-2026-W10.html")
        .exists());
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    env.cleanup().await;
}
