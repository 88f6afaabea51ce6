//! IAM Identity Center errors: what went wrong, in which call, for which
//! SSO session (and account and role), what to do, and how to retry.
//!
//! The OIDC service answers with HTTP 400/401, `x-amzn-ErrorType` naming
//! the exception and a body `{error, error_description}` (OAuth's words);
//! the portal with 401/403/404/429 and `{message}`. A 403
//! `ForbiddenException` ("No access") is not in the portal's model: the SDK
//! hands it over as an unmodeled error with that code. The classifier
//! ([`classify`]) is a pure function of the call, the code and the status,
//! tested from a table.

use std::fmt;

use crate::retry::{Classified, RetryClass};
use crate::sts::TransportKind;

/// The IAM Identity Center call (or local step) that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SsoCall {
    /// OIDC RegisterClient.
    RegisterClient,
    /// OIDC StartDeviceAuthorization: the start of a sign-in.
    StartDeviceAuthorization,
    /// OIDC CreateToken with the device code: waiting for the approval.
    CreateToken,
    /// OIDC CreateToken with the refresh token.
    RefreshToken,
    /// Portal GetRoleCredentials.
    GetRoleCredentials,
    /// Reading or writing the token cache or the sign-in files.
    TokenCache,
}

impl fmt::Display for SsoCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SsoCall::RegisterClient => "RegisterClient",
            SsoCall::StartDeviceAuthorization => "StartDeviceAuthorization",
            SsoCall::CreateToken => "CreateToken",
            SsoCall::RefreshToken => "CreateToken (refresh)",
            SsoCall::GetRoleCredentials => "GetRoleCredentials",
            SsoCall::TokenCache => "token cache",
        })
    }
}

/// What went wrong, as far as the caller needs to tell cases apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SsoErrorKind {
    /// `AuthorizationPendingException`: the person has not approved yet
    /// (seen only while polling).
    AuthorizationPending,
    /// `SlowDownException`: polling faster than the interval, or the
    /// service is busy.
    SlowDown,
    /// `ExpiredTokenException` for the device code: nobody approved the
    /// sign-in before its code expired.
    SignInExpired,
    /// `AccessDeniedException` for the device code: the sign-in was denied.
    SignInDenied,
    /// `InvalidGrantException` for a refresh token: revoked, expired, or
    /// the portal session ended.
    RefreshRefused,
    /// `InvalidClientException` / `UnauthorizedClientException`: the client
    /// registration expired or is unknown.
    RegistrationExpired,
    /// `InvalidRequestException` from StartDeviceAuthorization: the start
    /// URL is not an IAM Identity Center portal (in this region).
    NotAPortal,
    /// `InvalidScopeException`: `sso_registration_scopes` was refused.
    InvalidScope,
    /// Portal `UnauthorizedException`: the access token is no longer
    /// accepted (expired, revoked, signed out).
    TokenRejected,
    /// Portal `ForbiddenException` ("No access"): the person may not use
    /// this account and role.
    Forbidden,
    /// Portal `ResourceNotFoundException`: no such account or role.
    NotFound,
    /// Portal `TooManyRequestsException` (HTTP 429).
    Throttled,
    /// `InvalidRequestException` from the portal and other parameter errors.
    InvalidRequest,
    /// No (complete) answer.
    Transport(TransportKind),
    /// HTTP 5xx, `InternalServerException`.
    Server,
    /// The token cache or the sign-in files could not be used.
    Cache,
    /// Refused before calling: the region is empty, an endpoint is not a URL.
    InvalidSetup,
    /// Anything else; retried soon unless the service answered with a 4xx.
    Unknown,
}

/// A failed IAM Identity Center call. `Display` says what happened, for
/// which SSO session, account and role, and what to do. It never holds an
/// access token, a refresh token, a client secret or a device code: texts
/// from the service are scrubbed of the values that were sent.
#[derive(Debug, Clone)]
pub(crate) struct SsoError {
    kind: SsoErrorKind,
    /// Boxed: an `Err` stays small on the happy path.
    details: Box<Details>,
}

#[derive(Debug, Clone, Default)]
struct Details {
    call: Option<SsoCall>,
    session: String,
    start_url: String,
    region: String,
    endpoint: Option<String>,
    account_id: Option<String>,
    role_name: Option<String>,
    status: Option<u16>,
    aws_code: Option<String>,
    aws_message: Option<String>,
    request_id: Option<String>,
    /// Transport error chain, or the local reason.
    detail: Option<String>,
}

