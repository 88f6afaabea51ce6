//! Reading the credentials file, and the locked, atomic update with backups.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use zeroize::Zeroizing;

use super::document::{Document, Edit, Edited};
use super::error::{CredentialsError, FileName};
use super::parse::split_lines;
use super::sdk::FileKind;
use super::wipe::SecretText;
use crate::private_file::{
    self, PrivateFileError, ReadRules, Replacement, Swapped, Writers, parent_dir, sibling,
};

/// A credentials file is a few kilobytes; anything this large is the wrong
/// file.
pub const MAX_SIZE: u64 = 16 * 1024 * 1024;

/// How many times [`CredentialsFile::update`] starts over when another
/// program (one that does not take the lock, like an editor or `aws
/// configure set`) changes the file while the update is under way, before
/// it gives up and lets the caller retry later.
const ATTEMPTS: usize = 8;

/// A file that is empty, or shorter than this process last saw it, may be
/// one that a writer has truncated and not yet written again (`aws
/// configure set` writes in place: `O_TRUNC`, then the new text). It is
/// read again after this pause, until three reads in a row agree...
const SETTLE_PAUSE: Duration = Duration::from_millis(5);
/// ... at most this many times.
const SETTLE_READS: usize = 10;

/// How long the update waits for a program that still has the replaced
/// file open for writing (one that opened it just before the swap).
const WRITER_WAIT: Duration = Duration::from_millis(500);

/// A file last modified longer than this before it was read cannot have
/// been written since without its modification time changing: a write
/// sets it from the kernel's clock, which lags the real time by a clock
/// tick at most, and file systems keep it to the nanosecond (2 s on FAT).
/// Such a file is not compared byte for byte after the swap.
const MTIME_MARGIN: Duration = Duration::from_secs(3);

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
    /// The credentials file, or the config file (`[profile NAME]` headers).
    kind: FileKind,
}

impl CredentialsFile {
    pub fn new(path: PathBuf, backups: usize) -> Self {
        CredentialsFile {
            path,
            backups,
            kind: FileKind::Credentials,
        }
    }

    /// The AWS config file (`~/.aws/config`), edited with the same locked,
    /// byte-preserving writer; its profiles are `[profile NAME]`.
    pub fn aws_config(path: PathBuf, backups: usize) -> Self {
        CredentialsFile {
            path,
            backups,
            kind: FileKind::Config,
        }
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

    /// How messages name the file: the path as given, the `target` it
    /// resolves to, and the kind of file.
    fn name(&self, target: &Path) -> FileName {
        FileName::new(&self.path, target).with_kind(self.kind)
    }

    /// The file that is really read and written: `path` with its symlink
    /// chain resolved (it need not exist yet). Watch its directory too.
    pub fn target(&self) -> Result<PathBuf, CredentialsError> {
        let name = self.name(&self.path);
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
        check_writable(&self.name(&target), &target)
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

    /// The current document. A missing file is an empty document. A file
    /// that looks cut short (empty, or shorter than this process last saw
    /// it) is read again after a few milliseconds, until it stops changing:
    /// a writer that rewrites it in place may be half-way.
    pub fn read(&self) -> Result<Document, CredentialsError> {
        let target = self.target()?;
        let name = self.name(&target);
        Ok(load_settled(&name, &target)?.into_document(&name))
    }

    /// Applies `edits` under the lock, and keeps what programs that do not
    /// take the lock write meanwhile:
    ///
    /// 1. lock, remove temporary files left by a killed writer, read the
    ///    file (again after a pause if it looks cut short);
    /// 2. check that botocore can read the whole file, apply the edits
    ///    (checked section by section); if nothing changed, stop (no write,
    ///    no backup);
    /// 3. the slow part: the new version to a temporary file (0600) in the
    ///    same directory, fsync;
    /// 4. the final check, right before the swap: the file is still the
    ///    one read (inode, size, modification and change times to the
    ///    nanosecond); if not, read it again and start over from 2;
    /// 5. swap the new version into place (an exchange: the replaced file
    ///    stays reachable); wait until no program has the replaced file
    ///    open for writing, and compare it with what was read (byte for
    ///    byte, unless its modification time, unchanged and older than the
    ///    read by [`MTIME_MARGIN`], proves it untouched): a program that
    ///    opened it before the swap (`aws configure set` opens, then
    ///    writes) may have written into it. If it did,
    ///    that version becomes the base: start over from 2, and the next
    ///    swap replaces our own version;
    /// 6. the replaced file becomes the backup `credentials.1` (older ones
    ///    move up, those beyond `backups` are removed); fsync the directory.
    ///
    /// Creates the directory (0700) and the file when missing. At most
    /// [`ATTEMPTS`] rounds, then [`CredentialsError::ChangedDuringUpdate`]
    /// (retried later). On an error before a swap the file is as it was; a
    /// version another program wrote into the replaced file is put back
    /// even when the edits cannot be applied to it.
    pub fn update(&self, edits: &[Edit]) -> Result<WriteOutcome, CredentialsError> {
        for edit in edits {
            edit.validate()?;
        }
        let target = self.target()?;
        let name = self.name(&target);
        check_writable(&name, &target)?;
        let dir = parent_dir(&target);
        create_dir(&name, dir)?;
        let lock = lock_path(&target);
        let _lock = private_file::lock(&lock).map_err(|e| file_error(&name, "locking", e))?;
        private_file::remove_orphans(&target);
        let mut update = Update {
            name: &name,
            target: &target,
            seen: load_settled(&name, &target)?,
            base: None,
            backup: None,
        };
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                // Out of step with a program that rewrites the file often.
                std::thread::sleep(Duration::from_micros(
                    fastrand::u64(500..2_000) * attempt as u64,
                ));
            }
            match update.attempt(edits)? {
                Round::Done(outcome) => {
                    update.finish(self.backups)?;
                    return outcome;
                }
                Round::Unchanged => return Ok(WriteOutcome::Unchanged),
                Round::Again => {}
            }
        }
        if update.base.is_some() {
            tracing::warn!(
                "{name}: another program kept writing into the file while it was replaced; its \
                 last version could not be merged{}",
                if self.backups > 0 {
                    " and is kept in the backup (.1)"
                } else {
                    ""
                }
            );
            update.finish(self.backups)?;
        }
        Err(CredentialsError::ChangedDuringUpdate {
            file: name,
            lock: lock.display().to_string(),
        })
    }
}

