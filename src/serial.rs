//! SOA serial numbers: RFC 1982 arithmetic and the serial policies.
//!
//! A serial must move forward every time a zone's content changes, or
//! secondaries stop following. [`next`] picks the next serial from the one
//! actually deployed and the clock the caller passes in; it never reads the
//! clock itself, so every case (a hundred changes in a day, a wrap past
//! 2^32, a zone that used another policy before) is a table test.

use crate::config::SerialPolicy;
use chrono::{Datelike, NaiveDate};
use std::cmp::Ordering;

/// A serial number compared with RFC 1982 §3.2 sequence-space arithmetic:
/// only `PartialOrd`, since two serials 2^31 apart are not comparable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Serial(pub u32);

const HALF: u32 = 1 << 31;

impl PartialOrd for Serial {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        let (a, b) = (self.0, other.0);
        if a == b {
            Some(Ordering::Equal)
        } else if (a < b && b - a < HALF) || (a > b && a - b > HALF) {
            Some(Ordering::Less)
        } else if (a < b && b - a > HALF) || (a > b && a - b < HALF) {
            Some(Ordering::Greater)
        } else {
            None
        }
    }
}

impl Serial {
    /// RFC 1982 §3.1 addition (`n` must be below 2^31), skipping 0, which
    /// some tools treat as "no serial".
    #[must_use]
    pub fn plus(self, n: u32) -> Serial {
        debug_assert!(n < HALF);
        match self.0.wrapping_add(n) {
            0 => Serial(1),
            s => Serial(s),
        }
    }
}

/// The clock, as the policies need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub date: NaiveDate,
    pub unix: i64,
}

/// The policy's own candidate for a change made now.
fn candidate(policy: SerialPolicy, now: Now) -> Option<u32> {
    match policy {
        SerialPolicy::Date => {
            let ymd = u64::try_from(now.date.year()).ok()? * 10_000
                + u64::from(now.date.month()) * 100
                + u64::from(now.date.day());
            u32::try_from(ymd * 100).ok()
        }
        // Seconds since the epoch modulo 2^32: RFC 1982 comparison keeps it
        // moving forward past 2106.
        SerialPolicy::Unixtime => u32::try_from(now.unix.rem_euclid(1 << 32)).ok(),
        SerialPolicy::Increment => None,
    }
}

/// The serial for a zone whose content changed.
///
/// `deployed` is the highest serial known to be out there (the state's, or
/// the served file's when that is larger). The result is the policy's
/// candidate when that is ahead of `deployed` in RFC 1982 terms, otherwise
/// `deployed + 1`: past 99 changes a day the date policy borrows the next
/// day's numbers, and a zone that used larger serials before is never
/// taken backwards. Never 0.
pub fn next(policy: SerialPolicy, deployed: Option<u32>, now: Now) -> u32 {
    let cand = candidate(policy, now).filter(|c| *c != 0);
    match (deployed, cand) {
        (None, Some(c)) => c,
        (None, None) => 1,
        (Some(d), Some(c)) if Serial(c) > Serial(d) => c,
        (Some(d), _) => Serial(d).plus(1).0,
    }
}

/// The larger of two serials in RFC 1982 terms (`a` when incomparable).
pub fn max(a: u32, b: u32) -> u32 {
    if Serial(b) > Serial(a) { b } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SerialPolicy::{Date, Increment, Unixtime};

    fn now(y: i32, m: u32, d: u32, unix: i64) -> Now {
        Now {
            date: NaiveDate::from_ymd_opt(y, m, d).unwrap(),
            unix,
        }
    }

    #[test]
    fn rfc1982_order() {
        assert!(Serial(1) > Serial(0));
        assert!(Serial(0) > Serial(u32::MAX));
        assert!(Serial(5) > Serial(u32::MAX - 5));
        assert!(Serial(HALF - 1) > Serial(0));
        assert_eq!(Serial(HALF).partial_cmp(&Serial(0)), None);
        assert!(Serial(2_026_112_600) < Serial(2_026_112_601));
        assert_eq!(Serial(u32::MAX).plus(1), Serial(1));
    }

    #[test]
    fn policies() {
        let day = now(2026, 11, 26, 1_795_651_200);
        let next_day = now(2026, 11, 27, 1_795_737_600);
        let cases: &[(SerialPolicy, Option<u32>, Now, u32)] = &[
            // First deploy.
            (Date, None, day, 2_026_112_600),
            (Unixtime, None, day, 1_795_651_200),
            (Increment, None, day, 1),
            // Same day, later changes.
            (Date, Some(2_026_112_600), day, 2_026_112_601),
            (Date, Some(2_026_112_698), day, 2_026_112_699),
            // Past 99 changes a day: borrow from tomorrow, never wrap back.
            (Date, Some(2_026_112_699), day, 2_026_112_700),
            (Date, Some(2_026_112_700), day, 2_026_112_701),
            // Next day after borrowing: still forward.
            (Date, Some(2_026_112_701), next_day, 2_026_112_702),
            // Next day, normal.
            (Date, Some(2_026_112_605), next_day, 2_026_112_700),
            // Clock went backwards a day: still forward.
            (Date, Some(2_026_112_700), day, 2_026_112_701),
            // Zone had unixtime serials, larger than a date serial: forward.
            (Date, Some(3_000_000_000), day, 3_000_000_001),
            // Zone had small increment serials: the date is ahead, jump.
            (Date, Some(7), day, 2_026_112_600),
            // Unixtime against a larger date serial from before.
            (Unixtime, Some(2_026_112_600), day, 2_026_112_601),
            (Unixtime, Some(1_795_651_199), day, 1_795_651_200),
            (Unixtime, Some(1_795_651_200), day, 1_795_651_201),
            // Increment wraps and skips 0.
            (Increment, Some(41), day, 42),
            (Increment, Some(u32::MAX), day, 1),
            // 2026112600 is ahead of 2^32-1 in RFC 1982 terms.
            (Date, Some(u32::MAX), day, 2_026_112_600),
            // A deployed serial half the space away from the date: the date
            // is not ahead in RFC 1982 terms, so step past the deployed one.
            (Date, Some(2_026_112_600 + HALF), day, 2_026_112_601 + HALF),
        ];
        for &(policy, deployed, at, want) in cases {
            let got = next(policy, deployed, at);
            assert_eq!(got, want, "{policy:?} from {deployed:?}");
            assert_ne!(got, 0);
            if let Some(d) = deployed {
                assert!(
                    Serial(got) > Serial(d),
                    "{policy:?}: {got} must be after {d}"
                );
            }
        }
    }

    #[test]
    fn max_is_rfc1982() {
        assert_eq!(max(5, u32::MAX), 5);
        assert_eq!(max(2_026_112_600, 2_026_112_601), 2_026_112_601);
    }
}
