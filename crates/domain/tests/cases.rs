//! The case rules, lived through as scenarios: releases meeting needs, engagement around the
//! window's edges, late reporting, exclusions, withdrawals, identity links and merges, and the
//! property that any order and any duplication of the same events gives the same cases.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use continuity_domain::events::*;
use continuity_domain::*;
use proptest::prelude::*;
use uuid::Uuid;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn at(date: NaiveDate, hour: u32) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_hms_opt(hour, 0, 0).unwrap())
}

const OXON: &str = "E10000025";

/// Builds events with sequential ids.
#[derive(Default)]
struct Scenario {
    next: u128,
    events: Vec<SourceEvent>,
}

fn noms(n: &str) -> Identifier {
    Identifier::parse(IdentifierKind::Noms, n).unwrap()
}

fn crn(n: &str) -> Identifier {
    Identifier::parse(IdentifierKind::Crn, n).unwrap()
}

fn attributor(first: &str, last: &str, dob: NaiveDate) -> Attributor {
    Attributor::new(first, last, dob, Sex::Male, d(2026, 11, 24)).unwrap()
}

fn la(code: &str) -> LocalAuthorityCode {
    LocalAuthorityCode::parse(code).unwrap()
}

impl Scenario {
    fn meta(&mut self, recorded: DateTime<Utc>) -> EventMeta {
        self.next += 1;
        EventMeta {
            event_id: EventId(Uuid::from_u128(self.next)),
            occurred_at: recorded,
            source: OrganisationCode::parse("test").unwrap(),
        }
    }

    fn release(&mut self, id: &str, who: Identifier, date: NaiveDate, code: &str) -> &mut Self {
        let meta = self.meta(at(date, 12));
        self.events.push(SourceEvent::Release(PrisonRelease {
            meta,
            release_id: id.into(),
            person: PersonRef {
                identifiers: vec![who],
                attributor: None,
            },
            release_date: date,
            planned: false,
            reason: ReleaseReason::Released,
            movement_code: Some(code.into()),
            prison: Some(PrisonCode::parse("MDI").unwrap()),
            need: None,
        }));
        self
    }

    fn referral(
        &mut self,
        id: &str,
        who: Vec<Identifier>,
        a: Option<Attributor>,
        on: NaiveDate,
        to: &str,
    ) -> &mut Self {
        let meta = self.meta(at(on, 9));
        self.events.push(SourceEvent::Referral(Referral {
            meta,
            referral_id: id.into(),
            person: PersonRef {
                identifiers: who,
                attributor: a,
            },
            referred_on: on,
            origin: ReferralOrigin::Prison,
            expected_release: None,
            need: TreatmentNeed {
                local_authority: la(to),
                provider: Some(ProviderCode::parse("OXPROV").unwrap()),
            },
        }));
        self
    }

    fn start(
        &mut self,
        episode: &str,
        who: Vec<Identifier>,
        a: Option<Attributor>,
        triage: NaiveDate,
        recorded: DateTime<Utc>,
    ) -> &mut Self {
        let meta = self.meta(recorded);
        self.events
            .push(SourceEvent::TreatmentStart(TreatmentStart {
                meta,
                episode_id: episode.into(),
                provider: ProviderCode::parse("OXPROV").unwrap(),
                local_authority: la(OXON),
                person: PersonRef {
                    identifiers: who,
                    attributor: a,
                },
                triage_date: Some(triage),
                intervention_start: None,
            }));
        self
    }

    fn push(
        &mut self,
        f: impl FnOnce(EventMeta) -> SourceEvent,
        recorded: DateTime<Utc>,
    ) -> &mut Self {
        let meta = self.meta(recorded);
        self.events.push(f(meta));
        self
    }

    /// An admission of `who` on `on`, recorded that evening.
    fn admitted(&mut self, who: Identifier, on: NaiveDate, kind: AdmissionKind) -> &mut Self {
        self.push(
            |meta| {
                SourceEvent::CustodyAdmission(CustodyAdmission {
                    meta,
                    person: PersonRef {
                        identifiers: vec![who],
                        attributor: None,
                    },
                    admitted_on: on,
                    kind,
                })
            },
            at(on, 18),
        )
    }

    /// The death of `who` on `on`, recorded that evening.
    fn died(&mut self, who: Identifier, on: NaiveDate) -> &mut Self {
        self.push(
            |meta| {
                SourceEvent::PersonDied(PersonDied {
                    meta,
                    person: PersonRef {
                        identifiers: vec![who],
                        attributor: None,
                    },
                    died_on: on,
                })
            },
            at(on, 18),
        )
    }

    fn assess(&self, now: DateTime<Utc>) -> Assessment {
        assess(&self.events, &Rules::default(), now)
    }
}

/// A person released from Moorland on 2 November 2026 to Oxfordshire, referred beforehand.
fn released_with_need() -> Scenario {
    let mut s = Scenario::default();
    s.referral(
        "R1",
        vec![noms("A1234BC")],
        Some(attributor("John", "Smith", d(1985, 4, 1))),
        d(2026, 10, 20),
        OXON,
    )
    .release("REL1", noms("A1234BC"), d(2026, 11, 2), "CR");
    s
}

fn only_case(a: &Assessment) -> &Case {
    assert_eq!(a.cases.len(), 1, "{:#?}", a.cases);
    &a.cases[0]
}