/// What an attempt writes: the edited document, or a text as it is.
enum Desired<'d> {
    Edited(Edited<'d>),
    Text(&'d str),
}

impl Desired<'_> {
    fn pieces(&self) -> Vec<&str> {
        match self {
            Desired::Edited(edited) => edited.pieces(),
            Desired::Text(text) => vec![text],
        }
    }

    fn len(&self) -> usize {
        match self {
            Desired::Edited(edited) => edited.len(),
            Desired::Text(text) => text.len(),
        }
    }

    fn is(&self, other: &str) -> bool {
        match self {
            Desired::Edited(edited) => edited.is(other),
            Desired::Text(text) => *text == other,
        }
    }

    fn to_text(&self) -> SecretText {
        match self {
            Desired::Edited(edited) => edited.to_text(),
            Desired::Text(text) => SecretText::new(text.to_string()),
        }
    }
}

/// The state of one [`CredentialsFile::update`] between its rounds.
struct Update<'a> {
    name: &'a FileName,
    target: &'a Path,
    /// What the path holds, as far as this update knows: as read, or the
    /// version this update put there.
    seen: Seen,
    /// Set when a swap found that another program had written into the
    /// replaced file: its version, which the edits now apply to (and which
    /// is not at the path).
    base: Option<Document>,
    /// The file the first swap replaced, for the backup.
    backup: Option<Replaced>,
}

/// The file a swap replaced: open, and (unless the fallback rename
/// unlinked it) at a temporary name.
struct Replaced {
    path: Option<tempfile::TempPath>,
    file: File,
}

enum Round {
    /// The new version is in place; the outcome to report once the backups
    /// are done (an error when the edits could not be applied to another
    /// program's version, which was put back).
    Done(Result<WriteOutcome, CredentialsError>),
    Unchanged,
    Again,
}

