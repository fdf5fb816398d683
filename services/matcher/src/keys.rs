//! Match keys: which stored events an incoming event must be assessed with. Two events that
//! the rules could relate share a key: an identifier (people, links, merges, deaths,
//! admissions), an attributor (treatment records matched by attributor), a release id
//! (versions and withdrawals of one release), an episode (starts and discharges), a referral
//! id. Events connected by keys form a component; the rules run on whole components, so a
//! component is always a superset of every person it touches. Keys are keyed hashes: the
//! table of keys reveals nothing without the secret. A key is the first 16 bytes of the hash,
//! stored as `uuid` (fixed length: a smaller index and cheaper comparisons than `bytea`);
//! two distinct keys share them with probability 2^-128.

use continuity_domain::events::SourceEvent;
use continuity_domain::KeyedHasher;

/// A match key.
pub type Key = uuid::Uuid;

fn key(hash: &[u8; 32]) -> Key {
    let mut half = [0u8; 16];
    half.copy_from_slice(&hash[..16]);
    Key::from_bytes(half)
}

/// The match keys of an event.
pub fn match_keys(event: &SourceEvent, hasher: &KeyedHasher) -> Vec<Key> {
    let mut keys = Vec::new();
    if let Some(person) = event.person() {
        for id in &person.identifiers {
            keys.push(key(hasher.identifier(id).as_bytes()));
        }
        if let Some(a) = &person.attributor {
            keys.push(key(hasher.partition_key(a).as_bytes()));
        }
    }
    let natural = match event {
        SourceEvent::Release(r) => Some(format!("release:{}", r.release_id)),
        SourceEvent::ReleaseWithdrawn(w) => Some(format!("release:{}", w.release_id)),
        SourceEvent::Referral(r) => Some(format!("referral:{}", r.referral_id)),
        SourceEvent::TreatmentStart(s) => Some(format!("episode:{}/{}", s.provider, s.episode_id)),
        SourceEvent::TreatmentDischarge(d) => {
            Some(format!("episode:{}/{}", d.provider, d.episode_id))
        }
        SourceEvent::IdentityLinked(c)
        | SourceEvent::IdentityMerged(c)
        | SourceEvent::IdentityUnmerged(c) => {
            keys.push(key(hasher.identifier(&c.kept).as_bytes()));
            keys.push(key(hasher.identifier(&c.other).as_bytes()));
            None
        }
        SourceEvent::CustodyAdmission(_)
        | SourceEvent::PersonDied(_)
        | SourceEvent::ProbationAllocated(_) => None,
    };
    if let Some(n) = natural {
        keys.push(key(hasher.natural_key(&n).as_bytes()));
    }
    keys.sort();
    keys.dedup();
    keys
}
