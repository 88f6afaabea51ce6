//! Benchmark: the size of the daemon binary the benchmarks ran, as built
//! and with its symbols stripped (`strip -o` to a temporary file, when
//! `strip` is installed). How each release-profile option changes the size
//! and the build time is measured by `examples/bench/profiles.sh`.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::report::{Table, Verdict, verdict};

/// Issue #13: under 8 MB stripped.
const TARGET_BYTES: u64 = 8_000_000;

fn mb(bytes: u64) -> String {
    format!("{:.2} MB ({bytes} B)", bytes as f64 / 1e6)
}

pub fn run(daemon: &Path) -> Result<(Table, serde_json::Value), String> {
    let size = std::fs::metadata(daemon)
        .map_err(|e| format!("{}: {e}", daemon.display()))?
        .len();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let stripped_path = dir.path().join("aws-session-daemon");
    let stripped = Command::new("strip")
        .arg("-o")
        .arg(&stripped_path)
        .arg(daemon)
        .status()
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&stripped_path).ok())
        .map(|m| m.len());
    let mut table = Table::new(
        "6. The binary",
        &["binary", "as built", "stripped (`strip`)", "target", ""],
    );
    table.row(vec![
        format!("`{}`", daemon.display()),
        mb(size),
        stripped.map_or("(no `strip`)".to_string(), mb),
        "stripped < 8 MB".to_string(),
        verdict(match stripped {
            Some(bytes) => Verdict::of(bytes < TARGET_BYTES),
            None => Verdict::of(size < TARGET_BYTES),
        }),
    ]);
    table.note(
        "The release profile in Cargo.toml sets how it is built; `examples/bench/profiles.sh` \
         builds each option from clean and records size and build time.",
    );
    Ok((
        table,
        json!({ "path": daemon.display().to_string(), "bytes": size, "stripped_bytes": stripped }),
    ))
}
