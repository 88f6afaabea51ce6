//! Settle: a pass's outcomes → the error policy → the plan as the pass left
//! it, and the next wake-up with its reason (kube-runtime's `error_policy`
//! plus requeue).
//!
//! A *unit* is what fails independently: an MFA device (a code or a
//! GetSessionToken failed), an SSO session (its sign-in or its token
//! failed) or a section (its AssumeRole or GetRoleCredentials failed). Each failure
//! carries a [`RetryClass`]; this module turns it into the next attempt time.
//! Pure: the clock is passed in, so scheduling is tested with a fake clock,
//! including the 8-hour jump of a laptop suspend.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use time::{Duration, OffsetDateTime};

use super::Reason;
use super::act::{Outcome, PassReport};
use super::decide::{Applied, Left, Plan, Wake};
use super::observe::Recorded;
use super::ports::UnitError;
use crate::config::Config;
use crate::retry::RetryClass;
use crate::session::{Backoff, FailingUnits, Unit};

/// Backoff starts at one second and grows to five minutes.
const MIN_DELAY: StdDuration = StdDuration::from_secs(1);
const MAX_DELAY: StdDuration = StdDuration::from_secs(300);
/// Errors that need the user are retried this often anyway, in case the
/// cause went away without a file change (a role's trust policy fixed in IAM).
pub const PARKED_RETRY: Duration = Duration::minutes(30);
/// Without a key event (a key-watcher failure), look again this often.
pub const KEY_SAFETY_RETRY: Duration = Duration::minutes(5);
/// The loop never sleeps longer than this: the monotonic clock stops during
/// suspend, so wall-clock deadlines are checked at least once a minute.
pub const MAX_SLEEP: Duration = Duration::seconds(60);

/// What a failing unit waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Waiting {
    /// A time (backoff, or the next TOTP step).
    Time,
    /// A YubiKey to appear (or the safety retry).
    Key,
    /// The keyring to be unlocked (or the safety retry).
    Unlock,
    /// The user to change the config or the credentials file (or the slow retry).
    User,
}

#[derive(Debug)]
pub struct UnitState {
    backoff: ExponentialBackoff,
    pub failures: u32,
    pub class: RetryClass,
    pub message: String,
    /// What makes the last error the same error again (a repeat is not
    /// reported).
    recurrence: String,
    pub next_attempt: OffsetDateTime,
    pub waiting: Waiting,
}

/// What the caller should log about a failure: the first failure of a kind
/// (or a new message) is worth a line; repeats are not.
#[derive(Debug, PartialEq, Eq)]
pub enum Report {
    New,
    Repeat,
}

#[derive(Debug)]
pub struct Scheduler {
    units: BTreeMap<Unit, UnitState>,
    jitter_seed: Option<u64>,
}

impl Scheduler {
    pub fn new() -> Self {
        Scheduler {
            units: BTreeMap::new(),
            jitter_seed: None,
        }
    }

    /// A scheduler with deterministic jitter, for tests.
    #[cfg(test)]
    pub fn with_seed(seed: u64) -> Self {
        Scheduler {
            units: BTreeMap::new(),
            jitter_seed: Some(seed),
        }
    }

    fn new_backoff(&self) -> ExponentialBackoff {
        let builder = ExponentialBuilder::new()
            .with_min_delay(MIN_DELAY)
            .with_max_delay(MAX_DELAY)
            .with_jitter()
            .without_max_times();
        match self.jitter_seed {
            Some(seed) => builder.with_jitter_seed(seed).build(),
            None => builder.build(),
        }
    }

    pub fn record_failure(
        &mut self,
        unit: &Unit,
        class: RetryClass,
        message: &str,
        now: OffsetDateTime,
    ) -> Report {
        self.record_error(unit, &UnitError::new(class, message), now)
    }

