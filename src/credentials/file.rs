//! Reading the credentials file, and the locked, atomic update with backups.

use std::ffi::OsStr;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::document::{Document, Edit};
use super::error::{CredentialsError, FileName};
use super::parse::split_lines;
use crate::private_file::{self, PrivateFileError, ReadRules, Replacement, parent_dir, sibling};

/// A credentials file is a few kilobytes; anything this large is the wrong
/// file.
pub const MAX_SIZE: u64 = 16 * 1024 * 1024;

/// How many times [`CredentialsFile::update`] starts over when another
/// program (one that does not take the lock, like an editor) replaces the
/// file while the update is under way.
const ATTEMPTS: usize = 3;

/// Symlink hops followed before giving up (Linux's own limit).
const MAX_SYMLINKS: usize = 40;

/// The credentials file may be a dotfile manager's symlink; it need not be
/// private (the daemon warns of nothing here; the editor keeps its mode).
const READ_RULES: ReadRules = ReadRules {
    limit: MAX_SIZE,
    follow: true,
    owned: false,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The edits changed nothing: the file was not written, and no backup made.
    Unchanged,
    Written,
}

/// The shared credentials file at `path` (a symlink is followed and its
/// target written, so the link survives), keeping `backups` older versions
/// next to the target as `credentials.1` (newest) … `credentials.N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsFile {
    path: PathBuf,
    backups: usize,
}

impl CredentialsFile {
    pub fn new(path: PathBuf, backups: usize) -> Self {
        CredentialsFile { path, backups }
    }

    /// `--credentials-file`, else `$AWS_SHARED_CREDENTIALS_FILE` (when set
    /// and not empty), else `~/.aws/credentials`. A leading `~/` is expanded
    /// in the first two as botocore and the SDKs do (a systemd unit passes
    /// it unexpanded).
    pub fn default_path(
        flag: Option<&Path>,
        shared_credentials_file: Option<&OsStr>,
        home: &Path,
    ) -> PathBuf {
        let expand = |path: &Path| match path.strip_prefix("~") {
            Ok(rest) => home.join(rest),
            Err(_) => path.to_path_buf(),
        };
        if let Some(flag) = flag {
            return expand(flag);
        }
        match shared_credentials_file {
            Some(value) if !value.is_empty() => expand(Path::new(value)),
            _ => home.join(".aws").join("credentials"),
        }
    }

    /// [`CredentialsFile::default_path`] with `AWS_SHARED_CREDENTIALS_FILE`
    /// and `HOME` from the process environment.
    pub fn default_path_from_env(flag: Option<&Path>) -> Result<PathBuf, CredentialsError> {
        let env_file = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE");
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
        let needs_home = |p: &Path| p.starts_with("~");
        let home = match home {
            Some(home) => PathBuf::from(home),
            None => {
                let given = flag.map(Path::to_path_buf).or_else(|| {
                    env_file
                        .as_deref()
                        .filter(|v| !v.is_empty())
                        .map(PathBuf::from)
                });
                return match given {
                    Some(path) if !needs_home(&path) => Ok(path),
                    _ => Err(CredentialsError::NoHome),
                };
            }
        };
        Ok(Self::default_path(flag, env_file.as_deref(), &home))
    }

