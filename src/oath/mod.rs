//! YubiKey OATH (YKOATH) over PC/SC.
//!
//! - [`protocol`]: the host side of YKOATH over a small [`Card`] trait
//!   (pure: command bytes in, typed answers out);
//! - `session`: one exchange with one applet (SELECT, VALIDATE, CALCULATE);
//! - `pcsc_transport`: PC/SC connections, one transaction per exchange, and
//!   the search over readers;
//! - [`KeyEvents`]: "a key or reader came or went", for the daemon's loop;
//! - [`notify_touch`]: the warning and desktop notification before a touch;
//! - [`run_mfa_process`]: the other code source, a user command.
//!
//! Codes and passwords only ever live in `SecretString`s.

mod dbus;
mod error;
mod password;
mod pcsc_transport;
mod process;
pub mod protocol;
mod session;
mod touch;
mod watch;

#[cfg(test)]
#[path = "applet.rs"]
pub(crate) mod applet;

use std::time::SystemTime;

use crate::timestamp::unix_seconds;

use secrecy::SecretString;

pub use error::{AppletError, CardError, OathError, PasswordError, StatusWord};
pub use password::PasswordSource;
pub use process::{DEFAULT_PROCESS_TIMEOUT, MfaProcessError, run_mfa_process};
pub use protocol::{Card, HashAlgorithm, OathType};
pub use touch::{TouchPrompt, notify_desktop, notify_touch};
pub use watch::{KeyEvents, spawn_key_watcher};

/// How to reach the YubiKey (global flags `--yubikey-reader`,
/// `--oath-password-command`, `--oath-password-file`).
#[derive(Debug, Clone)]
pub struct OathOptions {
    /// Only readers whose name contains this substring are tried.
    pub reader_filter: Option<String>,
    /// Needed only when the OATH applet is password protected.
    pub password: Option<PasswordSource>,
    /// How long a password command may run.
    pub password_timeout: std::time::Duration,
}

impl Default for OathOptions {
    fn default() -> Self {
        OathOptions {
            reader_filter: None,
            password: None,
            password_timeout: DEFAULT_PROCESS_TIMEOUT,
        }
    }
}

/// A TOTP code with the time step it belongs to. `Debug` redacts the value.
#[derive(Debug, Clone)]
pub struct Code {
    /// 6 or 8 digits.
    pub value: SecretString,
    pub digits: u8,
    /// TOTP time step: `floor(unix_time / period)`. AWS refuses a second
    /// use of a step, so the daemon keeps the last one per MFA device.
    pub step: u64,
    pub period: u64,
    /// The reader whose key produced it.
    pub reader: String,
}

/// What one reader's key holds, without codes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReaderListing {
    pub reader: String,
    /// OATH applet version, when the applet answered.
    pub version: Option<String>,
    pub password_protected: bool,
    pub credentials: Vec<CredentialInfo>,
    /// Why this reader could not be listed (no card, no OATH applet, wrong
    /// password, ...), when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// One OATH credential as LIST and CALCULATE ALL describe it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CredentialInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: OathType,
    pub algorithm: HashAlgorithm,
    /// `None` only if CALCULATE ALL did not mention the credential.
    pub digits: Option<u8>,
    /// TOTP only: from the name's `NN/` prefix, else 30.
    pub period: Option<u64>,
    pub touch: bool,
}

/// Calculates the TOTP code of `credential` at time `now` on the first key
/// that holds it. Blocking (PC/SC calls, and up to ~15 s while a touch
/// credential waits for the user): run it with `spawn_blocking`.
///
/// `on_touch` is called just before a CALCULATE that makes the key wait for
/// a touch; [`notify_touch`] is the usual choice.
pub fn calculate(
    opts: &OathOptions,
    credential: &str,
    now: SystemTime,
    on_touch: &dyn Fn(&TouchPrompt),
) -> Result<Code, OathError> {
    protocol::parse_name(credential).map_err(|reason| OathError::InvalidName {
        name: credential.to_string(),
        reason,
    })?;
    // Before 1970 every step would be 0: one code for ever, which AWS
    // accepts once. Refused before the key is asked (and touched).
    let unix = crate::timestamp::totp_seconds(now)?;
    pcsc_transport::calculate(opts, credential, unix, on_touch)
}

/// Lists every matching reader and the credentials of its OATH applet (no
/// codes). Readers without a card or applet are listed with their problem.
pub fn list(opts: &OathOptions) -> Result<Vec<ReaderListing>, OathError> {
    pcsc_transport::list(opts, unix_seconds(SystemTime::now()))
}

#[cfg(test)]
impl protocol::Card for applet::Applet {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        Ok(self.process(apdu))
    }
}
