//! A deterministic generator of realistic synthetic source events: releases from ~120
//! prisons to ~150 local authorities, referrals before (and a few just after) release,
//! probation referrals under the CRN with the NOMS-CRN link, treatment starts with realistic
//! delays and late reporting, discharges, duplicates, corrections, withdrawals, deaths,
//! recalls and the movement codes that exclude. The same seed always gives the same events
//! (ChaCha8), so a benchmark or a test can be repeated exactly. Every value is invented.

#![warn(missing_docs)]

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use continuity_domain::events::*;
use continuity_domain::{
    Attributor, Identifier, IdentifierKind, LocalAuthorityCode, OrganisationCode, PrisonCode,
    ProviderCode, Sex,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Config {
    /// Seed: the same seed gives the same events.
    pub seed: u64,
    /// People released (each with a treatment need); about 3.6 events each.
    pub people: usize,
    /// First release date.
    pub start: NaiveDate,
    /// Releases are spread over this many days.
    pub days: u32,
    /// Prisons.
    pub prisons: usize,
    /// Local authorities (2% of people go to Wales).
    pub local_authorities: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            seed: 1,
            people: 1000,
            start: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default(),
            days: 365,
            prisons: 120,
            local_authorities: 150,
        }
    }
}

impl Config {
    /// The number of people that gives about `events` events.
    pub fn people_for_events(events: usize) -> usize {
        (events as f64 / 3.6).ceil() as usize
    }
}

fn valid<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    // Every generated value is built to be valid; failing here is a defect in this file.
    r.unwrap_or_else(|e| panic!("generated value invalid: {e:?}"))
}

/// A NOMS number unique to `n` (n < 26 * 10_000 * 676).
pub fn noms_for(n: usize) -> Identifier {
    let letters = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let first = letters[(n / 6_760_000) % 26] as char;
    let digits = (n / 676) % 10_000;
    let a = letters[(n / 26) % 26] as char;
    let b = letters[n % 26] as char;
    valid(Identifier::parse(
        IdentifierKind::Noms,
        &format!("{first}{digits:04}{a}{b}"),
    ))
}

fn crn_for(n: usize) -> Identifier {
    let letters = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let first = letters[(n / 1_000_000) % 26] as char;
    valid(Identifier::parse(
        IdentifierKind::Crn,
        &format!("{first}{:06}", n % 1_000_000),
    ))
}

/// The local authority code of area `i`: England's upper-tier authorities from the shipped
/// list (`continuity-reference`), taken in a stride that spreads the first few over the
/// regions; Welsh areas `W06...`.
pub fn local_authority(i: usize, welsh: bool) -> LocalAuthorityCode {
    let codes = continuity_reference::Names::shipped().area_codes();
    let code = match (welsh, codes.len()) {
        (false, n) if n > 0 => codes[(i * 37) % n].clone(),
        (true, _) => format!("W06{:06}", i % 22 + 1),
        (false, _) => format!("E06{:06}", i + 1),
    };
    valid(LocalAuthorityCode::parse(&code))
}

/// The releasing prison `i`: England's prisons from the shipped list.
pub fn prison(i: usize) -> PrisonCode {
    let codes = continuity_reference::Names::shipped().english_prisons();
    let code = match codes.len() {
        0 => format!("P{:03}", i % 1000),
        n => codes[i % n].clone(),
    };
    valid(PrisonCode::parse(&code))
}

struct Gen {
    rng: ChaCha8Rng,
    out: Vec<SourceEvent>,
}

impl Gen {
    fn uuid(&mut self) -> Uuid {
        uuid::Builder::from_random_bytes(self.rng.random()).into_uuid()
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn meta(&mut self, recorded: DateTime<Utc>, source: &str) -> EventMeta {
        EventMeta {
            event_id: EventId(self.uuid()),
            occurred_at: recorded,
            source: valid(OrganisationCode::parse(source)),
        }
    }

    fn at(&mut self, date: NaiveDate) -> DateTime<Utc> {
        let secs = self.rng.random_range(8 * 3600..18 * 3600);
        Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default())
            + Duration::seconds(secs)
    }
}

