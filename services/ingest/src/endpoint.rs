//! The endpoints that carry events: their names in metrics and the audit trail, and which
//! roles may use each.

use chrono::{DateTime, Utc};

use crate::api::EventKind;
use crate::sources::Role;

/// The requests that carry events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `POST /v1/events/{kind}`.
    Events(EventKind),
    /// `POST /v1/hmpps/events`.
    Hmpps,
    /// `POST /v1/treatment/extracts`, with its `extracted_at` query parameter.
    Extracts(ExtractedAt),
}

/// The `extracted_at` query parameter of an extract upload: the extract's own time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExtractedAt {
    /// Not given.
    NotGiven,
    /// Given and valid.
    At(DateTime<Utc>),
    /// Given, and not a date or date-time.
    Invalid,
}

impl Endpoint {
    /// Every endpoint's name.
    pub(crate) fn names() -> Vec<String> {
        EventKind::ALL
            .iter()
            .map(|k| Endpoint::Events(*k))
            .chain([Endpoint::Hmpps, Endpoint::Extracts(ExtractedAt::NotGiven)])
            .map(Endpoint::name)
            .collect()
    }

    /// Its name in metric labels and the audit trail (from fixed lists only).
    pub(crate) fn name(self) -> String {
        match self {
            Endpoint::Events(kind) => format!("events/{}", kind.path()),
            Endpoint::Hmpps => "hmpps".into(),
            Endpoint::Extracts(_) => "treatment-extracts".into(),
        }
    }

    /// Whether a role may use it at all.
    pub(crate) fn allows(self, role: Role) -> bool {
        match self {
            Endpoint::Events(kind) => role.may_send(kind.record()),
            Endpoint::Hmpps => role == Role::Hmpps,
            Endpoint::Extracts(_) => role == Role::TreatmentProvider,
        }
    }

    /// Why a role may not, in the sender's words.
    pub(crate) fn refusal(self, role: Role) -> String {
        match self {
            Endpoint::Events(kind) => {
                format!("a {} source may not send {}", role.name(), kind.path())
            }
            Endpoint::Hmpps => format!(
                "HMPPS domain events come from the HMPPS feed only; a {} source sends /v1/events/{{kind}}",
                role.name()
            ),
            Endpoint::Extracts(_) => format!(
                "treatment extracts come from treatment providers only; this is a {} source",
                role.name()
            ),
        }
    }
}
