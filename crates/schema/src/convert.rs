//! Validation at the boundary: wire records become domain events, or an error that lists every
//! field at fault by its path (`person.noms`, `need.local_authority`) and what is wrong with it,
//! never the rejected value. The reverse direction, domain to wire, is used by producers.
//!
//! Its length is one validation per record kind, each naming its fields' paths; they share the
//! field checks at the top.

use std::fmt;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use continuity_domain::events as dom;
use continuity_domain::{
    Attributor, Case, CaseChange, CaseChangeKind, ExclusionReason, FlagChange, FlagKind,
    Identifier, IdentifierKind, LocalAuthorityCode, OrganisationCode, Outcome, PrisonCode,
    ProviderCode, Timeliness,
};

use crate::codec::{AvroRecord, CodecError, RecordType, Registry};
use crate::wire::{self, SourceRecord};

/// One field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `person.noms`.
    pub field: String,
    /// What is wrong, in words the sender can act on.
    pub problem: String,
}

/// A record that decoded but is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidRecord {
    /// The record type.
    pub record: RecordType,
    /// Every field at fault.
    pub errors: Vec<FieldError>,
}

impl fmt::Display for InvalidRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {:?}: ", self.record)?;
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.field, e.problem)?;
        }
        Ok(())
    }
}

/// Why a message is not a usable source event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a message of a known schema.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The message holds an output record, not a source event.
    #[error("{0:?} is not a source event")]
    NotASourceEvent(RecordType),
    /// The record decoded but fails validation.
    #[error(transparent)]
    Invalid(#[from] InvalidRecord),
}

/// Collects field errors while converting one record.
struct Check {
    today: NaiveDate,
    errors: Vec<FieldError>,
}

impl Check {
    fn fail(&mut self, field: &str, problem: impl fmt::Display) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            problem: problem.to_string(),
        });
    }

    fn ok<T, E: fmt::Display>(&mut self, field: &str, r: Result<T, E>) -> Option<T> {
        r.map_err(|e| self.fail(field, e)).ok()
    }

    fn date(&mut self, field: &str, days: i32) -> Option<NaiveDate> {
        let date = date_from_days(days);
        if date.is_none() {
            self.fail(field, "is not a representable date");
        }
        date
    }

    fn opt_date(&mut self, field: &str, days: Option<i32>) -> Option<Option<NaiveDate>> {
        match days {
            None => Some(None),
            Some(d) => self.date(field, d).map(Some),
        }
    }

    fn text(&mut self, field: &str, value: &str) -> Option<String> {
        let v = value.trim();
        if v.is_empty() || v.len() > 128 {
            self.fail(field, "must be 1 to 128 characters");
            return None;
        }
        Some(v.to_owned())
    }

    fn meta(&mut self, e: &wire::Envelope) -> Option<dom::EventMeta> {
        let occurred_at = DateTime::<Utc>::from_timestamp_micros(e.occurred_at);
        if occurred_at.is_none() {
            self.fail("occurred_at", "is out of range");
        }
        let source = self.ok("source", OrganisationCode::parse(&e.source));
        Some(dom::EventMeta {
            event_id: dom::EventId(e.event_id),
            occurred_at: occurred_at?,
            source: source?,
        })
    }

    fn person(
        &mut self,
        ids: &wire::PersonIdentifiers,
        attributor: &Option<wire::Attributor>,
    ) -> Option<dom::PersonRef> {
        let mut identifiers = Vec::new();
        let mut ok = true;
        for (field, kind, value) in [
            ("person.noms", IdentifierKind::Noms, &ids.noms),
            ("person.crn", IdentifierKind::Crn, &ids.crn),
            ("person.pnc", IdentifierKind::Pnc, &ids.pnc),
            ("person.cro", IdentifierKind::Cro, &ids.cro),
            ("person.nhs", IdentifierKind::Nhs, &ids.nhs),
        ] {
            if let Some(v) = value {
                match self.ok(field, Identifier::parse(kind, v)) {
                    Some(id) => identifiers.push(id),
                    None => ok = false,
                }
            }
        }
        let attributor = match attributor {
            None => None,
            Some(a) => {
                let dob = self.date("attributor.date_of_birth", a.date_of_birth);
                let built = dob.and_then(|dob| {
                    let r = Attributor::new(
                        &a.first_initial,
                        &a.surname_initial,
                        dob,
                        a.sex,
                        self.today,
                    );
                    self.ok("attributor", r)
                });
                ok &= built.is_some();
                built
            }
        };
        ok.then_some(dom::PersonRef {
            identifiers,
            attributor,
        })
    }

    fn need(&mut self, need: &wire::TreatmentNeed) -> Option<dom::TreatmentNeed> {
        let la = self.ok(
            "need.local_authority",
            LocalAuthorityCode::parse(&need.local_authority),
        );
        let provider = match &need.provider {
            None => Some(None),
            Some(p) => self.ok("need.provider", ProviderCode::parse(p)).map(Some),
        };
        Some(dom::TreatmentNeed {
            local_authority: la?,
            provider: provider?,
        })
    }

    fn identifier(&mut self, field: &str, id: &wire::Identifier) -> Option<Identifier> {
        let kind = match id.kind {
            wire::IdentifierKind::Noms => IdentifierKind::Noms,
            wire::IdentifierKind::Crn => IdentifierKind::Crn,
            wire::IdentifierKind::Pnc => IdentifierKind::Pnc,
            wire::IdentifierKind::Cro => IdentifierKind::Cro,
            wire::IdentifierKind::Nhs => IdentifierKind::Nhs,
            wire::IdentifierKind::Unknown => {
                self.fail(
                    &format!("{field}.kind"),
                    "must be NOMS, CRN, PNC, CRO or NHS",
                );
                return None;
            }
        };
        self.ok(
            &format!("{field}.value"),
            Identifier::parse(kind, &id.value),
        )
    }

    fn finish<T>(self, record: RecordType, value: Option<T>) -> Result<T, InvalidRecord> {
        match value {
            Some(v) if self.errors.is_empty() => Ok(v),
            _ => Err(InvalidRecord {
                record,
                errors: if self.errors.is_empty() {
                    vec![FieldError {
                        field: "(record)".into(),
                        problem: "is invalid".into(),
                    }]
                } else {
                    self.errors
                },
            }),
        }
    }
}

