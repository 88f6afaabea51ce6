//! IAM Identity Center (SSO) as a session source: an access token per SSO
//! session, kept fresh, and the role credentials it buys.
//!
//! Three outside systems, one module each: the OIDC service ([`oidc`]:
//! register, device sign-in, refresh), the portal ([`portal`]:
//! GetRoleCredentials) and the token cache the AWS tools share
//! ([`cache`]). This file puts them together into two calls a source
//! adapter needs:
//!
//! - [`SsoClients::access_token`]: the cached token while it has more than
//!   [`REFRESH_WINDOW`] left (botocore's window); else, under the SSO
//!   session's sign-in lock, a refresh with the refresh token (no person
//!   involved); else a sign-in: the device code goes to the caller's
//!   callback once, and the call returns when the person approves it;
//! - [`SsoClients::role_credentials`]: GetRoleCredentials with that token.
//!
//! One sign-in per SSO session, also across processes: tasks of one
//! process wait for each other on a per-session gate; processes on a
//! `flock` per session in the runtime directory ([`sign_in`]). A process
//! that finds a sign-in under way shows its code (recorded next to the
//! lock, without the device code) through its own callback, waits, and
//! then takes the token from the cache: it starts no device authorization
//! of its own. A refresh token that is refused is dropped from the cache
//! and ends in one sign-in: one device code, not a loop.
//!
//! Nothing here reads the wall clock: the caller passes its clock (a
//! sign-in waits minutes, so it is a function, read after each wait). No
//! default credential chain: the OIDC and portal calls are unsigned.
//! Endpoints are overridden as the SDKs do: `AWS_ENDPOINT_URL_SSO_OIDC`,
//! `AWS_ENDPOINT_URL_SSO`, then `AWS_ENDPOINT_URL` ([`SsoEndpoints`]).

mod cache;
mod error;
mod oidc;
mod portal;
mod profile;
mod sign_in;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sha1::{Digest, Sha1};
use time::OffsetDateTime;

pub(crate) use cache::token_cache_dir;
use cache::{CachedToken, TokenCache};
use error::CallContext;
pub(crate) use error::{SsoCall, SsoError, SsoErrorKind};
use oidc::{Oidc, Registration};
use portal::Portal;
pub(crate) use profile::{check_region, check_start_url, read_sso_session, split_scopes};
use sign_in::SignInFiles;

use crate::session::SessionCredentials;

/// The registration scope that earns a refresh token; the default of
/// `sso_registration_scopes`, as `aws configure sso` writes it.
pub(crate) const DEFAULT_SCOPE: &str = "sso:account:access";

/// A token with less than this left is refreshed first (botocore's
/// `SSOTokenProvider._REFRESH_WINDOW`; the SDK for Rust uses 5 minutes).
pub(crate) const REFRESH_WINDOW: time::Duration = time::Duration::minutes(15);

/// When a token expiring at `expires_at` is due for its refresh.
pub(crate) fn refresh_time(expires_at: OffsetDateTime) -> OffsetDateTime {
    expires_at - REFRESH_WINDOW
}

/// The caller's clock.
pub(crate) type Clock<'a> = &'a (dyn Fn() -> OffsetDateTime + Send + Sync);

/// What the caller does with a sign-in's code: a notification, a log line,
/// `status`, sd_notify `STATUS=`, maybe [`open_in_browser`].
pub(crate) type OnDeviceCode<'a> = &'a (dyn Fn(&DeviceCode) + Send + Sync);

/// How often a process waiting for another's sign-in looks at the lock.
const LOCK_POLL: Duration = Duration::from_millis(50);

/// An SSO session: `[sso-session NAME]` of the AWS config, or the same
/// settings from the daemon's config.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SsoSession {
    pub name: String,
    pub start_url: String,
    /// `sso_region`: where the Identity Center instance (OIDC, portal) is.
    pub region: String,
    /// `sso_registration_scopes`.
    pub scopes: Vec<String>,
    /// A legacy profile (`sso_start_url` without an sso-session): its token
    /// is cached under the start URL's hash; `name` only names it in
    /// messages.
    pub legacy: bool,
}

