//! Records the git revision for `--version`, where the source is a git checkout.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let revision = Command::new("git")
        .args(["rev-parse", "--short=10", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let package = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let version = match revision {
        Some(revision) => format!("{package} ({revision})"),
        None => package,
    };
    println!("cargo:rustc-env=AWS_SESSION_DAEMON_VERSION={version}");
}
