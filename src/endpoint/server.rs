//! The HTTP side: accepting connections within the limits, and answering
//! one request.
//!
//! Every connection is its own task, served by hyper's HTTP/1 connection
//! with the head limits and the header-read timeout set; the connection
//! table ([`Slots`]) holds one entry per open connection with whether it is
//! in a request and since when it has been idle, so that at the limit the
//! longest-idle one (a slow-loris client still sending its head, a
//! keep-alive client between requests) makes room for a new one. A linear
//! scan of at most `max_connections` entries, done only at the limit.

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use secrecy::ExposeSecret;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::AbortHandle;

use super::route;
use super::token::{Access, Token, Tokens};
use super::{CredentialSource, Limits, Refusal, Served};

/// Lines about refused requests and connections: at most one per interval
/// each, with the count of those not logged.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Connections being refused at once (answered 503 and closed, each
/// within [`REFUSAL_TIME`]); beyond these, a connection is closed unanswered.
const MAX_REFUSING: usize = 64;

/// Time to read a refused connection's request and answer it: closing a
/// socket with a request unread in it resets the connection, and the
/// client would never see the answer.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// What every connection task shares.
pub(crate) struct Shared {
    source: Arc<dyn CredentialSource>,
    tokens: RwLock<Tokens>,
    limits: Limits,
    http: http1::Builder,
    slots: Mutex<Slots>,
    refusing: AtomicUsize,
    refused: LogLimiter,
    crowded: LogLimiter,
    started: Instant,
}

impl Shared {
    pub(crate) fn new(source: Arc<dyn CredentialSource>, tokens: Tokens, limits: Limits) -> Shared {
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_head_bytes.max(8 * 1024))
            .max_header_size(limits.max_head_bytes)
            .max_headers(limits.max_headers)
            .keep_alive(true);
        Shared {
            source,
            tokens: RwLock::new(tokens),
            limits,
            http,
            slots: Mutex::new(Slots::default()),
            refusing: AtomicUsize::new(0),
            refused: LogLimiter::new(LOG_INTERVAL),
            crowded: LogLimiter::new(LOG_INTERVAL),
            started: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn connections(&self) -> usize {
        self.slots().live.len()
    }

    pub(crate) fn serves(&self, section: &str) -> bool {
        self.tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .serves(section)
    }

    /// Serves `keep` from now on: adds the `added` sections with their
    /// tokens, drops the others; returns the names dropped.
    pub(crate) fn replace_sections(
        &self,
        keep: &[String],
        added: Vec<(String, Option<Token>)>,
    ) -> Vec<String> {
        let keep: BTreeSet<&str> = keep.iter().map(String::as_str).collect();
        let mut tokens = self.tokens.write().unwrap_or_else(PoisonError::into_inner);
        let mut dropped = Vec::new();
        tokens.sections.retain(|name, _| {
            let kept = keep.contains(name.as_str());
            if !kept {
                dropped.push(name.clone());
            }
            kept
        });
        tokens.sections.extend(added);
        dropped
    }

    /// Closes every connection (the endpoint stops).
    pub(crate) fn close_all(&self) {
        for (_, slot) in self.slots().live.drain() {
            if let Some(abort) = slot.abort {
                abort.abort();
            }
        }
    }
}

/// A listener: TCP on loopback, or the Unix socket.
pub(crate) trait Listen: Send + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept_one(&self) -> impl Future<Output = std::io::Result<(Self::Stream, Peer)>> + Send;
}

impl Listen for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept_one(&self) -> std::io::Result<(Self::Stream, Peer)> {
        let (stream, peer) = self.accept().await?;
        // Answers are one small write: no waiting for more to send.
        let _ = stream.set_nodelay(true);
        Ok((stream, Peer::Tcp(peer)))
    }
}

impl Listen for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept_one(&self) -> std::io::Result<(Self::Stream, Peer)> {
        let (stream, _) = self.accept().await?;
        Ok((stream, Peer::Unix))
    }
}

/// Who sent a request, for the log.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Peer {
    Tcp(SocketAddr),
    Unix,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Tcp(address) => write!(f, "{address}"),
            Peer::Unix => f.write_str("the Unix socket"),
        }
    }
}

