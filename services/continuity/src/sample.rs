//! A small, deterministic sample of source events around one day: releases to Oxfordshire,
//! Reading and Cardiff with the outcomes the measure knows (engaged, engaged and reported late,
//! engaged late, not engaged, still open, died in custody, recalled, withdrawn, matched by
//! attributor only, released outside England), and one record with an invalid prison number.
//! Dates are relative to `today` so flags are live whenever it runs.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use continuity_domain::events::*;
use continuity_domain::{
    Attributor, Identifier, IdentifierKind, LocalAuthorityCode, OrganisationCode, PrisonCode,
    ProviderCode, Sex,
};
use continuity_schema::wire;
use uuid::Uuid;

/// Namespace for the sample's event ids: the same sample always has the same ids.
const SAMPLE_NAMESPACE: Uuid = Uuid::from_u128(0x73616d70_6c65_2d65_7665_6e7473000000);

/// Oxfordshire, Reading and Cardiff.
pub const OXFORDSHIRE: &str = "E10000025";
const READING: &str = "E06000038";
const CARDIFF: &str = "W06000015";

/// The sample: valid events, and messages that must be rejected.
pub struct Sample {
    /// Valid source events.
    pub events: Vec<SourceEvent>,
    /// Encoded messages that decode but fail validation.
    pub invalid: Vec<Vec<u8>>,
}

struct Builder {
    today: NaiveDate,
    seq: u32,
    events: Vec<SourceEvent>,
}

fn code<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    // The sample's own constants are valid; a failure here is a defect in this file.
    r.unwrap_or_else(|e| panic!("sample constant invalid: {e:?}"))
}

impl Builder {
    fn day(&self, offset: i64) -> NaiveDate {
        self.today + Duration::days(offset)
    }

    fn at(&self, offset: i64, hour: u32) -> DateTime<Utc> {
        let date = self.day(offset);
        Utc.from_utc_datetime(&date.and_hms_opt(hour, 0, 0).unwrap_or_default())
    }

    fn meta(&mut self, recorded: DateTime<Utc>, source: &str) -> EventMeta {
        self.seq += 1;
        EventMeta {
            event_id: EventId(Uuid::new_v5(
                &SAMPLE_NAMESPACE,
                format!("{}:{}", self.today, self.seq).as_bytes(),
            )),
            occurred_at: recorded,
            source: code(OrganisationCode::parse(source)),
        }
    }

    fn person(noms: &str, initials: (&str, &str), dob: (i32, u32, u32)) -> PersonRef {
        let dob = NaiveDate::from_ymd_opt(dob.0, dob.1, dob.2).unwrap_or_default();
        PersonRef {
            identifiers: vec![code(Identifier::parse(IdentifierKind::Noms, noms))],
            attributor: Some(code(Attributor::new(
                initials.0,
                initials.1,
                dob,
                Sex::Male,
                dob + Duration::days(365 * 60),
            ))),
        }
    }

    fn referral(&mut self, person: &PersonRef, day: i64, la: &str) {
        let meta = self.meta(self.at(day, 10), "hmp-healthcare");
        let referral_id = format!("REF-{}", self.seq);
        self.events.push(SourceEvent::Referral(Referral {
            meta,
            referral_id,
            person: person.clone(),
            referred_on: self.day(day),
            origin: ReferralOrigin::Prison,
            expected_release: None,
            need: TreatmentNeed {
                local_authority: code(LocalAuthorityCode::parse(la)),
                provider: Some(code(ProviderCode::parse(provider_for(la)))),
            },
        }));
    }

    fn release(&mut self, person: &PersonRef, day: i64, movement: &str, prison: &str) -> String {
        let meta = self.meta(self.at(day, 11), "hmpps-prisons");
        let release_id = format!("{prison}-{}-{}", self.seq, self.day(day));
        self.events.push(SourceEvent::Release(PrisonRelease {
            meta,
            release_id: release_id.clone(),
            person: PersonRef {
                identifiers: person.identifiers.clone(),
                attributor: None,
            },
            release_date: self.day(day),
            planned: false,
            reason: ReleaseReason::Released,
            movement_code: Some(movement.into()),
            prison: Some(code(PrisonCode::parse(prison))),
            need: None,
        }));
        release_id
    }

