//! `mfa_process`: the other source of MFA codes, a user command that prints
//! a six-digit code (a phone bridge, `pass otp`, a script around another
//! token).
//!
//! Its output is a code, so no error message ever includes it.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::retry::{Classified, RetryClass};

/// How long `mfa_process` and `oath_password_command` may run unless the
/// config says otherwise (`process_timeout`).
pub const DEFAULT_PROCESS_TIMEOUT: Duration = Duration::from_secs(10);

/// A code is six digits and a password a line: more output than this is
/// the wrong command (`yes`), and is cut off, not collected.
pub const MAX_PROCESS_OUTPUT: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum MfaProcessError {
    #[error("mfa_process could not be started: {0}")]
    Spawn(std::io::Error),
    #[error("mfa_process did not finish within {} s and was killed (process_timeout)", .0.as_secs())]
    Timeout(Duration),
    #[error(
        "mfa_process printed more than {MAX_PROCESS_OUTPUT} bytes and was killed; it must print only the six-digit code"
    )]
    TooMuchOutput,
    #[error("mfa_process failed ({status}); its output is not shown")]
    Failed { status: std::process::ExitStatus },
    /// Describes the output's shape only (length), never its content.
    #[error("mfa_process printed {len} characters where a code of exactly six digits was expected")]
    NotSixDigits { len: usize },
}

impl Classified for MfaProcessError {
    fn retry_class(&self) -> RetryClass {
        match self {
            // The command may wait on something passing (a phone, a lock).
            MfaProcessError::Timeout(_) | MfaProcessError::Failed { .. } => RetryClass::Soon,
            MfaProcessError::Spawn(_)
            | MfaProcessError::NotSixDigits { .. }
            | MfaProcessError::TooMuchOutput => RetryClass::NeedsUser,
        }
    }
}

/// Runs `command` with `sh -c` and returns the six-digit code it prints.
pub fn run_mfa_process(command: &str, timeout: Duration) -> Result<SecretString, MfaProcessError> {
    let output = run_child(command, timeout).map_err(|e| match e {
        ChildError::Spawn(e) => MfaProcessError::Spawn(e),
        ChildError::Timeout(t) => MfaProcessError::Timeout(t),
        ChildError::TooMuchOutput => MfaProcessError::TooMuchOutput,
        ChildError::Failed(status) => MfaProcessError::Failed { status },
    })?;
    let text = output.trim_ascii();
    if text.len() != 6 || !text.iter().all(u8::is_ascii_digit) {
        return Err(MfaProcessError::NotSixDigits { len: text.len() });
    }
    let code = std::str::from_utf8(text).unwrap_or_default();
    Ok(SecretString::from(code))
}

/// How a user command failed, before its output is looked at.
#[derive(Debug)]
pub(crate) enum ChildError {
    Spawn(std::io::Error),
    Timeout(Duration),
    TooMuchOutput,
    Failed(std::process::ExitStatus),
}

/// Environment variables a user command must not see: the credentials the
/// daemon was started with (a shell with `AWS_SECRET_ACCESS_KEY` exported,
/// a unit's `Environment=`). A code or password command has no use for them.
fn is_credential_variable(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    name.starts_with("AWS_")
        && ["KEY", "SECRET", "TOKEN", "CREDENTIAL", "PASSWORD"]
            .iter()
            .any(|part| name.contains(part))
}

/// How long a command may take to exit after it printed its line, so that
/// its exit status is seen (`echo 123456; exit 1` is a failure); one that
/// lingers longer (or left a child holding its output) is killed and its
/// line used.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// The environment variable that marks every process a run starts (see
/// [`run_child`]): inherited through fork, exec, `setsid` and daemonizing.
const RUN_MARKER: &str = "AWS_SESSION_DAEMON_RUN";

