//! The matcher's tables in PostgreSQL (`source_events`, `match_keys`, `components`, `cases`,
//! `flags`, `match_reviews`, `consumer_offsets`): every statement the matcher runs on them,
//! each taking the connection or transaction to run in. Leases are in `leases`, the outbox in
//! `outbox`. No rules here: what to write comes from `apply`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use continuity_domain::events::SourceEvent;
use continuity_domain::{Case, CaseId, IdentifierKind, PersonReferences, Rules};
use continuity_schema::decode_source_event;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::intake::Batch;
use crate::keys::Key;

/// The partitions, among `expected` (topic, partition, epoch), whose lease `instance` still
/// holds with that epoch, locked `for key share` until the transaction ends: a takeover waits
/// for this transaction, and this transaction sees a takeover that committed first.
pub async fn fenced(
    tx: &mut PgConnection,
    instance: &str,
    expected: Vec<(&str, i32, i64)>,
) -> Result<BTreeSet<(String, i32)>, sqlx::Error> {
    let (topics, numbers, epochs): (Vec<&str>, Vec<i32>, Vec<i64>) = unzip3(expected);
    Ok(sqlx::query_as(
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
    .bind(instance)
    .fetch_all(tx)
    .await?
    .into_iter()
    .collect())
}

/// Lock the components `ids` that are still roots (not merged away), in id order (no
/// deadlocks between batches); returns those locked.
pub async fn lock_roots(tx: &mut PgConnection, ids: &[i64]) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "select id from components where id = any($1) and merged_into is null
         order by id for update",
    )
    .bind(ids)
    .fetch_all(tx)
    .await
}