    /// [`Scheduler::record_failure`] of `error`: a repeat is the same
    /// recurrence (the text without its request id) in the same class.
    pub fn record_error(&mut self, unit: &Unit, error: &UnitError, now: OffsetDateTime) -> Report {
        let (class, message, recurrence) = (error.class, &error.message, error.recurrence());
        if !self.units.contains_key(unit) {
            let state = UnitState {
                backoff: self.new_backoff(),
                failures: 0,
                class,
                message: String::new(),
                recurrence: String::new(),
                next_attempt: now,
                waiting: Waiting::Time,
            };
            self.units.insert(unit.clone(), state);
        }
        let state = self.units.get_mut(unit).expect("inserted above");
        let report =
            if state.failures == 0 || state.recurrence != recurrence || state.class != class {
                Report::New
            } else {
                Report::Repeat
            };
        state.recurrence = recurrence.to_string();
        let repeated_code_rejection = class == RetryClass::NextTotpStep
            && state.class == RetryClass::NextTotpStep
            && state.failures > 0;
        // Refused again right after starting anew (a portal that refuses
        // every new token, an STS that refuses every new MFA session): back
        // off rather than start anew in a loop.
        let repeated_reauthentication = class == RetryClass::Reauthenticate
            && state.class == RetryClass::Reauthenticate
            && state.failures > 0;
        state.failures += 1;
        state.class = class;
        state.message = message.clone();
        let backoff_delay = |state: &mut UnitState| {
            let delay = state.backoff.next().unwrap_or(MAX_DELAY).min(MAX_DELAY);
            Duration::try_from(delay).unwrap_or(Duration::minutes(5))
        };
        match class {
            RetryClass::Soon => {
                state.waiting = Waiting::Time;
                state.next_attempt = now + backoff_delay(state);
            }
            RetryClass::NextTotpStep if !repeated_code_rejection => {
                // The caller already waits for the next step within the pass;
                // one more attempt right away with a fresh code.
                state.waiting = Waiting::Time;
                state.next_attempt = now;
            }
            RetryClass::NextTotpStep => {
                // Rejected again with a fresh code: clock skew or the wrong
                // OATH credential; back off rather than spend codes.
                state.waiting = Waiting::Time;
                state.next_attempt = now + backoff_delay(state);
            }
            RetryClass::Reauthenticate if !repeated_reauthentication => {
                state.waiting = Waiting::Time;
                state.next_attempt = now;
            }
            RetryClass::Reauthenticate => {
                state.waiting = Waiting::Time;
                state.next_attempt = now + backoff_delay(state);
            }
            RetryClass::WaitForKey => {
                state.waiting = Waiting::Key;
                state.next_attempt = now + KEY_SAFETY_RETRY;
            }
            RetryClass::WaitForUnlock => {
                state.waiting = Waiting::Unlock;
                state.next_attempt = now + KEY_SAFETY_RETRY;
            }
            RetryClass::NeedsUser => {
                state.waiting = Waiting::User;
                state.next_attempt = now + PARKED_RETRY;
            }
        }
        report
    }

    /// Success resets the unit's backoff.
    pub fn record_success(&mut self, unit: &Unit) {
        self.units.remove(unit);
    }

    #[cfg(test)]
    pub fn is_due(&self, unit: &Unit, now: OffsetDateTime) -> bool {
        self.units.get(unit).is_none_or(|s| s.next_attempt <= now)
    }

    #[cfg(test)]
    pub fn state(&self, unit: &Unit) -> Option<&UnitState> {
        self.units.get(unit)
    }

    /// Every failing unit's next attempt: the planner's view of the backoff.
    pub fn backoff(&self) -> Backoff {
        self.units
            .iter()
            .map(|(unit, state)| (unit.clone(), state.next_attempt))
            .collect()
    }

    /// Every failing unit's next attempt and last error.
    pub fn failing(&self) -> FailingUnits {
        self.units
            .iter()
            .map(|(unit, state)| (unit.clone(), (state.next_attempt, state.message.clone())))
            .collect()
    }

    /// A YubiKey appeared: units waiting for it are due now.
    pub fn key_changed(&mut self, now: OffsetDateTime) {
        self.wake(Waiting::Key, now);
    }

    /// Whether some unit waits for the keyring to be unlocked.
    pub fn waits_for_unlock(&self) -> bool {
        self.units.values().any(|s| s.waiting == Waiting::Unlock)
    }

