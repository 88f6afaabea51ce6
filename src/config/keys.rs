//! The config keys: one table that drives validation, unknown-key
//! suggestions, `config show` masking and the README's reference.

pub const DEFAULT_MFA_SESSION_DURATION: i64 = 43_200;
pub const DEFAULT_ASSUME_SESSION_DURATION: i64 = 3_600;
pub const DEFAULT_REFRESH_MARGIN: i64 = 300;
pub const DEFAULT_EXPIRY_KEY: &str = "x_security_token_expires";
pub const DEFAULT_BACKUPS: usize = 5;
pub const DEFAULT_ROLE_SESSION_NAME: &str = "aws-session-daemon";
pub const DEFAULT_CREDENTIALS_SECTION: &str = "default";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Text,
    Integer,
    TextList,
    Bool,
}

#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    pub name: &'static str,
    pub kind: KeyKind,
    /// Masked by `config show`, refused by `config get`, never logged.
    pub secret: bool,
    pub default: &'static str,
    pub meaning: &'static str,
}

const fn key(
    name: &'static str,
    kind: KeyKind,
    default: &'static str,
    meaning: &'static str,
) -> KeySpec {
    KeySpec {
        name,
        kind,
        secret: false,
        default,
        meaning,
    }
}

use KeyKind::{Bool, Integer, Text, TextList};

