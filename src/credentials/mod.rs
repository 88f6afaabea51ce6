//! The shared credentials file: a byte-preserving document model, edits,
//! and the locked atomic write with backups.
//!
//! Two readers matter, and they disagree on details (technical brief §2):
//! botocore (the AWS CLI, boto3: Python's `RawConfigParser`) and the AWS
//! SDKs (for Rust: `aws-runtime`'s profile parser). [`Document`] parses the
//! file as botocore does, because botocore is the strict one: it refuses the
//! whole file on a duplicate section or key. The editor writes only what both
//! read the same way (`key = value`, lowercase keys, no indentation, no
//! inline comments, never `[DEFAULT]`), keeps every other byte, and checks
//! after each edit that both readers read exactly the value written.
//!
//! Choices worth knowing:
//! - `[ prod ]` is section " prod " for botocore (`\[(?P<header>.+)\]` keeps
//!   the spaces) but profile `prod` for the SDKs; the editor refuses to
//!   touch `prod` while such a header exists (`AmbiguousSection`).
//! - Continuation lines (indented lines after a key) belong to the value. A
//!   set or removed key loses its continuation lines, and also indented
//!   comment lines after it, which the SDKs read as continuations.
//! - A UTF-8 byte order mark makes both readers fail; the parser skips it,
//!   and the first edit that changes the file drops it.
//! - Line endings: new lines use the file's first line ending (CRLF or LF);
//!   a file without a final newline keeps ending without one.
//! - botocore merges `[DEFAULT]` into every section: [`Document::get`]
//!   reads a section's own keys, [`Document::get_inherited`] what botocore
//!   reads.

mod document;
mod error;
mod file;
mod parse;
mod sdk;
mod wipe;

pub use document::{
    ACCESS_KEY_ID, DEFAULT_SECTION, Document, Edit, SECRET_ACCESS_KEY, SESSION_TOKEN,
};
pub use error::{CredentialsError, FileName, SdkProblem};
pub use file::{CredentialsFile, MAX_SIZE, Scrubbed, WriteOutcome};

/// Sets `credential_process = COMMAND` in `[profile PROFILE]` of the AWS
/// config file at `path`, for each `(PROFILE, COMMAND)`: the same locked,
/// byte-preserving write as the credentials file's (other profiles, their
/// keys, comments and order stay as they are).
pub fn write_credential_process_entries(
    path: &std::path::Path,
    entries: &[(String, String)],
    backups: usize,
) -> Result<WriteOutcome, CredentialsError> {
    let edits: Vec<Edit> = entries
        .iter()
        .map(|(profile, command)| {
            Edit::set(
                format!("profile {profile}"),
                "credential_process",
                secrecy::SecretString::from(command.clone()),
            )
        })
        .collect();
    CredentialsFile::aws_config(path.to_path_buf(), backups).update(&edits)
}
