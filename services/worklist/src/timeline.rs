//! A case's story in plain words: the timeline of everything known (release, referrals,
//! treatment, admissions, identity links and merges, flags raised and settled, actions), and
//! the "why this is on your list" lines (released on, the deadline, what has and has not
//! arrived). Pure: the caller loads the rows and passes today's date.

use chrono::{DateTime, NaiveDate, Utc};
use continuity_domain::events::{ReferralOrigin, SourceEvent};
use continuity_domain::{FlagState, Rules};

use crate::queries::{ActionRow, Detail, FlagRow};

/// The shipped names of areas and prisons.
pub(crate) fn names() -> &'static continuity_reference::Names {
    continuity_reference::Names::shipped()
}

/// One entry of the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// When (for ordering and `<time datetime>`).
    pub at: DateTime<Utc>,
    /// Whether only the date is known.
    pub date_only: bool,
    /// What happened.
    pub title: String,
    /// Who did it, for actions.
    pub by: Option<String>,
    /// More.
    pub detail: Option<String>,
}

/// A date as pages write it: `2 November 2026`.
pub fn long_date(d: NaiveDate) -> String {
    d.format("%-d %B %Y").to_string()
}

/// An instant as pages write it, in Europe/London: `2 November 2026, 14:05`.
pub fn long_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::Europe::London)
        .format("%-d %B %Y, %H:%M")
        .to_string()
}

fn on(d: NaiveDate) -> DateTime<Utc> {
    continuity_domain::start_of_london_day(d)
}

fn item(at: DateTime<Utc>, date_only: bool, title: impl Into<String>) -> Item {
    Item {
        at,
        date_only,
        title: title.into(),
        by: None,
        detail: None,
    }
}

/// Whether an event is about this person: it names one of `identifiers` (their values).
fn names_person(event: &SourceEvent, identifiers: &[&str]) -> bool {
    let ids: Vec<&str> = match event {
        SourceEvent::IdentityLinked(c)
        | SourceEvent::IdentityMerged(c)
        | SourceEvent::IdentityUnmerged(c) => {
            vec![c.kept.value(), c.other.value()]
        }
        other => other
            .person()
            .map(|p| p.identifiers.iter().map(|i| i.value()).collect())
            .unwrap_or_default(),
    };
    ids.iter().any(|i| identifiers.contains(i))
}

