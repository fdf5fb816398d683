//! The harness every fuzzer of ingest's parsers drives: the deterministic mutation tests in
//! this crate, the coverage-guided targets under `tests/fuzz/`, and the regression test that
//! replays their corpus. It parses a body as a request to one endpoint would be parsed,
//! admits every row as its source would be admitted, and checks what a sender may be told:
//! every row is answered, and no answer quotes the planted [`MARKER`].
//!
//! Built for tests and under the `fuzzing` feature only; a check that fails panics, which is
//! how a fuzzer learns of it.

use chrono::{DateTime, NaiveDate, Utc};
use continuity_domain::KeyedHasher;

use crate::api::EventKind;
use crate::body::{event_rows, extract_rows, hmpps_rows, Layout, Rows};
use crate::endpoint::ExtractedAt;
use crate::ndtms;
use crate::problem::Refused;
use crate::rows::{admit, Decision, RowResult};
use crate::sources::{token_hash, Principal, Role, SourceConfig, Sources};

/// A value planted in inputs: it must never appear in an answer.
pub const MARKER: &str = "PLANTED7X";

/// The endpoints' parsers, with one source of each role, and counts of what they answered.
pub struct Harness {
    hmpps: std::sync::Arc<Principal>,
    probation: std::sync::Arc<Principal>,
    provider: std::sync::Arc<Principal>,
    today: NaiveDate,
    hasher: KeyedHasher,
    columns: ndtms::Columns,
    /// Rows and whole-request refusals answered.
    pub answered: usize,
    /// Rows that would have been published.
    pub accepted: usize,
}

impl Harness {
    /// Sources `HMPPS`, `WSI` (a prison), `probation` and `PRV001` (a treatment provider),
    /// each authenticated by its own name as its token.
    pub fn new() -> Result<Self, String> {
        let configs: Vec<SourceConfig> = [
            (Role::Hmpps, "HMPPS"),
            (Role::Prison, "WSI"),
            (Role::Probation, "probation"),
            (Role::TreatmentProvider, "PRV001"),
        ]
        .into_iter()
        .map(|(role, org)| SourceConfig {
            name: org.into(),
            organisation: org.into(),
            role,
            token_sha256: token_hash(org),
            requests_per_second: None,
        })
        .collect();
        let sources = Sources::new(&configs, 1).map_err(|e| e.to_string())?;
        let principal = |org: &str| {
            sources
                .authenticate(org)
                .ok_or_else(|| format!("{org} does not authenticate"))
        };
        Ok(Harness {
            hmpps: principal("HMPPS")?,
            probation: principal("probation")?,
            provider: principal("PRV001")?,
            today: Self::now().date_naive(),
            hasher: KeyedHasher::new(b"fuzz"),
            columns: ndtms::Columns::default(),
            answered: 0,
            accepted: 0,
        })
    }

    /// The instant every request is received at: 2026-11-24 12:00 UTC.
    pub fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_521_600, 0).unwrap_or_default()
    }

    /// `POST /v1/events/{kind}` from the source that sends that kind.
    pub fn events(&mut self, kind: EventKind, ndjson: bool, body: &[u8]) {
        let principal = self.principal_for(kind);
        let parsed = event_rows(
            kind,
            layout(ndjson),
            body,
            principal.organisation.as_str(),
            Self::now(),
        );
        self.answer(&principal, parsed);
    }

    /// `POST /v1/hmpps/events` from HMPPS.
    pub fn hmpps(&mut self, ndjson: bool, body: &[u8]) {
        let parsed = hmpps_rows(layout(ndjson), body, "HMPPS", Some("probation-hmpps"));
        self.answer(&self.hmpps.clone(), parsed);
    }

    /// `POST /v1/treatment/extracts` from a provider.
    pub fn extract(&mut self, body: &[u8]) {
        let parsed = extract_rows(
            &self.columns,
            body,
            "PRV001",
            ExtractedAt::NotGiven,
            Self::now(),
        );
        self.answer(&self.provider.clone(), parsed);
    }

    /// One fuzz input for the named target, as the targets under `tests/fuzz/` and the
    /// corpus replay read it. For `events` the first byte chooses the kind (its value modulo
    /// the number of kinds) and the layout (NDJSON when its top bit is set), and the rest is
    /// the body; for `hmpps` every byte is the body, read as JSON and as NDJSON, so the HMPPS
    /// fixtures seed it as they are; for `extract` every byte is the body. `false` for a
    /// target ingest does not have.
    pub fn target(&mut self, target: &str, data: &[u8]) -> bool {
        let (selector, body) = match data.split_first() {
            Some((first, rest)) => (*first, rest),
            None => (0, data),
        };
        match target {
            "events" => {
                let kind = EventKind::ALL[usize::from(selector) % EventKind::ALL.len()];
                self.events(kind, selector & 0x80 != 0, body);
            }
            "hmpps" => {
                self.hmpps(false, data);
                self.hmpps(true, data);
            }
            "extract" => self.extract(data),
            _ => return false,
        }
        true
    }

    /// The source that may send `kind`.
    fn principal_for(&self, kind: EventKind) -> std::sync::Arc<Principal> {
        match kind.record() {
            continuity_schema::RecordType::TreatmentStart
            | continuity_schema::RecordType::TreatmentDischarge => self.provider.clone(),
            continuity_schema::RecordType::Referral => self.probation.clone(),
            _ => self.hmpps.clone(),
        }
    }

    /// Admit every row as `principal` would be; check each answer.
    fn answer(&mut self, principal: &Principal, parsed: Result<Rows, Refused>) {
        let today = self.today;
        let rows = match parsed {
            Ok(r) => r,
            Err(p) => {
                // Everything the refusal holds, which is all its answer can say.
                assert!(!format!("{p:?}").contains(MARKER), "{p:?}");
                self.answered += 1;
                return;
            }
        };
        let names = |f: &str| rows.names.name(f);
        for (_, row) in rows.rows {
            match admit(row, principal, today, &self.hasher, &names) {
                Decision::Send(a) => {
                    assert!(!a.is_empty());
                    self.accepted += 1;
                }
                // Field paths are the sender's own key names; problems never quote what was
                // sent.
                Decision::Done(result) => match &result {
                    RowResult::Rejected { errors } => {
                        assert!(!errors.is_empty());
                        for e in errors {
                            assert!(!e.problem.contains(MARKER), "{e:?}");
                        }
                    }
                    RowResult::Ignored { reason } => assert!(!reason.contains(MARKER)),
                    RowResult::Forbidden { detail } => assert!(!detail.contains(MARKER)),
                    RowResult::Accepted { .. } => {}
                },
            }
            self.answered += 1;
        }
    }
}

fn layout(ndjson: bool) -> Layout {
    if ndjson {
        Layout::NdJson
    } else {
        Layout::Json
    }
}
