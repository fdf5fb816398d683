//! Configuration, loaded one way for every binary: an optional TOML file, then `CONTINUITY_`
//! environment variables.

use std::path::Path;

use serde::de::DeserializeOwned;

/// Load configuration: an optional TOML file, then `CONTINUITY_`-prefixed environment
/// variables with `__` between nested keys (`CONTINUITY_DATABASE__URL`). Later sources win.
pub fn load_config<T: DeserializeOwned>(file: Option<&Path>) -> anyhow::Result<T> {
    let mut builder = config::Config::builder();
    if let Some(path) = file {
        builder = builder.add_source(config::File::from(path).required(true));
    }
    let settings = builder
        .add_source(
            config::Environment::with_prefix("CONTINUITY")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true),
        )
        .build()?;
    settings
        .try_deserialize()
        .map_err(|e| anyhow::anyhow!("configuration is invalid: {e}"))
}
