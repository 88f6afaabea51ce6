//! Logging set-up.
//!
//! Only this crate logs at the requested level; every other crate (the AWS
//! SDK, hyper, rustls) is held at `warn`, because their trace output can
//! include request headers such as the session token. Under systemd
//! (`JOURNAL_STREAM` set) lines carry no colour and no timestamp: the journal
//! adds its own.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

pub fn init(level: &str) -> anyhow::Result<()> {
    let level = level.trim().to_ascii_lowercase();
    let parsed = match level.parse::<tracing::Level>() {
        Ok(parsed) if LEVELS.contains(&level.as_str()) => parsed,
        _ => anyhow::bail!("--log-level {level:?} is not one of error, warn, info, debug, trace"),
    };
    // A target filter, not `EnvFilter`: the filter is fixed by the daemon,
    // and `EnvFilter`'s directive language brings a regex engine along.
    let filter = Targets::new()
        .with_default(tracing::Level::WARN)
        .with_target("aws_session_daemon", parsed);
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    if under_journal {
        tracing_subscriber::registry()
            .with(layer.with_ansi(false).without_time())
            .with(filter)
            .try_init()?;
    } else {
        tracing_subscriber::registry()
            .with(layer.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())))
            .with(filter)
            .try_init()?;
    }
    Ok(())
}
