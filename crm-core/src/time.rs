//! The library's clock.

use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};

/// Now, truncated to microseconds: PostgreSQL stores no finer, so a value the library returns
/// is exactly the value it reads back later, on either backend.
pub(crate) fn now() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(TimeDelta::microseconds(1))
        .unwrap_or(now)
}

/// The years a date or time may fall in: what both backends store, sort and compare faithfully
/// as four-digit years.
pub(crate) const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;
