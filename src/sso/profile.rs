//! `[sso-session NAME]` of the AWS config file (`~/.aws/config` or
//! `$AWS_CONFIG_FILE`), read with the credentials editor's parser (the one
//! that reads as botocore does): `sso_start_url`, `sso_region` and
//! `sso_registration_scopes` (comma-separated, as the AWS CLI v2 splits
//! them: `awscli/customizations/sso/utils.py`,
//! `parse_sso_registration_scopes`).

use std::path::{Path, PathBuf};

use super::{DEFAULT_SCOPE, SsoSession};
use crate::credentials::{CredentialsError, CredentialsFile, Document};

/// Why an sso-session could not be read: the file, the line where there is
/// one, and the fix.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionConfigError {
    /// The file could not be read or parsed (its message names the line).
    #[error("{0}")]
    File(#[from] CredentialsError),
    #[error(
        "{}: there is no [sso-session {name}]; add it with sso_start_url and sso_region (`aws configure sso-session` writes one), or name an existing sso-session",
        file.display()
    )]
    NoSession { file: PathBuf, name: String },
    #[error(
        "{}{}: [sso-session {name}] has no {key}; add `{key} = {example}`",
        file.display(),
        lines.as_ref().map(|l| format!(" ({l})")).unwrap_or_default()
    )]
    Missing {
        file: PathBuf,
        name: String,
        key: &'static str,
        example: &'static str,
        /// Where the section's keys are, when it has any.
        lines: Option<String>,
    },
    #[error("{} line {line}: [sso-session {name}]: {problem}; {fix}", file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        name: String,
        problem: String,
        fix: &'static str,
    },
}

impl crate::retry::Classified for SessionConfigError {
    fn retry_class(&self) -> crate::retry::RetryClass {
        crate::retry::RetryClass::NeedsUser
    }
}

/// Reads `[sso-session NAME]` from the AWS config file `config_file`.
pub(crate) fn read_sso_session(
    config_file: &Path,
    name: &str,
) -> Result<SsoSession, SessionConfigError> {
    let document = CredentialsFile::aws_config(config_file.to_path_buf(), 0).read()?;
    session_from(&document, config_file, name)
}

fn session_from(
    document: &Document,
    file: &Path,
    name: &str,
) -> Result<SsoSession, SessionConfigError> {
    let section = format!("sso-session {name}");
    if !document.has_section(&section) {
        return Err(SessionConfigError::NoSession {
            file: file.to_path_buf(),
            name: name.to_string(),
        });
    }
    let line_of = |key: &str| -> Result<usize, SessionConfigError> {
        Ok(document
            .key_lines(&section, key)?
            .first()
            .map_or(0, |line| line + 1))
    };
    let required = |key: &'static str, example: &'static str| match document.get(&section, key)? {
        Some(value) if !value.trim().is_empty() => Ok(value.trim().to_string()),
        _ => {
            let mut lines = Vec::new();
            for key in document.keys(&section) {
                lines.extend(document.key_lines(&section, &key)?);
            }
            Err(SessionConfigError::Missing {
                file: file.to_path_buf(),
                name: name.to_string(),
                key,
                example,
                lines: match (lines.iter().min(), lines.iter().max()) {
                    (Some(first), Some(last)) if first == last => {
                        Some(format!("its key is on line {}", first + 1))
                    }
                    (Some(first), Some(last)) => {
                        Some(format!("its keys are on lines {}-{}", first + 1, last + 1))
                    }
                    _ => None,
                },
            })
        }
    };
    let start_url = required("sso_start_url", "https://d-XXXXXXXXXX.awsapps.com/start")?;
    let region = required("sso_region", "us-east-1")?;
    let invalid = |key: &str, problem: String, fix: &'static str| {
        Ok::<_, SessionConfigError>(SessionConfigError::Invalid {
            file: file.to_path_buf(),
            line: line_of(key)?,
            name: name.to_string(),
            problem,
            fix,
        })
    };
    if let Err((problem, fix)) = check_start_url(&start_url) {
        return Err(invalid("sso_start_url", problem, fix)?);
    }
    if let Err((problem, fix)) = check_region(&region) {
        return Err(invalid("sso_region", problem, fix)?);
    }
    let scopes: Vec<String> = match document.get(&section, "sso_registration_scopes")? {
        Some(raw) => split_scopes(raw),
        None => vec![DEFAULT_SCOPE.to_string()],
    };
    Ok(SsoSession {
        name: name.to_string(),
        start_url,
        region,
        scopes,
        legacy: false,
    })
}

