//! `scripts/test.sh`'s test step (`scripts/cargo-test.sh`) against a small
//! cargo project made here whose test binaries fail in every way a binary
//! can: a failing unit test in the first binary cargo runs, a failing
//! integration test, a binary that aborts (no test is named), and a
//! passing binary that comes last. Every binary must run, the summary must
//! name each failure, and the exit status must say that something failed.
//! (cargo's default stops at the first failing binary: on a fresh machine
//! one failure hid 126 tests.)

use std::path::Path;
use std::process::Command;

fn write(root: &Path, relative: &str, text: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn every_test_binary_runs_and_the_summary_names_every_failure() {
    let project = tempfile::tempdir().unwrap();
    let root = project.path();
    write(
        root,
        "Cargo.toml",
        "[package]\nname = \"probe\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    write(
        root,
        "src/lib.rs",
        "#[cfg(test)]\nmod tests {\n    #[test]\n    fn unit_fails() { assert_eq!(1 + 1, 3, \"a unit test fails\"); }\n    #[test]\n    fn unit_passes() {}\n}\n",
    );
    write(
        root,
        "tests/a_fails.rs",
        // The second failure's child writes to the terminal while the
        // harness reports: a progress line may be split.
        "#[test]\nfn first_failure() { panic!(\"the first one\"); }\n#[test]\nfn second_failure() {\n    std::process::Command::new(\"sh\").args([\"-c\", \"printf 'a child writes without a newline' >&2\"]).status().unwrap();\n    panic!(\"the second one\");\n}\n#[test]\nfn passes() {}\n",
    );
    write(
        root,
        "tests/b_aborts.rs",
        "#[test]\nfn aborts() { std::process::abort(); }\n",
    );
    write(
        root,
        "tests/c_passes.rs",
        "#[test]\nfn the_last_binary_ran() {}\n",
    );
    let manifest = root.join("Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let lock = Command::new(&cargo)
        .args(["generate-lockfile", "--offline", "--manifest-path"])
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(lock.status.success(), "{lock:?}");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cargo-test.sh");
    let output = Command::new("bash")
        .arg(&script)
        .args(["--offline", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO", &cargo)
        .env("CARGO_TARGET_DIR", root.join("target"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // The run's output is kept in a file, not printed: it looks like a
    // test run's, and would be read as part of the run of this test.
    let log = std::env::temp_dir().join(format!("cargo-test-summary-{}.log", std::process::id()));
    std::fs::write(&log, &text).unwrap();
    let shown = log.display();
    assert!(
        !output.status.success(),
        "a failure must fail the run (see {shown})"
    );
    assert!(
        text.contains("Running tests/c_passes.rs") && text.contains("1 passed; 0 failed"),
        "the binaries after a failing one did not run (see {shown})"
    );
    let summary = text
        .split("== FAILED")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary after the run (see {shown})"));
    for line in [
        "src/lib.rs (unit tests): tests::unit_fails",
        "tests/a_fails.rs: first_failure",
        "tests/a_fails.rs: second_failure",
        "tests/b_aborts.rs: the test binary failed without naming a test",
        "3 test binaries failed",
    ] {
        assert!(
            summary.contains(line),
            "the summary lacks {line:?} (see {shown}):\n{summary}"
        );
    }
    for passed in ["passes", "unit_passes", "the_last_binary_ran"] {
        assert!(
            !summary.contains(&format!(": {passed}\n")),
            "{passed} passed (see {shown}):\n{summary}"
        );
    }
    assert!(
        !summary.contains("tests/c_passes.rs"),
        "a passing binary is named (see {shown}):\n{summary}"
    );
    std::fs::remove_file(&log).unwrap();
}
