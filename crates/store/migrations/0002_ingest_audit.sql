-- Ingest's audit trail: who sent what, one row per authenticated request. Counts, kinds and
-- event ids only; no personal data (ids are UUIDs chosen by the source or derived by hashing).
create table ingest_audit (
    audit_id     uuid primary key,
    received_at  timestamptz not null,
    source       text not null,          -- the configured source name
    organisation text not null,
    endpoint     text not null,          -- e.g. events/referrals, hmpps, treatment-extracts
    status       smallint not null,      -- the HTTP status answered
    accepted     integer not null,
    ignored      integer not null,
    rejected     integer not null,
    kinds        jsonb not null,         -- accepted events by record type: {"Referral": 3}
    event_ids    uuid[] not null         -- the accepted events' ids
);

create index ingest_audit_by_source on ingest_audit (source, received_at);
