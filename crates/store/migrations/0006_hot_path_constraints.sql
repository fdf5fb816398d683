-- The matcher's per-event writes without work nothing reads.
--
-- Foreign keys to `components`: every id the matcher writes comes from a `components` row it
-- inserted or locked in the same transaction, and components are never deleted, so the
-- checks could not fail. They cost a trigger and a `for key share` query per inserted row
-- (about three per source event: events, keys, cases), the largest single cost of a batch.
alter table match_keys drop constraint match_keys_component_fkey;
alter table source_events drop constraint source_events_component_fkey;
alter table cases drop constraint cases_component_fkey;
alter table match_reviews drop constraint match_reviews_component_fkey;

-- Keys are only ever looked up by key; cases are read whole by the reporter, by component by
-- the matcher and by due time by the deadline clock.
drop index match_keys_component;
drop index cases_release_date;

-- Room on each page for a case's new version, so updates that leave the indexed columns
-- (case id, component, next due time) alone are HOT: no new index entries.
alter table cases set (fillfactor = 80);
