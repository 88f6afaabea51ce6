//! Reading the credentials file, and the locked, atomic update with backups.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::document::{Document, Edit, Edited};
use crate::error::{CredentialsError, ErrorKind, FileName};
use crate::private::{self, PrivateFileError, Replacement, Swapped, Writers, parent_dir, sibling};
use crate::sdk::FileKind;
use crate::snapshot::{
    SETTLE_PAUSE, SETTLE_READS, Snapshot, Stamp, Version, current_stamp, load_settled, utf8,
};
use crate::wipe::SecretText;

/// A credentials file is a few kilobytes; anything this large is the wrong
/// file.
pub const MAX_SIZE: u64 = 16 * 1024 * 1024;

/// How many times [`CredentialsFile::update`] starts over when another
/// program (one that does not take the lock, like an editor or `aws
/// configure set`) changes the file while the update is under way, before
/// it gives up and lets the caller retry later.
const ATTEMPTS: usize = 8;

/// How long the update waits for a program that still has the replaced
/// file open for writing (one that opened it just before the swap).
const WRITER_WAIT: Duration = Duration::from_millis(500);

/// Symlink hops followed before giving up (Linux's own limit).
const MAX_SYMLINKS: usize = 40;

/// Whether an update changed the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The edits changed nothing: the file was not written, and no backup made.
    Unchanged,
    Written,
}

/// What [`CredentialsFile::update_from`] did, and what the file holds
/// after it (our version, or another program's merged with ours), known
/// without reading the file back.
#[derive(Debug)]
pub struct Written {
    pub outcome: WriteOutcome,
    pub snapshot: Snapshot,
    /// Another program changed the file after the caller's snapshot was
    /// read: the edits went onto its version, so what was written holds
    /// changes the caller has not seen (a caller that watches the file
    /// should look at it again).
    pub merged: bool,
}

/// The shared credentials file at `path` (a symlink is followed and its
/// target written, so the link survives), keeping `backups` older versions
/// next to the target as `credentials.1` (newest) … `credentials.N`.
///
/// Keep one value (or its clones, which share its memory) for as long as
/// the file is watched: it remembers the length it last saw, to tell a file
/// that another writer has cut short and not yet written again.
#[derive(Debug, Clone)]
pub struct CredentialsFile {
    path: PathBuf,
    backups: usize,
    /// The credentials file, or the config file (`[profile NAME]` headers).
    kind: FileKind,
    /// Old versions that this update unlinks or replaces are overwritten in
    /// place first (see [`CredentialsFile::wiping_old_versions`]).
    wipe: bool,
    /// The length of the file when this value (or a clone) last read or
    /// wrote it; `u64::MAX` before the first.
    last_len: Arc<AtomicU64>,
}

impl PartialEq for CredentialsFile {
    fn eq(&self, other: &Self) -> bool {
        (&self.path, self.backups, self.kind, self.wipe)
            == (&other.path, other.backups, other.kind, other.wipe)
    }
}

impl Eq for CredentialsFile {}

impl CredentialsFile {
    pub fn new(path: PathBuf, backups: usize) -> Self {
        CredentialsFile {
            path,
            backups,
            kind: FileKind::Credentials,
            wipe: false,
            last_len: Arc::new(AtomicU64::new(u64::MAX)),
        }
    }

    /// The AWS config file (`~/.aws/config`), edited with the same locked,
    /// byte-preserving writer; its profiles are `[profile NAME]`, and
    /// messages name `AWS_CONFIG_FILE` instead of the credentials file's
    /// options.
    pub fn aws_config(path: PathBuf, backups: usize) -> Self {
        CredentialsFile {
            kind: FileKind::Config,
            ..CredentialsFile::new(path, backups)
        }
    }

    /// The same file, keeping `backups` older versions; the memory of the
    /// last length is shared.
    pub fn with_backups(&self, backups: usize) -> Self {
        CredentialsFile {
            backups,
            ..self.clone()
        }
    }

    /// The same file, whose updates overwrite the old versions they replace
    /// or remove (the replaced file when no backup is kept, a backup
    /// rotated out) with zeros before unlinking them, so that a secret taken
    /// out of the file does not stay readable in the file system's free
    /// blocks. Costs a write of each old version: for removing long-term
    /// keys, not for the daemon's routine refreshes.
    pub fn wiping_old_versions(mut self) -> Self {
        self.wipe = true;
        self
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
                    _ => Err(CredentialsError::of(ErrorKind::NoHome)),
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
        FileName::new(&self.path, target, self.kind)
    }

