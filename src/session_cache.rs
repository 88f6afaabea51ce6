//! MFA sessions and the last TOTP step per MFA device, shared across
//! processes through `$XDG_RUNTIME_DIR/aws-session-daemon/`.
//!
//! Why a file: a restart must not cost a YubiKey code while the MFA session
//! is still valid, and several daemon processes (the original's
//! one-process-per-section systemd template) must share one MFA session
//! instead of racing for codes. AWS refuses a code it has already accepted,
//! so the last TOTP step used per device is shared too.
//!
//! The directory is 0700 and the files 0600 (they hold session secrets, like
//! the credentials file itself). All access is under an exclusive `flock`
//! on a sibling lock file. Without `XDG_RUNTIME_DIR` the cache lives in
//! memory only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::private_file::{self, PrivateFileError, ReadRules};
use crate::session::MfaSessionKey;
use crate::session::SessionCredentials;

const CACHE_FILE: &str = "mfa-sessions.json";
const LOCK_FILE: &str = "mfa-sessions.lock";

/// A cache of a few sessions is a few kilobytes.
const MAX_CACHE_SIZE: u64 = 1024 * 1024;

/// Files the daemon wrote to its runtime directory: never through a link,
/// only its own, only private.
pub(crate) const RUNTIME_FILE_RULES: ReadRules = ReadRules {
    limit: MAX_CACHE_SIZE,
    follow: false,
    owned: true,
};

/// The runtime directory: `$XDG_RUNTIME_DIR/aws-session-daemon`. Without
/// the variable (cron, `sudo`, ssh without a login session, a container),
/// the user's `/run/user/UID` when it is theirs, so that such a process
/// shares the running daemon's MFA sessions and TOTP steps; else
/// `$XDG_CACHE_HOME` (or `~/.cache`)`/aws-session-daemon`, shared at least by
/// such processes among themselves. Whether it may be used (this user's own,
/// private) is checked where it is used.
pub fn runtime_dir(env: crate::config::EnvLookup) -> Option<PathBuf> {
    const NAME: &str = "aws-session-daemon";
    if let Some(dir) = env("XDG_RUNTIME_DIR").filter(|dir| !dir.is_empty()) {
        return Some(Path::new(&dir).join(NAME));
    }
    let me = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").ok()?);
    let run_user = PathBuf::from(format!("/run/user/{me}"));
    let theirs = std::fs::symlink_metadata(&run_user)
        .is_ok_and(|m| m.is_dir() && std::os::unix::fs::MetadataExt::uid(&m) == me);
    if theirs {
        return Some(run_user.join(NAME));
    }
    let cache_home = env("XDG_CACHE_HOME")
        .filter(|dir| Path::new(dir).is_absolute())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| Path::new(&home).join(".cache")))?;
    // The XDG cache directory may not exist yet (its parent, the home, does).
    if !cache_home.exists() {
        let _ = std::os::unix::fs::DirBuilderExt::mode(
            std::fs::DirBuilder::new().recursive(true),
            0o700,
        )
        .create(&cache_home);
    }
    Some(cache_home.join(NAME))
}

#[derive(Serialize, Deserialize, Clone)]
struct StoredSession {
    access_key_id: String,
    mfa_serial_number: String,
    duration: u32,
    region: String,
    endpoint: Option<String>,
    session_access_key_id: String,
    session_secret_access_key: String,
    session_token: String,
    #[serde(with = "crate::timestamp::required")]
    expiration: OffsetDateTime,
}

/// The serialized secrets are zeroed when the record is dropped.
impl Drop for StoredSession {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.session_secret_access_key.zeroize();
        self.session_token.zeroize();
    }
}

/// A profile's session kept for `credential_process` (`output = "process"`).
#[derive(Serialize, Deserialize, Clone)]
struct StoredProfile {
    profile: String,
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    #[serde(with = "crate::timestamp::required")]
    expiration: OffsetDateTime,
}

