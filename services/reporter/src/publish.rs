//! Publishing a report's figures on the performance topic: every published (disclosure
//! controlled) cell and the internal figure of every cell of the report's periods. A cell whose
//! figures changed after it was final is published as a revision (status `REVISION`, revision
//! n + 1), never silently; unchanged cells repeat their last message, ids included. What was
//! published is recorded in `published_figures` (the reporter's own table) once the broker
//! has acknowledged it.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use continuity_domain::{
    published_cells, Breakdown, CellKey, CohortPeriod, FigureStatus, Published, PublishedCells,
    Tally,
};
use continuity_schema::{performance_message, Figure, PerformanceMessage, CONTENT_SCHEME};
use continuity_stream::{send_all, KafkaSettings, Outgoing, Topic};
use sqlx::PgPool;

use crate::report::Report;
use crate::SOURCE;

/// The status a figure is published and stored with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PublishedStatus {
    /// Can still change.
    Provisional,
    /// Settled, as first published.
    Final,
    /// Settled, and changed since it was first published as final.
    Revision,
}

impl PublishedStatus {
    /// The code in `published_figures.status` and on the topic.
    fn code(self) -> &'static str {
        match self {
            PublishedStatus::Provisional => "PROVISIONAL",
            PublishedStatus::Final => "FINAL",
            PublishedStatus::Revision => "REVISION",
        }
    }
}

/// What `published_figures` holds for a cell.
struct Stored {
    content: uuid::Uuid,
    status: String,
    revision: i32,
    scheme: i16,
}

/// The revision to publish a cell's figure with, given what was last published for it.
fn revision(stored: Option<&Stored>, message: &PerformanceMessage, status: FigureStatus) -> i32 {
    match stored {
        None => 0,
        Some(s) if s.content == message.content => s.revision,
        // Hashed the way an older build did: not comparable, so taken as unchanged (its
        // revision stands) and stored the new way.
        Some(s) if s.scheme < CONTENT_SCHEME => s.revision,
        Some(s)
            if s.status != PublishedStatus::Provisional.code() && status == FigureStatus::Final =>
        {
            s.revision + 1
        }
        Some(s) => s.revision,
    }
}

