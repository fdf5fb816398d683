//! The weekly commissioners' report: the 52 weekly release cohorts whose windows had closed by
//! the end of the reporting week, per breakdown, as published (disclosure control applied),
//! rendered as a self-contained HTML page and a CSV of the same table.
//!
//! Its length is the page and the CSV, which must say the same thing: they are built from
//! one table here, side by side.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use continuity_domain::{
    figure_status, published_grid, Breakdown, CellKey, CohortPeriod, ContinuityRate, FigureStatus,
    Published, PublishedGrid, Rules, Tally, AMBITION,
};

/// Weekly cohorts in a report.
pub const WEEKS: usize = 52;

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
    /// Per breakdown, the cohorts as published.
    pub grids: Vec<PublishedGrid>,
    /// Per breakdown, the 52 cohorts before, for the change since the previous period.
    pub previous: Vec<PublishedGrid>,
    /// The other cohorts published with the report, with their status: the last 12 months
    /// whose windows had all closed by `as_at`, the rolling 12 months ending with each, and
    /// the last two complete financial years.
    pub periods: Vec<(CohortPeriod, FigureStatus)>,
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
    week: CohortPeriod,
    rules: &Rules,
    settling_days: u32,
) -> Report {
    let (_, as_at) = week.date_range();
    let newest = as_at - Duration::days(i64::from(rules.window_days));
    let cohorts = weeks_ending(newest, WEEKS);
    let before = weeks_ending(cohorts[0].date_range().0 - Duration::days(1), WEEKS);
    let periods = other_periods(as_at, rules)
        .into_iter()
        .map(|p| (p, figure_status(&p, rules, settling_days, as_at)))
        .collect();
    Report {
        week,
        as_at,
        periods,
        status: cohorts
            .iter()
            .map(|c| figure_status(c, rules, settling_days, as_at))
            .collect(),
        grids: Breakdown::ALL
            .iter()
            .map(|b| published_grid(cells, *b, &cohorts))
            .collect(),
        previous: Breakdown::ALL
            .iter()
            .map(|b| published_grid(cells, *b, &before))
            .collect(),
        cohorts,
    }
}

/// The months, rolling 12 months and financial years published with the report at `as_at`:
/// only periods whose every window had closed, so new releases never change them.
fn other_periods(as_at: NaiveDate, rules: &Rules) -> Vec<CohortPeriod> {
    let closed = |p: &CohortPeriod| rules.last_window_day(p.date_range().1) < as_at;
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
    let rolling = months.iter().map(|m| {
        let (_, end) = m.date_range();
        CohortPeriod::Rolling12Months {
            end_year: end.year(),
            end_month: end.month(),
        }
    });
    let mut year = CohortPeriod::financial_year(as_at);
    while !closed(&year) {
        year = year.previous();
    }
    let mut out = months.clone();
    out.extend(rolling);
    out.extend([year.previous(), year]);
    out
}

/// `n` ISO weeks ending with the week containing `last`, oldest first.
fn weeks_ending(last: NaiveDate, n: usize) -> Vec<CohortPeriod> {
    (0..n)
        .rev()
        .map(|i| CohortPeriod::iso_week(last - Duration::weeks(i as i64)))
        .collect()
}

impl Report {
    /// The grid of `breakdown`.
    pub fn grid(&self, breakdown: Breakdown) -> Option<&PublishedGrid> {
        self.grids.iter().find(|g| g.breakdown == breakdown)
    }

    /// England over the 52 cohorts.
    pub fn headline(&self) -> Option<ContinuityRate> {
        self.grid(Breakdown::England)?.totals.last()?.rate()
    }

    /// An area's total over the 52 cohorts.
    fn total(&self, breakdown: Breakdown, area: &str) -> Option<Published> {
        let grid = self.grid(breakdown)?;
        let row = grid.areas.iter().position(|a| a == area)?;
        grid.rows[row].last().copied()
    }

