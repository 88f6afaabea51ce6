//! The daemon's outside systems, behind small traits: where codes come from,
//! STS, IAM Identity Center, and the clock. The real implementations adapt
//! the `oath`, `sts` and `sso` modules; tests substitute fakes that count
//! calls.

use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use secrecy::SecretString;
use time::OffsetDateTime;

use crate::config::{CodeSource, RoleSettings};
use crate::retry::{Classified, RetryClass};
pub use crate::session::Code;
use crate::session::SessionCredentials;
pub(crate) use crate::sso::{AccessToken, DeviceCode, SsoSession, TokenNow};
pub use crate::sts::{Endpoint, MfaCode, SigningKeys};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A failure with its retry class; the message is safe to log (the modules
/// that produce errors never put secrets in them).
#[derive(Debug, Clone, PartialEq)]
pub struct UnitError {
    pub message: String,
    pub class: RetryClass,
    /// STS asked for fewer calls at once.
    pub throttled: bool,
    /// What makes it the same error again ([`Classified::recurrence`]).
    pub recurrence: Option<String>,
}

impl UnitError {
    pub fn new(class: RetryClass, message: impl Into<String>) -> Self {
        UnitError {
            message: message.into(),
            class,
            throttled: false,
            recurrence: None,
        }
    }

    pub fn from_error<E: std::fmt::Display + Classified>(error: &E) -> Self {
        UnitError {
            message: error.to_string(),
            class: error.retry_class(),
            throttled: error.is_throttling(),
            recurrence: error.recurrence(),
        }
    }

    /// What makes it the same error again: its recurrence, else its text.
    pub fn recurrence(&self) -> &str {
        self.recurrence.as_deref().unwrap_or(&self.message)
    }
}

impl std::fmt::Display for UnitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Codes from the YubiKey or `mfa_process`. Blocking: called on a blocking thread.
pub trait CodeProvider: Send + Sync {
    fn code(&self, source: &CodeSource, now: SystemTime) -> Result<Code, UnitError>;

    /// The TOTP period of the source's codes, known without reading one, so
    /// that a step already used is waited out before the key is asked (a
    /// code read too early is a touch wasted).
    fn period(&self, _source: &CodeSource) -> u64 {
        DEFAULT_PERIOD
    }
}

/// AWS's (and most authenticators') TOTP period.
pub const DEFAULT_PERIOD: u64 = 30;

pub trait StsApi: Send + Sync {
    fn get_session_token<'a>(
        &'a self,
        long_term: &'a SigningKeys,
        endpoint: &'a Endpoint,
        mfa: MfaCode<'a>,
        duration: u32,
    ) -> BoxFuture<'a, Result<SessionCredentials, UnitError>>;

    fn assume_role<'a>(
        &'a self,
        signer: &'a SigningKeys,
        endpoint: &'a Endpoint,
        role: &'a RoleSettings,
        mfa: Option<MfaCode<'a>>,
    ) -> BoxFuture<'a, Result<SessionCredentials, UnitError>>;

    /// The pass's calls are done: close the connections (see
    /// `StsClients::close_connections`).
    fn close_connections(&self) {}
}

/// IAM Identity Center (the `sso` module): an SSO session's access token
/// and the role credentials it buys.
pub trait SsoApi: Send + Sync {
    /// What the token cache and the sign-in files say of `session`'s token
    /// (reads only, no secret, no network). Blocking: called on a blocking
    /// thread.
    fn token_status(
        &self,
        session: &SsoSession,
        now: OffsetDateTime,
    ) -> Result<crate::sso::TokenStatus, UnitError>;

    /// The access token without a person and without waiting for one: from
    /// the cache or refreshed; else whether a sign-in is needed or under way.
    fn token<'a>(&'a self, session: &'a SsoSession) -> BoxFuture<'a, Result<TokenNow, UnitError>>;

    /// A sign-in, or the wait for the one another process has under way:
    /// minutes. Its device code goes to `on_code` (once); it ends when the
    /// token is in the cache.
    fn sign_in<'a>(
        &'a self,
        session: &'a SsoSession,
        on_code: &'a (dyn Fn(&DeviceCode) + Send + Sync),
    ) -> BoxFuture<'a, Result<(), UnitError>>;

    /// GetRoleCredentials of `account_id` and `role_name` with `token`.
    fn role_credentials<'a>(
        &'a self,
        session: &'a SsoSession,
        token: &'a AccessToken,
        account_id: &'a str,
        role_name: &'a str,
    ) -> BoxFuture<'a, Result<SessionCredentials, UnitError>>;

    /// The pass's calls are done: close the connections.
    fn close_connections(&self) {}
}

/// The desktop keyring (Secret Service), for `long_term_keys = "keyring"`
/// and `oath_password_keyring`. Blocking: called on a blocking thread.
pub trait SecretStore: Send + Sync {
    /// The long-term key ids stored, by credentials section (attributes
    /// only: no unlock, no secret read), and whether their secrets are
    /// locked away now.
    fn key_ids(&self) -> Result<KeyIds, UnitError>;

    /// The plan needs a secret of the locked keyring: ask for the unlock
    /// (the desktop shows its prompt; nothing waits on it) and tell the
    /// person, once per locked spell.
    fn request_unlock(&self) {}

    /// The secret key of a credentials section; a locked keyring is asked
    /// to unlock (the desktop shows its prompt) and `WaitForUnlock` returned.
    fn long_term_secret(&self, credentials_section: &str) -> Result<SecretString, UnitError>;
}

/// The keyring's key ids by credentials section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyIds {
    pub ids: std::collections::BTreeMap<String, String>,
    /// The secrets are in a locked collection.
    pub locked: bool,
}

/// Waits for the keyring to be unlocked.
pub trait UnlockWatch: Send {
    fn unlocked(&mut self) -> BoxFuture<'_, ()>;
}

/// Starts an unlock watcher (on the daemon's runtime).
pub type StartUnlockWatch =
    Box<dyn Fn() -> BoxFuture<'static, Option<Box<dyn UnlockWatch>>> + Send + Sync>;

/// "A YubiKey or reader came or went", from a watcher the daemon starts
/// when its config uses a key, and drops when it no longer does.
pub trait KeyWatch: Send {
    /// Resolves at the next change (changes while nobody waits are kept).
    fn changed(&mut self) -> BoxFuture<'_, ()>;
}

/// Starts a key watcher.
pub type StartKeyWatch = Box<dyn Fn() -> Box<dyn KeyWatch> + Send + Sync>;

/// The wall clock, passed in so that scheduling is testable.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}
