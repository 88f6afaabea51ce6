//! The only module that talks to AWS: STS GetSessionToken and AssumeRole.
//!
//! Every call is signed with keys the caller passes in ([`SigningKeys`]):
//! the SDK's default credential chain is never used, so the daemon cannot
//! pick up the environment or the very profile it is writing. The SDK's own
//! retries are off (the daemon backs off per section, from the error's
//! [`RetryClass`](crate::retry::RetryClass)), so one call is one HTTP request.
//!
//! One SDK client is kept per (region, endpoint) and shared by all calls to
//! it: 200 AssumeRoles signed with one MFA session share one connection pool.
//! The keys go in per call, as an operation-level credentials override (the
//! SDK then gives that operation its own short-lived identity cache), so the
//! cache holds nothing secret and does not grow as sessions rotate.

mod error;
pub(crate) mod limits;

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_sts::config::retry::RetryConfig;
use aws_sdk_sts::config::timeout::TimeoutConfig;
use aws_sdk_sts::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::RequestId;
use aws_sdk_sts::types::PolicyDescriptorType;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use crate::config::RoleSettings;
use crate::secret::mask_access_key_id;
use crate::session::SessionCredentials;
use crate::timestamp::CLOCK_SKEW;

use error::CallContext;
pub(crate) use error::{Failure, unknown_answer_class, write_answer};
pub use error::{
    StsCall, StsError, StsErrorKind, TransportKind, ValidationKind, classify, retry_class_of,
};

/// The provider name the SDK shows for the credentials we hand it.
const PROVIDER_NAME: &str = "aws-session-daemon";

/// Where STS is: a region, and an endpoint URL when not the SDK's regional
/// default (tests, VPC endpoints, `AWS_ENDPOINT_URL_STS`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub region: String,
    pub url: Option<String>,
}

impl Endpoint {
    pub fn new(region: impl Into<String>, url: Option<String>) -> Self {
        Endpoint {
            region: region.into(),
            url,
        }
    }
}

/// The keys that sign a call: long-term keys (GetSessionToken, direct
/// AssumeRole) or an MFA session (chained AssumeRole). `Debug` shows the
/// masked key id only.
#[derive(Clone)]
pub struct SigningKeys {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
}

impl SigningKeys {
    /// Long-term IAM user keys.
    pub fn long_term(access_key_id: impl Into<String>, secret_access_key: SecretString) -> Self {
        SigningKeys {
            access_key_id: access_key_id.into(),
            secret_access_key,
            session_token: None,
        }
    }

    /// The keys of temporary credentials (an MFA session).
    pub fn session(credentials: &SessionCredentials) -> Self {
        SigningKeys {
            access_key_id: credentials.access_key_id.clone(),
            secret_access_key: credentials.secret_access_key.clone(),
            session_token: Some(credentials.session_token.clone()),
        }
    }

    fn masked_id(&self) -> String {
        mask_access_key_id(&self.access_key_id)
    }

    fn sdk_credentials(&self) -> Credentials {
        Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.expose_secret().to_string(),
            self.session_token
                .as_ref()
                .map(|t| t.expose_secret().to_string()),
            None,
            PROVIDER_NAME,
        )
    }
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys")
            .field("access_key_id", &self.masked_id())
            .field("secret_access_key", &"***")
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// An MFA device and the code it shows now. The code is a secret: it is
/// never logged nor shown in an error.
#[derive(Clone, Copy)]
pub struct MfaCode<'a> {
    pub serial_number: &'a str,
    pub code: &'a SecretString,
}

impl fmt::Debug for MfaCode<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaCode")
            .field("serial_number", &self.serial_number)
            .field("code", &"***")
            .finish()
    }
}

/// True when `code` can be an AWS MFA code: exactly six ASCII digits.
fn is_six_digits(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// Connect and whole-operation timeouts of every STS call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub operation: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            operation: Duration::from_secs(20),
        }
    }
}

/// The STS clients of the process, one per (region, endpoint URL).
#[derive(Debug)]
pub struct StsClients {
    timeouts: Timeouts,
    clients: Mutex<HashMap<Endpoint, aws_sdk_sts::Client>>,
}

impl Default for StsClients {
    fn default() -> Self {
        Self::new()
    }
}

impl StsClients {
    pub fn new() -> Self {
        Self::with_timeouts(Timeouts::default())
    }