/// Runs a user command (`sh -c`) without the daemon's credential variables
/// and returns its first line of output (through the newline; all of it
/// when it ends without one), at most [`MAX_PROCESS_OUTPUT`] bytes, within
/// `timeout`. The line is taken as soon as it is complete: a child that
/// detached (`setsid`, a daemon) and keeps the output open does not hold
/// the code back. An exit status other than success is an error (its
/// output unseen).
///
/// Nothing the command started outlives the run. A process group is not
/// enough (`setsid` leaves it), so every process of the run carries a
/// marker in its environment ([`RUN_MARKER`], unique per run) and, once
/// the line is read or the time is up, the group is killed and then every
/// process of this user whose environment holds the marker, until none is
/// left. Chosen over the alternatives: a cgroup of its own needs a
/// delegated cgroup tree, which a user unit, cron or ssh session does not
/// have; `PR_SET_CHILD_SUBREAPER` changes how the whole daemon reaps its
/// children and cannot tell the orphans of two runs at once apart; a walk
/// of the process tree loses a child as soon as its parent exits. (The
/// same marker is how Jenkins finds the processes a build left behind.) A
/// descendant that clears its environment (`env -i`) or becomes
/// non-dumpable (a setuid program) escapes the scan, but not the group
/// kill unless it also left the group.
pub(crate) fn run_child(
    command: &str,
    timeout: Duration,
) -> Result<Zeroizing<Vec<u8>>, ChildError> {
    let deadline = Instant::now() + timeout;
    let marker = format!(
        "{}-{:016x}{:016x}",
        std::process::id(),
        fastrand::u64(..),
        fastrand::u64(..)
    );
    let mut builder = Command::new("sh");
    builder
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // Its own process group, so that a kill reaches the command's
        // children that stayed in it even if they cleared the marker.
        .process_group(0);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_credential_variable) {
            builder.env_remove(&name);
        }
    }
    builder.env(RUN_MARKER, &marker);
    let mut child = builder.spawn().map_err(ChildError::Spawn)?;
    let run = Run {
        group: child.id(),
        marker,
    };
    let Some(mut stdout) = child.stdout.take() else {
        run.kill();
        let _ = child.wait();
        return Err(ChildError::Spawn(std::io::Error::other(
            "no standard output",
        )));
    };
    // The output stays open until the run is over: a command that writes
    // more after its line is not killed by SIGPIPE (and failed) for it.
    let output = match read_line(&mut stdout, deadline, timeout) {
        Ok(Output::Line(line)) => {
            // The status of a command that exits at once after its line.
            let grace = deadline.min(Instant::now() + EXIT_GRACE);
            let status = wait_until(&mut child, grace);
            run.kill();
            match status {
                Some(status) if !status.success() => return Err(ChildError::Failed(status)),
                Some(_) => {}
                None => {
                    let _ = child.wait();
                }
            }
            return Ok(line);
        }
        Ok(Output::End(all)) => all,
        Err(error) => {
            run.kill();
            let _ = child.wait();
            return Err(error);
        }
    };
    // Every writer closed the output: the command is ending.
    let status = wait_until(&mut child, deadline);
    run.kill();
    let status = match status {
        Some(status) => status,
        None => {
            let _ = child.wait();
            return Err(ChildError::Timeout(timeout));
        }
    };
    if !status.success() {
        return Err(ChildError::Failed(status));
    }
    Ok(output)
}

/// What a command printed before its line ended or its output closed.
enum Output {
    /// The first line, through its newline.
    Line(Zeroizing<Vec<u8>>),
    /// Everything, when the output closed before a newline.
    End(Zeroizing<Vec<u8>>),
}

/// Reads up to the first newline, the end of the output, one byte more
/// than [`MAX_PROCESS_OUTPUT`], or `deadline`, whichever comes first.
fn read_line(
    stdout: &mut ChildStdout,
    deadline: Instant,
    timeout: Duration,
) -> Result<Output, ChildError> {
    let mut out = Zeroizing::new(Vec::with_capacity(64));
    let mut buffer = Zeroizing::new([0u8; 512]);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !readable(stdout, left) {
            return Err(ChildError::Timeout(timeout));
        }
        let n = match stdout.read(&mut buffer[..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ChildError::Spawn(e)),
        };
        if n == 0 {
            return Ok(Output::End(out));
        }
        let chunk = &buffer[..n];
        if let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            out.extend_from_slice(&chunk[..=end]);
            return if out.len() > MAX_PROCESS_OUTPUT {
                Err(ChildError::TooMuchOutput)
            } else {
                Ok(Output::Line(out))
            };
        }
        out.extend_from_slice(chunk);
        if out.len() > MAX_PROCESS_OUTPUT {
            return Err(ChildError::TooMuchOutput);
        }
    }
}

