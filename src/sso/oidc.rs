//! The SSO OIDC service (`oidc.{region}.amazonaws.com`): register a public
//! client, start a device authorization, wait for the person's approval,
//! refresh the access token. Unsigned calls: the client id and secret go in
//! the body. One call is one HTTP request (the SDK's retries are off); the
//! waiting loop follows RFC 8628: poll every `interval` seconds, add five
//! seconds on `slow_down`, keep polling on `authorization_pending` and
//! through passing network faults, stop on `expired_token` and
//! `access_denied`.

use std::time::Duration;

use aws_sdk_ssooidc::config::http::HttpResponse;
use aws_sdk_ssooidc::error::SdkError;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use super::error::{CallContext, SsoCall, SsoError, SsoErrorKind};
use super::{ClientCache, Clock, Where, failure};
use crate::sts::TransportKind;

/// The grant types of CreateToken (RFC 8628 and RFC 6749).
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const REFRESH_GRANT: &str = "refresh_token";

/// RFC 8628 §3.2: without an `interval`, poll every five seconds...
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// ... and §3.5: on `slow_down`, add five seconds to it for good.
pub(crate) const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// An interval longer than this is the service's mistake, not a plan.
const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// Lifetimes beyond these are cut to them (an answer from a broken or
/// hostile endpoint must not keep a token "fresh" until the year 9999).
/// Identity Center sessions last at most 90 days; registrations 90 days.
const MAX_TOKEN_LIFETIME: time::Duration = time::Duration::days(90);
const MAX_REGISTRATION_LIFETIME: time::Duration = time::Duration::days(366);
/// A registration whose answer says "never expires" (RFC 7591: 0) is
/// registered again after this long.
const OPEN_REGISTRATION_LIFETIME: time::Duration = time::Duration::days(90);

/// A registered public client. The secret authenticates CreateToken and
/// StartDeviceAuthorization.
#[derive(Clone)]
pub(crate) struct Registration {
    pub client_id: String,
    pub client_secret: SecretString,
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A started sign-in: the code shown to the person and the device code
/// that polls for the token (a secret: whoever has it gets the token once
/// the person approves).
pub(crate) struct DeviceAuthorization {
    pub device_code: SecretString,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_at: OffsetDateTime,
    pub interval: Duration,
}

/// What CreateToken hands out.
pub(crate) struct Token {
    pub access_token: SecretString,
    pub expires_at: OffsetDateTime,
    /// Only when the client registered with `sso:account:access`.
    pub refresh_token: Option<SecretString>,
}

/// The OIDC clients of the process, one per (region, endpoint).
#[derive(Default)]
pub(crate) struct Oidc {
    clients: ClientCache<aws_sdk_ssooidc::Client>,
    timeouts: crate::sts::Timeouts,
}

impl Oidc {
    pub(crate) fn close_connections(&self) {
        self.clients.clear();
    }

    fn client(
        &self,
        call: SsoCall,
        context: &CallContext,
    ) -> Result<aws_sdk_ssooidc::Client, SsoError> {
        let at = Where::of(context);
        self.clients
            .get_or_build(&at, || {
                super::build_client!(
                    aws_sdk_ssooidc,
                    &at,
                    self.timeouts,
                    "IAM Identity Center OIDC"
                )
            })
            .map_err(|detail| SsoError::local(SsoErrorKind::InvalidSetup, call, context, detail))
    }

