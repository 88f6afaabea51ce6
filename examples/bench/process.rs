//! Benchmark: `credential-process` from a fresh cache. The AWS CLI and the
//! SDKs run `aws-session-daemon credential-process --profile NAME` each time
//! they need a profile with `output = "process"`; with the session fresh in
//! the runtime cache it must answer in well under the time a user notices.
//! A section is filled once by `apply`, then the command runs `runs` times,
//! each timed from spawn to exit.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::daemon::accounts_from;
use crate::measure::{self, wait_with_usage};
use crate::report::{Table, Verdict, kib_as_mb, median, ms, percentile, verdict};
use crate::rig::Rig;

const TARGET: Duration = Duration::from_millis(20);

pub fn run(rig: &Rig, runs: usize) -> Result<(Table, serde_json::Value), String> {
    // No latency: the fill is not what is measured.
    let front = rig.local_front(&[])?;
    let profile = accounts_from(350_000_000_000, 1);
    let config = format!(
        "output = \"process\"\n{}",
        rig.config_at(&front.url, &rig.new_device(), &profile)
    );
    let home = rig.home(&config);
    let (status, _, _, log) = measure::apply(&home);
    if !status.success() {
        return Err(format!("apply for credential-process failed:\n{log}"));
    }
    front.reset_stats();
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    let mut peak_kb = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let mut child = home
            .command(&["credential-process", "--profile", &profile[0]])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("credential-process: {e}"))?;
        let mut out = String::new();
        let mut err = String::new();
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let _ = stdout.read_to_string(&mut out);
        let _ = stderr.read_to_string(&mut err);
        let usage = wait_with_usage(child);
        let wall = started.elapsed();
        if !usage.status.success() || !out.contains("\"SessionToken\"") {
            return Err(format!(
                "credential-process failed ({}): {err}",
                usage.status
            ));
        }
        walls.push(wall);
        cpus.push(usage.cpu);
        peak_kb = peak_kb.max(usage.max_rss_kb);
    }
    let sts_calls = front.stats()["total"].as_u64().unwrap_or(0);
    let (m, p95) = (median(&walls), percentile(&walls, 95.0));
    let mut table = Table::new(
        "5. `credential-process` from a fresh cache (process start to exit)",
        &[
            "runs",
            "median",
            "p95",
            "max",
            "CPU (median)",
            "peak RSS",
            "STS calls",
            "target",
            "",
        ],
    );
    table.row(vec![
        runs.to_string(),
        ms(m),
        ms(p95),
        ms(*walls.iter().max().unwrap()),
        ms(median(&cpus)),
        kib_as_mb(peak_kb),
        sts_calls.to_string(),
        format!("median < {}", ms(TARGET)),
        verdict(Verdict::of(m < TARGET && sts_calls == 0)),
    ]);
    table.note(
        "One section with `output = \"process\"`, filled once by `apply`; then `credential-process \
         --profile NAME` as the AWS CLI runs it, stdout and stderr read to the end, timed from \
         spawn to `wait4`. No STS call and no YubiKey may be involved.",
    );
    let figures = json!({
        "runs": runs,
        "median_ms": m.as_secs_f64() * 1000.0,
        "p95_ms": p95.as_secs_f64() * 1000.0,
        "cpu_median_ms": median(&cpus).as_secs_f64() * 1000.0,
        "max_rss_kb": peak_kb,
        "sts_calls": sts_calls,
    });
    Ok((table, figures))
}
