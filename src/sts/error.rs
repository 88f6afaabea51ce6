//! STS errors: what went wrong, for which call, what to do, and how to retry.
//!
//! In `aws-sdk-sts` almost every failure arrives as an `Unhandled` service
//! error, so the classification is by the error *code*, the *message* (one
//! code, `AccessDenied`, covers a refused MFA code, a wrong MFA serial, keys
//! that are not long-term and a missing permission) and the HTTP status. The
//! classifier ([`classify`]) is a pure function of those three so that it can
//! be tested from a table of the messages AWS sends.

use std::fmt;

use crate::retry::{Classified, RetryClass};

/// The STS call that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StsCall {
    GetSessionToken,
    AssumeRole,
}

impl StsCall {
    pub fn action(self) -> &'static str {
        match self {
            StsCall::GetSessionToken => "GetSessionToken",
            StsCall::AssumeRole => "AssumeRole",
        }
    }
}

impl fmt::Display for StsCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.action())
    }
}

/// What kind of `ValidationError` (or other bad-parameter answer) AWS sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValidationKind {
    /// "The requested DurationSeconds exceeds the 1 hour session limit for
    /// roles assumed by role chaining.": AssumeRole signed with an MFA
    /// session is capped at 3600 s whatever the role allows.
    RoleChainingDuration,
    /// Another DurationSeconds constraint (range, or the role's
    /// MaxSessionDuration).
    Duration,
    /// The session policy or policy ARNs were refused (malformed, too large).
    Policy,
    /// Any other parameter constraint.
    Other,
}

/// How a request failed to get an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// No (complete) answer within the connect or operation timeout.
    Timeout,
    /// The connection failed or broke (refused, reset, closed early, DNS).
    Io,
    /// An answer came but could not be read as an STS response.
    Response,
    /// Any other failure of the HTTP client.
    Other,
}

/// What went wrong, as far as the daemon needs to tell cases apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StsErrorKind {
    /// `AccessDenied` "MultiFactorAuthentication failed with invalid MFA one
    /// time pass code.": a wrong code, a code AWS already accepted in this
    /// time step, or clock skew.
    CodeRejected,
    /// `AccessDenied` "MultiFactorAuthentication failed, unable to validate
    /// MFA code. Please verify your MFA serial number is valid and associated
    /// with this user.": `mfa_serial_number` is wrong.
    WrongSerial,
    /// `AccessDenied` "Cannot call GetSessionToken with session credentials":
    /// the long-term section holds temporary keys.
    NotLongTermKeys,
    /// `AccessDenied` otherwise, typically "User ... is not authorized to
    /// perform: sts:AssumeRole on resource ...".
    NotAuthorized,
    /// `ValidationError` and other parameter errors.
    Validation(ValidationKind),
    /// `InvalidClientTokenId`: the access key is unknown, deleted or disabled.
    InvalidClientToken,
    /// `SignatureDoesNotMatch`: the secret key does not belong to the key id.
    SignatureMismatch,
    /// `ExpiredToken`: the session credentials that signed the call expired.
    ExpiredToken,
    /// `RequestExpired` (or a clock-skew signature error): the signing time
    /// is too far from AWS's clock, typical right after resume.
    RequestExpired,
    /// `Throttling` "Rate exceeded" (sent with HTTP 400, not 429).
    Throttling,
    /// `RegionDisabledException`: STS is not activated in the region.
    RegionDisabled,
    /// No answer: connect/IO failure, timeout, unreadable response.
    Transport(TransportKind),
    /// HTTP 5xx from STS.
    Server,
    /// An answer whose credentials no output could carry or believe: an
    /// access key id, secret or token of the wrong length or with other
    /// characters (a line break would forge a line of the credentials
    /// file), a missing expiry (the SDK reads it as 1970) or one in the
    /// past. Never written nor served; retried soon.
    BadAnswer,
    /// Refused before calling: the wall clock reads an instant no session
    /// can be asked for from (past 9999 once the duration is added), so
    /// the answer's expiry could not be checked.
    Clock,
    /// Refused before calling: the MFA code is not six ASCII digits.
    MalformedCode,
    /// Refused before calling: the request could not be built (e.g. the
    /// endpoint is not an http(s) URL).
    InvalidRequest,
    /// Anything else; retried soon unless AWS answered with a 4xx.
    Unknown,
}

