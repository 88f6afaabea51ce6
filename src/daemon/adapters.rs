//! The real outside systems behind the daemon's ports: the YubiKey (or
//! `mfa_process`) for codes, and STS through the `sts` module.

use std::time::SystemTime;

use secrecy::SecretString;

use super::ports::{
    BoxFuture, Clock, Code, CodeProvider, Endpoint, MfaCode, SigningKeys, StsApi, UnitError,
};
use crate::config::{CodeSource, PasswordSpec, RoleSettings};
use crate::keyring::Keyring;
use crate::oath::{self, OathOptions, PasswordSource};
use crate::session::SessionCredentials;
use crate::sts::StsClients;

/// The config's password setting as the OATH module takes it; the keyring
/// is read only when an applet asks for the password.
pub fn password_source(spec: &PasswordSpec) -> PasswordSource {
    match spec {
        PasswordSpec::Command(command) => PasswordSource::Command(command.clone()),
        PasswordSpec::File(path) => PasswordSource::File(path.clone()),
        PasswordSpec::Keyring => PasswordSource::Lookup {
            label: "the keyring (oath_password_keyring)".to_string(),
            fetch: std::sync::Arc::new(|| {
                Keyring::from_env(&crate::config::process_env)
                    .and_then(|keyring| keyring.oath_password())
                    .map_err(|e| e.to_string())
            }),
        },
    }
}

/// The desktop keyring through the Secret Service on the session bus.
#[derive(Default)]
pub struct RealKeyring {
    /// Reads only, never asks for the unlock prompt (`plan`, `status`: a
    /// dry run shows nothing on the desktop).
    dry_run: bool,
    /// A locked keyring was announced on the desktop for a secret; cleared
    /// when a secret read succeeds, so that each locked spell is announced
    /// once.
    announced: std::sync::atomic::AtomicBool,
    /// The same for the key ids (hidden while locked after a restart);
    /// cleared when they read again.
    announced_ids: std::sync::atomic::AtomicBool,
    /// The unlock prompts the daemon asked for (one at a time, quiet after
    /// a dismissal), for every `Keyring` it makes.
    prompts: crate::keyring::UnlockPrompts,
}

impl RealKeyring {
    /// For `plan` and `status`: attributes are read, nothing is asked.
    pub fn dry_run() -> RealKeyring {
        RealKeyring {
            dry_run: true,
            ..RealKeyring::default()
        }
    }

    fn keyring(&self) -> Result<Keyring, UnitError> {
        Keyring::from_env(&crate::config::process_env)
            .map(|keyring| keyring.sharing_prompts(&self.prompts))
            .map_err(|e| keyring_error(&e))
    }

    /// The key ids are locked away (GNOME Keyring after a restart shows
    /// only hashed attributes): once per locked spell, ask the service to
    /// unlock (the desktop shows its prompt; nothing waits on it) and say
    /// so on the desktop and in the log. True when the service unlocked
    /// without a prompt (the ids can be read again at once).
    fn unlocked_on_request(&self, keyring: &Keyring) -> bool {
        use std::sync::atomic::Ordering;
        if self.dry_run || self.announced_ids.swap(true, Ordering::SeqCst) {
            return false;
        }
        match keyring.request_unlock() {
            Ok(()) => {
                self.announced_ids.store(false, Ordering::SeqCst);
                return true;
            }
            Err(e) => tracing::warn!("{e}; refreshing as soon as it is unlocked"),
        }
        oath::notify_desktop(
            "Unlock your keyring",
            "aws-session-daemon needs to know which long-term AWS keys the keyring holds to refresh your sessions; it continues as soon as the keyring is unlocked.".to_string(),
        );
        false
    }
}

fn keyring_error(error: &crate::keyring::KeyringError) -> UnitError {
    let mut unit = UnitError::from_error(error);
    if error.is_locked() {
        unit.class = crate::retry::RetryClass::WaitForUnlock;
    }
    unit
}

impl super::ports::SecretStore for RealKeyring {
    fn key_ids(&self) -> Result<super::ports::KeyIds, UnitError> {
        use std::sync::atomic::Ordering;
        let keyring = self.keyring()?;
        let listing = match keyring.list() {
            Err(e) if e.is_locked() && self.unlocked_on_request(&keyring) => keyring.list(),
            listed => listed,
        };
        let listing = listing.map_err(|e| keyring_error(&e))?;
        self.announced_ids.store(false, Ordering::SeqCst);
        if !listing.locked {
            self.announced.store(false, Ordering::SeqCst);
        }
        Ok(super::ports::KeyIds {
            ids: listing
                .keys
                .into_iter()
                .filter_map(|k| k.access_key_id.map(|id| (k.section, id)))
                .collect(),
            locked: listing.locked,
        })
    }

