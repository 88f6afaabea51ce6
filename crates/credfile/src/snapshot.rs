//! One read of the file: its document, the metadata that tells this
//! version from any later one without reading it again (the stamp), and a
//! hash of its bytes. The caller keeps the last [`Snapshot`] and hands it
//! back to [`CredentialsFile::update_from`](crate::CredentialsFile::update_from),
//! which then need not read the file again while the stamp proves it
//! unchanged.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use zeroize::Zeroizing;

use crate::document::Document;
use crate::error::{CredentialsError, ErrorKind, FileName};
use crate::file::{MAX_SIZE, file_error};
use crate::parse::split_lines;
use crate::private::{self, ReadRules};
use crate::wipe::SecretText;

/// A file that is empty, or shorter than this process last saw it, may be
/// one that a writer has truncated and not yet written again (`aws
/// configure set` writes in place: `O_TRUNC`, then the new text). It is
/// read again after this pause, until three reads in a row agree...
pub(crate) const SETTLE_PAUSE: Duration = Duration::from_millis(5);
/// ... at most this many times.
pub(crate) const SETTLE_READS: usize = 10;

/// A file last modified longer than this before it was read cannot have
/// been written since without its modification time changing: a write
/// sets it from the kernel's coarse clock, which lags the real time by a
/// clock tick at most, and the file system keeps it to the nanosecond.
/// This is the margin where that is not known: FAT keeps 2 s, ext4 with
/// small inodes and HFS+ keep 1 s, and a network file system's server has
/// its own clock.
const MTIME_MARGIN: Duration = Duration::from_secs(3);

/// The margin on a local file system that keeps nanoseconds (ext4, XFS,
/// Btrfs, tmpfs, F2FS, bcachefs) for a file whose modification time has a
/// fraction of a second (ext4 with 128-byte inodes keeps whole seconds: a
/// time that falls on a whole second gets the long margin, by chance once
/// in a few hundred writes). The coarse clock's tick is 10 ms at most
/// (HZ=100); five ticks leave room for a clock that is read late.
const FINE_MTIME_MARGIN: Duration = Duration::from_millis(50);

/// `statfs` magic numbers of the file systems named above
/// (linux/magic.h).
const FINE_FILE_SYSTEMS: [u64; 6] = [
    0xEF53,      // ext2/3/4
    0x5846_5342, // XFS
    0x9123_683E, // Btrfs
    0x0102_1994, // tmpfs
    0xF2F5_2010, // F2FS
    0xCA45_1A4E, // bcachefs
];

/// The credentials file may be a dotfile manager's symlink; it need not be
/// private (the daemon warns of nothing here; the editor keeps its mode).
pub(crate) const READ_RULES: ReadRules = ReadRules {
    limit: MAX_SIZE,
    follow: true,
    owned: false,
};

/// A version of the file without its text: its metadata stamp and the hash
/// of its bytes ([`Snapshot::version`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    stamp: Option<Stamp>,
    hash: u64,
}

impl Version {
    /// The hash of the version's bytes.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    pub(crate) fn stamp(&self) -> Option<Stamp> {
        self.stamp
    }
}

/// One version of the file as read (or as written by
/// [`CredentialsFile::update_from`](crate::CredentialsFile::update_from)):
/// the document, the stamp of the file it came from and a hash of its
/// text. Cheap to clone (the document is shared).
#[derive(Clone, Debug)]
pub struct Snapshot {
    doc: Arc<Contents>,
    /// `None`: there was no file.
    stamp: Option<Stamp>,
    hash: u64,
    /// The clock just before the file was opened (or after it was written).
    read_at: SystemTime,
    /// How much older than `read_at` the modification time must be for the
    /// stamp alone to prove the file unchanged.
    margin: Duration,
}

/// The document of a snapshot, or (written by this process, until first
/// asked for) its text: the snapshot [`update_from`] hands back is parsed
/// when the caller asks for its document, by then without the snapshot it
/// started from, so that the two documents are not in memory at once.
///
/// [`update_from`]: crate::CredentialsFile::update_from
#[derive(Debug)]
struct Contents {
    doc: OnceLock<Document>,
    text: Mutex<Option<(SecretText, FileName)>>,
}