#[test]
fn release_without_need_opens_no_case_until_the_referral_arrives() {
    let mut s = Scenario::default();
    s.release("REL1", noms("A1234BC"), d(2026, 11, 2), "CR");
    assert!(s.assess(at(d(2026, 11, 3), 0)).cases.is_empty());
    // A referral up to 7 days after release establishes the need.
    s.referral("R1", vec![noms("A1234BC")], None, d(2026, 11, 9), OXON);
    let a = s.assess(at(d(2026, 11, 10), 0));
    assert_eq!(only_case(&a).outcome, Outcome::Open);
    // Eight days after is too late.
    let mut late = Scenario::default();
    late.release("REL1", noms("A1234BC"), d(2026, 11, 2), "CR")
        .referral("R1", vec![noms("A1234BC")], None, d(2026, 11, 10), OXON);
    assert!(late.assess(at(d(2026, 11, 11), 0)).cases.is_empty());
}

#[test]
fn referral_alone_opens_nothing_and_warns_once_its_expected_release_is_long_past() {
    let mut s = Scenario::default();
    s.referral("R1", vec![noms("A1234BC")], None, d(2026, 10, 20), OXON);
    if let Some(SourceEvent::Referral(r)) = s.events.last_mut() {
        r.expected_release = Some(d(2026, 11, 2));
    }
    let a = s.assess(at(d(2026, 11, 16), 12));
    assert!(a.cases.is_empty());
    assert!(a.stale_referrals.is_empty(), "14 days after: not yet");
    let a = s.assess(at(d(2026, 11, 17), 12));
    assert_eq!(a.stale_referrals.len(), 1);
    assert_eq!(a.stale_referrals[0].referral_id, "R1");
    // The release arrives: no warning, a case.
    s.release("REL1", noms("A1234BC"), d(2026, 11, 3), "CR");
    let a = s.assess(at(d(2026, 11, 17), 12));
    assert!(a.stale_referrals.is_empty());
    assert_eq!(a.cases.len(), 1);
}

#[test]
fn planned_release_opens_no_case_until_it_happens() {
    let mut s = Scenario::default();
    s.referral("R1", vec![noms("A1234BC")], None, d(2026, 10, 20), OXON)
        .release("PLAN-1", noms("A1234BC"), d(2026, 11, 2), "CR");
    if let Some(SourceEvent::Release(r)) = s.events.last_mut() {
        r.planned = true;
    }
    assert!(s.assess(at(d(2026, 10, 25), 0)).cases.is_empty());
    s.release("REL1", noms("A1234BC"), d(2026, 11, 2), "CR");
    assert_eq!(s.assess(at(d(2026, 11, 3), 0)).cases.len(), 1);
}

#[test]
fn engagement_on_day_21_counts_and_day_22_does_not() {
    let release = d(2026, 11, 2);
    let mut on21 = released_with_need();
    on21.start(
        "E1",
        vec![noms("A1234BC")],
        None,
        release + Duration::days(21),
        at(release + Duration::days(21), 15),
    );
    let case = only_case(&on21.assess(at(d(2026, 12, 1), 0))).clone();
    assert_eq!(case.outcome, Outcome::Engaged);
    assert_eq!(case.engagement.unwrap().timeliness, Timeliness::InWindow);

    let mut on22 = released_with_need();
    on22.start(
        "E1",
        vec![noms("A1234BC")],
        None,
        release + Duration::days(22),
        at(release + Duration::days(22), 15),
    );
    let case = only_case(&on22.assess(at(d(2026, 12, 1), 0))).clone();
    assert_eq!(case.outcome, Outcome::NotEngaged);
    assert_eq!(
        case.engagement.as_ref().unwrap().timeliness,
        Timeliness::Late
    );
    // The overdue flag was raised at 00:00 on day 22 and resolved by the late engagement.
    let overdue = case
        .flags
        .iter()
        .find(|f| f.kind == FlagKind::Overdue)
        .unwrap();
    assert_eq!(
        overdue.due_at,
        Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap()
    );
    assert_eq!(overdue.state, FlagState::ResolvedEngaged);
}

