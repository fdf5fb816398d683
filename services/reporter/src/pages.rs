//! The report's pages, self-contained HTML (inline style, SVG and one small sorting script):
//! the weekly page for England and the regions with every area's year, one page per local
//! authority (`/reports/<week>/<code>`) and the national page (`/reports/<week>/national`)
//! with every authority in one sortable table and a funnel plot.
//!
//! Each page opens with how to read it; rates are always shown with their 95% interval, the
//! comparison with England (the interval against England's value, as PHOF indicators do) and
//! the gap to 75% in words (below or above, one convention everywhere). Charts have labelled
//! axes, a legend, the 75% line and a text alternative; tables have captions and header scope.
//! Written by hand rather than with a template engine: every string is built here from
//! numbers, codes and the shipped names, escaped once by [`escape`].

use std::fmt::Write;

use continuity_domain::performance::ENGLAND;
use continuity_domain::{
    funnel_limits, Breakdown, CohortPeriod, Comparison, ContinuityRate, FigureStatus, Published,
    AMBITION, Z95, Z998,
};

use crate::report::{gap_words, named, pct, withheld_or_dash, Compared, Report};

/// Escape text for HTML content and attributes.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn status_word(s: FigureStatus) -> &'static str {
    match s {
        FigureStatus::Provisional => "provisional (community data can still arrive)",
        FigureStatus::Final => "final",
    }
}

fn comparison_word(c: Option<Comparison>) -> &'static str {
    match c {
        Some(Comparison::Higher) => "higher",
        Some(Comparison::Similar) => "similar",
        Some(Comparison::Lower) => "lower",
        None => "–",
    }
}

/// A period as a reader names it: a quarter by its months (`Apr-Jun 2026`), others by code.
fn period_label(p: &CohortPeriod) -> String {
    match p {
        CohortPeriod::Quarter { .. } => {
            let (start, end) = p.date_range();
            format!("{}–{}", start.format("%b"), end.format("%b %Y"))
        }
        _ => p.to_string(),
    }
}

fn count(n: Option<u64>) -> String {
    n.map_or_else(|| "[c]".into(), |n| n.to_string())
}

fn change_words(c: &Compared) -> String {
    match c.change_pp() {
        Some(x) if x.abs() < 0.05 => "no change".into(),
        Some(x) if x > 0.0 => format!("up {x:.1} points"),
        Some(x) => format!("down {:.1} points", -x),
        None => "–".into(),
    }
}

/// The page's head, opening `<main>` and the reading guide.
fn open(h: &mut String, title: &str, guide: &str) {
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style></head><body><main><h1>{t}</h1>\
         <section class=\"guide\" aria-labelledby=\"guide\"><h2 id=\"guide\">How to read this</h2>\
         <p>The <strong>rate</strong> is the share of people released from prison with a \
         drug or alcohol treatment need who started community treatment within 21 days of \
         release; the national ambition is 75%. {guide}</p><ul>\
         <li>The <strong>95% interval</strong> is the range the true rate is likely to lie in, \
         given how many people there were: small areas have wide intervals.</li>\
         <li><strong>Higher</strong>, <strong>similar</strong> or <strong>lower</strong> than \
         England: England's rate is below, inside or above the area's interval.</li>\
         <li>Against 75% is always said as points <strong>below</strong> or \
         <strong>above</strong> the ambition.</li>\
         <li><strong>Provisional</strong> figures can still change as community data arrives; \
         <strong>final</strong> ones are settled, and any later change is published as a \
         revision.</li>\
         <li><strong>[c]</strong> means withheld: a count of 1 to 4, or a figure from which one \
         could be worked out.</li></ul></section>",
        t = escape(title),
    );
}

fn close(h: &mut String, script: bool) {
    h.push_str(
        "<p class=\"note\">Rates are engaged ÷ finalised. People who died, were re-admitted to \
         custody, deported, released to hospital or outside England leave the measure; people \
         still inside their 21 days are not yet counted.</p></main>",
    );
    if script {
        h.push_str(SORT_SCRIPT);
    }
    h.push_str("</body></html>");
}

