//! Benchmark 9: IAM Identity Center sections, against the stand-in
//! (`examples/sso_front`) answering every OIDC and portal call after 50 ms
//! (`--latency-ms`), all calls concurrently.
//!
//! - Cold start to fresh: N sections on one SSO session, no token and no
//!   profile yet: `apply` from spawn to exit, with the sign-in approved by
//!   the benchmark as soon as its code appears (a person who is quick);
//!   the sign-in's polling interval (1 s, the stand-in's shortest) is part
//!   of every N. Then the same N with the token cached (only the
//!   GetRoleCredentials calls), shown beside it.
//! - `credential-process` for an SSO section from a fresh cache.

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::daemon::{Home, accounts_from};
use crate::measure::{run_bounded, under_small_parent, wait_with_usage};
use crate::report::{Table, Verdict, kib_as_mb, median, ms, percentile, verdict};
use crate::sso_front::{self, SsoFront};

const LATENCY_MS: u64 = crate::rig::LATENCY_MS;
const PROCESS_TARGET: Duration = Duration::from_millis(20);

const SESSION: &str = "[sso-session.corp]\nsso_start_url = \"https://d-1234567890.awsapps.com/start\"\nsso_region = \"eu-west-1\"\n";

/// `accounts` × ReadOnly on the session `corp`; `extra`: more keys.
fn config(accounts: &[String], extra: &str) -> String {
    let list: Vec<String> = accounts.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "{SESSION}\n[sso]\nsso_session = \"corp\"\nsso_role_name = \"ReadOnly\"\nsso_account_id = [{}]\n{extra}",
        list.join(", ")
    )
}

/// The user's own credentials file holds a default region (an empty one
/// is re-read twice, 5 ms apart, as a writer may be rewriting it).
fn home(daemon: &Path, front: &SsoFront, config: &str) -> Home {
    Home::with_credentials(config, "[default]\nregion = eu-west-1\n")
        .with_daemon(daemon)
        .with_env("AWS_ENDPOINT_URL_SSO_OIDC", &front.url)
        .with_env("AWS_ENDPOINT_URL_SSO", &front.url)
}

struct Run {
    n: usize,
    /// With the sign-in, and with the token cached.
    cold: Duration,
    cached: Duration,
    cpu: Duration,
    sign_ins: u64,
    role_credentials: u64,
    written: usize,
}

