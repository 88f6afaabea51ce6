//! The IAM Identity Center portal (`portal.sso.{region}.amazonaws.com`):
//! GetRoleCredentials turns an access token into the temporary credentials
//! of one account and role. The token goes in the `x-amz-sso_bearer_token`
//! header; nothing is signed. One call is one HTTP request: the caller
//! backs off (the portal throttles with `TooManyRequestsException`).

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use super::error::{CallContext, SsoCall, SsoError, SsoErrorKind};
use super::{AccessToken, ClientCache, Where, failure};
use crate::secret::mask_access_key_id;
use crate::session::SessionCredentials;
use crate::sts::TransportKind;

/// Permission sets grant sessions of at most 12 hours; an expiry further
/// away (clock skew allowed for) is cut to it.
const MAX_ROLE_SESSION: time::Duration = time::Duration::minutes(12 * 60 + 15);

/// The portal clients of the process, one per (region, endpoint).
#[derive(Default)]
pub(crate) struct Portal {
    clients: ClientCache<aws_sdk_sso::Client>,
    timeouts: crate::sts::Timeouts,
}

impl Portal {
    pub(crate) fn close_connections(&self) {
        self.clients.clear();
    }

    /// GetRoleCredentials of `context.account_id` and `context.role_name`.
    pub(crate) async fn role_credentials(
        &self,
        context: &CallContext,
        token: &AccessToken,
        now: OffsetDateTime,
    ) -> Result<SessionCredentials, SsoError> {
        let call = SsoCall::GetRoleCredentials;
        let at = Where::of(context);
        let client = self
            .clients
            .get_or_build(&at, || {
                super::build_client!(
                    aws_sdk_sso,
                    &at,
                    self.timeouts,
                    "IAM Identity Center portal"
                )
            })
            .map_err(|detail| SsoError::local(SsoErrorKind::InvalidSetup, call, context, detail))?;
        let account_id = context.account_id.as_deref().unwrap_or("");
        let role_name = context.role_name.as_deref().unwrap_or("");
        let bearer = token.token.expose_secret();
        let answer = client
            .get_role_credentials()
            .account_id(account_id)
            .role_name(role_name)
            .access_token(bearer)
            .send()
            .await;
        let output = answer.map_err(|e| {
            let error = SsoError::from_failure(call, context, failure(&e), &[bearer]);
            tracing::debug!(session = %context.session, account_id, role_name, error = %error, "GetRoleCredentials failed");
            error
        })?;
        let unreadable = |detail: &str| {
            SsoError::local(
                SsoErrorKind::Transport(TransportKind::Response),
                call,
                context,
                detail,
            )
        };
        let credentials = output
            .role_credentials()
            .ok_or_else(|| unreadable("the answer has no roleCredentials"))?;
        let (Some(key_id), Some(secret), Some(session_token)) = (
            credentials.access_key_id().filter(|s| !s.is_empty()),
            credentials.secret_access_key().filter(|s| !s.is_empty()),
            credentials.session_token().filter(|s| !s.is_empty()),
        ) else {
            return Err(unreadable("the roleCredentials are incomplete"));
        };
        let expiration = i128::from(credentials.expiration())
            .checked_mul(1_000_000)
            .and_then(|nanos| OffsetDateTime::from_unix_timestamp_nanos(nanos).ok())
            .filter(|at| *at > now)
            .ok_or_else(|| unreadable("the credentials' expiration is not in the future"))?;
        let latest = now + MAX_ROLE_SESSION;
        let expiration = if expiration > latest {
            tracing::warn!(
                session = %context.session, account_id, role_name,
                "IAM Identity Center said the credentials expire at {}, later than any role session can last; treating them as expiring at {}",
                crate::timestamp::rfc3339(expiration),
                crate::timestamp::rfc3339(latest)
            );
            latest
        } else {
            expiration
        };
        tracing::debug!(
            session = %context.session, account_id, role_name,
            new_access_key = %mask_access_key_id(key_id),
            expiration = %crate::timestamp::rfc3339(expiration),
            "GetRoleCredentials succeeded"
        );
        Ok(SessionCredentials {
            access_key_id: key_id.to_string(),
            secret_access_key: SecretString::from(secret),
            session_token: SecretString::from(session_token),
            expiration,
        })
    }
}
