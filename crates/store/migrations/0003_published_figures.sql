-- The reporter's record of the last version of each performance cell it published, so a
-- final figure that changes is republished as a revision (status REVISION, revision n + 1)
-- and republishing unchanged figures repeats the same message.
create table published_figures (
    cohort_id    uuid primary key,      -- the cell: period, breakdown, area, audience
    content      uuid not null,         -- hash of the cell and its figures (not the revision)
    status       text not null,         -- PROVISIONAL | FINAL | REVISION
    revision     integer not null,
    published_at timestamptz not null
);
