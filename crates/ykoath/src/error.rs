//! Errors of YKOATH over PC/SC.
//!
//! Two levels: [`AppletError`] is what one card's OATH applet (or the link to
//! it) said, without knowing which reader it sits in; [`Error`] is what the
//! caller sees, with the reader named and the PC/SC situation (no service,
//! no reader, no card, sharing violation) explained with what to do.

use std::fmt;

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
    #[error("the OATH applet is password protected, and no password was given")]
    AuthenticationRequired,
    /// `69 84` answering VALIDATE.
    #[error("wrong OATH password (the applet refused VALIDATE)")]
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

/// Why a password source could not give the password: the caller's own
/// error, shown as it is.
pub type PasswordError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong talking to the keys: the reader it is about (when one)
/// and what happened there.
#[derive(Debug)]
pub struct Error {
    pub(crate) reader: Option<String>,
    pub(crate) kind: ErrorKind,
}

/// What happened, with what is particular to it.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `SCARD_E_NO_SERVICE`: pcscd is not running (it may be socket
    /// activated and starting).
    NoService,
    /// `SCARD_W_SECURITY_VIOLATION`: pcscd refused this process. pcsc-lite
    /// 2 (Debian 13, Fedora) asks polkit, whose default allows only the
    /// processes of an active local login session: not a systemd user
    /// service, a cron job or an ssh login.
    AccessDenied,
    /// No reader, or none whose name contains `filter`.
    NoReader {
        filter: Option<String>,
        available: Vec<String>,
    },
    NoCard {
        readers: Vec<String>,
    },
    AppletMissing {
        readers: Vec<String>,
    },
    /// `SCARD_E_SHARING_VIOLATION`: another program holds the card
    /// exclusively, typically gpg's scdaemon.
    Sharing,
    /// The card was reset or removed by another program, or the handle went
    /// stale, and retrying did not help.
    CardReset(pcsc::Error),
    Pcsc(pcsc::Error),
    /// The applet has a password and the caller gave none.
    PasswordRequired,
    /// The caller's password source failed.
    Password(PasswordError),
    /// The applet refused the password (a YubiKey answers a wrong VALIDATE
    /// with `6A 80`; ykman reads that as "wrong password").
    WrongPassword,
    /// No reader's applet holds the credential. Names are not secret, so
    /// the message lists those that exist, to spot a typo.
    NoSuchCredential {
        name: String,
        /// Per reader, the names its applet holds.
        available: Vec<(String, Vec<String>)>,
    },
    InvalidName {
        name: String,
        reason: &'static str,
    },
    /// The clock reads before 1970 (by this many seconds): TOTP counts
    /// steps from the Unix epoch, and every step would be 0 (one code for
    /// ever, which a service accepts once).
    ClockBeforeEpoch {
        seconds_before: u64,
    },
    /// What the applet answered (the reader is the error's).
    Applet(AppletError),
}

