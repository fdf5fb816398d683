//! Applying source messages to the state, effectively once, in one PostgreSQL transaction per
//! batch:
//!
//! 1. fence: one statement takes a key-share lock on the lease row of every partition in the
//!    batch and checks this instance still holds each with the same epoch. A new holder
//!    takes the row `for update`, which waits for that lock, so a paused or lost instance can
//!    never commit after losing its lease; the holder's own renewal (a plain update of
//!    non-key columns) does not wait for it;
//! 2. what did not decode or validate goes to the outbox for the dead-letter topic;
//! 3. duplicates within the batch are dropped;
//! 4. find the components the events touch by their match keys, lock them in id order, merge
//!    components the batch joins, load what they hold, and store the events: an event
//!    applied before is not stored again (`on conflict do nothing`) and counts as a duplicate.
//!    Then store the keys first seen;
//! 5. re-assess every touched component with the domain rules, write the cases and flags that
//!    changed, and put the case and flag events in the outbox;
//! 6. store the next offset of every partition in the batch.
//!
//! CPU work overlaps PostgreSQL's. A [`Batch`] is decoded, checked for duplicates and keyed
//! as its messages are read, while the previous batch's transaction runs. Within a
//! transaction, the loaded events decode on a blocking thread while the new events are
//! inserted, and the rules run while the new keys are inserted.
//!
//! The service only loads state, calls `continuity_domain::assess` and stores what it returns.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use continuity_domain::events::SourceEvent;
use continuity_domain::{
    assess, carry_over_flags, changes, Case, CaseId, KeyedHasher, Outcome, Rules,
};
use continuity_schema::{
    case_event_message, dead_letter_message, decode_source_event, flag_event_message, MessageOrigin,
};
use continuity_stream::{KafkaSettings, Topic};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::keys::{match_keys, Key};
use crate::leases::Holdings;
use crate::metrics::Metrics;
use crate::outbox::Outbox;

/// The name outputs carry as their source.
pub const SOURCE: &str = "continuity-matcher";

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
    messages: Vec<Incoming>,
    /// Per message, what decoding made of it.
    fates: Vec<Fate>,
    /// The events to apply, in message order.
    fresh: Vec<Fresh>,
    /// The ids in `fresh`.
    ids: HashSet<Uuid>,
}

/// What a message in a batch is.
enum Fate {
    /// An event to apply, at this index of `Batch::fresh`.
    Fresh,
    /// An event already in the batch.
    Duplicate,
    /// Not a usable event: it goes to the dead-letter topic.
    Invalid(continuity_schema::DecodeError),
}

/// An event to apply, with the message it came in and its match keys.
struct Fresh {
    event: SourceEvent,
    message: usize,
    keys: Vec<Key>,
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

/// A partition lease held by this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The lease's epoch when this instance took it.
    pub epoch: i64,
}

/// Why a batch was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// This instance no longer holds a partition in the batch: drop the batch, re-read the
    /// assignment.
    #[error("lease lost for {topic}[{partition}]")]
    LostLease {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// A concurrent writer changed what this batch read; retry it.
    #[error("concurrent change, retry: {0}")]
    Conflict(String),
    /// The database failed; retry with backoff.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// An output could not be encoded (a defect).
    #[error("encoding an output: {0}")]
    Encode(#[from] continuity_schema::CodecError),
    /// Work moved to another thread failed to finish (a defect).
    #[error("worker thread: {0}")]
    Worker(#[from] tokio::task::JoinError),
}

impl ApplyError {
    /// Label for the retry metric.
    pub fn reason(&self) -> &'static str {
        match self {
            ApplyError::LostLease { .. } => "lost_lease",
            ApplyError::Conflict(_) => "conflict",
            ApplyError::Database(e) if is_conflict(e) => "conflict",
            ApplyError::Database(_) => "database",
            ApplyError::Encode(_) => "encode",
            ApplyError::Worker(_) => "worker",
        }
    }
}

/// Unique violations, serialisation failures and deadlocks: a concurrent writer won.
fn is_conflict(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "23505" || c == "40001" || c == "40P01")
}

/// What one batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchReport {
    /// Events applied for the first time.
    pub applied: usize,
    /// Events already applied, skipped.
    pub duplicates: usize,
    /// Messages sent to the dead-letter topic.
    pub dead_letters: usize,
    /// Case events written to the outbox.
    pub case_events: usize,
    /// Flag events written to the outbox.
    pub flag_events: usize,
}

