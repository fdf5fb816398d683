//! The weekly commissioners' report as figures: what is published as at the end of the
//! reporting week, under disclosure control, and the tidy CSV and terminal summary of it. The
//! pages that show it are in [`crate::pages`].
//!
//! Two shapes, as the domain publishes them (`continuity_domain::published_cells`):
//! - **weekly**, for England and the regions: the 52 weekly release cohorts ending with the
//!   newest whose windows had all closed, each area's total over them, and the 52 before;
//! - **annual**, for every breakdown: the newest financial year whose windows had all closed,
//!   the year before it, their eight quarters and the rolling 12 months ending at each quarter.
//!   Local authorities, prisons and providers are published only in this shape.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use continuity_domain::performance::ENGLAND;
use continuity_domain::{
    figure_status, published_cells, published_grid, Breakdown, CellKey, CohortPeriod, Comparison,
    ContinuityRate, FigureStatus, Published, PublishedCells, PublishedGrid, Regions, Rules, Tally,
};

/// Weekly cohorts in a report.
pub const WEEKS: usize = 52;

/// The breakdowns published weekly.
pub const WEEKLY: [Breakdown; 2] = [Breakdown::England, Breakdown::Region];

/// A weekly report.
#[derive(Debug, Clone)]
pub struct Report {
    /// The reporting week.
    pub week: CohortPeriod,
    /// Its last day: the figures are as at the end of it.
    pub as_at: NaiveDate,
    /// The weekly cohorts reported, oldest first: the last is the newest whose every window
    /// had closed by `as_at`.
    pub cohorts: Vec<CohortPeriod>,
    /// Status of each cohort's figures.
    pub status: Vec<FigureStatus>,
    /// England's and the regions' weeks as published.
    pub grids: Vec<PublishedGrid>,
    /// The same for the 52 cohorts before, for the change since the previous period.
    pub previous: Vec<PublishedGrid>,
    /// The newest financial year whose windows had all closed by `as_at`.
    pub year: CohortPeriod,
    /// The rolling 12 months ending with the newest month whose windows had all closed: the
    /// regions' "last 12 months".
    pub last_12_months: CohortPeriod,
    /// The annual periods, oldest first: the year before `year` and `year`, their eight
    /// quarters and the rolling 12 months ending at each quarter.
    pub annual_periods: Vec<CohortPeriod>,
    /// Per breakdown, the annual periods as published.
    pub annual: Vec<(Breakdown, PublishedCells)>,
    /// Every period published on the topic with the report besides its weeks, with its status:
    /// the annual periods, and for England and the regions the last 12 months whose windows had
    /// all closed and the rolling 12 months ending with each.
    pub periods: Vec<(CohortPeriod, FigureStatus)>,
    /// The areas' regions.
    pub regions: Regions,
}

/// Parse an ISO week such as `2026-W47`.
pub fn parse_week(text: &str) -> Result<CohortPeriod, String> {
    let bad = || format!("week `{text}`: expected an ISO week such as 2026-W47");
    let (year, week) = text.split_once("-W").ok_or_else(bad)?;
    let (year, week): (i32, u32) = (
        year.parse().map_err(|_| bad())?,
        week.parse().map_err(|_| bad())?,
    );
    NaiveDate::from_isoywd_opt(year, week, Weekday::Mon)
        .map(CohortPeriod::iso_week)
        .ok_or_else(bad)
}

/// Build the report for `week` from every cohort's tallies (see `continuity_domain::tabulate`).
pub fn build(
    cells: &BTreeMap<CellKey, Tally>,
    regions: &Regions,
    week: CohortPeriod,
    rules: &Rules,
    settling_days: u32,
) -> Report {
    let (_, as_at) = week.date_range();
    let newest = as_at - Duration::days(i64::from(rules.window_days));
    let cohorts = weeks_ending(newest, WEEKS);
    let before = weeks_ending(cohorts[0].date_range().0 - Duration::days(1), WEEKS);
    let closed = |p: &CohortPeriod| rules.last_window_day(p.date_range().1) < as_at;
    let mut year = CohortPeriod::financial_year(as_at);
    while !closed(&year) {
        year = year.previous();
    }
    let months = months_closed(as_at, &closed);
    let last_12_months = months[months.len() - 1];
    let mut annual_periods = annual_periods(year);
    for p in [year_before(last_12_months), last_12_months] {
        if !annual_periods.contains(&p) {
            annual_periods.push(p);
        }
    }
    let status = |p: &CohortPeriod| figure_status(p, rules, settling_days, as_at);
    let mut periods: Vec<(CohortPeriod, FigureStatus)> =
        annual_periods.iter().map(|p| (*p, status(p))).collect();
    periods.extend(
        months
            .into_iter()
            .filter(|p| !annual_periods.contains(p))
            .map(|p| (p, status(&p))),
    );
    Report {
        week,
        as_at,
        status: cohorts.iter().map(status).collect(),
        grids: WEEKLY
            .iter()
            .map(|b| published_grid(cells, *b, &cohorts))
            .collect(),
        previous: WEEKLY
            .iter()
            .map(|b| published_grid(cells, *b, &before))
            .collect(),
        annual: Breakdown::ALL
            .iter()
            .map(|b| {
                (
                    *b,
                    published_cells(cells, regions, *b, &annual_periods, as_at),
                )
            })
            .collect(),
        year,
        last_12_months,
        annual_periods,
        periods,
        cohorts,
        regions: regions.clone(),
    }
}

