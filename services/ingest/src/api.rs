//! The JSON form of each source event kind, as sources send it to `POST /v1/events/{kind}`.
//! Field names are the Avro schema's; dates are `YYYY-MM-DD` (or the UK forms), instants
//! RFC 3339. `event_id` and `occurred_at` are optional: the id is then derived from the source
//! and the record's content, the time is the time of receipt. `source` is never sent: it is
//! the authenticated organisation. Unknown fields are refused, so a misspelt field is an
//! error, not a silently missing value. The reverse direction (wire to JSON) lets the
//! `continuity` command send sample data as a source would.

use chrono::{DateTime, NaiveDate, Utc};
use continuity_schema::wire::{
    self, AdmissionKind, DischargeReason, ReferralOrigin, ReleaseReason, Sex, SourceRecord,
    Substance, WithdrawalReason,
};
use continuity_schema::{date_from_days, days_from_date, RecordType};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

use crate::time::{parse_date, parse_instant};

/// The kinds of event `POST /v1/events/{kind}` takes, by path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `releases`: release movements (`PrisonRelease`).
    Releases,
    /// `release-withdrawals`: releases recorded in error or cancelled.
    ReleaseWithdrawals,
    /// `admissions`: admissions to custody.
    Admissions,
    /// `deaths`.
    Deaths,
    /// `identity-links`: two identifiers of one person.
    IdentityLinks,
    /// `identity-merges`.
    IdentityMerges,
    /// `identity-unmerges`.
    IdentityUnmerges,
    /// `referrals`: referrals on release, recording the need.
    Referrals,
    /// `treatment-starts`.
    TreatmentStarts,
    /// `treatment-discharges`.
    TreatmentDischarges,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 10] = [
        EventKind::Releases,
        EventKind::ReleaseWithdrawals,
        EventKind::Admissions,
        EventKind::Deaths,
        EventKind::IdentityLinks,
        EventKind::IdentityMerges,
        EventKind::IdentityUnmerges,
        EventKind::Referrals,
        EventKind::TreatmentStarts,
        EventKind::TreatmentDischarges,
    ];

    /// The path segment.
    pub fn path(self) -> &'static str {
        match self {
            EventKind::Releases => "releases",
            EventKind::ReleaseWithdrawals => "release-withdrawals",
            EventKind::Admissions => "admissions",
            EventKind::Deaths => "deaths",
            EventKind::IdentityLinks => "identity-links",
            EventKind::IdentityMerges => "identity-merges",
            EventKind::IdentityUnmerges => "identity-unmerges",
            EventKind::Referrals => "referrals",
            EventKind::TreatmentStarts => "treatment-starts",
            EventKind::TreatmentDischarges => "treatment-discharges",
        }
    }

    /// The kind for a path segment.
    pub fn from_path(segment: &str) -> Option<EventKind> {
        Self::ALL.into_iter().find(|k| k.path() == segment)
    }

    /// The record type it produces.
    pub fn record(self) -> RecordType {
        match self {
            EventKind::Releases => RecordType::PrisonRelease,
            EventKind::ReleaseWithdrawals => RecordType::ReleaseWithdrawn,
            EventKind::Admissions => RecordType::CustodyAdmission,
            EventKind::Deaths => RecordType::PersonDied,
            EventKind::IdentityLinks => RecordType::IdentityLinked,
            EventKind::IdentityMerges => RecordType::IdentityMerged,
            EventKind::IdentityUnmerges => RecordType::IdentityUnmerged,
            EventKind::Referrals => RecordType::Referral,
            EventKind::TreatmentStarts => RecordType::TreatmentStart,
            EventKind::TreatmentDischarges => RecordType::TreatmentDischarge,
        }
    }

    /// Parse one JSON object of this kind into a wire record. `envelope` supplies the source
    /// and the defaults for the id and time. The error names the field (`person.noms`) and the
    /// problem, never the value.
    pub fn parse(self, json: &[u8], envelope: wire::Envelope) -> Result<SourceRecord, JsonError> {
        let value: Value = serde_json::from_slice(json).map_err(|e| JsonError::syntax(&e))?;
        self.parse_value(&value, envelope)
    }

    /// [`EventKind::parse`] for a document already parsed (a row of a batch).
    pub fn parse_value(
        self,
        json: &Value,
        envelope: wire::Envelope,
    ) -> Result<SourceRecord, JsonError> {
        fn read<'a, T: Deserialize<'a>>(json: &'a Value) -> Result<T, JsonError> {
            serde_path_to_error::deserialize(json).map_err(JsonError::from)
        }
        macro_rules! record {
            ($json:ty, $variant:expr) => {{
                let j: $json = read(json)?;
                ($variant)(j.into_wire(envelope))
            }};
        }
        Ok(match self {
            EventKind::Releases => record!(Release, SourceRecord::PrisonRelease),
            EventKind::ReleaseWithdrawals => {
                record!(Withdrawal, SourceRecord::ReleaseWithdrawn)
            }
            EventKind::Admissions => record!(Admission, SourceRecord::CustodyAdmission),
            EventKind::Deaths => record!(Death, SourceRecord::PersonDied),
            EventKind::IdentityLinks => record!(IdentityChange, |c| {
                SourceRecord::IdentityLinked(wire::IdentityLinked(c))
            }),
            EventKind::IdentityMerges => record!(IdentityChange, |c| {
                SourceRecord::IdentityMerged(wire::IdentityMerged(c))
            }),
            EventKind::IdentityUnmerges => record!(IdentityChange, |c| {
                SourceRecord::IdentityUnmerged(wire::IdentityUnmerged(c))
            }),
            EventKind::Referrals => record!(Referral, SourceRecord::Referral),
            EventKind::TreatmentStarts => record!(TreatmentStart, SourceRecord::TreatmentStart),
            EventKind::TreatmentDischarges => {
                record!(TreatmentDischarge, SourceRecord::TreatmentDischarge)
            }
        })
    }
}

