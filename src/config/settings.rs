//! Typed, validated settings of one section.
//!
//! Validation collects every problem of a section rather than stopping at
//! the first, so that one run of `plan` shows all there is to fix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;

use super::keys;
use super::{ConfigError, EnvLookup, RawSection, RawValue, SecretText, Sourced};
use crate::sts::limits;
use crate::text::quoted;

/// Where the long-term IAM keys (which sign GetSessionToken) come from.
#[derive(Debug, Clone)]
pub enum LongTermKeys {
    /// A section of the credentials file (`credentials_section`).
    CredentialsSection(String),
    /// The keyring item of `credentials_section` (`long_term_keys = "keyring"`).
    Keyring(String),
    /// `access_key_id` + `secret_access_key` in the config or on the command line.
    Inline {
        access_key_id: String,
        secret_access_key: SecretString,
    },
}

/// Where the six-digit MFA code comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum CodeSource {
    Oath {
        credential: String,
        reader: Option<String>,
        password: Option<PasswordSpec>,
        /// How long `oath_password_command` may run (`process_timeout`).
        timeout: Duration,
    },
    Process {
        command: String,
        /// How long the command may run (`process_timeout`).
        timeout: Duration,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum PasswordSpec {
    Command(String),
    File(PathBuf),
    /// The desktop keyring (`oath_password_keyring = true`).
    Keyring,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoleSettings {
    pub arn: String,
    pub duration: u32,
    pub session_name: String,
    pub source_identity: Option<String>,
    pub external_id: Option<String>,
    pub policy_arns: Vec<String>,
    /// Inline policy JSON (already read when given as `@file`).
    pub policy: Option<String>,
}

/// Where a section's role (or MFA) session goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Output {
    /// The shared credentials file (the profile `profile_name`).
    File,
    /// The runtime cache only; `credential-process` serves it.
    Process,
}

/// The local credentials endpoint (daemon-wide: every section has the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSettings {
    /// A loopback address (port 0: any free port).
    pub address: std::net::SocketAddr,
    pub section_tokens: bool,
    pub unix_socket: bool,
}

/// Where a section's session comes from: one source per section.
#[derive(Debug, Clone)]
pub enum Source {
    /// An IAM user's long-term keys and an MFA code (the YubiKey or
    /// `mfa_process`): GetSessionToken, or AssumeRole with the code.
    Mfa(MfaSource),
    /// IAM Identity Center: an SSO session's access token buys the role
    /// credentials of an account (GetRoleCredentials).
    Sso(SsoSource),
}

/// The MFA source: long-term keys, an MFA device and where its codes come from.
#[derive(Debug, Clone)]
pub struct MfaSource {
    pub long_term: LongTermKeys,
    pub mfa_serial_number: String,
    pub code_source: CodeSource,
    /// GetSessionToken duration; 0 means a direct AssumeRole with the code.
    pub mfa_session_duration: u32,
}

impl MfaSource {
    /// True when the role is assumed directly with an MFA code (no MFA session).
    pub fn direct_assume_role(&self) -> bool {
        self.mfa_session_duration == 0
    }
}

/// The IAM Identity Center source: an SSO session and the account and
/// role (permission set) its token is exchanged for.
#[derive(Debug, Clone, PartialEq)]
pub struct SsoSource {
    pub(crate) session: crate::sso::SsoSession,
    pub account_id: String,
    pub role_name: String,
    /// Open the verification URL in the browser when a sign-in starts
    /// (`sso_open_browser`).
    pub open_browser: bool,
}

impl SsoSource {
    /// The SSO session's name (its `[sso-session NAME]`).
    pub fn session_name(&self) -> &str {
        &self.session.name
    }
}

/// One section's validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub profile_name: String,
    pub source: Source,
    pub role: Option<RoleSettings>,
    pub region: String,
    pub sts_endpoint: Option<String>,
    pub refresh_margin: u32,
    /// Most AssumeRole (and GetRoleCredentials) calls in flight at once
    /// (`sts_concurrency`).
    pub sts_concurrency: usize,
    pub output: Output,
    pub expiry_key: String,
    pub backups: usize,
    /// The credentials endpoint, when it is on.
    pub endpoint: Option<EndpointSettings>,
}

/// The lifetime assumed for role credentials from IAM Identity Center when
/// nothing says otherwise: a permission set's session lasts one hour unless
/// its administrator chose longer (up to 12 h).
pub const SSO_ROLE_LIFETIME: u32 = 3600;

