//! Kafka plumbing shared by every service: the topics as a typed enum (names come from
//! configuration, never from string literals scattered through the code), producer and
//! consumer settings, and creating topics at start-up. Written against Apache Kafka, which the
//! local stack, docker-compose and Kubernetes all run.
//!
//! Its length is the topics table and the one consume/produce loop every service uses; kept
//! together so a service never configures a client of its own.

#![warn(missing_docs)]

use std::time::Duration;

use continuity_domain::events::SourceEvent;
use continuity_domain::KeyedHasher;
use continuity_schema::RecordType;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;

/// How long a look-up (watermarks, a partition's tail) waits for the broker.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Every topic the pipeline reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Release movements, withdrawals, admissions and deaths (source).
    Releases,
    /// Referrals recording the need (source).
    Referrals,
    /// Treatment starts and discharges (source).
    Treatment,
    /// Identity links, merges and unmerges (source).
    Identity,
    /// Case changes (output of the matcher).
    CaseEvents,
    /// Caseworker flags (output of the matcher).
    Flags,
    /// Continuity figures (output of the reporter).
    Performance,
    /// What caseworkers did about cases (output of the worklist).
    Actions,
    /// Messages that could not be applied, with the reason.
    DeadLetter,
    /// The outbox relay's own bookkeeping: in each of its Kafka transactions, which outbox rows
    /// it published (internal; read only by the relay).
    RelayPosition,
}

impl Topic {
    /// Every topic.
    pub const ALL: [Topic; 10] = [
        Topic::Releases,
        Topic::Referrals,
        Topic::Treatment,
        Topic::Identity,
        Topic::CaseEvents,
        Topic::Flags,
        Topic::Performance,
        Topic::Actions,
        Topic::DeadLetter,
        Topic::RelayPosition,
    ];

    /// The source topics the matcher consumes.
    pub const SOURCES: [Topic; 4] = [
        Topic::Releases,
        Topic::Referrals,
        Topic::Treatment,
        Topic::Identity,
    ];

    /// The name without the deployment's prefix.
    pub fn base_name(self) -> &'static str {
        match self {
            Topic::Releases => "releases",
            Topic::Referrals => "referrals",
            Topic::Treatment => "treatment",
            Topic::Identity => "identity",
            Topic::CaseEvents => "case-events",
            Topic::Flags => "flags",
            Topic::Performance => "performance",
            Topic::Actions => "actions",
            Topic::DeadLetter => "dead-letter",
            Topic::RelayPosition => "relay-position",
        }
    }

    /// Partitions to create: six for every topic, so one person's events and their case's
    /// outputs spread the same way and up to six matchers can share the work; one for the
    /// relay's position, which one relay at a time writes in order.
    pub fn partitions(self) -> i32 {
        match self {
            Topic::RelayPosition => 1,
            _ => 6,
        }
    }

    /// Topic configuration set when the topic is created (a topic that exists is left as it
    /// is). The source topics are the log of record that a new matcher, or a replay, reads from
    /// the start: kept forever. Dead letters wait for a person: kept forever. Outputs are kept
    /// 30 days, long enough for a consumer to catch up after an outage. The relay's position
    /// needs only its last message: compacted.
    pub fn config(self) -> &'static [(&'static str, &'static str)] {
        const FOREVER: &[(&str, &str)] = &[("retention.ms", "-1")];
        const THIRTY_DAYS: &[(&str, &str)] = &[("retention.ms", "2592000000")];
        match self {
            Topic::Releases
            | Topic::Referrals
            | Topic::Treatment
            | Topic::Identity
            | Topic::DeadLetter => FOREVER,
            Topic::CaseEvents | Topic::Flags | Topic::Performance | Topic::Actions => THIRTY_DAYS,
            Topic::RelayPosition => &[("cleanup.policy", "compact")],
        }
    }

    /// The source topic a record type is produced to; `None` for output records.
    pub fn for_record(record: RecordType) -> Option<Topic> {
        Some(match record {
            RecordType::PrisonRelease
            | RecordType::ReleaseWithdrawn
            | RecordType::CustodyAdmission
            | RecordType::PersonDied => Topic::Releases,
            RecordType::Referral => Topic::Referrals,
            RecordType::TreatmentStart | RecordType::TreatmentDischarge => Topic::Treatment,
            RecordType::IdentityLinked
            | RecordType::IdentityMerged
            | RecordType::IdentityUnmerged
            | RecordType::ProbationAllocated => Topic::Identity,
            RecordType::CaseEvent => return None,
            RecordType::EngagementFlag => return None,
            RecordType::ContinuityPerformance => return None,
            RecordType::CaseworkerAction => return None,
            RecordType::DeadLetter => return None,
        })
    }
}

