//! The SSO token cache shared with the AWS tools: `~/.aws/sso/cache/<sha1
//! hex of the sso-session name>.json` (legacy profiles without an
//! sso-session: the sha1 of the start URL), in the format the AWS CLI v2,
//! botocore and the AWS SDK for Rust read and write:
//!
//! ```json
//! {"startUrl": "https://d-1234567890.awsapps.com/start", "region": "eu-west-1",
//!  "accessToken": "…", "expiresAt": "2026-11-25T16:05:00Z",
//!  "clientId": "…", "clientSecret": "…",
//!  "registrationExpiresAt": "2027-02-23T08:05:00Z", "refreshToken": "…"}
//! ```
//!
//! What each tool does with it, checked in their code:
//! - the AWS CLI v2 writes timestamps as `%Y-%m-%dT%H:%M:%SZ`
//!   (`awscli/customizations/sso/utils.py`, `_serialize_utc_timestamp`);
//!   botocore's token refresh writes the same (`botocore/tokens.py`,
//!   `_serialize_utc_timestamp`, `SSOTokenProvider._attempt_create_token`)
//!   and reads them with `dateutil.parser.parse`, which takes any form;
//! - the SDK for Rust (`aws-config` `sso/cache.rs`) reads them with
//!   smithy's RFC 3339 parser, which refuses any offset but `Z`, and writes
//!   RFC 3339 with `Z` (fractional seconds only when not zero); it matches
//!   keys case-insensitively and requires only `accessToken` and
//!   `expiresAt`; a refresh needs `refreshToken`, `clientId`,
//!   `clientSecret` and `registrationExpiresAt` (`CachedSsoToken::refreshable`);
//! - old CLI v2 releases wrote `…T16:05:00UTC` (`%Z`): read here too.
//!
//! So this module writes whole-second UTC with `Z` (the form every reader
//! takes), the eight keys in botocore's order, mode 0600, atomically
//! (temporary file, fsync, rename: [`crate::private_file`]). The caller
//! holds the SSO session's sign-in lock while it writes; botocore and the
//! SDK take no lock, but they replace the file by a rename too (botocore)
//! or write it whole, so a reader sees one version or the other.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::private_file::{self, PrivateFileError, ReadRules};

/// A token file is a few hundred bytes.
const MAX_TOKEN_FILE: u64 = 64 * 1024;

/// Other tools write the file with their own mode (the SDK for Rust: 0644);
/// it is read whatever its mode, but never through a link.
const READ_RULES: ReadRules = ReadRules {
    limit: MAX_TOKEN_FILE,
    follow: false,
    owned: false,
};

/// `~/.aws/sso/cache`, where every AWS tool keeps its SSO tokens.
pub(crate) fn token_cache_dir(home: &Path) -> PathBuf {
    home.join(".aws").join("sso").join("cache")
}

