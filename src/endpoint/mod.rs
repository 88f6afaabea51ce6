//! The local credentials endpoint: the container-credentials protocol that
//! every AWS SDK and the AWS CLI speak (`AWS_CONTAINER_CREDENTIALS_FULL_URI`
//! plus `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`; technical brief §10),
//! served on loopback from whatever [`CredentialSource`] the caller hands
//! in: the daemon's memory, or `exec --server`'s own look-up.
//!
//! The rules, and why:
//! - **Loopback only** ([`parse_address`], [`start`]): the SDKs accept a
//!   plain-http URI only on loopback anyway, and nothing else on the
//!   network should reach session credentials.
//! - **One path per section**, `/v1/credentials/NAME` ([`path_of`], one
//!   spelling per name: `route.rs`). Anything else is 404 without quoting
//!   the path.
//! - **A bearer token** of 32 random bytes in a 0600 file, new at every
//!   start, compared in constant time (`token.rs`); optionally one token
//!   per section, so that a container can be handed one role and no other.
//!   The token is checked before the path: without it, nothing about the
//!   served sections can be learned.
//! - **Bounded** ([`Limits`]): request head size and header count, no
//!   request body, connections at once (at the limit the longest-idle
//!   connection is closed to admit a new one; when every connection is in
//!   a request, the new one is refused at once), time to send a request
//!   head, time per request, life of a connection. A flood of refused
//!   requests logs one line per interval, not one per request.
//! - **Never blocks its caller**: every connection is its own task on the
//!   caller's runtime, and a slow [`CredentialSource`] holds only the
//!   request that waits for it.
//! - **Findable**: the address, the token files' paths and the served
//!   sections are recorded in `endpoint.json` next to the token ([`Record`]),
//!   for `status` and `exec --server`. While it serves, the endpoint holds
//!   the lock `endpoint.lock` there: a second endpoint on the same
//!   directory is refused, and a record whose lock is free is stale.
//!
//! Files in the endpoint's directory (0700; each file 0600, written
//! atomically through [`crate::private_file`]):
//!
//! ```text
//! endpoint-token          the token that opens every section (64 hex digits, no newline)
//! endpoint-tokens/NAME    per-section tokens, when on (NAME as in the URL path)
//! endpoint.json           the Record, when asked for
//! endpoint.sock           the Unix socket, when asked for
//! endpoint.lock           held while serving
//! ```

mod files;
mod probe;
mod route;
mod server;
mod token;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::private_file::PrivateFileError;
use crate::session::SessionCredentials;

pub use files::Record;
pub use probe::probe;
pub use route::path_of;

/// Where the endpoint gets credentials from. The daemon implements it over
/// its loop (phase 2); `exec --server` over its own look-up.
///
/// `credentials` answers with a session that is fresh now, refreshing it
/// first when it is not (that is the source's job: the endpoint only
/// waits, up to [`Limits::request_timeout`]). It is called on the
/// endpoint's tasks: it must not block a thread.
pub trait CredentialSource: Send + Sync + 'static {
    fn credentials<'a>(&'a self, section: &'a str) -> BoxFuture<'a, Result<Served, Refusal>>;
}

/// A session as the endpoint hands it out.
#[derive(Debug, Clone)]
pub struct Served {
    pub credentials: SessionCredentials,
    /// The account the session belongs to, when known: sent as `AccountId`
    /// (the SDKs use it for account-based endpoints).
    pub account_id: Option<String>,
}

/// Why a source has no session to hand out.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// The section is not (or no longer) served: 404.
    UnknownSection,
    /// It cannot be made fresh now: 503 with `reason`, which the client
    /// shows its user. It must hold no secret.
    Unavailable {
        reason: String,
        /// When a retry can succeed, if the source knows (`Retry-After`).
        retry_after: Option<Duration>,
    },
}

