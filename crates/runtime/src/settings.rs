//! The sections of configuration every service shares, each defined once and flattened into a
//! service's own settings, so their keys (and `CONTINUITY_` variables) are the same everywhere:
//! the connections (the database: `database_url`, `database_pool`; the broker: `brokers`,
//! `topic_prefix`, in `continuity_stream::KafkaSettings`), the keyed-hash secret
//! (`hash_secret`) and the clock (`fixed_now`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

use crate::clock::Clock;

/// How a service reaches PostgreSQL and the broker: the first section of every service's
/// settings, flattened (`database_url`, `database_pool`, `brokers`, `topic_prefix`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Connections {
    /// PostgreSQL.
    #[serde(flatten)]
    pub database: DatabaseSettings,
    /// The broker and topic names.
    #[serde(flatten)]
    pub kafka: continuity_stream::KafkaSettings,
}

impl Connections {
    /// The default broker and PostgreSQL with a pool of `pool` connections.
    pub fn with_pool(pool: u32) -> Self {
        Connections {
            database: DatabaseSettings {
                database_pool: pool,
                ..DatabaseSettings::default()
            },
            kafka: continuity_stream::KafkaSettings::default(),
        }
    }
}

/// How to reach PostgreSQL.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// PostgreSQL URL (`CONTINUITY_DATABASE_URL`); a secret, never logged.
    pub database_url: SecretString,
    /// Most connections the service's main pool opens (`CONTINUITY_DATABASE_POOL`).
    pub database_pool: u32,
}

impl DatabaseSettings {
    /// Settings for `url` with a pool of `pool` connections.
    pub fn new(url: impl Into<String>, pool: u32) -> Self {
        Self {
            database_url: SecretString::from(url.into()),
            database_pool: pool,
        }
    }

    /// The URL, for connecting.
    pub fn url(&self) -> &str {
        self.database_url.expose_secret()
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self::new("postgres://postgres@127.0.0.1:5432/postgres", 8)
    }
}

/// The secret of the keyed hashes (`CONTINUITY_HASH_SECRET`): the same for every service and
/// instance of a deployment. An empty value is refused when the configuration is read; a
/// missing one leaves it unset, which [`HashSecret::expose`] and the services' checks refuse.
#[derive(Clone, Default)]
pub struct HashSecret(Option<SecretString>);

impl HashSecret {
    /// A secret; `None` when `secret` is empty.
    pub fn new(secret: impl Into<String>) -> Option<Self> {
        let secret = secret.into();
        (!secret.is_empty()).then(|| HashSecret(Some(SecretString::from(secret))))
    }

    /// The secret's bytes, or what to do about its absence.
    pub fn expose(&self) -> Result<&[u8], &'static str> {
        self.0
            .as_ref()
            .map(|s| s.expose_secret().as_bytes())
            .ok_or("hash_secret is not set: set CONTINUITY_HASH_SECRET to the deployment's secret for keyed hashes (the same for every service)")
    }
}

impl std::fmt::Debug for HashSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "HashSecret(set)"
        } else {
            "HashSecret(unset)"
        })
    }
}

impl<'de> Deserialize<'de> for HashSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Any other scalar is refused without echoing it (serde's default message would put
        // the value, a secret, in the error). The loader keeps the environment's value as text.
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = String;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("the secret as text")
            }
            fn visit_str<E>(self, v: &str) -> Result<String, E> {
                Ok(v.to_owned())
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<String, E> {
                Err(E::custom("hash_secret must be text: quote it"))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<String, E> {
                Err(E::custom("hash_secret must be text: quote it"))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<String, E> {
                Err(E::custom("hash_secret must be text: quote it"))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<String, E> {
                Err(E::custom("hash_secret must be text: quote it"))
            }
        }
        let secret = d.deserialize_any(Text)?;
        HashSecret::new(secret).ok_or_else(|| {
            serde::de::Error::custom(
                "hash_secret is empty: set CONTINUITY_HASH_SECRET to the deployment's secret",
            )
        })
    }
}

/// Where a service's time comes from.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct ClockSettings {
    /// Evaluate as at this instant instead of the wall clock (`CONTINUITY_FIXED_NOW`): for
    /// replaying history to a point in time, and for tests. Unset in production.
    pub fixed_now: Option<DateTime<Utc>>,
}

impl ClockSettings {
    /// The clock: fixed when `fixed_now` is set, the system clock otherwise.
    pub fn clock(&self) -> Arc<dyn Clock> {
        crate::clock::clock(self.fixed_now)
    }
}

/// What a service's settings must hold beyond their types, checked when they are loaded.
pub trait Checked {
    /// `Ok`, or what is wrong and how to put it right.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The configuration a `migrate` command needs: the connections alone (no secret is required
/// to apply migrations).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MigrateSettings {
    /// PostgreSQL (and the broker, unused).
    #[serde(flatten)]
    pub connections: Connections,
}

impl Checked for MigrateSettings {}