/// Generate the events, ordered by when they were recorded (as they would arrive live).
pub fn generate(config: &Config) -> Vec<SourceEvent> {
    let mut g = Gen {
        rng: ChaCha8Rng::seed_from_u64(config.seed),
        out: Vec::with_capacity(config.people * 4),
    };
    let today = config.start + Duration::days(i64::from(config.days) + 400);
    for n in 0..config.people {
        person(&mut g, config, n, today);
    }
    g.out.sort_by_key(|e| (e.meta().occurred_at, e.id()));
    g.out
}

fn person(g: &mut Gen, c: &Config, n: usize, today: NaiveDate) {
    let noms = noms_for(n);
    let crn = crn_for(n);
    let initials = b"ABCDEFGHIJKLMNOPRSTW";
    let first = (initials[g.rng.random_range(0..initials.len())] as char).to_string();
    let last = (initials[g.rng.random_range(0..initials.len())] as char).to_string();
    let dob = NaiveDate::from_ymd_opt(1960, 1, 1).unwrap_or_default()
        + Duration::days(g.rng.random_range(0..365 * 46));
    let sex = if g.chance(0.85) {
        Sex::Male
    } else {
        Sex::Female
    };
    let attributor = valid(Attributor::new(&first, &last, dob, sex, today));
    let welsh = g.chance(0.02);
    let la_index = g.rng.random_range(0..c.local_authorities);
    let la = local_authority(la_index, welsh);
    let provider = valid(ProviderCode::parse(&format!("PRV{la_index:03}")));
    let prison = prison(g.rng.random_range(0..c.prisons));
    let release = c.start + Duration::days(g.rng.random_range(0..i64::from(c.days.max(1))));
    let release_id = format!("{prison}-{}-{release}", noms.value());
    let need = TreatmentNeed {
        local_authority: la.clone(),
        provider: Some(provider.clone()),
    };

    // The need: a prison referral before release, or a probation referral under the CRN
    // with the link probation publishes.
    let probation = g.chance(0.3);
    let referred_on = if g.chance(0.1) {
        release + Duration::days(g.rng.random_range(0..=7))
    } else {
        release - Duration::days(g.rng.random_range(1..40))
    };
    let referral_person = PersonRef {
        identifiers: vec![if probation { crn.clone() } else { noms.clone() }],
        attributor: Some(attributor.clone()),
    };
    let recorded = g.at(referred_on);
    let meta = g.meta(
        recorded,
        if probation {
            "probation"
        } else {
            "prison-healthcare"
        },
    );
    let referral_id = format!("REF-{n}");
    g.out.push(SourceEvent::Referral(Referral {
        meta,
        referral_id,
        person: referral_person,
        referred_on,
        origin: if probation {
            ReferralOrigin::Probation
        } else {
            ReferralOrigin::Prison
        },
        expected_release: Some(release),
        need,
    }));
    if probation || g.chance(0.2) {
        let recorded = g.at(referred_on);
        let meta = g.meta(recorded, "probation");
        g.out.push(SourceEvent::IdentityLinked(IdentityChange {
            meta,
            kept: crn.clone(),
            other: noms.clone(),
        }));
    }

    // The release movement, published 45 minutes later; sometimes twice.
    let code = match g.rng.random_range(0..1000) {
        0..=2 => "DEC",
        3..=7 => "HO",
        8..=12 => "DE",
        13..=200 => "HD",
        201..=260 => "NCS",
        _ => "CR",
    };
    let recorded = g.at(release) + Duration::minutes(45);
    let meta = g.meta(recorded, "hmpps-prisons");
    let movement = PrisonRelease {
        meta,
        release_id: release_id.clone(),
        person: PersonRef {
            identifiers: vec![noms.clone()],
            attributor: None,
        },
        release_date: release,
        planned: false,
        reason: ReleaseReason::Released,
        movement_code: Some(code.into()),
        prison: Some(prison.clone()),
        need: None,
    };
    g.out.push(SourceEvent::Release(movement.clone()));
    if g.chance(0.02) {
        // The same message delivered twice.
        g.out.push(SourceEvent::Release(movement.clone()));
    }
    if g.chance(0.01) {
        // A correction: the movement re-published later under a new id.
        let recorded = movement.meta.occurred_at + Duration::hours(g.rng.random_range(1..72));
        let meta = g.meta(recorded, "hmpps-prisons");
        g.out.push(SourceEvent::Release(PrisonRelease {
            meta,
            movement_code: Some("CR".into()),
            ..movement.clone()
        }));
    }
    if g.chance(0.01) {
        let recorded = movement.meta.occurred_at + Duration::hours(g.rng.random_range(1..48));
        let meta = g.meta(recorded, "hmpps-prisons");
        g.out.push(SourceEvent::ReleaseWithdrawn(ReleaseWithdrawn {
            meta,
            release_id: release_id.clone(),
            reason: WithdrawalReason::RecordedInError,
        }));
    }

    // Treatment: 55% engage within the window, 10% after it, the rest not at all.
    let roll: f64 = g.rng.random();
    let engaged_day = if roll < 0.55 {
        Some(g.rng.random_range(-3..=21))
    } else if roll < 0.65 {
        Some(g.rng.random_range(22..60))
    } else {
        None
    };
    if let Some(day) = engaged_day {
        let triage = release + Duration::days(day);
        let delay = if g.chance(0.15) {
            g.rng.random_range(10..40)
        } else {
            g.rng.random_range(0..4)
        };
        let recorded = g.at(triage + Duration::days(delay));
        let identified = g.chance(0.3);
        let meta = g.meta(recorded, provider.as_str());
        let episode_id = format!("EP-{n}");
        g.out.push(SourceEvent::TreatmentStart(TreatmentStart {
            meta,
            episode_id: episode_id.clone(),
            provider: provider.clone(),
            local_authority: la.clone(),
            person: PersonRef {
                identifiers: if identified {
                    vec![noms.clone()]
                } else {
                    vec![]
                },
                attributor: Some(attributor.clone()),
            },
            triage_date: Some(triage),
            intervention_start: Some(triage + Duration::days(g.rng.random_range(0..14))),
        }));
        if g.chance(0.5) {
            let on = triage + Duration::days(g.rng.random_range(30..200));
            let recorded = g.at(on);
            let meta = g.meta(recorded, provider.as_str());
            g.out
                .push(SourceEvent::TreatmentDischarge(TreatmentDischarge {
                    meta,
                    episode_id,
                    provider,
                    discharged_on: on,
                }));
        }
    }
    if g.chance(0.01) {
        let on = release + Duration::days(g.rng.random_range(0..30));
        let reported = on + Duration::days(g.rng.random_range(0..10));
        let recorded = g.at(reported);
        let meta = g.meta(recorded, "probation");
        g.out.push(SourceEvent::PersonDied(PersonDied {
            meta,
            person: PersonRef {
                identifiers: vec![crn.clone()],
                attributor: None,
            },
            died_on: on,
        }));
    }
    if g.chance(0.05) {
        let on = release + Duration::days(g.rng.random_range(1..40));
        let recorded = g.at(on) + Duration::minutes(45);
        let meta = g.meta(recorded, "hmpps-prisons");
        g.out.push(SourceEvent::CustodyAdmission(CustodyAdmission {
            meta,
            person: PersonRef {
                identifiers: vec![noms],
                attributor: None,
            },
            admitted_on: on,
            kind: AdmissionKind::Recall,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_realistic() {
        let config = Config {
            people: 2000,
            ..Config::default()
        };
        let a = generate(&config);
        let b = generate(&config);
        assert_eq!(a, b);
        let per_person = a.len() as f64 / 2000.0;
        assert!((3.0..4.2).contains(&per_person), "{per_person}");
        let assessment =
            continuity_domain::assess(&a, &continuity_domain::Rules::default(), Utc::now());
        let cases = assessment.cases.len();
        assert!(cases > 1900 && cases <= 2000, "{cases}");
        let mut tally = continuity_domain::Tally::default();
        for c in &assessment.cases {
            tally.add(c.outcome);
        }
        let rate = tally.rate().unwrap().rate;
        // About 55% engage within the window; exclusions and late reports move it a little.
        assert!((0.45..0.65).contains(&rate), "{rate}");
        assert_ne!(generate(&Config { seed: 2, ..config }), a);
    }

    #[test]
    fn noms_numbers_are_unique_and_valid() {
        let mut seen = std::collections::BTreeSet::new();
        for n in 0..50_000 {
            assert!(seen.insert(noms_for(n)));
        }
    }
}