    /// The file that is really read and written: `path` with its symlink
    /// chain resolved (it need not exist yet). Watch its directory too.
    pub fn target(&self) -> Result<PathBuf, CredentialsError> {
        let name = self.name(&self.path);
        match resolve_symlinks(&self.path) {
            Ok(target) => Ok(target),
            Err(None) => Err(CredentialsError::new(
                &name,
                ErrorKind::NotAFile {
                    what: "a loop of symbolic links",
                },
            )),
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
        if private::orphans(&target).is_empty() {
            return;
        }
        // A writer holding the lock cleans up itself, and its own temporary
        // file is not an orphan.
        if let Ok(Some(_lock)) = private::try_lock(&lock_path(&target)) {
            private::remove_orphans(&target);
        }
    }

    /// The current document: [`CredentialsFile::read_snapshot`]'s.
    pub fn read(&self) -> Result<Document, CredentialsError> {
        self.read_snapshot().map(Snapshot::into_document)
    }

    /// Reads the file once: its document, stamp and hash. A missing file is
    /// an empty document. A file that looks cut short (empty, or shorter
    /// than this value last saw it) is read again after a few milliseconds,
    /// until it stops changing: a writer that rewrites it in place may be
    /// half-way.
    pub fn read_snapshot(&self) -> Result<Snapshot, CredentialsError> {
        let target = self.target()?;
        let name = self.name(&target);
        load_settled(&name, &target, &self.last_len, "observe")
    }

    /// Whether the file is still the version of `snapshot`, from its
    /// metadata alone (no read): the same inode, size, modification and
    /// change times to the nanosecond, mode and owner. Meant for telling the
    /// file event of our own write from another program's: a write of the
    /// same size by another program within the same tick of the kernel's
    /// clock as the snapshot's is not told apart (an update that starts
    /// from the snapshot still checks under the lock).
    pub fn unchanged_since(&self, version: &Version) -> bool {
        let Ok(target) = self.target() else {
            return false;
        };
        current_stamp(&self.name(&target), &target).is_ok_and(|now| now == version.stamp())
    }

    /// Makes the file (the link's target) private again when group or
    /// others may read or write it and it is ours: their bits taken off the inode
    /// `snapshot` was read from, through a descriptor opened without
    /// following a link at the last step (never a path another user could
    /// swap meanwhile). Returns whether it changed anything; `Ok(false)`
    /// for a private, missing or replaced file, or another user's (which
    /// only its owner can change).
    pub fn make_private(&self, snapshot: &Snapshot) -> Result<bool, CredentialsError> {
        if snapshot.is_private() {
            return Ok(false);
        }
        let target = self.target()?;
        let name = self.name(&target);
        private::make_private(&target, |meta| {
            snapshot
                .stamp()
                .is_some_and(|stamp| stamp.same_version(&Stamp::of(meta)))
        })
        .map_err(|e| file_error(&name, "making the file private", e))
    }

    /// Applies `edits` under the lock: [`CredentialsFile::update_from`]
    /// without a snapshot (the file is read under the lock) and without
    /// building one of the result.
    pub fn update(&self, edits: &[Edit]) -> Result<WriteOutcome, CredentialsError> {
        self.update_with(None, edits, false)
            .map(|(outcome, _, _)| outcome)
    }

    /// Applies `edits` under the lock, and keeps what programs that do not
    /// take the lock write meanwhile:
    ///
    /// 1. lock, remove temporary files left by a killed writer; if the
    ///    file is provably still the version of `base` (its stamp, see
    ///    [`Snapshot`]), use `base`'s document, otherwise read the file
    ///    (again after a pause if it looks cut short);
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
    ///    byte, unless its stamp proves it untouched): a program that
    ///    opened it before the swap (`aws configure set` opens, then
    ///    writes) may have written into it. If it did, that version
    ///    becomes the base: start over from 2, and the next swap replaces
    ///    our own version;
    /// 6. the replaced file becomes the backup `credentials.1` (older ones
    ///    move up, those beyond `backups` are removed); fsync the directory.
    ///
    /// Creates the directory (0700) and the file when missing. At most
    /// [`ATTEMPTS`] rounds, then [`ErrorKind::ChangedDuringUpdate`]
    /// (retried later). On an error before a swap the file is as it was; a
    /// version another program wrote into the replaced file is put back
    /// even when the edits cannot be applied to it.
    ///
    /// The result holds the snapshot of what the file holds now, built from
    /// the text written (or `base`, when nothing changed).
    pub fn update_from(
        &self,
        base: &Snapshot,
        edits: &[Edit],
    ) -> Result<Written, CredentialsError> {
        let (outcome, snapshot, merged) = self.update_with(Some(base), edits, true)?;
        Ok(Written {
            outcome,
            snapshot: snapshot.expect("asked for"),
            merged,
        })
    }

    fn update_with(
        &self,
        base: Option<&Snapshot>,
        edits: &[Edit],
        want_snapshot: bool,
    ) -> Result<(WriteOutcome, Option<Snapshot>, bool), CredentialsError> {
        for edit in edits {
            edit.validate()?;
        }
        let target = self.target()?;
        let name = self.name(&target);
        check_writable(&name, &target)?;
        let dir = parent_dir(&target);
        create_dir(&name, dir, target != self.path)?;
        let lock = lock_path(&target);
        let _lock = private::lock(&lock).map_err(|e| file_error(&name, "locking", e))?;
        private::remove_orphans(&target);
        let seen = match base {
            Some(base) if base.proves_unchanged(current_stamp(&name, &target)?) => {
                tracing::debug!("{name}: unchanged since it was read; not read again");
                base.clone()
            }
            _ => load_settled(&name, &target, &self.last_len, "locked re-read")?,
        };
        let merged = base.is_some_and(|base| base.hash() != seen.hash());
        let mut update = Update {
            name: &name,
            target: &target,
            file: self,
            seen: Seen::Read(seen),
            base: None,
            backup: None,
            placed: None,
            want_snapshot,
            merged,
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
                    update.finish()?;
                    let outcome = outcome?;
                    return Ok((outcome, update.snapshot(), update.merged));
                }
                Round::Unchanged => {
                    return Ok((WriteOutcome::Unchanged, update.snapshot(), update.merged));
                }
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
            update.finish()?;
        }
        Err(CredentialsError::new(
            &name,
            ErrorKind::ChangedDuringUpdate {
                lock: lock.display().to_string(),
            },
        ))
    }

