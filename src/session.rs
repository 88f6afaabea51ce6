//! The vocabulary every room of the reconciler and the runtime cache share:
//! temporary credentials, the MFA session a set of sections shares, the
//! units that fail and back off independently, and a TOTP code. These sit
//! below the planner so that the cache and the scheduler can name a
//! session or a unit without importing the planner.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::SecretString;
use serde::Serialize;
use time::OffsetDateTime;

use crate::secret::mask_access_key_id;
use crate::text::printable;

/// One set of temporary credentials: an MFA session (GetSessionToken) or a
/// role session (AssumeRole). The secret parts are [`SecretString`], so a
/// `Debug` of this type never shows them.
#[derive(Clone, Debug)]
pub struct SessionCredentials {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: SecretString,
    /// When STS says the credentials stop working (UTC).
    pub expiration: OffsetDateTime,
}

/// Sections that agree on all of these share one MFA session, so N sections
/// cost one YubiKey code, not N.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct MfaSessionKey {
    /// Long-term access key id that signs GetSessionToken.
    #[serde(serialize_with = "serialize_masked")]
    pub access_key_id: String,
    pub mfa_serial_number: String,
    pub duration: u32,
    pub region: String,
    pub endpoint: Option<String>,
}

fn serialize_masked<S: serde::Serializer>(id: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&mask_access_key_id(id))
}

impl fmt::Display for MfaSessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} via {} ({} s)",
            printable(&self.mfa_serial_number),
            mask_access_key_id(&self.access_key_id),
            self.duration
        )
    }
}

/// What fails, and backs off, independently: an MFA device (a code or a
/// GetSessionToken failed), an SSO session (a sign-in or its token failed)
/// or a section (its AssumeRole, its GetRoleCredentials or its write
/// failed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "kebab-case")]
pub enum Unit {
    /// An MFA device, by serial number: codes and GetSessionToken.
    Device(String),
    /// A section, by name: its AssumeRole and its write.
    Section(String),
    /// An IAM Identity Center SSO session, by name: its sign-in and the
    /// refresh of its access token.
    SsoSession(String),
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names come from the config: escaped, so that none can forge a
        // log line or steer a terminal.
        match self {
            Unit::Device(serial) => write!(f, "MFA device {}", printable(serial)),
            Unit::Section(name) => write!(f, "section [{}]", printable(name)),
            Unit::SsoSession(name) => write!(f, "SSO session {}", printable(name)),
        }
    }
}

/// Units backing off after errors, with the earliest next attempt.
pub type Backoff = BTreeMap<Unit, OffsetDateTime>;

/// Units backing off, with the next attempt and the error that put them
/// there (what `plan` and `status` say of a unit that waits).
pub type FailingUnits = BTreeMap<Unit, (OffsetDateTime, String)>;

/// A TOTP code and the time step it belongs to.
pub struct Code {
    pub value: SecretString,
    /// `unix_time / period`: AWS accepts each step's code once per device.
    pub step: u64,
    pub period: u64,
}
