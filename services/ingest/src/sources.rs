//! Who may send what. Each source is configured with a name, its organisation, a role and the
//! SHA-256 of its bearer token (tokens are random and long, so a fast hash is the right one;
//! the service never holds a token in clear). Authentication finds the source by the hash of
//! the presented token; how the principal was established does not matter after that, so a
//! mutual-TLS front end can map client certificates to the same principals later.
//!
//! Authorisation is by role and organisation:
//! - `hmpps`: the national HMPPS domain-event feed: releases, withdrawals, admissions, deaths
//!   and identity changes, for any prison;
//! - `prison`: a prison's substance-misuse (healthcare) service, organisation = the prison's
//!   NOMIS code: its own releases (carrying the need), withdrawals and prison referrals;
//! - `probation`: probation referrals, CRN-NOMS links and deaths;
//! - `treatment_provider`: treatment starts and discharges for itself only, by JSON or CSV.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use continuity_domain::events::{ReferralOrigin, SourceEvent};
use continuity_domain::OrganisationCode;
use continuity_schema::RecordType;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// What kind of organisation a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The national HMPPS domain-event feed.
    Hmpps,
    /// A prison's substance-misuse service.
    Prison,
    /// Probation.
    Probation,
    /// A community treatment provider.
    TreatmentProvider,
}

impl Role {
    /// The role's name as configured.
    pub fn name(self) -> &'static str {
        match self {
            Role::Hmpps => "hmpps",
            Role::Prison => "prison",
            Role::Probation => "probation",
            Role::TreatmentProvider => "treatment_provider",
        }
    }

    /// Whether this role may send records of this type at all.
    pub fn may_send(self, record: RecordType) -> bool {
        use RecordType as R;
        match self {
            Role::Hmpps => matches!(
                record,
                R::PrisonRelease
                    | R::ReleaseWithdrawn
                    | R::CustodyAdmission
                    | R::PersonDied
                    | R::IdentityLinked
                    | R::IdentityMerged
                    | R::IdentityUnmerged
                    | R::ProbationAllocated
            ),
            Role::Prison => matches!(record, R::PrisonRelease | R::ReleaseWithdrawn | R::Referral),
            Role::Probation => matches!(
                record,
                R::Referral | R::IdentityLinked | R::PersonDied | R::ProbationAllocated
            ),
            Role::TreatmentProvider => {
                matches!(record, R::TreatmentStart | R::TreatmentDischarge)
            }
        }
    }
}

/// One configured source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// A name for the audit trail and logs, e.g. `hmpps-domain-events`.
    pub name: String,
    /// The organisation it speaks for: a prison's NOMIS code, a provider's code.
    pub organisation: String,
    /// What it may send.
    pub role: Role,
    /// Lower-case hex SHA-256 of the bearer token (`continuity-ingest hash-token`).
    pub token_sha256: String,
    /// Requests per second allowed (default from the service's settings).
    #[serde(default)]
    pub requests_per_second: Option<u32>,
}

/// An authenticated source.
#[derive(Debug)]
pub struct Principal {
    /// The configured name.
    pub name: String,
    /// The organisation.
    pub organisation: OrganisationCode,
    /// The role.
    pub role: Role,
    allowance: Allowance,
}

/// Requests a second, with bursts of twice that.
#[derive(Debug)]
pub struct Allowance {
    limiter: DefaultDirectRateLimiter,
    /// The limiter's clock. Made once per allowance: making a clock calibrates it (CPUID and
    /// a timing loop), which measured as a tenth of ingest's CPU when it was made per request.
    clock: governor::clock::DefaultClock,
}

impl Allowance {
    fn per_second(rate: NonZeroU32) -> Self {
        let burst = rate.saturating_mul(NonZeroU32::MIN.saturating_add(1));
        let clock = governor::clock::DefaultClock::default();
        Allowance {
            limiter: RateLimiter::direct_with_clock(
                Quota::per_second(rate).allow_burst(burst),
                clock.clone(),
            ),
            clock,
        }
    }

    /// Take one request; `Err(seconds)` to wait when the allowance is spent.
    pub fn take(&self) -> Result<(), u64> {
        self.limiter.check().map_err(|not_until| {
            use governor::clock::Clock;
            not_until.wait_time_from(self.clock.now()).as_secs() + 1
        })
    }
}

/// Requests that present no valid token, from anyone, per second: a token is 256 bits and
/// cannot be guessed, but each attempt costs a hash and a log line, so a flood of them is
/// answered 429 (and counted) rather than 401.
pub const UNAUTHENTICATED_PER_SECOND: NonZeroU32 = NonZeroU32::MIN.saturating_add(9);

impl Principal {
    /// Take one request from the source's allowance; `Err(seconds)` to wait when it is spent.
    pub fn admit_request(&self) -> Result<(), u64> {
        self.allowance.take()
    }

    /// Whether this source may send `event`: the role's kinds, and its own organisation where
    /// the event names one. The refusal is worded for the sender and names no person.
    pub fn authorise(&self, event: &SourceEvent) -> Result<(), String> {
        let own = self.organisation.as_str();
        match (self.role, event) {
            (Role::Prison, SourceEvent::Release(r)) => match &r.prison {
                Some(p) if p.as_str().eq_ignore_ascii_case(own) => Ok(()),
                _ => Err(format!(
                    "a prison may send releases from its own prison only: prison must be {own}"
                )),
            },
            (Role::Prison, SourceEvent::Referral(r)) if r.origin != ReferralOrigin::Prison => {
                Err("a prison's referrals must have origin PRISON".into())
            }
            (Role::Probation, SourceEvent::Referral(r))
                if r.origin != ReferralOrigin::Probation =>
            {
                Err("probation referrals must have origin PROBATION".into())
            }
            (Role::Probation, SourceEvent::ProbationAllocated(a))
                if !a.probation_service.as_str().eq_ignore_ascii_case(own) =>
            {
                Err(format!(
                    "a probation service may allocate to itself only: probation_service must be {own}"
                ))
            }
            (Role::TreatmentProvider, SourceEvent::TreatmentStart(s))
                if !s.provider.as_str().eq_ignore_ascii_case(own) =>
            {
                Err(format!(
                    "a provider may send its own treatment records only: provider must be {own}"
                ))
            }
            (Role::TreatmentProvider, SourceEvent::TreatmentDischarge(d))
                if !d.provider.as_str().eq_ignore_ascii_case(own) =>
            {
                Err(format!(
                    "a provider may send its own treatment records only: provider must be {own}"
                ))
            }
            _ => Ok(()),
        }
    }
}

