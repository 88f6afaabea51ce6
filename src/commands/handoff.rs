//! A section's session handed to another process, for `exec` and `export`:
//! the section looked up, its session found fresh (refreshed first when it
//! is not), and the environment variables the AWS SDKs and the AWS CLI
//! read.
//!
//! The session itself comes from the look-up `credential-process` makes
//! too ([`super::fresh`]).

use anyhow::bail;
use secrecy::{ExposeSecret, SecretString};

use crate::cli::Cli;
use crate::config::{Config, RawValue, Settings};
use crate::session::SessionCredentials;

/// The variables that hold a session (botocore reads `AWS_SECURITY_TOKEN`
/// before `AWS_SESSION_TOKEN`: a stale one left in the environment would
/// win, so it is always removed).
const SESSION: [&str; 6] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_ACCOUNT_ID",
];

/// The variables that point the SDKs at a container-credentials endpoint
/// (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` wins over the full URI, and
/// `AWS_CONTAINER_AUTHORIZATION_TOKEN` is read when there is no token file).
const CONTAINER: [&str; 4] = [
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

/// Profiles named in the environment: with one set, botocore skips the
/// environment's keys for the profile's.
const PROFILE: [&str; 2] = ["AWS_PROFILE", "AWS_DEFAULT_PROFILE"];

/// The config section a command names, with what its environment needs.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub name: String,
    /// The section's `region`, when the config (or `--region`) sets one.
    pub region: Option<String>,
    /// The account the session belongs to: the role's, else the MFA
    /// device's (an IAM user's MFA device is in the user's account).
    pub account_id: Option<String>,
}

