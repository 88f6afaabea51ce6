//! Logging set-up.
//!
//! Only this crate logs at the requested level; every other crate (the AWS
//! SDK, hyper, rustls) is held at `warn`, because their trace output can
//! include request headers such as the session token. Under systemd
//! (`JOURNAL_STREAM` set) lines carry no colour and no timestamp: the journal
//! adds its own.

use tracing_subscriber::EnvFilter;

const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

pub fn init(level: &str) -> anyhow::Result<()> {
    let level = level.trim().to_ascii_lowercase();
    if !LEVELS.contains(&level.as_str()) {
        anyhow::bail!("--log-level {level:?} is not one of error, warn, info, debug, trace");
    }
    let filter = EnvFilter::new(format!("warn,aws_session_daemon={level}"));
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if under_journal {
        builder.with_ansi(false).without_time().init();
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    Ok(())
}
