//! `continuity-matcher [--config FILE] [serve | migrate]`: configuration, logging, then either
//! run until SIGTERM (the default) or apply the database migrations and exit.

use clap::Parser;
use continuity_runtime::ServiceCommand;

// The matcher allocates and frees many small objects per event (decoded events, cases,
// encoded outputs); mimalloc spends less time on them than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "Matches releases to treatment starts and applies the 21-day rule")]
struct Cli {
    #[command(flatten)]
    config: continuity_runtime::ConfigFile,
    #[command(subcommand)]
    command: Option<ServiceCommand>,
}

fn main() -> anyhow::Result<()> {
    continuity_runtime::init_logging();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    if let Some(ServiceCommand::Migrate) = cli.command {
        let settings: continuity_runtime::MigrateSettings = cli.config.load()?;
        return runtime.block_on(async {
            continuity_store::migrate_url(settings.connections.database.url()).await?;
            tracing::info!("migrations applied");
            Ok(())
        });
    }
    let settings: continuity_matcher::Settings = cli.config.load()?;
    let clock = settings.clock.clock();
    runtime.block_on(async move {
        let shutdown = continuity_runtime::shutdown_signal();
        continuity_matcher::run(settings, clock, shutdown).await
    })
}