/// The section called `name` (else the one whose `profile_name` it is).
pub(crate) fn target(config: &Config, name: &str) -> anyhow::Result<Target> {
    let section = config.section(name).or_else(|| {
        let mut by_profile = config.sections.iter().filter(|s| {
            s.settings
                .as_ref()
                .is_ok_and(|settings| settings.profile_name == name)
        });
        by_profile.next().filter(|_| by_profile.next().is_none())
    });
    let Some(section) = section else {
        let names: Vec<&str> = config.sections.iter().map(|s| s.name.as_str()).collect();
        let listed = if names.is_empty() {
            "the config has none".to_string()
        } else if names.len() <= 10 {
            format!("sections: {}", names.join(", "))
        } else {
            format!(
                "sections: {}, … ({} in all)",
                names[..10].join(", "),
                names.len()
            )
        };
        bail!(
            "no section [{}] in the config (nor one with that profile_name); {listed}",
            crate::text::printable(name)
        );
    };
    let settings: &Settings = match &section.settings {
        Ok(settings) => settings,
        Err(errors) => bail!(
            "section [{}] is invalid: {}",
            crate::text::printable(&section.name),
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    let region = match section.values.get("region").map(|v| &v.value) {
        Some(RawValue::String(region)) => Some(region.clone()),
        _ => None,
    };
    Ok(Target {
        name: section.name.clone(),

        region,
        account_id: settings.account_id(),
    })
}

/// `target`'s session, fresh by the plan's rule; refreshed first (one pass
/// for the section, with the daemon's locks and TOTP rules) when it is
/// not: the look-up `credential-process` makes. `Err` says why it cannot
/// be made fresh.
pub(crate) fn fresh_session(cli: &Cli, target: &Target) -> anyhow::Result<SessionCredentials> {
    super::fresh::session(cli, super::fresh::observe(cli)?, &target.name)
}

/// Environment changes that hand a session (or an endpoint) to a process:
/// what to set, and what to remove so that the process uses exactly this.
pub(crate) struct Variables {
    pub set: Vec<(&'static str, SecretString)>,
    pub unset: Vec<&'static str>,
}

impl Variables {
    fn new(target: &Target) -> Variables {
        let mut variables = Variables {
            set: Vec::new(),
            unset: PROFILE.to_vec(),
        };
        if let Some(region) = &target.region {
            variables.set("AWS_REGION", region);
            variables.set("AWS_DEFAULT_REGION", region);
        }
        variables
    }

    fn set(&mut self, name: &'static str, value: &str) {
        self.set.push((name, SecretString::from(value)));
    }

    /// The session itself, as the SDKs' environment provider reads it
    /// (botocore and the Rust SDK read `AWS_CREDENTIAL_EXPIRATION` as the
    /// session's expiry).
    pub(crate) fn session(target: &Target, session: &SessionCredentials) -> Variables {
        let mut variables = Variables::new(target);
        variables.set("AWS_ACCESS_KEY_ID", &session.access_key_id);
        variables.set(
            "AWS_SECRET_ACCESS_KEY",
            session.secret_access_key.expose_secret(),
        );
        variables.set("AWS_SESSION_TOKEN", session.session_token.expose_secret());
        variables.set(
            "AWS_CREDENTIAL_EXPIRATION",
            &crate::timestamp::rfc3339(session.expiration),
        );
        if let Some(account) = &target.account_id {
            variables.set("AWS_ACCOUNT_ID", account);
        }
        variables.unset_all_but_set(SESSION.iter().chain(&CONTAINER));
        variables
    }

    /// A credentials endpoint: the SDKs fetch the session from `url` with
    /// the token in `token_file`, and again before it expires.
    ///
    /// The credentials file is hidden (`AWS_SHARED_CREDENTIALS_FILE` =
    /// /dev/null): botocore and the Rust SDK look at the default profile
    /// there before they ask an endpoint, and this daemon's users keep
    /// their long-term keys in it, often in `[default]`.
    pub(crate) fn endpoint(target: &Target, url: &str, token_file: &std::path::Path) -> Variables {
        let mut variables = Variables::new(target);
        variables.set("AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
        variables.set(
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            &token_file.to_string_lossy(),
        );
        variables.set("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        variables.unset_all_but_set(SESSION.iter().chain(&CONTAINER));
        variables
    }

    fn unset_all_but_set<'a>(&mut self, names: impl Iterator<Item = &'a &'static str>) {
        for name in names {
            if !self.set.iter().any(|(set, _)| set == name) {
                self.unset.push(name);
            }
        }
    }

    /// Applies the changes to a command about to run.
    pub(crate) fn apply(&self, command: &mut std::process::Command) {
        for name in &self.unset {
            command.env_remove(name);
        }
        for (name, value) in &self.set {
            command.env(name, value.expose_secret());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(region: Option<&str>, account: Option<&str>) -> Target {
        Target {
            name: "prod".into(),
            region: region.map(str::to_string),
            account_id: account.map(str::to_string),
        }
    }

    fn session() -> SessionCredentials {
        SessionCredentials {
            access_key_id: "ASIAEXAMPLEEXAMPLE01".into(),
            secret_access_key: SecretString::from("secret/key+1"),
            session_token: SecretString::from("token=="),
            expiration: time::macros::datetime!(2030-01-02 03:04:05 UTC),
        }
    }

    fn names(variables: &Variables) -> Vec<&str> {
        variables.set.iter().map(|(n, _)| *n).collect()
    }

    #[test]
    fn session_variables_set_the_session_and_remove_everything_that_would_compete() {
        let variables =
            Variables::session(&target(Some("eu-west-1"), Some("123456789012")), &session());
        assert_eq!(
            names(&variables),
            [
                "AWS_REGION",
                "AWS_DEFAULT_REGION",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
                "AWS_CREDENTIAL_EXPIRATION",
                "AWS_ACCOUNT_ID"
            ]
        );
        let expiry = &variables.set[5].1;
        assert_eq!(expiry.expose_secret(), "2030-01-02T03:04:05Z");
        for gone in [
            "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE",
            "AWS_SECURITY_TOKEN",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        ] {
            assert!(variables.unset.contains(&gone), "{gone}");
        }
        // Without a region or account: none set, a stale account removed.
        let bare = Variables::session(&target(None, None), &session());
        assert!(!names(&bare).contains(&"AWS_REGION"));
        assert!(bare.unset.contains(&"AWS_ACCOUNT_ID"));
    }

    #[test]
    fn endpoint_variables_carry_no_secret_and_remove_the_session_ones() {
        let variables = Variables::endpoint(
            &target(None, Some("123456789012")),
            "http://127.0.0.1:1/v1/credentials/prod",
            std::path::Path::new("/run/x/endpoint-token"),
        );
        assert_eq!(
            names(&variables),
            [
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                "AWS_SHARED_CREDENTIALS_FILE"
            ]
        );
        for gone in SESSION.iter().chain(&PROFILE) {
            assert!(variables.unset.contains(gone), "{gone}");
        }
        assert!(
            variables
                .unset
                .contains(&"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        );
        assert!(
            !variables
                .unset
                .contains(&"AWS_CONTAINER_CREDENTIALS_FULL_URI")
        );
    }
}