    /// The keyring was unlocked: units waiting for it are due now.
    pub fn unlocked(&mut self, now: OffsetDateTime) {
        self.wake(Waiting::Unlock, now);
    }

    /// The user changed the config or the credentials file: parked units are due now.
    pub fn user_changed(&mut self, now: OffsetDateTime) {
        self.wake(Waiting::User, now);
    }

    fn wake(&mut self, waiting: Waiting, now: OffsetDateTime) {
        for state in self.units.values_mut() {
            if state.waiting == waiting {
                state.next_attempt = now;
            }
        }
    }

    /// Forgets units that no longer exist (a section removed from the config).
    pub fn retain(&mut self, keep: impl Fn(&Unit) -> bool) {
        self.units.retain(|unit, _| keep(unit));
    }
}

impl Default for Scheduler {
    fn default() -> Self {
        Self::new()
    }
}

/// The error policy's memory (the scheduler) and the settings each profile
/// was written with; turns each pass's outcomes into the next wake-up.
#[derive(Debug)]
pub struct Settler {
    scheduler: Scheduler,
    /// Per section, the settings its profile was written with: from the
    /// state file at start (a restart keeps them), then from each write.
    applied: Applied,
}

/// The plan as a pass left it, and when the loop runs again and why
/// (never more than [`MAX_SLEEP`] away).
pub struct Settled {
    pub plan: Plan,
    pub next_wake: OffsetDateTime,
    pub next_reason: Reason,
}

impl Settler {
    pub fn new(applied: Applied) -> Settler {
        Settler {
            scheduler: Scheduler::new(),
            applied,
        }
    }

    /// A settler with deterministic jitter, for tests.
    #[cfg(test)]
    pub fn with_seed(seed: u64) -> Settler {
        Settler {
            scheduler: Scheduler::with_seed(seed),
            applied: Applied::new(),
        }
    }

    #[cfg(test)]
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// What the planner needs of the daemon's memory.
    pub fn recorded(&self) -> Recorded {
        Recorded {
            backoff: self.scheduler.backoff(),
            applied: self.applied.clone(),
            reasons: self
                .scheduler
                .failing()
                .into_iter()
                .map(|(unit, (_, message))| (unit, message))
                .collect(),
        }
    }

    /// The failing units, with their errors (for the state file).
    pub fn failing(&self) -> FailingUnits {
        self.scheduler.failing()
    }

    pub fn applied(&self) -> &Applied {
        &self.applied
    }

    /// Whether some unit waits for the keyring to be unlocked.
    pub fn waits_for_unlock(&self) -> bool {
        self.scheduler.waits_for_unlock()
    }

    /// A pass runs for `reason`: the units waiting for what happened are
    /// due now.
    pub fn woken(&mut self, reason: Reason, now: OffsetDateTime) {
        match reason {
            Reason::ConfigChanged | Reason::Reload => self.scheduler.user_changed(now),
            Reason::KeyChanged => self.scheduler.key_changed(now),
            Reason::KeyringUnlocked => self.scheduler.unlocked(now),
            _ => {}
        }
    }

    /// Another program changed the credentials file: parked units may be
    /// fixed.
    pub fn user_changed(&mut self, now: OffsetDateTime) {
        self.scheduler.user_changed(now);
    }

    /// Forgets the units of sections, devices and SSO sessions `config` no
    /// longer has.
    pub fn keep_units_of(&mut self, config: &Config) {
        let names: Vec<&str> = config.sections.iter().map(|s| s.name.as_str()).collect();
        let serials: Vec<&str> = config
            .valid_sections()
            .filter_map(|(_, s)| s.mfa())
            .map(|mfa| mfa.mfa_serial_number.as_str())
            .collect();
        let sso_sessions: Vec<&str> = config
            .valid_sections()
            .filter_map(|(_, s)| s.sso())
            .map(|sso| sso.session_name())
            .collect();
        self.scheduler.retain(|unit| match unit {
            Unit::Section(name) => names.contains(&name.as_str()),
            Unit::Device(serial) => serials.contains(&serial.as_str()),
            Unit::SsoSession(name) => sso_sessions.contains(&name.as_str()),
        });
    }

