//! Logging set-up.
//!
//! Only this program's crates (the daemon, `credfile`, `ykoath`) log at the
//! requested level; every other crate (the AWS SDK, hyper, rustls) is held
//! at `warn`, because their trace output can
//! include request headers such as the session token. Under systemd
//! (`JOURNAL_STREAM` set) lines carry no colour and no timestamp: the journal
//! adds its own; when standard error is the journal's stream, each line goes
//! to the journal at its own priority ([`journal`]).

mod journal;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// The crates whose log lines hold no secret by design (every message is
/// written for it), logged at the level asked for.
const OWN_CRATES: [&str; 3] = ["aws_session_daemon", "credfile", "ykoath"];

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
        .with_targets(OWN_CRATES.map(|target| (target, parsed)));
    let fmt = tracing_subscriber::fmt::format().with_target(false);
    if let Some(journal) = journal::connect() {
        // The journal stamps each entry with the time itself.
        let layer = tracing_subscriber::fmt::layer()
            .event_format(journal::WithSection(fmt.without_time()))
            .with_ansi(false)
            .with_writer(journal);
        tracing_subscriber::registry()
            .with(layer)
            .with(filter)
            .try_init()?;
        return Ok(());
    }
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    if under_journal {
        tracing_subscriber::registry()
            .with(layer.event_format(fmt.without_time()).with_ansi(false))
            .with(filter)
            .try_init()?;
    } else {
        tracing_subscriber::registry()
            .with(
                layer
                    .event_format(fmt)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .with(filter)
            .try_init()?;
    }
    Ok(())
}
