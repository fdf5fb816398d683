//! One row of a request, from parsing to its answer. Every adapter (JSON, HMPPS, CSV) turns its
//! input into [`Parsed`] rows; [`admit`] validates each record with the schema's rules (the same
//! ones the matcher applies), checks the sender may send it, fixes its id and encodes it. A row
//! is accepted, ignored with a reason, or rejected naming each field: never dropped silently.

use chrono::NaiveDate;
use continuity_domain::KeyedHasher;
use continuity_schema::{validate_source_record, RecordType, SourceRecord};
use continuity_stream::{partition_key, Topic};
use serde::Serialize;
use uuid::Uuid;

use crate::sources::Principal;

/// Namespace of derived event ids: v5(namespace, encoded record with a nil id and zero time).
pub const DERIVED_ID_NAMESPACE: Uuid = Uuid::from_u128(0x5e7f_1c0a_8d2b_4f3e_9a61_0c4d_7b28_e915);

/// One field at fault and what is wrong with it (never the value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    /// Path of the field in the sender's terms (`person.noms`, `occurredAt`, `DOB`).
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

impl FieldProblem {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        FieldProblem {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// What an adapter made of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// The row's records (a treatment extract row can hold a start and a discharge); an id is
    /// derived where it is `Uuid::nil()`.
    Records(Vec<SourceRecord>),
    /// Not for the pipeline, with the reason.
    Ignored(String),
    /// Unusable, naming each field.
    Rejected(Vec<FieldProblem>),
}

impl Parsed {
    /// A row of one record.
    pub fn one(record: SourceRecord) -> Self {
        Parsed::Records(vec![record])
    }
}

/// A record ready to send.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// Its topic.
    pub topic: Topic,
    /// The message key (a keyed hash; no identifier in clear).
    pub key: Vec<u8>,
    /// The encoded message.
    pub payload: Vec<u8>,
    /// The event id.
    pub id: Uuid,
    /// The record type.
    pub record: RecordType,
}

/// An event accepted in a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AcceptedEvent {
    /// The record type (`PrisonRelease`).
    pub kind: String,
    /// Its id: resubmitting the same content gives the same id, and the pipeline applies
    /// each id once.
    pub id: Uuid,
}

impl AcceptedEvent {
    /// What the sender is told of an admitted record.
    pub fn of(admitted: &Admitted) -> Self {
        AcceptedEvent {
            kind: record_name(admitted.record),
            id: admitted.id,
        }
    }
}

/// A record type's name in answers, metric labels and the audit trail (`PrisonRelease`).
pub fn record_name(record: RecordType) -> String {
    record.name().to_owned()
}

/// The answer for one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RowResult {
    /// Written to the broker and acknowledged.
    Accepted {
        /// The events it produced.
        events: Vec<AcceptedEvent>,
        /// When the row was recorded and where that came from, for a treatment extract's row.
        #[serde(skip_serializing_if = "Option::is_none")]
        recorded: Option<crate::ndtms::Recorded>,
    },
    /// Not for the pipeline.
    Ignored {
        /// Why.
        reason: String,
    },
    /// Invalid.
    Rejected {
        /// Each field at fault.
        errors: Vec<FieldProblem>,
    },
    /// Valid, but the sender may not send it.
    Forbidden {
        /// Why.
        detail: String,
    },
}

impl RowResult {
    /// Every result's name.
    pub const CODES: [&'static str; 4] = ["accepted", "ignored", "rejected", "forbidden"];

    /// The result's name, as in the answer's `status` and the `result` metric label.
    pub fn code(&self) -> &'static str {
        match self {
            RowResult::Accepted { .. } => "accepted",
            RowResult::Ignored { .. } => "ignored",
            RowResult::Rejected { .. } => "rejected",
            RowResult::Forbidden { .. } => "forbidden",
        }
    }
}

/// What admission decided for one row: records to send, or the row's final answer.
pub enum Decision {
    /// Send these; the row is accepted once the broker acknowledges them.
    Send(Vec<Admitted>),
    /// The row's answer, with nothing to send.
    Done(RowResult),
}

/// Validate, authorise, identify and encode a parsed row. `field_name` maps a record field
/// path to the sender's name for it.
pub fn admit(
    parsed: Parsed,
    principal: &Principal,
    today: NaiveDate,
    hasher: &KeyedHasher,
    field_name: &dyn Fn(&str) -> String,
) -> Decision {
    let records = match parsed {
        Parsed::Records(rs) => rs,
        Parsed::Ignored(reason) => return Decision::Done(RowResult::Ignored { reason }),
        Parsed::Rejected(errors) => return Decision::Done(RowResult::Rejected { errors }),
    };
    let mut out = Vec::with_capacity(records.len());
    for mut record in records {
        let kind = record.record_type();
        if !principal.role.may_send(kind) {
            return Decision::Done(RowResult::Forbidden {
                detail: format!(
                    "a {} source may not send {kind:?} records",
                    principal.role.name()
                ),
            });
        }
        let event = match validate_source_record(&record, today) {
            Ok(e) => e,
            Err(invalid) => {
                return Decision::Done(RowResult::Rejected {
                    errors: invalid
                        .errors
                        .into_iter()
                        .map(|e| FieldProblem::new(field_name(&e.field), e.problem))
                        .collect(),
                })
            }
        };
        if let Err(detail) = principal.authorise(&event) {
            return Decision::Done(RowResult::Forbidden { detail });
        }
        if record.envelope_mut().event_id.is_nil() {
            let id = derived_id(&record);
            record.envelope_mut().event_id = id;
        }
        let id = record.envelope_mut().event_id;
        let Some(topic) = Topic::for_record(kind) else {
            return Decision::Done(RowResult::Rejected {
                errors: vec![FieldProblem::new("(record)", "is not a source record")],
            });
        };
        let payload = match record.to_message() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(record = ?kind, error = %e, "a validated record did not encode");
                return Decision::Done(RowResult::Rejected {
                    errors: vec![FieldProblem::new(
                        "(record)",
                        "could not be encoded; report this to the operators",
                    )],
                });
            }
        };
        out.push(Admitted {
            topic,
            key: partition_key(&event, hasher),
            payload,
            id,
            record: kind,
        });
    }
    Decision::Send(out)
}

/// The id of a record sent without one: a hash of the sender and the content, without the
/// time of receipt, so the same content resubmitted gets the same id and creates nothing new.
pub fn derived_id(record: &SourceRecord) -> Uuid {
    let mut canonical = record.clone();
    let envelope = canonical.envelope_mut();
    envelope.event_id = Uuid::nil();
    envelope.occurred_at = 0;
    match canonical.to_message() {
        Ok(bytes) => Uuid::new_v5(&DERIVED_ID_NAMESPACE, &bytes),
        // Unreachable for a validated record; a random id is safe (never a false duplicate).
        Err(_) => Uuid::new_v4(),
    }
}