/// A failed STS call. Its `Display` says what happened, for which call and
/// role (role ARN, masked access key id), and what to do. It never holds a
/// secret key, a session token or an MFA code: AWS messages are scrubbed of
/// the values that were sent (see [`StsError::scrub`]).
#[derive(Debug, Clone)]
pub struct StsError {
    kind: StsErrorKind,
    /// Boxed: an `Err` stays small on the happy path.
    details: Box<Details>,
}

#[derive(Debug, Clone)]
struct Details {
    call: StsCall,
    role_arn: Option<String>,
    /// Masked, e.g. `AKIA…WXYZ`.
    access_key: String,
    mfa_serial: Option<String>,
    region: String,
    endpoint: Option<String>,
    status: Option<u16>,
    aws_code: Option<String>,
    aws_message: Option<String>,
    request_id: Option<String>,
    /// Transport error chain, or the local reason for `MalformedCode` /
    /// `InvalidRequest`.
    detail: Option<String>,
    /// The operation timeout, for the text of a timeout error.
    timeout_secs: Option<u64>,
}

/// Where a failed call was going, and with what (no secrets).
#[derive(Debug, Clone)]
pub(crate) struct CallContext {
    pub call: StsCall,
    pub role_arn: Option<String>,
    pub access_key: String,
    pub mfa_serial: Option<String>,
    pub region: String,
    pub endpoint: Option<String>,
    pub timeout_secs: Option<u64>,
}

/// What came back from AWS (or the transport), before classification.
#[derive(Debug, Clone, Default)]
pub(crate) struct Failure {
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub request_id: Option<String>,
    pub transport: Option<TransportKind>,
    pub detail: Option<String>,
    /// Set for failures found before any request was sent.
    pub local: Option<StsErrorKind>,
}

impl StsError {
    pub(crate) fn new(ctx: CallContext, failure: Failure, sent_secrets: &[&str]) -> Self {
        let kind = match (failure.local, failure.transport) {
            (Some(kind), _) => kind,
            (None, Some(transport)) => StsErrorKind::Transport(transport),
            (None, None) => classify(
                failure.code.as_deref(),
                failure.message.as_deref(),
                failure.status,
            ),
        };
        let scrub = |s: Option<String>| s.map(|s| Self::scrub(&s, sent_secrets));
        StsError {
            kind,
            details: Box::new(Details {
                call: ctx.call,
                role_arn: ctx.role_arn,
                access_key: ctx.access_key,
                mfa_serial: ctx.mfa_serial,
                region: ctx.region,
                endpoint: ctx.endpoint,
                status: failure.status,
                aws_code: scrub(failure.code),
                aws_message: scrub(failure.message),
                request_id: failure.request_id,
                detail: scrub(failure.detail),
                timeout_secs: ctx.timeout_secs,
            }),
        }
    }

    /// Replaces every value that was sent as a secret (secret key, session
    /// token, MFA code) by `***`. AWS messages do not echo them, but some
    /// validation messages quote parameter values ("Value '...' at
    /// 'tokenCode' failed to satisfy constraint"), so nothing is taken on
    /// trust.
    pub(crate) fn scrub(text: &str, sent_secrets: &[&str]) -> String {
        let mut out = text.to_string();
        for secret in sent_secrets.iter().filter(|s| s.len() >= 4) {
            out = out.replace(secret, "***");
        }
        out
    }

    pub fn kind(&self) -> StsErrorKind {
        self.kind
    }

    pub fn call(&self) -> StsCall {
        self.details.call
    }

    pub fn role_arn(&self) -> Option<&str> {
        self.details.role_arn.as_deref()
    }

    /// The HTTP status, when AWS answered.
    pub fn status(&self) -> Option<u16> {
        self.details.status
    }

    /// The AWS error code (`AccessDenied`, `Throttling`, ...), when AWS answered.
    pub fn aws_code(&self) -> Option<&str> {
        self.details.aws_code.as_deref()
    }

    pub fn request_id(&self) -> Option<&str> {
        self.details.request_id.as_deref()
    }

