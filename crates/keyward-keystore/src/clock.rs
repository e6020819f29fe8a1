//! Where "now" comes from.
//!
//! The service asks a [`Clock`] instead of reading system time, so tests can put the
//! keystore 30 or 100 days into the future without waiting.

use std::sync::atomic::{AtomicI64, Ordering};

use keyward_domain::Timestamp;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from(time::OffsetDateTime::now_utc())
    }
}

/// A clock that stands still until moved; for tests.
#[derive(Debug)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    /// A clock showing `at`.
    pub fn new(at: Timestamp) -> Self {
        Self(AtomicI64::new(at.millis()))
    }

    /// Moves the clock by `days`.
    pub fn advance_days(&self, days: i64) {
        self.0.fetch_add(days * keyward_domain::clock::DAY_MS, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}
