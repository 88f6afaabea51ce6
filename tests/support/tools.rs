//! Where the tests find the Python tools they use as real consumers and
//! emulators: `moto_server`, the AWS CLI (`aws`) and a `python3` that has
//! botocore. They live in a project-local virtual environment that
//! `scripts/install-deps.sh` creates, never in the system's Python:
//! `$AWS_SESSION_DAEMON_TEST_ENV`, else `target/test-env` in this checkout
//! (`scripts/test-env.sh` tells the scripts the same).
//!
//! A missing tool fails the test (or the benchmark) with the command that
//! installs it: these tests are never skipped silently.

#![allow(dead_code)] // each test binary uses a part

use std::path::PathBuf;

/// What puts the tools in place.
pub const INSTALL: &str = "run `bash scripts/install-deps.sh` (it creates target/test-env, a \
     Python virtual environment with moto[server], awscli and botocore)";

/// The virtual environment's directory.
pub fn test_env() -> PathBuf {
    match std::env::var_os("AWS_SESSION_DAEMON_TEST_ENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/test-env")),
    }
}

/// The path of `name` in the virtual environment's `bin/`, or what to do
/// when it is not there.
pub fn try_tool(name: &str) -> Result<PathBuf, String> {
    let path = test_env().join("bin").join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{} is missing: {INSTALL}", path.display()))
    }
}

fn tool(name: &str) -> PathBuf {
    try_tool(name).unwrap_or_else(|e| panic!("{e}"))
}

/// `moto_server` (PyPI `moto[server]`), the STS emulator.
pub fn moto_server() -> PathBuf {
    tool("moto_server")
}

/// The AWS CLI (PyPI `awscli`).
pub fn aws() -> PathBuf {
    tool("aws")
}

/// The virtual environment's `python3`, which imports botocore.
pub fn python3() -> PathBuf {
    tool("python3")
}

/// The libfaketime preload library (Debian's `libfaketime`, which
/// scripts/install-deps.sh installs), for a wall clock the test sets.
pub fn libfaketime() -> PathBuf {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/faketime/libfaketimeMT.so.1",
        "/usr/local/lib/faketime/libfaketimeMT.so.1",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "libfaketime is missing (looked in {candidates:?}): apt-get install libfaketime \
                 (scripts/install-deps.sh does); the clock tests need it and are not skipped"
            )
        })
}
