//! Cases: one per release into the community with a treatment need, and what became of it.
//!
//! [`assess`] is the whole rule set as one pure function from a set of source events, the
//! rules and the time `now` to the cases, their flags and the records needing review. It never
//! depends on the order events arrived in or on duplicates: every choice between two records
//! is made by (recorded time, event id). Outcomes depend on event dates only; `now` decides
//! only whether a window has closed and which flags are due.
//!
//! Its length is the rule set: `assess` and the helpers it alone calls, kept in one module so
//! the rules read top to bottom; identifiers, calendar, rates and changes are modules of their own.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::coded::coded;
use uuid::Uuid;

use crate::events::{
    AdmissionKind, EventId, PrisonRelease, ReferralOrigin, ReleaseReason, SourceEvent,
    TreatmentNeed, TreatmentStart, WithdrawalReason,
};
use crate::identity::{Match, People, PersonKey};
use crate::rules::{EngagementBasis, MovementClass, Rules};
use crate::{
    Identifier, IdentifierKind, LocalAuthorityCode, OrganisationCode, PrisonCode, ProviderCode,
};

/// Namespace for case and flag ids (UUID v5), so ids are stable across replays.
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6c6f_6e74_696e_7569_7479_2d63_6173_6573);

/// A case's stable id: derived from the release's natural key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CaseId(pub Uuid);

impl CaseId {
    /// The case id of a release.
    pub fn for_release(release_id: &str) -> Self {
        CaseId(Uuid::new_v5(
            &ID_NAMESPACE,
            format!("case:{release_id}").as_bytes(),
        ))
    }
}

coded! {
    /// Why a case left the cohort.
    pub enum ExclusionReason {
        /// Died before engaging and before the window closed (including a death in custody
        /// recorded as a release). Someone who engaged and then died did engage.
        Died = "died",
        /// Re-admitted to custody before engaging, inside the window.
        Readmitted = "readmitted",
        /// Transferred to another secure setting inside the window.
        TransferredSecure = "transferred_secure",
        /// Deported or removed.
        Deported = "deported",
        /// Released to hospital.
        ReleasedToHospital = "released_to_hospital",
        /// Released to a local authority outside England.
        ReleasedOutsideEngland = "released_outside_england",
        /// Under 18 on the release date.
        Under18 = "under_18" also "under18",
    }
}

/// Where a case stands for the measure. Stored and published as two codes, [`Outcome::code`]
/// and [`Outcome::exclusion_code`]; its serde form is `{"status": code, "reason": code}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// The window has not closed: neither success nor failure yet.
    Open,
    /// Finalised: engaged within the window.
    Engaged,
    /// Finalised: no engagement within the window (none at all, or one after it).
    NotEngaged,
    /// Left the cohort.
    Excluded(ExclusionReason),
    /// The release was withdrawn (recorded in error or cancelled).
    Withdrawn,
}

/// The serde form of an [`Outcome`].
#[derive(Serialize, Deserialize)]
struct OutcomeForm<'a> {
    status: std::borrow::Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<ExclusionReason>,
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let reason = match self {
            Outcome::Excluded(r) => Some(*r),
            _ => None,
        };
        OutcomeForm {
            status: self.code().into(),
            reason,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let form = OutcomeForm::deserialize(d)?;
        // States stored before the codes were the serde form spelled the status in lower case.
        let status = form.status.to_ascii_uppercase();
        Outcome::from_codes(&status, form.reason.map(ExclusionReason::code))
            .ok_or_else(|| serde::de::Error::custom("outcome status or exclusion reason unknown"))
    }
}

