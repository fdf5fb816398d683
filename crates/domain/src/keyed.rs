//! Keyed hashes (HMAC-SHA256) of identifiers and attributors. Matching and partitioning use
//! these instead of raw values, so a store of match keys reveals nothing without the secret.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Attributor, Identifier, LocalAuthorityCode};

/// A keyed hash of an identifier or attributor: 32 bytes, shown as hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MatchKey([u8; 32]);

impl MatchKey {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for MatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MatchKey({}..)", &self.to_hex()[..8])
    }
}

/// Computes match keys with a secret. The secret comes from configuration; this type never
/// prints it.
#[derive(Clone)]
pub struct KeyedHasher {
    mac: Hmac<Sha256>,
}

impl fmt::Debug for KeyedHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyedHasher(..)")
    }
}

impl KeyedHasher {
    /// A hasher keyed with `secret` (any length; 32 random bytes recommended).
    pub fn new(secret: &[u8]) -> Self {
        // HMAC accepts keys of any length, so this cannot fail.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        Self { mac }
    }

    fn key(&self, domain: &str, text: &str) -> MatchKey {
        let mut mac = self.mac.clone();
        mac.update(domain.as_bytes());
        mac.update(b"\0");
        mac.update(text.as_bytes());
        MatchKey(mac.finalize().into_bytes().into())
    }

    /// The match key of an identifier (its kind is part of the input).
    pub fn identifier(&self, id: &Identifier) -> MatchKey {
        self.key(id.kind().as_str(), id.value())
    }

    /// The match key of an attributor within a local authority (a probable match needs both).
    pub fn attributor(&self, attributor: &Attributor, la: &LocalAuthorityCode) -> MatchKey {
        self.key(
            "attributor",
            &format!("{}|{}", attributor.canonical(), la.as_str()),
        )
    }

    /// The keyed hash of a record's natural key (a release id may embed a prison number).
    pub fn natural_key(&self, key: &str) -> MatchKey {
        self.key("natural", key)
    }

    /// The match key of an attributor alone, used to choose a Kafka partition.
    pub fn partition_key(&self, attributor: &Attributor) -> MatchKey {
        self.key("partition", &attributor.canonical())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IdentifierKind, Sex};
    use chrono::NaiveDate;

    #[test]
    fn keys_depend_on_secret_kind_and_value() {
        let h1 = KeyedHasher::new(b"secret-one");
        let h2 = KeyedHasher::new(b"secret-two");
        let noms = Identifier::parse(IdentifierKind::Noms, "A1234BC").unwrap();
        let noms_again = Identifier::parse(IdentifierKind::Noms, "a1234bc").unwrap();
        assert_eq!(h1.identifier(&noms), h1.identifier(&noms_again));
        assert_ne!(h1.identifier(&noms), h2.identifier(&noms));
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let dob = NaiveDate::from_ymd_opt(1980, 5, 5).unwrap();
        let a = Attributor::new("A", "B", dob, Sex::Male, today).unwrap();
        let oxon = LocalAuthorityCode::parse("E10000025").unwrap();
        let berks = LocalAuthorityCode::parse("E06000036").unwrap();
        assert_ne!(h1.attributor(&a, &oxon), h1.attributor(&a, &berks));
        assert!(!format!("{:?}", h1.identifier(&noms)).contains("A1234BC"));
    }
}
