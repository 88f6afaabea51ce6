//! Test-support programs (`examples/`): the virtual YubiKey and the STS
//! fault front, and for the benchmark program the daemon itself. Built once
//! per process with `cargo build` (a no-op when fresh), so a filtered
//! `cargo test --test X` never runs a stale or missing program.
//!
//! The programs are found in this process's own profile directory: a test
//! binary is `target/PROFILE/deps/NAME-HASH`, the benchmark
//! `target/PROFILE/examples/bench`; both are two levels below it.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The path of example `name`, built for this binary's profile.
pub fn path(name: &str) -> PathBuf {
    try_example(name, true).unwrap_or_else(|e| panic!("{e}"))
}

/// The path of example `name`, built first unless `build` is false.
pub fn try_example(name: &str, build: bool) -> Result<PathBuf, String> {
    program(
        &["--example", name],
        Path::new("examples").join(name),
        build,
    )
}

/// The daemon's binary, built first unless `build` is false (integration
/// tests have it already: `CARGO_BIN_EXE_aws-session-daemon`).
pub fn try_daemon(build: bool) -> Result<PathBuf, String> {
    program(
        &["--bin", "aws-session-daemon"],
        PathBuf::from("aws-session-daemon"),
        build,
    )
}

/// `target/PROFILE`, the directory of this process's profile.
pub fn profile_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} is not in target/PROFILE/*/", exe.display()))
}

fn program(target: &[&str], relative: PathBuf, build: bool) -> Result<PathBuf, String> {
    static BUILT: Mutex<Option<HashMap<Vec<String>, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    let key: Vec<String> = target.iter().map(|s| s.to_string()).collect();
    if let Some(path) = built.get(&key) {
        return Ok(path.clone());
    }
    let profile_dir = profile_dir()?;
    if build {
        cargo_build(&profile_dir, target)?;
    }
    let binary = profile_dir.join(relative);
    if !binary.exists() {
        return Err(format!(
            "{} is missing{}",
            binary.display(),
            if build { " after building it" } else { "" }
        ));
    }
    built.insert(key, binary.clone());
    Ok(binary)
}

fn cargo_build(profile_dir: &Path, target: &[&str]) -> Result<(), String> {
    let target_dir = profile_dir.parent().ok_or("no target directory")?;
    let mut build = Command::new(env!("CARGO"));
    // Cargo runs tests and `cargo run` with variables describing this
    // package (CARGO_MANIFEST_DIR, CARGO_PKG_*, OUT_DIR...). Some
    // dependencies' build scripts watch them (ring: CARGO_MANIFEST_DIR), so
    // passing them on would rebuild half the dependency tree, twice per run.
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
        .args(["build", "--quiet"])
        .args(target)
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let what = format!("cargo build {}", target.join(" "));
    let status = build
        .status()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed"))
    }
}