/// Days since 1970-01-01 as a date.
pub fn date_from_days(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(Duration::days(i64::from(days)))
}

/// A date as days since 1970-01-01.
pub fn days_from_date(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (date - epoch).num_days() as i32
}

/// Decode and validate a source-event message. `today` bounds dates of birth.
pub fn decode_source_event(
    message: &[u8],
    today: NaiveDate,
) -> Result<dom::SourceEvent, DecodeError> {
    match SourceRecord::from_message(message)? {
        Some(record) => Ok(validate_source_record(&record, today)?),
        None => Err(DecodeError::NotASourceEvent(
            Registry::get().writer_of(message)?.record,
        )),
    }
}

/// Validate a source record into a domain event, naming every field at fault. `today` bounds
/// dates of birth.
pub fn validate_source_record(
    source: &SourceRecord,
    today: NaiveDate,
) -> Result<dom::SourceEvent, InvalidRecord> {
    let record = source.record_type();
    let mut c = Check {
        today,
        errors: Vec::new(),
    };
    let event = match source {
        SourceRecord::PrisonRelease(w) => {
            let meta = c.meta(&w.envelope);
            let release_id = c.text("release_id", &w.release_id);
            let person = c.person(&w.person, &w.attributor);
            let release_date = c.date("release_date", w.release_date);
            let prison = match &w.prison {
                None => Some(None),
                Some(p) => c.ok("prison", PrisonCode::parse(p)).map(Some),
            };
            let need = match &w.need {
                None => Some(None),
                Some(n) => c.need(n).map(Some),
            };
            let movement_code = match &w.movement_code {
                None => Some(None),
                Some(m) => c.text("movement_code", m).map(Some),
            };
            let event = (|| {
                Some(dom::SourceEvent::Release(dom::PrisonRelease {
                    meta: meta?,
                    release_id: release_id?,
                    person: person?,
                    release_date: release_date?,
                    planned: w.planned,
                    reason: w.reason,
                    movement_code: movement_code?,
                    prison: prison?,
                    need: need?,
                }))
            })();
            c.finish(record, event)?
        }
        SourceRecord::ReleaseWithdrawn(w) => {
            let meta = c.meta(&w.envelope);
            let release_id = c.text("release_id", &w.release_id);
            let event = (|| {
                Some(dom::SourceEvent::ReleaseWithdrawn(dom::ReleaseWithdrawn {
                    meta: meta?,
                    release_id: release_id?,
                    reason: w.reason,
                }))
            })();
            c.finish(record, event)?
        }
        SourceRecord::CustodyAdmission(w) => {
            let meta = c.meta(&w.envelope);
            let person = c.person(&w.person, &w.attributor);
            let admitted_on = c.date("admitted_on", w.admitted_on);
            let event = (|| {
                Some(dom::SourceEvent::CustodyAdmission(dom::CustodyAdmission {
                    meta: meta?,
                    person: person?,
                    admitted_on: admitted_on?,
                    kind: w.kind,
                }))
            })();
            c.finish(record, event)?
        }
        SourceRecord::PersonDied(w) => {
            let meta = c.meta(&w.envelope);
            let person = c.person(&w.person, &w.attributor);
            let died_on = c.date("died_on", w.died_on);
            let event = (|| {
                Some(dom::SourceEvent::PersonDied(dom::PersonDied {
                    meta: meta?,
                    person: person?,
                    died_on: died_on?,
                }))
            })();
            c.finish(record, event)?
        }
        SourceRecord::IdentityLinked(wire::IdentityLinked(w))
        | SourceRecord::IdentityMerged(wire::IdentityMerged(w))
        | SourceRecord::IdentityUnmerged(wire::IdentityUnmerged(w)) => {
            let meta = c.meta(&w.envelope);
            let kept = c.identifier("kept", &w.kept);
            let other = c.identifier("other", &w.other);
            if let (Some(k), Some(o)) = (&kept, &other) {
                if k == o {
                    c.fail("other", "must differ from kept");
                }
            }
            let change = (|| {
                Some(dom::IdentityChange {
                    meta: meta?,
                    kept: kept?,
                    other: other?,
                })
            })();
            let event = change.map(|change| match record {
                RecordType::IdentityLinked => dom::SourceEvent::IdentityLinked(change),
                RecordType::IdentityMerged => dom::SourceEvent::IdentityMerged(change),
                _ => dom::SourceEvent::IdentityUnmerged(change),
            });
            c.finish(record, event)?
        }
        SourceRecord::Referral(w) => {
            let meta = c.meta(&w.envelope);
            let referral_id = c.text("referral_id", &w.referral_id);
            let person = c.person(&w.person, &w.attributor);
            let referred_on = c.date("referred_on", w.referred_on);
            let origin = match w.origin {
                wire::ReferralOrigin::Prison => Some(dom::ReferralOrigin::Prison),
                wire::ReferralOrigin::Probation => Some(dom::ReferralOrigin::Probation),
                wire::ReferralOrigin::Unknown => {
                    c.fail("origin", "must be PRISON or PROBATION");
                    None
                }
            };
            let expected_release = c.opt_date("expected_release", w.expected_release);
            let need = c.need(&w.need);
            let event = (|| {
                Some(dom::SourceEvent::Referral(dom::Referral {
                    meta: meta?,
                    referral_id: referral_id?,
                    person: person?,
                    referred_on: referred_on?,
                    origin: origin?,
                    expected_release: expected_release?,
                    need: need?,
                }))
            })();
            c.finish(record, event)?
        }
        SourceRecord::ProbationAllocated(w) => {
            let meta = c.meta(&w.envelope);
            let crn = c.ok("crn", Identifier::parse(IdentifierKind::Crn, &w.crn));
            let service = c.ok(
                "probation_service",
                OrganisationCode::parse(&w.probation_service),
            );
            let allocation_id = match &w.allocation_id {
                None => Some(None),
                Some(a) => c.text("allocation_id", a).map(Some),
            };
            let event = (|| {
                Some(dom::SourceEvent::ProbationAllocated(
                    dom::ProbationAllocation {
                        meta: meta?,
                        person: dom::PersonRef {
                            identifiers: vec![crn?],
                            attributor: None,
                        },
                        allocation_id: allocation_id?,
                        probation_service: service?,
                    },
                ))
            })();
            c.finish(record, event)?
        }
        SourceRecord::TreatmentStart(w) => {
            let meta = c.meta(&w.envelope);
            let episode_id = c.text("episode_id", &w.episode_id);
            let provider = c.ok("provider", ProviderCode::parse(&w.provider));
            let la = c.ok(
                "local_authority",
                LocalAuthorityCode::parse(&w.local_authority),
            );
            let person = c.person(&w.person, &w.attributor);
            let triage = c.opt_date("triage_date", w.triage_date);
            let intervention = c.opt_date("intervention_start", w.intervention_start);
            if w.triage_date.is_none() && w.intervention_start.is_none() {
                c.fail("triage_date", "or intervention_start must be given");
            }
            if w.person == wire::PersonIdentifiers::default() && w.attributor.is_none() {
                c.fail(
                    "person",
                    "needs an identifier or an attributor to be matched",
                );
            }
            let event = (|| {
                Some(dom::SourceEvent::TreatmentStart(dom::TreatmentStart {
                    meta: meta?,
                    episode_id: episode_id?,
                    provider: provider?,
                    local_authority: la?,
                    person: person?,
                    triage_date: triage?,
                    intervention_start: intervention?,
                }))
            })();
            c.finish(record, event)?
        }
        SourceRecord::TreatmentDischarge(w) => {
            let meta = c.meta(&w.envelope);
            let episode_id = c.text("episode_id", &w.episode_id);
            let provider = c.ok("provider", ProviderCode::parse(&w.provider));
            let discharged_on = c.date("discharged_on", w.discharged_on);
            let event = (|| {
                Some(dom::SourceEvent::TreatmentDischarge(
                    dom::TreatmentDischarge {
                        meta: meta?,
                        episode_id: episode_id?,
                        provider: provider?,
                        discharged_on: discharged_on?,
                    },
                ))
            })();
            c.finish(record, event)?
        }
    };
    Ok(event)
}

