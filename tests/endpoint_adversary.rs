//! The credentials endpoint against clients that mean harm: no token, a
//! wrong token, another section's token, a flood of them, a 1 MB header,
//! too many headers, a body, a slow-loris client holding 1,000
//! connections, `../` paths and their percent-encoded spellings, a
//! non-loopback address. Each is refused with a clear answer; none keeps a
//! good client from being answered within a bound; no secret (session or
//! token) reaches the log or an error body.

#[path = "support/endpoint.rs"]
mod endpoint;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_session_daemon::endpoint::{EndpointError, Limits, parse_address, path_of};
use endpoint::{FixedSource, Reply, Server, assert_no_secret, exchange, get, options, session};

/// A good client is answered within this, whatever else goes on.
const GOOD_CLIENT_BOUND: Duration = Duration::from_secs(2);

fn two_sections(dir: &std::path::Path, per_section: bool) -> (Server, Arc<FixedSource>) {
    let source = Arc::new(FixedSource::with(&[
        ("a", session("a")),
        ("b", session("b")),
    ]));
    let mut opts = options(dir, &["a", "b"]);
    opts.section_tokens = per_section;
    (Server::start(opts, source.clone()), source)
}

/// Every secret of the endpoint: the sessions and the tokens.
fn secrets(server: &Server, source: &FixedSource) -> Vec<String> {
    let mut secrets = source.secrets();
    secrets.push(String::from_utf8(server.token()).unwrap());
    for section in ["a", "b"] {
        if let Ok(token) = std::fs::read(server.record.token_file_of(section)) {
            secrets.push(String::from_utf8(token).unwrap());
        }
    }
    secrets
}

fn assert_refused(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    let json = reply.json();
    assert_eq!(json["Code"], code, "{reply:?}");
    assert!(
        json["Message"].as_str().is_some_and(|m| m.len() > 10),
        "no explanation: {reply:?}"
    );
}

#[test]
fn requests_without_the_right_token_are_refused_and_logged_once_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let (server, source) = two_sections(dir.path(), true);
    let a = path_of("a");
    let b_token = server.section_token("b");
    let wrong = b"0000000000000000000000000000000000000000000000000000000000000000".to_vec();
    let mut bodies = String::new();
    let mut check = |reply: Reply, status, code| {
        assert_refused(&reply, status, code);
        bodies.push_str(&reply.head);
        bodies.push_str(&reply.body);
    };
    check(get(server.address, &a, None), 401, "NoToken");
    check(get(server.address, &a, Some(&wrong)), 401, "WrongToken");
    check(get(server.address, &a, Some(b"")), 401, "WrongToken");
    // "Bearer TOKEN" is not the protocol: the SDKs send the token alone.
    let mut bearer = b"Bearer ".to_vec();
    bearer.extend_from_slice(&server.token());
    check(get(server.address, &a, Some(&bearer)), 401, "WrongToken");
    // b's token opens b, and neither a nor a section that does not exist.
    check(get(server.address, &a, Some(&b_token)), 403, "OtherSection");
    check(
        get(server.address, &path_of("nope"), Some(&b_token)),
        403,
        "OtherSection",
    );
    // Without a token nothing tells a served section from another.
    check(get(server.address, &path_of("nope"), None), 401, "NoToken");
    assert_eq!(
        get(server.address, &path_of("b"), Some(&b_token)).status,
        200
    );
    assert_eq!(get(server.address, &a, Some(&server.token())).status, 200);

    // A flood: every request answered, one log line for all of it.
    let started = Instant::now();
    for _ in 0..300 {
        assert_eq!(get(server.address, &a, Some(&wrong)).status, 401);
    }
    let flood = started.elapsed();
    let log = server.log();
    let refused = log
        .lines()
        .filter(|l| l.contains("refused a request"))
        .count();
    assert!(
        flood < Duration::from_secs(10),
        "300 refusals took {flood:?}: the one-line-per-10-s check below needs them faster"
    );
    assert_eq!(refused, 1, "one line for 307 refusals in {flood:?}:\n{log}");
    assert!(log.contains("refused a request from 127.0.0.1:"), "{log}");
    let mut all = secrets(&server, &source);
    all.push(String::from_utf8(wrong).unwrap());
    assert_no_secret(&log, &all, "the log");
    assert_no_secret(&bodies, &all, "the refusals");
}