impl Settings {
    /// The account the section's session belongs to: the role's, else the
    /// SSO account, else the MFA device's (an IAM user's device is in the
    /// user's account); `None` when the ARN does not say (a hardware
    /// token's serial number).
    pub fn account_id(&self) -> Option<String> {
        let arn = match (&self.role, &self.source) {
            (Some(role), _) => role.arn.as_str(),
            (None, Source::Sso(sso)) => return Some(sso.account_id.clone()),
            (None, Source::Mfa(mfa)) => mfa.mfa_serial_number.as_str(),
        };
        let account = arn.split(':').nth(4)?;
        (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))
            .then(|| account.to_string())
    }

    /// The MFA source, when the section has one.
    pub fn mfa(&self) -> Option<&MfaSource> {
        match &self.source {
            Source::Mfa(mfa) => Some(mfa),
            Source::Sso(_) => None,
        }
    }

    /// The IAM Identity Center source, when the section has one.
    pub fn sso(&self) -> Option<&SsoSource> {
        match &self.source {
            Source::Sso(sso) => Some(sso),
            Source::Mfa(_) => None,
        }
    }

    /// True when the role is assumed directly with an MFA code (no MFA session).
    pub fn direct_assume_role(&self) -> bool {
        self.mfa().is_some_and(MfaSource::direct_assume_role)
    }

    /// How long the section's credentials last: the role's session, the
    /// MFA session, or (SSO) what a permission set gives by default.
    pub fn lifetime(&self) -> u32 {
        match (&self.role, &self.source) {
            (Some(role), _) => role.duration,
            (None, Source::Mfa(mfa)) => mfa.mfa_session_duration,
            (None, Source::Sso(_)) => SSO_ROLE_LIFETIME,
        }
    }
}

/// Reads values off a section, recording every problem.
struct Reader<'a> {
    values: &'a BTreeMap<String, Sourced>,
    errors: Vec<ConfigError>,
}

impl<'a> Reader<'a> {
    fn error(&mut self, key: &str, message: String, hint: impl Into<String>) {
        let span = self.values.get(key).and_then(Sourced::span);
        self.errors.push(ConfigError::at(span, message, hint));
    }

    /// Checks `value` against what AWS accepts for it; the message quotes
    /// it (short and escaped) and the hint says the rule.
    fn check(&mut self, key: &str, label: &str, value: &str, rule: &limits::Rule) {
        if let Err(problem) = rule.check(value) {
            self.error(
                key,
                format!(
                    "{label} {} is not accepted by AWS: {problem}",
                    quoted(value)
                ),
                format!(
                    "use {}-{} characters: {}",
                    rule.length.start(),
                    rule.length.end(),
                    rule.characters
                ),
            );
        }
    }

    fn text(&mut self, key: &str) -> Option<String> {
        match &self.values.get(key)?.value {
            RawValue::String(s) if s.trim().is_empty() => {
                self.error(
                    key,
                    format!("{key} is empty"),
                    format!("remove {key} or give it a value"),
                );
                None
            }
            RawValue::String(s) => Some(s.clone()),
            RawValue::Secret(secret) if secret.text.is_some() => None,
            other => {
                let found = other.type_name();
                self.error(
                    key,
                    format!("{key} must be a string, found {found}"),
                    format!("write it in quotes: {key} = \"...\""),
                );
                None
            }
        }
    }

    fn integer(
        &mut self,
        key: &str,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
        unit: &str,
    ) -> i64 {
        let value = match self.values.get(key).map(|s| &s.value) {
            None => return default,
            Some(RawValue::Integer(i)) => *i,
            Some(RawValue::String(s)) if s.trim().parse::<i64>().is_ok() => {
                self.error(
                    key,
                    format!("{key} must be an integer, found the string {}", quoted(s)),
                    format!("remove the quotes: {key} = {}", s.trim()),
                );
                return default;
            }
            Some(other) => {
                let found = other.type_name();
                self.error(
                    key,
                    format!("{key} must be an integer, found {found}"),
                    format!("write a whole number of {unit}, e.g. {key} = {default}"),
                );
                return default;
            }
        };
        if !range.contains(&value) {
            self.error(
                key,
                format!("{key} = {value} is out of range"),
                format!("use {}-{} {unit}", range.start(), range.end()),
            );
            return default;
        }
        value
    }

    fn boolean(&mut self, key: &str, default: bool) -> bool {
        match self.values.get(key).map(|s| &s.value) {
            None => default,
            Some(RawValue::Bool(b)) => *b,
            Some(other) => {
                let found = other.type_name();
                self.error(
                    key,
                    format!("{key} must be true or false, found {found}"),
                    format!("write {key} = true or {key} = false, without quotes"),
                );
                default
            }
        }
    }

