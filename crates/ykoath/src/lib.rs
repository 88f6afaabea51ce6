//! TOTP codes from a YubiKey's OATH applet (YKOATH) over PC/SC.
//!
//! - [`calculate`]: the code of one credential, from the first key that
//!   holds it; [`list`]: every reader and the credentials of its applet
//!   (no codes);
//! - [`protocol`]: the host side of YKOATH over a small [`Card`] trait
//!   (pure: command bytes in, typed answers out), for other transports;
//! - [`KeyEvents`]: "a key or reader came or went", as an awaitable event.
//!
//! Codes and passwords only ever live in `SecretString`s. The applet
//! password comes from the caller ([`Options::password`]), asked only when
//! an applet has one. Errors name the reader and what to do
//! ([`Error`], [`ErrorKind`]).

mod error;
mod pcsc_transport;
pub mod protocol;
mod session;
mod watch;

#[cfg(test)]
mod applet;

use std::time::{SystemTime, UNIX_EPOCH};

use secrecy::SecretString;

pub use error::{AppletError, CardError, Error, ErrorKind, PasswordError, StatusWord};
pub use protocol::{Card, HashAlgorithm, OathType};
pub use watch::{KeyEvents, spawn_key_watcher};

/// Where to look for the key and how to open its applet.
#[derive(Default)]
pub struct Options<'a> {
    /// Only readers whose name contains this substring are tried.
    pub reader_filter: Option<&'a str>,
    /// The applet password, asked at most once per call and only when an
    /// applet has one; `None`: such an applet is an error
    /// ([`ErrorKind::PasswordRequired`]).
    pub password: Option<&'a dyn Fn() -> Result<SecretString, PasswordError>>,
}

/// A TOTP code with the time step it belongs to. `Debug` redacts the value.
#[derive(Debug, Clone)]
pub struct Code {
    /// 6 or 8 digits.
    pub value: SecretString,
    pub digits: u8,
    /// TOTP time step: `floor(unix_time / period)`. A service may refuse
    /// a second use of a step, so callers keep the last one per device.
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

/// A CALCULATE is about to wait for a touch (about 15 s on a YubiKey):
/// tell the user, or nobody ever knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TouchPrompt {
    /// The OATH credential name (not secret).
    pub credential: String,
    pub reader: String,
}

impl std::fmt::Display for TouchPrompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "touch the YubiKey in {:?} to get a code for {:?}",
            self.reader, self.credential
        )
    }
}

/// Calculates the TOTP code of `credential` at time `now` on the first key
/// that holds it. Blocking (PC/SC calls, and up to ~15 s while a touch
/// credential waits for the user): run it off an async runtime's threads.
///
/// `on_touch` is called just before a CALCULATE that makes the key wait for
/// a touch.
pub fn calculate(
    opts: &Options<'_>,
    credential: &str,
    now: SystemTime,
    on_touch: &dyn Fn(&TouchPrompt),
) -> Result<Code, Error> {
    protocol::parse_name(credential).map_err(|reason| {
        Error::new(
            None,
            ErrorKind::InvalidName {
                name: credential.to_string(),
                reason,
            },
        )
    })?;
    let unix = now.duration_since(UNIX_EPOCH).map_err(|before| {
        Error::new(
            None,
            ErrorKind::ClockBeforeEpoch {
                seconds_before: before.duration().as_secs().max(1),
            },
        )
    })?;
    pcsc_transport::calculate(opts, credential, unix.as_secs(), on_touch)
}

/// Lists every matching reader and the credentials of its OATH applet (no
/// codes). Readers without a card or applet are listed with their problem.
pub fn list(opts: &Options<'_>, now: SystemTime) -> Result<Vec<ReaderListing>, Error> {
    pcsc_transport::list(opts, unix_seconds(now))
}

/// Seconds since the epoch; a time before it is the epoch.
fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The applet password of one call: asked at the first applet that wants
/// it, then reused for the other readers.
pub(crate) struct PasswordCache<'a> {
    source: Option<&'a dyn Fn() -> Result<SecretString, PasswordError>>,
    value: Option<SecretString>,
}

impl<'a> PasswordCache<'a> {
    pub(crate) fn new(source: Option<&'a dyn Fn() -> Result<SecretString, PasswordError>>) -> Self {
        PasswordCache {
            source,
            value: None,
        }
    }

    /// `Ok(None)` when the caller gave no source.
    pub(crate) fn get(&mut self) -> Result<Option<&SecretString>, PasswordError> {
        if self.value.is_none() {
            match self.source {
                None => return Ok(None),
                Some(source) => self.value = Some(source()?),
            }
        }
        Ok(self.value.as_ref())
    }
}

#[cfg(test)]
impl protocol::Card for applet::Applet {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        Ok(self.process(apdu))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn the_password_is_asked_once_per_call() {
        let asked = Cell::new(0);
        let source = || {
            asked.set(asked.get() + 1);
            Ok::<_, PasswordError>(SecretString::from("pw"))
        };
        let mut cache = PasswordCache::new(Some(&source));
        assert_eq!(cache.get().unwrap().unwrap().expose_secret(), "pw");
        assert_eq!(cache.get().unwrap().unwrap().expose_secret(), "pw");
        assert_eq!(asked.get(), 1);
        assert!(PasswordCache::new(None).get().unwrap().is_none());
    }
}
