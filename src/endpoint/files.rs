//! The endpoint's files in its private directory (the list is in the
//! module doc of `endpoint`), and the record others read to find it.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::EndpointError;
use super::route;
use super::token::{Token, Tokens};
use crate::private_file::{self, Lock};
use crate::session_cache::RUNTIME_FILE_RULES;

pub(crate) const LOCK: &str = "endpoint.lock";
const TOKEN: &str = "endpoint-token";
const SECTION_TOKENS: &str = "endpoint-tokens";
const RECORD: &str = "endpoint.json";
const SOCKET: &str = "endpoint.sock";

/// Where a running endpoint is, as written to `endpoint.json` (0600) in
/// its directory: what `status` shows and `exec --server` hands to its
/// command. Holds paths and names only, never a token.
///
/// ```json
/// {"pid": 4242, "address": "127.0.0.1:41623",
///  "url": "http://127.0.0.1:41623/v1/credentials/",
///  "token_file": "/run/user/1000/aws-session-daemon/endpoint-token",
///  "section_token_dir": "/run/user/1000/aws-session-daemon/endpoint-tokens",
///  "unix_socket": null, "sections": ["prod", "dev"]}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The process serving.
    pub pid: u32,
    pub address: SocketAddr,
    /// The URL that a section's encoded name is appended to.
    pub url: String,
    /// The token that opens every section.
    pub token_file: PathBuf,
    /// Per-section tokens (`DIR/NAME`, NAME as in the URL), when on.
    #[serde(default)]
    pub section_token_dir: Option<PathBuf>,
    #[serde(default)]
    pub unix_socket: Option<PathBuf>,
    pub sections: Vec<String>,
}

