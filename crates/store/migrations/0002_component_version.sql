-- A component's version moves on with every transaction that re-assesses it. A matcher keeps
-- the events and cases of components it assessed recently in memory, tagged with the version
-- it left; it uses them only while the row still holds that version, so a change by another
-- instance (or a merge) always forces a reload from these tables.
alter table components add column version bigint not null default 0;
