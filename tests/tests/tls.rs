//! TLS to PostgreSQL, as managed PostgreSQL enforces it: a cluster of the test's own that
//! accepts TLS connections only (`scripts/pg-node.sh`, with a CA it makes). The services'
//! pool connects with `sslmode=verify-full` and the CA named in `database_url`
//! (`sslrootcert`), and migrations run over it; a wrong host name, a wrong CA, or no TLS is
//! refused.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

struct TlsPostgres {
    dir: PathBuf,
    port: u16,
}

impl TlsPostgres {
    fn script(args: &[&str]) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pg-node.sh");
        let status = std::process::Command::new(script)
            .args(args)
            .status()
            .expect("scripts/pg-node.sh runs");
        assert!(status.success(), "scripts/pg-node.sh {args:?}: {status}");
    }

    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("pg-tls-{}", uuid::Uuid::new_v4().simple()));
        let node = TlsPostgres {
            dir,
            port: continuity_e2e::free_port(),
        };
        Self::script(&["start", node.dir.to_str().unwrap(), &node.port.to_string()]);
        node
    }

    fn url(&self, host: &str, mode: &str, ca: &str) -> String {
        let ca = Path::new(&self.dir).join(ca);
        format!(
            "postgres://postgres@{host}:{}/postgres?sslmode={mode}&sslrootcert={}",
            self.port,
            ca.display()
        )
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        Self::script(&["stop", self.dir.to_str().unwrap()]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn refused(url: &str) -> String {
    let options: PgConnectOptions = url.parse().unwrap();
    match sqlx::PgConnection::connect_with(&options.disable_statement_logging()).await {
        Ok(_) => panic!("connected with {url}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn postgres_over_tls_with_verify_full_and_nothing_less() {
    let pg = TlsPostgres::start();

    // The services' pool and migrations, verifying the server against the CA.
    let good = pg.url("localhost", "verify-full", "ca.pem");
    continuity_store::migrate_url(&good).await.unwrap();
    let pool = continuity_store::pool(
        &good,
        1,
        Duration::from_secs(10),
        continuity_store::Access::General,
    )
    .unwrap();
    let (ssl, version): (bool, String) =
        sqlx::query_as("select ssl, version from pg_stat_ssl where pid = pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(ssl && version.starts_with("TLS"), "{version}");
    pool.close().await;

    // The certificate names localhost, not 127.0.0.1: refused under verify-full.
    let e = refused(&pg.url("127.0.0.1", "verify-full", "ca.pem")).await;
    assert!(e.contains("not valid for name"), "{e}");
    // A CA that did not sign the server's certificate.
    let e = refused(&pg.url("localhost", "verify-full", "other-ca.pem")).await;
    assert!(e.contains("UnknownIssuer"), "{e}");
    // No TLS: the server refuses (pg_hba allows hostssl only).
    let e = refused(&pg.url("localhost", "disable", "ca.pem")).await;
    assert!(e.contains("no encryption") || e.contains("pg_hba"), "{e}");
}