impl Record {
    /// The endpoint serving from `dir` now, if any: `None` when there is
    /// no record, or when its lock is free (the process that wrote it is
    /// gone).
    pub fn read(dir: &Path) -> Result<Option<Record>, EndpointError> {
        let path = dir.join(RECORD);
        let Some(file) = private_file::read(&path, RUNTIME_FILE_RULES)? else {
            return Ok(None);
        };
        let record: Record =
            serde_json::from_slice(&file.bytes).map_err(|e| EndpointError::Record {
                path: path.clone(),
                problem: format!("{e}; remove it (the endpoint writes it at each start)"),
            })?;
        if private_file::try_lock(&dir.join(LOCK))?.is_some() {
            return Ok(None);
        }
        Ok(Some(record))
    }

    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` for `section`.
    pub fn url_of(&self, section: &str) -> String {
        format!("{}{}", self.url, route::encode(section))
    }

    /// The token file to hand to a process that needs `section` only: its
    /// own when per-section tokens are on, else the one for every section.
    pub fn token_file_of(&self, section: &str) -> PathBuf {
        match &self.section_token_dir {
            Some(dir) => dir.join(route::encode(section)),
            None => self.token_file.clone(),
        }
    }

    pub fn serves(&self, section: &str) -> bool {
        self.sections.iter().any(|s| s == section)
    }
}

/// The paths in an endpoint's directory, and writing them.
#[derive(Debug)]
pub(crate) struct Files {
    dir: PathBuf,
}

impl Files {
    pub(crate) fn new(dir: PathBuf) -> Files {
        Files { dir }
    }

    pub(crate) fn token(&self) -> PathBuf {
        self.dir.join(TOKEN)
    }

    pub(crate) fn section_tokens(&self) -> PathBuf {
        self.dir.join(SECTION_TOKENS)
    }

    pub(crate) fn section_token(&self, section: &str) -> PathBuf {
        self.section_tokens().join(route::encode(section))
    }

    pub(crate) fn socket(&self) -> PathBuf {
        self.dir.join(SOCKET)
    }

    /// Creates the directory (0700) when missing, checks it is private,
    /// and takes the endpoint's lock for as long as the lock is kept.
    pub(crate) fn lock(&self) -> Result<Lock, EndpointError> {
        private_file::ensure_private_dir(&self.dir)?;
        private_file::try_lock(&self.dir.join(LOCK))?.ok_or_else(|| EndpointError::InUse {
            dir: self.dir.clone(),
        })
    }

    /// New tokens for `sections`, written to their files (a token file
    /// left by an earlier run is replaced or removed).
    pub(crate) fn new_tokens(
        &self,
        sections: &[String],
        per_section: bool,
    ) -> Result<Tokens, EndpointError> {
        let all = new_token()?;
        private_file::write(&self.token(), all.as_bytes())?;
        self.remove_section_tokens();
        if per_section {
            private_file::ensure_private_dir(&self.section_tokens())?;
        }
        let mut tokens = Tokens {
            all,
            sections: Default::default(),
        };
        for section in unique(sections) {
            let token = self.section_token_for(section, per_section)?;
            tokens.sections.insert(section.to_string(), token);
        }
        Ok(tokens)
    }

    /// A new token for `section`, written, when per-section tokens are on.
    pub(crate) fn section_token_for(
        &self,
        section: &str,
        per_section: bool,
    ) -> Result<Option<Token>, EndpointError> {
        if !per_section {
            return Ok(None);
        }
        let token = new_token()?;
        private_file::write(&self.section_token(section), token.as_bytes())?;
        Ok(Some(token))
    }

    pub(crate) fn remove_section_token(&self, section: &str) {
        remove(&self.section_token(section));
    }

    /// Binds the Unix socket, mode 0600 (the directory is 0700 besides). A
    /// socket left there by an earlier run is replaced: the lock says no
    /// one serves on it.
    pub(crate) fn bind_socket(&self) -> Result<tokio::net::UnixListener, EndpointError> {
        let path = self.socket();
        let failed = |action: &'static str, e: io::Error| {
            EndpointError::from(private_file::PrivateFileError::io(&path, action, e))
        };
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_socket() => {
                fs::remove_file(&path).map_err(|e| failed("removing the old socket", e))?;
            }
            Ok(_) => {
                return Err(EndpointError::Files(format!(
                    "{} is not a socket; remove it (the endpoint creates its socket there)",
                    path.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(failed("checking", e)),
        }
        let listener =
            tokio::net::UnixListener::bind(&path).map_err(|source| EndpointError::Bind {
                address: path.display().to_string(),
                source,
            })?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
            .map_err(|e| failed("setting mode 0600 on", e))?;
        Ok(listener)
    }

    pub(crate) fn write_record(&self, record: &Record) -> Result<(), EndpointError> {
        let path = self.dir.join(RECORD);
        let json = serde_json::to_vec_pretty(record).map_err(|e| EndpointError::Record {
            path: path.clone(),
            problem: format!("cannot be written: {e}"),
        })?;
        private_file::write(&path, &json)?;
        Ok(())
    }

    /// Removes the token files, the socket and (`record`) the record: the
    /// endpoint stops. Best effort: what cannot be removed is logged.
    pub(crate) fn remove_all(&self, record: bool) {
        remove(&self.token());
        self.remove_section_tokens();
        remove(&self.socket());
        if record {
            remove(&self.dir.join(RECORD));
        }
    }

    fn remove_section_tokens(&self) {
        let dir = self.section_tokens();
        let Ok(entries) = fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                remove(&entry.path());
            }
        }
        let _ = fs::remove_dir(&dir);
    }
}

fn new_token() -> Result<Token, EndpointError> {
    Token::generate().map_err(|e| EndpointError::Random(e.to_string()))
}

fn remove(path: &Path) {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("endpoint: cannot remove {}: {e}", path.display()),
    }
}

/// `sections` without repeats, in order.
pub(crate) fn unique(sections: &[String]) -> impl Iterator<Item = &str> {
    let mut seen = BTreeSet::new();
    sections
        .iter()
        .map(String::as_str)
        .filter(move |s| seen.insert(*s))
}
