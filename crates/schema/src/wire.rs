//! Rust forms of the Avro records, field for field as in `schemas/*.avsc`. Dates are days since
//! 1970-01-01 (`date`), instants microseconds since the epoch (`timestamp-micros`). These types
//! carry unvalidated data; [`crate::convert`] validates it into domain types. Enums whose
//! symbols are exactly the domain's and need no fallback symbol are the domain's own types;
//! the others have an `UNKNOWN` or `OTHER` default that the domain does not.
//!
//! Its length is one struct per Avro record, generated where the records repeat a shape
//! (`source_records!`); each must match its schema field for field.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use continuity_domain::events::{AdmissionKind, ReleaseReason, WithdrawalReason};
pub use continuity_domain::Sex;

use crate::codec::{AvroRecord, RecordType};

/// Decoding of `$target` through a flat struct of the envelope's fields and the record's,
/// named `$target` as the Avro record is: schema-aware decoding checks the name. The flat
/// struct builds an `$inner` (the record itself, or the shape a wrapper holds).
macro_rules! flat_decoding {
    ($target:ident, $inner:ident { $( $(#[$fmeta:meta])* $field:ident : $ty:ty, )* }) => {
        const _: () = {
            mod flat {
                #[allow(clippy::wildcard_imports)]
                use super::*;

                #[derive(Deserialize)]
                pub struct $target {
                    #[serde(with = "uuid_text")]
                    pub(super) event_id: Uuid,
                    pub(super) occurred_at: i64,
                    pub(super) source: String,
                    pub(super) schema_version: i32,
                    $( $(#[$fmeta])* pub(super) $field: $ty, )*
                }
            }

            impl<'de> Deserialize<'de> for $target {
                #[allow(clippy::useless_conversion)]
                fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    let flat = flat::$target::deserialize(d)?;
                    Ok($inner {
                        envelope: Envelope {
                            event_id: flat.event_id,
                            occurred_at: flat.occurred_at,
                            source: flat.source,
                            schema_version: flat.schema_version,
                        },
                        $( $field: flat.$field, )*
                    }
                    .into())
                }
            }
        };
    };
}

/// A struct of [`Envelope`]'s fields first, then its own, that encodes as one flat Avro
/// record through a borrowed flat view; field attributes are serde's, for the flat views.
/// Not serde's `flatten`: it serialises a map, and schema-aware encoding (straight to bytes,
/// no intermediate `Value`) writes records from structs only; and it decodes by buffering
/// every field first.
macro_rules! flat_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            pub envelope: Envelope,
            $( pub $field: $ty, )*
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                #[derive(Serialize)]
                struct Flat<'a> {
                    #[serde(with = "uuid_text")]
                    event_id: &'a Uuid,
                    occurred_at: &'a i64,
                    source: &'a str,
                    schema_version: &'a i32,
                    $( $(#[$fmeta])* $field: &'a $ty, )*
                }
                Flat {
                    event_id: &self.envelope.event_id,
                    occurred_at: &self.envelope.occurred_at,
                    source: &self.envelope.source,
                    schema_version: &self.envelope.schema_version,
                    $( $field: &self.$field, )*
                }
                .serialize(s)
            }
        }
    };
}

/// Defines a record: a [`flat_struct!`] that also decodes from the Avro record of its name.
macro_rules! record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        flat_struct! {
            $(#[$meta])*
            pub struct $name {
                $( $(#[$fmeta])* pub $field: $ty, )*
            }
        }

        flat_decoding!($name, $name { $( $(#[$fmeta])* $field: $ty, )* });
    };
}

/// Fields every record carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique event id.
    #[serde(with = "uuid_text")]
    pub event_id: Uuid,
    /// When recorded at the source, microseconds since the epoch.
    pub occurred_at: i64,
    /// Sending organisation's code.
    pub source: String,
    /// Schema version.
    pub schema_version: i32,
}

/// Identifiers of a person.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct PersonIdentifiers {
    pub noms: Option<String>,
    pub crn: Option<String>,
    pub pnc: Option<String>,
    pub cro: Option<String>,
    pub nhs: Option<String>,
}

/// NDTMS attributor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Attributor {
    pub first_initial: String,
    pub surname_initial: String,
    pub date_of_birth: i32,
    pub sex: Sex,
}

/// Substance groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum Substance {
    Opiates,
    Crack,
    Cocaine,
    Alcohol,
    Cannabis,
    Benzodiazepines,
    Amphetamines,
    NewPsychoactive,
    Other,
}

/// A treatment need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct TreatmentNeed {
    pub local_authority: String,
    pub provider: Option<String>,
    pub substances: Vec<Substance>,
}

record! {
    /// `PrisonRelease` record.
    #[allow(missing_docs)]
    pub struct PrisonRelease {
        pub release_id: String,
        pub person: PersonIdentifiers,
        pub attributor: Option<Attributor>,
        pub release_date: i32,
        pub released_at: Option<i64>,
        pub planned: bool,
        pub reason: ReleaseReason,
        pub movement_code: Option<String>,
        pub prison: Option<String>,
        pub need: Option<TreatmentNeed>,
    }
}

record! {
    /// `ReleaseWithdrawn` record.
    #[allow(missing_docs)]
    pub struct ReleaseWithdrawn {
        pub release_id: String,
        pub reason: WithdrawalReason,
    }
}

record! {
    /// `CustodyAdmission` record.
    #[allow(missing_docs)]
    pub struct CustodyAdmission {
        pub person: PersonIdentifiers,
        pub attributor: Option<Attributor>,
        pub admitted_on: i32,
        pub kind: AdmissionKind,
        pub movement_code: Option<String>,
        pub prison: Option<String>,
    }
}

record! {
    /// `PersonDied` record.
    #[allow(missing_docs)]
    pub struct PersonDied {
        pub person: PersonIdentifiers,
        pub attributor: Option<Attributor>,
        pub died_on: i32,
    }
}

/// Identifier kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum IdentifierKind {
    Noms,
    Crn,
    Pnc,
    Cro,
    Nhs,
    Unknown,
}

