//! The OATH applet password, from a command or a file.
//!
//! The password is read only when an applet asks for one (SELECT offers a
//! challenge), at most once per operation, kept in a `SecretString` (zeroed
//! on drop, redacted in `Debug`) and never logged. A failing command's
//! output is never shown: it may be the password, or part of it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use zeroize::Zeroizing;

use super::error::PasswordError;
use super::process::{ChildError, DEFAULT_PROCESS_TIMEOUT, run_child};
use crate::private_file::{self, PrivateFileError, ReadRules};

/// A password file holds one line.
const MAX_PASSWORD_FILE: u64 = 4096;

/// Where the OATH applet password comes from (config keys
/// `oath_password_command` / `oath_password_file`).
#[derive(Clone)]
pub enum PasswordSource {
    /// Run with `sh -c` (within `process_timeout`, output capped, without
    /// the daemon's credential variables, nothing it starts left running);
    /// the password is the first line of its standard output, as it is the
    /// first line of `oath_password_file`.
    Command(String),
    /// The first line of the file (a regular file of at most 4 KiB).
    File(PathBuf),
    /// Read by someone else (the desktop keyring), only when an applet
    /// asks; `label` names it in messages.
    Lookup {
        label: String,
        fetch: Arc<dyn Fn() -> Result<SecretString, String> + Send + Sync>,
    },
}

impl std::fmt::Debug for PasswordSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordSource::Command(command) => f.debug_tuple("Command").field(command).finish(),
            PasswordSource::File(path) => f.debug_tuple("File").field(path).finish(),
            PasswordSource::Lookup { label, .. } => f.debug_tuple("Lookup").field(label).finish(),
        }
    }
}

impl PasswordSource {
    /// How messages name it (escaped: a multi-line command must not make
    /// a multi-line message, nor forge a log line).
    pub fn describe(&self) -> String {
        let text = match self {
            PasswordSource::Command(command) => format!("oath_password_command `{command}`"),
            PasswordSource::File(path) => format!("oath_password_file {}", path.display()),
            PasswordSource::Lookup { label, .. } => label.clone(),
        };
        crate::text::printable(&text).into_owned()
    }
}

impl PasswordSource {
    /// Reads the password now, a command taking at most the default
    /// `process_timeout`.
    pub fn read(&self) -> Result<SecretString, PasswordError> {
        self.read_within(DEFAULT_PROCESS_TIMEOUT)
    }

    /// Reads the password now; a command may take `timeout`.
    pub fn read_within(&self, timeout: Duration) -> Result<SecretString, PasswordError> {
        match self {
            PasswordSource::Command(command) => {
                let out = run_child(command, timeout).map_err(|e| match e {
                    ChildError::Spawn(e) => PasswordError::Spawn(e),
                    ChildError::Timeout(t) => PasswordError::Timeout(t),
                    ChildError::TooMuchOutput => PasswordError::TooMuchOutput,
                    ChildError::Failed(status) => PasswordError::CommandFailed { status },
                })?;
                let mut text: &[u8] = &out;
                if let Some(t) = text.strip_suffix(b"\n") {
                    text = t.strip_suffix(b"\r").unwrap_or(t);
                }
                to_secret(text, "oath_password_command")
            }
            PasswordSource::Lookup { label, fetch } => {
                fetch().map_err(|detail| PasswordError::Lookup {
                    from: label.clone(),
                    // The keyring service's own words.
                    detail: crate::text::printable(&detail).into_owned(),
                })
            }
            PasswordSource::File(path) => {
                let rules = ReadRules {
                    limit: MAX_PASSWORD_FILE,
                    follow: true,
                    owned: false,
                };
                let file_error = |source: std::io::Error| PasswordError::File {
                    path: path.clone(),
                    source,
                };
                let content = match private_file::read(path, rules) {
                    Ok(Some(file)) => file.bytes,
                    Ok(None) => {
                        return Err(file_error(std::io::Error::from(
                            std::io::ErrorKind::NotFound,
                        )));
                    }
                    Err(
                        e @ (PrivateFileError::TooLarge { .. } | PrivateFileError::NotAFile { .. }),
                    ) => {
                        return Err(PasswordError::NotAPasswordFile {
                            path: path.clone(),
                            problem: e.to_string(),
                        });
                    }
                    Err(e) => return Err(file_error(e.into())),
                };
                let line = content.split(|&b| b == b'\n').next().unwrap_or_default();
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                to_secret(line, "oath_password_file")
            }
        }
    }
}

