//! Time as the domain sees it: a [`Timestamp`] in milliseconds since the Unix epoch.
//!
//! The domain never reads a clock. Every function that depends on time takes `now` as an
//! argument, so tests (and simulated clocks in end-to-end tests) decide what "now" is.

use std::fmt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Milliseconds in one day.
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl Timestamp {
    /// A timestamp from milliseconds since the epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// A timestamp from whole seconds since the epoch.
    pub const fn from_seconds(seconds: i64) -> Self {
        Self(seconds.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded towards negative infinity).
    pub const fn seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// This timestamp moved by `days` (negative moves back).
    pub const fn plus_days(self, days: i64) -> Self {
        Self(self.0.saturating_add(days.saturating_mul(DAY_MS)))
    }

    /// Parses an RFC 3339 timestamp such as `2026-11-23T10:00:00Z`.
    ///
    /// # Errors
    /// A message saying what was expected.
    pub fn parse_rfc3339(input: &str) -> Result<Self, String> {
        OffsetDateTime::parse(input, &Rfc3339)
            .map(Self::from)
            .map_err(|e| format!("{input:?} is not an RFC 3339 timestamp (like 2026-11-23T10:00:00Z): {e}"))
    }

    /// The timestamp in RFC 3339 form, UTC, with millisecond precision when needed.
    pub fn to_rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| format!("@{}ms", self.0))
    }
}

impl From<OffsetDateTime> for Timestamp {
    fn from(value: OffsetDateTime) -> Self {
        // i64 milliseconds cover ±292 million years; the cast cannot truncate real dates.
        Self((value.unix_timestamp_nanos() / 1_000_000) as i64)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let t = Timestamp::parse_rfc3339("2026-11-23T10:00:00Z").unwrap();
        assert_eq!(t.seconds(), 1_795_428_000);
        assert_eq!(t.to_rfc3339(), "2026-11-23T10:00:00Z");
        assert_eq!(t.plus_days(1).seconds() - t.seconds(), 86_400);
    }

    #[test]
    fn bad_input_is_explained() {
        let err = Timestamp::parse_rfc3339("yesterday").unwrap_err();
        assert!(err.contains("RFC 3339"));
    }
}
