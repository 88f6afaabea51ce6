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
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::plan::{KnownMfaSessions, MfaSessionKey};
use crate::session::SessionCredentials;

const CACHE_FILE: &str = "mfa-sessions.json";
const LOCK_FILE: &str = "mfa-sessions.lock";

/// The runtime directory, `$XDG_RUNTIME_DIR/aws-session-daemon`.
pub fn runtime_dir(env: crate::config::EnvLookup) -> Option<PathBuf> {
    env("XDG_RUNTIME_DIR").map(|dir| Path::new(&dir).join("aws-session-daemon"))
}

/// Creates the runtime directory with mode 0700 (and tightens an existing one).
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Random characters in a temporary file's name (`.state.json.XXXXXX.tmp`).
const TEMP_RANDOM_CHARS: usize = 6;

/// Writes `bytes` to `path` atomically with mode 0600 (temp file, fsync,
/// rename). The caller holds the lock that guards `path`; temporary files
/// of `path` found now were left by a process killed while writing (they
/// hold session secrets), and are removed first.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let orphan = file_name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .and_then(|n| n.strip_suffix(".tmp"))
                .is_some_and(|random| {
                    random.len() == TEMP_RANDOM_CHARS
                        && random.bytes().all(|b| b.is_ascii_alphanumeric())
                });
            if orphan && entry.file_type().is_ok_and(|t| t.is_file()) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    let mut temp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .rand_bytes(TEMP_RANDOM_CHARS)
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Takes the exclusive lock on `dir/name`, creating it 0600.
pub fn lock_in(dir: &Path, name: &str) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(dir.join(name))?;
    file.lock()?;
    Ok(file)
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
    #[serde(with = "time::serde::rfc3339")]
    expiration: OffsetDateTime,
}

#[derive(Serialize, Deserialize, Default, Clone)]
struct Stored {
    #[serde(default)]
    sessions: Vec<StoredSession>,
    /// Last TOTP step sent to STS, per MFA device serial.
    #[serde(default)]
    last_steps: BTreeMap<String, u64>,
}

/// The cached MFA sessions and TOTP steps.
#[derive(Default, Clone)]
pub struct CacheContents {
    pub sessions: BTreeMap<MfaSessionKey, SessionCredentials>,
    pub last_steps: BTreeMap<String, u64>,
}

impl std::fmt::Debug for CacheContents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheContents")
            .field("sessions", &self.sessions.len())
            .field("last_steps", &self.last_steps)
            .finish()
    }
}

impl CacheContents {
    /// Expiries of the sessions still valid at `now`, for the planner.
    pub fn known(&self, now: OffsetDateTime) -> KnownMfaSessions {
        self.sessions
            .iter()
            .filter(|(_, c)| c.expiration > now)
            .map(|(k, c)| (k.clone(), c.expiration))
            .collect()
    }

    /// Forgets expired sessions, so the file does not grow.
    pub fn prune(&mut self, now: OffsetDateTime) {
        self.sessions.retain(|_, c| c.expiration > now);
    }

    fn from_stored(stored: Stored) -> Self {
        let sessions = stored
            .sessions
            .into_iter()
            .map(|s| {
                (
                    MfaSessionKey {
                        access_key_id: s.access_key_id,
                        mfa_serial_number: s.mfa_serial_number,
                        duration: s.duration,
                        region: s.region,
                        endpoint: s.endpoint,
                    },
                    SessionCredentials {
                        access_key_id: s.session_access_key_id,
                        secret_access_key: SecretString::from(s.session_secret_access_key),
                        session_token: SecretString::from(s.session_token),
                        expiration: s.expiration,
                    },
                )
            })
            .collect();
        CacheContents {
            sessions,
            last_steps: stored.last_steps,
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
    _file: Option<File>,
}

impl SessionCache {
    pub fn new(dir: Option<PathBuf>) -> Self {
        SessionCache {
            dir,
            memory: CacheContents::default(),
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Blocks until the cross-process lock is held.
    pub fn lock(&self) -> std::io::Result<CacheLock> {
        match &self.dir {
            Some(dir) => {
                ensure_private_dir(dir)?;
                Ok(CacheLock {
                    _file: Some(lock_in(dir, LOCK_FILE)?),
                })
            }
            None => Ok(CacheLock { _file: None }),
        }
    }

    /// Reads the shared file into memory (merging), and returns the result.
    /// A missing or unreadable file is treated as empty: the cache is an
    /// optimisation, never a reason to stop.
    pub fn load(&mut self, _lock: &CacheLock) -> &CacheContents {
        if let Some(dir) = &self.dir
            && let Ok(bytes) = fs::read(dir.join(CACHE_FILE))
        {
            match serde_json::from_slice::<Stored>(&bytes) {
                Ok(stored) => self.memory.merge(CacheContents::from_stored(stored)),
                Err(e) => tracing::warn!(
                    "ignoring unreadable MFA session cache {}: {}",
                    dir.join(CACHE_FILE).display(),
                    e.classify_name()
                ),
            }
        }
        &self.memory
    }

    pub fn contents(&self) -> &CacheContents {
        &self.memory
    }

    pub fn contents_mut(&mut self) -> &mut CacheContents {
        &mut self.memory
    }

    /// Writes memory to the shared file (0600, atomic).
    pub fn store(&mut self, _lock: &CacheLock, now: OffsetDateTime) -> std::io::Result<()> {
        self.memory.prune(now);
        let Some(dir) = &self.dir else { return Ok(()) };
        let json = serde_json::to_vec(&self.memory.to_stored()).map_err(std::io::Error::other)?;
        write_private(&dir.join(CACHE_FILE), &json)
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

    #[test]
    fn two_processes_share_sessions_and_steps_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cache_dir = dir.path().join("aws-session-daemon");
        let now = datetime!(2026-11-25 12:00 UTC);

        let mut first = SessionCache::new(Some(cache_dir.clone()));
        {
            let lock = first.lock().unwrap();
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
        let mode = fs::metadata(cache_dir.join(CACHE_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = fs::metadata(&cache_dir).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);

        let mut second = SessionCache::new(Some(cache_dir));
        let lock = second.lock().unwrap();
        let contents = second.load(&lock);
        assert_eq!(contents.sessions.len(), 1, "expired session pruned");
        assert_eq!(contents.last_steps["dev"], 7);
        let known = contents.known(now);
        assert_eq!(known[&key(43200)], now + time::Duration::hours(12));
        assert!(format!("{contents:?}").find("very-secret").is_none());
    }

    #[test]
    fn temp_files_of_a_killed_writer_are_removed_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CACHE_FILE);
        let orphan = dir.path().join(format!(".{CACHE_FILE}.Ab12Cd.tmp"));
        let other = dir.path().join(".state.json.Ab12Cd.tmp");
        fs::write(&orphan, "secret").unwrap();
        fs::write(&other, "x").unwrap();
        write_private(&path, b"{}").unwrap();
        assert!(!orphan.exists());
        assert!(
            other.exists(),
            "another file's temp (another lock) is left alone"
        );
        assert_eq!(fs::read(&path).unwrap(), b"{}");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
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

    #[test]
    fn memory_only_without_runtime_dir() {
        let mut cache = SessionCache::new(None);
        let lock = cache.lock().unwrap();
        cache.contents_mut().last_steps.insert("d".into(), 1);
        cache.store(&lock, datetime!(2026-11-25 12:00 UTC)).unwrap();
        assert_eq!(cache.load(&lock).last_steps["d"], 1);
    }
}
