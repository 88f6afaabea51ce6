//! Errors of the credentials editor. Each names the file (and line), what is
//! wrong and the fix, and carries its retry class.
//!
//! No message and no `Debug` output contains a value from the file: errors
//! hold section names, key names, line numbers and paths, never line contents.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::retry::{Classified, RetryClass};

/// The credentials file as an error shows it: the path the user gave and,
/// when that is a symlink, the file it points at. Errors raised by
/// [`Document`](super::Document), which knows no path, show "the credentials
/// file" until [`CredentialsError::in_file`] fills it in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileName {
    /// Boxed: every error carries a file name, and errors travel in
    /// `Result`s that should stay small.
    known: Option<Box<KnownFile>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct KnownFile {
    path: PathBuf,
    target: Option<PathBuf>,
    /// The credentials file or the config file: how the SDKs read headers.
    kind: super::sdk::FileKind,
}

impl FileName {
    pub fn new(path: &Path, target: &Path) -> Self {
        FileName {
            known: Some(Box::new(KnownFile {
                path: path.to_path_buf(),
                target: (target != path).then(|| target.to_path_buf()),
                kind: super::sdk::FileKind::Credentials,
            })),
        }
    }

    /// The same file, of `kind`.
    pub(crate) fn with_kind(mut self, kind: super::sdk::FileKind) -> Self {
        if let Some(known) = &mut self.known {
            known.kind = kind;
        }
        self
    }

    pub(crate) fn kind(&self) -> super::sdk::FileKind {
        self.known.as_ref().map(|k| k.kind).unwrap_or_default()
    }

    pub fn path(&self) -> Option<&Path> {
        self.known.as_ref().map(|k| k.path.as_path())
    }

