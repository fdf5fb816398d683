-- The outbox holds one row per state transaction instead of one per message: its messages in
-- order, as parallel arrays. A batch of thousands of events then costs one insert and one
-- delete instead of thousands of each, and the relay reads whole transactions.
-- Payloads are Avro and do not compress: stored out of line without compression.

alter table outbox rename to outbox_messages;

create table outbox (
    id         bigint generated always as identity primary key,
    messages   integer not null check (messages > 0),
    topics     text[] not null,
    keys       bytea[] not null,
    payloads   bytea[] not null,
    created_at timestamptz not null default now()
);
alter table outbox alter column payloads set storage external;

-- What was waiting moves over as one row, in its order.
insert into outbox (messages, topics, keys, payloads, created_at)
select count(*), array_agg(topic order by id), array_agg(key order by id),
       array_agg(payload order by id), min(created_at)
from outbox_messages
having count(*) > 0;

drop table outbox_messages;
