//! The state file behind `status`: per section, the last refresh, the last
//! error and the next attempt. `$XDG_RUNTIME_DIR/aws-session-daemon/state.json`,
//! mode 0600, merged under a lock so that several daemon processes (one per
//! section) each keep their own sections' entries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::session_cache::{ensure_private_dir, lock_in, write_private};

const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = "state.lock";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SectionStatus {
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_refresh: Option<OffsetDateTime>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_error_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_attempt: Option<OffsetDateTime>,
    #[serde(default)]
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StateFile {
    #[serde(default)]
    pub sections: BTreeMap<String, SectionStatus>,
}

pub fn state_path(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join(STATE_FILE)
}

/// Reads the state file; missing or unreadable means empty.
pub fn read(runtime_dir: &Path) -> StateFile {
    std::fs::read(state_path(runtime_dir))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Replaces the entries of `updates` (other sections are kept), under the lock.
pub fn update(
    runtime_dir: &Path,
    updates: &BTreeMap<String, SectionStatus>,
) -> std::io::Result<()> {
    ensure_private_dir(runtime_dir)?;
    let _lock = lock_in(runtime_dir, LOCK_FILE)?;
    let mut state = read(runtime_dir);
    for (section, status) in updates {
        state.sections.insert(section.clone(), status.clone());
    }
    let json = serde_json::to_vec_pretty(&state).map_err(std::io::Error::other)?;
    write_private(&state_path(runtime_dir), &json)
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
        update(&runtime, &BTreeMap::from([("a".to_string(), a.clone())])).unwrap();
        update(
            &runtime,
            &BTreeMap::from([("b".to_string(), SectionStatus::default())]),
        )
        .unwrap();
        let state = read(&runtime);
        assert_eq!(state.sections.len(), 2);
        assert_eq!(state.sections["a"], a);
        let mode = std::fs::metadata(state_path(&runtime))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
