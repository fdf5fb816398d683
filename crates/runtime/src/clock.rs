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
/// system clock otherwise.
pub fn clock(fixed_now: Option<DateTime<Utc>>) -> Arc<dyn Clock> {
    match fixed_now {
        Some(t) => Arc::new(ManualClock::new(t)),
        None => Arc::new(SystemClock),
    }
}