/// The year before `year` and `year`, their quarters and the rolling 12 months ending at each
/// quarter, oldest first within each kind.
fn annual_periods(year: CohortPeriod) -> Vec<CohortPeriod> {
    let mut quarters = year.previous().quarters();
    quarters.extend(year.quarters());
    let rolling = quarters.iter().map(|q| {
        let (_, end) = q.date_range();
        CohortPeriod::Rolling12Months {
            end_year: end.year(),
            end_month: end.month(),
        }
    });
    let mut out = vec![year.previous(), year];
    out.extend(rolling.collect::<Vec<_>>());
    out.extend(quarters);
    out
}

/// The same rolling 12 months a year earlier (no overlap), or the period before for others.
fn year_before(period: CohortPeriod) -> CohortPeriod {
    match period {
        CohortPeriod::Rolling12Months {
            end_year,
            end_month,
        } => CohortPeriod::Rolling12Months {
            end_year: end_year - 1,
            end_month,
        },
        p => p.previous(),
    }
}

/// The last 12 months whose windows had all closed by `as_at` and the rolling 12 months ending
/// with each (published for England and the regions only).
fn months_closed(as_at: NaiveDate, closed: &dyn Fn(&CohortPeriod) -> bool) -> Vec<CohortPeriod> {
    let mut newest = CohortPeriod::month(as_at);
    while !closed(&newest) {
        newest = newest.previous();
    }
    let mut months = vec![newest];
    while months.len() < 12 {
        let before = months[months.len() - 1].previous();
        months.push(before);
    }
    months.reverse();
    let rolling: Vec<CohortPeriod> = months
        .iter()
        .map(|m| {
            let (_, end) = m.date_range();
            CohortPeriod::Rolling12Months {
                end_year: end.year(),
                end_month: end.month(),
            }
        })
        .collect();
    months.extend(rolling);
    months
}

/// `n` ISO weeks ending with the week containing `last`, oldest first.
fn weeks_ending(last: NaiveDate, n: usize) -> Vec<CohortPeriod> {
    (0..n)
        .rev()
        .map(|i| CohortPeriod::iso_week(last - Duration::weeks(i as i64)))
        .collect()
}

/// One area's figure with what a reader compares it with.
#[derive(Debug, Clone, Copy)]
pub struct Compared {
    /// As published.
    pub figure: Published,
    /// England's rate for the same period, when published.
    pub england: Option<ContinuityRate>,
    /// The same area's figure for the period before, when published.
    pub previous: Option<ContinuityRate>,
}

impl Compared {
    /// The rate, when published.
    pub fn rate(&self) -> Option<ContinuityRate> {
        self.figure.rate()
    }

    /// Against England's rate: higher, similar or lower (95% interval against England's value).
    pub fn against_england(&self) -> Option<Comparison> {
        Some(self.rate()?.compared_with(self.england?.rate))
    }

    /// Against the 75% ambition, the same way.
    pub fn against_ambition(&self) -> Option<Comparison> {
        Some(self.rate()?.compared_with(continuity_domain::AMBITION))
    }

    /// The change since the period before, in percentage points.
    pub fn change_pp(&self) -> Option<f64> {
        Some((self.rate()?.rate - self.previous?.rate) * 100.0)
    }
}

impl Report {
    /// The weekly grid of `breakdown` (England or region).
    pub fn grid(&self, breakdown: Breakdown) -> Option<&PublishedGrid> {
        self.grids.iter().find(|g| g.breakdown == breakdown)
    }