/// Accepts connections until the task is aborted.
pub(crate) async fn accept_loop<L: Listen>(listener: L, shared: Arc<Shared>) {
    loop {
        match listener.accept_one().await {
            Ok((stream, peer)) => admit(&shared, stream, peer),
            Err(e) => {
                // Out of descriptors (EMFILE) or memory: nothing to wait
                // for but time; retrying at once would spin.
                if let Some(more) = shared.crowded.allow(Instant::now()) {
                    tracing::warn!(
                        "endpoint: cannot accept a connection: {e}{}",
                        more_since(more)
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn admit<S>(shared: &Arc<Shared>, stream: S, peer: Peer)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = Arc::new(ConnState::new(shared.now_ms()));
    let admitted = shared
        .slots()
        .admit(shared.limits.max_connections, Arc::clone(&state));
    let Some((id, evicted)) = admitted else {
        if let Some(more) = shared.crowded.allow(Instant::now()) {
            tracing::warn!(
                "endpoint: all {} connections are in a request; refused one from {peer}{}",
                shared.limits.max_connections,
                more_since(more)
            );
        }
        refuse(shared, stream);
        return;
    };
    if evicted && let Some(more) = shared.crowded.allow(Instant::now()) {
        tracing::warn!(
            "endpoint: {} connections open; closed the longest idle to admit one from {peer}{}",
            shared.limits.max_connections,
            more_since(more)
        );
    }
    let guard = SlotGuard {
        shared: Arc::clone(shared),
        id,
    };
    let task_shared = Arc::clone(shared);
    let task = tokio::spawn(async move {
        let _guard = guard;
        connection(task_shared, stream, peer, state).await;
    });
    if let Some(slot) = shared.slots().live.get_mut(&id) {
        slot.abort = Some(task.abort_handle());
    }
}

/// Answers the connection's request 503 and closes it, within
/// [`REFUSAL_TIME`]; closes it at once when [`MAX_REFUSING`] are being
/// refused already.
fn refuse<S>(shared: &Arc<Shared>, stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if shared.refusing.fetch_add(1, Ordering::SeqCst) >= MAX_REFUSING {
        shared.refusing.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let service = service_fn(|_: Request<Incoming>| async {
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy",
                "every connection of the endpoint is in a request; try again".into(),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            Ok::<_, Infallible>(closing(response))
        });
        let connection = shared.http.serve_connection(TokioIo::new(stream), service);
        let _ = tokio::time::timeout(REFUSAL_TIME, connection).await;
        shared.refusing.fetch_sub(1, Ordering::SeqCst);
    });
}

async fn connection<S>(shared: Arc<Shared>, stream: S, peer: Peer, state: Arc<ConnState>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service_shared = Arc::clone(&shared);
    let service = service_fn(move |request: Request<Incoming>| {
        let shared = Arc::clone(&service_shared);
        let state = Arc::clone(&state);
        async move {
            state.busy.store(true, Ordering::SeqCst);
            let response = respond(&shared, &request, peer).await;
            state.idle_since_ms.store(shared.now_ms(), Ordering::SeqCst);
            state.busy.store(false, Ordering::SeqCst);
            Ok::<_, Infallible>(response)
        }
    });
    let connection = shared.http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = tokio::time::sleep(shared.limits.connection_lifetime) => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(shared.limits.request_timeout, connection).await {
                Ok(result) => result,
                Err(_) => return,
            }
        }
    };
    // Timeouts, heads too large, clients gone: hyper has answered what
    // can be answered; nothing for the log above debug.
    if let Err(e) = result {
        tracing::debug!("endpoint: connection from {peer} ended: {e}");
    }
}

/// The answer to one request. Order matters: the token is checked before
/// the path, so that without one nothing about the sections can be learned.
async fn respond(
    shared: &Shared,
    request: &Request<Incoming>,
    peer: Peer,
) -> Response<Full<Bytes>> {
    if request.method() != Method::GET {
        let mut response = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "only GET is served".into(),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return closing(response);
    }
    if !request.body().is_end_stream() {
        return closing(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BodyNotAccepted",
            "a request for credentials has no body".into(),
        ));
    }
    let route = route::section_of(request.uri().path());
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let (access, served) = {
        let tokens = shared.tokens.read().unwrap_or_else(PoisonError::into_inner);
        let section = route.as_deref().ok();
        (
            tokens.check(section, presented),
            section.is_some_and(|s| tokens.serves(s)),
        )
    };
    let refused = |status, code, what: &str, message: &str| {
        if let Some(more) = shared.refused.allow(Instant::now()) {
            tracing::warn!(
                "endpoint: refused a request from {peer}: {what}{}",
                more_since(more)
            );
        }
        error(status, code, message.to_string())
    };
    match access {
        Access::Granted => {}
        Access::NoToken => {
            return refused(
                StatusCode::UNAUTHORIZED,
                "NoToken",
                "no token",
                "no Authorization header: send the content of the endpoint's token file (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)",
            );
        }
        Access::WrongToken => {
            return refused(
                StatusCode::UNAUTHORIZED,
                "WrongToken",
                "a wrong token",
                "the Authorization header holds no token of this endpoint; tokens are new at every start of the endpoint: read the token file again",
            );
        }
        Access::OtherSection => {
            return refused(
                StatusCode::FORBIDDEN,
                "OtherSection",
                "a token for another section",
                "this token opens another section only",
            );
        }
    }
    let section = match route {
        Ok(section) if served => section,
        Ok(_) => {
            return error(
                StatusCode::NOT_FOUND,
                "SectionNotFound",
                "no section by this name is served here; `aws-session-daemon status` lists the served sections".into(),
            );
        }
        Err(not_found) => {
            return error(StatusCode::NOT_FOUND, "NotFound", not_found.message());
        }
    };
    let limit = shared.limits.request_timeout;
    match tokio::time::timeout(limit, shared.source.credentials(&section)).await {
        Ok(Ok(served)) => credentials(&served),
        Ok(Err(Refusal::UnknownSection)) => error(
            StatusCode::NOT_FOUND,
            "SectionNotFound",
            "this section is no longer served".into(),
        ),
        Ok(Err(Refusal::Unavailable {
            reason,
            retry_after,
        })) => {
            let mut response = error(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", reason);
            if let Some(after) = retry_after {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(after.as_secs().max(1)),
                );
            }
            response
        }
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Timeout",
            format!(
                "no fresh session within {} s (a refresh may be waiting for the YubiKey); try again",
                limit.as_secs()
            ),
        ),
    }
}

