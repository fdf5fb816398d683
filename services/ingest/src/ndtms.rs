//! Treatment providers' daily extracts: a CSV file, one row per treatment episode in the
//! NDTMS style (episode id, attributor, local authority, referral, triage, first intervention
//! and discharge dates, and identifiers where held). Header names differ between case
//! management systems, so which header holds which field is configuration; matching ignores
//! case and surrounding spaces. Each row gives a treatment start (when it has a triage or
//! intervention date) and a discharge (when it has a discharge date), or is rejected naming
//! the column. The provider is always the sender.
//!
//! A row's events carry, as `occurred_at`, when the provider recorded it: the row's own
//! recorded-time column (configurable, e.g. a last-modified or submission date) when it has
//! one, else the extract's own time given with the upload (`extracted_at`), else when ingest
//! received the file. So an extract replayed later gives the same "reported late" decisions as
//! when it was first sent; each row's answer says which was used.
//!
//! Its length is the column mapping, the date forms providers use and the per-row answers,
//! which one format's parser needs together.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Europe::London;
use continuity_domain::Sex;
use continuity_schema::days_from_date;
use continuity_schema::wire::{self, DischargeReason, PersonIdentifiers, SourceRecord};
use serde::{Deserialize, Serialize};

use crate::rows::{FieldProblem, Parsed};
use crate::time::{parse_date, parse_instant};

/// Which headers hold which field: the first listed header present in the file is used.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Columns {
    pub episode_id: Vec<String>,
    pub local_authority: Vec<String>,
    pub first_initial: Vec<String>,
    pub surname_initial: Vec<String>,
    pub date_of_birth: Vec<String>,
    pub sex: Vec<String>,
    pub referral_date: Vec<String>,
    pub triage_date: Vec<String>,
    pub intervention_start: Vec<String>,
    pub discharge_date: Vec<String>,
    pub discharge_reason: Vec<String>,
    pub noms: Vec<String>,
    pub crn: Vec<String>,
    pub pnc: Vec<String>,
    pub nhs: Vec<String>,
    /// When the provider recorded the row (a date, or a date-time).
    pub recorded_at: Vec<String>,
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for Columns {
    fn default() -> Self {
        Columns {
            episode_id: names(&["EPISODE_ID", "EPISODEID", "CLIENT_EPISODE_ID", "CLIENT_ID"]),
            local_authority: names(&["LA", "LOCAL_AUTHORITY", "DAT", "LA_CODE"]),
            first_initial: names(&["FINITIAL", "FIRST_INITIAL"]),
            surname_initial: names(&["SINITIAL", "SURNAME_INITIAL"]),
            date_of_birth: names(&["DOB", "DATE_OF_BIRTH"]),
            sex: names(&["SEX", "GENDER"]),
            referral_date: names(&["REFLD", "REFERRAL_DATE"]),
            triage_date: names(&["TRIAGED", "TRIAGE_DATE"]),
            intervention_start: names(&["MODST", "INTERVENTION_START", "MODALITY_START"]),
            discharge_date: names(&["DISD", "DISCHARGE_DATE"]),
            discharge_reason: names(&["DISRSN", "DISCHARGE_REASON"]),
            noms: names(&["PNOMS", "PNOMS_ID", "NOMS"]),
            crn: names(&["CRN"]),
            pnc: names(&["PNC", "PNC_ID"]),
            nhs: names(&["NHS_NUMBER", "NHSNUM"]),
            recorded_at: names(&[
                "RECORDED_AT",
                "LAST_MODIFIED",
                "DATE_MODIFIED",
                "SUBMISSION_DATE",
            ]),
        }
    }
}

/// Positions of the mapped columns in one file's header.
#[derive(Debug, Default)]
struct Layout {
    fields: Vec<(Field, usize, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    EpisodeId,
    LocalAuthority,
    FirstInitial,
    SurnameInitial,
    DateOfBirth,
    Sex,
    ReferralDate,
    TriageDate,
    InterventionStart,
    DischargeDate,
    DischargeReason,
    Noms,
    Crn,
    Pnc,
    Nhs,
    RecordedAt,
}

impl Field {
    const ALL: [Field; 16] = [
        Field::EpisodeId,
        Field::LocalAuthority,
        Field::FirstInitial,
        Field::SurnameInitial,
        Field::DateOfBirth,
        Field::Sex,
        Field::ReferralDate,
        Field::TriageDate,
        Field::InterventionStart,
        Field::DischargeDate,
        Field::DischargeReason,
        Field::Noms,
        Field::Crn,
        Field::Pnc,
        Field::Nhs,
        Field::RecordedAt,
    ];
}

impl Columns {
    fn candidates(&self, field: Field) -> &[String] {
        match field {
            Field::EpisodeId => &self.episode_id,
            Field::LocalAuthority => &self.local_authority,
            Field::FirstInitial => &self.first_initial,
            Field::SurnameInitial => &self.surname_initial,
            Field::DateOfBirth => &self.date_of_birth,
            Field::Sex => &self.sex,
            Field::ReferralDate => &self.referral_date,
            Field::TriageDate => &self.triage_date,
            Field::InterventionStart => &self.intervention_start,
            Field::DischargeDate => &self.discharge_date,
            Field::DischargeReason => &self.discharge_reason,
            Field::Noms => &self.noms,
            Field::Crn => &self.crn,
            Field::Pnc => &self.pnc,
            Field::Nhs => &self.nhs,
            Field::RecordedAt => &self.recorded_at,
        }
    }

