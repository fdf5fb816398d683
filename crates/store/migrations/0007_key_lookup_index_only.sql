-- The key look-up reads only the index: the primary key carries the component, so a probe
-- touches no heap page (the table is insert-only, so autovacuum keeps it all-visible).
alter table match_keys
    drop constraint match_keys_pkey,
    add constraint match_keys_pkey primary key (key) include (component);

-- Which of a set of components were merged away, and into what: a probe into this small index
-- instead of the whole components index for every key found.
create index components_merged on components (id) include (merged_into)
    where merged_into is not null;