impl Error {
    pub(crate) fn new(reader: Option<&str>, kind: ErrorKind) -> Self {
        Error {
            reader: reader.map(str::to_string),
            kind,
        }
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The reader the error is about, when it is about one.
    pub fn reader(&self) -> Option<&str> {
        self.reader.as_deref()
    }

    /// Wraps what an applet said with the reader it sits in, lifting the
    /// link-level PC/SC errors to their own kinds.
    pub(crate) fn from_applet(reader: &str, error: AppletError) -> Error {
        let kind = match error {
            AppletError::Card(CardError::Pcsc(e)) => return Error::from_pcsc(Some(reader), e),
            AppletError::NotOath(_) => ErrorKind::AppletMissing {
                readers: vec![reader.to_string()],
            },
            AppletError::NoSuchCredential { name, available } => ErrorKind::NoSuchCredential {
                name,
                available: vec![(reader.to_string(), available)],
            },
            AppletError::WrongPassword => ErrorKind::WrongPassword,
            source => ErrorKind::Applet(source),
        };
        Error::new(Some(reader), kind)
    }

    /// Gives a PC/SC error its own kind where it has one.
    pub fn from_pcsc(reader: Option<&str>, error: pcsc::Error) -> Error {
        use pcsc::Error as E;
        let kind = match (error, reader) {
            (E::NoService | E::ServiceStopped, _) => ErrorKind::NoService,
            (E::SecurityViolation, _) => ErrorKind::AccessDenied,
            (E::NoReadersAvailable, _) => ErrorKind::NoReader {
                filter: None,
                available: vec![],
            },
            (E::NoSmartcard, Some(r)) => ErrorKind::NoCard {
                readers: vec![r.to_string()],
            },
            (E::SharingViolation, Some(_)) => ErrorKind::Sharing,
            (e, Some(_)) if CardError::Pcsc(e).is_reset_or_removal() => ErrorKind::CardReset(e),
            (error, _) => ErrorKind::Pcsc(error),
        };
        let reader = match kind {
            ErrorKind::NoService
            | ErrorKind::AccessDenied
            | ErrorKind::NoReader { .. }
            | ErrorKind::NoCard { .. } => None,
            _ => reader,
        };
        Error::new(reader, kind)
    }

    /// The PC/SC error code underneath, if any.
    pub fn pcsc_error(&self) -> Option<pcsc::Error> {
        match &self.kind {
            ErrorKind::CardReset(e) | ErrorKind::Pcsc(e) => Some(*e),
            ErrorKind::Applet(AppletError::Card(CardError::Pcsc(e))) => Some(*e),
            _ => None,
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Password(e) => Some(e.as_ref()),
            ErrorKind::Applet(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reader = self.reader.as_deref().unwrap_or("?");
        match &self.kind {
            ErrorKind::NoService => f.write_str(
                "the PC/SC service (pcscd) is not running; start it (systemctl start \
                 pcscd.socket) or install it (apt-get install pcscd)",
            ),
            ErrorKind::AccessDenied => f.write_str(
                "pcscd refused access to the smart cards (polkit allows only processes of an \
                 active local login session, not a service or an ssh login): allow this user \
                 with a polkit rule in /etc/polkit-1/rules.d/ that returns YES for the actions \
                 org.debian.pcsc-lite.access_pcsc and org.debian.pcsc-lite.access_card when \
                 subject.user is this user, or run pcscd with --disable-polkit",
            ),
            ErrorKind::NoReader { filter, available } => match filter {
                None => f.write_str(
                    "no smart card reader found: plug in the YubiKey (and check that its CCID \
                     interface is enabled: ykman config usb)",
                ),
                Some(filter) if available.is_empty() => write!(
                    f,
                    "no smart card reader matches {filter:?} (no readers at all): plug in the \
                     YubiKey"
                ),
                Some(filter) => write!(
                    f,
                    "no smart card reader matches {filter:?}; readers present: {}",
                    readers_list(available)
                ),
            },
            ErrorKind::NoCard { readers } => write!(
                f,
                "no smart card in {}: insert the YubiKey",
                readers_list(readers)
            ),
            ErrorKind::AppletMissing { readers } => write!(
                f,
                "no OATH applet on the card in {}: is this a YubiKey with the OATH application \
                 enabled (ykman config)?",
                readers_list(readers)
            ),
            ErrorKind::Sharing => write!(
                f,
                "reader {reader:?}: another program holds the YubiKey exclusively (typically \
                 gpg's scdaemon); add `disable-ccid` or `pcsc-shared` to \
                 ~/.gnupg/scdaemon.conf and run `gpgconf --kill scdaemon`"
            ),
            ErrorKind::CardReset(error) => write!(
                f,
                "reader {reader:?}: the card was reset or removed during the exchange \
                 ({error}); will retry"
            ),
            ErrorKind::Pcsc(error) => match &self.reader {
                Some(reader) => write!(f, "PC/SC error on reader {reader:?}: {error}"),
                None => write!(f, "PC/SC error: {error}"),
            },
            ErrorKind::PasswordRequired => write!(
                f,
                "reader {reader:?}: the OATH applet is password protected, and no password was \
                 given"
            ),
            ErrorKind::Password(error) => write!(f, "{error}"),
            ErrorKind::WrongPassword => write!(
                f,
                "reader {reader:?}: wrong OATH password: the YubiKey refused the password"
            ),
            ErrorKind::NoSuchCredential { name, available } => write!(
                f,
                "no OATH credential named {name:?}; {}",
                available_list(available)
            ),
            ErrorKind::InvalidName { name, reason } => {
                write!(f, "invalid OATH credential name {name:?}: {reason}")
            }
            ErrorKind::ClockBeforeEpoch { seconds_before } => write!(
                f,
                "the clock reads {seconds_before} s before 1970: TOTP codes count from \
                 1970-01-01, so none can be computed; set the clock"
            ),
            ErrorKind::Applet(source) => write!(f, "reader {reader:?}: {source}"),
        }
    }
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