    fn is_unknown(&self) -> bool {
        self.known.is_none()
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

const OWN_FILE: &str = "The daemon rewrites this file and needs to own it";
const POINT_ELSEWHERE: &str =
    "or point --credentials-file / AWS_SHARED_CREDENTIALS_FILE at a file the daemon may write";

#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum CredentialsError {
    #[error(
        "{file} line {line}: section [{section}] appears again (first at line {first_line}); \
         the AWS CLI cannot parse a file with duplicate sections. Merge or remove one of them."
    )]
    DuplicateSection {
        file: FileName,
        section: String,
        line: usize,
        first_line: usize,
    },

    #[error(
        "{file} line {line}: key `{key}` appears again in section [{section}] (first at line \
         {first_line}); the AWS CLI cannot parse a file with a duplicate key. Remove one of them."
    )]
    DuplicateKey {
        file: FileName,
        section: String,
        key: String,
        line: usize,
        first_line: usize,
    },

    /// `[ prod ]`: botocore's section is " prod ", the SDKs' is "prod"; with
    /// a `[prod]` as well, the SDKs merge the two in an unspecified order.
    #[error(
        "{file} line {line}: the header [{header}] is section [{section}] for the AWS SDKs but a \
         different section for the AWS CLI, which keeps the spaces. Remove the spaces inside the \
         brackets (and merge it with any other [{section}])."
    )]
    AmbiguousSection {
        file: FileName,
        section: String,
        header: String,
        line: usize,
    },

    /// Rewriting an indented key at column 0 would turn the indented lines
    /// after it into continuation lines of its value.
    #[error(
        "{file} line {line}: an indented line follows `{key}` in section [{section}]; the AWS \
         SDKs (and the AWS CLI, once `{key}` is written without indentation) read an indented \
         line as part of the value above it. Remove the indentation of the lines in [{section}]."
    )]
    IndentedLine {
        file: FileName,
        section: String,
        key: String,
        line: usize,
    },

    /// The check after every edit: both readers must read exactly what was
    /// written. This fires only for files that are already odd in a way the
    /// specific checks do not name (bare CR line endings, say).
    #[error(
        "{file}: after writing `{key}` into section [{section}], the AWS CLI and the AWS SDKs \
         would read it differently ({detail}). The file was not changed; look for indented \
         lines, bare CR line endings or unusual headers in [{section}] and fix them by hand."
    )]
    ReadersDisagree {
        file: FileName,
        section: String,
        key: String,
        detail: &'static str,
    },

    #[error(
        "section name `{section}` cannot be written to the credentials file: {reason}. Use a \
         profile name of letters, digits and _ - / . % @ : +"
    )]
    InvalidSection {
        section: String,
        reason: &'static str,
    },

    #[error(
        "key `{key}` cannot be written to the credentials file: keys the daemon writes must be \
         lowercase letters, digits and `_`"
    )]
    InvalidKey { key: String },

    #[error(
        "the value for `{key}` in section [{section}] cannot be written to the credentials file: \
         it {reason} (the AWS CLI and the AWS SDKs would read it differently)"
    )]
    InvalidValue {
        section: String,
        key: String,
        reason: &'static str,
    },

    /// A line that makes botocore refuse the whole file.
    #[error(
        "{file} line {line}: {what}; the AWS CLI cannot parse a file with such a line (\"Unable \
         to parse config file\"). Put it under a [section] header, make it a comment (#), or \
         remove it."
    )]
    UnreadableLine {
        file: FileName,
        line: usize,
        what: &'static str,
    },

    /// botocore's `_parse_nested`: the indented lines under `key =` are
    /// nested settings, each `name = value`.
    #[error(
        "{file} line {line}: an indented line under `{key} =` in section [{section}] has no `=`; \
         the AWS CLI reads the indented lines under an empty value as nested `name = value` \
         settings and cannot parse a file with such a line (\"Unable to parse config file\"). \
         Write it as `name = value`, or give `{key}` a value on its own line and remove the \
         indentation."
    )]
    NestedValue {
        file: FileName,
        section: String,
        key: String,
        line: usize,
    },

    #[error(
        "{file} line {line}: the file is not valid UTF-8, and the AWS CLI reads it as UTF-8. \
         Re-save it as UTF-8 (for example with `iconv -f latin1 -t utf-8`)."
    )]
    NotUtf8 { file: FileName, line: usize },

    #[error(
        "{file} is {size} bytes, more than the {limit} bytes a credentials file can sensibly be; \
         check that --credentials-file / AWS_SHARED_CREDENTIALS_FILE names the credentials file"
    )]
    TooLarge {
        file: FileName,
        size: u64,
        limit: u64,
    },

    #[error(
        "{file} is {what}, not a regular file; point --credentials-file / \
         AWS_SHARED_CREDENTIALS_FILE at the credentials file"
    )]
    NotAFile { file: FileName, what: &'static str },

    #[error("{file} {why}. {OWN_FILE}: {fix}, {POINT_ELSEWHERE}.")]
    ReadOnly {
        file: FileName,
        why: String,
        fix: &'static str,
    },

    #[error(
        "{file}: permission denied while {action}. Run the daemon as the user who owns the file \
         and its directory: it replaces the file through a temporary file and a lock file in \
         that directory (the file itself should have mode 0600)."
    )]
    PermissionDenied {
        file: FileName,
        action: &'static str,
        #[source]
        source: io::Error,
    },

    /// A lock file that is a symlink, and the like: not safe to use.
    #[error("{file}: {detail}")]
    Unsafe { file: FileName, detail: String },

    #[error("{file}: {action} failed: {source}")]
    Io {
        file: FileName,
        action: &'static str,
        #[source]
        source: io::Error,
    },

    #[error(
        "{file} kept changing while the daemon was updating it (another program writes it \
         without taking {lock}); will try again"
    )]
    ChangedDuringUpdate { file: FileName, lock: String },

    #[error(
        "cannot locate the credentials file: neither --credentials-file, \
         AWS_SHARED_CREDENTIALS_FILE nor HOME is set"
    )]
    NoHome,
}

impl CredentialsError {
    /// Fills in the file name of an error raised without one.
    pub fn in_file(mut self, name: &FileName) -> Self {
        use CredentialsError::*;
        match &mut self {
            DuplicateSection { file, .. }
            | DuplicateKey { file, .. }
            | AmbiguousSection { file, .. }
            | IndentedLine { file, .. }
            | UnreadableLine { file, .. }
            | NestedValue { file, .. }
            | ReadersDisagree { file, .. }
            | NotUtf8 { file, .. }
            | TooLarge { file, .. }
            | NotAFile { file, .. }
            | ReadOnly { file, .. }
            | PermissionDenied { file, .. }
            | Unsafe { file, .. }
            | Io { file, .. }
            | ChangedDuringUpdate { file, .. } => {
                if file.is_unknown() {
                    *file = name.clone();
                }
            }
            InvalidSection { .. } | InvalidKey { .. } | InvalidValue { .. } | NoHome => {}
        }
        self
    }