/// Waits until `stdout` can be read (data, or the end of the output), at
/// most `wait`.
fn readable(stdout: &ChildStdout, wait: Duration) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let timeout = Timespec {
        tv_sec: i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(wait.subsec_nanos()),
    };
    loop {
        let mut fds = [PollFd::new(stdout, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Err(rustix::io::Errno::INTR) => continue,
            Ok(n) => return n > 0,
            Err(_) => return false,
        }
    }
}

/// The child's exit status if it exits before `deadline`.
fn wait_until(child: &mut std::process::Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) | Err(_) => return None,
        }
    }
}

/// The processes of one run: its process group, and every process
/// carrying its marker.
struct Run {
    group: u32,
    marker: String,
}

impl Run {
    /// Kills the group, then whatever still carries the marker, scanning
    /// again until a scan finds none (a process may fork while it is
    /// being killed; its child inherits the marker).
    fn kill(&self) {
        if let Some(pid) = i32::try_from(self.group)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let needle = format!("{RUN_MARKER}={}\0", self.marker);
        // Done after two scans in a row find none, a few milliseconds
        // apart: a process caught between fork and exec (its environment
        // unreadable for a moment) is found by the second.
        let mut empty = 0;
        for _ in 0..20 {
            let marked = marked_processes(needle.as_bytes());
            if marked.is_empty() {
                empty += 1;
                if empty == 2 {
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            empty = 0;
            for pid in marked
                .into_iter()
                .filter_map(rustix::process::Pid::from_raw)
            {
                // A process carrying this run's unique marker: one it started.
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        tracing::warn!("a process started by a user command keeps forking; it was killed 20 times");
    }
}

/// The processes whose environment holds `needle` (`NAME=VALUE\0`). Only
/// this user's processes can be read; a process that ended meanwhile, or
/// whose environment is unreadable, is skipped.
fn marked_processes(needle: &[u8]) -> Vec<i32> {
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut environ = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        if u32::try_from(pid) == Ok(own) {
            continue;
        }
        environ.clear();
        let read = std::fs::File::open(entry.path().join("environ"))
            .and_then(|file| file.take(ENVIRON_LIMIT).read_to_end(&mut environ));
        if read.is_ok() && contains(&environ, needle) {
            found.push(pid);
        }
    }
    found
}

/// An environment is a few kilobytes; the marker is looked for in the
/// first 2 MiB (the kernel's default limit for arguments and environment
/// together).
const ENVIRON_LIMIT: u64 = 2 << 20;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    // Variables start the block or follow a NUL.
    haystack
        .split(|&b| b == 0)
        .any(|variable| variable.len() + 1 == needle.len() && needle.starts_with(variable))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::time::Instant;

    fn run(command: &str) -> Result<SecretString, MfaProcessError> {
        run_mfa_process(command, DEFAULT_PROCESS_TIMEOUT)
    }

    #[test]
    fn six_digits_trimmed() {
        let code = run("echo '  123456 '").unwrap();
        assert_eq!(code.expose_secret(), "123456");
        assert!(!format!("{code:?}").contains("123456"));
    }

    #[test]
    fn wrong_shapes_are_refused_without_showing_them() {
        for (cmd, len) in [
            ("echo 12345", 5),
            ("echo 1234567", 7),
            ("echo 12a456", 6),
            ("echo", 0),
            ("printf '12 456'", 6),
        ] {
            let e = run(cmd).unwrap_err();
            assert!(
                matches!(e, MfaProcessError::NotSixDigits { len: l } if l == len),
                "{cmd}: {e:?}"
            );
            assert_eq!(e.retry_class(), RetryClass::NeedsUser);
        }
        let e = run("echo 987654; exit 1").unwrap_err();
        assert!(matches!(e, MfaProcessError::Failed { .. }));
        assert!(!format!("{e} {e:?}").contains("987654"));
        assert_eq!(e.retry_class(), RetryClass::Soon);
    }

    #[test]
    fn timeout_kills_the_command_and_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("late");
        let cmd = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let start = Instant::now();
        let e = run_mfa_process(&cmd, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, MfaProcessError::Timeout(_)), "{e:?}");
        assert!(start.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "the command's background child survived");
    }

