//! Per-unit backoff and the next wake-up: the daemon's error policy.
//!
//! A *unit* is what fails independently: an MFA device (a code or a
//! GetSessionToken failed) or a section (its AssumeRole failed). Each failure
//! carries a [`RetryClass`]; this module turns it into the next attempt time.
//! Pure: the clock is passed in, so scheduling is tested with a fake clock,
//! including the 8-hour jump of a laptop suspend.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use time::{Duration, OffsetDateTime};

use crate::retry::RetryClass;

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

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "kebab-case")]
pub enum Unit {
    /// An MFA device, by serial number: codes and GetSessionToken.
    Device(String),
    /// A section, by name: its AssumeRole.
    Section(String),
}

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unit::Device(serial) => write!(f, "MFA device {serial}"),
            Unit::Section(name) => write!(f, "section [{name}]"),
        }
    }
}

/// What a failing unit waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Waiting {
    /// A time (backoff, or the next TOTP step).
    Time,
    /// A YubiKey to appear (or the safety retry).
    Key,
    /// The user to change the config or the credentials file (or the slow retry).
    User,
}

#[derive(Debug)]
pub struct UnitState {
    backoff: ExponentialBackoff,
    pub failures: u32,
    pub class: RetryClass,
    pub message: String,
    pub next_attempt: OffsetDateTime,
    pub waiting: Waiting,
    pub since: OffsetDateTime,
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
    rng: fastrand::Rng,
    jitter_seed: Option<u64>,
}

impl Scheduler {
    pub fn new() -> Self {
        Scheduler {
            units: BTreeMap::new(),
            rng: fastrand::Rng::new(),
            jitter_seed: None,
        }
    }

    /// A scheduler with deterministic jitter, for tests.
    pub fn with_seed(seed: u64) -> Self {
        Scheduler {
            units: BTreeMap::new(),
            rng: fastrand::Rng::with_seed(seed),
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
        if !self.units.contains_key(unit) {
            let state = UnitState {
                backoff: self.new_backoff(),
                failures: 0,
                class,
                message: String::new(),
                next_attempt: now,
                waiting: Waiting::Time,
                since: now,
            };
            self.units.insert(unit.clone(), state);
        }
        let state = self.units.get_mut(unit).expect("inserted above");
        let report = if state.failures == 0 || state.message != message || state.class != class {
            Report::New
        } else {
            Report::Repeat
        };
        let repeated_code_rejection = class == RetryClass::NextTotpStep
            && state.class == RetryClass::NextTotpStep
            && state.failures > 0;
        state.failures += 1;
        state.class = class;
        state.message = message.to_string();
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
            RetryClass::Reauthenticate => {
                state.waiting = Waiting::Time;
                state.next_attempt = now;
            }
            RetryClass::WaitForKey => {
                state.waiting = Waiting::Key;
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

    pub fn is_due(&self, unit: &Unit, now: OffsetDateTime) -> bool {
        self.units.get(unit).is_none_or(|s| s.next_attempt <= now)
    }

    pub fn state(&self, unit: &Unit) -> Option<&UnitState> {
        self.units.get(unit)
    }

    pub fn failing(&self) -> impl Iterator<Item = (&Unit, &UnitState)> {
        self.units.iter()
    }

    /// A YubiKey appeared: units waiting for it are due now.
    pub fn key_changed(&mut self, now: OffsetDateTime) {
        self.wake(Waiting::Key, now);
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

    /// When the loop should next run: the plan's deadline (minus a little
    /// jitter, so that several daemons do not refresh in lockstep), a unit's
    /// next attempt, or at most [`MAX_SLEEP`] from now.
    pub fn next_wake(
        &mut self,
        plan_deadline: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> OffsetDateTime {
        let mut wake = now + MAX_SLEEP;
        if let Some(deadline) = plan_deadline {
            let jitter = Duration::milliseconds(self.rng.i64(0..=5_000));
            // Jitter only ever moves a future deadline to another future
            // moment: jittered into the past, it would wake the loop for a
            // pass with nothing due yet, again and again (each call draws
            // anew) until the deadline itself.
            let jittered = deadline - jitter;
            wake = wake.min(if jittered > now { jittered } else { deadline });
        }
        for state in self.units.values() {
            if state.next_attempt > now {
                wake = wake.min(state.next_attempt);
            }
        }
        wake.max(now)
    }
}

impl Default for Scheduler {
    fn default() -> Self {
        Self::new()
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
    fn sleeps_are_bounded_and_a_suspend_jump_is_caught_at_once() {
        let mut s = Scheduler::with_seed(3);
        // A deadline in two hours: sleep at most a minute.
        let wake = s.next_wake(Some(NOW + Duration::hours(2)), NOW);
        assert_eq!(wake, NOW + MAX_SLEEP);
        // A deadline in 10 s: wake just before it.
        let wake = s.next_wake(Some(NOW + Duration::seconds(10)), NOW);
        assert!(wake <= NOW + Duration::seconds(10) && wake >= NOW + Duration::seconds(5));
        // The laptop slept 8 hours: the deadline and a backoff are long past.
        let unit = Unit::Section("a".into());
        s.record_failure(&unit, RetryClass::Soon, "x", NOW);
        let after_suspend = NOW + Duration::hours(8);
        assert!(s.is_due(&unit, after_suspend));
        assert_eq!(
            s.next_wake(Some(NOW + Duration::minutes(55)), after_suspend),
            after_suspend
        );
    }

    #[test]
    fn the_jitter_never_wakes_the_loop_before_a_deadline_that_is_not_due() {
        let mut s = Scheduler::with_seed(5);
        let deadline = NOW + Duration::seconds(10);
        // Approach the deadline the way the loop does: each wake-up asks again.
        let mut now = NOW + Duration::seconds(6);
        let mut passes = 0;
        while now < deadline {
            let wake = s.next_wake(Some(deadline), now);
            assert!(
                wake > now,
                "woke at once {}s before the deadline",
                (deadline - now).as_seconds_f64()
            );
            assert!(wake <= deadline);
            now = wake;
            passes += 1;
            assert!(passes < 100, "spinning");
        }
        // Due now (or overdue): at once.
        assert_eq!(s.next_wake(Some(deadline), deadline), deadline);
        let later = deadline + Duration::seconds(3);
        assert_eq!(s.next_wake(Some(deadline), later), later);
    }

    #[test]
    fn a_unit_in_backoff_sets_the_wake_time() {
        let mut s = Scheduler::with_seed(3);
        let unit = Unit::Section("a".into());
        s.record_failure(&unit, RetryClass::Soon, "x", NOW);
        let next = s.state(&unit).unwrap().next_attempt;
        assert_eq!(s.next_wake(None, NOW), next);
        s.retain(|u| *u != unit);
        assert_eq!(s.next_wake(None, NOW), NOW + MAX_SLEEP);
    }
}