#[test]
fn engagement_the_day_before_release_counts_and_eight_days_before_needs_an_open_episode() {
    let release = d(2026, 11, 2);
    let mut s = released_with_need();
    s.start(
        "E1",
        vec![noms("A1234BC")],
        None,
        release - Duration::days(1),
        at(release - Duration::days(1), 10),
    );
    let case = only_case(&s.assess(at(d(2026, 12, 1), 0))).clone();
    assert_eq!(case.outcome, Outcome::Engaged);
    assert_eq!(case.engagement.unwrap().date, release - Duration::days(1));

    // Begun eight days before release, never discharged, no admission known: only the 7-day
    // tolerance applies, so it does not count.
    let mut s = released_with_need();
    s.start(
        "E1",
        vec![noms("A1234BC")],
        None,
        release - Duration::days(8),
        at(release - Duration::days(8), 10),
    );
    let case = only_case(&s.assess(at(d(2026, 12, 1), 0))).clone();
    assert_eq!(case.engagement, None);
    assert_eq!(case.outcome, Outcome::NotEngaged);
    // Begun before a known admission and never discharged: already in treatment, engaged on
    // the release date.
    s.admitted(
        noms("A1234BC"),
        release - Duration::days(6),
        AdmissionKind::Admission,
    );
    let case = only_case(&s.assess(at(d(2026, 12, 1), 0))).clone();
    let engagement = case.engagement.unwrap();
    assert_eq!(engagement.timeliness, Timeliness::AlreadyInTreatment);
    assert_eq!(engagement.date, release);
    assert_eq!(case.outcome, Outcome::Engaged);
    // Begun during that custody (after the admission): not already in treatment.
    let mut s = released_with_need();
    s.admitted(
        noms("A1234BC"),
        release - Duration::days(30),
        AdmissionKind::Admission,
    )
    .start(
        "E1",
        vec![noms("A1234BC")],
        None,
        release - Duration::days(20),
        at(release - Duration::days(20), 10),
    );
    assert_eq!(
        only_case(&s.assess(at(d(2026, 12, 1), 0))).outcome,
        Outcome::NotEngaged
    );

    // Started long before a known admission and never discharged: already in treatment.
    let mut s = released_with_need();
    s.start(
        "E1",
        vec![noms("A1234BC")],
        None,
        d(2026, 6, 1),
        at(d(2026, 6, 1), 10),
    )
    .admitted(noms("A1234BC"), d(2026, 8, 1), AdmissionKind::Admission);
    let case = only_case(&s.assess(at(d(2026, 12, 1), 0))).clone();
    assert_eq!(
        case.engagement.unwrap().timeliness,
        Timeliness::AlreadyInTreatment
    );
    assert_eq!(case.outcome, Outcome::Engaged);

    // Discharged before release: that episode does not count.
    s.push(
        |meta| {
            SourceEvent::TreatmentDischarge(TreatmentDischarge {
                meta,
                episode_id: "E1".into(),
                provider: ProviderCode::parse("OXPROV").unwrap(),
                discharged_on: d(2026, 7, 1),
            })
        },
        at(d(2026, 7, 1), 10),
    );
    assert_eq!(
        only_case(&s.assess(at(d(2026, 12, 1), 0))).outcome,
        Outcome::NotEngaged
    );
}

#[test]
fn flags_follow_the_wall_clock_and_late_reports_resolve_them() {
    let release = d(2026, 11, 2);
    let mut s = released_with_need();
    // Day 6: nothing due yet.
    assert!(only_case(&s.assess(at(d(2026, 11, 7), 23)))
        .flags
        .is_empty());
    // Day 7 at 00:00: the first at-risk warning.
    let flags = only_case(&s.assess(Utc.with_ymd_and_hms(2026, 11, 9, 0, 0, 0).unwrap()))
        .flags
        .clone();
    assert_eq!(flags.len(), 1);
    assert_eq!(
        (flags[0].kind, flags[0].state),
        (FlagKind::AtRisk(7), FlagState::Raised)
    );
    // One second before day 22 begins: not overdue, still open.
    let case =
        only_case(&s.assess(Utc.with_ymd_and_hms(2026, 11, 23, 23, 59, 59).unwrap())).clone();
    assert_eq!(case.outcome, Outcome::Open);
    assert!(case.flags.iter().all(|f| f.kind != FlagKind::Overdue));
    // Day 22: overdue, finalised as not engaged.
    let case = only_case(&s.assess(Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap())).clone();
    assert_eq!(case.outcome, Outcome::NotEngaged);
    assert_eq!(case.flags.len(), 3);
    assert!(case.flags.iter().all(|f| f.state == FlagState::Raised));

    // Triage on day 10, recorded on day 25: engaged, reported late; every flag resolves.
    s.start(
        "E1",
        vec![noms("A1234BC")],
        None,
        release + Duration::days(10),
        at(d(2026, 11, 27), 9),
    );
    let case = only_case(&s.assess(at(d(2026, 12, 1), 0))).clone();
    assert_eq!(case.outcome, Outcome::Engaged);
    assert_eq!(
        case.engagement.as_ref().unwrap().timeliness,
        Timeliness::ReportedLate
    );
    assert_eq!(case.flags.len(), 3);
    assert!(case
        .flags
        .iter()
        .all(|f| f.state == FlagState::ResolvedEngaged));
    // Flag ids are stable.
    assert_eq!(case.flags[0].flag_id, flags[0].flag_id);
}

#[test]
fn engagement_recorded_in_time_raises_no_later_flags() {
    let release = d(2026, 11, 2);
    let mut s = released_with_need();
    s.start(
        "E1",
        vec![noms("A1234BC")],
        None,
        release + Duration::days(3),
        at(release + Duration::days(3), 17),
    );
    let case = only_case(&s.assess(at(d(2026, 12, 1), 0))).clone();
    assert!(case.flags.is_empty());
    assert_eq!(case.outcome, Outcome::Engaged);
}

#[test]
fn release_on_the_day_clocks_go_forward() {
    let mut s = Scenario::default();
    s.referral("R1", vec![noms("A1234BC")], None, d(2026, 3, 20), OXON)
        .release("REL1", noms("A1234BC"), d(2026, 3, 29), "CR");
    let case = only_case(&s.assess(at(d(2026, 5, 1), 0))).clone();
    assert_eq!(case.last_window_day, d(2026, 4, 19));
    // 00:00 BST on 20 April is 23:00 UTC on 19 April.
    assert_eq!(
        case.overdue_at,
        Utc.with_ymd_and_hms(2026, 4, 19, 23, 0, 0).unwrap()
    );
    let open = s.assess(Utc.with_ymd_and_hms(2026, 4, 19, 22, 59, 59).unwrap());
    assert_eq!(only_case(&open).outcome, Outcome::Open);
}