    fn text_list(&mut self, key: &str) -> Vec<String> {
        match self.values.get(key).map(|s| &s.value) {
            None => Vec::new(),
            Some(RawValue::StringList(list)) => list.clone(),
            Some(RawValue::String(s)) => {
                self.error(
                    key,
                    format!("{key} must be an array of strings"),
                    format!("write {key} = [{}]", quoted(s)),
                );
                Vec::new()
            }
            Some(other) => {
                let found = other.type_name();
                self.error(
                    key,
                    format!("{key} must be an array of strings, found {found}"),
                    format!("write {key} = [\"arn:...\"]"),
                );
                Vec::new()
            }
        }
    }
}

pub(super) fn validate(
    raw: &RawSection,
    config_file: Option<&Path>,
    env: EnvLookup,
    sso_sessions: &SsoSessions,
) -> Result<Settings, Vec<ConfigError>> {
    let mut r = Reader {
        values: &raw.values,
        errors: Vec::new(),
    };
    check_unknown_keys(&mut r);

    let profile_name = r.text("profile_name").unwrap_or_else(|| raw.name.clone());
    check_profile_name(&mut r, &profile_name);
    let source = match source_kind(&mut r) {
        SourceKind::Sso => sso_source(&mut r, raw, sso_sessions).map(Source::Sso),
        SourceKind::Mfa => mfa_source(&mut r, raw, &profile_name, config_file).map(Source::Mfa),
    };
    // A role assumed from temporary credentials is role chaining (1 h at
    // most); from the long-term keys with a code, it is not.
    let chained_from = match &source {
        Some(Source::Sso(_)) => Some("IAM Identity Center role credentials"),
        Some(Source::Mfa(mfa)) if mfa.direct_assume_role() => None,
        Some(Source::Mfa(_)) => Some("an MFA session"),
        None => None,
    };
    let role = role_settings(&mut r, raw, chained_from, config_file);
    if let Some(Source::Mfa(mfa)) = &source
        && mfa.direct_assume_role()
        && role.is_none()
        && raw.values.contains_key("mfa_session_duration")
    {
        r.error(
            "mfa_session_duration",
            "mfa_session_duration = 0 means assuming a role directly, but assume_role_arn is not set".to_string(),
            "set assume_role_arn, or use an MFA session duration of 900-129600 seconds",
        );
    }

    let region = r
        .text("region")
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".to_string());
    if !is_region(&region) {
        // Found here, not after a code was spent on a call that cannot work.
        r.error(
            "region",
            format!("region {} is not an AWS region name", quoted(&region)),
            "use a region such as us-east-1 or eu-west-1 (check region, AWS_REGION and AWS_DEFAULT_REGION)",
        );
    }
    let sts_endpoint = r
        .text("sts_endpoint")
        .or_else(|| env("AWS_ENDPOINT_URL_STS"))
        .or_else(|| env("AWS_ENDPOINT_URL"));
    if let Some(endpoint) = &sts_endpoint
        && !(endpoint.starts_with("https://") || endpoint.starts_with("http://"))
    {
        r.error(
            "sts_endpoint",
            format!("sts_endpoint {} is not a URL", quoted(endpoint)),
            "write it as https://sts.REGION.amazonaws.com",
        );
    }

    let refresh_margin = r.integer(
        "refresh_margin",
        keys::DEFAULT_REFRESH_MARGIN,
        60..=3600,
        "seconds",
    );
    // The lifetimes the config knows (an SSO role's is the permission
    // set's, known only when it arrives).
    let shortest = [
        match (&source, &role) {
            (Some(Source::Mfa(mfa)), None) if !mfa.direct_assume_role() => {
                Some(i64::from(mfa.mfa_session_duration))
            }
            _ => None,
        },
        role.as_ref().map(|role| i64::from(role.duration)),
    ]
    .into_iter()
    .flatten()
    .min();
    if let Some(shortest) = shortest
        && refresh_margin * 2 > shortest
    {
        r.error(
                "refresh_margin",
                format!("refresh_margin = {refresh_margin} is more than half the session duration ({shortest} s): sessions would be refreshed almost constantly"),
                format!("use a refresh_margin of at most {} seconds", shortest / 2),
            );
    }
    let expiry_key = r
        .text("expiry_key")
        .unwrap_or_else(|| keys::DEFAULT_EXPIRY_KEY.to_string());
    if !is_credentials_key(&expiry_key) || expiry_key.starts_with("aws_") {
        r.error(
            "expiry_key",
            format!("expiry_key {} is not usable as a credentials-file key", quoted(&expiry_key)),
            "use lowercase letters, digits and underscores, not starting with aws_ (default x_security_token_expires)",
        );
    }
    let backups = r.integer("backups", keys::DEFAULT_BACKUPS as i64, 0..=100, "files") as usize;
    let sts_concurrency = r.integer("sts_concurrency", 32, 1..=256, "calls") as usize;
    let section_tokens = r.boolean("endpoint_section_tokens", false);
    let unix_socket = r.boolean("endpoint_socket", false);
    let endpoint = match r.text("endpoint").as_deref() {
        None | Some("off") => None,
        Some(text) => match crate::endpoint::parse_address(text) {
            Ok(address) => Some(EndpointSettings {
                address,
                section_tokens,
                unix_socket,
            }),
            Err(e) => {
                r.error(
                    "endpoint",
                    e.to_string(),
                    "endpoint = \"127.0.0.1:9911\" (or \"off\")",
                );
                None
            }
        },
    };
    let output = match r.text("output").as_deref() {
        None | Some("file") => Output::File,
        Some("process") => Output::Process,
        Some(other) => {
            r.error(
                "output",
                format!("output = {} is not a place a session can go", quoted(other)),
                "use output = \"file\" (the credentials file) or output = \"process\" (credential_process)",
            );
            Output::File
        }
    };

    match (source, r.errors.is_empty()) {
        (Some(source), true) => Ok(Settings {
            profile_name,
            source,
            role,
            region,
            sts_endpoint,
            refresh_margin: refresh_margin as u32,
            sts_concurrency,
            output,
            expiry_key,
            backups,
            endpoint,
        }),
        _ => Err(r
            .errors
            .into_iter()
            .map(|e| e.in_section(&raw.name))
            .collect()),
    }
}