    fn layout(&self, header: &csv::StringRecord) -> Result<Layout, FieldProblem> {
        use Field::*;
        let mut layout = Layout::default();
        for field in Field::ALL {
            let found = self.candidates(field).iter().find_map(|name| {
                header
                    .iter()
                    .position(|h| h.trim().eq_ignore_ascii_case(name.trim()))
                    .map(|i| (i, header.get(i).unwrap_or_default().trim().to_owned()))
            });
            if let Some((i, name)) = found {
                layout.fields.push((field, i, name));
            }
        }
        for required in [EpisodeId, LocalAuthority] {
            if layout.column(required).is_none() {
                return Err(FieldProblem::new(
                    "(header)",
                    format!(
                        "has no {} column (looked for {})",
                        required.name(),
                        self.candidates(required).join(", ")
                    ),
                ));
            }
        }
        if [TriageDate, InterventionStart, DischargeDate]
            .iter()
            .all(|f| layout.column(*f).is_none())
        {
            return Err(FieldProblem::new(
                "(header)",
                "has no triage, intervention start or discharge date column",
            ));
        }
        Ok(layout)
    }
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::EpisodeId => "episode id",
            Field::LocalAuthority => "local authority",
            Field::FirstInitial => "first initial",
            Field::SurnameInitial => "surname initial",
            Field::DateOfBirth => "date of birth",
            Field::Sex => "sex",
            Field::ReferralDate => "referral date",
            Field::TriageDate => "triage date",
            Field::InterventionStart => "intervention start",
            Field::DischargeDate => "discharge date",
            Field::DischargeReason => "discharge reason",
            Field::Noms => "NOMS number",
            Field::Crn => "CRN",
            Field::Pnc => "PNC id",
            Field::Nhs => "NHS number",
            Field::RecordedAt => "recorded time",
        }
    }

    /// The field of the wire record it fills, as validation names it.
    fn record_field(self) -> &'static str {
        match self {
            Field::EpisodeId => "episode_id",
            Field::LocalAuthority => "local_authority",
            Field::FirstInitial | Field::SurnameInitial | Field::Sex => "attributor",
            Field::DateOfBirth => "attributor.date_of_birth",
            Field::ReferralDate => "referral_date",
            Field::TriageDate => "triage_date",
            Field::InterventionStart => "intervention_start",
            Field::DischargeDate => "discharged_on",
            Field::DischargeReason => "reason",
            Field::Noms => "person.noms",
            Field::Crn => "person.crn",
            Field::Pnc => "person.pnc",
            Field::Nhs => "person.nhs",
            Field::RecordedAt => "occurred_at",
        }
    }
}

impl Layout {
    fn column(&self, field: Field) -> Option<(usize, &str)> {
        self.fields
            .iter()
            .find(|(f, _, _)| *f == field)
            .map(|(_, i, name)| (*i, name.as_str()))
    }

    fn header(&self, field: Field) -> String {
        self.column(field)
            .map_or_else(|| field.name().to_owned(), |(_, n)| n.to_owned())
    }

