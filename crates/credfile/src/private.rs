//! Files that hold secrets: the credentials file, the MFA session cache and
//! the state file. One copy of the rules for all of them:
//!
//! - a new file is created with mode 0600 and written through a temporary
//!   file in the same directory: write, fsync, rename, fsync the directory;
//!   a reader sees the old file or the new one, never half of one;
//! - a writer holds an exclusive `flock` on a sibling lock file, opened
//!   without following a symlink (a link planted in its place would make
//!   the daemon create a file wherever it points);
//! - temporary files left by a writer killed half-way hold secrets, and are
//!   removed by the next writer (under the lock);
//! - a read takes regular files only, up to a size limit: a FIFO would hang
//!   the reader and `/dev/zero` would fill its memory;
//! - a file that programs outside our lock also write (the credentials
//!   file) can be swapped into place instead of renamed over the old one
//!   ([`Replacement::swap`]): the old file stays reachable, so that the
//!   caller can see whether someone wrote into it after it was read, and
//!   keep it as a backup without copying it;
//! - a private directory (the runtime directory) must be a real directory
//!   owned by the effective user; its mode is tightened to 0700 when looser;
//!   files read from it must be owned by that user and not readable by
//!   others, or they are refused (a file someone else planted there is not
//!   ours to trust).

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;
use zeroize::Zeroizing;

/// Random characters in a temporary file's name (`.NAME.XXXXXX.tmp`);
/// [`is_temp_file_of`] recognises exactly this shape.
const TEMP_RANDOM_CHARS: usize = 6;

/// Why a private file or directory could not be used. Messages name the
/// path and, where the user can do something, the fix; they never quote a
/// file's content.
#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    #[error("{}: {action} failed: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    /// Not safe to use: a symlink, another user's, open to others.
    #[error("{} {problem}; {fix}", path.display())]
    Unsafe {
        path: PathBuf,
        problem: String,
        fix: String,
    },
    #[error("{} is larger than {limit} bytes; it cannot be the right file", path.display())]
    TooLarge {
        path: PathBuf,
        limit: u64,
        /// The size, as far as it was read or stated.
        size: u64,
    },
    #[error("{} is {what}, not a regular file", path.display())]
    NotAFile { path: PathBuf, what: &'static str },
}

impl PrivateFileError {
    pub fn io(path: &Path, action: &'static str, source: io::Error) -> Self {
        PrivateFileError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    /// The underlying I/O error kind, for callers that sort errors by it.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            PrivateFileError::Io { source, .. } => source.kind(),
            PrivateFileError::Unsafe { .. } => io::ErrorKind::PermissionDenied,
            PrivateFileError::TooLarge { .. } => io::ErrorKind::InvalidData,
            PrivateFileError::NotAFile { .. } => io::ErrorKind::InvalidInput,
        }
    }
}

