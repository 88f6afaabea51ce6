//! `exec SECTION [--server] -- COMMAND ARGS…`: runs a command with the
//! section's credentials.
//!
//! - Without `--server`, as environment variables (the session made fresh
//!   first, its expiry in `AWS_CREDENTIAL_EXPIRATION`): this process
//!   becomes the command (`execve`), so its exit code, its signals and its
//!   place in the shell's job control are the command's own.
//! - With `--server`, as the container-endpoint variables, so that a
//!   long-running command keeps getting fresh credentials past any expiry:
//!   the running daemon's endpoint when it serves the section (this
//!   process then becomes the command as above), else an endpoint this
//!   process serves itself on 127.0.0.1 for the command's lifetime, with
//!   its own token file (removed at exit). Then the command is a child:
//!   its exit code is returned (128+N when signal N ended it, as shells
//!   do) and SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and
//!   SIGWINCH are passed on to it. (SIGINT, SIGQUIT and SIGWINCH are not
//!   passed on while the command runs in the foreground of a terminal: the
//!   terminal sends them to it already, and a second Ctrl-C would cut its
//!   clean-up short.)
//!
//! Either way the command is not started when the section cannot be made
//! fresh: one line says why, and the exit code is 1. Secrets are never on
//! a command line; the endpoint variables hold none (the token is in a
//! 0600 file).
//!
//! The command runs with core dumps off (the limit this process set for
//! itself is inherited): its environment may hold the session.

use std::ffi::OsStr;
use std::os::fd::AsFd;

use rustix::process::{Pid, Signal};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use super::handoff::{self, Target, Variables};
use crate::cli::{Cli, ExecArgs};
use crate::config::process_env;
use crate::endpoint::{self, CredentialSource, EndpointOptions, Record, Refusal, Served};
use crate::session_cache::runtime_dir;

/// How long the daemon's endpoint may take to answer the first request
/// (it may be refreshing the session, waiting for a YubiKey touch).
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Signals passed on to the command.
const FORWARDED: [Signal; 7] = [
    Signal::TERM,
    Signal::INT,
    Signal::HUP,
    Signal::QUIT,
    Signal::USR1,
    Signal::USR2,
    Signal::WINCH,
];

/// Signals a terminal sends to its whole foreground process group.
const FROM_TERMINAL: [Signal; 3] = [Signal::INT, Signal::QUIT, Signal::WINCH];

/// Requests for the session waiting for the look-up thread.
const ASK_QUEUE: usize = 64;

pub fn run(cli: &Cli, args: &ExecArgs) -> anyhow::Result<i32> {
    let config = super::load_config(cli)?;
    let target = handoff::target(&config, &args.section)?;
    let Some((program, arguments)) = args.command.split_first() else {
        anyhow::bail!("no command to run: give it after `--`");
    };
    let mut command = Command::new(program);
    command.args(arguments);
    if !args.server {
        let session = handoff::fresh_session(cli, &target)?;
        Variables::session(&target, &session).apply(&mut command);
        return Ok(become_command(command, program));
    }
    if let Some(record) = daemon_endpoint(&target)? {
        let url = record.url_of(&target.name);
        Variables::endpoint(&target, &url, &record.token_file_of(&target.name)).apply(&mut command);
        return Ok(become_command(command, program));
    }
    serve_while_running(cli, &target, command, program)
}

/// Replaces this process with `command`; returns only when that fails
/// (127: not found, 126: not runnable, as shells say).
fn become_command(mut command: Command, program: &OsStr) -> i32 {
    let error = command.exec();
    cannot_run(program, &error)
}

fn cannot_run(program: &OsStr, error: &std::io::Error) -> i32 {
    eprintln!(
        "error: cannot run {}: {error}",
        crate::text::printable(&program.to_string_lossy())
    );
    if error.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}