/// The keys only one source reads. A section is of the source whose keys
/// it has; keys of both are a mistake (one of them would be ignored).
const SSO_KEYS: [&str; 3] = ["sso_session", "sso_account_id", "sso_role_name"];
const MFA_KEYS: [&str; 12] = [
    "mfa_serial_number",
    "mfa_oath_slot",
    "mfa_process",
    "mfa_session_duration",
    "credentials_section",
    "long_term_keys",
    "access_key_id",
    "secret_access_key",
    "yubikey_reader",
    "oath_password_command",
    "oath_password_file",
    "oath_password_keyring",
];

/// The settings of an SSO session (`[sso-session.NAME]` of the config
/// file, or `[sso-session NAME]` of the AWS config), by name, resolved
/// once per load: the session, or why the sections naming it are invalid.
pub(super) type SsoSessions = BTreeMap<String, Result<crate::sso::SsoSession, SessionProblem>>;

/// Why an SSO session cannot be used, said for every section that names it.
#[derive(Debug, Clone)]
pub(super) enum SessionProblem {
    /// Its `[sso-session.NAME]` here has errors (at their keys).
    InThisFile(Vec<ConfigError>),
    /// Not here, and the AWS config does not have it as it should (the
    /// message names that file and line); said at `sso_session`.
    Elsewhere { message: String, hint: String },
}

enum SourceKind {
    Mfa,
    Sso,
}

