//! Treatment providers' daily extracts: a CSV file, one row per treatment episode in the
//! NDTMS style (episode id, attributor, local authority, referral, triage, first intervention
//! and discharge dates, and identifiers where held). Header names differ between case
//! management systems, so which header holds which field is configuration; matching ignores
//! case and surrounding spaces. Each row gives a treatment start (when it has a triage or
//! intervention date) and a discharge (when it has a discharge date), or is rejected naming
//! the column. The provider is always the sender.

use continuity_domain::Sex;
use continuity_schema::days_from_date;
use continuity_schema::wire::{self, DischargeReason, PersonIdentifiers, SourceRecord};
use serde::Deserialize;

use crate::rows::{FieldProblem, Parsed};
use crate::time::parse_date;

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
}

impl Field {
    const ALL: [Field; 15] = [
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
    /// The file's columns.
    pub columns: ColumnNames,
}

/// Parse a whole extract sent by `provider`. A header without the required columns rejects
/// the file; otherwise every row has its own result.
pub fn parse(
    body: &[u8],
    columns: &Columns,
    provider: &str,
    received_at_micros: i64,
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
                rows.push((line, row(&record, &layout, provider, received_at_micros)));
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
        columns: ColumnNames(layout),
    })
}

fn row(record: &csv::StringRecord, layout: &Layout, provider: &str, received_at: i64) -> Parsed {
    let get = |field: Field| -> Option<&str> {
        let (i, _) = layout.column(field)?;
        record.get(i).map(str::trim).filter(|v| !v.is_empty())
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
    if !problems.is_empty() {
        return Parsed::Rejected(problems);
    }
    let envelope = wire::Envelope {
        event_id: uuid::Uuid::nil(),
        occurred_at: received_at,
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
    Parsed::Records(records)
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