    /// England over the 52 cohorts.
    pub fn headline(&self) -> Option<ContinuityRate> {
        self.weekly_total(Breakdown::England, ENGLAND)?.rate()
    }

    /// An area's total over the 52 cohorts (England or a region).
    pub fn weekly_total(&self, breakdown: Breakdown, area: &str) -> Option<Published> {
        total_of(self.grid(breakdown)?, area)
    }

    /// An area's weekly total compared with England's and with its previous 52 weeks.
    pub fn weekly_compared(&self, breakdown: Breakdown, area: &str) -> Option<Compared> {
        let previous = self.previous.iter().find(|g| g.breakdown == breakdown)?;
        Some(Compared {
            figure: self.weekly_total(breakdown, area)?,
            england: self.headline(),
            previous: total_of(previous, area).and_then(|p| p.rate()),
        })
    }

    /// An area's published figure for an annual period.
    pub fn annual_figure(
        &self,
        breakdown: Breakdown,
        period: CohortPeriod,
        area: &str,
    ) -> Option<Published> {
        let (_, cells) = self.annual.iter().find(|(b, _)| *b == breakdown)?;
        cells.get(&(period, area.to_owned())).copied()
    }

    /// An area's figure for an annual period compared with England's and the period before.
    pub fn annual_compared(
        &self,
        breakdown: Breakdown,
        period: CohortPeriod,
        area: &str,
    ) -> Option<Compared> {
        let england = self
            .annual_figure(Breakdown::England, period, ENGLAND)
            .and_then(|p| p.rate());
        let before = year_before(period);
        Some(Compared {
            figure: self.annual_figure(breakdown, period, area)?,
            england,
            previous: self
                .annual_figure(breakdown, before, area)
                .and_then(|p| p.rate()),
        })
    }

    /// The areas of `breakdown` with a figure for the report's year, England excluded.
    pub fn annual_areas(&self, breakdown: Breakdown) -> Vec<&str> {
        self.areas_in(breakdown, self.year)
    }