pub const KEYS: &[KeySpec] = &[
    key(
        "mfa_oath_slot",
        Text,
        "",
        "Name of the OATH credential on the YubiKey that yields the MFA code, e.g. `Amazon Web Services:me@123456789012` (see `oath list`).",
    ),
    key(
        "mfa_process",
        Text,
        "",
        "Command (run with `sh -c`) that prints a six-digit MFA code on its first line (read as soon as the line ends; whatever the command started is then killed); an alternative to `mfa_oath_slot`.",
    ),
    key(
        "mfa_serial_number",
        Text,
        "",
        "ARN of the MFA device, `arn:aws:iam::ACCOUNT:mfa/NAME` (or a hardware token's serial number: 9-256 characters of `[\\w+=/:,.@-]`). Required.",
    ),
    key(
        "assume_role_arn",
        Text,
        "",
        "Role to assume, `arn:aws:iam::ACCOUNT:role/NAME` (the name 1-64 characters of `[\\w+=,.@-]`, after an optional IAM path `/PATH/`). Without it the MFA session itself is written to the profile.",
    ),
    key(
        "credentials_section",
        Text,
        DEFAULT_CREDENTIALS_SECTION,
        "Section of the credentials file that holds the long-term keys.",
    ),
    key(
        "profile_name",
        Text,
        "the section's name",
        "Section of the credentials file that receives the session. Must differ from `credentials_section`.",
    ),
    key(
        "access_key_id",
        Text,
        "",
        "Long-term access key id, instead of reading it from `credentials_section`.",
    ),
    KeySpec {
        name: "secret_access_key",
        kind: Text,
        secret: true,
        default: "",
        meaning: "Long-term secret key, with `access_key_id`. Prefer `credentials_section`; a config holding it must be mode 0600.",
    },
    key(
        "mfa_session_duration",
        Integer,
        "43200",
        "GetSessionToken duration in seconds, 900-129600. `0` assumes the role directly with the MFA code (no MFA session; one code per role refresh).",
    ),
    key(
        "assume_session_duration",
        Integer,
        "3600",
        "AssumeRole duration in seconds, 900-43200; at most 3600 when assumed from an MFA session (AWS role-chaining limit).",
    ),
    key(
        "assume_role_source_identity",
        Text,
        "",
        "SourceIdentity passed to AssumeRole (2-64 characters of `[\\w+=,.@-]`).",
    ),
    key(
        "assume_role_role_session_name",
        Text,
        DEFAULT_ROLE_SESSION_NAME,
        "RoleSessionName passed to AssumeRole (2-64 characters of `[\\w+=,.@-]`).",
    ),
    key(
        "assume_role_policy_arns",
        TextList,
        "[]",
        "Managed policy ARNs that scope the role session (PolicyArns), at most 10.",
    ),
    key(
        "assume_role_policy",
        Text,
        "",
        "Inline session policy: JSON, or `@path` to a JSON file (relative to the config file); at most 2,048 characters, as AWS counts them.",
    ),
    key(
        "assume_role_external_id",
        Text,
        "",
        "ExternalId passed to AssumeRole (2-1,224 characters of `[\\w+=,.@:/-]`, no spaces).",
    ),
    key(
        "sso_session",
        Text,
        "",
        "IAM Identity Center: the SSO session the section signs in with, `[sso-session.NAME]` of this file, else `[sso-session NAME]` of the AWS config (`$AWS_CONFIG_FILE`, `~/.aws/config`). With `sso_account_id` and `sso_role_name`, instead of the MFA keys.",
    ),
    key(
        "sso_account_id",
        Text,
        "",
        "IAM Identity Center: the 12-digit id of the account whose role credentials the section gets. A list (`[\"111111111111\", \"222222222222\"]`) makes the table a template: one section per account and role.",
    ),
    key(
        "sso_role_name",
        Text,
        "",
        "IAM Identity Center: the role (the permission set's name, 1-32 characters of `[\\w+=,.@-]`) in that account. A list makes the table a template.",
    ),
    key(
        "sso_open_browser",
        Bool,
        "false",
        "IAM Identity Center: open the sign-in page in the browser (`xdg-open`) when a sign-in starts; it is always announced by a desktop notification, the log and `status`.",
    ),
    key(
        "section_name",
        Text,
        "the table's name; for a template `{sso_account_id}-{sso_role_name}`",
        "The section's name (and default profile name), with `{sso_account_id}` and `{sso_role_name}` replaced: how a template names the sections it makes.",
    ),
    key(
        "region",
        Text,
        "$AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1",
        "Region of the STS endpoint.",
    ),
    key(
        "sts_endpoint",
        Text,
        "$AWS_ENDPOINT_URL_STS, else $AWS_ENDPOINT_URL, else the regional endpoint",
        "STS endpoint URL (VPC endpoints, tests).",
    ),
    key(
        "sts_concurrency",
        Integer,
        "32",
        "Most AssumeRole calls in flight at once, 1-256. The daemon starts there, halves it when STS answers `Throttling`, and grows it again slowly; the largest value of any section applies.",
    ),
    key(
        "process_timeout",
        Integer,
        "10",
        "Seconds `mfa_process` and `oath_password_command` may run before they are killed (with their children), 1-600. Their output is capped at 4 KiB.",
    ),
    key(
        "refresh_margin",
        Integer,
        "300",
        "Seconds before expiry at which a session is refreshed, 60-3600 and less than the session's duration.",
    ),
    key(
        "output",
        Text,
        "file",
        "Where the section's session goes: `file` (the credentials file) or `process` (kept in the runtime cache only, served by `aws-session-daemon credential-process --profile NAME` through `credential_process` in ~/.aws/config; nothing is written to the credentials file).",
    ),
    key(
        "expiry_key",
        Text,
        DEFAULT_EXPIRY_KEY,
        "Key written next to the credentials with the expiry time (RFC 3339, UTC).",
    ),
    key(
        "endpoint",
        Text,
        "off",
        "Serve every section's session on a local credentials endpoint (the container-credentials protocol of the AWS SDKs and the AWS CLI) at this loopback address, `127.0.0.1:PORT` (port 0: any free port); the address in use and the token file are recorded in the runtime directory (see `status`). Daemon-wide: set it at the top of the config.",
    ),
    key(
        "endpoint_section_tokens",
        Bool,
        "false",
        "Also write a token per section (`endpoint-tokens/SECTION` in the runtime directory), which opens that section's URL only: hand a container one role and no other.",
    ),
    key(
        "endpoint_socket",
        Bool,
        "false",
        "Also serve the endpoint on the Unix socket `endpoint.sock` in the runtime directory (for `ssh -R` or a container's bind mount).",
    ),
    key(
        "backups",
        Integer,
        "5",
        "Backups of the credentials file kept as `credentials.1` (newest) to `credentials.N`, 0-100.",
    ),
    key(
        "yubikey_reader",
        Text,
        "",
        "Substring of the PC/SC reader name, to choose among several YubiKeys.",
    ),
    key(
        "oath_password_command",
        Text,
        "",
        "Command printing the OATH applet password on its first line (e.g. `secret-tool lookup ...`, `pass show ...`); whatever it started is killed once the line is read.",
    ),
    key(
        "oath_password_file",
        Text,
        "",
        "File whose first line is the OATH applet password.",
    ),
    key(
        "oath_password_keyring",
        Bool,
        "false",
        "Take the OATH applet password from the desktop keyring (Secret Service), stored with `aws-session-daemon keyring set-oath-password`.",
    ),
    key(
        "long_term_keys",
        Text,
        "file",
        "Where the IAM user's long-term keys are: `file` (the credentials file's `credentials_section`) or `keyring` (the desktop keyring, through the Secret Service: the item of `credentials_section`, stored with `aws-session-daemon keyring set` or `keyring import`).",
    ),
];