/// Rate cells: rate, interval, against England, against 75%.
fn rate_cells(c: &Compared) -> String {
    match c.rate() {
        Some(r) => format!(
            "<td data-sort=\"{:.6}\">{}</td><td>{} to {}</td><td>{}</td><td data-sort=\"{:.6}\">{}</td>",
            r.rate,
            pct(r.rate),
            pct(r.lower),
            pct(r.upper),
            comparison_word(c.against_england()),
            -r.gap_to_ambition(),
            gap_words(&r)
        ),
        None => {
            let w = withheld_or_dash(&c.figure);
            format!("<td data-sort=\"-1\">{w}</td><td>{w}</td><td>{w}</td><td data-sort=\"-999\">{w}</td>")
        }
    }
}

const RATE_HEADERS: &str = "<th scope=\"col\">Finalised</th><th scope=\"col\">Engaged</th>\
<th scope=\"col\">Rate</th><th scope=\"col\">95% interval</th>\
<th scope=\"col\">Compared with England</th><th scope=\"col\">Against 75%</th>";

fn figure_row(label: &str, c: &Compared, sortable: bool) -> String {
    let change = change_words(c);
    let order = c.change_pp().unwrap_or(-999.0);
    let name_sort = if sortable {
        format!(" data-sort=\"{}\"", escape(label))
    } else {
        String::new()
    };
    format!(
        "<tr><th scope=\"row\"{name_sort}>{label}</th><td data-sort=\"{}\">{}</td><td>{}</td>{}\
         <td data-sort=\"{order:.3}\">{change}</td></tr>",
        c.figure.finalised.map_or(-1, |n| n as i64),
        count(c.figure.finalised),
        count(c.figure.engaged),
        rate_cells(c),
    )
}

impl Report {
    /// The weekly page: England and the regions over 52 weeks, then every breakdown's year.
    pub fn html(&self) -> String {
        let mut h = String::new();
        let title = format!("Continuity of care: week {}", self.week);
        open(
            &mut h,
            &title,
            &format!(
                "England and the regions are shown by week of release, {weeks}: the newest \
                 weeks whose 21 days had all passed by {as_at}. Local authorities, prisons and \
                 providers are shown by financial year and quarter, so that small areas can \
                 be published too. Weekly figures are {status}.",
                weeks = self.weeks_label(),
                as_at = self.as_at.format("%-d %B %Y"),
                status = status_word(self.weekly_status()),
            ),
        );
        if let Some(r) = self.headline() {
            let _ = write!(
                h,
                "<p class=\"headline\" id=\"headline\">England: <strong>{}</strong> of people \
                 started treatment within 21 days (95% interval {} to {}), {} the 75% ambition, \
                 over releases in the weeks {}.</p>",
                pct(r.rate),
                pct(r.lower),
                pct(r.upper),
                gap_words(&r),
                self.weeks_label()
            );
        }
        // Regions: the last 12 months (months are large enough to publish for regions when
        // weeks are not).
        let r12 = self.last_12_months;
        let (from, to) = r12.date_range();
        let _ = write!(
            h,
            "<h2>England and the regions, last 12 months</h2><table class=\"sortable\" id=\"regions\">\
             <caption>Continuity rate by region of residence, releases {} to {}</caption>\
             <thead><tr><th scope=\"col\">Area</th>{RATE_HEADERS}\
             <th scope=\"col\">Change since a year earlier</th></tr></thead><tbody>",
            from.format("%-d %B %Y"),
            to.format("%-d %B %Y"),
        );
        if let Some(c) = self.annual_compared(Breakdown::England, r12, ENGLAND) {
            h.push_str(&figure_row("England", &c, true));
        }
        for area in self.areas_in(Breakdown::Region, r12) {
            if let Some(c) = self.annual_compared(Breakdown::Region, r12, area) {
                h.push_str(&figure_row(
                    &escape(&named(Breakdown::Region, area)),
                    &c,
                    true,
                ));
            }
        }
        h.push_str("</tbody></table>");
        h.push_str("<h2>Weekly rate</h2>");
        for grid in &self.grids {
            // England's own grid has one area, its total; a region grid's total is England.
            let rows: Vec<(&str, &Vec<Published>)> = match grid.breakdown {
                Breakdown::England => vec![(ENGLAND, &grid.totals)],
                _ => grid
                    .areas
                    .iter()
                    .map(String::as_str)
                    .zip(&grid.rows)
                    .collect(),
            };
            for (area, row) in rows {
                let label = named(grid.breakdown, area);
                let points: Vec<(String, Published)> = self
                    .cohorts
                    .iter()
                    .zip(&row[..row.len() - 1])
                    .map(|(w, p)| (w.to_string(), *p))
                    .collect();
                h.push_str(&chart(
                    &format!("{label}: weekly continuity rate"),
                    "Week of release",
                    &points,
                    None,
                    true,
                ));
            }
        }
        let _ = write!(
            h,
            "<h2>Every area, {year}</h2><p>Financial year {year} (releases {from} to {to}), \
             {status}. <a href=\"national\">All local authorities in one table, with a funnel \
             plot</a>.</p>",
            year = self.year,
            from = self.year.date_range().0.format("%-d %B %Y"),
            to = self.year.date_range().1.format("%-d %B %Y"),
            status = status_word(self.status_of(&self.year)),
        );
        for breakdown in [
            Breakdown::LocalAuthority,
            Breakdown::Prison,
            Breakdown::Provider,
        ] {
            self.annual_table(&mut h, breakdown);
        }
        close(&mut h, true);
        h
    }

