//! What changed between two assessments of a case, as the events downstream consumers see:
//! case changes (opened, engaged, at risk, overdue, resolved, excluded, withdrawn, updated) and
//! flag transitions (raised, resolved, withdrawn), each with a stable id so a replay or a retry
//! produces the same ids and consumers can drop duplicates.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::case::{Case, CaseId, Flag, FlagState, Outcome};
use crate::coded::coded;

const CHANGE_NAMESPACE: Uuid = Uuid::from_u128(0x6368_616e_6765_732d_636f_6e74_696e_7569);

coded! {
    /// The kind of a case change.
    pub enum CaseChangeKind {
        /// A release met a need.
        Opened = "OPENED",
        /// An engagement was recorded for the case.
        Engaged = "ENGAGED",
        /// An at-risk warning fell due.
        AtRisk = "AT_RISK",
        /// The window closed without engagement.
        Overdue = "OVERDUE",
        /// A flag was resolved.
        Resolved = "RESOLVED",
        /// The case left the cohort.
        Excluded = "EXCLUDED",
        /// The release was withdrawn, or the case no longer exists (its release merged into
        /// another case, or its need was withdrawn).
        Withdrawn = "WITHDRAWN",
        /// Anything else changed (provider, prison, engagement date).
        Updated = "UPDATED",
    }
}

/// A change to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseChange {
    /// Stable id: the same transition always has the same id.
    pub event_id: Uuid,
    /// The case.
    pub case_id: CaseId,
    /// What happened.
    pub kind: CaseChangeKind,
}

/// A flag transition to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    /// Stable id of this transition (flag id and state).
    pub event_id: Uuid,
    /// The flag after the transition. Caseworkers are told of it when `flag.notified`.
    pub flag: Flag,
}

fn change_id(case: CaseId, kind: CaseChangeKind, new: Option<&Case>) -> Uuid {
    // What the downstream event says identifies the transition: the case, the change, the
    // outcome, the engagement, the flags' states and what the case is attributed to, each
    // written by its code.
    let state = new.map(|c| {
        let flags: Vec<String> = c
            .flags
            .iter()
            .map(|f| {
                let (kind, day) = f.kind.code();
                format!("{kind}/{}/{}", day.unwrap_or(0), f.state.code())
            })
            .collect();
        let engagement = c
            .engagement
            .as_ref()
            .map(|e| format!("{}/{}", e.date, e.timeliness.code()))
            .unwrap_or_default();
        format!(
            "{}/{}|{engagement}|{}|{}|{}|{}",
            c.outcome.code(),
            c.outcome.exclusion_code().unwrap_or(""),
            flags.join(","),
            c.local_authority,
            c.prison.as_ref().map_or("", |p| p.as_str()),
            c.provider.as_ref().map_or("", |p| p.as_str()),
        )
    });
    Uuid::new_v5(
        &CHANGE_NAMESPACE,
        format!("{}:{}:{}", case.0, kind.code(), state.unwrap_or_default()).as_bytes(),
    )
}

fn flag_event_id(flag: &Flag) -> Uuid {
    Uuid::new_v5(
        &CHANGE_NAMESPACE,
        format!("{}:{}", flag.flag_id, flag.state.code()).as_bytes(),
    )
}

