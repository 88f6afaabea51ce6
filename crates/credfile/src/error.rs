//! Errors of the credentials editor: one struct that carries the context
//! (file, line, section) once, and an [`ErrorKind`] that says what is wrong.
//! Each message names the file (and line), the problem and the fix.
//!
//! No message and no `Debug` output contains a value from the file: errors
//! hold section names, key names, line numbers and paths, never line contents.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::sdk::FileKind;

/// The credentials file as an error shows it: the path the user gave and,
/// when that is a symlink, the file it points at. Errors raised by
/// [`Document`](crate::Document), which knows no path, show "the
/// credentials file" until the file fills it in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FileName {
    /// Boxed: every error carries a file name, and errors travel in
    /// `Result`s that should stay small.
    known: Option<Box<KnownFile>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct KnownFile {
    path: PathBuf,
    target: Option<PathBuf>,
    /// The credentials file or the config file: how the SDKs read headers,
    /// and which options name the file in advice.
    kind: FileKind,
}

impl FileName {
    pub(crate) fn new(path: &Path, target: &Path, kind: FileKind) -> Self {
        FileName {
            known: Some(Box::new(KnownFile {
                path: path.to_path_buf(),
                target: (target != path).then(|| target.to_path_buf()),
                kind,
            })),
        }
    }

    pub(crate) fn kind(&self) -> FileKind {
        self.known.as_ref().map(|k| k.kind).unwrap_or_default()
    }

    /// The path as the user gave it, when known.
    pub(crate) fn path(&self) -> Option<&Path> {
        self.known.as_ref().map(|k| k.path.as_path())
    }

    fn is_unknown(&self) -> bool {
        self.known.is_none()
    }

    /// The options that choose this file, for advice: "point … at a file".
    fn options(&self) -> &'static str {
        match self.kind() {
            FileKind::Credentials => "--credentials-file / AWS_SHARED_CREDENTIALS_FILE",
            FileKind::Config => "AWS_CONFIG_FILE",
        }
    }

    /// What the file is, for advice: (with "a", with "the").
    fn what(&self) -> (&'static str, &'static str) {
        match self.kind() {
            FileKind::Credentials => ("a credentials file", "the credentials file"),
            FileKind::Config => ("an AWS config file", "the AWS config file"),
        }
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.known {
            None => f.write_str("the credentials file"),
            Some(known) => match &known.target {
                None => write!(f, "{}", known.path.display()),
                Some(target) => {
                    write!(
                        f,
                        "{} (a link to {})",
                        known.path.display(),
                        target.display()
                    )
                }
            },
        }
    }
}

/// Why the editor refused a file or an edit, or could not read or write
/// the file. The file, line and section it is about are the error's own
/// ([`CredentialsError::line`], [`CredentialsError::section`]); the kind
/// holds only what is particular to it.
#[derive(Debug)]
pub struct CredentialsError {
    file: FileName,
    /// 1-based.
    line: Option<usize>,
    section: Option<String>,
    kind: ErrorKind,
    source: Option<io::Error>,
}

/// What went wrong. `Debug` names keys and sections, never values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A section that appears again (botocore: `DuplicateSectionError`).
    DuplicateSection {
        first_line: usize,
    },
    /// A key that appears again in a section (`DuplicateOptionError`).
    DuplicateKey {
        key: String,
        first_line: usize,
    },
    /// `[ prod ]`: botocore's section is " prod ", the SDKs' is "prod";
    /// with a `[prod]` as well, the SDKs merge the two in an unspecified
    /// order.
    AmbiguousSection {
        header: String,
    },
    /// Rewriting an indented key at column 0 would turn the indented lines
    /// after it into continuation lines of its value.
    IndentedLine {
        key: String,
    },
    /// The check after every edit: both readers must read exactly what was
    /// written. This fires only for files that are already odd in a way
    /// the specific checks do not name (bare CR line endings, say).
    ReadersDisagree {
        key: String,
        detail: &'static str,
    },
    InvalidSection {
        reason: &'static str,
    },
    InvalidKey {
        key: String,
    },
    InvalidValue {
        key: String,
        reason: &'static str,
    },
    /// A line that makes botocore refuse the whole file.
    UnreadableLine {
        what: &'static str,
    },
    /// botocore's `_parse_nested`: the indented lines under `key =` are
    /// nested settings, each `name = value`.
    NestedValue {
        key: String,
    },
    NotUtf8,
    TooLarge {
        size: u64,
        limit: u64,
    },
    NotAFile {
        what: &'static str,
    },
    ReadOnly {
        why: String,
        fix: &'static str,
    },
    PermissionDenied {
        action: &'static str,
    },
    /// A lock file that is a symlink, and the like: not safe to use.
    Unsafe {
        detail: String,
    },
    Io {
        action: &'static str,
    },
    ChangedDuringUpdate {
        lock: String,
    },
    NoHome,
}

