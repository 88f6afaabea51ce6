//! A section's session, fresh by the plan's rule, for the commands that hand
//! one to another program (`credential-process`, `exec`, `export`): one
//! look-up for all three.
//!
//! 1. One observation and its plan: a fresh session is taken from where
//!    the section keeps it (the credentials file, or the runtime cache).
//! 2. Otherwise a refresh. A code is spent only where the TOTP step it
//!    uses is recorded for every other process (AWS refuses a code it has
//!    accepted once), so without a runtime directory shared by them the
//!    command refuses before it reads a code.
//! 3. One process refreshes a profile at a time (a lock per profile in the
//!    runtime directory): twenty callers at once wait for the first and
//!    take what it got.
//! 4. One pass for this section alone, as the daemon makes it; what it
//!    got is served from this process's memory (whatever became of the
//!    runtime cache).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use secrecy::SecretString;
use time::OffsetDateTime;

use crate::cli::Cli;
use crate::config::{Output, process_env};
use crate::credentials::{ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN};
use crate::daemon::act::Outcome;
use crate::daemon::decide::{Action, ProfileState, SectionPlan};
use crate::daemon::observe::Observation;
use crate::session::SessionCredentials;
use crate::session_cache::{SessionCache, runtime_dir};
use crate::text::printable;

/// One observation for a command, with the runtime cache it read.
pub(crate) struct Observed {
    pub observation: Observation,
    cache: SessionCache,
    runtime_dir: Option<std::path::PathBuf>,
}

/// Observes the world as the running daemon would (reads only; the keyring
/// is asked for no unlock).
pub(crate) fn observe(cli: &Cli) -> anyhow::Result<Observed> {
    let runtime_dir = runtime_dir(&process_env);
    let mut cache = SessionCache::new(runtime_dir.clone());
    let observation = crate::daemon::observe::once(
        super::load_options(cli),
        super::credentials_path(cli)?,
        Arc::new(crate::daemon::adapters::RealKeyring::dry_run()),
        Arc::new(crate::daemon::adapters::RealSso::from_env(
            runtime_dir.clone(),
        )),
        &mut cache,
        runtime_dir.as_deref(),
    )?;
    Ok(Observed {
        observation,
        cache,
        runtime_dir,
    })
}

/// `section`'s session, fresh now; refreshed first when it is not. `Err`
/// says why it cannot be made fresh, in one line.
pub(crate) fn session(
    cli: &Cli,
    mut observed: Observed,
    section: &str,
) -> anyhow::Result<SessionCredentials> {
    let plan = observed.observation.plan();
    let name = printable(section).into_owned();
    let Some(planned) = plan.section(section) else {
        bail!("section [{name}] is not in the config");
    };
    if let Some(creds) = fresh(&mut observed, planned) {
        return Ok(creds);
    }
    let shared = shared_runtime_dir(observed.runtime_dir.as_deref());
    if let Err(why) = &shared
        && plan.needs_code(section)
    {
        bail!(
            "section [{name}]: no fresh session, and a new one would spend an MFA code that other processes could not know was used: {why}. Run the daemon (`aws-session-daemon run`), or set XDG_RUNTIME_DIR to your own runtime directory"
        );
    }
    let _refreshing = match shared {
        Ok(dir) => Some(lock_profile(dir, &planned.profile)?),
        Err(_) => None,
    };
    // Another process may have refreshed it while this one waited.
    let mut again = observe(cli)?;
    if let Some(creds) = again
        .observation
        .plan()
        .section(section)
        .and_then(|planned| fresh(&mut again, planned))
    {
        return Ok(creds);
    }
    let mut options = super::load_options(cli);
    options.selected = vec![section.to_string()];
    let summary = super::daemon::one_pass(cli, options)?;
    if let Some(creds) = summary.report.sessions.get(section) {
        return Ok(creds.clone());
    }
    let outcome = summary.report.outcomes.get(section);
    let after = summary.plan.section(section).map(|p| (&p.state, &p.action));
    match (outcome, after) {
        (_, Some((ProfileState::Invalid { reasons }, _))) => {
            bail!("section [{name}] is invalid: {}", reasons.join("; "))
        }
        (_, Some((_, Action::Blocked { reason }))) => {
            bail!("section [{name}] cannot be made fresh: {reason}")
        }
        (_, Some((_, Action::AwaitSignIn { sso_session }))) => bail!(
            "section [{name}] waits for the sign-in of SSO session {}; `aws-session-daemon status` shows where to approve it",
            printable(sso_session)
        ),
        (Some(Outcome::Failed { error, .. }), _) => {
            bail!("section [{name}] cannot be made fresh: {error}")
        }
        _ => bail!(
            "section [{name}] has no fresh session (a unit it needs is backing off; `aws-session-daemon status` says why)"
        ),
    }
}

/// The section's session when the plan calls it fresh, from where the
/// section keeps it.
fn fresh(observed: &mut Observed, planned: &SectionPlan) -> Option<SessionCredentials> {
    let ProfileState::Fresh { expires } = planned.state else {
        return None;
    };
    let now = OffsetDateTime::now_utc();
    match planned.output {
        Output::Process => observed
            .cache
            .peek()
            .profiles
            .get(&planned.profile)
            .filter(|c| planned.due_for(c.expiration) > now)
            .cloned(),
        Output::File => {
            let document = observed.observation.credentials.document();
            let value = |key| {
                document
                    .get(&planned.profile, key)
                    .ok()
                    .flatten()
                    .map(str::to_string)
            };
            Some(SessionCredentials {
                access_key_id: value(ACCESS_KEY_ID)?,
                secret_access_key: SecretString::from(value(SECRET_ACCESS_KEY)?),
                session_token: SecretString::from(value(SESSION_TOKEN)?),
                expiration: expires,
            })
        }
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
        .with_context(|| format!("cannot lock the refresh of profile {}", printable(profile)))
}
