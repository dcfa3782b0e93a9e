//! Durations as Lua code writes them: a number of milliseconds, or a string
//! such as `"250ms"`, `"2s"`, `"1m30s"`.

/// Parses a duration string into milliseconds.
pub fn parse_ms(s: &str) -> Result<f64, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("invalid duration: empty string".into());
    }
    if let Ok(n) = text.parse::<f64>() {
        return check(n, s);
    }
    let mut total = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("invalid duration {s:?}: missing unit (ns, us, ms, s, m, h)"))?;
        if num_end == 0 {
            return Err(format!("invalid duration {s:?}: expected a number"));
        }
        let n: f64 = rest[..num_end].parse().map_err(|_| format!("invalid duration {s:?}: bad number"))?;
        let unit_end =
            rest[num_end..].find(|c: char| c.is_ascii_digit() || c == '.').map_or(rest.len(), |i| i + num_end);
        let scale = match &rest[num_end..unit_end] {
            "ns" => 1e-6,
            "us" | "µs" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            "m" => 60e3,
            "h" => 3600e3,
            other => return Err(format!("invalid duration {s:?}: unknown unit {other:?}")),
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    check(total, s)
}

fn check(ms: f64, s: &str) -> Result<f64, String> {
    if ms.is_finite() && ms >= 0.0 {
        Ok(ms)
    } else {
        Err(format!("invalid duration {s:?}: must be a non-negative finite value"))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_ms;

    #[test]
    fn units_and_compounds() {
        assert_eq!(parse_ms("250ms"), Ok(250.0));
        assert_eq!(parse_ms("2s"), Ok(2000.0));
        assert_eq!(parse_ms("1m30s"), Ok(90_000.0));
        assert_eq!(parse_ms("500us"), Ok(0.5));
        assert_eq!(parse_ms("15"), Ok(15.0));
    }

    #[test]
    fn garbage_is_refused_with_the_input_named() {
        assert!(parse_ms("").is_err());
        assert!(parse_ms("5x").unwrap_err().contains("\"5x\""));
        assert!(parse_ms("ms").is_err());
        assert!(parse_ms("-1").is_err());
    }
}
