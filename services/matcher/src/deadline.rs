//! The deadline clock: time alone moves cases on. `cases.next_due_at` is the next instant at
//! which a case changes without new events (a warning falls due, the window closes); each pass
//! re-assesses the components with a case due at the clock's `now` and writes what changed, as
//! a batch would. Several instances share the work (`skip locked`).
//!
//! After each pass the clock sleeps until the earliest `next_due_at` (so a flag is raised at
//! its due instant, not up to a poll later), or for the poll interval if that is sooner: the
//! poll is the safety net for cases written meanwhile with an earlier due time, another
//! instance's, and a clock that jumped.
//!
//! On a clock that runs in real time it wakes [`LOOK_AHEAD`] before a due instant instead,
//! and does that instant's pass early: it locks the components falling due, re-assesses them
//! as at the due instant (the rules take time as an argument) and writes the result, then
//! holds the transaction open and commits it at the instant. Thousands of cases falling due
//! at one midnight are then published within the relay's delay of it, not after the whole
//! pass. Until the commit nobody sees the new state, and an event for one of those people
//! waits on the component's lock and applies on top of it, as it would a moment after the
//! instant. If the clock has not reached the instant within twice the look-ahead (it jumped
//! back), the transaction is rolled back and the ordinary pass does the work.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use continuity_runtime::{repeatedly, Clock};
use sqlx::PgPool;
use tokio::sync::watch;

use crate::apply::{Applier, ApplyError};
use crate::store;
use continuity_store::outbox::Outbox;