/// The configured sources, by token hash.
#[derive(Debug, Clone)]
pub struct Sources {
    by_token: HashMap<[u8; 32], Arc<Principal>>,
    unauthenticated: Arc<Allowance>,
}

impl Default for Sources {
    fn default() -> Self {
        Sources {
            by_token: HashMap::new(),
            unauthenticated: Arc::new(Allowance::per_second(UNAUTHENTICATED_PER_SECOND)),
        }
    }
}

/// Why the source configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    /// A field is wrong.
    #[error("source {index} ({name}): {problem}")]
    Invalid {
        /// Position in the list, from 1.
        index: usize,
        /// Its name.
        name: String,
        /// What is wrong.
        problem: String,
    },
}

/// A new random source token: two v4 UUIDs (244 random bits from the system's generator) as 64
/// hex digits.
pub fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The SHA-256 of a token, as configured.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl Sources {
    /// Build from configuration; `default_rate` requests per second for sources without their
    /// own, with bursts of twice that.
    pub fn new(configs: &[SourceConfig], default_rate: u32) -> Result<Self, SourcesError> {
        let mut by_token = HashMap::new();
        for (i, c) in configs.iter().enumerate() {
            let fail = |problem: &str| SourcesError::Invalid {
                index: i + 1,
                name: c.name.clone(),
                problem: problem.to_owned(),
            };
            let organisation = OrganisationCode::parse(&c.organisation)
                .map_err(|e| fail(&format!("organisation {e}")))?;
            let hash =
                unhex(&c.token_sha256).ok_or_else(|| fail("token_sha256 must be 64 hex digits"))?;
            let rate = NonZeroU32::new(c.requests_per_second.unwrap_or(default_rate))
                .ok_or_else(|| fail("requests_per_second must be at least 1"))?;
            let principal = Principal {
                name: c.name.clone(),
                organisation,
                role: c.role,
                allowance: Allowance::per_second(rate),
            };
            if by_token.insert(hash, Arc::new(principal)).is_some() {
                return Err(fail("shares its token with another source"));
            }
        }
        Ok(Sources {
            by_token,
            ..Sources::default()
        })
    }

    /// Take one request from the allowance shared by every request without a valid token
    /// ([`UNAUTHENTICATED_PER_SECOND`]); `Err(seconds)` to wait when it is spent.
    pub fn admit_unauthenticated(&self) -> Result<(), u64> {
        self.unauthenticated.take()
    }

    /// The source presenting `token`, if any.
    pub fn authenticate(&self, token: &str) -> Option<Arc<Principal>> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.by_token.get(&digest).cloned()
    }

    /// True when none are.
    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(role: Role, org: &str, token: &str) -> SourceConfig {
        SourceConfig {
            name: format!("{org}-source"),
            organisation: org.into(),
            role,
            token_sha256: token_hash(token),
            requests_per_second: Some(1),
        }
    }

    #[test]
    fn authenticates_by_token_hash_only() {
        let sources = Sources::new(&[config(Role::Prison, "WSI", "secret-1")], 10).unwrap();
        assert_eq!(
            sources
                .authenticate("secret-1")
                .unwrap()
                .organisation
                .as_str(),
            "WSI"
        );
        assert!(sources.authenticate("secret-2").is_none());
        assert!(sources.authenticate("").is_none());
    }

    #[test]
    fn bad_configuration_names_the_source_and_field() {
        let mut c = config(Role::Prison, "WSI", "t");
        c.token_sha256 = "abc".into();
        let e = Sources::new(&[c], 10).unwrap_err().to_string();
        assert!(
            e.contains("source 1 (WSI-source)") && e.contains("token_sha256"),
            "{e}"
        );
        let dup = [
            config(Role::Prison, "WSI", "t"),
            config(Role::Hmpps, "HMPPS", "t"),
        ];
        assert!(Sources::new(&dup, 10)
            .unwrap_err()
            .to_string()
            .contains("shares its token"));
    }

    #[test]
    fn roles_send_only_their_kinds() {
        assert!(Role::TreatmentProvider.may_send(RecordType::TreatmentStart));
        assert!(!Role::Prison.may_send(RecordType::TreatmentStart));
        assert!(!Role::TreatmentProvider.may_send(RecordType::PrisonRelease));
        assert!(!Role::Probation.may_send(RecordType::IdentityMerged));
        assert!(Role::Hmpps.may_send(RecordType::IdentityMerged));
        assert!(!Role::Hmpps.may_send(RecordType::Referral));
    }

    #[test]
    fn rate_limit_answers_with_a_wait() {
        let sources = Sources::new(&[config(Role::Prison, "WSI", "t")], 10).unwrap();
        let p = sources.authenticate("t").unwrap();
        // Burst of two at one per second.
        assert!(p.admit_request().is_ok());
        assert!(p.admit_request().is_ok());
        assert!(matches!(p.admit_request(), Err(s) if s >= 1));
    }
}
