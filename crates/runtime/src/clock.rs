//! Where time comes from: the wall clock in production, a fixed or hand-moved one for
//! replays and tests. Nothing else in a service reads the time.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// Where time comes from: the wall clock in production, a hand-moved one in tests.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// Whether the clock moves on by itself in real time, so that waiting for an instant ends
    /// (false for a clock a test moves by hand).
    fn runs(&self) -> bool {
        false
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn runs(&self) -> bool {
        true
    }
}

/// A clock a test moves by hand.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    /// Move the clock to `to`.
    pub fn set(&self, to: DateTime<Utc>) {
        if let Ok(mut now) = self.0.lock() {
            *now = to;
        }
    }

    /// Move the clock on by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        if let Ok(mut now) = self.0.lock() {
            *now += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
            .lock()
            .map(|t| *t)
            .unwrap_or_else(|e| *e.into_inner())
    }
}

/// A clock that runs in real time from where a test or benchmark sets it: for what must
/// happen at an instant (the deadline clock's wake-up), which a hand-moved clock cannot show.
#[derive(Debug, Clone)]
pub struct RunningClock(Arc<Mutex<(std::time::Instant, DateTime<Utc>)>>);

impl RunningClock {
    /// A clock showing `start` now.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new((std::time::Instant::now(), start))))
    }

    /// Show `to` now, and run on from it.
    pub fn set(&self, to: DateTime<Utc>) {
        if let Ok(mut set) = self.0.lock() {
            *set = (std::time::Instant::now(), to);
        }
    }
}

impl Clock for RunningClock {
    fn now(&self) -> DateTime<Utc> {
        let (at, shown) = self
            .0
            .lock()
            .map(|t| *t)
            .unwrap_or_else(|e| *e.into_inner());
        shown + chrono::Duration::from_std(at.elapsed()).unwrap_or_default()
    }

    fn runs(&self) -> bool {
        true
    }
}

/// The clock a service runs on: fixed at `fixed_now` when set (replays and tests), the
/// system clock behind a [`JumpGuard`] otherwise.
pub fn clock(fixed_now: Option<DateTime<Utc>>) -> Arc<dyn Clock> {
    match fixed_now {
        Some(t) => Arc::new(ManualClock::new(t)),
        None => Arc::new(GuardedClock::default()),
    }
}

/// The system clock, with jumps of the host clock held off by a [`JumpGuard`].
#[derive(Debug, Default)]
pub struct GuardedClock(Mutex<JumpGuard>);

impl Clock for GuardedClock {
    fn now(&self) -> DateTime<Utc> {
        let wall = Utc::now();
        let steady = std::time::Instant::now();
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (now, jump) = guard.observe(wall, steady);
        if let Some(by) = jump {
            tracing::warn!(
                jump_seconds = by.num_seconds(),
                hold_seconds = JUMP_HOLD.as_secs(),
                "the host clock jumped; time runs on from before the jump until the host clock agrees again, or is taken as it is after the hold"
            );
        }
        now
    }

    fn runs(&self) -> bool {
        true
    }
}

/// How far the host clock may move from the time measured on the monotonic clock since the
/// last agreeing reading before it counts as a jump (NTP slews by far less; a step of a few
/// seconds is taken at once).
pub const JUMP_TOLERANCE: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a jumped host clock is disregarded: a jump undone within it (a clock moved an
/// hour forward and back) raises no flag early and delays none; one that persists is a
/// correction and is taken after it.
pub const JUMP_HOLD: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Time that follows the monotonic clock across jumps of the wall clock. Each wall reading
/// that agrees (within [`JUMP_TOLERANCE`]) with the time run on from the last agreeing one
/// is taken and becomes the new anchor, so slews are followed. One that does not is a jump:
/// until the wall clock agrees again, or for [`JUMP_HOLD`], time runs on from the anchor by
/// the monotonic clock; after the hold the wall clock is taken as it is. Pure: readings are
/// passed in. Hand-written because no time library guards a service against the host's
/// clock; they read it.
#[derive(Debug, Default)]
pub struct JumpGuard {
    /// The last agreeing wall reading and when it was read.
    anchor: Option<(DateTime<Utc>, std::time::Instant)>,
    /// When the current disagreement began.
    jumped: Option<std::time::Instant>,
}

impl JumpGuard {
    /// The time at `steady` given the wall reading `wall`, and the size of the jump when this
    /// reading is the first of one.
    pub fn observe(
        &mut self,
        wall: DateTime<Utc>,
        steady: std::time::Instant,
    ) -> (DateTime<Utc>, Option<chrono::Duration>) {
        let Some((at, then)) = self.anchor else {
            self.anchor = Some((wall, steady));
            return (wall, None);
        };
        let run_on = at + chrono::Duration::from_std(steady - then).unwrap_or_default();
        let off = wall - run_on;
        let tolerance = chrono::Duration::from_std(JUMP_TOLERANCE).unwrap_or_default();
        let agrees = off.abs() <= tolerance;
        let held_long_enough = self.jumped.is_some_and(|since| steady - since >= JUMP_HOLD);
        if agrees || held_long_enough {
            self.anchor = Some((wall, steady));
            self.jumped = None;
            return (wall, None);
        }
        let first = self.jumped.is_none();
        if first {
            self.jumped = Some(steady);
        }
        (run_on, first.then_some(off))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_host_clock_moved_an_hour_forward_and_back_does_not_move_time() {
        let mut guard = JumpGuard::default();
        let start = Instant::now();
        let wall = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let hour = chrono::Duration::hours(1);
        let at = |s: u64| start + Duration::from_secs(s);
        let secs = chrono::Duration::seconds;
        assert_eq!(guard.observe(wall, at(0)), (wall, None));
        // Slewed by a second in a minute: followed.
        assert_eq!(guard.observe(wall + secs(61), at(60)).0, wall + secs(61));
        // An hour forward: time runs on from before the jump, and the jump is reported once.
        assert_eq!(
            guard.observe(wall + secs(120) + hour, at(119)),
            (wall + secs(120), Some(hour))
        );
        assert_eq!(
            guard.observe(wall + secs(180) + hour, at(179)),
            (wall + secs(180), None)
        );
        // And back: the wall clock agrees again and is taken.
        assert_eq!(
            guard.observe(wall + secs(240), at(239)),
            (wall + secs(240), None)
        );
        // An hour back: time does not go back either.
        assert_eq!(
            guard.observe(wall + secs(300) - hour, at(299)),
            (wall + secs(300), Some(-hour))
        );
    }

    #[test]
    fn a_jump_that_persists_past_the_hold_is_taken_as_a_correction() {
        let mut guard = JumpGuard::default();
        let start = Instant::now();
        let wall = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let hour = chrono::Duration::hours(1);
        let hold = JUMP_HOLD.as_secs();
        guard.observe(wall, start);
        let ahead = |s: u64| wall + chrono::Duration::seconds(s as i64) + hour;
        let at = |s: u64| start + Duration::from_secs(s);
        assert_eq!(guard.observe(ahead(10), at(10)).0, ahead(10) - hour);
        assert_eq!(guard.observe(ahead(hold), at(hold)).0, ahead(hold) - hour);
        assert_eq!(
            guard.observe(ahead(hold + 10), at(hold + 10)).0,
            ahead(hold + 10)
        );
        // The new anchor is followed from there.
        assert_eq!(
            guard.observe(ahead(hold + 20), at(hold + 20)),
            (ahead(hold + 20), None)
        );
    }
}
