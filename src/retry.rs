//! How an error should be retried.
//!
//! Every error that can stop a refresh carries one of these classes, decided
//! where the error is understood (the OATH module, the STS module, the
//! credentials editor). The daemon schedules from the class alone and never
//! string-matches messages.

use std::fmt;

/// What the daemon should do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetryClass {
    /// A passing fault (network, throttling, a busy card): retry with
    /// exponential backoff and jitter.
    Soon,
    /// The TOTP code was refused or already used: wait for the next TOTP
    /// time step, then retry once with a fresh code.
    NextTotpStep,
    /// No YubiKey (or no reader, or pcscd down): wait for the key-changed
    /// event rather than retrying blindly.
    WaitForKey,
    /// The desktop keyring is locked: wait for it to be unlocked (its
    /// `Locked` property changes) rather than retrying blindly.
    WaitForUnlock,
    /// A cached MFA session is no longer accepted: drop it and
    /// re-authenticate at once.
    Reauthenticate,
    /// Only the user can fix it (bad keys, wrong serial, not authorized):
    /// park until the config or credentials file changes, with a slow retry.
    NeedsUser,
}

impl fmt::Display for RetryClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RetryClass::Soon => "retry soon",
            RetryClass::NextTotpStep => "wait for the next TOTP step",
            RetryClass::WaitForKey => "wait for the YubiKey",
            RetryClass::WaitForUnlock => "wait for the keyring to be unlocked",
            RetryClass::Reauthenticate => "re-authenticate",
            RetryClass::NeedsUser => "needs the user",
        })
    }
}

/// Implemented by every error type that can end a refresh attempt.
pub trait Classified {
    fn retry_class(&self) -> RetryClass;

    /// The service asked for fewer calls at once (STS `Throttling`): the
    /// executor lowers its concurrency instead of only backing off.
    fn is_throttling(&self) -> bool {
        false
    }

    /// What makes this error the same error when it happens again: its
    /// text without what differs from one answer to the next (a request
    /// id). `None`: the text itself. A repeat is not logged again.
    fn recurrence(&self) -> Option<String> {
        None
    }
}