#[test]
fn dot_dot_paths_and_every_other_spelling_are_not_found_and_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let (server, source) = two_sections(dir.path(), false);
    let token = server.token();
    for target in [
        "/v1/credentials/../a",
        "/v1/credentials/a/../b",
        "/v1/credentials/..",
        "/v1/credentials/%2e%2e",
        "/v1/credentials/%2E%2E/a",
        "/v1/credentials/..%2Fa",
        "/v1/credentials/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/v1/credentials/.%2e",
        "/v1/credentials/%61",
        "/v1/credentials/a%00",
        "/v1/credentials/a%0D%0AX-Injected:%20yes",
        "/v1/credentials/%1B%5D0%3Bowned%07",
        "/v1/credentials/",
        "/v1/credentials//a",
        "/v1/credentials/a/",
        "/../../etc/passwd",
        "/v1/credentials%2Fa",
        "/",
    ] {
        let reply = get(server.address, target, Some(&token));
        assert!(
            reply.status == 404 || reply.status == 400,
            "{target}: {reply:?}"
        );
        if reply.status == 404 {
            assert!(reply.json()["Message"].is_string(), "{target}: {reply:?}");
        }
        let tail = target.rsplit('/').next().unwrap();
        assert!(
            tail.len() < 3 || !reply.body.contains(tail),
            "{target} is echoed: {reply:?}"
        );
        assert!(!reply.head.contains("X-Injected"), "{reply:?}");
    }
    // The one spelling still works, and the path's query is ignored.
    assert_eq!(
        get(server.address, "/v1/credentials/a?x=..", Some(&token)).status,
        200
    );
    assert_no_secret(&server.log(), &secrets(&server, &source), "the log");
}

#[test]
fn heads_too_large_too_many_headers_bodies_and_other_methods_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _source) = two_sections(dir.path(), false);
    let token = String::from_utf8(server.token()).unwrap();

    // A 1 MB header: 431 after the first 8 KiB, the rest never read.
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let mut request = format!(
            "GET /v1/credentials/a HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\nX-Big: "
        )
        .into_bytes();
        request.resize(request.len() + 1024 * 1024, b'a');
        request.extend_from_slice(b"\r\n\r\n");
        // The server stops reading: the write fails or stalls; either is fine.
        let _ = writer.write_all(&request);
    });
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the answer to a 1 MB header: {e}"),
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    sender.join().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "a 1 MB header: {answer:?}"
    );
    assert!(
        started.elapsed() < GOOD_CLIENT_BOUND,
        "{:?}",
        started.elapsed()
    );

    // 40 headers (an SDK sends fewer than 10).
    let mut request = b"GET /v1/credentials/a HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..40 {
        request.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    assert_eq!(exchange(server.address, &request).unwrap().status, 431);

    // A body, announced or chunked, and methods other than GET.
    let token = String::from_utf8(server.token()).unwrap();
    for (request, status, code) in [
        (
            format!(
                "GET /v1/credentials/a HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\nContent-Length: 5\r\n\r\nhello"
            ),
            413,
            "BodyNotAccepted",
        ),
        (
            format!(
                "GET /v1/credentials/a HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            ),
            413,
            "BodyNotAccepted",
        ),
        (
            format!(
                "POST /v1/credentials/a HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\nContent-Length: 0\r\n\r\n"
            ),
            405,
            "MethodNotAllowed",
        ),
        (
            format!(
                "DELETE /v1/credentials/a HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n\r\n"
            ),
            405,
            "MethodNotAllowed",
        ),
    ] {
        let reply = exchange(server.address, request.as_bytes()).unwrap();
        assert_refused(&reply, status, code);
    }
    // Not HTTP at all.
    let reply = exchange(
        server.address,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
    );
    assert!(reply.is_err() || reply.unwrap().status == 400);
    assert_eq!(
        get(server.address, &path_of("a"), Some(&server.token())).status,
        200
    );
}

