//! Europe/London calendar arithmetic: the local date of an instant, the instant a local day
//! starts (across daylight-saving changes), and the cohort periods a release date falls in
//! (ISO week, calendar month, quarter of the financial year, financial year April-March,
//! rolling 12 months).

use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::London;
use serde::{Deserialize, Serialize};

/// The Europe/London calendar date of an instant.
pub fn london_date(instant: DateTime<Utc>) -> NaiveDate {
    instant.with_timezone(&London).date_naive()
}

/// The instant 00:00 Europe/London begins on `date`. UK clocks change at 01:00 GMT, so local
/// midnight always exists and is unique; should that ever change, the earliest valid instant
/// of the day is returned.
pub fn start_of_london_day(date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    match London.from_local_datetime(&midnight) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(early, _) => early.with_timezone(&Utc),
        chrono::LocalResult::None => {
            // A gap at midnight: the day starts when the clocks jump forward, one hour later.
            let later = midnight + Duration::hours(1);
            London
                .from_local_datetime(&later)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
        }
    }
}

/// A reporting period that cases are grouped into by their release date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CohortPeriod {
    /// ISO 8601 week, e.g. `2026-W47`.
    IsoWeek {
        /// ISO week-numbering year.
        year: i32,
        /// Week 1 to 53.
        week: u32,
    },
    /// Calendar month, e.g. `2026-11`.
    Month {
        /// Year.
        year: i32,
        /// Month 1 to 12.
        month: u32,
    },
    /// Financial year 1 April to 31 March, named by its first year, e.g. `FY2026-27`.
    FinancialYear {
        /// The calendar year in which it starts.
        start_year: i32,
    },
    /// The 12 calendar months ending with the named month, e.g. `R12-2026-11` covers
    /// December 2025 to November 2026.
    Rolling12Months {
        /// Year of the last month.
        end_year: i32,
        /// The last month, 1 to 12.
        end_month: u32,
    },
    /// A quarter of a financial year: Q1 is April to June, Q4 January to March, e.g.
    /// `FY2026-27-Q1`.
    Quarter {
        /// The calendar year in which its financial year starts.
        start_year: i32,
        /// 1 to 4.
        quarter: u32,
    },
}

impl CohortPeriod {
    /// The ISO week containing `date`.
    pub fn iso_week(date: NaiveDate) -> Self {
        let w = date.iso_week();
        CohortPeriod::IsoWeek {
            year: w.year(),
            week: w.week(),
        }
    }

    /// The calendar month containing `date`.
    pub fn month(date: NaiveDate) -> Self {
        CohortPeriod::Month {
            year: date.year(),
            month: date.month(),
        }
    }

    /// The financial year containing `date`.
    pub fn financial_year(date: NaiveDate) -> Self {
        let start_year = if date.month() >= 4 {
            date.year()
        } else {
            date.year() - 1
        };
        CohortPeriod::FinancialYear { start_year }
    }

    /// The quarter of the financial year containing `date`.
    pub fn quarter(date: NaiveDate) -> Self {
        let CohortPeriod::FinancialYear { start_year } = Self::financial_year(date) else {
            unreachable!("financial_year returns a financial year")
        };
        // April-June is Q1 ... January-March is Q4.
        let quarter = (date.month() + 8) % 12 / 3 + 1;
        CohortPeriod::Quarter {
            start_year,
            quarter,
        }
    }