impl From<PrivateFileError> for io::Error {
    fn from(error: PrivateFileError) -> io::Error {
        match error {
            PrivateFileError::Io { source, .. } => source,
            other => io::Error::new(other.kind(), other.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, PrivateFileError>;

fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// What a file's type is, in words, for errors about special files.
fn kind_of(meta: &fs::Metadata) -> &'static str {
    let file_type = meta.file_type();
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else {
        "a special file (a FIFO, socket or device)"
    }
}

/// Creates `dir` with mode 0700 when it is missing (its parent must exist),
/// and checks that it is safe to keep secrets in: a directory, not a
/// symlink (checked with `lstat`), owned by the effective user. A looser
/// mode on our own directory is tightened to 0700.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            let parent = dir.parent().unwrap_or(Path::new("/"));
            let fix = if e.kind() == io::ErrorKind::NotFound {
                format!(
                    "{} does not exist; set XDG_RUNTIME_DIR to your own runtime directory (normally /run/user/$UID)",
                    parent.display()
                )
            } else {
                format!(
                    "{} is not writable by this user (uid {}); set XDG_RUNTIME_DIR to your own runtime directory (normally /run/user/$UID)",
                    parent.display(),
                    effective_uid()
                )
            };
            return Err(PrivateFileError::Unsafe {
                path: dir.to_path_buf(),
                problem: format!("cannot be created ({e})"),
                fix,
            });
        }
    }
    let meta = fs::symlink_metadata(dir).map_err(|e| PrivateFileError::io(dir, "checking", e))?;
    let fix = || {
        format!(
            "remove it (it is not this daemon's) or set XDG_RUNTIME_DIR to your own runtime directory (normally /run/user/{})",
            effective_uid()
        )
    };
    if meta.file_type().is_symlink() || !meta.is_dir() {
        return Err(PrivateFileError::Unsafe {
            path: dir.to_path_buf(),
            problem: format!("is {}, not a directory", kind_of(&meta)),
            fix: fix(),
        });
    }
    if meta.uid() != effective_uid() {
        return Err(PrivateFileError::Unsafe {
            path: dir.to_path_buf(),
            problem: format!(
                "belongs to uid {}, not to this user (uid {})",
                meta.uid(),
                effective_uid()
            ),
            fix: fix(),
        });
    }
    if meta.mode() & 0o077 != 0 {
        // Through a descriptor opened without following links, so that the
        // directory checked is the one changed.
        let handle = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(dir)
            .map_err(|e| PrivateFileError::io(dir, "opening", e))?;
        handle
            .set_permissions(fs::Permissions::from_mode(0o700))
            .map_err(|e| PrivateFileError::io(dir, "setting mode 0700 on", e))?;
    }
    Ok(())
}

/// An exclusive `flock` on a lock file, released on drop.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

fn open_lock_file(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                PrivateFileError::Unsafe {
                    path: path.to_path_buf(),
                    problem: "is a symbolic link".into(),
                    fix: "remove it: the daemon creates its lock files itself".into(),
                }
            } else {
                PrivateFileError::io(path, "opening the lock file", e)
            }
        })?;
    let meta = file
        .metadata()
        .map_err(|e| PrivateFileError::io(path, "checking the lock file", e))?;
    if !meta.is_file() {
        return Err(PrivateFileError::NotAFile {
            path: path.to_path_buf(),
            what: kind_of(&meta),
        });
    }
    Ok(file)
}

/// Waits for the exclusive lock on `path` (created 0600 when missing).
/// Blocks: call it off the async tasks, or wait with [`try_lock`].
pub fn lock(path: &Path) -> Result<Lock> {
    let file = open_lock_file(path)?;
    #[allow(clippy::incompatible_msrv)]
    file.lock()
        .map_err(|e| PrivateFileError::io(path, "locking", e))?;
    Ok(Lock { _file: file })
}

/// The lock on `path` if it is free now; `None` when another holds it.
pub fn try_lock(path: &Path) -> Result<Option<Lock>> {
    let file = open_lock_file(path)?;
    #[allow(clippy::incompatible_msrv)]
    match file.try_lock() {
        Ok(()) => Ok(Some(Lock { _file: file })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(PrivateFileError::io(path, "locking", e)),
    }
}

/// How a read treats the path and what it accepts.
#[derive(Debug, Clone, Copy)]
pub struct ReadRules {
    /// Larger files are refused.
    pub limit: u64,
    /// Follow a symlink at the last component (the credentials file may be
    /// a dotfile manager's link; files in the runtime directory may not).
    pub follow: bool,
    /// The file must belong to the effective user and be closed to group
    /// and others (files the daemon itself wrote to its runtime directory).
    pub owned: bool,
}

/// A file as read: its bytes (zeroed when dropped) and its metadata at the
/// time of the read.
pub struct ReadFile {
    pub bytes: Zeroizing<Vec<u8>>,
    pub meta: fs::Metadata,
    /// The file as opened, for questions about its file system.
    pub(crate) handle: File,
}

/// Shows the size only: the bytes may be secrets.
impl std::fmt::Debug for ReadFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReadFile({} bytes)", self.bytes.len())
    }
}

