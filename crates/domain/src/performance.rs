//! Performance against the ambition, for commissioners: cases grouped into release-date
//! cohorts (ISO week, calendar month, quarter, financial year, rolling 12 months) and areas
//! (England, region, local authority, releasing prison, community provider), each cell a
//! [`Tally`]. A cohort is provisional until every window in it has closed and a settling period
//! has passed (late community data can still change it), then final.
//!
//! What leaves the system is decided by [`published_cells`] (and [`published_grid`], its
//! weekly form), under disclosure control ([`crate::disclosure`]), in two shapes:
//! - England and regions, whose counts are large, publish weeks and months, each withheld on
//!   its own where small, and longer periods only as sums of published months;
//! - local authorities, prisons and providers publish financial years and their quarters once
//!   the year has ended, as one table per year (areas × quarters, each area's year as its row
//!   total, the region's or England's published figures as the column totals), and rolling 12
//!   months ending at a quarter's end as sums of published quarters. A year is withheld only
//!   when it is small itself or is the partner a withheld year needs, so almost every area with
//!   a reasonable number of releases has an annual rate.
//!
//! Either way no withheld count can be recovered from a row, a column, a total, or the
//! difference between two reports: every figure is decided once for its period, the same in
//! every report, and every total is a sum of published parts or the margin of its table.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::coded::coded;

use crate::calendar::CohortPeriod;
use crate::case::{ExclusionReason, Outcome};
use crate::disclosure::{suppress, suppress_given, CountTable};
use crate::rate::{ContinuityRate, Tally};
use crate::rules::Rules;

/// ONS GSS code of England, the area of the England breakdown.
pub const ENGLAND: &str = "E92000001";

/// The area of a case whose prison, provider or region is not known.
pub const UNKNOWN: &str = "UNKNOWN";

/// What the measure needs of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFacts {
    /// Day 0 of the window; the cohort is chosen by it.
    pub release_date: NaiveDate,
    /// Upper-tier local authority of residence (GSS code).
    pub local_authority: String,
    /// Releasing prison, when known.
    pub prison: Option<String>,
    /// Community provider, when known.
    pub provider: Option<String>,
    /// Where the case stands.
    pub outcome: Outcome,
}

/// How a cohort is split into areas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Breakdown {
    /// One area: England.
    England,
    /// Region of the local authority of residence.
    Region,
    /// Upper-tier local authority of residence.
    LocalAuthority,
    /// Releasing prison.
    Prison,
    /// Community treatment provider.
    Provider,
}

impl Breakdown {
    /// Every breakdown.
    pub const ALL: [Breakdown; 5] = [
        Breakdown::England,
        Breakdown::Region,
        Breakdown::LocalAuthority,
        Breakdown::Prison,
        Breakdown::Provider,
    ];

    /// Stable code for files, metrics and reports.
    pub fn code(self) -> &'static str {
        match self {
            Breakdown::England => "england",
            Breakdown::Region => "region",
            Breakdown::LocalAuthority => "local_authority",
            Breakdown::Prison => "prison",
            Breakdown::Provider => "provider",
        }
    }

    /// Whether the published figures include weeks and months (England and regions, whose
    /// counts are large) or only quarters and years (local authorities, prisons, providers).
    pub fn publishes_weeks(self) -> bool {
        matches!(self, Breakdown::England | Breakdown::Region)
    }

    /// The area `case` counts in.
    fn area<'a>(self, case: &'a CaseFacts, regions: &'a Regions) -> &'a str {
        match self {
            Breakdown::England => ENGLAND,
            Breakdown::Region => regions.region_of(&case.local_authority),
            Breakdown::LocalAuthority => &case.local_authority,
            Breakdown::Prison => case.prison.as_deref().unwrap_or(UNKNOWN),
            Breakdown::Provider => case.provider.as_deref().unwrap_or(UNKNOWN),
        }
    }
}

/// Local authority to region (GSS codes), from configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Regions(HashMap<String, String>);

impl Regions {
    /// A lookup from (local authority, region) pairs.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(pairs.into_iter().collect())
    }

    /// The region of `local_authority`, or [`UNKNOWN`].
    pub fn region_of(&self, local_authority: &str) -> &str {
        self.0.get(local_authority).map_or(UNKNOWN, String::as_str)
    }
}

/// A cell: cohort, breakdown and area.
pub type CellKey = (CohortPeriod, Breakdown, String);

coded! {
    /// Whether a figure can still change.
    pub enum FigureStatus {
        /// Windows still open, or closed within the settling period.
        Provisional = "PROVISIONAL",
        /// Settled; a later change is published as a revision.
        Final = "FINAL",
    }
}

/// The status of `period`'s figures on `today`: final once the last window of the cohort
/// closed more than `settling_days` ago.
pub fn figure_status(
    period: &CohortPeriod,
    rules: &Rules,
    settling_days: u32,
    today: NaiveDate,
) -> FigureStatus {
    let (_, last_release) = period.date_range();
    let settled = last_release
        + Duration::days(i64::from(rules.window_days))
        + Duration::days(i64::from(settling_days));
    if today > settled {
        FigureStatus::Final
    } else {
        FigureStatus::Provisional
    }
}

