//! Test-support programs (`examples/`): the virtual YubiKey and the STS
//! fault front. Built once per test process with `cargo build --example`
//! (a no-op when fresh), so a filtered `cargo test --test X` never runs a
//! stale or missing program.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// The path of example `name`, built for this test binary's profile.
pub fn path(name: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/PROFILE/deps/TEST-HASH -> target/PROFILE
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary is in target/PROFILE/deps");
    let target_dir = profile_dir.parent().expect("target dir");
    let mut build = Command::new(env!("CARGO"));
    // Cargo runs tests with variables describing this package
    // (CARGO_MANIFEST_DIR, CARGO_PKG_*, OUT_DIR...). Some dependencies'
    // build scripts watch them (ring: CARGO_MANIFEST_DIR), so passing them
    // on would rebuild half the dependency tree, twice per run.
    for (variable, _) in std::env::vars_os() {
        let variable = variable.to_string_lossy();
        let set_by_cargo_for_tests = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "OUT_DIR",
        ]
        .iter()
        .any(|prefix| variable.starts_with(prefix));
        if set_by_cargo_for_tests {
            build.env_remove(variable.as_ref());
        }
    }
    build
        .args(["build", "--quiet", "--example", name])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build
        .status()
        .unwrap_or_else(|e| panic!("run cargo build --example {name}: {e}"));
    assert!(status.success(), "cargo build --example {name} failed");
    let binary = profile_dir.join("examples").join(name);
    assert!(
        binary.exists(),
        "{} missing after building it",
        binary.display()
    );
    built.insert(name.to_string(), binary.clone());
    binary
}
