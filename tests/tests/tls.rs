//! TLS to PostgreSQL and to Kafka, as managed services enforce it.
//!
//! PostgreSQL: a cluster of the test's own that accepts TLS connections only
//! (`scripts/pg-node.sh`, with a CA it makes). The services' pool connects with
//! `sslmode=verify-full` and the CA named in `database_url` (`sslrootcert`), and migrations run
//! over it; a wrong host name, a wrong CA, or no TLS is refused.
//!
//! Kafka: a node of the test's own with a TLS + SCRAM-SHA-256 listener (`scripts/kafka-node.sh`,
//! with a CA it makes). Clients configured through `KafkaSettings` create topics, produce and
//! consume over it; a wrong password, a wrong CA or a host name the certificate does not carry
//! is refused.

use std::path::{Path, PathBuf};
use std::time::Duration;

use continuity_e2e::{read_topic, KafkaNode};
use continuity_stream::{
    send_all, KafkaSecurity, KafkaSettings, Outgoing, SecurityProtocol, Topic,
};
use rdkafka::consumer::Consumer;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

struct TlsPostgres {
    dir: PathBuf,
    port: u16,
}

impl TlsPostgres {
    fn script(args: &[&str]) {
        continuity_e2e::run_script("pg-node.sh", args);
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

fn secured(node: &KafkaNode, host: &str, ca: &str, password: &str) -> KafkaSettings {
    KafkaSettings {
        brokers: format!("{host}:{}", node.sasl_ssl_port.unwrap()),
        topic_prefix: format!("tls-{}.", uuid::Uuid::new_v4().simple()),
        security: KafkaSecurity {
            kafka_security_protocol: SecurityProtocol::SaslSsl,
            kafka_ca_location: Some(node.tls_file(ca)),
            kafka_sasl_mechanism: Some("SCRAM-SHA-256".into()),
            kafka_sasl_username: Some("continuity".into()),
            kafka_sasl_password: Some(password.to_owned().into()),
        },
    }
}

/// Whether a client with these settings gets the cluster's metadata (it waits up to 10 s for
/// an answer; a refused handshake or authentication ends it sooner with an error).
fn metadata_answers(kafka: &KafkaSettings) -> bool {
    let consumer = kafka.consumer("tls-check").unwrap();
    consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_over_tls_with_scram_and_a_verified_broker() {
    let node = tokio::task::block_in_place(KafkaNode::start_secured);
    let kafka = secured(&node, "localhost", "ca.pem", "continuity-secret");
    kafka.ensure_topics(&[Topic::Flags]).await.unwrap();
    let producer = kafka.producer().unwrap();
    let topic = kafka.topic(Topic::Flags);
    send_all(
        &producer,
        vec![Outgoing::new(
            &topic,
            Some(b"k".as_slice()),
            b"over TLS".as_slice(),
        )],
    )
    .await
    .unwrap();
    assert_eq!(
        read_topic(&kafka, Topic::Flags).await,
        vec![b"over TLS".to_vec()]
    );

    let refused = |k: KafkaSettings| tokio::task::block_in_place(|| !metadata_answers(&k));
    assert!(refused(secured(&node, "localhost", "ca.pem", "wrong")));
    assert!(refused(secured(
        &node,
        "localhost",
        "other-ca.pem",
        "continuity-secret"
    )));
    assert!(refused(secured(
        &node,
        "127.0.0.1",
        "ca.pem",
        "continuity-secret"
    )));
    // The same client settings reach it, so the refusals are the credentials' and the CA's.
    assert!(tokio::task::block_in_place(|| metadata_answers(&kafka)));
    tokio::task::block_in_place(|| node.remove());
}
