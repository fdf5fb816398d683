//! Source events as the domain sees them: validated, typed, free of wire-format detail. The
//! schema crate turns Avro records into these; the rules in [`crate::case`] consume them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    Attributor, Identifier, LocalAuthorityCode, OrganisationCode, PrisonCode, ProviderCode,
};

/// The id of a source event, unique across all sources (a UUID from the source, or derived
/// deterministically from the source and its natural key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventId(pub Uuid);

/// What every source event carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    /// The event's id; the pipeline applies each id once.
    pub event_id: EventId,
    /// When the source recorded the fact. Used to decide whether an engagement was reported
    /// after the flag was due, and which of two versions of a record is newer.
    pub occurred_at: DateTime<Utc>,
    /// The sending organisation.
    pub source: OrganisationCode,
}

/// How the person in a record is identified: any validated identifiers, and the attributor
/// where the source has it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PersonRef {
    /// Validated identifiers (NOMS, CRN, PNC, CRO, NHS).
    pub identifiers: Vec<Identifier>,
    /// Initials, date of birth and sex.
    pub attributor: Option<Attributor>,
}

/// The reason a prison gives for a movement out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReleaseReason {
    /// Released; only this reason can start a case.
    Released,
    /// Transferred to another prison.
    Transferred,
    /// Temporary absence (ROTL).
    TemporaryAbsenceRelease,
    /// Released to hospital.
    ReleasedToHospital,
    /// Sent to court.
    SentToCourt,
    /// Anything else.
    Unknown,
}

/// The treatment need a referral (or a release that carries it) records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreatmentNeed {
    /// The upper-tier local authority the person is going to.
    pub local_authority: LocalAuthorityCode,
    /// The community provider referred to, when known.
    pub provider: Option<ProviderCode>,
}

/// A release movement out of prison, actual or planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrisonRelease {
    /// Common fields.
    pub meta: EventMeta,
    /// The release's natural key (e.g. NOMS number, prison and movement date), shared by
    /// duplicates and corrections of the same movement.
    pub release_id: String,
    /// Who.
    pub person: PersonRef,
    /// The local date of the movement (Europe/London).
    pub release_date: NaiveDate,
    /// True for a planned release not yet happened; planned releases open no case.
    pub planned: bool,
    /// The prison's reason.
    pub reason: ReleaseReason,
    /// The NOMIS movement reason code (`CR`, `HD`, `DEC`, ...).
    pub movement_code: Option<String>,
    /// The releasing prison, when the source gives it.
    pub prison: Option<PrisonCode>,
    /// The need, when the source knows it (a prison healthcare discharge).
    pub need: Option<TreatmentNeed>,
}

/// Why a release was withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WithdrawalReason {
    /// The release was recorded in error.
    RecordedInError,
    /// The planned release was cancelled.
    Cancelled,
}

/// A release recorded in error or cancelled: its case is withdrawn entirely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseWithdrawn {
    /// Common fields.
    pub meta: EventMeta,
    /// The withdrawn release's natural key.
    pub release_id: String,
    /// Why.
    pub reason: WithdrawalReason,
}

/// The kind of admission to custody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AdmissionKind {
    /// Recall on licence.
    Recall,
    /// Remand or a new sentence.
    Admission,
    /// Transfer to another secure setting (secure hospital, immigration removal centre).
    SecureTransfer,
}

/// A (re-)admission to custody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustodyAdmission {
    /// Common fields.
    pub meta: EventMeta,
    /// Who.
    pub person: PersonRef,
    /// Local date of the admission.
    pub admitted_on: NaiveDate,
    /// What kind.
    pub kind: AdmissionKind,
}

/// A person's death.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonDied {
    /// Common fields.
    pub meta: EventMeta,
    /// Who.
    pub person: PersonRef,
    /// Date of death.
    pub died_on: NaiveDate,
}

/// Two identifiers of one person (e.g. a CRN and a NOMS number), merged records, or an undone
/// merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityChange {
    /// Common fields.
    pub meta: EventMeta,
    /// The identifier kept (or the first of a link).
    pub kept: Identifier,
    /// The identifier retired by a merge (or the second of a link).
    pub other: Identifier,
}

/// Where a referral came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralOrigin {
    /// The prison's substance-misuse service.
    Prison,
    /// Probation (a requirement or licence condition).
    Probation,
}

/// A referral to community treatment: it records the need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referral {
    /// Common fields.
    pub meta: EventMeta,
    /// The source's referral id (its natural key).
    pub referral_id: String,
    /// Who.
    pub person: PersonRef,
    /// Date the referral was made.
    pub referred_on: NaiveDate,
    /// Where it came from.
    pub origin: ReferralOrigin,
    /// Expected release date, when made before release.
    pub expected_release: Option<NaiveDate>,
    /// Destination authority and provider.
    pub need: TreatmentNeed,
}