/// How to reach the broker and name topics: a section of every service's configuration
/// (`brokers`, `topic_prefix`, and the `kafka_*` security keys of [`KafkaSecurity`]).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default)]
pub struct KafkaSettings {
    /// Bootstrap servers, e.g. `127.0.0.1:9092`.
    pub brokers: String,
    /// Prefix of every topic name, e.g. `continuity.` (tests use a fresh one each).
    pub topic_prefix: String,
    /// TLS and SASL.
    #[serde(flatten)]
    pub security: KafkaSecurity,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self::new("127.0.0.1:9092")
    }
}

/// How the broker is secured, as librdkafka names it: plaintext (the local stack), TLS, SASL
/// over TLS (every managed Kafka, Strimzi). With TLS the broker's certificate is verified,
/// host name included, against `kafka_ca_location` (or the system's CAs). SASL is SCRAM or
/// PLAIN with a user name and password, or OAUTHBEARER with OAuth 2.0 client credentials
/// (librdkafka's `oidc` method: it fetches a token from `kafka_oauth_token_url` and renews it
/// before it expires).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct KafkaSecurity {
    /// `plaintext` (default), `ssl`, `sasl_plaintext` or `sasl_ssl` (librdkafka's
    /// `security.protocol`).
    pub kafka_security_protocol: SecurityProtocol,
    /// A PEM file of the CA(s) the broker's certificate must chain to.
    pub kafka_ca_location: Option<std::path::PathBuf>,
    /// The SASL mechanism, with `sasl_plaintext` or `sasl_ssl`.
    pub kafka_sasl_mechanism: Option<SaslMechanism>,
    /// The SASL user name (SCRAM, PLAIN).
    pub kafka_sasl_username: Option<String>,
    /// The SASL password (`CONTINUITY_KAFKA_SASL_PASSWORD`); never logged.
    pub kafka_sasl_password: Option<secrecy::SecretString>,
    /// OAUTHBEARER: the issuer's token endpoint (https://, or http:// on loopback only).
    pub kafka_oauth_token_url: Option<String>,
    /// OAUTHBEARER: the client id at the issuer.
    pub kafka_oauth_client_id: Option<String>,
    /// OAUTHBEARER: the client secret (`CONTINUITY_KAFKA_OAUTH_CLIENT_SECRET`); never logged.
    pub kafka_oauth_client_secret: Option<secrecy::SecretString>,
    /// OAUTHBEARER: the scope to ask for, if the issuer needs one.
    pub kafka_oauth_scope: Option<String>,
    /// OAUTHBEARER: a PEM file of the CA(s) the token endpoint's certificate must chain to
    /// (the system's CAs when unset).
    pub kafka_oauth_ca_location: Option<std::path::PathBuf>,
}

/// librdkafka's `security.protocol`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// No TLS, no SASL: a broker on the same host only.
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS: the password crosses the network in the clear unless SCRAM.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// librdkafka's spelling.
    pub fn code(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }

    fn is_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// librdkafka's `sasl.mechanism`, spelt as Kafka spells it in settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub enum SaslMechanism {
    /// SCRAM with SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// SCRAM with SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    /// The password itself: over `sasl_ssl` only.
    #[serde(rename = "PLAIN")]
    Plain,
    /// An OAuth 2.0 bearer token from client credentials.
    #[serde(rename = "OAUTHBEARER")]
    OAuthBearer,
}

