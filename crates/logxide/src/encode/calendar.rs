//! The proleptic Gregorian calendar in UTC, for the dates that rotated file names and the
//! `logxide` command show (H. Hinnant's days-from-civil algorithms).

/// The date (year, month 1–12, day 1–31) of `days` days after 1970-01-01 (before it when
/// negative). Defined for every `i64`: the arithmetic is done in `i128`, so no day
/// overflows (a corrupt timestamp read from a file gives a far year, not a panic).
///
/// ```
/// use logxide::encode::calendar::{civil_from_days, days_from_civil};
/// assert_eq!(civil_from_days(0), (1970, 1, 1));
/// assert_eq!(civil_from_days(19_675), (2023, 11, 14));
/// assert_eq!(days_from_civil(2024, 2, 29), 19_782);
/// assert_eq!(civil_from_days(days_from_civil(1600, 3, 1)), (1600, 3, 1));
/// ```
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = i128::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i128::from(m <= 2);
    // |y| is at most |days| / 365 + 1: it fits.
    (y as i64, m as u32, d as u32)
}

/// Days from 1970-01-01 to the date (year, month 1–12, day 1–31); the inverse of
/// [`civil_from_days`] (for every date it returns). Computed in `i128`.
///
/// # Panics
/// If the number of days does not fit in an `i64`: a year beyond about ±2.5 × 10^16, which
/// no date [`civil_from_days`] returns has.
///
/// ```
/// use logxide::encode::calendar::{civil_from_days, days_from_civil};
/// assert_eq!(days_from_civil(1970, 1, 1), 0);
/// assert_eq!(days_from_civil(2024, 3, 1), 19_783);
/// assert_eq!(civil_from_days(19_783), (2024, 3, 1));
/// ```
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = i128::from(y);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i128::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i128::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    i64::try_from(era * 146_097 + doe - 719_468).expect("a year within about ±2.5e16")
}
