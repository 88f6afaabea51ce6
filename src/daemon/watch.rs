//! The loop's event sources besides signals: the config and credentials
//! files, YubiKeys coming and going, the keyring being unlocked.
//!
//! Editors and our own writer replace files by rename, which makes a watch
//! on the file's inode go stale, so the parent directories are watched
//! (non-recursively) and events are filtered by file name. A symlinked file
//! is also watched at its target's directory. An event is only a hint to
//! re-read; the ≤ 60 s periodic pass repairs anything missed.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

use super::ports::{KeyWatch, StartKeyWatch, StartUnlockWatch, UnlockWatch};
use crate::config::{CodeSource, Config, LongTermKeys, PasswordSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileEvent {
    Config,
    Credentials,
}

/// What to watch for one logical file: the names it may appear under (the
/// path itself and its symlink target) and the directories holding them.
#[derive(Debug, Default, Clone)]
pub struct WatchSet {
    pub directories: BTreeSet<PathBuf>,
    pub names: BTreeSet<OsString>,
}

impl WatchSet {
    pub fn for_file(path: &Path) -> Self {
        let mut set = WatchSet::default();
        set.add(path);
        if let Ok(target) = std::fs::canonicalize(path)
            && target != path
        {
            set.add(&target);
        }
        set
    }

    fn add(&mut self, path: &Path) {
        if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            self.directories.insert(existing_ancestor(dir));
            self.names.insert(name.to_os_string());
        }
    }

    fn matches(&self, path: &Path) -> bool {
        path.file_name()
            .is_some_and(|name| self.names.contains(name))
    }
}

/// A missing directory (no `~/.aws` yet) is watched through its nearest
/// existing ancestor; its creation shows up there.
fn existing_ancestor(dir: &Path) -> PathBuf {
    let mut current = dir;
    loop {
        if current.is_dir() {
            return current.to_path_buf();
        }
        match current.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => current = parent,
            _ => return dir.to_path_buf(),
        }
    }
}

/// Starts watching; the returned watcher must be kept alive.
pub fn watch(
    config: Option<&Path>,
    credentials: &Path,
    events: UnboundedSender<FileEvent>,
) -> notify::Result<RecommendedWatcher> {
    let config_set = config.map(WatchSet::for_file).unwrap_or_default();
    let credentials_set = WatchSet::for_file(credentials);
    let directories: BTreeSet<PathBuf> = config_set
        .directories
        .union(&credentials_set.directories)
        .cloned()
        .collect();
    let mut watcher = notify::recommended_watcher(move |result: notify::Result<notify::Event>| {
        let Ok(event) = result else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        for path in &event.paths {
            if config_set.matches(path) {
                let _ = events.send(FileEvent::Config);
            }
            if credentials_set.matches(path) {
                let _ = events.send(FileEvent::Credentials);
            }
        }
    })?;
    for dir in directories {
        if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
            tracing::warn!(
                "cannot watch {}: {e}; changes there are noticed within a minute",
                dir.display()
            );
        }
    }
    Ok(watcher)
}

/// The key and keyring watchers, each running only while the config in
/// force needs it.
#[derive(Default)]
pub struct Watches {
    pub(crate) start_key_watch: Option<StartKeyWatch>,
    key_watch: Option<Box<dyn KeyWatch>>,
    start_unlock_watch: Option<StartUnlockWatch>,
    unlock_watch: Option<Box<dyn UnlockWatch>>,
}

impl Watches {
    pub fn with_key_watch(mut self, start: StartKeyWatch) -> Self {
        self.start_key_watch = Some(start);
        self
    }

    pub fn with_unlock_watch(mut self, start: StartUnlockWatch) -> Self {
        self.start_unlock_watch = Some(start);
        self
    }

    /// Starts the key watcher when `config` uses a YubiKey and stops it
    /// when it no longer does; likewise the keyring's unlock watcher for
    /// keys or a password from the keyring.
    pub async fn follow(&mut self, config: &Config) {
        if let Some(start) = &self.start_key_watch {
            let uses_key = config
                .valid_sections()
                .filter_map(|(_, s)| s.mfa())
                .any(|m| matches!(m.code_source, CodeSource::Oath { .. }));
            match (uses_key, self.key_watch.is_some()) {
                (true, false) => {
                    tracing::debug!("watching for YubiKeys");
                    self.key_watch = Some(start());
                }
                (false, true) => {
                    tracing::debug!("no section uses a YubiKey: not watching for one");
                    self.key_watch = None;
                }
                _ => {}
            }
        }
        if let Some(start) = &self.start_unlock_watch {
            let uses_keyring = config
                .valid_sections()
                .filter_map(|(_, s)| s.mfa())
                .any(|s| {
                    matches!(s.long_term, LongTermKeys::Keyring(_))
                        || matches!(
                            &s.code_source,
                            CodeSource::Oath {
                                password: Some(PasswordSpec::Keyring),
                                ..
                            }
                        )
                });
            match (uses_keyring, self.unlock_watch.is_some()) {
                (true, false) => self.unlock_watch = start().await,
                (false, true) => self.unlock_watch = None,
                _ => {}
            }
        }
    }

    /// Whether a key watcher runs (for tests of the reload rule).
    #[cfg(test)]
    pub fn watches_keys(&self) -> bool {
        self.key_watch.is_some()
    }

    /// Two futures for the loop to wait on together: the next key event,
    /// and the keyring's unlock if `waiting` for it (the watch resolves at
    /// once when it is unlocked already). Each never resolves without its
    /// watcher.
    pub fn events(
        &mut self,
        waiting: bool,
    ) -> (impl Future<Output = ()> + '_, impl Future<Output = ()> + '_) {
        let (key_watch, unlock_watch) = (&mut self.key_watch, &mut self.unlock_watch);
        let key = async move {
            match key_watch {
                Some(watch) => watch.changed().await,
                None => std::future::pending().await,
            }
        };
        let unlock = async move {
            match unlock_watch {
                Some(watch) if waiting => watch.unlocked().await,
                _ => std::future::pending().await,
            }
        };
        (key, unlock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn renames_and_symlink_targets_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let real_dir = dir.path().join("dotfiles");
        std::fs::create_dir(&real_dir).unwrap();
        let target = real_dir.join("credentials");
        std::fs::write(&target, "[a]\n").unwrap();
        let aws = dir.path().join("aws");
        std::fs::create_dir(&aws).unwrap();
        let link = aws.join("credentials");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let config = dir.path().join("config.toml");

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _watcher = watch(Some(&config), &link, tx).unwrap();

        // An editor's atomic replace of the target.
        let temp = real_dir.join(".credentials.swp");
        std::fs::write(&temp, "[b]\n").unwrap();
        std::fs::rename(&temp, &target).unwrap();
        let event = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap();
        assert_eq!(event, Some(FileEvent::Credentials));

        // The config file appearing.
        std::fs::write(&config, "").unwrap();
        let mut seen_config = false;
        while let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            if event == FileEvent::Config {
                seen_config = true;
                break;
            }
        }
        assert!(seen_config);

        // Unrelated files are ignored.
        while tokio::time::timeout(Duration::from_millis(200), rx.recv())
            .await
            .is_ok()
        {}
        std::fs::write(aws.join("config"), "x").unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(500), rx.recv())
                .await
                .is_err()
        );
    }
}
