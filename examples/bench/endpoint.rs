//! Benchmark: the local credentials endpoint.
//!
//! 1. Latency from a fresh source (a session in memory, as the daemon's
//!    will be): `requests` GETs with the token, timed from connect (or
//!    send) to the last byte of the answer, on a new connection each (as
//!    botocore asks) and on one kept-alive connection (as the Rust SDK's
//!    pooled client does). Target: median under 2 ms.
//! 2. Memory: a process with the daemon's runtime (two workers) that serves
//!    the endpoint and has answered `requests` requests, against the same
//!    process not serving. Each is a fresh copy of this program
//!    (`bench --endpoint-child serve|idle`), so that nothing else it holds
//!    is counted.
//!
//! Phase 2 adds the daemon's own figures (RSS with the endpoint on and
//! off, idle wake-ups).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::endpoint::{FixedSource, options, session};
use crate::measure;
use crate::report::{Table, Verdict, kib_as_mb, median, ms, percentile, verdict};

const TARGET: Duration = Duration::from_millis(2);

/// `bench --endpoint-child serve|idle`: the process whose memory is measured.
pub const CHILD: &str = "--endpoint-child";

pub fn run(requests: usize) -> Result<(Table, serde_json::Value), String> {
    let runtime = daemon_like_runtime()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let source = Arc::new(FixedSource::with(&[("prod", session("bench"))]));
    let endpoint = runtime
        .block_on(aws_session_daemon::endpoint::start(
            options(dir.path(), &["prod"]),
            source,
        ))
        .map_err(|e| e.to_string())?;
    let token = std::fs::read(endpoint.token_file()).map_err(|e| e.to_string())?;
    let request = request(&token);
    let address = endpoint.address();
    // Warm-up: the first connection pays for the accept task's start.
    for _ in 0..20 {
        fresh_connection(address, &request)?;
    }
    let mut fresh = Vec::with_capacity(requests);
    for _ in 0..requests {
        fresh.push(fresh_connection(address, &request)?);
    }
    let mut kept = Vec::with_capacity(requests);
    let mut stream = connect(address)?;
    for _ in 0..requests {
        let started = Instant::now();
        stream.write_all(&request).map_err(|e| e.to_string())?;
        read_answer(&mut stream)?;
        kept.push(started.elapsed());
    }
    drop(stream);
    drop(endpoint);
    drop(runtime);

    let idle = child_memory("idle", 0)?;
    let started = child_memory("serve", 0)?;
    let serving = child_memory("serve", requests)?;

    let mut table = Table::new(
        "8. Credentials endpoint: latency from a fresh source, and memory",
        &["measure", "requests", "median", "p99", "max", "target", ""],
    );
    for (name, samples) in [
        ("new connection per request", &fresh),
        ("one kept-alive connection", &kept),
    ] {
        let m = median(samples);
        table.row(vec![
            name.to_string(),
            samples.len().to_string(),
            ms(m),
            ms(percentile(samples, 99.0)),
            ms(*samples.iter().max().unwrap_or(&Duration::ZERO)),
            format!("median < {}", ms(TARGET)),
            verdict(Verdict::of(m < TARGET)),
        ]);
    }
    table.note(format!(
        "Memory of a process with the daemon's runtime (2 workers), resident (of it heap and \
         stacks): not serving {} ({}); serving, before any request {} ({}), after {requests} \
         requests on new connections {} ({}), peak {}. The endpoint costs {} resident, {} of it \
         allocated; the rest is its code, paged in.",
        kib_as_mb(idle.rss_kb),
        kib_as_mb(idle.anonymous_kb),
        kib_as_mb(started.rss_kb),
        kib_as_mb(started.anonymous_kb),
        kib_as_mb(serving.rss_kb),
        kib_as_mb(serving.anonymous_kb),
        kib_as_mb(serving.hwm_kb),
        kib_as_mb(serving.rss_kb.saturating_sub(idle.rss_kb)),
        kib_as_mb(serving.anonymous_kb.saturating_sub(idle.anonymous_kb)),
    ));
    table.note(
        "GET /v1/credentials/prod with the token, from this process over loopback, timed from \
         connect (or from sending, on the kept-alive connection) to the last byte of the JSON \
         answer; the source hands out a session from memory.",
    );
    let as_ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let figures = json!({
        "requests": requests,
        "fresh_connection": {
            "median_ms": as_ms(median(&fresh)),
            "p99_ms": as_ms(percentile(&fresh, 99.0)),
        },
        "kept_alive": {
            "median_ms": as_ms(median(&kept)),
            "p99_ms": as_ms(percentile(&kept, 99.0)),
        },
        "rss_idle_kb": idle.rss_kb,
        "rss_started_kb": started.rss_kb,
        "rss_serving_kb": serving.rss_kb,
        "anonymous_idle_kb": idle.anonymous_kb,
        "anonymous_serving_kb": serving.anonymous_kb,
        "hwm_serving_kb": serving.hwm_kb,
    });
    Ok((table, figures))
}

