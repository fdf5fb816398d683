//! `continuity-ingest [--config FILE] [serve | migrate | new-token | hash-token]`: serve the API
//! (the default), apply the migrations, or make and hash source tokens.

use std::io::Read;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use continuity_ingest::{sources, Ingest, Settings};
use continuity_runtime::ServiceCommand;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "The HTTP front door for prisons, probation and treatment providers")]
struct Cli {
    #[command(flatten)]
    config: continuity_runtime::ConfigFile,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, PartialEq, Eq)]
enum Command {
    /// Serve the API until SIGTERM (the default), or apply the migrations.
    #[command(flatten)]
    Service(ServiceCommand),
    /// Print a new random source token and, on the next line, the SHA-256 to configure.
    NewToken,
    /// Read a token on standard input and print the SHA-256 to configure.
    HashToken,
}

fn main() -> anyhow::Result<()> {
    continuity_runtime::init_logging();
    let cli = Cli::parse();
    let command = cli
        .command
        .unwrap_or(Command::Service(ServiceCommand::Serve));
    match command {
        Command::NewToken => {
            let token = sources::new_token();
            println!("{token}");
            println!("{}", sources::token_hash(&token));
            return Ok(());
        }
        Command::HashToken => {
            let mut token = String::new();
            std::io::stdin().read_to_string(&mut token)?;
            println!("{}", sources::token_hash(token.trim()));
            return Ok(());
        }
        Command::Service(_) => {}
    }
    let runtime = tokio::runtime::Runtime::new()?;
    if command == Command::Service(ServiceCommand::Migrate) {
        let settings: continuity_runtime::MigrateSettings = cli.config.load()?;
        return runtime.block_on(async {
            continuity_store::migrate_url(settings.connections.database.url()).await?;
            println!("migrations applied");
            Ok(())
        });
    }
    let settings: Settings = cli.config.load()?;
    runtime.block_on(async move {
        let shutdown = continuity_runtime::shutdown_signal();
        let clock = settings.clock.clock();
        let ingest = Arc::new(Ingest::new(&settings, clock).await?);
        let listener = tokio::net::TcpListener::bind(settings.http_addr).await?;
        continuity_ingest::serve(ingest, listener, shutdown).await
    })
}