/// The keys of an SSO session (`[sso-session.NAME]`), as the AWS config
/// spells them; not section keys.
pub const SSO_SESSION_KEYS: &[KeySpec] = &[
    key(
        "sso_start_url",
        Text,
        "",
        "The AWS access portal URL, `https://d-XXXXXXXXXX.awsapps.com/start` (or its custom name). Required.",
    ),
    key(
        "sso_region",
        Text,
        "",
        "The region of the IAM Identity Center instance (OIDC and the portal). Required.",
    ),
    key(
        "sso_registration_scopes",
        TextList,
        "[\"sso:account:access\"]",
        "Scopes of the client registration; `sso:account:access` earns a refresh token (the access token is renewed without a sign-in).",
    ),
];

pub fn spec(name: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.name == name)
}

/// The candidate closest to `name`, if it is close enough to be a typo.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Whether a key's value is a secret, under any spelling: the keys marked
/// secret, their aliases (`aws_secret_access_key`, which the daemon itself
/// suggests for a misspelt key), and any unknown key whose name says so. Such
/// values are masked by `config show`, refused by `config get`, never
/// logged, and make a config readable by others worth a warning.
pub fn holds_secret(name: &str) -> bool {
    let normalized = name.replace('-', "_").to_ascii_lowercase();
    match spec(&normalized) {
        // A key of the daemon's own says (`oath_password_file` names a
        // file, it is not a password).
        Some(spec) => spec.secret,
        None => ["secret", "password", "token", "passphrase"]
            .iter()
            .any(|word| normalized.contains(word)),
    }
}

/// For an unknown key: the known key it most likely means.
pub fn suggest(name: &str) -> Option<&'static str> {
    let aliases = [
        ("rolearn", "assume_role_arn"),
        ("role_arn", "assume_role_arn"),
        ("oath_slot", "mfa_oath_slot"),
        ("serialnumber", "mfa_serial_number"),
        ("serial_number", "mfa_serial_number"),
        ("mfa_serial", "mfa_serial_number"),
        ("aws_access_key_id", "access_key_id"),
        ("aws_secret_access_key", "secret_access_key"),
    ];
    let normalized = name.replace('-', "_").to_ascii_lowercase();
    if let Some((_, target)) = aliases.iter().find(|(alias, _)| *alias == normalized) {
        return Some(target);
    }
    if let Some(spec) = spec(&normalized) {
        return Some(spec.name);
    }
    closest(&normalized, KEYS.iter().map(|k| k.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_the_closest_key() {
        assert_eq!(suggest("mfa_oath_slott"), Some("mfa_oath_slot"));
        assert_eq!(suggest("assume-role-arn"), Some("assume_role_arn"));
        assert_eq!(suggest("rolearn"), Some("assume_role_arn"));
        assert_eq!(suggest("refresh_margn"), Some("refresh_margin"));
        assert_eq!(suggest("completely_unrelated_thing"), None);
    }

    #[test]
    fn secrets_are_recognised_under_every_spelling() {
        for name in [
            "secret_access_key",
            "aws_secret_access_key",
            "AWS-Secret-Access-Key",
            "session_token",
            "my_password",
        ] {
            assert!(holds_secret(name), "{name}");
        }
        for name in [
            "oath_password_file",
            "oath_password_command",
            "region",
            "access_key_id",
        ] {
            assert!(!holds_secret(name), "{name}");
        }
    }
}