impl Update<'_> {
    /// Steps 2 to 5 of [`CredentialsFile::update`].
    fn attempt(&mut self, edits: &[Edit]) -> Result<Round, CredentialsError> {
        let other;
        let doc = match (&self.base, &self.seen) {
            (Some(doc), _) => doc,
            (None, Seen::File { doc, .. }) => &**doc,
            (None, seen) => {
                other = Document::from_string(seen.text().unwrap_or_default().to_string())
                    .in_file(self.name.clone());
                &other
            }
        };
        let edited = doc
            .check_readable()
            .and_then(|()| doc.edited(edits))
            .map_err(|e| e.in_file(self.name));
        let (desired, failure) = match edited {
            Ok(Some(edited)) => (Desired::Edited(edited), None),
            Ok(None) if self.base.is_none() => return Ok(Round::Unchanged),
            Ok(None) => (Desired::Text(doc.text()), None),
            // The edits cannot be applied to what another program wrote
            // into the replaced file: put its version back as it is.
            Err(e) if self.base.is_some() => (Desired::Text(doc.text()), Some(e)),
            Err(e) => return Err(e),
        };
        let done = |failure: Option<CredentialsError>| {
            Ok(Round::Done(match failure {
                None => Ok(WriteOutcome::Written),
                Some(e) => Err(e),
            }))
        };
        if self.base.is_some() && self.seen.text().is_some_and(|text| desired.is(text)) {
            self.base = None;
            return done(failure);
        }
        let owner = self.seen.owner();
        let temp = Replacement::write_pieces(self.target, &desired.pieces(), owner)
            .map_err(|e| file_error(self.name, "writing a temporary file", e))?;
        // The final check, right before the swap.
        if current_stamp(self.name, self.target)? != self.seen.stamp() {
            drop(temp);
            self.reread()?;
            return Ok(Round::Again);
        }
        let (swapped, meta) = temp
            .swap()
            .map_err(|e| file_error(self.name, "putting the new version in place", e))?;
        let replaced = match swapped {
            Swapped::Raced => {
                self.reread()?;
                return Ok(Round::Again);
            }
            Swapped::Created => {
                remember_length(self.target, desired.len() as u64);
                return done(failure);
            }
            Swapped::Replaced { old, file } => Replaced { path: old, file },
        };
        // Did a program that opened the replaced file before the swap
        // write into it after our read?
        let writers = private_file::wait_for_writers(&replaced.file, WRITER_WAIT);
        let expected = self.seen.text().unwrap_or_default().as_bytes();
        let checking = |e| CredentialsError::io(self.name, "checking the replaced file", e);
        // Where no writer can hold it any more, its metadata may prove it
        // untouched; otherwise it is compared byte for byte.
        let same = (writers == Writers::None
            && self
                .seen
                .untouched_since_read(&replaced.file)
                .map_err(checking)?)
            || same_content(&replaced.file, expected).map_err(checking)?;
        let written_to = if same {
            None
        } else {
            let theirs = read_settled(&replaced.file, writers, expected.len())
                .map_err(|e| CredentialsError::io(self.name, "reading the replaced file", e))?;
            Some((theirs, desired.to_text()))
        };
        remember_length(self.target, desired.len() as u64);
        drop(desired);
        if self.backup.is_none() {
            self.backup = Some(replaced);
        }
        let Some((theirs, ours)) = written_to else {
            self.base = None;
            return done(failure);
        };
        tracing::info!(
            "{}: another program wrote into the file while it was being replaced; adding the \
             edits to its version",
            self.name
        );
        self.seen = Seen::Written {
            text: ours,
            stamp: Stamp::of(&meta),
            owner,
        };
        let text = utf8(self.name, theirs)?;
        self.base = Some(Document::from_string(text).in_file(self.name.clone()));
        Ok(Round::Again)
    }

    /// Someone changed the path before the swap: read it again. A version
    /// another program wrote into a replaced file, not merged yet, cannot
    /// be merged now (there is no common base): it stays in the backup.
    fn reread(&mut self) -> Result<(), CredentialsError> {
        tracing::debug!(
            "{}: the file changed before the new version was swapped in; reading it again",
            self.name
        );
        if self.base.take().is_some() {
            tracing::warn!(
                "{}: two programs changed the file while it was being replaced; the version \
                 written into the replaced file is kept in the backup only",
                self.name
            );
        }
        self.seen = load_settled(self.name, self.target)?;
        Ok(())
    }

    /// Step 6: the replaced file becomes `.1`, older backups move up, and
    /// those beyond `backups` go; then the directory is synced.
    fn finish(&mut self, backups: usize) -> Result<(), CredentialsError> {
        let io = |e| CredentialsError::io(self.name, "rotating the backups", e);
        if let Some(replaced) = self.backup.take()
            && backups > 0
        {
            for n in (1..backups).rev() {
                let from = sibling(self.target, &format!(".{n}"));
                match fs::rename(&from, sibling(self.target, &format!(".{}", n + 1))) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(e)),
                }
            }
            for n in 2..=backups {
                let path = sibling(self.target, &format!(".{n}"));
                let loose = fs::symlink_metadata(&path)
                    .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o077 != 0);
                if loose {
                    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(io)?;
                }
            }
            keep_as_backup(self.name, self.target, replaced)?;
        }
        remove_extra_backups(self.target, backups);
        private_file::sync_dir(parent_dir(self.target))
            .map_err(|e| file_error(self.name, "syncing the directory", e))
    }
}