    /// What the user (or the daemon) should do about it.
    pub fn advice(&self) -> String {
        let key = &self.details.access_key;
        match self.kind {
            StsErrorKind::CodeRejected => "AWS refused the MFA code: it was wrong, already used in this 30-second step, or the clock is off; wait for the next code and try once more; if it happens again, check the system clock and that the OATH credential belongs to this MFA device".to_string(),
            StsErrorKind::WrongSerial => {
                let serial = self.details.mfa_serial.as_deref().unwrap_or("");
                let hint = if serial.contains(":user/") {
                    format!(" ({serial} is a user ARN; use {})", serial.replacen(":user/", ":mfa/", 1))
                } else {
                    String::new()
                };
                format!("check mfa_serial_number: it must be the MFA device ARN arn:aws:iam::ACCOUNT:mfa/NAME of a device assigned to the user of access key {key}{hint}")
            }
            StsErrorKind::NotLongTermKeys => format!("access key {key} belongs to temporary (session) credentials; the credentials section must hold the IAM user's long-term access key (AKIA…), not a section the daemon writes"),
            StsErrorKind::NotAuthorized => match &self.details.role_arn {
                Some(role) => format!("the caller (access key {key}) may not assume {role}: check the role's trust policy (it must trust the user and may require aws:MultiFactorAuthPresent), the user's sts:AssumeRole permission and external_id"),
                None => format!("the caller (access key {key}) is not allowed to call {}: check the user's IAM permissions", self.details.call),
            },
            StsErrorKind::Validation(ValidationKind::RoleChainingDuration) => "assume_session_duration must be at most 3600 when the role is assumed from an MFA session (AWS counts it as role chaining); for a longer role session set mfa_session_duration = 0 to assume the role directly with an MFA code".to_string(),
            StsErrorKind::Validation(ValidationKind::Duration) => match self.details.call {
                StsCall::GetSessionToken => "check mfa_session_duration: GetSessionToken allows 900-129600 seconds (at most 3600 for the root user)".to_string(),
                StsCall::AssumeRole => "check assume_session_duration: at least 900 seconds and at most the role's MaxSessionDuration (3600 from an MFA session)".to_string(),
            },
            StsErrorKind::Validation(ValidationKind::Policy) => "check the session policy (policy, policy_arns): AWS refused it as malformed or too large".to_string(),
            StsErrorKind::Validation(ValidationKind::Other) => "check the section's settings against AWS's message".to_string(),
            StsErrorKind::InvalidClientToken => format!("AWS does not know access key {key}: it was deleted, deactivated or mistyped; put a valid long-term access key in the credentials section"),
            StsErrorKind::SignatureMismatch => format!("the secret access key does not belong to access key {key}: fix aws_secret_access_key in the credentials section"),
            StsErrorKind::ExpiredToken => format!("the session credentials {key} have expired; start a new MFA session with a fresh code"),
            StsErrorKind::RequestExpired => "the request's signing time was too far from AWS's clock (common right after resume from suspend); retry, and if it persists check the system clock".to_string(),
            StsErrorKind::Throttling => "STS is throttling requests; back off and retry".to_string(),
            StsErrorKind::RegionDisabled => format!("STS is not activated in region {} for this account: activate it in the IAM account settings, or choose another region", self.details.region),
            StsErrorKind::Transport(TransportKind::Timeout) => "STS did not answer in time; retry later, and check the network (or sts_endpoint) if it persists".to_string(),
            StsErrorKind::Transport(_) => "could not talk to STS; retry later, and check the network (or sts_endpoint) if it persists".to_string(),
            StsErrorKind::Server => "STS had an internal error; retry later".to_string(),
            StsErrorKind::BadAnswer => "STS (or what answers at sts_endpoint) sent credentials that cannot be used; nothing was written or served; retry later, and check sts_endpoint and the system clock if it persists".to_string(),
            StsErrorKind::Clock => "the system clock is wrong; set it (timedatectl, NTP) and the daemon retries".to_string(),
            StsErrorKind::MalformedCode => "an AWS MFA code is six digits: check that the code source (mfa_oath_slot or mfa_process) yields the 6-digit TOTP code of this MFA device".to_string(),
            StsErrorKind::InvalidRequest => "check the section's settings (region, sts_endpoint, role)".to_string(),
            StsErrorKind::Unknown if self.details.status.is_some_and(|s| (400..500).contains(&s)) => "AWS refused the request for a reason the daemon does not know; check the section's settings against AWS's message".to_string(),
            StsErrorKind::Unknown => "retry later".to_string(),
        }
    }