/// Every cohort the cases fall in, under every breakdown. Weeks and months are counted from
/// the cases; quarters, financial years and rolling 12 months are summed from the months. Withdrawn
/// cases count nowhere; periods that start after `today` are left out.
pub fn tabulate<'a>(
    cases: impl IntoIterator<Item = &'a CaseFacts>,
    regions: &Regions,
    today: NaiveDate,
) -> BTreeMap<CellKey, Tally> {
    // Fast, non-cryptographic hashing: the keys are ours, not an attacker's.
    let mut areas: Vec<String> = Vec::new();
    let mut area_ids: rustc_hash::FxHashMap<String, usize> = Default::default();
    let mut cells: rustc_hash::FxHashMap<(CohortPeriod, Breakdown, usize), Counts> =
        Default::default();
    for case in cases {
        if case.outcome == Outcome::Withdrawn {
            continue;
        }
        let periods = [
            CohortPeriod::iso_week(case.release_date),
            CohortPeriod::month(case.release_date),
        ];
        let in_england = crate::codes::is_english_area(&case.local_authority);
        for breakdown in Breakdown::ALL {
            // The measure is England's: an area outside it is never a row (its releases are
            // excluded cases of England's, its prison's and its provider's figures).
            if !in_england && matches!(breakdown, Breakdown::LocalAuthority | Breakdown::Region) {
                continue;
            }
            let area = breakdown.area(case, regions);
            let id = match area_ids.get(area) {
                Some(&id) => id,
                None => {
                    areas.push(area.to_owned());
                    area_ids.insert(area.to_owned(), areas.len() - 1);
                    areas.len() - 1
                }
            };
            for period in periods {
                cells
                    .entry((period, breakdown, id))
                    .or_default()
                    .add(case.outcome);
            }
        }
    }
    let months: Vec<_> = cells
        .iter()
        .filter(|((p, _, _), _)| matches!(p, CohortPeriod::Month { .. }))
        .map(|(k, c)| (*k, *c))
        .collect();
    for ((month, breakdown, id), counts) in months {
        let (first, _) = month.date_range();
        let mut sums = vec![
            CohortPeriod::financial_year(first),
            CohortPeriod::quarter(first),
        ];
        sums.extend(CohortPeriod::rolling_12_months(first));
        for period in sums {
            cells
                .entry((period, breakdown, id))
                .or_default()
                .merge(&counts);
        }
    }
    cells
        .into_iter()
        .filter(|((p, _, _), _)| p.date_range().0 <= today)
        .map(|((p, b, id), c)| ((p, b, areas[id].clone()), c.tally()))
        .collect()
}

/// A tally's counts in a fixed-size form, cheap to copy and add while tabulating.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    engaged: u64,
    not_engaged: u64,
    open: u64,
    excluded: [u64; ExclusionReason::ALL.len()],
}

impl Counts {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Open => self.open += 1,
            Outcome::Engaged => self.engaged += 1,
            Outcome::NotEngaged => self.not_engaged += 1,
            Outcome::Excluded(reason) => {
                if let Some(i) = ExclusionReason::ALL.iter().position(|r| *r == reason) {
                    self.excluded[i] += 1;
                }
            }
            Outcome::Withdrawn => {}
        }
    }

    fn merge(&mut self, other: &Counts) {
        self.engaged += other.engaged;
        self.not_engaged += other.not_engaged;
        self.open += other.open;
        for (a, b) in self.excluded.iter_mut().zip(other.excluded) {
            *a += b;
        }
    }

    fn tally(&self) -> Tally {
        Tally {
            finalised: self.engaged + self.not_engaged,
            engaged: self.engaged,
            open: self.open,
            excluded: ExclusionReason::ALL
                .into_iter()
                .zip(self.excluded)
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

/// A count as published: both figures, or neither where suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// Engaged within the window; `None` where suppressed.
    pub engaged: Option<u64>,
    /// Finalised cases; `None` where suppressed.
    pub finalised: Option<u64>,
}

impl Published {
    /// The rate with its interval, when published and something is finalised.
    pub fn rate(&self) -> Option<ContinuityRate> {
        ContinuityRate::new(self.engaged?, self.finalised?)
    }

    /// Whether the figures are withheld.
    pub fn is_suppressed(&self) -> bool {
        self.engaged.is_none()
    }
}

/// One breakdown of a report as it may be published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedGrid {
    /// The breakdown.
    pub breakdown: Breakdown,
    /// The weekly cohorts, oldest first.
    pub weeks: Vec<CohortPeriod>,
    /// The areas, in order.
    pub areas: Vec<String>,
    /// Per area: one entry per week, then the area's total over the weeks.
    pub rows: Vec<Vec<Published>>,
    /// England per week, then the grand total.
    pub totals: Vec<Published>,
}

impl PublishedGrid {
    /// Each area's row, then England's row under `england`.
    pub fn rows_with_total<'a>(
        &'a self,
        england: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Vec<Published>)> {
        self.areas
            .iter()
            .map(String::as_str)
            .zip(&self.rows)
            .chain(std::iter::once((england, &self.totals)))
    }
}

/// Nothing: published zeros.
const NONE_PUBLISHED: Published = Published {
    engaged: Some(0),
    finalised: Some(0),
};

