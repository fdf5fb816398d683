//! The owned partitions as one stream of [`Incoming`] messages in event-time order: each
//! partition is read through its own librdkafka queue and [`Merge`] chooses among them.
//!
//! Built afresh after every assignment (assigning deactivates the partition queues). Messages
//! librdkafka fetched before a partition's queue was split off arrive on the consumer's own
//! queue; they are read from there first, so each partition's messages are offered in offset
//! order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use continuity_stream::PartitionsContext;
use futures_util::{FutureExt, StreamExt};
use rdkafka::consumer::stream_consumer::StreamPartitionQueue;
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Message;

use crate::intake::Incoming;
use crate::merge::{Merge, Next};

/// Most messages held per partition beyond librdkafka's own prefetch.
const BUFFERED_PER_PARTITION: usize = 512;

/// Longest wait for a queue before looking at every queue again.
const REPOLL: Duration = Duration::from_millis(100);

/// The owned partitions, read in event-time order.
pub struct PartitionReader {
    consumer: Arc<StreamConsumer<PartitionsContext>>,
    queues: Vec<StreamPartitionQueue<PartitionsContext>>,
    buffered: Buffered,
}

/// What has been read and not yet taken.
struct Buffered {
    /// Position of each partition in `queues` and the merge.
    index: HashMap<(String, i32), usize>,
    /// The partitions, by position.
    names: Vec<(String, i32)>,
    merge: Merge<Incoming>,
    /// Counts partitions whose next offset the broker no longer holds.
    offsets_missing: prometheus::IntCounter,
}

impl PartitionReader {
    /// Read `partitions`, which `consumer` has just been assigned. A partition with nothing
    /// buffered holds back the others for at most `max_wait` (see [`Merge`]).
    pub fn new(
        consumer: &Arc<StreamConsumer<PartitionsContext>>,
        partitions: &[(String, i32)],
        max_wait: Duration,
        offsets_missing: prometheus::IntCounter,
    ) -> anyhow::Result<Self> {
        let mut index = HashMap::new();
        let mut queues = Vec::with_capacity(partitions.len());
        for (topic, partition) in partitions {
            let queue = consumer
                .split_partition_queue(topic, *partition)
                .ok_or_else(|| {
                    anyhow::anyhow!("partition {topic}/{partition} is not assigned to the consumer")
                })?;
            index.insert((topic.clone(), *partition), queues.len());
            queues.push(queue);
        }
        Ok(Self {
            consumer: consumer.clone(),
            buffered: Buffered {
                index,
                names: partitions.to_vec(),
                merge: Merge::new(queues.len(), max_wait, Instant::now()),
                offsets_missing,
            },
            queues,
        })
    }

    /// The next message in event-time order. Cancellation safe: nothing read is lost if the
    /// future is dropped.
    pub async fn recv(&mut self) -> Incoming {
        loop {
            self.fill();
            let until = match self.buffered.merge.next(Instant::now()) {
                Next::Take(message) => return message,
                Next::Wait { until } => Some(until),
                Next::Empty => None,
            };
            // Wait for a partition with nothing buffered: the others need not be read yet.
            // The wait is bounded by REPOLL as well: a queue is woken by librdkafka's
            // non-empty callback, and a wake-up that never comes then costs at most that long
            // instead of a stalled matcher.
            let empty: Vec<usize> = (0..self.queues.len())
                .filter(|p| self.buffered.merge.buffered(*p) == 0)
                .collect();
            let until = until
                .unwrap_or_else(|| Instant::now() + REPOLL)
                .min(Instant::now() + REPOLL);
            if empty.is_empty() {
                tokio::time::sleep_until(until.into()).await;
                continue;
            }
            let any = futures_util::future::select_all(
                empty.iter().map(|p| self.queues[*p].recv().boxed()),
            );
            let arrived = async {
                tokio::select! {
                    (result, i, _) = any => (result, Some(empty[i])),
                    result = self.consumer.recv() => (result, None),
                }
            };
            if let Ok((result, p)) = tokio::time::timeout_at(until.into(), arrived).await {
                self.buffered.offer(p, result);
            }
        }
    }

    /// Buffer what has arrived, without waiting: first anything on the consumer's own queue,
    /// then each partition whose buffer is empty.
    fn fill(&mut self) {
        let mut stream = self.consumer.stream();
        while let Some(Some(result)) = stream.next().now_or_never() {
            self.buffered.offer(None, result);
        }
        for (p, queue) in self.queues.iter().enumerate() {
            if self.buffered.merge.buffered(p) > 0 {
                continue;
            }
            let mut stream = queue.stream();
            while self.buffered.merge.buffered(p) < BUFFERED_PER_PARTITION {
                match stream.next().now_or_never() {
                    Some(Some(result)) => self.buffered.offer(Some(p), result),
                    _ => break,
                }
            }
        }
    }
}

impl Buffered {
    /// Offer what a queue gave: a message, a partition's end, or an error (logged; librdkafka
    /// retries by itself). `p` is the partition whose queue it came from, `None` for the
    /// consumer's own queue.
    fn offer(&mut self, p: Option<usize>, result: Result<BorrowedMessage<'_>, KafkaError>) {
        match result {
            Ok(m) => {
                let key = (m.topic().to_owned(), m.partition());
                let Some(p) = p.or_else(|| self.index.get(&key).copied()) else {
                    // A partition no longer assigned.
                    return;
                };
                let timestamp = m.timestamp().to_millis().unwrap_or(i64::MIN);
                let message = Incoming {
                    topic: key.0,
                    partition: key.1,
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    payload: m.payload().unwrap_or_default().to_vec(),
                };
                self.merge.offer(p, timestamp, message);
            }
            Err(KafkaError::PartitionEOF(_)) => {
                if let Some(p) = p {
                    self.merge.at_end(p);
                }
            }
            Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset)) => {
                // The broker deleted records this partition has not applied yet. Reading on
                // from the earliest it still holds would lose them without a trace; instead
                // the partition reads nothing more and the lag shows it.
                let (topic, partition) = p
                    .and_then(|p| self.names.get(p).cloned())
                    .unwrap_or_default();
                self.offsets_missing.inc();
                tracing::error!(
                    topic = %topic,
                    partition,
                    "the broker no longer holds this partition's next offset (records deleted, e.g. by retention); \
                     nothing more is read from it; see runbooks/source-offsets-missing.md"
                );
            }
            Err(e) => tracing::warn!(error = %e, "consumer error"),
        }
    }
}