impl Outcome {
    /// Stable code as stored and published (`OPEN`, `ENGAGED`, `NOT_ENGAGED`, `EXCLUDED`,
    /// `WITHDRAWN`); the exclusion reason is separate ([`ExclusionReason::code`]).
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Open => "OPEN",
            Outcome::Engaged => "ENGAGED",
            Outcome::NotEngaged => "NOT_ENGAGED",
            Outcome::Excluded(_) => "EXCLUDED",
            Outcome::Withdrawn => "WITHDRAWN",
        }
    }

    /// The exclusion reason's code, when excluded.
    pub fn exclusion_code(self) -> Option<&'static str> {
        match self {
            Outcome::Excluded(r) => Some(r.code()),
            _ => None,
        }
    }

    /// The outcome from its stored codes ([`Outcome::code`] and [`Outcome::exclusion_code`]);
    /// `None` for codes this build does not know.
    pub fn from_codes(outcome: &str, exclusion: Option<&str>) -> Option<Self> {
        Some(match outcome {
            "OPEN" => Outcome::Open,
            "ENGAGED" => Outcome::Engaged,
            "NOT_ENGAGED" => Outcome::NotEngaged,
            "WITHDRAWN" => Outcome::Withdrawn,
            "EXCLUDED" => Outcome::Excluded(
                ExclusionReason::ALL
                    .into_iter()
                    .find(|r| Some(r.code()) == exclusion)?,
            ),
            _ => return None,
        })
    }

    /// Finalised cases form the rate's denominator.
    pub fn is_finalised(self) -> bool {
        matches!(self, Outcome::Engaged | Outcome::NotEngaged)
    }
}

coded! {
    /// How the engagement relates to the window, for caseworkers and audit.
    pub enum Timeliness {
        /// Dated in the window and reported before the case became overdue.
        InWindow = "IN_WINDOW" also "in_window",
        /// Dated in the window but reported after the case became overdue.
        ReportedLate = "REPORTED_LATE" also "reported_late",
        /// Already in community treatment at release: an episode begun before the person's
        /// custody began and not discharged before the release.
        AlreadyInTreatment = "ALREADY_IN_TREATMENT" also "already_in_treatment",
        /// Dated after the window: a failure for the measure, but the caseworker's flag
        /// resolves.
        Late = "LATE" also "late",
    }
}

coded! {
    /// Whether the treatment record was matched by identifier or by attributor.
    pub enum MatchStrength {
        /// A shared identifier.
        Definite = "DEFINITE" also "definite",
        /// Attributor and local authority.
        Probable = "PROBABLE" also "probable",
    }
}

/// The engagement that counts for a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Engagement {
    /// The engagement date.
    pub date: NaiveDate,
    /// How it relates to the window.
    pub timeliness: Timeliness,
    /// When the provider recorded it.
    pub recorded_at: DateTime<Utc>,
    /// The provider.
    pub provider: ProviderCode,
    /// How the record was matched.
    pub strength: MatchStrength,
}

/// The kinds of caseworker flag. Stored as a code and the at-risk day ([`FlagKind::code`]);
/// its serde form is `{"kind": code, "day": n}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FlagKind {
    /// Not engaged by this day after release.
    AtRisk(u32),
    /// Not engaged by the end of the window.
    Overdue,
}

impl FlagKind {
    /// Stable code as stored (`AT_RISK`, `OVERDUE`) and the at-risk day, if any.
    pub fn code(self) -> (&'static str, Option<u32>) {
        match self {
            FlagKind::AtRisk(day) => ("AT_RISK", Some(day)),
            FlagKind::Overdue => ("OVERDUE", None),
        }
    }

    /// The kind from its stored code and day; `None` for a code this build does not know.
    pub fn from_code(code: &str, day: Option<u32>) -> Option<Self> {
        match (code, day) {
            ("AT_RISK", Some(day)) => Some(FlagKind::AtRisk(day)),
            ("OVERDUE", _) => Some(FlagKind::Overdue),
            _ => None,
        }
    }
}

/// The serde form of a [`FlagKind`].
#[derive(Serialize, Deserialize)]
struct FlagKindForm<'a> {
    kind: std::borrow::Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    day: Option<u32>,
}