    fn request_unlock(&self) {
        use std::sync::atomic::Ordering;
        if self.dry_run || self.announced.swap(true, Ordering::SeqCst) {
            return;
        }
        match self.keyring().map(|keyring| keyring.request_unlock()) {
            Ok(Ok(())) => {
                self.announced.store(false, Ordering::SeqCst);
                return;
            }
            Ok(Err(e)) => tracing::warn!("{e}; refreshing as soon as it is unlocked"),
            Err(e) => tracing::warn!("{e}"),
        }
        oath::notify_desktop(
            "Unlock your keyring",
            "aws-session-daemon needs the long-term AWS keys from the keyring to refresh your sessions; it continues as soon as the keyring is unlocked.".to_string(),
        );
    }

    fn long_term_secret(&self, credentials_section: &str) -> Result<SecretString, UnitError> {
        use std::sync::atomic::Ordering;
        let result = self.keyring()?.long_term_secret(credentials_section);
        match &result {
            Ok(_) => self.announced.store(false, Ordering::SeqCst),
            Err(e) if e.is_locked() && !self.announced.swap(true, Ordering::SeqCst) => {
                oath::notify_desktop(
                    "Unlock your keyring",
                    format!(
                        "aws-session-daemon needs the long-term AWS keys of [{credentials_section}] from the keyring to refresh your sessions; it continues as soon as the keyring is unlocked."
                    ),
                );
            }
            Err(_) => {}
        }
        result.map_err(|e| keyring_error(&e))
    }
}

/// Watches the keyring for being unlocked.
pub fn start_unlock_watch() -> super::ports::StartUnlockWatch {
    Box::new(|| {
        Box::pin(async {
            let keyring = Keyring::from_env(&crate::config::process_env).ok()?;
            match keyring.watch_unlock().await {
                Ok(events) => Some(Box::new(events) as Box<dyn super::ports::UnlockWatch>),
                Err(e) => {
                    tracing::debug!("not watching the keyring: {e}");
                    None
                }
            }
        })
    })
}

impl super::ports::UnlockWatch for crate::keyring::UnlockEvents {
    fn unlocked(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Err(e) = crate::keyring::UnlockEvents::unlocked(self).await {
                tracing::debug!("the keyring watch ended: {e}");
                std::future::pending::<()>().await;
            }
        })
    }
}

/// `mfa_process` codes follow AWS's standard TOTP period.
const PROCESS_CODE_PERIOD: u64 = super::ports::DEFAULT_PERIOD;

/// Codes from the YubiKey's OATH applet, or from `mfa_process`.
pub struct RealCodes;

impl CodeProvider for RealCodes {
    fn period(&self, source: &CodeSource) -> u64 {
        match source {
            CodeSource::Oath { credential, .. } => oath::protocol::parse_name(credential)
                .map_or(PROCESS_CODE_PERIOD, |name| name.period),
            CodeSource::Process { .. } => PROCESS_CODE_PERIOD,
        }
    }

    fn code(&self, source: &CodeSource, now: SystemTime) -> Result<Code, UnitError> {
        match source {
            CodeSource::Oath {
                credential,
                reader,
                password,
                timeout,
            } => {
                let options = OathOptions {
                    reader_filter: reader.clone(),
                    password: password.as_ref().map(password_source),
                    password_timeout: *timeout,
                };
                let code = oath::calculate(&options, credential, now, &oath::notify_touch)
                    .map_err(|e| UnitError::from_error(&e))?;
                Ok(Code {
                    value: code.value,
                    step: code.step,
                    period: code.period,
                })
            }
            CodeSource::Process { command, timeout } => {
                // Before the command runs: a clock before 1970 has no step.
                let seconds =
                    crate::timestamp::totp_seconds(now).map_err(|e| UnitError::from_error(&e))?;
                let value = oath::run_mfa_process(command, *timeout)
                    .map_err(|e| UnitError::from_error(&e))?;
                Ok(Code {
                    value,
                    step: seconds / PROCESS_CODE_PERIOD,
                    period: PROCESS_CODE_PERIOD,
                })
            }
        }
    }
}

impl super::ports::KeyWatch for oath::KeyEvents {
    fn changed(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(oath::KeyEvents::changed(self))
    }
}

/// Watches PC/SC for YubiKeys coming and going.
pub fn start_key_watch() -> super::ports::StartKeyWatch {
    Box::new(|| Box::new(oath::spawn_key_watcher()))
}

/// STS through the SDK, one cached client per endpoint.
pub struct RealSts {
    clients: StsClients,
    /// The wall clock, through the clock port: `sts` reads none of its own.
    clock: super::ports::SystemClock,
}

