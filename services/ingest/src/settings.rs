//! Ingest's configuration: the shared sections (database, broker, hash secret, clock) and its
//! own (address, sources, limits, the extract's columns).

use std::net::SocketAddr;
use std::path::PathBuf;

use continuity_runtime::{Checked, ClockSettings, Connections, HashSecret};
use serde::Deserialize;

use crate::ndtms;
use crate::sources::SourceConfig;

/// Configuration (file, then `CONTINUITY_*` environment variables).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// PostgreSQL (for the audit trail) and the broker.
    #[serde(flatten)]
    pub connections: Connections,
    /// Secret for keyed hashes of message keys (`CONTINUITY_HASH_SECRET`); the matcher's.
    pub hash_secret: HashSecret,
    /// Address of the API and of `/metrics`, `/healthz`, `/readyz`.
    pub http_addr: SocketAddr,
    /// Sources, inline.
    pub sources: Vec<SourceConfig>,
    /// A TOML file of `[[sources]]`, added to the inline ones.
    pub sources_file: Option<PathBuf>,
    /// Requests per second per source, unless the source sets its own; bursts of twice that.
    pub requests_per_second: u32,
    /// Largest request body in bytes (413 above).
    pub max_body_bytes: usize,
    /// How long to wait for the broker's acknowledgement before answering 503, in ms.
    pub produce_timeout_ms: u64,
    /// Which CSV headers hold which field in treatment extracts.
    pub csv_columns: ndtms::Columns,
    /// Run migrations at start-up.
    pub migrate_on_start: bool,
    /// The probation service HMPPS `person.community.manager.allocated` events allocate to
    /// (the event names only the CRN); unset, those events are ignored with that reason.
    pub allocation_probation_service: Option<String>,
    /// The clock (`fixed_now`; tests only).
    #[serde(flatten)]
    pub clock: ClockSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            connections: Connections::with_pool(6),
            hash_secret: HashSecret::default(),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 9103)),
            sources: Vec::new(),
            sources_file: None,
            requests_per_second: 50,
            max_body_bytes: 32 * 1024 * 1024,
            produce_timeout_ms: 5_000,
            csv_columns: ndtms::Columns::default(),
            migrate_on_start: true,
            allocation_probation_service: None,
            clock: ClockSettings::default(),
        }
    }
}

impl Checked for Settings {
    fn check(&self) -> Result<(), String> {
        self.hash_secret.expose().map(|_| ()).map_err(str::to_owned)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourcesFile {
    sources: Vec<SourceConfig>,
}

impl Settings {
    /// Every configured source: inline, then from `sources_file`.
    pub fn all_sources(&self) -> anyhow::Result<Vec<SourceConfig>> {
        let mut all = self.sources.clone();
        if let Some(path) = &self.sources_file {
            let file: SourcesFile = continuity_runtime::load_file(path)?;
            all.extend(file.sources);
        }
        Ok(all)
    }
}