/// The JSON form of a wire record, with its kind: what a source would send.
pub fn to_json(record: &SourceRecord) -> Result<(EventKind, Value), JsonFormError> {
    fn value<T: Serialize>(t: Result<T, JsonFormError>) -> Result<Value, JsonFormError> {
        Ok(serde_json::to_value(t?)?)
    }
    Ok(match record {
        SourceRecord::PrisonRelease(w) => (EventKind::Releases, value(Release::from_wire(w))?),
        SourceRecord::ReleaseWithdrawn(w) => (
            EventKind::ReleaseWithdrawals,
            value(Withdrawal::from_wire(w))?,
        ),
        SourceRecord::CustodyAdmission(w) => {
            (EventKind::Admissions, value(Admission::from_wire(w))?)
        }
        SourceRecord::PersonDied(w) => (EventKind::Deaths, value(Death::from_wire(w))?),
        SourceRecord::IdentityLinked(w) => (
            EventKind::IdentityLinks,
            value(IdentityChange::from_wire(&w.0))?,
        ),
        SourceRecord::IdentityMerged(w) => (
            EventKind::IdentityMerges,
            value(IdentityChange::from_wire(&w.0))?,
        ),
        SourceRecord::IdentityUnmerged(w) => (
            EventKind::IdentityUnmerges,
            value(IdentityChange::from_wire(&w.0))?,
        ),
        SourceRecord::Referral(w) => (EventKind::Referrals, value(Referral::from_wire(w))?),
        SourceRecord::TreatmentStart(w) => (
            EventKind::TreatmentStarts,
            value(TreatmentStart::from_wire(w))?,
        ),
        SourceRecord::TreatmentDischarge(w) => (
            EventKind::TreatmentDischarges,
            value(TreatmentDischarge::from_wire(w))?,
        ),
    })
}

/// A JSON body that does not parse into its record: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// The field's path (`person.noms`), or `(body)` for a syntax error.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

impl JsonError {
    fn syntax(e: &serde_json::Error) -> Self {
        JsonError {
            field: "(body)".into(),
            problem: format!(
                "is not valid JSON ({} at line {} column {})",
                category(e),
                e.line(),
                e.column()
            ),
        }
    }
}

fn category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "wrong type",
        serde_json::error::Category::Eof => "unexpected end",
    }
}

impl From<serde_path_to_error::Error<serde_json::Error>> for JsonError {
    fn from(e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if !inner.is_data() {
            return JsonError::syntax(&inner);
        }
        // serde's data errors name the expected type or the unknown field, not the value,
        // except "invalid value: string \"...\"": keep only what follows the value.
        let text = inner.to_string();
        let text = text.split(" at line ").next().unwrap_or_default();
        let problem = if text.starts_with("unknown field") {
            match text.split_once(", expected ") {
                Some((_, expected)) => format!("is not a field here: expected {expected}"),
                None => "is not a field here".to_owned(),
            }
        } else if text.starts_with("unknown variant") {
            match text.split_once(", expected ") {
                Some((_, expected)) => format!("is not an allowed value: expected {expected}"),
                None => "is not an allowed value".to_owned(),
            }
        } else if text.starts_with("invalid value") || text.starts_with("invalid type") {
            match text.split_once(", expected ") {
                Some((_, expected)) => format!("has the wrong type or value: expected {expected}"),
                None => "has the wrong type or value".to_owned(),
            }
        } else {
            text.to_owned()
        };
        JsonError {
            field: if path == "." { "(body)".into() } else { path },
            problem,
        }
    }
}

