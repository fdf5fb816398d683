-- Stored codes written once per variant instead of taken from the variant's name.
-- cases.timeliness held Rust's names (InWindow); it holds the codes the CaseEvent topic and
-- every reader use (IN_WINDOW).
update cases set timeliness = case timeliness
        when 'InWindow' then 'IN_WINDOW'
        when 'ReportedLate' then 'REPORTED_LATE'
        when 'AlreadyInTreatment' then 'ALREADY_IN_TREATMENT'
        when 'Late' then 'LATE'
        else timeliness
    end
where timeliness is not null;

-- The reporter's content hash is now spelled from codes (scheme 2). A hash made the old way
-- (scheme 1) cannot be compared with a new one: the reporter takes such a cell as unchanged
-- once and stores the new hash, instead of publishing a revision that is not one.
alter table published_figures add column content_scheme smallint not null default 1;