/// `apply` in `home`, approving a sign-in as soon as its code shows: its
/// wall and CPU time.
fn apply(home: &Home, front: &SsoFront) -> Result<(Duration, Duration), String> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let started = Instant::now();
    let mut child = home
        .command(&["apply"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("apply: {e}"))?;
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let approver = {
        let (url, done) = (front.url.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                if let Some(url) = pending(&url) {
                    sso_front::approve(&url);
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut err);
    }
    let usage = wait_with_usage(child);
    let wall = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let _ = approver.join();
    if !usage.status.success() {
        return Err(format!("apply failed ({}): {err}", usage.status));
    }
    Ok((wall, usage.cpu))
}

/// The verification URL of a sign-in waiting at the stand-in, if any.
fn pending(url: &str) -> Option<String> {
    let address = url.strip_prefix("http://")?;
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    use std::io::Write;
    write!(
        stream,
        "GET /__stats HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let body = answer.split_once("\r\n\r\n")?.1;
    let stats: serde_json::Value = serde_json::from_str(body).ok()?;
    stats["pending"][0]["verificationUriComplete"]
        .as_str()
        .map(str::to_string)
}

fn once(daemon: &Path, front: &SsoFront, n: usize) -> Result<Run, String> {
    let accounts = accounts_from(700_000_000_000, n);
    let profiles: Vec<String> = accounts.iter().map(|a| format!("{a}-ReadOnly")).collect();
    let home = home(daemon, front, &config(&accounts, ""));
    front.control(json!({"op": "reset_stats"}));
    let (cold, cpu) = apply(&home, front)?;
    let stats = front.stats();
    let count = |op: &str| stats["calls"][op].as_u64().unwrap_or(0);
    let (sign_ins, role_credentials) = (
        count("StartDeviceAuthorization"),
        count("GetRoleCredentials"),
    );
    let written = home.written(&profiles);
    // The token cached: every profile due again.
    crate::daemon::delete_profiles(&home.credentials(), &profiles);
    let (cached, _) = apply(&home, front)?;
    Ok(Run {
        n,
        cold,
        cached,
        cpu,
        sign_ins,
        role_credentials,
        written,
    })
}

pub fn run(
    daemon: &Path,
    build: bool,
    sizes: &[usize],
    repeats: usize,
    process_runs: usize,
) -> Result<Vec<(Table, serde_json::Value)>, String> {
    crate::example_bin::try_example("sso_front", build)?;
    let latency = LATENCY_MS.to_string();
    let front = SsoFront::start(&["--interval-seconds", "1", "--latency-ms", &latency]);
    // The first run reads the daemon from disk: not a cold start.
    once(daemon, &front, 1)?;
    let mut results: Vec<Run> = Vec::new();
    for &n in sizes {
        let mut runs = Vec::new();
        for _ in 0..repeats {
            runs.push(once(daemon, &front, n)?);
        }
        let walls: Vec<Duration> = runs.iter().map(|r| r.cold).collect();
        let mid = median(&walls);
        results.push(runs.into_iter().find(|r| r.cold == mid).unwrap());
    }
    let (base, base_cached) = (results[0].cold, results[0].cached);
    let mut table = Table::new(
        &format!(
            "9. IAM Identity Center: cold start to fresh (`apply`, no token, N sections on one \
             SSO session, every OIDC and portal call answered after {LATENCY_MS} ms)"
        ),
        &[
            "N",
            "with the sign-in",
            "vs N=1",
            "token cached",
            "vs N=1",
            "daemon CPU",
            "sign-ins",
            "GetRoleCredentials",
            "profiles written",
            "target",
        ],
    );
    let mut figures = Vec::new();
    for r in &results {
        let ratio = r.cold.as_secs_f64() / base.as_secs_f64();
        let cached_ratio = r.cached.as_secs_f64() / base_cached.as_secs_f64();
        let ok =
            r.sign_ins == 1 && r.role_credentials == r.n as u64 && r.written == r.n && ratio <= 3.0;
        table.row(vec![
            r.n.to_string(),
            ms(r.cold),
            format!("{ratio:.2}x"),
            ms(r.cached),
            format!("{cached_ratio:.2}x"),
            ms(r.cpu),
            r.sign_ins.to_string(),
            r.role_credentials.to_string(),
            format!("{}/{}", r.written, r.n),
            verdict(Verdict::of(ok)),
        ]);
        figures.push(json!({
            "n": r.n,
            "cold_ms": r.cold.as_secs_f64() * 1000.0,
            "cached_ms": r.cached.as_secs_f64() * 1000.0,
            "ratio_to_first": ratio,
            "cached_ratio_to_first": cached_ratio,
            "cpu_ms": r.cpu.as_secs_f64() * 1000.0,
            "sign_ins": r.sign_ins,
            "get_role_credentials": r.role_credentials,
            "written": r.written,
        }));
    }
    table.note(format!(
        "Targets: one sign-in (device authorization) whatever N, one GetRoleCredentials per \
         section, every profile written, and N={} in at most 3x the time of N={} with the \
         sign-in. The sign-in is approved by the benchmark as soon as its code is shown; its \
         CreateToken polling (1 s interval) is in every row. \"Token cached\": the same `apply` \
         again with every profile deleted (no sign-in, N GetRoleCredentials in the window of \
         `sts_concurrency` = 32, about N/32 round trips); shown, not judged. Median of {repeats} \
         run(s) per N, each with a new HOME.",
        results.last().map_or(0, |r| r.n),
        results[0].n
    ));
    let mut tables = vec![(table, json!(figures))];
    tables.push(process(daemon, &front, process_runs)?);
    Ok(tables)
}

/// `credential-process` for an SSO section with a fresh session in the
/// runtime cache.
fn process(
    daemon: &Path,
    front: &SsoFront,
    runs: usize,
) -> Result<(Table, serde_json::Value), String> {
    let accounts = accounts_from(750_000_000_000, 1);
    let profile = format!("{}-ReadOnly", accounts[0]);
    let home = home(daemon, front, &config(&accounts, "output = \"process\"\n"));
    apply(&home, front)?;
    front.control(json!({"op": "reset_stats"}));
    let mut walls = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let mut child = home
            .command(&["credential-process", "--profile", &profile])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("credential-process: {e}"))?;
        let (mut out, mut err) = (String::new(), String::new());
        let _ = child.stdout.take().unwrap().read_to_string(&mut out);
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        let usage = wait_with_usage(child);
        walls.push(started.elapsed());
        if !usage.status.success() || !out.contains("\"SessionToken\"") {
            return Err(format!(
                "credential-process failed ({}): {err}",
                usage.status
            ));
        }
    }
    // Its peak RSS from one more run under a small parent (a child's
    // `ru_maxrss` starts at its parent's peak); timed runs stay direct.
    let wanted = home.command(&["credential-process", "--profile", &profile]);
    let mut command = under_small_parent(&wanted);
    command.stdout(Stdio::null()).stderr(Stdio::null());
    let measured = run_bounded(command, Duration::from_secs(30)).usage;
    if !measured.status.success() {
        return Err(format!("credential-process failed ({})", measured.status));
    }
    let peak_kb = measured.max_rss_kb;
    let calls: u64 = front.stats()["calls"]
        .as_object()
        .map(|calls| calls.values().filter_map(|n| n.as_u64()).sum())
        .unwrap_or(0);
    let (m, p99) = (median(&walls), percentile(&walls, 99.0));
    let mut table = Table::new(
        "9b. `credential-process` for an IAM Identity Center section from a fresh cache (process \
         start to exit)",
        &[
            "runs",
            "median",
            "p99",
            "max",
            "peak RSS",
            "OIDC and portal calls",
            "target",
            "",
        ],
    );
    table.row(vec![
        runs.to_string(),
        ms(m),
        ms(p99),
        ms(*walls.iter().max().unwrap()),
        kib_as_mb(peak_kb),
        calls.to_string(),
        format!("median < {}", ms(PROCESS_TARGET)),
        verdict(Verdict::of(m < PROCESS_TARGET && calls == 0)),
    ]);
    table.note(
        "One SSO section with `output = \"process\"`, filled once by `apply` (with its sign-in); \
         then `credential-process --profile NAME` as the AWS CLI runs it, timed from spawn to \
         `wait4`. No call to IAM Identity Center may be made.",
    );
    Ok((
        table,
        json!({
            "runs": runs,
            "median_ms": m.as_secs_f64() * 1000.0,
            "p99_ms": p99.as_secs_f64() * 1000.0,
            "max_rss_kb": peak_kb,
            "calls": calls,
        }),
    ))
}
