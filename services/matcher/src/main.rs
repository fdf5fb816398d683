//! `continuity-matcher`: configuration, logging, run until SIGTERM.

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    continuity_runtime::init_logging();
    let file = std::env::args().nth(1).map(PathBuf::from);
    let settings: continuity_matcher::Settings = continuity_runtime::load_config(file.as_deref())?;
    let clock = settings.clock();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(continuity_matcher::run(
        settings,
        clock,
        continuity_runtime::shutdown_signal(),
    ))
}