impl SsoSession {
    /// A session with the default scope.
    #[cfg(test)]
    pub(crate) fn new(
        name: impl Into<String>,
        start_url: impl Into<String>,
        region: impl Into<String>,
    ) -> Self {
        SsoSession {
            name: name.into(),
            start_url: start_url.into(),
            region: region.into(),
            scopes: vec![DEFAULT_SCOPE.to_string()],
            legacy: false,
        }
    }

    /// What the cache file is named after (the AWS tools' rule).
    fn cache_identifier(&self) -> &str {
        if self.legacy {
            &self.start_url
        } else {
            &self.name
        }
    }
}

/// An access token of an SSO session. `Debug` shows its expiry only.
#[derive(Clone)]
pub(crate) struct AccessToken {
    token: SecretString,
    pub expires_at: OffsetDateTime,
}

impl AccessToken {
    /// A token as another source hands it out (tests' fakes of the portal).
    #[cfg(test)]
    pub(crate) fn new(token: SecretString, expires_at: OffsetDateTime) -> Self {
        AccessToken { token, expires_at }
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"***")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Who is waiting for the approval of a device code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignInOrigin {
    /// This process started the sign-in and polls for it.
    ThisProcess,
    /// Another process did; this one waits for its token.
    OtherProcess { pid: Option<u32> },
}

/// A sign-in waiting for the person: where to go and which code to check
/// there. Not a secret: the user code is shown to the person on purpose,
/// and only the device code (never here) obtains the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceCode {
    pub session: String,
    pub start_url: String,
    pub verification_uri: String,
    /// The URL with the code filled in, when the service gave one.
    pub verification_uri_complete: Option<String>,
    pub user_code: String,
    pub expires_at: OffsetDateTime,
    pub origin: SignInOrigin,
}

impl DeviceCode {
    /// The URL to open: the one with the code filled in when there is one.
    pub(crate) fn url(&self) -> &str {
        self.verification_uri_complete
            .as_deref()
            .unwrap_or(&self.verification_uri)
    }
}

/// What the cache and the sign-in files say about an SSO session's token,
/// for `plan` and `status` (reads only; no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenStatus {
    /// Good until `refresh_at` (then refreshed, or signed in again when it
    /// cannot be refreshed).
    Valid {
        expires_at: OffsetDateTime,
        refresh_at: OffsetDateTime,
        refreshable: bool,
    },
    /// Due for a refresh now, with no person involved.
    RefreshDue { expires_at: OffsetDateTime },
    /// A sign-in is waiting for its approval.
    SignInPending(DeviceCode),
    /// No usable token: the next access starts a sign-in.
    SignInNeeded,
}

/// Endpoint overrides of the two services (`None`: the regional default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SsoEndpoints {
    pub oidc: Option<String>,
    pub portal: Option<String>,
}

impl SsoEndpoints {
    /// `AWS_ENDPOINT_URL_SSO_OIDC` and `AWS_ENDPOINT_URL_SSO`, each else
    /// `AWS_ENDPOINT_URL`: the SDKs' variables for the services `SSO OIDC`
    /// and `SSO` (empty ones ignored).
    pub(crate) fn from_env(env: crate::config::EnvLookup) -> Self {
        let get = |name: &str| env(name).filter(|value| !value.is_empty());
        let general = get("AWS_ENDPOINT_URL");
        SsoEndpoints {
            oidc: get("AWS_ENDPOINT_URL_SSO_OIDC").or_else(|| general.clone()),
            portal: get("AWS_ENDPOINT_URL_SSO").or(general),
        }
    }
}

/// The SSO side of the process: the SDK clients, the token cache, the
/// sign-in coordination. One per process, shared by all its tasks.
pub(crate) struct SsoClients {
    endpoints: SsoEndpoints,
    cache: TokenCache,
    runtime_dir: Option<PathBuf>,
    oidc: Oidc,
    portal: Portal,
    /// One gate per SSO session: the tasks of this process sign in or
    /// refresh one at a time (the flock does it across processes).
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// SHA-1 of access tokens the portal refused (UnauthorizedException):
    /// never handed out again, even while the cache says they are valid.
    rejected: Mutex<HashSet<Vec<u8>>>,
}