/// The 200 answer, as the container-credentials protocol has it.
fn credentials(served: &Served) -> Response<Full<Bytes>> {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Body<'a> {
        access_key_id: &'a str,
        secret_access_key: &'a str,
        token: &'a str,
        expiration: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        account_id: Option<&'a str>,
    }
    let session = &served.credentials;
    let body = Body {
        access_key_id: &session.access_key_id,
        secret_access_key: session.secret_access_key.expose_secret(),
        token: session.session_token.expose_secret(),
        expiration: crate::timestamp::rfc3339(session.expiration),
        account_id: served.account_id.as_deref(),
    };
    // The buffer moves into the response; the allocator zeroes it when
    // hyper frees it (hardening::ZeroOnFree).
    match serde_json::to_vec(&body) {
        Ok(json) => json_response(StatusCode::OK, json),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal",
            "the session could not be encoded".into(),
        ),
    }
}

fn error(status: StatusCode, code: &str, message: String) -> Response<Full<Bytes>> {
    let mut body = serde_json::json!({ "Code": code, "Message": message }).to_string();
    body.push('\n');
    json_response(status, body.into_bytes())
}

/// JSON, never to be kept by a cache on the way.
fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `response`, after which the connection is closed (a request the
/// endpoint did not read to its end).
fn closing(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn more_since(more: u64) -> String {
    if more == 0 {
        String::new()
    } else {
        format!(" ({more} more like it since the last such line)")
    }
}

/// One connection's state, for the choice of which to close at the limit.
pub(crate) struct ConnState {
    /// In a request: answering it (not to be closed for another).
    busy: AtomicBool,
    /// When its last request was answered, or it was opened
    /// (milliseconds since the endpoint started).
    idle_since_ms: AtomicU64,
}

impl ConnState {
    fn new(now_ms: u64) -> ConnState {
        ConnState {
            busy: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(now_ms),
        }
    }
}

/// The open connections.
#[derive(Default)]
pub(crate) struct Slots {
    next: u64,
    live: HashMap<u64, Slot>,
}

struct Slot {
    state: Arc<ConnState>,
    /// `None` for the moment between admission and the task's start.
    abort: Option<AbortHandle>,
}

impl Slots {
    /// A slot for a new connection: its id, and whether another connection
    /// was closed to make room. `None` when all `max` are in a request.
    fn admit(&mut self, max: usize, state: Arc<ConnState>) -> Option<(u64, bool)> {
        let mut evicted = false;
        if self.live.len() >= max {
            let victim = self
                .live
                .iter()
                .filter(|(_, slot)| slot.abort.is_some() && !slot.state.busy.load(Ordering::SeqCst))
                .min_by_key(|(_, slot)| slot.state.idle_since_ms.load(Ordering::SeqCst))
                .map(|(id, _)| *id)?;
            if let Some(abort) = self.live.remove(&victim).and_then(|slot| slot.abort) {
                abort.abort();
            }
            evicted = true;
        }
        let id = self.next;
        self.next += 1;
        self.live.insert(id, Slot { state, abort: None });
        Some((id, evicted))
    }
}

/// Frees a connection's slot when its task ends or is aborted.
struct SlotGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.shared.slots().live.remove(&self.id);
    }
}

