//! One module per subcommand's presentation. Each takes the parsed CLI and
//! returns the process exit code; `main` only dispatches.

pub mod completions;
pub mod config;
pub mod credential_process;
pub mod daemon;
pub mod exec;
pub mod export;
mod handoff;
pub mod keyring;
pub mod oath;
pub mod plan;
pub mod status;

use std::borrow::Cow;
use std::path::PathBuf;

use crate::cli::Cli;
use crate::config::{Config, LoadOptions, process_env};
use crate::credentials::CredentialsFile;

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

/// One observation of the world as the running daemon makes it (the
/// config, the credentials file, the MFA sessions in the runtime cache, the
/// backoff the daemon recorded), for the commands that plan from it. Reads
/// only; touches neither the YubiKey nor the network, and asks the keyring
/// for no unlock.
pub(crate) fn observe(cli: &Cli) -> anyhow::Result<crate::daemon::observe::Observation> {
    let runtime_dir = crate::session_cache::runtime_dir(&process_env);
    let mut cache = crate::session_cache::SessionCache::new(runtime_dir.clone());
    crate::daemon::observe::once(
        load_options(cli),
        credentials_path(cli)?,
        std::sync::Arc::new(crate::daemon::adapters::RealKeyring::dry_run()),
        &mut cache,
        runtime_dir.as_deref(),
    )
}

/// Text from files (section names, errors quoting them, the state file)
/// with control characters escaped, so that nothing printed can move the
/// cursor, retitle the terminal or hide a line.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}
