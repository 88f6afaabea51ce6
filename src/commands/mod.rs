//! One module per subcommand's presentation. Each takes the parsed CLI and
//! returns the process exit code; `main` only dispatches.

pub mod completions;
pub mod config;
pub mod credential_process;
pub mod daemon;
pub mod keyring;
pub mod oath;
pub mod plan;
pub mod status;

use std::path::PathBuf;

use time::OffsetDateTime;

use crate::cli::Cli;
use crate::config::{Config, LoadOptions, process_env};
use crate::credentials::CredentialsFile;
/// Kept under its old path for the commands that import it from here
/// (plan, status); the rule itself lives in [`crate::text`].
pub(crate) use crate::text::printable;

/// Loads the config the way every subcommand does: flags, then file.
pub fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let options = load_options(cli);
    let config = crate::config::load(&options, &process_env)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

pub fn load_options(cli: &Cli) -> LoadOptions {
    LoadOptions {
        path: cli.global.config.clone(),
        selected: cli.global.config_sections.clone(),
        overrides: cli.overrides.to_pairs(),
    }
}

/// `--credentials-file`, else `$AWS_SHARED_CREDENTIALS_FILE`, else
/// `~/.aws/credentials` (the editor's own rule, with `~/` expanded).
pub fn credentials_path(cli: &Cli) -> anyhow::Result<PathBuf> {
    Ok(CredentialsFile::default_path_from_env(
        cli.global.credentials_file.as_deref(),
    )?)
}

/// `$AWS_CONFIG_FILE`, else `~/.aws/config`: where the AWS CLI and SDKs
/// read profiles (and their `credential_process`).
pub fn aws_config_path() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("AWS_CONFIG_FILE").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| anyhow::anyhow!("neither AWS_CONFIG_FILE nor HOME is set"))?;
    Ok(PathBuf::from(home).join(".aws").join("config"))
}

pub fn credentials_file(cli: &Cli, config: &Config) -> anyhow::Result<CredentialsFile> {
    Ok(CredentialsFile::new(
        credentials_path(cli)?,
        config.backups(),
    ))
}

/// The plan as the running daemon sees it: the credentials file, the MFA
/// sessions in the runtime cache, and the backoff the daemon recorded.
/// Reads only; touches neither the YubiKey nor the network.
pub fn dry_run_plan(cli: &Cli, config: &Config) -> anyhow::Result<crate::plan::Plan> {
    let document = credentials_file(cli, config)?.read()?;
    let runtime_dir = crate::session_cache::runtime_dir(&process_env);
    let recorded = crate::daemon::Recorded::from_state_file(runtime_dir.as_deref());
    let mut cache = crate::session_cache::SessionCache::new(runtime_dir);
    let keyring =
        crate::daemon::keyring_keys(config, &crate::daemon::adapters::RealKeyring::dry_run());
    Ok(crate::daemon::current_plan(
        config,
        &document,
        &mut cache,
        &keyring,
        &recorded,
        OffsetDateTime::now_utc(),
    ))
}