impl Details {
    fn of(call: SsoCall, context: &CallContext) -> Self {
        Details {
            call: Some(call),
            session: context.session.clone(),
            start_url: context.start_url.clone(),
            region: context.region.clone(),
            endpoint: context.endpoint.clone(),
            account_id: context.account_id.clone(),
            role_name: context.role_name.clone(),
            ..Details::default()
        }
    }
}

/// Where a failed call was going (no secrets).
#[derive(Debug, Clone, Default)]
pub(crate) struct CallContext {
    pub session: String,
    pub start_url: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub account_id: Option<String>,
    pub role_name: Option<String>,
}

impl SsoError {
    /// An answer (or a transport failure) of `call`, classified here.
    pub(crate) fn from_failure(
        call: SsoCall,
        context: &CallContext,
        failure: crate::sts::Failure,
        sent_secrets: &[&str],
    ) -> Self {
        let kind = match failure.transport {
            Some(transport) => SsoErrorKind::Transport(transport),
            None => classify(call, failure.code.as_deref(), failure.status),
        };
        let scrub = |s: Option<String>| s.map(|s| crate::sts::StsError::scrub(&s, sent_secrets));
        SsoError {
            kind,
            details: Box::new(Details {
                status: failure.status,
                aws_code: scrub(failure.code),
                aws_message: scrub(failure.message),
                request_id: failure.request_id,
                detail: scrub(failure.detail),
                ..Details::of(call, context)
            }),
        }
    }

    /// A failure found here, not answered by the service.
    pub(crate) fn local(
        kind: SsoErrorKind,
        call: SsoCall,
        context: &CallContext,
        detail: impl Into<String>,
    ) -> Self {
        SsoError {
            kind,
            details: Box::new(Details {
                detail: Some(detail.into()),
                ..Details::of(call, context)
            }),
        }
    }

    pub(crate) fn kind(&self) -> SsoErrorKind {
        self.kind
    }

    /// What the user (or the daemon) should do about it.
    pub(crate) fn advice(&self) -> String {
        let d = &self.details;
        let session = &d.session;
        let account = d.account_id.as_deref().unwrap_or("?");
        let role = d.role_name.as_deref().unwrap_or("?");
        match self.kind {
            SsoErrorKind::AuthorizationPending => "the sign-in waits for its approval in the browser".to_string(),
            SsoErrorKind::SlowDown => "IAM Identity Center asked for fewer requests; wait and retry".to_string(),
            SsoErrorKind::SignInExpired => format!("nobody approved the sign-in for sso-session {session} before its code expired; the next attempt starts a new sign-in: open the URL it shows and approve the code"),
            SsoErrorKind::SignInDenied => format!("the sign-in for sso-session {session} was denied in the browser; the next attempt starts a new sign-in"),
            SsoErrorKind::RefreshRefused => format!("IAM Identity Center refused the refresh token of sso-session {session} (the portal session ended or was revoked); sign in again"),
            SsoErrorKind::RegistrationExpired => format!("the client registration of sso-session {session} expired or is unknown; the next sign-in registers the client again"),
            SsoErrorKind::NotAPortal => format!("{} is not an IAM Identity Center access portal in region {}: check sso_start_url (your AWS access portal URL, https://d-XXXXXXXXXX.awsapps.com/start or its custom name) and sso_region (the region of the Identity Center instance)", d.start_url, d.region),
            SsoErrorKind::InvalidScope => format!("IAM Identity Center refused the registration scopes of sso-session {session}: check sso_registration_scopes (normally sso:account:access)"),
            SsoErrorKind::TokenRejected => format!("IAM Identity Center no longer accepts the access token of sso-session {session} (signed out, or the session was revoked); it is refreshed, or a new sign-in is started"),
            SsoErrorKind::Forbidden => format!("you may not use account {account} with role {role} through sso-session {session}: check sso_account_id and sso_role_name against the accounts and roles your access portal shows (the role is the name of a permission set assigned to you in that account)"),
            SsoErrorKind::NotFound => format!("account {account} has no role {role} for you through sso-session {session}, or the account does not exist: check sso_account_id and sso_role_name"),
            SsoErrorKind::Throttled => "IAM Identity Center is throttling requests; back off and retry".to_string(),
            SsoErrorKind::InvalidRequest => match d.call {
                Some(SsoCall::GetRoleCredentials) => format!("IAM Identity Center refused the request for account {account} role {role}: check sso_account_id (12 digits) and sso_role_name"),
                _ => "IAM Identity Center refused the request as malformed; check the sso-session's settings against its message".to_string(),
            },
            SsoErrorKind::Transport(TransportKind::Timeout) => "IAM Identity Center did not answer in time; retry later, and check the network (or the endpoint) if it persists".to_string(),
            SsoErrorKind::Transport(_) => "could not talk to IAM Identity Center; retry later, and check the network (or AWS_ENDPOINT_URL_SSO_OIDC, AWS_ENDPOINT_URL_SSO, AWS_ENDPOINT_URL) if it persists".to_string(),
            SsoErrorKind::Server => "IAM Identity Center had an internal error; retry later".to_string(),
            SsoErrorKind::Cache => "fix the file or directory named above (it must be your own, not a link or a special file)".to_string(),
            SsoErrorKind::InvalidSetup => "check sso_region and the endpoint variables AWS_ENDPOINT_URL_SSO_OIDC, AWS_ENDPOINT_URL_SSO and AWS_ENDPOINT_URL".to_string(),
            SsoErrorKind::Unknown if d.status.is_some_and(|s| (400..500).contains(&s)) => "IAM Identity Center refused the request for a reason the daemon does not know; check the sso-session's settings against its message".to_string(),
            SsoErrorKind::Unknown => "retry later".to_string(),
        }
    }

