//! One observation per pass, measured on the commands a user runs:
//!
//! - `apply` with one owned section in a file of many other profiles (700-
//!   character tokens, as the editor benchmark makes them): time from
//!   process start to exit, peak RSS, bytes read from the file per pass as
//!   a multiple of its size, and reads (each read is one parse), from the
//!   daemon's debug log (`credfile` logs every read with its size);
//! - `run`: passes per refresh (a profile deleted by hand: the pass that
//!   restores it, and none for the daemon's own write) and plans per pass,
//!   counted in the daemon's debug log.
//!
//! The STS is the in-process fast STS (no network latency), codes come from
//! `mfa_process`.

use std::path::Path;
use std::time::Duration;

use crate::daemon::{Home, Running, accounts, org_config};
use crate::fast_sts::FastSts;
use crate::measure;
use crate::report::{Table, Verdict, ms, verdict};

/// A credentials file of `sections` profiles (the editor benchmark's) with
/// the owned section's profile expired in it.
fn file_with(sections: usize, owned: &str) -> String {
    let mut text = crate::editor::generate(sections);
    text.push_str(&format!(
        "\n[{owned}]\naws_access_key_id = ASIAOWNEDOWNEDOWNED0\naws_secret_access_key = old\naws_session_token = old\nx_security_token_expires = 2026-01-01T00:00:00Z\n"
    ));
    text
}

/// What one `apply` cost.
struct Apply {
    wall: Duration,
    rss_kb: u64,
    bytes_read: u64,
    reads: usize,
    size: u64,
}

/// A HOME whose daemon takes its codes from `mfa_process` and its
/// sessions from `sts`, with the `org` sections of `accounts`.
fn home_for(daemon: &Path, sts: &FastSts, accounts: &[String]) -> Home {
    Home::new(&org_config(
        &sts.url,
        "mfa_process = \"echo 123456\"",
        accounts,
    ))
    .with_daemon(daemon)
}

fn apply_once(daemon: &Path, sts: &FastSts, sections: usize) -> Result<Apply, String> {
    let owned = accounts(1);
    let home = home_for(daemon, sts, &owned);
    home.write_credentials(&file_with(sections, &owned[0]));
    // A file no program wrote a moment ago (its metadata alone proves it
    // unchanged): a user's credentials file between refreshes.
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(home.credentials())
        .and_then(|f| f.set_modified(hour_ago))
        .map_err(|e| format!("setting the file's time: {e}"))?;
    let size = std::fs::metadata(home.credentials())
        .map_err(|e| e.to_string())?
        .len();
    let log = home.path().join("apply.log");
    // Spawned by a small parent: a child's peak RSS starts at its parent's.
    let wanted = home.command(&["apply", "--log-level", "debug"]);
    let mut command = measure::under_small_parent(&wanted);
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?);
    let started = std::time::Instant::now();
    let usage = measure::run_bounded(command, Duration::from_secs(60)).usage;
    let wall = started.elapsed();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    if !usage.status.success() || !text.contains("wrote 1 profile(s)") {
        return Err(format!("apply failed ({}):\n{text}", usage.status));
    }
    let reads: Vec<u64> = text
        .lines()
        .filter_map(|l| l.split("read ").nth(1))
        .filter_map(|rest| rest.strip_suffix(')').map(|_| rest))
        .filter_map(|rest| rest.split(" bytes of ").next()?.parse().ok())
        .collect();
    Ok(Apply {
        wall,
        rss_kb: usage.max_rss_kb,
        bytes_read: reads.iter().sum(),
        reads: reads.len(),
        size,
    })
}

fn median<T: Copy + Ord>(mut values: Vec<T>) -> T {
    values.sort();
    values[values.len() / 2]
}

