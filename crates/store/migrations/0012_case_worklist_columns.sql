-- What the worklist filters on, kept on the case row by the matcher so that an organisation's
-- list is an index range, not a search of its flags: the most pressing raised flag
-- (OVERDUE, else AT_RISK, else null) and when a flag of the case was last settled. Both come
-- from the case's own flags, including flags due long before the pipeline knew of them (which
-- page nobody but are still the caseworker's to act on).
alter table cases
    add column raised_flag text,
    add column flag_settled_at timestamptz;

-- Cases stored before this migration: from their notified flags (exact once re-assessed).
update cases c set
    raised_flag = f.raised,
    flag_settled_at = f.settled
from (
    select case_id,
           case when bool_or(kind = 'OVERDUE' and state = 'RAISED') then 'OVERDUE'
                when bool_or(kind = 'AT_RISK' and state = 'RAISED') then 'AT_RISK' end as raised,
           max(settled_at) as settled
    from flags group by case_id
) f
where f.case_id = c.case_id;

create index cases_provider_worklist on cases (provider, raised_flag, release_date)
    where provider is not null;
create index cases_probation_worklist on cases (probation_service, raised_flag, release_date)
    where probation_service is not null;
drop index if exists cases_provider_open;
drop index if exists cases_probation_open;
