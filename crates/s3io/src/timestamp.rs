//! S3 timestamps (`2024-05-01T12:00:00.000Z`) to Unix seconds, without
//! allocating: a listing page holds a thousand of them.

/// Parses an ISO 8601 UTC timestamp as S3 writes it; the fraction is dropped
/// (listings have one-second resolution). Offsets other than `Z` are honoured.
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
    use super::parse_s3_timestamp as p;

    #[test]
    fn parses_what_s3_writes() {
        assert_eq!(p("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(p("2024-05-01T00:00:00.000Z"), Some(1_714_521_600));
        assert_eq!(p("2024-05-01T00:00:00Z"), Some(1_714_521_600));
        assert_eq!(p("2024-02-29T23:59:59.999Z"), Some(1_709_251_199));
        assert_eq!(p("2024-05-01T02:00:00+02:00"), Some(1_714_521_600));
        assert_eq!(p("2024-13-01T00:00:00Z"), None);
        assert_eq!(p("yesterday"), None);
    }
}
