//! `continuity-worklist [--config FILE] [serve|migrate]`: the caseworkers' worklist.

use std::sync::Arc;

use clap::Parser;
use continuity_runtime::ServiceCommand;
use continuity_worklist::{Settings, Worklist};

#[derive(Parser)]
#[command(about = "The caseworkers' worklist: at-risk and overdue people, and what was done")]
struct Cli {
    #[command(flatten)]
    config: continuity_runtime::ConfigFile,
    #[command(subcommand)]
    command: Option<ServiceCommand>,
}

fn main() -> anyhow::Result<()> {
    continuity_runtime::init_logging();
    let cli = Cli::parse();
    let settings: Settings = cli.config.load()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        match cli.command.unwrap_or(ServiceCommand::Serve) {
            ServiceCommand::Migrate => continuity_worklist::migrate(&settings).await,
            ServiceCommand::Serve => {
                let shutdown = continuity_runtime::shutdown_signal();
                let listener = tokio::net::TcpListener::bind(settings.http_addr).await?;
                let app = Arc::new(Worklist::new(settings)?);
                continuity_worklist::serve(app, listener, shutdown).await
            }
        }
    })
}
