-- Webhooks: organisations' endpoints, and the deliveries of new and resolved flags to them
-- (Standard Webhooks), written by the worklist from continuity.flags and sent by its
-- dispatcher with retries. A delivery's message_id is the `webhook-id` header: the same on
-- every attempt, so receivers deduplicate by it.

create table webhook_endpoints (
    endpoint_id     uuid primary key,
    organisation    text not null,
    url             text not null,
    -- The signing secret (whsec_ + base64). Needed in clear to sign; readable only by the
    -- worklist's database role.
    secret          text not null,
    created_by      text not null,
    created_at      timestamptz not null default now(),
    -- Since when every attempt has failed (null while the last attempt succeeded).
    failing_since   timestamptz,
    disabled_at     timestamptz,
    -- GONE (the receiver answered 410), FAILING (failed for longer than allowed), BY_USER.
    disabled_reason text
);
create index webhook_endpoints_organisation on webhook_endpoints (organisation) where disabled_at is null;

create table webhook_deliveries (
    message_id      text not null,
    endpoint_id     uuid not null references webhook_endpoints (endpoint_id) on delete cascade,
    event_type      text not null,
    payload         text not null,
    created_at      timestamptz not null default now(),
    next_attempt_at timestamptz not null,
    attempts        integer not null default 0,
    delivered_at    timestamptz,
    gave_up_at      timestamptz,
    primary key (message_id, endpoint_id)
);
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at)
    where delivered_at is null and gave_up_at is null;

-- Every attempt: the delivery log an organisation sees.
create table webhook_attempts (
    id           bigint generated always as identity primary key,
    message_id   text not null,
    endpoint_id  uuid not null references webhook_endpoints (endpoint_id) on delete cascade,
    attempted_at timestamptz not null default now(),
    status       integer,
    error        text,
    duration_ms  integer not null
);
create index webhook_attempts_endpoint on webhook_attempts (endpoint_id, attempted_at desc);
