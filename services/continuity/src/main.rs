//! `continuity`: parse the command line, set up logging, run the command.

use clap::{Parser, Subcommand};
use continuity_domain::KeyedHasher;
use continuity_stream::{KafkaSettings, Topic};

#[derive(Parser)]
#[command(
    name = "continuity",
    about = "Continuity of care from prison to community treatment"
)]
struct Cli {
    /// Kafka bootstrap servers.
    #[arg(
        long,
        env = "CONTINUITY_BROKERS",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    brokers: String,
    /// Prefix of every topic name.
    #[arg(
        long,
        env = "CONTINUITY_TOPIC_PREFIX",
        default_value = "continuity.",
        global = true
    )]
    topic_prefix: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the topics that are missing.
    Topics,
    /// Run the sample scenario through the broker and print the cases and rates.
    Sample {
        /// Secret for keyed hashes of partition keys.
        #[arg(long, env = "CONTINUITY_HASH_SECRET", hide_env_values = true)]
        hash_secret: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let settings = KafkaSettings {
        brokers: cli.brokers,
        topic_prefix: cli.topic_prefix,
    };
    match cli.command {
        Command::Topics => {
            settings.ensure_topics(&Topic::ALL).await?;
            for t in Topic::ALL {
                println!("{} ({} partitions)", settings.topic(t), t.partitions());
            }
        }
        Command::Sample { hash_secret } => {
            let hasher = KeyedHasher::new(hash_secret.as_bytes());
            let (_, _, summary) =
                continuity::run_sample(&settings, &hasher, chrono::Utc::now()).await?;
            print!("{summary}");
        }
    }
    Ok(())
}