impl SsoClients {
    /// `cache_dir`: `~/.aws/sso/cache` ([`token_cache_dir`]);
    /// `runtime_dir`: where the sign-in locks and codes go
    /// ([`crate::session_cache::runtime_dir`]); without one, hidden files
    /// in the cache directory.
    pub(crate) fn new(
        cache_dir: PathBuf,
        runtime_dir: Option<PathBuf>,
        endpoints: SsoEndpoints,
    ) -> Self {
        SsoClients {
            endpoints,
            cache: TokenCache::new(cache_dir),
            runtime_dir,
            oidc: Oidc::default(),
            portal: Portal::default(),
            gates: Mutex::new(HashMap::new()),
            rejected: Mutex::new(HashSet::new()),
        }
    }

    /// Drops the SDK clients and their connection pools (see
    /// `StsClients::close_connections`).
    pub(crate) fn close_connections(&self) {
        self.oidc.close_connections();
        self.portal.close_connections();
    }

    fn context(&self, session: &SsoSession, endpoint: Option<&String>) -> CallContext {
        CallContext {
            session: session.name.clone(),
            start_url: session.start_url.clone(),
            region: session.region.clone(),
            endpoint: endpoint.cloned(),
            account_id: None,
            role_name: None,
        }
    }

    fn sign_in_files(&self, session: &SsoSession) -> SignInFiles {
        SignInFiles::new(
            self.runtime_dir.as_deref(),
            &self.cache,
            session.cache_identifier(),
        )
    }

    /// A valid access token for `session`: from the cache, refreshed, or
    /// from a sign-in (whose code goes to `on_device_code` once, unless
    /// another process's sign-in is under way: then its code, marked
    /// [`SignInOrigin::OtherProcess`], and this call waits for its token).
    pub(crate) async fn access_token(
        &self,
        session: &SsoSession,
        now: Clock<'_>,
        on_device_code: OnDeviceCode<'_>,
    ) -> Result<AccessToken, SsoError> {
        let context = self.context(session, self.endpoints.oidc.as_ref());
        match self
            .without_person(session, &context, now, Some(on_device_code))
            .await?
        {
            Step::Token(token) => Ok(token),
            // Both locks held until the sign-in ends.
            Step::SignIn { gate, lock, files } => {
                let signed_in = self
                    .sign_in(session, &context, &files, now, on_device_code)
                    .await;
                drop((gate, lock));
                signed_in
            }
            Step::UnderWay => Err(SsoError::local(
                SsoErrorKind::Cache,
                SsoCall::TokenCache,
                &context,
                "the sign-in lock could not be waited for",
            )),
        }
    }

    /// The access token of `session` as far as it can be had without a
    /// person and without waiting for one: from the cache, or refreshed
    /// with the refresh token (under the sign-in lock, as
    /// [`SsoClients::access_token`] does it); else whether a sign-in is
    /// needed, or under way in another task or process (whose lock is not
    /// waited for: a sign-in takes minutes).
    pub(crate) async fn token_now(
        &self,
        session: &SsoSession,
        now: Clock<'_>,
    ) -> Result<TokenNow, SsoError> {
        let context = self.context(session, self.endpoints.oidc.as_ref());
        Ok(
            match self.without_person(session, &context, now, None).await? {
                Step::Token(token) => TokenNow::Token(token),
                Step::SignIn { .. } => TokenNow::SignInNeeded,
                Step::UnderWay => TokenNow::SignInUnderWay,
            },
        )
    }

