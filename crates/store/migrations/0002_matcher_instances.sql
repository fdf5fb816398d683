-- Live matcher instances, so each can compute its fair share of partitions even before it
-- holds any lease. An instance is live while its heartbeat is younger than the lease TTL.
create table matcher_instances (
    instance     text primary key,
    heartbeat_at timestamptz not null
);