    /// The areas of `breakdown` with a figure for an annual `period`, England excluded.
    pub fn areas_in(&self, breakdown: Breakdown, period: CohortPeriod) -> Vec<&str> {
        self.annual
            .iter()
            .find(|(b, _)| *b == breakdown)
            .map(|(_, cells)| {
                cells
                    .range((period, String::new())..)
                    .take_while(|((p, _), _)| *p == period)
                    .map(|((_, a), _)| a.as_str())
                    .filter(|a| *a != ENGLAND)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The local authorities with a page in the report.
    pub fn local_authorities(&self) -> Vec<&str> {
        self.annual_areas(Breakdown::LocalAuthority)
    }

    /// The eight quarters of the report, oldest first.
    pub fn quarters(&self) -> Vec<CohortPeriod> {
        self.annual_periods
            .iter()
            .filter(|p| matches!(p, CohortPeriod::Quarter { .. }))
            .copied()
            .collect()
    }

    /// The status of a period's figures in this report.
    pub fn status_of(&self, period: &CohortPeriod) -> FigureStatus {
        self.periods
            .iter()
            .find(|(p, _)| p == period)
            .map(|(_, s)| *s)
            .or_else(|| {
                let i = self.cohorts.iter().position(|c| c == period)?;
                Some(self.status[i])
            })
            .unwrap_or(FigureStatus::Provisional)
    }

    /// Final only when every weekly cohort is.
    pub fn weekly_status(&self) -> FigureStatus {
        if self.status.iter().all(|s| *s == FigureStatus::Final) {
            FigureStatus::Final
        } else {
            FigureStatus::Provisional
        }
    }

    /// The label of the 52-week total, e.g. `2025-W45 to 2026-W44`.
    pub fn weeks_label(&self) -> String {
        format!(
            "{} to {}",
            self.cohorts[0],
            self.cohorts[self.cohorts.len() - 1]
        )
    }

    /// The headline for a terminal: England and each region over the 52 cohorts, then the
    /// year, against 75%.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "continuity rate, release weeks {} (as at {}), ambition 75%\n",
            self.weeks_label(),
            self.as_at
        );
        let line = |area: &str, cell: &Published| match cell.rate() {
            Some(r) => format!(
                "  {area:<40} {:>6}  (95% CI {} to {}, {} finalised)  {}\n",
                pct(r.rate),
                pct(r.lower),
                pct(r.upper),
                cell.finalised.unwrap_or(0),
                gap_words(&r)
            ),
            None => format!("  {area:<40} {}\n", withheld_or_dash(cell)),
        };
        if let Some(total) = self.weekly_total(Breakdown::England, ENGLAND) {
            out.push_str(&line("England", &total));
        }
        let (from, to) = self.last_12_months.date_range();
        let _ = writeln!(out, "regions, releases {from} to {to}:");
        for area in self.areas_in(Breakdown::Region, self.last_12_months) {
            if let Some(p) = self.annual_figure(Breakdown::Region, self.last_12_months, area) {
                out.push_str(&line(&named(Breakdown::Region, area), &p));
            }
        }
        let published = self
            .local_authorities()
            .into_iter()
            .filter(|a| {
                self.annual_figure(Breakdown::LocalAuthority, self.year, a)
                    .is_some_and(|p| p.rate().is_some())
            })
            .count();
        let _ = writeln!(
            out,
            "{}: {} of {} local authorities have a published annual rate",
            self.year,
            published,
            self.local_authorities().len()
        );
        out
    }

    /// The tidy CSV: one row per breakdown × area × period, England only under `england` (so
    /// a breakdown's column sums to England's), names beside codes. Columns are described in
    /// `docs/report-csv.md`.
    pub fn csv(&self) -> String {
        let mut out = String::from(CSV_HEADER);
        out.push('\n');
        let mut row = |breakdown: Breakdown,
                       area: &str,
                       period: String,
                       kind: &str,
                       status: FigureStatus,
                       c: Compared| {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{}",
                breakdown.code(),
                csv_field(area),
                csv_field(name_of(breakdown, area).unwrap_or("")),
                period,
                kind,
                status_code(status),
                figures(&c)
            );
        };
        for grid in &self.grids {
            let england = self.grid(Breakdown::England).map(|g| &g.totals);
            for (area, cells) in grid.areas.iter().zip(&grid.rows) {
                for (i, cell) in cells.iter().enumerate() {
                    let c = Compared {
                        figure: *cell,
                        england: england.and_then(|t| t.get(i)).and_then(|p| p.rate()),
                        previous: None,
                    };
                    match self.cohorts.get(i) {
                        Some(week) => row(
                            grid.breakdown,
                            area,
                            week.to_string(),
                            "iso_week",
                            self.status[i],
                            c,
                        ),
                        None => {
                            let c = self.weekly_compared(grid.breakdown, area).unwrap_or(c);
                            row(
                                grid.breakdown,
                                area,
                                self.weeks_label(),
                                "52_weeks",
                                self.weekly_status(),
                                c,
                            )
                        }
                    }
                }
            }
        }
        for (breakdown, cells) in &self.annual {
            for (period, area) in cells.keys() {
                if area == ENGLAND && *breakdown != Breakdown::England {
                    continue;
                }
                if let Some(c) = self.annual_compared(*breakdown, *period, area) {
                    row(
                        *breakdown,
                        area,
                        period.to_string(),
                        period_kind(period),
                        self.status_of(period),
                        c,
                    );
                }
            }
        }
        out
    }
}

/// The CSV's columns (see `docs/report-csv.md`).
pub const CSV_HEADER: &str = "breakdown,area,area_name,period,period_kind,status,finalised,\
engaged,rate,lower,upper,gap_to_ambition_pp,compared_with_england,compared_with_ambition,\
change_pp,suppressed";

fn total_of(grid: &PublishedGrid, area: &str) -> Option<Published> {
    if area == ENGLAND {
        return grid.totals.last().copied();
    }
    let row = grid.areas.iter().position(|a| a == area)?;
    grid.rows[row].last().copied()
}

/// The stored code of a period's kind in the CSV.
pub fn period_kind(period: &CohortPeriod) -> &'static str {
    match period {
        CohortPeriod::IsoWeek { .. } => "iso_week",
        CohortPeriod::Month { .. } => "month",
        CohortPeriod::Quarter { .. } => "quarter",
        CohortPeriod::FinancialYear { .. } => "financial_year",
        CohortPeriod::Rolling12Months { .. } => "rolling_12_months",
    }
}

/// The shipped name of an area's code under `breakdown` (regions, local authorities, prisons).
pub fn name_of(breakdown: Breakdown, code: &str) -> Option<&'static str> {
    let names = continuity_reference::Names::shipped();
    match breakdown {
        Breakdown::England => (code == ENGLAND).then_some("England"),
        Breakdown::Region => names.region(code),
        Breakdown::LocalAuthority => names.area(code),
        Breakdown::Prison => names.prison(code),
        Breakdown::Provider => None,
    }
}

