//! systemd's watchdog (`WatchdogSec=` in the unit): the loop says it is
//! alive, and systemd restarts a daemon that stops saying so.
//!
//! The rule that makes it worth having: `WATCHDOG=1` is sent only by the
//! loop itself, when a pass starts and while it waits between passes, never
//! by a timer task of its own. A loop that is stuck (a card that stopped
//! answering, a lock held by a hung process, a runtime thread blocked, a
//! pass that never ends) then sends nothing, and systemd restarts it. The
//! idle wait is cut into naps of half the interval, so that an idle loop
//! keeps pinging.
//!
//! A pass may legitimately outlast the unit's interval when the config asks
//! for long waits (many `mfa_session_duration = 0` sections, each a TOTP
//! step apart; a `process_timeout` of minutes). Before such a pass the loop
//! asks systemd for a longer limit (`WATCHDOG_USEC=`, the pass's worst case
//! from [`worst_pass`]), and sets the unit's own back once idle: a pass that
//! hangs is still caught, only later.
//!
//! `WATCHDOG_USEC` and `WATCHDOG_PID` (sd_watchdog_enabled(3)): the
//! watchdog is on when the first is set and the second, if set, is this
//! process (a child started by the daemon inherits neither the duty nor
//! the right).

use std::cell::Cell;
use std::collections::BTreeSet;
use std::time::Duration;

use sd_notify::NotifyState;

use crate::config::{CodeSource, Config};

pub(crate) struct Watchdog {
    /// The unit's interval, when the watchdog is on.
    interval: Option<Duration>,
    /// Whether the interval in force is a pass's longer one.
    extended: Cell<bool>,
}

impl Watchdog {
    pub(crate) fn from_env() -> Watchdog {
        Watchdog {
            interval: sd_notify::watchdog_enabled().filter(|i| !i.is_zero()),
            extended: Cell::new(false),
        }
    }

    /// A pass starts: alive, with a longer limit when `worst` (the pass's
    /// worst case) exceeds the unit's interval.
    pub(crate) fn pass_starts(&self, worst: Option<Duration>) {
        let Some(interval) = self.interval else {
            return;
        };
        let mut states = vec![NotifyState::Watchdog];
        let usec;
        if let Some(worst) = worst.filter(|w| *w > interval) {
            usec = u32::try_from(worst.as_micros()).unwrap_or(u32::MAX);
            states.push(NotifyState::WatchdogUsec(usec));
            self.extended.set(true);
        }
        let _ = sd_notify::notify(&states);
    }

    /// The loop waits: alive, with the unit's own interval again. Returns
    /// how long it may sleep before it must ping again, and whether that is
    /// less than `sleep`.
    pub(crate) fn idle(&self, sleep: Duration) -> (Duration, bool) {
        let Some(interval) = self.interval else {
            return (sleep, false);
        };
        let mut states = vec![NotifyState::Watchdog];
        let usec = u32::try_from(interval.as_micros()).unwrap_or(u32::MAX);
        if self.extended.replace(false) {
            states.push(NotifyState::WatchdogUsec(usec));
        }
        let _ = sd_notify::notify(&states);
        let nap = interval / 2;
        if sleep > nap {
            (nap, true)
        } else {
            (sleep, false)
        }
    }
}