    fn what(&self) -> &'static str {
        match self.kind {
            SsoErrorKind::AuthorizationPending => "sign-in not approved yet",
            SsoErrorKind::SlowDown => "asked to slow down",
            SsoErrorKind::SignInExpired => "sign-in code expired",
            SsoErrorKind::SignInDenied => "sign-in denied",
            SsoErrorKind::RefreshRefused => "refresh token refused",
            SsoErrorKind::RegistrationExpired => "client registration expired",
            SsoErrorKind::NotAPortal => "not an access portal",
            SsoErrorKind::InvalidScope => "registration scopes refused",
            SsoErrorKind::TokenRejected => "access token refused",
            SsoErrorKind::Forbidden => "no access",
            SsoErrorKind::NotFound => "no such account or role",
            SsoErrorKind::Throttled => "throttled",
            SsoErrorKind::InvalidRequest => "request refused",
            SsoErrorKind::Transport(TransportKind::Timeout) => "no answer in time",
            SsoErrorKind::Transport(TransportKind::Response) => "unreadable answer",
            SsoErrorKind::Transport(_) => "connection failed",
            SsoErrorKind::Server => "server error",
            SsoErrorKind::Cache => "cannot use the token cache",
            SsoErrorKind::InvalidSetup => "request could not be built",
            SsoErrorKind::Unknown => "failed",
        }
    }
}

impl fmt::Display for SsoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.details;
        write!(f, "IAM Identity Center")?;
        if let Some(call) = d.call {
            write!(f, " {call}")?;
        }
        write!(f, " for sso-session {}", d.session)?;
        if let (Some(account), Some(role)) = (&d.account_id, &d.role_name) {
            write!(f, ", account {account} role {role}")?;
        }
        match &d.endpoint {
            Some(endpoint) => write!(f, " (endpoint {endpoint})")?,
            None => write!(f, " (region {})", d.region)?,
        }
        write!(f, ": {}", self.what())?;
        crate::sts::write_answer(
            f,
            d.status,
            d.aws_code.as_deref(),
            d.aws_message.as_deref(),
            d.detail.as_deref(),
            d.request_id.as_deref(),
        )?;
        write!(f, "; {}", self.advice())
    }
}

impl std::error::Error for SsoError {}

impl Classified for SsoError {
    fn retry_class(&self) -> RetryClass {
        retry_class_of(self.kind, self.details.status)
    }

    fn is_throttling(&self) -> bool {
        matches!(self.kind, SsoErrorKind::Throttled | SsoErrorKind::SlowDown)
    }

    /// The same call failing the same way for the same session, account
    /// and role, whatever its request id.
    fn recurrence(&self) -> Option<String> {
        let d = &self.details;
        Some(format!(
            "{:?} {:?} {:?} {} {:?} {:?} {:?}",
            self.kind, d.call, d.aws_code, d.session, d.account_id, d.role_name, d.status
        ))
    }
}

