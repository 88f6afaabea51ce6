//! The OATH applet password, from a command or a file.
//!
//! The password is read only when an applet asks for one (SELECT offers a
//! challenge), at most once per operation, kept in a `SecretString` (zeroed
//! on drop, redacted in `Debug`) and never logged. A failing command's
//! output is never shown: it may be the password, or part of it.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use secrecy::SecretString;
use zeroize::Zeroizing;

use super::error::PasswordError;

/// Where the OATH applet password comes from (config keys
/// `oath_password_command` / `oath_password_file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// Run with `sh -c`; the password is its standard output without the
    /// trailing newline.
    Command(String),
    /// The first line of the file.
    File(PathBuf),
}

impl PasswordSource {
    /// Reads the password now.
    pub fn read(&self) -> Result<SecretString, PasswordError> {
        match self {
            PasswordSource::Command(command) => {
                let mut child = Command::new("sh")
                    .arg("-c")
                    .arg(command)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .map_err(PasswordError::Spawn)?;
                let mut out = Zeroizing::new(Vec::new());
                let read = child
                    .stdout
                    .take()
                    .expect("stdout is piped")
                    .read_to_end(&mut out);
                let status = child.wait().map_err(PasswordError::Spawn)?;
                read.map_err(PasswordError::Spawn)?;
                if !status.success() {
                    return Err(PasswordError::CommandFailed { status });
                }
                let mut text: &[u8] = &out;
                if let Some(t) = text.strip_suffix(b"\n") {
                    text = t.strip_suffix(b"\r").unwrap_or(t);
                }
                to_secret(text, "oath_password_command")
            }
            PasswordSource::File(path) => {
                let content =
                    Zeroizing::new(std::fs::read(path).map_err(|source| PasswordError::File {
                        path: path.clone(),
                        source,
                    })?);
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

/// The password of one operation: read at the first applet that wants it,
/// then reused for the other readers.
pub(crate) struct PasswordCache<'a> {
    source: Option<&'a PasswordSource>,
    value: Option<SecretString>,
}

impl<'a> PasswordCache<'a> {
    pub(crate) fn new(source: Option<&'a PasswordSource>) -> Self {
        PasswordCache {
            source,
            value: None,
        }
    }

    /// `Ok(None)` when no source is configured.
    pub(crate) fn get(&mut self) -> Result<Option<&SecretString>, PasswordError> {
        if self.value.is_none() {
            match self.source {
                None => return Ok(None),
                Some(source) => self.value = Some(source.read()?),
            }
        }
        Ok(self.value.as_ref())
    }
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
        // Only one newline is the terminator; inner ones are kept.
        let p = PasswordSource::Command("printf 'x\\ny\\n'".into())
            .read()
            .unwrap();
        assert_eq!(p.expose_secret(), "x\ny");
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
    fn cache_reads_once() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        let cmd = format!("echo x >> {}; echo pw", count.display());
        let source = PasswordSource::Command(cmd);
        let mut cache = PasswordCache::new(Some(&source));
        assert_eq!(cache.get().unwrap().unwrap().expose_secret(), "pw");
        assert_eq!(cache.get().unwrap().unwrap().expose_secret(), "pw");
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 1);
        assert!(PasswordCache::new(None).get().unwrap().is_none());
    }
}