/// The bounds every connection and request are held to.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections open at once. At the limit, the connection idle the
    /// longest (between requests, or not yet done sending its first) is
    /// closed to admit the new one; when all are in a request, the new one
    /// is answered 503 and closed.
    pub max_connections: usize,
    /// Bytes in a request head (request line and headers): a request from
    /// an SDK is about 300. hyper's smallest read buffer is 8 KiB.
    pub max_head_bytes: usize,
    /// Headers in a request (an SDK sends fewer than 10).
    pub max_headers: usize,
    /// Time to send a whole request head, counted from the connection's
    /// opening or its previous answer: a slow-loris client is cut off.
    pub header_read_timeout: Duration,
    /// Time the source has to answer one request (a refresh that needs a
    /// YubiKey touch can take this long; the SDKs give up after 2-5 s and
    /// ask again, and find the refreshed session).
    pub request_timeout: Duration,
    /// Life of one connection; then it is closed once its request is
    /// answered (clients open another).
    pub connection_lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            max_head_bytes: 8 * 1024,
            max_headers: 32,
            header_read_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            connection_lifetime: Duration::from_secs(120),
        }
    }
}

/// What to serve, where.
#[derive(Debug, Clone)]
pub struct EndpointOptions {
    /// A loopback address; port 0 for any free port.
    pub address: SocketAddr,
    /// The endpoint's private directory (the runtime directory for the
    /// daemon): its token files, record, socket and lock.
    pub dir: PathBuf,
    /// The sections served (the URL paths that answer).
    pub sections: Vec<String>,
    /// A token per section as well, in `endpoint-tokens/NAME`.
    pub section_tokens: bool,
    /// Serve on the Unix socket `endpoint.sock` as well.
    pub unix_socket: bool,
    /// Write `endpoint.json`, where `status` and `exec --server` look.
    pub record: bool,
    pub limits: Limits,
}

/// Why the endpoint cannot start (or change its sections). Never holds a
/// token.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error(
        "endpoint address {address} is not a loopback address; use 127.0.0.1:PORT or [::1]:PORT (port 0 for any free port): the AWS SDKs take plain-http credentials from loopback only, and nothing else should reach them"
    )]
    NotLoopback { address: String },
    #[error(
        "endpoint address {text:?} is not an IP address and port; write it as 127.0.0.1:PORT (port 0 for any free port)"
    )]
    BadAddress { text: String },
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "another process serves the endpoint from {} already (its lock {} is held); stop it, or give this one another directory",
        dir.display(), dir.join(files::LOCK).display()
    )]
    InUse { dir: PathBuf },
    #[error("cannot make a token: the system's random source failed ({0})")]
    Random(String),
    #[error("endpoint record {}: {problem}", path.display())]
    Record { path: PathBuf, problem: String },
    /// A private file or directory could not be used (the message names
    /// it and the fix).
    #[error("{0}")]
    Files(String),
}

impl From<PrivateFileError> for EndpointError {
    fn from(error: PrivateFileError) -> Self {
        EndpointError::Files(error.to_string())
    }
}

/// The address in an `endpoint = "127.0.0.1:PORT"` setting: an IP address
/// and a port, on loopback (127.0.0.0/8 or ::1).
pub fn parse_address(text: &str) -> Result<SocketAddr, EndpointError> {
    // Shown with `{:?}`: control characters in it are escaped.
    let address: SocketAddr = text.trim().parse().map_err(|_| EndpointError::BadAddress {
        text: text.to_string(),
    })?;
    check_loopback(address)?;
    Ok(address)
}

fn check_loopback(address: SocketAddr) -> Result<(), EndpointError> {
    if address.ip().is_loopback() {
        Ok(())
    } else {
        Err(EndpointError::NotLoopback {
            address: address.to_string(),
        })
    }
}

/// A running endpoint. Dropping it stops it: the listeners and every
/// connection are closed, the token files, record and socket removed.
pub struct Endpoint {
    address: SocketAddr,
    files: files::Files,
    record: Record,
    write_record: bool,
    section_tokens: bool,
    shared: Arc<server::Shared>,
    listeners: Vec<tokio::task::JoinHandle<()>>,
    _lock: crate::private_file::Lock,
}