impl Serialize for FlagKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (kind, day) = self.code();
        FlagKindForm {
            kind: kind.into(),
            day,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for FlagKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let form = FlagKindForm::deserialize(d)?;
        // States stored before the codes spelled the kind in lower case.
        FlagKind::from_code(&form.kind.to_ascii_uppercase(), form.day)
            .ok_or_else(|| serde::de::Error::custom("flag kind unknown"))
    }
}

coded! {
    /// Where a flag stands.
    pub enum FlagState {
        /// Needs action.
        Raised = "RAISED",
        /// Settled by an engagement (in the window, reported late, or after it).
        ResolvedEngaged = "RESOLVED_ENGAGED",
        /// Settled because the case left the cohort.
        ResolvedExcluded = "RESOLVED_EXCLUDED",
        /// The release was withdrawn.
        Withdrawn = "WITHDRAWN",
    }
}

/// A caseworker flag on a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    /// Stable id (from the case id and kind): consumers drop duplicates by it.
    pub flag_id: Uuid,
    /// What kind.
    pub kind: FlagKind,
    /// When it fell due.
    pub due_at: DateTime<Utc>,
    /// When it was raised: its due time, or when the case became known if later.
    pub raised_at: DateTime<Utc>,
    /// Its state at `now`.
    pub state: FlagState,
    /// When it was settled, if it has been.
    pub settled_at: Option<DateTime<Utc>>,
    /// Whether caseworkers are told of it: decided once, when the pipeline first derives the
    /// flag (true when it is raised within the flag horizon of its due time), and kept
    /// thereafter. A flag first seen already settled, or due long before the pipeline knew
    /// of it (a replay, very late data), is recorded and never sent. States stored before
    /// this field existed were all sent.
    #[serde(default = "sent_before_the_field_existed")]
    pub notified: bool,
}

fn sent_before_the_field_existed() -> bool {
    true
}

/// The identifiers by which each organisation responsible for a case knows the person:
/// probation by CRN, prisons and treatment providers by NOMS and NHS number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonReferences {
    /// Probation case reference.
    pub crn: Option<Identifier>,
    /// Prison number.
    pub noms: Option<Identifier>,
    /// NHS number.
    pub nhs: Option<Identifier>,
}

impl PersonReferences {
    /// The first identifier of each kind among `identifiers` (give them in order).
    pub fn from_identifiers<'a>(identifiers: impl IntoIterator<Item = &'a Identifier>) -> Self {
        let mut refs = PersonReferences::default();
        for id in identifiers {
            let slot = match id.kind() {
                IdentifierKind::Crn => &mut refs.crn,
                IdentifierKind::Noms => &mut refs.noms,
                IdentifierKind::Nhs => &mut refs.nhs,
                IdentifierKind::Pnc | IdentifierKind::Cro => continue,
            };
            if slot.is_none() {
                *slot = Some(id.clone());
            }
        }
        refs
    }
}

/// A case: one release with a need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// Stable id.
    pub case_id: CaseId,
    /// The release's natural key.
    pub release_id: String,
    /// The person (smallest identifier of their group). Personal data: never log it.
    #[serde(skip)]
    pub person: Option<PersonKey>,
    /// Day 0.
    pub release_date: NaiveDate,
    /// The last day engagement counts.
    pub last_window_day: NaiveDate,
    /// When it becomes overdue without engagement.
    pub overdue_at: DateTime<Utc>,
    /// The releasing prison.
    pub prison: Option<PrisonCode>,
    /// The local authority the person is going to.
    pub local_authority: LocalAuthorityCode,
    /// The provider referred to: the treatment organisation responsible for the case.
    pub provider: Option<ProviderCode>,
    /// The probation service responsible for the case: the newest of the person's probation
    /// referrals (its sender) and allocations (their service), when there is one. (Absent from
    /// states stored before it existed.)
    #[serde(default)]
    pub probation: Option<OrganisationCode>,
    /// How each organisation knows the person: the smallest CRN, NOMS and NHS number of
    /// their group. Personal data: never log it.
    #[serde(skip)]
    pub references: PersonReferences,
    /// When the pipeline could first know of the case (release and need both recorded).
    pub known_at: DateTime<Utc>,
    /// Where it stands.
    pub outcome: Outcome,
    /// The engagement that counts, if any (also for open cases).
    pub engagement: Option<Engagement>,
    /// Flags due by `now`.
    pub flags: Vec<Flag>,
}

