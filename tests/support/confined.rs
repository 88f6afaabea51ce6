//! A daemon command confined to one case's files: its config and
//! credentials file named on the command line, and an environment holding
//! only PATH, HOME and the runtime directory (`HOME/run`), so that nothing
//! of the user running the tests (or of the CI machine) leaks in. Shared by
//! tests/bad_input.rs and the hostile-input benchmark.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};

/// Adds `--config CONFIG` to `command` (after the arguments it has), names
/// CREDENTIALS in `$AWS_SHARED_CREDENTIALS_FILE` (the one way every command
/// that reads a credentials file takes it, while the config commands take
/// no `--credentials-file`), and confines the environment to `home`.
pub fn confine<'c>(
    command: &'c mut Command,
    home: &Path,
    config: &Path,
    credentials: &Path,
) -> &'c mut Command {
    command
        .arg("--config")
        .arg(config)
        .env_clear()
        .env("AWS_SHARED_CREDENTIALS_FILE", credentials)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .stdin(Stdio::null())
}
