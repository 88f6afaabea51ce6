//! One sign-in per SSO session across processes: a lock file per session
//! and, while a sign-in waits for its approval, a record of its code that
//! other processes show.
//!
//! Both live in the runtime directory (`$XDG_RUNTIME_DIR/aws-session-daemon`,
//! 0700): `sso-<key>.lock` and `sso-<key>.sign-in.json`, `<key>` being the
//! token cache's file name. Without a runtime directory they are hidden
//! files next to the token cache (`.aws-session-daemon-<key>.lock`,
//! `.aws-session-daemon-<key>.sign-in`: no `.json`, so that `aws sso logout`,
//! which reads every `*.json` there, passes them by). The lock is a
//! `flock`: a process that dies releases it. The record holds the URL and
//! the user code (shown to the person on purpose), never the device code;
//! a stale one (its process killed) expires with its code.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::cache::{CacheError, TokenCache, cache_key};
use super::{DeviceCode, SignInOrigin};
use crate::private_file::{self, Lock};

/// The files of one SSO session's sign-in.
pub(crate) struct SignInFiles {
    dir: PathBuf,
    lock: PathBuf,
    record: PathBuf,
    /// The runtime directory (else the token cache's directory).
    runtime: bool,
    cache: TokenCache,
}

/// The record of a sign-in under way, as other processes read it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    session: String,
    start_url: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    user_code: String,
    #[serde(with = "crate::timestamp::required")]
    expires_at: OffsetDateTime,
    pid: u32,
}

/// Removes the record when the sign-in ends, however it ends.
pub(crate) struct Recorded {
    path: Option<PathBuf>,
}

impl Drop for Recorded {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl SignInFiles {
    pub(crate) fn new(runtime_dir: Option<&Path>, cache: &TokenCache, identifier: &str) -> Self {
        let key = cache_key(identifier);
        match runtime_dir {
            Some(dir) => SignInFiles {
                dir: dir.to_path_buf(),
                lock: dir.join(format!("sso-{key}.lock")),
                record: dir.join(format!("sso-{key}.sign-in.json")),
                runtime: true,
                cache: cache.clone(),
            },
            None => {
                let dir = cache.dir().to_path_buf();
                SignInFiles {
                    lock: dir.join(format!(".aws-session-daemon-{key}.lock")),
                    record: dir.join(format!(".aws-session-daemon-{key}.sign-in")),
                    dir,
                    runtime: false,
                    cache: cache.clone(),
                }
            }
        }
    }

    fn ensure_dir(&self) -> Result<(), CacheError> {
        if self.runtime {
            private_file::ensure_private_dir(&self.dir).map_err(|e| CacheError(e.to_string()))
        } else {
            self.cache.ensure_dir()
        }
    }

    /// The session's sign-in lock if it is free now.
    pub(crate) fn try_lock(&self) -> Result<Option<Lock>, CacheError> {
        self.ensure_dir()?;
        Ok(private_file::try_lock(&self.lock)?)
    }

    /// Records `code` for other processes until the guard is dropped. Best
    /// effort: a sign-in goes on without it (this process shows the code).
    pub(crate) fn record(&self, code: &DeviceCode) -> Recorded {
        let record = Record {
            session: code.session.clone(),
            start_url: code.start_url.clone(),
            verification_uri: code.verification_uri.clone(),
            verification_uri_complete: code.verification_uri_complete.clone(),
            user_code: code.user_code.clone(),
            expires_at: code.expires_at,
            pid: std::process::id(),
        };
        let written = serde_json::to_vec(&record)
            .map_err(|e| e.to_string())
            .and_then(|bytes| private_file::write(&self.record, &bytes).map_err(|e| e.to_string()));
        match written {
            Ok(()) => Recorded {
                path: Some(self.record.clone()),
            },
            Err(e) => {
                tracing::warn!("cannot record the sign-in's code for other processes: {e}");
                Recorded { path: None }
            }
        }
    }

    /// The sign-in another process (or this one) has under way, unless its
    /// code has expired at `now`.
    pub(crate) fn pending(&self, now: OffsetDateTime) -> Option<DeviceCode> {
        let file = private_file::read(&self.record, crate::session_cache::RUNTIME_FILE_RULES)
            .ok()
            .flatten()?;
        let record: Record = serde_json::from_slice(&file.bytes).ok()?;
        if record.expires_at <= now {
            return None;
        }
        let origin = if record.pid == std::process::id() {
            SignInOrigin::ThisProcess
        } else {
            SignInOrigin::OtherProcess {
                pid: Some(record.pid),
            }
        };
        Some(DeviceCode {
            session: record.session,
            start_url: record.start_url,
            verification_uri: record.verification_uri,
            verification_uri_complete: record.verification_uri_complete,
            user_code: record.user_code,
            expires_at: record.expires_at,
            origin,
        })
    }
}