    /// Waits (2 s at most) until the process whose pid is in `pid_file` is
    /// gone (or a zombie: killed, and waiting for init to reap it).
    #[cfg(test)]
    pub(crate) fn assert_gone(pid_file: &std::path::Path) {
        let pid = std::fs::read_to_string(pid_file).expect("the child wrote its pid");
        let stat = format!("/proc/{}/stat", pid.trim());
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let state = std::fs::read_to_string(&stat)
                .ok()
                .and_then(|s| s.rsplit(')').next().map(|r| r.trim().chars().next()))
                .flatten();
            if matches!(state, None | Some('Z' | 'X')) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "process {} (state {state:?}) survived its command",
                pid.trim()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_child_in_a_session_of_its_own_holding_the_output_neither_delays_the_code_nor_survives() {
        // `setsid` leaves the process group: the code's printer lives on
        // in a new session and keeps standard output open for a minute.
        for detach in [
            "setsid sh -c '{body}'",
            "setsid -f sh -c '{body}'",
            "(setsid sh -c '{body}' &)",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let pid_file = dir.path().join("child.pid");
            let body = format!(
                "echo $$ > {}; echo 123456; exec sleep 60",
                pid_file.display()
            );
            let command = detach.replace("{body}", &body);
            let started = Instant::now();
            let code = run_mfa_process(&command, Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("{command}: {e}"));
            assert_eq!(code.expose_secret(), "123456");
            let took = started.elapsed();
            assert!(took < Duration::from_secs(5), "{command}: took {took:?}");
            assert_gone(&pid_file);
        }
    }

    #[test]
    fn a_failing_command_is_a_failure_even_after_its_line() {
        let e = run("echo 123456; sleep 0.2; exit 3").unwrap_err();
        assert!(matches!(e, MfaProcessError::Failed { .. }), "{e:?}");
        // One that lingers after its line is killed, and its line used.
        let started = Instant::now();
        let code = run("echo 123456; sleep 60").unwrap();
        assert_eq!(code.expose_secret(), "123456");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn endless_output_is_cut_off_and_the_command_killed() {
        let start = Instant::now();
        let e = run("cat /dev/zero").unwrap_err();
        assert!(matches!(e, MfaProcessError::TooMuchOutput), "{e:?}");
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(e.retry_class(), RetryClass::NeedsUser);
        // Endless lines: the first one is the answer.
        let e = run("yes").unwrap_err();
        assert!(
            matches!(e, MfaProcessError::NotSixDigits { len: 1 }),
            "{e:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn the_command_sees_no_credential_variable() {
        // SAFETY: tests in this module do not read these variables.
        unsafe {
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "leaked-secret");
            std::env::set_var("AWS_SESSION_TOKEN", "leaked-token");
        }
        // (Only the first line of output is read.)
        let out = run_child(
            "if env | grep -q leaked; then echo leaked; elif env | grep -q '^PATH='; then echo clean; fi",
            DEFAULT_PROCESS_TIMEOUT,
        )
        .unwrap();
        assert_eq!(
            &out[..],
            b"clean\n",
            "no credential variable, and the rest of the environment stays"
        );
        assert!(is_credential_variable("AWS_ACCESS_KEY_ID"));
        assert!(is_credential_variable("aws_security_token"));
        assert!(!is_credential_variable("AWS_REGION"));
        assert!(!is_credential_variable("MY_TOKEN"));
    }
}