fn envelope(meta: &dom::EventMeta) -> wire::Envelope {
    wire::Envelope {
        event_id: meta.event_id.0,
        occurred_at: meta.occurred_at.timestamp_micros(),
        source: meta.source.to_string(),
        schema_version: 1,
    }
}

fn identifiers_to_wire(
    person: &dom::PersonRef,
) -> (wire::PersonIdentifiers, Option<wire::Attributor>) {
    let mut ids = wire::PersonIdentifiers::default();
    for id in &person.identifiers {
        let slot = match id.kind() {
            IdentifierKind::Noms => &mut ids.noms,
            IdentifierKind::Crn => &mut ids.crn,
            IdentifierKind::Pnc => &mut ids.pnc,
            IdentifierKind::Cro => &mut ids.cro,
            IdentifierKind::Nhs => &mut ids.nhs,
        };
        *slot = Some(id.value().to_owned());
    }
    let attributor = person.attributor.as_ref().map(|a| wire::Attributor {
        first_initial: a.first_initial().to_string(),
        surname_initial: a.surname_initial().to_string(),
        date_of_birth: days_from_date(a.date_of_birth()),
        sex: a.sex(),
    });
    (ids, attributor)
}

fn identifier_to_wire(id: &Identifier) -> wire::Identifier {
    let kind = match id.kind() {
        IdentifierKind::Noms => wire::IdentifierKind::Noms,
        IdentifierKind::Crn => wire::IdentifierKind::Crn,
        IdentifierKind::Pnc => wire::IdentifierKind::Pnc,
        IdentifierKind::Cro => wire::IdentifierKind::Cro,
        IdentifierKind::Nhs => wire::IdentifierKind::Nhs,
    };
    wire::Identifier {
        kind,
        value: id.value().to_owned(),
    }
}