/// Applies batches and re-assesses components.
#[derive(Clone)]
pub struct Applier {
    /// The database.
    pub pool: PgPool,
    /// Keyed hashes for match keys.
    pub hasher: KeyedHasher,
    /// The rules.
    pub rules: Rules,
    /// Topic names.
    pub kafka: KafkaSettings,
    /// This instance's id (lease holder).
    pub instance: String,
    /// Metrics.
    pub metrics: Metrics,
}

/// Union-find over small integer nodes.
struct Groups(Vec<usize>);

impl Groups {
    fn find(&mut self, mut i: usize) -> usize {
        while self.0[i] != i {
            self.0[i] = self.0[self.0[i]];
            i = self.0[i];
        }
        i
    }
    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.0[a.max(b)] = a.min(b);
        }
    }
}

impl Applier {
    /// Apply one batch at `now`. `held` is this instance's leases; every partition in the
    /// batch must be among them.
    pub async fn apply(
        &self,
        batch: &Arc<Batch>,
        held: &Holdings,
        now: DateTime<Utc>,
    ) -> Result<BatchReport, ApplyError> {
        let started = std::time::Instant::now();
        let mut tx = self.pool.begin().await?;
        let mut report = BatchReport::default();
        self.fence(&mut tx, &batch.messages, held).await?;

        // 2-3. What did not decode goes to the dead-letter topic; a second copy of an event
        // within the batch is a duplicate.
        let mut outbox = Outbox::default();
        for (m, fate) in batch.messages.iter().zip(&batch.fates) {
            match fate {
                Fate::Fresh => {}
                Fate::Duplicate => {
                    report.duplicates += 1;
                    self.metrics
                        .consumed
                        .with_label_values(&[&m.topic, "duplicate"])
                        .inc();
                }
                Fate::Invalid(error) => {
                    self.dead_letter(m, error, now, &mut outbox)?;
                    report.dead_letters += 1;
                }
            }
        }

        let decoded_at = started.elapsed();
        if !batch.fresh.is_empty() {
            let placed = self.place(&mut tx, &batch.fresh).await?;
            let touched = placed.touched.clone();
            let stored = load(&mut tx, &touched).await?;
            // The stored events decode on another thread while PostgreSQL stores the new ones.
            let today = continuity_domain::london_date(now);
            let decoding = tokio::task::spawn_blocking(move || stored.decode(today));
            let inserted = placed.insert_events(&mut tx, batch).await?;
            let stored = decoding.await?;
            let mut new_keys: BTreeMap<Key, i64> = BTreeMap::new();
            // New events by component, as indexes into `batch.fresh`.
            let mut by_component: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
            for (i, fresh) in batch.fresh.iter().enumerate() {
                // Not inserted: an earlier batch applied it.
                let result = if inserted.contains(&fresh.event.id().0) {
                    report.applied += 1;
                    for k in &fresh.keys {
                        if !placed.known.contains_key(k) {
                            new_keys.insert(*k, placed.target[i]);
                        }
                    }
                    by_component.entry(placed.target[i]).or_default().push(i);
                    "applied"
                } else {
                    report.duplicates += 1;
                    "duplicate"
                };
                self.metrics
                    .consumed
                    .with_label_values(&[&batch.messages[fresh.message].topic, result])
                    .inc();
            }
            // The rules run on another thread while PostgreSQL stores the new keys.
            let applier = self.clone();
            let batch = Arc::clone(batch);
            let assessing = tokio::task::spawn_blocking(move || {
                let new = by_component
                    .into_iter()
                    .map(|(c, events)| (c, events.iter().map(|&i| &batch.fresh[i].event).collect()))
                    .collect();
                applier.assess_components(&touched, stored, new, now)
            });
            insert_keys(&mut tx, new_keys).await?;
            let assessed = assessing.await??;
            assessed.write(&mut tx).await?;
            report.case_events = assessed.case_events;
            report.flag_events = assessed.flag_events;
            outbox.append(assessed.outbox);
        }
        let placed_at = started.elapsed();
        outbox.write(&mut tx).await?;

        // 6. Offsets, in the same transaction as the state they produced.
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for m in &batch.messages {
            let e = next.entry((m.topic.as_str(), m.partition)).or_insert(0);
            *e = (*e).max(m.offset + 1);
        }
        let (topics, parts, offsets): (Vec<&str>, Vec<i32>, Vec<i64>) =
            unzip3(next.iter().map(|((t, p), o)| (*t, *p, *o)));
        sqlx::query(
            "insert into consumer_offsets (topic, partition, next_offset)
             select * from unnest($1::text[], $2::int[], $3::bigint[])
             on conflict (topic, partition) do update
               set next_offset = greatest(consumer_offsets.next_offset, excluded.next_offset)",
        )
        .bind(&topics)
        .bind(&parts)
        .bind(&offsets)
        .execute(&mut *tx)
        .await?;

        let written_at = started.elapsed();
        tx.commit().await?;
        tracing::debug!(
            messages = batch.messages.len(),
            applied = report.applied,
            duplicates = report.duplicates,
            dead_letters = report.dead_letters,
            case_events = report.case_events,
            flag_events = report.flag_events,
            decode_ms = decoded_at.as_millis() as u64,
            apply_ms = (placed_at - decoded_at).as_millis() as u64,
            write_ms = (written_at - placed_at).as_millis() as u64,
            commit_ms = (started.elapsed() - written_at).as_millis() as u64,
            "batch applied"
        );
        Ok(report)
    }