/// Publish the report's figures; returns how many messages were published.
pub async fn publish(
    pool: &PgPool,
    kafka: &KafkaSettings,
    report: &Report,
    cells: &BTreeMap<CellKey, Tally>,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let published = published_periods(report, cells);
    let first: Vec<(Figure<'_>, PerformanceMessage)> = figures(report, cells, &published)
        .into_iter()
        .map(|f| performance_message(&f, now, SOURCE).map(|m| (f, m)))
        .collect::<Result<_, _>>()?;
    let ids: Vec<uuid::Uuid> = first.iter().map(|(_, m)| m.cohort_id).collect();
    let stored = stored(pool, &ids).await?;
    let mut messages = Vec::with_capacity(first.len());
    for (mut figure, message) in first {
        let revision = revision(stored.get(&message.cohort_id), &message, figure.status);
        let status = match (figure.status, revision) {
            (FigureStatus::Provisional, _) => PublishedStatus::Provisional,
            (FigureStatus::Final, 0) => PublishedStatus::Final,
            (FigureStatus::Final, _) => PublishedStatus::Revision,
        };
        let message = if revision == 0 {
            message
        } else {
            figure.revision = revision as u32;
            performance_message(&figure, now, SOURCE)?
        };
        messages.push((message, status, revision));
    }
    let producer = kafka.producer()?;
    let topic = kafka.topic(Topic::Performance);
    for chunk in messages.chunks(10_000) {
        let batch: Vec<Outgoing<'_>> = chunk
            .iter()
            .map(|(m, _, _)| {
                Outgoing::new(
                    topic.as_str(),
                    Some(m.cohort_id.as_bytes().as_slice()),
                    m.message.as_slice(),
                )
            })
            .collect();
        send_all(&producer, batch).await?;
    }
    record(pool, &messages, now).await?;
    Ok(messages.len())
}

/// What may be published of the report's periods other than its weeks (and the period before
/// each), per breakdown: `published_cells` answers only what a breakdown publishes (months and
/// rolling 12 months at every month for England and the regions; years, quarters and rolling
/// 12 months at quarter ends for every breakdown). It is decided per period, so a figure is the
/// same in every report.
fn published_periods(
    report: &Report,
    cells: &BTreeMap<CellKey, Tally>,
) -> Vec<(Breakdown, PublishedCells)> {
    let periods: Vec<CohortPeriod> = report.periods.iter().map(|(p, _)| *p).collect();
    let asked: Vec<CohortPeriod> = periods.iter().flat_map(|p| [*p, p.previous()]).collect();
    Breakdown::ALL
        .iter()
        .map(|b| {
            let published = published_cells(cells, &report.regions, *b, &asked, report.as_at);
            (*b, published)
        })
        .collect()
}

/// One figure per cell (published or internal, period, breakdown, area), in that order: the
/// report's weeks, then its longer periods as `published` allows.
fn figures<'a>(
    report: &'a Report,
    cells: &'a BTreeMap<CellKey, Tally>,
    published: &'a [(Breakdown, PublishedCells)],
) -> Vec<Figure<'a>> {
    let mut figures = Figures {
        cells,
        figures: BTreeMap::new(),
    };
    // Weeks: the report's grids.
    for (grid, before) in report.grids.iter().zip(&report.previous) {
        // England's own grid has one area, which is also its total row: the same cell twice.
        let england = continuity_domain::performance::ENGLAND;
        for (area, row) in grid.rows_with_total(england) {
            // The week before the first: the last of the 52 before, published the same way.
            let last_before = before
                .rows_with_total(england)
                .find(|(a, _)| *a == area)
                .and_then(|(_, r)| r.get(before.weeks.len().saturating_sub(1)))
                .copied();
            for (i, week) in report.cohorts.iter().enumerate() {
                let previous = if i > 0 { Some(row[i - 1]) } else { last_before };
                let cell = (*week, grid.breakdown, area);
                figures.add(cell, row[i], previous, report.status[i]);
            }
        }
    }
    // Months, rolling 12 months and financial years.
    for (breakdown, published) in published {
        for (period, status) in &report.periods {
            let areas = published
                .range((*period, String::new())..)
                .take_while(|((p, _), _)| p == period);
            for ((_, area), counts) in areas {
                let previous = published
                    .get(&(period.previous(), area.to_owned()))
                    .copied();
                figures.add((*period, *breakdown, area), *counts, previous, *status);
            }
        }
    }
    figures.figures.into_values().collect()
}

/// The figures being gathered, one per cell.
struct Figures<'a> {
    cells: &'a BTreeMap<CellKey, Tally>,
    figures: BTreeMap<(bool, CohortPeriod, Breakdown, String), Figure<'a>>,
}

impl<'a> Figures<'a> {
    /// A cell's published figure (`counts`, with the period before's `previous`) and, when the
    /// cell has cases, its internal one.
    fn add(
        &mut self,
        (period, breakdown, area): (CohortPeriod, Breakdown, &'a str),
        counts: Published,
        previous: Option<Published>,
        status: FigureStatus,
    ) {
        let figure = |published, counts, tally, previous| Figure {
            period,
            breakdown,
            area,
            published,
            counts,
            tally,
            status,
            revision: 0,
            previous,
        };
        self.insert(figure(true, counts, None, previous));
        if let Some(t) = self.cells.get(&(period, breakdown, area.to_owned())) {
            let previous = self
                .cells
                .get(&(period.previous(), breakdown, area.to_owned()))
                .map(internal);
            self.insert(figure(false, internal(t), Some(t), previous));
        }
    }

    fn insert(&mut self, f: Figure<'a>) {
        let key = (f.published, f.period, f.breakdown, f.area.to_owned());
        self.figures.insert(key, f);
    }
}

/// A cell's figures without disclosure control.
fn internal(t: &Tally) -> Published {
    Published {
        engaged: Some(t.engaged),
        finalised: Some(t.finalised),
    }
}

/// When figures were last published, if ever: what the weekly-report gauge starts from after
/// a restart, so the alert on a missed week sees the last run, not nothing.
pub async fn last_published(pool: &PgPool) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("select max(published_at) from published_figures")
        .fetch_one(pool)
        .await
}

