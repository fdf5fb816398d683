//! The worklist's configuration: the shared sections (database, broker, clock) and its own
//! (address, the sign-in issuer and client, where the front-end assets are).

use std::net::SocketAddr;
use std::path::PathBuf;

use continuity_runtime::{Checked, ClockSettings, Connections, SecretString};
use serde::Deserialize;

/// Configuration (file, then `CONTINUITY_*` environment variables).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// PostgreSQL (cases, actions, sessions, audit) and the broker (readiness only: actions
    /// reach `continuity.actions` through the outbox and the matcher's relay).
    #[serde(flatten)]
    pub connections: Connections,
    /// Address of the pages, `/metrics`, `/healthz` and `/readyz`.
    pub http_addr: SocketAddr,
    /// The worklist's address as a browser reaches it (the sign-in callback is under it).
    /// Sessions use `__Host-` cookies, which browsers keep only over HTTPS or on localhost.
    pub public_url: String,
    /// The sign-in service (HMPPS Auth or the development issuer): its base URL, under which
    /// are `/oauth/authorize`, `/oauth/token` and `/.well-known/jwks.json`.
    pub issuer_url: String,
    /// The `iss` its tokens carry; the base URL when unset.
    pub token_issuer: Option<String>,
    /// Where the worklist itself reaches the issuer (its token endpoint and keys), when not at
    /// `issuer_url` (which browsers use): an address inside the cluster.
    pub issuer_backchannel_url: Option<String>,
    /// This client's id at the issuer; also the `aud` its tokens must carry.
    pub client_id: String,
    /// This client's secret at the issuer (`CONTINUITY_CLIENT_SECRET`), if it has one.
    pub client_secret: Option<SecretString>,
    /// GOV.UK Frontend's and MoJ Frontend's assets, served under `/assets`
    /// (`scripts/install-frontend.sh` prints it).
    pub assets_dir: PathBuf,
    /// Rows on a worklist page.
    pub page_size: u32,
    /// Minutes a session lasts without use.
    pub session_idle_minutes: i64,
    /// Seconds to wait after each failed webhook attempt; after the last, the delivery is
    /// given up (default: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h).
    pub webhook_retry_seconds: Vec<u64>,
    /// Seconds a webhook receiver has to answer.
    pub webhook_timeout_seconds: u64,
    /// Hours an endpoint may fail before it is disabled.
    pub webhook_disable_after_hours: i64,
    /// Milliseconds between passes of the webhook dispatcher when nothing is due.
    pub webhook_interval_ms: u64,
    /// Webhooks are held while the matcher is more than this many source messages behind:
    /// while it reads a backlog, flags its unread treatment starts would resolve are raised
    /// and settled within seconds, and nobody should be paged for them.
    pub webhook_hold_lag: i64,
    /// The clock (`fixed_now`; tests only).
    #[serde(flatten)]
    pub clock: ClockSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            connections: Connections::with_pool(8),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 9104)),
            public_url: "http://localhost:9104".into(),
            issuer_url: "http://localhost:9105".into(),
            token_issuer: None,
            issuer_backchannel_url: None,
            client_id: "continuity-worklist".into(),
            client_secret: None,
            assets_dir: PathBuf::from("assets"),
            page_size: 25,
            session_idle_minutes: 60,
            webhook_retry_seconds: vec![5, 300, 1800, 7200, 18000, 36000, 36000],
            webhook_timeout_seconds: 15,
            webhook_disable_after_hours: 5 * 24,
            webhook_interval_ms: 1000,
            webhook_hold_lag: 1000,
            clock: ClockSettings::default(),
        }
    }
}

impl Settings {
    /// The `iss` tokens must carry.
    pub fn expected_issuer(&self) -> &str {
        self.token_issuer.as_deref().unwrap_or(&self.issuer_url)
    }

    /// Where the worklist reaches the issuer's token endpoint and keys.
    pub fn backchannel_url(&self) -> &str {
        self.issuer_backchannel_url
            .as_deref()
            .unwrap_or(&self.issuer_url)
            .trim_end_matches('/')
    }

    /// Where the issuer sends the browser back to.
    pub fn callback_url(&self) -> String {
        format!("{}/sign-in/callback", self.public_url.trim_end_matches('/'))
    }
}

impl Checked for Settings {
    fn check(&self) -> Result<(), String> {
        for (key, url) in [
            ("public_url", &self.public_url),
            ("issuer_url", &self.issuer_url),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://localhost")) {
                return Err(format!(
                    "{key} must be an https:// URL (http:// only for localhost): sessions and tokens never travel in the clear"
                ));
            }
        }
        if self.client_id.trim().is_empty() {
            return Err(
                "client_id is empty: set it to the worklist's client id at the issuer".into(),
            );
        }
        if !(1..=200).contains(&self.page_size) {
            return Err("page_size must be between 1 and 200".into());
        }
        Ok(())
    }
}