impl Case {
    /// The next instant at which time alone changes this case (a warning or overdue falls
    /// due, or the window closes), or `None` when only new events can change it.
    pub fn next_due(&self, rules: &Rules, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.outcome != Outcome::Open {
            return None;
        }
        rules
            .at_risk_days
            .iter()
            .map(|d| rules.at_risk_at(self.release_date, *d))
            .chain(std::iter::once(self.overdue_at))
            .filter(|t| *t > now)
            .min()
    }
}

/// A treatment record that matched more than one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchReview {
    /// The record.
    pub event_id: EventId,
    /// The people it could belong to.
    pub candidates: BTreeSet<PersonKey>,
}

/// The result of applying the rules to a set of events.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assessment {
    /// Cases, ordered by id.
    pub cases: Vec<Case>,
    /// Ambiguous matches for a person to review, ordered by event id.
    pub reviews: Vec<MatchReview>,
    /// Referrals whose expected release date is long past with no release movement: the
    /// release may be missing from the feed. Ordered by referral id.
    pub stale_referrals: Vec<StaleReferral>,
}

/// A referral made for a release that, by its expected date plus
/// [`Rules::stale_referral_days`], has not been seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleReferral {
    /// The source's referral id.
    pub referral_id: String,
    /// The release date the referral expected.
    pub expected_release: NaiveDate,
}

/// Recorded time and event id: the order in which two versions of one record are compared.
type Stamp = (DateTime<Utc>, EventId);

fn stamp(e: &SourceEvent) -> Stamp {
    (e.meta().occurred_at, e.id())
}

