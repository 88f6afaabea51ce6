//! `credential-process --profile NAME`: the AWS CLI and SDKs run it (as the
//! profile's `credential_process` in ~/.aws/config) whenever they need the
//! profile's credentials, and again as they near expiry.
//!
//! A fresh session comes straight from the runtime cache: no STS call, no
//! key. Otherwise the command runs one pass for that section itself, with
//! the daemon's locks and TOTP-step rules (so that twenty of them started at
//! once cost one YubiKey code between them), then prints. Errors go to
//! standard error in one line, with a non-zero exit, as the tools expect.

use crate::text::printable;
use std::io::Write;

use anyhow::{Context as _, bail};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::cli::Cli;
use crate::config::Output;
use crate::session::SessionCredentials;

/// The JSON `credential_process` prints (version 1 of the format).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessCredentials<'a> {
    version: u8,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: &'a str,
    expiration: String,
}

pub fn run(cli: &Cli, profile: &str, out: &mut dyn Write) -> anyhow::Result<i32> {
    let observed = super::fresh::observe(cli)?;
    let config = &observed.observation.config;
    let section = config
        .valid_sections()
        .find(|(_, s)| s.profile_name == profile)
        .map(|(section, settings)| (section.name.clone(), settings.output));
    let shown = printable(profile);
    let Some((section, output)) = section else {
        let invalid = config
            .sections
            .iter()
            .any(|s| s.name == profile && s.settings.is_err());
        if invalid {
            bail!("section [{shown}] is invalid; run `aws-session-daemon plan` to see why");
        }
        bail!(
            "no section writes profile \"{shown}\"; add one with profile_name = \"{shown}\" and output = \"process\""
        );
    };
    if output != Output::Process {
        let section = printable(&section);
        bail!(
            "profile \"{shown}\" is written to the credentials file (section [{section}] has output = \"file\"); use it directly, or set output = \"process\" in section [{section}]"
        );
    }
    let creds = super::fresh::session(cli, observed, &section)?;
    print(&creds, out)
}

fn print(creds: &SessionCredentials, out: &mut dyn Write) -> anyhow::Result<i32> {
    let json = zeroize::Zeroizing::new(
        serde_json::to_string(&ProcessCredentials {
            version: 1,
            access_key_id: &creds.access_key_id,
            secret_access_key: creds.secret_access_key.expose_secret(),
            session_token: creds.session_token.expose_secret(),
            expiration: crate::timestamp::rfc3339(creds.expiration),
        })
        .context("cannot encode the credentials")?,
    );
    writeln!(out, "{}", json.as_str())?;
    out.flush()?;
    Ok(0)
}
