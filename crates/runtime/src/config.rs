//! Configuration, loaded one way for every binary: an optional TOML file, then `CONTINUITY_`
//! environment variables.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::settings::Checked;

/// Keys whose environment values are text however they look: the environment source parses
/// values (so `CONTINUITY_DATABASE_POOL=4` is a number), which would turn a secret of digits
/// such as `007` into the number 7.
const TEXT_KEYS: &[&str] = &[
    "hash_secret",
    "database_url",
    "topic_prefix",
    "brokers",
    "kafka_sasl_username",
    "kafka_sasl_password",
    "kafka_oauth_client_id",
    "kafka_oauth_client_secret",
    "client_id",
    "client_secret",
];

/// Load configuration: an optional TOML file, then `CONTINUITY_`-prefixed environment
/// variables (`CONTINUITY_DATABASE_URL`; `__` between the keys of a nested table). Later
/// sources win. The settings' own checks ([`Checked`]) run last.
pub fn load_config<T: DeserializeOwned + Checked>(file: Option<&Path>) -> anyhow::Result<T> {
    let mut builder = config::Config::builder();
    if let Some(path) = file {
        builder = builder.add_source(config::File::from(path).required(true));
    }
    builder = builder.add_source(
        config::Environment::with_prefix("CONTINUITY")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true),
    );
    for key in TEXT_KEYS {
        if let Ok(value) = std::env::var(format!("CONTINUITY_{}", key.to_uppercase())) {
            builder = builder.set_override(*key, value)?;
        }
    }
    let settings = builder.build()?;
    let settings: T = settings
        .try_deserialize()
        .map_err(|e| anyhow::anyhow!("configuration is invalid: {e}"))?;
    settings
        .check()
        .map_err(|e| anyhow::anyhow!("configuration is invalid: {e}"))?;
    Ok(settings)
}

/// The `--config FILE` option of every binary (flattened into its clap command line).
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigFile {
    /// TOML configuration; CONTINUITY_* environment variables override it.
    #[arg(long, global = true)]
    pub config: Option<std::path::PathBuf>,
}

/// The commands of a long-running service (ingest, the matcher).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum ServiceCommand {
    /// Run until SIGTERM (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
}

impl ConfigFile {
    /// Load the settings `T` from the file, if given, and the environment ([`load_config`]).
    pub fn load<T: DeserializeOwned + Checked>(&self) -> anyhow::Result<T> {
        load_config(self.config.as_deref())
    }
}

/// Read one TOML file into `T` (for files a setting names, such as ingest's sources).
pub fn load_file<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    config::Config::builder()
        .add_source(config::File::from(path).required(true))
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| anyhow::anyhow!("{} is invalid: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::settings::{DatabaseSettings, HashSecret};

    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Sample {
        #[serde(flatten)]
        database: DatabaseSettings,
        hash_secret: HashSecret,
        batch_size: usize,
    }

    impl Checked for Sample {
        fn check(&self) -> Result<(), String> {
            self.hash_secret.expose().map(drop).map_err(str::to_owned)
        }
    }

    fn load(file: &str) -> anyhow::Result<Sample> {
        let path = std::env::temp_dir().join(format!("config-{}.toml", std::process::id()));
        std::fs::write(&path, file)?;
        let loaded = load_config(Some(&path));
        std::fs::remove_file(&path)?;
        loaded
    }

    // One test, as the environment is the process's: the cases run in order.
    #[test]
    fn the_file_then_the_environment_with_text_kept_as_text_and_secrets_checked() {
        let sample = load("hash_secret = \"from-file\"\ndatabase_pool = 3\n").unwrap();
        assert_eq!(sample.hash_secret.expose().unwrap(), b"from-file");
        assert_eq!(sample.database.database_pool, 3);
        assert_eq!(sample.batch_size, 0);

        std::env::set_var("CONTINUITY_HASH_SECRET", "007");
        std::env::set_var("CONTINUITY_DATABASE_POOL", "5");
        std::env::set_var("CONTINUITY_BATCH_SIZE", "250");
        let sample = load("hash_secret = \"from-file\"\n").unwrap();
        assert_eq!(sample.hash_secret.expose().unwrap(), b"007");
        assert_eq!(sample.database.database_pool, 5);
        assert_eq!(sample.batch_size, 250);

        std::env::set_var("CONTINUITY_HASH_SECRET", "");
        let e = load("").err().unwrap().to_string();
        assert!(e.contains("hash_secret is empty"), "{e}");
        std::env::remove_var("CONTINUITY_HASH_SECRET");
        let e = load("").err().unwrap().to_string();
        assert!(e.contains("hash_secret is not set"), "{e}");
        let e = load("hash_secret = 12345\n").err().unwrap().to_string();
        assert!(e.contains("must be text") && !e.contains("12345"), "{e}");
        std::env::remove_var("CONTINUITY_DATABASE_POOL");
        std::env::remove_var("CONTINUITY_BATCH_SIZE");
    }
}