/// Keep the newest version of each record (by recorded time, then event id).
fn newest<'a, K: Ord, T>(
    items: impl IntoIterator<Item = (K, Stamp, &'a T)>,
) -> BTreeMap<K, (Stamp, &'a T)> {
    let mut out: BTreeMap<K, (Stamp, &'a T)> = BTreeMap::new();
    for (k, s, t) in items {
        match out.get(&k) {
            Some((old, _)) if *old >= s => {}
            _ => {
                out.insert(k, (s, t));
            }
        }
    }
    out
}

fn engagement_date(rules: &Rules, start: &TreatmentStart) -> Option<NaiveDate> {
    match rules.engagement_basis {
        EngagementBasis::Triage => start.triage_date,
        EngagementBasis::FirstIntervention => start.intervention_start,
        EngagementBasis::EarliestOfTriageAndIntervention => {
            match (start.triage_date, start.intervention_start) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
    }
}

/// One treatment episode matched to a person.
struct Episode<'a> {
    start: &'a TreatmentStart,
    date: NaiveDate,
    recorded_at: DateTime<Utc>,
    strength: MatchStrength,
    discharged_on: Option<NaiveDate>,
}

/// The releases of one person on one date, collapsed into one.
struct ReleaseGroup<'a> {
    release_id: String,
    date: NaiveDate,
    /// Versions not withdrawn, newest last.
    live: Vec<(Stamp, &'a PrisonRelease)>,
    /// When the last live version was withdrawn, if all were.
    withdrawn_at: Option<DateTime<Utc>>,
    /// The releasing prison from the newest version that names one, withdrawn or not.
    prison: Option<(Stamp, PrisonCode)>,
}

/// Apply the rules to a set of events at time `now`.
pub fn assess<'a>(
    events: impl IntoIterator<Item = &'a SourceEvent>,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Assessment {
    // One copy of each event id.
    let events: BTreeMap<EventId, &SourceEvent> = events.into_iter().map(|e| (e.id(), e)).collect();
    let people = People::resolve(events.values().copied());

    let mut by_person: BTreeMap<PersonKey, Vec<&SourceEvent>> = BTreeMap::new();
    let mut episodes: BTreeMap<PersonKey, Vec<Episode>> = BTreeMap::new();
    let mut reviews = Vec::new();

    // Newest version of each treatment start and discharge, per (provider, episode).
    let starts = newest(events.values().filter_map(|e| match e {
        SourceEvent::TreatmentStart(s) => {
            Some(((s.provider.clone(), s.episode_id.clone()), stamp(e), s))
        }
        _ => None,
    }));
    let discharges = newest(events.values().filter_map(|e| match e {
        SourceEvent::TreatmentDischarge(d) => {
            Some(((d.provider.clone(), d.episode_id.clone()), stamp(e), d))
        }
        _ => None,
    }));
    for (key, ((recorded_at, event_id), start)) in &starts {
        let found = people.match_record(
            &start.person.identifiers,
            start.person.attributor.as_ref(),
            Some(&start.local_authority),
        );
        let (person, strength) = match found {
            Match::Definite(p) => (p, MatchStrength::Definite),
            Match::Probable(p) => (p, MatchStrength::Probable),
            Match::Ambiguous(candidates) => {
                reviews.push(MatchReview {
                    event_id: *event_id,
                    candidates,
                });
                continue;
            }
            Match::Unmatched => continue,
        };
        let Some(date) = engagement_date(rules, start) else {
            continue;
        };
        episodes.entry(person).or_default().push(Episode {
            start,
            date,
            recorded_at: *recorded_at,
            strength,
            discharged_on: discharges.get(key).map(|(_, d)| d.discharged_on),
        });
    }

    // Everything else belongs to the person named by its identifiers.
    let mut withdrawals: BTreeMap<&str, (DateTime<Utc>, WithdrawalReason)> = BTreeMap::new();
    for event in events.values() {
        if let SourceEvent::ReleaseWithdrawn(w) = event {
            let entry = withdrawals
                .entry(w.release_id.as_str())
                .or_insert((w.meta.occurred_at, w.reason));
            if w.meta.occurred_at < entry.0 {
                *entry = (w.meta.occurred_at, w.reason);
            }
        }
        if let SourceEvent::PersonDied(d) = event {
            match people.match_record(&d.person.identifiers, None, None) {
                Match::Definite(p) => by_person.entry(p).or_default().push(event),
                _ => continue,
            }
        }
        let person = match event {
            SourceEvent::Release(r) => &r.person,
            SourceEvent::Referral(r) => &r.person,
            SourceEvent::CustodyAdmission(a) => &a.person,
            SourceEvent::ProbationAllocated(a) => &a.person,
            _ => continue,
        };
        if let Some(key) = people.key_of(&person.identifiers) {
            by_person.entry(key).or_default().push(event);
        }
    }

    let mut cases = Vec::new();
    let mut stale_referrals = Vec::new();
    for (person, person_events) in &by_person {
        let no_episodes = Vec::new();
        let person_episodes = episodes.get(person).unwrap_or(&no_episodes);
        let (person_cases, stale) = assess_person(
            person,
            person_events,
            person_episodes,
            &people,
            &withdrawals,
            rules,
            now,
        );
        cases.extend(person_cases);
        stale_referrals.extend(stale);
    }
    cases.sort_by_key(|c| c.case_id);
    reviews.sort_by_key(|r| r.event_id);
    stale_referrals.sort_by(|a, b| a.referral_id.cmp(&b.referral_id));
    Assessment {
        cases,
        reviews,
        stale_referrals,
    }
}