    fn start(&mut self, person: PersonRef, la: &str, triage_day: i64, recorded_day: i64) {
        let meta = self.meta(self.at(recorded_day, 16), provider_for(la));
        let episode_id = format!("EP-{}", self.seq);
        self.events
            .push(SourceEvent::TreatmentStart(TreatmentStart {
                meta,
                episode_id,
                provider: code(ProviderCode::parse(provider_for(la))),
                local_authority: code(LocalAuthorityCode::parse(la)),
                person,
                triage_date: Some(self.day(triage_day)),
                intervention_start: Some(self.day(triage_day + 7)),
            }));
    }
}

fn provider_for(la: &str) -> &'static str {
    match la {
        OXFORDSHIRE => "OX-TURNING-POINT",
        READING => "RDG-CHANGE-GROW-LIVE",
        _ => "CDF-ABSTAIN",
    }
}

/// Build the sample around `today`.
pub fn sample(today: NaiveDate) -> Sample {
    let mut b = Builder {
        today,
        seq: 0,
        events: Vec::new(),
    };
    let attributor_only = |p: &PersonRef| PersonRef {
        identifiers: vec![],
        attributor: p.attributor.clone(),
    };

    // Engaged on day 5, reported the same day.
    let p = Builder::person("A1001AA", ("A", "B"), (1986, 3, 14));
    b.referral(&p, -40, OXFORDSHIRE);
    b.release(&p, -30, "CR", "MDI");
    b.start(p, OXFORDSHIRE, -25, -25);

    // Not engaged: overdue.
    let p = Builder::person("A1002AA", ("C", "D"), (1979, 11, 2));
    b.referral(&p, -35, OXFORDSHIRE);
    b.release(&p, -28, "HD", "BZI");

    // Engaged on day 12, reported on day 30 after the flag: engaged, reported late.
    let p = Builder::person("A1003AA", ("E", "F"), (1990, 6, 30));
    b.referral(&p, -45, OXFORDSHIRE);
    b.release(&p, -40, "CR", "MDI");
    b.start(p, OXFORDSHIRE, -28, -10);

    // Engaged on day 26: engaged late, a failure whose flag resolves.
    let p = Builder::person("A1004AA", ("G", "H"), (1983, 1, 9));
    b.referral(&p, -40, READING);
    b.release(&p, -35, "CR", "RDI");
    b.start(p, READING, -9, -9);

    // Released 10 days ago, nothing yet: open, at risk.
    let p = Builder::person("A1005AA", ("J", "K"), (1995, 8, 21));
    b.referral(&p, -20, READING);
    b.release(&p, -10, "CR", "RDI");

    // Released 3 days ago: open, no flag yet.
    let p = Builder::person("A1006AA", ("L", "M"), (1972, 4, 4));
    b.referral(&p, -9, OXFORDSHIRE);
    b.release(&p, -3, "NCS", "BZI");

    // Death in custody recorded as a release.
    let p = Builder::person("A1007AA", ("N", "P"), (1968, 2, 17));
    b.referral(&p, -30, OXFORDSHIRE);
    b.release(&p, -25, "DEC", "MDI");

    // Recalled on day 9 before engaging.
    let p = Builder::person("A1008AA", ("R", "S"), (1988, 12, 1));
    b.referral(&p, -35, READING);
    b.release(&p, -30, "CR", "RDI");
    let meta = b.meta(b.at(-21, 18), "hmpps-prisons");
    b.events
        .push(SourceEvent::CustodyAdmission(CustodyAdmission {
            meta,
            person: p.clone(),
            admitted_on: b.day(-21),
            kind: AdmissionKind::Recall,
        }));

    // Release recorded in error, then withdrawn.
    let p = Builder::person("A1009AA", ("T", "U"), (1992, 7, 7));
    b.referral(&p, -25, OXFORDSHIRE);
    let wrong = b.release(&p, -20, "CR", "MDI");
    let meta = b.meta(b.at(-19, 9), "hmpps-prisons");
    b.events
        .push(SourceEvent::ReleaseWithdrawn(ReleaseWithdrawn {
            meta,
            release_id: wrong,
            reason: WithdrawalReason::RecordedInError,
        }));

    // Treatment record with no identifier: matched by attributor and local authority.
    let p = Builder::person("A1010AA", ("V", "W"), (1984, 10, 10));
    b.referral(&p, -32, OXFORDSHIRE);
    b.release(&p, -27, "CR", "BZI");
    b.start(attributor_only(&p), OXFORDSHIRE, -20, -20);

    // Going to Cardiff: outside England.
    let p = Builder::person("A1011AA", ("X", "Y"), (1981, 5, 5));
    b.referral(&p, -30, CARDIFF);
    b.release(&p, -24, "CR", "CFI");

    // Probation referral under the CRN only; probation then links the CRN to the prison
    // number, so the release meets the need. Engaged on day 2, discharged later.
    let p = Builder::person("A1012AA", ("Z", "A"), (1977, 9, 19));
    let crn = code(Identifier::parse(IdentifierKind::Crn, "X100012"));
    let on_probation = PersonRef {
        identifiers: vec![crn.clone()],
        attributor: p.attributor.clone(),
    };
    b.referral(&on_probation, -26, READING);
    let meta = b.meta(b.at(-26, 12), "probation");
    b.events.push(SourceEvent::IdentityLinked(IdentityChange {
        meta,
        kept: crn,
        other: p.identifiers[0].clone(),
    }));
    b.release(&p, -22, "CR", "RDI");
    b.start(p.clone(), READING, -20, -20);
    let meta = b.meta(b.at(-2, 12), provider_for(READING));
    let episode_id = format!("EP-{}", b.seq - 1);
    b.events
        .push(SourceEvent::TreatmentDischarge(TreatmentDischarge {
            meta,
            episode_id,
            provider: code(ProviderCode::parse(provider_for(READING))),
            discharged_on: b.day(-2),
        }));

    // Died on day 6 after release, reported by probation.
    let p = Builder::person("A1013AA", ("B", "C"), (1970, 1, 30));
    b.referral(&p, -30, OXFORDSHIRE);
    b.release(&p, -26, "CR", "MDI");
    let meta = b.meta(b.at(-19, 9), "probation");
    b.events.push(SourceEvent::PersonDied(PersonDied {
        meta,
        person: PersonRef {
            identifiers: p.identifiers.clone(),
            attributor: None,
        },
        died_on: b.day(-20),
    }));

    // A release whose prison number is mistyped: rejected, naming the field.
    let invalid = wire::PrisonRelease {
        envelope: wire::Envelope {
            event_id: Uuid::new_v5(&SAMPLE_NAMESPACE, format!("{today}:invalid").as_bytes()),
            occurred_at: b.at(-1, 12).timestamp_micros(),
            source: "hmpps-prisons".into(),
            schema_version: 1,
        },
        release_id: "MDI-bad".into(),
        person: wire::PersonIdentifiers {
            noms: Some("A10O1AA".into()),
            ..Default::default()
        },
        attributor: None,
        release_date: continuity_schema::days_from_date(b.day(-1)),
        released_at: None,
        planned: false,
        reason: wire::ReleaseReason::Released,
        movement_code: Some("CR".into()),
        prison: Some("MDI".into()),
        need: None,
    };
    let invalid = continuity_schema::AvroRecord::to_message(&invalid)
        .map(|m| vec![m])
        .unwrap_or_default();

    Sample {
        events: b.events,
        invalid,
    }
}