    /// RegisterClient: a public client named after the SSO session, with
    /// `scopes` (`sso:account:access` is what earns a refresh token).
    pub(crate) async fn register_client(
        &self,
        context: &CallContext,
        scopes: &[String],
        now: OffsetDateTime,
    ) -> Result<Registration, SsoError> {
        let call = SsoCall::RegisterClient;
        let client = self.client(call, context)?;
        let answer = client
            .register_client()
            .client_name(format!("aws-session-daemon-{}", context.session))
            .client_type("public")
            .set_scopes((!scopes.is_empty()).then(|| scopes.to_vec()))
            .send()
            .await;
        let output = answer.map_err(|e| failed(call, context, &e, &[]))?;
        let (Some(client_id), Some(secret)) = (output.client_id(), output.client_secret()) else {
            return Err(unreadable(
                call,
                context,
                "the answer has no clientId or clientSecret",
            ));
        };
        let expires_at = match output.client_secret_expires_at() {
            0 => now + OPEN_REGISTRATION_LIFETIME,
            at => OffsetDateTime::from_unix_timestamp(at)
                .ok()
                .filter(|at| *at > now)
                .map(|at| at.min(now + MAX_REGISTRATION_LIFETIME))
                .ok_or_else(|| {
                    unreadable(
                        call,
                        context,
                        &format!("clientSecretExpiresAt {at} is not in the future"),
                    )
                })?,
        };
        tracing::debug!(session = %context.session, client_id, expires_at = %crate::timestamp::rfc3339(expires_at), "registered an OIDC client");
        Ok(Registration {
            client_id: client_id.to_string(),
            client_secret: SecretString::from(secret),
            expires_at,
        })
    }

    /// StartDeviceAuthorization for the portal at `context.start_url`.
    pub(crate) async fn start_device_authorization(
        &self,
        context: &CallContext,
        registration: &Registration,
        now: OffsetDateTime,
    ) -> Result<DeviceAuthorization, SsoError> {
        let call = SsoCall::StartDeviceAuthorization;
        let client = self.client(call, context)?;
        let secret = registration.client_secret.expose_secret();
        let answer = client
            .start_device_authorization()
            .client_id(&registration.client_id)
            .client_secret(secret)
            .start_url(&context.start_url)
            .send()
            .await;
        let output = answer.map_err(|e| failed(call, context, &e, &[secret]))?;
        let (Some(device_code), Some(user_code), Some(uri)) = (
            output.device_code(),
            output.user_code(),
            output.verification_uri(),
        ) else {
            return Err(unreadable(
                call,
                context,
                "the answer has no deviceCode, userCode or verificationUri",
            ));
        };
        let lifetime = i64::from(output.expires_in().max(0));
        if lifetime == 0 {
            return Err(unreadable(call, context, "the device code expires at once"));
        }
        let interval = match u64::try_from(output.interval()) {
            Ok(0) | Err(_) => DEFAULT_INTERVAL,
            Ok(seconds) => Duration::from_secs(seconds).min(MAX_INTERVAL),
        };
        Ok(DeviceAuthorization {
            device_code: SecretString::from(device_code),
            user_code: user_code.to_string(),
            verification_uri: uri.to_string(),
            verification_uri_complete: output.verification_uri_complete().map(str::to_string),
            // Device codes live minutes; an hour is already generous.
            expires_at: now + time::Duration::seconds(lifetime.min(3600)),
            interval,
        })
    }

    /// Polls CreateToken until the person approves the sign-in (RFC 8628
    /// §3.4-3.5), the code expires or the sign-in is denied. `now` is read
    /// after each wait, for the expiry of the code and of the token.
    pub(crate) async fn wait_for_token(
        &self,
        context: &CallContext,
        registration: &Registration,
        device: &DeviceAuthorization,
        now: Clock<'_>,
    ) -> Result<Token, SsoError> {
        let mut interval = device.interval;
        loop {
            tokio::time::sleep(interval).await;
            let at = now();
            if at >= device.expires_at {
                return Err(SsoError::local(
                    SsoErrorKind::SignInExpired,
                    SsoCall::CreateToken,
                    context,
                    format!(
                        "the code expired at {}",
                        crate::timestamp::rfc3339(device.expires_at)
                    ),
                ));
            }
            let attempt = self
                .create_token(
                    SsoCall::CreateToken,
                    context,
                    registration,
                    Grant::DeviceCode(&device.device_code),
                    at,
                )
                .await;
            let error = match attempt {
                Ok(token) => return Ok(token),
                Err(error) => error,
            };
            match error.kind() {
                SsoErrorKind::AuthorizationPending => {}
                SsoErrorKind::SlowDown | SsoErrorKind::Throttled => {
                    interval = (interval + SLOW_DOWN_STEP).min(MAX_INTERVAL);
                    tracing::debug!(session = %context.session, interval_s = interval.as_secs(), "asked to slow down: polling less often");
                }
                // The approval does not depend on this connection: keep
                // waiting for it through a passing fault.
                SsoErrorKind::Transport(_) | SsoErrorKind::Server => {
                    tracing::debug!(session = %context.session, error = %error, "polling for the sign-in failed; polling on");
                }
                _ => return Err(error),
            }
        }
    }

