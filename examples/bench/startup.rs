//! Benchmark: where the time of a cold start with one section goes. `apply
//! --log-level debug` against the latency front, with the wall-clock time
//! of the spawn and of the exit taken here, and the stages in between from
//! the timestamps of the daemon's own log lines (microseconds, the same
//! clock).

use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::daemon::accounts_from;
use crate::measure;
use crate::report::{Table, Verdict, median, ms, verdict};
use crate::rig::{LATENCY_MS, Rig};

/// The stages, each ending at the first log line that contains its marker
/// (after the previous stage's line).
const STAGES: [(&str, &str); 7] = [
    (
        "process start: exec, loader, hardening, command line, logging",
        "starting:",
    ),
    (
        "config loaded (read, parsed, expanded, checked)",
        "config loaded:",
    ),
    (
        "plan made (credentials file read and checked, cache read, plan)",
        "planned:",
    ),
    ("code read from the YubiKey (PC/SC)", "code read"),
    ("GetSessionToken (one round trip)", "action=GetSessionToken"),
    ("AssumeRole (one round trip)", "action=AssumeRole"),
    (
        "write: credentials file (lock, temp file, fsync, swap, backups), status",
        "wrote ",
    ),
];

/// `2026-01-02T03:04:05.123456Z` at the start of a log line.
fn timestamp(line: &str) -> Option<SystemTime> {
    let word = line.split_whitespace().next()?;
    let at =
        time::OffsetDateTime::parse(word, &time::format_description::well_known::Rfc3339).ok()?;
    let nanos = u64::try_from(at.unix_timestamp_nanos()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos))
}

/// The stage durations of one run, and the tail (last stage to exit).
fn stages(log: &str, spawned: SystemTime, exited: SystemTime) -> Option<Vec<Duration>> {
    let mut times = Vec::new();
    let mut lines = log.lines();
    let mut previous = spawned;
    for (_, marker) in STAGES {
        let at = lines
            .by_ref()
            .find(|l| l.contains(marker))
            .and_then(timestamp)?;
        times.push(at.duration_since(previous).unwrap_or_default());
        previous = at;
    }
    times.push(exited.duration_since(previous).unwrap_or_default());
    Some(times)
}

pub fn run(rig: &Rig, repeats: usize) -> Result<(Table, serde_json::Value), String> {
    let front = &rig.latency_front;
    let mut runs: Vec<(Duration, Vec<Duration>)> = Vec::new();
    for _ in 0..repeats.max(1) {
        let profiles = accounts_from(360_000_000_000, 1);
        let home = rig.home(&rig.config_at(&front.url, &rig.new_device(), &profiles));
        let spawned = SystemTime::now();
        let (status, wall, _, log) = measure::apply_with(&home, &["apply", "--log-level", "debug"]);
        let exited = SystemTime::now();
        if !status.success() {
            return Err(format!("apply --log-level debug failed ({status}):\n{log}"));
        }
        let Some(times) = stages(&log, spawned, exited) else {
            return Err(format!(
                "the debug log lacks a stage ({:?}):\n{log}",
                STAGES.map(|s| s.1)
            ));
        };
        runs.push((wall, times));
    }
    let walls: Vec<Duration> = runs.iter().map(|r| r.0).collect();
    let mut table = Table::new(
        &format!(
            "1d. Where the cold start of one section goes (`apply --log-level debug`, STS at \
             {LATENCY_MS} ms; median of {} run(s))",
            runs.len()
        ),
        &["stage (ends when)", "median", "share", ""],
    );
    let total = median(&walls);
    let mut figures = Vec::new();
    let labels = STAGES
        .iter()
        .map(|s| s.0)
        .chain(["exit: runtime shut down, process ended"]);
    for (i, label) in labels.enumerate() {
        let samples: Vec<Duration> = runs.iter().map(|r| r.1[i]).collect();
        let m = median(&samples);
        table.row(vec![
            label.to_string(),
            ms(m),
            format!("{:.0} %", 100.0 * m.as_secs_f64() / total.as_secs_f64()),
            verdict(Verdict::Info),
        ]);
        figures.push(json!({ "stage": label, "median_ms": m.as_secs_f64() * 1000.0 }));
    }
    table.row(vec![
        "total (spawn to exit)".to_string(),
        ms(total),
        "100 %".to_string(),
        verdict(Verdict::Info),
    ]);
    table.note(format!(
        "Each stage runs from the end of the previous one to the first debug line that marks its \
         end; the first starts at the spawn (taken by the benchmark), the last ends at the exit. \
         The card and the two STS round trips ({LATENCY_MS} ms each, injected) are the floor; \
         the rest is the daemon's own."
    ));
    Ok((
        table,
        json!({ "total_ms": total.as_secs_f64() * 1000.0, "stages": figures }),
    ))
}