impl Snapshot {
    pub(crate) fn new(
        doc: Document,
        stamp: Option<Stamp>,
        read_at: SystemTime,
        margin: Duration,
    ) -> Self {
        let hash = content_hash(doc.text().as_bytes());
        Snapshot {
            doc: Arc::new(Contents {
                doc: OnceLock::from(doc),
                text: Mutex::new(None),
            }),
            stamp,
            hash,
            read_at,
            margin,
        }
    }

    pub fn document(&self) -> &Document {
        self.doc.doc.get_or_init(|| {
            let taken = self
                .doc
                .text
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take();
            match taken {
                Some((text, name)) => Document::from_string(text.into_inner()).in_file(name),
                None => Document::default(),
            }
        })
    }

    /// The document, without a copy when this is the only snapshot holding
    /// it.
    pub fn into_document(self) -> Document {
        match Arc::try_unwrap(self.doc) {
            Ok(contents) => {
                let text = contents
                    .text
                    .into_inner()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                match (contents.doc.into_inner(), text) {
                    (Some(doc), _) => doc,
                    (None, Some((text, name))) => {
                        Document::from_string(text.into_inner()).in_file(name)
                    }
                    (None, None) => Document::default(),
                }
            }
            Err(shared) => {
                let snapshot = Snapshot {
                    doc: shared,
                    ..self
                };
                snapshot.document().clone()
            }
        }
    }

    /// A hash of the file's bytes (XXH3-64): equal for equal texts.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// What tells this version of the file from others, without its text:
    /// for a caller that keeps watching the file between reads and must not
    /// keep the secrets in it in memory meanwhile.
    pub fn version(&self) -> Version {
        Version {
            stamp: self.stamp,
            hash: self.hash,
        }
    }

    /// Whether there was a file at all.
    pub fn exists(&self) -> bool {
        self.stamp.is_some()
    }

    /// The file's permission bits (`None` when there was no file).
    pub fn mode(&self) -> Option<u32> {
        self.stamp.map(|s| s.mode & 0o7777)
    }

    /// Whether group and others can neither read nor write it (true when
    /// there is no file).
    pub fn is_private(&self) -> bool {
        self.mode().is_none_or(|mode| mode & 0o077 == 0)
    }

    pub(crate) fn stamp(&self) -> Option<Stamp> {
        self.stamp
    }

    pub(crate) fn owner(&self) -> Option<(u32, u32)> {
        self.stamp.map(|s| (s.uid, s.gid))
    }

    /// The snapshot of a text this process just put in place, whose new
    /// file has `stamp`, parsed when first asked for. `margin`: the file
    /// system's, when known.
    pub(crate) fn written(
        text: SecretText,
        name: &FileName,
        stamp: Stamp,
        margin: Option<Duration>,
    ) -> Self {
        Snapshot {
            hash: content_hash(text.as_bytes()),
            doc: Arc::new(Contents {
                doc: OnceLock::new(),
                text: Mutex::new(Some((text, name.clone()))),
            }),
            stamp: Some(stamp),
            read_at: SystemTime::now(),
            margin: margin.unwrap_or(MTIME_MARGIN),
        }
    }

    pub(crate) fn margin(&self) -> Option<Duration> {
        self.stamp.is_some().then_some(self.margin)
    }

    /// Whether a file whose stamp is `now` is provably this version without
    /// reading it: the same stamp, and a write since would have changed
    /// it. A missing file is proved by still missing.
    pub(crate) fn proves_unchanged(&self, now: Option<Stamp>) -> bool {
        match (self.stamp, now) {
            (None, None) => true,
            (Some(stamp), Some(now)) => stamp == now && self.later_writes_show(),
            _ => false,
        }
    }

    /// Whether the file a swap replaced (its stamp `now`: its change time
    /// moved with the swap) is provably this version.
    pub(crate) fn proves_same_file(&self, now: &Stamp) -> bool {
        self.stamp
            .is_some_and(|stamp| stamp.same_version(now) && self.later_writes_show())
    }

    /// Whether any write after the read would have given the file another
    /// modification time. A write sets it from the kernel's clock, at the
    /// file system's granularity: the same time is possible only for a
    /// write within the same tick as the one that set it. Not so when the
    /// time lies the margin before the read, nor when the change time is
    /// later than it (a rename or chmod after the last write: every later
    /// write's time is at least the change time).
    fn later_writes_show(&self) -> bool {
        self.stamp.is_some_and(|stamp| {
            stamp.ctime > stamp.mtime || stamp.settled_before(self.read_at, self.margin)
        })
    }
}