    pub fn with_timeouts(timeouts: Timeouts) -> Self {
        StsClients {
            timeouts,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// How many SDK clients are cached (one per region and endpoint).
    pub fn cached_clients(&self) -> usize {
        self.lock().len()
    }

    /// Drops the clients, and with them their connection pools: the idle
    /// connections close, their buffers (which held signed requests and
    /// credentials) are freed, and no pool timer wakes the idle daemon. The
    /// next pass, normally an hour away, builds them again.
    pub fn close_connections(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Endpoint, aws_sdk_sts::Client>> {
        // A panic while holding the lock cannot leave the map inconsistent.
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached client for `endpoint`, built on first use.
    fn client(&self, endpoint: &Endpoint) -> Result<aws_sdk_sts::Client, String> {
        if let Some(client) = self.lock().get(endpoint) {
            return Ok(client.clone());
        }
        let client = build_client(endpoint, self.timeouts)?;
        Ok(self
            .lock()
            .entry(endpoint.clone())
            .or_insert(client)
            .clone())
    }

    /// GetSessionToken, signed with the user's long-term keys: starts an MFA
    /// session of `duration_seconds`. `now` is the caller's clock (the
    /// daemon's clock port): the answer's expiry is judged against it.
    pub async fn get_session_token(
        &self,
        long_term: &SigningKeys,
        endpoint: &Endpoint,
        mfa: MfaCode<'_>,
        duration_seconds: u32,
        now: OffsetDateTime,
    ) -> Result<SessionCredentials, StsError> {
        let call = Call::new(
            StsCall::GetSessionToken,
            None,
            long_term,
            endpoint,
            Some(mfa),
            Asked {
                duration: duration_seconds,
                now,
            },
            self.timeouts,
        );
        call.check_clock()?;
        call.check_code(mfa)?;
        let duration = call.duration_seconds()?;
        let client = self.client(endpoint).map_err(|e| call.invalid(e))?;
        let started = Instant::now();
        let result = client
            .get_session_token()
            .serial_number(mfa.serial_number)
            .token_code(mfa.code.expose_secret())
            .duration_seconds(duration)
            .customize()
            .config_override(
                aws_sdk_sts::Config::builder().credentials_provider(long_term.sdk_credentials()),
            )
            .send()
            .await;
        match result {
            Ok(output) => {
                let credentials = call.credentials(output.credentials(), started)?;
                call.log_success(started, &credentials);
                Ok(credentials)
            }
            Err(error) => Err(call.failed(error, started)),
        }
    }

    /// AssumeRole, signed with the MFA session (`mfa = None`: role chaining,
    /// capped at 3600 s by AWS), or with the long-term keys plus the MFA
    /// device and code (`mfa = Some`: a direct AssumeRole, up to the role's
    /// MaxSessionDuration). `now` as for [`StsClients::get_session_token`].
    pub async fn assume_role(
        &self,
        signer: &SigningKeys,
        endpoint: &Endpoint,
        role: &RoleSettings,
        mfa: Option<MfaCode<'_>>,
        now: OffsetDateTime,
    ) -> Result<SessionCredentials, StsError> {
        let call = Call::new(
            StsCall::AssumeRole,
            Some(role.arn.as_str()),
            signer,
            endpoint,
            mfa,
            Asked {
                duration: role.duration,
                now,
            },
            self.timeouts,
        );
        call.check_clock()?;
        if let Some(mfa) = mfa {
            call.check_code(mfa)?;
        }
        let duration = call.duration_seconds()?;
        let client = self.client(endpoint).map_err(|e| call.invalid(e))?;
        let mut request = client
            .assume_role()
            .role_arn(&role.arn)
            .role_session_name(&role.session_name)
            .duration_seconds(duration)
            .set_source_identity(role.source_identity.clone())
            .set_external_id(role.external_id.clone())
            .set_policy(role.policy.clone());
        for arn in &role.policy_arns {
            request = request.policy_arns(PolicyDescriptorType::builder().arn(arn).build());
        }
        if let Some(mfa) = mfa {
            request = request
                .serial_number(mfa.serial_number)
                .token_code(mfa.code.expose_secret());
        }
        let started = Instant::now();
        let result = request
            .customize()
            .config_override(
                aws_sdk_sts::Config::builder().credentials_provider(signer.sdk_credentials()),
            )
            .send()
            .await;
        match result {
            Ok(output) => {
                let credentials = call.credentials(output.credentials(), started)?;
                call.log_success(started, &credentials);
                Ok(credentials)
            }
            Err(error) => Err(call.failed(error, started)),
        }
    }
}

/// STS answers are a few kilobytes; an endpoint that streams more (a broken
/// proxy, a hostile server) is cut off here instead of filling memory.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Caps every response body at [`MAX_RESPONSE_BYTES`] before the SDK reads it.
/// Shared by every SDK client of the daemon (the interceptor trait is the
/// smithy runtime's, the same for all AWS SDK crates).
#[derive(Debug)]
pub(crate) struct ResponseLimit;

impl aws_sdk_sts::config::Intercept for ResponseLimit {
    fn name(&self) -> &'static str {
        "ResponseLimit"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_sdk_sts::config::interceptors::BeforeDeserializationInterceptorContextMut<
            '_,
        >,
        _components: &aws_sdk_sts::config::RuntimeComponents,
        _cfg: &mut aws_sdk_sts::config::ConfigBag,
    ) -> Result<(), aws_sdk_sts::error::BoxError> {
        let body = context.response_mut().take_body();
        *context.response_mut().body_mut() = aws_smithy_types::body::SdkBody::from_body_1_x(
            http_body_util::Limited::new(body, MAX_RESPONSE_BYTES),
        );
        Ok(())
    }
}

/// A new HTTPS client with its own connection pool: rustls with ring, the
/// one TLS stack the daemon builds (the SDK's default would add aws-lc).
/// Public for the tests' own SDK clients, which must not bring aws-lc into
/// builds of the daemon either.
pub fn https_client() -> aws_sdk_sts::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// Builds one SDK client: explicit region, endpoint, timeouts; no retries;
/// no credentials of its own (each call brings its keys, and a client built
/// from `Config::builder()` never consults the default provider chain or the
/// environment).
fn build_client(endpoint: &Endpoint, timeouts: Timeouts) -> Result<aws_sdk_sts::Client, String> {
    if endpoint.region.trim().is_empty() {
        return Err("the region is empty".to_string());
    }
    // Its own HTTP client (and connection pool), dropped with the SDK client
    // after the pass (see `StsClients::close_connections`).
    let mut builder = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(https_client())
        .region(Region::new(endpoint.region.clone()))
        .retry_config(RetryConfig::disabled())
        .interceptor(ResponseLimit)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeouts.connect)
                .operation_timeout(timeouts.operation)
                .build(),
        );
    if let Some(url) = &endpoint.url {
        check_endpoint_url("STS", url)?;
        builder = builder.endpoint_url(url);
    }
    Ok(aws_sdk_sts::Client::from_conf(builder.build()))
}

/// An endpoint override must be an http(s) URL with a host: the SDK would
/// otherwise fail on every call with an error that does not say why.
/// `service` names it in the error ("STS", "IAM Identity Center OIDC").
pub(crate) fn check_endpoint_url(service: &str, url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("the {service} endpoint {url:?} is not an http(s) URL"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("the {service} endpoint {url:?} has no host"));
    }
    Ok(())
}