    /// Step 1: check, in the batch's transaction, that this instance still holds every
    /// partition in the batch with the epoch it took it at.
    async fn fence(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        batch: &[Incoming],
        held: &Holdings,
    ) -> Result<(), ApplyError> {
        let partitions: BTreeSet<(&str, i32)> = batch
            .iter()
            .map(|m| (m.topic.as_str(), m.partition))
            .collect();
        let lost = |topic: &str, partition: i32| ApplyError::LostLease {
            topic: topic.to_string(),
            partition,
        };
        let expected = partitions
            .iter()
            .map(|&(topic, partition)| {
                let held = held
                    .get(&(topic.to_string(), partition))
                    .ok_or_else(|| lost(topic, partition))?;
                Ok((topic, partition, held.epoch))
            })
            .collect::<Result<Vec<_>, ApplyError>>()?;
        let (topics, numbers, epochs): (Vec<&str>, Vec<i32>, Vec<i64>) = unzip3(expected);
        let fenced: BTreeSet<(String, i32)> = sqlx::query_as(
            "select l.topic, l.partition
             from partition_leases l
             join unnest($1::text[], $2::int[], $3::bigint[]) as h(topic, partition, epoch)
               on l.topic = h.topic and l.partition = h.partition
             where l.holder = $4 and l.epoch = h.epoch and l.expires_at > now()
             order by l.topic, l.partition
             for key share of l",
        )
        .bind(&topics)
        .bind(&numbers)
        .bind(&epochs)
        .bind(&self.instance)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
        match partitions
            .iter()
            .find(|(t, p)| !fenced.contains(&(t.to_string(), *p)))
        {
            Some((topic, partition)) => Err(lost(topic, *partition)),
            None => Ok(()),
        }
    }

    /// Put a message that cannot be applied in the outbox for the dead-letter topic.
    fn dead_letter(
        &self,
        m: &Incoming,
        error: &continuity_schema::DecodeError,
        now: DateTime<Utc>,
        outbox: &mut Outbox,
    ) -> Result<(), ApplyError> {
        let origin = MessageOrigin {
            topic: &m.topic,
            partition: m.partition,
            offset: m.offset,
            key: m.key.as_deref(),
            payload: &m.payload,
        };
        tracing::warn!(
            topic = %m.topic, partition = m.partition, offset = m.offset,
            error = %error, "dead-lettering a message"
        );
        let kind = match error {
            continuity_schema::DecodeError::Codec(_) => "undecodable",
            _ => "invalid",
        };
        self.metrics
            .dead_letters
            .with_label_values(&[&m.topic, kind])
            .inc();
        self.metrics
            .consumed
            .with_label_values(&[&m.topic, "dead_letter"])
            .inc();
        outbox.push(
            self.kafka.topic(Topic::DeadLetter),
            m.key.clone(),
            dead_letter_message(&origin, error, now, SOURCE)?,
        );
        Ok(())
    }

