//! The benchmark program (`examples/bench.rs`) in its quick mode, so that CI
//! runs it: it must run to the end, and its figures must meet the targets
//! that are counts or ratios, never wall time (CI machines are shared and
//! build with debug assertions): one YubiKey code and one GetSessionToken
//! whatever the number of sections, one AssumeRole per section, every
//! profile written and restored, a throttled pass that narrows its window
//! and completes, `credential-process` without an STS call, hostile inputs
//! without a panic or a stall, an idle daemon that does not poll, one
//! IAM Identity Center sign-in for any number of SSO sections.

#[path = "support/example_bin.rs"]
mod example_bin;

use std::process::Command;

#[test]
fn the_quick_benchmark_runs_and_meets_its_count_targets() {
    let bench = example_bin::path("bench");
    // The programs it starts, built for this profile like the other tests'.
    example_bin::path("sts_fault_front");
    example_bin::path("virtual_yubikey");
    example_bin::path("sso_front");
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("figures.json");
    let output = Command::new(&bench)
        .args(["--quick", "--no-build", "--daemon"])
        .arg(env!("CARGO_BIN_EXE_aws-session-daemon"))
        .arg("--json")
        .arg(&json_path)
        .output()
        .expect("run the benchmark");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench --quick failed:\n{stdout}\n{stderr}"
    );
    eprintln!("{stdout}");
    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();

    for key in ["cold", "cold_moto"] {
        let cold = figures[key].as_array().expect("cold-start figures");
        assert!(cold.len() >= 2, "{figures}");
        for run in cold {
            let n = run["n"].as_u64().unwrap();
            assert_eq!(
                run["codes"], 1,
                "{n} sections must cost one YubiKey code: {run}"
            );
            assert_eq!(run["get_session_token"], 1, "{run}");
            assert_eq!(run["assume_role"], n, "{run}");
            assert_eq!(run["written"], n, "{run}");
        }
    }

    let startup = figures["startup"]["stages"]
        .as_array()
        .expect("start-up stages");
    assert_eq!(startup.len(), 8, "{figures}");

    let throttle = &figures["throttle"];
    let n = throttle["n"].as_u64().unwrap();
    assert_eq!(
        throttle["exit"], 0,
        "the throttled pass must complete: {throttle}"
    );
    assert_eq!(throttle["written"], n, "{throttle}");
    assert_eq!(throttle["codes"], 1, "{throttle}");
    assert_eq!(throttle["assume_role"], n, "{throttle}");
    assert!(
        throttle["throttled"].as_u64().unwrap() > 0
            && !throttle["window_decreases"].as_array().unwrap().is_empty(),
        "the front must throttle and the window fall: {throttle}"
    );
    assert!(
        throttle["requests"].as_u64().unwrap() <= 1 + 6 * n,
        "at most 6 tries per section: {throttle}"
    );

    let process = &figures["process"];
    assert_eq!(process["runs"], 20, "{process}");
    assert_eq!(
        process["sts_calls"], 0,
        "a fresh cache needs no STS call: {process}"
    );

    // IAM Identity Center: one sign-in whatever N, one GetRoleCredentials
    // per section; credential-process from a fresh cache calls nothing.
    let sso = figures["sso_cold"]
        .as_array()
        .expect("SSO cold-start figures");
    assert!(sso.len() >= 2, "{figures}");
    for run in sso {
        let n = run["n"].as_u64().unwrap();
        assert_eq!(run["sign_ins"], 1, "{run}");
        assert_eq!(run["get_role_credentials"], n, "{run}");
        assert_eq!(run["written"], n, "{run}");
    }
    assert_eq!(figures["sso_process"]["calls"], 0, "{figures}");

    let hostile = figures["hostile"]["cases"]
        .as_array()
        .expect("hostile inputs");
    assert!(hostile.len() >= 10, "{figures}");
    for case in hostile {
        assert!(case["problem"].is_null(), "{case}");
    }

    assert!(figures["size"]["bytes"].as_u64().unwrap() > 0, "{figures}");

    for change in ["deleted", "added"] {
        assert_eq!(figures["reaction"][change]["trials"], 10, "{figures}");
    }

    // Episodes of activity per minute: a thread that polls every few
    // seconds makes 20 or more; at rest the daemon wakes about once a
    // minute, so a 30 s window holds at most one or two. The same with
    // the credentials endpoint listening: it adds no timer.
    for (name, endpoint) in [("idle", false), ("idle_endpoint", true)] {
        let idle = &figures[name];
        assert_eq!(idle["sections"], 200, "{idle}");
        assert_eq!(idle["endpoint"], endpoint, "{idle}");
        let per_minute = idle["wakeups_per_minute"].as_f64().unwrap();
        assert!(
            per_minute <= 8.0,
            "an idle daemon ({name}) woke up {per_minute:.1} times a minute: {idle}"
        );
    }

    let editor = figures["editor"].as_array().expect("editor figures");
    assert!(
        editor
            .iter()
            .all(|e| e["write_tmpfs_ms"].as_f64().is_some()),
        "{figures}"
    );
}
