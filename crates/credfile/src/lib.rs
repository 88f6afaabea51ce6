//! The AWS shared credentials file (and the config file), edited in place:
//! a byte-preserving document model, edits, and the locked atomic write
//! with backups; and the rules for files that hold secrets ([`private`]).
//!
//! It knows the file format and its two readers, nothing of where the
//! values come from.
//!
//! Two readers matter, and they disagree on details: botocore (the AWS
//! CLI, boto3: Python's `RawConfigParser`) and the AWS SDKs (for Rust:
//! `aws-runtime`'s profile parser). [`Document`] parses the file as
//! botocore does, because botocore is the strict one: it refuses the whole
//! file on a duplicate section or key. The editor writes only what both
//! read the same way (`key = value`, lowercase keys, no indentation, no
//! inline comments, never `[DEFAULT]`), keeps every other byte, and checks
//! after each edit that both readers read exactly the value written.
//!
//! Choices worth knowing:
//! - `[ prod ]` is section " prod " for botocore (`\[(?P<header>.+)\]` keeps
//!   the spaces) but profile `prod` for the SDKs; the editor refuses to
//!   touch `prod` while such a header exists
//!   ([`ErrorKind::AmbiguousSection`]).
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
//!
//! Reading: [`CredentialsFile::read_snapshot`] reads the file once (every
//! read logs its byte count and why at debug level, target `credfile`);
//! [`CredentialsFile::update_from`] starts from that [`Snapshot`] instead
//! of reading the file again while its metadata proves it unchanged, and
//! hands back the snapshot of what it wrote.

mod document;
mod error;
mod file;
mod parse;
pub mod private;
mod sdk;
mod snapshot;
mod wipe;

pub use document::{DEFAULT_SECTION, Document, Edit};
pub use error::{CredentialsError, ErrorKind, SdkProblem};
pub use file::{CredentialsFile, MAX_SIZE, Scrubbed, WriteOutcome, Written};
pub use snapshot::{Snapshot, Version};

/// The one hash function of the editor (and of the program that uses it):
/// XXH3-64, a fixed function (the same in every process and version), fast
/// on megabytes. It hashes the file's bytes for [`Snapshot::hash`], and
/// section names and keys for lookups.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

pub(crate) use stable_hash as hash;
