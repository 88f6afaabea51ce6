//! aws-session-daemon: keeps AWS MFA and role sessions fresh in the shared
//! credentials file, with TOTP codes read from a YubiKey's OATH applet.
//!
//! The program is a reconciler: *observe* (config, credentials file, clock,
//! key), *decide* ([`plan`], a pure function), *act* (card, STS, file write),
//! *wait* (file events, key events or the next deadline).

mod cli;
mod commands;
pub mod config;
pub mod credentials;
pub(crate) mod daemon;
pub mod endpoint;
pub mod hardening;
pub mod keyring;
pub mod logging;
pub mod oath;
mod private_file;
pub mod retry;
pub mod secret;
pub mod session;
pub(crate) mod session_bus;
pub(crate) mod session_cache;
pub(crate) mod sso;
pub mod sts;
pub(crate) mod text;
pub mod timestamp;

/// The program: parse the command line, set up logging, run the command.
/// `main.rs` only calls this.
pub fn run() -> std::process::ExitCode {
    commands::main()
}

/// The version shown by `--version`: the package version, plus the git
/// revision when built from a git checkout (see build.rs).
pub const VERSION: &str = env!("AWS_SESSION_DAEMON_VERSION");

/// Every block is zeroed before it is freed (see [`hardening`]).
#[global_allocator]
static ALLOCATOR: hardening::ZeroOnFree = hardening::ZeroOnFree;
