//! `continuity-matcher [migrate] [CONFIG.toml]`: configuration, logging, then either apply the
//! database migrations and exit, or run until SIGTERM.

use std::path::PathBuf;

use continuity_runtime::ExposeSecret;

// The matcher allocates and frees many small objects per event (decoded events, cases,
// encoded outputs); mimalloc spends less time on them than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    continuity_runtime::init_logging();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let migrate_only = args.first().is_some_and(|a| a == "migrate");
    if migrate_only {
        args.remove(0);
    }
    let file = args.first().map(PathBuf::from);
    let settings: continuity_matcher::Settings = continuity_runtime::load_config(file.as_deref())?;
    let runtime = tokio::runtime::Runtime::new()?;
    if migrate_only {
        return runtime.block_on(async {
            continuity_store::migrate_url(settings.database_url.expose_secret()).await?;
            tracing::info!("migrations applied");
            Ok(())
        });
    }
    let clock = settings.clock();
    runtime.block_on(continuity_matcher::run(
        settings,
        clock,
        continuity_runtime::shutdown_signal(),
    ))
}
