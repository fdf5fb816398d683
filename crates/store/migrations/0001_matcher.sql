-- The matcher's state. PostgreSQL is the system of record; Kafka is the log.
--
-- Source events are kept whole (the Avro message as received) so any component can be
-- re-assessed from its events alone. Events that share a match key (a keyed hash of an
-- identifier, an attributor, or a natural key) belong to one component; the rules run per
-- component, and concurrent writers serialise on its row. When an event joins components,
-- the others point at the surviving root (merged_into, always one step: a root's members
-- are re-pointed when it is merged in turn); no event or key row is rewritten.

create table components (
    id          bigint generated always as identity primary key,
    merged_into bigint references components (id)
);
create index components_merged_into on components (merged_into) where merged_into is not null;

create table source_events (
    event_id   uuid primary key,
    component  bigint not null references components (id),
    kind       text not null,
    payload    bytea not null,
    topic      text not null,
    partition  integer not null,
    "offset"   bigint not null,
    applied_at timestamptz not null default now()
);
create index source_events_component on source_events (component);

create table match_keys (
    key       bytea primary key,
    component bigint not null references components (id)
);
create index match_keys_component on match_keys (component);

-- One row per case: the columns operators and the reporter query, and the whole case as
-- assessed (JSON, without personal identifiers) for diffing. person_identifier is the raw
-- identifier the worklist shows to the caseworker; never log or export it.
create table cases (
    case_id           uuid primary key,
    component         bigint not null references components (id),
    release_id        text not null,
    release_date      date not null,
    local_authority   text not null,
    prison            text,
    provider          text,
    outcome           text not null,
    exclusion_reason  text,
    engagement_date   date,
    timeliness        text,
    next_due_at       timestamptz,
    person_identifier text,
    state             bytea not null,
    updated_at        timestamptz not null default now()
);
create index cases_component on cases (component);
create index cases_next_due on cases (next_due_at) where next_due_at is not null;
create index cases_release_date on cases (release_date);

create table flags (
    flag_id         uuid primary key,
    case_id         uuid not null references cases (case_id) on delete cascade,
    kind            text not null,
    at_risk_day     integer,
    state           text not null,
    due_at          timestamptz not null,
    raised_at       timestamptz not null,
    settled_at      timestamptz,
    notified        boolean not null,
    updated_at      timestamptz not null default now()
);
create index flags_case on flags (case_id);
create index flags_open on flags (state) where state = 'RAISED';

-- Treatment records that fit more than one person: a person decides.
create table match_reviews (
    event_id   uuid primary key,
    component  bigint not null references components (id),
    candidates integer not null,
    created_at timestamptz not null default now()
);

-- Messages to publish, written in the same transaction as the change that caused them and
-- deleted once the broker has acknowledged them.
create table outbox (
    id         bigint generated always as identity primary key,
    topic      text not null,
    key        bytea,
    payload    bytea not null,
    created_at timestamptz not null default now()
);

-- Partition ownership: a matcher may write state for a partition only while it holds the
-- lease with this epoch; a new holder increments the epoch, fencing the old one out.
create table partition_leases (
    topic      text not null,
    partition  integer not null,
    holder     text,
    epoch      bigint not null default 0,
    expires_at timestamptz not null default '-infinity',
    primary key (topic, partition)
);

-- The next offset to read per partition, committed with the state it produced.
create table consumer_offsets (
    topic       text not null,
    partition   integer not null,
    next_offset bigint not null,
    primary key (topic, partition)
);

-- Live matcher instances, so each can compute its fair share of partitions even before it
-- holds any lease. An instance is live while its heartbeat is younger than the lease TTL.
create table matcher_instances (
    instance     text primary key,
    heartbeat_at timestamptz not null
);
