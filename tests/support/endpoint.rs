//! For the credentials endpoint's tests: an endpoint served on a thread of
//! its own with its log captured ([`Server`]), a credential source with
//! sessions fixed by the test ([`FixedSource`], e.g. role sessions from
//! moto: [`moto_role_session`]), and a raw HTTP/1.1 client that sends
//! exactly the bytes a test gives it, hostile ones included ([`get`],
//! [`exchange`]).

#![allow(dead_code)] // each test binary uses a part

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_session_daemon::endpoint::{
    self, CredentialSource, Endpoint, EndpointOptions, Limits, Record, Refusal, Served,
};
use aws_session_daemon::secret::{ExposeSecret, SecretString};
use aws_session_daemon::session::SessionCredentials;
use futures_util::future::BoxFuture;

/// Sessions by section, handed out after `delay`; sections named in
/// `refuse` get a 503 with that reason.
#[derive(Default)]
pub struct FixedSource {
    pub sessions: BTreeMap<String, Served>,
    pub refuse: BTreeMap<String, String>,
    pub delay: BTreeMap<String, Duration>,
    pub calls: AtomicUsize,
}

impl FixedSource {
    pub fn with(sessions: &[(&str, SessionCredentials)]) -> FixedSource {
        FixedSource {
            sessions: sessions
                .iter()
                .map(|(name, credentials)| {
                    (
                        name.to_string(),
                        Served {
                            credentials: credentials.clone(),
                            account_id: Some("210987654321".to_string()),
                        },
                    )
                })
                .collect(),
            ..FixedSource::default()
        }
    }

    /// Every secret it can hand out.
    pub fn secrets(&self) -> Vec<String> {
        self.sessions
            .values()
            .flat_map(|s| {
                [
                    s.credentials.secret_access_key.expose_secret().to_string(),
                    s.credentials.session_token.expose_secret().to_string(),
                ]
            })
            .collect()
    }
}

impl CredentialSource for FixedSource {
    fn credentials<'a>(&'a self, section: &'a str) -> BoxFuture<'a, Result<Served, Refusal>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if let Some(delay) = self.delay.get(section) {
                tokio::time::sleep(*delay).await;
            }
            if let Some(reason) = self.refuse.get(section) {
                return Err(Refusal::Unavailable {
                    reason: reason.clone(),
                    retry_after: Some(Duration::from_secs(30)),
                });
            }
            self.sessions
                .get(section)
                .cloned()
                .ok_or(Refusal::UnknownSection)
        })
    }
}

/// A session whose secrets are unique to `tag` (easy to look for in logs).
pub fn session(tag: &str) -> SessionCredentials {
    SessionCredentials {
        access_key_id: format!("ASIA{:0>16}", tag.to_uppercase().replace(['-', '_'], "")),
        secret_access_key: SecretString::from(format!("secret-key-of-{tag}-7f3a9c")),
        session_token: SecretString::from(format!("session-token-of-{tag}-e81b40")),
        expiration: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    }
}

/// A role session from moto (AssumeRole of `arn:aws:iam::210987654321:role/ROLE`),
/// whose caller identity names the role.
pub fn moto_role_session(moto_url: &str, role: &str) -> SessionCredentials {
    use aws_session_daemon::config::RoleSettings;
    use aws_session_daemon::sts::{Endpoint as StsEndpoint, SigningKeys, StsClients};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let keys = SigningKeys::long_term(
            "AKIAI44QH8DHBEXAMPLE",
            SecretString::from("je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"),
        );
        let role = RoleSettings {
            arn: format!("arn:aws:iam::210987654321:role/{role}"),
            duration: 3600,
            session_name: format!("{role}-session"),
            source_identity: None,
            external_id: None,
            policy_arns: Vec::new(),
            policy: None,
        };
        StsClients::new()
            .assume_role(
                &keys,
                &StsEndpoint::new("us-east-1", Some(moto_url.to_string())),
                &role,
                None,
                time::OffsetDateTime::now_utc(),
            )
            .await
            .expect("AssumeRole at moto")
    })
}

