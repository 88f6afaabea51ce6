//! `export SECTION [--format env|fish|json]`: the section's session (made
//! fresh first when it is not) for a shell to take over, or as
//! `credential_process` JSON:
//!
//! ```text
//! eval "$(aws-session-daemon export prod)"             # bash, zsh, sh
//! aws-session-daemon export prod --format fish | source
//! ```
//!
//! The shell lines also remove the variables that would compete with the
//! session (`AWS_PROFILE`, a stale `AWS_SECURITY_TOKEN`, the container
//! endpoint's), so that the shell's tools use exactly this one. Values are
//! single-quoted, so that no byte in them is special to the shell.

use std::io::Write;

use anyhow::Context as _;
use secrecy::ExposeSecret;
use serde::Serialize;
use zeroize::Zeroizing;

use super::handoff::{self, Variables};
use crate::cli::{Cli, ExportArgs, ExportFormat};
use crate::session::SessionCredentials;

pub fn run(cli: &Cli, args: &ExportArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let config = super::load_config(cli)?;
    let target = handoff::target(&config, &args.section)?;
    let session = handoff::fresh_session(cli, &target)?;
    let text = match args.format {
        ExportFormat::Env => shell(&Variables::session(&target, &session), Shell::Posix),
        ExportFormat::Fish => shell(&Variables::session(&target, &session), Shell::Fish),
        ExportFormat::Json => json(&session, target.account_id.as_deref())?,
    };
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(0)
}

#[derive(Clone, Copy)]
enum Shell {
    /// bash, zsh, dash: POSIX `sh` syntax.
    Posix,
    Fish,
}

/// The lines a shell evaluates.
fn shell(variables: &Variables, shell: Shell) -> Zeroizing<String> {
    let mut text = Zeroizing::new(String::new());
    match shell {
        Shell::Posix => {
            if !variables.unset.is_empty() {
                text.push_str(&format!("unset {}\n", variables.unset.join(" ")));
            }
        }
        Shell::Fish => {
            // `set -e` of a variable that is not set fails, and fish's
            // `set -gx` keeps the status it finds: without `or true`, the
            // whole `| source` would fail.
            for name in &variables.unset {
                text.push_str(&format!("set -e {name}; or true\n"));
            }
        }
    }
    for (name, value) in &variables.set {
        let value = value.expose_secret();
        match shell {
            Shell::Posix => {
                text.push_str("export ");
                text.push_str(name);
                text.push('=');
                push_posix_quoted(&mut text, value);
            }
            Shell::Fish => {
                text.push_str("set -gx ");
                text.push_str(name);
                text.push(' ');
                push_fish_quoted(&mut text, value);
            }
        }
        text.push('\n');
    }
    text
}

/// `'value'`, each `'` written as `'\''` (close, escaped quote, reopen):
/// inside single quotes POSIX shells take every other byte as it is.
fn push_posix_quoted(text: &mut String, value: &str) {
    text.push('\'');
    for c in value.chars() {
        if c == '\'' {
            text.push_str("'\\''");
        } else {
            text.push(c);
        }
    }
    text.push('\'');
}

/// `'value'` for fish, whose single quotes give meaning to `\'` and `\\`
/// only: those two are escaped, every other byte is taken as it is.
fn push_fish_quoted(text: &mut String, value: &str) {
    text.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            text.push('\\');
        }
        text.push(c);
    }
    text.push('\'');
}

/// Version 1 of the `credential_process` format (what `credential-process`
/// prints), with the account when known.
fn json(
    session: &SessionCredentials,
    account_id: Option<&str>,
) -> anyhow::Result<Zeroizing<String>> {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct ProcessCredentials<'a> {
        version: u8,
        access_key_id: &'a str,
        secret_access_key: &'a str,
        session_token: &'a str,
        expiration: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        account_id: Option<&'a str>,
    }
    let mut text = Zeroizing::new(
        serde_json::to_string(&ProcessCredentials {
            version: 1,
            access_key_id: &session.access_key_id,
            secret_access_key: session.secret_access_key.expose_secret(),
            session_token: session.session_token.expose_secret(),
            expiration: crate::timestamp::rfc3339(session.expiration),
            account_id,
        })
        .context("cannot encode the credentials")?,
    );
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn variables(value: &str) -> Variables {
        Variables {
            set: vec![("AWS_SESSION_TOKEN", SecretString::from(value))],
            unset: vec!["AWS_PROFILE", "AWS_SECURITY_TOKEN"],
        }
    }

    #[test]
    fn posix_lines_quote_every_byte() {
        assert_eq!(
            shell(&variables("a'b\\c$d`e\"f\ng h"), Shell::Posix).as_str(),
            "unset AWS_PROFILE AWS_SECURITY_TOKEN\nexport AWS_SESSION_TOKEN='a'\\''b\\c$d`e\"f\ng h'\n"
        );
        assert_eq!(
            shell(&variables("''"), Shell::Posix).as_str(),
            "unset AWS_PROFILE AWS_SECURITY_TOKEN\nexport AWS_SESSION_TOKEN=''\\'''\\'''\n"
        );
    }

    #[test]
    fn fish_lines_escape_only_quote_and_backslash() {
        assert_eq!(
            shell(&variables("a'b\\c$d`e\"f\ng h"), Shell::Fish).as_str(),
            "set -e AWS_PROFILE; or true\nset -e AWS_SECURITY_TOKEN; or true\nset -gx AWS_SESSION_TOKEN 'a\\'b\\\\c$d`e\"f\ng h'\n"
        );
    }

    #[test]
    fn json_is_version_1_with_the_account_when_known() {
        let session = SessionCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: SecretString::from("s"),
            session_token: SecretString::from("t"),
            expiration: time::macros::datetime!(2030-01-02 03:04:05 UTC),
        };
        let value: serde_json::Value =
            serde_json::from_str(&json(&session, Some("123456789012")).unwrap()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "Version": 1, "AccessKeyId": "ASIAEXAMPLE", "SecretAccessKey": "s",
                "SessionToken": "t", "Expiration": "2030-01-02T03:04:05Z",
                "AccountId": "123456789012"
            })
        );
        let without: serde_json::Value =
            serde_json::from_str(&json(&session, None).unwrap()).unwrap();
        assert!(without.get("AccountId").is_none());
    }
}
