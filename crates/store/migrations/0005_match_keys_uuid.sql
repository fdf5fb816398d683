-- Match keys as the first 16 bytes of the keyed hash, in `uuid`: fixed length, a smaller index
-- and cheaper comparisons than 32-byte `bytea`. The matcher computes keys the same way.
alter table match_keys
    alter column key type uuid using encode(substring(key from 1 for 16), 'hex')::uuid;