#[test]
fn movement_codes_exclude_or_open_nothing() {
    for (code, expected) in [
        ("DEC", Some(Outcome::Excluded(ExclusionReason::Died))),
        (
            "HO",
            Some(Outcome::Excluded(ExclusionReason::ReleasedToHospital)),
        ),
        ("DE", Some(Outcome::Excluded(ExclusionReason::Deported))),
        ("HD", Some(Outcome::NotEngaged)),
        ("UAL", None),
    ] {
        let mut s = Scenario::default();
        s.referral("R1", vec![noms("A1234BC")], None, d(2026, 10, 20), OXON)
            .release("REL1", noms("A1234BC"), d(2026, 11, 2), code);
        let a = s.assess(at(d(2026, 12, 10), 0));
        assert_eq!(a.cases.first().map(|c| c.outcome), expected, "{code}");
    }
}

#[test]
fn exclusions_inside_the_window() {
    let release = d(2026, 11, 2);
    // Recalled on day 10 before engaging.
    let mut s = released_with_need();
    s.admitted(
        noms("A1234BC"),
        release + Duration::days(10),
        AdmissionKind::Recall,
    );
    let case = only_case(&s.assess(at(d(2026, 12, 10), 0))).clone();
    assert_eq!(case.outcome, Outcome::Excluded(ExclusionReason::Readmitted));
    // The day-7 warning was raised before the recall and is resolved by it.
    assert_eq!(case.flags.len(), 1);
    assert_eq!(case.flags[0].state, FlagState::ResolvedExcluded);

    // Engaged on day 5, recalled on day 10: success stands.
    let mut s = released_with_need();
    s.start(
        "E1",
        vec![noms("A1234BC")],
        None,
        release + Duration::days(5),
        at(release + Duration::days(5), 9),
    )
    .admitted(
        noms("A1234BC"),
        release + Duration::days(10),
        AdmissionKind::Recall,
    );
    assert_eq!(
        only_case(&s.assess(at(d(2026, 12, 10), 0))).outcome,
        Outcome::Engaged
    );

    // Moved to a secure hospital on day 4: transferred to another secure setting.
    let mut s = released_with_need();
    s.admitted(
        noms("A1234BC"),
        release + Duration::days(4),
        AdmissionKind::SecureTransfer,
    );
    assert_eq!(
        only_case(&s.assess(at(d(2026, 12, 10), 0))).outcome,
        Outcome::Excluded(ExclusionReason::TransferredSecure)
    );

    // Engaged on day 3, died on day 10: engaged, a success.
    let mut s = released_with_need();
    s.start(
        "E1",
        vec![noms("A1234BC")],
        None,
        release + Duration::days(3),
        at(release + Duration::days(3), 9),
    )
    .died(noms("A1234BC"), release + Duration::days(10));
    assert_eq!(
        only_case(&s.assess(at(d(2026, 12, 10), 0))).outcome,
        Outcome::Engaged
    );
    // Died on day 3, before engaging (a treatment start dated later cannot be): excluded.
    let mut s = released_with_need();
    s.died(noms("A1234BC"), release + Duration::days(3)).start(
        "E1",
        vec![noms("A1234BC")],
        None,
        release + Duration::days(5),
        at(release + Duration::days(5), 9),
    );
    assert_eq!(
        only_case(&s.assess(at(d(2026, 12, 10), 0))).outcome,
        Outcome::Excluded(ExclusionReason::Died)
    );

    // Died on day 21 without engaging: excluded. Died on day 22: a failure.
    for (day, expected) in [
        (21, Outcome::Excluded(ExclusionReason::Died)),
        (22, Outcome::NotEngaged),
    ] {
        let mut s = released_with_need();
        s.died(noms("A1234BC"), release + Duration::days(day));
        assert_eq!(
            only_case(&s.assess(at(d(2026, 12, 10), 0))).outcome,
            expected,
            "day {day}"
        );
    }

    // Going to Wales: outside England.
    let mut s = Scenario::default();
    s.referral(
        "R1",
        vec![noms("A1234BC")],
        None,
        d(2026, 10, 20),
        "W06000015",
    )
    .release("REL1", noms("A1234BC"), release, "CR");
    assert_eq!(
        only_case(&s.assess(at(d(2026, 12, 10), 0))).outcome,
        Outcome::Excluded(ExclusionReason::ReleasedOutsideEngland)
    );

    // Seventeen on the release date.
    let mut s = Scenario::default();
    s.referral(
        "R1",
        vec![noms("A1234BC")],
        Some(attributor("A", "B", d(2008, 11, 3))),
        d(2026, 10, 20),
        OXON,
    )
    .release("REL1", noms("A1234BC"), release, "CR");
    assert_eq!(
        only_case(&s.assess(at(d(2026, 12, 10), 0))).outcome,
        Outcome::Excluded(ExclusionReason::Under18)
    );
}

#[test]
fn withdrawn_release_withdraws_its_case_and_flags() {
    let mut s = released_with_need();
    s.push(
        |meta| {
            SourceEvent::ReleaseWithdrawn(ReleaseWithdrawn {
                meta,
                release_id: "REL1".into(),
                reason: WithdrawalReason::RecordedInError,
            })
        },
        at(d(2026, 11, 12), 10),
    );
    let case = only_case(&s.assess(at(d(2026, 12, 10), 0))).clone();
    assert_eq!(case.outcome, Outcome::Withdrawn);
    assert_eq!(case.prison.as_ref().map(|p| p.as_str()), Some("MDI"));
    assert!(case.flags.iter().all(|f| f.state == FlagState::Withdrawn));
    assert_eq!(
        case.flags.len(),
        1,
        "only the day-7 warning was due before the withdrawal"
    );
}

