//! TLS to PostgreSQL and to Kafka, as managed services enforce it.
//!
//! PostgreSQL: a cluster of the test's own that accepts TLS connections only
//! (`scripts/pg-node.sh`, with a CA it makes). The services' pool connects with
//! `sslmode=verify-full` and the CA named in `database_url` (`sslrootcert`), and migrations run
//! over it; a wrong host name, a wrong CA, or no TLS is refused.
//!
//! Kafka: a node of the test's own with a TLS listener taking SCRAM-SHA-256 and OAUTHBEARER
//! (`scripts/kafka-node.sh`, with a CA it makes; tokens checked against the development
//! issuer's key set). Clients configured through `KafkaSettings` create topics, produce and
//! consume over it with either; a wrong password, a wrong client secret, a wrong CA or a host
//! name the certificate does not carry is refused.

use std::time::Duration;

use continuity_e2e::{read_topic, KafkaNode, PgNode};
use continuity_stream::{
    send_all, KafkaSecurity, KafkaSettings, Outgoing, SaslMechanism, SecurityProtocol, Topic,
};
use continuity_worklist::dev_issuer::{DevIssuer, IssuerSettings, SERVICE_CLIENTS};
use rdkafka::consumer::Consumer;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// A TLS-only URL of `pg` for `host`, verifying with `mode` against its CA file `ca`.
fn tls_url(pg: &PgNode, host: &str, mode: &str, ca: &str) -> String {
    format!(
        "postgres://postgres@{host}:{}/postgres?sslmode={mode}&sslrootcert={}",
        pg.port,
        pg.file(ca).display()
    )
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
    let pg = PgNode::start_tls();

    // The services' pool and migrations, verifying the server against the CA.
    let good = tls_url(&pg, "localhost", "verify-full", "ca.pem");
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
    let e = refused(&tls_url(&pg, "127.0.0.1", "verify-full", "ca.pem")).await;
    assert!(e.contains("not valid for name"), "{e}");
    // A CA that did not sign the server's certificate.
    let e = refused(&tls_url(&pg, "localhost", "verify-full", "other-ca.pem")).await;
    assert!(e.contains("UnknownIssuer"), "{e}");
    // No TLS: the server refuses (pg_hba allows hostssl only).
    let e = refused(&tls_url(&pg, "localhost", "disable", "ca.pem")).await;
    assert!(e.contains("no encryption") || e.contains("pg_hba"), "{e}");
}

fn secured(node: &KafkaNode, host: &str, ca: &str, password: &str) -> KafkaSettings {
    KafkaSettings {
        brokers: format!("{host}:{}", node.sasl_ssl_port.unwrap()),
        topic_prefix: format!("tls-{}.", uuid::Uuid::new_v4().simple()),
        security: KafkaSecurity {
            kafka_security_protocol: SecurityProtocol::SaslSsl,
            kafka_ca_location: Some(node.tls_file(ca)),
            kafka_sasl_mechanism: Some(SaslMechanism::ScramSha256),
            kafka_sasl_username: Some("continuity".into()),
            kafka_sasl_password: Some(password.to_owned().into()),
            ..KafkaSecurity::default()
        },
    }
}

/// Settings for the OAUTHBEARER login: client credentials at the development issuer.
fn bearer(node: &KafkaNode, issuer: u16, secret: &str) -> KafkaSettings {
    let (client_id, _) = SERVICE_CLIENTS[0];
    KafkaSettings {
        brokers: format!("localhost:{}", node.sasl_ssl_port.unwrap()),
        topic_prefix: format!("oauth-{}.", uuid::Uuid::new_v4().simple()),
        security: KafkaSecurity {
            kafka_security_protocol: SecurityProtocol::SaslSsl,
            kafka_ca_location: Some(node.tls_file("ca.pem")),
            kafka_sasl_mechanism: Some(SaslMechanism::OAuthBearer),
            kafka_oauth_token_url: Some(format!("http://127.0.0.1:{issuer}/oauth/token")),
            kafka_oauth_client_id: Some(client_id.into()),
            kafka_oauth_client_secret: Some(secret.to_owned().into()),
            kafka_oauth_scope: Some("continuity".into()),
            ..KafkaSecurity::default()
        },
    }
}

/// Serve the development issuer on a free port of 127.0.0.1; returns the port.
async fn issuer() -> u16 {
    let port = continuity_e2e::free_port();
    let issuer = std::sync::Arc::new(
        DevIssuer::new(IssuerSettings {
            http_addr: ([127, 0, 0, 1], port).into(),
            issuer_url: format!("http://127.0.0.1:{port}"),
            ..IssuerSettings::default()
        })
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, issuer.router()).await });
    port
}

/// Send one message to `kafka`'s flags topic and read it back.
async fn round_trip(kafka: &KafkaSettings, body: &[u8]) {
    kafka.ensure_topics(&[Topic::Flags]).await.unwrap();
    let producer = kafka.producer().unwrap();
    let topic = kafka.topic(Topic::Flags);
    send_all(
        &producer,
        vec![Outgoing::new(&topic, Some(b"k".as_slice()), body)],
    )
    .await
    .unwrap();
    assert_eq!(read_topic(kafka, Topic::Flags).await, vec![body.to_vec()]);
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
async fn kafka_over_tls_with_scram_or_oauthbearer_and_a_verified_broker() {
    let issuer = issuer().await;
    let jwks = format!("http://127.0.0.1:{issuer}/.well-known/jwks.json");
    let node = tokio::task::block_in_place(|| KafkaNode::start_secured(Some(jwks)));

    // SCRAM-SHA-256.
    let kafka = secured(&node, "localhost", "ca.pem", "continuity-secret");
    round_trip(&kafka, b"over TLS with SCRAM").await;
    // OAUTHBEARER: librdkafka fetches a token by client credentials; the broker checks its
    // signature against the issuer's key set and its audience.
    let (_, secret) = SERVICE_CLIENTS[0];
    round_trip(
        &bearer(&node, issuer, secret),
        b"over TLS with a bearer token",
    )
    .await;

    let refused = |k: KafkaSettings| tokio::task::block_in_place(|| !metadata_answers(&k));
    assert!(refused(secured(&node, "localhost", "ca.pem", "wrong")));
    assert!(refused(bearer(&node, issuer, "wrong")));
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