const OWN_FILE: &str = "The daemon rewrites this file and needs to own it";

impl CredentialsError {
    pub(crate) fn new(file: &FileName, kind: ErrorKind) -> Self {
        CredentialsError {
            file: file.clone(),
            line: None,
            section: None,
            kind,
            source: None,
        }
    }

    /// An error about no file yet (a [`Document`](crate::Document) knows
    /// none, and an edit is refused before any file is read).
    pub(crate) fn of(kind: ErrorKind) -> Self {
        CredentialsError::new(&FileName::default(), kind)
    }

    pub(crate) fn at_line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    pub(crate) fn in_section(mut self, section: &str) -> Self {
        self.section = Some(section.to_string());
        self
    }

    fn with_source(mut self, source: io::Error) -> Self {
        self.source = Some(source);
        self
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Fills in the file name of an error raised without one.
    pub(crate) fn in_file(mut self, name: &FileName) -> Self {
        if self.file.is_unknown() {
            self.file = name.clone();
        }
        self
    }

    /// The one section (profile) the error is about, when the rest of the
    /// file could be written: an edit refused for this section only.
    pub fn section(&self) -> Option<&str> {
        use ErrorKind::*;
        match self.kind {
            DuplicateSection { .. }
            | DuplicateKey { .. }
            | AmbiguousSection { .. }
            | IndentedLine { .. }
            | ReadersDisagree { .. }
            | InvalidSection { .. }
            | InvalidValue { .. } => self.section.as_deref(),
            _ => None,
        }
    }

    /// The 1-based line the error points at, if any.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// Whether the error may pass by itself (a failed write, another
    /// program writing meanwhile) rather than need the user to act.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Io { .. } | ErrorKind::ChangedDuringUpdate { .. }
        )
    }

    /// The same error about a part of a file that starts `by` lines into
    /// it: its line numbers moved to the file's.
    pub(crate) fn shifted(mut self, by: usize) -> Self {
        if let Some(line) = &mut self.line {
            *line += by;
        }
        if let ErrorKind::DuplicateSection { first_line }
        | ErrorKind::DuplicateKey { first_line, .. } = &mut self.kind
        {
            *first_line += by;
        }
        self
    }

    /// Sorts an I/O error: permission problems and read-only file systems
    /// need the user, everything else (EAGAIN, EIO, ENOSPC…) may pass.
    pub(crate) fn io(file: &FileName, action: &'static str, source: io::Error) -> Self {
        let kind = match source.kind() {
            io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied { action },
            io::ErrorKind::ReadOnlyFilesystem => {
                return CredentialsError::new(
                    file,
                    ErrorKind::ReadOnly {
                        why: format!("is on a read-only file system ({action} failed)"),
                        fix: "move it to a writable file system",
                    },
                );
            }
            _ => ErrorKind::Io { action },
        };
        CredentialsError::new(file, kind).with_source(source)
    }
}