impl RealSts {
    pub fn new() -> Self {
        RealSts {
            clients: StsClients::new(),
            clock: super::ports::SystemClock,
        }
    }
}

impl Default for RealSts {
    fn default() -> Self {
        Self::new()
    }
}

impl StsApi for RealSts {
    fn close_connections(&self) {
        self.clients.close_connections();
    }

    fn get_session_token<'a>(
        &'a self,
        long_term: &'a SigningKeys,
        endpoint: &'a Endpoint,
        mfa: MfaCode<'a>,
        duration: u32,
    ) -> BoxFuture<'a, Result<SessionCredentials, UnitError>> {
        Box::pin(async move {
            self.clients
                .get_session_token(long_term, endpoint, mfa, duration, self.clock.now())
                .await
                .map_err(|e| UnitError::from_error(&e))
        })
    }

    fn assume_role<'a>(
        &'a self,
        signer: &'a SigningKeys,
        endpoint: &'a Endpoint,
        role: &'a RoleSettings,
        mfa: Option<MfaCode<'a>>,
    ) -> BoxFuture<'a, Result<SessionCredentials, UnitError>> {
        Box::pin(async move {
            self.clients
                .assume_role(signer, endpoint, role, mfa, self.clock.now())
                .await
                .map_err(|e| UnitError::from_error(&e))
        })
    }
}

/// IAM Identity Center through the `sso` module: the token cache shared
/// with the AWS tools (`~/.aws/sso/cache`), the sign-in lock and record in
/// the runtime directory, the SDK clients of OIDC and the portal (endpoints
/// overridden as the SDKs do it).
pub struct RealSso {
    /// Without a home directory there is no token cache: why.
    clients: Result<crate::sso::SsoClients, String>,
    clock: super::ports::SystemClock,
}

impl RealSso {
    /// From the process's environment: `HOME` (the token cache), the
    /// endpoint variables; `runtime_dir` holds the sign-in locks.
    pub fn from_env(runtime_dir: Option<std::path::PathBuf>) -> Self {
        let env = &crate::config::process_env;
        let clients = env("HOME")
            .map(|home| {
                crate::sso::SsoClients::new(
                    crate::sso::token_cache_dir(std::path::Path::new(&home)),
                    runtime_dir,
                    crate::sso::SsoEndpoints::from_env(env),
                )
            })
            .ok_or_else(|| {
                "HOME is not set: the SSO token cache (~/.aws/sso/cache) cannot be found"
                    .to_string()
            });
        RealSso {
            clients,
            clock: super::ports::SystemClock,
        }
    }

    fn clients(&self) -> Result<&crate::sso::SsoClients, UnitError> {
        self.clients
            .as_ref()
            .map_err(|why| UnitError::new(crate::retry::RetryClass::NeedsUser, why.clone()))
    }
}

impl super::ports::SsoApi for RealSso {
    fn token_status(
        &self,
        session: &crate::sso::SsoSession,
        now: time::OffsetDateTime,
    ) -> Result<crate::sso::TokenStatus, UnitError> {
        self.clients()?
            .token_status(session, now)
            .map_err(|e| UnitError::from_error(&e))
    }

    fn token<'a>(
        &'a self,
        session: &'a crate::sso::SsoSession,
    ) -> BoxFuture<'a, Result<crate::sso::TokenNow, UnitError>> {
        Box::pin(async move {
            let now = || self.clock.now();
            self.clients()?
                .token_now(session, &now)
                .await
                .map_err(|e| UnitError::from_error(&e))
        })
    }

    fn sign_in<'a>(
        &'a self,
        session: &'a crate::sso::SsoSession,
        on_code: &'a (dyn Fn(&crate::sso::DeviceCode) + Send + Sync),
    ) -> BoxFuture<'a, Result<(), UnitError>> {
        Box::pin(async move {
            let now = || self.clock.now();
            self.clients()?
                .access_token(session, &now, on_code)
                .await
                .map(|_| ())
                .map_err(|e| UnitError::from_error(&e))
        })
    }

    fn role_credentials<'a>(
        &'a self,
        session: &'a crate::sso::SsoSession,
        token: &'a crate::sso::AccessToken,
        account_id: &'a str,
        role_name: &'a str,
    ) -> BoxFuture<'a, Result<SessionCredentials, UnitError>> {
        Box::pin(async move {
            self.clients()?
                .role_credentials(session, token, account_id, role_name, self.clock.now())
                .await
                .map_err(|e| UnitError::from_error(&e))
        })
    }

    fn close_connections(&self) {
        if let Ok(clients) = &self.clients {
            clients.close_connections();
        }
    }
}