fn assess_person(
    person: &PersonKey,
    events: &[&SourceEvent],
    episodes: &[Episode],
    people: &People,
    withdrawals: &BTreeMap<&str, (DateTime<Utc>, WithdrawalReason)>,
    rules: &Rules,
    now: DateTime<Utc>,
) -> (Vec<Case>, Vec<StaleReferral>) {
    // Newest version of each release, then one group per release date.
    let releases = newest(events.iter().filter_map(|e| match e {
        SourceEvent::Release(r) => Some((r.release_id.as_str(), stamp(e), r)),
        _ => None,
    }));
    let mut groups: BTreeMap<NaiveDate, ReleaseGroup> = BTreeMap::new();
    for (release_id, (s, r)) in releases {
        let starts_case = r.reason == ReleaseReason::Released
            && !r.planned
            && rules.classify_movement(r.movement_code.as_deref()) != MovementClass::Absconded;
        if !starts_case {
            continue;
        }
        let group = groups
            .entry(r.release_date)
            .or_insert_with(|| ReleaseGroup {
                release_id: release_id.to_owned(),
                date: r.release_date,
                live: Vec::new(),
                withdrawn_at: None,
                prison: None,
            });
        group.release_id = group.release_id.as_str().min(release_id).to_owned();
        if let Some(p) = &r.prison {
            if group.prison.as_ref().is_none_or(|(old, _)| *old < s) {
                group.prison = Some((s, p.clone()));
            }
        }
        match withdrawals.get(release_id) {
            Some((at, _)) => {
                group.withdrawn_at = Some(group.withdrawn_at.map_or(*at, |w| w.max(*at)));
            }
            None => group.live.push((s, r)),
        }
    }
    for group in groups.values_mut() {
        group.live.sort_by_key(|(s, _)| *s);
        if !group.live.is_empty() {
            group.withdrawn_at = None;
        }
    }

    // Each referral establishes the need for the earliest release it can belong to.
    let referrals = newest(events.iter().filter_map(|e| match e {
        SourceEvent::Referral(r) => Some((r.referral_id.as_str(), stamp(e), r)),
        _ => None,
    }));
    let mut needs: BTreeMap<NaiveDate, Vec<(Stamp, &TreatmentNeed)>> = BTreeMap::new();
    let mut stale = Vec::new();
    let today = crate::calendar::london_date(now);
    for (s, referral) in referrals.values() {
        let target = groups
            .values()
            .find(|g| referral.referred_on <= rules.latest_need(g.date));
        if target.is_none() {
            if let Some(expected) = referral.expected_release {
                if today > expected + chrono::Duration::days(i64::from(rules.stale_referral_days)) {
                    stale.push(StaleReferral {
                        referral_id: referral.referral_id.clone(),
                        expected_release: expected,
                    });
                }
            }
        }
        if let Some(group) = target {
            needs
                .entry(group.date)
                .or_default()
                .push((*s, &referral.need));
        }
    }

    let dates: Vec<NaiveDate> = groups.keys().copied().collect();
    let mut out = Vec::new();
    for (i, group) in groups.values().enumerate() {
        let next_release = dates.get(i + 1).copied();
        // The need: carried by the release itself, else the newest referral for it.
        let mut candidates: Vec<(Stamp, &TreatmentNeed)> = group
            .live
            .iter()
            .filter_map(|(s, r)| r.need.as_ref().map(|n| (*s, n)))
            .collect();
        candidates.extend(needs.get(&group.date).into_iter().flatten().copied());
        candidates.sort_by_key(|(s, _)| *s);
        let Some(&(need_stamp, need)) = candidates.last() else {
            continue;
        };
        out.push(build_case(
            person,
            group,
            need,
            need_stamp,
            next_release,
            events,
            episodes,
            people,
            rules,
            now,
        ));
    }
    (out, stale)
}

