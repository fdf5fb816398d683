//! `continuity`: parse the command line, set up logging, run the command.

use std::time::Duration;

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
    /// Produce the sample scenario and a few weeks of generated events to the source topics.
    Produce {
        /// Secret for keyed hashes of message keys.
        #[arg(long, env = "CONTINUITY_HASH_SECRET", hide_env_values = true)]
        hash_secret: String,
        /// Weeks of generated events, ending today.
        #[arg(long, default_value_t = 6)]
        weeks: u32,
        /// Seed of the generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Wait for the matcher to catch up, then print cases, rates and flags from PostgreSQL.
    Summary {
        /// PostgreSQL URL of the matcher's database.
        #[arg(long, env = "CONTINUITY_DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// Wait until the matcher has consumed this many messages (0: do not wait).
        #[arg(long, default_value_t = 0)]
        wait_for: i64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    continuity_runtime::init_logging();
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
        Command::Produce {
            hash_secret,
            weeks,
            seed,
        } => {
            let hasher = KeyedHasher::new(hash_secret.as_bytes());
            let n = continuity::produce_sample(&settings, &hasher, chrono::Utc::now(), weeks, seed)
                .await?;
            println!("{n}");
        }
        Command::Summary {
            database_url,
            wait_for,
        } => {
            let pool = sqlx::PgPool::connect(&database_url).await?;
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