fn need_to_wire(need: &dom::TreatmentNeed) -> wire::TreatmentNeed {
    wire::TreatmentNeed {
        local_authority: need.local_authority.to_string(),
        provider: need.provider.as_ref().map(|p| p.to_string()),
        substances: Vec::new(),
    }
}

/// Encode a domain source event as a single-object message.
pub fn encode_source_event(event: &dom::SourceEvent) -> Result<Vec<u8>, CodecError> {
    source_record(event).to_message()
}

/// The wire form of a domain source event.
pub fn source_record(event: &dom::SourceEvent) -> SourceRecord {
    match event {
        dom::SourceEvent::Release(r) => {
            let (person, attributor) = identifiers_to_wire(&r.person);
            SourceRecord::PrisonRelease(wire::PrisonRelease {
                envelope: envelope(&r.meta),
                release_id: r.release_id.clone(),
                person,
                attributor,
                release_date: days_from_date(r.release_date),
                released_at: None,
                planned: r.planned,
                reason: r.reason,
                movement_code: r.movement_code.clone(),
                prison: r.prison.as_ref().map(|p| p.to_string()),
                need: r.need.as_ref().map(need_to_wire),
            })
        }
        dom::SourceEvent::ReleaseWithdrawn(w) => {
            SourceRecord::ReleaseWithdrawn(wire::ReleaseWithdrawn {
                envelope: envelope(&w.meta),
                release_id: w.release_id.clone(),
                reason: w.reason,
            })
        }
        dom::SourceEvent::CustodyAdmission(a) => {
            let (person, attributor) = identifiers_to_wire(&a.person);
            SourceRecord::CustodyAdmission(wire::CustodyAdmission {
                envelope: envelope(&a.meta),
                person,
                attributor,
                admitted_on: days_from_date(a.admitted_on),
                kind: a.kind,
                movement_code: None,
                prison: None,
            })
        }
        dom::SourceEvent::PersonDied(d) => {
            let (person, attributor) = identifiers_to_wire(&d.person);
            SourceRecord::PersonDied(wire::PersonDied {
                envelope: envelope(&d.meta),
                person,
                attributor,
                died_on: days_from_date(d.died_on),
            })
        }
        dom::SourceEvent::IdentityLinked(c)
        | dom::SourceEvent::IdentityMerged(c)
        | dom::SourceEvent::IdentityUnmerged(c) => {
            let change = wire::IdentityChange {
                envelope: envelope(&c.meta),
                kept: identifier_to_wire(&c.kept),
                other: identifier_to_wire(&c.other),
            };
            match event {
                dom::SourceEvent::IdentityLinked(_) => {
                    SourceRecord::IdentityLinked(wire::IdentityLinked(change))
                }
                dom::SourceEvent::IdentityMerged(_) => {
                    SourceRecord::IdentityMerged(wire::IdentityMerged(change))
                }
                _ => SourceRecord::IdentityUnmerged(wire::IdentityUnmerged(change)),
            }
        }
        dom::SourceEvent::Referral(r) => {
            let (person, attributor) = identifiers_to_wire(&r.person);
            SourceRecord::Referral(wire::Referral {
                envelope: envelope(&r.meta),
                referral_id: r.referral_id.clone(),
                person,
                attributor,
                referred_on: days_from_date(r.referred_on),
                origin: match r.origin {
                    dom::ReferralOrigin::Prison => wire::ReferralOrigin::Prison,
                    dom::ReferralOrigin::Probation => wire::ReferralOrigin::Probation,
                },
                expected_release: r.expected_release.map(days_from_date),
                need: need_to_wire(&r.need),
            })
        }
        dom::SourceEvent::TreatmentStart(s) => {
            let (person, attributor) = identifiers_to_wire(&s.person);
            SourceRecord::TreatmentStart(wire::TreatmentStart {
                envelope: envelope(&s.meta),
                episode_id: s.episode_id.clone(),
                provider: s.provider.to_string(),
                local_authority: s.local_authority.to_string(),
                person,
                attributor,
                referral_date: None,
                triage_date: s.triage_date.map(days_from_date),
                intervention_start: s.intervention_start.map(days_from_date),
            })
        }
        dom::SourceEvent::ProbationAllocated(a) => {
            SourceRecord::ProbationAllocated(wire::ProbationAllocated {
                envelope: envelope(&a.meta),
                crn: a
                    .person
                    .identifiers
                    .iter()
                    .find(|i| i.kind() == IdentifierKind::Crn)
                    .map(|i| i.value().to_owned())
                    .unwrap_or_default(),
                allocation_id: a.allocation_id.clone(),
                probation_service: a.probation_service.to_string(),
            })
        }
        dom::SourceEvent::TreatmentDischarge(d) => {
            SourceRecord::TreatmentDischarge(wire::TreatmentDischarge {
                envelope: envelope(&d.meta),
                episode_id: d.episode_id.clone(),
                provider: d.provider.to_string(),
                discharged_on: days_from_date(d.discharged_on),
                reason: wire::DischargeReason::Other,
            })
        }
    }
}

