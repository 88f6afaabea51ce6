//! The YubiKey, through the `ykoath` crate (YKOATH over PC/SC), and what
//! this program adds around it:
//!
//! - [`calculate`] and [`list`] with the applet password from the config
//!   ([`PasswordSource`]: a command, a file, the keyring) and errors whose
//!   advice names this program's settings ([`OathError`]);
//! - [`notify_touch`]: the warning and desktop notification before a touch;
//! - [`run_mfa_process`]: the other code source, a user command.
//!
//! Codes and passwords only ever live in `SecretString`s.

mod dbus;
mod error;
mod password;
mod process;
mod touch;

use std::time::SystemTime;

pub use error::{OathError, PasswordError};
pub use password::PasswordSource;
pub use process::{DEFAULT_PROCESS_TIMEOUT, MfaProcessError, run_mfa_process};
pub use touch::{notify_desktop, notify_touch};
pub use ykoath::{
    AppletError, Card, CardError, Code, CredentialInfo, ErrorKind as OathErrorKind, HashAlgorithm,
    KeyEvents, OathType, ReaderListing, StatusWord, TouchPrompt, protocol, spawn_key_watcher,
};

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

impl OathOptions {
    /// Runs `f` with the crate's options: the reader filter, and the
    /// password read from its source (within the timeout) only when an
    /// applet asks for it. Errors name the password source.
    fn with<T>(
        &self,
        f: impl FnOnce(&ykoath::Options<'_>) -> Result<T, ykoath::Error>,
    ) -> Result<T, OathError> {
        let read = |source: &PasswordSource| {
            source
                .read_within(self.password_timeout)
                .map_err(|e| Box::new(e) as ykoath::PasswordError)
        };
        let source = self.password.as_ref();
        let password = source.map(|source| move || read(source));
        let password = password
            .as_ref()
            .map(|p| p as &dyn Fn() -> Result<secrecy::SecretString, ykoath::PasswordError>);
        let options = ykoath::Options {
            reader_filter: self.reader_filter.as_deref(),
            password,
        };
        f(&options).map_err(|e| {
            OathError::new(
                e,
                source.map_or("no password source".to_string(), PasswordSource::describe),
            )
        })
    }
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
    // Before 1970 every step would be 0: one code for ever, which AWS
    // accepts once. Refused before the key is asked (and touched): the
    // crate's ErrorKind::ClockBeforeEpoch.
    opts.with(|options| ykoath::calculate(options, credential, now, on_touch))
}

/// Lists every matching reader and the credentials of its OATH applet (no
/// codes). Readers without a card or applet are listed with their problem.
pub fn list(opts: &OathOptions) -> Result<Vec<ReaderListing>, OathError> {
    opts.with(|options| ykoath::list(options, SystemTime::now()))
}