    /// Feeds the pass's outcomes to the error policy and returns the plan
    /// as the pass left it with the next wake-up. Backoff counts from when
    /// the attempt `ended`, not from when the pass began: a pass that
    /// waited for a TOTP step or a slow STS would otherwise find its
    /// backoff already over and try again at once.
    pub fn settle(&mut self, plan: &Plan, report: &PassReport, ended: OffsetDateTime) -> Settled {
        self.record_outcomes(report, ended);
        self.applied.extend(
            plan.sections
                .iter()
                .filter(|s| report.outcomes.get(&s.section) == Some(&Outcome::Written))
                .map(|s| (s.section.clone(), s.fingerprint)),
        );
        self.due_on_arrival(plan, report, ended);
        let results = report
            .outcomes
            .iter()
            .filter_map(|(section, outcome)| {
                let result = match outcome {
                    Outcome::Written => Left::Fresh(report.sessions.get(section)?.expiration),
                    Outcome::Failed { unit, .. } => Left::Failed(unit.clone()),
                    Outcome::AwaitingSignIn { sso_session } => {
                        Left::AwaitingSignIn(sso_session.clone())
                    }
                };
                Some((section.clone(), result))
            })
            .collect();
        let after = plan.after(
            &results,
            &report.sso_tokens,
            &self.scheduler.backoff(),
            ended,
        );
        let (next_wake, next_reason) = next_wake(&after, ended);
        Settled {
            plan: after,
            next_wake,
            next_reason,
        }
    }

    /// A success resets its unit; each failing unit counts one failure per
    /// pass, however many sections it affects, and is logged once while the
    /// error repeats.
    fn record_outcomes(&mut self, report: &PassReport, ended: OffsetDateTime) {
        for unit in &report.succeeded_units {
            self.scheduler.record_success(unit);
        }
        let mut failed: BTreeMap<&Unit, &UnitError> = BTreeMap::new();
        for (section, outcome) in &report.outcomes {
            match outcome {
                Outcome::Written => self
                    .scheduler
                    .record_success(&Unit::Section(section.clone())),
                Outcome::Failed { unit, error } => {
                    failed.entry(unit).or_insert(error);
                }
                Outcome::AwaitingSignIn { .. } => {}
            }
        }
        for (unit, error) in &report.failed_units {
            failed.entry(unit).or_insert(error);
        }
        for (unit, error) in failed {
            if self.scheduler.record_error(unit, error, ended) == Report::New {
                tracing::warn!("{unit}: {error} ({})", error.class);
            } else {
                tracing::debug!("{unit}: still failing: {error}");
            }
        }
    }

    /// Credentials that STS hands out already inside their refresh margin
    /// (a system clock ahead of AWS's, or a session shorter than asked for:
    /// AWS caps the root user's GetSessionToken at one hour) would be asked
    /// for again at once, in every pass, forever. They were written (they
    /// are valid); the section backs off like after a passing error.
    fn due_on_arrival(&mut self, plan: &Plan, report: &PassReport, now: OffsetDateTime) {
        for (name, creds) in &report.sessions {
            let Some(section) = plan.section(name) else {
                continue;
            };
            if section.due_for(creds.expiration) > now {
                continue;
            }
            let unit = Unit::Section(name.clone());
            let message = "STS returned credentials that are already due for refresh (they expire within refresh_margin of now); check that the system clock is right, or lower refresh_margin";
            if self
                .scheduler
                .record_failure(&unit, RetryClass::Soon, message, now)
                == Report::New
            {
                tracing::warn!("{unit}: {message}");
            }
        }
    }
}

