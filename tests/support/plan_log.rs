//! The plan a daemon pass acted on, as its trace log shows it (`plan: {…}`,
//! the same JSON `plan --json` prints), for tests that the commands and the
//! daemon plan from the same observation.

#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `run --log-level trace` until its first pass has logged its plan,
/// then stops it; returns that plan.
pub fn first_pass_plan(mut command: Command) -> serde_json::Value {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = command
        .args(["run", "--log-level", "trace"])
        .stdout(std::process::Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("starting the daemon");
    let started = Instant::now();
    let plan = loop {
        let text = std::fs::read_to_string(log.path()).unwrap_or_default();
        if let Some(json) = text
            .lines()
            .find_map(|line| line.split_once("plan: ").map(|(_, json)| json.to_string()))
            && let Ok(plan) = serde_json::from_str(&json)
        {
            break plan;
        }
        if started.elapsed() > Duration::from_secs(20) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("the daemon logged no plan:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = child.kill();
    let _ = child.wait();
    plan
}

/// `plan`'s JSON without what depends on the instant it was made: `now`,
/// and every time that is `now` (the due time and next pass of work to do
/// now) becomes `"now"`.
pub fn without_the_instant(mut plan: serde_json::Value) -> serde_json::Value {
    fn replace(value: &mut serde_json::Value, now: &serde_json::Value) {
        match value {
            v if v == now => *v = serde_json::Value::from("now"),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| replace(v, now)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| replace(v, now)),
            _ => {}
        }
    }
    let now = plan["now"].take();
    replace(&mut plan, &now);
    plan
}

/// `plan --json`'s exit code is 0, 1 (invalid sections) or 2 (pending with
/// --detailed-exitcode); anything else is a failure of the command.
pub fn plan_json(mut command: Command) -> serde_json::Value {
    let output = command.args(["plan", "--json"]).output().unwrap();
    assert!(
        output.status.code().is_some_and(|c| c <= 1),
        "plan failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("plan --json")
}
