//! `credential-process --profile NAME`: the AWS CLI and SDKs run it (as the
//! profile's `credential_process` in ~/.aws/config) whenever they need the
//! profile's credentials, and again as they near expiry.
//!
//! A fresh session comes straight from the runtime cache: no STS call, no
//! key. Otherwise the command runs one pass for that section itself, with
//! the daemon's locks and TOTP-step rules (so that twenty of them started at
//! once cost one YubiKey code between them), then prints. Errors go to
//! standard error in one line, with a non-zero exit, as the tools expect.

use std::io::Write;

use anyhow::{Context as _, bail};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::cli::Cli;
use crate::config::{Output, process_env};
use crate::plan::ProfileState;
use crate::session::SessionCredentials;
use crate::session_cache::{SessionCache, runtime_dir};

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
    let config = super::load_config(cli)?;
    let section = config
        .valid_sections()
        .find(|(_, s)| s.profile_name == profile)
        .map(|(section, settings)| (section.name.clone(), settings.output));
    let Some((section, output)) = section else {
        let invalid = config
            .sections
            .iter()
            .any(|s| s.name == profile && s.settings.is_err());
        if invalid {
            bail!("section [{profile}] is invalid; run `aws-session-daemon plan` to see why");
        }
        bail!(
            "no section writes profile {profile:?}; add one with profile_name = \"{profile}\" and output = \"process\""
        );
    };
    if output != Output::Process {
        bail!(
            "profile {profile:?} is written to the credentials file (section [{section}] has output = \"file\"); use it directly, or set output = \"process\" in section [{section}]"
        );
    }
    if let Some(creds) = fresh_session(cli, &config, &section, profile)? {
        return print(&creds, out);
    }
    // Not fresh: one pass for this section alone, as the daemon would do it.
    let mut options = super::load_options(cli);
    options.selected = vec![section.clone()];
    let summary = super::daemon::one_pass(cli, options)?;
    let outcome = summary.report.outcomes.get(&section).cloned();
    if let Some(creds) = fresh_session(cli, &config, &section, profile)? {
        return print(&creds, out);
    }
    let plan = summary.plan.section(&section);
    match (outcome, plan.map(|p| &p.state)) {
        (_, Some(ProfileState::Invalid { reasons })) => {
            bail!("section [{section}] is invalid: {}", reasons.join("; "))
        }
        (Some(crate::daemon::execute::Outcome::Failed { error, .. }), _) => {
            bail!("section [{section}]: {error}")
        }
        _ => bail!(
            "section [{section}]: no fresh session (a unit it needs is backing off; `aws-session-daemon status` says why)"
        ),
    }
}

/// The profile's session from the runtime cache, if the plan calls it fresh.
fn fresh_session(
    cli: &Cli,
    config: &crate::config::Config,
    section: &str,
    profile: &str,
) -> anyhow::Result<Option<SessionCredentials>> {
    let plan = super::dry_run_plan(cli, config)?;
    let fresh = plan
        .section(section)
        .is_some_and(|s| matches!(s.state, ProfileState::Fresh { .. }));
    if !fresh {
        return Ok(None);
    }
    let mut cache = SessionCache::new(runtime_dir(&process_env));
    Ok(cache.peek().profiles.get(profile).cloned())
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