/// The longest a pass can legitimately take under `config`, every wait at
/// its limit: per MFA device two codes (a refused code is tried once more
/// with the next one) and two GetSessionToken; per section that assumes
/// its role with a code, the same; per SSO session a token refresh; the
/// AssumeRole rounds from MFA sessions and the GetRoleCredentials rounds
/// (the window of `sts_concurrency`, each round tried twice); a keyring read
/// per credentials section; and a minute for the rest (config, files, the
/// write).
pub(crate) fn worst_pass(config: &Config) -> Duration {
    /// Waiting for an unused TOTP step: at most three steps of one period
    /// (YubiKey OATH periods are 30 or 60 s).
    const STEP_WAIT: Duration = Duration::from_secs(3 * 60);
    /// A touch is waited for about 15 s.
    const TOUCH: Duration = Duration::from_secs(15);
    /// One STS call: the client's whole-operation timeout (sts::Timeouts).
    const STS_CALL: Duration = Duration::from_secs(20);
    /// One keyring call (keyring::CALL_TIMEOUT).
    const KEYRING_CALL: Duration = Duration::from_secs(10);
    const REST: Duration = Duration::from_secs(60);

    let code = |source: &CodeSource| {
        STEP_WAIT
            + match source {
                CodeSource::Oath { timeout, .. } => TOUCH + *timeout,
                CodeSource::Process { timeout, .. } => *timeout,
            }
    };
    let mut total = REST;
    let mut devices = BTreeSet::new();
    let mut chained = 0u32;
    let mut keyring_sections = BTreeSet::new();
    let mut sso_sessions = BTreeSet::new();
    let mut portal = 0u32;
    for (_, settings) in config.valid_sections() {
        let mfa = match &settings.source {
            crate::config::Source::Mfa(mfa) => mfa,
            // A token refresh per SSO session (a sign-in runs beside the
            // pass, never in it), then GetRoleCredentials rounds and the
            // roles assumed from their credentials.
            crate::config::Source::Sso(sso) => {
                if sso_sessions.insert(sso.session_name()) {
                    total += 2 * STS_CALL;
                }
                portal += 1;
                chained += u32::from(settings.role.is_some());
                continue;
            }
        };
        let with_code = 2 * (code(&mfa.code_source) + STS_CALL);
        if mfa.direct_assume_role() {
            total += with_code;
        } else {
            if devices.insert(mfa.mfa_serial_number.as_str()) {
                total += with_code;
            }
            chained += u32::from(settings.role.is_some());
        }
        if let crate::config::LongTermKeys::Keyring(section) = &mfa.long_term {
            keyring_sections.insert(section.as_str());
        }
    }
    let window = u32::try_from(config.sts_concurrency().max(1)).unwrap_or(u32::MAX);
    total += 2 * STS_CALL * (chained.div_ceil(window) + portal.div_ceil(window));
    total + KEYRING_CALL * u32::try_from(keyring_sections.len()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        let options = crate::config::LoadOptions {
            path: Some(path),
            selected: Vec::new(),
            overrides: Vec::new(),
        };
        crate::config::load(&options, &|_: &str| None).unwrap()
    }

    const DEVICE: &str =
        "mfa_serial_number = \"arn:aws:iam::123456789012:mfa/me\"\nmfa_oath_slot = \"aws\"\n";

    #[test]
    fn the_default_setup_fits_the_units_fifteen_minutes() {
        // One key, 200 roles assumed from its MFA session: the units'
        // WatchdogSec=15min covers such a pass without asking for more.
        let mut text =
            format!("{DEVICE}[[org]]\nassume_role_arn = \"arn:aws:iam::{{section}}:role/R\"\n");
        for i in 0..200 {
            text.push_str(&format!("[[org.{:012}]]\n", 100_000_000_000u64 + i));
        }
        let worst = worst_pass(&config(&text));
        assert!(worst < Duration::from_secs(900), "{worst:?}");
        assert!(worst > Duration::from_secs(300), "{worst:?}");
    }

    #[test]
    fn direct_roles_and_long_commands_ask_for_more() {
        let mut text = format!("{DEVICE}mfa_session_duration = 0\n");
        for i in 0..10 {
            text.push_str(&format!(
                "[r{i}]\nassume_role_arn = \"arn:aws:iam::123456789012:role/R{i}\"\n"
            ));
        }
        assert!(worst_pass(&config(&text)) > Duration::from_secs(3600));
        let slow = "mfa_serial_number = \"arn:aws:iam::123456789012:mfa/me\"\n\
                    mfa_process = \"zenity --entry\"\nprocess_timeout = 600\n[s]\n";
        assert!(worst_pass(&config(slow)) > Duration::from_secs(1200));
    }

    #[test]
    fn idle_naps_are_half_the_interval() {
        let watchdog = Watchdog {
            interval: Some(Duration::from_secs(20)),
            extended: Cell::new(false),
        };
        assert_eq!(
            watchdog.idle(Duration::from_secs(60)),
            (Duration::from_secs(10), true)
        );
        assert_eq!(
            watchdog.idle(Duration::from_secs(3)),
            (Duration::from_secs(3), false)
        );
        let off = Watchdog {
            interval: None,
            extended: Cell::new(false),
        };
        assert_eq!(
            off.idle(Duration::from_secs(60)),
            (Duration::from_secs(60), false)
        );
    }
}
