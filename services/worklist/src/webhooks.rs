//! Webhooks (Standard Webhooks v1): organisations register endpoints; every new, resolved or
//! withdrawn flag on one of their cases is delivered to each of their endpoints, signed, with
//! a thin payload (ids, kind, state and a link; no personal data).
//!
//! - [`enqueue`]: from a flag on `continuity.flags` (read by [`consume_flags`]), one delivery
//!   row per endpoint of the case's organisations, with a `webhook-id` derived from the flag
//!   event and the endpoint, so reading a message twice queues nothing twice and every retry
//!   carries the same id;
//! - [`dispatch`]: claims due deliveries, sends them (15 s to answer 2xx; a redirect is a
//!   failure), and schedules retries on [`Schedule`] with jitter, later if the receiver's
//!   `Retry-After` says so; `410 Gone` disables the endpoint, as do failures for longer than
//!   `disable_after`; every attempt is logged for the organisation to see;
//! - [`watch_lag`] and [`held`]: nothing is dispatched while the matcher is more than
//!   `webhook_hold_lag` source messages behind. Reading a backlog, it raises flags that the
//!   treatment starts it has not yet read resolve seconds later; [`enqueue`] withholds a flag
//!   that settles before its raised delivery was attempted, and counts both deliveries
//!   (`continuity_worklist_webhook_deliveries_withheld_total`), so nobody is paged for it.
//!
//! Signing is the `standardwebhooks` crate's (the specification's reference implementation);
//! delivery, queue and retries are ours.

use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, Utc};
use continuity_schema::wire::{self, EngagementFlag};
use continuity_schema::AvroRecord;
use continuity_stream::{KafkaSettings, Topic};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::Message;
use sqlx::PgPool;
use uuid::Uuid;

/// Namespace of message ids (UUID v5 of the flag event and the endpoint).
const MESSAGE_NAMESPACE: Uuid = Uuid::from_u128(0x7765_6268_6f6f_6b2d_6d65_7373_6167_6573);

/// Deliveries claimed per pass.
const BATCH: i64 = 32;

/// How often the worklist measures the matcher's lag.
pub const LAG_INTERVAL: Duration = Duration::from_secs(2);

/// How long a claimed delivery is held before another pass may try it (longer than a send).
const CLAIM_SECONDS: i64 = 60;

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10 * 3600);

/// When to try again after each failed attempt: the n-th entry is the wait after the n-th
/// attempt fails; after the last, the delivery is given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule(pub Vec<Duration>);

impl Default for Schedule {
    /// Immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h: eight attempts over
    /// about 28 hours.
    fn default() -> Self {
        Schedule(
            [5, 300, 1800, 7200, 18000, 36000, 36000]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        )
    }
}

impl Schedule {
    /// The wait after failed attempt number `attempts` (1-based), with up to 10% jitter from
    /// `jitter` in [0, 1), at least `retry_after`; `None` when no attempt is left.
    pub fn next(
        &self,
        attempts: u32,
        jitter: f64,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let base = *self.0.get(attempts.checked_sub(1)? as usize)?;
        let jittered = base.mul_f64(1.0 + 0.1 * jitter.clamp(0.0, 1.0));
        Some(match retry_after {
            Some(r) => jittered.max(r.min(MAX_RETRY_AFTER)),
            None => jittered,
        })
    }
}

/// The event type of a flag in a state: `flag.raised`, `flag.resolved`, `flag.withdrawn`.
pub fn event_type(state: wire::FlagState) -> &'static str {
    match state {
        wire::FlagState::Raised => "flag.raised",
        wire::FlagState::ResolvedEngaged | wire::FlagState::ResolvedExcluded => "flag.resolved",
        wire::FlagState::Withdrawn => "flag.withdrawn",
    }
}

fn kind_code(kind: wire::FlagKind) -> &'static str {
    match kind {
        wire::FlagKind::AtRisk => "AT_RISK",
        wire::FlagKind::Overdue => "OVERDUE",
        wire::FlagKind::Other => "OTHER",
    }
}

