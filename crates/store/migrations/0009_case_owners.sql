-- Who is responsible for each case and how each of them knows the person, written by the
-- matcher with the case: the treatment provider is `provider` (the referral's); the probation
-- service is the sender of the person's newest probation referral. The worklist scopes every
-- query by these columns. crn, noms_number and nhs_number are the smallest identifier of each
-- kind in the person's group: personal data, shown only to the case's own organisations.
alter table cases
    add column probation_service text,
    add column crn text,
    add column noms_number text,
    add column nhs_number text;
create index cases_provider_open on cases (provider, release_date) where outcome = 'OPEN';
create index cases_probation_open on cases (probation_service, release_date) where outcome = 'OPEN';