/// The runtime the daemon builds (`commands::daemon::runtime`).
fn daemon_like_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

fn request(token: &[u8]) -> Vec<u8> {
    let mut request = b"GET /v1/credentials/prod HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nAuthorization: ".to_vec();
    request.extend_from_slice(token);
    request.extend_from_slice(b"\r\n\r\n");
    request
}

fn connect(address: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(address).map_err(|e| format!("connect {address}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    Ok(stream)
}

fn fresh_connection(address: SocketAddr, request: &[u8]) -> Result<Duration, String> {
    let started = Instant::now();
    let mut stream = connect(address)?;
    stream.write_all(request).map_err(|e| e.to_string())?;
    read_answer(&mut stream)?;
    Ok(started.elapsed())
}

/// Reads one answer (head, then `Content-Length` bytes); fails unless 200.
fn read_answer(stream: &mut TcpStream) -> Result<(), String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            Ok(_) => return Err("the endpoint closed the connection".into()),
            Err(e) => return Err(format!("reading the answer: {e}")),
        }
    }
    let head = String::from_utf8_lossy(&head);
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("the endpoint answered {head:?}"));
    }
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .ok_or("no Content-Length")?;
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).map_err(|e| e.to_string())?;
    Ok(())
}

/// Starts `bench --endpoint-child MODE`, makes `requests` requests (it
/// must serve for any), and returns its resident and peak memory (KiB).
fn child_memory(mode: &str, requests: usize) -> Result<Memory, String> {
    let mut child = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args([CHILD, mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("bench {CHILD} {mode}: {e}"))?;
    let result = measure_child(&mut child, requests);
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn measure_child(child: &mut Child, requests: usize) -> Result<Memory, String> {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().ok_or("no stdout")?)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["ready"] => {}
        ["ready", address, token_file] => {
            let address: SocketAddr = address.parse().map_err(|e| format!("{e}"))?;
            let token = std::fs::read(token_file).map_err(|e| e.to_string())?;
            let request = request(&token);
            for _ in 0..requests {
                fresh_connection(address, &request)?;
            }
        }
        _ => return Err(format!("bench {CHILD} said {line:?}")),
    }
    // Let the runtime's idle workers settle.
    std::thread::sleep(Duration::from_millis(300));
    let pid = i32::try_from(child.id()).map_err(|e| e.to_string())?;
    let sample = measure::sample(pid).ok_or("no /proc sample of the child")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let anonymous = status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Ok(Memory {
        rss_kb: sample.vm_rss_kb,
        hwm_kb: sample.vm_hwm_kb,
        anonymous_kb: anonymous,
    })
}

/// A process's memory, in KiB.
struct Memory {
    rss_kb: u64,
    hwm_kb: u64,
    /// Heap and stacks: what the process allocated, without the program's
    /// code pages it has touched.
    anonymous_kb: u64,
}

/// `bench --endpoint-child serve|idle`: builds the daemon's runtime, serves
/// the endpoint (`serve`) or not, says `ready [ADDRESS TOKEN_FILE]`, and
/// waits until its standard input closes.
pub fn child_main(args: &[std::ffi::OsString]) -> std::process::ExitCode {
    let serve = args.first().is_some_and(|a| a == "serve");
    let Ok(runtime) = daemon_like_runtime() else {
        return std::process::ExitCode::FAILURE;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let endpoint = serve.then(|| {
        let source = Arc::new(FixedSource::with(&[("prod", session("bench"))]));
        runtime
            .block_on(aws_session_daemon::endpoint::start(
                options(dir.path(), &["prod"]),
                source,
            ))
            .expect("the endpoint starts")
    });
    match &endpoint {
        Some(endpoint) => println!(
            "ready {} {}",
            endpoint.address(),
            endpoint.token_file().display()
        ),
        None => println!("ready"),
    }
    let _ = std::io::stdout().flush();
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    drop(endpoint);
    std::process::ExitCode::SUCCESS
}