/// The sum of published figures, withheld if any of them is.
fn sum_published(parts: impl IntoIterator<Item = Published>) -> Published {
    let sum = parts
        .into_iter()
        .try_fold((0, 0), |(e, f), p| Some((e + p.engaged?, f + p.finalised?)));
    Published {
        engaged: sum.map(|s| s.0),
        finalised: sum.map(|s| s.1),
    }
}

/// The published form of `breakdown` (one that [publishes weeks](Breakdown::publishes_weeks))
/// over `weeks`: each area's weeks as [`published_cells`] publishes them, then the area's total, published only as the sum of
/// weeks that are all published; England's weeks and total the same way. So the grid reveals
/// nothing that comparing it with another report's grid would add to: each week is withheld
/// the same way in every report, and every total is a sum of published weeks.
pub fn published_grid(
    cells: &BTreeMap<CellKey, Tally>,
    breakdown: Breakdown,
    weeks: &[CohortPeriod],
) -> PublishedGrid {
    let published = weekly_cells(cells, breakdown, weeks);
    let areas: BTreeSet<&String> = weeks
        .iter()
        .flat_map(|w| {
            cells
                .range((*w, breakdown, String::new())..)
                .take_while(move |((p, b, _), _)| p == w && *b == breakdown)
                .map(|((_, _, a), _)| a)
        })
        .collect();
    let row = |area: &str| -> Vec<Published> {
        let mut row: Vec<Published> = weeks
            .iter()
            .map(|w| {
                published
                    .get(&(*w, area.to_owned()))
                    .copied()
                    .unwrap_or(NONE_PUBLISHED)
            })
            .collect();
        row.push(sum_published(row.iter().copied()));
        row
    };
    // England's own breakdown has one area, which is its total.
    PublishedGrid {
        breakdown,
        weeks: weeks.to_vec(),
        rows: areas.iter().map(|a| row(a)).collect(),
        totals: row(ENGLAND),
        areas: areas.into_iter().cloned().collect(),
    }
}

/// One period suppressed on its own: which of its (non-empty) cells are withheld, and whether
/// their total (England's count for the period) is.
fn column_mask(engaged: &[u64], not_engaged: &[u64]) -> (Vec<bool>, bool) {
    let n = engaged.len();
    let tables = (
        CountTable::new(n, 1, engaged.to_vec()),
        CountTable::new(n, 1, not_engaged.to_vec()),
    );
    let (Some(e), Some(ne)) = tables else {
        unreachable!("a column is n × 1 by construction")
    };
    match suppress(&[&e, &ne]) {
        Some(mask) => (
            (0..n).map(|i| mask.is_suppressed(i, 0)).collect(),
            mask.is_suppressed(n, 0),
        ),
        None => (vec![false; n], false),
    }
}

/// Published figures by (period, area).
pub type PublishedCells = BTreeMap<(CohortPeriod, String), Published>;

/// What may be published for each of `periods` under `breakdown` as at `as_at`, by area, with
/// England's figure for the period under [`ENGLAND`]; an area without cases in a period is
/// absent and reads as zero. A breakdown that [publishes weeks](Breakdown::publishes_weeks)
/// answers every period ([`weekly_cells`]); the others answer financial years and quarters of
/// years ended by `as_at`, and rolling 12 months ending at a quarter's end whose quarters are
/// answered ([`annual_cells`]), and leave any other period out.
pub fn published_cells(
    cells: &BTreeMap<CellKey, Tally>,
    regions: &Regions,
    breakdown: Breakdown,
    periods: &[CohortPeriod],
    as_at: NaiveDate,
) -> PublishedCells {
    if breakdown.publishes_weeks() {
        weekly_cells(cells, breakdown, periods)
    } else {
        annual_cells(cells, regions, breakdown, periods, as_at)
    }
}

/// The periods of a breakdown that publishes weeks: a period made of parts
/// ([`CohortPeriod::parts`]: a quarter, financial year or rolling 12 months of months, a
/// whole-weeks February of weeks) is published for an area only when every part is, as their
/// sum; any other period is suppressed on its own (counts 1-4, then enough others that
/// England's count gives none away). So every figure is the same whichever report or period
/// list asks for it, and no published total differs from a sum of published figures by a
/// withheld one.
fn weekly_cells(
    cells: &BTreeMap<CellKey, Tally>,
    breakdown: Breakdown,
    periods: &[CohortPeriod],
) -> PublishedCells {
    fn one(
        cells: &BTreeMap<CellKey, Tally>,
        breakdown: Breakdown,
        period: CohortPeriod,
        memo: &mut HashMap<CohortPeriod, BTreeMap<String, Published>>,
    ) -> BTreeMap<String, Published> {
        if let Some(done) = memo.get(&period) {
            return done.clone();
        }
        let parts = period.parts();
        let out = if parts.is_empty() {
            let present: Vec<(&String, &Tally)> = cells
                .range((period, breakdown, String::new())..)
                .take_while(|((p, b, _), _)| *p == period && *b == breakdown)
                .filter(|(_, t)| t.finalised > 0)
                .map(|((_, _, a), t)| (a, t))
                .collect();
            let engaged: Vec<u64> = present.iter().map(|(_, t)| t.engaged).collect();
            let not: Vec<u64> = present
                .iter()
                .map(|(_, t)| t.finalised - t.engaged)
                .collect();
            let (hidden, margin) = column_mask(&engaged, &not);
            let shown = |hide: bool, e: u64, f: u64| Published {
                engaged: (!hide).then_some(e),
                finalised: (!hide).then_some(f),
            };
            let mut out: BTreeMap<String, Published> = present
                .iter()
                .zip(&hidden)
                .map(|((a, t), hide)| ((*a).clone(), shown(*hide, t.engaged, t.finalised)))
                .collect();
            if breakdown != Breakdown::England {
                let (e, f) = present
                    .iter()
                    .fold((0, 0), |(e, f), (_, t)| (e + t.engaged, f + t.finalised));
                out.insert(ENGLAND.to_owned(), shown(margin, e, f));
            }
            out
        } else {
            let parts: Vec<BTreeMap<String, Published>> = parts
                .into_iter()
                .map(|p| one(cells, breakdown, p, memo))
                .collect();
            let areas: BTreeSet<&String> = parts.iter().flat_map(|p| p.keys()).collect();
            areas
                .into_iter()
                .map(|a| {
                    let each = parts
                        .iter()
                        .map(|part| part.get(a).copied().unwrap_or(NONE_PUBLISHED));
                    (a.clone(), sum_published(each))
                })
                .collect()
        };
        memo.insert(period, out.clone());
        out
    }
    let mut memo = HashMap::new();
    let mut out = BTreeMap::new();
    for period in periods {
        for (area, published) in one(cells, breakdown, *period, &mut memo) {
            out.insert((*period, area), published);
        }
    }
    out
}

