//! One module per subcommand's presentation. Each takes the parsed CLI and
//! returns the process exit code; [`main`] only dispatches.

pub mod completions;
pub mod config;
pub mod credential_process;
pub mod daemon;
pub mod exec;
pub mod export;
mod fresh;
mod handoff;
pub mod keyring;
pub mod oath;
pub mod plan;
pub mod status;
pub(crate) mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::{Cli, Command, ConfigCommand};
use crate::config::{Config, LoadOptions, process_env};
use crate::credentials::CredentialsFile;

/// The program: parse the command line, set up logging, dispatch.
pub(crate) fn main() -> ExitCode {
    let hardened = crate::hardening::harden_process();
    let cli = crate::cli::parse();
    if let Err(e) = crate::logging::init(cli.log_level()) {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    tracing::debug!("starting: aws-session-daemon {}", env!("CARGO_PKG_VERSION"));
    if let Err(e) = hardened {
        tracing::warn!("cannot disable core dumps ({e}); secrets could end up in a core file");
    }
    match dispatch(&cli) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        // `... | head` closed the pipe: stop quietly, like other Unix tools.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Line by line (hints follow on lines of their own), each
            // escaped: names and server text reach no terminal raw.
            let text = format!("{e:#}");
            let lines: Vec<_> = text.lines().map(crate::text::printable).collect();
            eprintln!("error: {}", lines.join("\n"));
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    let broken = Some(std::io::ErrorKind::BrokenPipe);
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().map(|e| e.kind()) == broken
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == broken
    })
}

fn dispatch(cli: &Cli) -> anyhow::Result<i32> {
    let stdout = &mut std::io::stdout().lock();
    match &cli.command {
        None | Some(Command::Run) => daemon::run(cli),
        Some(Command::Apply) => daemon::apply(cli),
        Some(Command::Plan(args)) => plan::run(cli, args),
        Some(Command::Status(args)) => status::run(cli, args),
        Some(Command::Config(sub)) => {
            let config = load_config(cli)?;
            match sub {
                ConfigCommand::Show => config::show(&config, stdout),
                ConfigCommand::Get { key } => config::get(&config, key, stdout),
                ConfigCommand::Find { key, value } => {
                    config::find(&config, key, value.as_deref(), stdout)
                }
                ConfigCommand::AwsConfig { write, force } => {
                    config::aws_config(&config, *write, *force, stdout)
                }
            }
        }
        Some(Command::Oath(sub)) => oath::run(cli, sub),
        Some(Command::CredentialProcess(args)) => {
            credential_process::run(cli, &args.profile, stdout)
        }
        Some(Command::Exec(args)) => exec::run(cli, args),
        Some(Command::Export(args)) => export::run(cli, args, stdout),
        Some(Command::Keyring(sub)) => keyring::run(cli, sub, stdout),
        Some(Command::Completions { shell }) => {
            completions::print(*shell, &mut crate::cli::command(), stdout)
        }
        Some(Command::Man) => completions::man(crate::cli::command(), stdout),
    }
}

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
        std::sync::Arc::new(crate::daemon::adapters::RealSso::from_env(
            runtime_dir.clone(),
        )),
        &mut cache,
        runtime_dir.as_deref(),
    )
}