/// One identifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Identifier {
    pub kind: IdentifierKind,
    pub value: String,
}

flat_struct! {
    /// `IdentityLinked`, `IdentityMerged` and `IdentityUnmerged` records share this shape;
    /// each decodes from its own record name.
    #[allow(missing_docs)]
    pub struct IdentityChange {
        pub kept: Identifier,
        pub other: Identifier,
    }
}

/// Referral origins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ReferralOrigin {
    Prison,
    Probation,
    Unknown,
}

record! {
    /// `Referral` record.
    #[allow(missing_docs)]
    pub struct Referral {
        pub referral_id: String,
        pub person: PersonIdentifiers,
        pub attributor: Option<Attributor>,
        pub referred_on: i32,
        pub origin: ReferralOrigin,
        pub expected_release: Option<i32>,
        pub need: TreatmentNeed,
    }
}

record! {
    /// `ProbationAllocated` record.
    #[allow(missing_docs)]
    pub struct ProbationAllocated {
        pub crn: String,
        pub allocation_id: Option<String>,
        pub probation_service: String,
    }
}

record! {
    /// `TreatmentStart` record.
    #[allow(missing_docs)]
    pub struct TreatmentStart {
        pub episode_id: String,
        pub provider: String,
        pub local_authority: String,
        pub person: PersonIdentifiers,
        pub attributor: Option<Attributor>,
        pub referral_date: Option<i32>,
        pub triage_date: Option<i32>,
        pub intervention_start: Option<i32>,
    }
}

/// Discharge reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum DischargeReason {
    Completed,
    DroppedOut,
    Transferred,
    Died,
    Incarcerated,
    Other,
}

record! {
    /// `TreatmentDischarge` record.
    #[allow(missing_docs)]
    pub struct TreatmentDischarge {
        pub episode_id: String,
        pub provider: String,
        pub discharged_on: i32,
        pub reason: DischargeReason,
    }
}