    /// Step 4: find the components the events belong to by their match keys, lock them,
    /// merge the ones the batch joins and create the ones it starts.
    async fn place(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        fresh: &[Fresh],
    ) -> Result<Placed, ApplyError> {
        let t = std::time::Instant::now();
        let mut marks: Vec<(&str, u64)> = Vec::new();
        let mut mark = |name: &'static str| marks.push((name, t.elapsed().as_millis() as u64));
        let all_keys: Vec<Key> = fresh
            .iter()
            .flat_map(|f| &f.keys)
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let known = key_components(tx, &all_keys).await?;
        mark("lookup");

        // Group the batch: events sharing a key, or a component, are one group.
        let mut component_node: BTreeMap<i64, usize> = BTreeMap::new();
        for c in known.values() {
            let n = fresh.len() + component_node.len();
            component_node.entry(*c).or_insert(n);
        }
        let mut groups = Groups((0..fresh.len() + component_node.len()).collect());
        let mut first_with_key: HashMap<&Key, usize> = HashMap::new();
        for (i, f) in fresh.iter().enumerate() {
            for k in &f.keys {
                if let Some(&j) = first_with_key.get(k) {
                    groups.union(i, j);
                } else {
                    first_with_key.insert(k, i);
                }
                if let Some(c) = known.get(k) {
                    groups.union(i, component_node[c]);
                }
            }
        }

        // Lock the existing components in id order (no deadlocks). Key rows never move, so
        // the look-up stays true unless a root was merged away meanwhile (it is then not
        // locked: retry the batch); a key another writer added meanwhile fails the insert
        // of keys as a conflict.
        let existing: Vec<i64> = component_node.keys().copied().collect();
        let locked: Vec<i64> = sqlx::query_scalar(
            "select id from components where id = any($1) and merged_into is null
             order by id for update",
        )
        .bind(&existing)
        .fetch_all(&mut **tx)
        .await?;
        if locked.len() != existing.len() {
            return Err(ApplyError::Conflict("a component was merged away".into()));
        }
        mark("lock");

        // One target component per group: the smallest existing one, or a new one.
        let mut members: BTreeMap<usize, (Vec<usize>, BTreeSet<i64>)> = BTreeMap::new();
        for i in 0..fresh.len() {
            let root = groups.find(i);
            members.entry(root).or_default().0.push(i);
        }
        for (&c, &node) in &component_node {
            let root = groups.find(node);
            members.entry(root).or_default().1.insert(c);
        }
        let mut target = vec![0i64; fresh.len()];
        let mut touched = Vec::new();
        let mut merges: Vec<(i64, Vec<i64>)> = Vec::new();
        let new_needed = members.values().filter(|(_, cs)| cs.is_empty()).count();
        let mut new_ids: Vec<i64> = if new_needed > 0 {
            sqlx::query_scalar(
                "insert into components select from generate_series(1, $1) returning id",
            )
            .bind(new_needed as i64)
            .fetch_all(&mut **tx)
            .await?
        } else {
            Vec::new()
        };
        for (events, comps) in members.values() {
            let group_target = match comps.iter().next() {
                Some(&first) => {
                    let others: Vec<i64> = comps.iter().skip(1).copied().collect();
                    if !others.is_empty() {
                        merges.push((first, others));
                    }
                    first
                }
                None => new_ids
                    .pop()
                    .ok_or_else(|| ApplyError::Conflict("component ids".into()))?,
            };
            for &i in events {
                target[i] = group_target;
            }
            touched.push(group_target);
        }
        if !merges.is_empty() {
            // Point each merged root, and everything that pointed at it, at the survivor.
            let (from, into): (Vec<i64>, Vec<i64>) = merges
                .iter()
                .flat_map(|(target, others)| others.iter().map(move |o| (*o, *target)))
                .unzip();
            sqlx::query(
                "update components c set merged_into = m.into_id
                 from unnest($1::bigint[], $2::bigint[]) as m(from_id, into_id)
                 where c.id = m.from_id or c.merged_into = m.from_id",
            )
            .bind(&from)
            .bind(&into)
            .execute(&mut **tx)
            .await?;
        }
        mark("merge");
        tracing::debug!(phases = ?marks, "events placed");
        touched.sort_unstable();
        touched.dedup();
        Ok(Placed {
            known,
            target,
            touched,
        })
    }