    /// The one section (profile) the error is about, when the rest of the
    /// file could be written: an edit refused for this section only.
    pub fn section(&self) -> Option<&str> {
        use CredentialsError::*;
        match self {
            DuplicateSection { section, .. }
            | DuplicateKey { section, .. }
            | AmbiguousSection { section, .. }
            | IndentedLine { section, .. }
            | ReadersDisagree { section, .. }
            | InvalidSection { section, .. }
            | InvalidValue { section, .. } => Some(section),
            _ => None,
        }
    }

    /// The 1-based line the error points at, if any.
    pub fn line(&self) -> Option<usize> {
        use CredentialsError::*;
        match self {
            DuplicateSection { line, .. }
            | DuplicateKey { line, .. }
            | AmbiguousSection { line, .. }
            | IndentedLine { line, .. }
            | UnreadableLine { line, .. }
            | NestedValue { line, .. }
            | NotUtf8 { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// The same error about a part of a file that starts `by` lines into
    /// it: its line numbers moved to the file's.
    pub(crate) fn shifted(mut self, by: usize) -> Self {
        use CredentialsError::*;
        match &mut self {
            DuplicateSection {
                line, first_line, ..
            }
            | DuplicateKey {
                line, first_line, ..
            } => {
                *line += by;
                *first_line += by;
            }
            AmbiguousSection { line, .. }
            | IndentedLine { line, .. }
            | UnreadableLine { line, .. }
            | NestedValue { line, .. }
            | NotUtf8 { line, .. } => *line += by,
            _ => {}
        }
        self
    }

    /// Sorts an I/O error: permission problems and read-only file systems
    /// need the user, everything else (EAGAIN, EIO, ENOSPC…) may pass.
    pub(crate) fn io(file: &FileName, action: &'static str, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::PermissionDenied => CredentialsError::PermissionDenied {
                file: file.clone(),
                action,
                source,
            },
            io::ErrorKind::ReadOnlyFilesystem => CredentialsError::ReadOnly {
                file: file.clone(),
                why: format!("is on a read-only file system ({action} failed)"),
                fix: "move it to a writable file system",
            },
            _ => CredentialsError::Io {
                file: file.clone(),
                action,
                source,
            },
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

impl Classified for CredentialsError {
    fn retry_class(&self) -> RetryClass {
        match self {
            CredentialsError::Io { .. } | CredentialsError::ChangedDuringUpdate { .. } => {
                RetryClass::Soon
            }
            _ => RetryClass::NeedsUser,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_file_line_problem_and_fix() {
        let err = CredentialsError::DuplicateSection {
            file: FileName::default(),
            section: "prod".into(),
            line: 14,
            first_line: 3,
        }
        .in_file(&FileName::new(
            Path::new("/home/u/.aws/credentials"),
            Path::new("/home/u/.aws/credentials"),
        ));
        assert_eq!(
            err.to_string(),
            "/home/u/.aws/credentials line 14: section [prod] appears again (first at line 3); \
             the AWS CLI cannot parse a file with duplicate sections. Merge or remove one of them."
        );
        assert_eq!(err.line(), Some(14));
        assert_eq!(err.retry_class(), RetryClass::NeedsUser);
    }

    #[test]
    fn a_symlinked_file_names_its_target() {
        let name = FileName::new(
            Path::new("/home/u/.aws/credentials"),
            Path::new("/nix/store/abc-credentials"),
        );
        assert_eq!(
            name.to_string(),
            "/home/u/.aws/credentials (a link to /nix/store/abc-credentials)"
        );
    }

    #[test]
    fn io_errors_are_classified_by_kind() {
        let file = FileName::default();
        let passing = CredentialsError::io(&file, "write", io::Error::from_raw_os_error(5));
        assert_eq!(passing.retry_class(), RetryClass::Soon);
        let again = CredentialsError::io(&file, "write", io::Error::from_raw_os_error(11));
        assert_eq!(again.retry_class(), RetryClass::Soon);
        let denied = CredentialsError::io(
            &file,
            "write",
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert!(matches!(denied, CredentialsError::PermissionDenied { .. }));
        assert_eq!(denied.retry_class(), RetryClass::NeedsUser);
        let rofs = CredentialsError::io(&file, "write", io::Error::from_raw_os_error(30));
        assert!(
            matches!(rofs, CredentialsError::ReadOnly { .. }),
            "{rofs:?}"
        );
        assert_eq!(rofs.retry_class(), RetryClass::NeedsUser);
    }
}
