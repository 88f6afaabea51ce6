//! Errors of the OATH module as this program shows them: the `ykoath`
//! crate's, with the advice that names this program's settings
//! (`yubikey_reader`, `oath_password_command`, ...), and the retry class
//! of each.

use std::fmt;

use ykoath::{AppletError, CardError, ErrorKind};

use crate::retry::{Classified, RetryClass};

/// Why the applet password could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("oath_password_command could not be started: {0}")]
    Spawn(std::io::Error),
    /// Its output is never shown: it is, or contains, the password.
    #[error("oath_password_command failed ({status}); its output is not shown")]
    CommandFailed { status: std::process::ExitStatus },
    #[error("oath_password_command did not finish within {} s and was killed (process_timeout)", .0.as_secs())]
    Timeout(std::time::Duration),
    #[error(
        "oath_password_command printed more than 4096 bytes and was killed; it must print only the password"
    )]
    TooMuchOutput,
    #[error("oath_password_file {}: {source}", crate::text::printable(&path.display().to_string()))]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "oath_password_file: {problem}; point oath_password_file at a file holding the password on its first line"
    )]
    NotAPasswordFile {
        path: std::path::PathBuf,
        problem: String,
    },
    #[error("the OATH password from {0} is empty")]
    Empty(&'static str),
    #[error("cannot read the OATH password from {from}: {detail}")]
    Lookup { from: String, detail: String },
}

/// An error of the YubiKey, as the daemon and the diagnostics see it.
#[derive(Debug)]
pub struct OathError {
    inner: ykoath::Error,
    /// How messages name the password source (for a wrong password).
    password_from: String,
}

impl OathError {
    pub(crate) fn new(inner: ykoath::Error, password_from: String) -> Self {
        OathError {
            inner,
            password_from,
        }
    }

    pub fn kind(&self) -> &ErrorKind {
        self.inner.kind()
    }

    pub fn reader(&self) -> Option<&str> {
        self.inner.reader()
    }
}

impl std::error::Error for OathError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.inner)
    }
}

const PASSWORD_SETTINGS: &str = "set oath_password_command or oath_password_file";

impl fmt::Display for OathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reader = self.reader().unwrap_or("?");
        let from = &self.password_from;
        match self.kind() {
            ErrorKind::PasswordRequired
            | ErrorKind::Applet(AppletError::AuthenticationRequired) => write!(
                f,
                "reader {reader:?}: the OATH applet is password protected; {PASSWORD_SETTINGS}"
            ),
            ErrorKind::WrongPassword => write!(
                f,
                "reader {reader:?}: wrong OATH password: the YubiKey refused the password from \
                 {from}; correct what {from} gives (or set the key's password with `ykman oath \
                 access change`)"
            ),
            ErrorKind::NoReader {
                filter: Some(filter),
                available,
            } if available.is_empty() => write!(
                f,
                "no smart card reader matches yubikey_reader {filter:?} (no readers at all): \
                 plug in the YubiKey"
            ),
            ErrorKind::NoReader {
                filter: Some(filter),
                ..
            } => write!(
                f,
                "{}",
                self.inner.to_string().replacen(
                    &format!("matches {filter:?}"),
                    &format!("matches yubikey_reader {filter:?}"),
                    1
                )
            ),
            ErrorKind::ClockBeforeEpoch { seconds_before } => {
                let at = std::time::UNIX_EPOCH - std::time::Duration::from_secs(*seconds_before);
                match crate::timestamp::totp_seconds(at) {
                    Err(clock) => write!(f, "{clock}"),
                    Ok(_) => write!(f, "{}", self.inner),
                }
            }
            _ => write!(f, "{}", self.inner),
        }
    }
}

/// The retry class of a raw PC/SC error.
pub(crate) fn pcsc_class(e: pcsc::Error) -> RetryClass {
    use pcsc::Error as E;
    match e {
        E::NoService
        | E::ServiceStopped
        | E::NoReadersAvailable
        | E::NoSmartcard
        | E::UnknownReader
        | E::ReaderUnavailable => RetryClass::WaitForKey,
        _ => RetryClass::Soon,
    }
}

