//! Time as plain Unix seconds: a clock that tests can pin, and the two
//! text forms the API uses (`2021-01-20T09:00:40Z`, and minute precision
//! `2021-01-20T09:00Z` in older answers).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall clock or a pinned one. Collection time and heartbeat ages come from
/// it, so the golden `/metrics` test is deterministic.
#[derive(Clone, Debug)]
pub enum Clock {
    System,
    Fixed(Arc<AtomicI64>),
}

impl Clock {
    pub fn fixed(unix: i64) -> Self {
        Clock::Fixed(Arc::new(AtomicI64::new(unix)))
    }

    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
            Clock::Fixed(t) => t.load(Ordering::Relaxed),
        }
    }

    /// Moves a pinned clock; no effect on the system clock.
    pub fn advance(&self, secs: i64) {
        if let Clock::Fixed(t) = self {
            t.fetch_add(secs, Ordering::Relaxed);
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DDThh:mm:ssZ`, the form the signer sends as `Timestamp`.
pub fn format_iso8601(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Same, at minute precision (`2021-01-20T09:00Z`), as older API answers write.
pub fn format_iso8601_minutes(unix: i64) -> String {
    let full = format_iso8601(unix);
    format!("{}Z", &full[..16])
}

/// Parses `YYYY-MM-DDThh:mm:ssZ` or `YYYY-MM-DDThh:mmZ` (UTC) into Unix seconds.
/// Fractional seconds (`.123Z`) are accepted and dropped. `None` if malformed.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 17
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d, h, mi) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
    );
    let rest = &s[16..];
    let sec = if rest == "Z" {
        0
    } else if let Some(r) = rest.strip_prefix(':') {
        let r = r.strip_suffix('Z')?;
        let (whole, frac) = r.split_once('.').unwrap_or((r, "0"));
        if whole.len() != 2 || !frac.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        num(17..19)?
    } else {
        return None;
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(format_iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_iso8601(1_456_231_584), "2016-02-23T12:46:24Z");
        assert_eq!(parse_iso8601("2016-02-23T12:46:24Z"), Some(1_456_231_584));
        assert_eq!(parse_iso8601("2021-01-20T09:00Z"), Some(1_611_133_200));
        assert_eq!(parse_iso8601("2021-01-20T09:00:40Z"), Some(1_611_133_240));
        assert_eq!(
            parse_iso8601("2021-01-20T09:00:40.123Z"),
            Some(1_611_133_240)
        );
        assert_eq!(format_iso8601_minutes(1_611_133_240), "2021-01-20T09:00Z");
        assert_eq!(
            parse_iso8601("2024-02-29T23:59:59Z")
                .map(format_iso8601)
                .as_deref(),
            Some("2024-02-29T23:59:59Z")
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2021",
            "2021-01-20",
            "2021-13-20T09:00Z",
            "2021-01-20T25:00Z",
            "2021-01-20T09:00:4Z",
            "2021-01-20T09:00:40",
            "abcd-01-20T09:00Z",
            "2021-01-20T09:00:40+08:00",
            "2021-01-20T09:0é:40Z",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips_many_days() {
        let mut t = -86_400 * 365 * 3;
        while t < 86_400 * 365 * 80 {
            assert_eq!(parse_iso8601(&format_iso8601(t)), Some(t));
            t += 86_400 * 7 + 3_601;
        }
    }

    #[test]
    fn pinned_clock_moves_only_when_told() {
        let c = Clock::fixed(100);
        assert_eq!(c.now(), 100);
        c.advance(60);
        assert_eq!(c.now(), 160);
    }
}