/// What a call asks for, and when: the answer's expiry is judged by it.
struct Asked {
    /// Requested session duration, in seconds.
    duration: u32,
    /// The caller's clock when the call started.
    now: OffsetDateTime,
}

/// One call in progress: what is needed to log it and to describe its error.
struct Call<'a> {
    context: CallContext,
    /// Requested session duration, in seconds.
    duration: u32,
    /// Values sent that must never appear in an error or a log line.
    secrets: Vec<&'a str>,
    /// The caller's clock when the call started.
    now: OffsetDateTime,
}

impl<'a> Call<'a> {
    fn new(
        call: StsCall,
        role_arn: Option<&str>,
        signer: &'a SigningKeys,
        endpoint: &Endpoint,
        mfa: Option<MfaCode<'a>>,
        asked: Asked,
        timeouts: Timeouts,
    ) -> Self {
        let mut secrets = vec![signer.secret_access_key.expose_secret()];
        if let Some(token) = &signer.session_token {
            secrets.push(token.expose_secret());
        }
        if let Some(mfa) = mfa {
            secrets.push(mfa.code.expose_secret());
        }
        Call {
            context: CallContext {
                call,
                role_arn: role_arn.map(str::to_string),
                access_key: signer.masked_id(),
                mfa_serial: mfa.map(|m| m.serial_number.to_string()),
                region: endpoint.region.clone(),
                endpoint: endpoint.url.clone(),
                timeout_secs: Some(timeouts.operation.as_secs()),
            },
            duration: asked.duration,
            secrets,
            now: asked.now,
        }
    }

