//! Writing admitted records to the source topics and waiting for the broker's acknowledgement
//! of every one (`acks=all`, idempotent producer). After a failed write the producer is
//! replaced: an idempotent producer whose messages timed out may not recover its sequence state
//! when the broker returns.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::time::Duration;

use continuity_stream::{KafkaSettings, Outgoing, StreamError, Topic};
use rdkafka::producer::FutureProducer;

use crate::metrics::Metrics;
use crate::problem::Refused;
use crate::rows::{record_name, Admitted};

/// The source topics' producer.
pub(crate) struct Publisher {
    kafka: KafkaSettings,
    /// The source topics' full names.
    topics: BTreeMap<Topic, String>,
    producer: RwLock<FutureProducer>,
    timeout: Duration,
}

impl Publisher {
    /// A producer that waits up to `timeout` for each acknowledgement.
    pub(crate) fn new(kafka: KafkaSettings, timeout: Duration) -> Result<Self, StreamError> {
        let producer = kafka.producer_with_timeout(timeout)?;
        Ok(Publisher {
            topics: Topic::SOURCES
                .iter()
                .map(|t| (*t, kafka.topic(*t)))
                .collect(),
            kafka,
            producer: RwLock::new(producer),
            timeout,
        })
    }

    /// The broker settings (for the readiness check).
    pub(crate) fn kafka(&self) -> &KafkaSettings {
        &self.kafka
    }

    /// Write every admitted record and wait for the broker's acknowledgement of all of them.
    pub(crate) async fn send(
        &self,
        admitted: &[Admitted],
        metrics: &Metrics,
    ) -> Result<(), Refused> {
        if admitted.is_empty() {
            return Ok(());
        }
        let mut messages: Vec<Outgoing<'_>> = Vec::with_capacity(admitted.len());
        for a in admitted {
            let Some(topic) = self.topics.get(&a.topic) else {
                tracing::error!(
                    topic = a.topic.base_name(),
                    "an admitted record has no source topic"
                );
                return Err(self.unavailable(metrics));
            };
            messages.push(Outgoing::new(
                topic.as_str(),
                Some(a.key.as_slice()),
                a.payload.as_slice(),
            ));
        }
        let producer = match self.producer.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let sent = tokio::time::timeout(
            self.timeout + Duration::from_secs(1),
            continuity_stream::send_all(&producer, messages),
        )
        .await;
        match sent {
            Ok(Ok(())) => {
                for a in admitted {
                    metrics
                        .events
                        .with_label_values(&[record_name(a.record).as_str()])
                        .inc();
                }
                Ok(())
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the broker did not acknowledge; answering 503");
                Err(self.unavailable(metrics))
            }
            Err(_) => {
                tracing::warn!("the broker did not acknowledge in time; answering 503");
                Err(self.unavailable(metrics))
            }
        }
    }

    /// Count the failure, replace the producer, and refuse.
    fn unavailable(&self, metrics: &Metrics) -> Refused {
        metrics.broker_failures.inc();
        match self.kafka.producer_with_timeout(self.timeout) {
            Ok(fresh) => match self.producer.write() {
                Ok(mut p) => *p = fresh,
                Err(poisoned) => *poisoned.into_inner() = fresh,
            },
            Err(e) => tracing::error!(error = %e, "could not create a new producer"),
        }
        Refused::BrokerUnavailable
    }
}