    fn remember_length(&self, len: usize) {
        self.last_len.store(len as u64, Ordering::Relaxed);
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
    file: &'a CredentialsFile,
    /// What the path holds, as far as this update knows: as read, or the
    /// version this update put there.
    seen: Seen,
    /// Set when a swap found that another program had written into the
    /// replaced file: its version, which the edits now apply to (and which
    /// is not at the path).
    base: Option<Document>,
    /// The file the first swap replaced, for the backup.
    backup: Option<Replaced>,
    /// The text last put in place and the new file's stamp, when the
    /// caller wants the snapshot of the result.
    placed: Option<(SecretText, Stamp)>,
    want_snapshot: bool,
    /// The edits went onto a version another program wrote.
    merged: bool,
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
            (None, Seen::Read(snapshot)) => snapshot.document(),
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
        // The config file holds no secret of ours: it keeps its mode.
        let shared_mode = match self.file.kind {
            FileKind::Config => self.seen.mode(),
            FileKind::Credentials => None,
        };
        let temp = Replacement::write_pieces(self.target, &desired.pieces(), owner, shared_mode)
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
                self.file.remember_length(desired.len());
                if self.want_snapshot {
                    self.placed = Some((desired.to_text(), Stamp::of(&meta)));
                }
                return done(failure);
            }
            Swapped::Replaced { old, file } => Replaced { path: old, file },
        };
        // Did a program that opened the replaced file before the swap
        // write into it after our read?
        let writers = private::wait_for_writers(&replaced.file, WRITER_WAIT);
        let expected = self.seen.text().unwrap_or_default().as_bytes();
        let checking = |e| CredentialsError::io(self.name, "checking the replaced file", e);
        // Where no writer can hold it any more, its stamp may prove it
        // untouched; otherwise it is compared byte for byte.
        let same = (writers == Writers::None
            && self
                .seen
                .proves_replaced_untouched(&replaced.file)
                .map_err(checking)?)
            || {
                tracing::debug!(
                    "read {} bytes of {} (replaced-file check)",
                    expected.len(),
                    self.target.display()
                );
                same_content(&replaced.file, expected).map_err(checking)?
            };
        let written_to = if same {
            None
        } else {
            let theirs = read_settled(&replaced.file, writers, expected.len())
                .map_err(|e| CredentialsError::io(self.name, "reading the replaced file", e))?;
            tracing::debug!(
                "read {} bytes of {} (the replaced file, written to meanwhile)",
                theirs.len(),
                self.target.display()
            );
            Some((theirs, desired.to_text()))
        };
        self.file.remember_length(desired.len());
        if self.want_snapshot {
            self.placed = Some((desired.to_text(), Stamp::of(&meta)));
        }
        drop(desired);
        if self.backup.is_none() {
            self.backup = Some(replaced);
        } else if self.file.wipe {
            wipe_in_place(&replaced.file);
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
        self.merged = true;
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
        self.placed = None;
        self.merged = true;
        self.seen = Seen::Read(load_settled(
            self.name,
            self.target,
            &self.file.last_len,
            "locked re-read",
        )?);
        Ok(())
    }

    /// What the file holds when the update ends: the text this update
    /// last put in place, else what was read. Parsed from memory.
    fn snapshot(&mut self) -> Option<Snapshot> {
        if !self.want_snapshot {
            return None;
        }
        let margin = match &self.seen {
            Seen::Read(snapshot) => snapshot.margin(),
            Seen::Written { .. } => None,
        };
        if let Some((text, stamp)) = self.placed.take() {
            return Some(Snapshot::written(text, self.name, stamp, margin));
        }
        Some(
            match std::mem::replace(
                &mut self.seen,
                Seen::Written {
                    text: SecretText::default(),
                    stamp: Stamp::default(),
                    owner: None,
                },
            ) {
                Seen::Read(snapshot) => snapshot,
                Seen::Written { text, stamp, .. } => {
                    Snapshot::written(text, self.name, stamp, margin)
                }
            },
        )
    }

    /// Step 6: the replaced file becomes `.1`, older backups move up, and
    /// those beyond `backups` go; then the directory is synced.
    fn finish(&mut self) -> Result<(), CredentialsError> {
        let backups = self.file.backups;
        let io = |e| CredentialsError::io(self.name, "rotating the backups", e);
        if let Some(replaced) = self.backup.take() {
            if backups > 0 {
                if self.file.wipe {
                    wipe_path_in_place(&sibling(self.target, &format!(".{backups}")));
                }
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
                        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                            .map_err(io)?;
                    }
                }
                keep_as_backup(self.name, self.target, replaced)?;
            } else if self.file.wipe {
                wipe_in_place(&replaced.file);
            }
        }
        remove_extra_backups(self.target, backups, self.file.wipe);
        private::sync_dir(parent_dir(self.target))
            .map_err(|e| file_error(self.name, "syncing the directory", e))
    }
}

