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
//!
//! Its length is the six steps above, which share one transaction and one batch's state; the
//! SQL is in `store`, the grouping in `grouping`, the outbox in `outbox`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use continuity_domain::events::SourceEvent;
use continuity_domain::{assess, carry_over_flags, changes, Case, KeyedHasher, Outcome, Rules};
use continuity_schema::{
    case_event_message, dead_letter_message, flag_event_message, MessageOrigin,
};
use continuity_stream::{KafkaSettings, Topic};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::grouping::group;
use crate::intake::{Batch, Fate, Fresh, Incoming};
use crate::keys::Key;
use crate::leases::Holdings;
use crate::metrics::Metrics;
use crate::store::{self, CaseWrites, Decoded};
use continuity_store::outbox::Outbox;

/// The name outputs carry as their source.
pub const SOURCE: &str = "continuity-matcher";

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
    /// A case's state could not be serialised (a defect).
    #[error("serialising a case's state: {0}")]
    State(#[source] serde_json::Error),
    /// Work moved to another thread failed to finish (a defect).
    #[error("worker thread: {0}")]
    Worker(#[from] tokio::task::JoinError),
}

impl ApplyError {
    /// Every `reason` label of the retry metric.
    pub const REASONS: [&'static str; 5] =
        ["lost_lease", "conflict", "database", "encode", "worker"];

    /// Label for the retry metric.
    pub fn reason(&self) -> &'static str {
        match self {
            ApplyError::LostLease { .. } => "lost_lease",
            ApplyError::Conflict(_) => "conflict",
            ApplyError::Database(e) if is_conflict(e) => "conflict",
            ApplyError::Database(_) => "database",
            ApplyError::Encode(_) | ApplyError::State(_) => "encode",
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
    /// What the last write came to, for `/readyz`.
    pub writes: continuity_runtime::Writes,
}

impl Applier {
    /// Tell `/readyz` what a write came to: committed, or refused or unreachable database. A
    /// lost lease or a concurrent writer says nothing about the database.
    pub fn note_write<T>(&self, result: &Result<T, ApplyError>) {
        match result {
            Ok(_) => self.writes.succeeded(),
            Err(ApplyError::Database(e)) if !is_conflict(e) => self.writes.failed(e),
            Err(_) => {}
        }
    }

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
            let stored = store::load(&mut tx, &touched).await?;
            // The stored events decode on another thread while PostgreSQL stores the new ones.
            let today = continuity_domain::london_date(now);
            let decoding = tokio::task::spawn_blocking(move || stored.decode(today));
            let inserted = store::insert_events(&mut tx, batch, &placed.target).await?;
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
            store::insert_keys(&mut tx, new_keys).await?;
            let assessed = assessing.await??;
            assessed.write(&mut tx).await?;
            report.case_events = assessed.case_events;
            report.flag_events = assessed.flag_events;
            outbox.append(assessed.outbox);
        }
        let placed_at = started.elapsed();
        outbox.write(&mut tx).await?;

        // 6. Offsets, in the same transaction as the state they produced.
        store::store_offsets(&mut tx, batch).await?;

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
        tx: &mut PgConnection,
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
        let fenced = store::fenced(tx, &self.instance, expected).await?;
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
        let [undecodable, invalid] = crate::metrics::DEAD_LETTER_KINDS;
        let kind = match error {
            continuity_schema::DecodeError::Codec(_) => undecodable,
            _ => invalid,
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
    async fn place(&self, tx: &mut PgConnection, fresh: &[Fresh]) -> Result<Placed, ApplyError> {
        let all_keys: Vec<Key> = fresh
            .iter()
            .flat_map(|f| &f.keys)
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let known = store::key_components(tx, &all_keys).await?;
        let keys: Vec<&[Key]> = fresh.iter().map(|f| f.keys.as_slice()).collect();
        let groups = group(&keys, &known);

        // Lock the existing components in id order (no deadlocks). Key rows never move, so
        // the look-up stays true unless a root was merged away meanwhile (it is then not
        // locked: retry the batch); a key another writer added meanwhile fails the insert
        // of keys as a conflict.
        let existing: Vec<i64> = known
            .values()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let locked = store::lock_roots(tx, &existing).await?;
        if locked.len() != existing.len() {
            return Err(ApplyError::Conflict("a component was merged away".into()));
        }

        // One target component per group: the smallest existing one, or a new one.
        let new_needed = groups.iter().filter(|g| g.components.is_empty()).count();
        let mut new_ids = store::new_components(tx, new_needed).await?;
        let mut target = vec![0i64; fresh.len()];
        let mut touched = Vec::with_capacity(groups.len());
        let mut merges: Vec<(i64, Vec<i64>)> = Vec::new();
        for g in &groups {
            let group_target = match g.target() {
                Some((first, others)) => {
                    if !others.is_empty() {
                        merges.push((first, others));
                    }
                    first
                }
                None => new_ids
                    .pop()
                    .ok_or_else(|| ApplyError::Conflict("component ids".into()))?,
            };
            for &i in &g.events {
                target[i] = group_target;
            }
            touched.push(group_target);
        }
        store::merge_components(tx, &merges).await?;
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
        tx: &mut PgConnection,
        components: &[i64],
        now: DateTime<Utc>,
        outbox: &mut Outbox,
    ) -> Result<(usize, usize), ApplyError> {
        let today = continuity_domain::london_date(now);
        let stored = store::load(tx, components).await?.decode(today);
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
                .push(component, &case, person, &flag_changes, &self.rules, now)
                .map_err(ApplyError::State)?;
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
                .with_label_values(&[change.kind.code()])
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
    async fn write(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        self.writes.write(tx).await?;
        store::upsert_reviews(tx, &self.reviews).await
    }
}
