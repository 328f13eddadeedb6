//! Time as text, in one place: the catalog's form (`2024-05-01T14:00:00Z`,
//! which sorts and compares correctly as text), S3's timestamps, and the
//! TIME and DURATION arguments people type. Everything is whole seconds
//! since the Unix epoch in UTC: S3 lists LastModified to the second.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// A TIME or DURATION argument that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error(
        "{0:?} is not a time\n  hint: write RFC 3339 (2024-05-01T14:00:00Z, 2024-05-01T16:00:00+02:00) or YYYY-MM-DD[THH:MM:SS] in UTC"
    )]
    BadTime(String),
    #[error("{0:?} is not a duration\n  hint: write a number and a unit: 30d, 12h, 90m, 45s, 2w, or a sum such as 1d12h")]
    BadDuration(String),
}

/// Unix seconds as the catalog writes times: `2024-05-01T14:00:00Z`.
/// (By hand rather than through chrono's format strings: a plan writes one
/// into the reason of every action, millions of them.)
pub fn format_time(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return DateTime::from_timestamp(t, 0)
            .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|| t.to_string());
    }
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Now, in the catalog's form.
pub fn now_text() -> String {
    format_time(now())
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A TIME argument: RFC 3339 (`2014-01-01T14:00:00+07:00`, `…Z`), or
/// `YYYY-MM-DD[THH:MM:SS]` taken as UTC. A fraction is dropped.
pub fn parse_time(text: &str) -> Result<i64, TimeError> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp());
    }
    if let Ok(dt) = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S") {
        return Ok(dt.and_utc().timestamp());
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp());
    }
    Err(TimeError::BadTime(text.to_owned()))
}

/// A DURATION argument: `30d`, `12h`, `90m`, `45s`, `2w`, or a sum such as
/// `1d12h`. Returns seconds.
pub fn parse_duration(text: &str) -> Result<i64, TimeError> {
    let bad = || TimeError::BadDuration(text.to_owned());
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        let n: i64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

/// An ISO 8601 UTC timestamp as S3 writes it (`2024-05-01T12:00:00.000Z`),
/// without allocating: a listing page holds a thousand of them. The
/// fraction is dropped; offsets other than `Z` are honoured.
pub fn parse_s3_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[from..to] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" | "" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || rb[3] != b':' || !matches!(rb[0], b'+' | b'-') {
                return None;
            }
            let h: i64 = rest[1..3].parse().ok()?;
            let m: i64 = rest[4..6].parse().ok()?;
            let sign = if rb[0] == b'-' { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
    };
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("2024-05-01").unwrap(), 1_714_521_600);
        assert_eq!(parse_time("2024-05-01T00:00:00").unwrap(), 1_714_521_600);
        assert_eq!(parse_time("2024-05-01T00:00:00Z").unwrap(), 1_714_521_600);
        assert_eq!(
            parse_time("2024-05-01T07:00:00+07:00").unwrap(),
            1_714_521_600
        );
        assert_eq!(
            parse_time("2024-05-01T00:00:00.900Z").unwrap(),
            1_714_521_600
        );
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2024-05-01 00:00",
            "1714521600",
            "2024-05-01T25:00:00",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert_eq!(format_time(1_714_521_600), "2024-05-01T00:00:00Z");
    }

    #[test]
    fn formats_every_second_as_chrono_would() {
        let chrono_way = |t: i64| {
            DateTime::from_timestamp(t, 0)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        };
        let mut t: i64 = -62_135_596_800; // 0001-01-01
        while t < 253_402_300_799 {
            assert_eq!(format_time(t), chrono_way(t), "{t}");
            t += 86_399 * 97 + 12_345;
        }
        for t in [0, 951_782_400, 1_709_251_199, 4_107_542_399] {
            assert_eq!(format_time(t), chrono_way(t));
            assert_eq!(parse_s3_timestamp(&format_time(t)), Some(t));
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d").unwrap(), 30 * 86_400);
        assert_eq!(parse_duration("12h").unwrap(), 12 * 3600);
        assert_eq!(parse_duration("1d12h").unwrap(), 36 * 3600);
        assert_eq!(parse_duration("0s").unwrap(), 0);
        assert_eq!(parse_duration("2w").unwrap(), 14 * 86_400);
        for bad in ["", "30", "d", "30x", "-1d", "1.5d", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn s3_timestamps() {
        let p = parse_s3_timestamp;
        assert_eq!(p("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(p("2024-05-01T00:00:00.000Z"), Some(1_714_521_600));
        assert_eq!(p("2024-05-01T00:00:00Z"), Some(1_714_521_600));
        assert_eq!(p("2024-02-29T23:59:59.999Z"), Some(1_709_251_199));
        assert_eq!(p("2024-05-01T02:00:00+02:00"), Some(1_714_521_600));
        assert_eq!(p("2024-13-01T00:00:00Z"), None);
        assert_eq!(p("yesterday"), None);
    }
}
