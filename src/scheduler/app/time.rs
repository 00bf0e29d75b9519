//! Marathon's timestamps: ISO-8601 UTC with milliseconds and `Z`
//! (`2015-09-30T09:09:17.614Z`), the one form marathon-python parses
//! without either of its two formats failing (it refuses `+00:00` and
//! nine fractional digits). Versions of apps and groups are such strings.
//!
//! Written here rather than with a date crate: the project has none, and the
//! civil-from-days arithmetic (Howard Hinnant's) is a dozen lines.

/// Seconds since the epoch as Marathon writes them, rounded to the millisecond.
pub fn marathon_timestamp(secs_since_epoch: f64) -> String {
    let millis = if secs_since_epoch.is_finite() {
        (secs_since_epoch * 1000.0).round() as i64
    } else {
        0
    };
    let days = millis.div_euclid(86_400_000);
    let in_day = millis.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s, ms) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

/// Reads `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+00:00|±HH:MM)` back into seconds
/// since the epoch. `None` when it is not such a timestamp.
pub fn parse_marathon_timestamp(text: &str) -> Option<f64> {
    let text = text.trim();
    let (date, rest) = text.split_once(['T', 't', ' '])?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = digits(date_parts.next()?, 4)?;
    let month: i64 = digits(date_parts.next()?, 2)?;
    let day: i64 = digits(date_parts.next()?, 2)?;
    let (clock, offset_secs) = split_offset(rest)?;
    let (hms, fraction) = match clock.split_once('.') {
        Some((hms, frac)) if !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()) => {
            (hms, format!("0.{frac}").parse::<f64>().ok()?)
        }
        Some(_) => return None,
        None => (clock, 0.0),
    };
    let mut clock_parts = hms.splitn(3, ':');
    let h: i64 = digits(clock_parts.next()?, 2)?;
    let m: i64 = digits(clock_parts.next()?, 2)?;
    let s: i64 = digits(clock_parts.next()?, 2)?;
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && h < 24
        && m < 60
        && s < 61;
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + h * 3600 + m * 60 + s - offset_secs;
    Some(secs as f64 + fraction)
}

/// Reformats any timestamp [`parse_marathon_timestamp`] reads into Marathon's form.
pub fn normalize_timestamp(text: &str) -> Option<String> {
    parse_marathon_timestamp(text).map(marathon_timestamp)
}

fn digits(text: &str, len: usize) -> Option<i64> {
    (text.len() == len && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// Splits `HH:MM:SS.fff` from its zone; returns the zone's offset in seconds.
fn split_offset(rest: &str) -> Option<(&str, i64)> {
    if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
        return Some((clock, 0));
    }
    let at = rest.rfind(['+', '-'])?;
    let (clock, zone) = rest.split_at(at);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let (hh, mm) = zone[1..].split_once(':').unwrap_or((&zone[1..], "00"));
    let (hh, mm) = (digits(hh, 2)?, digits(mm, 2)?);
    Some((clock, sign * (hh * 3600 + mm * 60)))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(marathon_timestamp(0.0), "1970-01-01T00:00:00.000Z");
        // Marathon's own example, 2015-09-30T09:09:17.614Z.
        assert_eq!(
            marathon_timestamp(1_443_604_157.614),
            "2015-09-30T09:09:17.614Z"
        );
        assert_eq!(
            marathon_timestamp(951_782_400.0),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            marathon_timestamp(4_107_542_399.999_4),
            "2100-02-28T23:59:59.999Z"
        );
        assert_eq!(marathon_timestamp(-1.5), "1969-12-31T23:59:58.500Z");
    }

    #[test]
    fn parse_reads_what_it_writes_and_common_variants() {
        let t = 1_443_604_157.614;
        let back = parse_marathon_timestamp(&marathon_timestamp(t)).expect("parse");
        assert!((back - t).abs() < 1e-6, "{back}");
        assert_eq!(
            parse_marathon_timestamp("2015-09-30T09:09:17Z"),
            Some(1_443_604_157.0)
        );
        let nanos = parse_marathon_timestamp("2015-09-30T09:09:17.614000000Z").expect("nanos");
        assert!((nanos - t).abs() < 1e-6);
        let offset = parse_marathon_timestamp("2015-09-30T11:09:17.614+02:00").expect("offset");
        assert!((offset - t).abs() < 1e-6);
        assert_eq!(
            normalize_timestamp("2015-09-30T09:09:17+00:00").as_deref(),
            Some("2015-09-30T09:09:17.000Z")
        );
    }

    #[test]
    fn parse_refuses_what_is_not_a_timestamp() {
        for bad in [
            "",
            "yesterday",
            "2015-09-30",
            "2015-13-01T00:00:00Z",
            "2015-02-29T00:00:00Z",
            "2015-09-30T24:00:00Z",
            "2015-09-30T09:09:17.Z",
            "2015-9-30T09:09:17Z",
            "2015-09-30T09:09:17",
        ] {
            assert_eq!(parse_marathon_timestamp(bad), None, "{bad:?}");
        }
        assert!(parse_marathon_timestamp("2016-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        // 1900-01-01 to 2300-01-01, one instant a day at a varying time.
        for day in -25_567..120_000_i64 {
            let secs = (day * 86_400 + (day * 7_919) % 86_400) as f64 + 0.25;
            let text = marathon_timestamp(secs);
            assert_eq!(parse_marathon_timestamp(&text), Some(secs), "{text}");
        }
    }
}
