-- Notifications held while the matcher reads a backlog: a flag raised and settled before its
-- raised delivery was first attempted is delivered to nobody. Both deliveries are kept,
-- withheld (given up, `withheld` true), so reading either flag message again queues nothing.
alter table webhook_deliveries add column flag_id uuid;
alter table webhook_deliveries add column withheld boolean not null default false;
create index webhook_deliveries_flag on webhook_deliveries (flag_id, endpoint_id)
    where delivered_at is null and gave_up_at is null;
