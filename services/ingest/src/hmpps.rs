//! HMPPS domain events as HMPPS delivers them: an SNS `Notification` (the event as a JSON
//! string in `Message`, `eventType` in `MessageAttributes`) or the bare event. Each becomes a
//! source record, or is ignored for a stated reason, or is rejected naming the field:
//!
//! - `prison-offender-events.prisoner.released` with `reason` `RELEASED` (or
//!   `RELEASED_TO_HOSPITAL`) is a release; its movement code goes with it and the rules decide
//!   what it means (`DEC` death in custody, `HO`/`HQ`/`HP` hospital, `DD`/`DE`/`DL` deportation:
//!   excluded cases; `UAL*` absconded: no case). Transfers, temporary absences and court are
//!   not releases and are ignored.
//! - `prison-offender-events.prisoner.received` with `reason` `ADMISSION` is an admission to
//!   custody: a recall when the movement code is a recall code or `probableCause` is `RECALL`.
//! - `prison-offender-events.prisoner.merged`, `probation-case.merge.completed` and
//!   `probation-case.unmerge.completed` merge and unmerge records;
//!   `probation-case.prison-identifier.added` links a CRN to a NOMS number.
//! - Every other event type is ignored, with the reason.
//!
//! `version` may be a number or a string; `personReference` may be absent (the NOMS number is
//! then `additionalInformation.nomsNumber`); `prisonId` may be null.

use chrono::{DateTime, Utc};
use continuity_domain::london_date;
use continuity_schema::days_from_date;
use continuity_schema::wire::{
    self, AdmissionKind, IdentifierKind, PersonIdentifiers, ReleaseReason, SourceRecord,
};
use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::rows::{FieldProblem, Parsed};
use crate::time::parse_instant;

/// NOMIS movement reason codes of an admission that is a recall to custody.
pub const RECALL_CODES: [&str; 7] = ["24", "Y", "PD", "ELR", "B", "ETRLR", "L"];