    /// The sender's column for a record field at fault.
    fn column_for(&self, record_field: &str) -> String {
        self.fields
            .iter()
            .filter(|(f, _, _)| f.record_field() == record_field)
            .map(|(_, _, name)| name.as_str())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// The sender's name for each record field, as columns of one file.
#[derive(Debug)]
pub struct ColumnNames(Layout);

impl ColumnNames {
    /// The file's column for a record field named by validation (`attributor.date_of_birth`
    /// is `DOB`); the field itself when no column fills it.
    pub fn name(&self, record_field: &str) -> String {
        let c = self.0.column_for(record_field);
        if c.is_empty() {
            record_field.to_owned()
        } else {
            c
        }
    }
}

/// One parsed file: the rows (numbered by line, the header being line 1) and the file's
/// names for the fields.
pub struct Extract {
    /// Each data row's line number and what it became.
    pub rows: Vec<(u64, Parsed)>,
    /// When each row that became records was recorded, by line.
    pub recorded: BTreeMap<u64, Recorded>,
    /// The file's columns.
    pub columns: ColumnNames,
}

/// The times an upload knows of: the extract's own (`extracted_at`, if given) and when ingest
/// received it.
#[derive(Debug, Clone, Copy)]
pub struct Upload {
    /// The extract's own time, given with the upload.
    pub extracted_at: Option<DateTime<Utc>>,
    /// When ingest received the file.
    pub received_at: DateTime<Utc>,
}

/// When a row was recorded, and where that time came from (told to the sender in the row's
/// answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// The instant its events carry as `occurred_at`.
    pub at: DateTime<Utc>,
    /// Where it came from.
    pub from: RecordedFrom,
    /// The column it was read from, when `from` is `column`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

/// Where a row's recorded time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RecordedFrom {
    /// The row's own recorded-time column.
    #[serde(rename = "column")]
    Column,
    /// The extract's own time given with the upload (`extracted_at`).
    #[serde(rename = "extract")]
    Extract,
    /// When ingest received the file: neither of the above was given.
    #[serde(rename = "receipt")]
    Receipt,
}

/// An instant given as a date-time (with an offset, or Europe/London local time), or as a date
/// (read as 00:00 Europe/London that day), no later than `latest` (a time after the receipt
/// cannot be when it was recorded; it is read as the receipt).
pub fn recorded_instant(raw: &str, latest: DateTime<Utc>) -> Result<DateTime<Utc>, &'static str> {
    const FORMS: &str =
        "must be a date (YYYY-MM-DD, DD/MM/YYYY) or a date-time such as 2026-11-20T14:09:54Z";
    let raw = raw.trim();
    let at = if raw.contains(':') {
        parse_instant(raw).map_err(|_| FORMS)?
    } else {
        let date = parse_date(raw).map_err(|_| FORMS)?;
        London
            .from_local_datetime(&date.and_hms_opt(0, 0, 0).ok_or(FORMS)?)
            .earliest()
            .ok_or(FORMS)?
            .with_timezone(&Utc)
    };
    Ok(at.min(latest))
}

/// Parse a whole extract sent by `provider`. A header without the required columns rejects
/// the file; otherwise every row has its own result.
pub fn parse(
    body: &[u8],
    columns: &Columns,
    provider: &str,
    upload: Upload,
) -> Result<Extract, FieldProblem> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(body);
    let header = reader
        .headers()
        .map_err(|_| FieldProblem::new("(header)", "is not a readable CSV header line"))?
        .clone();
    let layout = columns.layout(&header)?;
    let mut rows = Vec::new();
    let mut recorded = BTreeMap::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line() + 1;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(line, |p| p.line());
                if record.iter().all(|v| v.trim().is_empty()) {
                    continue;
                }
                let (parsed, when) = row(&record, &layout, provider, upload);
                if let Some(when) = when {
                    recorded.insert(line, when);
                }
                rows.push((line, parsed));
            }
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                rows.push((
                    line,
                    Parsed::Rejected(vec![FieldProblem::new(
                        "(row)",
                        "is not valid CSV (check quoting and the text encoding, which must be UTF-8)",
                    )]),
                ));
                // A row that is not UTF-8 is skipped; any other error (I/O) ends the file.
                if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    continue;
                }
                break;
            }
        }
    }
    Ok(Extract {
        rows,
        recorded,
        columns: ColumnNames(layout),
    })
}

