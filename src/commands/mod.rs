//! One module per subcommand's presentation. Each takes the parsed CLI and
//! returns the process exit code; `main` only dispatches.

pub mod completions;
pub mod config;
pub mod daemon;
pub mod oath;
pub mod plan;
pub mod status;

use std::path::PathBuf;

use anyhow::Context as _;

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

/// `--credentials-file`, else `$AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
pub fn credentials_path(cli: &Cli) -> anyhow::Result<PathBuf> {
    if let Some(path) = &cli.global.credentials_file {
        return Ok(path.clone());
    }
    if let Some(path) = process_env("AWS_SHARED_CREDENTIALS_FILE") {
        return Ok(PathBuf::from(path));
    }
    let home = process_env("HOME").context("HOME is not set; pass --credentials-file")?;
    Ok(PathBuf::from(home).join(".aws/credentials"))
}

pub fn credentials_file(cli: &Cli, config: &Config) -> anyhow::Result<CredentialsFile> {
    Ok(CredentialsFile::new(
        credentials_path(cli)?,
        config.backups(),
    ))
}