/// Create `n` components; returns their ids.
pub async fn new_components(tx: &mut PgConnection, n: usize) -> Result<Vec<i64>, sqlx::Error> {
    if n == 0 {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("insert into components select from generate_series(1, $1) returning id")
        .bind(n as i64)
        .fetch_all(tx)
        .await
}

/// Merge each `(survivor, others)`: point each merged root, and everything that pointed at
/// it, at the survivor (kept one step deep; no event or key row moves).
pub async fn merge_components(
    tx: &mut PgConnection,
    merges: &[(i64, Vec<i64>)],
) -> Result<(), sqlx::Error> {
    if merges.is_empty() {
        return Ok(());
    }
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
    .execute(tx)
    .await?;
    Ok(())
}

/// Store the batch's new events, event `i` of `batch.fresh` in component `target[i]`.
/// Returns the ids stored: an event an earlier batch applied is not stored again.
pub async fn insert_events(
    tx: &mut PgConnection,
    batch: &Batch,
    target: &[i64],
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
    .bind(target)
    .bind(&kind)
    .bind(&payload)
    .bind(&topic)
    .bind(&partition)
    .bind(&offset)
    .fetch_all(tx)
    .await?;
    Ok(inserted.into_iter().collect())
}

/// Store match keys first seen in this batch. A key another writer stored meanwhile fails
/// the statement as a conflict: the batch is retried.
pub async fn insert_keys(
    tx: &mut PgConnection,
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
    .execute(tx)
    .await?;
    Ok(())
}

/// A case row as stored: its component, the next due time last written, its state, and the
/// person's references (kept in columns, not in the state).
#[derive(sqlx::FromRow)]
struct StoredCase {
    component: i64,
    next_due_at: Option<DateTime<Utc>>,
    state: Vec<u8>,
    crn: Option<String>,
    noms_number: Option<String>,
    nhs_number: Option<String>,
}

impl StoredCase {
    /// The references, as the rules would give them. A stored value that no longer parses is
    /// left out (it was valid when written).
    fn references(&self) -> PersonReferences {
        let parse = |kind, v: &Option<String>| {
            v.as_deref()
                .and_then(|v| continuity_domain::Identifier::parse(kind, v).ok())
        };
        PersonReferences {
            crn: parse(IdentifierKind::Crn, &self.crn),
            noms: parse(IdentifierKind::Noms, &self.noms_number),
            nhs: parse(IdentifierKind::Nhs, &self.nhs_number),
        }
    }
}

/// A set of components as stored, not yet decoded.
pub struct Stored {
    /// Each component merged into a root, with the root.
    root_of: HashMap<i64, i64>,
    /// Events: component, payload.
    events: Vec<(i64, Vec<u8>)>,
    /// Cases: component, next due time last written, state, and the person's references.
    cases: Vec<StoredCase>,
}

/// The stored events and cases of `components` (locked by the caller), with everything
/// merged into them.
pub async fn load(tx: &mut PgConnection, components: &[i64]) -> Result<Stored, sqlx::Error> {
    // The members of each root: itself and the components merged into it; then their rows by
    // the component index.
    let merged: Vec<(i64, i64)> =
        sqlx::query_as("select id, merged_into from components where merged_into = any($1)")
            .bind(components)
            .fetch_all(&mut *tx)
            .await?;
    let member_ids: Vec<i64> = components
        .iter()
        .copied()
        .chain(merged.iter().map(|(m, _)| *m))
        .collect();
    let events =
        sqlx::query_as("select component, payload from source_events where component = any($1)")
            .bind(&member_ids)
            .fetch_all(&mut *tx)
            .await?;
    let cases =
        sqlx::query_as("select component, next_due_at, state, crn, noms_number, nhs_number from cases where component = any($1)")
            .bind(&member_ids)
            .fetch_all(&mut *tx)
            .await?;
    Ok(Stored {
        root_of: merged.into_iter().collect(),
        events,
        cases,
    })
}

/// Stored components, decoded: events and cases under their root component.
#[derive(Default)]
pub struct Decoded {
    /// Events under their root component.
    pub events: BTreeMap<i64, Vec<SourceEvent>>,
    /// Stored cases, without the person (never serialised), with their component and the
    /// next due time last written.
    pub cases: BTreeMap<CaseId, (i64, Option<DateTime<Utc>>, Case)>,
}

impl Stored {
    /// Decode the events and case states, each under its root component. A row that does
    /// not read is logged (where, never what) and left out.
    pub fn decode(self, today: chrono::NaiveDate) -> Decoded {
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
        for stored in &self.cases {
            let component = root(stored.component);
            match crate::state::decode(&stored.state) {
                Ok(mut case) => {
                    case.references = stored.references();
                    decoded
                        .cases
                        .insert(case.case_id, (component, stored.next_due_at, case));
                }
                // The error says where, never what the state holds.
                Err(e) => tracing::error!(component, error = %e, "stored case does not read"),
            }
        }
        decoded
    }
}

/// Three columns from rows, for `unnest`.
pub fn unzip3<A, B, C>(rows: impl IntoIterator<Item = (A, B, C)>) -> (Vec<A>, Vec<B>, Vec<C>) {
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for (x, y, z) in rows {
        a.push(x);
        b.push(y);
        c.push(z);
    }
    (a, b, c)
}

/// The stored keys among `keys`, with the root of their component.
pub async fn key_components(
    tx: &mut PgConnection,
    keys: &[Key],
) -> Result<BTreeMap<Key, i64>, sqlx::Error> {
    let rows: Vec<(Key, i64)> =
        sqlx::query_as("select key, component from match_keys where key = any($1)")
            .bind(keys)
            .fetch_all(&mut *tx)
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
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    Ok(rows
        .into_iter()
        .map(|(key, c)| (key, merged.get(&c).copied().unwrap_or(c)))
        .collect())
}

/// The worklist's columns of a case: its most pressing raised flag's kind code (overdue
/// before at risk) and when one of its flags was last settled.
fn worklist_columns(case: &Case) -> (Option<&'static str>, Option<DateTime<Utc>>) {
    use continuity_domain::{FlagKind, FlagState};
    // Only flags caseworkers are told of: one that fell due long before the pipeline knew of
    // it (a replay of history, very late data) stays on the case and off the worklist.
    let told = || case.flags.iter().filter(|f| f.notified);
    let raised =
        |kind: fn(&FlagKind) -> bool| told().any(|f| f.state == FlagState::Raised && kind(&f.kind));
    let flag = if raised(|k| *k == FlagKind::Overdue) {
        Some(FlagKind::Overdue.code().0)
    } else if raised(|k| matches!(k, FlagKind::AtRisk(_))) {
        Some(FlagKind::AtRisk(0).code().0)
    } else {
        None
    };
    let settled = told().filter_map(|f| f.settled_at).max();
    (flag, settled)
}

/// Case and flag rows to upsert, column by column for `unnest`.
#[derive(Default)]
pub struct CaseWrites {
    case_id: Vec<Uuid>,
    component: Vec<i64>,
    release_id: Vec<String>,
    release_date: Vec<chrono::NaiveDate>,
    local_authority: Vec<String>,
    prison: Vec<Option<String>>,
    provider: Vec<Option<String>>,
    probation: Vec<Option<String>>,
    crn: Vec<Option<String>>,
    noms: Vec<Option<String>>,
    nhs: Vec<Option<String>>,
    raised_flag: Vec<Option<&'static str>>,
    flag_settled_at: Vec<Option<DateTime<Utc>>>,
    outcome: Vec<&'static str>,
    exclusion: Vec<Option<&'static str>>,
    engagement_date: Vec<Option<chrono::NaiveDate>>,
    timeliness: Vec<Option<&'static str>>,
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
    /// Add a case (and its flags that changed) to write.
    pub fn push(
        &mut self,
        component: i64,
        case: &Case,
        person: Option<continuity_domain::Identifier>,
        flag_changes: &[continuity_domain::FlagChange],
        rules: &Rules,
        now: DateTime<Utc>,
    ) -> Result<(), serde_json::Error> {
        let state = crate::state::encode(case)?;
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
        self.probation
            .push(case.probation.as_ref().map(|p| p.to_string()));
        let value =
            |id: &Option<continuity_domain::Identifier>| id.as_ref().map(|i| i.value().to_owned());
        self.crn.push(value(&case.references.crn));
        self.noms.push(value(&case.references.noms));
        self.nhs.push(value(&case.references.nhs));
        let (raised, settled) = worklist_columns(case);
        self.raised_flag.push(raised);
        self.flag_settled_at.push(settled);
        self.outcome.push(outcome);
        self.exclusion.push(exclusion);
        self.engagement_date
            .push(case.engagement.as_ref().map(|e| e.date));
        self.timeliness
            .push(case.engagement.as_ref().map(|e| e.timeliness.code()));
        self.next_due.push(case.next_due(rules, now));
        self.person.push(person.map(|p| p.value().to_owned()));
        self.state.push(state);
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
        Ok(())
    }

    /// Upsert the cases and flags.
    pub async fn write(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.case_id.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "insert into cases (case_id, component, release_id, release_date, local_authority,
                prison, provider, outcome, exclusion_reason, engagement_date, timeliness,
                next_due_at, person_identifier, state, probation_service, crn, noms_number,
                nhs_number, raised_flag, flag_settled_at, updated_at)
             select *, now() from unnest($1::uuid[], $2::bigint[], $3::text[], $4::date[],
                $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::date[],
                $11::text[], $12::timestamptz[], $13::text[], $14::bytea[], $15::text[],
                $16::text[], $17::text[], $18::text[], $19::text[], $20::timestamptz[])
             on conflict (case_id) do update set
                component = excluded.component, release_id = excluded.release_id,
                release_date = excluded.release_date, local_authority = excluded.local_authority,
                prison = excluded.prison, provider = excluded.provider,
                outcome = excluded.outcome, exclusion_reason = excluded.exclusion_reason,
                engagement_date = excluded.engagement_date, timeliness = excluded.timeliness,
                next_due_at = excluded.next_due_at,
                person_identifier = coalesce(excluded.person_identifier, cases.person_identifier),
                state = excluded.state, probation_service = excluded.probation_service,
                crn = excluded.crn, noms_number = excluded.noms_number,
                nhs_number = excluded.nhs_number, raised_flag = excluded.raised_flag,
                flag_settled_at = excluded.flag_settled_at, updated_at = now()",
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
        .bind(&self.probation)
        .bind(&self.crn)
        .bind(&self.noms)
        .bind(&self.nhs)
        .bind(&self.raised_flag)
        .bind(&self.flag_settled_at)
        .execute(&mut *tx)
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
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// Treatment records that fit more than one person: (event, component, candidates), kept for
/// a person to review.
pub async fn upsert_reviews(
    tx: &mut PgConnection,
    reviews: &[(Uuid, i64, i32)],
) -> Result<(), sqlx::Error> {
    if reviews.is_empty() {
        return Ok(());
    }
    let (ids, comps, cands): (Vec<Uuid>, Vec<i64>, Vec<i32>) = unzip3(reviews.iter().copied());
    sqlx::query(
        "insert into match_reviews (event_id, component, candidates)
         select * from unnest($1::uuid[], $2::bigint[], $3::int[])
         on conflict (event_id) do update set candidates = excluded.candidates",
    )
    .bind(&ids)
    .bind(&comps)
    .bind(&cands)
    .execute(tx)
    .await?;
    Ok(())
}

/// Store the next offset of every partition in the batch, in the same transaction as the
/// state it produced; never moving an offset back.
pub async fn store_offsets(tx: &mut PgConnection, batch: &Batch) -> Result<(), sqlx::Error> {
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
    .execute(tx)
    .await?;
    Ok(())
}

pub use continuity_store::lag::stored_offsets;

/// The earliest instant at which a case falls due (the partial index `cases_next_due`).
pub async fn next_due(pool: &sqlx::PgPool) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("select min(next_due_at) from cases where next_due_at is not null")
        .fetch_one(pool)
        .await
}

/// Up to `limit` root components with a case due at `now` (earliest due first), locked;
/// components another transaction holds are skipped, so several instances share the work.
pub async fn lock_due(
    tx: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "select id from components
         where merged_into is null and id in
           (select coalesce(c.merged_into, c.id)
            from cases k join components c on c.id = k.component
            where k.next_due_at <= $1
            order by k.next_due_at limit $2)
         order by id
         for update skip locked",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(tx)
    .await
}
