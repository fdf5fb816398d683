//! The caseworkers' worklist: each probation service's and treatment provider's at-risk and
//! overdue people, why each is flagged, and what was done about them.
//!
//! - `user`: who is signed in, their role and organisation, and the [`user::Scope`] of cases
//!   they may see;
//! - `tokens`, `signin`, `session`: OAuth2 sign-in (code + PKCE) against the issuer, tokens
//!   verified against its JWKS, server-side sessions in PostgreSQL, CSRF tokens on forms;
//! - `queries` (reads, scoped in SQL), `record` (writes: actions through the outbox to
//!   `continuity.actions`, assignments), `audit` (every read and write by a user);
//! - `pages`, `timeline`, `govuk`: the server-rendered pages (GOV.UK Design System);
//! - `security`: headers on every response, the correlation id;
//! - `webhooks`, `webhook_pages`: flags delivered to organisations' endpoints (Standard
//!   Webhooks), read from `continuity.flags`, with retries and a delivery log;
//! - `metrics`: what `/metrics` serves;
//! - `dev_issuer`: the development sign-in service for the local stack and tests.

#![warn(missing_docs)]

pub mod audit;
pub mod dev_issuer;
pub mod govuk;
pub mod metrics;
pub mod pages;
pub mod queries;
pub mod record;
pub mod security;
pub mod session;
pub mod settings;
mod signin;
pub mod timeline;
pub mod tokens;
pub mod user;
mod webhook_pages;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::routing::{get, post};
use axum::Router;
use continuity_domain::Rules;
use continuity_runtime::{Clock, ExposeSecret, Readiness, Supervisor};
use oauth2::basic::BasicClient;
use oauth2::{AuthUrl, ClientId, ClientSecret, EndpointNotSet, EndpointSet, RedirectUrl, TokenUrl};
use sqlx::PgPool;
use tower_http::services::ServeDir;
use tower_sessions::cookie::SameSite;
use tower_sessions::{ExpiredDeletion, Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

pub use settings::Settings;

/// The OAuth2 client with its authorisation and token endpoints set.
type OAuthClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// A running worklist's state.
pub struct Worklist {
    /// Its settings.
    pub settings: Settings,
    /// PostgreSQL.
    pub pool: PgPool,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The case rules (for the deadline in words).
    pub rules: Rules,
    oauth: OAuthClient,
    http: reqwest::Client,
    verifier: tokens::Verifier,
    /// The metrics `/metrics` serves.
    pub metrics: metrics::Metrics,
    /// How webhooks are delivered.
    pub dispatch: webhooks::DispatchSettings,
}

impl Worklist {
    /// Connect (lazily) and prepare the sign-in client.
    pub fn new(settings: Settings) -> anyhow::Result<Self> {
        let pool = continuity_store::pool(
            settings.connections.database.url(),
            settings.connections.database.database_pool,
            Duration::from_secs(5),
            continuity_store::Access::Pages,
        )?;
        let issuer = settings.issuer_url.trim_end_matches('/').to_owned();
        let backchannel = settings.backchannel_url().to_owned();
        // No redirects: the token and key endpoints answer directly, and following one could
        // send the code or the client's secret elsewhere.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        let mut oauth = BasicClient::new(ClientId::new(settings.client_id.clone()))
            .set_auth_uri(AuthUrl::new(format!("{issuer}/oauth/authorize")).context("issuer_url")?)
            .set_token_uri(
                TokenUrl::new(format!("{backchannel}/oauth/token")).context("issuer_url")?,
            )
            .set_redirect_uri(RedirectUrl::new(settings.callback_url()).context("public_url")?);
        if let Some(secret) = &settings.client_secret {
            oauth = oauth.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()));
        }
        let verifier = tokens::Verifier::new(
            format!("{backchannel}/.well-known/jwks.json"),
            settings.expected_issuer().to_owned(),
            settings.client_id.clone(),
            http.clone(),
        );
        Ok(Worklist {
            clock: settings.clock.clock(),
            rules: Rules::default(),
            pool,
            oauth,
            http,
            verifier,
            metrics: metrics::Metrics::new()?,
            dispatch: webhooks::DispatchSettings {
                schedule: webhooks::Schedule(
                    settings
                        .webhook_retry_seconds
                        .iter()
                        .map(|s| Duration::from_secs(*s))
                        .collect(),
                ),
                timeout: Duration::from_secs(settings.webhook_timeout_seconds),
                disable_after: chrono::Duration::hours(settings.webhook_disable_after_hours),
            },
            settings,
        })
    }
}

