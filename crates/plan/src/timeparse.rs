//! TIME and DURATION arguments.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

use crate::PlanError;

/// RFC 3339 (`2014-01-01T14:00:00+07:00`, `…Z`), or `YYYY-MM-DD[THH:MM:SS]`
/// taken as UTC. Returns Unix seconds (a fraction is dropped: S3 listings have
/// one-second resolution).
pub fn parse_time(text: &str) -> Result<i64, PlanError> {
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
    Err(PlanError::BadTime(text.to_owned()))
}

/// `30d`, `12h`, `90m`, `45s`, `2w`, or a sum such as `1d12h`. Returns seconds.
pub fn parse_duration(text: &str) -> Result<i64, PlanError> {
    let bad = || PlanError::BadDuration(text.to_owned());
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

/// Unix seconds as the catalog writes times: `2024-05-01T14:00:00Z`.
pub fn format_time(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| t.to_string())
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
}