fn outcome_to_wire(outcome: Outcome) -> (wire::Outcome, Option<wire::ExclusionReason>) {
    match outcome {
        Outcome::Open => (wire::Outcome::Open, None),
        Outcome::Engaged => (wire::Outcome::Engaged, None),
        Outcome::NotEngaged => (wire::Outcome::NotEngaged, None),
        Outcome::Withdrawn => (wire::Outcome::Withdrawn, None),
        Outcome::Excluded(reason) => (
            wire::Outcome::Excluded,
            Some(match reason {
                ExclusionReason::Died => wire::ExclusionReason::Died,
                ExclusionReason::Readmitted => wire::ExclusionReason::Readmitted,
                ExclusionReason::TransferredSecure => wire::ExclusionReason::TransferredSecure,
                ExclusionReason::Deported => wire::ExclusionReason::Deported,
                ExclusionReason::ReleasedToHospital => wire::ExclusionReason::ReleasedToHospital,
                ExclusionReason::ReleasedOutsideEngland => {
                    wire::ExclusionReason::ReleasedOutsideEngland
                }
                ExclusionReason::Under18 => wire::ExclusionReason::Under18,
            }),
        ),
    }
}

fn output_envelope(event_id: uuid::Uuid, now: DateTime<Utc>, source: &str) -> wire::Envelope {
    wire::Envelope {
        event_id,
        occurred_at: now.timestamp_micros(),
        source: source.to_owned(),
        schema_version: 1,
    }
}

