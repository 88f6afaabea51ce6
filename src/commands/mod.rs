//! One module per subcommand's presentation. Each takes the parsed CLI and
//! returns the process exit code; `main` only dispatches.

pub mod completions;
pub mod config;
pub mod daemon;
pub mod oath;
pub mod plan;
pub mod status;

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

pub fn credentials_file(cli: &Cli, config: &Config) -> anyhow::Result<CredentialsFile> {
    Ok(CredentialsFile::new(
        credentials_path(cli)?,
        config.backups(),
    ))
}