    /// Re-assess `components` (locked by the caller) at `now`: write the cases and flags that
    /// changed and put their events in `outbox`. Returns (case events, flag events).
    pub async fn reassess(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        components: &[i64],
        now: DateTime<Utc>,
        outbox: &mut Outbox,
    ) -> Result<(usize, usize), ApplyError> {
        let today = continuity_domain::london_date(now);
        let stored = load(tx, components).await?.decode(today);
        let assessed = self.assess_components(components, stored, BTreeMap::new(), now)?;
        assessed.write(tx).await?;
        outbox.append(assessed.outbox);
        Ok((assessed.case_events, assessed.flag_events))
    }

    /// Run the rules on each component: its stored events and `new` ones, against its stored
    /// cases. Pure computation: what to write and publish.
    fn assess_components(
        &self,
        components: &[i64],
        stored: Decoded,
        new: BTreeMap<i64, Vec<&SourceEvent>>,
        now: DateTime<Utc>,
    ) -> Result<Assessed, ApplyError> {
        let Decoded { events, cases: old } = stored;
        // Cases that changed: component, case, person, case changes, flag changes.
        let mut changed = Vec::new();
        let mut out = Assessed::default();
        let mut seen = BTreeSet::new();
        for &component in components {
            let assessment = assess(
                events
                    .get(&component)
                    .into_iter()
                    .flatten()
                    .chain(new.get(&component).into_iter().flatten().copied()),
                &self.rules,
                now,
            );
            for review in &assessment.reviews {
                out.reviews
                    .push((review.event_id.0, component, review.candidates.len() as i32));
            }
            for mut case in assessment.cases {
                let person = case.person.take();
                seen.insert(case.case_id);
                let before = old.get(&case.case_id);
                carry_over_flags(before.map(|b| &b.2), &mut case, now);
                let (case_changes, flag_changes) = changes(before.map(|b| &b.2), Some(&case), now);
                let unchanged = before.is_some_and(|(c, due, b)| {
                    *c == component && *b == case && *due == case.next_due(&self.rules, now)
                });
                if !unchanged {
                    changed.push((component, case, person, case_changes, flag_changes));
                }
            }
        }
        // Cases that no longer exist (their release joined another case, or lost its need).
        for (case_id, (component, _, before)) in &old {
            if seen.contains(case_id) {
                continue;
            }
            if before.outcome == Outcome::Withdrawn {
                continue;
            }
            let (case_changes, flag_changes) = changes(Some(before), None, now);
            let mut gone = before.clone();
            gone.outcome = Outcome::Withdrawn;
            for f in &mut gone.flags {
                if let Some(fc) = flag_changes.iter().find(|c| c.flag.flag_id == f.flag_id) {
                    *f = fc.flag.clone();
                }
            }
            changed.push((*component, gone, None, case_changes, flag_changes));
        }
        for (component, case, person, case_changes, mut flag_changes) in changed {
            // Flags nobody is told of (first derived already settled, or due long before the
            // pipeline knew of them) live on in the case only: not in `flags`, not published.
            flag_changes.retain(|c| c.flag.notified);
            self.emit(&case, &case_changes, &flag_changes, now, &mut out.outbox)?;
            out.writes
                .push(component, &case, person, &flag_changes, &self.rules, now);
            out.case_events += case_changes.len();
            out.flag_events += flag_changes.len();
        }
        Ok(out)
    }

    /// Put the case's changes and its flags' transitions in the outbox.
    fn emit(
        &self,
        case: &Case,
        case_changes: &[continuity_domain::CaseChange],
        flag_changes: &[continuity_domain::FlagChange],
        now: DateTime<Utc>,
        outbox: &mut Outbox,
    ) -> Result<(), ApplyError> {
        let key = case.case_id.0.as_bytes().to_vec();
        for change in case_changes {
            self.metrics
                .case_events
                .with_label_values(&[&format!("{:?}", change.kind).to_lowercase()])
                .inc();
            outbox.push(
                self.kafka.topic(Topic::CaseEvents),
                Some(key.clone()),
                case_event_message(change, case, now, SOURCE)?,
            );
        }
        for change in flag_changes {
            let (kind, _) = change.flag.kind.code();
            self.metrics
                .flags
                .with_label_values(&[kind, change.flag.state.code()])
                .inc();
            outbox.push(
                self.kafka.topic(Topic::Flags),
                Some(key.clone()),
                flag_event_message(change, case, now, SOURCE)?,
            );
        }
        Ok(())
    }
}