/// Apply the database migrations, the session store's included.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    continuity_store::migrate_url(settings.connections.database.url()).await?;
    let pool = continuity_store::pool(
        settings.connections.database.url(),
        1,
        Duration::from_secs(10),
        continuity_store::Access::General,
    )?;
    PostgresStore::new(pool.clone()).migrate().await?;
    pool.close().await;
    Ok(())
}

struct Ready(PgPool);

impl Readiness for Ready {
    async fn check(&self) -> Result<(), String> {
        sqlx::query("select 1")
            .execute(&self.0)
            .await
            .map(|_| ())
            .map_err(|e| format!("PostgreSQL: {e}"))
    }
}

/// The pages and the operations endpoints, with sessions and the security headers.
pub fn router(app: Arc<Worklist>) -> Router {
    let store = PostgresStore::new(app.pool.clone());
    let sessions = SessionManagerLayer::new(store)
        .with_name(session::COOKIE)
        .with_secure(true)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(time::Duration::minutes(
            app.settings.session_idle_minutes,
        )));
    let pages = Router::new()
        .route("/", get(pages::home))
        .route("/sign-in", get(signin::start))
        .route("/sign-in/callback", get(signin::callback))
        .route("/sign-out", post(signin::sign_out))
        .route("/worklist", get(pages::worklist))
        .route("/worklist/export.csv", get(pages::export))
        .route("/worklist/acknowledge", post(pages::acknowledge))
        .route("/cases/{id}", get(pages::case))
        .route("/cases/{id}/actions", post(pages::record_action))
        .route("/cases/{id}/assign", post(pages::assign))
        .route(
            "/webhooks",
            get(webhook_pages::page).post(webhook_pages::register),
        )
        .route("/webhooks/{id}/disable", post(webhook_pages::disable))
        .layer(sessions)
        .with_state(app.clone());
    continuity_runtime::operations_router(app.metrics.registry.clone(), Ready(app.pool.clone()))
        .merge(pages)
        .nest_service("/assets", ServeDir::new(&app.settings.assets_dir))
        .layer(axum::middleware::from_fn(security::headers))
}

/// Serve on `listener` until `shutdown`, deleting expired sessions in the background.
pub async fn serve(
    app: Arc<Worklist>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if !app
        .settings
        .assets_dir
        .join("govuk-frontend.min.css")
        .is_file()
    {
        anyhow::bail!(
            "assets_dir {} holds no govuk-frontend.min.css: set CONTINUITY_ASSETS_DIR to the directory scripts/install-frontend.sh prints",
            app.settings.assets_dir.display()
        );
    }
    let mut tasks = Supervisor::new();
    let store = PostgresStore::new(app.pool.clone());
    tasks.spawn("expired session deletion", async move {
        loop {
            if let Err(e) = store.delete_expired().await {
                tracing::warn!(error = %e, "expired sessions could not be deleted; trying again later");
            }
            tokio::time::sleep(Duration::from_secs(300)).await;
        }
    });
    {
        let (pool, kafka, url) = (
            app.pool.clone(),
            app.settings.connections.kafka.clone(),
            app.settings.public_url.clone(),
        );
        tasks.spawn(
            "webhook intake from the flags topic",
            webhooks::consume_flags(pool, kafka, url, app.metrics.clone()),
        );
    }
    let (lag_tx, lag_rx) = tokio::sync::watch::channel(None);
    tasks.spawn(
        "the matcher's lag, for holding webhooks",
        webhooks::watch_lag(
            app.pool.clone(),
            app.settings.connections.kafka.clone(),
            app.metrics.clone(),
            lag_tx,
        ),
    );
    {
        let app = app.clone();
        tasks.spawn("webhook dispatch", async move {
            let idle = Duration::from_millis(app.settings.webhook_interval_ms);
            loop {
                let held = webhooks::held(*lag_rx.borrow(), app.settings.webhook_hold_lag);
                app.metrics.webhooks_held.set(i64::from(held));
                if !held {
                    match webhooks::dispatch(&app.pool, &app.http, &app.dispatch, &app.metrics)
                        .await
                    {
                        Ok(n) if n > 0 => continue,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "webhook dispatch failed; trying again")
                        }
                    }
                }
                match webhooks::pending(&app.pool).await {
                    Ok(n) => app.metrics.webhooks_pending.set(n),
                    Err(e) => tracing::warn!(error = %e, "could not count webhook deliveries"),
                }
                tokio::time::sleep(idle).await;
            }
        });
    }
    tracing::info!(address = %listener.local_addr()?, "worklist listening");
    let served = continuity_runtime::http::serve(listener, router(app), shutdown);
    let result = tokio::select! {
        served = served => served.map_err(anyhow::Error::from),
        failure = tasks.next_exit() => Err(failure),
    };
    let _ = tasks.join(Duration::from_secs(10)).await;
    result
}