/// `sso_start_url` must be an http(s) URL with a host (the portal's; its
/// path is the service's business). The problem and the fix.
pub(crate) fn check_start_url(url: &str) -> Result<(), (String, &'static str)> {
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .map(|rest| rest.split('/').next().unwrap_or(""));
    if host.is_none_or(str::is_empty) || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err((
            format!("sso_start_url {url:?} is not a URL"),
            "use your AWS access portal URL, such as https://d-XXXXXXXXXX.awsapps.com/start",
        ));
    }
    Ok(())
}

/// `sso_region` must look like a region name (the OIDC and portal hosts
/// are made of it). The problem and the fix.
pub(crate) fn check_region(region: &str) -> Result<(), (String, &'static str)> {
    let ok = region
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && region.contains('-');
    if !ok {
        return Err((
            format!("sso_region {region:?} is not an AWS region name"),
            "use the region of your IAM Identity Center instance, such as us-east-1",
        ));
    }
    Ok(())
}

/// `sso_registration_scopes` as the AWS CLI v2 splits it: at commas,
/// trimmed, empty parts dropped.
pub(crate) fn split_scopes(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|scope| !scope.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, name: &str) -> Result<SsoSession, SessionConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, text).unwrap();
        read_sso_session(&path, name)
    }

    #[test]
    fn reads_a_session_as_the_cli_writes_it() {
        let session = read(
            "[default]\nregion = eu-west-1\n\n[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = ReadOnly\n\n[sso-session corp]\nsso_start_url = https://d-1234567890.awsapps.com/start\nsso_region = eu-central-1\nsso_registration_scopes = sso:account:access, codewhisperer:completions ,\n",
            "corp",
        )
        .unwrap();
        assert_eq!(session.start_url, "https://d-1234567890.awsapps.com/start");
        assert_eq!(session.region, "eu-central-1");
        assert_eq!(
            session.scopes,
            ["sso:account:access", "codewhisperer:completions"]
        );
        let session = read(
            "[sso-session x]\nsso_start_url = https://x.awsapps.com/start\nsso_region = us-east-1\n",
            "x",
        )
        .unwrap();
        assert_eq!(session.scopes, [DEFAULT_SCOPE]);
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_fix() {
        let error = read("[sso-session other]\nsso_region = us-east-1\n", "corp").unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("config: there is no [sso-session corp]"),
            "{text}"
        );

        let error = read(
            "# comment\n[sso-session corp]\nsso_start_url = https://d-1.awsapps.com/start\nsso_registration_scopes = sso:account:access\n",
            "corp",
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("(its keys are on lines 3-4): [sso-session corp] has no sso_region; add `sso_region = us-east-1`"),
            "{text}"
        );

        let error = read(
            "[sso-session corp]\nsso_start_url = d-1.awsapps.com/start\nsso_region = us-east-1\n",
            "corp",
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("config line 2: [sso-session corp]: sso_start_url \"d-1.awsapps.com/start\" is not a URL"), "{text}");

        let error = read(
            "[sso-session corp]\nsso_start_url = https://d-1.awsapps.com/start\n\nsso_region = Frankfurt\n",
            "corp",
        )
        .unwrap_err();
        assert!(error.to_string().contains("config line 4:"), "{error}");

        let error = read(
            "[sso-session corp]\nsso_region = us-east-1\n[sso-session corp]\nsso_region = us-east-2\n",
            "corp",
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("line 3"), "{text}");
        assert!(matches!(error, SessionConfigError::File(_)));
    }
}