/// Reads a regular file, within the rules; `Ok(None)` when it does not
/// exist. Opened non-blocking, so a FIFO in its place is refused, not
/// waited on; the bytes are zeroed when dropped.
pub fn read(path: &Path, rules: ReadRules) -> Result<Option<ReadFile>> {
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if !rules.follow {
        flags |= libc::O_NOFOLLOW;
    }
    let mut file = match OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) && !rules.follow => {
            return Err(PrivateFileError::Unsafe {
                path: path.to_path_buf(),
                problem: "is a symbolic link".into(),
                fix: "remove it: the daemon writes this file itself and never follows a link here"
                    .into(),
            });
        }
        Err(e) => return Err(PrivateFileError::io(path, "opening", e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| PrivateFileError::io(path, "checking", e))?;
    if !meta.is_file() {
        return Err(PrivateFileError::NotAFile {
            path: path.to_path_buf(),
            what: kind_of(&meta),
        });
    }
    if rules.owned {
        check_owned(path, &meta)?;
    }
    if meta.len() > rules.limit {
        return Err(PrivateFileError::TooLarge {
            path: path.to_path_buf(),
            limit: rules.limit,
            size: meta.len(),
        });
    }
    // Straight from the file into the buffer (std reads a `File` into
    // uninitialised capacity sized from the file: no pass over the buffer
    // before the read, which a limiting adapter costs on megabytes). A
    // file that grew past the limit meanwhile is refused below.
    let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
    file.read_to_end(&mut bytes)
        .map_err(|e| PrivateFileError::io(path, "reading", e))?;
    if bytes.len() as u64 > rules.limit {
        return Err(PrivateFileError::TooLarge {
            path: path.to_path_buf(),
            limit: rules.limit,
            size: bytes.len() as u64,
        });
    }
    Ok(Some(ReadFile {
        bytes,
        meta,
        handle: file,
    }))
}

fn check_owned(path: &Path, meta: &fs::Metadata) -> Result<()> {
    let uid = effective_uid();
    if meta.uid() != uid {
        return Err(PrivateFileError::Unsafe {
            path: path.to_path_buf(),
            problem: format!(
                "belongs to uid {}, not to this user (uid {uid})",
                meta.uid()
            ),
            fix: "remove it; the daemon writes its own".into(),
        });
    }
    if meta.mode() & 0o077 != 0 {
        return Err(PrivateFileError::Unsafe {
            path: path.to_path_buf(),
            problem: format!("is open to other users (mode {:04o})", meta.mode() & 0o7777),
            fix: "remove it; the daemon writes its own with mode 0600".into(),
        });
    }
    Ok(())
}

/// A new version of `target` being written: a temporary file (mode 0600
/// from its creation) in the same directory, renamed over `target` by
/// [`Replacement::commit`], or removed when dropped.
pub(crate) struct Replacement {
    temp: NamedTempFile,
    target: PathBuf,
}

impl Replacement {
    /// Writes `bytes` to a new temporary file next to `target` and syncs
    /// it to disk. `owner`: give it this owner and group (possible only for
    /// root; the daemon run as root keeps the user's file the user's).
    pub(crate) fn write(target: &Path, bytes: &[u8], owner: Option<(u32, u32)>) -> Result<Self> {
        Replacement::write_pieces(target, &[bytes], owner, None)
    }