/// Flags the pipeline raised on what it knew at the time, which the rules no longer derive
/// because an event recorded before the flag fell due arrived after it: they are kept on the
/// case and settled (engaged, excluded or withdrawn, as the case now stands), so no caseworker
/// is left with a standing flag and no flag silently disappears. Whether caseworkers are told
/// of a flag was decided when it was first derived and carries over too. Call before
/// [`changes`].
pub fn carry_over_flags(old: Option<&Case>, new: &mut Case, now: DateTime<Utc>) {
    let Some(old) = old else {
        return;
    };
    for flag in &old.flags {
        if let Some(same) = new.flags.iter_mut().find(|f| f.flag_id == flag.flag_id) {
            same.notified = flag.notified;
            continue;
        }
        let mut kept = flag.clone();
        if kept.state == FlagState::Raised {
            kept.state = match new.outcome {
                Outcome::Excluded(_) => FlagState::ResolvedExcluded,
                Outcome::Withdrawn => FlagState::Withdrawn,
                _ if new.engagement.is_some() => FlagState::ResolvedEngaged,
                _ => FlagState::Withdrawn,
            };
            kept.settled_at = Some(now);
        }
        new.flags.push(kept);
    }
    new.flags.sort_by_key(|f| (f.due_at, f.flag_id));
}

/// The changes from `old` to `new` (either may be absent), at `now`.
pub fn changes(
    old: Option<&Case>,
    new: Option<&Case>,
    now: DateTime<Utc>,
) -> (Vec<CaseChange>, Vec<FlagChange>) {
    let Some(case_id) = new.or(old).map(|c| c.case_id) else {
        return (Vec::new(), Vec::new());
    };
    let mut kinds = Vec::new();
    match (old, new) {
        (None, Some(_)) => kinds.push(CaseChangeKind::Opened),
        (Some(_), None) => kinds.push(CaseChangeKind::Withdrawn),
        (Some(o), Some(n)) if o != n => {
            if o.outcome != n.outcome {
                kinds.push(match n.outcome {
                    Outcome::Engaged => CaseChangeKind::Engaged,
                    Outcome::NotEngaged if n.engagement.is_none() => CaseChangeKind::Overdue,
                    Outcome::Excluded(_) => CaseChangeKind::Excluded,
                    Outcome::Withdrawn => CaseChangeKind::Withdrawn,
                    Outcome::NotEngaged | Outcome::Open => CaseChangeKind::Updated,
                });
            } else if o.engagement.is_none() && n.engagement.is_some() {
                kinds.push(CaseChangeKind::Engaged);
            }
            for f in &n.flags {
                let before = o.flags.iter().find(|x| x.flag_id == f.flag_id);
                match (before.map(|b| b.state), f.state) {
                    (None, FlagState::Raised) => kinds.push(match f.kind {
                        crate::case::FlagKind::AtRisk(_) => CaseChangeKind::AtRisk,
                        crate::case::FlagKind::Overdue => CaseChangeKind::Overdue,
                    }),
                    (Some(FlagState::Raised), FlagState::ResolvedEngaged)
                    | (Some(FlagState::Raised), FlagState::ResolvedExcluded) => {
                        kinds.push(CaseChangeKind::Resolved)
                    }
                    _ => {}
                }
            }
            if kinds.is_empty() {
                kinds.push(CaseChangeKind::Updated);
            }
        }
        _ => {}
    }
    kinds.sort();
    kinds.dedup();
    let case_changes = kinds
        .into_iter()
        .map(|kind| CaseChange {
            event_id: change_id(case_id, kind, new),
            case_id,
            kind,
        })
        .collect();

    // Flags: every new flag, or one whose state moved. A vanished case withdraws its flags.
    let mut flag_changes = Vec::new();
    let old_flags = old.map(|c| c.flags.as_slice()).unwrap_or_default();
    let new_flags: Vec<Flag> = match new {
        Some(n) => n.flags.clone(),
        None => old_flags
            .iter()
            .filter(|f| f.state == FlagState::Raised)
            .map(|f| Flag {
                state: FlagState::Withdrawn,
                settled_at: Some(now),
                ..f.clone()
            })
            .collect(),
    };
    for flag in new_flags {
        let before = old_flags.iter().find(|x| x.flag_id == flag.flag_id);
        if before.is_some_and(|b| b.state == flag.state) {
            continue;
        }
        flag_changes.push(FlagChange {
            event_id: flag_event_id(&flag),
            flag,
        });
    }
    (case_changes, flag_changes)
}