    fn annual_table(&self, h: &mut String, breakdown: Breakdown) {
        let (caption, id) = match breakdown {
            Breakdown::LocalAuthority => ("By local authority of residence", "local-authorities"),
            Breakdown::Prison => ("By releasing prison", "prisons"),
            Breakdown::Provider => ("By community treatment provider", "providers"),
            Breakdown::England | Breakdown::Region => ("By region", "regions-year"),
        };
        let _ = write!(
            h,
            "<table class=\"sortable\" id=\"{id}\"><caption>{caption}, {year}</caption><thead><tr>\
             <th scope=\"col\">Area</th>{RATE_HEADERS}<th scope=\"col\">Change since {before}</th>\
             </tr></thead><tbody>",
            year = self.year,
            before = self.year.previous(),
        );
        for area in self.annual_areas(breakdown) {
            let Some(c) = self.annual_compared(breakdown, self.year, area) else {
                continue;
            };
            let label = escape(&named(breakdown, area));
            let label = if breakdown == Breakdown::LocalAuthority {
                format!("<a href=\"{area}\">{label}</a>")
            } else {
                label
            };
            h.push_str(&figure_row(&label, &c, true));
        }
        h.push_str("</tbody></table>");
    }

    /// One local authority's page: its year against its region, England and 75%, in words
    /// first, then its last eight quarters. Withheld figures stay withheld.
    pub fn area_html(&self, area: &str) -> String {
        let region = self.regions.region_of(area).to_owned();
        let name = named(Breakdown::LocalAuthority, area);
        let region_name = named(Breakdown::Region, &region);
        let mut h = String::new();
        let title = format!("Continuity of care: {name}, {}", self.year);
        open(
            &mut h,
            &title,
            &format!(
                "Figures are for releases in financial year {} ({}), and its last eight \
                 quarters; they are {}.",
                self.year,
                escape(&format!(
                    "{} to {}",
                    self.year.date_range().0.format("%-d %B %Y"),
                    self.year.date_range().1.format("%-d %B %Y")
                )),
                status_word(self.status_of(&self.year)),
            ),
        );
        let ours = self.annual_compared(Breakdown::LocalAuthority, self.year, area);
        let theirs = self.annual_compared(Breakdown::Region, self.year, &region);
        let england = self.annual_compared(Breakdown::England, self.year, ENGLAND);
        let words = match ours.as_ref().and_then(|c| c.rate().map(|r| (c, r))) {
            Some((c, r)) => {
                let region_rate = theirs.and_then(|t| t.rate());
                let versus = |label: &str, other: Option<ContinuityRate>| match other {
                    Some(o) => format!(
                        "{} {label} ({})",
                        match r.compared_with(o.rate) {
                            Comparison::Higher => "significantly higher than",
                            Comparison::Similar => "similar to",
                            Comparison::Lower => "significantly lower than",
                        },
                        pct(o.rate)
                    ),
                    None => format!("not comparable with {label} (withheld)"),
                };
                let change = match c.change_pp() {
                    Some(_) => format!("; {} since {}", change_words(c), self.year.previous()),
                    None => String::new(),
                };
                let ambition = match c.against_ambition() {
                    Some(Comparison::Higher) => "significantly above",
                    Some(Comparison::Lower) => "significantly below",
                    _ => "not significantly different from",
                };
                format!(
                    "In {year}, <strong>{rate}</strong> of people released to {n} started \
                     treatment within 21 days (95% interval {lo} to {hi}): {gap} the 75% \
                     ambition, and {ambition} it. That is {region}, and {england}{change}.",
                    year = self.year,
                    rate = pct(r.rate),
                    n = escape(&name),
                    lo = pct(r.lower),
                    hi = pct(r.upper),
                    gap = gap_words(&r),
                    region = versus(
                        &format!("the region, {}", escape(&region_name)),
                        region_rate
                    ),
                    england = versus("England", england.and_then(|e| e.rate())),
                )
            }
            None => format!(
                "{}'s rate for {} is withheld ([c]) or there are no finalised cases: the counts \
                 are too small to publish.",
                escape(&name),
                self.year
            ),
        };
        let _ = write!(h, "<p class=\"headline\" id=\"headline\">{words}</p>");
        let _ = write!(
            h,
            "<table><caption>{} against the region, England and the 75% ambition, {}</caption>\
             <thead><tr><th scope=\"col\">Area</th>{RATE_HEADERS}\
             <th scope=\"col\">Change since {}</th></tr></thead><tbody>",
            escape(&name),
            self.year,
            self.year.previous()
        );
        for (label, c) in [
            (name.clone(), ours),
            (format!("Region: {region_name}"), theirs),
            ("England".to_owned(), england),
        ] {
            if let Some(c) = c {
                h.push_str(&figure_row(&escape(&label), &c, false));
            }
        }
        h.push_str("</tbody></table>");
        // The trend: eight quarters.
        let quarters = self.quarters();
        let ours: Vec<(String, Published)> = quarters
            .iter()
            .map(|q| {
                let p = self
                    .annual_figure(Breakdown::LocalAuthority, *q, area)
                    .unwrap_or(Published {
                        engaged: Some(0),
                        finalised: Some(0),
                    });
                (period_label(q), p)
            })
            .collect();
        let england_q: Vec<Option<f64>> = quarters
            .iter()
            .map(|q| {
                self.annual_figure(Breakdown::England, *q, ENGLAND)
                    .and_then(|p| p.rate())
                    .map(|r| r.rate)
            })
            .collect();
        let _ = write!(h, "<h2>The last eight quarters</h2>");
        h.push_str(&chart(
            &format!("{name}: continuity rate by quarter of release"),
            "Quarter of release",
            &ours,
            Some(&england_q),
            false,
        ));
        let _ = write!(
            h,
            "<table><caption>{}: continuity rate by quarter of release</caption><thead><tr>\
             <th scope=\"col\">Quarter</th>{RATE_HEADERS}<th scope=\"col\">Change since the quarter before</th>\
             </tr></thead><tbody>",
            escape(&name)
        );
        for q in &quarters {
            if let Some(c) = self.annual_compared(Breakdown::LocalAuthority, *q, area) {
                h.push_str(&figure_row(&period_label(q), &c, false));
            } else {
                let _ = write!(
                    h,
                    "<tr><th scope=\"row\">{}</th><td>0</td><td>0</td><td>–</td><td>–</td>\
                     <td>–</td><td>–</td><td>–</td></tr>",
                    period_label(q)
                );
            }
        }
        let _ = write!(
            h,
            "</tbody></table><p><a href=\"national\">Every local authority</a> · \
             <a href=\"continuity-{w}.html\">England and the regions, week {w}</a></p>",
            w = self.week
        );
        close(&mut h, false);
        h
    }

