//! How a request's body becomes rows: JSON, a JSON array or NDJSON split into values, each
//! parsed by the endpoint's adapter (the JSON forms, HMPPS domain events, a treatment extract),
//! with how the sender names the fields that validation reports.

use std::collections::BTreeMap;

use axum::http::{header, HeaderMap};
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::api::EventKind;
use crate::endpoint::ExtractedAt;
use crate::problem::Refused;
use crate::rows::{FieldProblem, Parsed};
use crate::{hmpps, ndtms};

/// How a request's body is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// One JSON value: an object (a single event) or an array (a batch).
    Json,
    /// One JSON object per line (a batch).
    NdJson,
}

pub(crate) fn layout(headers: &HeaderMap) -> Layout {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if ct.contains("ndjson") || ct.contains("jsonl") || ct.contains("json-seq") {
        Layout::NdJson
    } else {
        Layout::Json
    }
}

/// How the sender names a record field that validation names (`person.noms`).
pub(crate) enum FieldNames {
    /// The JSON form uses the record's own names.
    Record,
    /// An HMPPS event's field.
    Hmpps,
    /// The extract's own column.
    Columns(ndtms::ColumnNames),
}

impl FieldNames {
    pub(crate) fn name(&self, record_field: &str) -> String {
        match self {
            FieldNames::Record => record_field.to_owned(),
            FieldNames::Hmpps => hmpps::field_in_event(record_field).to_owned(),
            FieldNames::Columns(columns) => columns.name(record_field),
        }
    }
}

/// The rows of a request, whether it was a single event (answered on its own), and how the
/// sender names the fields.
pub(crate) struct Rows {
    pub(crate) rows: Vec<(u64, Parsed)>,
    pub(crate) single: bool,
    pub(crate) names: FieldNames,
    /// When each row was recorded, where the adapter knows it apart from the events (a
    /// treatment extract's rows), by row number.
    pub(crate) recorded: BTreeMap<u64, ndtms::Recorded>,
}

/// Split a JSON or NDJSON body into values, one per row, and say whether it was one object;
/// a line that is not JSON is a rejected row of its own.
#[allow(clippy::type_complexity)]
fn json_rows(
    body: &[u8],
    layout: Layout,
) -> Result<(Vec<(u64, Result<Value, FieldProblem>)>, bool), Refused> {
    match layout {
        Layout::Json => {
            let value: Value = serde_json::from_slice(body).map_err(|e| Refused::BodyNotJson {
                line: e.line(),
                column: e.column(),
            })?;
            Ok(match value {
                Value::Array(items) => (
                    items
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (i as u64 + 1, Ok(v)))
                        .collect(),
                    false,
                ),
                other => (vec![(1, Ok(other))], true),
            })
        }
        Layout::NdJson => Ok((
            body.split(|b| *b == b'\n')
                .enumerate()
                .filter(|(_, line)| line.iter().any(|b| !b.is_ascii_whitespace()))
                .map(|(i, line)| {
                    let parsed = serde_json::from_slice(line).map_err(|e| {
                        FieldProblem::new(
                            "(line)",
                            format!("is not valid JSON (column {})", e.column()),
                        )
                    });
                    (i as u64 + 1, parsed)
                })
                .collect(),
            false,
        )),
    }
}

/// The rows of a `POST /v1/events/{kind}` body sent by `source` at `now`.
pub(crate) fn event_rows(
    kind: EventKind,
    layout: Layout,
    body: &[u8],
    source: &str,
    now: DateTime<Utc>,
) -> Result<Rows, Refused> {
    let (values, single) = json_rows(body, layout)?;
    let rows = values
        .into_iter()
        .map(|(n, value)| {
            let parsed = value.and_then(|value| {
                let envelope = continuity_schema::wire::Envelope {
                    event_id: Uuid::nil(),
                    occurred_at: now.timestamp_micros(),
                    source: source.to_owned(),
                    schema_version: 1,
                };
                kind.parse_value(&value, envelope)
                    .map_err(|e| FieldProblem::new(e.field, e.problem))
            });
            let parsed = match parsed {
                Ok(record) => Parsed::one(record),
                Err(problem) => Parsed::Rejected(vec![problem]),
            };
            (n, parsed)
        })
        .collect();
    Ok(Rows {
        rows,
        single,
        names: FieldNames::Record,
        recorded: BTreeMap::new(),
    })
}

/// The rows of a `POST /v1/hmpps/events` body sent by `source`; allocations go to
/// `allocations_to`.
pub(crate) fn hmpps_rows(
    layout: Layout,
    body: &[u8],
    source: &str,
    allocations_to: Option<&str>,
) -> Result<Rows, Refused> {
    let (values, single) = json_rows(body, layout)?;
    let rows = values
        .into_iter()
        .map(|(n, value)| {
            let parsed = match value {
                Err(p) => Parsed::Rejected(vec![p]),
                Ok(v) => hmpps::adapt(&v, source, allocations_to),
            };
            (n, parsed)
        })
        .collect();
    Ok(Rows {
        rows,
        single,
        names: FieldNames::Hmpps,
        recorded: BTreeMap::new(),
    })
}

/// The rows of a treatment extract sent by the provider `source` at `now`.
pub(crate) fn extract_rows(
    columns: &ndtms::Columns,
    body: &[u8],
    source: &str,
    extracted_at: ExtractedAt,
    received_at: DateTime<Utc>,
) -> Result<Rows, Refused> {
    let extracted_at = match extracted_at {
        ExtractedAt::NotGiven => None,
        ExtractedAt::At(at) => Some(at),
        ExtractedAt::Invalid => return Err(Refused::InvalidExtractedAt),
    };
    let upload = ndtms::Upload {
        extracted_at,
        received_at,
    };
    let extract = ndtms::parse(body, columns, source, upload).map_err(Refused::UnusableExtract)?;
    Ok(Rows {
        rows: extract.rows,
        single: false,
        names: FieldNames::Columns(extract.columns),
        recorded: extract.recorded,
    })
}
