//! Temporary AWS credentials as STS hands them out and the credentials file
//! stores them.

use secrecy::SecretString;
use time::OffsetDateTime;

/// One set of temporary credentials: an MFA session (GetSessionToken) or a
/// role session (AssumeRole). The secret parts are [`SecretString`], so a
/// `Debug` of this type never shows them.
#[derive(Clone, Debug)]
pub struct SessionCredentials {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: SecretString,
    /// When STS says the credentials stop working (UTC).
    pub expiration: OffsetDateTime,
}