    /// [`Replacement::write`] of the concatenation of `pieces` (which the
    /// caller need not put together in memory first).
    /// `shared_mode`: the permission bits to give it after the write,
    /// for a file that holds no secret and that others may read (the AWS
    /// config file keeps the mode its owner gave it).
    pub(crate) fn write_pieces<P: AsRef<[u8]>>(
        target: &Path,
        pieces: &[P],
        owner: Option<(u32, u32)>,
        shared_mode: Option<u32>,
    ) -> Result<Self> {
        let dir = parent_dir(target);
        let name = target
            .file_name()
            .unwrap_or(OsStr::new("file"))
            .to_string_lossy();
        let mut temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .rand_bytes(TEMP_RANDOM_CHARS)
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(|e| PrivateFileError::io(target, "creating a temporary file for", e))?;
        let io = |e| PrivateFileError::io(target, "writing a temporary file for", e);
        if let Some((uid, gid)) = owner {
            let meta = temp.as_file().metadata().map_err(io)?;
            if (meta.uid(), meta.gid()) != (uid, gid) {
                // Only root may give a file away; otherwise it is ours anyway.
                let _ = std::os::unix::fs::fchown(temp.as_file(), Some(uid), Some(gid));
            }
        }
        for piece in pieces {
            temp.as_file_mut().write_all(piece.as_ref()).map_err(io)?;
        }
        if let Some(mode) = shared_mode {
            temp.as_file()
                .set_permissions(fs::Permissions::from_mode(mode & 0o777))
                .map_err(io)?;
        }
        temp.as_file().sync_all().map_err(io)?;
        Ok(Replacement {
            temp,
            target: target.to_path_buf(),
        })
    }

    /// Renames the new version over `path` (normally the target) and syncs
    /// the directory, so that the rename survives a power cut.
    pub(crate) fn commit_to(self, path: &Path) -> Result<()> {
        self.temp
            .persist(path)
            .map_err(|e| PrivateFileError::io(path, "renaming the new file into place", e.error))?;
        sync_dir(parent_dir(path))
    }

    pub(crate) fn commit(self) -> Result<()> {
        let target = self.target.clone();
        self.commit_to(&target)
    }

    /// Puts the new version in place in one step and hands back the file
    /// it replaced, still reachable: on Linux the two are exchanged
    /// (`renameat2(RENAME_EXCHANGE)`), so the replaced file, whichever it
    /// was, moves to the temporary file's name and stays open for the
    /// caller to check, keep (as a backup, without copying it) or remove.
    /// Where the file system cannot exchange, it falls back to a rename,
    /// with the old file as opened just before it. The directory is not
    /// synced: call [`sync_dir`] when done.
    ///
    /// [`Swapped::Raced`]: the target did not exist, and someone created
    /// it meanwhile; nothing was changed.
    pub(crate) fn swap(self) -> Result<(Swapped, fs::Metadata)> {
        let target = self.target;
        let (file, temp_path) = self.temp.into_parts();
        let swapped = swap_paths(&temp_path, &target)?;
        let swapped = match swapped {
            SwapResult::Exchanged => {
                let old = open_read_only(&temp_path)
                    .map_err(|e| PrivateFileError::io(&target, "opening the replaced", e))?;
                Swapped::Replaced {
                    old: Some(temp_path),
                    file: old,
                }
            }
            SwapResult::Created => {
                // Renamed away: nothing left to remove.
                let _ = temp_path.keep();
                Swapped::Created
            }
            SwapResult::Exists => {
                return Ok((
                    Swapped::Raced,
                    file.metadata().map_err(|e| {
                        PrivateFileError::io(&target, "checking the new version of", e)
                    })?,
                ));
            }
            SwapResult::Unsupported => {
                // Open the old file first, then rename over it.
                let old = open_read_only(&target).ok();
                fs::rename(&temp_path, &target).map_err(|e| {
                    PrivateFileError::io(&target, "renaming the new file into place", e)
                })?;
                let _ = temp_path.keep();
                match old {
                    Some(old) => Swapped::Replaced {
                        old: None,
                        file: old,
                    },
                    None => Swapped::Created,
                }
            }
        };
        let meta = file
            .metadata()
            .map_err(|e| PrivateFileError::io(&target, "checking the new version of", e))?;
        Ok((swapped, meta))
    }
}

