//! The configurable parts of the measure. NDTMS does not publish every rule exactly; where it
//! does not, the defaults below follow `shared/domain.md` and a deployment may change them.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::start_of_london_day;

/// Which date of a treatment episode counts as engagement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngagementBasis {
    /// The earlier of triage and first intervention start (default).
    EarliestOfTriageAndIntervention,
    /// Triage date only.
    Triage,
    /// First intervention (modality) start only.
    FirstIntervention,
}

/// What a release movement means for the measure, decided from its movement code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementClass {
    /// An ordinary release into the community: starts a case.
    Community,
    /// A death in custody recorded as a release (`DEC`): the case is excluded.
    DiedInCustody,
    /// Released to hospital (`HO`, `HQ`, `HP`): excluded.
    ReleasedToHospital,
    /// Deported or removed (`DD`, `DE`, `DL`): excluded.
    Deported,
    /// Absconded or unlawfully at large (`UAL`, `UAL_ECL`): not a release; opens no case.
    Absconded,
}

/// The rules of the measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rules {
    /// Days after release in which engagement counts (21).
    pub window_days: u32,
    /// Whether the last day of the window counts (true: day 21 is inside).
    pub window_inclusive: bool,
    /// Days before release an engagement may be dated and still count (7): a pre-release
    /// appointment in the community provider's records.
    pub pre_release_tolerance_days: u32,
    /// Days after release a referral may be made and still establish the need (7).
    pub need_after_release_days: u32,
    /// Days after release on which an at-risk warning is raised if not engaged (7 and 14).
    pub at_risk_days: Vec<u32>,
    /// Which episode date counts as engagement.
    pub engagement_basis: EngagementBasis,
    /// Flags whose due time passed more than this many days before the pipeline first knew of
    /// them are recorded but not sent to caseworkers (14), so replaying history pages nobody.
    pub flag_horizon_days: u32,
    /// Minimum age on the release date (18).
    pub minimum_age: u32,
    /// Days after a referral's expected release date with no release movement before it is
    /// reported as a data-quality warning (14).
    pub stale_referral_days: u32,
    /// Movement codes of `RELEASED` movements that are not ordinary releases.
    pub movement_codes: BTreeMap<String, MovementClass>,
}

impl Default for Rules {
    fn default() -> Self {
        let codes = [
            ("DEC", MovementClass::DiedInCustody),
            ("HO", MovementClass::ReleasedToHospital),
            ("HQ", MovementClass::ReleasedToHospital),
            ("HP", MovementClass::ReleasedToHospital),
            ("DD", MovementClass::Deported),
            ("DE", MovementClass::Deported),
            ("DL", MovementClass::Deported),
            ("UAL", MovementClass::Absconded),
            ("UAL_ECL", MovementClass::Absconded),
        ];
        Self {
            window_days: 21,
            window_inclusive: true,
            pre_release_tolerance_days: 7,
            need_after_release_days: 7,
            at_risk_days: vec![7, 14],
            engagement_basis: EngagementBasis::EarliestOfTriageAndIntervention,
            flag_horizon_days: 14,
            minimum_age: 18,
            stale_referral_days: 14,
            movement_codes: codes.into_iter().map(|(c, m)| (c.to_owned(), m)).collect(),
        }
    }
}

fn plus_days(date: NaiveDate, days: u32) -> NaiveDate {
    date + Duration::days(i64::from(days))
}

impl Rules {
    /// What a `RELEASED` movement with this code means. Unknown and absent codes (`CR`, `HD`,
    /// `NCS`, ...) are ordinary releases.
    pub fn classify_movement(&self, code: Option<&str>) -> MovementClass {
        code.and_then(|c| self.movement_codes.get(c.trim()).copied())
            .unwrap_or(MovementClass::Community)
    }

    /// The last day on which engagement is in the window (release date + 21 with the defaults).
    pub fn last_window_day(&self, release_date: NaiveDate) -> NaiveDate {
        let days = if self.window_inclusive {
            self.window_days
        } else {
            self.window_days.saturating_sub(1)
        };
        plus_days(release_date, days)
    }

    /// The instant a case with no engagement becomes overdue: 00:00 Europe/London on the day
    /// after the last window day (day 22 with the defaults).
    pub fn overdue_at(&self, release_date: NaiveDate) -> DateTime<Utc> {
        start_of_london_day(plus_days(self.last_window_day(release_date), 1))
    }

    /// The instant the at-risk warning for `day` is due: 00:00 Europe/London on that day.
    pub fn at_risk_at(&self, release_date: NaiveDate, day: u32) -> DateTime<Utc> {
        start_of_london_day(plus_days(release_date, day))
    }

    /// The earliest engagement date that counts for a release.
    pub fn earliest_engagement(&self, release_date: NaiveDate) -> NaiveDate {
        release_date - Duration::days(i64::from(self.pre_release_tolerance_days))
    }

    /// The latest referral date that establishes the need for a release.
    pub fn latest_need(&self, release_date: NaiveDate) -> NaiveDate {
        plus_days(release_date, self.need_after_release_days)
    }

    /// Whether a flag due at `due_at` should still be sent to a caseworker at `now`.
    pub fn within_flag_horizon(&self, due_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        now - due_at <= Duration::days(i64::from(self.flag_horizon_days))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn deadline_is_day_21_inclusive_and_overdue_from_midnight_of_day_22() {
        let rules = Rules::default();
        let release = d(2026, 11, 2);
        assert_eq!(rules.last_window_day(release), d(2026, 11, 23));
        assert_eq!(
            rules.overdue_at(release),
            Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap()
        );
        let exclusive = Rules {
            window_inclusive: false,
            ..Rules::default()
        };
        assert_eq!(exclusive.last_window_day(release), d(2026, 11, 22));
    }

    #[test]
    fn overdue_across_clock_changes() {
        let rules = Rules::default();
        // Released 2026-03-08 (GMT); day 22 is 2026-03-30, after clocks went forward: 00:00 BST.
        assert_eq!(
            rules.overdue_at(d(2026, 3, 8)),
            Utc.with_ymd_and_hms(2026, 3, 29, 23, 0, 0).unwrap()
        );
        // Released 2026-10-04 (BST); day 22 is 2026-10-26, after clocks went back: 00:00 GMT.
        assert_eq!(
            rules.overdue_at(d(2026, 10, 4)),
            Utc.with_ymd_and_hms(2026, 10, 26, 0, 0, 0).unwrap()
        );
        // Released on the day the clocks go forward.
        assert_eq!(
            rules.overdue_at(d(2026, 3, 29)),
            Utc.with_ymd_and_hms(2026, 4, 19, 23, 0, 0).unwrap()
        );
    }

    #[test]
    fn movement_codes() {
        let rules = Rules::default();
        assert_eq!(
            rules.classify_movement(Some("DEC")),
            MovementClass::DiedInCustody
        );
        assert_eq!(
            rules.classify_movement(Some("HQ")),
            MovementClass::ReleasedToHospital
        );
        assert_eq!(rules.classify_movement(Some("DL")), MovementClass::Deported);
        assert_eq!(
            rules.classify_movement(Some("UAL_ECL")),
            MovementClass::Absconded
        );
        for ordinary in [Some("CR"), Some("HD"), Some("NCS"), None] {
            assert_eq!(rules.classify_movement(ordinary), MovementClass::Community);
        }
    }

    #[test]
    fn flag_horizon() {
        let rules = Rules::default();
        let due = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert!(rules.within_flag_horizon(due, due + Duration::days(14)));
        assert!(!rules.within_flag_horizon(due, due + Duration::days(15)));
    }
}