impl std::error::Error for CredentialsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorKind::*;
        let file = &self.file;
        let section = self.section.as_deref().unwrap_or_default();
        let line = self.line.unwrap_or_default();
        let options = file.options();
        match &self.kind {
            DuplicateSection { first_line } => write!(
                f,
                "{file} line {line}: section [{section}] appears again (first at line \
                 {first_line}); the AWS CLI cannot parse a file with duplicate sections. Merge or \
                 remove one of them."
            ),
            DuplicateKey { key, first_line } => write!(
                f,
                "{file} line {line}: key `{key}` appears again in section [{section}] (first at \
                 line {first_line}); the AWS CLI cannot parse a file with a duplicate key. Remove \
                 one of them."
            ),
            AmbiguousSection { header } => write!(
                f,
                "{file} line {line}: the header [{header}] is section [{section}] for the AWS SDKs \
                 but a different section for the AWS CLI, which keeps the spaces. Remove the \
                 spaces inside the brackets (and merge it with any other [{section}])."
            ),
            IndentedLine { key } => write!(
                f,
                "{file} line {line}: an indented line follows `{key}` in section [{section}]; the \
                 AWS SDKs (and the AWS CLI, once `{key}` is written without indentation) read an \
                 indented line as part of the value above it. Remove the indentation of the lines \
                 in [{section}]."
            ),
            ReadersDisagree { key, detail } => write!(
                f,
                "{file}: after writing `{key}` into section [{section}], the AWS CLI and the AWS \
                 SDKs would read it differently ({detail}). The file was not changed; look for \
                 indented lines, bare CR line endings or unusual headers in [{section}] and fix \
                 them by hand."
            ),
            InvalidSection { reason } => write!(
                f,
                "section name `{section}` cannot be written to the credentials file: {reason}. \
                 Use a profile name of letters, digits and _ - / . % @ : +"
            ),
            InvalidKey { key } => write!(
                f,
                "key `{key}` cannot be written to the credentials file: keys the daemon writes \
                 must be lowercase letters, digits and `_`"
            ),
            InvalidValue { key, reason } => write!(
                f,
                "the value for `{key}` in section [{section}] cannot be written to the \
                 credentials file: it {reason} (the AWS CLI and the AWS SDKs would read it \
                 differently)"
            ),
            UnreadableLine { what } => write!(
                f,
                "{file} line {line}: {what}; the AWS CLI cannot parse a file with such a line \
                 (\"Unable to parse config file\"). Put it under a [section] header, make it a \
                 comment (#), or remove it."
            ),
            NestedValue { key } => write!(
                f,
                "{file} line {line}: an indented line under `{key} =` in section [{section}] has \
                 no `=`; the AWS CLI reads the indented lines under an empty value as nested \
                 `name = value` settings and cannot parse a file with such a line (\"Unable to \
                 parse config file\"). Write it as `name = value`, or give `{key}` a value on its \
                 own line and remove the indentation."
            ),
            NotUtf8 => write!(
                f,
                "{file} line {line}: the file is not valid UTF-8, and the AWS CLI reads it as \
                 UTF-8. Re-save it as UTF-8 (for example with `iconv -f latin1 -t utf-8`)."
            ),
            TooLarge { size, limit } => write!(
                f,
                "{file} is {size} bytes, more than the {limit} bytes {} can sensibly be; check \
                 that {options} names {}",
                file.what().0,
                file.what().1
            ),
            NotAFile { what } => write!(
                f,
                "{file} is {what}, not a regular file; point {options} at {}",
                file.what().1
            ),
            ReadOnly { why, fix } => write!(
                f,
                "{file} {why}. {OWN_FILE}: {fix}, or point {options} at a file the daemon may \
                 write."
            ),
            PermissionDenied { action } => write!(
                f,
                "{file}: permission denied while {action}. Run the daemon as the user who owns \
                 the file and its directory: it replaces the file through a temporary file and a \
                 lock file in that directory (the file itself should have mode 0600)."
            ),
            Unsafe { detail } => write!(f, "{file}: {detail}"),
            Io { action } => match &self.source {
                Some(source) => write!(f, "{file}: {action} failed: {source}"),
                None => write!(f, "{file}: {action} failed"),
            },
            ChangedDuringUpdate { lock } => write!(
                f,
                "{file} kept changing while the daemon was updating it (another program writes \
                 it without taking {lock}); will try again"
            ),
            NoHome => f.write_str(
                "cannot locate the credentials file: neither --credentials-file, \
                 AWS_SHARED_CREDENTIALS_FILE nor HOME is set",
            ),
        }
    }
}

