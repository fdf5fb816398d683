//! The pure rules of continuity of care from prison to community treatment.
//!
//! Identifiers and codes that cannot be invalid, the attributor, matching people across
//! sources, the case state machine with the 21-day clock, exclusions, the continuity rate with
//! its Wilson interval, and disclosure control. Nothing here does I/O, runs async or reads a
//! clock: the time is always a parameter, so every rule is testable and replay equals live.

#![warn(missing_docs)]

pub mod action;
pub mod attributor;
pub mod calendar;
pub mod case;
pub mod changes;
mod coded;
pub mod codes;
pub mod disclosure;
pub mod events;
pub mod identifiers;
pub mod identity;
pub mod keyed;
pub mod performance;
pub mod rate;
pub mod rules;
mod text;

pub use action::{Action, ActionForm, ActionKind, FieldProblem};
pub use attributor::{Attributor, AttributorError, Sex};
pub use calendar::{london_date, start_of_london_day, CohortPeriod};
pub use case::{
    assess, Assessment, Case, CaseId, ExclusionReason, Flag, FlagKind, FlagState, MatchStrength,
    Outcome, PersonReferences, StaleReferral, Timeliness,
};
pub use changes::{carry_over_flags, changes, CaseChange, CaseChangeKind, FlagChange};
pub use codes::{CodeError, LocalAuthorityCode, OrganisationCode, PrisonCode, ProviderCode};
pub use identifiers::{
    Crn, CroNumber, Identifier, IdentifierError, IdentifierKind, NhsNumber, NomsNumber, PncId,
};
pub use keyed::{KeyedHasher, MatchKey};
pub use performance::{
    figure_status, published_cells, published_grid, tabulate, Breakdown, CaseFacts, CellKey,
    FigureStatus, Published, PublishedCells, PublishedGrid, Regions,
};
pub use rate::{funnel_limits, Comparison, ContinuityRate, Tally, AMBITION, Z95, Z998};
pub use rules::{EngagementBasis, MovementClass, Rules};