/// A calendar date: `YYYY-MM-DD` out, any UK form in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date(pub NaiveDate);

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.format("%Y-%m-%d"))
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_date(&text)
            .map(Date)
            .map_err(serde::de::Error::custom)
    }
}

/// An instant: RFC 3339 out, any HMPPS form in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant(pub DateTime<Utc>);

impl Serialize for Instant {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    }
}

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_instant(&text)
            .map(Instant)
            .map_err(serde::de::Error::custom)
    }
}

/// Between a JSON field and its wire form.
trait ToWire: Sized {
    type Wire;
    fn to_wire(self) -> Self::Wire;
    /// Fails only for a value the JSON form cannot hold (a date outside chrono's range).
    fn from_wire(w: &Self::Wire) -> Result<Self, JsonFormError>;
}

/// Why a wire record has no JSON form.
#[derive(Debug, thiserror::Error)]
pub enum JsonFormError {
    /// A date or instant outside the range the JSON form's types hold.
    #[error("{0} is outside the range of dates the JSON form can hold")]
    OutOfRange(&'static str),
    /// Serialising the JSON form failed (a defect).
    #[error("the JSON form could not be written: {0}")]
    Json(#[from] serde_json::Error),
}

macro_rules! same_on_the_wire {
    ($($t:ty),*) => {$(
        impl ToWire for $t {
            type Wire = $t;
            fn to_wire(self) -> $t {
                self
            }
            fn from_wire(w: &$t) -> Result<Self, JsonFormError> {
                Ok(w.clone())
            }
        }
    )*};
}

same_on_the_wire!(
    String,
    bool,
    ReleaseReason,
    WithdrawalReason,
    AdmissionKind,
    ReferralOrigin,
    DischargeReason,
    wire::Identifier
);

impl ToWire for Date {
    type Wire = i32;
    fn to_wire(self) -> i32 {
        days_from_date(self.0)
    }
    fn from_wire(w: &i32) -> Result<Self, JsonFormError> {
        date_from_days(*w)
            .map(Date)
            .ok_or(JsonFormError::OutOfRange("a date"))
    }
}

impl ToWire for Instant {
    type Wire = i64;
    fn to_wire(self) -> i64 {
        self.0.timestamp_micros()
    }
    fn from_wire(w: &i64) -> Result<Self, JsonFormError> {
        DateTime::from_timestamp_micros(*w)
            .map(Instant)
            .ok_or(JsonFormError::OutOfRange("an instant"))
    }
}

impl<T: ToWire> ToWire for Option<T> {
    type Wire = Option<T::Wire>;
    fn to_wire(self) -> Self::Wire {
        self.map(T::to_wire)
    }
    fn from_wire(w: &Self::Wire) -> Result<Self, JsonFormError> {
        w.as_ref().map(T::from_wire).transpose()
    }
}

/// Identifiers of a person; each optional, at least one (or an attributor) needed to match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Person {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noms: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pnc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cro: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nhs: Option<String>,
}

impl ToWire for Person {
    type Wire = wire::PersonIdentifiers;
    fn to_wire(self) -> Self::Wire {
        wire::PersonIdentifiers {
            noms: self.noms,
            crn: self.crn,
            pnc: self.pnc,
            cro: self.cro,
            nhs: self.nhs,
        }
    }
    fn from_wire(w: &Self::Wire) -> Result<Self, JsonFormError> {
        Ok(Person {
            noms: w.noms.clone(),
            crn: w.crn.clone(),
            pnc: w.pnc.clone(),
            cro: w.cro.clone(),
            nhs: w.nhs.clone(),
        })
    }
}

/// The NDTMS attributor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Attributor {
    pub first_initial: String,
    pub surname_initial: String,
    pub date_of_birth: Date,
    pub sex: Sex,
}

