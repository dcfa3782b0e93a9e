//! Unix seconds as UTC dates, and the `365d`/`12h`/`30m` durations that
//! `license issue --valid-for` takes. Small enough not to need a date crate.

/// `2026-11-18 12:26:40 UTC`.
pub(crate) fn format_utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// `1795000000 (2026-11-18 12:26:40 UTC)`: scripts read the number,
/// people read the date.
pub(crate) fn both(unix: u64) -> String {
    format!("{unix} ({})", format_utc(unix))
}

/// Year, month, day of the day `days` after 1970-01-01, in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Parses `365d`, `12h`, `30m`, `45s`, `1w` or combinations (`1d12h`) into
/// seconds. `0` alone is zero; any other number needs a unit, so `365`
/// cannot be misread as seconds when days were meant.
pub(crate) fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(0);
    }
    let bad = || format!("bad duration {text:?}: use a number and a unit, e.g. 365d, 12h, 30m, 1d12h (0: never)");
    if text.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'w' => 7 * 86_400,
            'd' => 86_400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_convert_across_leap_years_and_centuries() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(1_795_000_000), "2026-11-18 11:06:40 UTC");
        assert_eq!(format_utc(951_868_799), "2000-02-29 23:59:59 UTC");
        assert_eq!(both(86_400), "86400 (1970-01-02 00:00:00 UTC)");
    }

    #[test]
    fn every_day_follows_the_previous_one() {
        let mut prev = civil_from_days(-800_000);
        for day in -799_999..800_000 {
            let next = civil_from_days(day);
            let (y, m, d) = prev;
            let ok = next == (y, m, d + 1) || (next.2 == 1 && (next == (y, m + 1, 1) || next == (y + 1, 1, 1)));
            assert!(ok, "{prev:?} -> {next:?}");
            prev = next;
        }
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("365d"), Ok(365 * 86_400));
        assert_eq!(parse_duration("12h"), Ok(43_200));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("1d12h"), Ok(129_600));
        assert_eq!(parse_duration("2w"), Ok(1_209_600));
        assert_eq!(parse_duration("0"), Ok(0));
        for bad in ["", "365", "d", "12x", "1.5d", "-1d", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
