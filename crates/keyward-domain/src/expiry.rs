//! Expiry: the state of a certificate by the time it has left, and which alerts are due.
//!
//! A certificate is [`ExpiryState::Valid`] until it has `critical_days` or fewer left,
//! then [`ExpiryState::Critical`], and [`ExpiryState::Expired`] from its `not_after` on.
//! Alerts go out once per threshold (30, 14, 7 and 1 days by default): the thresholds a
//! certificate has crossed are [`crossed_thresholds`]; the caller remembers which it sent.

use std::fmt;

use crate::Timestamp;
use crate::clock::DAY_MS;

/// Days before expiry at which alerts go out, by default.
pub const DEFAULT_ALERT_DAYS: [i64; 4] = [30, 14, 7, 1];

/// Days left at or below which a certificate is critical, by default.
pub const DEFAULT_CRITICAL_DAYS: i64 = 14;

/// Where a certificate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpiryState {
    /// More than the critical number of days left.
    Valid,
    /// The critical number of days or fewer left.
    Critical,
    /// Past its `not_after`.
    Expired,
}

impl ExpiryState {
    /// Every state, in a stable order.
    pub const ALL: [ExpiryState; 3] = [ExpiryState::Valid, ExpiryState::Critical, ExpiryState::Expired];

    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExpiryState::Valid => "valid",
            ExpiryState::Critical => "critical",
            ExpiryState::Expired => "expired",
        }
    }

    /// The state of a certificate valid until `not_after`, at `now`.
    pub fn of(not_after: Timestamp, now: Timestamp, critical_days: i64) -> Self {
        if not_after <= now {
            ExpiryState::Expired
        } else if not_after <= now.plus_days(critical_days) {
            ExpiryState::Critical
        } else {
            ExpiryState::Valid
        }
    }
}

impl fmt::Display for ExpiryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whole days left until `not_after` (negative once expired), rounded down.
pub fn days_left(not_after: Timestamp, now: Timestamp) -> i64 {
    (not_after.millis() - now.millis()).div_euclid(DAY_MS)
}

/// The alert thresholds a certificate valid until `not_after` has crossed at `now`: every
/// threshold `t` with `not_after - t days <= now`. An expired certificate has crossed them
/// all.
pub fn crossed_thresholds(not_after: Timestamp, now: Timestamp, thresholds: &[i64]) -> Vec<i64> {
    thresholds.iter().copied().filter(|t| not_after <= now.plus_days(*t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_seconds(1_800_000_000);

    #[test]
    fn states_by_days_left() {
        let table = [(-1, ExpiryState::Expired), (0, ExpiryState::Expired), (1, ExpiryState::Critical), (14, ExpiryState::Critical), (15, ExpiryState::Valid)];
        for (days, state) in table {
            assert_eq!(ExpiryState::of(NOW.plus_days(days), NOW, 14), state, "{days} days");
        }
    }

    #[test]
    fn thresholds_crossed() {
        assert_eq!(crossed_thresholds(NOW.plus_days(31), NOW, &DEFAULT_ALERT_DAYS), Vec::<i64>::new());
        assert_eq!(crossed_thresholds(NOW.plus_days(30), NOW, &DEFAULT_ALERT_DAYS), vec![30]);
        assert_eq!(crossed_thresholds(NOW.plus_days(7), NOW, &DEFAULT_ALERT_DAYS), vec![30, 14, 7]);
        assert_eq!(crossed_thresholds(NOW, NOW, &DEFAULT_ALERT_DAYS), vec![30, 14, 7, 1]);
        assert_eq!(days_left(NOW.plus_days(3), NOW), 3);
        assert_eq!(days_left(Timestamp::from_millis(NOW.millis() - 1), NOW), -1);
    }
}