/// The retry class of a kind; `status` decides for [`SsoErrorKind::Unknown`].
pub(crate) fn retry_class_of(kind: SsoErrorKind, status: Option<u16>) -> RetryClass {
    match kind {
        SsoErrorKind::AuthorizationPending
        | SsoErrorKind::SlowDown
        | SsoErrorKind::Throttled
        | SsoErrorKind::Transport(_)
        | SsoErrorKind::Server => RetryClass::Soon,
        // The token (or the registration behind it) is bad: refresh, or
        // sign in again, at once.
        SsoErrorKind::TokenRejected
        | SsoErrorKind::RefreshRefused
        | SsoErrorKind::RegistrationExpired => RetryClass::Reauthenticate,
        SsoErrorKind::SignInExpired
        | SsoErrorKind::SignInDenied
        | SsoErrorKind::NotAPortal
        | SsoErrorKind::InvalidScope
        | SsoErrorKind::Forbidden
        | SsoErrorKind::NotFound
        | SsoErrorKind::InvalidRequest
        | SsoErrorKind::Cache
        | SsoErrorKind::InvalidSetup => RetryClass::NeedsUser,
        SsoErrorKind::Unknown => crate::sts::unknown_answer_class(status),
    }
}

/// Classifies an answer by the call, its error code (`x-amzn-ErrorType`,
/// without the `:namespace` suffix the SDK strips) and the HTTP status.
pub(crate) fn classify(call: SsoCall, code: Option<&str>, status: Option<u16>) -> SsoErrorKind {
    match (code.unwrap_or(""), call) {
        ("AuthorizationPendingException", _) => SsoErrorKind::AuthorizationPending,
        ("SlowDownException", _) => SsoErrorKind::SlowDown,
        ("ExpiredTokenException", SsoCall::RefreshToken) => SsoErrorKind::RefreshRefused,
        ("ExpiredTokenException", _) => SsoErrorKind::SignInExpired,
        ("AccessDeniedException", SsoCall::RefreshToken) => SsoErrorKind::RefreshRefused,
        ("AccessDeniedException", _) => SsoErrorKind::SignInDenied,
        ("InvalidGrantException", SsoCall::RefreshToken) => SsoErrorKind::RefreshRefused,
        // A device code the service no longer knows: the sign-in is over.
        ("InvalidGrantException", _) => SsoErrorKind::SignInExpired,
        ("InvalidClientException" | "UnauthorizedClientException", _) => {
            SsoErrorKind::RegistrationExpired
        }
        ("InvalidRequestException", SsoCall::StartDeviceAuthorization) => SsoErrorKind::NotAPortal,
        ("InvalidScopeException", _) => SsoErrorKind::InvalidScope,
        ("UnauthorizedException", _) => SsoErrorKind::TokenRejected,
        ("ForbiddenException", _) => SsoErrorKind::Forbidden,
        ("ResourceNotFoundException", _) => SsoErrorKind::NotFound,
        ("TooManyRequestsException", _) => SsoErrorKind::Throttled,
        (
            "InvalidRequestException"
            | "InvalidClientMetadataException"
            | "InvalidRedirectUriException"
            | "UnsupportedGrantTypeException",
            _,
        ) => SsoErrorKind::InvalidRequest,
        ("InternalServerException" | "InternalFailure" | "ServiceUnavailable", _) => {
            SsoErrorKind::Server
        }
        _ => match status {
            Some(s) if s >= 500 => SsoErrorKind::Server,
            Some(429) => SsoErrorKind::Throttled,
            Some(401) if call == SsoCall::GetRoleCredentials => SsoErrorKind::TokenRejected,
            Some(403) if call == SsoCall::GetRoleCredentials => SsoErrorKind::Forbidden,
            _ => SsoErrorKind::Unknown,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RetryClass::*;
    use SsoCall::*;
    use SsoErrorKind::*;

    /// (call, code, status) -> (kind, retry class, throttling)
    type Row<'a> = (
        SsoCall,
        Option<&'a str>,
        u16,
        SsoErrorKind,
        RetryClass,
        bool,
    );

    #[test]
    fn classifies_the_answers_identity_center_sends() {
        #[rustfmt::skip]
        let table: &[Row] = &[
            (CreateToken, Some("AuthorizationPendingException"), 400, AuthorizationPending, Soon, false),
            (CreateToken, Some("SlowDownException"), 400, SlowDown, Soon, true),
            (StartDeviceAuthorization, Some("SlowDownException"), 400, SlowDown, Soon, true),
            (CreateToken, Some("ExpiredTokenException"), 400, SignInExpired, NeedsUser, false),
            (CreateToken, Some("AccessDeniedException"), 400, SignInDenied, NeedsUser, false),
            (RefreshToken, Some("InvalidGrantException"), 400, RefreshRefused, Reauthenticate, false),
            (RefreshToken, Some("ExpiredTokenException"), 400, RefreshRefused, Reauthenticate, false),
            (RefreshToken, Some("InvalidClientException"), 401, RegistrationExpired, Reauthenticate, false),
            (StartDeviceAuthorization, Some("InvalidClientException"), 401, RegistrationExpired, Reauthenticate, false),
            (CreateToken, Some("UnauthorizedClientException"), 400, RegistrationExpired, Reauthenticate, false),
            (StartDeviceAuthorization, Some("InvalidRequestException"), 400, NotAPortal, NeedsUser, false),
            (RegisterClient, Some("InvalidScopeException"), 400, InvalidScope, NeedsUser, false),
            (RegisterClient, Some("InvalidRequestException"), 400, InvalidRequest, NeedsUser, false),
            (GetRoleCredentials, Some("UnauthorizedException"), 401, TokenRejected, Reauthenticate, false),
            (GetRoleCredentials, Some("ForbiddenException"), 403, Forbidden, NeedsUser, false),
            (GetRoleCredentials, Some("ResourceNotFoundException"), 404, NotFound, NeedsUser, false),
            (GetRoleCredentials, Some("TooManyRequestsException"), 429, Throttled, Soon, true),
            (GetRoleCredentials, Some("InvalidRequestException"), 400, InvalidRequest, NeedsUser, false),
            (CreateToken, Some("InternalServerException"), 500, Server, Soon, false),
            (GetRoleCredentials, None, 503, Server, Soon, false),
            (GetRoleCredentials, None, 429, Throttled, Soon, true),
            (GetRoleCredentials, None, 403, Forbidden, NeedsUser, false),
            (GetRoleCredentials, None, 401, TokenRejected, Reauthenticate, false),
            (CreateToken, Some("SomethingNew"), 400, Unknown, NeedsUser, false),
            (CreateToken, Some("SomethingNew"), 502, Server, Soon, false),
        ];
        for (call, code, status, kind, class, throttling) in table {
            let got = classify(*call, *code, Some(*status));
            assert_eq!(got, *kind, "{call} {code:?} {status}");
            assert_eq!(
                retry_class_of(got, Some(*status)),
                *class,
                "{call} {code:?}"
            );
            let error = SsoError {
                kind: got,
                details: Box::default(),
            };
            assert_eq!(error.is_throttling(), *throttling, "{call} {code:?}");
        }
        assert_eq!(retry_class_of(Unknown, None), Soon);
        for transport in [
            TransportKind::Timeout,
            TransportKind::Io,
            TransportKind::Response,
            TransportKind::Other,
        ] {
            assert_eq!(retry_class_of(Transport(transport), None), Soon);
        }
    }

    fn context() -> CallContext {
        CallContext {
            session: "corp".to_string(),
            start_url: "https://d-1234567890.awsapps.com/start".to_string(),
            region: "eu-west-1".to_string(),
            endpoint: None,
            account_id: Some("111122223333".to_string()),
            role_name: Some("ReadOnly".to_string()),
        }
    }

    #[test]
    fn forbidden_names_account_and_role_and_scrubs_what_was_sent() {
        let failure = crate::sts::Failure {
            status: Some(403),
            code: Some("ForbiddenException".to_string()),
            message: Some("No access for token aoaAAAAsecrettoken".to_string()),
            request_id: Some("5c3b7e2a-0000-4000-8000-000000000000".to_string()),
            ..crate::sts::Failure::default()
        };
        let error = SsoError::from_failure(
            GetRoleCredentials,
            &context(),
            failure,
            &["aoaAAAAsecrettoken"],
        );
        let text = format!("{error} {error:?}");
        assert!(!text.contains("aoaAAAAsecrettoken"), "{text}");
        assert!(
            text.contains("you may not use account 111122223333 with role ReadOnly"),
            "{text}"
        );
        assert!(text.contains("sso-session corp"), "{text}");
        assert!(text.contains("request id 5c3b7e2a"), "{text}");
        assert_eq!(error.retry_class(), NeedsUser);
    }

    #[test]
    fn not_a_portal_names_start_url_and_region() {
        let error = SsoError::from_failure(
            StartDeviceAuthorization,
            &context(),
            crate::sts::Failure {
                status: Some(400),
                code: Some("InvalidRequestException".to_string()),
                ..crate::sts::Failure::default()
            },
            &[],
        );
        let text = error.to_string();
        assert!(
            text.contains("https://d-1234567890.awsapps.com/start is not an IAM Identity Center access portal in region eu-west-1"),
            "{text}"
        );
    }
}