    /// CreateToken with the refresh token: a new access token (and maybe a
    /// new refresh token) with no person involved.
    pub(crate) async fn refresh(
        &self,
        context: &CallContext,
        registration: &Registration,
        refresh_token: &SecretString,
        now: OffsetDateTime,
    ) -> Result<Token, SsoError> {
        self.create_token(
            SsoCall::RefreshToken,
            context,
            registration,
            Grant::Refresh(refresh_token),
            now,
        )
        .await
    }

    async fn create_token(
        &self,
        call: SsoCall,
        context: &CallContext,
        registration: &Registration,
        grant: Grant<'_>,
        now: OffsetDateTime,
    ) -> Result<Token, SsoError> {
        let client = self.client(call, context)?;
        let secret = registration.client_secret.expose_secret();
        let request = client
            .create_token()
            .client_id(&registration.client_id)
            .client_secret(secret);
        let (request, grant_secret) = match grant {
            Grant::DeviceCode(code) => (
                request
                    .grant_type(DEVICE_CODE_GRANT)
                    .device_code(code.expose_secret()),
                code.expose_secret(),
            ),
            Grant::Refresh(token) => (
                request
                    .grant_type(REFRESH_GRANT)
                    .refresh_token(token.expose_secret()),
                token.expose_secret(),
            ),
        };
        let output = request
            .send()
            .await
            .map_err(|e| failed(call, context, &e, &[secret, grant_secret]))?;
        let Some(access_token) = output.access_token().filter(|t| !t.is_empty()) else {
            return Err(unreadable(call, context, "the answer has no accessToken"));
        };
        let lifetime = time::Duration::seconds(i64::from(output.expires_in()));
        if lifetime <= time::Duration::ZERO {
            return Err(unreadable(
                call,
                context,
                &format!("the token expires in {} s", output.expires_in()),
            ));
        }
        let expires_at = now + lifetime.min(MAX_TOKEN_LIFETIME);
        tracing::debug!(session = %context.session, %call, expires_at = %crate::timestamp::rfc3339(expires_at), refresh_token = output.refresh_token().is_some(), "got an access token");
        Ok(Token {
            access_token: SecretString::from(access_token),
            expires_at,
            refresh_token: output
                .refresh_token()
                .filter(|t| !t.is_empty())
                .map(SecretString::from),
        })
    }
}

enum Grant<'a> {
    DeviceCode(&'a SecretString),
    Refresh(&'a SecretString),
}

fn unreadable(call: SsoCall, context: &CallContext, detail: &str) -> SsoError {
    SsoError::local(
        SsoErrorKind::Transport(TransportKind::Response),
        call,
        context,
        detail,
    )
}

fn failed<E>(
    call: SsoCall,
    context: &CallContext,
    error: &SdkError<E, HttpResponse>,
    sent_secrets: &[&str],
) -> SsoError
where
    E: aws_sdk_ssooidc::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let error = SsoError::from_failure(call, context, failure(error), sent_secrets);
    if error.kind() != SsoErrorKind::AuthorizationPending {
        tracing::debug!(session = %context.session, %call, error = %error, "OIDC call failed");
    }
    error
}