    fn what(&self) -> String {
        match self.kind {
            StsErrorKind::CodeRejected => "MFA code refused".to_string(),
            StsErrorKind::WrongSerial => match &self.details.mfa_serial {
                Some(serial) => format!("MFA device {serial} not recognized"),
                None => "MFA device not recognized".to_string(),
            },
            StsErrorKind::NotLongTermKeys => "signed with session credentials".to_string(),
            StsErrorKind::NotAuthorized => "access denied".to_string(),
            StsErrorKind::Validation(_) => "request refused as invalid".to_string(),
            StsErrorKind::InvalidClientToken => "unknown access key".to_string(),
            StsErrorKind::SignatureMismatch => "signature mismatch".to_string(),
            StsErrorKind::ExpiredToken => "session credentials expired".to_string(),
            StsErrorKind::RequestExpired => "request expired".to_string(),
            StsErrorKind::Throttling => "throttled".to_string(),
            StsErrorKind::RegionDisabled => format!("STS disabled in {}", self.details.region),
            StsErrorKind::Transport(TransportKind::Timeout) => match self.details.timeout_secs {
                Some(secs) => format!("no answer within {secs} s"),
                None => "timed out".to_string(),
            },
            StsErrorKind::Transport(TransportKind::Response) => "unreadable answer".to_string(),
            StsErrorKind::Transport(_) => "connection failed".to_string(),
            StsErrorKind::Server => "STS server error".to_string(),
            StsErrorKind::BadAnswer => "answer refused".to_string(),
            StsErrorKind::Clock => "implausible system clock".to_string(),
            StsErrorKind::MalformedCode => "MFA code is not six digits".to_string(),
            StsErrorKind::InvalidRequest => "request could not be built".to_string(),
            StsErrorKind::Unknown => "failed".to_string(),
        }
    }
}

/// The message holds text from outside (the server's code, message and
/// request id, the role ARN, the endpoint): it is composed, then escaped as
/// a whole, so that no server can forge a log line or steer a terminal.
impl fmt::Display for StsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::new();
        self.compose(&mut text)?;
        f.write_str(&crate::text::printable(&text))
    }
}