    /// The path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn backups(&self) -> usize {
        self.backups
    }

    /// The file that is really read and written: `path` with its symlink
    /// chain resolved (it need not exist yet). Watch its directory too.
    pub fn target(&self) -> Result<PathBuf, CredentialsError> {
        let name = FileName::new(&self.path, &self.path);
        match resolve_symlinks(&self.path) {
            Ok(target) => Ok(target),
            Err(None) => Err(CredentialsError::NotAFile {
                file: name,
                what: "a loop of symbolic links",
            }),
            Err(Some(e)) => Err(CredentialsError::io(&name, "following symbolic links", e)),
        }
    }

    /// The lock file: `<target>.lock` next to the target.
    pub fn lock_path(&self) -> Result<PathBuf, CredentialsError> {
        Ok(lock_path(&self.target()?))
    }

    /// Err when the daemon must not replace the file (read-only, in the Nix
    /// store): checked before codes are spent on credentials that could not
    /// be written. [`CredentialsFile::update`] checks again.
    pub fn check_writable(&self) -> Result<(), CredentialsError> {
        let target = self.target()?;
        check_writable(&FileName::new(&self.path, &target), &target)
    }

    /// Removes the temporary files that a writer killed in the middle of a
    /// write (`kill -9`, a crash, a power cut) left next to the file, if the
    /// lock is free. Called when the daemon starts; [`CredentialsFile::update`]
    /// does the same under the lock before each write. Only files named like
    /// ours (`.credentials.XXXXXX.tmp`) are touched.
    pub fn remove_stale_temp_files(&self) {
        let Ok(target) = self.target() else { return };
        if private_file::orphans(&target).is_empty() {
            return;
        }
        // A writer holding the lock cleans up itself, and its own temporary
        // file is not an orphan.
        if let Ok(Some(_lock)) = private_file::try_lock(&lock_path(&target)) {
            private_file::remove_orphans(&target);
        }
    }

    /// The current document. A missing file is an empty document.
    pub fn read(&self) -> Result<Document, CredentialsError> {
        let target = self.target()?;
        let name = FileName::new(&self.path, &target);
        Ok(load(&name, &target)?.doc)
    }

    /// Applies `edits` under the lock: lock → remove temporary files left by
    /// a killed writer → re-read → check that botocore can read the file at
    /// all, and each touched section → apply → if nothing changed, stop (no
    /// write, no backup) → rotate backups → temp file (0600) in the same
    /// directory → write, fsync → rename over the target → fsync the
    /// directory. Creates the directory (0700) and the file when missing. On
    /// any error the file is as it was.
    pub fn update(&self, edits: &[Edit]) -> Result<WriteOutcome, CredentialsError> {
        for edit in edits {
            edit.validate()?;
        }
        let target = self.target()?;
        let name = FileName::new(&self.path, &target);
        check_writable(&name, &target)?;
        let dir = parent_dir(&target);
        create_dir(&name, dir)?;
        let lock = lock_path(&target);
        let _lock = private_file::lock(&lock).map_err(|e| file_error(&name, "locking", e))?;
        private_file::remove_orphans(&target);
        for _ in 0..ATTEMPTS {
            let loaded = load(&name, &target)?;
            let before = Zeroizing::new(loaded.doc.render());
            let mut doc = loaded.doc;
            doc.check_readable()?;
            for edit in edits {
                doc.check_section(edit.section())
                    .map_err(|e| e.in_file(&name))?;
            }
            for edit in edits {
                doc.apply(edit).map_err(|e| e.in_file(&name))?;
            }
            let after = Zeroizing::new(doc.render());
            if *after == *before {
                return Ok(WriteOutcome::Unchanged);
            }
            let owner = loaded.meta.as_ref().map(|m| (m.uid(), m.gid()));
            let temp = Replacement::write(&target, after.as_bytes(), owner)
                .map_err(|e| file_error(&name, "writing a temporary file", e))?;
            // Someone who does not take the lock (an editor) replaced the
            // file since it was read: start over from their version.
            if current_stamp(&name, &target)? != loaded.meta.as_ref().map(Stamp::of) {
                drop(temp);
                continue;
            }
            if loaded.meta.is_some() {
                rotate_backups(&name, &target, self.backups, before.as_bytes(), owner)?;
            }
            temp.commit()
                .map_err(|e| file_error(&name, "renaming the new file into place", e))?;
            return Ok(WriteOutcome::Written);
        }
        Err(CredentialsError::ChangedDuringUpdate {
            file: name,
            lock: lock.display().to_string(),
        })
    }
}

/// A private-file error as the credentials editor reports it: with the
/// file's name as the user gave it, and the editor's own messages for a
/// special or oversized file.
fn file_error(name: &FileName, action: &'static str, error: PrivateFileError) -> CredentialsError {
    match error {
        PrivateFileError::Io { source, .. } => CredentialsError::io(name, action, source),
        PrivateFileError::TooLarge { size, .. } => too_large(name, size),
        PrivateFileError::NotAFile { what, .. } => CredentialsError::NotAFile {
            file: name.clone(),
            what,
        },
        unsafe_file @ PrivateFileError::Unsafe { .. } => CredentialsError::Unsafe {
            file: name.clone(),
            detail: unsafe_file.to_string(),
        },
    }
}

/// Follows `path` through symlinks (relative ones against the link's
/// directory) to the file they finally name, which need not exist.
/// `Err(None)`: the links go round in a loop.
fn resolve_symlinks(path: &Path) -> Result<PathBuf, Option<io::Error>> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_SYMLINKS {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = fs::read_link(&current).map_err(Some)?;
                current = match current.parent() {
                    Some(parent) if link.is_relative() => parent.join(link),
                    _ => link,
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(Some(e)),
        }
    }
    Err(None)
}

fn lock_path(target: &Path) -> PathBuf {
    sibling(target, ".lock")
}