impl SaslMechanism {
    /// librdkafka's spelling.
    pub fn code(self) -> &'static str {
        match self {
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

impl KafkaSecurity {
    /// Set these on a client's configuration, or say which setting is missing or unsafe.
    fn apply(&self, c: &mut ClientConfig) -> Result<(), StreamError> {
        use secrecy::ExposeSecret;
        let refuse = |problem: &str| Err(StreamError::Settings(problem.to_owned()));
        let protocol = self.kafka_security_protocol;
        c.set("security.protocol", protocol.code());
        if let Some(ca) = &self.kafka_ca_location {
            c.set("ssl.ca.location", ca.to_string_lossy());
        }
        let oauth_set = self.kafka_oauth_token_url.is_some()
            || self.kafka_oauth_client_id.is_some()
            || self.kafka_oauth_client_secret.is_some();
        match (protocol.is_sasl(), self.kafka_sasl_mechanism) {
            (false, None) => {}
            (false, Some(_)) => {
                return refuse("kafka_sasl_mechanism is set but kafka_security_protocol is not sasl_ssl or sasl_plaintext");
            }
            (true, None) => {
                return refuse("kafka_security_protocol is SASL: set kafka_sasl_mechanism (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN or OAUTHBEARER)");
            }
            (true, Some(SaslMechanism::OAuthBearer)) => {
                let (Some(url), Some(id), Some(secret)) = (
                    &self.kafka_oauth_token_url,
                    &self.kafka_oauth_client_id,
                    &self.kafka_oauth_client_secret,
                ) else {
                    return refuse("OAUTHBEARER needs kafka_oauth_token_url, kafka_oauth_client_id and kafka_oauth_client_secret");
                };
                if !(url.starts_with("https://") || loopback_http(url)) {
                    return refuse("kafka_oauth_token_url must be https:// (http:// on loopback only): the client secret is sent to it");
                }
                c.set("sasl.mechanism", SaslMechanism::OAuthBearer.code())
                    .set("sasl.oauthbearer.method", "oidc")
                    .set("sasl.oauthbearer.token.endpoint.url", url)
                    .set("sasl.oauthbearer.client.id", id)
                    .set("sasl.oauthbearer.client.secret", secret.expose_secret());
                if let Some(scope) = &self.kafka_oauth_scope {
                    c.set("sasl.oauthbearer.scope", scope);
                }
                if let Some(ca) = &self.kafka_oauth_ca_location {
                    c.set("https.ca.location", ca.to_string_lossy());
                }
            }
            (true, Some(mechanism)) => {
                let (Some(user), Some(password)) =
                    (&self.kafka_sasl_username, &self.kafka_sasl_password)
                else {
                    return refuse(
                        "SCRAM and PLAIN need kafka_sasl_username and kafka_sasl_password",
                    );
                };
                if mechanism == SaslMechanism::Plain && protocol != SecurityProtocol::SaslSsl {
                    return refuse("PLAIN sends the password itself: use it with kafka_security_protocol sasl_ssl only");
                }
                c.set("sasl.mechanism", mechanism.code())
                    .set("sasl.username", user)
                    .set("sasl.password", password.expose_secret());
            }
        }
        if oauth_set && self.kafka_sasl_mechanism != Some(SaslMechanism::OAuthBearer) {
            return refuse("kafka_oauth_* settings are for kafka_sasl_mechanism OAUTHBEARER; remove them or change the mechanism");
        }
        Ok(())
    }
}

/// An `http://` URL whose host is the loopback interface.
fn loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

impl KafkaSettings {
    /// Settings with the default prefix `continuity.`.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic_prefix: "continuity.".into(),
            security: KafkaSecurity::default(),
        }
    }

    /// The full name of a topic.
    pub fn topic(&self, topic: Topic) -> String {
        format!("{}{}", self.topic_prefix, topic.base_name())
    }

