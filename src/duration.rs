//! Durations as users type them: `250ms`, `2s`, `1m`, `1h30m`, or a bare
//! number of seconds (`5`, `0.5`) as nc's `-w` takes it.

use std::time::Duration;

/// The longest duration accepted: far beyond any use, and small enough
/// that adding it to a clock reading can never overflow.
pub const MAX: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Parses a duration; the error names the value and the accepted forms.
pub fn parse(text: &str) -> Result<Duration, String> {
    let d = parse_unbounded(text)?;
    if d > MAX {
        return Err(format!(
            "duration \"{text}\" is too long: at most 100 years"
        ));
    }
    Ok(d)
}

/// Parses a duration that must be more than zero (a timeout of 0 would
/// fire at once).
pub fn parse_positive(text: &str) -> Result<Duration, String> {
    let d = parse(text)?;
    if d.is_zero() {
        return Err(format!("duration \"{text}\" must be more than 0"));
    }
    Ok(d)
}

fn parse_unbounded(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration \"{text}\": use a number of seconds (5, 0.5) or a unit (250ms, 2s, 1m)"
        )
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(bad());
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = trimmed.parse().map_err(|_| bad())?;
        return Duration::try_from_secs_f64(secs).map_err(|_| bad());
    }
    humantime::parse_duration(trimmed).map_err(|_| bad())
}

/// Sleeps until `at`, or forever when there is no deadline: a `select!`
/// branch for an optional timeout.
pub async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Formats a duration the way it is usually typed (`500ms`, `5s`, `1.5s`).
pub fn show(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) && d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_units_and_bare_seconds() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_garbage_naming_it() {
        for bad in ["", "-1", "5x", "1.2.3", "s", "abc"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(&format!("\"{bad}\"")), "{err}");
        }
    }

    #[test]
    fn huge_and_zero_durations() {
        assert!(
            parse("9999999999999999999")
                .unwrap_err()
                .contains("too long")
        );
        assert!(parse("1000000000d").unwrap_err().contains("too long"));
        assert!(parse_positive("0").unwrap_err().contains("more than 0"));
        assert_eq!(parse_positive("1ms"), Ok(Duration::from_millis(1)));
    }

    #[test]
    fn shows_like_typed() {
        assert_eq!(show(Duration::from_millis(250)), "250ms");
        assert_eq!(show(Duration::from_secs(3)), "3s");
        assert_eq!(show(Duration::from_millis(1500)), "1.5s");
    }
}
