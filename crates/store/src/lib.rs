//! PostgreSQL: the migrations (`crates/store/migrations`), a connection pool, and the case read
//! model ([`cases`]) every reader of the matcher's cases uses. The schema is documented in the
//! migration files; a service that writes a table holds those statements next to the logic that
//! needs them, inside the transaction that owns the change.

#![warn(missing_docs)]

pub mod cases;
pub mod lag;
pub mod outbox;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

/// The migrations, compiled in.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL does not parse.
    #[error("DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    Url(#[source] sqlx::Error),
    /// Connecting or querying failed.
    #[error("PostgreSQL error (check that it runs and DATABASE_URL is right): {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// How a service's statements find their rows; it sets how PostgreSQL plans them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Statements that look up batch-sized arrays of keys (`= any($1)`) in tables that grow
    /// without bound: the matcher. Planned for the actual array, thousands of keys look costlier
    /// than a sequential scan, so as tables grow every batch would scan them whole (measured:
    /// the key look-up went from 10 to 30 us per event between 300,000 and 1,000,000 events),
    /// and estimating each element costs milliseconds of planning per statement. So plans are
    /// generic (made once per connection) and never sequential scans where an index serves:
    /// a generic plan made while a table was still empty would otherwise scan it for the life
    /// of the connection once it has grown (seen with autovacuum off, where no ANALYZE replans).
    KeyLookups,
    /// Anything else: planned for each execution's parameters.
    General,
    /// Many small statements of a few shapes with selective parameters, where planning would
    /// cost as much as running (the worklist's pages: 1.5 ms to plan a 2 ms query): planned
    /// as PostgreSQL does by default, for each execution until a generic plan is as good.
    Pages,
}

/// A pool of `max` connections to `url` for statements of the kind `access`. Connecting is
/// lazy: the pool is returned even while the database is down, and requests wait up to
/// `acquire_timeout` for it.
pub fn pool(
    url: &str,
    max: u32,
    acquire_timeout: Duration,
    access: Access,
) -> Result<PgPool, StoreError> {
    let options: PgConnectOptions = url.parse().map_err(StoreError::Url)?;
    if !verifies_tls(url) && !is_local(options.get_host()) {
        // sqlx's default sslmode is `prefer`: without TLS on offer it connects in the clear.
        tracing::warn!(
            host = options.get_host(),
            "database_url names a remote PostgreSQL without sslmode=verify-full (or verify-ca): the connection may be unencrypted or its server unverified"
        );
    }
    // Index probes gain nothing from parallel workers, whose start-up costs more than the scan.
    let options = match access {
        Access::KeyLookups => options.options([
            ("plan_cache_mode", "force_generic_plan"),
            ("enable_seqscan", "off"),
            ("max_parallel_workers_per_gather", "0"),
        ]),
        Access::General => options.options([
            ("plan_cache_mode", "force_custom_plan"),
            ("max_parallel_workers_per_gather", "0"),
        ]),
        Access::Pages => options.options([
            ("plan_cache_mode", "auto"),
            ("max_parallel_workers_per_gather", "0"),
        ]),
    };
    Ok(PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(options))
}

/// Whether `url` asks for the server's certificate to be verified.
fn verifies_tls(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|p| p == "sslmode=verify-full" || p == "sslmode=verify-ca")
    })
}

/// A host on this machine (or a Unix socket directory).
fn is_local(host: &str) -> bool {
    host.starts_with('/') || matches!(host, "localhost" | "127.0.0.1" | "::1")
}

/// Apply the migrations that have not been applied.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Connect to `url` and apply the migrations that have not been applied: what each service's
/// `migrate` command does.
pub async fn migrate_url(url: &str) -> Result<(), StoreError> {
    let pool = pool(url, 1, Duration::from_secs(10), Access::General)?;
    migrate(&pool).await?;
    pool.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_verified_tls_or_a_local_server_goes_without_a_warning() {
        assert!(verifies_tls(
            "postgres://u@db.example:5432/c?sslmode=verify-full&sslrootcert=/ca.pem"
        ));
        assert!(verifies_tls(
            "postgres://u@db.example/c?sslrootcert=/ca.pem&sslmode=verify-ca"
        ));
        assert!(!verifies_tls("postgres://u@db.example/c?sslmode=require"));
        assert!(!verifies_tls("postgres://u@db.example/c"));
        assert!(is_local("127.0.0.1") && is_local("localhost") && is_local("/var/run/postgresql"));
        assert!(!is_local("db.example"));
    }
}
