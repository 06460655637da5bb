//! The library's clock.

use chrono::{DateTime, Datelike as _, DurationRound as _, TimeDelta, Timelike as _, Utc};
use serde::Serializer;

use crate::error::{Error, Result};

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

/// What a date or time outside [`YEARS`] is told (code `out_of_range`).
pub(crate) const OUT_OF_YEARS: &str = "must fall in the years 1 to 9999";

/// `t` when it falls in [`YEARS`]; otherwise [`Error::Validation`] (`out_of_range`) on `field`.
/// Every time a caller passes that reaches a statement (a replay's start, a feed or job cut-off,
/// a past state's time) goes through it, so that PostgreSQL never sees a time it cannot hold
/// (`timestamp out of range` before 4713 BC) and SQLite none it would compare wrongly as text.
pub(crate) fn within_years(field: &'static str, t: DateTime<Utc>) -> Result<DateTime<Utc>> {
    if YEARS.contains(&t.year()) {
        Ok(t)
    } else {
        Err(Error::invalid(field, "out_of_range", OUT_OF_YEARS))
    }
}

/// Serializes `t` exactly as chrono does (RFC 3339 with `Z`, and 0, 3, 6 or 9 fractional
/// digits as needed), written into a buffer on the stack in one piece. chrono's own
/// `Serialize` goes through `Display` and the serializer's escaping `fmt::Write`, a call per
/// piece: a page of 50 records spent about 4 % of the server's CPU there.
pub(crate) fn serialize_rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 30];
    match rfc3339(t, &mut buf) {
        Some(text) => s.serialize_str(text),
        // Years of more than four digits, leap seconds: chrono's way.
        None => serde::Serialize::serialize(t, s),
    }
}

/// `t` as chrono's RFC 3339 text (`AutoSi` fractions, `Z`), in `buf`; `None` outside the years
/// 0–9999 or on a leap second.
pub(crate) fn rfc3339<'b>(t: &DateTime<Utc>, buf: &'b mut [u8; 30]) -> Option<&'b str> {
    fn digits(buf: &mut [u8], mut n: u32) {
        for b in buf.iter_mut().rev() {
            *b = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = t.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    digits(&mut buf[0..4], year);
    buf[4] = b'-';
    digits(&mut buf[5..7], t.month());
    buf[7] = b'-';
    digits(&mut buf[8..10], t.day());
    buf[10] = b'T';
    digits(&mut buf[11..13], t.hour());
    buf[13] = b':';
    digits(&mut buf[14..16], t.minute());
    buf[16] = b':';
    digits(&mut buf[17..19], t.second());
    let mut end = 19;
    let (fraction, width) = if nanos == 0 {
        (0, 0)
    } else if nanos.is_multiple_of(1_000_000) {
        (nanos / 1_000_000, 3)
    } else if nanos.is_multiple_of(1_000) {
        (nanos / 1_000, 6)
    } else {
        (nanos, 9)
    };
    if width > 0 {
        buf[end] = b'.';
        digits(&mut buf[end + 1..end + 1 + width], fraction);
        end += 1 + width;
    }
    buf[end] = b'Z';
    std::str::from_utf8(&buf[..=end]).ok()
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone as _};

    use super::*;

    #[test]
    fn timestamps_serialize_exactly_as_chrono_does() {
        let day = NaiveDate::from_ymd_opt(2025, 1, 2).unwrap();
        let mut times: Vec<DateTime<Utc>> = [
            0,
            1_000_000,
            120_000_000,
            1_000,
            123_456_000,
            1,
            999_999_999,
        ]
        .into_iter()
        .map(|n| Utc.from_utc_datetime(&day.and_hms_nano_opt(3, 4, 5, n).unwrap()))
        .collect();
        times.push(Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap());
        times.push(Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap());
        times.push(Utc.with_ymd_and_hms(-5, 6, 7, 8, 9, 10).unwrap());
        times.push(Utc.with_ymd_and_hms(12345, 6, 7, 8, 9, 10).unwrap());
        times
            .push(Utc.from_utc_datetime(&day.and_hms_nano_opt(23, 59, 59, 1_500_000_000).unwrap()));
        times.push(now());
        for t in times {
            let ours = serialize_rfc3339(&t, serde_json::value::Serializer).unwrap();
            assert_eq!(ours, serde_json::to_value(t).unwrap(), "{t:?}");
        }
    }
}