/// A new endpoint's signing secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Whether `url` may be an endpoint: HTTPS, or HTTP to this machine (development only).
pub fn check_url(url: &str) -> Result<(), &'static str> {
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|_| "Enter a full web address, like https://example.org/hooks")?;
    let local = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match parsed.scheme() {
        "https" if parsed.host_str().is_some() => Ok(()),
        "http" if local => Ok(()),
        _ => Err("The address must start with https:// (webhooks carry no personal data, but their links and signatures travel only encrypted)"),
    }
}

/// Register an endpoint for `organisation`; returns its id and secret (shown once).
pub async fn register(
    pool: &PgPool,
    organisation: &str,
    url: &str,
    created_by: &str,
) -> Result<(Uuid, String), sqlx::Error> {
    let id = Uuid::now_v7();
    let secret = new_secret();
    sqlx::query(
        "insert into webhook_endpoints (endpoint_id, organisation, url, secret, created_by)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(organisation)
    .bind(url.trim())
    .bind(&secret)
    .bind(created_by)
    .execute(pool)
    .await?;
    Ok((id, secret))
}

/// Disable one of `organisation`'s endpoints; false when it has no such endpoint.
pub async fn disable(
    pool: &PgPool,
    organisation: &str,
    endpoint: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update webhook_endpoints set disabled_at = now(), disabled_reason = 'BY_USER'
         where endpoint_id = $1 and organisation = $2 and disabled_at is null",
    )
    .bind(endpoint)
    .bind(organisation)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An endpoint as its organisation sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Endpoint {
    /// Id.
    pub endpoint_id: Uuid,
    /// Address.
    pub url: String,
    /// Registered.
    pub created_at: DateTime<Utc>,
    /// Failing since.
    pub failing_since: Option<DateTime<Utc>>,
    /// Disabled.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Why.
    pub disabled_reason: Option<String>,
    /// Deliveries waiting.
    pub pending: i64,
}

/// `organisation`'s endpoints.
pub async fn endpoints(pool: &PgPool, organisation: &str) -> Result<Vec<Endpoint>, sqlx::Error> {
    sqlx::query_as(
        "select e.endpoint_id, e.url, e.created_at, e.failing_since, e.disabled_at,
                e.disabled_reason,
                (select count(*) from webhook_deliveries d where d.endpoint_id = e.endpoint_id
                   and d.delivered_at is null and d.gave_up_at is null) as pending
         from webhook_endpoints e where e.organisation = $1 order by e.created_at",
    )
    .bind(organisation)
    .fetch_all(pool)
    .await
}

/// One logged attempt.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Attempt {
    /// The endpoint's address.
    pub url: String,
    /// The `webhook-id`.
    pub message_id: String,
    /// When.
    pub attempted_at: DateTime<Utc>,
    /// The HTTP status, if one came back.
    pub status: Option<i32>,
    /// What went wrong otherwise.
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: i32,
}

/// The last `limit` attempts to `organisation`'s endpoints, newest first.
pub async fn attempts(
    pool: &PgPool,
    organisation: &str,
    limit: i64,
) -> Result<Vec<Attempt>, sqlx::Error> {
    sqlx::query_as(
        "select e.url, a.message_id, a.attempted_at, a.status, a.error, a.duration_ms
         from webhook_attempts a join webhook_endpoints e using (endpoint_id)
         where e.organisation = $1 order by a.attempted_at desc, a.id desc limit $2",
    )
    .bind(organisation)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Deliveries waiting (not delivered, not given up, endpoint active).
pub async fn pending(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from webhook_deliveries d join webhook_endpoints e using (endpoint_id)
         where d.delivered_at is null and d.gave_up_at is null and e.disabled_at is null",
    )
    .fetch_one(pool)
    .await
}

/// What queueing a flag message came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    /// New deliveries.
    pub added: u64,
    /// Deliveries withheld: a settled flag's raised delivery not yet attempted, and the
    /// settling one, per endpoint.
    pub withheld: u64,
}