/// The replaced file becomes `credentials.1`, mode 0600: renamed, or (when
/// it is not ours to chmod, or the fallback rename unlinked it) copied.
fn keep_as_backup(
    name: &FileName,
    target: &Path,
    replaced: Replaced,
) -> Result<(), CredentialsError> {
    let io = |e| CredentialsError::io(name, "rotating the backups", e);
    let first = sibling(target, ".1");
    let private = replaced
        .file
        .set_permissions(fs::Permissions::from_mode(0o600))
        .is_ok();
    if let (Some(path), true) = (replaced.path, private) {
        return path.persist(&first).map_err(|e| io(e.error));
    }
    let meta = replaced.file.metadata().map_err(io)?;
    let bytes = read_all(&replaced.file).map_err(io)?;
    Replacement::write(target, &bytes, Some((meta.uid(), meta.gid())))
        .and_then(|temp| temp.commit_to(&first))
        .map_err(|e| file_error(name, "rotating the backups", e))
}

/// Removes `credentials.N` for every N beyond `backups` (an older setting,
/// or the original daemon, may have kept more). Regular files only.
fn remove_extra_backups(target: &Path, backups: usize) {
    let Some(name) = target.file_name().and_then(OsStr::to_str) else {
        return;
    };
    let Ok(entries) = fs::read_dir(parent_dir(target)) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let extra = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(name))
            .and_then(|n| n.strip_prefix('.'))
            .filter(|n| {
                !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0')
            })
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n > backups);
        if extra && entry.file_type().is_ok_and(|t| t.is_file()) {
            match fs::remove_file(entry.path()) {
                Ok(()) => tracing::debug!(
                    "removed {}, beyond backups = {backups}",
                    entry.path().display()
                ),
                Err(e) => tracing::warn!("cannot remove {}: {e}", entry.path().display()),
            }
        }
    }
}

/// Whether `file` holds exactly `expected` (compared in blocks, without a
/// second copy of the file in memory).
fn same_content(file: &File, expected: &[u8]) -> io::Result<bool> {
    if file.metadata()?.len() != expected.len() as u64 {
        return Ok(false);
    }
    let mut buffer = Zeroizing::new(vec![0u8; 64 * 1024]);
    let mut at = 0usize;
    loop {
        let read = file.read_at(&mut buffer, at as u64)?;
        if read == 0 {
            return Ok(at == expected.len());
        }
        if at + read > expected.len() || buffer[..read] != expected[at..at + read] {
            return Ok(false);
        }
        at += read;
    }
}

fn read_all(file: &File) -> io::Result<Zeroizing<Vec<u8>>> {
    let len = file.metadata()?.len();
    if len > MAX_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the replaced file grew to {len} bytes"),
        ));
    }
    let mut bytes = Zeroizing::new(vec![0u8; len as usize]);
    let mut at = 0usize;
    loop {
        if at == bytes.len() {
            // Grown since the size was taken: read the rest too.
            let more = bytes.len().max(4096);
            if bytes.len() + more > MAX_SIZE as usize + 1 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the replaced file grew too large",
                ));
            }
            let mut longer = Zeroizing::new(vec![0u8; bytes.len() + more]);
            longer[..bytes.len()].copy_from_slice(&bytes);
            bytes = longer;
        }
        let read = file.read_at(&mut bytes[at..], at as u64)?;
        if read == 0 {
            bytes.truncate(at);
            return Ok(bytes);
        }
        at += read;
    }
}

