//! Dates and instants as sources write them. HMPPS timestamps come in several forms (RFC 3339
//! with 0 to 9 fractional digits, `Z` or an offset, a `[Europe/London]` zone suffix, and Java's
//! `Fri Jun 14 09:06:52 BST 2024`); treatment extracts write dates the usual UK ways. Every
//! parser returns a message naming the accepted forms, never the rejected text.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::London;

/// What an instant must look like, for error messages.
pub const INSTANT_FORMS: &str =
    "must be a date-time such as 2024-10-14T15:09:54+01:00, 2024-10-14T14:09:54.123Z or Fri Jun 14 09:06:52 BST 2024";

/// What a date must look like, for error messages.
pub const DATE_FORMS: &str = "must be a date as YYYY-MM-DD, DD/MM/YYYY, DD-MM-YYYY or 14 Jun 2024";

/// Parse an instant in any form HMPPS sends. A date-time without an offset is Europe/London
/// local time.
pub fn parse_instant(raw: &str) -> Result<DateTime<Utc>, &'static str> {
    let s = raw.trim();
    // `2024-06-07T00:00:00+01:00[Europe/London]`: the offset already fixes the instant.
    let s = match s.find('[') {
        Some(i) if s.ends_with(']') => &s[..i],
        _ => s,
    };
    if let Ok(t) = DateTime::<FixedOffset>::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Some(t) = java_date(s) {
        return Ok(t);
    }
    for form in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(local) = NaiveDateTime::parse_from_str(s, form) {
            return London
                .from_local_datetime(&local)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .ok_or(INSTANT_FORMS);
        }
    }
    Err(INSTANT_FORMS)
}

/// `Fri Jun 14 09:06:52 BST 2024` (`java.util.Date::toString` in a UK JVM).
fn java_date(s: &str) -> Option<DateTime<Utc>> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [weekday, month, day, time, zone, year] = parts.as_slice() else {
        return None;
    };
    let offset_hours = match *zone {
        "BST" => 1,
        "GMT" | "UTC" | "Z" => 0,
        _ => return None,
    };
    let text = format!("{weekday} {month} {day} {time} {year}");
    let local = NaiveDateTime::parse_from_str(&text, "%a %b %d %H:%M:%S %Y").ok()?;
    let offset = FixedOffset::east_opt(offset_hours * 3600)?;
    offset
        .from_local_datetime(&local)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// Parse a calendar date in the forms UK systems write. Years have four digits: `01/02/24`
/// is refused rather than guessed.
pub fn parse_date(raw: &str) -> Result<NaiveDate, &'static str> {
    let s = raw.trim();
    // A date-time where a date is expected (`2024-06-07T00:00:00`): the date part.
    let s = s.split_once('T').map_or(s, |(d, _)| d);
    for form in [
        "%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%d %b %Y", "%d %B %Y", "%d-%b-%Y",
    ] {
        if let Ok(d) = NaiveDate::parse_from_str(s, form) {
            // chrono accepts short years for %Y; a four-digit year is required.
            if form.contains("%Y") && !has_four_digit_year(s) {
                continue;
            }
            return Ok(d);
        }
    }
    Err(DATE_FORMS)
}

fn has_four_digit_year(s: &str) -> bool {
    s.split(|c: char| !c.is_ascii_digit())
        .any(|part| part.len() == 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn every_hmpps_timestamp_form() {
        for (raw, expected) in [
            ("2024-10-14T15:09:54+01:00", "2024-10-14T14:09:54Z"),
            (
                "2023-08-04T08:09:36.649098+01:00",
                "2023-08-04T07:09:36.649098Z",
            ),
            (
                "2023-02-23T15:55:21.1065440Z",
                "2023-02-23T15:55:21.106544Z",
            ),
            (
                "2024-03-14T16:14:48.060048501Z",
                "2024-03-14T16:14:48.060048501Z",
            ),
            ("2024-12-11T15:43:20Z", "2024-12-11T15:43:20Z"),
            (
                "2024-06-07T00:00:00+01:00[Europe/London]",
                "2024-06-06T23:00:00Z",
            ),
            ("Fri Jun 14 09:06:52 BST 2024", "2024-06-14T08:06:52Z"),
            ("Tue Jan 14 09:06:52 GMT 2025", "2025-01-14T09:06:52Z"),
            ("2024-06-07T00:00:00", "2024-06-06T23:00:00Z"),
            ("2024-01-07T00:00:00", "2024-01-07T00:00:00Z"),
        ] {
            assert_eq!(parse_instant(raw), Ok(utc(expected)), "{raw}");
        }
    }

    #[test]
    fn bad_instants_name_the_forms() {
        for raw in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "Fri Jun 14 09:06:52 CEST 2024",
        ] {
            assert_eq!(parse_instant(raw), Err(INSTANT_FORMS), "{raw}");
        }
    }

    #[test]
    fn uk_date_forms() {
        let d = NaiveDate::from_ymd_opt(2024, 6, 7).unwrap();
        for raw in [
            "2024-06-07",
            "07/06/2024",
            "7/6/2024",
            "07-06-2024",
            "07.06.2024",
            "7 Jun 2024",
            "07 June 2024",
            "07-Jun-2024",
            "2024-06-07T00:00:00",
        ] {
            assert_eq!(parse_date(raw), Ok(d), "{raw}");
        }
        for raw in ["07/06/24", "06/31/2024", "2024/06/07x", "", "32/01/2024"] {
            assert_eq!(parse_date(raw), Err(DATE_FORMS), "{raw}");
        }
    }
}
