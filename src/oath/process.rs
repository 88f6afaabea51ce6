//! `mfa_process`: the other source of MFA codes, a user command that prints
//! a six-digit code (a phone bridge, `pass otp`, a script around another
//! token).
//!
//! Its output is a code, so no error message ever includes it.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

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

/// Runs a user command (`sh -c`) in its own process group, without the
/// daemon's credential variables, and returns its standard output: at most
/// [`MAX_PROCESS_OUTPUT`] bytes, within `timeout`, or the whole group is
/// killed. Exit status other than success is an error (its output unseen).
pub(crate) fn run_child(
    command: &str,
    timeout: Duration,
) -> Result<Zeroizing<Vec<u8>>, ChildError> {
    let mut builder = Command::new("sh");
    builder
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // Its own process group, so that a timeout kills the command's
        // children too, not only the shell.
        .process_group(0);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_credential_variable) {
            builder.env_remove(&name);
        }
    }
    let mut child = builder.spawn().map_err(ChildError::Spawn)?;
    let Some(stdout) = child.stdout.take() else {
        kill_group(child.id());
        let _ = child.wait();
        return Err(ChildError::Spawn(std::io::Error::other(
            "no standard output",
        )));
    };
    let (tx, rx) = mpsc::channel();
    // The reader ends at EOF (the command and every child that inherited
    // its stdout exited or were killed), or after one byte too many.
    std::thread::spawn(move || {
        let mut out = Zeroizing::new(Vec::new());
        let result = stdout
            .take(MAX_PROCESS_OUTPUT as u64 + 1)
            .read_to_end(&mut out)
            .map(|_| out);
        let _ = tx.send(result);
    });
    let output = match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(_) => {
            kill_group(child.id());
            let _ = child.wait();
            return Err(ChildError::Timeout(timeout));
        }
    };
    let output = match output {
        Ok(out) if out.len() > MAX_PROCESS_OUTPUT => {
            kill_group(child.id());
            let _ = child.wait();
            return Err(ChildError::TooMuchOutput);
        }
        Ok(out) => out,
        Err(e) => {
            kill_group(child.id());
            let _ = child.wait();
            return Err(ChildError::Spawn(e));
        }
    };
    let status = child.wait().map_err(ChildError::Spawn)?;
    if !status.success() {
        return Err(ChildError::Failed(status));
    }
    Ok(output)
}

fn kill_group(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals the process group we
    // created for this child; no memory is involved.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn endless_output_is_cut_off_and_the_command_killed() {
        let start = Instant::now();
        let e = run("yes").unwrap_err();
        assert!(matches!(e, MfaProcessError::TooMuchOutput), "{e:?}");
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(e.retry_class(), RetryClass::NeedsUser);
    }

    #[test]
    fn the_command_sees_no_credential_variable() {
        // SAFETY: tests in this module do not read these variables.
        unsafe {
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "leaked-secret");
            std::env::set_var("AWS_SESSION_TOKEN", "leaked-token");
        }
        let out = run_child("env", DEFAULT_PROCESS_TIMEOUT).unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("leaked"), "{text}");
        assert!(text.contains("PATH="), "the rest of the environment stays");
        assert!(is_credential_variable("AWS_ACCESS_KEY_ID"));
        assert!(is_credential_variable("aws_security_token"));
        assert!(!is_credential_variable("AWS_REGION"));
        assert!(!is_credential_variable("MY_TOKEN"));
    }
}