#[allow(clippy::too_many_arguments)]
fn build_case(
    person: &PersonKey,
    group: &ReleaseGroup,
    need: &TreatmentNeed,
    need_stamp: Stamp,
    next_release: Option<NaiveDate>,
    events: &[&SourceEvent],
    episodes: &[Episode],
    people: &People,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Case {
    let release_date = group.date;
    let last_day = rules.last_window_day(release_date);
    let overdue_at = rules.overdue_at(release_date);
    let release_recorded = group.live.first().map(|(s, _)| s.0).unwrap_or(need_stamp.0);
    let known_at = release_recorded.max(need_stamp.0);
    let prison = group.prison.as_ref().map(|(_, p)| p.clone());

    // Custody began at the latest admission on or before the release, where one is known.
    let custody_began = events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::CustodyAdmission(a) if a.admitted_on <= release_date => {
                Some(a.admitted_on)
            }
            _ => None,
        })
        .max();
    let engagement = find_engagement(
        episodes,
        release_date,
        next_release,
        custody_began,
        overdue_at,
        rules,
    );

    // Exclusions, first the ones fixed at release, then the earliest dated one in the window.
    let movement = group
        .live
        .iter()
        .map(|(_, r)| rules.classify_movement(r.movement_code.as_deref()))
        .filter(|m| *m != MovementClass::Community)
        .min();
    let fixed = match movement {
        Some(MovementClass::DiedInCustody) => Some(ExclusionReason::Died),
        Some(MovementClass::ReleasedToHospital) => Some(ExclusionReason::ReleasedToHospital),
        Some(MovementClass::Deported) => Some(ExclusionReason::Deported),
        _ => None,
    }
    .map(|r| (r, release_recorded))
    .or_else(|| {
        (!need.local_authority.is_in_england())
            .then_some((ExclusionReason::ReleasedOutsideEngland, need_stamp.0))
    })
    .or_else(|| {
        people
            .attributors_of(person)
            .any(|a| a.age_on(release_date) < rules.minimum_age)
            .then_some((ExclusionReason::Under18, known_at))
    });
    let engaged_by = |date: NaiveDate| engagement.as_ref().is_some_and(|e| e.date <= date);
    let dated = events
        .iter()
        .filter_map(|e| match e {
            // Someone who engaged and then died did engage: only a death before engaging
            // leaves the cohort, as a re-admission does.
            SourceEvent::PersonDied(d)
                if d.died_on >= release_date && d.died_on <= last_day && !engaged_by(d.died_on) =>
            {
                Some((d.died_on, ExclusionReason::Died, stamp(e)))
            }
            SourceEvent::CustodyAdmission(a)
                if a.admitted_on > release_date
                    && a.admitted_on <= last_day
                    && !engaged_by(a.admitted_on) =>
            {
                let reason = match a.kind {
                    AdmissionKind::SecureTransfer => ExclusionReason::TransferredSecure,
                    AdmissionKind::Recall | AdmissionKind::Admission => ExclusionReason::Readmitted,
                };
                Some((a.admitted_on, reason, stamp(e)))
            }
            _ => None,
        })
        .min()
        .map(|(_, reason, s)| (reason, s.0));
    let exclusion = fixed.or(dated);

    let outcome = if group.live.is_empty() {
        Outcome::Withdrawn
    } else if let Some((reason, _)) = exclusion {
        Outcome::Excluded(reason)
    } else if now < overdue_at {
        Outcome::Open
    } else if engagement
        .as_ref()
        .is_some_and(|e| e.timeliness != Timeliness::Late)
    {
        Outcome::Engaged
    } else {
        Outcome::NotEngaged
    };

    // The probation service: the newest probation referral's sender or allocation's service.
    let probation = events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Referral(r) if r.origin == ReferralOrigin::Probation => {
                Some((stamp(e), &r.meta.source))
            }
            SourceEvent::ProbationAllocated(a) => Some((stamp(e), &a.probation_service)),
            _ => None,
        })
        .max_by_key(|(s, _)| *s)
        .map(|(_, source)| source.clone());

    let case_id = CaseId::for_release(&group.release_id);
    let settled = match outcome {
        Outcome::Withdrawn => group.withdrawn_at.map(|t| (t, FlagState::Withdrawn)),
        Outcome::Excluded(_) => exclusion.map(|(_, t)| (t, FlagState::ResolvedExcluded)),
        _ => engagement
            .as_ref()
            .map(|e| (e.recorded_at, FlagState::ResolvedEngaged)),
    };
    let mut due: Vec<(FlagKind, DateTime<Utc>)> = rules
        .at_risk_days
        .iter()
        .map(|d| (FlagKind::AtRisk(*d), rules.at_risk_at(release_date, *d)))
        .collect();
    due.push((FlagKind::Overdue, overdue_at));
    let flags = due
        .into_iter()
        .filter(|(_, due_at)| *due_at <= now)
        .filter_map(|(kind, due_at)| {
            let raised_at = due_at.max(known_at);
            // Settled before it was raised: the flag never existed.
            if settled.is_some_and(|(t, _)| t <= raised_at) {
                return None;
            }
            let (state, settled_at) = match settled {
                Some((t, state)) => (state, Some(t)),
                None => (FlagState::Raised, None),
            };
            Some(Flag {
                flag_id: flag_id(case_id, kind),
                kind,
                due_at,
                raised_at,
                state,
                settled_at,
                notified: state == FlagState::Raised && rules.within_flag_horizon(due_at, now),
            })
        })
        .collect();

    Case {
        case_id,
        release_id: group.release_id.clone(),
        person: Some(person.clone()),
        release_date,
        last_window_day: last_day,
        overdue_at,
        prison,
        local_authority: need.local_authority.clone(),
        provider: need.provider.clone(),
        probation,
        references: PersonReferences::from_identifiers(people.identifiers_of(person)),
        known_at,
        outcome,
        engagement,
        flags,
    }
}