/// The `CaseEvent` message for a change to `case` (the case after the change).
pub fn case_event_message(
    change: &CaseChange,
    case: &Case,
    now: DateTime<Utc>,
    source: &str,
) -> Result<Vec<u8>, CodecError> {
    let (outcome, exclusion_reason) = outcome_to_wire(case.outcome);
    wire::CaseEvent {
        envelope: output_envelope(change.event_id, now, source),
        case_id: case.case_id.0,
        change: match change.kind {
            CaseChangeKind::Opened => wire::CaseChange::Opened,
            CaseChangeKind::Engaged => wire::CaseChange::Engaged,
            CaseChangeKind::AtRisk => wire::CaseChange::AtRisk,
            CaseChangeKind::Overdue => wire::CaseChange::Overdue,
            CaseChangeKind::Resolved => wire::CaseChange::Resolved,
            CaseChangeKind::Excluded => wire::CaseChange::Excluded,
            CaseChangeKind::Withdrawn => wire::CaseChange::Withdrawn,
            CaseChangeKind::Updated => wire::CaseChange::Updated,
        },
        release_date: days_from_date(case.release_date),
        last_window_day: days_from_date(case.last_window_day),
        local_authority: case.local_authority.to_string(),
        prison: case.prison.as_ref().map(|p| p.to_string()),
        provider: case.provider.as_ref().map(|p| p.to_string()),
        outcome,
        exclusion_reason,
        engagement_date: case.engagement.as_ref().map(|e| days_from_date(e.date)),
        timeliness: case.engagement.as_ref().map(|e| match e.timeliness {
            Timeliness::InWindow => wire::Timeliness::InWindow,
            Timeliness::ReportedLate => wire::Timeliness::ReportedLate,
            Timeliness::AlreadyInTreatment => wire::Timeliness::AlreadyInTreatment,
            Timeliness::Late => wire::Timeliness::Late,
        }),
    }
    .to_message()
}

/// The `EngagementFlag` message for a flag transition on `case`.
pub fn flag_event_message(
    change: &FlagChange,
    case: &Case,
    now: DateTime<Utc>,
    source: &str,
) -> Result<Vec<u8>, CodecError> {
    let flag = &change.flag;
    let (kind, at_risk_day) = match flag.kind {
        FlagKind::AtRisk(day) => (wire::FlagKind::AtRisk, Some(day as i32)),
        FlagKind::Overdue => (wire::FlagKind::Overdue, None),
    };
    wire::EngagementFlag {
        envelope: output_envelope(change.event_id, now, source),
        flag_id: flag.flag_id,
        case_id: case.case_id.0,
        kind,
        at_risk_day,
        state: flag.state.into(),
        due_at: flag.due_at.timestamp_micros(),
        raised_at: flag.raised_at.timestamp_micros(),
        settled_at: flag.settled_at.map(|t| t.timestamp_micros()),
        release_date: days_from_date(case.release_date),
        local_authority: case.local_authority.to_string(),
        provider: case.provider.as_ref().map(|p| p.to_string()),
        notify: flag.notified,
    }
    .to_message()
}

