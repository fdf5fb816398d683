//! Every metric an alert (`deploy/prometheus/rules.yml`) or a dashboard panel
//! (`deploy/grafana/continuity.json`) names is exported by a running service's `/metrics`, with
//! the labelled series an alert needs there from start; and ingest counts requests refused whole.

use std::collections::BTreeSet;
use std::sync::Arc;

use continuity::{produce, sample};
use continuity_e2e::*;
use continuity_ingest::sources::{token_hash, Role, SourceConfig};
use continuity_runtime::{ClockSettings, Connections, DatabaseSettings, HashSecret, ManualClock};
use continuity_stream::Topic;

const RULES: &str = include_str!("../../deploy/prometheus/rules.yml");
const DASHBOARD: &str = include_str!("../../deploy/grafana/continuity.json");

/// The `continuity_*` metric names in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("continuity_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The metric names of an exposition (`name{labels} value` or `name value` lines), having
/// checked that no label carries a personal identifier (the samples' values are numbers, and
/// a timestamp can look like an NHS number).
fn exported(body: &str) -> BTreeSet<String> {
    let scan = IdentifierScan::new();
    let found: Vec<_> = body
        .lines()
        .filter_map(|l| Some(l.split_once('{')?.1.rsplit_once('}')?.0))
        .flat_map(|labels| scan.find(labels))
        .collect();
    assert!(found.is_empty(), "metrics name people: {found:?}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_alerts_and_dashboards_name_is_exported() {
    let env = env().await;
    let clock = ManualClock::new(now());

    // The matcher, with the sample applied (so it owns partitions and has lag to report).
    let today = continuity_domain::london_date(now());
    let sample = sample::sample(today);
    let producer = env.kafka.producer().unwrap();
    produce(&producer, &env.kafka, &messages(&sample.events))
        .await
        .unwrap();
    let matcher = start(&env, "m1", &clock);
    until_all_applied(&env.pool, &sample.events, 60).await;
    let port = matcher.http;
    eventually(60, "the matcher's lag reported", || async move {
        get_body(port, "/metrics")
            .await
            .contains("continuity_matcher_consumer_lag{")
    })
    .await;
    let body = get_body(matcher.http, "/metrics").await;
    let mut names = exported(&body);
    // Zero from start: a labelled series an alert watches, before anything happened to it.
    let releases = env.kafka.topic(Topic::Releases);
    assert!(
        body.contains(&format!(
            "continuity_matcher_dead_letters_total{{kind=\"undecodable\",topic=\"{releases}\"}} 0"
        )),
        "{body}"
    );
    assert!(body.contains("continuity_matcher_batch_retries_total{reason=\"database\"} 0"));

    // Ingest, with one source, then a request with no valid token and one its role may not send.
    let port = free_port();
    let settings = continuity_ingest::Settings {
        connections: Connections {
            database: DatabaseSettings::new(env.db_url.clone(), 2),
            kafka: env.kafka.clone(),
        },
        hash_secret: HashSecret::new(SECRET).unwrap(),
        http_addr: ([127, 0, 0, 1], port).into(),
        sources: vec![SourceConfig {
            name: "provider-1".into(),
            organisation: "PRV001".into(),
            role: Role::TreatmentProvider,
            token_sha256: token_hash("provider-token"),
            requests_per_second: None,
        }],
        clock: ClockSettings {
            fixed_now: Some(now()),
        },
        ..Default::default()
    };
    let ingest = Arc::new(
        continuity_ingest::Ingest::new(&settings, settings.clock.clock())
            .await
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .unwrap();
    let served = tokio::spawn(continuity_ingest::serve(
        ingest,
        listener,
        std::future::pending(),
    ));
    let body = get_body(port, "/metrics").await;
    assert!(body.contains(
        "continuity_ingest_requests_refused_total{source=\"unauthenticated\",status=\"401\"} 0"
    ));
    assert!(body.contains(
        "continuity_ingest_rows_total{endpoint=\"events/releases\",result=\"rejected\"} 0"
    ));
    let answer = request(
        port,
        "POST",
        "/v1/events/releases",
        &[("Authorization", "Bearer wrong")],
        b"{}",
    )
    .await;
    assert_eq!(answer.status, 401);
    let answer = request(
        port,
        "POST",
        "/v1/hmpps/events",
        &[("Authorization", "Bearer provider-token")],
        b"{}",
    )
    .await;
    assert_eq!(answer.status, 403);
    let body = get_body(port, "/metrics").await;
    assert!(body.contains(
        "continuity_ingest_requests_refused_total{source=\"unauthenticated\",status=\"401\"} 1"
    ));
    assert!(body.contains(
        "continuity_ingest_requests_refused_total{source=\"provider-1\",status=\"403\"} 1"
    ));
    names.extend(exported(&body));
    served.abort();

    // The reporter, after a weekly run.
    let dir = std::env::temp_dir().join(format!("reports-{}", uuid::Uuid::new_v4().simple()));
    let reporter = continuity_reporter::Reporter::connect(continuity_reporter::Settings {
        connections: Connections {
            database: DatabaseSettings::new(env.db_url.clone(), 2),
            kafka: env.kafka.clone(),
        },
        reports_dir: dir.clone(),
        clock: ClockSettings {
            fixed_now: Some(now()),
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let week = continuity_domain::CohortPeriod::iso_week(today - chrono::Duration::days(7));
    reporter.run(week, Some(now())).await.unwrap();
    let gathered = reporter.metrics.registry.gather();
    let mut text = String::new();
    prometheus::TextEncoder::new()
        .encode_utf8(&gathered, &mut text)
        .unwrap();
    names.extend(exported(&text));

    // The worklist: its metrics exist, zeroed, from start.
    let worklist = continuity_worklist::metrics::Metrics::new().unwrap();
    let mut text = String::new();
    prometheus::TextEncoder::new()
        .encode_utf8(&worklist.registry.gather(), &mut text)
        .unwrap();
    assert!(text.contains("continuity_worklist_webhook_attempts_total{outcome=\"gone\"} 0"));
    names.extend(exported(&text));

    let named: BTreeSet<String> = metric_names(RULES)
        .into_iter()
        .chain(metric_names(DASHBOARD))
        .collect();
    assert!(named.len() > 15, "{named:?}");
    let missing: Vec<&String> = named.difference(&names).collect();
    assert!(
        missing.is_empty(),
        "named by an alert or a panel but exported by no service: {missing:?}"
    );
    matcher.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    delete_topics(&env.kafka).await;
}