/// The stable id of a case's flag of a kind.
pub fn flag_id(case: CaseId, kind: FlagKind) -> Uuid {
    let kind = match kind {
        FlagKind::AtRisk(day) => format!("at_risk:{day}"),
        FlagKind::Overdue => "overdue".to_owned(),
    };
    Uuid::new_v5(&ID_NAMESPACE, format!("flag:{}:{kind}", case.0).as_bytes())
}

/// The case's engagement: the earliest episode dated from `rules.earliest_engagement` (7
/// days before release) and before the next release's own tolerance, or an episode that was
/// already running: begun before custody began (`custody_began`, the latest admission on or
/// before the release) and not discharged before the release. With no admission known, no
/// episode counts as already running: a provider that never records discharges must not be
/// credited for people it has not seen.
fn find_engagement(
    episodes: &[Episode],
    release_date: NaiveDate,
    next_release: Option<NaiveDate>,
    custody_began: Option<NaiveDate>,
    overdue_at: DateTime<Utc>,
    rules: &Rules,
) -> Option<Engagement> {
    let earliest = rules.earliest_engagement(release_date);
    let before_next = |d: NaiveDate| next_release.is_none_or(|n| d < rules.earliest_engagement(n));
    let last_day = rules.last_window_day(release_date);
    episodes
        .iter()
        .filter_map(|ep| {
            let (date, timeliness) = if ep.date >= earliest && before_next(ep.date) {
                let timeliness = if ep.date > last_day {
                    Timeliness::Late
                } else if ep.recorded_at >= overdue_at {
                    Timeliness::ReportedLate
                } else {
                    Timeliness::InWindow
                };
                (ep.date, timeliness)
            } else if ep.date < earliest
                && custody_began.is_some_and(|began| ep.date < began)
                && ep.discharged_on.is_none_or(|d| d >= release_date)
            {
                (release_date, Timeliness::AlreadyInTreatment)
            } else {
                return None;
            };
            Some(Engagement {
                date,
                timeliness,
                recorded_at: ep.recorded_at,
                provider: ep.start.provider.clone(),
                strength: ep.strength,
            })
        })
        .min_by(|a, b| {
            (a.date, a.recorded_at, &a.provider).cmp(&(b.date, b.recorded_at, &b.provider))
        })
}