fn card_class(error: &CardError) -> RetryClass {
    match error {
        CardError::Pcsc(e) => pcsc_class(*e),
        CardError::Link(_) => RetryClass::Soon,
    }
}

fn applet_class(error: &AppletError) -> RetryClass {
    match error {
        AppletError::NotOath(_) => RetryClass::WaitForKey,
        AppletError::AuthenticationRequired
        | AppletError::WrongPassword
        | AppletError::CardAuthenticationFailed
        | AppletError::NoSuchCredential { .. }
        | AppletError::NotTotp { .. } => RetryClass::NeedsUser,
        AppletError::TouchTimeout { .. }
        | AppletError::WrongData { .. }
        | AppletError::UnexpectedStatus { .. }
        | AppletError::Malformed { .. } => RetryClass::Soon,
        AppletError::Card(e) => card_class(e),
    }
}

impl Classified for OathError {
    fn retry_class(&self) -> RetryClass {
        match self.kind() {
            ErrorKind::NoService
            | ErrorKind::NoReader { .. }
            | ErrorKind::NoCard { .. }
            | ErrorKind::AppletMissing { .. } => RetryClass::WaitForKey,
            ErrorKind::Sharing | ErrorKind::CardReset(_) => RetryClass::Soon,
            // pcscd's polkit refused us: a rule or a flag the user sets.
            ErrorKind::AccessDenied => RetryClass::NeedsUser,
            ErrorKind::Pcsc(error) => pcsc_class(*error),
            ErrorKind::Applet(source) => applet_class(source),
            // PasswordRequired, Password, WrongPassword, NoSuchCredential,
            // InvalidName, and kinds the crate adds later.
            _ => RetryClass::NeedsUser,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ykoath::StatusWord;

    /// The classes the crate's own tests asserted before the crate was
    /// split out, for every kind of error.
    #[test]
    fn every_error_has_its_retry_class() {
        let applet = [
            (
                AppletError::NotOath(StatusWord(0x6A82)),
                RetryClass::WaitForKey,
            ),
            (AppletError::AuthenticationRequired, RetryClass::NeedsUser),
            (AppletError::WrongPassword, RetryClass::NeedsUser),
            (AppletError::CardAuthenticationFailed, RetryClass::NeedsUser),
            (
                AppletError::NoSuchCredential {
                    name: "x".into(),
                    available: vec![],
                },
                RetryClass::NeedsUser,
            ),
            (
                AppletError::NotTotp { name: "h".into() },
                RetryClass::NeedsUser,
            ),
            (
                AppletError::TouchTimeout { name: "t".into() },
                RetryClass::Soon,
            ),
            (AppletError::WrongData { ins: 0xA2 }, RetryClass::Soon),
            (
                AppletError::UnexpectedStatus {
                    ins: 0xA2,
                    sw: StatusWord(0x6F00),
                },
                RetryClass::Soon,
            ),
            (
                AppletError::Malformed {
                    ins: 0xA2,
                    detail: "x",
                },
                RetryClass::Soon,
            ),
            (
                AppletError::Card(CardError::Pcsc(pcsc::Error::NoSmartcard)),
                RetryClass::WaitForKey,
            ),
            (
                AppletError::Card(CardError::Link("x".into())),
                RetryClass::Soon,
            ),
        ];
        for (error, class) in applet {
            assert_eq!(applet_class(&error), class, "{error:?}");
        }
        for (error, class) in [
            (pcsc::Error::NoService, RetryClass::WaitForKey),
            (pcsc::Error::ServiceStopped, RetryClass::WaitForKey),
            (pcsc::Error::NoSmartcard, RetryClass::WaitForKey),
            (pcsc::Error::SharingViolation, RetryClass::Soon),
            (pcsc::Error::ResetCard, RetryClass::Soon),
            (pcsc::Error::RemovedCard, RetryClass::Soon),
            (pcsc::Error::InvalidHandle, RetryClass::Soon),
            (pcsc::Error::SecurityViolation, RetryClass::NeedsUser),
        ] {
            let e = OathError::new(
                ykoath::Error::from_pcsc(Some("Yubico YubiKey 00 00"), error),
                String::new(),
            );
            assert_eq!(e.retry_class(), class, "{error:?}");
        }
    }
}
