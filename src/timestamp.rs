//! Instants as the daemon shows, stores and reads them: one copy of each
//! rule. Every function here is total: a date at the edge of what `time`
//! can represent (`9999-12-31T23:59:59-23:59` is valid RFC 3339, and in UTC
//! it is year 10000) never panics; it is refused when read. Pure: the clock
//! is an argument (`now`), never read here.

use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// RFC 3339 in UTC with whole seconds, as saml2aws and okta-aws-cli write
/// `x_security_token_expires`: `2026-11-25T16:05:00Z`. `None` for an
/// instant RFC 3339 cannot write (a year before 0000 or after 9999 in UTC):
/// what goes into a file or to another program (the credentials file, the
/// runtime cache, `credential-process`'s JSON) is written with this, so
/// that a display placeholder never lands there.
pub fn format_rfc3339(at: OffsetDateTime) -> Option<String> {
    at.checked_to_offset(UtcOffset::UTC)
        .and_then(|t| t.replace_nanosecond(0).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
}

/// [`format_rfc3339`] for display (logs, `plan`, `status`): an instant it
/// cannot write shows as `(a date out of range)`. Never for a file.
pub fn rfc3339(at: OffsetDateTime) -> String {
    format_rfc3339(at).unwrap_or_else(|| "(a date out of range)".to_string())
}

/// How far AWS's clock and this machine's may disagree (SigV4 allows 15
/// minutes): an expiry is believed up to this much later than the
/// duration asked for.
pub const CLOCK_SKEW: time::Duration = time::Duration::minutes(15);

/// The longest session STS hands out: GetSessionToken's 36 hours
/// (`sts::limits::SESSION_TOKEN_DURATION`; AssumeRole's is 12 hours).
pub const LONGEST_SESSION: time::Duration = time::Duration::hours(36);

/// How long ago a session's expiry may lie and still be shown as such.
/// Sessions last at most 36 hours, so an expiry in the past is a session
/// that ended while nothing refreshed it (a laptop closed for a week); a
/// year is far more than that, and far less than the year 0, 1970 (a
/// missing expiry read as zero) or the epoch a dead RTC battery shows.
pub const OLDEST_EXPIRY: time::Duration = time::Duration::days(366);

/// An expiry written in a credentials file, judged at `now`: the instant
/// when it can be a session's expiry, that is within
/// [`now` − [`OLDEST_EXPIRY`], `now` + [`LONGEST_SESSION`] + [`CLOCK_SKEW`]];
/// `None` when it is unreadable or outside that window.
///
/// The planner treats `None` as "no expiry recorded" (`unmanaged`), which
/// it refreshes at once: a user-written `9999-12-31T23:59:60Z` is no longer
/// fresh for ever, and a year-0 or 1970 placeholder never reaches a table,
/// a cache or a file. An old expiry inside the window is an expired
/// session (refreshed too, and shown with how long ago it ended).
pub fn session_expiry(text: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let at = parse_expiry(text)?;
    let earliest = now.checked_sub(OLDEST_EXPIRY);
    let latest = now
        .checked_add(LONGEST_SESSION)
        .and_then(|t| t.checked_add(CLOCK_SKEW));
    let after_earliest = earliest.is_none_or(|earliest| at >= earliest);
    let before_latest = latest.is_none_or(|latest| at <= latest);
    (after_earliest && before_latest && format_rfc3339(at).is_some()).then_some(at)
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
/// set to 1970 by a dead RTC battery). For TOTP, use [`totp_seconds`].
pub fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The wall clock reads before 1970: TOTP (RFC 6238) counts time steps
/// from the Unix epoch, so no code can be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the system clock reads {0}, before 1970: TOTP codes count from 1970-01-01, so none can be computed (every step would be 0); set the clock (timedatectl, NTP)"
)]
pub struct ClockBeforeEpoch(pub String);

impl crate::retry::Classified for ClockBeforeEpoch {
    fn retry_class(&self) -> crate::retry::RetryClass {
        crate::retry::RetryClass::NeedsUser
    }
}

/// Whole seconds since the Unix epoch, for a TOTP time step; an error for
/// an instant before the epoch, where [`unix_seconds`]' 0 would repeat the
/// step 0 code for ever (AWS refuses a code's second use).
pub fn totp_seconds(at: SystemTime) -> Result<u64, ClockBeforeEpoch> {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|before| {
            let seconds = i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX);
            let shown = OffsetDateTime::UNIX_EPOCH
                .checked_sub(time::Duration::seconds(seconds))
                .map_or_else(|| "a date out of range".to_string(), rfc3339);
            ClockBeforeEpoch(shown)
        })
}