/// Passes and plans counted in a running daemon's debug log while profiles
/// are deleted by hand, `deletions` times.
fn run_counts(daemon: &Path, sts: &FastSts, deletions: usize) -> Result<(f64, f64), String> {
    let accounts = accounts(20);
    let home = home_for(daemon, sts, &accounts);
    let running = Running::start(&home, &["run", "--log-level", "debug"]);
    let first = measure::wait_until(Duration::from_secs(30), || {
        running.log().contains("wrote 20 profile(s)")
    });
    first.ok_or_else(|| format!("no first pass:\n{}", running.log()))?;
    std::thread::sleep(Duration::from_millis(500));
    let passes_before = running.log().matches("pass begins").count();
    for round in 0..deletions {
        let profile = format!("[{}]", accounts[round % accounts.len()]);
        if !home.delete_section_by_hand(&profile) {
            return Err(format!("{profile} missing:\n{}", running.log()));
        }
        measure::wait_until(Duration::from_secs(5), || home.text().contains(&profile))
            .ok_or_else(|| format!("not restored:\n{}", running.log()))?;
        std::thread::sleep(Duration::from_millis(300));
    }
    let log = running.log();
    let passes = log.matches("pass begins").count();
    let plans = log.matches("planned:").count();
    let per_refresh = (passes - passes_before) as f64 / deletions as f64;
    Ok((per_refresh, plans as f64 / passes as f64))
}

pub fn run(daemon: &Path, quick: bool) -> Result<(Table, serde_json::Value), String> {
    let sts = FastSts::start(3600);
    let repeats = if quick { 3 } else { 7 };
    let mut table = Table::new(
        "One observation per pass: `apply` end to end, one owned section",
        &[
            "profiles in the file",
            "file",
            "apply (median)",
            "peak RSS",
            "bytes read / file",
            "reads (parses)",
            "target",
        ],
    );
    let mut json = serde_json::Map::new();
    let mut small = None;
    for sections in [100, 10_000] {
        let runs = (0..repeats)
            .map(|_| apply_once(daemon, &sts, sections))
            .collect::<Result<Vec<_>, _>>()?;
        let wall = median(runs.iter().map(|r| r.wall).collect());
        let rss_kb = median(runs.iter().map(|r| r.rss_kb).collect());
        let size = runs[0].size;
        let ratio = median(
            runs.iter()
                .map(|r| r.bytes_read * 100 / r.size.max(1))
                .collect(),
        ) as f64
            / 100.0;
        let reads = median(runs.iter().map(|r| r.reads).collect());
        let limit_kb = 3 * size / 1024 + 20 * 1024;
        let target = if sections == 100 {
            small = Some(wall);
            format!("reads 1×: {}", verdict(Verdict::of(ratio <= 1.0)))
        } else {
            let base = small.unwrap_or(wall);
            let ok = wall <= base * 3 && rss_kb <= limit_kb && ratio <= 1.0;
            format!(
                "≤ 3× the 100-profile apply ({:.1}×), RSS ≤ 3× file + 20 MB ({:.1} MB), reads 1×: {}",
                wall.as_secs_f64() / base.as_secs_f64(),
                limit_kb as f64 / 1024.0,
                verdict(Verdict::of(ok))
            )
        };
        table.row(vec![
            sections.to_string(),
            format!("{:.1} MB", size as f64 / 1e6),
            ms(wall),
            format!("{:.1} MB", rss_kb as f64 / 1024.0),
            format!("{ratio:.2}×"),
            reads.to_string(),
            target,
        ]);
        json.insert(
            format!("apply_{sections}"),
            serde_json::json!({
                "file_bytes": size,
                "wall_ms": wall.as_secs_f64() * 1000.0,
                "peak_rss_kb": rss_kb,
                "bytes_read_per_file": ratio,
                "reads": reads,
            }),
        );
    }
    let (per_refresh, per_pass) = run_counts(daemon, &sts, if quick { 3 } else { 10 })?;
    table.note(format!(
        "`run`, a profile deleted by hand: {per_refresh:.2} pass(es) per refresh (target 1: the daemon's own write starts none), {per_pass:.2} plan(s) per pass (target 1): {}",
        verdict(Verdict::of(per_refresh <= 1.0 && per_pass <= 1.0))
    ));
    json.insert("run_passes_per_refresh".into(), per_refresh.into());
    json.insert("run_plans_per_pass".into(), per_pass.into());
    Ok((table, serde_json::Value::Object(json)))
}