impl ToWire for Attributor {
    type Wire = wire::Attributor;
    fn to_wire(self) -> Self::Wire {
        wire::Attributor {
            first_initial: self.first_initial,
            surname_initial: self.surname_initial,
            date_of_birth: days_from_date(self.date_of_birth.0),
            sex: self.sex,
        }
    }
    fn from_wire(w: &Self::Wire) -> Result<Self, JsonFormError> {
        Ok(Attributor {
            first_initial: w.first_initial.clone(),
            surname_initial: w.surname_initial.clone(),
            date_of_birth: Date::from_wire(&w.date_of_birth)?,
            sex: w.sex,
        })
    }
}

/// The treatment need: where the person is going and to whom they are referred.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Need {
    pub local_authority: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub substances: Vec<Substance>,
}

impl ToWire for Need {
    type Wire = wire::TreatmentNeed;
    fn to_wire(self) -> Self::Wire {
        wire::TreatmentNeed {
            local_authority: self.local_authority,
            provider: self.provider,
            substances: self.substances,
        }
    }
    fn from_wire(w: &Self::Wire) -> Result<Self, JsonFormError> {
        Ok(Need {
            local_authority: w.local_authority.clone(),
            provider: w.provider.clone(),
            substances: w.substances.clone(),
        })
    }
}

/// Defines the JSON form of a record: the optional id and time, then the record's own fields,
/// each converted to and from its wire form.
macro_rules! json_record {
    (
        $(#[$meta:meta])*
        $name:ident => $wire:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(missing_docs)]
        pub struct $name {
            /// The source's id for the event; derived from the source and the content when
            /// absent.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub event_id: Option<Uuid>,
            /// When the source recorded it; the time of receipt when absent.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub occurred_at: Option<Instant>,
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $name {
            fn into_wire(self, mut envelope: wire::Envelope) -> wire::$wire {
                if let Some(id) = self.event_id {
                    envelope.event_id = id;
                }
                if let Some(at) = self.occurred_at {
                    envelope.occurred_at = at.to_wire();
                }
                wire::$wire {
                    envelope,
                    $( $field: ToWire::to_wire(self.$field), )*
                }
            }

            fn from_wire(w: &wire::$wire) -> Result<Self, JsonFormError> {
                Ok(Self {
                    event_id: Some(w.envelope.event_id),
                    occurred_at: Some(Instant::from_wire(&w.envelope.occurred_at)?),
                    $( $field: ToWire::from_wire(&w.$field)?, )*
                })
            }
        }
    };
}

json_record! {
    /// A release movement, actual or planned; `need` when the sender knows it (a prison
    /// healthcare discharge).
    Release => PrisonRelease {
        release_id: String,
        #[serde(default)]
        person: Person,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attributor: Option<Attributor>,
        release_date: Date,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        released_at: Option<Instant>,
        #[serde(default)]
        planned: bool,
        reason: ReleaseReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        movement_code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prison: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        need: Option<Need>,
    }
}

json_record! {
    /// A release recorded in error or cancelled.
    Withdrawal => ReleaseWithdrawn {
        release_id: String,
        reason: WithdrawalReason,
    }
}

json_record! {
    /// An admission to custody.
    Admission => CustodyAdmission {
        #[serde(default)]
        person: Person,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attributor: Option<Attributor>,
        admitted_on: Date,
        kind: AdmissionKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        movement_code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prison: Option<String>,
    }
}

json_record! {
    /// A death.
    Death => PersonDied {
        #[serde(default)]
        person: Person,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attributor: Option<Attributor>,
        died_on: Date,
    }
}

json_record! {
    /// Two identifiers of one person; for a merge, `kept` survives and `other` is retired.
    IdentityChange => IdentityChange {
        kept: wire::Identifier,
        other: wire::Identifier,
    }
}

json_record! {
    /// A referral on release: records the need.
    Referral => Referral {
        referral_id: String,
        #[serde(default)]
        person: Person,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attributor: Option<Attributor>,
        referred_on: Date,
        origin: ReferralOrigin,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected_release: Option<Date>,
        need: Need,
    }
}

json_record! {
    /// A community treatment episode's start.
    TreatmentStart => TreatmentStart {
        episode_id: String,
        provider: String,
        local_authority: String,
        #[serde(default)]
        person: Person,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attributor: Option<Attributor>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        referral_date: Option<Date>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        triage_date: Option<Date>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        intervention_start: Option<Date>,
    }
}

json_record! {
    /// A community treatment episode's end.
    TreatmentDischarge => TreatmentDischarge {
        episode_id: String,
        provider: String,
        discharged_on: Date,
        reason: DischargeReason,
    }
}