impl StsError {
    fn compose(&self, f: &mut String) -> fmt::Result {
        use std::fmt::Write;
        write!(f, "STS {}", self.details.call)?;
        if let Some(role) = &self.details.role_arn {
            write!(f, " of {role}")?;
        }
        write!(f, " (access key {}", self.details.access_key)?;
        if let Some(endpoint) = &self.details.endpoint {
            write!(f, ", endpoint {endpoint}")?;
        } else {
            write!(f, ", region {}", self.details.region)?;
        }
        write!(f, "): {}", self.what())?;
        let d = &self.details;
        write_answer(
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

/// What came back, as the error messages show it: ` [HTTP 403; Code:
/// message; detail; request id ID]`, nothing when nothing came back. One
/// form for the errors of every AWS service the daemon calls.
pub(crate) fn write_answer(
    f: &mut dyn fmt::Write,
    status: Option<u16>,
    code: Option<&str>,
    message: Option<&str>,
    detail: Option<&str>,
    request_id: Option<&str>,
) -> fmt::Result {
    let mut parts = Vec::new();
    if let Some(status) = status {
        parts.push(format!("HTTP {status}"));
    }
    match (code, message) {
        (Some(code), Some(message)) => parts.push(format!("{code}: {}", message.trim())),
        (Some(code), None) => parts.push(code.to_string()),
        (None, Some(message)) => parts.push(message.trim().to_string()),
        (None, None) => {}
    }
    parts.extend(detail.map(str::to_string));
    if let Some(id) = request_id {
        parts.push(format!("request id {id}"));
    }
    if parts.is_empty() {
        Ok(())
    } else {
        write!(f, " [{}]", parts.join("; "))
    }
}

impl std::error::Error for StsError {}

impl Classified for StsError {
    fn retry_class(&self) -> RetryClass {
        retry_class_of(self.kind, self.details.status)
    }

    fn is_throttling(&self) -> bool {
        self.kind == StsErrorKind::Throttling
    }
}

/// The retry class of a kind; `status` decides for [`StsErrorKind::Unknown`]
/// (a 4xx will not get better by itself, anything else may).
pub fn retry_class_of(kind: StsErrorKind, status: Option<u16>) -> RetryClass {
    match kind {
        StsErrorKind::CodeRejected => RetryClass::NextTotpStep,
        StsErrorKind::ExpiredToken => RetryClass::Reauthenticate,
        StsErrorKind::RequestExpired
        | StsErrorKind::Throttling
        | StsErrorKind::Transport(_)
        | StsErrorKind::Server
        | StsErrorKind::BadAnswer => RetryClass::Soon,
        StsErrorKind::WrongSerial
        | StsErrorKind::NotLongTermKeys
        | StsErrorKind::NotAuthorized
        | StsErrorKind::Validation(_)
        | StsErrorKind::InvalidClientToken
        | StsErrorKind::SignatureMismatch
        | StsErrorKind::RegionDisabled
        | StsErrorKind::MalformedCode
        | StsErrorKind::InvalidRequest
        | StsErrorKind::Clock => RetryClass::NeedsUser,
        StsErrorKind::Unknown => unknown_answer_class(status),
    }
}

/// The class of an answer the daemon does not know: a 4xx will not get
/// better by itself, anything else (5xx, no answer) may. For every AWS
/// service the daemon calls.
pub(crate) fn unknown_answer_class(status: Option<u16>) -> RetryClass {
    match status {
        Some(s) if (400..500).contains(&s) => RetryClass::NeedsUser,
        _ => RetryClass::Soon,
    }
}

/// Classifies an answer from STS by its error code, message and HTTP status.
///
/// The messages are AWS's (see the technical brief, §1 "Errors"); matching is
/// on a distinctive fragment, case-insensitively, so that a changed prefix or
/// a trailing space does not break it.
pub fn classify(code: Option<&str>, message: Option<&str>, status: Option<u16>) -> StsErrorKind {
    let message = message.unwrap_or("").to_ascii_lowercase();
    let has = |fragment: &str| message.contains(fragment);
    match code.unwrap_or("") {
        "AccessDenied" | "AccessDeniedException" => {
            if has("invalid mfa one time pass code") {
                StsErrorKind::CodeRejected
            } else if has("unable to validate mfa code") {
                StsErrorKind::WrongSerial
            } else if has("cannot call getsessiontoken with session credentials") {
                StsErrorKind::NotLongTermKeys
            } else {
                StsErrorKind::NotAuthorized
            }
        }
        "ValidationError"
        | "InvalidParameterValue"
        | "InvalidParameterCombination"
        | "MissingParameter" => {
            if has("role chaining") || has("1 hour session limit") {
                StsErrorKind::Validation(ValidationKind::RoleChainingDuration)
            } else if has("durationseconds") {
                StsErrorKind::Validation(ValidationKind::Duration)
            } else if has("policy") {
                StsErrorKind::Validation(ValidationKind::Policy)
            } else {
                StsErrorKind::Validation(ValidationKind::Other)
            }
        }
        "MalformedPolicyDocument"
        | "MalformedPolicyDocumentException"
        | "PackedPolicyTooLarge"
        | "PackedPolicyTooLargeException" => StsErrorKind::Validation(ValidationKind::Policy),
        "InvalidClientTokenId" => StsErrorKind::InvalidClientToken,
        // A clock-skew refusal is sometimes worded as a signature error
        // ("Signature expired: 20240101T000000Z is now earlier than ...").
        "SignatureDoesNotMatch" if has("signature expired") => StsErrorKind::RequestExpired,
        "SignatureDoesNotMatch" => StsErrorKind::SignatureMismatch,
        "ExpiredToken" | "ExpiredTokenException" => StsErrorKind::ExpiredToken,
        "RequestExpired" | "RequestTimeTooSkewed" => StsErrorKind::RequestExpired,
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException" => StsErrorKind::Throttling,
        "RegionDisabledException" | "RegionDisabled" => StsErrorKind::RegionDisabled,
        "InternalFailure" | "InternalError" | "ServiceUnavailable" => StsErrorKind::Server,
        _ => match status {
            Some(s) if s >= 500 => StsErrorKind::Server,
            Some(429) => StsErrorKind::Throttling,
            _ => StsErrorKind::Unknown,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE_REJECTED: &str =
        "MultiFactorAuthentication failed with invalid MFA one time pass code. ";
    const WRONG_SERIAL: &str = "MultiFactorAuthentication failed, unable to validate MFA code. Please verify your MFA serial number is valid and associated with this user.";
    const NOT_LONG_TERM: &str = "Cannot call GetSessionToken with session credentials";
    const NOT_AUTHORIZED: &str = "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::210987654321:role/Admin";
    const ROLE_CHAINING: &str = "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.";
    const MAX_SESSION: &str =
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.";
    const DURATION_RANGE: &str = "1 validation error detected: Value '100' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900";
    const TOKEN_CODE: &str = "1 validation error detected: Value at 'tokenCode' failed to satisfy constraint: Member must have length less than or equal to 6";
    const INVALID_TOKEN: &str = "The security token included in the request is invalid.";
    const SIGNATURE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
    const SIGNATURE_EXPIRED: &str = "Signature expired: 20240101T000000Z is now earlier than 20240101T001000Z (20240101T002000Z - 15 min.)";
    const EXPIRED: &str = "The security token included in the request is expired";
    const REQUEST_EXPIRED: &str = "Request has expired.";
    const RATE: &str = "Rate exceeded";
    const REGION: &str = "STS is not activated in this region for account:123456789012. Your account administrator can activate STS in this region using the IAM Console.";

    use RetryClass::*;
    use StsErrorKind::*;

    /// (code, message, HTTP status) -> (kind, retry class)
    type Row<'a> = (
        Option<&'a str>,
        &'a str,
        Option<u16>,
        StsErrorKind,
        RetryClass,
    );

    #[test]
    fn classifies_the_answers_aws_sends() {
        #[rustfmt::skip]
        let table: &[Row] = &[
            (Some("AccessDenied"), CODE_REJECTED, Some(403), CodeRejected, NextTotpStep),
            (Some("AccessDenied"), WRONG_SERIAL, Some(403), WrongSerial, NeedsUser),
            (Some("AccessDenied"), NOT_LONG_TERM, Some(403), NotLongTermKeys, NeedsUser),
            (Some("AccessDenied"), NOT_AUTHORIZED, Some(403), NotAuthorized, NeedsUser),
            (Some("AccessDenied"), "", Some(403), NotAuthorized, NeedsUser),
            (Some("ValidationError"), ROLE_CHAINING, Some(400), Validation(ValidationKind::RoleChainingDuration), NeedsUser),
            (Some("ValidationError"), MAX_SESSION, Some(400), Validation(ValidationKind::Duration), NeedsUser),
            (Some("ValidationError"), DURATION_RANGE, Some(400), Validation(ValidationKind::Duration), NeedsUser),
            (Some("ValidationError"), TOKEN_CODE, Some(400), Validation(ValidationKind::Other), NeedsUser),
            (Some("MalformedPolicyDocument"), "Syntax errors in policy.", Some(400), Validation(ValidationKind::Policy), NeedsUser),
            (Some("PackedPolicyTooLarge"), "Packed policy consumes 130% of allotted space", Some(400), Validation(ValidationKind::Policy), NeedsUser),
            (Some("InvalidClientTokenId"), INVALID_TOKEN, Some(403), InvalidClientToken, NeedsUser),
            (Some("SignatureDoesNotMatch"), SIGNATURE, Some(403), SignatureMismatch, NeedsUser),
            (Some("SignatureDoesNotMatch"), SIGNATURE_EXPIRED, Some(403), RequestExpired, Soon),
            (Some("ExpiredToken"), EXPIRED, Some(400), ExpiredToken, Reauthenticate),
            (Some("ExpiredTokenException"), EXPIRED, Some(400), ExpiredToken, Reauthenticate),
            (Some("RequestExpired"), REQUEST_EXPIRED, Some(400), RequestExpired, Soon),
            // Throttling comes with HTTP 400, not 429: the code decides.
            (Some("Throttling"), RATE, Some(400), Throttling, Soon),
            (Some("RegionDisabledException"), REGION, Some(403), RegionDisabled, NeedsUser),
            (Some("InternalFailure"), "", Some(500), Server, Soon),
            (Some("ServiceUnavailable"), "", Some(503), Server, Soon),
            (None, "", Some(503), Server, Soon),
            (None, "", Some(502), Server, Soon),
            (None, "", Some(429), Throttling, Soon),
            (Some("SomethingNew"), "", Some(400), Unknown, NeedsUser),
            (Some("SomethingNew"), "", Some(500), Server, Soon),
            (None, "", None, Unknown, Soon),
        ];
        for (code, message, status, kind, class) in table {
            let got = classify(*code, Some(message), *status);
            assert_eq!(got, *kind, "{code:?} {message:?} {status:?}");
            assert_eq!(
                retry_class_of(got, *status),
                *class,
                "{code:?} {message:?} {status:?}"
            );
        }
    }

    #[test]
    fn local_and_transport_kinds_have_classes() {
        for transport in [
            TransportKind::Timeout,
            TransportKind::Io,
            TransportKind::Response,
            TransportKind::Other,
        ] {
            assert_eq!(retry_class_of(Transport(transport), None), Soon);
        }
        assert_eq!(retry_class_of(MalformedCode, None), NeedsUser);
        assert_eq!(retry_class_of(InvalidRequest, None), NeedsUser);
    }

    fn context(call: StsCall) -> CallContext {
        CallContext {
            call,
            role_arn: (call == StsCall::AssumeRole)
                .then(|| "arn:aws:iam::210987654321:role/Admin".to_string()),
            access_key: "ASIA…MPLE".to_string(),
            mfa_serial: Some("arn:aws:iam::123456789012:user/alice".to_string()),
            region: "eu-west-1".to_string(),
            endpoint: None,
            timeout_secs: Some(20),
        }
    }

    fn aws(code: &str, message: &str, status: u16) -> Failure {
        Failure {
            status: Some(status),
            code: Some(code.to_string()),
            message: Some(message.to_string()),
            request_id: Some("c6104cbe-af31-11e0-8154-cbc7ccf896c7".to_string()),
            ..Failure::default()
        }
    }

    #[test]
    fn messages_say_what_happened_and_what_to_do() {
        let e = StsError::new(
            context(StsCall::AssumeRole),
            aws("ValidationError", ROLE_CHAINING, 400),
            &[],
        );
        let text = e.to_string();
        assert!(
            text.contains("AssumeRole of arn:aws:iam::210987654321:role/Admin"),
            "{text}"
        );
        assert!(text.contains("ASIA…MPLE"), "{text}");
        assert!(text.contains("assume_session_duration must be at most 3600 when the role is assumed from an MFA session"), "{text}");
        assert!(text.contains("request id c6104cbe"), "{text}");

        let e = StsError::new(
            context(StsCall::GetSessionToken),
            aws("AccessDenied", WRONG_SERIAL, 403),
            &[],
        );
        let text = e.to_string();
        assert!(text.contains("check mfa_serial_number: it must be the MFA device ARN arn:aws:iam::ACCOUNT:mfa/NAME"), "{text}");
        assert!(
            text.contains("use arn:aws:iam::123456789012:mfa/alice"),
            "{text}"
        );
        assert_eq!(e.retry_class(), NeedsUser);
    }

    #[test]
    fn scrubs_values_that_were_sent() {
        let e = StsError::new(
            context(StsCall::GetSessionToken),
            aws(
                "ValidationError",
                "1 validation error detected: Value '4455667' at 'tokenCode' failed to satisfy constraint",
                400,
            ),
            &["4455667", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"],
        );
        let text = format!("{e} {e:?}");
        assert!(!text.contains("4455667"), "{text}");
        assert!(text.contains("Value '***'"), "{text}");
    }
}