/// Overwrites the file's bytes with zeros in place (the same blocks, on
/// file systems that do not copy on write) and syncs them: an old version
/// about to be unlinked leaves no secret in the free blocks. Best effort:
/// a file that cannot be written is left as it is (and logged).
pub(crate) fn wipe_in_place(file: &File) {
    if let Err(e) = private::overwrite_with_zeros(file) {
        tracing::warn!("cannot overwrite an old version of the file before removing it: {e}");
    }
}

/// [`wipe_in_place`] of the regular file at `path` (not followed if a
/// link), if there is one.
fn wipe_path_in_place(path: &Path) {
    if let Ok(file) = private::open_for_wipe(path) {
        wipe_in_place(&file);
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
fn remove_extra_backups(target: &Path, backups: usize, wipe: bool) {
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
            if wipe {
                wipe_path_in_place(&entry.path());
            }
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

/// A private-file error as the credentials editor reports it: with the
/// file's name as the user gave it, and the editor's own messages for a
/// special or oversized file.
pub(crate) fn file_error(
    name: &FileName,
    action: &'static str,
    error: PrivateFileError,
) -> CredentialsError {
    match error {
        PrivateFileError::Io { source, .. } => CredentialsError::io(name, action, source),
        PrivateFileError::TooLarge { size, .. } => too_large(name, size),
        PrivateFileError::NotAFile { what, .. } => {
            CredentialsError::new(name, ErrorKind::NotAFile { what })
        }
        unsafe_file @ PrivateFileError::Unsafe { .. } => CredentialsError::new(
            name,
            ErrorKind::Unsafe {
                detail: unsafe_file.to_string(),
            },
        ),
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
    /// As read (or as the caller's snapshot, proved still in place).
    Read(Snapshot),
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
            Seen::Read(snapshot) => snapshot.stamp(),
            Seen::Written { stamp, .. } => Some(*stamp),
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Seen::Read(snapshot) => snapshot.exists().then(|| snapshot.document().text()),
            Seen::Written { text, .. } => Some(text),
        }
    }

    /// Whether `file` (the file the swap replaced) is provably the version
    /// read, from its metadata alone (see [`Snapshot`]).
    fn proves_replaced_untouched(&self, file: &File) -> io::Result<bool> {
        let Seen::Read(snapshot) = self else {
            return Ok(false);
        };
        Ok(snapshot.proves_same_file(&Stamp::of(&file.metadata()?)))
    }

    /// The permission bits of the file at the path.
    fn mode(&self) -> Option<u32> {
        match self {
            Seen::Read(snapshot) => snapshot.mode(),
            Seen::Written { stamp, .. } => Some(stamp.mode() & 0o7777),
        }
    }

    /// The owner to give a new version (only root can).
    fn owner(&self) -> Option<(u32, u32)> {
        match self {
            Seen::Read(snapshot) => snapshot.owner(),
            Seen::Written { owner, .. } => *owner,
        }
    }
}

fn too_large(name: &FileName, size: u64) -> CredentialsError {
    CredentialsError::new(
        name,
        ErrorKind::TooLarge {
            size,
            limit: MAX_SIZE,
        },
    )
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
        return Err(CredentialsError::new(
            name,
            ErrorKind::ReadOnly {
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
            },
        ));
    }
    if store {
        return Err(CredentialsError::new(
            name,
            ErrorKind::ReadOnly {
                why: "is in the Nix store, which is read-only (home-manager or NixOS manages it)"
                    .into(),
                fix: "stop managing the file with Nix and leave it to the daemon",
            },
        ));
    }
    match fs::metadata(target) {
        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o200 == 0 => {
            Err(CredentialsError::new(
                name,
                ErrorKind::ReadOnly {
                    why: format!(
                        "is read-only (mode {:04o})",
                        meta.permissions().mode() & 0o7777
                    ),
                    fix: "make it writable by its owner (chmod 600)",
                },
            ))
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
    meta.permissions().mode() & 0o200 == 0
        || rustix::fs::statvfs(dir)
            .is_ok_and(|fs| fs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
}

/// Creates the file's directory (0700) when missing; not the directory a
/// link points into (`linked`), which is not ours to make: a dangling link
/// into a missing directory is an error.
fn create_dir(name: &FileName, dir: &Path, linked: bool) -> Result<(), CredentialsError> {
    if dir.is_dir() {
        return Ok(());
    }
    if linked {
        return Err(CredentialsError::new(
            name,
            ErrorKind::Unsafe {
                detail: format!(
                    "the link points into {}, which does not exist; the daemon does not create \
                     the directories a link points into: create it, or fix the link",
                    dir.display()
                ),
            },
        ));
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
    /// Other files next to the file, named like it (`credentials.bak`, an
    /// editor's `credentials~` or `.credentials.swp`), that hold the
    /// secret: not the editor's to change; the user must delete them.
    pub elsewhere: Vec<PathBuf>,
}

impl CredentialsFile {
    /// Removes `section`'s keys from every backup (`credentials.1` ...,
    /// also those beyond the `backups` setting): each `(key, value)` of
    /// `keys` whose value is the one given, when the first (the secret)
    /// matches. After the keys moved elsewhere, no plain file may hold
    /// them. Under the lock, so that no writer rotates the backups
    /// meanwhile; each backup is rewritten like the file (temp file, fsync,
    /// rename, its owner kept), and its old version overwritten with zeros
    /// in place before it is replaced, so that the secret is not left in
    /// the file system's free blocks. Other files next to the file that
    /// hold the secret are reported, not changed.
    pub fn remove_from_backups(
        &self,
        section: &str,
        keys: &[(&str, &secrecy::SecretString)],
    ) -> Result<Scrubbed, CredentialsError> {
        use secrecy::ExposeSecret;
        let target = self.target()?;
        let name = self.name(&target);
        let _lock =
            private::lock(&lock_path(&target)).map_err(|e| file_error(&name, "locking", e))?;
        let mut scrubbed = Scrubbed::default();
        let Some((secret_key, secret)) = keys.first() else {
            return Ok(scrubbed);
        };
        let needle = secret.expose_secret().as_bytes();
        let holds_secret =
            |bytes: &[u8]| !needle.is_empty() && bytes.windows(needle.len()).any(|w| w == needle);
        let rules = private::ReadRules {
            limit: MAX_SIZE,
            follow: false,
            owned: false,
        };
        let backups = backup_files(&target);
        for backup in &backups {
            let Some(read) = private::read(backup, rules)
                .map_err(|e| file_error(&name, "reading a backup", e))?
            else {
                continue;
            };
            let Ok(text) = std::str::from_utf8(&read.bytes) else {
                if holds_secret(&read.bytes) {
                    scrubbed.left.push(backup.clone());
                }
                continue;
            };
            let mut doc = Document::parse(text);
            let mut edited = false;
            let holds = |doc: &Document, key: &str, value: &secrecy::SecretString| {
                doc.get(section, key).ok().flatten() == Some(value.expose_secret())
            };
            if holds(&doc, secret_key, secret)
                && doc.apply(&Edit::remove(section, *secret_key)).is_ok()
            {
                edited = true;
                for (key, value) in &keys[1..] {
                    if holds(&doc, key, value) {
                        edited |= doc.apply(&Edit::remove(section, *key)).is_ok();
                    }
                }
            }
            let rendered = Zeroizing::new(doc.render());
            if edited {
                let owner = Some((read.meta.uid(), read.meta.gid()));
                let new = Replacement::write(backup, rendered.as_bytes(), owner)
                    .map_err(|e| file_error(&name, "removing the keys from a backup", e))?;
                if let Ok(old) = private::open_for_wipe(backup) {
                    wipe_in_place(&old);
                }
                new.commit()
                    .map_err(|e| file_error(&name, "removing the keys from a backup", e))?;
                scrubbed.cleaned.push(backup.clone());
            }
            if holds_secret(rendered.as_bytes()) {
                scrubbed.left.push(backup.clone());
            }
        }
        for other in look_alikes(&target, &backups) {
            if let Ok(Some(read)) = private::read(&other, rules)
                && holds_secret(&read.bytes)
            {
                scrubbed.elsewhere.push(other);
            }
        }
        Ok(scrubbed)
    }
}

/// Regular files next to `target` named like it, other than the file, its
/// lock, its temporary files and `backups`: `credentials.bak`,
/// `credentials~`, `credentials.orig`, Vim's `.credentials.swp`, Emacs's
/// `#credentials#`.
fn look_alikes(target: &Path, backups: &[PathBuf]) -> Vec<PathBuf> {
    let Some(name) = target.file_name().and_then(OsStr::to_str) else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir(parent_dir(target)) else {
        return Vec::new();
    };
    let lock = lock_path(target);
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|entry| {
            let file_name = entry.file_name();
            let Some(other) = file_name.to_str() else {
                return false;
            };
            let alike = other
                .trim_start_matches(['.', '#'])
                .strip_prefix(name)
                .is_some_and(|rest| !rest.is_empty() || other != name);
            alike
                && !private::is_temp_file_of(&file_name, OsStr::new(name))
                && entry.file_type().is_ok_and(|t| t.is_file())
        })
        .map(|entry| entry.path())
        .filter(|path| path != target && *path != lock && !backups.contains(path))
        .collect();
    found.sort();
    found
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
    use std::time::SystemTime;

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
        assert!(!err.is_transient());
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
        let held = private::lock(&lock_path(&target)).unwrap();
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
                matches!(err.kind(), ErrorKind::UnreadableLine { .. }),
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
            // The document read names the file in its errors too.
            let doc = CredentialsFile::new(path.clone(), 2).read().unwrap();
            let reason = doc.check_readable().unwrap_err().to_string();
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
        assert!(private::orphans(&path).is_empty());
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