/// One pass of the deadline clock at `now`: re-assess up to `limit` components with a case
/// whose next due time has passed. Safe with several instances (`skip locked`). Returns the
/// number of components re-assessed.
pub async fn deadline_pass(
    applier: &Applier,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<usize, ApplyError> {
    let mut tx = applier.pool.begin().await?;
    let n = reassess_due(applier, &mut tx, now, limit).await?;
    if n > 0 {
        tx.commit().await?;
    }
    Ok(n)
}

/// In `tx`, lock up to `limit` components with a case due by `at`, re-assess them as at
/// `at` and write the result and its outbox row. Returns the number of components.
async fn reassess_due(
    applier: &Applier,
    tx: &mut sqlx::PgConnection,
    at: DateTime<Utc>,
    limit: i64,
) -> Result<usize, ApplyError> {
    let components = store::lock_due(tx, at, limit).await?;
    if components.is_empty() {
        return Ok(0);
    }
    let mut outbox = Outbox::default();
    applier.reassess(tx, &components, at, &mut outbox).await?;
    outbox.write(tx).await?;
    Ok(components.len())
}

/// Re-assess, ahead of `due`, up to `limit` components falling due by `due`, as at `due`,
/// and commit at `due` on `clock`. Returns the components committed: 0 when none were due
/// or free, or when the clock did not reach `due` in time (rolled back).
pub async fn pass_ahead(
    applier: &Applier,
    clock: &dyn Clock,
    due: DateTime<Utc>,
    limit: i64,
) -> Result<usize, ApplyError> {
    let mut tx = applier.pool.begin().await?;
    let n = reassess_due(applier, &mut tx, due, limit).await?;
    if n == 0 {
        return Ok(0);
    }
    let give_up = std::time::Instant::now() + 2 * LOOK_AHEAD;
    while let Ok(left) = (due - clock.now()).to_std() {
        if left.is_zero() {
            break;
        }
        if std::time::Instant::now() + left > give_up {
            tx.rollback().await?;
            return Ok(0);
        }
        tokio::time::sleep(left).await;
    }
    tx.commit().await?;
    Ok(n)
}

/// How long before a due instant its pass starts on a running clock: time to re-assess
/// [`AHEAD_LIMIT`] components on a busy machine.
pub const LOOK_AHEAD: Duration = Duration::from_secs(3);

/// Components re-assessed ahead of one instant, in one transaction; any more are done by
/// the ordinary passes after it.
const AHEAD_LIMIT: i64 = 10_000;

/// How often the open cases are counted for the gauge (a whole-table count, not a key
/// look-up, so not at every pass).
const COUNT_EVERY: Duration = Duration::from_secs(30);

/// Run the deadline clock at each next due instant and at least every `every` (a pass is one
/// index look-up when nothing is due), and count the open cases on `pool` every
/// [`COUNT_EVERY`].
pub(crate) async fn deadline_loop(
    applier: Applier,
    pool: PgPool,
    clock: Arc<dyn Clock>,
    every: Duration,
    stop: watch::Receiver<bool>,
) {
    let counted = std::sync::Mutex::new(None::<std::time::Instant>);
    repeatedly(stop, || async {
        let started = std::time::Instant::now();
        let result = loop {
            match deadline_pass(&applier, clock.now(), PASS_LIMIT).await {
                Ok(n) if n as i64 == PASS_LIMIT => continue,
                other => break other,
            }
        };
        // A pass with nothing due wrote nothing, and says nothing about writes.
        if !matches!(result, Ok(0)) {
            applier.note_write(&result);
        }
        let label = match &result {
            Ok(_) => "ok",
            Err(e) => {
                tracing::warn!(error = %e, "deadline pass failed; retrying next tick");
                "error"
            }
        };
        applier
            .metrics
            .deadline_seconds
            .with_label_values(&[label])
            .observe(started.elapsed().as_secs_f64());
        let due = {
            let mut last = counted.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.is_none_or(|t| t.elapsed() >= COUNT_EVERY);
            if due {
                *last = Some(std::time::Instant::now());
            }
            due
        };
        if due {
            match continuity_store::cases::open_cases(&pool).await {
                Ok(open) => applier.metrics.open_cases.set(open),
                Err(e) => tracing::warn!(error = %e, "could not count the open cases"),
            }
        }
        let next = match store::next_due(&pool).await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the next due time; polling");
                return every;
            }
        };
        let now = clock.now();
        let lead = chrono::Duration::from_std(LOOK_AHEAD).unwrap_or_default();
        match next {
            Some(due) if clock.runs() && due > now && due - now <= lead => {
                let started = std::time::Instant::now();
                match pass_ahead(&applier, clock.as_ref(), due, AHEAD_LIMIT).await {
                    Ok(0) => {}
                    Ok(_) => {
                        applier
                            .metrics
                            .deadline_seconds
                            .with_label_values(&["ok"])
                            .observe(started.elapsed().as_secs_f64());
                        return Duration::ZERO;
                    }
                    Err(e) => tracing::warn!(error = %e, "deadline pass ahead failed; passing at the instant"),
                }
                // Another instance holds them, or the clock jumped: the ordinary pass at the
                // instant.
                until_due(Some(due), clock.now(), every)
            }
            Some(due) if clock.runs() => until_due(Some(due - lead), now, every),
            next => until_due(next, now, every),
        }
    })
    .await;
}

/// How long to sleep at `now` before the next pass: until `next` is due, at most `every`.
fn until_due(next: Option<DateTime<Utc>>, now: DateTime<Utc>, every: Duration) -> Duration {
    next.map_or(every, |next| {
        (next - now).to_std().unwrap_or(Duration::ZERO).min(every)
    })
}

/// Components re-assessed per transaction; a full pass is followed by another at once.
const PASS_LIMIT: i64 = 500;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_sleeps_until_the_next_due_instant_or_the_poll() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let poll = Duration::from_secs(1);
        let ms = chrono::Duration::milliseconds;
        assert_eq!(until_due(None, now, poll), poll);
        assert_eq!(
            until_due(Some(now + ms(250)), now, poll),
            Duration::from_millis(250)
        );
        assert_eq!(until_due(Some(now + ms(5_000)), now, poll), poll);
        assert_eq!(until_due(Some(now - ms(5)), now, poll), Duration::ZERO);
    }
}
