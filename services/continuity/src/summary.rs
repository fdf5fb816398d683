//! What the person running the pipeline locally sees at the end: cases by outcome, the
//! continuity rate per local authority against the 75% ambition, the flags raised and
//! resolved, from the case read model (`continuity_store::cases`). Codes and counts only: no
//! personal data.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use continuity_domain::{FlagKind, Outcome, Tally, AMBITION};
use continuity_store::cases;
use sqlx::PgPool;

/// Wait until the matcher has consumed at least `messages` source messages (its stored
/// offsets) and relayed its outbox, or `timeout` passes. Returns how many it has consumed.
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

/// An outcome as the summary prints it: its code, and the exclusion reason's.
fn outcome_label(outcome: Outcome) -> String {
    match outcome.exclusion_code() {
        Some(reason) => format!("{} ({reason})", outcome.code()),
        None => outcome.code().to_owned(),
    }
}

/// The summary table.
pub async fn summary(pool: &PgPool) -> anyhow::Result<String> {
    let mut out = String::new();
    let by_area = cases::outcomes_by_area(pool).await?;
    let mut by_outcome: BTreeMap<String, u64> = BTreeMap::new();
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    for (area, outcome, n) in &by_area {
        *by_outcome.entry(outcome_label(*outcome)).or_default() += n;
        tallies
            .entry(area.as_str())
            .or_default()
            .add_count(*outcome, *n);
    }
    writeln!(out, "cases by outcome")?;
    for (label, n) in &by_outcome {
        writeln!(out, "  {label:<42} {n:>6}")?;
    }
    let mut areas: Vec<(&str, Tally)> = tallies.into_iter().collect();
    areas.sort_by(|a, b| b.1.finalised.cmp(&a.1.finalised).then(a.0.cmp(b.0)));
    writeln!(
        out,
        "\ncontinuity rate by local authority (engaged within 21 days / finalised; ambition {:.0}%)",
        AMBITION * 100.0
    )?;
    writeln!(
        out,
        "  {:<10} {:>9} {:>8} {:>6} {:>19} {:>6}",
        "area", "finalised", "engaged", "rate", "95% interval", "open"
    )?;
    for (la, tally) in areas.iter().take(12) {
        let (r, ci) = match tally.rate() {
            Some(r) => (
                format!("{:.0}%", r.rate * 100.0),
                format!("{:.0}-{:.0}%", r.lower * 100.0, r.upper * 100.0),
            ),
            None => ("-".into(), "-".into()),
        };
        writeln!(
            out,
            "  {la:<10} {:>9} {:>8} {r:>6} {ci:>19} {:>6}",
            tally.finalised, tally.engaged, tally.open
        )?;
    }
    writeln!(out, "\ncaseworker flags")?;
    for (kind, state, n) in cases::flag_counts(pool).await? {
        let kind = match kind {
            FlagKind::AtRisk(day) => format!("AT_RISK day {day}"),
            FlagKind::Overdue => "OVERDUE".to_owned(),
        };
        writeln!(out, "  {:<42} {n:>6}", format!("{kind} {}", state.code()))?;
    }
    let reviews = cases::match_reviews(pool).await?;
    writeln!(out, "\nambiguous matches awaiting review: {reviews}")?;
    Ok(out)
}
