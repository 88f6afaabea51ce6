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
use std::path::Path;

use anyhow::{Context as _, bail};
use secrecy::ExposeSecret;
use serde::Serialize;
use time::OffsetDateTime;

use crate::cli::Cli;
use crate::config::{Output, process_env};
use crate::daemon::decide::{Action, ProfileState};
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
    let runtime_dir = runtime_dir(&process_env);
    let mut cache = SessionCache::new(runtime_dir.clone());
    let observation = crate::daemon::observe::once(
        super::load_options(cli),
        super::credentials_path(cli)?,
        std::sync::Arc::new(crate::daemon::adapters::RealKeyring::dry_run()),
        &mut cache,
        runtime_dir.as_deref(),
    )?;
    let config = &observation.config;
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
    // Fresh by the plan's rule: straight from the runtime cache.
    let plan = observation.plan();
    let Some(planned) = plan.section(&section) else {
        bail!("section [{section}] is not planned");
    };
    let fresh = |cache: &mut SessionCache| {
        cache
            .peek()
            .profiles
            .get(profile)
            .filter(|c| planned.due_for(c.expiration) > OffsetDateTime::now_utc())
            .cloned()
    };
    if matches!(planned.state, ProfileState::Fresh { .. })
        && let Some(creds) = fresh(&mut cache)
    {
        return print(&creds, out);
    }
    // A code is spent only where the TOTP step it uses is recorded for
    // every other process (AWS refuses a code it has accepted once).
    let shared = shared_runtime_dir(runtime_dir.as_deref());
    if let Err(why) = &shared
        && plan.needs_code(&section)
    {
        bail!(
            "section [{section}]: no fresh session, and a new one would spend an MFA code that other processes could not know was used: {why}. Run the daemon (`aws-session-daemon run`), or set XDG_RUNTIME_DIR to your own runtime directory"
        );
    }
    // One process refreshes a profile at a time; the others wait for it
    // and take what it got.
    let _refreshing = match shared {
        Ok(dir) => Some(lock_profile(dir, profile)?),
        Err(_) => None,
    };
    if let Some(creds) = fresh(&mut cache) {
        return print(&creds, out);
    }
    // One pass for this section alone, as the daemon would do it; what it
    // got is served from this process's memory.
    let mut options = super::load_options(cli);
    options.selected = vec![section.clone()];
    let summary = super::daemon::one_pass(cli, options)?;
    if let Some(creds) = summary.report.sessions.get(&section) {
        return print(creds, out);
    }
    let outcome = summary.report.outcomes.get(&section).cloned();
    let plan = summary.plan.section(&section);
    match (outcome, plan.map(|p| (&p.state, &p.action))) {
        (_, Some((ProfileState::Invalid { reasons }, _))) => {
            bail!("section [{section}] is invalid: {}", reasons.join("; "))
        }
        (_, Some((_, Action::Blocked { reason }))) => {
            bail!("section [{section}]: {reason}")
        }
        (Some(crate::daemon::act::Outcome::Failed { error, .. }), _) => {
            bail!("section [{section}]: {error}")
        }
        _ => bail!(
            "section [{section}]: no fresh session (a unit it needs is backing off; `aws-session-daemon status` says why)"
        ),
    }
}

/// The runtime directory, if every process of this user can share it.
fn shared_runtime_dir(dir: Option<&Path>) -> Result<&Path, String> {
    let dir = dir.ok_or_else(|| {
        "there is no runtime directory (XDG_RUNTIME_DIR is not set, and neither /run/user/$UID nor ~/.cache is usable)".to_string()
    })?;
    crate::private_file::ensure_private_dir(dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// Holds the refresh of `profile` for this process (an `flock` in the
/// runtime directory, released when dropped); blocks while another
/// process holds it.
fn lock_profile(dir: &Path, profile: &str) -> anyhow::Result<crate::private_file::Lock> {
    let name = format!(
        "profile-{:016x}.lock",
        crate::daemon::decide::stable_hash(profile)
    );
    crate::private_file::lock(&dir.join(name))
        .with_context(|| format!("cannot lock the refresh of profile {profile:?}"))
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
