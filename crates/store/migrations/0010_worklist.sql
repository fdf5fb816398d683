-- The caseworkers' worklist. Written by the worklist only; none of it changes a case, an
-- outcome or the measure.

-- What caseworkers did about a case. The kind is the domain's ActionKind code. reason and note
-- are free text a caseworker typed: personal data, shown only to the case's own
-- organisations and never published (the continuity.actions message carries none of it).
create table case_actions (
    action_id      uuid primary key,
    case_id        uuid not null references cases (case_id) on delete cascade,
    organisation   text not null,
    recorded_by    text not null,
    recorded_at    timestamptz not null,
    kind           text not null,
    appointment_on date,
    snoozed_until  date,
    reason         text,
    note           text
);
create index case_actions_case on case_actions (case_id, recorded_at desc);
create index case_actions_snoozed on case_actions (organisation, case_id, snoozed_until)
    where kind = 'SNOOZED';

-- "Not our case" answers, waiting for a person to re-route the case.
create table case_disputes (
    action_id    uuid primary key references case_actions (action_id) on delete cascade,
    case_id      uuid not null references cases (case_id) on delete cascade,
    organisation text not null,
    reviewed_at  timestamptz
);
create index case_disputes_open on case_disputes (case_id) where reviewed_at is null;

-- Who in each organisation is working a case.
create table case_assignments (
    case_id      uuid not null references cases (case_id) on delete cascade,
    organisation text not null,
    assigned_to  text not null,
    assigned_at  timestamptz not null,
    primary key (case_id, organisation)
);

-- Cases a user may not see even inside their organisation (a "limited access" person), by
-- user name. Every worklist query excludes them.
create table case_restrictions (
    case_id   uuid not null references cases (case_id) on delete cascade,
    user_name text not null,
    primary key (case_id, user_name)
);

-- Every read of a person's data by a user, every change, and every refusal: who, what, when,
-- which subject, the request's correlation id, and details (counts, filters; never a person's
-- identifiers). `what` codes: PAGE_VIEW_<PAGE>, EXPORT_WORKLIST, RECORD_ACTION, ASSIGN_CASE,
-- SIGN_IN, SIGN_OUT, ACCESS_DENIED.
create table worklist_audit (
    id             bigint generated always as identity primary key,
    at             timestamptz not null default now(),
    user_name      text not null,
    organisation   text,
    what           text not null,
    subject_type   text,
    subject_id     text,
    correlation_id uuid not null,
    details        jsonb not null default '{}'
);
create index worklist_audit_at on worklist_audit (at);
create index worklist_audit_user on worklist_audit (user_name, at);
