//! `continuity-matcher [--config FILE] [serve | migrate]`: configuration, logging, then either
//! run until SIGTERM (the default) or apply the database migrations and exit.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

// The matcher allocates and frees many small objects per event (decoded events, cases,
// encoded outputs); mimalloc spends less time on them than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "Matches releases to treatment starts and applies the 21-day rule")]
struct Cli {
    /// TOML configuration; CONTINUITY_* environment variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Consume the source topics until SIGTERM (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
}

fn main() -> anyhow::Result<()> {
    continuity_runtime::init_logging();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    if let Some(Command::Migrate) = cli.command {
        let settings: continuity_runtime::MigrateSettings =
            continuity_runtime::load_config(cli.config.as_deref())?;
        return runtime.block_on(async {
            continuity_store::migrate_url(settings.database.url()).await?;
            tracing::info!("migrations applied");
            Ok(())
        });
    }
    let settings: continuity_matcher::Settings =
        continuity_runtime::load_config(cli.config.as_deref())?;
    let clock = settings.clock.clock();
    runtime.block_on(continuity_matcher::run(
        settings,
        clock,
        continuity_runtime::shutdown_signal(),
    ))
}