    /// The four quarters of a financial year, or of the financial year a quarter is in; empty
    /// for other periods.
    pub fn quarters(&self) -> Vec<CohortPeriod> {
        match *self {
            CohortPeriod::FinancialYear { start_year }
            | CohortPeriod::Quarter { start_year, .. } => (1..=4)
                .map(|quarter| CohortPeriod::Quarter {
                    start_year,
                    quarter,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The twelve rolling-12-month periods that contain `date` (ending in its month and each
    /// of the eleven months after).
    pub fn rolling_12_months(date: NaiveDate) -> [Self; 12] {
        let base = date.year() * 12 + date.month0() as i32;
        std::array::from_fn(|i| {
            let m = base + i as i32;
            CohortPeriod::Rolling12Months {
                end_year: m.div_euclid(12),
                end_month: m.rem_euclid(12) as u32 + 1,
            }
        })
    }

    /// Every period `date` falls in: its week, month, quarter, financial year and the twelve
    /// rolling periods.
    pub fn all_for(date: NaiveDate) -> Vec<Self> {
        let mut v = vec![
            Self::iso_week(date),
            Self::month(date),
            Self::quarter(date),
            Self::financial_year(date),
        ];
        v.extend(Self::rolling_12_months(date));
        v
    }

    /// What the period is made of, for disclosure control: a financial year or a rolling 12
    /// months is its twelve months, a quarter its three; a month that is whole ISO weeks (a 28-day February that
    /// starts on a Monday, as in 2027) is its four weeks. Weeks and other months are made of
    /// nothing smaller that is published: empty.
    pub fn parts(&self) -> Vec<CohortPeriod> {
        let (start, end) = self.date_range();
        match self {
            CohortPeriod::IsoWeek { .. } => Vec::new(),
            CohortPeriod::Month { .. } => {
                let whole_weeks =
                    start.weekday() == chrono::Weekday::Mon && (end - start).num_days() == 27;
                if whole_weeks {
                    (0..4)
                        .map(|w| Self::iso_week(start + Duration::days(7 * w)))
                        .collect()
                } else {
                    Vec::new()
                }
            }
            CohortPeriod::FinancialYear { .. }
            | CohortPeriod::Rolling12Months { .. }
            | CohortPeriod::Quarter { .. } => {
                let first = start.year() * 12 + start.month0() as i32;
                let months = if matches!(self, CohortPeriod::Quarter { .. }) {
                    3
                } else {
                    12
                };
                (0..months)
                    .map(|i| {
                        let m = first + i;
                        CohortPeriod::Month {
                            year: m.div_euclid(12),
                            month: m.rem_euclid(12) as u32 + 1,
                        }
                    })
                    .collect()
            }
        }
    }

    /// The period of the same kind just before this one.
    pub fn previous(&self) -> CohortPeriod {
        let (start, _) = self.date_range();
        match *self {
            CohortPeriod::IsoWeek { .. } => Self::iso_week(start - Duration::days(7)),
            CohortPeriod::Month { .. } => Self::month(start - Duration::days(1)),
            CohortPeriod::FinancialYear { start_year } => CohortPeriod::FinancialYear {
                start_year: start_year - 1,
            },
            CohortPeriod::Quarter {
                start_year,
                quarter,
            } => match quarter {
                1 => CohortPeriod::Quarter {
                    start_year: start_year - 1,
                    quarter: 4,
                },
                q => CohortPeriod::Quarter {
                    start_year,
                    quarter: q - 1,
                },
            },
            CohortPeriod::Rolling12Months {
                end_year,
                end_month,
            } => {
                let m = end_year * 12 + end_month as i32 - 1 - 1;
                CohortPeriod::Rolling12Months {
                    end_year: m.div_euclid(12),
                    end_month: m.rem_euclid(12) as u32 + 1,
                }
            }
        }
    }

    /// First and last date of the period, inclusive.
    pub fn date_range(&self) -> (NaiveDate, NaiveDate) {
        let ymd = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
        let month_end = |y: i32, m: u32| {
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            ymd(ny, nm, 1) - Duration::days(1)
        };
        match *self {
            CohortPeriod::IsoWeek { year, week } => {
                let start = NaiveDate::from_isoywd_opt(year, week, chrono::Weekday::Mon)
                    .unwrap_or_default();
                (start, start + Duration::days(6))
            }
            CohortPeriod::Month { year, month } => (ymd(year, month, 1), month_end(year, month)),
            CohortPeriod::FinancialYear { start_year } => {
                (ymd(start_year, 4, 1), ymd(start_year + 1, 3, 31))
            }
            CohortPeriod::Quarter {
                start_year,
                quarter,
            } => {
                // Q1 starts in April (month 4), Q4 in January of the next year.
                let first = start_year * 12 + 3 + 3 * (quarter as i32 - 1);
                let last = first + 2;
                (
                    ymd(first.div_euclid(12), first.rem_euclid(12) as u32 + 1, 1),
                    month_end(last.div_euclid(12), last.rem_euclid(12) as u32 + 1),
                )
            }
            CohortPeriod::Rolling12Months {
                end_year,
                end_month,
            } => {
                let first = end_year * 12 + end_month as i32 - 1 - 11;
                (
                    ymd(first.div_euclid(12), first.rem_euclid(12) as u32 + 1, 1),
                    month_end(end_year, end_month),
                )
            }
        }
    }
}

impl fmt::Display for CohortPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CohortPeriod::IsoWeek { year, week } => write!(f, "{year}-W{week:02}"),
            CohortPeriod::Month { year, month } => write!(f, "{year}-{month:02}"),
            CohortPeriod::FinancialYear { start_year } => {
                write!(f, "FY{start_year}-{:02}", (start_year + 1).rem_euclid(100))
            }
            CohortPeriod::Rolling12Months {
                end_year,
                end_month,
            } => write!(f, "R12-{end_year}-{end_month:02}"),
            CohortPeriod::Quarter {
                start_year,
                quarter,
            } => write!(
                f,
                "FY{start_year}-{:02}-Q{quarter}",
                (start_year + 1).rem_euclid(100)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn parts_and_previous_periods() {
        let feb_2027 = CohortPeriod::month(d(2027, 2, 10));
        assert_eq!(
            feb_2027.parts(),
            (0..4)
                .map(|w| CohortPeriod::iso_week(d(2027, 2, 1 + 7 * w)))
                .collect::<Vec<_>>()
        );
        assert!(CohortPeriod::month(d(2026, 2, 10)).parts().is_empty());
        let fy = CohortPeriod::financial_year(d(2026, 6, 1));
        let months = fy.parts();
        assert_eq!(
            (months[0], months[11]),
            (
                CohortPeriod::month(d(2026, 4, 1)),
                CohortPeriod::month(d(2027, 3, 1))
            )
        );
        let r12 = CohortPeriod::Rolling12Months {
            end_year: 2026,
            end_month: 1,
        };
        assert_eq!(r12.parts()[0], CohortPeriod::month(d(2025, 2, 1)));
        assert_eq!(
            r12.previous(),
            CohortPeriod::Rolling12Months {
                end_year: 2025,
                end_month: 12
            }
        );
        assert_eq!(
            CohortPeriod::month(d(2026, 1, 5)).previous(),
            CohortPeriod::month(d(2025, 12, 5))
        );
        assert_eq!(fy.previous(), CohortPeriod::financial_year(d(2025, 6, 1)));
        assert_eq!(
            CohortPeriod::iso_week(d(2026, 1, 1)).previous(),
            CohortPeriod::iso_week(d(2025, 12, 25))
        );
    }

    #[test]
    fn london_dates_across_midnight_and_dst() {
        // 23:30 UTC in summer is 00:30 BST the next day.
        let t = Utc.with_ymd_and_hms(2026, 6, 30, 23, 30, 0).unwrap();
        assert_eq!(london_date(t), d(2026, 7, 1));
        // In winter UTC and local agree.
        let t = Utc.with_ymd_and_hms(2026, 12, 31, 23, 30, 0).unwrap();
        assert_eq!(london_date(t), d(2026, 12, 31));
    }

    #[test]
    fn local_midnight_on_clock_change_days() {
        // Clocks go forward 2026-03-29 01:00 GMT: midnight that day is still GMT.
        assert_eq!(
            start_of_london_day(d(2026, 3, 29)),
            Utc.with_ymd_and_hms(2026, 3, 29, 0, 0, 0).unwrap()
        );
        // The day after, midnight is BST, 23:00 UTC the evening before.
        assert_eq!(
            start_of_london_day(d(2026, 3, 30)),
            Utc.with_ymd_and_hms(2026, 3, 29, 23, 0, 0).unwrap()
        );
        // Clocks go back 2026-10-25 02:00 BST: midnight is BST.
        assert_eq!(
            start_of_london_day(d(2026, 10, 25)),
            Utc.with_ymd_and_hms(2026, 10, 24, 23, 0, 0).unwrap()
        );
        assert_eq!(
            start_of_london_day(d(2026, 10, 26)),
            Utc.with_ymd_and_hms(2026, 10, 26, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn periods() {
        assert_eq!(
            CohortPeriod::iso_week(d(2026, 11, 24)).to_string(),
            "2026-W48"
        );
        // 2027-01-01 is a Friday in ISO week 2026-W53.
        assert_eq!(
            CohortPeriod::iso_week(d(2027, 1, 1)).to_string(),
            "2026-W53"
        );
        assert_eq!(CohortPeriod::month(d(2026, 11, 24)).to_string(), "2026-11");
        assert_eq!(
            CohortPeriod::financial_year(d(2026, 3, 31)).to_string(),
            "FY2025-26"
        );
        assert_eq!(
            CohortPeriod::financial_year(d(2026, 4, 1)).to_string(),
            "FY2026-27"
        );
        assert_eq!(
            CohortPeriod::financial_year(d(1999, 6, 1)).to_string(),
            "FY1999-00"
        );
        let r = CohortPeriod::rolling_12_months(d(2026, 11, 24));
        assert_eq!(r[0].to_string(), "R12-2026-11");
        assert_eq!(r[11].to_string(), "R12-2027-10");
        assert_eq!(r[0].date_range(), (d(2025, 12, 1), d(2026, 11, 30)));
        assert_eq!(
            CohortPeriod::financial_year(d(2026, 4, 1)).date_range(),
            (d(2026, 4, 1), d(2027, 3, 31))
        );
        assert_eq!(
            CohortPeriod::iso_week(d(2026, 11, 24)).date_range(),
            (d(2026, 11, 23), d(2026, 11, 29))
        );
        assert_eq!(CohortPeriod::all_for(d(2026, 1, 1)).len(), 16);
        let q = CohortPeriod::quarter(d(2027, 2, 28));
        assert_eq!(q.to_string(), "FY2026-27-Q4");
        assert_eq!(q.date_range(), (d(2027, 1, 1), d(2027, 3, 31)));
        assert_eq!(
            CohortPeriod::quarter(d(2026, 4, 1)).date_range(),
            (d(2026, 4, 1), d(2026, 6, 30))
        );
        assert_eq!(
            CohortPeriod::quarter(d(2026, 5, 1)).previous().to_string(),
            "FY2025-26-Q4"
        );
        assert_eq!(q.parts().len(), 3);
        assert_eq!(CohortPeriod::financial_year(d(2026, 5, 1)).quarters()[3], q);
    }

    #[test]
    fn every_period_contains_its_dates() {
        let mut date = d(2024, 1, 1);
        while date < d(2027, 1, 1) {
            for p in CohortPeriod::all_for(date) {
                let (a, b) = p.date_range();
                assert!(a <= date && date <= b, "{p} {date}");
            }
            date += Duration::days(1);
        }
    }
}