    /// The token from the cache or a refresh, under the session's gate and
    /// lock; `wait`: how to wait for another's lock (showing its code), or
    /// not at all.
    async fn without_person(
        &self,
        session: &SsoSession,
        context: &CallContext,
        now: Clock<'_>,
        wait: Option<OnDeviceCode<'_>>,
    ) -> Result<Step, SsoError> {
        if let Some(token) = self.fresh(session, context, now())? {
            return Ok(Step::Token(token));
        }
        let gate = self.gate(session);
        let gate = match wait {
            Some(_) => gate.lock_owned().await,
            None => match gate.try_lock_owned() {
                Ok(gate) => gate,
                Err(_) => return Ok(Step::UnderWay),
            },
        };
        if let Some(token) = self.fresh(session, context, now())? {
            return Ok(Step::Token(token));
        }
        let files = self.sign_in_files(session);
        let lock = match wait {
            Some(on_device_code) => match self
                .wait_for_lock(session, context, &files, now, on_device_code)
                .await?
            {
                Waited::Locked(lock) => lock,
                Waited::Token(token) => return Ok(Step::Token(token)),
            },
            None => match files
                .try_lock()
                .map_err(|e| Self::cache_error(context, e))?
            {
                Some(lock) => lock,
                None => return Ok(Step::UnderWay),
            },
        };
        // Under the lock the cache is ours: what it holds now is final.
        let at = now();
        if let Some(cached) = self.read_cache(session, context)? {
            let usable = cached.expires_at > at && !self.is_rejected(&cached.access_token);
            if usable && cached.expires_at - at >= REFRESH_WINDOW {
                return Ok(Step::Token(token_of(&cached)));
            }
            if cached.refreshable(at) {
                match self.refresh(session, context, &cached, at).await {
                    Ok(token) => return Ok(Step::Token(token)),
                    Err(error)
                        if matches!(
                            error.kind(),
                            SsoErrorKind::RefreshRefused | SsoErrorKind::RegistrationExpired
                        ) =>
                    {
                        tracing::info!(session = %session.name, "the refresh token was refused ({}); signing in again", error.kind_name());
                        self.drop_refresh_token(session, context, cached)?;
                    }
                    Err(error) if usable => {
                        tracing::warn!(session = %session.name, error = %error, "cannot refresh the access token; using it until it expires");
                        return Ok(Step::Token(token_of(&cached)));
                    }
                    Err(error) => return Err(error),
                }
            } else if usable {
                // No refresh possible: it serves until it expires, and the
                // sign-in waits until then.
                return Ok(Step::Token(token_of(&cached)));
            }
        }
        Ok(Step::SignIn { gate, lock, files })
    }

    /// GetRoleCredentials of `account_id` and `role_name` with `token`. A
    /// token the portal refuses is never handed out again by
    /// [`SsoClients::access_token`], which refreshes or signs in instead.
    pub(crate) async fn role_credentials(
        &self,
        session: &SsoSession,
        token: &AccessToken,
        account_id: &str,
        role_name: &str,
        now: OffsetDateTime,
    ) -> Result<SessionCredentials, SsoError> {
        let mut context = self.context(session, self.endpoints.portal.as_ref());
        context.account_id = Some(account_id.to_string());
        context.role_name = Some(role_name.to_string());
        let result = self.portal.role_credentials(&context, token, now).await;
        if let Err(error) = &result
            && error.kind() == SsoErrorKind::TokenRejected
        {
            self.reject(&token.token);
        }
        result
    }

    /// What the cache and the sign-in files say about `session`'s token.
    pub(crate) fn token_status(
        &self,
        session: &SsoSession,
        now: OffsetDateTime,
    ) -> Result<TokenStatus, SsoError> {
        let context = self.context(session, self.endpoints.oidc.as_ref());
        if let Some(code) = self.sign_in_files(session).pending(now) {
            return Ok(TokenStatus::SignInPending(code));
        }
        Ok(match self.read_cache(session, &context)? {
            Some(token) if token.expires_at - now >= REFRESH_WINDOW => TokenStatus::Valid {
                expires_at: token.expires_at,
                refresh_at: refresh_time(token.expires_at),
                refreshable: token.refreshable(refresh_time(token.expires_at)),
            },
            Some(token) if token.refreshable(now) => TokenStatus::RefreshDue {
                expires_at: token.expires_at,
            },
            Some(token) if token.expires_at > now => TokenStatus::Valid {
                expires_at: token.expires_at,
                refresh_at: token.expires_at,
                refreshable: false,
            },
            _ => TokenStatus::SignInNeeded,
        })
    }