/// The serialized secrets are zeroed when the record is dropped.
impl Drop for StoredProfile {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.secret_access_key.zeroize();
        self.session_token.zeroize();
    }
}

#[derive(Serialize, Deserialize, Default, Clone)]
struct Stored {
    #[serde(default)]
    sessions: Vec<StoredSession>,
    /// Last TOTP step sent to STS, per MFA device serial.
    #[serde(default)]
    last_steps: BTreeMap<String, u64>,
    #[serde(default)]
    profiles: Vec<StoredProfile>,
}

/// The cached MFA sessions, TOTP steps and `output = "process"` profiles.
#[derive(Default, Clone)]
pub struct CacheContents {
    pub sessions: BTreeMap<MfaSessionKey, SessionCredentials>,
    pub last_steps: BTreeMap<String, u64>,
    /// The sessions of `output = "process"` profiles, by profile name.
    pub profiles: BTreeMap<String, SessionCredentials>,
}

impl std::fmt::Debug for CacheContents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheContents")
            .field("sessions", &self.sessions.len())
            .field("last_steps", &self.last_steps)
            .field("profiles", &self.profiles.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl CacheContents {
    /// Expiries of the sessions still valid at `now`, for the planner.
    pub fn known(&self, now: OffsetDateTime) -> BTreeMap<MfaSessionKey, OffsetDateTime> {
        self.sessions
            .iter()
            .filter(|(_, c)| c.expiration > now)
            .map(|(k, c)| (k.clone(), c.expiration))
            .collect()
    }

    /// Expiries of the `output = "process"` profiles still valid at `now`.
    pub fn process_profiles(&self, now: OffsetDateTime) -> BTreeMap<String, OffsetDateTime> {
        self.profiles
            .iter()
            .filter(|(_, c)| c.expiration > now)
            .map(|(profile, c)| (profile.clone(), c.expiration))
            .collect()
    }

    /// Forgets expired sessions, so the file does not grow.
    pub fn prune(&mut self, now: OffsetDateTime) {
        self.sessions.retain(|_, c| c.expiration > now);
        self.profiles.retain(|_, c| c.expiration > now);
    }

    fn from_stored(mut stored: Stored) -> Self {
        let sessions = stored
            .sessions
            .iter_mut()
            .map(|s| {
                let take = std::mem::take::<String>;
                (
                    MfaSessionKey {
                        access_key_id: take(&mut s.access_key_id),
                        mfa_serial_number: take(&mut s.mfa_serial_number),
                        duration: s.duration,
                        region: take(&mut s.region),
                        endpoint: s.endpoint.take(),
                    },
                    SessionCredentials {
                        access_key_id: take(&mut s.session_access_key_id),
                        secret_access_key: SecretString::from(take(
                            &mut s.session_secret_access_key,
                        )),
                        session_token: SecretString::from(take(&mut s.session_token)),
                        expiration: s.expiration,
                    },
                )
            })
            .collect();
        let profiles = stored
            .profiles
            .iter_mut()
            .map(|p| {
                let take = std::mem::take::<String>;
                (
                    take(&mut p.profile),
                    SessionCredentials {
                        access_key_id: take(&mut p.access_key_id),
                        secret_access_key: SecretString::from(take(&mut p.secret_access_key)),
                        session_token: SecretString::from(take(&mut p.session_token)),
                        expiration: p.expiration,
                    },
                )
            })
            .collect();
        CacheContents {
            sessions,
            last_steps: std::mem::take(&mut stored.last_steps),
            profiles,
        }
    }

    fn to_stored(&self) -> Stored {
        Stored {
            sessions: self
                .sessions
                .iter()
                .map(|(k, c)| StoredSession {
                    access_key_id: k.access_key_id.clone(),
                    mfa_serial_number: k.mfa_serial_number.clone(),
                    duration: k.duration,
                    region: k.region.clone(),
                    endpoint: k.endpoint.clone(),
                    session_access_key_id: c.access_key_id.clone(),
                    session_secret_access_key: c.secret_access_key.expose_secret().to_string(),
                    session_token: c.session_token.expose_secret().to_string(),
                    expiration: c.expiration,
                })
                .collect(),
            last_steps: self.last_steps.clone(),
            profiles: self
                .profiles
                .iter()
                .map(|(profile, c)| StoredProfile {
                    profile: profile.clone(),
                    access_key_id: c.access_key_id.clone(),
                    secret_access_key: c.secret_access_key.expose_secret().to_string(),
                    session_token: c.session_token.expose_secret().to_string(),
                    expiration: c.expiration,
                })
                .collect(),
        }
    }

    /// Takes what another process knows that we do not: later sessions and
    /// later TOTP steps win.
    pub fn merge(&mut self, other: CacheContents) {
        for (key, session) in other.sessions {
            match self.sessions.get(&key) {
                Some(ours) if ours.expiration >= session.expiration => {}
                _ => {
                    self.sessions.insert(key, session);
                }
            }
        }
        for (serial, step) in other.last_steps {
            let ours = self.last_steps.entry(serial).or_default();
            *ours = (*ours).max(step);
        }
        for (profile, session) in other.profiles {
            match self.profiles.get(&profile) {
                Some(ours) if ours.expiration >= session.expiration => {}
                _ => {
                    self.profiles.insert(profile, session);
                }
            }
        }
    }
}

/// The cache: a file under the runtime directory, or memory only.
pub struct SessionCache {
    dir: Option<PathBuf>,
    memory: CacheContents,
}

/// An exclusive hold on the shared cache. While it is held no other daemon
/// can spend a code or start a session for any device; it is released on drop.
pub struct CacheLock {
    _lock: Option<private_file::Lock>,
}

impl CacheLock {
    /// No hold at all: assigning it over a held lock releases that one
    /// (while waiting for the next TOTP step, say).
    pub fn released() -> Self {
        CacheLock { _lock: None }
    }
}

impl SessionCache {
    pub fn new(dir: Option<PathBuf>) -> Self {
        SessionCache {
            dir,
            memory: CacheContents::default(),
        }
    }

    /// Another view of the same shared file, with nothing in memory yet:
    /// for a part of a pass that writes beside another.
    pub fn sibling(&self) -> Self {
        SessionCache::new(self.dir.clone())
    }

    /// Waits for the cross-process lock without blocking a thread, so that
    /// the wait ends with the task (a SIGTERM while another process holds
    /// the lock during a YubiKey touch).
    pub async fn lock(&self) -> Result<CacheLock, PrivateFileError> {
        match &self.dir {
            Some(dir) => {
                private_file::ensure_private_dir(dir)?;
                Ok(CacheLock {
                    _lock: Some(private_file::lock_async(&dir.join(LOCK_FILE)).await?),
                })
            }
            None => Ok(CacheLock { _lock: None }),
        }
    }

    /// Reads the shared file into memory (merging), and returns the result.
    /// A missing or unreadable file is treated as empty: the cache is an
    /// optimisation, never a reason to stop.
    pub fn load(&mut self, _lock: &CacheLock) -> &CacheContents {
        self.read_shared();
        &self.memory
    }

    /// The same, without the lock: a writer replaces the file by rename, so
    /// a reader always sees a whole version. For the planner's inputs, which
    /// must not wait for (or hold up) a process spending a code.
    pub fn peek(&mut self) -> &CacheContents {
        self.read_shared();
        &self.memory
    }

    fn read_shared(&mut self) {
        let Some(dir) = &self.dir else { return };
        let path = dir.join(CACHE_FILE);
        match private_file::read(&path, RUNTIME_FILE_RULES) {
            Ok(None) => {}
            Ok(Some(file)) => match serde_json::from_slice::<Stored>(&file.bytes) {
                Ok(stored) => self.memory.merge(CacheContents::from_stored(stored)),
                Err(e) => tracing::warn!(
                    "ignoring unreadable MFA session cache {}: {}",
                    path.display(),
                    e.classify_name()
                ),
            },
            Err(e) => tracing::warn!("ignoring the MFA session cache: {e}"),
        }
    }

    pub fn contents(&self) -> &CacheContents {
        &self.memory
    }

    pub fn contents_mut(&mut self) -> &mut CacheContents {
        &mut self.memory
    }

    /// Writes memory to the shared file (0600, atomic).
    pub fn store(
        &mut self,
        _lock: &CacheLock,
        now: OffsetDateTime,
    ) -> Result<(), PrivateFileError> {
        self.memory.prune(now);
        let Some(dir) = &self.dir else { return Ok(()) };
        let path = dir.join(CACHE_FILE);
        let json = Zeroizing::new(
            serde_json::to_vec(&self.memory.to_stored())
                .map_err(|e| PrivateFileError::io(&path, "serializing", e.into()))?,
        );
        private_file::write(&path, &json)
    }
}

/// serde_json errors can quote input; only their category is logged.
trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn key(n: u32) -> MfaSessionKey {
        MfaSessionKey {
            access_key_id: "AKIAAAAAAAAAAAAAAAAA".into(),
            mfa_serial_number: "arn:aws:iam::123457890123:mfa/me".into(),
            duration: n,
            region: "us-east-1".into(),
            endpoint: None,
        }
    }

    fn creds(expiration: OffsetDateTime) -> SessionCredentials {
        SessionCredentials {
            access_key_id: "ASIABBBBBBBBBBBBBBBB".into(),
            secret_access_key: SecretString::from("very-secret"),
            session_token: SecretString::from("token-secret"),
            expiration,
        }
    }

    #[tokio::test]
    async fn two_processes_share_sessions_and_steps_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cache_dir = dir.path().join("aws-session-daemon");
        let now = datetime!(2026-11-25 12:00 UTC);

        let mut first = SessionCache::new(Some(cache_dir.clone()));
        {
            let lock = first.lock().await.unwrap();
            first.load(&lock);
            first
                .contents_mut()
                .sessions
                .insert(key(43200), creds(now + time::Duration::hours(12)));
            first
                .contents_mut()
                .sessions
                .insert(key(900), creds(now - time::Duration::hours(1)));
            first.contents_mut().last_steps.insert("dev".into(), 7);
            first.store(&lock, now).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cache_dir.join(CACHE_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(&cache_dir).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);

        let mut peeker = SessionCache::new(Some(cache_dir.clone()));
        assert_eq!(peeker.peek().sessions.len(), 1, "read without the lock");
        let mut second = SessionCache::new(Some(cache_dir));
        let lock = second.lock().await.unwrap();
        let contents = second.load(&lock);
        assert_eq!(contents.sessions.len(), 1, "expired session pruned");
        assert_eq!(contents.last_steps["dev"], 7);
        let known = contents.known(now);
        assert_eq!(known[&key(43200)], now + time::Duration::hours(12));
        assert!(format!("{contents:?}").find("very-secret").is_none());
    }

    #[test]
    fn merge_keeps_the_later_session_and_step() {
        let now = datetime!(2026-11-25 12:00 UTC);
        let mut a = CacheContents::default();
        a.sessions.insert(key(1), creds(now));
        a.last_steps.insert("dev".into(), 10);
        let mut b = CacheContents::default();
        b.sessions
            .insert(key(1), creds(now + time::Duration::hours(1)));
        b.last_steps.insert("dev".into(), 9);
        a.merge(b);
        assert_eq!(
            a.sessions[&key(1)].expiration,
            now + time::Duration::hours(1)
        );
        assert_eq!(a.last_steps["dev"], 10);
    }

    #[tokio::test]
    async fn memory_only_without_runtime_dir() {
        let mut cache = SessionCache::new(None);
        let lock = cache.lock().await.unwrap();
        cache.contents_mut().last_steps.insert("d".into(), 1);
        cache.store(&lock, datetime!(2026-11-25 12:00 UTC)).unwrap();
        assert_eq!(cache.load(&lock).last_steps["d"], 1);
    }
}