/// The next wake-up: the plan's next pass, but never more than
/// [`MAX_SLEEP`] away.
pub fn next_wake(plan: &Plan, now: OffsetDateTime) -> (OffsetDateTime, Reason) {
    let periodic = now + MAX_SLEEP;
    match plan.next_wake() {
        Some((at, wake)) if at < periodic => (
            at.max(now),
            match wake {
                Wake::Due => Reason::Deadline,
                Wake::Retry => Reason::Retry,
            },
        ),
        _ => (periodic, Reason::Periodic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

    fn device() -> Unit {
        Unit::Device("arn:aws:iam::123457890123:mfa/me".into())
    }

    #[test]
    fn soon_backs_off_exponentially_with_jitter_up_to_five_minutes() {
        let mut s = Scheduler::with_seed(7);
        let unit = Unit::Section("a".into());
        let mut delays = Vec::new();
        let mut now = NOW;
        for _ in 0..15 {
            s.record_failure(&unit, RetryClass::Soon, "network down", now);
            let next = s.state(&unit).unwrap().next_attempt;
            delays.push((next - now).as_seconds_f64());
            assert!(!s.is_due(&unit, now));
            now = next;
            assert!(s.is_due(&unit, now));
        }
        assert!(delays[0] >= 1.0 && delays[0] <= 2.0, "{delays:?}");
        assert!(delays[4] >= 16.0, "grows: {delays:?}");
        assert!(delays.iter().all(|d| *d <= 300.0), "capped: {delays:?}");
        assert!(delays[14] >= 150.0, "reaches the cap: {delays:?}");
        s.record_success(&unit);
        assert!(s.is_due(&unit, now));
        s.record_failure(&unit, RetryClass::Soon, "network down", now);
        assert!(
            s.state(&unit).unwrap().next_attempt - now <= Duration::seconds(2),
            "reset on success"
        );
    }

    #[test]
    fn repeats_are_not_reported_again() {
        let mut s = Scheduler::with_seed(1);
        let unit = device();
        assert_eq!(
            s.record_failure(&unit, RetryClass::NeedsUser, "bad key", NOW),
            Report::New
        );
        assert_eq!(
            s.record_failure(&unit, RetryClass::NeedsUser, "bad key", NOW),
            Report::Repeat
        );
        assert_eq!(
            s.record_failure(&unit, RetryClass::NeedsUser, "other", NOW),
            Report::New
        );
    }

    #[test]
    fn needs_user_parks_until_a_change_or_thirty_minutes() {
        let mut s = Scheduler::with_seed(1);
        let unit = device();
        s.record_failure(&unit, RetryClass::NeedsUser, "wrong serial", NOW);
        assert!(!s.is_due(&unit, NOW + Duration::minutes(29)));
        assert!(s.is_due(&unit, NOW + Duration::minutes(30)));
        s.key_changed(NOW + Duration::minutes(1));
        assert!(
            !s.is_due(&unit, NOW + Duration::minutes(1)),
            "a key event does not wake it"
        );
        s.user_changed(NOW + Duration::minutes(1));
        assert!(s.is_due(&unit, NOW + Duration::minutes(1)));
    }

    #[test]
    fn a_missing_key_waits_for_the_key_event() {
        let mut s = Scheduler::with_seed(1);
        let unit = device();
        s.record_failure(&unit, RetryClass::WaitForKey, "no YubiKey", NOW);
        assert!(!s.is_due(&unit, NOW + Duration::minutes(4)));
        s.key_changed(NOW + Duration::seconds(10));
        assert!(s.is_due(&unit, NOW + Duration::seconds(10)));
    }

    #[test]
    fn a_code_rejected_twice_backs_off() {
        let mut s = Scheduler::with_seed(1);
        let unit = device();
        s.record_failure(&unit, RetryClass::NextTotpStep, "code rejected", NOW);
        assert!(
            s.is_due(&unit, NOW),
            "first rejection: retry with the next code"
        );
        s.record_failure(&unit, RetryClass::NextTotpStep, "code rejected", NOW);
        assert!(!s.is_due(&unit, NOW), "second rejection: back off");
    }

    #[test]
    fn the_backoff_view_holds_each_failing_unit_until_success() {
        let mut s = Scheduler::with_seed(3);
        let unit = Unit::Section("a".into());
        s.record_failure(&unit, RetryClass::Soon, "x", NOW);
        let next = s.state(&unit).unwrap().next_attempt;
        assert_eq!(s.backoff().get(&unit), Some(&next));
        s.record_success(&unit);
        assert!(s.backoff().is_empty());
        s.record_failure(&unit, RetryClass::Soon, "x", NOW);
        s.retain(|u| *u != unit);
        assert!(s.backoff().is_empty());
    }
}