/// What happened to a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum CaseChange {
    Opened,
    Engaged,
    AtRisk,
    Overdue,
    Resolved,
    Excluded,
    Withdrawn,
    Updated,
}

/// A case's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum Outcome {
    Open,
    Engaged,
    NotEngaged,
    Excluded,
    Withdrawn,
}

/// Exclusion reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ExclusionReason {
    Died,
    Readmitted,
    TransferredSecure,
    Deported,
    ReleasedToHospital,
    ReleasedOutsideEngland,
    #[serde(rename = "UNDER_18")]
    Under18,
    Other,
}

/// How an engagement relates to the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum Timeliness {
    InWindow,
    ReportedLate,
    AlreadyInTreatment,
    Late,
    Other,
}

record! {
    /// `CaseEvent` record.
    #[allow(missing_docs)]
    pub struct CaseEvent {
        #[serde(with = "uuid_text")]
        pub case_id: Uuid,
        pub change: CaseChange,
        pub release_date: i32,
        pub last_window_day: i32,
        pub local_authority: String,
        pub prison: Option<String>,
        pub provider: Option<String>,
        pub outcome: Outcome,
        pub exclusion_reason: Option<ExclusionReason>,
        pub engagement_date: Option<i32>,
        pub timeliness: Option<Timeliness>,
    }
}

/// Flag kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum FlagKind {
    AtRisk,
    Overdue,
    Other,
}

/// Flag states: the Avro enum's symbols, which are the domain's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum FlagState {
    Raised,
    ResolvedEngaged,
    ResolvedExcluded,
    Withdrawn,
}

impl From<continuity_domain::FlagState> for FlagState {
    fn from(state: continuity_domain::FlagState) -> Self {
        use continuity_domain::FlagState as D;
        match state {
            D::Raised => FlagState::Raised,
            D::ResolvedEngaged => FlagState::ResolvedEngaged,
            D::ResolvedExcluded => FlagState::ResolvedExcluded,
            D::Withdrawn => FlagState::Withdrawn,
        }
    }
}

impl From<FlagState> for continuity_domain::FlagState {
    fn from(state: FlagState) -> Self {
        use continuity_domain::FlagState as D;
        match state {
            FlagState::Raised => D::Raised,
            FlagState::ResolvedEngaged => D::ResolvedEngaged,
            FlagState::ResolvedExcluded => D::ResolvedExcluded,
            FlagState::Withdrawn => D::Withdrawn,
        }
    }
}

impl FlagState {
    /// The state's code, as the domain writes it.
    pub fn code(self) -> &'static str {
        continuity_domain::FlagState::from(self).code()
    }
}

record! {
    /// `EngagementFlag` record.
    #[allow(missing_docs)]
    pub struct EngagementFlag {
        #[serde(with = "uuid_text")]
        pub flag_id: Uuid,
        #[serde(with = "uuid_text")]
        pub case_id: Uuid,
        pub kind: FlagKind,
        pub at_risk_day: Option<i32>,
        pub state: FlagState,
        pub due_at: i64,
        pub raised_at: i64,
        pub settled_at: Option<i64>,
        pub release_date: i32,
        pub local_authority: String,
        pub provider: Option<String>,
        pub notify: bool,
    }
}

/// Kinds of period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum PeriodKind {
    IsoWeek,
    Month,
    FinancialYear,
    #[serde(rename = "ROLLING_12_MONTHS")]
    Rolling12Months,
    Quarter,
    Other,
}

/// Breakdowns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum Breakdown {
    England,
    Region,
    LocalAuthority,
    Prison,
    Provider,
    Other,
}

/// Who a figure is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum Audience {
    Internal,
    Published,
}

/// Status of a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum FigureStatus {
    Provisional,
    Final,
    Revision,
}