#[test]
fn duplicate_release_records_make_one_case() {
    let mut s = released_with_need();
    // The same movement published again under another event id, and by the healthcare system.
    s.release("REL1", noms("A1234BC"), d(2026, 11, 2), "CR")
        .release("HC-77", noms("A1234BC"), d(2026, 11, 2), "CR");
    let a = s.assess(at(d(2026, 12, 10), 0));
    assert_eq!(only_case(&a).release_id, "HC-77");
    // A second release a month later, with a new referral, is a second case.
    s.referral("R2", vec![noms("A1234BC")], None, d(2026, 12, 1), OXON)
        .release("REL2", noms("A1234BC"), d(2026, 12, 5), "CR");
    assert_eq!(s.assess(at(d(2026, 12, 10), 0)).cases.len(), 2);
}

#[test]
fn probable_and_ambiguous_attributor_matches() {
    let john = attributor("John", "Smith", d(1985, 4, 1));
    let mut s = released_with_need();
    // Treatment record with no identifier: matched by attributor and local authority.
    s.start(
        "E1",
        vec![],
        Some(attributor("j", "SMITH", d(1985, 4, 1))),
        d(2026, 11, 5),
        at(d(2026, 11, 5), 12),
    );
    let case = only_case(&s.assess(at(d(2026, 12, 10), 0))).clone();
    assert_eq!(case.outcome, Outcome::Engaged);
    assert_eq!(case.engagement.unwrap().strength, MatchStrength::Probable);

    // A second person with the same attributor going to the same authority: ambiguous.
    s.referral(
        "R9",
        vec![noms("B7654DE")],
        Some(john),
        d(2026, 10, 21),
        OXON,
    )
    .release("REL9", noms("B7654DE"), d(2026, 11, 2), "CR");
    let a = s.assess(at(d(2026, 12, 10), 0));
    assert_eq!(a.cases.len(), 2);
    assert!(a.cases.iter().all(|c| c.outcome == Outcome::NotEngaged));
    assert_eq!(a.reviews.len(), 1);
    assert_eq!(a.reviews[0].candidates.len(), 2);
}

#[test]
fn links_and_merges_repoint_matches() {
    let release = d(2026, 11, 2);
    // The referral came from probation with a CRN only.
    let mut s = Scenario::default();
    s.referral("R1", vec![crn("X123456")], None, d(2026, 10, 20), OXON)
        .release("REL1", noms("A1234BC"), release, "CR");
    assert!(s.assess(at(d(2026, 12, 10), 0)).cases.is_empty());
    let link = |meta| {
        SourceEvent::IdentityLinked(IdentityChange {
            meta,
            kept: crn("X123456"),
            other: noms("A1234BC"),
        })
    };
    s.push(link, at(release, 15));
    assert_eq!(s.assess(at(d(2026, 12, 10), 0)).cases.len(), 1);

    // Treatment started under a retired NOMS number; the merge re-points it.
    s.start(
        "E1",
        vec![noms("Z9999ZZ")],
        None,
        release + Duration::days(2),
        at(release + Duration::days(2), 9),
    );
    assert_eq!(
        only_case(&s.assess(at(d(2026, 12, 10), 0))).outcome,
        Outcome::NotEngaged
    );
    let merge = |meta| {
        SourceEvent::IdentityMerged(IdentityChange {
            meta,
            kept: noms("A1234BC"),
            other: noms("Z9999ZZ"),
        })
    };
    s.push(merge, at(release + Duration::days(30), 9));
    assert_eq!(
        only_case(&s.assess(at(d(2026, 12, 10), 0))).outcome,
        Outcome::Engaged
    );
    // Undone later: the engagement no longer belongs to this person.
    let unmerge = |meta| {
        SourceEvent::IdentityUnmerged(IdentityChange {
            meta,
            kept: noms("A1234BC"),
            other: noms("Z9999ZZ"),
        })
    };
    s.push(unmerge, at(release + Duration::days(31), 9));
    assert_eq!(
        only_case(&s.assess(at(d(2026, 12, 10), 0))).outcome,
        Outcome::NotEngaged
    );
}

#[test]
fn corrections_take_the_newest_version_whatever_their_ids() {
    // A correction of REL1 to a death in custody, recorded a day later; once with the smaller
    // event id, once with the larger.
    for correction_first in [true, false] {
        let mut s = Scenario::default();
        let codes = if correction_first {
            ["DEC", "CR"]
        } else {
            ["CR", "DEC"]
        };
        for code in codes {
            s.release("REL1", noms("A1234BC"), d(2026, 11, 2), code);
            if code == "DEC" {
                if let Some(SourceEvent::Release(r)) = s.events.last_mut() {
                    r.meta.occurred_at = at(d(2026, 11, 3), 9);
                }
            }
        }
        s.referral("R1", vec![noms("A1234BC")], None, d(2026, 10, 20), OXON);
        let case = only_case(&s.assess(at(d(2026, 12, 10), 0))).clone();
        assert_eq!(case.outcome, Outcome::Excluded(ExclusionReason::Died));
    }
}