/// The running daemon's endpoint, when it serves `target` and answers for
/// it now; `Err` when it serves it but cannot hand it out (the reason).
fn daemon_endpoint(target: &Target) -> anyhow::Result<Option<Record>> {
    let Some(dir) = runtime_dir(&process_env) else {
        return Ok(None);
    };
    let record = match Record::read(&dir) {
        Ok(Some(record)) if record.serves(&target.name) => record,
        Ok(_) => return Ok(None),
        Err(e) => {
            tracing::warn!("ignoring the daemon's endpoint: {e}");
            return Ok(None);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let answer = runtime.block_on(endpoint::probe(&record, &target.name, PROBE_TIMEOUT));
    answer.map_err(|reason| {
        anyhow::anyhow!(
            "section [{}]: the daemon's credentials endpoint cannot hand it out: {reason}",
            crate::text::printable(&target.name)
        )
    })?;
    Ok(Some(record))
}

/// `exec --server` without a daemon's endpoint: serves the section on
/// 127.0.0.1 while `command` runs, and returns its exit code.
///
/// The look-ups run on one thread of their own (they read files and may
/// run a pass that waits for the YubiKey), one at a time; the endpoint on
/// a runtime in this thread. When the command has exited, the endpoint
/// stops, and a look-up still running is waited for (it may be writing the
/// credentials file).
fn serve_while_running(
    cli: &Cli,
    target: &Target,
    mut command: Command,
    program: &OsStr,
) -> anyhow::Result<i32> {
    // Refused before anything starts when it cannot be made fresh.
    drop(handoff::fresh_session(cli, target)?);
    let dir = private_dir()?;
    std::thread::scope(|scope| {
        let (asks, mut pending) = mpsc::channel::<Ask>(ASK_QUEUE);
        scope.spawn(move || {
            while let Some(reply) = pending.blocking_recv() {
                let answer = handoff::fresh_session(cli, target)
                    .map(|credentials| Served {
                        credentials,
                        account_id: target.account_id.clone(),
                    })
                    .map_err(|e| Refusal::Unavailable {
                        reason: format!("{e:#}"),
                        retry_after: None,
                    });
                let _ = reply.send(answer);
            }
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let code = runtime.block_on(async {
            let options = EndpointOptions {
                address: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                dir: dir.path().to_path_buf(),
                sections: vec![target.name.clone()],
                section_tokens: false,
                unix_socket: false,
                record: false,
                limits: endpoint::Limits::default(),
            };
            let source = Arc::new(LookUp {
                section: target.name.clone(),
                asks,
            });
            let endpoint = endpoint::start(options, source).await?;
            Variables::endpoint(target, &endpoint.url(&target.name), endpoint.token_file())
                .apply(&mut command);
            let code = supervise(command, program).await;
            drop(endpoint);
            code
        });
        // Ends the endpoint's tasks, and with them the look-up thread's queue.
        drop(runtime);
        code
    })
}

/// A private directory for the endpoint's token file: in the runtime
/// directory, else in the system's temporary directory (0700 either way;
/// removed when dropped).
fn private_dir() -> anyhow::Result<tempfile::TempDir> {
    let dir = match runtime_dir(&process_env) {
        Some(runtime) => {
            crate::private_file::ensure_private_dir(&runtime)?;
            tempfile::Builder::new().prefix("exec-").tempdir_in(runtime)
        }
        None => tempfile::Builder::new()
            .prefix("aws-session-daemon-exec-")
            .tempdir(),
    };
    dir.context("cannot create a private directory for the endpoint's token")
}

/// A request for the session, answered by the look-up thread.
type Ask = oneshot::Sender<Result<Served, Refusal>>;

/// `exec --server`'s credential source: each request asks the look-up
/// thread for the section's fresh session.
struct LookUp {
    section: String,
    asks: mpsc::Sender<Ask>,
}

impl CredentialSource for LookUp {
    fn credentials<'a>(&'a self, section: &'a str) -> BoxFuture<'a, Result<Served, Refusal>> {
        Box::pin(async move {
            if section != self.section {
                return Err(Refusal::UnknownSection);
            }
            let stopping = || Refusal::Unavailable {
                reason: "the command has ended; the endpoint is stopping".into(),
                retry_after: None,
            };
            let (reply, answer) = oneshot::channel();
            self.asks.send(reply).await.map_err(|_| stopping())?;
            answer.await.map_err(|_| stopping())?
        })
    }
}

/// Runs `command` as a child, passes signals on, and returns its exit code.
async fn supervise(mut command: Command, program: &OsStr) -> anyhow::Result<i32> {
    use tokio::signal::unix::{SignalKind, signal};
    // Caught before the child starts, so that none is lost or ends this
    // process instead.
    let skip_terminal = in_terminal_foreground();
    let mut streams = Vec::new();
    for sig in FORWARDED {
        let stream = signal(SignalKind::from_raw(sig.as_raw()))
            .with_context(|| format!("cannot catch signal {}", sig.as_raw()))?;
        let forward = !(skip_terminal && FROM_TERMINAL.contains(&sig));
        streams.push((sig, stream, forward));
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return Ok(cannot_run(program, &e)),
    };
    let pid = i32::try_from(child.id())
        .ok()
        .and_then(Pid::from_raw)
        .context("child pid out of range")?;
    let (exited_tx, exited) = oneshot::channel();
    std::thread::spawn(move || {
        wait_for_exit(pid);
        let _ = exited_tx.send(());
    });
    let forwarders: Vec<_> = streams
        .into_iter()
        .map(|(sig, mut stream, forward)| {
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if forward {
                        // The child is not reaped before this task is
                        // stopped, so the pid is still the child's (or its
                        // zombie's).
                        let _ = rustix::process::kill_process(pid, sig);
                    }
                }
            })
        })
        .collect();
    let _ = exited.await;
    // On this single-threaded runtime, an aborted task never runs again:
    // no signal can be sent after the child is reaped below.
    for forwarder in &forwarders {
        forwarder.abort();
    }
    let status = child
        .wait()
        .context("cannot collect the command's exit status")?;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    })
}

/// Waits until the child has exited, without reaping it (`WNOWAIT`): its
/// pid stays its own until `Child::wait`.
fn wait_for_exit(pid: Pid) {
    use rustix::process::{WaitId, WaitIdOptions, waitid};
    while let Err(rustix::io::Errno::INTR) = waitid(
        WaitId::Pid(pid),
        WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
    ) {}
}

/// Whether this process runs in the foreground of a terminal: then the
/// terminal's signals reach the command (in the same process group) too.
fn in_terminal_foreground() -> bool {
    let group = rustix::process::getpgrp();
    [
        std::io::stdin().as_fd(),
        std::io::stdout().as_fd(),
        std::io::stderr().as_fd(),
    ]
    .into_iter()
    .any(|fd| rustix::termios::isatty(fd) && rustix::termios::tcgetpgrp(fd) == Ok(group))
}