/// At most one line per interval; the lines not written are counted and
/// reported with the next.
pub(crate) struct LogLimiter {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogLimiter {
    pub(crate) fn new(every: Duration) -> LogLimiter {
        LogLimiter {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(n)` when a line may be written now, `n` lines having been
    /// held back since the last one; `None` when not.
    pub(crate) fn allow(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match state.0 {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                state.1 += 1;
                None
            }
            _ => {
                let held_back = state.1;
                *state = (Some(now), 0);
                Some(held_back)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_limiter_writes_one_line_per_interval_and_counts_the_rest() {
        let limiter = LogLimiter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(limiter.allow(t0), Some(0));
        for i in 1..=5 {
            assert_eq!(limiter.allow(t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(limiter.allow(t0 + Duration::from_secs(10)), Some(5));
        assert_eq!(limiter.allow(t0 + Duration::from_secs(11)), None);
        assert_eq!(limiter.allow(t0 + Duration::from_secs(25)), Some(1));
    }

    #[tokio::test]
    async fn at_the_limit_the_longest_idle_connection_makes_room_and_busy_ones_never_do() {
        let mut slots = Slots::default();
        let mut states = Vec::new();
        for i in 0..3u64 {
            let state = Arc::new(ConnState::new(10 - i));
            let (id, evicted) = slots.admit(3, Arc::clone(&state)).unwrap();
            assert!(!evicted);
            let task = tokio::spawn(std::future::pending::<()>());
            slots.live.get_mut(&id).unwrap().abort = Some(task.abort_handle());
            states.push((id, state, task));
        }
        // The third (idle since 8) is the longest idle: it makes room.
        let (id, evicted) = slots.admit(3, Arc::new(ConnState::new(20))).unwrap();
        assert!(evicted);
        assert!(!slots.live.contains_key(&states[2].0));
        assert!(slots.live.contains_key(&id));
        tokio::task::yield_now().await;
        assert!(states[2].2.is_finished(), "the evicted task is aborted");
        // The new one has no task yet: never chosen. With the other two in
        // a request, a fourth is refused.
        states[0].1.busy.store(true, Ordering::SeqCst);
        states[1].1.busy.store(true, Ordering::SeqCst);
        assert!(slots.admit(3, Arc::new(ConnState::new(30))).is_none());
        assert_eq!(slots.live.len(), 3);
    }
}
