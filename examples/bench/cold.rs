//! Benchmark 1: cold start to fresh. N sections sharing one MFA device, an
//! empty cache and no profile yet: `aws-session-daemon apply` from process
//! start to exit (all profiles written), with the YubiKey CALCULATE count
//! and the STS requests it took.
//!
//! Two STS ends: the latency front (`--upstream local --latency-ms 50`,
//! calls answered concurrently after 50 ms, as from a laptop to AWS), which
//! is what issue #13's target is about, and moto behind the other front,
//! where one Python process answers the calls one at a time.

use std::time::Duration;

use serde_json::json;

use crate::daemon::accounts_from;
use crate::measure;
use crate::report::{Table, Verdict, median, ms, verdict};
use crate::rig::{self, LATENCY_MS, Rig};
use crate::sts_front::StsFront;

/// Which STS the daemon talks to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Sts {
    /// The front that answers after [`LATENCY_MS`].
    Latency,
    /// moto, behind the counting front.
    Moto,
}

pub struct Run {
    pub n: usize,
    pub wall: Duration,
    pub cpu: Duration,
    pub codes: u64,
    pub get_session_token: u64,
    pub assume_role: u64,
    pub max_in_flight: u64,
    pub written: usize,
}

fn front(rig: &Rig, sts: Sts) -> &StsFront {
    match sts {
        Sts::Latency => &rig.latency_front,
        Sts::Moto => &rig.front,
    }
}

fn once(rig: &Rig, sts: Sts, n: usize) -> Result<Run, String> {
    let front = front(rig, sts);
    let profiles = accounts_from(300_000_000_000, n);
    let home = rig.home(&rig.config_at(&front.url, &rig.new_device(), &profiles));
    front.reset_stats();
    let codes_before = rig.card.calculations();
    let (status, wall, cpu, log) = measure::apply(&home);
    if !status.success() {
        return Err(format!("apply with {n} sections failed ({status}):\n{log}"));
    }
    let (get_session_token, assume_role) = rig::counts(front);
    let max_in_flight = front.stats()["max_in_flight"].as_u64().unwrap_or(0);
    Ok(Run {
        n,
        wall,
        cpu,
        codes: rig.card.calculations() - codes_before,
        get_session_token,
        assume_role,
        max_in_flight,
        written: home.written(&profiles),
    })
}

/// Runs each N `repeats` times (fresh HOME and MFA device each time) and
/// keeps the run with the median wall time.
pub fn run(
    rig: &Rig,
    sts: Sts,
    sizes: &[usize],
    repeats: usize,
) -> Result<(Table, serde_json::Value), String> {
    // moto loads its STS backend on the first request, and the first run
    // of the daemon reads its binary from disk: neither is a cold start.
    once(rig, sts, 1)?;
    let mut results: Vec<Run> = Vec::new();
    for &n in sizes {
        let mut runs = Vec::new();
        for _ in 0..repeats {
            runs.push(once(rig, sts, n)?);
        }
        let walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
        let mid = median(&walls);
        let run = runs.into_iter().find(|r| r.wall == mid).unwrap();
        results.push(run);
    }
    let base = results[0].wall;
    let title = match sts {
        Sts::Latency => format!(
            "1. Cold start to fresh at real STS latency (`apply`, empty cache, N sections on one \
             MFA device, every STS call answered after {LATENCY_MS} ms)"
        ),
        Sts::Moto => "1b. Cold start to fresh against moto (one Python process answering the \
                      calls one at a time)"
            .to_string(),
    };
    let mut table = Table::new(
        &title,
        &[
            "N",
            "wall time",
            "vs N=1",
            "daemon CPU",
            "YubiKey codes",
            "GetSessionToken",
            "AssumeRole",
            "most calls in flight at STS",
            "profiles written",
            "target",
        ],
    );
    let mut figures = Vec::new();
    for r in &results {
        let ratio = r.wall.as_secs_f64() / base.as_secs_f64();
        let counts_ok = r.codes == 1
            && r.get_session_token == 1
            && r.assume_role == r.n as u64
            && r.written == r.n;
        // The ratio target is for N=200 at real latency (issue #13); moto
        // answers one call at a time, so there it is shown, not judged.
        let judged = sts == Sts::Latency && r.n <= 200;
        let ok = counts_ok && (!judged || ratio <= 3.0);
        let mark = if judged || !counts_ok {
            verdict(Verdict::of(ok))
        } else {
            "counts: pass".to_string()
        };
        table.row(vec![
            r.n.to_string(),
            ms(r.wall),
            format!("{ratio:.2}x"),
            ms(r.cpu),
            r.codes.to_string(),
            r.get_session_token.to_string(),
            r.assume_role.to_string(),
            r.max_in_flight.to_string(),
            format!("{}/{}", r.written, r.n),
            mark,
        ]);
        figures.push(json!({
            "n": r.n,
            "wall_ms": r.wall.as_secs_f64() * 1000.0,
            "cpu_ms": r.cpu.as_secs_f64() * 1000.0,
            "ratio_to_first": ratio,
            "codes": r.codes,
            "get_session_token": r.get_session_token,
            "assume_role": r.assume_role,
            "max_in_flight": r.max_in_flight,
            "written": r.written,
        }));
    }
    let first = results[0].n;
    table.note(match sts {
        Sts::Latency => format!(
            "Targets: one YubiKey code and one GetSessionToken whatever N, one AssumeRole per \
             section, and N=200 in at most 3x the time of N={first} (N=1000 is shown, not \
             judged). The front answers each call after {LATENCY_MS} ms, all calls concurrently, \
             with fresh credentials, and checks the TOTP codes. Median of {repeats} run(s) per N, \
             each with a new HOME and MFA device. Wall time is from spawning `apply` to its exit; \
             daemon CPU is its user+system time (`wait4`). With `sts_concurrency = 32`, N \
             AssumeRoles take about N/32 rounds of one round trip."
        ),
        Sts::Moto => format!(
            "Counts as above. moto answers one call at a time (about 7 ms each), so there the \
             time grows with N whatever the daemon's concurrency. Median of {repeats} run(s)."
        ),
    });
    Ok((table, json!(figures)))
}