    /// The national page: every local authority's year in one sortable table and a funnel
    /// plot of rate against finalised cases, with 95% and 99.8% limits around England's rate.
    pub fn national_html(&self) -> String {
        let mut h = String::new();
        let title = format!("Continuity of care: every local authority, {}", self.year);
        open(
            &mut h,
            &title,
            &format!(
                "Figures are for releases in financial year {}, {}. In the funnel plot each \
                 dot is an area: its rate against how many people it had. Dots outside the \
                 funnel are further from England's rate than chance alone would explain.",
                self.year,
                status_word(self.status_of(&self.year))
            ),
        );
        let england = self
            .annual_compared(Breakdown::England, self.year, ENGLAND)
            .and_then(|c| c.rate());
        let areas = self.local_authorities();
        let published: Vec<(&str, u64, ContinuityRate)> = areas
            .iter()
            .filter_map(|a| {
                let p = self.annual_figure(Breakdown::LocalAuthority, self.year, a)?;
                Some((*a, p.finalised?, p.rate()?))
            })
            .collect();
        let _ = write!(
            h,
            "<p class=\"headline\" id=\"headline\">{} of {} local authorities have a published \
             rate for {}{}.</p>",
            published.len(),
            areas.len(),
            self.year,
            england
                .map(|e| format!("; England's is {} ({})", pct(e.rate), gap_words(&e)))
                .unwrap_or_default()
        );
        if let Some(e) = england {
            h.push_str(&funnel(&published, e.rate, self.year));
        }
        self.annual_table(&mut h, Breakdown::LocalAuthority);
        let _ = write!(
            h,
            "<p><a href=\"continuity-{w}.html\">England and the regions, week {w}</a></p>",
            w = self.week
        );
        close(&mut h, true);
        h
    }
}