/// What [`Replacement::swap`] did.
pub(crate) enum Swapped {
    /// The new version is in place; `file` is the one it replaced, open for
    /// reading, and `old` where that file now is (a temporary name, removed
    /// when dropped unless persisted; `None` after the fallback rename,
    /// which unlinked it).
    Replaced {
        old: Option<tempfile::TempPath>,
        file: File,
    },
    /// There was no file: the new version is in place.
    Created,
    /// There was no file, and someone else created one meanwhile: the new
    /// version was not put in place (and its temporary file is gone).
    Raced,
}

enum SwapResult {
    Exchanged,
    Created,
    Exists,
    Unsupported,
}

fn open_read_only(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
}

#[cfg(target_os = "linux")]
fn renameat2(from: &Path, to: &Path, flags: rustix::fs::RenameFlags) -> io::Result<()> {
    rustix::fs::renameat_with(rustix::fs::CWD, from, rustix::fs::CWD, to, flags)
        .map_err(io::Error::from)
}

/// Exchanges `temp` and `target`, or moves `temp` to a missing `target`
/// without replacing one created meanwhile.
fn swap_paths(temp: &Path, target: &Path) -> Result<SwapResult> {
    #[cfg(target_os = "linux")]
    {
        let unsupported = |e: &io::Error| {
            matches!(
                e.raw_os_error(),
                Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP | libc::EPERM)
            )
        };
        match renameat2(temp, target, rustix::fs::RenameFlags::EXCHANGE) {
            Ok(()) => return Ok(SwapResult::Exchanged),
            Err(e) if e.kind() == io::ErrorKind::NotFound && temp.exists() => {
                return match renameat2(temp, target, rustix::fs::RenameFlags::NOREPLACE) {
                    Ok(()) => Ok(SwapResult::Created),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(SwapResult::Exists),
                    Err(e) if unsupported(&e) => Ok(SwapResult::Unsupported),
                    Err(e) => Err(PrivateFileError::io(
                        target,
                        "renaming the new file into place",
                        e,
                    )),
                };
            }
            Err(e) if unsupported(&e) => {}
            Err(e) => {
                return Err(PrivateFileError::io(
                    target,
                    "swapping the new file into place",
                    e,
                ));
            }
        }
    }
    let _ = temp;
    let _ = target;
    Ok(SwapResult::Unsupported)
}

/// Whether a file may still change under a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writers {
    /// No process has the file open for writing: what it holds now is
    /// final (unless someone opens it again, by a name).
    None,
    /// Someone held it open for writing until the time limit.
    Busy,
    /// The system cannot tell (no leases on this file system, or not our
    /// file).
    Unknown,
}

/// `fcntl`'s `F_SETSIG` (the same number on every Linux architecture; the
/// libc crate does not export it for glibc targets).
#[cfg(target_os = "linux")]
const F_SETSIG: libc::c_int = 10;

/// Waits, up to `limit`, until no process has `file` open for writing.
///
/// Linux grants a read lease (`F_SETLEASE`, `F_RDLCK`) only while no one
/// has the file open for writing, so a granted lease, given back at once,
/// says exactly that. A program that opened the file just before it was
/// replaced (the AWS CLI's `aws configure set` opens, then writes) may not
/// have written yet: this waits for it to finish. `file` must be open
/// read-only. While the lease is held (microseconds), a process opening
/// the file for writing would make the kernel signal us (`SIGIO`, which
/// ends a process by default): the signal is made `SIGURG`, which is
/// ignored by default.
pub(crate) fn wait_for_writers(file: &File, limit: std::time::Duration) -> Writers {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        // SAFETY: fcntl on a descriptor we own, with integer arguments.
        if unsafe { libc::fcntl(fd, F_SETSIG, libc::SIGURG) } != 0 {
            return Writers::Unknown;
        }
        let started = std::time::Instant::now();
        loop {
            // SAFETY: as above.
            if unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) } == 0 {
                // SAFETY: as above.
                unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK) };
                return Writers::None;
            }
            if io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN) {
                return Writers::Unknown;
            }
            if started.elapsed() >= limit {
                return Writers::Busy;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, limit);
        Writers::Unknown
    }
}

