//! `continuity-reporter [--config FILE] report --week 2026-W47 [--publish]` writes one week's
//! report (and publishes its figures); `continuity-reporter [--config FILE] serve` runs the
//! weekly schedule and serves the reports.

use std::sync::Arc;

use clap::{Parser, Subcommand};
use continuity_reporter::{report, Reporter, Settings};

#[derive(Parser)]
#[command(about = "The continuity rate against the 75% ambition, every week")]
struct Cli {
    #[command(flatten)]
    config: continuity_runtime::ConfigFile,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the report for one week (default: the week just ended) and print the headline.
    Report {
        /// ISO week, e.g. 2026-W47.
        #[arg(long)]
        week: Option<String>,
        /// Also publish the figures on the performance topic.
        #[arg(long)]
        publish: bool,
    },
    /// Run the weekly schedule and serve the reports, metrics and health.
    Serve,
}

fn main() -> anyhow::Result<()> {
    continuity_runtime::init_logging();
    let cli = Cli::parse();
    let settings: Settings = cli.config.load()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Report { week, publish } => {
                let now = settings.clock.clock().now();
                let reporter = Reporter::connect(settings).await?;
                let week = match week {
                    Some(w) => report::parse_week(&w).map_err(anyhow::Error::msg)?,
                    None => continuity_domain::CohortPeriod::iso_week(
                        continuity_domain::london_date(now) - chrono::Duration::days(7),
                    ),
                };
                let (report, written, n) = reporter.run(week, publish.then_some(now)).await?;
                print!("{}", report.summary());
                println!("report   {}", written.html.display());
                println!("csv      {}", written.csv.display());
                if publish {
                    println!("published {n} figures to the performance topic");
                }
                Ok(())
            }
            Command::Serve => {
                let shutdown = continuity_runtime::shutdown_signal();
                let reporter = Reporter::connect(settings).await?;
                let listener = tokio::net::TcpListener::bind(reporter.settings.http_addr).await?;
                continuity_reporter::serve(Arc::new(reporter), listener, shutdown).await
            }
        }
    })
}