/// Where a batch's new events go (`Applier::place`).
struct Placed {
    /// The keys already stored, with their component's root.
    known: BTreeMap<Key, i64>,
    /// Each event's component.
    target: Vec<i64>,
    /// The components to re-assess, in id order.
    touched: Vec<i64>,
}

impl Placed {
    /// Store the events in their components. Returns the ids stored: an event an earlier
    /// batch applied is not stored again.
    async fn insert_events(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        batch: &Batch,
    ) -> Result<HashSet<Uuid>, sqlx::Error> {
        let n = batch.fresh.len();
        let mut id = Vec::with_capacity(n);
        let mut kind = Vec::with_capacity(n);
        let mut payload = Vec::with_capacity(n);
        let mut topic = Vec::with_capacity(n);
        let mut partition = Vec::with_capacity(n);
        let mut offset = Vec::with_capacity(n);
        for f in &batch.fresh {
            let m = &batch.messages[f.message];
            id.push(f.event.id().0);
            kind.push(f.event.kind());
            payload.push(m.payload.as_slice());
            topic.push(m.topic.as_str());
            partition.push(m.partition);
            offset.push(m.offset);
        }
        let inserted: Vec<Uuid> = sqlx::query_scalar(
            "insert into source_events (event_id, component, kind, payload, topic, partition, \"offset\")
             select * from unnest($1::uuid[], $2::bigint[], $3::text[], $4::bytea[], $5::text[], $6::int[], $7::bigint[])
             on conflict (event_id) do nothing
             returning event_id",
        )
        .bind(&id)
        .bind(&self.target)
        .bind(&kind)
        .bind(&payload)
        .bind(&topic)
        .bind(&partition)
        .bind(&offset)
        .fetch_all(&mut **tx)
        .await?;
        Ok(inserted.into_iter().collect())
    }
}

