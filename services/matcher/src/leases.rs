//! Partition ownership through leases in PostgreSQL, instead of Kafka's group protocol: the
//! matcher's state and offsets are written to PostgreSQL, and only a check PostgreSQL makes
//! can stop a paused "zombie" from writing after its partitions moved.
//!
//! One row per source partition: holder, epoch, expiry. Each instance heartbeats in
//! `matcher_instances`, renews what it holds, takes free or expired leases up to its fair
//! share (partitions / live instances, rounded up), and gives back what is above its share
//! so a new instance gets work. Leases are taken and given back by partition number first,
//! then topic: every source topic is keyed by the person's attributor, so one person's events
//! share a partition number and one instance applies them all without contending with others
//! for the person's component. Taking a lease
//! increments its epoch and locks the row `for update`, which waits for the key-share lock
//! every state transaction holds while it re-checks holder and epoch (see `apply`): a holder
//! that lost its lease cannot commit. Renewal only updates the expiry and never waits on the
//! holder's own transactions.

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::PgPool;

/// A partition lease held by this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The lease's epoch when this instance took it.
    pub epoch: i64,
}

/// What this instance holds: (topic, partition) to lease, in topic and partition order (the
/// order the consumer is assigned them in).
pub type Holdings = BTreeMap<(String, i32), Held>;

/// Takes, renews and gives back leases.
#[derive(Clone)]
pub struct Leases {
    pool: PgPool,
    instance: String,
    ttl: Duration,
    partitions: Vec<(String, i32)>,
}

impl Leases {
    /// Leases on `partitions` for `instance`, valid for `ttl` after each renewal.
    pub fn new(
        pool: PgPool,
        instance: String,
        ttl: Duration,
        partitions: Vec<(String, i32)>,
    ) -> Self {
        Self {
            pool,
            instance,
            ttl,
            partitions,
        }
    }

    /// Create the lease rows that do not exist.
    pub async fn ensure_rows(&self) -> Result<(), sqlx::Error> {
        let (topics, parts): (Vec<String>, Vec<i32>) = self.partitions.iter().cloned().unzip();
        sqlx::query(
            "insert into partition_leases (topic, partition)
             select * from unnest($1::text[], $2::int[])
             on conflict do nothing",
        )
        .bind(&topics)
        .bind(&parts)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    fn ttl_ms(&self) -> i64 {
        self.ttl.as_millis() as i64
    }

    /// Renew, take and give back leases. Returns what this instance holds afterwards.
    pub async fn rebalance(&self, current: &Holdings) -> Result<Holdings, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // Renew what is still ours (same epoch); anything else was lost.
        let renewed: Vec<(String, i32, i64)> = sqlx::query_as(
            "update partition_leases
             set expires_at = now() + $2 * interval '1 millisecond'
             where holder = $1 and expires_at > now()
             returning topic, partition, epoch",
        )
        .bind(&self.instance)
        .bind(self.ttl_ms())
        .fetch_all(&mut *tx)
        .await?;
        let mut held: Holdings = renewed
            .into_iter()
            .filter(|(t, p, e)| current.get(&(t.clone(), *p)).is_none_or(|h| h.epoch == *e))
            .map(|(t, p, epoch)| ((t, p), Held { epoch }))
            .collect();

        // Announce this instance, then count the live ones (heartbeat younger than the TTL).
        sqlx::query(
            "insert into matcher_instances (instance, heartbeat_at) values ($1, now())
             on conflict (instance) do update set heartbeat_at = now()",
        )
        .bind(&self.instance)
        .execute(&mut *tx)
        .await?;
        let live: i64 = sqlx::query_scalar(
            "select count(*) from matcher_instances
             where heartbeat_at > now() - $1 * interval '1 millisecond'",
        )
        .bind(self.ttl_ms())
        .fetch_one(&mut *tx)
        .await?;
        let total = self.partitions.len();
        let share = total.div_ceil(live.max(1) as usize);

        if held.len() < share {
            let taken: Vec<(String, i32, i64)> = sqlx::query_as(
                "update partition_leases l
                 set holder = $1, epoch = l.epoch + 1,
                     expires_at = now() + $2 * interval '1 millisecond'
                 from (select topic, partition from partition_leases
                       where holder is null or expires_at <= now()
                       order by partition, topic
                       limit $3
                       for update skip locked) free
                 where l.topic = free.topic and l.partition = free.partition
                 returning l.topic, l.partition, l.epoch",
            )
            .bind(&self.instance)
            .bind(self.ttl_ms())
            .bind((share - held.len()) as i64)
            .fetch_all(&mut *tx)
            .await?;
            for (t, p, epoch) in taken {
                tracing::info!(topic = %t, partition = p, epoch, "took partition lease");
                held.insert((t, p), Held { epoch });
            }
        } else if held.len() > share {
            let mut mine: Vec<(String, i32)> = held.keys().cloned().collect();
            mine.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
            let extra: Vec<(String, i32)> = mine.split_off(share);
            let (topics, parts): (Vec<String>, Vec<i32>) = extra.iter().cloned().unzip();
            sqlx::query(
                "update partition_leases set holder = null, expires_at = '-infinity'
                 where holder = $1 and (topic, partition) in
                   (select * from unnest($2::text[], $3::int[]))",
            )
            .bind(&self.instance)
            .bind(&topics)
            .bind(&parts)
            .execute(&mut *tx)
            .await?;
            for key in extra {
                tracing::info!(topic = %key.0, partition = key.1, "gave back partition lease");
                held.remove(&key);
            }
        }
        tx.commit().await?;
        Ok(held)
    }

    /// Give back every lease and leave (clean shutdown), so others take over at once.
    pub async fn release_all(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "update partition_leases set holder = null, expires_at = '-infinity' where holder = $1",
        )
        .bind(&self.instance)
        .execute(&mut *tx)
        .await?;
        sqlx::query("delete from matcher_instances where instance = $1")
            .bind(&self.instance)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