    fn gate(&self, session: &SsoSession) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        gates
            .entry(session.cache_identifier().to_string())
            .or_default()
            .clone()
    }

    fn digest(token: &SecretString) -> Vec<u8> {
        Sha1::digest(token.expose_secret().as_bytes()).to_vec()
    }

    fn is_rejected(&self, token: &SecretString) -> bool {
        let rejected = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
        !rejected.is_empty() && rejected.contains(&Self::digest(token))
    }

    fn reject(&self, token: &SecretString) {
        let mut rejected = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
        // A few tokens a day at most; the oldest are long expired.
        if rejected.len() >= 256 {
            rejected.clear();
        }
        rejected.insert(Self::digest(token));
    }

    fn cache_error(context: &CallContext, error: cache::CacheError) -> SsoError {
        SsoError::local(SsoErrorKind::Cache, SsoCall::TokenCache, context, error.0)
    }

    /// The cached token of `session`; a token of another start URL (a
    /// session name reused for another portal) counts as none.
    fn read_cache(
        &self,
        session: &SsoSession,
        context: &CallContext,
    ) -> Result<Option<CachedToken>, SsoError> {
        let token = self
            .cache
            .read(session.cache_identifier())
            .map_err(|e| Self::cache_error(context, e))?;
        Ok(token.filter(|t| {
            t.start_url.as_deref().is_none_or(|url| {
                url.trim_end_matches('/') == session.start_url.trim_end_matches('/')
            })
        }))
    }

    fn write_cache(
        &self,
        session: &SsoSession,
        context: &CallContext,
        token: &CachedToken,
    ) -> Result<(), SsoError> {
        self.cache
            .write(session.cache_identifier(), token)
            .map_err(|e| Self::cache_error(context, e))
    }

    /// The cached token when it has more than [`REFRESH_WINDOW`] left and
    /// was not refused.
    fn fresh(
        &self,
        session: &SsoSession,
        context: &CallContext,
        now: OffsetDateTime,
    ) -> Result<Option<AccessToken>, SsoError> {
        Ok(self
            .read_cache(session, context)?
            .filter(|t| t.expires_at - now >= REFRESH_WINDOW && !self.is_rejected(&t.access_token))
            .map(|t| token_of(&t)))
    }

    /// Takes the session's sign-in lock, waiting for another process's
    /// sign-in or refresh to end; shows its code once; returns its token
    /// as soon as it is in the cache.
    async fn wait_for_lock(
        &self,
        session: &SsoSession,
        context: &CallContext,
        files: &SignInFiles,
        now: Clock<'_>,
        on_device_code: OnDeviceCode<'_>,
    ) -> Result<Waited, SsoError> {
        let mut shown = false;
        let mut round: u32 = 0;
        loop {
            if let Some(lock) = files
                .try_lock()
                .map_err(|e| Self::cache_error(context, e))?
            {
                return Ok(Waited::Locked(lock));
            }
            if !shown && let Some(code) = files.pending(now()) {
                tracing::debug!(session = %session.name, "another process is signing in; waiting for its token");
                on_device_code(&code);
                shown = true;
            }
            if round % 4 == 3
                && let Some(token) = self.fresh(session, context, now())?
            {
                return Ok(Waited::Token(token));
            }
            round = round.wrapping_add(1);
            tokio::time::sleep(LOCK_POLL).await;
        }
    }

    /// CreateToken with the refresh token; the new token is cached (with
    /// the old refresh token when no new one came, as the SDK for Rust
    /// does).
    async fn refresh(
        &self,
        session: &SsoSession,
        context: &CallContext,
        cached: &CachedToken,
        now: OffsetDateTime,
    ) -> Result<AccessToken, SsoError> {
        let (Some(client_id), Some(client_secret), Some(expires_at), Some(refresh_token)) = (
            &cached.client_id,
            &cached.client_secret,
            cached.registration_expires_at,
            &cached.refresh_token,
        ) else {
            return Err(SsoError::local(
                SsoErrorKind::RefreshRefused,
                SsoCall::RefreshToken,
                context,
                "the cached token cannot be refreshed",
            ));
        };
        let registration = Registration {
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
            expires_at,
        };
        let token = self
            .oidc
            .refresh(context, &registration, refresh_token, now)
            .await?;
        let refreshed = cache_entry(session, token, registration, Some(refresh_token));
        self.write_cache(session, context, &refreshed)?;
        Ok(token_of(&refreshed))
    }

    /// Writes the token back without its refused refresh token: no process
    /// (nor botocore, nor the SDK) tries it again.
    fn drop_refresh_token(
        &self,
        session: &SsoSession,
        context: &CallContext,
        mut cached: CachedToken,
    ) -> Result<(), SsoError> {
        cached.refresh_token = None;
        self.write_cache(session, context, &cached)
    }

    /// The device sign-in: register a client (a fresh registration for
    /// every sign-in: it outlives the session it starts, so a refresh never
    /// meets an expired registration, and a change of scopes takes effect),
    /// start the device authorization, record and show its code, wait for
    /// the approval, cache the token.
    async fn sign_in(
        &self,
        session: &SsoSession,
        context: &CallContext,
        files: &SignInFiles,
        now: Clock<'_>,
        on_device_code: OnDeviceCode<'_>,
    ) -> Result<AccessToken, SsoError> {
        let registration = self
            .oidc
            .register_client(context, &session.scopes, now())
            .await?;
        let device = self
            .oidc
            .start_device_authorization(context, &registration, now())
            .await?;
        let code = DeviceCode {
            session: session.name.clone(),
            start_url: session.start_url.clone(),
            verification_uri: device.verification_uri.clone(),
            verification_uri_complete: device.verification_uri_complete.clone(),
            user_code: device.user_code.clone(),
            expires_at: device.expires_at,
            origin: SignInOrigin::ThisProcess,
        };
        // Shown to other processes while it waits; removed when it ends,
        // however it ends (the guard).
        let _recorded = files.record(&code);
        on_device_code(&code);
        let token = self
            .oidc
            .wait_for_token(context, &registration, &device, now)
            .await?;
        let cached = cache_entry(session, token, registration, None);
        self.write_cache(session, context, &cached)?;
        Ok(token_of(&cached))
    }
}

