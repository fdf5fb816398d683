//! What a caseworker records about a case: contacted, appointment booked, re-referred, unable
//! to contact, not our case, snoozed, acknowledged. Actions are the caseworker's history of a
//! case; they never change its outcome or the measure. [`ActionForm::check`] is the rule set
//! for a recorded action, with today's date passed in, and names the field of each problem.

use chrono::NaiveDate;

use crate::coded::coded;

coded! {
    /// What a caseworker did.
    pub enum ActionKind {
        /// Spoke to the person.
        Contacted = "CONTACTED",
        /// An appointment with the treatment service is booked (with its date).
        AppointmentBooked = "APPOINTMENT_BOOKED",
        /// Referred again to community treatment.
        ReReferred = "RE_REFERRED",
        /// Tried and could not reach the person.
        UnableToContact = "UNABLE_TO_CONTACT",
        /// The case is not this organisation's (with a reason): it goes to a review queue.
        NotOurCase = "NOT_OUR_CASE",
        /// Out of the worklist until a date (with a reason).
        Snoozed = "SNOOZED",
        /// Seen: the flag is known to the team.
        Acknowledged = "ACKNOWLEDGED",
    }
}

impl ActionKind {
    /// How the action reads on a page.
    pub fn label(self) -> &'static str {
        match self {
            ActionKind::Contacted => "Contacted",
            ActionKind::AppointmentBooked => "Appointment booked",
            ActionKind::ReReferred => "Re-referred",
            ActionKind::UnableToContact => "Unable to contact",
            ActionKind::NotOurCase => "Not our case",
            ActionKind::Snoozed => "Snoozed",
            ActionKind::Acknowledged => "Acknowledged",
        }
    }
}

/// The longest free-text reason or note kept, in characters.
pub const MAX_TEXT: usize = 1000;

/// Longest a case can be snoozed for, in days.
pub const MAX_SNOOZE_DAYS: i64 = 28;

/// An action as a caseworker entered it, before checking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionForm {
    /// The kind's code, as submitted.
    pub kind: String,
    /// The appointment's date, for an appointment booked.
    pub appointment_on: Option<NaiveDate>,
    /// The date the case comes back, for a snooze.
    pub snoozed_until: Option<NaiveDate>,
    /// Why (required for not our case and snooze).
    pub reason: String,
    /// Anything else the team should know.
    pub note: String,
}

/// A checked action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// What was done.
    pub kind: ActionKind,
    /// The appointment's date (appointment booked only).
    pub appointment_on: Option<NaiveDate>,
    /// The date the case comes back (snooze only).
    pub snoozed_until: Option<NaiveDate>,
    /// Why, where given (trimmed; empty is none).
    pub reason: Option<String>,
    /// A note, where given.
    pub note: Option<String>,
}

/// One problem with a form: the field it is about and what to do, in the words a page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The form field's name.
    pub field: &'static str,
    /// What to do, as the Design System words error messages.
    pub message: String,
}

fn problem(field: &'static str, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field,
        message: message.into(),
    }
}

fn text(value: &str, field: &'static str, what: &str) -> Result<Option<String>, FieldProblem> {
    let value = value.trim();
    if value.chars().count() > MAX_TEXT {
        return Err(problem(
            field,
            format!("{what} must be {MAX_TEXT} characters or fewer"),
        ));
    }
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

impl ActionForm {
    /// The action, or every problem with the form. `today` is the Europe/London date.
    pub fn check(&self, today: NaiveDate) -> Result<Action, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let kind = ActionKind::from_code(&self.kind);
        if kind.is_none() {
            problems.push(problem("kind", "Select what you did"));
        }
        let reason = text(&self.reason, "reason", "Reason").unwrap_or_else(|p| {
            problems.push(p);
            None
        });
        let note = text(&self.note, "note", "Note").unwrap_or_else(|p| {
            problems.push(p);
            None
        });
        let mut appointment_on = None;
        let mut snoozed_until = None;
        match kind {
            Some(ActionKind::AppointmentBooked) => match self.appointment_on {
                None => problems.push(problem(
                    "appointment_on",
                    "Enter the date of the appointment",
                )),
                Some(d) if d < today - chrono::Duration::days(MAX_SNOOZE_DAYS) => {
                    problems.push(problem(
                        "appointment_on",
                        "Appointment date must be within the last 4 weeks or in the future",
                    ))
                }
                Some(d) => appointment_on = Some(d),
            },
            Some(ActionKind::Snoozed) => {
                match self.snoozed_until {
                    None => problems.push(problem(
                        "snoozed_until",
                        "Enter the date the case should come back to the list",
                    )),
                    Some(d) if d <= today => problems.push(problem(
                        "snoozed_until",
                        "Date the case comes back must be in the future",
                    )),
                    Some(d) if d > today + chrono::Duration::days(MAX_SNOOZE_DAYS) => problems
                        .push(problem(
                            "snoozed_until",
                            format!(
                                "Date the case comes back must be within {MAX_SNOOZE_DAYS} days"
                            ),
                        )),
                    Some(d) => snoozed_until = Some(d),
                }
                if reason.is_none() && !problems.iter().any(|p| p.field == "reason") {
                    problems.push(problem("reason", "Enter why you are snoozing the case"));
                }
            }
            Some(ActionKind::NotOurCase)
                if reason.is_none() && !problems.iter().any(|p| p.field == "reason") =>
            {
                problems.push(problem("reason", "Enter why this is not your case"));
            }
            _ => {}
        }
        match (kind, problems.is_empty()) {
            (Some(kind), true) => Ok(Action {
                kind,
                appointment_on,
                snoozed_until,
                reason,
                note,
            }),
            _ => Err(problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn form(kind: &str) -> ActionForm {
        ActionForm {
            kind: kind.into(),
            ..ActionForm::default()
        }
    }

    #[test]
    fn each_kind_asks_for_what_it_needs_and_names_the_field() {
        let today = d(2026, 12, 2);
        assert_eq!(
            form("CONTACTED").check(today).unwrap().kind,
            ActionKind::Contacted
        );
        let fields = |f: ActionForm| -> Vec<&'static str> {
            f.check(today)
                .unwrap_err()
                .iter()
                .map(|p| p.field)
                .collect()
        };
        assert_eq!(fields(form("")), ["kind"]);
        assert_eq!(fields(form("contacted")), ["kind"], "codes are exact");
        assert_eq!(fields(form("APPOINTMENT_BOOKED")), ["appointment_on"]);
        assert_eq!(fields(form("NOT_OUR_CASE")), ["reason"]);
        assert_eq!(fields(form("SNOOZED")), ["snoozed_until", "reason"]);
        let snooze = |until| ActionForm {
            snoozed_until: Some(until),
            reason: " away ".into(),
            ..form("SNOOZED")
        };
        assert_eq!(fields(snooze(today)), ["snoozed_until"]);
        assert_eq!(fields(snooze(d(2027, 1, 1))), ["snoozed_until"]);
        let ok = snooze(d(2026, 12, 9)).check(today).unwrap();
        assert_eq!(ok.reason.as_deref(), Some("away"));
        assert_eq!(ok.snoozed_until, Some(d(2026, 12, 9)));
        let long = ActionForm {
            note: "x".repeat(MAX_TEXT + 1),
            ..form("CONTACTED")
        };
        assert_eq!(fields(long), ["note"]);
    }
}