    /// The local authorities with a row in the report.
    pub fn local_authorities(&self) -> Vec<&str> {
        self.grid(Breakdown::LocalAuthority)
            .map(|g| g.areas.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// One local authority's page (`/reports/<week>/<code>`): its rate over the 52 cohorts
    /// against its region's, England's and the 75% ambition, first in words, then in a table.
    /// `region` is the authority's region code. Withheld figures stay withheld.
    pub fn area_html(&self, area: &str, region: &str) -> String {
        let name = named(Breakdown::LocalAuthority, area);
        let region_name = named(Breakdown::Region, region);
        let title = format!("Continuity of care: {name}, week {}", self.week);
        let mut h = String::new();
        let _ = write!(
            h,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
             <style>{STYLE}</style></head><body><main><h1>{t}</h1>\
             <p class=\"note\">How to read this: the rate is the share of people released from \
             prison with a treatment need who started community treatment within 21 days, over \
             releases in the weeks {first} to {last}. The 95% interval is the range the true \
             rate is likely to lie in given the number of people. [c] means withheld because a \
             count is small enough to identify someone. Figures are {status}.</p>",
            t = escape(&title),
            first = self.cohorts[0],
            last = self.cohorts[self.cohorts.len() - 1],
            status = status_word(self.overall_status()),
        );
        let ours = self.total(Breakdown::LocalAuthority, area);
        let theirs = self.total(Breakdown::Region, region);
        let england = self
            .grid(Breakdown::England)
            .and_then(|g| g.totals.last().copied());
        let words = match ours.and_then(|c| c.rate()) {
            Some(r) => {
                let compare = |label: &str, other: Option<Published>| match other
                    .and_then(|o| o.rate())
                {
                    Some(o) if r.lower > o.upper => {
                        format!("higher than {label} ({})", pct(o.rate))
                    }
                    Some(o) if r.upper < o.lower => format!("lower than {label} ({})", pct(o.rate)),
                    Some(o) => format!("similar to {label} ({})", pct(o.rate)),
                    None => format!("not comparable with {label} (withheld)"),
                };
                format!(
                    "{} started treatment within 21 days of release: <strong>{}</strong> (95% \
                     interval {} to {}), {}. That is {}, and {}.",
                    escape(&name),
                    pct(r.rate),
                    pct(r.lower),
                    pct(r.upper),
                    gap_words(&r),
                    compare(&format!("the region, {}", escape(&region_name)), theirs),
                    compare("England", england),
                )
            }
            None => format!(
                "{}'s rate is withheld ([c]) or there are no finalised cases: the counts are too \
                 small to publish for these weeks.",
                escape(&name)
            ),
        };
        let _ = write!(h, "<p class=\"headline\" id=\"headline\">{words}</p>");
        let _ = write!(
            h,
            "<table><caption>{} against the region, England and the 75% ambition</caption>\
             <thead><tr><th scope=\"col\">Area</th><th scope=\"col\">Finalised</th>\
             <th scope=\"col\">Engaged</th><th scope=\"col\">Rate</th>\
             <th scope=\"col\">95% interval</th><th scope=\"col\">Against 75%</th></tr></thead><tbody>",
            escape(&name)
        );
        for (label, cell) in [
            (name.clone(), ours),
            (format!("Region: {region_name}"), theirs),
            ("England".to_owned(), england),
        ] {
            let Some(cell) = cell else { continue };
            let _ = write!(
                h,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td>{}</tr>",
                escape(&label),
                count(cell.finalised),
                count(cell.engaged),
                rate_cells(&cell),
            );
        }
        let _ = write!(
            h,
            "</tbody></table><p><a href=\"continuity-{w}.html\">Every area, week {w}</a></p>\
             </main></body></html>",
            w = self.week
        );
        h
    }

    /// An area's total over the previous 52 cohorts.
    fn previous_total(&self, breakdown: Breakdown, area: &str) -> Option<Published> {
        let grid = self.previous.iter().find(|g| g.breakdown == breakdown)?;
        let row = grid.areas.iter().position(|a| a == area)?;
        grid.rows[row].last().copied()
    }

    /// The headline for a terminal: England and each region over the 52 cohorts against 75%.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "continuity rate, release weeks {} to {} (as at {}), ambition 75%\n",
            self.cohorts[0],
            self.cohorts[self.cohorts.len() - 1],
            self.as_at
        );
        let line = |area: &str, cell: &Published| match cell.rate() {
            Some(r) => format!(
                "  {area:<30} {:>6}  (95% CI {} to {}, {} finalised)  {}\n",
                pct(r.rate),
                pct(r.lower),
                pct(r.upper),
                cell.finalised.unwrap_or(0),
                gap_words(&r)
            ),
            None => format!("  {area:<30} {}\n", withheld_or_dash(cell)),
        };
        if let Some(total) = self.grid(Breakdown::England).and_then(|g| g.totals.last()) {
            out.push_str(&line("England", total));
        }
        // Regions when the lookup names them; otherwise the ten largest local authorities.
        let regions = self.grid(Breakdown::Region).filter(|g| {
            g.areas
                .iter()
                .any(|a| a != continuity_domain::performance::UNKNOWN)
        });
        let grid = regions.or(self.grid(Breakdown::LocalAuthority));
        if let Some(grid) = grid {
            let mut rows: Vec<_> = grid.areas.iter().zip(&grid.rows).collect();
            rows.sort_by_key(|(_, row)| std::cmp::Reverse(row.last().and_then(|c| c.finalised)));
            for (area, row) in rows.into_iter().take(10) {
                if let Some(total) = row.last() {
                    out.push_str(&line(&named(grid.breakdown, area), total));
                }
            }
        }
        out
    }