/// `Name (CODE)`, or the code when it has no name.
pub fn named(breakdown: Breakdown, code: &str) -> String {
    match name_of(breakdown, code) {
        Some(name) if breakdown == Breakdown::England => name.to_owned(),
        Some(name) => format!("{name} ({code})"),
        None => code.to_owned(),
    }
}

/// The status as written in the CSV.
pub fn status_code(s: FigureStatus) -> &'static str {
    match s {
        FigureStatus::Provisional => "provisional",
        FigureStatus::Final => "final",
    }
}

fn figures(c: &Compared) -> String {
    let cell = &c.figure;
    let word = |x: Option<Comparison>| {
        x.map_or("", |x| match x {
            Comparison::Higher => "higher",
            Comparison::Similar => "similar",
            Comparison::Lower => "lower",
        })
    };
    let (compared, ambition) = (word(c.against_england()), word(c.against_ambition()));
    let change = c.change_pp().map(|x| format!("{x:.1}")).unwrap_or_default();
    match cell.rate() {
        Some(r) => format!(
            "{},{},{:.4},{:.4},{:.4},{:.1},{compared},{ambition},{change},false",
            cell.finalised.unwrap_or(0),
            cell.engaged.unwrap_or(0),
            r.rate,
            r.lower,
            r.upper,
            r.gap_to_ambition()
        ),
        None if cell.is_suppressed() => ",,,,,,,,,true".into(),
        None => format!(
            "{},{},,,,,,,,false",
            cell.finalised.unwrap_or(0),
            cell.engaged.unwrap_or(0)
        ),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A rate as a percentage with one decimal.
pub fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// `[c]` for a withheld figure, a dash for nothing to show.
pub fn withheld_or_dash(cell: &Published) -> String {
    if cell.is_suppressed() {
        "[c]".into()
    } else {
        "–".into()
    }
}

/// The rate against 75% in words: "26.3 points below" (the report's one convention: a gap is
/// below or above, never a signed number).
pub fn gap_words(r: &ContinuityRate) -> String {
    let gap = r.gap_to_ambition();
    if gap > 0.0 {
        format!("{gap:.1} points below")
    } else {
        format!("{:.1} points above", -gap)
    }
}

/// The date of the scheduled run on or after `from`: `weekday` at `hour`:00 Europe/London.
pub fn next_run(
    from: chrono::DateTime<chrono::Utc>,
    weekday: Weekday,
    hour: u32,
) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    let london = chrono_tz::Europe::London;
    let local = from.with_timezone(&london).date_naive();
    for ahead in 0..=7 {
        let day = local + Duration::days(ahead);
        if day.weekday() != weekday {
            continue;
        }
        if let Some(at) = day
            .and_hms_opt(hour, 0, 0)
            .and_then(|t| london.from_local_datetime(&t).earliest())
        {
            let at = at.with_timezone(&chrono::Utc);
            if at > from {
                return at;
            }
        }
    }
    from + Duration::days(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_and_prisons_are_named_beside_their_codes() {
        assert_eq!(
            named(Breakdown::Region, "E12000008"),
            "South East (E12000008)"
        );
        assert_eq!(
            named(Breakdown::LocalAuthority, "E10000025"),
            "Oxfordshire (E10000025)"
        );
        assert_eq!(
            named(Breakdown::Prison, "MDI"),
            "Moorland (HMP & YOI) (MDI)"
        );
        assert_eq!(named(Breakdown::Provider, "PRV001"), "PRV001");
        assert_eq!(named(Breakdown::LocalAuthority, "E06999999"), "E06999999");
        assert_eq!(named(Breakdown::England, ENGLAND), "England");
    }

    #[test]
    fn the_annual_periods_are_two_years_their_quarters_and_rolling_years() {
        let year = CohortPeriod::FinancialYear { start_year: 2025 };
        let periods = annual_periods(year);
        assert_eq!(periods.len(), 2 + 8 + 8);
        assert_eq!(periods[0].to_string(), "FY2024-25");
        assert_eq!(periods[2].to_string(), "R12-2024-06");
        assert_eq!(periods[9].to_string(), "R12-2026-03");
        assert_eq!(periods[17].to_string(), "FY2025-26-Q4");
    }
}