/// Starts serving `options.sections` from `source` on the current tokio
/// runtime, and returns once the listeners are bound and the token files
/// (and record) are written.
pub async fn start(
    options: EndpointOptions,
    source: Arc<dyn CredentialSource>,
) -> Result<Endpoint, EndpointError> {
    check_loopback(options.address)?;
    let files = files::Files::new(options.dir.clone());
    let lock = files.lock()?;
    let tcp = tokio::net::TcpListener::bind(options.address)
        .await
        .map_err(|source| EndpointError::Bind {
            address: options.address.to_string(),
            source,
        })?;
    let address = tcp.local_addr().map_err(|source| EndpointError::Bind {
        address: options.address.to_string(),
        source,
    })?;
    let tokens = files.new_tokens(&options.sections, options.section_tokens)?;
    let shared = Arc::new(server::Shared::new(source, tokens, options.limits));
    let record = Record {
        pid: std::process::id(),
        address,
        url: format!("http://{address}{}", route::PREFIX),
        token_file: files.token(),
        section_token_dir: options.section_tokens.then(|| files.section_tokens()),
        unix_socket: options.unix_socket.then(|| files.socket()),
        sections: files::unique(&options.sections)
            .map(str::to_string)
            .collect(),
    };
    // From here on, dropping the endpoint removes what was written.
    let mut endpoint = Endpoint {
        address,
        files,
        record,
        write_record: options.record,
        section_tokens: options.section_tokens,
        shared: Arc::clone(&shared),
        listeners: Vec::new(),
        _lock: lock,
    };
    endpoint
        .listeners
        .push(tokio::spawn(server::accept_loop(tcp, Arc::clone(&shared))));
    if options.unix_socket {
        let unix = endpoint.files.bind_socket()?;
        endpoint
            .listeners
            .push(tokio::spawn(server::accept_loop(unix, Arc::clone(&shared))));
    }
    if endpoint.write_record {
        endpoint.files.write_record(&endpoint.record)?;
    }
    tracing::info!(
        "credentials endpoint on {}{} for {} section(s); token in {}",
        endpoint.record.url,
        endpoint
            .record
            .unix_socket
            .as_ref()
            .map(|s| format!(" and {}", s.display()))
            .unwrap_or_default(),
        endpoint.record.sections.len(),
        endpoint.record.token_file.display()
    );
    Ok(endpoint)
}

impl Endpoint {
    /// The address bound (the port chosen when 0 was asked for).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://ADDRESS/v1/credentials/NAME`: the value for
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub fn url(&self, section: &str) -> String {
        self.record.url_of(section)
    }

    /// The file holding the token that opens every section.
    pub fn token_file(&self) -> &Path {
        &self.record.token_file
    }

    /// The file holding `section`'s own token, when per-section tokens are on.
    pub fn section_token_file(&self, section: &str) -> Option<PathBuf> {
        self.section_tokens
            .then(|| self.files.section_token(section))
    }

    /// What is (or would be) written to `endpoint.json`.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.shared.connections()
    }

    /// Serves `sections` from now on (a config reload): new sections get
    /// their token files, dropped ones lose theirs; the record follows.
    /// Tokens of sections kept stay as they are.
    pub fn set_sections(&mut self, sections: &[String]) -> Result<(), EndpointError> {
        // Token files are written before the lock is taken: requests wait
        // for the swap only.
        let added: Vec<String> = files::unique(sections)
            .filter(|section| !self.shared.serves(section))
            .map(str::to_string)
            .collect();
        let mut tokens = Vec::with_capacity(added.len());
        for section in added {
            let token = self
                .files
                .section_token_for(&section, self.section_tokens)?;
            tokens.push((section, token));
        }
        for dropped in self.shared.replace_sections(sections, tokens) {
            self.files.remove_section_token(&dropped);
        }
        self.record.sections = files::unique(sections).map(str::to_string).collect();
        if self.write_record {
            self.files.write_record(&self.record)?;
        }
        Ok(())
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        for listener in &self.listeners {
            listener.abort();
        }
        self.shared.close_all();
        self.files.remove_all(self.write_record);
    }
}