struct Loaded {
    doc: Document,
    /// `None` when the file does not exist.
    meta: Option<Metadata>,
}

/// What tells one version of the file from another without reading it.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

fn current_stamp(name: &FileName, target: &Path) -> Result<Option<Stamp>, CredentialsError> {
    match fs::metadata(target) {
        Ok(meta) => Ok(Some(Stamp::of(&meta))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CredentialsError::io(name, "checking the file", e)),
    }
}

fn load(name: &FileName, target: &Path) -> Result<Loaded, CredentialsError> {
    let Some(file) =
        private_file::read(target, READ_RULES).map_err(|e| file_error(name, "reading", e))?
    else {
        return Ok(Loaded {
            doc: Document::default(),
            meta: None,
        });
    };
    let bytes = &file.bytes;
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
        let ended = split_lines(valid)
            .iter()
            .filter(|l| l.end > l.content_end)
            .count();
        CredentialsError::NotUtf8 {
            file: name.clone(),
            line: ended + 1,
        }
    })?;
    Ok(Loaded {
        doc: Document::parse(text).in_file(name.clone()),
        meta: Some(file.meta),
    })
}

fn too_large(name: &FileName, size: u64) -> CredentialsError {
    CredentialsError::TooLarge {
        file: name.clone(),
        size,
        limit: MAX_SIZE,
    }
}

/// Refuses early, with the reason, a target the daemon must not replace:
/// one in the Nix store, or one its owner cannot write. (A rename would
/// replace a read-only file in a writable directory; its mode says the user
/// wants it left alone.)
fn check_writable(name: &FileName, target: &Path) -> Result<(), CredentialsError> {
    if target.starts_with("/nix/store") {
        return Err(CredentialsError::ReadOnly {
            file: name.clone(),
            why: "is in the Nix store, which is read-only (home-manager or NixOS manages it)"
                .into(),
            fix: "stop managing the file with Nix and leave it to the daemon",
        });
    }
    match fs::metadata(target) {
        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o200 == 0 => {
            Err(CredentialsError::ReadOnly {
                file: name.clone(),
                why: format!(
                    "is read-only (mode {:04o})",
                    meta.permissions().mode() & 0o7777
                ),
                fix: "make it writable by its owner (chmod 600)",
            })
        }
        _ => Ok(()),
    }
}

fn create_dir(name: &FileName, dir: &Path) -> Result<(), CredentialsError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| CredentialsError::io(name, "creating the file's directory", e))
}