/// The `CaseworkerAction` message for an action recorded on a case by `organisation`.
pub fn action_message(
    action_id: uuid::Uuid,
    case_id: uuid::Uuid,
    action: &continuity_domain::Action,
    recorded_at: DateTime<Utc>,
    organisation: &str,
) -> Result<Vec<u8>, CodecError> {
    wire::CaseworkerAction {
        envelope: output_envelope(action_id, recorded_at, organisation),
        case_id,
        kind: action.kind.into(),
        appointment_on: action.appointment_on.map(days_from_date),
        snoozed_until: action.snoozed_until.map(days_from_date),
    }
    .to_message()
}

/// Where a message that could not be applied came from.
#[derive(Debug, Clone)]
pub struct MessageOrigin<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key.
    pub key: Option<&'a [u8]>,
    /// The bytes as received.
    pub payload: &'a [u8],
}

/// The `DeadLetter` message for a source message that could not be applied. Its id is derived
/// from where the message was, so dead-lettering it again yields the same id.
pub fn dead_letter_message(
    origin: &MessageOrigin<'_>,
    error: &DecodeError,
    now: DateTime<Utc>,
    source: &str,
) -> Result<Vec<u8>, CodecError> {
    let error_kind = match error {
        DecodeError::Codec(CodecError::UnknownSchema(_)) => wire::ErrorKind::UnknownSchema,
        DecodeError::Codec(_) => wire::ErrorKind::Undecodable,
        DecodeError::NotASourceEvent(_) | DecodeError::Invalid(_) => wire::ErrorKind::Invalid,
    };
    let place = format!("{}/{}/{}", origin.topic, origin.partition, origin.offset);
    wire::DeadLetter {
        envelope: output_envelope(
            uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, place.as_bytes()),
            now,
            source,
        ),
        original_topic: origin.topic.to_owned(),
        partition: origin.partition,
        offset: origin.offset,
        key: origin.key.map(<[u8]>::to_vec),
        payload: origin.payload.to_vec(),
        error_kind,
        reason: error.to_string(),
    }
    .to_message()
}

/// One figure of a `ContinuityPerformance` message.
#[derive(Debug, Clone)]
pub struct Figure<'a> {
    /// The cohort.
    pub period: continuity_domain::CohortPeriod,
    /// The breakdown.
    pub breakdown: continuity_domain::Breakdown,
    /// The area's code (`E92000001` for England).
    pub area: &'a str,
    /// Published (disclosure control applied) or internal.
    pub published: bool,
    /// Finalised and engaged; `None` where suppressed.
    pub counts: continuity_domain::Published,
    /// Open cases and exclusions (internal figures only).
    pub tally: Option<&'a continuity_domain::Tally>,
    /// Final or still provisional.
    pub status: continuity_domain::FigureStatus,
    /// 0 for the figures first published for the cell; 1, 2, ... for each change after the
    /// cell was final (published with status `REVISION`).
    pub revision: u32,
    /// The same cell's figures for the period before (as published, or internal), for the
    /// change since the previous period.
    pub previous: Option<continuity_domain::Published>,
}

/// The spelling of a performance message's content hash ([`PerformanceMessage::content`]):
/// a hash stored under an older one cannot be compared with a new one, so the reporter treats
/// such a cell as unchanged once, rather than as a revision.
pub const CONTENT_SCHEME: i16 = 2;

/// A `ContinuityPerformance` message and what identifies it.
#[derive(Debug, Clone)]
pub struct PerformanceMessage {
    /// The cell (period, breakdown, area, audience): the message key.
    pub cohort_id: uuid::Uuid,
    /// The cell and its figures (not the revision): equal when nothing changed.
    pub content: uuid::Uuid,
    /// The encoded message.
    pub message: Vec<u8>,
}

