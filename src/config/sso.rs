//! SSO sessions for IAM Identity Center sections: `[sso-session.NAME]` of
//! the config file (the AWS config's `[sso-session NAME]`, in TOML), else
//! the AWS config's own (`$AWS_CONFIG_FILE`, `~/.aws/config`), read once
//! per load for every name the sections use.

use std::path::PathBuf;

use super::expand::RawSsoSession;
use super::keys::SSO_SESSION_KEYS;
use super::settings::{SessionProblem, SsoSessions};
use super::{ConfigError, EnvLookup, RawSection, RawValue};
use crate::sso::{DEFAULT_SCOPE, SsoSession};
use crate::text::quoted;

/// The AWS config file: `$AWS_CONFIG_FILE`, else `~/.aws/config`.
pub(super) fn aws_config_file(env: EnvLookup) -> Option<PathBuf> {
    env("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| PathBuf::from(home).join(".aws").join("config")))
}

/// Every SSO session a section names: from `defined` (this file), else
/// from the AWS config; each read and checked once per load.
pub(super) fn resolve(
    sections: &[RawSection],
    defined: &[RawSsoSession],
    env: EnvLookup,
) -> SsoSessions {
    let names: std::collections::BTreeSet<&str> = sections
        .iter()
        .filter_map(|s| match s.values.get("sso_session").map(|v| &v.value) {
            Some(RawValue::String(name)) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    names
        .into_iter()
        .map(|name| {
            let resolved = match defined.iter().find(|raw| raw.name == name) {
                Some(raw) => validate(raw).map_err(SessionProblem::InThisFile),
                None => from_aws_config(name, env),
            };
            (name.to_string(), resolved)
        })
        .collect()
}

/// A session of the AWS config; its errors name that file and line.
fn from_aws_config(name: &str, env: EnvLookup) -> Result<SsoSession, SessionProblem> {
    let Some(file) = aws_config_file(env) else {
        return Err(SessionProblem::Elsewhere {
            message: "there is no [sso-session] of that name in this file, and neither AWS_CONFIG_FILE nor HOME is set to find ~/.aws/config".to_string(),
            hint: format!("add [sso-session.{name}] with sso_start_url and sso_region to this file"),
        });
    };
    crate::sso::read_sso_session(&file, name).map_err(|e| SessionProblem::Elsewhere {
        message: format!("not in this file, and in the AWS config: {e}"),
        hint: format!(
            "add [sso-session.{name}] with sso_start_url and sso_region to this file, or run `aws configure sso-session`"
        ),
    })
}

/// Checks one `[sso-session.NAME]` of this file: every problem, at its key.
fn validate(raw: &RawSsoSession) -> Result<SsoSession, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let section = format!("sso-session.{}", raw.name);
    let mut error = |key: Option<&str>, message: String, hint: String| {
        let span = key
            .and_then(|k| raw.values.get(k))
            .and_then(|v| v.span())
            .or(raw.span.clone());
        errors.push(ConfigError::at(
            span,
            format!("[{section}]: {message}"),
            hint,
        ));
    };
    if raw.name.trim().is_empty() || raw.name.chars().any(char::is_control) {
        error(
            None,
            format!("SSO session name {} is not usable", quoted(&raw.name)),
            "use letters, digits, dashes or underscores".to_string(),
        );
    }
    for key in raw.values.keys() {
        if !SSO_SESSION_KEYS.iter().any(|k| k.name == key) {
            let known: Vec<&str> = SSO_SESSION_KEYS.iter().map(|k| k.name).collect();
            let hint = match super::keys::closest(key, known.iter().copied()) {
                Some(close) => format!("did you mean {close}?"),
                None => format!(
                    "an SSO session has {}; the sections name it with sso_session",
                    known.join(", ")
                ),
            };
            error(
                Some(key),
                format!("unknown key {} in an SSO session", quoted(key)),
                hint,
            );
        }
    }
    let mut text = |key: &str, example: &str| match raw.values.get(key).map(|v| &v.value) {
        Some(RawValue::String(value)) if !value.trim().is_empty() => Some(value.trim().to_string()),
        Some(RawValue::String(_)) => {
            error(
                Some(key),
                format!("{key} is empty"),
                format!("write {key} = \"{example}\""),
            );
            None
        }
        Some(other) => {
            error(
                Some(key),
                format!("{key} must be a string, found {}", other.type_name()),
                format!("write {key} = \"{example}\""),
            );
            None
        }
        None => {
            error(
                None,
                format!("[sso-session.{}] has no {key}", raw.name),
                format!("add {key} = \"{example}\""),
            );
            None
        }
    };
    let start_url = text("sso_start_url", "https://d-XXXXXXXXXX.awsapps.com/start");
    let region = text("sso_region", "us-east-1");
    let mut check = |key: &str, result: Result<(), (String, &'static str)>| {
        if let Err((problem, fix)) = result {
            error(Some(key), problem, fix.to_string());
        }
    };
    if let Some(url) = &start_url {
        check("sso_start_url", crate::sso::check_start_url(url));
    }
    if let Some(region) = &region {
        check("sso_region", crate::sso::check_region(region));
    }
    let scopes = match raw.values.get("sso_registration_scopes").map(|v| &v.value) {
        None => vec![DEFAULT_SCOPE.to_string()],
        // The AWS config's comma-separated form, as it is copied from there.
        Some(RawValue::String(list)) => crate::sso::split_scopes(list),
        Some(RawValue::StringList(list)) => list
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        Some(other) => {
            error(
                Some("sso_registration_scopes"),
                format!(
                    "sso_registration_scopes must be an array of strings, found {}",
                    other.type_name()
                ),
                format!("write sso_registration_scopes = [\"{DEFAULT_SCOPE}\"]"),
            );
            Vec::new()
        }
    };
    match (start_url, region, errors.is_empty()) {
        (Some(start_url), Some(region), true) => Ok(SsoSession {
            name: raw.name.clone(),
            start_url,
            region,
            scopes,
            legacy: false,
        }),
        _ => Err(errors),
    }
}
