//! The URL scheme: one path per section, `/v1/credentials/NAME`, NAME the
//! section's name percent-encoded; and the same encoding for the names of
//! per-section token files.
//!
//! One spelling per section: every byte outside `A-Z a-z 0-9 - _ .` is
//! encoded (hex digits in upper case), and so is a leading `.`, so that no
//! encoded name is `.` or `..` (a dot segment that clients and proxies may
//! resolve away, and a file name that means a directory). A path is
//! accepted only when it is exactly the encoding of the name it decodes
//! to: `%2e%2e`, `%2F`, `..`, double encoding and every other second
//! spelling are not found, without a rule for each.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Where the credentials of every section are served.
pub const PREFIX: &str = "/v1/credentials/";

/// Bytes kept as they are in an encoded name (RFC 3986's unreserved
/// characters but `~`, which some tools encode themselves).
const ENCODED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// Section names longer than this are not looked up (TOML allows any
/// length; a path this long is an attack, not a section).
const MAX_NAME_BYTES: usize = 1024;

/// `NAME` as a path segment or file name (see the module's rules).
pub fn encode(section: &str) -> String {
    let encoded = utf8_percent_encode(section, ENCODED).to_string();
    match encoded.strip_prefix('.') {
        Some(rest) => format!("%2E{rest}"),
        None => encoded,
    }
}

/// The path that serves `section`.
pub fn path_of(section: &str) -> String {
    format!("{PREFIX}{}", encode(section))
}

/// Why a path names no section. Shown to the client as is: it never
/// quotes the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotFound {
    /// Not under [`PREFIX`].
    OtherPath,
    /// Under it, but no section name could be spelled this way.
    BadName(&'static str),
}

impl NotFound {
    pub(crate) fn message(self) -> String {
        match self {
            NotFound::OtherPath => format!(
                "nothing is served here; credentials are at {PREFIX}SECTION (the section's name, percent-encoded)"
            ),
            NotFound::BadName(why) => format!("no section is served at this path: {why}"),
        }
    }
}

/// The section a request path (without the query) names. The name is not
/// yet known to be served: the caller checks that.
pub(crate) fn section_of(path: &str) -> Result<String, NotFound> {
    let raw = path.strip_prefix(PREFIX).ok_or(NotFound::OtherPath)?;
    if raw.is_empty() {
        return Err(NotFound::BadName("the section name is empty"));
    }
    if raw.len() > 3 * MAX_NAME_BYTES {
        return Err(NotFound::BadName("the section name is too long"));
    }
    if raw.contains('/') {
        return Err(NotFound::BadName(
            "a section name is one path segment (a `/` in it is written %2F)",
        ));
    }
    let name = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| NotFound::BadName("the section name is not UTF-8"))?;
    if name.chars().any(char::is_control) {
        return Err(NotFound::BadName(
            "the section name holds a control character",
        ));
    }
    if encode(&name) != raw {
        return Err(NotFound::BadName(
            "not the section name's one spelling (encode every byte but A-Z a-z 0-9 - _ . and a leading ., in upper-case hex)",
        ));
    }
    Ok(name.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_their_one_spelling() {
        for name in [
            "prod",
            "123456789012",
            "team.eu-west-1_admin",
            "a b",
            "a/b",
            "%41",
            "%2E%2E",
            "..",
            ".",
            ".hidden",
            "ünïcode",
            "quote'\"",
        ] {
            let path = path_of(name);
            assert_eq!(section_of(&path), Ok(name.to_string()), "{path}");
            let encoded = encode(name);
            assert!(!encoded.contains('/'), "{encoded}");
            assert!(encoded != "." && encoded != ".." && !encoded.starts_with('.'));
        }
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
        assert_eq!(encode(".."), "%2E.");
        // Decoded once only: a double-encoded `..` is the name `%2E%2E`.
        assert_eq!(section_of("/v1/credentials/%252E%252E").unwrap(), "%2E%2E");
    }

    #[test]
    fn other_spellings_and_traversals_are_not_found() {
        let bad = |path: &str| {
            assert!(
                matches!(section_of(path), Err(NotFound::BadName(_))),
                "{path} was accepted"
            );
        };
        for path in [
            "/v1/credentials/",
            "/v1/credentials/..",
            "/v1/credentials/.",
            "/v1/credentials/../etc/passwd",
            "/v1/credentials/prod/",
            "/v1/credentials/prod/..",
            "/v1/credentials/%2e%2e",
            "/v1/credentials/%2E%2E",
            "/v1/credentials/%2E%2E%2Fetc",
            "/v1/credentials/..%2F..%2Fetc",
            "/v1/credentials/%70rod",
            "/v1/credentials/a%2fb",
            "/v1/credentials/%00",
            "/v1/credentials/a%0Ab",
            "/v1/credentials/%1B%5B2J",
            "/v1/credentials/%FF%FE",
            "/v1/credentials/%",
            "/v1/credentials/%zz",
        ] {
            bad(path);
        }
        bad(&format!("/v1/credentials/{}", "a".repeat(4000)));
        for path in [
            "/",
            "/v1/credentials",
            "/v1/credential/prod",
            "//v1/credentials/prod",
        ] {
            assert_eq!(section_of(path), Err(NotFound::OtherPath), "{path}");
        }
    }

    #[test]
    fn messages_never_quote_the_path() {
        for path in ["/v1/credentials/%1B%5B2J", "/secret-looking-path"] {
            let message = section_of(path).unwrap_err().message();
            assert!(
                !message.contains("2J") && !message.contains("secret"),
                "{message}"
            );
        }
    }
}