// ---- Order and duplication do not matter ----

/// A random history for a few people who share attributors, so matches can be probable or
/// ambiguous, with every kind of event.
fn history() -> impl Strategy<Value = Vec<SourceEvent>> {
    let person = 0usize..4;
    // Few distinct days, so releases, referrals, withdrawals and episodes collide.
    let day = (0i64..10).prop_map(|d| d * 6);
    let step = (0u8..14, person, day, 0i64..30, any::<bool>());
    proptest::collection::vec(step, 1..40).prop_map(|steps| {
        let people = ["A1234BC", "B2345CD", "C3456DE", "D4567EF"];
        let crns = ["X000001", "X000002", "X000003", "X000004"];
        let base = d(2026, 1, 5);
        let mut s = Scenario::default();
        for (kind, p, day, lag, flag) in steps {
            let date = base + Duration::days(day);
            let who = noms(people[p]);
            // People 0 and 1 share an attributor.
            let a = attributor(
                if p < 2 { "J" } else { "K" },
                "S",
                d(1980, 1, 1 + p as u32 / 2),
            );
            let recorded = at(date + Duration::days(lag), 10);
            let kind = match kind {
                0..=2 => 0,
                3..=5 => 1,
                6 | 7 => 2,
                k => k - 5,
            };
            match kind {
                0 => {
                    s.release(
                        &format!("REL-{p}-{day}"),
                        who,
                        date,
                        if flag { "CR" } else { "DEC" },
                    );
                }
                1 => {
                    let on = date - Duration::days(lag % 10);
                    s.referral(&format!("REF-{p}-{day}"), vec![who], Some(a), on, OXON);
                }
                2 => {
                    let ids = if flag { vec![who] } else { vec![] };
                    s.start(&format!("EP-{p}-{day}"), ids, Some(a), date, recorded);
                }
                3 => {
                    s.push(
                        |meta| {
                            SourceEvent::CustodyAdmission(CustodyAdmission {
                                meta,
                                person: PersonRef {
                                    identifiers: vec![who],
                                    attributor: None,
                                },
                                admitted_on: date,
                                kind: AdmissionKind::Recall,
                            })
                        },
                        recorded,
                    );
                }
                4 => {
                    s.push(
                        |meta| {
                            SourceEvent::PersonDied(PersonDied {
                                meta,
                                person: PersonRef {
                                    identifiers: vec![who],
                                    attributor: None,
                                },
                                died_on: date,
                            })
                        },
                        recorded,
                    );
                }
                5 => {
                    s.push(
                        |meta| {
                            SourceEvent::ReleaseWithdrawn(ReleaseWithdrawn {
                                meta,
                                release_id: format!("REL-{p}-{day}"),
                                reason: WithdrawalReason::Cancelled,
                            })
                        },
                        recorded,
                    );
                }
                6 => {
                    s.push(
                        |meta| {
                            SourceEvent::IdentityLinked(IdentityChange {
                                meta,
                                kept: crn(crns[p]),
                                other: who,
                            })
                        },
                        recorded,
                    );
                }
                7 => {
                    let other = noms(people[(p + 1) % 4]);
                    s.push(
                        |meta| {
                            let change = IdentityChange {
                                meta,
                                kept: who,
                                other,
                            };
                            if flag {
                                SourceEvent::IdentityMerged(change)
                            } else {
                                SourceEvent::IdentityUnmerged(change)
                            }
                        },
                        recorded,
                    );
                }
                _ => {
                    s.push(
                        |meta| {
                            SourceEvent::TreatmentDischarge(TreatmentDischarge {
                                meta,
                                episode_id: format!("EP-{p}-{day}"),
                                provider: ProviderCode::parse("OXPROV").unwrap(),
                                discharged_on: date,
                            })
                        },
                        recorded,
                    );
                }
            }
        }
        s.events
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_order_and_duplication_gives_the_same_cases(
        events in history(),
        seed in any::<u64>(),
        dups in proptest::collection::vec(any::<proptest::sample::Index>(), 0..20),
        now_days in 0i64..120,
    ) {
        let now = at(d(2026, 1, 5) + Duration::days(now_days), 6);
        let rules = Rules::default();
        let expected = assess(&events, &rules, now);

        let mut shuffled = events.clone();
        for i in &dups {
            shuffled.push(i.get(&events).clone());
        }
        // Fisher-Yates with a seeded LCG: proptest shrinks the seed with everything else.
        let mut state = seed;
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let j = (state >> 33) as usize % (i + 1);
            shuffled.swap(i, j);
        }
        prop_assert_eq!(assess(&shuffled, &rules, now), expected);
    }
}

#[test]
fn changes_follow_a_case_through_its_life() {
    let release = d(2026, 11, 2);
    let mut s = released_with_need();
    let case_at = |s: &Scenario, now| s.assess(now).cases.into_iter().next();
    let day = |n: i64| {
        Utc.from_utc_datetime(&(release + Duration::days(n)).and_hms_opt(6, 0, 0).unwrap())
    };

    // Opened on day 1.
    let c1 = case_at(&s, day(1));
    let (cases, flags) = changes(None, c1.as_ref(), day(1));
    assert_eq!(
        cases.iter().map(|c| c.kind).collect::<Vec<_>>(),
        [CaseChangeKind::Opened]
    );
    assert!(flags.is_empty());

    // Day 7: at risk, flag raised and to be sent.
    let c7 = case_at(&s, day(7));
    let (cases, flags) = changes(c1.as_ref(), c7.as_ref(), day(7));
    assert_eq!(
        cases.iter().map(|c| c.kind).collect::<Vec<_>>(),
        [CaseChangeKind::AtRisk]
    );
    assert_eq!(flags.len(), 1);
    assert!(flags[0].flag.notified);
    assert_eq!(flags[0].flag.state, FlagState::Raised);

    // Nothing new on day 8: no changes at all.
    let mut c8 = case_at(&s, day(8));
    carry_over_flags(c7.as_ref(), c8.as_mut().unwrap(), day(8));
    assert_eq!(changes(c7.as_ref(), c8.as_ref(), day(8)), (vec![], vec![]));

    // Day 22: overdue (and the day-14 warning came in between). Assessed afresh, the day-7
    // flag would no longer be sent (it fell due 15 days ago); it was sent, and that carries
    // over.
    let mut c22 = case_at(&s, day(22));
    assert!(!c22.as_ref().unwrap().flags[0].notified);
    carry_over_flags(c8.as_ref(), c22.as_mut().unwrap(), day(22));
    let (cases, flags) = changes(c8.as_ref(), c22.as_ref(), day(22));
    assert_eq!(
        cases.iter().map(|c| c.kind).collect::<Vec<_>>(),
        [CaseChangeKind::AtRisk, CaseChangeKind::Overdue]
    );
    assert_eq!(flags.len(), 2);
    assert!(c22.as_ref().unwrap().flags.iter().all(|f| f.notified));

    // Day 25: triage dated day 10 arrives; engaged, reported late; three flags resolve, and
    // the caseworkers who were told they were raised are told they resolved.
    s.start(
        "E1",
        vec![noms("A1234BC")],
        None,
        release + Duration::days(10),
        day(25),
    );
    let mut c25 = case_at(&s, day(25));
    carry_over_flags(c22.as_ref(), c25.as_mut().unwrap(), day(25));
    let (cases, flags) = changes(c22.as_ref(), c25.as_ref(), day(25));
    assert_eq!(
        cases.iter().map(|c| c.kind).collect::<Vec<_>>(),
        [CaseChangeKind::Engaged, CaseChangeKind::Resolved]
    );
    assert_eq!(flags.len(), 3);
    assert!(flags
        .iter()
        .all(|f| f.flag.state == FlagState::ResolvedEngaged && f.flag.notified));

    // The same transition computed again has the same ids.
    assert_eq!(changes(c22.as_ref(), c25.as_ref(), day(25)).0, cases);

    // The case vanishes (its release withdrawn upstream and the case dropped): withdrawn.
    let (cases, _) = changes(c25.as_ref(), None, day(26));
    assert_eq!(cases[0].kind, CaseChangeKind::Withdrawn);
}

#[test]
fn replayed_history_pages_nobody() {
    // A case from last year assessed today for the first time: its flags exist and resolve,
    // but none is to be sent, then or later.
    let s = released_with_need();
    let now = at(d(2027, 11, 1), 9);
    let case = s.assess(now).cases.into_iter().next();
    let (_, flags) = changes(None, case.as_ref(), now);
    assert_eq!(flags.len(), 3);
    assert!(flags.iter().all(|f| !f.flag.notified));
}

#[test]
fn next_due_is_the_next_warning_then_the_close_of_the_window() {
    let rules = Rules::default();
    let s = released_with_need();
    let case = |now| s.assess(now).cases.into_iter().next().unwrap();
    let day = |n: u32| Utc.with_ymd_and_hms(2026, 11, 2 + n, 0, 0, 0).unwrap();
    let now = day(1);
    assert_eq!(case(now).next_due(&rules, now), Some(day(7)));
    let now = day(7);
    assert_eq!(case(now).next_due(&rules, now), Some(day(14)));
    let now = day(14) + Duration::hours(1);
    assert_eq!(case(now).next_due(&rules, now), Some(day(22)));
    let now = day(22);
    assert_eq!(
        case(now).next_due(&rules, now),
        None,
        "finalised: only events change it"
    );
}

#[test]
fn a_flag_raised_on_partial_knowledge_is_resolved_not_dropped() {
    let release = d(2026, 11, 2);
    let mut s = released_with_need();
    let day = |n: i64| {
        Utc.from_utc_datetime(&(release + Duration::days(n)).and_hms_opt(6, 0, 0).unwrap())
    };
    // Day 8: the day-7 warning is raised; the pipeline knows of no engagement.
    let raised = s.assess(day(8)).cases.into_iter().next().unwrap();
    assert_eq!(raised.flags.len(), 1);
    // Day 10: a triage recorded on day 5 arrives. The rules now say the warning never fell
    // due unsettled; the caseworker was told, so it is kept and resolved.
    s.start(
        "E1",
        vec![noms("A1234BC")],
        None,
        release + Duration::days(5),
        day(5),
    );
    let mut now_case = s.assess(day(10)).cases.into_iter().next().unwrap();
    assert!(now_case.flags.is_empty());
    carry_over_flags(Some(&raised), &mut now_case, day(10));
    assert_eq!(now_case.flags.len(), 1);
    assert_eq!(now_case.flags[0].state, FlagState::ResolvedEngaged);
    assert_eq!(now_case.flags[0].settled_at, Some(day(10)));
    let (cases, flags) = changes(Some(&raised), Some(&now_case), day(10));
    assert!(cases.iter().any(|c| c.kind == CaseChangeKind::Resolved));
    assert_eq!(flags.len(), 1);
    // Carrying again from the stored case changes nothing.
    let mut again = s.assess(day(11)).cases.into_iter().next().unwrap();
    carry_over_flags(Some(&now_case), &mut again, day(11));
    assert_eq!(again.flags, now_case.flags);
}

/// Ids consumers deduplicate by and key on are built from codes and explicit fields: renaming
/// a variant must not change them. These are pinned; a change here is a change every consumer
/// sees.
#[test]
fn ids_are_pinned() {
    let mut s = released_with_need();
    s.start(
        "E1",
        vec![noms("A1234BC")],
        None,
        d(2026, 11, 30),
        at(d(2026, 11, 30), 9),
    );
    let now = at(d(2026, 12, 10), 0);
    let case = only_case(&s.assess(now)).clone();
    assert_eq!(
        case.case_id.0.to_string(),
        "ee5afff5-b83c-546c-ab1f-d289a11bd9d6"
    );
    let flag_ids: Vec<String> = case.flags.iter().map(|f| f.flag_id.to_string()).collect();
    assert_eq!(
        flag_ids,
        [
            "c627c80f-a88f-543f-95d9-cc74514201ac",
            "225aad53-226a-56c3-91b9-36617e94c5e5",
            "098e6a16-b5ed-5eca-930f-965fe154e041"
        ]
    );
    let (case_changes, flag_changes) = continuity_domain::changes(None, Some(&case), now);
    let ids: Vec<String> = case_changes
        .iter()
        .map(|c| format!("{}={}", c.kind, c.event_id))
        .chain(
            flag_changes
                .iter()
                .map(|c| format!("{}={}", c.flag.state, c.event_id)),
        )
        .collect();
    assert_eq!(
        ids,
        [
            "OPENED=5d0910f3-8cca-5c98-85f4-65d8810940dc",
            "RESOLVED_ENGAGED=d853528a-be14-5105-9959-65bf5822626b",
            "RESOLVED_ENGAGED=4f88c867-fce0-504c-b595-c507cd23b93e",
            "RESOLVED_ENGAGED=cc89e24f-c032-5ca3-92e9-f8574499c59e"
        ]
    );
}

#[test]
fn a_case_names_its_treatment_provider_and_the_probation_service_of_the_newest_probation_referral()
{
    let release = d(2026, 11, 2);
    let mut s = released_with_need();
    let case = only_case(&s.assess(at(d(2026, 11, 10), 0))).clone();
    assert_eq!(case.provider, Some(ProviderCode::parse("OXPROV").unwrap()));
    assert_eq!(
        case.probation, None,
        "a prison referral names no probation service"
    );
    assert_eq!(case.references.noms, Some(noms("A1234BC")));
    assert_eq!(case.references.crn, None);

    // Probation refers under the CRN, linked to the NOMS number: the case gains an owner and
    // the CRN; a later probation referral from another region changes the owner.
    let probation = |s: &mut Scenario, id: &str, region: &str, on: NaiveDate| {
        s.referral(id, vec![crn("X123456")], None, on, OXON);
        let Some(SourceEvent::Referral(r)) = s.events.last_mut() else {
            unreachable!()
        };
        r.origin = ReferralOrigin::Probation;
        r.meta.source = OrganisationCode::parse(region).unwrap();
    };
    probation(&mut s, "P1", "probation-kss", release + Duration::days(1));
    let link = |meta| {
        SourceEvent::IdentityLinked(IdentityChange {
            meta,
            kept: crn("X123456"),
            other: noms("A1234BC"),
        })
    };
    s.push(link, at(release, 15));
    let case = only_case(&s.assess(at(d(2026, 11, 10), 0))).clone();
    assert_eq!(
        case.probation.as_ref().map(|o| o.as_str()),
        Some("probation-kss")
    );
    assert_eq!(case.references.crn, Some(crn("X123456")));
    assert_eq!(case.references.noms, Some(noms("A1234BC")));

    probation(
        &mut s,
        "P2",
        "probation-london",
        release + Duration::days(3),
    );
    let case = only_case(&s.assess(at(d(2026, 11, 10), 0))).clone();
    assert_eq!(
        case.probation.as_ref().map(|o| o.as_str()),
        Some("probation-london")
    );

    // A later allocation to a community manager (HMPPS names only the CRN; the service is the
    // sender's configuration) moves it again; an earlier one would not.
    let allocate = |s: &mut Scenario, service: &str, on: NaiveDate| {
        let service = OrganisationCode::parse(service).unwrap();
        s.push(
            |meta| {
                SourceEvent::ProbationAllocated(ProbationAllocation {
                    meta,
                    person: PersonRef {
                        identifiers: vec![crn("X123456")],
                        attributor: None,
                    },
                    allocation_id: None,
                    probation_service: service,
                })
            },
            at(on, 12),
        );
    };
    let owner = |s: &Scenario| {
        only_case(&s.assess(at(d(2026, 11, 10), 0)))
            .probation
            .as_ref()
            .map(|o| o.to_string())
    };
    allocate(&mut s, "probation-east", release - Duration::days(30));
    assert_eq!(owner(&s).as_deref(), Some("probation-london"));
    allocate(&mut s, "probation-north", release + Duration::days(5));
    assert_eq!(owner(&s).as_deref(), Some("probation-north"));
}
