//! What the person running the pipeline locally sees at the end: cases by outcome, the
//! continuity rate per local authority against the 75% ambition, the flags raised and
//! resolved, from the matcher's tables. Codes and counts only: no personal data.

use std::fmt::Write as _;
use std::time::Duration;

use sqlx::PgPool;

/// Wait until the matcher has consumed at least `messages` source messages (its stored
/// offsets), or `timeout` passes. Returns how many it has consumed.
pub async fn wait_for_matcher(pool: &PgPool, messages: i64, timeout: Duration) -> i64 {
    let until = tokio::time::Instant::now() + timeout;
    loop {
        let consumed: i64 = sqlx::query_scalar::<_, Option<i64>>(
            "select sum(next_offset)::bigint from consumer_offsets",
        )
        .fetch_one(pool)
        .await
        .ok()
        .flatten()
        .unwrap_or(0);
        let backlog: i64 =
            sqlx::query_scalar("select coalesce(sum(messages), 0)::bigint from outbox")
                .fetch_one(pool)
                .await
                .unwrap_or(1);
        if (consumed >= messages && backlog == 0) || tokio::time::Instant::now() > until {
            return consumed;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The summary table.
pub async fn summary(pool: &PgPool) -> anyhow::Result<String> {
    let mut out = String::new();
    let by_outcome: Vec<(String, Option<String>, i64)> = sqlx::query_as(
        "select outcome, exclusion_reason, count(*) from cases group by 1, 2 order by 1, 2",
    )
    .fetch_all(pool)
    .await?;
    writeln!(out, "cases by outcome")?;
    for (outcome, reason, n) in &by_outcome {
        let label = match reason {
            Some(r) => format!("{outcome} ({r})"),
            None => outcome.clone(),
        };
        writeln!(out, "  {label:<42} {n:>6}")?;
    }
    let rates: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "select local_authority,
                count(*) filter (where outcome in ('ENGAGED', 'NOT_ENGAGED')),
                count(*) filter (where outcome = 'ENGAGED'),
                count(*) filter (where outcome = 'OPEN')
         from cases group by 1 order by 2 desc, 1 limit 12",
    )
    .fetch_all(pool)
    .await?;
    writeln!(
        out,
        "\ncontinuity rate by local authority (engaged within 21 days / finalised; ambition 75%)"
    )?;
    writeln!(
        out,
        "  {:<10} {:>9} {:>8} {:>6} {:>19} {:>6}",
        "area", "finalised", "engaged", "rate", "95% interval", "open"
    )?;
    for (la, finalised, engaged, open) in &rates {
        let rate = continuity_domain::ContinuityRate::new(*engaged as u64, *finalised as u64);
        let (r, ci) = match rate {
            Some(r) => (
                format!("{:.0}%", r.rate * 100.0),
                format!("{:.0}-{:.0}%", r.lower * 100.0, r.upper * 100.0),
            ),
            None => ("-".into(), "-".into()),
        };
        writeln!(
            out,
            "  {la:<10} {finalised:>9} {engaged:>8} {r:>6} {ci:>19} {open:>6}"
        )?;
    }
    let flags: Vec<(String, String, i64)> =
        sqlx::query_as("select kind, state, count(*) from flags group by 1, 2 order by 1, 2")
            .fetch_all(pool)
            .await?;
    writeln!(out, "\ncaseworker flags")?;
    for (kind, state, n) in &flags {
        writeln!(out, "  {:<42} {n:>6}", format!("{kind} {state}"))?;
    }
    let reviews: i64 = sqlx::query_scalar("select count(*) from match_reviews")
        .fetch_one(pool)
        .await?;
    writeln!(out, "\nambiguous matches awaiting review: {reviews}")?;
    Ok(out)
}
