//! Errors of the OATH module, each with its retry class.
//!
//! Two levels: [`AppletError`] is what one card's OATH applet (or the link to
//! it) said, without knowing which reader it sits in; [`OathError`] is what
//! the daemon sees, with the reader named and the PC/SC situation (no
//! service, no reader, no card, sharing violation) explained with what to do.

use std::fmt;

use crate::retry::{Classified, RetryClass};

/// Failure of one APDU exchange below the applet: the PC/SC link.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CardError {
    #[error("{0}")]
    Pcsc(#[from] pcsc::Error),
    /// Only produced by in-memory cards in tests.
    #[error("card link failed: {0}")]
    Link(String),
}

impl CardError {
    /// The card went away or was reset by another program between or during
    /// our commands: worth retrying the whole exchange on a new connection.
    pub fn is_reset_or_removal(&self) -> bool {
        matches!(
            self,
            CardError::Pcsc(
                pcsc::Error::ResetCard
                    | pcsc::Error::RemovedCard
                    | pcsc::Error::InvalidHandle
                    | pcsc::Error::UnpoweredCard
                    | pcsc::Error::UnresponsiveCard
                    | pcsc::Error::CommError
                    | pcsc::Error::CommDataLost
                    | pcsc::Error::NotTransacted
                    | pcsc::Error::ReaderUnavailable
            )
        )
    }
}

/// A status word, printed as `69 82`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StatusWord(pub u16);

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X} {:02X}", self.0 >> 8, self.0 & 0xff)
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StatusWord({self})")
    }
}

/// What one card's OATH applet answered, as a typed error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppletError {
    /// SELECT of the OATH AID failed (`6A 82`), or a command came back
    /// `6D 00` (instruction not supported: the applet is not selected).
    #[error("the card has no OATH applet (status {0})")]
    NotOath(StatusWord),
    /// `69 82` before VALIDATE: the applet is password protected.
    #[error(
        "the OATH applet is password protected; set oath_password_command or oath_password_file"
    )]
    AuthenticationRequired,
    /// `69 84` answering VALIDATE.
    #[error(
        "wrong OATH password (the applet refused VALIDATE); check oath_password_command / oath_password_file"
    )]
    WrongPassword,
    /// The card's answer to our own challenge was wrong: not the key whose
    /// password we hold, or a misbehaving card.
    #[error(
        "the card answered the host challenge wrongly after VALIDATE; it does not know this password"
    )]
    CardAuthenticationFailed,
    /// `69 84` answering CALCULATE, or the name missing from CALCULATE ALL.
    #[error(
        "no OATH credential named {name:?} on this key (it holds: {})",
        names_list(available)
    )]
    NoSuchCredential {
        name: String,
        available: Vec<String>,
    },
    /// `69 82` answering CALCULATE of a touch credential: the key gave up
    /// waiting (about 15 s on a YubiKey; ykman says "Touch account timed out!").
    #[error("touch timed out: nobody touched the YubiKey for credential {name:?}")]
    TouchTimeout { name: String },
    /// `6A 80`.
    #[error("the OATH applet rejected the data of command {ins:02X} (status 6A 80)")]
    WrongData { ins: u8 },
    #[error("the OATH applet answered command {ins:02X} with unexpected status {sw}")]
    UnexpectedStatus { ins: u8, sw: StatusWord },
    #[error("malformed answer to OATH command {ins:02X}: {detail}")]
    Malformed { ins: u8, detail: &'static str },
    /// HOTP codes advance a counter on every read; the daemon only uses TOTP.
    #[error("OATH credential {name:?} is HOTP; only TOTP credentials can be used for AWS MFA")]
    NotTotp { name: String },
    #[error("{0}")]
    Card(#[from] CardError),
}

fn names_list(names: &[String]) -> String {
    if names.is_empty() {
        "no credentials".to_string()
    } else {
        names
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

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

/// An error of the OATH module as the daemon and the diagnostics see it.
#[derive(Debug, thiserror::Error)]
pub enum OathError {
    /// `SCARD_E_NO_SERVICE`: pcscd is not running (it may be socket
    /// activated and starting).
    #[error(
        "the PC/SC service (pcscd) is not running; start it (systemctl start pcscd.socket) or install it (apt-get install pcscd)"
    )]
    NoService,
    #[error("{}", no_reader_message(filter.as_deref(), available))]
    NoReader {
        filter: Option<String>,
        available: Vec<String>,
    },
    #[error("no smart card in {}: insert the YubiKey", readers_list(readers))]
    NoCard { readers: Vec<String> },
    #[error(
        "no OATH applet on the card in {}: is this a YubiKey with the OATH application enabled (ykman config)?",
        readers_list(readers)
    )]
    AppletMissing { readers: Vec<String> },
    /// `SCARD_E_SHARING_VIOLATION`: another program holds the card
    /// exclusively, typically gpg's scdaemon.
    #[error(
        "reader {reader:?}: another program holds the YubiKey exclusively (typically gpg's scdaemon); \
         add `disable-ccid` or `pcsc-shared` to ~/.gnupg/scdaemon.conf and run `gpgconf --kill scdaemon`"
    )]
    Sharing { reader: String },
    /// The card was reset or removed by another program, or the handle went
    /// stale, and retrying did not help.
    #[error(
        "reader {reader:?}: the card was reset or removed during the exchange ({error}); will retry"
    )]
    CardReset { reader: String, error: pcsc::Error },
    #[error("PC/SC error{}: {error}", reader.as_ref().map(|r| format!(" on reader {r:?}")).unwrap_or_default())]
    Pcsc {
        reader: Option<String>,
        error: pcsc::Error,
    },
    /// The applet has a password and none is configured.
    #[error(
        "reader {reader:?}: the OATH applet is password protected; set oath_password_command or oath_password_file"
    )]
    PasswordNotConfigured { reader: String },
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The applet refused the password (a YubiKey answers a wrong VALIDATE
    /// with `6A 80`; ykman reads that as "wrong password").
    #[error(
        "reader {reader:?}: wrong OATH password: the YubiKey refused the password from {from}; correct what {from} gives (or set the key's password with `ykman oath access change`)"
    )]
    WrongPassword { reader: String, from: String },
    /// No reader's applet holds the credential. Names are not secret, so
    /// the message lists those that exist, to spot a typo.
    #[error("no OATH credential named {name:?}; {}", available_list(available))]
    NoSuchCredential {
        name: String,
        /// Per reader, the names its applet holds.
        available: Vec<(String, Vec<String>)>,
    },
    #[error("invalid OATH credential name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("reader {reader:?}: {source}")]
    Applet {
        reader: String,
        #[source]
        source: AppletError,
    },
    /// The wall clock reads before 1970: no TOTP step can be computed.
    #[error(transparent)]
    Clock(#[from] crate::timestamp::ClockBeforeEpoch),
}