/// Store match keys first seen in this batch. A key another writer stored meanwhile fails
/// the statement as a conflict: the batch is retried.
async fn insert_keys(
    tx: &mut Transaction<'_, Postgres>,
    keys: BTreeMap<Key, i64>,
) -> Result<(), sqlx::Error> {
    if keys.is_empty() {
        return Ok(());
    }
    let (keys, components): (Vec<Key>, Vec<i64>) = keys.into_iter().unzip();
    sqlx::query(
        "insert into match_keys (key, component) select * from unnest($1::uuid[], $2::bigint[])",
    )
    .bind(&keys)
    .bind(&components)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A set of components as stored, not yet decoded.
struct Stored {
    /// Each component merged into a root, with the root.
    root_of: HashMap<i64, i64>,
    /// Events: component, payload.
    events: Vec<(i64, Vec<u8>)>,
    /// Cases: component, next due time last written, state.
    cases: Vec<(i64, Option<DateTime<Utc>>, Vec<u8>)>,
}

/// The stored events and cases of `components` (locked by the caller), with everything
/// merged into them.
async fn load(
    tx: &mut Transaction<'_, Postgres>,
    components: &[i64],
) -> Result<Stored, sqlx::Error> {
    // The members of each root: itself and the components merged into it; then their rows by
    // the component index.
    let merged: Vec<(i64, i64)> =
        sqlx::query_as("select id, merged_into from components where merged_into = any($1)")
            .bind(components)
            .fetch_all(&mut **tx)
            .await?;
    let member_ids: Vec<i64> = components
        .iter()
        .copied()
        .chain(merged.iter().map(|(m, _)| *m))
        .collect();
    let events =
        sqlx::query_as("select component, payload from source_events where component = any($1)")
            .bind(&member_ids)
            .fetch_all(&mut **tx)
            .await?;
    let cases =
        sqlx::query_as("select component, next_due_at, state from cases where component = any($1)")
            .bind(&member_ids)
            .fetch_all(&mut **tx)
            .await?;
    Ok(Stored {
        root_of: merged.into_iter().collect(),
        events,
        cases,
    })
}

/// Stored components, decoded: events and cases under their root component.
#[derive(Default)]
struct Decoded {
    events: BTreeMap<i64, Vec<SourceEvent>>,
    /// Stored cases, without the person (never serialised), with their component and the
    /// next due time last written.
    cases: BTreeMap<CaseId, (i64, Option<DateTime<Utc>>, Case)>,
}

impl Stored {
    fn decode(self, today: chrono::NaiveDate) -> Decoded {
        let root = |m: i64| self.root_of.get(&m).copied().unwrap_or(m);
        let mut decoded = Decoded::default();
        for (member, payload) in &self.events {
            let component = root(*member);
            match decode_source_event(payload, today) {
                Ok(e) => decoded.events.entry(component).or_default().push(e),
                // Stored events were valid when applied; a date-of-birth check is the only
                // rule that depends on today and cannot make a past event invalid.
                Err(e) => tracing::error!(component, error = %e, "stored event no longer decodes"),
            }
        }
        for (member, next_due, state) in &self.cases {
            let component = root(*member);
            match crate::state::decode(state) {
                Ok(case) => {
                    decoded
                        .cases
                        .insert(case.case_id, (component, *next_due, case));
                }
                // The error says where, never what the state holds.
                Err(e) => tracing::error!(component, error = %e, "stored case does not read"),
            }
        }
        decoded
    }
}

/// What re-assessing components produced: rows to write and messages to publish.
#[derive(Default)]
struct Assessed {
    writes: CaseWrites,
    /// Treatment records that fit more than one person: event, component, candidates.
    reviews: Vec<(Uuid, i64, i32)>,
    outbox: Outbox,
    case_events: usize,
    flag_events: usize,
}

impl Assessed {
    async fn write(&self, tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
        self.writes.write(tx).await?;
        if self.reviews.is_empty() {
            return Ok(());
        }
        let (ids, comps, cands): (Vec<Uuid>, Vec<i64>, Vec<i32>) =
            unzip3(self.reviews.iter().copied());
        sqlx::query(
            "insert into match_reviews (event_id, component, candidates)
             select * from unnest($1::uuid[], $2::bigint[], $3::int[])
             on conflict (event_id) do update set candidates = excluded.candidates",
        )
        .bind(&ids)
        .bind(&comps)
        .bind(&cands)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Three columns from rows, for `unnest`.
fn unzip3<A, B, C>(rows: impl IntoIterator<Item = (A, B, C)>) -> (Vec<A>, Vec<B>, Vec<C>) {
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for (x, y, z) in rows {
        a.push(x);
        b.push(y);
        c.push(z);
    }
    (a, b, c)
}

/// The stored keys among `keys`, with the root of their component.
async fn key_components(
    tx: &mut Transaction<'_, Postgres>,
    keys: &[Key],
) -> Result<BTreeMap<Key, i64>, sqlx::Error> {
    let rows: Vec<(Key, i64)> =
        sqlx::query_as("select key, component from match_keys where key = any($1)")
            .bind(keys)
            .fetch_all(&mut **tx)
            .await?;
    let components: Vec<i64> = rows
        .iter()
        .map(|(_, c)| *c)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let merged: HashMap<i64, i64> = sqlx::query_as(
        "select id, merged_into from components where id = any($1) and merged_into is not null",
    )
    .bind(&components)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .collect();
    Ok(rows
        .into_iter()
        .map(|(key, c)| (key, merged.get(&c).copied().unwrap_or(c)))
        .collect())
}

/// Case and flag rows to upsert, column by column for `unnest`.
#[derive(Default)]
struct CaseWrites {
    case_id: Vec<Uuid>,
    component: Vec<i64>,
    release_id: Vec<String>,
    release_date: Vec<chrono::NaiveDate>,
    local_authority: Vec<String>,
    prison: Vec<Option<String>>,
    provider: Vec<Option<String>>,
    outcome: Vec<&'static str>,
    exclusion: Vec<Option<&'static str>>,
    engagement_date: Vec<Option<chrono::NaiveDate>>,
    timeliness: Vec<Option<String>>,
    next_due: Vec<Option<DateTime<Utc>>>,
    person: Vec<Option<String>>,
    state: Vec<Vec<u8>>,
    flag_id: Vec<Uuid>,
    flag_case: Vec<Uuid>,
    flag_kind: Vec<&'static str>,
    flag_day: Vec<Option<i32>>,
    flag_state: Vec<&'static str>,
    flag_due: Vec<DateTime<Utc>>,
    flag_raised: Vec<DateTime<Utc>>,
    flag_settled: Vec<Option<DateTime<Utc>>>,
    flag_notified: Vec<bool>,
}

impl CaseWrites {
    fn push(
        &mut self,
        component: i64,
        case: &Case,
        person: Option<continuity_domain::Identifier>,
        flag_changes: &[continuity_domain::FlagChange],
        rules: &Rules,
        now: DateTime<Utc>,
    ) {
        let (outcome, exclusion) = (case.outcome.code(), case.outcome.exclusion_code());
        self.case_id.push(case.case_id.0);
        self.component.push(component);
        self.release_id.push(case.release_id.clone());
        self.release_date.push(case.release_date);
        self.local_authority.push(case.local_authority.to_string());
        self.prison
            .push(case.prison.as_ref().map(|p| p.to_string()));
        self.provider
            .push(case.provider.as_ref().map(|p| p.to_string()));
        self.outcome.push(outcome);
        self.exclusion.push(exclusion);
        self.engagement_date
            .push(case.engagement.as_ref().map(|e| e.date));
        self.timeliness.push(
            case.engagement
                .as_ref()
                .map(|e| format!("{:?}", e.timeliness)),
        );
        self.next_due.push(case.next_due(rules, now));
        self.person.push(person.map(|p| p.value().to_owned()));
        self.state.push(crate::state::encode(case));
        for change in flag_changes {
            let f = &change.flag;
            self.flag_id.push(f.flag_id);
            self.flag_case.push(case.case_id.0);
            let (kind, day) = f.kind.code();
            self.flag_kind.push(kind);
            self.flag_day.push(day.map(|d| d as i32));
            self.flag_state.push(f.state.code());
            self.flag_due.push(f.due_at);
            self.flag_raised.push(f.raised_at);
            self.flag_settled.push(f.settled_at);
            self.flag_notified.push(f.notified);
        }
    }

    async fn write(&self, tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
        if self.case_id.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "insert into cases (case_id, component, release_id, release_date, local_authority,
                prison, provider, outcome, exclusion_reason, engagement_date, timeliness,
                next_due_at, person_identifier, state, updated_at)
             select *, now() from unnest($1::uuid[], $2::bigint[], $3::text[], $4::date[],
                $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::date[],
                $11::text[], $12::timestamptz[], $13::text[], $14::bytea[])
             on conflict (case_id) do update set
                component = excluded.component, release_id = excluded.release_id,
                release_date = excluded.release_date, local_authority = excluded.local_authority,
                prison = excluded.prison, provider = excluded.provider,
                outcome = excluded.outcome, exclusion_reason = excluded.exclusion_reason,
                engagement_date = excluded.engagement_date, timeliness = excluded.timeliness,
                next_due_at = excluded.next_due_at,
                person_identifier = coalesce(excluded.person_identifier, cases.person_identifier),
                state = excluded.state, updated_at = now()",
        )
        .bind(&self.case_id)
        .bind(&self.component)
        .bind(&self.release_id)
        .bind(&self.release_date)
        .bind(&self.local_authority)
        .bind(&self.prison)
        .bind(&self.provider)
        .bind(&self.outcome)
        .bind(&self.exclusion)
        .bind(&self.engagement_date)
        .bind(&self.timeliness)
        .bind(&self.next_due)
        .bind(&self.person)
        .bind(&self.state)
        .execute(&mut **tx)
        .await?;
        if self.flag_id.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "insert into flags (flag_id, case_id, kind, at_risk_day, state, due_at, raised_at,
                settled_at, notified, updated_at)
             select *, now() from unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[],
                $5::text[], $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::bool[])
             on conflict (flag_id) do update set
                state = excluded.state, settled_at = excluded.settled_at,
                raised_at = excluded.raised_at,
                notified = excluded.notified, updated_at = now()",
        )
        .bind(&self.flag_id)
        .bind(&self.flag_case)
        .bind(&self.flag_kind)
        .bind(&self.flag_day)
        .bind(&self.flag_state)
        .bind(&self.flag_due)
        .bind(&self.flag_raised)
        .bind(&self.flag_settled)
        .bind(&self.flag_notified)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}