/// chmod 0600 on the regular file at `path` (a link is followed: the
/// credentials file may be a dotfile manager's link), through a descriptor,
/// when `same(metadata)` says it is the file the caller read, it belongs to
/// the effective user and group or others have any access. Opened
/// non-blocking (a FIFO put there does not hang us) and with `O_NOFOLLOW`
/// on `target`, the link's resolved end: the file checked is the file
/// changed, whatever is renamed into place meanwhile. `Ok(false)`: nothing
/// to do, or not ours.
pub(crate) fn make_private(target: &Path, same: impl Fn(&fs::Metadata) -> bool) -> Result<bool> {
    let file = match open_read_only(target) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(PrivateFileError::io(target, "opening", e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| PrivateFileError::io(target, "checking", e))?;
    let loose = meta.mode() & 0o077 != 0;
    if !meta.is_file() || !loose || meta.uid() != effective_uid() || !same(&meta) {
        return Ok(false);
    }
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| PrivateFileError::io(target, "setting mode 0600 on", e))?;
    Ok(true)
}

/// A regular file opened for writing without following a link and
/// without blocking (for [`overwrite_with_zeros`]).
pub(crate) fn open_for_wipe(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    Ok(file)
}

/// Writes zeros over the whole length of `file` in place and syncs it: the
/// blocks of an old version about to be unlinked no longer hold its
/// secrets. `file` may be open read-only (the replaced file of a swap):
/// it is opened again for writing through `/proc/self/fd`, which reaches
/// the same inode even after it was renamed or unlinked.
pub(crate) fn overwrite_with_zeros(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    let writable = OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    let len = writable.metadata()?.len();
    let zeros = [0u8; 64 * 1024];
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(zeros.len() as u64) as usize;
        writable.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    writable.sync_all()
}

/// Writes `bytes` to `path` atomically, mode 0600. The caller holds the
/// lock that guards `path`; temporary files of `path` found now were left
/// by a process killed while writing, and are removed first.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    remove_orphans(path);
    Replacement::write(path, bytes, None)?.commit()
}

/// Syncs a directory: makes a rename in it durable. Some file systems
/// cannot sync a directory; the rename is done all the same.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(()),
        other => other.map_err(|e| PrivateFileError::io(dir, "syncing the directory", e)),
    }
}

/// The directory a file lives in (`.` for a bare name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// `path` with `suffix` appended to its file name: `credentials` →
/// `credentials.lock`, `credentials.1`.
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .unwrap_or(OsStr::new("file"))
        .to_os_string();
    name.push(suffix);
    parent_dir(path).join(name)
}

