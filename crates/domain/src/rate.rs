//! The continuity rate: engaged within the window over finalised cases, with a 95% Wilson
//! score interval and the gap to the national ambition of 75%; how a rate compares with a
//! benchmark (England's rate, the ambition) the way PHOF indicators do it, and the control
//! limits of a funnel plot.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::case::{ExclusionReason, Outcome};
use crate::coded::coded;

/// The national ambition (From Harm to Hope, 2021): 75% engaged within 3 weeks.
pub const AMBITION: f64 = 0.75;

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// z for a two-sided 99.8% interval (the outer limits of a funnel plot).
pub const Z998: f64 = 3.090_232_306_167_813;

coded! {
    /// A rate against a benchmark: significantly higher or lower when the benchmark lies
    /// outside the rate's 95% interval, similar otherwise (the PHOF/Fingertips comparison with
    /// a benchmark value).
    pub enum Comparison {
        /// The whole interval is above the benchmark.
        Higher = "HIGHER",
        /// The interval contains the benchmark.
        Similar = "SIMILAR",
        /// The whole interval is below the benchmark.
        Lower = "LOWER",
    }
}

/// The control limits of a funnel plot around `benchmark` for `n` finalised cases at `z`
/// (normal approximation to the binomial, as in Spiegelhalter's funnel plots), clipped to 0-1.
pub fn funnel_limits(benchmark: f64, n: f64, z: f64) -> (f64, f64) {
    let half = z * (benchmark * (1.0 - benchmark) / n.max(1.0)).sqrt();
    ((benchmark - half).max(0.0), (benchmark + half).min(1.0))
}

/// The counts behind one cell of a report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Finalised cases (the denominator).
    pub finalised: u64,
    /// Finalised cases engaged within the window (the numerator).
    pub engaged: u64,
    /// Cases whose window has not closed.
    pub open: u64,
    /// Cases that left the cohort, by reason.
    pub excluded: BTreeMap<ExclusionReason, u64>,
}

impl Tally {
    /// Count one case.
    pub fn add(&mut self, outcome: Outcome) {
        self.add_count(outcome, 1);
    }

    /// Count `n` cases with the same outcome.
    pub fn add_count(&mut self, outcome: Outcome, n: u64) {
        match outcome {
            Outcome::Open => self.open += n,
            Outcome::Engaged => {
                self.finalised += n;
                self.engaged += n;
            }
            Outcome::NotEngaged => self.finalised += n,
            Outcome::Excluded(reason) => *self.excluded.entry(reason).or_default() += n,
            Outcome::Withdrawn => {}
        }
    }

    /// Add another tally's counts to this one.
    pub fn merge(&mut self, other: &Tally) {
        self.finalised += other.finalised;
        self.engaged += other.engaged;
        self.open += other.open;
        for (reason, n) in &other.excluded {
            *self.excluded.entry(*reason).or_default() += n;
        }
    }

    /// The rate, when there is at least one finalised case.
    pub fn rate(&self) -> Option<ContinuityRate> {
        ContinuityRate::new(self.engaged, self.finalised)
    }
}

/// A proportion with its 95% Wilson score interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ContinuityRate {
    /// engaged / finalised.
    pub rate: f64,
    /// Lower bound of the 95% Wilson interval.
    pub lower: f64,
    /// Upper bound of the 95% Wilson interval.
    pub upper: f64,
}

impl ContinuityRate {
    /// The rate of `engaged` out of `finalised`; `None` when nothing is finalised or the
    /// numerator exceeds the denominator.
    pub fn new(engaged: u64, finalised: u64) -> Option<Self> {
        if finalised == 0 || engaged > finalised {
            return None;
        }
        let n = finalised as f64;
        let p = engaged as f64 / n;
        let z2 = Z95 * Z95;
        let denom = 1.0 + z2 / n;
        let centre = (p + z2 / (2.0 * n)) / denom;
        let half = Z95 / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
        Some(Self {
            rate: p,
            lower: (centre - half).max(0.0),
            upper: (centre + half).min(1.0),
        })
    }

    /// The ambition minus the rate, in percentage points: positive means short of 75%.
    pub fn gap_to_ambition(&self) -> f64 {
        (AMBITION - self.rate) * 100.0
    }

    /// How the rate compares with `benchmark` (a rate, 0-1).
    pub fn compared_with(&self, benchmark: f64) -> Comparison {
        if self.lower > benchmark {
            Comparison::Higher
        } else if self.upper < benchmark {
            Comparison::Lower
        } else {
            Comparison::Similar
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wilson_matches_published_values() {
        // Reference values computed independently in Python from the Wilson formula.
        let r = ContinuityRate::new(53, 100).unwrap();
        assert!((r.lower - 0.43289).abs() < 1e-5, "{r:?}");
        assert!((r.upper - 0.62489).abs() < 1e-5, "{r:?}");
        let r = ContinuityRate::new(0, 5).unwrap();
        assert_eq!(r.lower, 0.0);
        assert!((r.upper - 0.4345).abs() < 1e-4, "{r:?}");
        let r = ContinuityRate::new(5, 5).unwrap();
        assert!((r.lower - 0.5655).abs() < 1e-4, "{r:?}");
        assert!((r.upper - 1.0).abs() < 1e-12);
        assert!(ContinuityRate::new(0, 0).is_none());
        assert!(ContinuityRate::new(3, 2).is_none());
    }

    #[test]
    fn gap_and_tally() {
        let mut t = Tally::default();
        for o in [
            Outcome::Engaged,
            Outcome::Engaged,
            Outcome::NotEngaged,
            Outcome::Open,
            Outcome::Withdrawn,
            Outcome::Excluded(ExclusionReason::Died),
        ] {
            t.add(o);
        }
        assert_eq!((t.finalised, t.engaged, t.open), (3, 2, 1));
        assert_eq!(t.excluded[&ExclusionReason::Died], 1);
        let r = t.rate().unwrap();
        assert!((r.gap_to_ambition() - (75.0 - 200.0 / 3.0)).abs() < 1e-9);
    }

    #[test]
    fn comparison_with_a_benchmark_and_funnel_limits() {
        // 53/100: interval 43.3% to 62.5%.
        let r = ContinuityRate::new(53, 100).unwrap();
        assert_eq!(r.compared_with(0.40), Comparison::Higher);
        assert_eq!(r.compared_with(0.55), Comparison::Similar);
        assert_eq!(r.compared_with(AMBITION), Comparison::Lower);
        assert_eq!(Comparison::Lower.code(), "LOWER");
        // 0.5 ± 1.96 × sqrt(0.25 / 100) = 0.5 ± 0.098.
        let (lo, hi) = funnel_limits(0.5, 100.0, Z95);
        assert!((lo - 0.402).abs() < 1e-3 && (hi - 0.598).abs() < 1e-3);
        let (lo, hi) = funnel_limits(0.5, 100.0, Z998);
        assert!(lo < 0.402 && hi > 0.598);
        assert_eq!(funnel_limits(0.9, 1.0, Z998).1, 1.0);
    }

    proptest! {
        #[test]
        fn interval_contains_the_rate(finalised in 1u64..100_000, frac in 0.0f64..=1.0) {
            let engaged = ((finalised as f64) * frac).floor() as u64;
            let r = ContinuityRate::new(engaged, finalised).unwrap();
            prop_assert!(0.0 <= r.lower && r.lower <= r.rate + 1e-12);
            prop_assert!(r.rate <= r.upper + 1e-12 && r.upper <= 1.0);
        }
    }
}