/// What tells one version of the file from another without reading it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    mode: u32,
    uid: u32,
    gid: u32,
}

impl Stamp {
    pub(crate) fn of(meta: &Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
        }
    }

    /// Whether the same file: inode, size and modification time (a
    /// replaced file has moved, so its change time differs).
    pub(crate) fn same_version(&self, other: &Stamp) -> bool {
        (self.dev, self.ino, self.len, self.mtime) == (other.dev, other.ino, other.len, other.mtime)
    }

    pub(crate) fn mode(&self) -> u32 {
        self.mode
    }

    /// Whether the modification time lies `margin` before `read_at`.
    pub(crate) fn settled_before(&self, read_at: SystemTime, margin: Duration) -> bool {
        let (secs, nanos) = self.mtime;
        if secs < 0 {
            return false;
        }
        let modified =
            SystemTime::UNIX_EPOCH + Duration::new(secs as u64, nanos.clamp(0, 999_999_999) as u32);
        read_at
            .checked_sub(margin)
            .is_some_and(|limit| modified < limit)
    }
}

/// The hash of the file's bytes.
fn content_hash(bytes: &[u8]) -> u64 {
    crate::hash(bytes)
}

/// How long before a read the file's modification time must lie for its
/// stamp to prove it unchanged: short on a local file system that keeps
/// nanoseconds, [`MTIME_MARGIN`] elsewhere.
pub(crate) fn margin_of(file: &File, meta: &Metadata) -> Duration {
    let fine = meta.mtime_nsec() != 0
        && rustix::fs::fstatfs(file)
            .is_ok_and(|fs| FINE_FILE_SYSTEMS.contains(&(fs.f_type as u64)));
    if fine {
        FINE_MTIME_MARGIN
    } else {
        MTIME_MARGIN
    }
}

pub(crate) fn current_stamp(
    name: &FileName,
    target: &Path,
) -> Result<Option<Stamp>, CredentialsError> {
    match std::fs::metadata(target) {
        Ok(meta) => Ok(Some(Stamp::of(&meta))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CredentialsError::io(name, "checking the file", e)),
    }
}

/// Reads the file; one that looks cut short (empty, or shorter than the
/// caller last saw it, `last_len`: a writer that truncates and rewrites in
/// place may be half-way) is read again after a pause, until three reads in
/// a row agree (or it is whole again). `why` says in the debug log why the
/// file is read.
pub(crate) fn load_settled(
    name: &FileName,
    target: &Path,
    last_len: &AtomicU64,
    why: &str,
) -> Result<Snapshot, CredentialsError> {
    let last = match last_len.load(Ordering::Relaxed) {
        u64::MAX => None,
        len => Some(len),
    };
    let read = || {
        let at = SystemTime::now();
        let file = private::read(target, READ_RULES).map_err(|e| file_error(name, "reading", e))?;
        if let Some(file) = &file {
            tracing::debug!(
                "read {} bytes of {} ({why})",
                file.bytes.len(),
                target.display()
            );
        }
        Ok::<_, CredentialsError>((file, at))
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
    drop(previous);
    let Some(mut file) = current else {
        return Ok(Snapshot::new(
            Document::default().in_file(name.clone()),
            None,
            read_at,
            MTIME_MARGIN,
        ));
    };
    last_len.store(file.bytes.len() as u64, Ordering::Relaxed);
    let stamp = Stamp::of(&file.meta);
    let margin = margin_of(&file.handle, &file.meta);
    let text = utf8(name, std::mem::take(&mut file.bytes))?;
    Ok(Snapshot::new(
        Document::from_string(text).in_file(name.clone()),
        Some(stamp),
        read_at,
        margin,
    ))
}

/// The bytes as text, without a copy; not UTF-8: the error names the line.
pub(crate) fn utf8(
    name: &FileName,
    mut bytes: Zeroizing<Vec<u8>>,
) -> Result<String, CredentialsError> {
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
            Err(CredentialsError::new(name, ErrorKind::NotUtf8).at_line(ended + 1))
        }
    }
}