/// Queue a flag message's deliveries. Flags nobody is told of (`notify` false: known long
/// after they fell due) are not delivered. A flag that settles before its raised delivery to
/// an endpoint was first attempted (typically while webhooks are held during a backlog) is
/// withheld from that endpoint: it was raised and settled before anyone could act on it.
pub async fn enqueue(
    pool: &PgPool,
    flag: &EngagementFlag,
    public_url: &str,
) -> Result<Queued, sqlx::Error> {
    let mut queued = Queued::default();
    if !flag.notify {
        return Ok(queued);
    }
    let Some(occurred) = DateTime::from_timestamp_micros(flag.envelope.occurred_at) else {
        tracing::error!(flag = %flag.flag_id, "a flag message's time is out of range; not delivered");
        return Ok(queued);
    };
    let endpoints: Vec<Uuid> = sqlx::query_scalar(
        "select e.endpoint_id from webhook_endpoints e join cases c
           on e.organisation = c.provider or e.organisation = c.probation_service
         where c.case_id = $1 and e.disabled_at is null",
    )
    .bind(flag.case_id)
    .fetch_all(pool)
    .await?;
    let event_type = event_type(flag.state);
    // `{type, timestamp, data}`: ids, kind, state and a link; no personal data. Built as a
    // JSON value, whose text form cannot fail.
    let body = serde_json::json!({
        "type": event_type,
        "timestamp": occurred.to_rfc3339(),
        "data": {
            "flag_id": flag.flag_id,
            "case_id": flag.case_id,
            "kind": kind_code(flag.kind),
            "at_risk_day": flag.at_risk_day,
            "state": flag.state.code(),
            "link": format!("{}/cases/{}", public_url.trim_end_matches('/'), flag.case_id),
        },
    })
    .to_string();
    for endpoint in endpoints {
        let id = Uuid::new_v5(
            &MESSAGE_NAMESPACE,
            format!("{}:{endpoint}", flag.envelope.event_id).as_bytes(),
        );
        let mut tx = pool.begin().await?;
        // A raised delivery claimed by a dispatcher has a later `next_attempt_at`; once its
        // claim is committed this no longer matches, and the settling message goes out after
        // it.
        let withheld = if flag.state == wire::FlagState::Raised {
            0
        } else {
            sqlx::query(
                "update webhook_deliveries set gave_up_at = now(), withheld = true
                 where flag_id = $1 and endpoint_id = $2 and event_type = 'flag.raised'
                   and delivered_at is null and gave_up_at is null and attempts = 0
                   and next_attempt_at <= now()",
            )
            .bind(flag.flag_id)
            .bind(endpoint)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        };
        let done = sqlx::query(
            "insert into webhook_deliveries
                (message_id, endpoint_id, event_type, payload, next_attempt_at, flag_id,
                 gave_up_at, withheld)
             values ($1, $2, $3, $4, now(), $5, case when $6 then now() end, $6)
             on conflict do nothing",
        )
        .bind(format!("msg_{}", id.simple()))
        .bind(endpoint)
        .bind(event_type)
        .bind(&body)
        .bind(flag.flag_id)
        .bind(withheld > 0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if withheld > 0 {
            queued.withheld += withheld + done.rows_affected();
        } else {
            queued.added += done.rows_affected();
        }
    }
    Ok(queued)
}

/// Whether webhooks are held: while the matcher is more than `threshold` source messages
/// behind, or its lag is not yet known (`None`: a worklist that starts during a backlog must
/// not page for it before its first measurement).
pub fn held(lag: Option<i64>, threshold: i64) -> bool {
    lag.is_none_or(|lag| lag > threshold)
}

/// Every [`LAG_INTERVAL`]: the matcher's lag over every partition of the source topics,
/// published on `lag` and as `continuity_worklist_matcher_lag`. A look-up that fails leaves
/// the last figure (the flags that could be delivered come from the same broker).
pub async fn watch_lag(
    pool: PgPool,
    kafka: KafkaSettings,
    metrics: crate::metrics::Metrics,
    lag: tokio::sync::watch::Sender<Option<i64>>,
) {
    let consumer = match kafka.consumer("continuity-worklist-lag") {
        Ok(c) => std::sync::Arc::new(c),
        Err(e) => {
            tracing::error!(error = %e, "the lag consumer cannot be made; webhooks stay held");
            return std::future::pending().await;
        }
    };
    let topics: Vec<String> = Topic::SOURCES.iter().map(|t| kafka.topic(*t)).collect();
    // The partitions, from the broker's metadata: looked up until found, then once a minute
    // (topics gain partitions rarely), not on every pass.
    let mut partitions: Option<Vec<continuity_store::lag::Partition>> = None;
    let mut passes = 0u32;
    loop {
        if partitions.is_none() || passes % 30 == 0 {
            match continuity_store::lag::partitions_of(consumer.clone(), topics.clone()).await {
                Ok(found) => partitions = Some(found),
                Err(e) => tracing::warn!(error = %e, "the source partitions not looked up"),
            }
        }
        passes = passes.wrapping_add(1);
        let Some(known) = partitions.clone() else {
            tokio::time::sleep(LAG_INTERVAL).await;
            continue;
        };
        match continuity_store::lag::lag(&pool, consumer.clone(), known).await {
            Ok(lags) => {
                let total = lags.iter().map(|(_, n)| n).sum::<i64>();
                metrics.matcher_lag.set(total);
                lag.send_replace(Some(total));
            }
            Err(e) => tracing::warn!(error = %e, "the matcher's lag not measured"),
        }
        tokio::time::sleep(LAG_INTERVAL).await;
    }
}

/// Read `continuity.flags` (group `continuity-worklist-webhooks`) and queue each flag's
/// deliveries, committing a message's offset only once its deliveries are stored. Runs until
/// the process stops; a database failure is retried, never skipped.
pub async fn consume_flags(
    pool: PgPool,
    kafka: KafkaSettings,
    public_url: String,
    metrics: crate::metrics::Metrics,
) {
    let consumer: StreamConsumer = match kafka.consumer("continuity-worklist-webhooks") {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the flags consumer cannot be made; webhooks are not delivered");
            return std::future::pending().await;
        }
    };
    if let Err(e) = consumer.subscribe(&[&kafka.topic(Topic::Flags)]) {
        tracing::error!(error = %e, "cannot subscribe to the flags topic; webhooks are not delivered");
        return std::future::pending().await;
    }
    loop {
        let message = match consumer.recv().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "reading the flags topic failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let flag = match message.payload().map(EngagementFlag::from_message) {
            Some(Ok(flag)) => Some(flag),
            Some(Err(e)) => {
                tracing::error!(partition = message.partition(), offset = message.offset(), error = %e, "a flags message does not decode; skipped");
                None
            }
            None => None,
        };
        if let Some(flag) = flag {
            let queued = loop {
                match enqueue(&pool, &flag, &public_url).await {
                    Ok(q) => break q,
                    Err(e) => {
                        tracing::warn!(error = %e, "queueing webhook deliveries failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            };
            metrics.webhooks_withheld.inc_by(queued.withheld);
        }
        if let Err(e) = consumer.commit_message(&message, CommitMode::Async) {
            tracing::warn!(error = %e, "committing the flags offset failed; the message may be read again (its deliveries are not queued twice)");
        }
    }
}

/// How the dispatcher runs.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// Waits between attempts.
    pub schedule: Schedule,
    /// How long a receiver has to answer.
    pub timeout: Duration,
    /// Failing for longer than this disables an endpoint.
    pub disable_after: chrono::Duration,
}

#[derive(sqlx::FromRow)]
struct Due {
    message_id: String,
    endpoint_id: Uuid,
    payload: String,
    attempts: i32,
    url: String,
    secret: String,
}

/// What one attempt came to.
enum Outcome {
    Delivered(u16),
    Gone,
    Failed {
        status: Option<u16>,
        error: Option<String>,
        retry_after: Option<Duration>,
    },
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

async fn send(http: &reqwest::Client, due: &Due, timeout: Duration) -> Outcome {
    let signer = match standardwebhooks::Webhook::new(&due.secret) {
        Ok(s) => s,
        Err(_) => {
            return Outcome::Failed {
                status: None,
                error: Some("the endpoint's secret is not usable".into()),
                retry_after: None,
            }
        }
    };
    let now = Utc::now().timestamp();
    let signature = match signer.sign(&due.message_id, now, due.payload.as_bytes()) {
        Ok(s) => s,
        Err(_) => {
            return Outcome::Failed {
                status: None,
                error: Some("signing failed".into()),
                retry_after: None,
            }
        }
    };
    let sent = http
        .post(&due.url)
        .timeout(timeout)
        .header("content-type", "application/json")
        .header("webhook-id", &due.message_id)
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", signature)
        .body(due.payload.clone())
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Outcome::Delivered(r.status().as_u16()),
        Ok(r) if r.status() == reqwest::StatusCode::GONE => Outcome::Gone,
        Ok(r) => Outcome::Failed {
            status: Some(r.status().as_u16()),
            error: r
                .status()
                .is_redirection()
                .then(|| "redirects are not followed".into()),
            retry_after: retry_after(r.headers()),
        },
        Err(e) => Outcome::Failed {
            status: None,
            error: Some(if e.is_timeout() {
                format!("no answer within {} s", timeout.as_secs())
            } else if e.is_connect() {
                "could not connect".into()
            } else {
                "the request failed".into()
            }),
            retry_after: None,
        },
    }
}

/// One pass: claim the due deliveries, send them, record what happened. Returns how many
/// were attempted.
pub async fn dispatch(
    pool: &PgPool,
    http: &reqwest::Client,
    settings: &DispatchSettings,
    metrics: &crate::metrics::Metrics,
) -> Result<usize, sqlx::Error> {
    let due: Vec<Due> = sqlx::query_as(
        "with claimed as (
            select d.message_id, d.endpoint_id from webhook_deliveries d
            join webhook_endpoints e using (endpoint_id)
            where d.delivered_at is null and d.gave_up_at is null and e.disabled_at is null
              and d.next_attempt_at <= now()
            order by d.next_attempt_at limit $1
            for update of d skip locked)
         update webhook_deliveries d set next_attempt_at = now() + make_interval(secs => $2)
         from claimed, webhook_endpoints e
         where d.message_id = claimed.message_id and d.endpoint_id = claimed.endpoint_id
           and e.endpoint_id = d.endpoint_id
         returning d.message_id, d.endpoint_id, d.payload, d.attempts, e.url, e.secret",
    )
    .bind(BATCH)
    .bind(CLAIM_SECONDS as f64)
    .fetch_all(pool)
    .await?;
    let sends = due.iter().map(|d| async move {
        let started = Instant::now();
        let outcome = send(http, d, settings.timeout).await;
        (d, outcome, started.elapsed())
    });
    let results = futures_util::future::join_all(sends).await;
    for (d, outcome, took) in &results {
        record(pool, settings, metrics, d, outcome, *took).await?;
    }
    Ok(results.len())
}

async fn record(
    pool: &PgPool,
    settings: &DispatchSettings,
    metrics: &crate::metrics::Metrics,
    d: &Due,
    outcome: &Outcome,
    took: Duration,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let (status, error) = match outcome {
        Outcome::Delivered(s) => (Some(i32::from(*s)), None),
        Outcome::Gone => (
            Some(410),
            Some("the receiver answered 410 Gone: endpoint disabled".to_owned()),
        ),
        Outcome::Failed { status, error, .. } => (status.map(i32::from), error.clone()),
    };
    sqlx::query(
        "insert into webhook_attempts (message_id, endpoint_id, status, error, duration_ms)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(&d.message_id)
    .bind(d.endpoint_id)
    .bind(status)
    .bind(&error)
    .bind(took.as_millis().min(i32::MAX as u128) as i32)
    .execute(&mut *tx)
    .await?;
    let attempts = d.attempts + 1;
    // What the attempt means for the delivery (delivered, given up, or when to try again) and
    // for its endpoint.
    let (code, delivered, wait) = match outcome {
        Outcome::Delivered(_) => ("delivered", true, None),
        Outcome::Gone => ("gone", false, None),
        Outcome::Failed { retry_after, .. } => {
            let wait = settings
                .schedule
                .next(attempts as u32, rand::random::<f64>(), *retry_after);
            (
                if wait.is_some() { "failed" } else { "given_up" },
                false,
                wait,
            )
        }
    };
    metrics.webhook(code);
    sqlx::query(
        "update webhook_deliveries set attempts = $3,
            delivered_at = case when $4 then now() end,
            gave_up_at = case when not $4 and $5 is null then now() end,
            next_attempt_at = now() + make_interval(secs => coalesce($5, 0))
         where message_id = $1 and endpoint_id = $2",
    )
    .bind(&d.message_id)
    .bind(d.endpoint_id)
    .bind(attempts)
    .bind(delivered)
    .bind(wait.map(|w| w.as_secs_f64()))
    .execute(&mut *tx)
    .await?;
    match outcome {
        Outcome::Delivered(_) => {
            sqlx::query("update webhook_endpoints set failing_since = null where endpoint_id = $1")
                .bind(d.endpoint_id)
                .execute(&mut *tx)
                .await?;
        }
        Outcome::Gone => {
            sqlx::query(
                "update webhook_endpoints set disabled_at = now(), disabled_reason = 'GONE'
                 where endpoint_id = $1 and disabled_at is null",
            )
            .bind(d.endpoint_id)
            .execute(&mut *tx)
            .await?;
            tracing::warn!(endpoint = %d.endpoint_id, "a webhook receiver answered 410 Gone: its endpoint is disabled");
        }
        Outcome::Failed { .. } => {
            let disabled: Option<Uuid> = sqlx::query_scalar(
                "update webhook_endpoints set failing_since = coalesce(failing_since, now()),
                    disabled_at = case when failing_since < now() - make_interval(secs => $2)
                                       then now() end,
                    disabled_reason = case when failing_since < now() - make_interval(secs => $2)
                                           then 'FAILING' end
                 where endpoint_id = $1 and disabled_at is null
                 returning case when disabled_at is not null then endpoint_id end",
            )
            .bind(d.endpoint_id)
            .bind(settings.disable_after.num_seconds() as f64)
            .fetch_optional(&mut *tx)
            .await?
            .flatten();
            if disabled.is_some() {
                tracing::warn!(endpoint = %d.endpoint_id, "a webhook endpoint has failed for longer than allowed: disabled");
            }
        }
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_schedule_with_jitter_and_honour_retry_after() {
        let s = Schedule::default();
        assert_eq!(s.next(1, 0.0, None), Some(Duration::from_secs(5)));
        assert_eq!(s.next(1, 0.999, None).unwrap().as_millis(), 5_499);
        assert_eq!(s.next(2, 0.0, None), Some(Duration::from_secs(300)));
        assert_eq!(
            s.next(2, 0.0, Some(Duration::from_secs(900))),
            Some(Duration::from_secs(900))
        );
        assert_eq!(
            s.next(2, 0.0, Some(Duration::from_secs(1))),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            s.next(3, 0.0, Some(Duration::from_secs(86_400))),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(s.next(7, 0.0, None), Some(Duration::from_secs(36_000)));
        assert_eq!(s.next(8, 0.0, None), None, "eight attempts in all");
        assert_eq!(s.next(0, 0.0, None), None);
    }

    #[test]
    fn endpoints_are_https_or_this_machine() {
        assert!(check_url("https://hooks.example.org/continuity").is_ok());
        assert!(check_url("http://localhost:8080/hook").is_ok());
        assert!(check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_url("http://hooks.example.org/").is_err());
        assert!(check_url("ftp://hooks.example.org/").is_err());
        assert!(check_url("not a url").is_err());
    }

    #[test]
    fn a_secret_signs_and_a_bare_version_prefix_is_not_a_signature() {
        let secret = new_secret();
        assert!(secret.starts_with("whsec_"));
        let hook = standardwebhooks::Webhook::new(&secret).unwrap();
        let now = Utc::now().timestamp();
        let body = br#"{"type":"flag.raised"}"#;
        let sig = hook.sign("msg_1", now, body).unwrap();
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("webhook-id", "msg_1".parse().unwrap());
        headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
        headers.insert("webhook-signature", sig.parse().unwrap());
        assert!(hook.verify(body, &headers).is_ok());
        headers.insert("webhook-signature", "v1,".parse().unwrap());
        assert!(hook.verify(body, &headers).is_err());
        headers.insert("webhook-signature", "v1".parse().unwrap());
        assert!(hook.verify(body, &headers).is_err());
    }
}
