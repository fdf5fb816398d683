//! `continuity-dev-issuer [--config FILE]`: the development sign-in service, for the local
//! stack and tests only (see `continuity_worklist::dev_issuer`).

use std::sync::Arc;

use clap::Parser;
use continuity_worklist::dev_issuer::{DevIssuer, IssuerSettings};

#[derive(Parser)]
#[command(about = "Development OAuth2 issuer with test users (never deploy it)")]
struct Cli {
    #[command(flatten)]
    config: continuity_runtime::ConfigFile,
}

fn main() -> anyhow::Result<()> {
    continuity_runtime::init_logging();
    let cli = Cli::parse();
    let settings: IssuerSettings = cli.config.load()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let shutdown = continuity_runtime::shutdown_signal();
        let listener = tokio::net::TcpListener::bind(settings.http_addr).await?;
        tracing::info!(address = %listener.local_addr()?, "development issuer listening");
        let issuer = Arc::new(DevIssuer::new(settings)?);
        continuity_runtime::http::serve(listener, issuer.router(), shutdown).await?;
        Ok(())
    })
}