record! {
    /// `ContinuityPerformance` record.
    #[allow(missing_docs)]
    pub struct ContinuityPerformance {
        #[serde(with = "uuid_text")]
        pub cohort_id: Uuid,
        pub period: String,
        pub period_kind: PeriodKind,
        pub period_start: i32,
        pub period_end: i32,
        pub breakdown: Breakdown,
        pub area_code: String,
        pub audience: Audience,
        pub finalised: Option<i64>,
        pub engaged: Option<i64>,
        pub rate: Option<f64>,
        pub lower: Option<f64>,
        pub upper: Option<f64>,
        pub open: Option<i64>,
        /// Ordered, so a figure encodes to the same bytes in every process.
        pub excluded: std::collections::BTreeMap<String, i64>,
        pub gap_to_ambition: Option<f64>,
        pub status: FigureStatus,
        pub revision: i32,
        pub suppressed: bool,
        pub change: Option<f64>,
    }
}

/// Dead-letter error kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ErrorKind {
    Undecodable,
    UnknownSchema,
    Invalid,
    Other,
}

record! {
    /// `DeadLetter` record.
    #[allow(missing_docs)]
    pub struct DeadLetter {
        pub original_topic: String,
        pub partition: i32,
        pub offset: i64,
        #[serde(with = "optional_bytes")]
        pub key: Option<Vec<u8>>,
        #[serde(with = "serde_bytes_vec")]
        pub payload: Vec<u8>,
        pub error_kind: ErrorKind,
        pub reason: String,
    }
}

/// Caseworker action kinds: the Avro enum's symbols, which are the domain's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ActionKind {
    Contacted,
    AppointmentBooked,
    ReReferred,
    UnableToContact,
    NotOurCase,
    Snoozed,
    Acknowledged,
    Other,
}

impl From<continuity_domain::ActionKind> for ActionKind {
    fn from(kind: continuity_domain::ActionKind) -> Self {
        use continuity_domain::ActionKind as D;
        match kind {
            D::Contacted => ActionKind::Contacted,
            D::AppointmentBooked => ActionKind::AppointmentBooked,
            D::ReReferred => ActionKind::ReReferred,
            D::UnableToContact => ActionKind::UnableToContact,
            D::NotOurCase => ActionKind::NotOurCase,
            D::Snoozed => ActionKind::Snoozed,
            D::Acknowledged => ActionKind::Acknowledged,
        }
    }
}

record! {
    /// `CaseworkerAction` record.
    #[allow(missing_docs)]
    pub struct CaseworkerAction {
        #[serde(with = "uuid_text")]
        pub case_id: Uuid,
        pub kind: ActionKind,
        pub appointment_on: Option<i32>,
        pub snoozed_until: Option<i32>,
    }
}

/// Avro `uuid` is a string; apache-avro's serializer is not human-readable, so `Uuid`'s own
/// serde form would be bytes.
mod uuid_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use uuid::Uuid;

    pub fn serialize<S: Serializer, U: std::borrow::Borrow<Uuid>>(
        v: &U,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.borrow().hyphenated().to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Uuid, D::Error> {
        let text = String::deserialize(d)?;
        Uuid::parse_str(&text).map_err(serde::de::Error::custom)
    }
}

/// Avro `bytes` need serde's bytes form, not a sequence of integers.
mod serde_bytes_vec {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer, B: AsRef<[u8]> + ?Sized>(
        v: &B,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v.as_ref())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_bytes(V)
    }
}

mod optional_bytes {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer, B: std::borrow::Borrow<Option<Vec<u8>>>>(
        v: &B,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v.borrow() {
            Some(b) => s.serialize_some(&Bytes(b)),
            None => s.serialize_none(),
        }
    }

    struct Bytes<'a>(&'a [u8]);
    impl serde::Serialize for Bytes<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Option<Vec<u8>>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("null or bytes")
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                super::serde_bytes_vec::deserialize(d).map(Some)
            }
        }
        d.deserialize_option(V)
    }
}

macro_rules! avro_record {
    ($($ty:ty => $record:ident),* $(,)?) => {
        $(impl AvroRecord for $ty {
            const RECORD: RecordType = RecordType::$record;
        })*
    };
}