    /// The CSV of every published cell: one row per area and cohort, then the area's total.
    /// `area_name` is the shipped name of the code (empty where there is none: providers).
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "breakdown,area,area_name,cohort,status,finalised,engaged,rate,lower,upper,gap_to_ambition_pp,suppressed\n",
        );
        let total = format!(
            "{} to {}",
            self.cohorts[0],
            self.cohorts[self.cohorts.len() - 1]
        );
        for grid in &self.grids {
            // Each area once, England's under its own breakdown: a column sums to England.
            for (area, cells) in grid.areas.iter().zip(&grid.rows) {
                for (i, cell) in cells.iter().enumerate() {
                    let (cohort, status) = match self.cohorts.get(i) {
                        Some(c) => (c.to_string(), status_code(self.status[i])),
                        None => (total.clone(), status_code(self.overall_status())),
                    };
                    let _ = writeln!(
                        out,
                        "{},{},{},{},{},{}",
                        grid.breakdown.code(),
                        csv_field(area),
                        csv_field(name_of(grid.breakdown, area).unwrap_or("")),
                        cohort,
                        status,
                        figures(cell)
                    );
                }
            }
        }
        out
    }

    /// Final only when every cohort is.
    fn overall_status(&self) -> FigureStatus {
        if self.status.iter().all(|s| *s == FigureStatus::Final) {
            FigureStatus::Final
        } else {
            FigureStatus::Provisional
        }
    }

    /// The self-contained HTML page.
    pub fn html(&self) -> String {
        let mut h = String::new();
        let title = format!("Continuity of care: week {}", self.week);
        let _ = write!(
            h,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
             <style>{STYLE}</style></head><body><h1>{title}</h1>\
             <p>People released from prison with a substance-misuse treatment need who started \
             community treatment within 21 days of release (the national ambition is {ambition}%). \
             Cohorts by week of release, {first} to {last}: the newest whose windows had all \
             closed by {as_at}. Figures are <strong>{status}</strong>.</p>",
            ambition = AMBITION * 100.0,
            first = self.cohorts[0],
            last = self.cohorts[self.cohorts.len() - 1],
            as_at = self.as_at.format("%-d %B %Y"),
            status = status_word(self.overall_status()),
        );
        if let Some(r) = self.headline() {
            let _ = write!(
                h,
                "<p class=\"headline\" id=\"headline\">England: <strong>{}</strong> \
                 (95% CI {} to {}), {} the 75% ambition</p>",
                pct(r.rate),
                pct(r.lower),
                pct(r.upper),
                gap_words(&r),
            );
        }
        h.push_str("<h2>Weekly and rolling 13-week rate</h2>");
        let charts = self
            .grid(Breakdown::England)
            .into_iter()
            .chain(self.grid(Breakdown::Region));
        for grid in charts {
            for (area, row) in grid.areas.iter().zip(&grid.rows) {
                let label = if grid.breakdown == Breakdown::England {
                    "England".to_string()
                } else {
                    format!("Region: {}", named(grid.breakdown, area))
                };
                h.push_str(&chart(&label, &row[..row.len() - 1]));
            }
        }
        if let Some(grid) = self.grid(Breakdown::LocalAuthority) {
            let _ = write!(
                h,
                "<details><summary>By local authority ({} charts)</summary>",
                grid.areas.len()
            );
            for (area, row) in grid.areas.iter().zip(&grid.rows) {
                h.push_str(&chart(
                    &format!("Local authority: {}", named(grid.breakdown, area)),
                    &row[..row.len() - 1],
                ));
            }
            h.push_str("</details>");
        }
        for breakdown in [
            Breakdown::Region,
            Breakdown::LocalAuthority,
            Breakdown::Prison,
            Breakdown::Provider,
        ] {
            if let Some(grid) = self.grid(breakdown) {
                self.table(&mut h, grid);
            }
        }
        h.push_str(
            "<p class=\"note\">[c] withheld: a count of 1 to 4, or a figure from which one could \
             be worked out (disclosure control). Rates are engaged ÷ finalised; excluded cases \
             (died, re-admitted, deported, released to hospital or outside England) and cases \
             still in their window are not in the denominator.</p></body></html>",
        );
        h
    }

    fn table(&self, h: &mut String, grid: &PublishedGrid) {
        let heading = match grid.breakdown {
            Breakdown::Region => "By region",
            Breakdown::LocalAuthority => "By local authority of residence",
            Breakdown::Prison => "By releasing prison",
            Breakdown::Provider => "By community provider",
            Breakdown::England => "England",
        };
        let _ = write!(
            h,
            "<h2>{heading}</h2><table class=\"{}\"><thead><tr><th>Area</th><th>Finalised</th>\
             <th>Engaged</th><th>Rate</th><th>95% interval</th><th>Against 75%</th>\
             <th>Change since previous 52 weeks</th><th>Newest week</th></tr></thead><tbody>",
            grid.breakdown.code()
        );
        for (area, cells) in grid.rows_with_total("England") {
            let total = cells[cells.len() - 1];
            let newest = cells[cells.len() - 2];
            let previous = if area == "England" {
                self.previous
                    .iter()
                    .find(|g| g.breakdown == grid.breakdown)
                    .and_then(|g| g.totals.last().copied())
            } else {
                self.previous_total(grid.breakdown, area)
            };
            let change = match (total.rate(), previous.and_then(|p| p.rate())) {
                (Some(now), Some(before)) => format!("{:+.1} pp", (now.rate - before.rate) * 100.0),
                _ => "–".into(),
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td>{}<td>{change}</td><td>{}</td></tr>",
                escape(&named(grid.breakdown, area)),
                count(total.finalised),
                count(total.engaged),
                rate_cells(&total),
                newest
                    .rate()
                    .map_or_else(|| withheld_or_dash(&newest), |r| pct(r.rate)),
            );
        }
        h.push_str("</tbody></table>");
    }
}