/// A file botocore reads but the AWS SDKs that follow the shared
/// profile-file format refuse: the daemon writes into it and warns once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkProblem {
    file: FileName,
    line: usize,
    what: &'static str,
    fix: &'static str,
}

impl SdkProblem {
    pub(crate) fn new(file: FileName, line: usize, what: &'static str, fix: &'static str) -> Self {
        SdkProblem {
            file,
            line,
            what,
            fix,
        }
    }

    /// The 1-based line the SDKs stop at.
    pub fn line(&self) -> usize {
        self.line
    }
}

impl fmt::Display for SdkProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} line {}: {}; the AWS SDKs that follow the shared profile-file format (such as the \
             AWS SDK for Rust) stop at this line and read no profile from the file, although the \
             AWS CLI and boto3 read it. {}",
            self.file, self.line, self.what, self.fix
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(path: &str, target: &str) -> FileName {
        FileName::new(Path::new(path), Path::new(target), FileKind::Credentials)
    }

    #[test]
    fn messages_name_file_line_problem_and_fix() {
        let err = CredentialsError::of(ErrorKind::DuplicateSection { first_line: 3 })
            .at_line(14)
            .in_section("prod")
            .in_file(&credentials(
                "/home/u/.aws/credentials",
                "/home/u/.aws/credentials",
            ));
        assert_eq!(
            err.to_string(),
            "/home/u/.aws/credentials line 14: section [prod] appears again (first at line 3); \
             the AWS CLI cannot parse a file with duplicate sections. Merge or remove one of them."
        );
        assert_eq!(err.line(), Some(14));
        assert_eq!(err.section(), Some("prod"));
        assert!(!err.is_transient());
        let shifted = err.shifted(10);
        assert_eq!(shifted.line(), Some(24));
        assert_eq!(
            shifted.kind(),
            &ErrorKind::DuplicateSection { first_line: 13 }
        );
    }

    #[test]
    fn a_symlinked_file_names_its_target() {
        let name = credentials("/home/u/.aws/credentials", "/nix/store/abc-credentials");
        assert_eq!(
            name.to_string(),
            "/home/u/.aws/credentials (a link to /nix/store/abc-credentials)"
        );
    }

    #[test]
    fn advice_names_the_options_of_the_kind_of_file() {
        let config = FileName::new(
            Path::new("/home/u/.aws/config"),
            Path::new("/home/u/.aws/config"),
            FileKind::Config,
        );
        let err = CredentialsError::new(
            &config,
            ErrorKind::NotAFile {
                what: "a directory",
            },
        );
        let text = err.to_string();
        assert!(text.contains("AWS_CONFIG_FILE"), "{text}");
        assert!(!text.contains("credentials"), "{text}");
        let err = CredentialsError::new(
            &credentials("/c", "/c"),
            ErrorKind::NotAFile {
                what: "a directory",
            },
        );
        assert!(err.to_string().contains("--credentials-file"), "{err}");
    }

    #[test]
    fn io_errors_are_classified_by_kind() {
        let file = FileName::default();
        let passing = CredentialsError::io(&file, "write", io::Error::from_raw_os_error(5));
        assert!(passing.is_transient());
        let again = CredentialsError::io(&file, "write", io::Error::from_raw_os_error(11));
        assert!(again.is_transient());
        let denied = CredentialsError::io(
            &file,
            "write",
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert!(matches!(denied.kind(), ErrorKind::PermissionDenied { .. }));
        assert!(!denied.is_transient());
        let rofs = CredentialsError::io(&file, "write", io::Error::from_raw_os_error(30));
        assert!(
            matches!(rofs.kind(), ErrorKind::ReadOnly { .. }),
            "{rofs:?}"
        );
        assert!(!rofs.is_transient());
    }
}