/// The event types this adapter turns into source records.
pub const USED_EVENT_TYPES: [&str; 7] = [
    "prison-offender-events.prisoner.released",
    "prison-offender-events.prisoner.received",
    "prison-offender-events.prisoner.merged",
    "probation-case.prison-identifier.added",
    "probation-case.merge.completed",
    "probation-case.unmerge.completed",
    "person.community.manager.allocated",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DomainEvent {
    event_type: Option<String>,
    occurred_at: Option<String>,
    #[serde(default)]
    additional_information: Option<Map<String, Value>>,
    #[serde(default)]
    person_reference: Option<PersonReference>,
}

#[derive(Deserialize)]
struct PersonReference {
    #[serde(default)]
    identifiers: Option<Vec<TypedIdentifier>>,
}

#[derive(Deserialize)]
struct TypedIdentifier {
    #[serde(rename = "type")]
    kind: Option<String>,
    value: Option<String>,
}

/// Turn one delivered message (SNS notification or bare event) into what it means. The
/// envelope's source is the sender's organisation; its id is left for the caller to derive
/// from the content (HMPPS events carry no id of their own, and duplicates are published).
///
/// `allocations_to` is the probation service `person.community.manager.allocated` events
/// allocate to; without it they are ignored.
pub fn adapt(message: &Value, source: &str, allocations_to: Option<&str>) -> Parsed {
    let event = match unwrap_notification(message) {
        Ok(event) => event,
        Err(problem) => return Parsed::Rejected(vec![problem]),
    };
    let domain = match DomainEvent::deserialize(event.as_ref()) {
        Ok(d) => d,
        Err(_) => {
            return Parsed::Rejected(vec![FieldProblem::new(
                "(event)",
                "must be an HMPPS domain event: an object with eventType, occurredAt, additionalInformation and personReference",
            )])
        }
    };
    let event_type = domain
        .event_type
        .clone()
        .or_else(|| attribute_event_type(message));
    let Some(event_type) = event_type else {
        return Parsed::Rejected(vec![FieldProblem::new("eventType", "is missing")]);
    };
    let e = Event {
        domain,
        source: source.to_owned(),
    };
    match event_type.as_str() {
        "prison-offender-events.prisoner.released" => e.released(),
        "prison-offender-events.prisoner.received" => e.received(),
        "prison-offender-events.prisoner.merged" => e.identity(
            IdentityChange::Merged,
            ("additionalInformation.nomsNumber", IdentifierKind::Noms),
            (
                "additionalInformation.removedNomsNumber",
                IdentifierKind::Noms,
            ),
        ),
        "probation-case.merge.completed" => e.identity(
            IdentityChange::Merged,
            ("additionalInformation.targetCRN", IdentifierKind::Crn),
            ("additionalInformation.sourceCRN", IdentifierKind::Crn),
        ),
        "probation-case.unmerge.completed" => e.identity(
            IdentityChange::Unmerged,
            ("additionalInformation.unmergedCRN", IdentifierKind::Crn),
            ("additionalInformation.reactivatedCRN", IdentifierKind::Crn),
        ),
        "probation-case.prison-identifier.added" => e.prison_identifier_added(),
        "person.community.manager.allocated" => match allocations_to {
            Some(service) => e.allocated(service),
            None => Parsed::Ignored(
                "person.community.manager.allocated names no probation service: set allocation_probation_service to the service these allocations are in".into(),
            ),
        },
        "prisoner-offender-search.prisoner.released"
        | "prisoner-offender-search.prisoner.received" => Parsed::Ignored(
            "prisoner-offender-search events repeat prison-offender-events without the movement code; the prison-offender-events one is used".into(),
        ),
        other => Parsed::Ignored(format!(
            "event type {} is not used by the pipeline (it uses {})",
            event_type_name(other),
            USED_EVENT_TYPES.join(", ")
        )),
    }
}

/// The event inside an SNS notification, or the message itself when it is bare.
fn unwrap_notification(message: &Value) -> Result<Cow<'_, Value>, FieldProblem> {
    let Some(object) = message.as_object() else {
        return Err(FieldProblem::new(
            "(event)",
            "must be a JSON object (an SNS notification or an HMPPS domain event)",
        ));
    };
    match object.get("Message") {
        None => Ok(Cow::Borrowed(message)),
        Some(Value::String(inner)) => serde_json::from_str(inner).map(Cow::Owned).map_err(|_| {
            FieldProblem::new("Message", "must hold the domain event as a JSON string")
        }),
        Some(_) => Err(FieldProblem::new(
            "Message",
            "must be a string holding the domain event as JSON",
        )),
    }
}

fn attribute_event_type(message: &Value) -> Option<String> {
    message
        .get("MessageAttributes")?
        .get("eventType")?
        .get("Value")?
        .as_str()
        .map(str::to_owned)
}

/// A sender's event type, echoed back only when it has the shape of one (lower-case words
/// joined by `.` and `-`): never arbitrary text.
fn event_type_name(s: &str) -> &str {
    let shaped = s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c == '.' || c == '-');
    if shaped {
        s
    } else {
        "(not an event type name)"
    }
}

/// A sender's reason code, echoed back only when it has the shape of one (`TRANSFERRED`).
fn reason_name(s: &str) -> &str {
    let shaped = s.len() <= 40 && s.chars().all(|c| c.is_ascii_uppercase() || c == '_');
    if shaped {
        s
    } else {
        "(not a reason code)"
    }
}

enum IdentityChange {
    Merged,
    Unmerged,
}

struct Event {
    domain: DomainEvent,
    source: String,
}

