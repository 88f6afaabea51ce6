//! A daemon command confined to one case's files: its config and
//! credentials file named on the command line, and an environment holding
//! only PATH, HOME and the runtime directory (`HOME/run`), so that nothing
//! of the user running the tests (or of the CI machine) leaks in. Shared by
//! tests/bad_input.rs and the hostile-input benchmark.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};

/// Adds `--config CONFIG --credentials-file CREDENTIALS` to `command` (after
/// the arguments it has) and confines its environment to `home`.
pub fn confine<'c>(
    command: &'c mut Command,
    home: &Path,
    config: &Path,
    credentials: &Path,
) -> &'c mut Command {
    command
        .arg("--config")
        .arg(config)
        .arg("--credentials-file")
        .arg(credentials)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .stdin(Stdio::null())
}
