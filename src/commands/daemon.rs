//! `run` (the daemon) and `apply` (one pass): wiring the real outside
//! systems, signals and watchers to the reconcile loop.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::mpsc;

use crate::cli::Cli;
use crate::config::process_env;
use crate::daemon::act::{Executor, Outcome, SignIns};
use crate::daemon::adapters::{
    RealCodes, RealKeyring, RealSso, RealSts, start_key_watch, start_unlock_watch,
};
use crate::daemon::decide::{Action, ProfileState};
use crate::daemon::ports::SystemClock;
use crate::daemon::{Daemon, Event, Reason, watch};
use crate::retry::RetryClass;
use crate::session_cache::runtime_dir;
use crate::text::printable;

/// AssumeRole calls in flight at once until the config says (`sts_concurrency`).
const ASSUME_ROLE_CONCURRENCY: usize = 32;

/// The daemon with the real outside systems; `sign_ins`: how its IAM
/// Identity Center sign-ins run (tasks that wake the loop, or in the pass).
fn build_daemon_with(
    cli: &Cli,
    options: crate::config::LoadOptions,
    sign_ins: Arc<SignIns>,
) -> anyhow::Result<Daemon> {
    let runtime_dir = runtime_dir(&process_env);
    let executor = Executor {
        codes: Arc::new(RealCodes),
        sts: Arc::new(RealSts::new()),
        secrets: Arc::new(RealKeyring::default()),
        sso: Arc::new(RealSso::from_env(runtime_dir.clone())),
        sign_ins,
        clock: Arc::new(SystemClock),
        concurrency: ASSUME_ROLE_CONCURRENCY,
    };
    Ok(Daemon::new(
        options,
        super::credentials_path(cli)?,
        executor,
        runtime_dir,
    ))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Codes and writes run on blocking threads; a few are plenty, and
        // the units cap the process at TasksMax=64.
        .max_blocking_threads(16)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `run`: the daemon, until SIGTERM or SIGINT.
pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    let config = std::sync::Arc::new(super::load_config(cli)?);
    let sections = config.sections.len();
    let (tx, rx) = mpsc::unbounded_channel();
    let wake = tx.clone();
    let sign_ins = SignIns::background(move || {
        let _ = wake.send(Event::SignIn);
    });
    let daemon = build_daemon_with(cli, super::load_options(cli), sign_ins)?
        .with_config(config)
        .with_key_watch(start_key_watch())
        .with_unlock_watch(start_unlock_watch())
        .with_serving(tx.clone());
    let runtime = runtime()?;
    let result = runtime.block_on(async move {
        let (file_tx, mut file_rx) = mpsc::unbounded_channel();
        let config_path = daemon.config_path();
        let _watcher = watch::watch(config_path.as_deref(), daemon.credentials_path(), file_tx)
            .context("cannot watch the config and credentials files")?;
        let forward = tx.clone();
        tokio::spawn(async move {
            while let Some(event) = file_rx.recv().await {
                if forward.send(Event::File(event)).is_err() {
                    break;
                }
            }
        });
        spawn_signal_handlers(tx)?;
        let notify_systemd = std::env::var_os("NOTIFY_SOCKET").is_some();
        tracing::info!(
            "watching {} section(s); credentials file {}",
            sections,
            daemon.credentials_path().display()
        );
        daemon.run(rx, notify_systemd).await
    });
    // Dropping the runtime waits for a credentials write still running on a
    // blocking thread: a stop never leaves a half-done write.
    drop(runtime);
    result.map(|()| 0)
}

fn spawn_signal_handlers(tx: mpsc::UnboundedSender<Event>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = hangup.recv() => { tracing::info!("SIGHUP: reloading"); Event::Reload }
                _ = terminate.recv() => Event::Stop,
                _ = interrupt.recv() => Event::Stop,
            };
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    Ok(())
}

/// One pass over the sections `options` select, as the daemon makes it
/// (an IAM Identity Center sign-in is waited for in the pass), and a second
/// one when the first found an MFA session that STS no longer accepts (its
/// outcome says to re-authenticate at once).
pub(crate) fn one_pass(
    cli: &Cli,
    options: crate::config::LoadOptions,
) -> anyhow::Result<crate::daemon::PassSummary> {
    let mut daemon = build_daemon_with(cli, options, SignIns::inline())?;
    let runtime = runtime()?;
    let summary = runtime.block_on(async {
        let mut summary = daemon.pass(Reason::Start).await?;
        let reauthenticate = summary.report.outcomes.values().any(|outcome| {
            matches!(outcome, Outcome::Failed { error, .. } if error.class == RetryClass::Reauthenticate)
        });
        if reauthenticate {
            summary = daemon.pass(Reason::Retry).await?;
        }
        anyhow::Ok(summary)
    });
    // Dropping the runtime waits for a write still running.
    drop(runtime);
    summary
}

/// `apply`: one pass (two when an MFA session had to be replaced), then a
/// report; exit 0 when every section is fresh.
pub fn apply(cli: &Cli) -> anyhow::Result<i32> {
    let summary = one_pass(cli, super::load_options(cli))?;
    let mut failed = 0;
    for section in &summary.plan.sections {
        let outcome = summary.report.outcomes.get(&section.section);
        let name = printable(&section.section);
        match (&section.state, &section.action, outcome) {
            (ProfileState::Fresh { expires }, _, _) => {
                let refreshed = if outcome == Some(&Outcome::Written) {
                    "refreshed, "
                } else {
                    ""
                };
                println!(
                    "[{name}] {refreshed}fresh until {}",
                    crate::timestamp::rfc3339(*expires)
                );
            }
            (ProfileState::Invalid { reasons }, _, _) => {
                failed += 1;
                eprintln!("[{name}] invalid: {}", printable(&reasons.join("; ")));
            }
            (state, Action::Blocked { reason }, _) => {
                failed += 1;
                eprintln!("[{name}] {}: {}", state.name(), printable(reason));
            }
            (state, _, Some(Outcome::Failed { error, .. })) => {
                failed += 1;
                eprintln!("[{name}] {}: {}", state.name(), printable(&error.message));
            }
            (state, _, _) => {
                failed += 1;
                eprintln!("[{name}] {}", state.name());
            }
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
