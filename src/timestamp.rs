//! Instants as the daemon shows, stores and reads them: one copy of each
//! rule. Every function here is total: a date at the edge of what `time`
//! can represent (`9999-12-31T23:59:59-23:59` is valid RFC 3339, and in UTC
//! it is year 10000) never panics; it is refused when read.

use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// RFC 3339 in UTC with whole seconds, as saml2aws and okta-aws-cli write
/// `x_security_token_expires`: `2026-11-25T16:05:00Z`. Used for the file,
/// the logs, `plan` and `status` alike.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.checked_to_offset(UtcOffset::UTC)
        .and_then(|t| t.replace_nanosecond(0).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "(a date out of range)".to_string())
}

/// An expiry as other tools write it: RFC 3339 with an offset, or the
/// zone-less form (`2026-11-25T10:00:00`) that aws-mfa and awsume write,
/// read as UTC. Returned in UTC; `None` for anything else, including an
/// instant that has no UTC representation.
pub fn parse_expiry(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    let parsed = OffsetDateTime::parse(text, &Rfc3339).ok().or_else(|| {
        let with_zone = format!("{}Z", text.trim_end_matches('Z'));
        OffsetDateTime::parse(&with_zone, &Rfc3339).ok()
    })?;
    parsed.checked_to_offset(UtcOffset::UTC)
}

/// Whole seconds since the Unix epoch; 0 for an instant before it (a clock
/// set to 1970 by a dead RTC battery).
pub fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The same instant as a `SystemTime` (the OATH module and the code
/// providers take one); instants before the epoch become the epoch.
pub fn system_time(at: OffsetDateTime) -> SystemTime {
    let nanos = at.unix_timestamp_nanos();
    match u64::try_from(nanos) {
        Ok(n) => UNIX_EPOCH + StdDuration::from_nanos(n),
        Err(_) if nanos < 0 => UNIX_EPOCH,
        Err(_) => UNIX_EPOCH + StdDuration::from_secs(u64::MAX / 4),
    }
}

/// "in 1h 05m", "3m ago", "now": how far `at` is from `now`.
pub fn relative(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let seconds = (at - now).whole_seconds();
    if seconds == 0 {
        return "now".to_string();
    }
    let abs = seconds.unsigned_abs();
    let text = if abs >= 172_800 {
        format!("{}d {}h", abs / 86_400, abs % 86_400 / 3600)
    } else if abs >= 3600 {
        format!("{}h {:02}m", abs / 3600, abs % 3600 / 60)
    } else if abs >= 60 {
        format!("{}m", abs / 60)
    } else {
        format!("{abs}s")
    };
    if seconds > 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// `rfc3339 (relative)`, the form `plan` and `status` print.
pub fn with_relative(at: OffsetDateTime, now: OffsetDateTime) -> String {
    format!("{} ({})", rfc3339(at), relative(at, now))
}

/// `#[serde(serialize_with = ...)]` for an instant: [`rfc3339`], which
/// cannot fail (time's own RFC 3339 serializer fails on years outside
/// 0000-9999, and `plan --json` must print whatever the file holds).
pub(crate) fn serialize<S: serde::Serializer>(
    at: &OffsetDateTime,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*at))
}

/// `#[serde(with = "crate::timestamp::option")]`: an optional instant,
/// written with [`rfc3339`] and read as [`parse_expiry`] reads (a value out
/// of range reads as none).
pub(crate) mod option {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub(crate) fn serialize<S: Serializer>(
        at: &Option<OffsetDateTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => s.serialize_some(&super::rfc3339(*at)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.and_then(|text| super::parse_expiry(&text)))
    }
}

/// `#[serde(with = "crate::timestamp::required")]`: an instant in the
/// daemon's own files, written with [`rfc3339`], read with [`parse_expiry`].
pub(crate) mod required {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub(crate) fn serialize<S: Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        super::serialize(at, s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_expiry(&text)
            .ok_or_else(|| serde::de::Error::custom("not an RFC 3339 instant in range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_in_utc_with_whole_seconds() {
        assert_eq!(
            rfc3339(datetime!(2026-11-25 17:05:00.9 +01:00)),
            "2026-11-25T16:05:00Z"
        );
    }

    #[test]
    fn edge_dates_never_panic() {
        // Valid RFC 3339, but year 10000 in UTC: refused when read.
        assert_eq!(parse_expiry("9999-12-31T23:59:59-23:59"), None);
        assert_eq!(
            parse_expiry("9999-12-31T23:59:59+23:59"),
            Some(datetime!(9999-12-31 00:00:59 UTC))
        );
        assert_eq!(
            parse_expiry("2026-11-25T10:00:00"),
            Some(datetime!(2026-11-25 10:00 UTC))
        );
        assert_eq!(parse_expiry("tomorrow"), None);
        let far = datetime!(9999-12-31 23:59:59 -23:59);
        assert_eq!(rfc3339(far), "(a date out of range)");
        let _ = relative(far, datetime!(2026-11-25 0:00 UTC));
        assert_eq!(
            system_time(datetime!(1960-01-01 0:00 UTC)),
            UNIX_EPOCH,
            "before the epoch"
        );
    }

    #[test]
    fn the_past_reads_ago_and_the_present_now() {
        let now = datetime!(2026-11-25 12:00 UTC);
        assert_eq!(relative(now, now), "now");
        assert_eq!(relative(now - time::Duration::seconds(5), now), "5s ago");
        assert_eq!(
            relative(now + time::Duration::minutes(65), now),
            "in 1h 05m"
        );
        assert_eq!(relative(now - time::Duration::days(3), now), "3d 0h ago");
    }
}