impl Event {
    fn info(&self, key: &str) -> Option<&str> {
        self.domain
            .additional_information
            .as_ref()?
            .get(key)?
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// The CRN, or a problem naming the field when the event has none.
    fn required_crn(&self, problems: &mut Vec<FieldProblem>) -> Option<String> {
        let crn = self.reference("CRN");
        if crn.is_none() {
            problems.push(FieldProblem::new(
                "personReference.identifiers",
                "has no CRN",
            ));
        }
        crn
    }

    fn reference(&self, kind: &str) -> Option<String> {
        self.domain
            .person_reference
            .as_ref()?
            .identifiers
            .as_ref()?
            .iter()
            .find(|i| i.kind.as_deref() == Some(kind))?
            .value
            .clone()
    }

    /// The NOMS number: `personReference` first, `additionalInformation.nomsNumber` in older
    /// payloads.
    fn noms(&self, problems: &mut Vec<FieldProblem>) -> Option<String> {
        let noms = self
            .reference("NOMS")
            .or_else(|| self.info("nomsNumber").map(str::to_owned));
        if noms.is_none() {
            problems.push(FieldProblem::new(
                "additionalInformation.nomsNumber",
                "is missing, and personReference has no NOMS identifier",
            ));
        }
        noms
    }

    fn occurred_at(&self, problems: &mut Vec<FieldProblem>) -> Option<DateTime<Utc>> {
        match self.domain.occurred_at.as_deref().map(parse_instant) {
            Some(Ok(t)) => Some(t),
            Some(Err(forms)) => {
                problems.push(FieldProblem::new("occurredAt", forms));
                None
            }
            None => {
                problems.push(FieldProblem::new("occurredAt", "is missing"));
                None
            }
        }
    }

    /// The NOMS number and time of a movement, or every field at fault.
    fn movement(&self) -> Result<(String, DateTime<Utc>), Parsed> {
        let mut problems = Vec::new();
        let noms = self.noms(&mut problems);
        let at = self.occurred_at(&mut problems);
        noms.zip(at).ok_or(Parsed::Rejected(problems))
    }

    /// The person: the NOMS number, and the CRN where the event gives it.
    fn person(&self, noms: String) -> PersonIdentifiers {
        PersonIdentifiers {
            noms: Some(noms),
            crn: self.reference("CRN"),
            ..Default::default()
        }
    }

    fn missing_reason() -> Parsed {
        Parsed::Rejected(vec![FieldProblem::new(
            "additionalInformation.reason",
            "is missing",
        )])
    }

    fn envelope(&self, at: DateTime<Utc>) -> wire::Envelope {
        wire::Envelope {
            event_id: uuid::Uuid::nil(),
            occurred_at: at.timestamp_micros(),
            source: self.source.clone(),
            schema_version: 1,
        }
    }

    fn released(&self) -> Parsed {
        let reason = match self.info("reason") {
            Some("RELEASED") => ReleaseReason::Released,
            Some("RELEASED_TO_HOSPITAL") => ReleaseReason::ReleasedToHospital,
            Some("TRANSFERRED") => {
                return Parsed::Ignored(
                    "TRANSFERRED: a transfer between prisons is not a release into the community"
                        .into(),
                )
            }
            Some("TEMPORARY_ABSENCE_RELEASE") => {
                return Parsed::Ignored(
                    "TEMPORARY_ABSENCE_RELEASE: a temporary absence is not a release into the community"
                        .into(),
                )
            }
            Some("SENT_TO_COURT") => {
                return Parsed::Ignored(
                    "SENT_TO_COURT: a court appearance is not a release into the community".into(),
                )
            }
            Some(other) => {
                return Parsed::Ignored(format!(
                    "reason {} is not a release into the community",
                    reason_name(other)
                ))
            }
            None => return Self::missing_reason(),
        };
        let (noms, at) = match self.movement() {
            Ok(m) => m,
            Err(rejected) => return rejected,
        };
        let date = london_date(at);
        Parsed::one(SourceRecord::PrisonRelease(wire::PrisonRelease {
            envelope: self.envelope(at),
            release_id: format!("{noms}/{date}"),
            person: self.person(noms),
            attributor: None,
            release_date: days_from_date(date),
            released_at: Some(at.timestamp_micros()),
            planned: false,
            reason,
            movement_code: self.info("nomisMovementReasonCode").map(str::to_owned),
            prison: self.info("prisonId").map(str::to_owned),
            need: None,
        }))
    }

    fn received(&self) -> Parsed {
        match self.info("reason") {
            Some("ADMISSION") => {}
            Some(other) => {
                return Parsed::Ignored(format!(
                    "reason {}: only an ADMISSION is a return to custody",
                    reason_name(other)
                ))
            }
            None => return Self::missing_reason(),
        }
        let (noms, at) = match self.movement() {
            Ok(m) => m,
            Err(rejected) => return rejected,
        };
        let code = self.info("nomisMovementReasonCode");
        let recall = code.is_some_and(|c| RECALL_CODES.contains(&c))
            || self.info("probableCause") == Some("RECALL");
        Parsed::one(SourceRecord::CustodyAdmission(wire::CustodyAdmission {
            envelope: self.envelope(at),
            person: self.person(noms),
            attributor: None,
            admitted_on: days_from_date(london_date(at)),
            kind: if recall {
                AdmissionKind::Recall
            } else {
                AdmissionKind::Admission
            },
            movement_code: code.map(str::to_owned),
            prison: self.info("prisonId").map(str::to_owned),
        }))
    }

    fn identity(
        &self,
        change: IdentityChange,
        kept: (&str, IdentifierKind),
        other: (&str, IdentifierKind),
    ) -> Parsed {
        let mut problems = Vec::new();
        let mut take = |(field, kind): (&str, IdentifierKind)| {
            let key = field.rsplit('.').next().unwrap_or(field);
            match self.info(key) {
                Some(v) => Some(wire::Identifier {
                    kind,
                    value: v.to_owned(),
                }),
                None => {
                    problems.push(FieldProblem::new(field, "is missing"));
                    None
                }
            }
        };
        let (kept, other) = (take(kept), take(other));
        let at = self.occurred_at(&mut problems);
        let (Some(kept), Some(other), Some(at)) = (kept, other, at) else {
            return Parsed::Rejected(problems);
        };
        let c = wire::IdentityChange {
            envelope: self.envelope(at),
            kept,
            other,
        };
        Parsed::one(match change {
            IdentityChange::Merged => SourceRecord::IdentityMerged(wire::IdentityMerged(c)),
            IdentityChange::Unmerged => SourceRecord::IdentityUnmerged(wire::IdentityUnmerged(c)),
        })
    }

    fn allocated(&self, service: &str) -> Parsed {
        let mut problems = Vec::new();
        let crn = self.required_crn(&mut problems);
        let at = self.occurred_at(&mut problems);
        let (Some(crn), Some(at)) = (crn, at) else {
            return Parsed::Rejected(problems);
        };
        Parsed::one(SourceRecord::ProbationAllocated(wire::ProbationAllocated {
            envelope: self.envelope(at),
            crn,
            allocation_id: self.info("allocationId").map(str::to_owned),
            probation_service: service.to_owned(),
        }))
    }

    fn prison_identifier_added(&self) -> Parsed {
        let mut problems = Vec::new();
        let crn = self.required_crn(&mut problems);
        let noms = self
            .reference("NOMS")
            .or_else(|| self.info("nomsNumber").map(str::to_owned));
        if noms.is_none() {
            problems.push(FieldProblem::new(
                "personReference.identifiers",
                "has no NOMS number",
            ));
        }
        let at = self.occurred_at(&mut problems);
        let (Some(crn), Some(noms), Some(at)) = (crn, noms, at) else {
            return Parsed::Rejected(problems);
        };
        Parsed::one(SourceRecord::IdentityLinked(wire::IdentityLinked(
            wire::IdentityChange {
                envelope: self.envelope(at),
                kept: wire::Identifier {
                    kind: IdentifierKind::Crn,
                    value: crn,
                },
                other: wire::Identifier {
                    kind: IdentifierKind::Noms,
                    value: noms,
                },
            },
        )))
    }
}

/// Where a validation error on a record made from an HMPPS event points in the event.
pub fn field_in_event(record_field: &str) -> &str {
    match record_field {
        "person.noms" => "additionalInformation.nomsNumber",
        "person.crn" => "personReference.identifiers[CRN]",
        "release_date" | "admitted_on" | "occurred_at" => "occurredAt",
        "prison" => "additionalInformation.prisonId",
        "movement_code" => "additionalInformation.nomisMovementReasonCode",
        "source" => "(credential)",
        other => other,
    }
}