/// Whether `name` is a temporary file of a writer of `target_name`:
/// `.{target_name}.` + six letters or digits + `.tmp`. (A backup's,
/// `.credentials.1.XXXXXX.tmp`, has a longer middle and is not one of
/// `credentials`'s.)
pub(crate) fn is_temp_file_of(name: &OsStr, target_name: &OsStr) -> bool {
    let (Some(name), Some(target_name)) = (name.to_str(), target_name.to_str()) else {
        return false;
    };
    name.strip_prefix('.')
        .and_then(|rest| rest.strip_prefix(target_name))
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_suffix(".tmp"))
        .is_some_and(|random| {
            random.len() == TEMP_RANDOM_CHARS && random.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// Temporary files of `target`'s writers now in its directory (plain files
/// only: never a link or a directory).
pub(crate) fn orphans(target: &Path) -> Vec<PathBuf> {
    let Some(target_name) = target.file_name() else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir(parent_dir(target)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| is_temp_file_of(&entry.file_name(), target_name))
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .map(|entry| entry.path())
        .collect()
}

/// Removes the temporary files of `target`'s writers. Only under the lock:
/// every writer creates and renames or removes its temporary files while it
/// holds the lock, so whatever is found now belongs to a writer that died.
/// Best effort: a file that cannot be removed is left (and logged).
pub(crate) fn remove_orphans(target: &Path) {
    for path in orphans(target) {
        match fs::remove_file(&path) {
            Ok(()) => tracing::info!(
                "removed {}, left behind by a write that was interrupted",
                path.display()
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("cannot remove {}: {e}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: ReadRules = ReadRules {
        limit: 16,
        follow: false,
        owned: true,
    };

    #[test]
    fn a_write_is_private_and_cleans_up_after_a_killed_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let orphan = dir.path().join(".state.json.Ab12Cd.tmp");
        let other = dir.path().join(".other.json.Ab12Cd.tmp");
        fs::write(&orphan, "secret").unwrap();
        fs::write(&other, "x").unwrap();
        write(&path, b"{}").unwrap();
        assert!(!orphan.exists());
        assert!(other.exists(), "another file's temp is left alone");
        assert_eq!(fs::read(&path).unwrap(), b"{}");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn reads_refuse_links_fifos_large_and_loose_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert!(read(&path, RULES).unwrap().is_none(), "missing is None");
        write(&path, b"0123456789").unwrap();
        assert_eq!(&*read(&path, RULES).unwrap().unwrap().bytes, b"0123456789");

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let err = read(&link, RULES).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let followed = ReadRules {
            follow: true,
            ..RULES
        };
        assert!(read(&link, followed).unwrap().is_some());

        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read(&fifo, RULES).unwrap_err();
        assert!(matches!(err, PrivateFileError::NotAFile { .. }), "{err}");

        let err = read(Path::new("/dev/zero"), followed).unwrap_err();
        assert!(matches!(err, PrivateFileError::NotAFile { .. }), "{err}");

        write(&path, &[b'x'; 17]).unwrap();
        let err = read(&path, RULES).unwrap_err();
        assert!(matches!(err, PrivateFileError::TooLarge { .. }), "{err}");

        write(&path, b"x").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read(&path, RULES).unwrap_err();
        assert!(err.to_string().contains("open to other users"), "{err}");
    }

    #[test]
    fn a_private_dir_is_created_tightened_and_a_link_refused() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private");
        ensure_private_dir(&private).unwrap();
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&private), 0o700);
        fs::set_permissions(&private, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&private).unwrap();
        assert_eq!(mode(&private), 0o700);

        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o755)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        let err = ensure_private_dir(&link).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(mode(&elsewhere), 0o755, "the link's target is untouched");

        let err = ensure_private_dir(&dir.path().join("missing/private")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[test]
    fn a_lock_is_exclusive_and_never_follows_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = lock(&path).unwrap();
        assert!(try_lock(&path).unwrap().is_none());
        drop(held);
        assert!(try_lock(&path).unwrap().is_some());

        let planted = dir.path().join("planted.lock");
        let victim = dir.path().join("victim");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let err = lock(&planted).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(!victim.exists(), "nothing created through the link");
    }

    #[test]
    fn temp_file_names_are_recognised_exactly() {
        let name = OsStr::new("credentials");
        assert!(is_temp_file_of(OsStr::new(".credentials.aB3xY9.tmp"), name));
        for other in [
            ".credentials.1.aB3xY9.tmp",
            ".credentials.aB3xY.tmp",
            ".credentials.aB3x-9.tmp",
            "credentials.aB3xY9.tmp",
        ] {
            assert!(!is_temp_file_of(OsStr::new(other), name), "{other}");
        }
    }
}