/// The shipped name of an area's code under `breakdown` (regions, local authorities, prisons).
fn name_of(breakdown: Breakdown, code: &str) -> Option<&'static str> {
    let names = continuity_reference::Names::shipped();
    match breakdown {
        Breakdown::Region => names.region(code),
        Breakdown::LocalAuthority => names.area(code),
        Breakdown::Prison => names.prison(code),
        Breakdown::England | Breakdown::Provider => None,
    }
}

/// `Name (CODE)`, or the code when it has no name.
fn named(breakdown: Breakdown, code: &str) -> String {
    match name_of(breakdown, code) {
        Some(name) => format!("{name} ({code})"),
        None => code.to_owned(),
    }
}

fn status_code(s: FigureStatus) -> &'static str {
    match s {
        FigureStatus::Provisional => "provisional",
        FigureStatus::Final => "final",
    }
}

fn status_word(s: FigureStatus) -> &'static str {
    match s {
        FigureStatus::Provisional => "provisional (community data can still arrive)",
        FigureStatus::Final => "final",
    }
}

fn figures(cell: &Published) -> String {
    match cell.rate() {
        Some(r) => format!(
            "{},{},{:.4},{:.4},{:.4},{:.1},false",
            cell.finalised.unwrap_or(0),
            cell.engaged.unwrap_or(0),
            r.rate,
            r.lower,
            r.upper,
            r.gap_to_ambition()
        ),
        None if cell.is_suppressed() => ",,,,,,true".into(),
        None => format!(
            "{},{},,,,,false",
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

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn count(n: Option<u64>) -> String {
    n.map_or_else(|| "[c]".into(), |n| n.to_string())
}

fn withheld_or_dash(cell: &Published) -> String {
    if cell.is_suppressed() {
        "[c]".into()
    } else {
        "–".into()
    }
}

fn gap_words(r: &ContinuityRate) -> String {
    let gap = r.gap_to_ambition();
    if gap > 0.0 {
        format!("{gap:.1} points below")
    } else {
        format!("{:.1} points above", -gap)
    }
}

fn rate_cells(cell: &Published) -> String {
    match cell.rate() {
        Some(r) => format!(
            "<td>{}</td><td>{} – {}</td><td>{}</td>",
            pct(r.rate),
            pct(r.lower),
            pct(r.upper),
            gap_words(&r)
        ),
        None => {
            let w = withheld_or_dash(cell);
            format!("<td>{w}</td><td>{w}</td><td>{w}</td>")
        }
    }
}

/// An inline SVG chart of weekly rates (dots), the rolling 13-week rate (line, only where all
/// 13 weeks are published, so it reveals nothing the table does not) and the 75% line.
fn chart(label: &str, weeks: &[Published]) -> String {
    let (w, h, left, top) = (720.0, 220.0, 40.0, 10.0);
    let (pw, ph) = (w - left - 10.0, h - top - 30.0);
    let x = |i: usize| left + pw * i as f64 / (weeks.len().max(2) - 1) as f64;
    let y = |r: f64| top + ph * (1.0 - r);
    let mut s = format!(
        "<figure><figcaption>{}</figcaption><svg class=\"chart\" role=\"img\" \
         aria-label=\"{} weekly continuity rate\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\">",
        escape(label),
        escape(label)
    );
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/>\
             <text x=\"{}\" y=\"{:.1}\" class=\"tick\">{:.0}%</text>",
            w - 10.0,
            left - 4.0,
            y(tick) + 4.0,
            tick * 100.0,
            y = y(tick)
        );
    }
    let _ = write!(
        s,
        "<line class=\"ambition\" x1=\"{left}\" x2=\"{}\" y1=\"{a:.1}\" y2=\"{a:.1}\"/>",
        w - 10.0,
        a = y(AMBITION)
    );
    let mut line = String::new();
    for i in 12..weeks.len() {
        let window = &weeks[i - 12..=i];
        let (mut e, mut f) = (0, 0);
        let complete = window.iter().all(|c| match (c.engaged, c.finalised) {
            (Some(a), Some(b)) => {
                e += a;
                f += b;
                true
            }
            _ => false,
        });
        if let (true, Some(r)) = (complete, ContinuityRate::new(e, f)) {
            let _ = write!(line, "{:.1},{:.1} ", x(i), y(r.rate));
        }
    }
    if !line.is_empty() {
        let _ = write!(
            s,
            "<polyline class=\"rolling\" points=\"{}\"/>",
            line.trim_end()
        );
    }
    for (i, cell) in weeks.iter().enumerate() {
        if let Some(r) = cell.rate() {
            let _ = write!(
                s,
                "<circle class=\"week\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\"/>",
                x(i),
                y(r.rate)
            );
        }
    }
    s.push_str("</svg></figure>");
    s
}

const STYLE: &str =
    "body{font-family:system-ui,sans-serif;margin:2em;color:#0b0c0c;max-width:1100px}\
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.5em}.headline{font-size:1.3em}\
table{border-collapse:collapse;margin:0.5em 0}th,td{border:1px solid #b1b4b6;padding:2px 8px;\
text-align:right}td:first-child,th:first-child{text-align:left}\
.chart .grid{stroke:#dddddd}.chart .tick{font-size:10px;text-anchor:end;fill:#505a5f}\
.chart .ambition{stroke:#d4351c;stroke-dasharray:6 4;stroke-width:2}\
.chart .rolling{fill:none;stroke:#1d70b8;stroke-width:2}.chart .week{fill:#505a5f}\
figure{margin:0.5em 0}figcaption{font-weight:bold}.note{color:#505a5f;font-size:0.9em}";

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
    }
}