/// The lowercase hex SHA-1 of `identifier` (the sso-session name, or the
/// start URL of a legacy profile): the cache file's name without `.json`.
pub(crate) fn cache_key(identifier: &str) -> String {
    Sha1::digest(identifier.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One cached token, as the AWS tools keep it. Only `access_token` and
/// `expires_at` are required; the rest is what a refresh needs.
#[derive(Clone)]
pub(crate) struct CachedToken {
    pub start_url: Option<String>,
    pub region: Option<String>,
    pub access_token: SecretString,
    pub expires_at: OffsetDateTime,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub registration_expires_at: Option<OffsetDateTime>,
    pub refresh_token: Option<SecretString>,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("start_url", &self.start_url)
            .field("region", &self.region)
            .field("access_token", &"***")
            .field("expires_at", &self.expires_at)
            .field("client_id", &self.client_id)
            .field("registration_expires_at", &self.registration_expires_at)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl CachedToken {
    /// True when the token carries what a refresh needs and its client
    /// registration is still valid at `now` (the refresh token is bound to
    /// that registration: a new one cannot use it).
    pub(crate) fn refreshable(&self, now: OffsetDateTime) -> bool {
        self.refresh_token.is_some()
            && self.client_id.is_some()
            && self.client_secret.is_some()
            && self.registration_expires_at.is_some_and(|at| at > now)
    }
}

/// The file's JSON, key for key. Strings, so that a value of the wrong
/// type makes the file unreadable rather than half-read.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Stored {
    #[serde(skip_serializing_if = "Option::is_none")]
    start_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    access_token: Option<String>,
    expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
}

/// The serialized secrets are zeroed when the record is dropped.
impl Drop for Stored {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for secret in [
            &mut self.access_token,
            &mut self.client_secret,
            &mut self.refresh_token,
        ]
        .into_iter()
        .flatten()
        {
            secret.zeroize();
        }
    }
}

/// A timestamp as the AWS tools write it: RFC 3339 (`Z` or an offset,
/// with or without fractions), the `…UTC` form of old CLI v2 releases, or
/// no zone at all (read as UTC).
pub(crate) fn parse_time(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    match text.strip_suffix("UTC") {
        Some(rest) => crate::timestamp::parse_expiry(&format!("{rest}Z")),
        None => crate::timestamp::parse_expiry(text),
    }
}

/// Why the cache could not be used. The text names the path and the fix;
/// it never quotes the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CacheError(pub String);

impl std::fmt::Display for CacheError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<PrivateFileError> for CacheError {
    fn from(error: PrivateFileError) -> Self {
        match error {
            // `ensure_private_dir`'s own advice is about the runtime directory.
            PrivateFileError::Unsafe { path, problem, .. } => CacheError(format!(
                "{} {problem}; the SSO token cache must be a directory of your own: remove it or fix its owner",
                path.display()
            )),
            other => CacheError(other.to_string()),
        }
    }
}

/// The token files in one directory.
#[derive(Debug, Clone)]
pub(crate) struct TokenCache {
    dir: PathBuf,
}

impl TokenCache {
    pub(crate) fn new(dir: PathBuf) -> Self {
        TokenCache { dir }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of the token for `identifier`.
    pub(crate) fn path(&self, identifier: &str) -> PathBuf {
        self.dir.join(format!("{}.json", cache_key(identifier)))
    }

    /// The cached token for `identifier`; `None` when there is none, or
    /// when the file cannot be a token (bad JSON, no `accessToken` or
    /// `expiresAt`, an unreadable time): a sign-in replaces it, as the AWS
    /// CLI's `aws sso login` would. A file that is not ours, a link or a
    /// special file is an error: nothing is read through it.
    pub(crate) fn read(&self, identifier: &str) -> Result<Option<CachedToken>, CacheError> {
        let path = self.path(identifier);
        let Some(file) = private_file::read(&path, READ_RULES)? else {
            return Ok(None);
        };
        let uid = rustix::process::geteuid().as_raw();
        if file.meta.uid() != uid {
            return Err(CacheError(format!(
                "{} belongs to uid {}, not to this user (uid {uid}); remove it",
                path.display(),
                file.meta.uid()
            )));
        }
        let stored: Stored = match serde_json::from_slice(&file.bytes) {
            Ok(stored) => stored,
            Err(e) => {
                // serde_json's message names a line and column, never the text.
                tracing::warn!(
                    "{} is not an SSO token file ({e}); it is replaced at the next sign-in",
                    path.display()
                );
                return Ok(None);
            }
        };
        let token = Self::from_stored(stored);
        if token.is_none() {
            tracing::warn!(
                "{} has no usable accessToken and expiresAt; it is replaced at the next sign-in",
                path.display()
            );
        }
        Ok(token)
    }

    fn from_stored(mut stored: Stored) -> Option<CachedToken> {
        let access_token = stored.access_token.take().filter(|t| !t.is_empty())?;
        let expires_at = parse_time(stored.expires_at.as_deref()?)?;
        Some(CachedToken {
            start_url: stored.start_url.take(),
            region: stored.region.take(),
            access_token: SecretString::from(access_token),
            expires_at,
            client_id: stored.client_id.take(),
            client_secret: stored.client_secret.take().map(SecretString::from),
            registration_expires_at: stored
                .registration_expires_at
                .as_deref()
                .and_then(parse_time),
            refresh_token: stored.refresh_token.take().map(SecretString::from),
        })
    }

    /// Writes the token for `identifier` (0600, atomic; the directories
    /// are created 0700 when missing). The caller holds the sign-in lock.
    pub(crate) fn write(&self, identifier: &str, token: &CachedToken) -> Result<(), CacheError> {
        self.ensure_dir()?;
        let expose = |s: &SecretString| s.expose_secret().to_string();
        let stored = Stored {
            start_url: token.start_url.clone(),
            region: token.region.clone(),
            access_token: Some(expose(&token.access_token)),
            expires_at: Some(crate::timestamp::rfc3339(token.expires_at)),
            client_id: token.client_id.clone(),
            client_secret: token.client_secret.as_ref().map(expose),
            registration_expires_at: token.registration_expires_at.map(crate::timestamp::rfc3339),
            refresh_token: token.refresh_token.as_ref().map(expose),
        };
        let mut bytes = Zeroizing::new(Vec::with_capacity(1024));
        serde_json::to_writer(&mut *bytes, &stored)
            .map_err(|e| CacheError(format!("cannot encode the SSO token: {e}")))?;
        private_file::write(&self.path(identifier), &bytes)?;
        Ok(())
    }

    /// `~/.aws/sso/cache` (and `~/.aws/sso`, `~/.aws` when missing) with
    /// mode 0700; an existing cache directory must be the user's own.
    pub(crate) fn ensure_dir(&self) -> Result<(), CacheError> {
        if let Some(parent) = self.dir.parent()
            && !parent.as_os_str().is_empty()
        {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| CacheError(format!("cannot create {}: {e}", parent.display())))?;
        }
        private_file::ensure_private_dir(&self.dir)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_file_name_is_the_sha1_of_the_session_name() {
        // Known values: `echo -n NAME | sha1sum`.
        assert_eq!(
            cache_key("my-sso"),
            "0ad374308c5a4e22f723adf10145eafad7c4031c"
        );
        assert_eq!(
            cache_key("https://d-123.awsapps.com/start"),
            "2b829a45f04c9828cb45b7d092d8e4aa30818393"
        );
        assert_eq!(cache_key(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }

    #[test]
    fn reads_every_timestamp_form_the_tools_write() {
        let at = datetime!(2026-11-25 16:05:00 UTC);
        for text in [
            "2026-11-25T16:05:00Z",
            "2026-11-25T16:05:00UTC",
            "2026-11-25T16:05:00.000Z",
            "2026-11-25T17:05:00+01:00",
            "2026-11-25T16:05:00",
        ] {
            assert_eq!(parse_time(text), Some(at), "{text}");
        }
        for bad in ["", "soon", "2026-13-25T16:05:00Z", "1764086700"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    fn token() -> CachedToken {
        CachedToken {
            start_url: Some("https://d-1234567890.awsapps.com/start".to_string()),
            region: Some("eu-west-1".to_string()),
            access_token: SecretString::from("aoaAAAAaccess"),
            expires_at: datetime!(2026-11-25 16:05:00.25 UTC),
            client_id: Some("client-1".to_string()),
            client_secret: Some(SecretString::from("client-secret")),
            registration_expires_at: Some(datetime!(2027-02-23 08:05:00 UTC)),
            refresh_token: Some(SecretString::from("aorAAAArefresh")),
        }
    }

    #[test]
    fn writes_the_tools_format_private_and_reads_it_back() {
        let home = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(token_cache_dir(home.path()));
        cache.write("corp", &token()).unwrap();
        let path = cache.path("corp");
        assert_eq!(
            path.file_name().unwrap().to_str().unwrap(),
            format!("{}.json", cache_key("corp"))
        );
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "{\"startUrl\":\"https://d-1234567890.awsapps.com/start\",\"region\":\"eu-west-1\",\
             \"accessToken\":\"aoaAAAAaccess\",\"expiresAt\":\"2026-11-25T16:05:00Z\",\
             \"clientId\":\"client-1\",\"clientSecret\":\"client-secret\",\
             \"registrationExpiresAt\":\"2027-02-23T08:05:00Z\",\"refreshToken\":\"aorAAAArefresh\"}"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(cache.dir()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let read = cache.read("corp").unwrap().unwrap();
        assert_eq!(read.access_token.expose_secret(), "aoaAAAAaccess");
        assert_eq!(read.expires_at, datetime!(2026-11-25 16:05:00 UTC));
        assert!(read.refreshable(datetime!(2027-01-01 00:00 UTC)));
        assert!(!read.refreshable(datetime!(2027-03-01 00:00 UTC)));
        assert!(!format!("{read:?}").contains("aoaAAAA"));
        assert!(cache.read("other").unwrap().is_none());
    }

    #[test]
    fn a_file_that_is_not_a_token_is_no_token_and_a_link_is_an_error() {
        let home = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(token_cache_dir(home.path()));
        cache.write("corp", &token()).unwrap();
        for junk in [
            "",
            "[]",
            "{\"accessToken\": 5, \"expiresAt\": \"2026-11-25T16:05:00Z\"}",
            "{\"accessToken\": \"x\"}",
            "{\"accessToken\": \"x\", \"expiresAt\": \"tomorrow\"}",
        ] {
            fs::write(cache.path("corp"), junk).unwrap();
            assert!(cache.read("corp").unwrap().is_none(), "{junk}");
        }
        // Case as the SDK for Rust would not write it, but extra keys as the
        // CLI writes them (receivedAt) are ignored.
        fs::write(
            cache.path("corp"),
            "{\"accessToken\":\"t\",\"expiresAt\":\"2026-11-25T16:05:00UTC\",\"receivedAt\":\"2026-11-25T08:05:00UTC\"}",
        )
        .unwrap();
        let read = cache.read("corp").unwrap().unwrap();
        assert!(!read.refreshable(datetime!(2026-01-01 00:00 UTC)));
        fs::remove_file(cache.path("corp")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", cache.path("corp")).unwrap();
        let error = cache.read("corp").unwrap_err();
        assert!(error.0.contains("symbolic link"), "{error}");
    }
}