/// One row's records, and when the row was recorded if it made any.
fn row(
    record: &csv::StringRecord,
    layout: &Layout,
    provider: &str,
    upload: Upload,
) -> (Parsed, Option<Recorded>) {
    let get = |field: Field| -> Option<&str> {
        let (i, _) = layout.column(field)?;
        record.get(i).map(str::trim).filter(|v| !v.is_empty())
    };
    let recorded = match get(Field::RecordedAt) {
        Some(raw) => recorded_instant(raw, upload.received_at)
            .map(|at| Recorded {
                at,
                from: RecordedFrom::Column,
                column: Some(layout.header(Field::RecordedAt)),
            })
            .map_err(|forms| FieldProblem::new(layout.header(Field::RecordedAt), forms)),
        None => Ok(match upload.extracted_at {
            Some(at) => Recorded {
                at: at.min(upload.received_at),
                from: RecordedFrom::Extract,
                column: None,
            },
            None => Recorded {
                at: upload.received_at,
                from: RecordedFrom::Receipt,
                column: None,
            },
        }),
    };
    let mut problems = Vec::new();
    let mut date = |field: Field| -> Option<i32> {
        let raw = get(field)?;
        match parse_date(raw) {
            Ok(d) => Some(days_from_date(d)),
            Err(forms) => {
                problems.push(FieldProblem::new(layout.header(field), forms));
                None
            }
        }
    };
    let referral_date = date(Field::ReferralDate);
    let triage_date = date(Field::TriageDate);
    let intervention_start = date(Field::InterventionStart);
    let discharged_on = date(Field::DischargeDate);
    let date_of_birth = date(Field::DateOfBirth);

    let attributor_parts = [
        get(Field::FirstInitial),
        get(Field::SurnameInitial),
        get(Field::Sex),
    ];
    let attributor = if attributor_parts.iter().all(Option::is_none) && date_of_birth.is_none() {
        None
    } else {
        let mut missing = |field: Field, present: bool| {
            if !present {
                problems.push(FieldProblem::new(
                    layout.header(field),
                    "is needed with the rest of the attributor (initials, date of birth, sex)",
                ));
            }
        };
        missing(Field::FirstInitial, attributor_parts[0].is_some());
        missing(Field::SurnameInitial, attributor_parts[1].is_some());
        missing(Field::Sex, attributor_parts[2].is_some());
        let sex = match get(Field::Sex).map(Sex::parse) {
            Some(Ok(s)) => Some(s),
            Some(Err(_)) => {
                problems.push(FieldProblem::new(
                    layout.header(Field::Sex),
                    "must be M, F, X or U (or 1, 2, 9, 0)",
                ));
                None
            }
            None => None,
        };
        if get(Field::DateOfBirth).is_none() {
            problems.push(FieldProblem::new(
                layout.header(Field::DateOfBirth),
                "is needed with the rest of the attributor (initials, date of birth, sex)",
            ));
        }
        match (attributor_parts[0], attributor_parts[1], date_of_birth, sex) {
            (Some(f), Some(s), Some(dob), Some(sex)) => Some(wire::Attributor {
                first_initial: f.to_owned(),
                surname_initial: s.to_owned(),
                date_of_birth: dob,
                sex,
            }),
            _ => None,
        }
    };
    if triage_date.is_none()
        && intervention_start.is_none()
        && discharged_on.is_none()
        && problems.is_empty()
    {
        problems.push(FieldProblem::new(
            layout.header(Field::TriageDate),
            "or an intervention start or discharge date must be given",
        ));
    }
    let recorded = match recorded {
        Ok(r) if problems.is_empty() => r,
        Ok(_) => return (Parsed::Rejected(problems), None),
        Err(problem) => {
            problems.push(problem);
            return (Parsed::Rejected(problems), None);
        }
    };
    let envelope = wire::Envelope {
        event_id: uuid::Uuid::nil(),
        occurred_at: recorded.at.timestamp_micros(),
        source: provider.to_owned(),
        schema_version: 1,
    };
    let text = |field: Field| get(field).unwrap_or_default().to_owned();
    let mut records = Vec::new();
    if triage_date.is_some() || intervention_start.is_some() {
        records.push(SourceRecord::TreatmentStart(wire::TreatmentStart {
            envelope: envelope.clone(),
            episode_id: text(Field::EpisodeId),
            provider: provider.to_owned(),
            local_authority: text(Field::LocalAuthority),
            person: PersonIdentifiers {
                noms: get(Field::Noms).map(str::to_owned),
                crn: get(Field::Crn).map(str::to_owned),
                pnc: get(Field::Pnc).map(str::to_owned),
                cro: None,
                nhs: get(Field::Nhs).map(str::to_owned),
            },
            attributor,
            referral_date,
            triage_date,
            intervention_start,
        }));
    }
    if let Some(on) = discharged_on {
        records.push(SourceRecord::TreatmentDischarge(wire::TreatmentDischarge {
            envelope,
            episode_id: text(Field::EpisodeId),
            provider: provider.to_owned(),
            discharged_on: on,
            reason: discharge_reason(get(Field::DischargeReason)),
        }));
    }
    (Parsed::Records(records), Some(recorded))
}

/// Discharge reasons by their usual words; anything else is `OTHER`.
fn discharge_reason(raw: Option<&str>) -> DischargeReason {
    let normalised = raw
        .unwrap_or_default()
        .trim()
        .to_ascii_uppercase()
        .replace([' ', '-'], "_");
    match normalised.as_str() {
        "COMPLETED" | "TREATMENT_COMPLETED" => DischargeReason::Completed,
        "DROPPED_OUT" | "DROPPED_OUT_LEFT" => DischargeReason::DroppedOut,
        "TRANSFERRED" => DischargeReason::Transferred,
        "DIED" => DischargeReason::Died,
        "INCARCERATED" | "PRISON" => DischargeReason::Incarcerated,
        _ => DischargeReason::Other,
    }
}
