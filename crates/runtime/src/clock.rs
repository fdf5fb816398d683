//! Where time comes from: the wall clock in production, a fixed or hand-moved one for
//! replays and tests. Nothing else in a service reads the time.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// Where time comes from: the wall clock in production, a hand-moved one in tests.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
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

/// The clock a service runs on: fixed at `fixed_now` when set (replays and tests), the
/// system clock otherwise.
pub fn clock(fixed_now: Option<DateTime<Utc>>) -> Arc<dyn Clock> {
    match fixed_now {
        Some(t) => Arc::new(ManualClock::new(t)),
        None => Arc::new(SystemClock),
    }
}