avro_record! {
    PrisonRelease => PrisonRelease,
    ReleaseWithdrawn => ReleaseWithdrawn,
    CustodyAdmission => CustodyAdmission,
    PersonDied => PersonDied,
    Referral => Referral,
    TreatmentStart => TreatmentStart,
    TreatmentDischarge => TreatmentDischarge,
    ProbationAllocated => ProbationAllocated,
    CaseEvent => CaseEvent,
    EngagementFlag => EngagementFlag,
    ContinuityPerformance => ContinuityPerformance,
    DeadLetter => DeadLetter,
    CaseworkerAction => CaseworkerAction,
}

/// The three identity records share one Rust shape; these wrappers name which one.
macro_rules! identity_record {
    ($($name:ident),*) => {
        $(
            #[doc = concat!("`", stringify!($name), "` record.")]
            #[derive(Debug, Clone, PartialEq)]
            pub struct $name(pub IdentityChange);

            impl From<IdentityChange> for $name {
                fn from(change: IdentityChange) -> Self {
                    $name(change)
                }
            }

            flat_decoding!($name, IdentityChange { kept: Identifier, other: Identifier, });

            impl Serialize for $name {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    self.0.serialize(s)
                }
            }

            impl AvroRecord for $name {
                const RECORD: RecordType = RecordType::$name;
            }
        )*
    };
}

identity_record!(IdentityLinked, IdentityMerged, IdentityUnmerged);

/// A source record's envelope, whichever record it is.
pub trait Enveloped {
    /// The envelope, to set the id, time and source.
    fn envelope_mut(&mut self) -> &mut Envelope;
}

macro_rules! enveloped {
    ($($name:ident $(. $inner:tt)?),+ $(,)?) => {
        $(impl Enveloped for $name {
            fn envelope_mut(&mut self) -> &mut Envelope {
                &mut self $(. $inner)? .envelope
            }
        })+
    };
}

enveloped!(
    PrisonRelease,
    ReleaseWithdrawn,
    CustodyAdmission,
    PersonDied,
    IdentityLinked.0,
    IdentityMerged.0,
    IdentityUnmerged.0,
    Referral,
    TreatmentStart,
    TreatmentDischarge,
    ProbationAllocated,
);

/// The source record kinds, one line each: each name is its `RecordType` variant, its wire
/// struct here and its `SourceRecord` variant. Every match over source records is generated
/// from this list.
macro_rules! source_records {
    ($($name:ident),+ $(,)?) => {
        /// Any source record in its wire form: what a source sends, before validation.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(missing_docs)]
        pub enum SourceRecord {
            $($name($name)),+
        }

        impl SourceRecord {
            /// The record types of source records.
            pub const TYPES: [RecordType; [$(stringify!($name)),+].len()] =
                [$(RecordType::$name),+];

            /// The record type.
            pub fn record_type(&self) -> RecordType {
                match self {
                    $(SourceRecord::$name(_) => RecordType::$name),+
                }
            }

            /// The envelope, to set the id, time and source.
            pub fn envelope_mut(&mut self) -> &mut Envelope {
                match self {
                    $(SourceRecord::$name(r) => r.envelope_mut()),+
                }
            }

            /// Encode as a single-object message.
            pub fn to_message(&self) -> Result<Vec<u8>, crate::CodecError> {
                match self {
                    $(SourceRecord::$name(r) => r.to_message()),+
                }
            }

            /// Decode a single-object message holding a source record; `Ok(None)` for an
            /// output record type.
            pub fn from_message(message: &[u8]) -> Result<Option<Self>, crate::CodecError> {
                let record = crate::Registry::get().writer_of(message)?.record;
                $(if record == RecordType::$name {
                    return Ok(Some(SourceRecord::$name(AvroRecord::from_message(message)?)));
                })+
                Ok(None)
            }
        }
    };
}

source_records!(
    PrisonRelease,
    ReleaseWithdrawn,
    CustodyAdmission,
    PersonDied,
    IdentityLinked,
    IdentityMerged,
    IdentityUnmerged,
    Referral,
    TreatmentStart,
    TreatmentDischarge,
    ProbationAllocated,
);
