//! `continuity`: parse the command line, set up logging, run the command.

use std::time::Duration;

use clap::{Parser, Subcommand};
use continuity_runtime::{Checked, Connections};
use continuity_stream::Topic;

/// The sections of the services' configuration the commands use.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct Config {
    #[serde(flatten)]
    connections: Connections,
}

impl Checked for Config {}

#[derive(Parser)]
#[command(
    name = "continuity",
    about = "Continuity of care from prison to community treatment"
)]
struct Cli {
    /// `brokers`, `topic_prefix`, `database_url`, as for the services.
    #[command(flatten)]
    config: continuity_runtime::ConfigFile,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the topics that are missing.
    Topics,
    /// Write a token per organisation of the sample: `sources.toml` for ingest (hashes only)
    /// and `tokens` for `produce`.
    Sources {
        /// Directory to write into.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Weeks of generated events (as for `produce`).
        #[arg(long, default_value_t = 6)]
        weeks: u32,
        /// Seed of the generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Send the sample scenario, a few weeks of generated events and the real HMPPS payloads
    /// through ingest, as their sources would. Prints the number of events written.
    Produce {
        /// Ingest's address.
        #[arg(long, default_value = "http://127.0.0.1:9103")]
        ingest: String,
        /// The tokens written by `sources`.
        #[arg(long)]
        tokens: std::path::PathBuf,
        /// HMPPS domain-event payloads to send as HMPPS delivers them.
        #[arg(long, default_value = "tests/fixtures/hmpps")]
        hmpps: std::path::PathBuf,
        /// Weeks of generated events, ending today.
        #[arg(long, default_value_t = 6)]
        weeks: u32,
        /// Seed of the generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Wait for the matcher to catch up, then print cases, rates and flags from PostgreSQL.
    Summary {
        /// Wait until the matcher has consumed this many messages (0: do not wait).
        #[arg(long, default_value_t = 0)]
        wait_for: i64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    continuity_runtime::init_logging();
    let cli = Cli::parse();
    let config: Config = cli.config.load()?;
    let settings = config.connections.kafka.clone();
    match cli.command {
        Command::Topics => {
            settings.ensure_topics(&Topic::ALL).await?;
            for t in Topic::ALL {
                println!("{} ({} partitions)", settings.topic(t), t.partitions());
            }
        }
        Command::Sources { out, weeks, seed } => {
            let (events, _) = continuity::sample_events(chrono::Utc::now(), weeks, seed);
            let orgs: std::collections::BTreeSet<String> = events
                .iter()
                .map(|e| e.meta().source.to_string())
                .chain([continuity::through_ingest::HMPPS_ORGANISATION.to_owned()])
                .collect();
            let n =
                continuity::through_ingest::write_sources(orgs.iter().map(String::as_str), &out)?;
            eprintln!("{n} sources written to {}", out.display());
        }
        Command::Produce {
            ingest,
            tokens,
            hmpps,
            weeks,
            seed,
        } => {
            settings.ensure_topics(&Topic::ALL).await?;
            let (events, invalid) = continuity::sample_events(chrono::Utc::now(), weeks, seed);
            let tokens = continuity::through_ingest::read_tokens(&tokens)?;
            let sent = tokio::task::spawn_blocking(move || {
                continuity::through_ingest::send(&ingest, tokens, &events, &invalid, &hmpps)
            })
            .await??;
            eprintln!(
                "ingest: {} requests; {} events written; HMPPS events ignored (not used by the pipeline): {}; rows refused: {}",
                sent.requests,
                sent.events,
                sent.ignored,
                sent.refused.len()
            );
            for r in &sent.refused {
                eprintln!("  refused: {r}");
            }
            println!("{}", sent.events);
        }
        Command::Summary { wait_for } => {
            let pool = sqlx::PgPool::connect(config.connections.database.url()).await?;
            if wait_for > 0 {
                let consumed = continuity::summary::wait_for_matcher(
                    &pool,
                    wait_for,
                    Duration::from_secs(180),
                )
                .await;
                if consumed < wait_for {
                    eprintln!("the matcher has consumed {consumed} of {wait_for} messages so far");
                }
            }
            print!("{}", continuity::summary::summary(&pool).await?);
        }
    }
    Ok(())
}