/// The `ContinuityPerformance` message for a figure. Its key is the cohort id, so every
/// version of a cell lands on one partition, in order. The cohort id names the cell; the event
/// id also covers the figures and the revision, so republishing unchanged figures repeats the
/// same ids and a changed figure gets a new one.
pub fn performance_message(
    figure: &Figure<'_>,
    now: DateTime<Utc>,
    source: &str,
) -> Result<PerformanceMessage, CodecError> {
    use continuity_domain::{Breakdown as B, CohortPeriod as P, FigureStatus as S};
    let audience = if figure.published {
        wire::Audience::Published
    } else {
        wire::Audience::Internal
    };
    // The cohort id keys a consumer's series: its text is frozen, including the audience's
    // spelling here (which predates the codes).
    let audience_key = if figure.published {
        "Published"
    } else {
        "Internal"
    };
    let cell = format!(
        "performance/{audience_key}/{}/{}/{}",
        figure.period,
        figure.breakdown.code(),
        figure.area
    );
    let cohort_id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, cell.as_bytes());
    let rate = figure.counts.rate();
    let (start, end) = figure.period.date_range();
    let open = figure.tally.map(|t| t.open as i64);
    let excluded = figure
        .tally
        .map(|t| {
            t.excluded
                .iter()
                .map(|(r, n)| (r.code().to_string(), *n as i64))
                .collect()
        })
        .unwrap_or_default();
    let change = rate
        .zip(figure.previous.and_then(|p| p.rate()))
        .map(|(now, before)| (now.rate - before.rate) * 100.0);
    // Everything the message says but its revision, each by its code: equal exactly when
    // nothing changed (`CONTENT_SCHEME` names this spelling).
    let count = |n: Option<u64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
    let counts =
        |c: &continuity_domain::Published| format!("{}/{}", count(c.finalised), count(c.engaged));
    let excluded_text = figure.tally.map_or_else(String::new, |t| {
        t.excluded
            .iter()
            .map(|(r, n)| format!("{}={n}", r.code()))
            .collect::<Vec<_>>()
            .join(",")
    });
    let content = format!(
        "{cell}/{}/{}/{}/{excluded_text}/{}/{}",
        counts(&figure.counts),
        figure.status.code(),
        count(open.map(|n| n as u64)),
        figure.published,
        figure
            .previous
            .as_ref()
            .map_or_else(|| "-".to_owned(), counts),
    );
    let content_id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, content.as_bytes());
    let event_id = match figure.revision {
        0 => content_id,
        n => uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("{content}/revision/{n}").as_bytes(),
        ),
    };
    let message = wire::ContinuityPerformance {
        envelope: output_envelope(event_id, now, source),
        cohort_id,
        period: figure.period.to_string(),
        period_kind: match figure.period {
            P::IsoWeek { .. } => wire::PeriodKind::IsoWeek,
            P::Month { .. } => wire::PeriodKind::Month,
            P::FinancialYear { .. } => wire::PeriodKind::FinancialYear,
            P::Rolling12Months { .. } => wire::PeriodKind::Rolling12Months,
            P::Quarter { .. } => wire::PeriodKind::Quarter,
        },
        period_start: days_from_date(start),
        period_end: days_from_date(end),
        breakdown: match figure.breakdown {
            B::England => wire::Breakdown::England,
            B::Region => wire::Breakdown::Region,
            B::LocalAuthority => wire::Breakdown::LocalAuthority,
            B::Prison => wire::Breakdown::Prison,
            B::Provider => wire::Breakdown::Provider,
        },
        area_code: figure.area.to_string(),
        audience,
        finalised: figure.counts.finalised.map(|n| n as i64),
        engaged: figure.counts.engaged.map(|n| n as i64),
        rate: rate.map(|r| r.rate),
        lower: rate.map(|r| r.lower),
        upper: rate.map(|r| r.upper),
        open,
        excluded,
        gap_to_ambition: rate.map(|r| r.gap_to_ambition()),
        status: match (figure.status, figure.revision) {
            (S::Provisional, _) => wire::FigureStatus::Provisional,
            (S::Final, 0) => wire::FigureStatus::Final,
            (S::Final, _) => wire::FigureStatus::Revision,
        },
        revision: figure.revision as i32,
        suppressed: figure.counts.is_suppressed(),
        change,
    };
    Ok(PerformanceMessage {
        cohort_id,
        content: content_id,
        message: message.to_message()?,
    })
}