    fn error(&self, failure: Failure) -> StsError {
        StsError::new(self.context.clone(), failure, &self.secrets)
    }

    fn invalid(&self, detail: String) -> StsError {
        self.error(Failure {
            local: Some(StsErrorKind::InvalidRequest),
            detail: Some(detail),
            ..Failure::default()
        })
    }

    /// AWS answers a malformed code with a ValidationError that may quote
    /// it; refuse it here instead, without echoing it.
    fn check_code(&self, mfa: MfaCode<'_>) -> Result<(), StsError> {
        let code = mfa.code.expose_secret();
        if is_six_digits(code) {
            return Ok(());
        }
        let length = code.chars().count();
        let detail = if length != 6 {
            format!("the code has {length} characters")
        } else {
            "the code has characters other than ASCII digits".to_string()
        };
        let error = self.error(Failure {
            local: Some(StsErrorKind::MalformedCode),
            detail: Some(detail),
            ..Failure::default()
        });
        self.log_failure(&error, Instant::now());
        Err(error)
    }

    fn duration_seconds(&self) -> Result<i32, StsError> {
        let seconds = self.duration;
        i32::try_from(seconds).map_err(|_| {
            self.error(Failure {
                local: Some(StsErrorKind::Validation(ValidationKind::Duration)),
                detail: Some(format!("duration {seconds} s is out of range")),
                ..Failure::default()
            })
        })
    }

    /// The latest instant an answer's expiry is believed: what was asked
    /// for, plus clock skew between AWS and this machine. `None` when the
    /// clock is so late that it is past what `time` can represent (the
    /// year 9999 plus the duration).
    fn latest_expiry(&self) -> Option<OffsetDateTime> {
        self.now
            .checked_add(time::Duration::seconds(i64::from(self.duration)))?
            .checked_add(CLOCK_SKEW)
    }

    /// Refuses to call (and spend a code) when the answer could not be
    /// checked: the clock reads an instant no session can last from.
    fn check_clock(&self) -> Result<(), StsError> {
        if self.latest_expiry().is_some() {
            return Ok(());
        }
        let error = self.error(Failure {
            local: Some(StsErrorKind::Clock),
            detail: Some(format!(
                "the system clock reads {}, too late for a session of {} s to end",
                crate::timestamp::rfc3339(self.now),
                self.duration
            )),
            ..Failure::default()
        });
        self.log_failure(&error, Instant::now());
        Err(error)
    }

    /// The credentials of an answer, checked once here for every output
    /// (the credentials file, `credential-process`, the endpoint): an
    /// access key id, secret and token of the shapes in [`limits`], and an
    /// expiry after `now`. An answer that fails is a [`StsErrorKind::BadAnswer`]
    /// (retried soon), never handed on. The message names the field and
    /// what is wrong with it, never its value.
    fn credentials(
        &self,
        credentials: Option<&aws_sdk_sts::types::Credentials>,
        started: Instant,
    ) -> Result<SessionCredentials, StsError> {
        let refuse = |detail: String| {
            let error = self.error(Failure {
                local: Some(StsErrorKind::BadAnswer),
                detail: Some(detail),
                ..Failure::default()
            });
            self.log_failure(&error, started);
            error
        };
        let credentials =
            credentials.ok_or_else(|| refuse("the answer carried no credentials".to_string()))?;
        for (field, value, rule) in [
            (
                "AccessKeyId",
                credentials.access_key_id(),
                &limits::ACCESS_KEY_ID,
            ),
            (
                "SecretAccessKey",
                credentials.secret_access_key(),
                &limits::SECRET_ACCESS_KEY,
            ),
            (
                "SessionToken",
                credentials.session_token(),
                &limits::SESSION_TOKEN,
            ),
        ] {
            rule.check(value)
                .map_err(|problem| refuse(format!("the answer's {field}: {problem}")))?;
        }
        let expiration =
            OffsetDateTime::from_unix_timestamp_nanos(credentials.expiration().as_nanos())
                .map_err(|_| refuse("the credentials' expiration is out of range".to_string()))?;
        if expiration <= self.now {
            // A missing <Expiration> reads as 1970 (the SDK fills in zero).
            return Err(refuse(format!(
                "the credentials expire at {}, not after now ({}): the answer has no expiration, or this machine's clock is ahead",
                crate::timestamp::rfc3339(expiration),
                crate::timestamp::rfc3339(self.now)
            )));
        }
        let expiration = self.plausible_expiration(expiration);
        Ok(SessionCredentials {
            access_key_id: credentials.access_key_id().to_string(),
            secret_access_key: SecretString::from(credentials.secret_access_key()),
            session_token: SecretString::from(credentials.session_token()),
            expiration,
        })
    }