/// The periods of a breakdown that publishes only quarters and years (see the module's
/// documentation): one disclosure table per financial year ended by `as_at`, per group of
/// areas whose margins another breakdown publishes (a region's local authorities; all prisons
/// or providers, under England). Within a table, the group's own figures are given as the
/// other breakdown publishes them, so a withheld area is never the only hidden entry of a line
/// whose total is public. A region with cases in only one authority would give that authority
/// away through the region's figures; England's regions each have four or more.
fn annual_cells(
    cells: &BTreeMap<CellKey, Tally>,
    regions: &Regions,
    breakdown: Breakdown,
    periods: &[CohortPeriod],
    as_at: NaiveDate,
) -> PublishedCells {
    let parent = match breakdown {
        Breakdown::LocalAuthority => Breakdown::Region,
        _ => Breakdown::England,
    };
    let group_of = |area: &str| -> String {
        match breakdown {
            Breakdown::LocalAuthority => regions.region_of(area).to_owned(),
            _ => ENGLAND.to_owned(),
        }
    };
    // The years each period needs: a year or quarter its year; a rolling 12 months ending at a
    // quarter's end the years of its four quarters.
    let quarters_of = |period: &CohortPeriod| -> Vec<CohortPeriod> {
        match *period {
            CohortPeriod::Quarter { .. } => vec![*period],
            CohortPeriod::FinancialYear { .. } => period.quarters(),
            CohortPeriod::Rolling12Months { end_month, .. } if end_month % 3 == 0 => {
                let (_, end) = period.date_range();
                let last = CohortPeriod::quarter(end);
                let mut qs = vec![last];
                while qs.len() < 4 {
                    let before = qs[qs.len() - 1].previous();
                    qs.push(before);
                }
                qs.reverse();
                qs
            }
            _ => Vec::new(),
        }
    };
    let year_of = |quarter: &CohortPeriod| CohortPeriod::financial_year(quarter.date_range().0);
    let years: BTreeSet<CohortPeriod> = periods
        .iter()
        .flat_map(&quarters_of)
        .map(|q| year_of(&q))
        .filter(|y| y.date_range().1 < as_at)
        .collect();
    let mut decided: PublishedCells = BTreeMap::new();
    for year in &years {
        let quarters = year.quarters();
        let mut asked = quarters.clone();
        asked.push(*year);
        let margins = weekly_cells(cells, parent, &asked);
        let mut groups: BTreeMap<String, BTreeSet<&String>> = BTreeMap::new();
        for q in &quarters {
            for ((_, _, area), t) in cells
                .range((*q, breakdown, String::new())..)
                .take_while(|((p, b, _), _)| p == q && *b == breakdown)
            {
                if t.finalised > 0 {
                    groups.entry(group_of(area)).or_default().insert(area);
                }
            }
        }
        for (group, areas) in &groups {
            let areas: Vec<&String> = areas.iter().copied().collect();
            let count = |f: fn(&Tally) -> u64| -> Vec<u64> {
                areas
                    .iter()
                    .flat_map(|a| {
                        quarters
                            .iter()
                            .map(move |q| cells.get(&(*q, breakdown, (*a).clone())).map_or(0, f))
                    })
                    .collect()
            };
            let (Some(engaged), Some(not)) = (
                CountTable::new(areas.len(), 4, count(|t| t.engaged)),
                CountTable::new(areas.len(), 4, count(|t| t.finalised - t.engaged)),
            ) else {
                unreachable!("areas × 4 quarters by construction")
            };
            let rows = areas.len();
            let given = |i: usize, j: usize| {
                (i == rows).then(|| {
                    let period = quarters.get(j).unwrap_or(year);
                    margins
                        .get(&(*period, group.clone()))
                        .is_some_and(Published::is_suppressed)
                })
            };
            let Some(mask) = suppress_given(&[&engaged, &not], given) else {
                unreachable!("two tables of one shape")
            };
            for (i, area) in areas.iter().enumerate() {
                for (j, period) in quarters.iter().chain(std::iter::once(year)).enumerate() {
                    let shown = !mask.is_suppressed(i, j);
                    let (e, n) = (engaged.entry(i, j), not.entry(i, j));
                    decided.insert(
                        (*period, (*area).clone()),
                        Published {
                            engaged: shown.then_some(e),
                            finalised: shown.then_some(e + n),
                        },
                    );
                }
            }
        }
    }
    // England's own figure for each period, beside the areas'.
    let england = weekly_cells(cells, Breakdown::England, periods);
    let mut out = BTreeMap::new();
    for period in periods {
        let quarters = quarters_of(period);
        if quarters.is_empty() || !quarters.iter().all(|q| years.contains(&year_of(q))) {
            continue;
        }
        let areas: BTreeSet<&String> = quarters
            .iter()
            .flat_map(|q| {
                decided
                    .range((*q, String::new())..)
                    .take_while(move |((p, _), _)| p == q)
                    .map(|((_, a), _)| a)
            })
            .collect();
        // A rolling 12 months ending in March is that financial year.
        let whole = match period {
            CohortPeriod::Rolling12Months { .. } => {
                let year = year_of(&quarters[0]);
                (year.date_range() == period.date_range()).then_some(year)
            }
            _ => Some(*period),
        };
        for area in areas {
            let value = match whole {
                Some(whole) => decided
                    .get(&(whole, area.clone()))
                    .copied()
                    .unwrap_or(NONE_PUBLISHED),
                _ => sum_published(quarters.iter().map(|q| {
                    decided
                        .get(&(*q, area.clone()))
                        .copied()
                        .unwrap_or(NONE_PUBLISHED)
                })),
            };
            out.insert((*period, area.clone()), value);
        }
        if let Some(e) = england.get(&(*period, ENGLAND.to_owned())) {
            out.insert((*period, ENGLAND.to_owned()), *e);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn case(release: NaiveDate, la: &str, outcome: Outcome) -> CaseFacts {
        CaseFacts {
            release_date: release,
            local_authority: la.into(),
            prison: Some("LEI".into()),
            provider: None,
            outcome,
        }
    }

    #[test]
    fn cohorts_sum_months_into_years_and_rolling_periods() {
        let cases = [
            case(date(2026, 3, 30), "E06000001", Outcome::Engaged),
            case(date(2026, 4, 2), "E06000001", Outcome::NotEngaged),
            case(date(2026, 4, 3), "E06000002", Outcome::Engaged),
            case(date(2026, 4, 3), "E06000002", Outcome::Open),
            case(
                date(2026, 4, 4),
                "E06000002",
                Outcome::Excluded(ExclusionReason::Died),
            ),
            case(date(2026, 4, 5), "E06000002", Outcome::Withdrawn),
        ];
        let regions = Regions::new([("E06000001".to_string(), "E12000001".to_string())]);
        let cells = tabulate(&cases, &regions, date(2026, 11, 24));
        let get = |p, b, a: &str| cells.get(&(p, b, a.to_string())).cloned();
        let england = |p| get(p, Breakdown::England, ENGLAND).unwrap();

        // Financial years split at 1 April.
        let fy25 = england(CohortPeriod::FinancialYear { start_year: 2025 });
        let fy26 = england(CohortPeriod::FinancialYear { start_year: 2026 });
        assert_eq!((fy25.finalised, fy25.engaged), (1, 1));
        assert_eq!((fy26.finalised, fy26.engaged, fy26.open), (2, 1, 1));
        assert_eq!(fy26.excluded.get(&ExclusionReason::Died), Some(&1));
        // A rolling year ending in April holds March and April.
        let r12 = england(CohortPeriod::Rolling12Months {
            end_year: 2026,
            end_month: 4,
        });
        assert_eq!((r12.finalised, r12.engaged), (3, 2));
        // ISO week 2026-W14 is 30 March to 5 April.
        let w14 = england(CohortPeriod::IsoWeek {
            year: 2026,
            week: 14,
        });
        assert_eq!((w14.finalised, w14.engaged, w14.open), (3, 2, 1));
        // Regions from the lookup, unknown otherwise; prisons and providers likewise.
        let april = CohortPeriod::Month {
            year: 2026,
            month: 4,
        };
        assert_eq!(
            get(april, Breakdown::Region, "E12000001")
                .unwrap()
                .finalised,
            1
        );
        assert_eq!(get(april, Breakdown::Region, UNKNOWN).unwrap().finalised, 1);
        assert_eq!(
            get(april, Breakdown::Provider, UNKNOWN).unwrap().finalised,
            2
        );
        // Nothing for periods that have not started.
        assert!(cells
            .keys()
            .all(|(p, _, _)| p.date_range().0 <= date(2026, 11, 24)));
    }

    #[test]
    fn a_cohort_settles_after_its_last_window_and_the_settling_period() {
        let rules = Rules::default();
        let week = CohortPeriod::iso_week(date(2026, 11, 2)); // 2 to 8 November
        let status = |today| figure_status(&week, &rules, 28, today);
        // Last release 8 November, window closes 29 November, settled after 27 December.
        assert_eq!(status(date(2026, 12, 27)), FigureStatus::Provisional);
        assert_eq!(status(date(2026, 12, 28)), FigureStatus::Final);
    }

    fn weeks(n: u32) -> Vec<CohortPeriod> {
        (1..=n)
            .map(|week| CohortPeriod::IsoWeek { year: 2026, week })
            .collect()
    }

    /// Check one published grid against the true counts: no count of 1 to 4 published, true
    /// values elsewhere, no line with exactly one hidden entry, and every published total a
    /// sum of published weeks.
    fn check_grid(
        grid: &PublishedGrid,
        cells: &BTreeMap<CellKey, Tally>,
    ) -> Result<(), TestCaseError> {
        let weeks = &grid.weeks;
        let (rows, cols) = (grid.areas.len(), weeks.len());
        let at = |r: usize, c: usize| {
            if r == rows {
                grid.totals[c]
            } else {
                grid.rows[r][c]
            }
        };
        let truth = |r: usize, c: usize| -> (u64, u64) {
            let mut sum = (0, 0);
            for ((p, _, a), t) in cells {
                let (Some(ri), Some(ci)) = (
                    grid.areas.iter().position(|x| x == a),
                    weeks.iter().position(|w| w == p),
                ) else {
                    continue;
                };
                if (r == rows || r == ri) && (c == cols || c == ci) {
                    sum.0 += t.engaged;
                    sum.1 += t.finalised - t.engaged;
                }
            }
            sum
        };
        for r in 0..=rows {
            for c in 0..=cols {
                let (e, n) = truth(r, c);
                let p = at(r, c);
                let small = |x: u64| (1..5).contains(&x);
                if small(e) || small(n) {
                    prop_assert!(p.is_suppressed(), "small count published at {r},{c}");
                }
                if !p.is_suppressed() {
                    prop_assert_eq!((p.engaged, p.finalised), (Some(e), Some(e + n)));
                }
            }
            let hidden = (0..=cols).filter(|&c| at(r, c).is_suppressed()).count();
            prop_assert!(hidden != 1, "row {r} gives away its one hidden entry");
            if let Some(total) = at(r, cols).finalised {
                let weeks: Option<u64> = (0..cols).map(|c| at(r, c).finalised).sum();
                prop_assert_eq!(Some(total), weeks, "row {}: a total of published weeks", r);
            }
        }
        for c in 0..=cols {
            let hidden = (0..=rows).filter(|&r| at(r, c).is_suppressed()).count();
            prop_assert!(hidden != 1, "column {c} gives away its one hidden entry");
        }
        Ok(())
    }

    /// What a grid publishes for (area, week), an area it does not list being 0.
    fn published_at(grid: &PublishedGrid, area: &str, week: &CohortPeriod) -> Published {
        let c = grid.weeks.iter().position(|w| w == week).unwrap();
        match grid.areas.iter().position(|a| a == area) {
            Some(r) => grid.rows[r][c],
            None => Published {
                engaged: Some(0),
                finalised: Some(0),
            },
        }
    }

    proptest! {
        /// Months, a whole-weeks February made of its weeks, and a financial year made of its
        /// months: base periods never publish 1 to 4 or leave one hidden entry in their
        /// column; a period made of parts is published for an area exactly when every part
        /// is, as their sum.
        #[test]
        fn periods_made_of_parts_publish_only_sums_of_published_parts(
            counts in proptest::collection::vec((0u64..9, 0u64..9), 15 * 4),
        ) {
            let fy = CohortPeriod::FinancialYear { start_year: 2026 };
            let feb = CohortPeriod::Month { year: 2027, month: 2 };
            let mut base: Vec<CohortPeriod> = fy.parts().into_iter().filter(|m| *m != feb).collect();
            base.extend(feb.parts());
            prop_assert_eq!(base.len(), 15);
            let mut cells = BTreeMap::new();
            for (i, (engaged, not)) in counts.iter().enumerate() {
                let tally = Tally { finalised: engaged + not, engaged: *engaged, ..Tally::default() };
                cells.insert((base[i % 15], Breakdown::Region, format!("E12{:06}", i / 15)), tally);
            }
            let mut periods = fy.parts();
            periods.push(fy);
            let published = weekly_cells(&cells, Breakdown::Region, &periods);
            let with_weeks = {
                let mut all = periods.clone();
                all.extend(feb.parts());
                weekly_cells(&cells, Breakdown::Region, &all)
            };
            let get = |p: CohortPeriod, a: &str| with_weeks.get(&(p, a.to_owned())).copied()
                .unwrap_or(Published { engaged: Some(0), finalised: Some(0) });
            let mut areas: BTreeSet<String> = with_weeks.keys().map(|(_, a)| a.clone()).collect();
            areas.insert(ENGLAND.to_owned());
            for p in &base {
                let mut hidden = 0;
                for a in &areas {
                    let v = get(*p, a);
                    if let (Some(e), Some(f)) = (v.engaged, v.finalised) {
                        prop_assert!(!(1..5).contains(&e) && !(1..5).contains(&(f - e)), "{} {}", p, a);
                    } else {
                        hidden += 1;
                    }
                }
                prop_assert!(hidden != 1, "{} gives away its one hidden entry", p);
            }
            for (whole, parts) in [(feb, feb.parts()), (fy, fy.parts())] {
                for a in &areas {
                    let sum: Option<(u64, u64)> = parts.iter().try_fold((0, 0), |(e, f), p| {
                        let v = get(*p, a);
                        Some((e + v.engaged?, f + v.finalised?))
                    });
                    let v = get(whole, a);
                    prop_assert_eq!(v.engaged.zip(v.finalised), sum, "{} {}", whole, a);
                }
            }
            // The same figures whichever other periods are asked for.
            for (key, v) in &published {
                prop_assert_eq!(with_weeks.get(key), Some(v));
            }
        }

        /// Whatever the counts, each week's published grid (this week's report, and last
        /// week's, one week earlier) hides every count of 1 to 4, never leaves a line (an area
        /// across the weeks and its total, or a week across the areas and England) with
        /// exactly one hidden entry, and publishes true values elsewhere. Between the two
        /// reports: a week they share is published identically, and every published total is
        /// a sum of published weeks, so the difference of two totals (the week that entered
        /// minus the week that left) reveals nothing either.
        #[test]
        fn published_grids_never_reveal_a_suppressed_count(
            counts in proptest::collection::vec((0u64..12, 0u64..12), 1..48),
            n_weeks in 1u32..6,
        ) {
            let all = weeks(n_weeks + 1);
            let mut cells = BTreeMap::new();
            for (i, (engaged, not)) in counts.iter().enumerate() {
                let area = format!("E12{:06}", i / all.len());
                let week = all[i % all.len()];
                let tally = Tally { finalised: engaged + not, engaged: *engaged, ..Tally::default() };
                cells.insert((week, Breakdown::Region, area), tally);
            }
            let last_week = published_grid(&cells, Breakdown::Region, &all[..all.len() - 1]);
            let this_week = published_grid(&cells, Breakdown::Region, &all[1..]);
            check_grid(&last_week, &cells)?;
            check_grid(&this_week, &cells)?;
            let areas: BTreeSet<&String> = last_week.areas.iter().chain(&this_week.areas).collect();
            for week in &all[1..all.len() - 1] {
                for area in &areas {
                    prop_assert_eq!(
                        published_at(&last_week, area, week),
                        published_at(&this_week, area, week),
                        "{} in {} differs between the two reports", area, week
                    );
                }
            }
        }
    }

    /// Cases for (area, quarter) counts in FY2026-27, released mid-quarter.
    fn quarter_cases(counts: &[(String, usize, u64, u64)]) -> Vec<CaseFacts> {
        let fy = CohortPeriod::FinancialYear { start_year: 2026 };
        let mut out = Vec::new();
        for (area, q, engaged, not) in counts {
            let (start, _) = fy.quarters()[*q].date_range();
            let release = start + Duration::days(40);
            for outcome in std::iter::repeat_n(Outcome::Engaged, *engaged as usize)
                .chain(std::iter::repeat_n(Outcome::NotEngaged, *not as usize))
            {
                out.push(case(release, area, outcome));
            }
        }
        out
    }

    proptest! {
        /// Local authorities in two regions, a year of quarters: no count of 1 to 4 is
        /// published for a quarter or the year; no line (an area's quarters and year, or a
        /// region's authorities and the region's published figure, per quarter and for the
        /// year) hides exactly one entry; rolling 12 months are sums of published quarters or
        /// the year itself; and a year is decided the same whichever periods are asked for.
        #[test]
        fn annual_tables_never_reveal_a_suppressed_count(
            sizes in (2usize..5, 2usize..5),
            counts in proptest::collection::vec((0u64..9, 0u64..9), 4 * 8),
        ) {
            let mut areas = Vec::new();
            let mut pairs = Vec::new();
            for (r, n) in [sizes.0, sizes.1].into_iter().enumerate() {
                for i in 0..n {
                    let area = format!("E06{r}{i:05}");
                    pairs.push((area.clone(), format!("E1200000{}", r + 1)));
                    areas.push(area);
                }
            }
            let regions = Regions::new(pairs);
            let rows: Vec<(String, usize, u64, u64)> = areas
                .iter()
                .enumerate()
                .flat_map(|(a, area)| (0..4).map(move |q| (a, q, area)))
                .map(|(a, q, area)| (area.clone(), q, counts[a * 4 + q].0, counts[a * 4 + q].1))
                .collect();
            let cases = quarter_cases(&rows);
            let as_at = date(2027, 12, 1);
            let cells = tabulate(&cases, &regions, as_at);
            let fy = CohortPeriod::FinancialYear { start_year: 2026 };
            let quarters = fy.quarters();
            let rolling: Vec<CohortPeriod> = [(2026, 6), (2026, 9), (2026, 12), (2027, 3)]
                .into_iter()
                .map(|(end_year, end_month)| CohortPeriod::Rolling12Months { end_year, end_month })
                .collect();
            let mut asked = quarters.clone();
            asked.push(fy);
            asked.extend(&rolling);
            let la = published_cells(&cells, &regions, Breakdown::LocalAuthority, &asked, as_at);
            let region = published_cells(&cells, &regions, Breakdown::Region, &asked, as_at);
            let get = |m: &PublishedCells, p: CohortPeriod, a: &str| m.get(&(p, a.to_owned())).copied().unwrap_or(NONE_PUBLISHED);
            let truth = |p: CohortPeriod, a: &str| cells.get(&(p, Breakdown::LocalAuthority, a.to_owned())).cloned().unwrap_or_default();
            let mut year_and_quarters = quarters.clone();
            year_and_quarters.push(fy);
            for area in &areas {
                for p in &year_and_quarters {
                    let (v, t) = (get(&la, *p, area), truth(*p, area));
                    let small = |x: u64| (1..5).contains(&x);
                    if small(t.engaged) || small(t.finalised - t.engaged) {
                        prop_assert!(v.is_suppressed(), "{} {} small but published", p, area);
                    }
                    if !v.is_suppressed() {
                        prop_assert_eq!((v.engaged, v.finalised), (Some(t.engaged), Some(t.finalised)));
                    }
                }
                let hidden = year_and_quarters.iter().filter(|p| get(&la, **p, area).is_suppressed()).count();
                prop_assert!(hidden != 1, "{} hides one entry of its year", area);
            }
            for r in ["E12000001", "E12000002"] {
                for p in &year_and_quarters {
                    let members = areas.iter().filter(|a| regions.region_of(a) == r);
                    let hidden = members.filter(|a| get(&la, *p, a).is_suppressed()).count()
                        + usize::from(get(&region, *p, r).is_suppressed());
                    prop_assert!(hidden != 1, "{} in {} hides one entry", r, p);
                }
            }
            for area in &areas {
                for r12 in &rolling {
                    let v = get(&la, *r12, area);
                    // The quarters of FY2025-26 in it have no cases.
                    let expected = if r12.date_range() == fy.date_range() {
                        get(&la, fy, area)
                    } else {
                        let end = r12.date_range().1;
                        sum_published(quarters.iter().filter(|q| q.date_range().1 <= end).map(|q| get(&la, *q, area)))
                    };
                    prop_assert_eq!(v, expected, "{} {}", r12, area);
                }
            }
            let alone = published_cells(&cells, &regions, Breakdown::LocalAuthority, &[fy], as_at);
            for area in &areas {
                prop_assert_eq!(get(&alone, fy, area), get(&la, fy, area));
            }
            // Nothing weekly or monthly, and nothing for a year not yet ended.
            let week = CohortPeriod::iso_week(quarters[0].date_range().0);
            prop_assert!(published_cells(&cells, &regions, Breakdown::LocalAuthority, &[week], as_at).is_empty());
            prop_assert!(published_cells(&cells, &regions, Breakdown::LocalAuthority, &[fy], date(2027, 3, 31)).is_empty());
        }
    }

    /// A year of a whole country: 153 authorities in 9 regions, sizes spread from 10 to 2,000
    /// releases a year, rates from 30% to 80%. At least 90% of the authorities with 50 or more
    /// finalised cases have a published annual rate.
    #[test]
    fn nine_in_ten_areas_with_fifty_finalised_cases_publish_an_annual_rate() {
        let fy = CohortPeriod::FinancialYear { start_year: 2025 };
        let (start, end) = fy.date_range();
        let days = (end - start).num_days() as u64 + 1;
        for seed in 1..=5u64 {
            // xorshift64*: a fixed sequence per seed, no dependency.
            let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = move || {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
            };
            let mut pairs = Vec::new();
            let mut cases = Vec::new();
            for i in 0..153 {
                let area = format!("E06{i:06}");
                pairs.push((area.clone(), format!("E120000{:02}", i % 9 + 1)));
                let size = (10f64.ln() + next() * (2000f64.ln() - 10f64.ln())).exp() as u64;
                let rate = 0.3 + 0.5 * next();
                for _ in 0..size {
                    let release = start + Duration::days((next() * days as f64) as i64);
                    let outcome = if next() < rate {
                        Outcome::Engaged
                    } else {
                        Outcome::NotEngaged
                    };
                    cases.push(case(release, &area, outcome));
                }
            }
            let regions = Regions::new(pairs);
            let as_at = date(2026, 12, 1);
            let cells = tabulate(&cases, &regions, as_at);
            let published =
                published_cells(&cells, &regions, Breakdown::LocalAuthority, &[fy], as_at);
            // The rule before: a year only as the sum of its twelve published months.
            let by_months = weekly_cells(&cells, Breakdown::LocalAuthority, &[fy]);
            let (mut eligible, mut shown, mut shown_by_months) = (0, 0, 0);
            let has_rate = |m: &PublishedCells, area: &String| {
                m.get(&(fy, area.clone()))
                    .is_some_and(|v| v.rate().is_some())
            };
            for ((p, b, area), t) in &cells {
                if *p == fy && *b == Breakdown::LocalAuthority && t.finalised >= 50 {
                    eligible += 1;
                    shown += usize::from(has_rate(&published, area));
                    shown_by_months += usize::from(has_rate(&by_months, area));
                }
            }
            assert!(
                eligible >= 80,
                "seed {seed}: only {eligible} areas with 50 or more"
            );
            println!(
                "seed {seed}: {shown} of {eligible} areas with 50 or more finalised cases publish \
                 an annual rate ({shown_by_months} as a sum of months)"
            );
            assert!(
                shown * 10 >= eligible * 9,
                "seed {seed}: {shown} of {eligible} published"
            );
        }
    }
}
