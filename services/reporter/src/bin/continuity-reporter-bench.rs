//! `continuity-reporter-bench [CASES] [--write DIR]`: time computing every cohort (weeks,
//! months, quarters, financial years, rolling 12 months, under every breakdown) and one weekly
//! report with its pages for ten years of national-scale cases (default 600,000), in memory, as
//! the reporter does after loading them; with `--write`, also write the pages under DIR to
//! look at.

use std::time::Instant;

use chrono::{Duration, NaiveDate};
use continuity_domain::{tabulate, CaseFacts, ExclusionReason, Outcome, Regions, Rules};
use continuity_reporter::report;
use continuity_synthetic::local_authority;

#[derive(clap::Parser)]
#[command(about = "Time every cohort and one weekly report over generated cases")]
struct Args {
    /// Cases to generate.
    #[arg(default_value_t = 600_000)]
    cases: usize,
    /// Write the report's files under this directory after timing them.
    #[arg(long)]
    write: Option<std::path::PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let Args { cases: n, write } = clap::Parser::parse();
    let start = NaiveDate::from_ymd_opt(2016, 4, 1).unwrap_or_default();
    // Deterministic spread: 150 local authorities in 9 regions, 120 prisons, 300 providers.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let las: Vec<String> = (0..150)
        .map(|i| local_authority(i, false).to_string())
        .collect();
    let regions = Regions::new(
        las.iter()
            .enumerate()
            .map(|(i, la)| (la.clone(), format!("E1200000{}", i % 9 + 1))),
    );
    let cases: Vec<CaseFacts> = (0..n)
        .map(|_| {
            let r = next();
            let outcome = match r % 100 {
                0..=44 => Outcome::Engaged,
                45..=89 => Outcome::NotEngaged,
                90..=94 => Outcome::Excluded(ExclusionReason::Readmitted),
                95..=97 => Outcome::Open,
                _ => Outcome::Withdrawn,
            };
            CaseFacts {
                release_date: start + Duration::days((r >> 8) as i64 % 3650),
                local_authority: las[(r >> 20) as usize % las.len()].clone(),
                prison: Some(continuity_synthetic::prison((r >> 30) as usize % 120).to_string()),
                provider: Some(format!("PRV{:03}", (r >> 40) % 300)),
                outcome,
            }
        })
        .collect();
    let today = start + Duration::days(3650 + 60);
    let t = Instant::now();
    let cells = tabulate(&cases, &regions, today);
    let tabulated = t.elapsed();
    let week = continuity_domain::CohortPeriod::iso_week(today);
    let report = report::build(&cells, &regions, week, &Rules::default(), 28);
    let (html, csv, national) = (report.html(), report.csv(), report.national_html());
    let areas: usize = report
        .local_authorities()
        .iter()
        .map(|a| report.area_html(a).len())
        .sum();
    let total = t.elapsed();
    println!("cases                 {n}");
    println!("cells                 {}", cells.len());
    println!("every cohort          {:.2} s", tabulated.as_secs_f64());
    println!(
        "plus one report       {:.2} s (HTML {} KiB, national {} KiB, {} area pages {} KiB, CSV {} KiB)",
        total.as_secs_f64(),
        html.len() / 1024,
        national.len() / 1024,
        report.local_authorities().len(),
        areas / 1024,
        csv.len() / 1024
    );
    if let Some(dir) = write {
        let written = continuity_reporter::write_report(&dir, &report)?;
        println!("written               {}", written.html.display());
    }
    Ok(())
}