/// Raises this process's open-file limit to `want` (or the hard limit).
fn raise_open_files(want: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < want {
            limit.rlim_cur = want.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
    limit.rlim_cur
}

/// One slow-loris connection: a request head sent a byte at a time.
struct Loris {
    stream: Option<TcpStream>,
}

impl Loris {
    fn open(address: SocketAddr) -> Loris {
        let stream = TcpStream::connect(address).ok().and_then(|mut s| {
            s.write_all(b"GET /v1/credentials/a HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .ok()?;
            s.set_nonblocking(true).ok()?;
            Some(s)
        });
        Loris { stream }
    }

    /// Sends one more byte; false when the server has closed it.
    fn drip(&mut self) -> bool {
        let Some(stream) = &mut self.stream else {
            return false;
        };
        let mut buf = [0u8; 512];
        match stream.read(&mut buf) {
            Ok(_) => return false, // an answer (408/503) or the end
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
        stream.write(b"a").is_ok()
    }
}

#[test]
fn a_slow_loris_client_holding_1000_connections_does_not_keep_a_good_client_out() {
    let limit = raise_open_files(4096);
    assert!(
        limit >= 1400,
        "the test needs 1,400 open files; the hard limit is {limit}"
    );
    let dir = tempfile::tempdir().unwrap();
    let (server, source) = two_sections(dir.path(), false);
    let address = server.address;
    let token = server.token();
    let attacking = Arc::new(AtomicBool::new(true));

    let attack = {
        let attacking = Arc::clone(&attacking);
        std::thread::spawn(move || {
            let mut lorises: Vec<Loris> = (0..1000).map(|_| Loris::open(address)).collect();
            let mut reopened = 0usize;
            while attacking.load(Ordering::SeqCst) {
                for loris in &mut lorises {
                    if !loris.drip() {
                        *loris = Loris::open(address);
                        reopened += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            reopened
        })
    };
    // Let the attack fill every slot, then ask as a good client, for
    // longer than the header-read timeout (5 s).
    std::thread::sleep(Duration::from_millis(1500));
    let mut slowest = Duration::ZERO;
    let mut peak = 0;
    let asked = Instant::now();
    let mut answered = 0;
    while asked.elapsed() < Duration::from_secs(8) {
        let started = Instant::now();
        let reply = get(address, &path_of("a"), Some(&token));
        let took = started.elapsed();
        assert_eq!(
            reply.status, 200,
            "a good client during the attack: {reply:?}"
        );
        slowest = slowest.max(took);
        answered += 1;
        peak = peak.max(server.with(|e| e.connections()));
        std::thread::sleep(Duration::from_millis(200));
    }
    attacking.store(false, Ordering::SeqCst);
    let reopened = attack.join().unwrap();
    assert!(
        slowest < GOOD_CLIENT_BOUND,
        "the slowest good request took {slowest:?}"
    );
    assert!(answered >= 20, "{answered} answers in 8 s");
    assert!(peak <= 256, "{peak} connections open at once");
    assert!(
        reopened >= 744,
        "the attack's connections beyond the limit were not closed ({reopened} reopened)"
    );
    let log = server.log();
    let crowded = log
        .lines()
        .filter(|l| l.contains("closed the longest idle"))
        .count();
    assert!(crowded >= 1, "{log}");
    assert!(crowded <= 3, "the crowding is logged once per 10 s:\n{log}");
    assert_no_secret(&log, &secrets(&server, &source), "the log");
}

/// Sections `slow` (answered after `delay`) and `fast`, within `limits`.
fn slow_and_fast(dir: &std::path::Path, delay: Duration, limits: Limits) -> Server {
    let mut source = FixedSource::with(&[("slow", session("slow")), ("fast", session("fast"))]);
    source.delay.insert("slow".into(), delay);
    let mut opts = options(dir, &["slow", "fast"]);
    opts.limits = limits;
    Server::start(opts, Arc::new(source))
}

#[test]
fn a_slow_source_holds_only_its_own_requests_and_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        request_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let server = slow_and_fast(dir.path(), Duration::from_secs(60), limits);
    let token = server.token();
    let address = server.address;
    let waiting: Vec<_> = (0..50)
        .map(|_| {
            let token = token.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                (
                    get(address, &path_of("slow"), Some(&token)),
                    started.elapsed(),
                )
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(get(address, &path_of("fast"), Some(&token)).status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    for waiter in waiting {
        let (reply, took) = waiter.join().unwrap();
        assert_refused(&reply, 503, "Timeout");
        assert!(took < Duration::from_secs(4), "{took:?}");
    }
}

#[test]
fn when_every_connection_is_in_a_request_a_new_one_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_connections: 4,
        ..Limits::default()
    };
    let server = slow_and_fast(dir.path(), Duration::from_secs(3), limits);
    let token = server.token();
    let address = server.address;
    let busy: Vec<_> = (0..4)
        .map(|_| {
            let token = token.clone();
            std::thread::spawn(move || get(address, &path_of("slow"), Some(&token)).status)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let refused = get(address, &path_of("fast"), Some(&token));
    assert_refused(&refused, 503, "Busy");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    for status in busy {
        assert_eq!(status.join().unwrap(), 200);
    }
    assert_eq!(get(address, &path_of("fast"), Some(&token)).status, 200);
    assert!(
        server
            .log()
            .contains("connections are in a request; refused one")
    );
}

#[test]
fn a_non_loopback_address_is_refused_with_the_fix() {
    for text in [
        "0.0.0.0:0",
        "192.168.1.10:9911",
        "[::]:0",
        "8.8.8.8:80",
        "[fe80::1]:80",
    ] {
        let error = parse_address(text).unwrap_err();
        assert!(
            matches!(error, EndpointError::NotLoopback { .. }),
            "{text}: {error}"
        );
        let message = error.to_string();
        assert!(
            message.contains("127.0.0.1:PORT") && message.contains("loopback"),
            "{message}"
        );
    }
    for text in [
        "localhost:80",
        "127.0.0.1",
        "::1",
        "127.0.0.1:99999",
        "",
        "\u{1b}[2J:80",
    ] {
        let error = parse_address(text).unwrap_err();
        assert!(
            matches!(error, EndpointError::BadAddress { .. }),
            "{text:?}: {error}"
        );
        assert!(!error.to_string().contains('\u{1b}'), "{error}");
    }
    assert_eq!(parse_address("127.0.0.1:0").unwrap().port(), 0);
    assert!(parse_address("127.1.2.3:9911").is_ok());
    assert!(parse_address("[::1]:9911").is_ok());

    // start() refuses it too, before anything is written.
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&dir.path().join("run"), &["a"]);
    opts.address = "0.0.0.0:0".parse().unwrap();
    let error = Server::try_start(opts, Arc::new(FixedSource::default()))
        .err()
        .expect("a non-loopback bind");
    assert!(error.contains("not a loopback address"), "{error}");
    assert!(!dir.path().join("run").exists(), "nothing written");
}