/// The timeline, oldest first. Source events of other people in the same component are left
/// out; treatment ends are kept for the episodes kept.
pub fn timeline(
    case: &Detail,
    events: &[SourceEvent],
    flags: &[FlagRow],
    actions: &[ActionRow],
) -> Vec<Item> {
    let identifiers: Vec<&str> = [
        case.person_identifier.as_deref(),
        case.crn.as_deref(),
        case.noms_number.as_deref(),
        case.nhs_number.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut items = Vec::new();
    let mut episodes = Vec::new();
    for event in events.iter().filter(|e| names_person(e, &identifiers)) {
        match event {
            SourceEvent::Release(r) => {
                let from = r
                    .prison
                    .as_ref()
                    .map(|p| format!(" from {}", names().prison_with_code(p.as_str())))
                    .unwrap_or_default();
                let title = if r.planned {
                    format!("Release planned{from}")
                } else {
                    format!("Released{from}")
                };
                items.push(item(on(r.release_date), true, title));
            }
            SourceEvent::ReleaseWithdrawn(w) => {
                items.push(item(
                    w.meta.occurred_at,
                    false,
                    "Release withdrawn by the prison",
                ));
            }
            SourceEvent::Referral(r) => {
                let origin = match r.origin {
                    ReferralOrigin::Prison => "the prison's substance misuse service",
                    ReferralOrigin::Probation => "probation",
                };
                let mut i = item(
                    on(r.referred_on),
                    true,
                    format!("Referred to community treatment by {origin}"),
                );
                i.detail = Some(format!(
                    "To {} in {} (sent by {}).",
                    r.need
                        .provider
                        .as_ref()
                        .map_or("a provider not named".to_owned(), |p| p.to_string()),
                    names().area_with_code(r.need.local_authority.as_str()),
                    r.meta.source
                ));
                items.push(i);
            }
            SourceEvent::TreatmentStart(s) => {
                episodes.push((s.provider.clone(), s.episode_id.clone()));
                let date = s.triage_date.or(s.intervention_start);
                let mut i = item(
                    date.map_or(s.meta.occurred_at, on),
                    date.is_some(),
                    format!("Treatment started at {}", s.provider),
                );
                i.detail = Some(format!("Recorded {}.", long_time(s.meta.occurred_at)));
                items.push(i);
            }
            SourceEvent::CustodyAdmission(a) => {
                items.push(item(on(a.admitted_on), true, "Admitted to custody"));
            }
            SourceEvent::PersonDied(d) => {
                items.push(item(on(d.died_on), true, "Death recorded"));
            }
            SourceEvent::IdentityLinked(c) => items.push(item(
                c.meta.occurred_at,
                false,
                format!("Records linked ({} and {})", c.kept.kind(), c.other.kind()),
            )),
            SourceEvent::IdentityMerged(c) => items.push(item(
                c.meta.occurred_at,
                false,
                format!("Records merged ({} kept)", c.kept.kind()),
            )),
            SourceEvent::IdentityUnmerged(c) => items.push(item(
                c.meta.occurred_at,
                false,
                format!("Merge undone ({} and {})", c.kept.kind(), c.other.kind()),
            )),
            SourceEvent::ProbationAllocated(a) => items.push(item(
                a.meta.occurred_at,
                false,
                format!(
                    "Allocated to a community manager in probation service {}",
                    a.probation_service
                ),
            )),
            SourceEvent::TreatmentDischarge(_) => {}
        }
    }
    for event in events {
        if let SourceEvent::TreatmentDischarge(d) = event {
            if episodes.contains(&(d.provider.clone(), d.episode_id.clone())) {
                items.push(item(
                    on(d.discharged_on),
                    true,
                    format!("Treatment ended at {}", d.provider),
                ));
            }
        }
    }
    for f in flags {
        let what = match (f.kind.as_str(), f.at_risk_day) {
            ("OVERDUE", _) => "Overdue: no engagement by day 21".to_owned(),
            ("AT_RISK", Some(day)) => format!("At risk: no engagement by day {day}"),
            _ => "Flag".to_owned(),
        };
        items.push(item(f.raised_at, false, format!("Flag raised – {what}")));
        if let (Some(at), Some(state)) = (f.settled_at, FlagState::from_code(&f.state)) {
            let how = match state {
                FlagState::ResolvedEngaged => "treatment start recorded",
                FlagState::ResolvedExcluded => "the person left the measure",
                FlagState::Withdrawn => "release withdrawn",
                FlagState::Raised => continue,
            };
            items.push(item(at, false, format!("Flag resolved – {how}")));
        }
    }
    for a in actions {
        let mut i = item(a.recorded_at, false, a.label());
        i.by = Some(format!("{} ({})", a.recorded_by, a.organisation));
        let mut detail = Vec::new();
        if let Some(d) = a.appointment_on {
            detail.push(format!("Appointment on {}.", long_date(d)));
        }
        if let Some(d) = a.snoozed_until {
            detail.push(format!("Back on the list on {}.", long_date(d)));
        }
        if let Some(r) = &a.reason {
            detail.push(format!("Reason: {r}"));
        }
        if let Some(n) = &a.note {
            detail.push(format!("Note: {n}"));
        }
        i.detail = (!detail.is_empty()).then(|| detail.join(" "));
        items.push(i);
    }
    items.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.title.cmp(&b.title)));
    items
}

/// What the "why" panel says: a warning line (for an overdue or at-risk case) and the facts.
pub fn why(case: &Detail, rules: &Rules, today: NaiveDate) -> (Option<String>, Vec<String>) {
    let day = (today - case.release_date).num_days();
    let last_day = rules.last_window_day(case.release_date);
    let raised = |kind: &str| case.raised_flag.as_deref() == Some(kind);
    let warning = if raised("OVERDUE") {
        Some(format!(
            "Overdue: no treatment start has been recorded by day 21 ({}). Today is day {day}.",
            long_date(last_day)
        ))
    } else if raised("AT_RISK") {
        Some(format!(
            "At risk: no treatment start recorded yet. Today is day {day} of 21."
        ))
    } else {
        None
    };
    let mut lines = vec![format!(
        "Released on {}{}. Engagement counts if treatment starts by {} (day 21).",
        long_date(case.release_date),
        case.prison
            .as_deref()
            .map(|p| format!(" from {}", names().prison_with_code(p)))
            .unwrap_or_default(),
        long_date(last_day)
    )];
    lines.push(match &case.provider {
        Some(p) => format!(
            "Referred to {p} in {}.",
            names().area_with_code(&case.local_authority)
        ),
        None => format!(
            "Referred to treatment in {}; no provider named.",
            names().area_with_code(&case.local_authority)
        ),
    });
    lines.push(match (case.engagement_date, case.timeliness.as_deref()) {
        (Some(d), Some("LATE")) => format!("Treatment started on {}, after day 21.", long_date(d)),
        (Some(d), Some("REPORTED_LATE")) => format!(
            "Treatment started on {}, inside the 21 days, but was recorded after the deadline.",
            long_date(d)
        ),
        (Some(d), _) => format!("Treatment started on {}.", long_date(d)),
        (None, _) => "No treatment start has arrived from the provider.".to_owned(),
    });
    (warning, lines)
}