/// The rate axis: grid lines and labels at 0, 25, 50, 75 and 100%, from `left` to `right`.
fn rate_axis(s: &mut String, left: f64, right: f64, y: &dyn Fn(f64) -> f64) {
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{right}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" class=\"grid\"/>\
             <text x=\"{}\" y=\"{:.1}\" class=\"tick\">{:.0}%</text>",
            left - 6.0,
            y(tick) + 4.0,
            tick * 100.0,
            yy = y(tick)
        );
    }
}

/// An inline SVG line chart of rates by period (dots where published, joined where
/// consecutive), with labelled axes, the 75% line, an optional England line, a legend and a
/// text alternative. With `rolling`, also the rolling 13-period rate, drawn only where all 13
/// are published, so it reveals nothing the table does not.
fn chart(
    title: &str,
    x_label: &str,
    points: &[(String, Published)],
    england: Option<&[Option<f64>]>,
    rolling: bool,
) -> String {
    let (w, h, left, top, bottom) = (760.0, 260.0, 56.0, 12.0, 56.0);
    let (pw, ph) = (w - left - 44.0, h - top - bottom);
    let n = points.len().max(2);
    let x = |i: usize| left + pw * i as f64 / (n - 1) as f64;
    let y = |r: f64| top + ph * (1.0 - r);
    let rates: Vec<Option<ContinuityRate>> = points.iter().map(|(_, p)| p.rate()).collect();
    let shown = rates.iter().flatten().count();
    let last = points
        .iter()
        .rev()
        .find_map(|(l, p)| p.rate().map(|r| format!("{} in {l}", pct(r.rate))));
    let alt = format!(
        "{title}. {shown} of {} periods published{}. The ambition is 75%.",
        points.len(),
        last.map(|l| format!("; the latest is {l}"))
            .unwrap_or_default()
    );
    let mut s = format!(
        "<figure><figcaption>{}</figcaption><svg class=\"chart\" role=\"img\" \
         aria-label=\"{}\" viewBox=\"0 0 {w} {h}\" width=\"100%\" preserveAspectRatio=\"xMinYMin meet\">",
        escape(title),
        escape(&alt)
    );
    rate_axis(&mut s, left, left + pw, &y);
    // Label at most about ten periods on the x axis.
    let every = points.len().div_ceil(10).max(1);
    for (i, (label, _)) in points.iter().enumerate() {
        let last = i + 1 == points.len();
        if last || (i % every == 0 && points.len() - i > every / 2 + 1) {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"xtick\">{}</text>",
                x(i),
                top + ph + 16.0,
                escape(label)
            );
        }
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\">{}</text>\
         <text transform=\"translate(14 {:.1}) rotate(-90)\" class=\"axis\">Started treatment within 21 days</text>\
         <line class=\"ambition\" x1=\"{left}\" x2=\"{}\" y1=\"{a:.1}\" y2=\"{a:.1}\"/>",
        left + pw / 2.0,
        h - 8.0,
        escape(x_label),
        top + ph / 2.0,
        left + pw,
        a = y(AMBITION)
    );
    if let Some(england) = england {
        let line: Vec<String> = england
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.map(|r| format!("{:.1},{:.1}", x(i), y(r))))
            .collect();
        if !line.is_empty() {
            let _ = write!(
                s,
                "<polyline class=\"england\" points=\"{}\"/>",
                line.join(" ")
            );
        }
    }
    if rolling {
        let mut line = String::new();
        for i in 12..points.len() {
            let window = &points[i - 12..=i];
            let sum = window.iter().try_fold((0, 0), |(e, f), (_, p)| {
                Some((e + p.engaged?, f + p.finalised?))
            });
            if let Some(r) = sum.and_then(|(e, f)| ContinuityRate::new(e, f)) {
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
    } else {
        // A line joins consecutive published periods only: a gap stays a gap.
        let mut segments: Vec<Vec<String>> = vec![Vec::new()];
        for (i, r) in rates.iter().enumerate() {
            match r {
                Some(r) => segments
                    .last_mut()
                    .into_iter()
                    .for_each(|seg| seg.push(format!("{:.1},{:.1}", x(i), y(r.rate)))),
                None => segments.push(Vec::new()),
            }
        }
        for line in segments.iter().filter(|l| l.len() > 1) {
            let _ = write!(
                s,
                "<polyline class=\"rolling\" points=\"{}\"/>",
                line.join(" ")
            );
        }
    }
    for (i, r) in rates.iter().enumerate() {
        if let Some(r) = r {
            let _ = write!(
                s,
                "<circle class=\"point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\"/>",
                x(i),
                y(r.rate)
            );
        }
    }
    s.push_str("</svg><ul class=\"legend\">");
    if rolling {
        s.push_str(
            "<li><span class=\"key point\"></span>Weekly rate</li>\
             <li><span class=\"key rolling\"></span>Rolling 13-week rate</li>",
        );
    } else {
        s.push_str("<li><span class=\"key rolling\"></span>This area</li>");
    }
    if england.is_some() {
        s.push_str("<li><span class=\"key england\"></span>England</li>");
    }
    s.push_str("<li><span class=\"key ambition\"></span>75% ambition</li></ul></figure>");
    s
}

/// A funnel plot: each published area's rate against its finalised cases, England's rate, and
/// the 95% and 99.8% control limits around it. The table beside it is its text alternative.
fn funnel(areas: &[(&str, u64, ContinuityRate)], england: f64, year: CohortPeriod) -> String {
    let (w, h, left, top, bottom) = (760.0, 360.0, 56.0, 12.0, 56.0);
    let (pw, ph) = (w - left - 16.0, h - top - bottom);
    let max_n = areas.iter().map(|a| a.1).max().unwrap_or(10).max(10) as f64 * 1.05;
    let x = |n: f64| left + pw * n / max_n;
    let y = |r: f64| top + ph * (1.0 - r);
    let outside = |z: f64| {
        areas
            .iter()
            .filter(|(_, n, r)| {
                let (lo, hi) = funnel_limits(england, *n as f64, z);
                r.rate < lo || r.rate > hi
            })
            .count()
    };
    let alt = format!(
        "Funnel plot of {} local authorities' rates for {year} against their finalised cases. \
         England's rate is {}. {} areas lie outside the 95% limits and {} outside the 99.8% limits.",
        areas.len(),
        pct(england),
        outside(Z95),
        outside(Z998)
    );
    let mut s = format!(
        "<figure><figcaption>Rate against finalised cases, {year}, with control limits around \
         England's rate</figcaption><svg class=\"chart funnel\" role=\"img\" aria-label=\"{}\" \
         viewBox=\"0 0 {w} {h}\" width=\"100%\" preserveAspectRatio=\"xMinYMin meet\">",
        escape(&alt)
    );
    rate_axis(&mut s, left, w - 16.0, &y);
    for i in 0..=5 {
        let n = max_n * i as f64 / 5.0;
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"xtick\">{:.0}</text>",
            x(n),
            top + ph + 16.0,
            n
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\">Finalised cases in the year</text>\
         <text transform=\"translate(14 {:.1}) rotate(-90)\" class=\"axis\">Started treatment within 21 days</text>\
         <line class=\"ambition\" x1=\"{left}\" x2=\"{}\" y1=\"{a:.1}\" y2=\"{a:.1}\"/>\
         <line class=\"england\" x1=\"{left}\" x2=\"{}\" y1=\"{e:.1}\" y2=\"{e:.1}\"/>",
        left + pw / 2.0,
        h - 8.0,
        top + ph / 2.0,
        w - 16.0,
        w - 16.0,
        a = y(AMBITION),
        e = y(england),
    );
    for (class, z) in [("limit95", Z95), ("limit998", Z998)] {
        for upper in [false, true] {
            let points: Vec<String> = (1..=60)
                .map(|i| {
                    let n = (5.0f64).max(max_n * i as f64 / 60.0);
                    let (lo, hi) = funnel_limits(england, n, z);
                    format!("{:.1},{:.1}", x(n), y(if upper { hi } else { lo }))
                })
                .collect();
            let _ = write!(
                s,
                "<polyline class=\"{class}\" points=\"{}\"/>",
                points.join(" ")
            );
        }
    }
    for (area, n, r) in areas {
        let _ = write!(
            s,
            "<circle class=\"point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\"><title>{}: {} of {n}</title></circle>",
            x(*n as f64),
            y(r.rate),
            escape(&named(Breakdown::LocalAuthority, area)),
            pct(r.rate)
        );
    }
    s.push_str(
        "</svg><ul class=\"legend\"><li><span class=\"key point\"></span>A local authority</li>\
         <li><span class=\"key england\"></span>England</li>\
         <li><span class=\"key limit95\"></span>95% limits</li>\
         <li><span class=\"key limit998\"></span>99.8% limits</li>\
         <li><span class=\"key ambition\"></span>75% ambition</li></ul></figure>",
    );
    s
}

/// Sorting for tables of class `sortable`: each column header becomes a button; rows sort by
/// a cell's `data-sort` value (numbers as numbers), or its text. Without script the table is
/// in its published order (by code).
const SORT_SCRIPT: &str = "<script>\
for (const t of document.querySelectorAll('table.sortable')) {\
  const heads = t.tHead.rows[0].cells;\
  for (let c = 0; c < heads.length; c++) {\
    const th = heads[c]; const b = document.createElement('button');\
    b.type = 'button'; b.textContent = th.textContent; th.textContent = ''; th.appendChild(b);\
    b.addEventListener('click', () => {\
      const asc = th.getAttribute('aria-sort') !== 'ascending';\
      for (const o of heads) o.removeAttribute('aria-sort');\
      th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');\
      const key = (r) => { const x = r.cells[c]; const v = x.dataset.sort ?? x.textContent;\
        const n = Number(v); return Number.isNaN(n) ? v : n; };\
      const rows = [...t.tBodies[0].rows].sort((a, z) => { const p = key(a), q = key(z);\
        const d = typeof p === 'number' && typeof q === 'number' ? p - q : String(p).localeCompare(String(q));\
        return asc ? d : -d; });\
      for (const r of rows) t.tBodies[0].appendChild(r);\
    });\
  }\
}\
</script>";

const STYLE: &str =
    "body{font-family:system-ui,sans-serif;margin:0;color:#0b0c0c;line-height:1.4}\
main{margin:2em auto;max-width:1100px;padding:0 1em}\
h1{font-size:1.7em}h2{font-size:1.25em;margin-top:1.6em}.headline{font-size:1.3em}\
.guide{background:#f3f2f1;padding:0.5em 1em;border-left:5px solid #1d70b8}.guide h2{margin-top:0.3em}\
table{border-collapse:collapse;margin:0.8em 0}caption{text-align:left;font-weight:bold;padding:0.3em 0}\
th,td{border:1px solid #b1b4b6;padding:3px 8px;text-align:right}\
thead th,tbody th{text-align:left}th button{font:inherit;font-weight:bold;background:none;border:0;\
padding:0;cursor:pointer;text-decoration:underline;color:#1d70b8;text-align:left}\
th[aria-sort=ascending] button::after{content:' ▲'}th[aria-sort=descending] button::after{content:' ▼'}\
a{color:#1d70b8}a:focus,button:focus{outline:3px solid #ffdd00}\
.chart .grid{stroke:#dddddd}.chart .tick{font-size:11px;text-anchor:end;fill:#505a5f}\
.chart .xtick{font-size:10px;text-anchor:middle;fill:#505a5f}.chart .axis{font-size:12px;text-anchor:middle;fill:#0b0c0c}\
.chart .ambition{stroke:#d4351c;stroke-dasharray:6 4;stroke-width:2}\
.chart .rolling{fill:none;stroke:#1d70b8;stroke-width:2}.chart .england{fill:none;stroke:#505a5f;stroke-width:2;stroke-dasharray:2 3}\
.chart .point{fill:#0b0c0c}.chart .limit95{fill:none;stroke:#f47738;stroke-width:1.5}\
.chart .limit998{fill:none;stroke:#912b88;stroke-width:1.5}\
figure{margin:0.8em 0}figcaption{font-weight:bold}.note{color:#505a5f;font-size:0.95em}\
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:1.2em;font-size:0.9em}\
.key{display:inline-block;width:24px;height:0;border-top:3px solid;margin-right:6px;vertical-align:middle}\
.key.point{width:8px;height:8px;border:0;border-radius:50%;background:#0b0c0c}\
.key.rolling{border-color:#1d70b8}.key.england{border-color:#505a5f;border-top-style:dotted}\
.key.ambition{border-color:#d4351c;border-top-style:dashed}.key.limit95{border-color:#f47738}\
.key.limit998{border-color:#912b88}";