enum Waited {
    Locked(crate::private_file::Lock),
    Token(AccessToken),
}

/// How far [`SsoClients::without_person`] got.
enum Step {
    Token(AccessToken),
    /// Only a sign-in helps: both locks are held for it.
    SignIn {
        gate: tokio::sync::OwnedMutexGuard<()>,
        lock: crate::private_file::Lock,
        files: SignInFiles,
    },
    /// Another task or process holds the lock (not waited for).
    UnderWay,
}

/// What [`SsoClients::token_now`] found.
#[derive(Debug)]
pub(crate) enum TokenNow {
    Token(AccessToken),
    /// No usable token, and none can be had without a person.
    SignInNeeded,
    /// Another task or process is signing in (or refreshing) now.
    SignInUnderWay,
}

/// The cache entry of `token`, with the registration that obtained it
/// (a refresh needs both). Without a new refresh token, `kept` stays (the
/// SDK for Rust does the same; botocore drops it).
fn cache_entry(
    session: &SsoSession,
    token: oidc::Token,
    registration: Registration,
    kept: Option<&SecretString>,
) -> CachedToken {
    CachedToken {
        start_url: Some(session.start_url.clone()),
        region: Some(session.region.clone()),
        access_token: token.access_token,
        expires_at: token.expires_at,
        client_id: Some(registration.client_id),
        client_secret: Some(registration.client_secret),
        registration_expires_at: Some(registration.expires_at),
        refresh_token: token.refresh_token.or_else(|| kept.cloned()),
    }
}

fn token_of(cached: &CachedToken) -> AccessToken {
    AccessToken {
        token: cached.access_token.clone(),
        expires_at: cached.expires_at,
    }
}

impl SsoError {
    fn kind_name(&self) -> String {
        format!("{:?}", self.kind())
    }
}

