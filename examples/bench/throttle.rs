//! Benchmark: a cold start that STS throttles. N sections on one MFA
//! device against a front that answers `Throttling` ("Rate exceeded") to
//! every call beyond its `--max-in-flight` at once, after the usual
//! latency. The daemon's AssumeRole window (AIMD, `sts_concurrency` = 32)
//! must fall to what STS allows and the pass still write every profile,
//! with a bounded number of requests.

use serde_json::json;

use crate::daemon::accounts_from;
use crate::measure;
use crate::report::{Table, Verdict, ms, verdict};
use crate::rig::{LATENCY_MS, Rig};

/// Calls the front answers at once; more are throttled.
pub const MAX_IN_FLIGHT: u64 = 5;

/// The window sizes the daemon logged, in order: `Some(n)` a decrease to
/// n ("STS is throttling AssumeRole: n call(s) at once from now on"),
/// growth lines (debug) as `None` steps counted separately.
fn window_changes(log: &str) -> (Vec<u64>, Vec<u64>) {
    let mut decreases = Vec::new();
    let mut increases = Vec::new();
    for line in log.lines() {
        if let Some(rest) = line.split("STS is throttling AssumeRole: ").nth(1) {
            if let Some(n) = rest.split_whitespace().next().and_then(|n| n.parse().ok()) {
                decreases.push(n);
            }
        } else if let Some(rest) = line.split("AssumeRole concurrency grows to ").nth(1)
            && let Some(n) = rest.split_whitespace().next().and_then(|n| n.parse().ok())
        {
            increases.push(n);
        }
    }
    (decreases, increases)
}

pub fn run(rig: &Rig, n: usize) -> Result<(Table, serde_json::Value), String> {
    let limit = MAX_IN_FLIGHT.to_string();
    let latency = LATENCY_MS.to_string();
    let front = rig.local_front(&["--latency-ms", &latency, "--max-in-flight", &limit])?;
    let profiles = accounts_from(340_000_000_000, n);
    let home = rig.home(&rig.config_at(&front.url, &rig.new_device(), &profiles));
    let codes_before = rig.card.calculations();
    let (status, wall, cpu, log) = measure::apply_with(&home, &["apply", "--log-level", "debug"]);
    let written = home.written(&profiles);
    let stats = front.stats();
    let count = |action: &str| stats["actions"][action].as_u64().unwrap_or(0);
    let (get_session_token, assume_role) = (count("GetSessionToken"), count("AssumeRole"));
    let throttled = count("(over the limit)");
    let requests = stats["total"].as_u64().unwrap_or(0);
    let max_in_flight = stats["max_in_flight"].as_u64().unwrap_or(0);
    let codes = rig.card.calculations() - codes_before;
    let (decreases, increases) = window_changes(&log);
    let lowest = decreases.iter().copied().min();
    let highest_after = increases.iter().copied().max();
    let rate = requests as f64 / wall.as_secs_f64();
    // Every section written, one code, each section's calls bounded by the
    // retries a pass allows (6), and the window fell.
    let bounded = assume_role + throttled <= 6 * n as u64;
    let ok = status.success()
        && written == n
        && codes == 1
        && get_session_token == 1
        && assume_role == n as u64
        && bounded
        && lowest.is_some();
    let window = if decreases.is_empty() {
        "never fell".to_string()
    } else {
        let mut text = format!(
            "32 → {}",
            decreases
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" → ")
        );
        if let Some(high) = highest_after {
            text.push_str(&format!(
                "; grew back by one {} time(s), to {high} at most",
                increases.len()
            ));
        }
        text
    };
    let mut table = Table::new(
        &format!(
            "1c. Cold start against a throttling STS (N={n}, at most {MAX_IN_FLIGHT} calls at \
             once, {LATENCY_MS} ms latency)"
        ),
        &["figure", "value", "target", ""],
    );
    let mut row = |figure: &str, value: String, target: &str, v: Verdict| {
        table.row(vec![
            figure.to_string(),
            value,
            target.to_string(),
            verdict(v),
        ]);
    };
    row(
        "time to all fresh (`apply`, start to exit)",
        format!("{} (exit {})", ms(wall), status.code().unwrap_or(-1)),
        "the pass completes",
        Verdict::of(status.success()),
    );
    row(
        "profiles written",
        format!("{written}/{n}"),
        "all",
        Verdict::of(written == n),
    );
    row(
        "YubiKey codes, GetSessionToken",
        format!("{codes}, {get_session_token}"),
        "1, 1",
        Verdict::of(codes == 1 && get_session_token == 1),
    );
    row(
        "requests sent (all actions)",
        format!("{requests} ({rate:.0}/s)"),
        "",
        Verdict::Info,
    );
    row(
        "AssumeRole answered / throttled",
        format!("{assume_role} / {throttled}"),
        &format!("{n} answered; at most {} requests", 6 * n),
        Verdict::of(assume_role == n as u64 && bounded),
    );
    row(
        "most calls in flight at STS",
        max_in_flight.to_string(),
        "",
        Verdict::Info,
    );
    row(
        "the daemon's AssumeRole window",
        window,
        "falls",
        Verdict::of(lowest.is_some()),
    );
    row("daemon CPU", ms(cpu), "", Verdict::Info);
    table.note(format!(
        "The front (`sts_fault_front --upstream local --latency-ms {LATENCY_MS} --max-in-flight \
         {MAX_IN_FLIGHT}`) answers `Throttling` to a call that arrives while {MAX_IN_FLIGHT} are \
         in progress. The daemon starts at its cap (`sts_concurrency`, 32), halves the window to \
         half of what was in flight when a throttled answer comes (once per round), retries \
         the throttled call after a jittered pause (100 ms doubling, at most 6 tries in a pass) \
         and grows the window by one after a window's worth of successes. The window figures \
         come from the daemon's log (`--log-level debug`)."
    ));
    let figures = json!({
        "n": n,
        "max_in_flight_allowed": MAX_IN_FLIGHT,
        "ok": ok,
        "exit": status.code(),
        "wall_ms": wall.as_secs_f64() * 1000.0,
        "cpu_ms": cpu.as_secs_f64() * 1000.0,
        "written": written,
        "codes": codes,
        "get_session_token": get_session_token,
        "assume_role": assume_role,
        "throttled": throttled,
        "requests": requests,
        "max_in_flight": max_in_flight,
        "window_decreases": decreases,
        "window_increases": increases.len(),
    });
    if !status.success() {
        eprintln!("throttled apply failed:\n{log}");
    }
    Ok((table, figures))
}
