//! The case read model: what readers other than the matcher know of cases and their flags,
//! as typed rows. The matcher is the only writer of `cases` and `flags` (in
//! `services/matcher/src/store.rs`, inside its batch transactions); the reporter, the CLI and
//! the worklist read them through here, so outside the matcher the columns and their codes are
//! known in this module alone.
//!
//! Readers query the tables rather than consume the `case-events` topic: they need the current
//! state of every case at any moment (a reporter that restarts mid-week must not replay the
//! topic from the beginning to rebuild it), consistent with the flags in the same snapshot, and
//! scoped by organisation in SQL. `case-events` is the contract for consumers outside the
//! deployment, which have no access to the database.

use continuity_domain::{CaseFacts, FlagKind, FlagState, Outcome};
use sqlx::PgPool;

/// Every case's facts for the measure. Rows with a code this build does not know (written by
/// a newer matcher) are counted in `unknown`, not guessed.
#[derive(Debug, Default)]
pub struct Facts {
    /// One per case.
    pub cases: Vec<CaseFacts>,
    /// Rows left out because their outcome is unknown here.
    pub unknown: usize,
}

/// Every case, with what the measure needs of it.
pub async fn facts(pool: &PgPool) -> Result<Facts, sqlx::Error> {
    type Row = (
        chrono::NaiveDate,
        String,
        Option<String>,
        Option<String>,
        String,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select release_date, local_authority, prison, provider, outcome, exclusion_reason
         from cases",
    )
    .fetch_all(pool)
    .await?;
    let mut facts = Facts {
        cases: Vec::with_capacity(rows.len()),
        unknown: 0,
    };
    for (release_date, local_authority, prison, provider, outcome, exclusion) in rows {
        match Outcome::from_codes(&outcome, exclusion.as_deref()) {
            Some(outcome) => facts.cases.push(CaseFacts {
                release_date,
                local_authority,
                prison,
                provider,
                outcome,
            }),
            None => facts.unknown += 1,
        }
    }
    Ok(facts)
}

/// How many cases have each outcome, per local authority. Rows with an unknown code are left
/// out, as in [`facts`].
pub async fn outcomes_by_area(pool: &PgPool) -> Result<Vec<(String, Outcome, u64)>, sqlx::Error> {
    let rows: Vec<(String, String, Option<String>, i64)> = sqlx::query_as(
        "select local_authority, outcome, exclusion_reason, count(*)
         from cases group by 1, 2, 3 order by 1, 2, 3",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(area, outcome, exclusion, n)| {
            let outcome = Outcome::from_codes(&outcome, exclusion.as_deref())?;
            Some((area, outcome, u64::try_from(n).ok()?))
        })
        .collect())
}

/// The number of cases whose window is open (a whole-table count).
pub async fn open_cases(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from cases where outcome = $1")
        .bind(Outcome::Open.code())
        .fetch_one(pool)
        .await
}

/// How many flags there are of each kind in each state.
pub async fn flag_counts(pool: &PgPool) -> Result<Vec<(FlagKind, FlagState, u64)>, sqlx::Error> {
    let rows: Vec<(String, Option<i32>, String, i64)> = sqlx::query_as(
        "select kind, at_risk_day, state, count(*) from flags group by 1, 2, 3 order by 1, 2, 3",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(kind, day, state, n)| {
            let day = day.and_then(|d| u32::try_from(d).ok());
            Some((
                FlagKind::from_code(&kind, day)?,
                FlagState::from_code(&state)?,
                u64::try_from(n).ok()?,
            ))
        })
        .collect())
}

/// The number of ambiguous matches awaiting a person's review.
pub async fn match_reviews(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from match_reviews")
        .fetch_one(pool)
        .await
}
