//! Batch intake: source messages as read, each decoded and validated, checked for
//! duplicates within the batch and keyed as it is read, which happens while the previous
//! batch's transaction runs. No I/O.

use std::collections::HashSet;

use continuity_domain::events::SourceEvent;
use continuity_domain::KeyedHasher;
use continuity_schema::decode_source_event;
use uuid::Uuid;

use crate::keys::{match_keys, Key};

/// One message as read from a source topic.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key, if any.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub payload: Vec<u8>,
}

/// A batch of messages, decoded, checked for duplicates within it and keyed as each is read:
/// while the previous batch's transaction runs, not during this one's.
#[derive(Default)]
pub struct Batch {
    pub(crate) messages: Vec<Incoming>,
    /// Per message, what decoding made of it.
    pub(crate) fates: Vec<Fate>,
    /// The events to apply, in message order.
    pub(crate) fresh: Vec<Fresh>,
    /// The ids in `fresh`.
    ids: HashSet<Uuid>,
}

/// What a message in a batch is.
pub(crate) enum Fate {
    /// An event to apply, at this index of `Batch::fresh`.
    Fresh,
    /// An event already in the batch.
    Duplicate,
    /// Not a usable event: it goes to the dead-letter topic.
    Invalid(continuity_schema::DecodeError),
}

/// An event to apply, with the message it came in and its match keys.
pub(crate) struct Fresh {
    pub(crate) event: SourceEvent,
    /// Its message's position in the batch.
    pub(crate) message: usize,
    pub(crate) keys: Vec<Key>,
}

impl Batch {
    /// Add a message: decode it (validating dates against `today`) and compute its match keys.
    pub fn push(&mut self, message: Incoming, today: chrono::NaiveDate, hasher: &KeyedHasher) {
        let fate = match decode_source_event(&message.payload, today) {
            // Once each within the batch; events applied by earlier batches are dropped when
            // they are stored.
            Ok(event) if !self.ids.insert(event.id().0) => Fate::Duplicate,
            Ok(event) => {
                let keys = match_keys(&event, hasher);
                self.fresh.push(Fresh {
                    event,
                    message: self.messages.len(),
                    keys,
                });
                Fate::Fresh
            }
            Err(error) => Fate::Invalid(error),
        };
        self.messages.push(message);
        self.fates.push(fate);
    }

    /// The messages, in the order read.
    pub fn messages(&self) -> &[Incoming] {
        &self.messages
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether the batch holds no message.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}