    /// Credentials never live longer than the duration asked for: an
    /// expiry beyond it (year 9999 from a broken or hostile endpoint) would
    /// keep a dead profile "fresh" for ever. It is cut to what was asked,
    /// with a warning.
    fn plausible_expiration(&self, expiration: OffsetDateTime) -> OffsetDateTime {
        // Checked before the call (`check_clock`).
        let Some(latest) = self.latest_expiry() else {
            return self.now;
        };
        if expiration <= latest {
            return expiration;
        }
        let asked = latest - CLOCK_SKEW;
        tracing::warn!(
            action = %self.context.call,
            role_arn = %crate::text::printable(self.context.role_arn.as_deref().unwrap_or("-")),
            "STS said the credentials expire at {}, later than the {} s asked for; treating them as expiring at {}",
            crate::timestamp::rfc3339(expiration),
            self.duration,
            crate::timestamp::rfc3339(asked)
        );
        asked
    }

    fn log_success(&self, started: Instant, credentials: &SessionCredentials) {
        tracing::debug!(
            action = %self.context.call,
            role_arn = %crate::text::printable(self.context.role_arn.as_deref().unwrap_or("-")),
            access_key = %self.context.access_key,
            new_access_key = %mask_access_key_id(&credentials.access_key_id),
            duration = self.duration,
            expiration = %credentials.expiration,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "STS call succeeded"
        );
    }

    fn log_failure(&self, error: &StsError, started: Instant) {
        tracing::debug!(
            action = %self.context.call,
            role_arn = %crate::text::printable(self.context.role_arn.as_deref().unwrap_or("-")),
            access_key = %self.context.access_key,
            duration = self.duration,
            elapsed_ms = started.elapsed().as_millis() as u64,
            kind = ?error.kind(),
            error = %error,
            "STS call failed"
        );
    }

    fn failed<E>(
        &self,
        error: SdkError<E, aws_sdk_sts::config::http::HttpResponse>,
        started: Instant,
    ) -> StsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let error = self.error(failure_of(&error));
        self.log_failure(&error, started);
        error
    }
}

/// What an SDK error tells: the AWS answer, or how the transport failed.
/// Any AWS SDK crate's error (they share the smithy runtime's types).
pub(crate) fn failure_of<E>(error: &SdkError<E, aws_sdk_sts::config::http::HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let chain = || {
        // The error chain names the cause ("connection refused", "operation
        // timeout (all attempts including retries) occurred after 20s").
        let mut parts = Vec::new();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(e) = source {
            let text = e.to_string();
            if parts.last() != Some(&text) {
                parts.push(text);
            }
            source = e.source();
        }
        Some(parts.join(": "))
    };
    match error {
        SdkError::ServiceError(service) => Failure {
            status: Some(service.raw().status().as_u16()),
            code: service.err().code().map(str::to_string),
            message: service.err().message().map(str::to_string),
            request_id: service.err().meta().request_id().map(str::to_string),
            ..Failure::default()
        },
        SdkError::TimeoutError(_) => Failure {
            transport: Some(TransportKind::Timeout),
            detail: chain(),
            ..Failure::default()
        },
        SdkError::DispatchFailure(dispatch) => {
            let transport = if dispatch.is_timeout() {
                TransportKind::Timeout
            } else if dispatch.is_io() || connection_broke(error) {
                TransportKind::Io
            } else {
                TransportKind::Other
            };
            Failure {
                transport: Some(transport),
                detail: chain(),
                ..Failure::default()
            }
        }
        SdkError::ResponseError(response) => {
            let status = response.raw().status().as_u16();
            // An unreadable 5xx is still a server error.
            if status >= 500 {
                Failure {
                    status: Some(status),
                    detail: chain(),
                    ..Failure::default()
                }
            } else {
                Failure {
                    status: Some(status),
                    transport: Some(TransportKind::Response),
                    detail: chain(),
                    ..Failure::default()
                }
            }
        }
        SdkError::ConstructionFailure(_) => Failure {
            local: Some(StsErrorKind::InvalidRequest),
            detail: chain(),
            ..Failure::default()
        },
        _ => Failure {
            detail: chain(),
            ..Failure::default()
        },
    }
}

