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

/// How long `mfa_process` may take: long enough for a command that waits
/// for the user (a phone prompt), short enough not to hang the daemon.
pub const MFA_PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum MfaProcessError {
    #[error("mfa_process could not be started: {0}")]
    Spawn(std::io::Error),
    #[error("mfa_process did not finish within {} s and was killed", .0.as_secs())]
    Timeout(Duration),
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
            MfaProcessError::Spawn(_) | MfaProcessError::NotSixDigits { .. } => {
                RetryClass::NeedsUser
            }
        }
    }
}

/// Runs `command` with `sh -c` and returns the six-digit code it prints.
pub fn run_mfa_process(command: &str) -> Result<SecretString, MfaProcessError> {
    run_with_timeout(command, MFA_PROCESS_TIMEOUT)
}

pub(crate) fn run_with_timeout(
    command: &str,
    timeout: Duration,
) -> Result<SecretString, MfaProcessError> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // Its own process group, so that a timeout kills the command's
        // children too, not only the shell.
        .process_group(0)
        .spawn()
        .map_err(MfaProcessError::Spawn)?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    // The reader ends at EOF, i.e. when the command (and every child that
    // inherited its stdout) has exited or been killed.
    std::thread::spawn(move || {
        let mut out = Zeroizing::new(Vec::new());
        let result = stdout.read_to_end(&mut out).map(|_| out);
        let _ = tx.send(result);
    });
    let output = match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(_) => {
            kill_group(child.id());
            let _ = child.wait();
            return Err(MfaProcessError::Timeout(timeout));
        }
    };
    let status = child.wait().map_err(MfaProcessError::Spawn)?;
    let output = output.map_err(MfaProcessError::Spawn)?;
    if !status.success() {
        return Err(MfaProcessError::Failed { status });
    }
    let text = output.trim_ascii();
    if text.len() != 6 || !text.iter().all(u8::is_ascii_digit) {
        return Err(MfaProcessError::NotSixDigits { len: text.len() });
    }
    let code = std::str::from_utf8(text).expect("ASCII digits");
    Ok(SecretString::from(code))
}

fn kill_group(pid: u32) {
    // SAFETY: kill(2) with a negative pid signals the process group we
    // created for this child; no memory is involved.
    unsafe {
        libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::time::Instant;

    #[test]
    fn six_digits_trimmed() {
        let code = run_mfa_process("echo '  123456 '").unwrap();
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
            let e = run_mfa_process(cmd).unwrap_err();
            assert!(
                matches!(e, MfaProcessError::NotSixDigits { len: l } if l == len),
                "{cmd}: {e:?}"
            );
            assert_eq!(e.retry_class(), RetryClass::NeedsUser);
        }
        let e = run_mfa_process("echo 987654; exit 1").unwrap_err();
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
        let e = run_with_timeout(&cmd, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, MfaProcessError::Timeout(_)), "{e:?}");
        assert!(start.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "the command's background child survived");
    }
}