fn source_kind(r: &mut Reader) -> SourceKind {
    let present = |keys: &[&'static str]| -> Vec<&'static str> {
        keys.iter()
            .copied()
            .filter(|key| r.values.contains_key(*key))
            .collect()
    };
    let sso = present(&SSO_KEYS);
    let mfa = present(&MFA_KEYS);
    match (sso.is_empty(), mfa.is_empty()) {
        (true, _) => SourceKind::Mfa,
        (false, true) => SourceKind::Sso,
        (false, false) => {
            let lines = |keys: &[&str]| {
                keys.iter()
                    .map(|key| key.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            r.error(
                sso[0],
                format!(
                    "the section has keys of two session sources: IAM Identity Center ({}) and an MFA device ({}); a section takes its session from one",
                    lines(&sso),
                    lines(&mfa)
                ),
                format!(
                    "keep the sso_* keys or the MFA keys in this section; defaults of one source (at the top of the file, in a group) belong in a group of its own, e.g. [mfa] with the MFA keys and the MFA sections below it (first MFA key: {})",
                    mfa[0]
                ),
            );
            SourceKind::Sso
        }
    }
}

fn sso_source(r: &mut Reader, raw: &RawSection, sessions: &SsoSessions) -> Option<SsoSource> {
    let required = |r: &mut Reader, key: &str, example: &str| {
        let value = r.text(key);
        if value.is_none() && !r.values.contains_key(key) {
            r.errors.push(ConfigError::at(
                raw.span.clone(),
                format!("{key} is not set"),
                format!("add {key} = {example}"),
            ));
        }
        value
    };
    let name = required(
        r,
        "sso_session",
        "\"NAME\" (a [sso-session.NAME] of this file, or of ~/.aws/config)",
    );
    let account_id = required(
        r,
        "sso_account_id",
        "\"123456789012\" (the account's 12-digit id)",
    );
    let role_name = required(
        r,
        "sso_role_name",
        "\"ReadOnly\" (the permission set's name)",
    );
    let open_browser = r.boolean("sso_open_browser", false);
    if let Some(account) = &account_id
        && !(account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))
    {
        r.error(
            "sso_account_id",
            format!(
                "sso_account_id {} is not an AWS account id",
                quoted(account)
            ),
            "use the account's 12-digit id, as the access portal shows it",
        );
    }
    if let Some(role) = &role_name {
        // A permission set's name: 1-32 characters of [\w+=,.@-].
        r.check(
            "sso_role_name",
            "role name",
            role,
            &limits::PERMISSION_SET_NAME,
        );
    }
    let session = match name.as_deref().map(|name| (name, sessions.get(name))) {
        Some((_, Some(Ok(session)))) => Some(session.clone()),
        Some((_, Some(Err(SessionProblem::InThisFile(errors))))) => {
            r.errors.extend(errors.iter().cloned());
            None
        }
        Some((name, Some(Err(SessionProblem::Elsewhere { message, hint })))) => {
            r.error(
                "sso_session",
                format!("sso_session {}: {message}", quoted(name)),
                hint.clone(),
            );
            None
        }
        Some((name, None)) => {
            r.error(
                "sso_session",
                format!("sso_session {} names no SSO session", quoted(name)),
                format!("add [sso-session.{name}] with sso_start_url and sso_region"),
            );
            None
        }
        None => None,
    };
    Some(SsoSource {
        session: session?,
        account_id: account_id?,
        role_name: role_name?,
        open_browser,
    })
}

fn mfa_source(
    r: &mut Reader,
    raw: &RawSection,
    profile_name: &str,
    config_file: Option<&Path>,
) -> Option<MfaSource> {
    let credentials_section = r
        .text("credentials_section")
        .unwrap_or_else(|| keys::DEFAULT_CREDENTIALS_SECTION.to_string());
    if profile_name == credentials_section {
        r.error(
            if raw.values.contains_key("profile_name") { "profile_name" } else { "credentials_section" },
            format!("profile_name and credentials_section are both [{profile_name}]: the daemon would overwrite the long-term keys it needs"),
            "write the session to another profile (profile_name) or keep the long-term keys in another section (credentials_section)",
        );
    }
    let long_term = long_term_keys(r, credentials_section);

    let mfa_serial_number = match r.text("mfa_serial_number") {
        Some(serial) => {
            check_mfa_serial(r, &serial);
            serial
        }
        None => {
            if !raw.values.contains_key("mfa_serial_number") {
                r.errors.push(ConfigError::at(
                    raw.span.clone(),
                    "mfa_serial_number is not set",
                    "add mfa_serial_number = \"arn:aws:iam::ACCOUNT:mfa/NAME\" (IAM console, Security credentials, MFA device), or sso_session, sso_account_id and sso_role_name for IAM Identity Center",
                ));
            }
            String::new()
        }
    };
    let code_source = code_source(r, raw, config_file);

    let mfa_session_duration = r.integer(
        "mfa_session_duration",
        keys::DEFAULT_MFA_SESSION_DURATION,
        0..=*limits::SESSION_TOKEN_DURATION.end(),
        "seconds",
    );
    if (1..*limits::SESSION_TOKEN_DURATION.start()).contains(&mfa_session_duration) {
        r.error(
            "mfa_session_duration",
            format!("mfa_session_duration = {mfa_session_duration} is out of range"),
            "use 900-129600 seconds, or 0 to assume the role directly with the MFA code",
        );
    }
    Some(MfaSource {
        long_term: long_term?,
        mfa_serial_number,
        code_source: code_source?,
        mfa_session_duration: mfa_session_duration as u32,
    })
}

fn check_unknown_keys(r: &mut Reader) {
    let unknown: Vec<String> = r
        .values
        .keys()
        .filter(|k| keys::spec(k).is_none())
        .cloned()
        .collect();
    for key in unknown {
        if keys::SSO_SESSION_KEYS.iter().any(|k| k.name == key) {
            r.error(
                &key,
                format!("{key} belongs to an SSO session, not to a section"),
                "define the session once, as [sso-session.NAME] with sso_start_url, sso_region (and sso_registration_scopes), and name it here with sso_session = \"NAME\" (or reuse a [sso-session NAME] of ~/.aws/config)",
            );
            continue;
        }
        let hint = match keys::suggest(&key) {
            Some(known) => format!("did you mean {known}?"),
            None => "see the config reference in README.md for the known keys".to_string(),
        };
        r.error(&key, format!("unknown key {}", quoted(&key)), hint);
    }
}

/// Section names become credentials-file section headers (and are shown in
/// every log line about the section: no control character either).
fn check_profile_name(r: &mut Reader, name: &str) {
    let bad = name.is_empty()
        || name.contains(['[', ']'])
        || name.chars().any(char::is_control)
        || name.trim() != name
        || name == "DEFAULT";
    if bad {
        r.error(
            "profile_name",
            format!(
                "profile name {} cannot be a credentials-file section",
                quoted(name)
            ),
            "use letters, digits, dashes, dots or underscores; not DEFAULT, no brackets or control characters",
        );
    }
}

fn is_credentials_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn long_term_keys(r: &mut Reader, credentials_section: String) -> Option<LongTermKeys> {
    let id = r.text("access_key_id");
    let secret = match r.values.get("secret_access_key").map(|s| &s.value) {
        Some(RawValue::Secret(SecretText {
            text: Some(secret), ..
        })) => Some(secret.clone()),
        Some(_) => {
            r.text("secret_access_key");
            None
        }
        None => None,
    };
    if let Some(id) = &id {
        r.check("access_key_id", "access key id", id, &limits::ACCESS_KEY_ID);
    }
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Some(LongTermKeys::Inline {
            access_key_id,
            secret_access_key,
        }),
        (None, None) => match r.text("long_term_keys").as_deref() {
            None | Some("file") => Some(LongTermKeys::CredentialsSection(credentials_section)),
            Some("keyring") => Some(LongTermKeys::Keyring(credentials_section)),
            Some(other) => {
                r.error(
                    "long_term_keys",
                    format!("long_term_keys = {} is not a place keys can come from", quoted(other)),
                    "use long_term_keys = \"file\" (the credentials file) or \"keyring\" (the desktop keyring)",
                );
                None
            }
        },
        (Some(_), None) => {
            r.error(
                "access_key_id",
                "access_key_id is set without secret_access_key".into(),
                "set both, or neither and keep the keys in credentials_section",
            );
            None
        }
        (None, Some(_)) => {
            r.error(
                "secret_access_key",
                "secret_access_key is set without access_key_id".into(),
                "set both, or neither and keep the keys in credentials_section",
            );
            None
        }
    }
}

fn check_mfa_serial(r: &mut Reader, serial: &str) {
    if let Err(problem) = limits::SERIAL_NUMBER.check(serial) {
        r.error(
            "mfa_serial_number",
            format!(
                "mfa_serial_number {} is neither an MFA device ARN nor a hardware serial number: {problem}",
                quoted(serial)
            ),
            "use arn:aws:iam::ACCOUNT:mfa/NAME as shown in the IAM console",
        );
        return;
    }
    if !serial.starts_with("arn:") {
        // A hardware token's serial number (e.g. GAHT12345678).
        return;
    }
    match limits::iam_arn(serial) {
        Ok(arn) if arn.kind == "mfa" && !arn.name.is_empty() && arn.account != "aws" => {}
        Ok(arn) if arn.kind == "user" => r.error(
            "mfa_serial_number",
            format!(
                "mfa_serial_number {} is a user ARN, not an MFA device",
                quoted(serial)
            ),
            format!(
                "use the MFA device's ARN: arn:aws:iam::{}:mfa{}{}",
                arn.account, arn.path, arn.name
            ),
        ),
        Ok(_) => r.error(
            "mfa_serial_number",
            format!(
                "mfa_serial_number {} is not an MFA device ARN",
                quoted(serial)
            ),
            "use arn:aws:iam::ACCOUNT:mfa/NAME (ACCOUNT is 12 digits)",
        ),
        Err(problem) => r.error(
            "mfa_serial_number",
            format!(
                "mfa_serial_number {} is not an MFA device ARN: {problem}",
                quoted(serial)
            ),
            "use arn:aws:iam::ACCOUNT:mfa/NAME (ACCOUNT is 12 digits)",
        ),
    }
}

fn code_source(r: &mut Reader, raw: &RawSection, config_file: Option<&Path>) -> Option<CodeSource> {
    let default_timeout = crate::oath::DEFAULT_PROCESS_TIMEOUT.as_secs() as i64;
    let timeout =
        Duration::from_secs(
            r.integer("process_timeout", default_timeout, 1..=600, "seconds") as u64,
        );
    let slot = r.text("mfa_oath_slot");
    let process = r.text("mfa_process");
    let reader = r.text("yubikey_reader");
    let password_command = r.text("oath_password_command");
    let password_file = r.text("oath_password_file");
    let from_keyring = r.boolean("oath_password_keyring", false);
    let password = match (password_command, password_file, from_keyring) {
        (Some(command), None, false) => Some(PasswordSpec::Command(command)),
        (None, Some(file), false) => Some(PasswordSpec::File(resolve_path(&file, config_file))),
        (None, None, true) => Some(PasswordSpec::Keyring),
        (None, None, false) => None,
        _ => {
            r.error(
                "oath_password_file",
                "more than one of oath_password_command, oath_password_file and oath_password_keyring is set".into(),
                "keep one of them",
            );
            None
        }
    };
    match (slot, process) {
        (Some(credential), None) => Some(CodeSource::Oath {
            credential,
            reader,
            password,
            timeout,
        }),
        (None, Some(command)) => Some(CodeSource::Process { command, timeout }),
        (Some(_), Some(_)) => {
            r.error("mfa_process", "mfa_oath_slot and mfa_process are both set".into(), "keep mfa_oath_slot to read codes from the YubiKey, or mfa_process to run a command");
            None
        }
        (None, None) => {
            if !raw.values.contains_key("mfa_oath_slot") && !raw.values.contains_key("mfa_process")
            {
                r.errors.push(ConfigError::at(
                    raw.span.clone(),
                    "no MFA code source: neither mfa_oath_slot nor mfa_process is set",
                    "add mfa_oath_slot = \"Amazon Web Services:NAME@ACCOUNT\" (`aws-session-daemon oath list` shows the names on your YubiKey)",
                ));
            }
            None
        }
    }
}

/// `chained_from`: the temporary credentials the role is assumed with (an
/// MFA session, IAM Identity Center's role credentials), which makes it
/// role chaining: at most one hour.
fn role_settings(
    r: &mut Reader,
    raw: &RawSection,
    chained_from: Option<&str>,
    config_file: Option<&Path>,
) -> Option<RoleSettings> {
    let session_name = r
        .text("assume_role_role_session_name")
        .unwrap_or_else(|| keys::DEFAULT_ROLE_SESSION_NAME.to_string());
    let source_identity = r.text("assume_role_source_identity");
    let external_id = r.text("assume_role_external_id");
    let policy_arns = r.text_list("assume_role_policy_arns");
    let policy = r
        .text("assume_role_policy")
        .and_then(|p| read_policy(r, &p, config_file));
    let duration = r.integer(
        "assume_session_duration",
        keys::DEFAULT_ASSUME_SESSION_DURATION,
        limits::ASSUME_ROLE_DURATION,
        "seconds",
    );
    let arn = r.text("assume_role_arn");
    let role_keys = [
        "assume_session_duration",
        "assume_role_role_session_name",
        "assume_role_source_identity",
        "assume_role_external_id",
        "assume_role_policy_arns",
        "assume_role_policy",
    ];
    let Some(arn) = arn else {
        if let Some(key) = role_keys.iter().find(|k| raw.values.contains_key(**k))
            && !raw.values.contains_key("assume_role_arn")
        {
            r.error(
                key,
                format!("{key} is set but assume_role_arn is not"),
                "set assume_role_arn, or remove the assume_role_* settings",
            );
        }
        return None;
    };
    match limits::role_arn(&arn) {
        Ok(_) => {}
        Err(_) if limits::iam_arn(&arn).is_ok_and(|a| a.kind == "user") => {
            let user = limits::iam_arn(&arn).expect("checked");
            r.error(
                "assume_role_arn",
                format!("assume_role_arn {} is a user ARN, not a role", quoted(&arn)),
                format!(
                    "use the role's ARN, e.g. arn:aws:iam::{}:role{}{}",
                    user.account, user.path, user.name
                ),
            )
        }
        Err(problem) => r.error(
            "assume_role_arn",
            format!(
                "assume_role_arn {} is not a role ARN: {problem}",
                quoted(&arn)
            ),
            "use arn:aws:iam::ACCOUNT:role/NAME (ACCOUNT is 12 digits; the name 1-64 letters, digits and _+=,.@-)",
        ),
    }
    if let Some(from) = chained_from
        && duration > limits::ROLE_CHAINING_DURATION
    {
        r.error(
            "assume_session_duration",
            format!("assume_session_duration = {duration}: a role assumed from {from} is limited to 3600 seconds (AWS counts it as role chaining)"),
            if r.values.contains_key("sso_session") {
                "use assume_session_duration = 3600 or less (or drop assume_role_arn and take the SSO role itself, whose session lasts as long as its permission set says)"
            } else {
                "use assume_session_duration = 3600 or less, or mfa_session_duration = 0 to assume the role directly with the MFA code (one code per refresh)"
            },
        );
    }
    r.check(
        "assume_role_role_session_name",
        "role session name",
        &session_name,
        &limits::ROLE_SESSION_NAME,
    );
    if let Some(identity) = &source_identity {
        r.check(
            "assume_role_source_identity",
            "source identity",
            identity,
            &limits::SOURCE_IDENTITY,
        );
    }
    if let Some(external_id) = &external_id {
        r.check(
            "assume_role_external_id",
            "external id",
            external_id,
            &limits::EXTERNAL_ID,
        );
    }
    if policy_arns.len() > limits::MAX_POLICY_ARNS {
        r.error(
            "assume_role_policy_arns",
            format!(
                "assume_role_policy_arns lists {} policies; AssumeRole takes at most {}",
                policy_arns.len(),
                limits::MAX_POLICY_ARNS
            ),
            "keep at most 10 managed policy ARNs (or combine them into an inline assume_role_policy)",
        );
    }
    for policy_arn in &policy_arns {
        let problem = match limits::iam_arn(policy_arn) {
            Ok(parts) if parts.kind != "policy" || parts.name.is_empty() => {
                Some("it does not name a policy".to_string())
            }
            Ok(_) if !limits::ARN_LENGTH.contains(&policy_arn.chars().count()) => Some(format!(
                "an ARN has {}-{} characters",
                limits::ARN_LENGTH.start(),
                limits::ARN_LENGTH.end()
            )),
            Ok(_) => None,
            Err(problem) => Some(problem),
        };
        if let Some(problem) = problem {
            r.error(
                "assume_role_policy_arns",
                format!(
                    "{} is not a managed policy ARN: {problem}",
                    quoted(policy_arn)
                ),
                "use arn:aws:iam::ACCOUNT:policy/NAME or arn:aws:iam::aws:policy/NAME",
            );
        }
    }
    Some(RoleSettings {
        arn,
        duration: duration as u32,
        session_name,
        source_identity,
        external_id,
        policy_arns,
        policy,
    })
}

/// `assume_role_policy` is JSON, or `@path` to a JSON file.
/// `us-east-1`, `us-gov-west-1`, `eu-isoe-west-1`, `cn-north-1`, and the
/// `aws-global` pseudo-region: lowercase words joined by `-`, at least
/// three parts, the last a number.
fn is_region(region: &str) -> bool {
    if region == "aws-global" {
        return true;
    }
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[0].chars().all(|c| c.is_ascii_lowercase())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
}

/// Larger policy files are refused.
const MAX_POLICY_BYTES: u64 = 64 * 1024;

fn read_policy(r: &mut Reader, value: &str, config_file: Option<&Path>) -> Option<String> {
    let text = match value.strip_prefix('@') {
        Some(path) => {
            let path = resolve_path(path, config_file);
            // A regular file of at most 64 KiB (IAM's own limit for an
            // inline session policy is 2,048 characters packed).
            let rules = crate::private_file::ReadRules {
                limit: MAX_POLICY_BYTES,
                follow: true,
                owned: false,
            };
            let read = crate::private_file::read(&path, rules);
            match read.map(|file| file.map(|f| String::from_utf8(f.bytes.to_vec()))) {
                Ok(Some(Ok(text))) => text,
                Ok(Some(Err(_))) => {
                    r.error(
                        "assume_role_policy",
                        format!("policy file {} is not UTF-8 text", path.display()),
                        "save the policy as UTF-8 JSON",
                    );
                    return None;
                }
                Ok(None) => {
                    r.error(
                        "assume_role_policy",
                        format!("policy file {} does not exist", path.display()),
                        "check the path after @ (relative paths are relative to the config file)",
                    );
                    return None;
                }
                Err(e) => {
                    r.error(
                        "assume_role_policy",
                        format!("cannot read the policy file: {e}"),
                        "point @ at a JSON file of at most 64 KiB (relative paths are relative to the config file)",
                    );
                    return None;
                }
            }
        }
        None => value.to_string(),
    };
    let json = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(json) => json,
        Err(e) => {
            r.error(
                "assume_role_policy",
                format!("assume_role_policy is not valid JSON ({e})"),
                "write the policy as JSON, or @path to a JSON file",
            );
            return None;
        }
    };
    if let Err(problem) = limits::SESSION_POLICY.check(&text) {
        let compact = json.to_string().chars().count();
        let hint = if limits::SESSION_POLICY.length.contains(&compact) {
            format!(
                "without its indentation and line breaks it has {compact} characters: write it compactly"
            )
        } else {
            format!(
                "shorten it to at most {} characters (without indentation it has {compact}), or name managed policies in assume_role_policy_arns",
                limits::SESSION_POLICY.length.end()
            )
        };
        r.error(
            "assume_role_policy",
            format!("assume_role_policy is not accepted by AWS: {problem}"),
            hint,
        );
        return None;
    }
    Some(text)
}

fn resolve_path(path: &str, config_file: Option<&Path>) -> PathBuf {
    let path = match path.strip_prefix("~/") {
        Some(rest) => match std::env::var_os("HOME") {
            Some(home) => Path::new(&home).join(rest),
            None => PathBuf::from(path),
        },
        None => PathBuf::from(path),
    };
    match config_file.and_then(Path::parent) {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path,
    }
}