/// `credentials.1` … `.N-1` become `.2` … `.N` (the oldest falls off), then
/// the version being replaced becomes `.1`. All mode 0600.
fn rotate_backups(
    name: &FileName,
    target: &Path,
    backups: usize,
    old: &[u8],
    owner: Option<(u32, u32)>,
) -> Result<(), CredentialsError> {
    if backups == 0 {
        return Ok(());
    }
    let io = |e| CredentialsError::io(name, "rotating the backups", e);
    for n in (1..backups).rev() {
        let from = sibling(target, &format!(".{n}"));
        match fs::rename(&from, sibling(target, &format!(".{}", n + 1))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
    }
    for n in 2..=backups {
        let path = sibling(target, &format!(".{n}"));
        let loose = fs::symlink_metadata(&path)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o077 != 0);
        if loose {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
    }
    Replacement::write(target, old, owner)
        .and_then(|temp| temp.commit_to(&sibling(target, ".1")))
        .map_err(|e| file_error(name, "rotating the backups", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_prefers_flag_then_env_then_home() {
        let home = Path::new("/home/u");
        assert_eq!(
            CredentialsFile::default_path(
                Some(Path::new("/etc/creds")),
                Some(OsStr::new("/env/creds")),
                home
            ),
            Path::new("/etc/creds")
        );
        assert_eq!(
            CredentialsFile::default_path(None, Some(OsStr::new("/env/creds")), home),
            Path::new("/env/creds")
        );
        assert_eq!(
            CredentialsFile::default_path(None, Some(OsStr::new("")), home),
            Path::new("/home/u/.aws/credentials")
        );
        assert_eq!(
            CredentialsFile::default_path(None, None, home),
            Path::new("/home/u/.aws/credentials")
        );
        assert_eq!(
            CredentialsFile::default_path(None, Some(OsStr::new("~/x/creds")), home),
            Path::new("/home/u/x/creds")
        );
        assert_eq!(
            CredentialsFile::default_path(Some(Path::new("~")), None, home),
            Path::new("/home/u")
        );
        assert_eq!(
            CredentialsFile::default_path(Some(Path::new("~other/c")), None, home),
            Path::new("~other/c")
        );
    }

    #[test]
    fn lock_and_backups_sit_next_to_the_target() {
        assert_eq!(
            lock_path(Path::new("/a/b/credentials")),
            Path::new("/a/b/credentials.lock")
        );
        assert_eq!(lock_path(Path::new("creds")), Path::new("./creds.lock"));
        assert_eq!(
            sibling(Path::new("/a/credentials"), ".3"),
            Path::new("/a/credentials.3")
        );
    }

    #[test]
    fn symlinks_resolve_relative_to_the_link() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real/credentials", dir.path().join("link1")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("link1"), dir.path().join("link2")).unwrap();
        assert_eq!(
            resolve_symlinks(&dir.path().join("link2")).unwrap(),
            dir.path().join("real/credentials"),
            "a dangling chain ends at the file to create"
        );
        std::os::unix::fs::symlink("loop", dir.path().join("loop")).unwrap();
        assert!(matches!(
            resolve_symlinks(&dir.path().join("loop")),
            Err(None)
        ));
        let err = CredentialsFile::new(dir.path().join("loop"), 1)
            .read()
            .unwrap_err();
        assert!(
            err.to_string().contains("a loop of symbolic links"),
            "{err}"
        );
        assert_eq!(
            crate::retry::Classified::retry_class(&err),
            crate::retry::RetryClass::NeedsUser
        );
    }

    #[test]
    fn temp_files_left_by_a_killed_writer_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("credentials");
        fs::write(&target, "[a]\nk = v\n").unwrap();
        let orphans = [".credentials.aB3xY9.tmp", ".credentials.000000.tmp"];
        let others = [
            ".credentials.1.aB3xY9.tmp", // another file's
            ".credentials.aB3xY.tmp",    // not our shape
            ".credentials.aB3x-9.tmp",
            "credentials.aB3xY9.tmp",
            ".credentials.aB3xY9.swp",
            "credentials.1",
            "credentials.lock",
            ".config.aB3xY9.tmp",
        ];
        for name in orphans.iter().chain(&others) {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        // A directory with our name is not a file of ours.
        fs::create_dir(dir.path().join(".credentials.dddddd.tmp")).unwrap();
        let file = CredentialsFile::new(target.clone(), 2);
        file.update(&[Edit::set("b", "k", "v".to_string().into())])
            .unwrap();
        for name in orphans {
            assert!(!dir.path().join(name).exists(), "{name} left behind");
        }
        for name in others {
            assert!(dir.path().join(name).exists(), "{name} removed");
        }
        assert!(dir.path().join(".credentials.dddddd.tmp").is_dir());

        // At start: only when the lock is free.
        let orphan = dir.path().join(".credentials.zzzzzz.tmp");
        fs::write(&orphan, "x").unwrap();
        let held = private_file::lock(&lock_path(&target)).unwrap();
        file.remove_stale_temp_files();
        assert!(
            orphan.exists(),
            "removed while another writer held the lock"
        );
        drop(held);
        file.remove_stale_temp_files();
        assert!(!orphan.exists());
    }

    #[test]
    fn a_file_the_aws_cli_cannot_read_is_refused_naming_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        for (text, line) in [
            ("aws_access_key_id = AKIA\n[default]\nk = v\n", 1),
            ("[default]\nk = v\njunk without a separator\n", 3),
        ] {
            fs::write(&path, text).unwrap();
            let err = CredentialsFile::new(path.clone(), 2)
                .update(&[Edit::set("prod", "k", "v".to_string().into())])
                .unwrap_err();
            assert!(
                matches!(err, CredentialsError::UnreadableLine { .. }),
                "{err:?}"
            );
            assert_eq!(err.line(), Some(line));
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("{} line {line}: ", path.display())),
                "{message}"
            );
            assert!(message.contains("the AWS CLI cannot parse"), "{message}");
            assert_eq!(fs::read_to_string(&path).unwrap(), text, "unchanged");
            // The planner's view names the file too.
            let doc = CredentialsFile::new(path.clone(), 2).read().unwrap();
            let reason = crate::plan::CredentialsView::check(&doc, "prod").unwrap_err();
            assert!(reason.contains(&path.display().to_string()), "{reason}");
        }
    }

    #[test]
    fn nix_store_targets_are_refused_by_path() {
        let name = FileName::default();
        let err = check_writable(&name, Path::new("/nix/store/abc-credentials")).unwrap_err();
        assert!(err.to_string().contains("Nix store"), "{err}");
    }
}
