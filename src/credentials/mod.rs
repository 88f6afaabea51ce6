//! The shared credentials file, edited by the [`credfile`] crate (its
//! crate doc says how it reads and writes the file), and what this program
//! adds: the keys of an AWS profile, the edits that write a session, the
//! retry class of the editor's errors, and the `credential_process`
//! entries of the AWS config file.

pub use credfile::{
    CredentialsError, CredentialsFile, DEFAULT_SECTION, Document, Edit, ErrorKind, MAX_SIZE,
    Scrubbed, SdkProblem, Snapshot, Version, WriteOutcome, Written,
};
use secrecy::SecretString;

use crate::retry::{Classified, RetryClass};
use crate::session::SessionCredentials;

mod aws_config;

pub use aws_config::{AwsConfigWrite, new_section_name, write_credential_process_entries};

/// The keys of a profile: the long-term pair, and the session token of
/// temporary credentials.
pub const ACCESS_KEY_ID: &str = "aws_access_key_id";
pub const SECRET_ACCESS_KEY: &str = "aws_secret_access_key";
pub const SESSION_TOKEN: &str = "aws_session_token";
/// What botocore reads before `aws_session_token` (an old name of it).
const SECURITY_TOKEN: &str = "aws_security_token";

/// The edits that write a session into a profile.
pub trait SessionEdits {
    /// The edits that write `creds` into profile `section`:
    /// `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`,
    /// `aws_security_token` when the section (or `[DEFAULT]`) has one —
    /// botocore reads it before `aws_session_token`, so a stale one would
    /// shadow the new token — and `expiry_key` with the expiry in RFC 3339
    /// UTC (`2026-11-25T16:05:00Z`).
    fn session_edits(
        &self,
        section: &str,
        creds: &SessionCredentials,
        expiry_key: &str,
    ) -> Vec<Edit>;
}

impl SessionEdits for Document {
    fn session_edits(
        &self,
        section: &str,
        creds: &SessionCredentials,
        expiry_key: &str,
    ) -> Vec<Edit> {
        let mut edits = vec![
            Edit::set(
                section,
                ACCESS_KEY_ID,
                SecretString::from(creds.access_key_id.clone()),
            ),
            Edit::set(section, SECRET_ACCESS_KEY, creds.secret_access_key.clone()),
            Edit::set(section, SESSION_TOKEN, creds.session_token.clone()),
        ];
        let has_security_token = [section, DEFAULT_SECTION]
            .iter()
            .any(|s| self.keys(s).iter().any(|key| key == SECURITY_TOKEN));
        if has_security_token {
            edits.push(Edit::set(
                section,
                SECURITY_TOKEN,
                creds.session_token.clone(),
            ));
        }
        edits.push(Edit::set(
            section,
            expiry_key,
            SecretString::from(crate::timestamp::rfc3339(creds.expiration)),
        ));
        edits
    }
}

/// Failed writes and other programs writing meanwhile may pass; a file or
/// edit the editor refuses needs the user.
impl Classified for CredentialsError {
    fn retry_class(&self) -> RetryClass {
        if self.is_transient() {
            RetryClass::Soon
        } else {
            RetryClass::NeedsUser
        }
    }
}

#[cfg(test)]
mod tests;