fn to_secret(bytes: &[u8], what: &'static str) -> Result<SecretString, PasswordError> {
    if bytes.is_empty() {
        return Err(PasswordError::Empty(what));
    }
    // Passwords are bytes to PBKDF2; a non-UTF-8 one is kept lossily rather
    // than refused, which matches what ykman's UTF-8 encoding would accept.
    let text = Zeroizing::new(String::from_utf8_lossy(bytes).into_owned());
    Ok(SecretString::from(text.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn command_output_without_trailing_newline() {
        let p = PasswordSource::Command("printf 'hunter2\\n'".into())
            .read()
            .unwrap();
        assert_eq!(p.expose_secret(), "hunter2");
        let p = PasswordSource::Command("printf 'a b \\r\\n'".into())
            .read()
            .unwrap();
        assert_eq!(p.expose_secret(), "a b ");
        // The first line is the password, as in a password file.
        let p = PasswordSource::Command("printf 'x\\ny\\n'".into())
            .read()
            .unwrap();
        assert_eq!(p.expose_secret(), "x");
    }

    #[test]
    fn a_command_whose_child_detaches_and_keeps_the_output_gives_its_line_at_once() {
        // A password helper that forks an agent into a session of its own
        // (setsid), which keeps the output open: the password is the first
        // line, read at once, and the agent does not survive the read.
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("agent.pid");
        let command = format!(
            "setsid -f sh -c 'echo $$ > {}; echo hunter2; exec sleep 60'",
            pid_file.display()
        );
        let started = std::time::Instant::now();
        let p = PasswordSource::Command(command)
            .read_within(Duration::from_secs(20))
            .unwrap();
        assert_eq!(p.expose_secret(), "hunter2");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        super::super::process::tests::assert_gone(&pid_file);
    }

    #[test]
    fn failing_command_does_not_show_its_output() {
        let e = PasswordSource::Command("echo s3cr3t-output; exit 3".into())
            .read()
            .unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(matches!(e, PasswordError::CommandFailed { .. }), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
    }

    #[test]
    fn empty_password_is_an_error() {
        let e = PasswordSource::Command("true".into()).read().unwrap_err();
        assert!(matches!(e, PasswordError::Empty(_)));
    }

    #[test]
    fn file_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "hunter2\r\nsecond line\n").unwrap();
        let p = PasswordSource::File(path.clone()).read().unwrap();
        assert_eq!(p.expose_secret(), "hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
        let e = PasswordSource::File(dir.path().join("missing"))
            .read()
            .unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn hostile_sources_are_bounded() {
        let e = PasswordSource::Command("cat /dev/zero".into())
            .read()
            .unwrap_err();
        assert!(matches!(e, PasswordError::TooMuchOutput), "{e:?}");
        // Endless lines: the first is the password, read at once.
        let p = PasswordSource::Command("yes".into()).read().unwrap();
        assert_eq!(p.expose_secret(), "y");
        let e = PasswordSource::Command("sleep 5".into())
            .read_within(Duration::from_millis(200))
            .unwrap_err();
        assert!(matches!(e, PasswordError::Timeout(_)), "{e:?}");
        let e = PasswordSource::File("/dev/zero".into()).read().unwrap_err();
        assert!(e.to_string().contains("/dev/zero"), "{e}");
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success(), "mkfifo");
        let e = PasswordSource::File(fifo).read().unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}
