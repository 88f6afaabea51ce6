//! Benchmark 1: cold start to fresh. N sections sharing one MFA device, an
//! empty cache and no profile yet: `aws-session-daemon apply` from process
//! start to exit (all profiles written), with the YubiKey CALCULATE count
//! and the STS requests it took.

use std::time::Duration;

use serde_json::json;

use crate::daemon::accounts_from;
use crate::measure;
use crate::report::{Table, Verdict, median, ms, verdict};
use crate::rig::Rig;

pub struct Run {
    pub n: usize,
    pub wall: Duration,
    pub cpu: Duration,
    pub codes: u64,
    pub get_session_token: u64,
    pub assume_role: u64,
    pub written: usize,
}

fn once(rig: &Rig, n: usize) -> Result<Run, String> {
    let profiles = accounts_from(300_000_000_000, n);
    let home = rig.home(&rig.config(&rig.new_device(), &profiles));
    rig.front.reset_stats();
    let codes_before = rig.card.calculations();
    let (status, wall, cpu, log) = measure::apply(&home);
    if !status.success() {
        return Err(format!("apply with {n} sections failed ({status}):\n{log}"));
    }
    let (get_session_token, assume_role) = rig.counts();
    Ok(Run {
        n,
        wall,
        cpu,
        codes: rig.card.calculations() - codes_before,
        get_session_token,
        assume_role,
        written: home.written(&profiles),
    })
}

/// Runs each N `repeats` times (fresh HOME and MFA device each time) and
/// keeps the run with the median wall time.
pub fn run(
    rig: &Rig,
    sizes: &[usize],
    repeats: usize,
) -> Result<(Table, serde_json::Value), String> {
    // moto loads its STS backend on the first request: not part of a daemon's cold start.
    once(rig, 1)?;
    let mut results: Vec<Run> = Vec::new();
    for &n in sizes {
        let mut runs = Vec::new();
        for _ in 0..repeats {
            runs.push(once(rig, n)?);
        }
        let walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
        let mid = median(&walls);
        let run = runs.into_iter().find(|r| r.wall == mid).unwrap();
        results.push(run);
    }
    let base = results[0].wall;
    let mut table = Table::new(
        "1. Cold start to fresh (`apply`, empty cache, N sections on one MFA device)",
        &[
            "N",
            "wall time",
            "vs N=1",
            "daemon CPU",
            "YubiKey codes",
            "GetSessionToken",
            "AssumeRole",
            "profiles written",
            "target",
        ],
    );
    let mut figures = Vec::new();
    for r in &results {
        let ratio = r.wall.as_secs_f64() / base.as_secs_f64();
        let ok = r.codes == 1
            && r.get_session_token == 1
            && r.assume_role == r.n as u64
            && r.written == r.n
            && ratio <= 3.0;
        table.row(vec![
            r.n.to_string(),
            ms(r.wall),
            format!("{ratio:.2}x"),
            ms(r.cpu),
            r.codes.to_string(),
            r.get_session_token.to_string(),
            r.assume_role.to_string(),
            format!("{}/{}", r.written, r.n),
            verdict(Verdict::of(ok)),
        ]);
        figures.push(json!({
            "n": r.n,
            "wall_ms": r.wall.as_secs_f64() * 1000.0,
            "cpu_ms": r.cpu.as_secs_f64() * 1000.0,
            "ratio_to_first": ratio,
            "codes": r.codes,
            "get_session_token": r.get_session_token,
            "assume_role": r.assume_role,
            "written": r.written,
        }));
    }
    table.note(format!(
        "Targets: one YubiKey code and one GetSessionToken whatever N, one AssumeRole per section, \
         and N={} in at most 3x the time of N={}. Median of {repeats} run(s) per N, each with a new \
         HOME and MFA device. Wall time is from spawning `apply` to its exit; daemon CPU is its \
         user+system time (`wait4`).",
        results.last().map_or(0, |r| r.n),
        results[0].n
    ));
    Ok((table, json!(figures)))
}
