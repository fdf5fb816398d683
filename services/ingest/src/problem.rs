//! Why ingest refuses a request or a single event, as one typed error ([`Refused`]), and its
//! rendering as `application/problem+json` (RFC 9457). Every refusal a sender can meet is a
//! variant here, with its status, title and what to do; handlers return `Refused` and never
//! build a response body of their own.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::rows::FieldProblem;

/// A refusal of the whole request, or of a request's single event.
#[derive(Debug)]
pub(crate) enum Refused {
    /// No usable bearer token.
    NotAuthenticated,
    /// The source's request allowance is spent for `retry_after` seconds.
    TooManyRequests { retry_after: u64 },
    /// The source may not send this (the reason in the sender's words).
    NotAllowed(String),
    /// An endpoint path naming no event kind; `known` lists those there are.
    UnknownEventKind { known: String },
    /// The body is over `limit` bytes.
    BodyTooLarge { limit: usize },
    /// The body could not be read to its end.
    BodyNotRead,
    /// A JSON body that does not parse, at this line and column.
    BodyNotJson { line: usize, column: usize },
    /// `extracted_at` is not a date or date-time.
    InvalidExtractedAt,
    /// A treatment extract whose header lacks a column it needs.
    UnusableExtract(FieldProblem),
    /// A single event that is not valid.
    InvalidEvent(Vec<FieldProblem>),
    /// A batch none of whose rows was accepted: the counts and each row's answer.
    NoRowAccepted {
        ignored: usize,
        refused: usize,
        rows: Vec<Value>,
    },
    /// The broker did not acknowledge: nothing of the request was accepted.
    BrokerUnavailable,
    /// The audit row could not be stored; `written` says whether events were.
    AuditUnavailable { written: bool },
}

impl Refused {
    /// The HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Refused::NotAuthenticated => StatusCode::UNAUTHORIZED,
            Refused::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Refused::NotAllowed(_) => StatusCode::FORBIDDEN,
            Refused::UnknownEventKind { .. } => StatusCode::NOT_FOUND,
            Refused::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refused::BodyNotRead | Refused::BodyNotJson { .. } | Refused::InvalidExtractedAt => {
                StatusCode::BAD_REQUEST
            }
            Refused::UnusableExtract(_)
            | Refused::InvalidEvent(_)
            | Refused::NoRowAccepted { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Refused::BrokerUnavailable | Refused::AuditUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// The problem document.
    fn problem(self) -> Problem {
        let status = self.status();
        let problem = |title, detail: String| Problem::new(status, title, detail);
        match self {
            Refused::NotAuthenticated => problem(
                "Not authenticated",
                "send the source's token as Authorization: Bearer <token>".into(),
            ),
            Refused::TooManyRequests { retry_after } => problem(
                "Too many requests",
                format!("this source's request rate is limited; retry after {retry_after} s, or send fewer, larger batches"),
            )
            .retry_after(retry_after),
            Refused::NotAllowed(detail) => problem("Not allowed", detail),
            Refused::UnknownEventKind { known } => {
                problem("Unknown event kind", format!("the event kinds are {known}"))
            }
            Refused::BodyTooLarge { limit } => problem(
                "Body too large",
                format!("the body is over {limit} bytes; split it into smaller batches"),
            ),
            Refused::BodyNotRead => problem(
                "Body not read",
                "the request body could not be read completely".into(),
            ),
            Refused::BodyNotJson { line, column } => problem(
                "Body is not JSON",
                format!(
                    "the body is not valid JSON (line {line} column {column}); send one JSON object, an array of them, or NDJSON with Content-Type application/x-ndjson"
                ),
            )
            .with("errors", json!([FieldProblem::new("(body)", "is not valid JSON")])),
            Refused::InvalidExtractedAt => problem(
                "Invalid query parameter",
                "extracted_at must be a date (YYYY-MM-DD) or a date-time such as 2026-11-20T14:09:54Z".into(),
            )
            .with(
                "errors",
                json!([FieldProblem::new("extracted_at", "is not a date or date-time")]),
            ),
            Refused::UnusableExtract(missing) => problem(
                "Unusable extract",
                "the extract's header does not have the columns needed".into(),
            )
            .with("errors", json!([missing])),
            Refused::InvalidEvent(errors) => problem("Invalid event", describe(&errors))
                .with("errors", json!(errors)),
            Refused::NoRowAccepted {
                ignored,
                refused,
                rows,
            } => problem("No row accepted", format!("{refused} rows refused; see rows"))
                .with("accepted", json!(0))
                .with("ignored", json!(ignored))
                .with("rejected", json!(refused))
                .with("rows", json!(rows)),
            Refused::BrokerUnavailable => problem(
                "Broker unavailable",
                "the events could not be written now and none is accepted; resend the same request later (resending creates nothing new)".into(),
            )
            .retry_after(10),
            Refused::AuditUnavailable { written } => problem(
                "Audit unavailable",
                if written {
                    "the events were written but the audit trail could not be; resend the same request (it creates nothing new)"
                } else {
                    "the request could not be recorded in the audit trail; resend it later"
                }
                .into(),
            )
            .retry_after(5),
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        self.problem().into_response()
    }
}

/// Every problem of an event in one line: `field: problem; field: problem`.
fn describe(errors: &[FieldProblem]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.problem))
        .collect::<Vec<_>>()
        .join("; ")
}

/// An `application/problem+json` document with any extension members.
struct Problem {
    status: StatusCode,
    title: &'static str,
    detail: String,
    extensions: serde_json::Map<String, Value>,
    retry_after: Option<u64>,
}

impl Problem {
    fn new(status: StatusCode, title: &'static str, detail: String) -> Self {
        Problem {
            status,
            title,
            detail,
            extensions: serde_json::Map::new(),
            retry_after: None,
        }
    }

    /// Add an extension member (`errors`, `rows`).
    fn with(mut self, name: &str, value: Value) -> Self {
        self.extensions.insert(name.to_owned(), value);
        self
    }

    fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    fn into_response(self) -> Response {
        let mut body = self.extensions;
        body.insert(
            "type".into(),
            json!(format!("urn:continuity:problem:{}", slug(self.title))),
        );
        body.insert("title".into(), json!(self.title));
        body.insert("status".into(), json!(self.status.as_u16()));
        body.insert("detail".into(), json!(self.detail));
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            Value::Object(body).to_string(),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"continuity-ingest\""),
            );
        }
        response
    }
}

/// The problem type's last segment: the title in lower case, non-alphanumerics as `-`.
fn slug(title: &str) -> String {
    title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}