/// What was last published for each of `ids`.
async fn stored(
    pool: &PgPool,
    ids: &[uuid::Uuid],
) -> Result<HashMap<uuid::Uuid, Stored>, sqlx::Error> {
    let rows: Vec<(uuid::Uuid, uuid::Uuid, String, i32, i16)> = sqlx::query_as(
        "select cohort_id, content, status, revision, content_scheme
         from published_figures where cohort_id = any($1)",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, content, status, revision, scheme)| {
            (
                id,
                Stored {
                    content,
                    status,
                    revision,
                    scheme,
                },
            )
        })
        .collect())
}

/// Record what was published.
async fn record(
    pool: &PgPool,
    messages: &[(PerformanceMessage, PublishedStatus, i32)],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into published_figures (cohort_id, content, status, revision, published_at,
             content_scheme)
         select id, content, status, revision, $5, $6
         from unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[]) as t(id, content, status, revision)
         on conflict (cohort_id) do update set content = excluded.content,
             status = excluded.status, revision = excluded.revision,
             published_at = excluded.published_at, content_scheme = excluded.content_scheme",
    )
    .bind(messages.iter().map(|(m, _, _)| m.cohort_id).collect::<Vec<_>>())
    .bind(messages.iter().map(|(m, _, _)| m.content).collect::<Vec<_>>())
    .bind(messages.iter().map(|(_, s, _)| s.code()).collect::<Vec<_>>())
    .bind(messages.iter().map(|(_, _, r)| *r).collect::<Vec<_>>())
    .bind(now)
    .bind(CONTENT_SCHEME)
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(content: u128) -> PerformanceMessage {
        PerformanceMessage {
            cohort_id: uuid::Uuid::from_u128(1),
            content: uuid::Uuid::from_u128(content),
            message: Vec::new(),
        }
    }

    fn stored(content: u128, status: PublishedStatus, revision: i32, scheme: i16) -> Stored {
        Stored {
            content: uuid::Uuid::from_u128(content),
            status: status.code().to_owned(),
            revision,
            scheme,
        }
    }

    #[test]
    fn a_final_figure_that_changes_is_a_new_revision_and_nothing_else_is() {
        use FigureStatus::{Final, Provisional};
        use PublishedStatus as P;
        let new = CONTENT_SCHEME;
        // First publication.
        assert_eq!(revision(None, &message(7), Final), 0);
        // Unchanged: the revision stands.
        assert_eq!(
            revision(Some(&stored(7, P::Revision, 2, new)), &message(7), Final),
            2
        );
        // Changed after it was final: one more.
        assert_eq!(
            revision(Some(&stored(7, P::Final, 0, new)), &message(8), Final),
            1
        );
        assert_eq!(
            revision(Some(&stored(7, P::Revision, 2, new)), &message(8), Final),
            3
        );
        // Changed while still provisional, or becoming final: not a revision.
        assert_eq!(
            revision(Some(&stored(7, P::Provisional, 0, new)), &message(8), Final),
            0
        );
        assert_eq!(
            revision(Some(&stored(7, P::Final, 0, new)), &message(8), Provisional),
            0
        );
        // Hashed under an older scheme: not comparable, taken as unchanged.
        assert_eq!(
            revision(Some(&stored(7, P::Final, 1, new - 1)), &message(8), Final),
            1
        );
    }
}
