//! The state file behind `status`: per section, the last refresh, the last
//! error and the next attempt. `$XDG_RUNTIME_DIR/aws-session-daemon/state.json`,
//! mode 0600, merged under a lock so that several daemon processes (one per
//! section) each keep their own sections' entries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::decide::Applied;
use crate::private_file::{self, PrivateFileError};
use crate::session::{Backoff, FailingUnits, Unit};
use crate::session_cache::RUNTIME_FILE_RULES;

const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = "state.lock";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SectionStatus {
    #[serde(default, with = "crate::timestamp::option")]
    pub last_refresh: Option<OffsetDateTime>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default, with = "crate::timestamp::option")]
    pub last_error_at: Option<OffsetDateTime>,
    #[serde(default, with = "crate::timestamp::option")]
    pub next_attempt: Option<OffsetDateTime>,
    #[serde(default)]
    pub pid: Option<u32>,
    /// The fingerprint of the settings the profile was last written with.
    #[serde(default)]
    pub applied: Option<u64>,
}

/// A unit backing off, as recorded by the daemon process that runs it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UnitStatus {
    pub unit: Unit,
    #[serde(with = "crate::timestamp::required")]
    pub next_attempt: OffsetDateTime,
    pub pid: u32,
    /// The error that put it there (never a secret: errors hold none).
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StateFile {
    #[serde(default)]
    pub sections: BTreeMap<String, SectionStatus>,
    /// The units backing off, so that `plan` and `status` show what the
    /// running daemon will do: wait for them.
    #[serde(default)]
    pub backoff: Vec<UnitStatus>,
}

impl StateFile {
    /// What each section's profile was last written with.
    pub fn applied(&self) -> Applied {
        self.sections
            .iter()
            .filter_map(|(name, s)| s.applied.map(|a| (name.clone(), a)))
            .collect()
    }

    /// What process `pid` recorded of its failing units.
    pub fn failing_of(&self, pid: u32) -> FailingUnits {
        self.backoff
            .iter()
            .filter(|u| u.pid == pid)
            .map(|u| {
                let message = u.message.clone().unwrap_or_default();
                (u.unit.clone(), (u.next_attempt, message))
            })
            .collect()
    }

    /// The last errors of the units that daemon processes still running
    /// back off.
    pub fn reasons(&self) -> BTreeMap<Unit, String> {
        self.backoff
            .iter()
            .filter(|u| process_alive(u.pid))
            .filter_map(|u| Some((u.unit.clone(), u.message.clone()?)))
            .collect()
    }

    /// The recorded backoff of daemon processes that are still running.
    pub fn backoff(&self) -> Backoff {
        self.backoff
            .iter()
            .filter(|u| process_alive(u.pid))
            .map(|u| (u.unit.clone(), u.next_attempt))
            .collect()
    }
}

fn process_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    // Signal 0 only checks that the process exists (EPERM: it does, and
    // is another user's).
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

pub fn state_path(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join(STATE_FILE)
}

/// Reads the state file; missing, refused or unreadable means empty.
pub fn read(runtime_dir: &Path) -> StateFile {
    read_checked(runtime_dir).unwrap_or_default()
}

/// Reads the state file; missing or unparsable means empty, a file that is
/// not this user's own (or a link, or open to others) is an error.
pub fn read_checked(runtime_dir: &Path) -> Result<StateFile, PrivateFileError> {
    Ok(
        private_file::read(&state_path(runtime_dir), RUNTIME_FILE_RULES)?
            .and_then(|file| serde_json::from_slice(&file.bytes).ok())
            .unwrap_or_default(),
    )
}

/// Replaces the entries of `updates` (other sections are kept), and this
/// process's recorded failing units with `failing`, under the lock.
pub fn update(
    runtime_dir: &Path,
    updates: &BTreeMap<String, SectionStatus>,
    failing: &FailingUnits,
) -> Result<(), PrivateFileError> {
    private_file::ensure_private_dir(runtime_dir)?;
    let _lock = private_file::lock(&runtime_dir.join(LOCK_FILE))?;
    let mut state = read(runtime_dir);
    for (section, status) in updates {
        state.sections.insert(section.clone(), status.clone());
    }
    let pid = std::process::id();
    state
        .backoff
        .retain(|u| u.pid != pid && !failing.contains_key(&u.unit) && process_alive(u.pid));
    state.backoff.extend(
        failing
            .iter()
            .map(|(unit, (next_attempt, message))| UnitStatus {
                unit: unit.clone(),
                next_attempt: *next_attempt,
                pid,
                message: Some(message.clone()),
            }),
    );
    let path = state_path(runtime_dir);
    let json = serde_json::to_vec_pretty(&state)
        .map_err(|e| PrivateFileError::io(&path, "serializing", e.into()))?;
    private_file::write(&path, &json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn updates_merge_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = dir.path().join("aws-session-daemon");
        let a = SectionStatus {
            last_error: Some("x".into()),
            ..Default::default()
        };
        let device = Unit::Device("arn:aws:iam::123457890123:mfa/me".into());
        let until = time::macros::datetime!(2026-11-25 12:05 UTC);
        let failing = FailingUnits::from([(device.clone(), (until, "no YubiKey".to_string()))]);
        update(
            &runtime,
            &BTreeMap::from([("a".to_string(), a.clone())]),
            &failing,
        )
        .unwrap();
        update(
            &runtime,
            &BTreeMap::from([("b".to_string(), SectionStatus::default())]),
            &failing,
        )
        .unwrap();
        let state = read(&runtime);
        assert_eq!(state.sections.len(), 2);
        assert_eq!(state.sections["a"], a);
        assert_eq!(
            state.backoff(),
            Backoff::from([(device.clone(), until)]),
            "this process's units, once"
        );
        assert_eq!(state.reasons()[&device], "no YubiKey");
        update(&runtime, &BTreeMap::new(), &FailingUnits::new()).unwrap();
        assert!(
            read(&runtime).backoff().is_empty(),
            "recovered units are dropped"
        );
        let mode = std::fs::metadata(state_path(&runtime))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