/// Options for an endpoint on 127.0.0.1, any port, serving `sections`
/// from `dir`, with the record.
pub fn options(dir: &Path, sections: &[&str]) -> EndpointOptions {
    EndpointOptions {
        address: "127.0.0.1:0".parse().unwrap(),
        dir: dir.to_path_buf(),
        sections: sections.iter().map(|s| s.to_string()).collect(),
        section_tokens: false,
        unix_socket: false,
        record: true,
        limits: Limits::default(),
    }
}

type Job = Box<dyn FnOnce(&mut Endpoint) + Send>;

/// An endpoint served on a thread of its own (a single-threaded runtime:
/// whatever the endpoint does, it does there), with everything it logs at
/// debug level captured. Stopped when dropped.
pub struct Server {
    pub address: SocketAddr,
    pub record: Record,
    log: Arc<Mutex<Vec<u8>>>,
    jobs: Option<tokio::sync::mpsc::UnboundedSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Server {
    pub fn start(options: EndpointOptions, source: Arc<dyn CredentialSource>) -> Server {
        Server::try_start(options, source).unwrap_or_else(|e| panic!("endpoint: {e}"))
    }

    pub fn try_start(
        options: EndpointOptions,
        source: Arc<dyn CredentialSource>,
    ) -> Result<Server, String> {
        let log = Arc::new(Mutex::new(Vec::new()));
        let writer = LogWriter(Arc::clone(&log));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (jobs_tx, mut jobs) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let thread = std::thread::spawn(move || {
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .finish();
            let _default = tracing::subscriber::set_default(subscriber);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut endpoint = match endpoint::start(options, source).await {
                    Ok(endpoint) => endpoint,
                    Err(e) => {
                        let _ = started_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = started_tx.send(Ok((endpoint.address(), endpoint.record().clone())));
                while let Some(job) = jobs.recv().await {
                    job(&mut endpoint);
                }
            });
        });
        let (address, record) = started_rx
            .recv()
            .map_err(|_| "the endpoint's thread ended".to_string())??;
        Ok(Server {
            address,
            record,
            log,
            jobs: Some(jobs_tx),
            thread: Some(thread),
        })
    }

    /// Runs `job` on the endpoint, on its thread, and returns its result.
    pub fn with<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Endpoint) -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        let job: Job = Box::new(move |endpoint| {
            let _ = tx.send(job(endpoint));
        });
        self.jobs.as_ref().unwrap().send(job).ok().unwrap();
        rx.recv().unwrap()
    }

    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap()).into_owned()
    }

    pub fn token(&self) -> Vec<u8> {
        std::fs::read(&self.record.token_file).expect("the token file")
    }

    pub fn section_token(&self, section: &str) -> Vec<u8> {
        std::fs::read(self.record.token_file_of(section)).expect("the section's token file")
    }

    pub fn url(&self, section: &str) -> String {
        self.record.url_of(section)
    }

    pub fn path(&self, section: &str) -> String {
        endpoint::path_of(section)
    }

    pub fn token_file(&self) -> PathBuf {
        self.record.token_file.clone()
    }

    /// Stops it (as dropping does) and waits until it has.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut();
    }
}

/// An answer as read off the wire.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// `GET path` with `Authorization: token` (none when `None`), on a new
/// connection closed after the answer.
pub fn get(address: SocketAddr, path: &str, token: Option<&[u8]>) -> Reply {
    let mut request =
        format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n").into_bytes();
    if let Some(token) = token {
        request.extend_from_slice(b"Authorization: ");
        request.extend_from_slice(token);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    exchange(address, &request).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Sends `request` as it is on a new connection and reads the answer to
/// the end (the connection must be closed by the server: `Connection:
/// close`).
pub fn exchange(address: SocketAddr, request: &[u8]) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(request)?;
    read_reply(&mut stream)
}

/// Reads an answer to its end from `stream`.
pub fn read_reply(stream: &mut impl Read) -> std::io::Result<Reply> {
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no HTTP answer: {text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status: {head:?}")))?;
    Ok(Reply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    })
}

/// Fails the test if any of `secrets` appears in `text`.
pub fn assert_no_secret(text: &str, secrets: &[String], what: &str) {
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret ({}…) is in {what}:\n{text}",
            &secret[..secret.len().min(6)]
        );
    }
}

/// The mode bits of `path` (not following a link).
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}
