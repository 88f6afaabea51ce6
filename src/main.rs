//! Entry point: parse the command line, set up logging, dispatch.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use aws_session_daemon::cli::{Cli, Command, ConfigCommand};
use aws_session_daemon::{commands, hardening, logging};

fn main() -> ExitCode {
    let hardened = hardening::harden_process();
    let cli = Cli::parse();
    if let Err(e) = logging::init(cli.log_level()) {
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
            eprintln!("error: {e:#}");
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
        None | Some(Command::Run) => commands::daemon::run(cli),
        Some(Command::Apply) => commands::daemon::apply(cli),
        Some(Command::Plan(args)) => commands::plan::run(cli, args),
        Some(Command::Status(args)) => commands::status::run(cli, args),
        Some(Command::Config(sub)) => {
            let config = commands::load_config(cli)?;
            match sub {
                ConfigCommand::Show => commands::config::show(&config, stdout),
                ConfigCommand::Get { key } => commands::config::get(&config, key, stdout),
                ConfigCommand::Find { key, value } => {
                    commands::config::find(&config, key, value.as_deref(), stdout)
                }
                ConfigCommand::AwsConfig { write } => {
                    commands::config::aws_config(&config, *write, stdout)
                }
            }
        }
        Some(Command::Oath(sub)) => commands::oath::run(cli, sub),
        Some(Command::CredentialProcess(args)) => {
            commands::credential_process::run(cli, &args.profile, stdout)
        }
        Some(Command::Exec(args)) => commands::exec::run(cli, args),
        Some(Command::Export(args)) => commands::export::run(cli, args, stdout),
        Some(Command::Keyring(sub)) => commands::keyring::run(cli, sub, stdout),
        Some(Command::Completions { shell }) => {
            commands::completions::print(*shell, &mut Cli::command(), stdout)
        }
        Some(Command::Man) => commands::completions::man(Cli::command(), stdout),
    }
}