/// A person on probation allocated to a community manager (HMPPS
/// `person.community.manager.allocated`): the probation service responsible for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbationAllocation {
    /// Common fields.
    pub meta: EventMeta,
    /// Who: the CRN.
    pub person: PersonRef,
    /// The allocation's id at the source, when it has one.
    pub allocation_id: Option<String>,
    /// The probation service the person is allocated in (HMPPS's event does not say: the
    /// sender's configuration does).
    pub probation_service: OrganisationCode,
}

/// A community treatment episode's start (triage and/or first intervention).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreatmentStart {
    /// Common fields.
    pub meta: EventMeta,
    /// The provider's episode id; with the provider, the natural key.
    pub episode_id: String,
    /// The provider.
    pub provider: ProviderCode,
    /// The local authority of the provider's record.
    pub local_authority: LocalAuthorityCode,
    /// Who.
    pub person: PersonRef,
    /// Triage date.
    pub triage_date: Option<NaiveDate>,
    /// First intervention (modality) start.
    pub intervention_start: Option<NaiveDate>,
}

/// A community treatment episode's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreatmentDischarge {
    /// Common fields.
    pub meta: EventMeta,
    /// The episode ended.
    pub episode_id: String,
    /// The provider.
    pub provider: ProviderCode,
    /// Discharge date.
    pub discharged_on: NaiveDate,
}

/// Any source event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEvent {
    /// A release movement.
    Release(PrisonRelease),
    /// A release withdrawn.
    ReleaseWithdrawn(ReleaseWithdrawn),
    /// An admission to custody.
    CustodyAdmission(CustodyAdmission),
    /// A death.
    PersonDied(PersonDied),
    /// Two identifiers of one person.
    IdentityLinked(IdentityChange),
    /// Two records merged.
    IdentityMerged(IdentityChange),
    /// A merge undone.
    IdentityUnmerged(IdentityChange),
    /// A referral recording the need.
    Referral(Referral),
    /// A treatment episode start.
    TreatmentStart(TreatmentStart),
    /// A person allocated to a probation service.
    ProbationAllocated(ProbationAllocation),
    /// A treatment episode end.
    TreatmentDischarge(TreatmentDischarge),
}

impl SourceEvent {
    /// The common fields.
    pub fn meta(&self) -> &EventMeta {
        match self {
            SourceEvent::Release(e) => &e.meta,
            SourceEvent::ReleaseWithdrawn(e) => &e.meta,
            SourceEvent::CustodyAdmission(e) => &e.meta,
            SourceEvent::PersonDied(e) => &e.meta,
            SourceEvent::IdentityLinked(e)
            | SourceEvent::IdentityMerged(e)
            | SourceEvent::IdentityUnmerged(e) => &e.meta,
            SourceEvent::Referral(e) => &e.meta,
            SourceEvent::TreatmentStart(e) => &e.meta,
            SourceEvent::TreatmentDischarge(e) => &e.meta,
            SourceEvent::ProbationAllocated(e) => &e.meta,
        }
    }

    /// The event's id.
    pub fn id(&self) -> EventId {
        self.meta().event_id
    }

    /// A short name of the kind, for logs and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceEvent::Release(_) => "release",
            SourceEvent::ReleaseWithdrawn(_) => "release_withdrawn",
            SourceEvent::CustodyAdmission(_) => "custody_admission",
            SourceEvent::PersonDied(_) => "person_died",
            SourceEvent::IdentityLinked(_) => "identity_linked",
            SourceEvent::IdentityMerged(_) => "identity_merged",
            SourceEvent::IdentityUnmerged(_) => "identity_unmerged",
            SourceEvent::Referral(_) => "referral",
            SourceEvent::TreatmentStart(_) => "treatment_start",
            SourceEvent::TreatmentDischarge(_) => "treatment_discharge",
            SourceEvent::ProbationAllocated(_) => "probation_allocated",
        }
    }

    /// The person the event is about, for events that name one.
    pub fn person(&self) -> Option<&PersonRef> {
        match self {
            SourceEvent::Release(e) => Some(&e.person),
            SourceEvent::CustodyAdmission(e) => Some(&e.person),
            SourceEvent::PersonDied(e) => Some(&e.person),
            SourceEvent::Referral(e) => Some(&e.person),
            SourceEvent::TreatmentStart(e) => Some(&e.person),
            SourceEvent::ProbationAllocated(e) => Some(&e.person),
            _ => None,
        }
    }
}