/// The content of the replaced file once it is complete: when no writer
/// holds it any more, as it is; otherwise (the system cannot tell) read
/// until two reads a pause apart agree, and a read that is empty or shorter
/// than `expected_len` is not taken before that.
fn read_settled(
    file: &File,
    writers: Writers,
    expected_len: usize,
) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut bytes = read_all(file)?;
    if writers == Writers::None {
        return Ok(bytes);
    }
    for _ in 0..SETTLE_READS {
        std::thread::sleep(SETTLE_PAUSE);
        let again = read_all(file)?;
        let settled = *again == *bytes && !(again.is_empty() || again.len() < expected_len);
        bytes = again;
        if settled {
            break;
        }
    }
    Ok(bytes)
}

/// The lengths this process last saw of each credentials file, to tell a
/// file cut short by a writer that rewrites it in place.
static LAST_LENGTHS: Mutex<BTreeMap<PathBuf, u64>> = Mutex::new(BTreeMap::new());

fn remember_length(target: &Path, len: u64) {
    if let Ok(mut lengths) = LAST_LENGTHS.lock() {
        lengths.insert(target.to_path_buf(), len);
    }
}

fn last_length(target: &Path) -> Option<u64> {
    LAST_LENGTHS.lock().ok()?.get(target).copied()
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

/// What the path holds, as far as an update knows.
enum Seen {
    Missing,
    /// As read from the file.
    File {
        doc: Box<Document>,
        stamp: Stamp,
        owner: (u32, u32),
        /// The clock just before the file was opened.
        read_at: SystemTime,
    },
    /// As this update wrote it.
    Written {
        text: SecretText,
        stamp: Stamp,
        owner: Option<(u32, u32)>,
    },
}

impl Seen {
    fn stamp(&self) -> Option<Stamp> {
        match self {
            Seen::Missing => None,
            Seen::File { stamp, .. } | Seen::Written { stamp, .. } => Some(*stamp),
        }
    }

    fn into_document(self, name: &FileName) -> Document {
        match self {
            Seen::File { doc, .. } => *doc,
            Seen::Missing => Document::default().in_file(name.clone()),
            Seen::Written { text, .. } => Document::parse(&text).in_file(name.clone()),
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Seen::Missing => None,
            Seen::File { doc, .. } => Some(doc.text()),
            Seen::Written { text, .. } => Some(text),
        }
    }

    /// Whether `file` (the file the swap replaced) is provably the version
    /// read, from its metadata alone: the same inode and size, the same
    /// modification time, and that time [`MTIME_MARGIN`] older than the
    /// read (so that a write since would have changed it).
    fn untouched_since_read(&self, file: &File) -> io::Result<bool> {
        let Seen::File { stamp, read_at, .. } = self else {
            return Ok(false);
        };
        let meta = file.metadata()?;
        let now = Stamp::of(&meta);
        let modified = SystemTime::UNIX_EPOCH
            + Duration::new(
                stamp.mtime.0.max(0) as u64,
                stamp.mtime.1.clamp(0, 999_999_999) as u32,
            );
        let old_enough = read_at
            .checked_sub(MTIME_MARGIN)
            .is_some_and(|limit| stamp.mtime.0 >= 0 && modified < limit);
        Ok(old_enough
            && (now.dev, now.ino, now.len, now.mtime)
                == (stamp.dev, stamp.ino, stamp.len, stamp.mtime))
    }

    /// The owner to give a new version (only root can).
    fn owner(&self) -> Option<(u32, u32)> {
        match self {
            Seen::Missing => None,
            Seen::File { owner, .. } => Some(*owner),
            Seen::Written { owner, .. } => *owner,
        }
    }
}

/// What tells one version of the file from another without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Reads the file; one that looks cut short (empty, or shorter than this
/// process last saw it: a writer that truncates and rewrites in place may
/// be half-way) is read again after a pause, until three reads in a row
/// agree (or it is whole again).
fn load_settled(name: &FileName, target: &Path) -> Result<Seen, CredentialsError> {
    let last = last_length(target);
    let read = || {
        let at = SystemTime::now();
        private_file::read(target, READ_RULES)
            .map(|file| (file, at))
            .map_err(|e| file_error(name, "reading", e))
    };
    let (mut current, mut read_at) = read()?;
    let mut previous: Option<(Stamp, Zeroizing<Vec<u8>>)> = None;
    let mut agreeing = 0;
    for _ in 0..SETTLE_READS {
        let Some(file) = &current else { break };
        let len = file.bytes.len() as u64;
        if len > 0 && last.is_none_or(|last| len >= last) {
            break;
        }
        let stamp = Stamp::of(&file.meta);
        let agrees = previous
            .as_ref()
            .is_some_and(|(s, bytes)| *s == stamp && **bytes == *file.bytes);
        agreeing = if agrees { agreeing + 1 } else { 0 };
        if agreeing >= 2 {
            break;
        }
        let file = current.take().expect("checked above");
        previous = Some((stamp, file.bytes));
        std::thread::sleep(SETTLE_PAUSE);
        (current, read_at) = read()?;
    }
    let Some(mut file) = current else {
        return Ok(Seen::Missing);
    };
    remember_length(target, file.bytes.len() as u64);
    let stamp = Stamp::of(&file.meta);
    let owner = (file.meta.uid(), file.meta.gid());
    let text = utf8(name, std::mem::take(&mut file.bytes))?;
    Ok(Seen::File {
        doc: Box::new(Document::from_string(text).in_file(name.clone())),
        stamp,
        owner,
        read_at,
    })
}

/// The bytes as text, without a copy; not UTF-8: the error names the line.
fn utf8(name: &FileName, mut bytes: Zeroizing<Vec<u8>>) -> Result<String, CredentialsError> {
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(text),
        Err(e) => {
            let valid_up_to = e.utf8_error().valid_up_to();
            let bytes = Zeroizing::new(e.into_bytes());
            let valid = std::str::from_utf8(&bytes[..valid_up_to]).unwrap_or_default();
            let ended = split_lines(valid)
                .iter()
                .filter(|l| l.end > l.content_end)
                .count();
            Err(CredentialsError::NotUtf8 {
                file: name.clone(),
                line: ended + 1,
            })
        }
    }
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
    // A link into a directory nobody may write: home-manager's
    // programs.awscli.credentials makes ~/.aws/credentials one, into the
    // Nix store. Said in full, with both ways out.
    let linked = name.path().is_some_and(|path| path != target);
    let store = target.starts_with("/nix/store");
    if linked && (store || read_only_dir(parent_dir(target))) {
        return Err(CredentialsError::ReadOnly {
            file: name.clone(),
            why: format!(
                "is in a read-only directory ({}), so no program can keep sessions in it \
                 (home-manager's programs.awscli.credentials makes such a link)",
                if store {
                    "the Nix store"
                } else {
                    "by its mode or its file system"
                }
            ),
            fix: "leave programs.awscli.credentials (or the link) out and keep a plain file \
                  here with the long-term keys (or those in the keyring: long_term_keys = \
                  \"keyring\")",
        });
    }
    if store {
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

/// A directory its owner may not write (mode), or on a read-only file
/// system: root could still write into the first, but its mode says no.
fn read_only_dir(dir: &Path) -> bool {
    let Ok(meta) = fs::metadata(dir) else {
        return false;
    };
    if meta.permissions().mode() & 0o200 == 0 {
        return true;
    }
    let Ok(c_dir) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: statvfs writes into the buffer it is given; read only on success.
    unsafe {
        libc::statvfs(c_dir.as_ptr(), stat.as_mut_ptr()) == 0
            && stat.assume_init().f_flag & libc::ST_RDONLY != 0
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

/// What [`CredentialsFile::remove_from_backups`] did.
#[derive(Debug, Default)]
pub struct Scrubbed {
    /// Backups the keys were removed from.
    pub cleaned: Vec<PathBuf>,
    /// Backups in which the secret is still found (in another form or
    /// section): the user must delete them.
    pub left: Vec<PathBuf>,
}

impl CredentialsFile {
    /// Removes `section`'s long-term keys (`aws_access_key_id` = `key_id`,
    /// and `aws_secret_access_key` = `secret`) from every backup
    /// (`credentials.1` ..., also those beyond the `backups` setting): after
    /// the keys moved to the keyring, no plain file may hold them. Under
    /// the lock, so that no writer rotates the backups meanwhile; each
    /// backup is rewritten like the file (temp file, fsync, rename), its
    /// owner kept.
    pub fn remove_from_backups(
        &self,
        section: &str,
        key_id: &str,
        secret: &secrecy::SecretString,
    ) -> Result<Scrubbed, CredentialsError> {
        use secrecy::ExposeSecret;
        let target = self.target()?;
        let name = self.name(&target);
        let _lock =
            private_file::lock(&lock_path(&target)).map_err(|e| file_error(&name, "locking", e))?;
        let mut scrubbed = Scrubbed::default();
        let needle = secret.expose_secret().as_bytes();
        let holds_secret = |bytes: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        for backup in backup_files(&target) {
            let rules = ReadRules {
                limit: MAX_SIZE,
                follow: false,
                owned: false,
            };
            let Some(read) = private_file::read(&backup, rules)
                .map_err(|e| file_error(&name, "reading a backup", e))?
            else {
                continue;
            };
            let Ok(text) = std::str::from_utf8(&read.bytes) else {
                if holds_secret(&read.bytes) {
                    scrubbed.left.push(backup);
                }
                continue;
            };
            let mut doc = Document::parse(text);
            let mut edited = false;
            if doc.get(section, super::SECRET_ACCESS_KEY).ok().flatten()
                == Some(secret.expose_secret())
                && doc
                    .apply(&Edit::remove(section, super::SECRET_ACCESS_KEY))
                    .is_ok()
            {
                edited = true;
                if doc.get(section, super::ACCESS_KEY_ID).ok().flatten() == Some(key_id) {
                    edited |= doc
                        .apply(&Edit::remove(section, super::ACCESS_KEY_ID))
                        .is_ok();
                }
            }
            let rendered = Zeroizing::new(doc.render());
            if edited {
                let owner = Some((read.meta.uid(), read.meta.gid()));
                Replacement::write(&backup, rendered.as_bytes(), owner)
                    .and_then(Replacement::commit)
                    .map_err(|e| file_error(&name, "removing the keys from a backup", e))?;
                scrubbed.cleaned.push(backup.clone());
            }
            if holds_secret(rendered.as_bytes()) {
                scrubbed.left.push(backup);
            }
        }
        Ok(scrubbed)
    }
}

/// `<target>.N` next to the target, in order of N: the backups the writer
/// rotates (also those beyond today's `backups` count).
fn backup_files(target: &Path) -> Vec<PathBuf> {
    let Some(name) = target.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir(parent_dir(target)) else {
        return Vec::new();
    };
    let mut found: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let file_name = entry.file_name();
            let number = file_name.to_str()?.strip_prefix(name)?.strip_prefix('.')?;
            let n = number
                .parse::<u32>()
                .ok()
                .filter(|_| !number.starts_with('+'))?;
            Some((n, entry.path()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, path)| path).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backups_are_the_numbered_siblings() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("credentials");
        for name in [
            "credentials",
            "credentials.1",
            "credentials.10",
            "credentials.2",
            "credentials.lock",
            "credentials.+3",
            "credentials.bak",
            "credentialsX.1",
            ".credentials.abc123.tmp",
        ] {
            fs::write(dir.path().join(name), "").unwrap();
        }
        let names: Vec<String> = backup_files(&target)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["credentials.1", "credentials.2", "credentials.10"]);
    }

    #[test]
    fn the_config_file_takes_profile_headers_and_the_credentials_file_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        let mine = "[default]\nregion = eu-west-1\n# note\n[profile other]\noutput = json\n";
        fs::write(&config, mine).unwrap();
        let edit = Edit::set(
            "profile work",
            "credential_process",
            "/bin/x credential-process --profile work"
                .to_string()
                .into(),
        );
        let file = CredentialsFile::aws_config(config.clone(), 1);
        assert_eq!(
            file.update(std::slice::from_ref(&edit)).unwrap(),
            WriteOutcome::Written
        );
        let text = fs::read_to_string(&config).unwrap();
        assert!(text.starts_with(mine), "{text}");
        assert!(
            text.ends_with(
                "[profile work]\ncredential_process = /bin/x credential-process --profile work\n"
            ),
            "{text}"
        );
        assert_eq!(
            file.update(std::slice::from_ref(&edit)).unwrap(),
            WriteOutcome::Unchanged
        );
        // In the credentials file the SDKs ignore `[profile work]`: refused.
        let credentials = dir.path().join("credentials");
        fs::write(&credentials, "[default]\nk = v\n").unwrap();
        let err = CredentialsFile::new(credentials.clone(), 1)
            .update(&[edit])
            .unwrap_err();
        assert!(err.to_string().contains("AWS SDKs"), "{err}");
        assert_eq!(
            fs::read_to_string(&credentials).unwrap(),
            "[default]\nk = v\n"
        );
    }

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
            let reason = crate::daemon::decide::CredentialsView::check(&doc, "prod").unwrap_err();
            assert!(reason.contains(&path.display().to_string()), "{reason}");
        }
    }

    /// `aws configure set` opens the path, then writes: when the daemon
    /// swaps its new version in between, the CLI's write goes into the
    /// replaced file. The update must find it there and write again on top
    /// of it.
    #[test]
    fn a_write_into_the_replaced_file_is_merged() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        fs::write(&path, "[default]\nk = v\n").unwrap();
        // Last modified an hour ago: after the swap, only the change of its
        // modification time tells that it was written to.
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        // The other writer has the file open, as the CLI does between its
        // open and its write.
        let mut other = fs::OpenOptions::new().append(true).open(&path).unwrap();
        let file = CredentialsFile::new(path.clone(), 2);
        let update = std::thread::spawn(move || {
            file.update(&[Edit::set("prod", "k", "new".to_string().into())])
        });
        // The update swaps its version in, then waits for this writer.
        std::thread::sleep(Duration::from_millis(200));
        other.write_all(b"\n[user]\nk = mine\n").unwrap();
        drop(other);
        assert_eq!(update.join().unwrap().unwrap(), WriteOutcome::Written);
        let text = fs::read_to_string(&path).unwrap();
        let doc = Document::parse(&text);
        assert_eq!(doc.get("user", "k").unwrap(), Some("mine"), "{text}");
        assert_eq!(doc.get("prod", "k").unwrap(), Some("new"), "{text}");
        assert_eq!(doc.get("default", "k").unwrap(), Some("v"), "{text}");
        // The replaced file, with the other writer's change, is the backup.
        let backup = fs::read_to_string(dir.path().join("credentials.1")).unwrap();
        assert!(backup.contains("[user]"), "{backup}");
        assert!(private_file::orphans(&path).is_empty());
    }

    /// A writer that truncates the file and writes it again (in place) may
    /// be caught half-way: an empty file, or one shorter than a moment ago,
    /// is read again before it is used.
    #[test]
    fn a_file_cut_short_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        let full = "[default]\nk = v\n\n[user]\nk = mine\n";
        fs::write(&path, full).unwrap();
        let file = CredentialsFile::new(path.clone(), 0);
        file.read().unwrap();
        // Truncated, and written again 3 ms later.
        fs::File::create(&path).unwrap();
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(2));
                fs::write(&path, full).unwrap();
            })
        };
        file.update(&[Edit::set("prod", "k", "new".to_string().into())])
            .unwrap();
        writer.join().unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(full), "{text}");
        assert!(text.contains("[prod]"), "{text}");
    }

    #[test]
    fn backups_beyond_the_setting_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        fs::write(&path, "[p]\nn = 0\n").unwrap();
        for name in ["credentials.3", "credentials.6", "credentials.12"] {
            fs::write(dir.path().join(name), "[p]\nn = old\n").unwrap();
        }
        let others = [
            "credentials.lock",
            "credentials.06",
            "credentials.x",
            "other.9",
        ];
        for name in others {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        fs::create_dir(dir.path().join("credentials.7")).unwrap();
        let file = CredentialsFile::new(path.clone(), 5);
        file.update(&[Edit::set("p", "n", "1".to_string().into())])
            .unwrap();
        assert!(dir.path().join("credentials.1").exists());
        assert!(dir.path().join("credentials.4").exists(), "3 moved to 4");
        for gone in ["credentials.6", "credentials.12"] {
            assert!(!dir.path().join(gone).exists(), "{gone} kept");
        }
        for kept in others {
            assert!(dir.path().join(kept).exists(), "{kept} removed");
        }
        assert!(
            dir.path().join("credentials.7").is_dir(),
            "not a file: left"
        );
        // Fewer backups now: the older ones go.
        CredentialsFile::new(path.clone(), 1)
            .update(&[Edit::set("p", "n", "2".to_string().into())])
            .unwrap();
        assert!(dir.path().join("credentials.1").exists());
        assert!(!dir.path().join("credentials.2").exists());
        assert!(!dir.path().join("credentials.5").exists());
        assert_eq!(
            fs::read_to_string(dir.path().join("credentials.1")).unwrap(),
            "[p]\nn = 1\n"
        );
    }

    #[test]
    fn nix_store_targets_are_refused_by_path() {
        let name = FileName::default();
        let err = check_writable(&name, Path::new("/nix/store/abc-credentials")).unwrap_err();
        assert!(err.to_string().contains("Nix store"), "{err}");
    }
}