/// The same instant as a `SystemTime` (the OATH module and the code
/// providers take one). An instant before the epoch stays before it (a
/// clock in 1969 must not read as 1970, where a TOTP step could be
/// computed: see [`totp_seconds`]).
pub fn system_time(at: OffsetDateTime) -> SystemTime {
    let nanos = at.unix_timestamp_nanos();
    match u64::try_from(nanos) {
        Ok(n) => UNIX_EPOCH + StdDuration::from_nanos(n),
        Err(_) if nanos < 0 => {
            let before = u64::try_from(nanos.unsigned_abs()).unwrap_or(u64::MAX);
            UNIX_EPOCH
                .checked_sub(StdDuration::from_nanos(before))
                .unwrap_or(UNIX_EPOCH - StdDuration::from_secs(1))
        }
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

    /// An instant RFC 3339 cannot write is written as none: it reads back
    /// as none anyway, and no placeholder lands in the file.
    pub(crate) fn serialize<S: Serializer>(
        at: &Option<OffsetDateTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match at.and_then(super::format_rfc3339) {
            Some(text) => s.serialize_some(&text),
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

    /// An instant RFC 3339 cannot write is an error, not a placeholder.
    pub(crate) fn serialize<S: Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        match super::format_rfc3339(*at) {
            Some(text) => s.serialize_str(&text),
            None => Err(serde::ser::Error::custom(
                "an instant RFC 3339 cannot write (year before 0000 or after 9999)",
            )),
        }
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
        let before = system_time(datetime!(1960-01-01 0:00 UTC));
        assert!(before < UNIX_EPOCH, "before the epoch stays before it");
        assert!(totp_seconds(before).is_err());
        assert!(system_time(datetime!(-9999-01-01 0:00 UTC)) < UNIX_EPOCH);
    }

    #[test]
    fn only_a_session_s_expiry_is_believed() {
        let now = datetime!(2026-11-25 12:00 UTC);
        for (text, believed) in [
            ("2026-11-25T13:00:00Z", true),
            ("2026-11-27T00:00:00Z", true),
            ("2026-11-25T10:00:00Z", true),
            ("2026-01-01T00:00:00Z", true),
            // More than 36 h and 15 min ahead: no STS session lasts that long.
            ("2026-11-27T00:15:01Z", false),
            ("9999-12-31T23:59:59Z", false),
            ("9999-12-31T23:59:60Z", false),
            // A missing expiry read as zero, year 0, year -1 in UTC.
            ("1970-01-01T00:00:00Z", false),
            ("0000-01-01T00:00:00Z", false),
            ("0000-01-01T00:00:00+23:59", false),
            ("tomorrow", false),
        ] {
            assert_eq!(session_expiry(text, now).is_some(), believed, "{text}");
        }
        // At the edges of the calendar nothing panics.
        let late = datetime!(9999-12-31 23:59:59 UTC);
        assert!(session_expiry("9999-12-31T23:59:59Z", late).is_some());
        let early = datetime!(-9999-01-01 0:00 UTC);
        assert_eq!(session_expiry("2026-11-25T13:00:00Z", early), None);
    }

    #[test]
    fn files_get_no_placeholder() {
        // Year -1 in UTC: readable, not writable as RFC 3339.
        let at = parse_expiry("0000-01-01T00:00:00+23:59").unwrap();
        assert_eq!(format_rfc3339(at), None);
        assert_eq!(rfc3339(at), "(a date out of range)");
        #[derive(serde::Serialize)]
        struct Record {
            #[serde(with = "super::required")]
            at: OffsetDateTime,
            #[serde(with = "super::option")]
            maybe: Option<OffsetDateTime>,
        }
        let text = serde_json::to_string(&Record {
            at: datetime!(2026-11-25 12:00 UTC),
            maybe: Some(at),
        })
        .unwrap();
        assert_eq!(text, r#"{"at":"2026-11-25T12:00:00Z","maybe":null}"#);
        assert!(serde_json::to_string(&Record { at, maybe: None }).is_err());
    }

    #[test]
    fn totp_refuses_a_clock_before_1970() {
        assert_eq!(
            totp_seconds(UNIX_EPOCH + StdDuration::from_secs(59)),
            Ok(59)
        );
        let error = totp_seconds(UNIX_EPOCH - StdDuration::from_secs(86_400)).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("reads 1969-12-31T00:00:00Z, before 1970"),
            "{error}"
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