fn readers_list(readers: &[String]) -> String {
    if readers.is_empty() {
        "any reader".to_string()
    } else {
        readers
            .iter()
            .map(|r| format!("{r:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn no_reader_message(filter: Option<&str>, available: &[String]) -> String {
    match filter {
        None => "no smart card reader found: plug in the YubiKey (and check that its CCID interface is enabled: ykman config usb)".to_string(),
        Some(f) if available.is_empty() => format!(
            "no smart card reader matches yubikey_reader {f:?} (no readers at all): plug in the YubiKey"
        ),
        Some(f) => format!(
            "no smart card reader matches yubikey_reader {f:?}; readers present: {}",
            readers_list(available)
        ),
    }
}

fn available_list(available: &[(String, Vec<String>)]) -> String {
    if available.is_empty() {
        return "no reader with an OATH applet could be read".to_string();
    }
    available
        .iter()
        .map(|(reader, names)| format!("reader {reader:?} holds {}", names_list(names)))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Classified for CardError {
    fn retry_class(&self) -> RetryClass {
        match self {
            CardError::Pcsc(e) => pcsc_class(*e),
            CardError::Link(_) => RetryClass::Soon,
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

impl Classified for AppletError {
    fn retry_class(&self) -> RetryClass {
        match self {
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
            AppletError::Card(e) => e.retry_class(),
        }
    }
}

impl Classified for OathError {
    fn retry_class(&self) -> RetryClass {
        match self {
            OathError::NoService
            | OathError::NoReader { .. }
            | OathError::NoCard { .. }
            | OathError::AppletMissing { .. } => RetryClass::WaitForKey,
            OathError::Sharing { .. } | OathError::CardReset { .. } => RetryClass::Soon,
            OathError::Pcsc { error, .. } => pcsc_class(*error),
            OathError::PasswordNotConfigured { .. }
            | OathError::Password(_)
            | OathError::WrongPassword { .. }
            | OathError::NoSuchCredential { .. }
            | OathError::InvalidName { .. }
            | OathError::Clock(_) => RetryClass::NeedsUser,
            OathError::Applet { source, .. } => source.retry_class(),
        }
    }
}

impl OathError {
    /// Wraps what an applet said with the reader it sits in, lifting the
    /// link-level PC/SC errors to their own variants.
    pub(crate) fn from_applet(reader: &str, error: AppletError) -> OathError {
        let reader = reader.to_string();
        match error {
            AppletError::Card(CardError::Pcsc(e)) => OathError::from_pcsc(Some(reader), e),
            AppletError::NotOath(_) => OathError::AppletMissing {
                readers: vec![reader],
            },
            AppletError::NoSuchCredential { name, available } => OathError::NoSuchCredential {
                name,
                available: vec![(reader, available)],
            },
            source => OathError::Applet { reader, source },
        }
    }

    /// Gives a PC/SC error its own variant where it has one.
    pub(crate) fn from_pcsc(reader: Option<String>, error: pcsc::Error) -> OathError {
        use pcsc::Error as E;
        match (error, reader) {
            (E::NoService | E::ServiceStopped, _) => OathError::NoService,
            (E::NoReadersAvailable, _) => OathError::NoReader {
                filter: None,
                available: vec![],
            },
            (E::NoSmartcard, Some(r)) => OathError::NoCard { readers: vec![r] },
            (E::SharingViolation, Some(reader)) => OathError::Sharing { reader },
            (e, Some(reader)) if CardError::Pcsc(e).is_reset_or_removal() => {
                OathError::CardReset { reader, error: e }
            }
            (error, reader) => OathError::Pcsc { reader, error },
        }
    }
}