    fn base(&self) -> Result<ClientConfig, StreamError> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("socket.timeout.ms", "10000")
            .set("log_level", "4");
        self.security.apply(&mut c)?;
        Ok(c)
    }

    /// An idempotent producer (acks=all): a retried send is never written twice. It waits up
    /// to 5 ms to fill a request with messages.
    pub fn producer(&self) -> Result<FutureProducer, StreamError> {
        self.idempotent(Duration::from_secs(30), 5)
    }

    /// An idempotent producer (acks=all) that gives up on a message not acknowledged within
    /// `timeout`: for a caller that answers someone waiting (ingest answers 503). It waits at
    /// most 1 ms to fill a request (the wait is part of every answer's latency; under load
    /// concurrent answers still share requests).
    pub fn producer_with_timeout(&self, timeout: Duration) -> Result<FutureProducer, StreamError> {
        self.idempotent(timeout, 1)
    }

    fn idempotent(&self, timeout: Duration, linger_ms: u32) -> Result<FutureProducer, StreamError> {
        self.base()?
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", timeout.as_millis().to_string())
            .set("linger.ms", linger_ms.to_string())
            .set("compression.type", "none")
            .create()
            .map_err(StreamError::creating)
    }

    /// A transactional producer (idempotent, acks=all) with `transactional.id` = the topic
    /// prefix + `id`, so deployments and tests that share a broker never fence each other.
    /// Call `init_transactions` before its first transaction: that fences any earlier producer
    /// with the same id and aborts the transaction it left open.
    pub fn transactional_producer(&self, id: &str) -> Result<FutureProducer, StreamError> {
        self.base()?
            .set("transactional.id", format!("{}{id}", self.topic_prefix))
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("transaction.timeout.ms", "60000")
            .set("message.timeout.ms", "30000")
            .set("linger.ms", "5")
            .set("compression.type", "none")
            .create()
            .map_err(StreamError::creating)
    }

    /// The last committed message of one partition (`read_committed`), or `None` when it holds
    /// none. Reads back from the end in widening steps, so a partition whose older messages
    /// were not yet compacted away costs only its tail.
    pub async fn last_message(
        &self,
        topic: Topic,
        partition: i32,
    ) -> Result<Option<Vec<u8>>, StreamError> {
        let name = self.topic(topic);
        let consumer: std::sync::Arc<StreamConsumer<PartitionsContext>> = std::sync::Arc::new(
            self.consumer_config(&format!("{}last-message", self.topic_prefix))?
                .set("enable.partition.eof", "true")
                .set("isolation.level", "read_committed")
                .create_with_context(PartitionsContext)
                .map_err(StreamError::creating)?,
        );
        let (low, high) = {
            let (c, n) = (consumer.clone(), name.clone());
            tokio::task::spawn_blocking(move || watermarks(&c, &n, partition))
                .await
                .map_err(|_| StreamError::Client(KafkaError::Canceled))?
                .map_err(StreamError::Client)?
        };
        let mut back = 64;
        loop {
            let from = (high - back).max(low);
            let mut tpl = rdkafka::TopicPartitionList::new();
            tpl.add_partition_offset(&name, partition, rdkafka::Offset::Offset(from))
                .map_err(StreamError::Client)?;
            consumer.assign(&tpl).map_err(StreamError::Client)?;
            let mut last = None;
            if high > low {
                loop {
                    match tokio::time::timeout(LOOKUP_TIMEOUT, consumer.recv()).await {
                        Err(_) => return Err(StreamError::Timeout { topic: name }),
                        Ok(Ok(m)) => {
                            last = Some(rdkafka::Message::payload(&m).unwrap_or_default().to_vec());
                        }
                        Ok(Err(KafkaError::PartitionEOF(_))) => break,
                        Ok(Err(e)) => return Err(StreamError::Client(e)),
                    }
                }
            }
            if last.is_some() || from == low {
                return Ok(last);
            }
            back *= 8;
        }
    }

    /// A consumer in `group` that commits offsets only when told to and starts from the
    /// earliest offset when the group has none.
    pub fn consumer(&self, group: &str) -> Result<StreamConsumer, StreamError> {
        self.consumer_config(group)?
            .set("enable.partition.eof", "false")
            .create()
            .map_err(StreamError::creating)
    }

    /// A consumer as [`consumer`](Self::consumer), for reading each assigned partition through a
    /// queue of its own (`StreamConsumer::split_partition_queue`). It reports when a partition
    /// reaches its end, and an error (`AutoOffsetReset`) instead of moving on when an assigned
    /// offset is no longer on the broker. Its prefetch limits apply to each partition: a partition is fetched
    /// again once fewer than 3,000 of its messages and 512 KiB are queued, so one read slowly
    /// stops being fetched without holding back the others.
    ///
    /// The broker answers a fetch with up to `fetch.max.bytes`, which librdkafka caps at the
    /// queue limit, and up to `max.partition.fetch.bytes` from each partition asked. Small
    /// answers let a partition that runs dry be served sooner. A fetch with nothing new returns
    /// after 50 ms instead of 500, for the same reason and for latency when live.
    pub fn partition_consumer(
        &self,
        group: &str,
    ) -> Result<StreamConsumer<PartitionsContext>, StreamError> {
        self.consumer_config(group)?
            .set("enable.partition.eof", "true")
            // The matcher asks for the offsets it stored. If the broker no longer holds one
            // (records deleted by retention), jumping to the earliest it holds would skip
            // events silently: report it instead.
            .set("auto.offset.reset", "error")
            .set("queued.max.messages.kbytes", "512")
            .set("queued.min.messages", "3000")
            .set("fetch.queue.backoff.ms", "20")
            .set("fetch.wait.max.ms", "50")
            .create_with_context(PartitionsContext)
            .map_err(StreamError::creating)
    }

    fn consumer_config(&self, group: &str) -> Result<ClientConfig, StreamError> {
        let mut c = self.base()?;
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000");
        Ok(c)
    }

    /// Where existing topics' configuration differs from [`Topic::config`], in words an
    /// operator can act on (topics that exist are never altered by [`ensure_topics`]).
    ///
    /// [`ensure_topics`]: Self::ensure_topics
    pub async fn config_drift(&self, topics: &[Topic]) -> Result<Vec<String>, StreamError> {
        use rdkafka::admin::{OwnedResourceSpecifier, ResourceSpecifier};
        let admin: AdminClient<DefaultClientContext> =
            self.base()?.create().map_err(StreamError::creating)?;
        let names: Vec<String> = topics.iter().map(|t| self.topic(*t)).collect();
        let specifiers: Vec<ResourceSpecifier<'_>> =
            names.iter().map(|n| ResourceSpecifier::Topic(n)).collect();
        let options = AdminOptions::new().request_timeout(Some(LOOKUP_TIMEOUT));
        let described = admin
            .describe_configs(&specifiers, &options)
            .await
            .map_err(StreamError::Client)?;
        let mut drift = Vec::new();
        for (topic, result) in topics.iter().zip(described) {
            let Ok(resource) = result else { continue };
            let OwnedResourceSpecifier::Topic(name) = &resource.specifier else {
                continue;
            };
            for (key, wanted) in topic.config() {
                let actual = resource.get(key).and_then(|e| e.value.as_deref());
                if actual != Some(*wanted) {
                    drift.push(format!(
                        "topic {name} has {key}={} where the pipeline needs {wanted}",
                        actual.unwrap_or("(unset)")
                    ));
                }
            }
        }
        Ok(drift)
    }

    /// Create the topics that do not exist yet; existing ones are left as they are.
    pub async fn ensure_topics(&self, topics: &[Topic]) -> Result<(), StreamError> {
        let admin: AdminClient<DefaultClientContext> =
            self.base()?.create().map_err(StreamError::creating)?;
        let names: Vec<String> = topics.iter().map(|t| self.topic(*t)).collect();
        let new: Vec<NewTopic> = topics
            .iter()
            .zip(&names)
            .map(|(t, n)| {
                t.config().iter().fold(
                    NewTopic::new(n, t.partitions(), TopicReplication::Fixed(1)),
                    |topic, (key, value)| topic.set(key, value),
                )
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = admin
            .create_topics(&new, &options)
            .await
            .map_err(StreamError::Client)?;
        for result in results {
            match result {
                Ok(name) => tracing::info!(topic = %name, "created topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => return Err(StreamError::CreateTopic { name, code }),
            }
        }
        Ok(())
    }
}

/// A partition's low and high watermarks. A partition created a moment ago answers "not
/// leader" (or "unknown") until its broker has taken the lead, after the controller said so:
/// those answers are retried for up to [`LOOKUP_TIMEOUT`].
fn watermarks(
    consumer: &StreamConsumer<PartitionsContext>,
    topic: &str,
    partition: i32,
) -> Result<(i64, i64), KafkaError> {
    let until = std::time::Instant::now() + LOOKUP_TIMEOUT;
    loop {
        match consumer.fetch_watermarks(topic, partition, LOOKUP_TIMEOUT) {
            Err(e)
                if std::time::Instant::now() < until
                    && matches!(
                        e.rdkafka_error_code(),
                        Some(
                            RDKafkaErrorCode::NotLeaderForPartition
                                | RDKafkaErrorCode::UnknownTopicOrPartition
                                | RDKafkaErrorCode::LeaderNotAvailable
                        )
                    ) =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// The context of a [`KafkaSettings::partition_consumer`]. librdkafka reports a partition's
/// end as an error event, which the default context logs as an error; here it is routine
/// (the reader reads it from the partition's queue), so only other errors are logged.
pub struct PartitionsContext;

impl ClientContext for PartitionsContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error != KafkaError::Global(RDKafkaErrorCode::PartitionEOF) {
            tracing::error!(error = %error, reason, "broker client error");
        }
    }
}

impl ConsumerContext for PartitionsContext {}

/// Why the broker could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The client could not be created or the request failed.
    #[error("Kafka client error (check CONTINUITY_BROKERS and that the broker runs): {0}")]
    Client(#[source] rdkafka::error::KafkaError),
    /// The TLS or SASL settings are incomplete or unsafe.
    #[error("Kafka settings: {0}")]
    Settings(String),
    /// The broker did not answer in time.
    #[error("no answer from the broker reading {topic} (check that it runs)")]
    Timeout {
        /// The topic being read.
        topic: String,
    },
    /// The broker refused to create a topic.
    #[error("could not create topic {name}: {code}")]
    CreateTopic {
        /// The topic.
        name: String,
        /// The broker's answer.
        code: RDKafkaErrorCode,
    },
}

impl StreamError {
    /// A client that could not be created. librdkafka's configuration errors quote the value
    /// they refuse, which may be a password or client secret: the value is taken out.
    fn creating(e: rdkafka::error::KafkaError) -> Self {
        match e {
            rdkafka::error::KafkaError::ClientConfig(_, description, key, value) => {
                let description = if value.is_empty() {
                    description
                } else {
                    description.replace(&value, "(the value)")
                };
                StreamError::Settings(format!("librdkafka refused {key}: {description}"))
            }
            other => StreamError::Client(other),
        }
    }
}

/// The message key of a source event: a keyed hash of the person's attributor where the
/// event has one, else of its first identifier, else of its natural key. Keys never carry a
/// raw identifier.
pub fn partition_key(event: &SourceEvent, hasher: &KeyedHasher) -> Vec<u8> {
    if let Some(person) = event.person() {
        if let Some(a) = &person.attributor {
            return hasher.partition_key(a).as_bytes().to_vec();
        }
        if let Some(id) = person.identifiers.first() {
            return hasher.identifier(id).as_bytes().to_vec();
        }
    }
    let natural = match event {
        SourceEvent::ReleaseWithdrawn(w) => w.release_id.clone(),
        SourceEvent::IdentityLinked(c)
        | SourceEvent::IdentityMerged(c)
        | SourceEvent::IdentityUnmerged(c) => {
            return hasher.identifier(&c.kept).as_bytes().to_vec();
        }
        SourceEvent::TreatmentDischarge(d) => format!("{}/{}", d.provider, d.episode_id),
        other => other.id().0.to_string(),
    };
    hasher.natural_key(&natural).as_bytes().to_vec()
}

/// One message to send.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// Full topic name.
    pub topic: &'a str,
    /// Key, if any.
    pub key: Option<&'a [u8]>,
    /// Value.
    pub payload: &'a [u8],
    /// Record timestamp in milliseconds since the epoch; `None` lets the producer stamp the
    /// time of sending, as every service does.
    pub timestamp: Option<i64>,
}

impl<'a> Outgoing<'a> {
    /// A message stamped with the time it is sent.
    pub fn new(topic: &'a str, key: Option<&'a [u8]>, payload: &'a [u8]) -> Self {
        Self {
            topic,
            key,
            payload,
            timestamp: None,
        }
    }
}

/// Send every message and wait until the broker has acknowledged all of them, in order per
/// partition. Messages are enqueued at once (waiting for earlier deliveries only when the
/// producer's queue is full), so a batch costs one round of acknowledgements, not one per
/// message.
pub async fn send_all<'a>(
    producer: &rdkafka::producer::FutureProducer,
    messages: impl IntoIterator<Item = Outgoing<'a>>,
) -> Result<(), rdkafka::error::KafkaError> {
    use rdkafka::error::KafkaError;
    use rdkafka::producer::FutureRecord;
    use std::collections::VecDeque;

    let mut pending = VecDeque::new();
    for message in messages {
        let mut record = FutureRecord::to(message.topic).payload(message.payload);
        if let Some(k) = message.key {
            record = record.key(k);
        }
        if let Some(t) = message.timestamp {
            record = record.timestamp(t);
        }
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push_back(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    match pending.pop_front() {
                        Some(oldest) => wait(oldest).await?,
                        None => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
    for delivery in pending {
        wait(delivery).await?;
    }
    Ok(())
}

async fn wait(
    delivery: rdkafka::producer::DeliveryFuture,
) -> Result<(), rdkafka::error::KafkaError> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(e),
        Err(_) => Err(rdkafka::error::KafkaError::Canceled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth() -> KafkaSecurity {
        KafkaSecurity {
            kafka_security_protocol: SecurityProtocol::SaslSsl,
            kafka_sasl_mechanism: Some(SaslMechanism::OAuthBearer),
            kafka_oauth_token_url: Some("https://issuer.example/oauth/token".into()),
            kafka_oauth_client_id: Some("continuity-matcher".into()),
            kafka_oauth_client_secret: Some("s3cret-value".to_owned().into()),
            ..KafkaSecurity::default()
        }
    }

    fn refusal(security: KafkaSecurity) -> String {
        let settings = KafkaSettings {
            security,
            ..KafkaSettings::default()
        };
        match settings.producer() {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[tokio::test]
    async fn oauthbearer_with_client_credentials_makes_a_client() {
        // librdkafka refuses `sasl.oauthbearer.method=oidc` when built without curl.
        let settings = KafkaSettings {
            security: oauth(),
            ..KafkaSettings::default()
        };
        let _producer = settings.producer().unwrap();
        let _consumer: rdkafka::consumer::StreamConsumer = settings.consumer("g").unwrap();
    }

    #[test]
    fn incomplete_or_unsafe_security_settings_are_refused_naming_the_setting() {
        let cases = [
            (
                KafkaSecurity {
                    kafka_oauth_client_secret: None,
                    ..oauth()
                },
                "kafka_oauth_client_secret",
            ),
            (
                KafkaSecurity {
                    kafka_oauth_token_url: Some("http://issuer.example/token".into()),
                    ..oauth()
                },
                "must be https://",
            ),
            (
                KafkaSecurity {
                    kafka_sasl_mechanism: Some(SaslMechanism::ScramSha512),
                    kafka_sasl_username: Some("u".into()),
                    kafka_sasl_password: Some("p".to_owned().into()),
                    ..oauth()
                },
                "kafka_oauth_* settings are for",
            ),
            (
                KafkaSecurity {
                    kafka_security_protocol: SecurityProtocol::SaslPlaintext,
                    kafka_sasl_mechanism: Some(SaslMechanism::Plain),
                    kafka_sasl_username: Some("u".into()),
                    kafka_sasl_password: Some("p".to_owned().into()),
                    ..KafkaSecurity::default()
                },
                "sasl_ssl only",
            ),
            (
                KafkaSecurity {
                    kafka_security_protocol: SecurityProtocol::SaslSsl,
                    ..KafkaSecurity::default()
                },
                "set kafka_sasl_mechanism",
            ),
            (
                KafkaSecurity {
                    kafka_sasl_mechanism: Some(SaslMechanism::ScramSha256),
                    ..KafkaSecurity::default()
                },
                "kafka_security_protocol is not sasl",
            ),
        ];
        for (security, names) in cases {
            let e = refusal(security);
            assert!(e.contains(names), "{e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        // librdkafka's own refusal quotes the value; the error does not.
        let e = StreamError::creating(rdkafka::error::KafkaError::ClientConfig(
            rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "Invalid value \"s3cret\" for configuration property \"sasl.password\"".into(),
            "sasl.password".into(),
            "s3cret".into(),
        ))
        .to_string();
        assert!(e.contains("sasl.password") && !e.contains("s3cret"), "{e}");
        assert!(loopback_http("http://127.0.0.1:8080/oauth/token"));
        assert!(loopback_http("http://localhost/oauth/token"));
        assert!(!loopback_http("http://localhost.example/oauth/token"));
    }
}