/// True when the error chain shows a broken connection. hyper reports a
/// connection closed mid-exchange ("connection closed before message
/// completed") as a client error of kind "other", not as an IO error.
fn connection_broke(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<std::io::Error>().is_some() {
            return true;
        }
        let text = e.to_string();
        if ["connection closed", "connection reset", "broken pipe"]
            .iter()
            .any(|fragment| text.contains(fragment))
        {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_must_be_six_ascii_digits() {
        assert!(is_six_digits("012345"));
        for bad in ["12345", "1234567", "12345a", " 12345", "１２３４５６", ""] {
            assert!(!is_six_digits(bad), "{bad:?}");
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let keys = SigningKeys {
            access_key_id: "ASIAIOSFODNN7EXAMPLE".to_string(),
            secret_access_key: SecretString::from("wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"),
            session_token: Some(SecretString::from("FwoGZXIvYXdzEXAMPLETOKEN")),
        };
        let text = format!("{keys:?}");
        assert!(!text.contains("wJalr"), "{text}");
        assert!(!text.contains("FwoG"), "{text}");
        assert!(!text.contains("IOSFODNN7"), "{text}");
        let code = SecretString::from("123456");
        let mfa = MfaCode {
            serial_number: "arn:aws:iam::123456789012:mfa/me",
            code: &code,
        };
        assert!(!format!("{mfa:?}").contains("123456\""));
    }

    #[tokio::test]
    async fn malformed_code_is_refused_before_sending() {
        let clients = StsClients::new();
        let keys = SigningKeys::long_term(
            "AKIAIOSFODNN7EXAMPLE",
            SecretString::from("wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"),
        );
        // A port nothing listens on: the call must not get that far.
        let endpoint = Endpoint::new("us-east-1", Some("http://127.0.0.1:9".to_string()));
        let code = SecretString::from("9876543");
        let mfa = MfaCode {
            serial_number: "arn:aws:iam::123456789012:mfa/me",
            code: &code,
        };
        let error = clients
            .get_session_token(&keys, &endpoint, mfa, 3600, OffsetDateTime::now_utc())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), StsErrorKind::MalformedCode);
        assert_eq!(
            crate::retry::Classified::retry_class(&error),
            crate::retry::RetryClass::NeedsUser
        );
        let text = format!("{error} {error:?}");
        assert!(!text.contains("9876543"), "{text}");
        assert!(text.contains("7 characters"), "{text}");
        assert_eq!(clients.cached_clients(), 0);
    }

    #[tokio::test]
    async fn endpoint_must_be_a_url() {
        let clients = StsClients::new();
        let keys = SigningKeys::long_term("AKIAIOSFODNN7EXAMPLE", SecretString::from("secret"));
        let endpoint = Endpoint::new("us-east-1", Some("127.0.0.1:5000".to_string()));
        let code = SecretString::from("123456");
        let mfa = MfaCode {
            serial_number: "arn:aws:iam::123456789012:mfa/me",
            code: &code,
        };
        let error = clients
            .get_session_token(&keys, &endpoint, mfa, 3600, OffsetDateTime::now_utc())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), StsErrorKind::InvalidRequest);
        assert!(error.to_string().contains("not an http(s) URL"), "{error}");
    }

    #[test]
    fn building_a_client_is_cheap() {
        let endpoint = Endpoint::new("us-east-1", Some("http://127.0.0.1:9".to_string()));
        let started = Instant::now();
        for _ in 0..100 {
            build_client(&endpoint, Timeouts::default()).unwrap();
        }
        let each = started.elapsed() / 100;
        eprintln!("building one STS client takes {each:?}");
        assert!(each < Duration::from_millis(50), "{each:?}");
    }
}