/// Opens `url` in the desktop's browser (`xdg-open`), without waiting for
/// it. Off unless the config asks for it. Only http(s) URLs: the URL comes
/// from the service, and anything else (`file:`, an option) is refused.
pub(crate) fn open_in_browser(url: &str) -> std::io::Result<()> {
    let plausible = (url.starts_with("https://") || url.starts_with("http://"))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !plausible {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not an http(s) URL",
        ));
    }
    let mut child = std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    // Reaped in the background: xdg-open may wait for the browser.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

/// Where an SDK client sends its calls.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Where {
    region: String,
    endpoint: Option<String>,
}

impl Where {
    fn of(context: &CallContext) -> Self {
        Where {
            region: context.region.clone(),
            endpoint: context.endpoint.clone(),
        }
    }

    fn check(&self, service: &str) -> Result<(), String> {
        if self.region.trim().is_empty() {
            return Err("sso_region is empty".to_string());
        }
        match &self.endpoint {
            Some(url) => crate::sts::check_endpoint_url(service, url),
            None => Ok(()),
        }
    }
}

/// SDK clients kept per (region, endpoint), built on first use: the calls
/// to one place share one connection pool.
struct ClientCache<C> {
    clients: Mutex<HashMap<Where, C>>,
}

impl<C> Default for ClientCache<C> {
    fn default() -> Self {
        ClientCache {
            clients: Mutex::new(HashMap::new()),
        }
    }
}

impl<C: Clone> ClientCache<C> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Where, C>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get_or_build(
        &self,
        at: &Where,
        build: impl FnOnce() -> Result<C, String>,
    ) -> Result<C, String> {
        if let Some(client) = self.lock().get(at) {
            return Ok(client.clone());
        }
        let client = build()?;
        Ok(self.lock().entry(at.clone()).or_insert(client).clone())
    }

    fn clear(&self) {
        self.lock().clear();
    }
}

/// A client of SDK crate `$sdk` (`aws_sdk_ssooidc`, `aws_sdk_sso`): the
/// daemon's one HTTPS client, explicit region and endpoint, timeouts, no
/// retries, answers capped in size, no credentials (the calls are
/// unsigned, and a client built from `Config::builder()` never consults
/// the default chain).
macro_rules! build_client {
    ($sdk:ident, $at:expr, $timeouts:expr, $service:expr) => {{
        let at: &$crate::sso::Where = $at;
        let timeouts: $crate::sts::Timeouts = $timeouts;
        at.check($service).map(|()| {
            let mut builder = $sdk::Config::builder()
                .behavior_version($sdk::config::BehaviorVersion::latest())
                .http_client($crate::sts::https_client())
                .region($sdk::config::Region::new(at.region.clone()))
                .retry_config($sdk::config::retry::RetryConfig::disabled())
                .interceptor($crate::sts::ResponseLimit)
                .timeout_config(
                    $sdk::config::timeout::TimeoutConfig::builder()
                        .connect_timeout(timeouts.connect)
                        .operation_timeout(timeouts.operation)
                        .build(),
                );
            if let Some(url) = &at.endpoint {
                builder = builder.endpoint_url(url);
            }
            $sdk::Client::from_conf(builder.build())
        })
    }};
}
use build_client;

/// What an SDK error tells (see [`crate::sts::failure_of`]), with the
/// OIDC's OAuth `error_description` as the message: the SDK reads only
/// `message` keys, which OIDC answers do not have.
fn failure<E>(
    error: &aws_sdk_sso::error::SdkError<E, aws_sdk_sso::config::http::HttpResponse>,
) -> crate::sts::Failure
where
    E: aws_sdk_sso::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    #[derive(serde::Deserialize)]
    struct OAuthError {
        error: Option<String>,
        error_description: Option<String>,
    }
    let mut failure = crate::sts::failure_of(error);
    if failure.message.is_none()
        && let aws_sdk_sso::error::SdkError::ServiceError(service) = error
        && let Some(body) = service.raw().body().bytes()
        && let Ok(oauth) = serde_json::from_slice::<OAuthError>(body)
    {
        let nonempty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        failure.message = match (nonempty(oauth.error), nonempty(oauth.error_description)) {
            (Some(error), Some(description)) => Some(format!("{error}: {description}")),
            (error, description) => description.or(error),
        };
    }
    failure
}
