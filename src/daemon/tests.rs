//! The pass (plan, execute, record) with fake code and STS ports and a fake
//! clock; the config, the credentials file and the session cache are real
//! files in a temp dir.

use super::*;
use crate::config::RoleSettings;
use crate::daemon::act::Outcome;
use crate::daemon::decide::Action;
use crate::daemon::decide::Wake;
use crate::daemon::ports::KeyWatch;
use crate::daemon::ports::{
    BoxFuture, Clock, Code, CodeProvider, Endpoint, MfaCode, SigningKeys, StsApi, UnitError,
};
use crate::daemon::tell::status_line;
use crate::retry::RetryClass;
use crate::session::SessionCredentials;
use crate::session::Unit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use time::Duration;
use time::macros::datetime;

/// A clock that stands still where a test puts it, or (`running`) goes on
/// from there at the real pace (for tests that wait for a TOTP step).
struct FixedClock(Mutex<OffsetDateTime>, Mutex<Option<std::time::Instant>>);

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        let base = *self.0.lock().unwrap();
        match *self.1.lock().unwrap() {
            Some(since) => base + since.elapsed(),
            None => base,
        }
    }
}

/// Hands out codes whose steps come from a script (then keep increasing).
struct FakeCodes {
    steps: Mutex<Vec<u64>>,
    next: AtomicUsize,
    calls: AtomicUsize,
    /// While set, a code is given only once the test sends on it (a touch
    /// the person has not made yet).
    touch: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

impl FakeCodes {
    fn new(steps: &[u64]) -> Self {
        FakeCodes {
            steps: Mutex::new(steps.to_vec()),
            next: AtomicUsize::new(1000),
            calls: AtomicUsize::new(0),
            touch: Mutex::new(None),
        }
    }
}

impl CodeProvider for FakeCodes {
    fn code(
        &self,
        _source: &crate::config::CodeSource,
        _now: std::time::SystemTime,
    ) -> Result<Code, UnitError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(touch) = self.touch.lock().unwrap().take() {
            let _ = touch.recv();
        }
        let mut steps = self.steps.lock().unwrap();
        let step = if steps.is_empty() {
            self.next.fetch_add(1, Ordering::SeqCst) as u64
        } else {
            steps.remove(0)
        };
        Ok(Code {
            value: format!("{:06}", step % 1_000_000).into(),
            step,
            period: 30,
        })
    }
}

/// STS that answers like moto, after scripted failures, counting calls and
/// the most calls in flight at once.
#[derive(Default)]
struct FakeSts {
    get_session_token: AtomicUsize,
    assume_role: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    failures: Mutex<Vec<(&'static str, UnitError)>>,
    seen_codes: Mutex<Vec<String>>,
    /// Each call takes this long on the fake clock (a slow or timing-out STS).
    slow: Mutex<Option<(Arc<FixedClock>, Duration)>>,
    /// Seconds from NOW that AssumeRole's credentials expire (default 3600).
    role_lifetime: Mutex<Option<i64>>,
    /// AssumeRole calls beyond this many at once are throttled.
    throttle_above: Mutex<Option<usize>>,
    /// AssumeRole calls (numbered from 0 in arrival order) answered
    /// `Throttling` whatever else is in flight.
    throttle_calls: Mutex<Vec<usize>>,
    throttled: AtomicUsize,
    /// The key ids that signed each AssumeRole.
    signers: Mutex<Vec<String>>,
}

impl FakeSts {
    fn throttle_above(&self, limit: usize) {
        *self.throttle_above.lock().unwrap() = Some(limit);
    }

    fn fail_next(&self, action: &'static str, class: RetryClass) {
        self.failures.lock().unwrap().push((
            action,
            UnitError::new(class, format!("{action} failed ({class})")),
        ));
    }

    fn take_time(&self) {
        if let Some((clock, duration)) = &*self.slow.lock().unwrap() {
            *clock.0.lock().unwrap() += *duration;
        }
    }

    fn scripted(&self, action: &str) -> Option<UnitError> {
        let mut failures = self.failures.lock().unwrap();
        let index = failures.iter().position(|(a, _)| *a == action)?;
        Some(failures.remove(index).1)
    }

    fn credentials(prefix: &str, n: usize) -> SessionCredentials {
        SessionCredentials {
            access_key_id: format!("{prefix}{n:016}"),
            secret_access_key: format!("secret-{n}").into(),
            session_token: format!("token-{n}").into(),
            expiration: datetime!(2026-11-25 12:00 UTC) + Duration::hours(1),
        }
    }
}

impl StsApi for FakeSts {
    fn get_session_token<'a>(
        &'a self,
        _long_term: &'a SigningKeys,
        _endpoint: &'a Endpoint,
        mfa: MfaCode<'a>,
        duration: u32,
    ) -> BoxFuture<'a, Result<SessionCredentials, UnitError>> {
        Box::pin(async move {
            let n = self.get_session_token.fetch_add(1, Ordering::SeqCst);
            self.seen_codes
                .lock()
                .unwrap()
                .push(mfa.code.expose_secret().to_string());
            if let Some(error) = self.scripted("GetSessionToken") {
                return Err(error);
            }
            let mut creds = Self::credentials("ASIAMFA", n);
            creds.expiration =
                datetime!(2026-11-25 12:00 UTC) + Duration::seconds(i64::from(duration));
            Ok(creds)
        })
    }

    fn assume_role<'a>(
        &'a self,
        signer: &'a SigningKeys,
        _endpoint: &'a Endpoint,
        _role: &'a RoleSettings,
        mfa: Option<MfaCode<'a>>,
    ) -> BoxFuture<'a, Result<SessionCredentials, UnitError>> {
        Box::pin(async move {
            let n = self.assume_role.fetch_add(1, Ordering::SeqCst);
            self.signers
                .lock()
                .unwrap()
                .push(signer.access_key_id.clone());
            if let Some(mfa) = mfa {
                self.seen_codes
                    .lock()
                    .unwrap()
                    .push(mfa.code.expose_secret().to_string());
            }
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            if (*self.throttle_above.lock().unwrap()).is_some_and(|limit| now > limit)
                || self.throttle_calls.lock().unwrap().contains(&n)
            {
                self.throttled.fetch_add(1, Ordering::SeqCst);
                let mut error = UnitError::new(RetryClass::Soon, "Rate exceeded");
                error.throttled = true;
                return Err(error);
            }
            self.take_time();
            if let Some(error) = self.scripted("AssumeRole") {
                return Err(error);
            }
            let mut creds = Self::credentials("ASIAROLE", n);
            if let Some(seconds) = *self.role_lifetime.lock().unwrap() {
                creds.expiration = NOW + Duration::seconds(seconds);
            }
            Ok(creds)
        })
    }
}

use secrecy::ExposeSecret;

/// A keyring with one item, locked or not.
#[derive(Default)]
struct FakeKeyring {
    locked: std::sync::atomic::AtomicBool,
    /// While locked, the key ids are hidden too (GNOME Keyring after a
    /// restart shows only hashed attributes).
    hides_ids: std::sync::atomic::AtomicBool,
    reads: AtomicUsize,
    unlock_requests: AtomicUsize,
}

impl crate::daemon::ports::SecretStore for FakeKeyring {
    fn key_ids(&self) -> Result<crate::daemon::ports::KeyIds, UnitError> {
        if self.locked.load(Ordering::SeqCst) && self.hides_ids.load(Ordering::SeqCst) {
            return Err(UnitError::new(
                RetryClass::WaitForUnlock,
                "the keyring holding the key ids is locked",
            ));
        }
        Ok(crate::daemon::ports::KeyIds {
            ids: std::collections::BTreeMap::from([(
                "work".to_string(),
                "AKIAKEYRINGKEYRING00".to_string(),
            )]),
            locked: self.locked.load(Ordering::SeqCst),
        })
    }

    fn request_unlock(&self) {
        self.unlock_requests.fetch_add(1, Ordering::SeqCst);
    }

    fn long_term_secret(&self, section: &str) -> Result<secrecy::SecretString, UnitError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.locked.load(Ordering::SeqCst) {
            return Err(UnitError::new(
                RetryClass::WaitForUnlock,
                "the keyring is locked",
            ));
        }
        assert_eq!(section, "work");
        Ok("keyring-secret".to_string().into())
    }
}

const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

struct Fixture {
    dir: tempfile::TempDir,
    daemon: Daemon,
    codes: Arc<FakeCodes>,
    sts: Arc<FakeSts>,
    sso: Arc<sso::FakeSso>,
    clock: Arc<FixedClock>,
    credentials: PathBuf,
    /// What the sign-in tasks send the loop (a fixture made with
    /// [`Fixture::with_sign_in_tasks`]).
    events: Option<tokio::sync::mpsc::UnboundedReceiver<Event>>,
}

impl Fixture {
    fn new(config: &str, steps: &[u64]) -> Self {
        Self::with_keyring(config, steps, Arc::new(FakeKeyring::default()))
    }

    fn with_keyring(config: &str, steps: &[u64], keyring: Arc<FakeKeyring>) -> Self {
        Self::build(config, steps, keyring, act::SignIns::inline(), None)
    }

    /// Sign-ins run as the daemon's tasks, their events on [`Fixture::events`].
    fn with_sign_in_tasks(config: &str) -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let sign_ins = act::SignIns::background(move || {
            let _ = tx.send(Event::SignIn);
        });
        Self::build(
            config,
            &[],
            Arc::new(FakeKeyring::default()),
            sign_ins,
            Some(rx),
        )
    }

    fn build(
        config: &str,
        steps: &[u64],
        keyring: Arc<FakeKeyring>,
        sign_ins: Arc<act::SignIns>,
        events: Option<tokio::sync::mpsc::UnboundedReceiver<Event>>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, config).unwrap();
        let credentials = dir.path().join("credentials");
        std::fs::write(&credentials, "# keep me\n[default]\naws_access_key_id = AKIAAAAAAAAAAAAAAAAA\naws_secret_access_key = longterm\n").unwrap();
        let codes = Arc::new(FakeCodes::new(steps));
        let sts = Arc::new(FakeSts::default());
        let clock = Arc::new(FixedClock(Mutex::new(NOW), Mutex::new(None)));
        let sso = Arc::new(sso::FakeSso::new(clock.clone()));
        let executor = Executor {
            codes: codes.clone(),
            sts: sts.clone(),
            secrets: keyring,
            sso: sso.clone(),
            sign_ins,
            clock: clock.clone(),
            concurrency: 8,
        };
        let mut daemon = Daemon::new(
            LoadOptions {
                path: Some(config_path),
                ..Default::default()
            },
            credentials.clone(),
            executor,
            Some(dir.path().join("runtime")),
        );
        daemon.settler = settle::Settler::with_seed(1);
        Fixture {
            dir,
            daemon,
            codes,
            sts,
            sso,
            clock,
            credentials,
            events,
        }
    }

    async fn pass(&mut self) -> PassReport {
        self.summary().await.report
    }

    async fn summary(&mut self) -> PassSummary {
        self.daemon.pass(Reason::Deadline).await.unwrap()
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.credentials).unwrap()
    }

    fn set_now(&self, at: OffsetDateTime) {
        *self.clock.0.lock().unwrap() = at;
    }

    /// From now on the clock runs from `at` at the real pace.
    fn run_clock_from(&self, at: OffsetDateTime) {
        self.set_now(at);
        *self.clock.1.lock().unwrap() = Some(std::time::Instant::now());
    }

    fn calls(&self) -> (usize, usize, usize) {
        (
            self.codes.calls.load(Ordering::SeqCst),
            self.sts.get_session_token.load(Ordering::SeqCst),
            self.sts.assume_role.load(Ordering::SeqCst),
        )
    }
}

fn failed(report: &PassReport) -> usize {
    report
        .outcomes
        .values()
        .filter(|o| matches!(o, Outcome::Failed { .. }))
        .count()
}

fn org(n: usize) -> String {
    let mut config = String::from(
        "mfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"unused\"\n[org]\nassume_role_arn = \"arn:aws:iam::{section}:role/R\"\n",
    );
    for i in 0..n {
        config.push_str(&format!("[org.{:012}]\n", 100_000_000_000u64 + i as u64));
    }
    config
}

#[tokio::test]
async fn twenty_roles_cost_one_code_and_one_write() {
    let mut f = Fixture::new(&org(20), &[]);
    let report = f.pass().await;
    assert_eq!(report.codes_used, 1);
    assert_eq!(f.calls(), (1, 1, 20));
    assert!(report.wrote);
    assert_eq!(report.written(), 20);
    let max = f.sts.max_in_flight.load(Ordering::SeqCst);
    assert_eq!(max, 20, "all at once, within sts_concurrency (32)");
    let text = f.text();
    assert!(text.starts_with("# keep me\n[default]\n"));
    assert_eq!(text.matches("aws_session_token = token-").count(), 20);
    // One backup: one write.
    assert!(f.credentials.with_file_name("credentials.1").exists());
    assert!(!f.credentials.with_file_name("credentials.2").exists());

    // The second pass finds everything fresh in the plan: nothing to do.
    let summary = f.summary().await;
    assert_eq!(summary.report.codes_used, 0);
    assert!(!summary.report.wrote);
    assert!(summary.plan.all_fresh());
}

#[tokio::test]
async fn a_deleted_profile_is_restored_from_the_cached_mfa_session_without_a_code() {
    let mut f = Fixture::new(&org(2), &[]);
    f.pass().await;
    let text = f.text().replace("[100000000001]", "[gone]");
    std::fs::write(&f.credentials, text).unwrap();
    let report = f.pass().await;
    assert_eq!(report.codes_used, 0);
    assert_eq!(f.calls(), (1, 1, 3));
    assert!(f.text().contains("[100000000001]"));
}

#[tokio::test]
async fn the_plan_after_a_pass_knows_the_cached_mfa_session() {
    // What `plan` shows after the daemon cached an MFA session: the same
    // function over the same inputs, from a separate reader of the cache.
    let mut f = Fixture::new(&org(2), &[]);
    f.pass().await;
    std::fs::write(&f.credentials, f.text().replace("[100000000001]", "[gone]")).unwrap();
    let mut observer = observe::Observer::new(
        LoadOptions {
            path: Some(f.dir.path().join("config.toml")),
            ..Default::default()
        },
        f.credentials.clone(),
        Arc::new(FakeKeyring::default()),
    );
    let mut cache = SessionCache::new(Some(f.dir.path().join("runtime")));
    let plan = observer.observe(&mut cache, NOW).await.unwrap().plan();
    assert_eq!(plan.work.total_codes(), 0, "{:?}", plan.work);
    assert_eq!(plan.work.get_session_token_calls, 0);
    assert_eq!(plan.work.assume_role_calls, 1);
    let (codes, gst, roles) = f.calls();
    let report = f.pass().await;
    assert_eq!(report.codes_used, plan.work.total_codes());
    assert_eq!(
        f.calls(),
        (codes, gst, roles + 1),
        "the plan's work, no more"
    );
}

#[tokio::test]
async fn a_used_totp_step_is_never_sent_twice() {
    // The provider returns step 100 twice: the second code must wait for the
    // next step (the clock stands just before it), and STS sees two codes.
    let config = "mfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"x\"\nmfa_session_duration = 0\nassume_session_duration = 3600\n[a]\nassume_role_arn = \"arn:aws:iam::111111111111:role/R\"\n[b]\nassume_role_arn = \"arn:aws:iam::222222222222:role/R\"\n";
    let mut f = Fixture::new(config, &[100, 100, 101]);
    f.run_clock_from(OffsetDateTime::from_unix_timestamp(101 * 30 - 1).unwrap());
    let started = std::time::Instant::now();
    let report = f.pass().await;
    assert_eq!(report.codes_used, 2, "{report:?}");
    assert_eq!(f.codes.calls.load(Ordering::SeqCst), 3);
    let seen = f.sts.seen_codes.lock().unwrap().clone();
    assert_eq!(seen, ["000100", "000101"]);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1000),
        "waited for the next step"
    );
    assert_eq!(report.written(), 2);
}

#[tokio::test]
async fn a_recorded_step_far_ahead_of_the_clock_is_dropped_not_waited_for() {
    // The clock was set back three hours, or the cache holds a corrupt step:
    // no sleep for hours, no overflow; the code is used, the step replaced.
    for recorded in [100 + 3 * 120, u64::MAX] {
        let mut f = Fixture::new(&org(1), &[100]);
        f.set_now(OffsetDateTime::from_unix_timestamp(100 * 30 + 3).unwrap());
        {
            let mut cache = SessionCache::new(Some(f.dir.path().join("runtime")));
            let lock = cache.lock().await.unwrap();
            cache.load(&lock);
            cache
                .contents_mut()
                .last_steps
                .insert("arn:aws:iam::123457890123:mfa/me".into(), recorded);
            cache.store(&lock, NOW).unwrap();
        }
        let started = std::time::Instant::now();
        let report = f.pass().await;
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(report.wrote, "{report:?}");
        assert_eq!(f.calls(), (1, 1, 1));
    }
}

#[tokio::test]
async fn a_rejected_code_is_retried_once_with_the_next_step() {
    let mut f = Fixture::new(&org(1), &[]);
    f.sts.fail_next("GetSessionToken", RetryClass::NextTotpStep);
    let report = f.pass().await;
    assert_eq!(report.codes_used, 2);
    assert_eq!(f.sts.get_session_token.load(Ordering::SeqCst), 2);
    assert!(report.wrote);
}

#[tokio::test]
async fn an_error_that_needs_the_user_parks_the_device_without_hammering() {
    let mut f = Fixture::new(&org(3), &[]);
    f.sts.fail_next("GetSessionToken", RetryClass::NeedsUser);
    let report = f.pass().await;
    assert!(!report.wrote);
    assert_eq!(failed(&report), 3);
    let device = Unit::Device("arn:aws:iam::123457890123:mfa/me".into());
    assert_eq!(
        f.daemon
            .settler
            .scheduler()
            .state(&device)
            .unwrap()
            .failures,
        1,
        "one failure per pass, not per section"
    );
    for _ in 0..5 {
        let summary = f.summary().await;
        assert!(summary.report.outcomes.is_empty(), "{:?}", summary.report);
        assert!(
            summary
                .plan
                .sections
                .iter()
                .all(|s| matches!(&s.action, Action::Wait { unit, .. } if *unit == device)),
            "the plan says every section waits for the device"
        );
        assert_eq!(summary.next_reason, Reason::Periodic, "parked: 30 min away");
    }
    assert_eq!(f.calls(), (1, 1, 0), "parked: no further codes or calls");
    // Thirty minutes later it tries again.
    f.set_now(NOW + Duration::minutes(31));
    let report = f.pass().await;
    assert!(report.wrote);
}

#[tokio::test]
async fn an_expired_mfa_session_is_dropped_and_replaced() {
    let mut f = Fixture::new(&org(1), &[]);
    f.pass().await;
    std::fs::write(&f.credentials, f.text().replace("[100000000000]", "[x]")).unwrap();
    f.sts.fail_next("AssumeRole", RetryClass::Reauthenticate);
    let summary = f.summary().await;
    assert!(
        summary.report.outcomes.values().all(|o| matches!(o, Outcome::Failed { error, .. } if error.class == RetryClass::Reauthenticate)),
        "re-authenticate now: {:?}",
        summary.report.outcomes
    );
    assert!(!summary.report.wrote);
    assert_eq!(summary.next_reason, Reason::Retry);
    assert_eq!(summary.next_wake, f.clock.now(), "at once");
    let report = f.pass().await;
    assert!(report.wrote);
    assert_eq!(
        f.sts.get_session_token.load(Ordering::SeqCst),
        2,
        "a new MFA session"
    );
}

#[tokio::test]
async fn a_failing_role_does_not_stop_the_others() {
    let mut f = Fixture::new(&org(3), &[]);
    f.sts.fail_next("AssumeRole", RetryClass::NeedsUser);
    let report = f.pass().await;
    assert!(report.wrote);
    assert_eq!(report.written(), 2);
    let failed: Vec<_> = report
        .outcomes
        .values()
        .filter_map(|o| match o {
            Outcome::Failed { unit, .. } => Some(unit),
            _ => None,
        })
        .collect();
    assert!(
        matches!(failed.as_slice(), [Unit::Section(_)]),
        "{failed:?}"
    );
}

#[tokio::test]
async fn backoff_counts_from_the_end_of_a_slow_attempt() {
    // AssumeRole times out after 20 s: the next attempt is still a backoff
    // away from when the attempt ended, not already due.
    let mut f = Fixture::new(&org(1), &[]);
    f.pass().await;
    std::fs::write(&f.credentials, f.text().replace("[100000000000]", "[x]")).unwrap();
    *f.sts.slow.lock().unwrap() = Some((f.clock.clone(), Duration::seconds(20)));
    f.sts.fail_next("AssumeRole", RetryClass::Soon);
    let summary = f.summary().await;
    assert!(!summary.report.wrote);
    let unit = Unit::Section("100000000000".into());
    let ended = f.clock.now();
    assert_eq!(ended, NOW + Duration::seconds(20));
    let next = f
        .daemon
        .settler
        .scheduler()
        .state(&unit)
        .unwrap()
        .next_attempt;
    assert!(next > ended, "next attempt {next} is not after {ended}");
    assert_eq!(
        (summary.next_wake, summary.next_reason),
        (next, Reason::Retry)
    );
    let calls = f.sts.assume_role.load(Ordering::SeqCst);
    let report = f.pass().await;
    assert!(report.outcomes.is_empty(), "{report:?}");
    assert_eq!(f.sts.assume_role.load(Ordering::SeqCst), calls);
}

#[tokio::test]
async fn credentials_due_on_arrival_are_written_once_then_the_section_backs_off() {
    // The role's credentials expire 30 s from now, inside the 300 s margin
    // (a clock ahead of AWS's): written, but not asked for again at once.
    let mut f = Fixture::new(&org(1), &[]);
    *f.sts.role_lifetime.lock().unwrap() = Some(30);
    let summary = f.summary().await;
    assert!(summary.report.wrote);
    assert!(summary.next_wake > f.clock.now(), "not again at once");
    assert_eq!(f.sts.assume_role.load(Ordering::SeqCst), 1);
    let unit = Unit::Section("100000000000".into());
    let state = f
        .daemon
        .settler
        .scheduler()
        .state(&unit)
        .expect("backing off");
    assert_eq!(state.class, RetryClass::Soon);
    assert!(state.message.contains("system clock"), "{}", state.message);
    for _ in 0..3 {
        let report = f.pass().await;
        assert!(!report.wrote);
    }
    assert_eq!(f.sts.assume_role.load(Ordering::SeqCst), 1, "no hammering");
    // After the backoff it asks again.
    f.set_now(NOW + Duration::seconds(10));
    f.pass().await;
    assert_eq!(f.sts.assume_role.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_read_only_credentials_file_costs_no_code() {
    use std::os::unix::fs::PermissionsExt;
    let mut f = Fixture::new(&org(2), &[]);
    std::fs::set_permissions(&f.credentials, std::fs::Permissions::from_mode(0o400)).unwrap();
    let summary = f.summary().await;
    assert!(!summary.report.wrote);
    assert_eq!(f.calls(), (0, 0, 0), "no code spent, no call");
    // The plan blocks both sections with the reason (a read-only file is an
    // input of the plan, not a failure of the executor); they wait for the
    // user, not for a timer.
    let blocked: Vec<_> = summary
        .plan
        .sections
        .iter()
        .filter(|s| matches!(&s.action, Action::Blocked { reason } if reason.contains("read-only")))
        .collect();
    assert_eq!(blocked.len(), 2, "{:?}", summary.plan.sections);
    assert!(
        blocked
            .iter()
            .all(|s| summary.plan.next_pass_of(s).is_none())
    );
    assert_eq!(summary.next_reason, Reason::Periodic);
    let recorded = state::read(&f.dir.path().join("runtime"));
    assert_eq!(recorded.sections.len(), 2);
    for status in recorded.sections.values() {
        assert!(
            status
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("read-only")),
            "{status:?}"
        );
    }
    // Writable again: written at the next pass.
    std::fs::set_permissions(&f.credentials, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(f.pass().await.written(), 2);
}

#[tokio::test]
async fn an_edit_refused_for_one_profile_does_not_block_the_others() {
    // [100000000000] has indented keys: rewriting them is refused (found
    // only when editing). The other profile is written all the same.
    let mut f = Fixture::new(&org(2), &[]);
    let mut text = f.text();
    text.push_str(
        "\n[100000000000]\n  aws_access_key_id = ASIAOLD\n  aws_secret_access_key = old\n",
    );
    std::fs::write(&f.credentials, &text).unwrap();
    let report = f.pass().await;
    assert!(report.wrote, "{report:?}");
    assert_eq!(report.outcomes["100000000001"], Outcome::Written);
    assert!(
        matches!(&report.outcomes["100000000000"], Outcome::Failed { unit, error } if error.message.contains("indented line") && *unit == Unit::Section("100000000000".into())),
        "{report:?}"
    );
    let after = f.text();
    assert!(after.starts_with(&text), "the refused profile was touched");
    assert!(after.contains("[100000000001]"));
}

#[tokio::test]
async fn the_wake_up_the_status_file_and_the_status_line_show_one_instant() {
    let mut f = Fixture::new(&org(3), &[]);
    f.pass().await;
    // Expiries an hour apart; the earliest falls due first.
    let text = f
        .text()
        .replacen("2026-11-25T13:00:00Z", "2026-11-25T12:20:00Z", 1);
    std::fs::write(&f.credentials, text).unwrap();
    let summary = f.summary().await;
    let (due, why) = summary.plan.next_wake().unwrap();
    assert_eq!(why, Wake::Due);
    let margin_and_jitter = datetime!(2026-11-25 12:20 UTC) - due;
    assert!(
        margin_and_jitter >= Duration::seconds(300) && margin_and_jitter <= Duration::seconds(305),
        "{margin_and_jitter}"
    );
    // The loop: at most a minute away, so at the periodic check here...
    assert_eq!(summary.next_reason, Reason::Periodic);
    // ...and at the due instant itself once it is near.
    f.set_now(due - Duration::seconds(20));
    let summary = f.summary().await;
    assert_eq!(
        (summary.next_wake, summary.next_reason),
        (due, Reason::Deadline)
    );
    // STATUS= and `status` (the state file) show that same instant.
    assert!(
        status_line(&summary.plan)
            .ends_with(&format!("next refresh {}", crate::timestamp::rfc3339(due))),
        "{}",
        status_line(&summary.plan)
    );
    let recorded = state::read(&f.dir.path().join("runtime"));
    let earliest = recorded
        .sections
        .values()
        .filter_map(|s| s.next_attempt)
        .min();
    assert_eq!(earliest, Some(due));
    // And a pass at that instant refreshes exactly that section.
    f.set_now(due);
    let report = f.pass().await;
    assert_eq!(report.written(), 1, "{report:?}");
}

#[tokio::test]
async fn the_key_watcher_follows_the_config() {
    let mut f = Fixture::new(&org(1), &[]);
    let started = Arc::new(AtomicUsize::new(0));
    let counter = started.clone();
    struct Never;
    impl KeyWatch for Never {
        fn changed(&mut self) -> BoxFuture<'_, ()> {
            Box::pin(std::future::pending())
        }
    }
    f.daemon.watches.start_key_watch = Some(Box::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Box::new(Never)
    }));
    f.pass().await;
    assert!(
        !f.daemon.watches.watches_keys(),
        "mfa_process only: no watcher"
    );
    // A YubiKey section added later starts it without a restart.
    let config = f.dir.path().join("config.toml");
    let with_key = org(1).replace(
        "mfa_process = \"unused\"\n[org]\n",
        "[org]\nmfa_process = \"unused\"\n",
    ) + "[key]\nmfa_oath_slot = \"Amazon Web Services:me@123457890123\"\n";
    std::fs::write(&config, &with_key).unwrap();
    f.daemon.pass(Reason::ConfigChanged).await.unwrap();
    assert!(f.daemon.watches.watches_keys());
    assert_eq!(started.load(Ordering::SeqCst), 1);
    f.daemon.pass(Reason::ConfigChanged).await.unwrap();
    assert_eq!(started.load(Ordering::SeqCst), 1, "one watcher");
    std::fs::write(&config, org(1)).unwrap();
    f.daemon.pass(Reason::ConfigChanged).await.unwrap();
    assert!(
        !f.daemon.watches.watches_keys(),
        "stopped when no section uses a key"
    );
}

#[test]
fn a_step_check_waits_at_most_one_period() {
    let mut cache = crate::session_cache::CacheContents::default();
    let now = OffsetDateTime::from_unix_timestamp(100 * 30 + 10).unwrap();
    assert_eq!(cache.check_step("d", 100, 30, now), act::StepCheck::Fresh);
    cache.last_steps.insert("d".into(), 100);
    assert_eq!(
        cache.check_step("d", 100, 30, now),
        act::StepCheck::Wait(std::time::Duration::from_millis(20_200))
    );
    cache.last_steps.insert("d".into(), 101);
    assert_eq!(
        cache.check_step("d", 100, 30, now),
        act::StepCheck::Wait(std::time::Duration::from_millis(30_200)),
        "capped at one period"
    );
    cache.last_steps.insert("d".into(), 102);
    assert_eq!(
        cache.check_step("d", 100, 30, now),
        act::StepCheck::Stale(102)
    );
    cache.last_steps.insert("d".into(), u64::MAX);
    assert_eq!(
        cache.check_step("d", u64::MAX, 30, now),
        act::StepCheck::Wait(std::time::Duration::from_millis(30_200)),
        "no overflow"
    );
    assert_eq!(
        cache.check_step("d", 100, 0, now),
        act::StepCheck::Stale(u64::MAX)
    );
}

#[test]
fn the_assume_role_window_halves_on_throttling_and_grows_slowly() {
    let mut w = act::Window::new(32);
    assert_eq!(w.size(), 32);
    let started_in = w.generation();
    assert!(w.throttled(started_in, 32));
    assert_eq!(w.size(), 16);
    // More throttles of calls that started before the decrease: answered.
    for _ in 0..10 {
        assert!(!w.throttled(started_in, 32));
    }
    assert_eq!(w.size(), 16);
    // Half of what was in flight, not of the window.
    assert!(w.throttled(w.generation(), 6));
    assert_eq!(w.size(), 3);
    assert!(w.throttled(w.generation(), 3));
    assert!(w.throttled(w.generation(), 1));
    assert_eq!(w.size(), 1, "never below one");
    // One more call at once after each window's worth of successes.
    assert!(w.succeeded());
    assert_eq!(w.size(), 2);
    assert!(!w.succeeded());
    assert!(w.succeeded());
    assert_eq!(w.size(), 3);
    for _ in 0..10_000 {
        w.succeeded();
    }
    assert_eq!(w.size(), 32, "never above the cap");
}

#[tokio::test]
async fn throttled_calls_lower_the_concurrency_and_the_pass_still_completes() {
    // STS allows 3 calls at once; beyond that it answers Throttling.
    let mut f = Fixture::new(&org(40), &[]);
    f.sts.throttle_above(3);
    let report = f.pass().await;
    assert_eq!(report.written(), 40, "{report:?}");
    let throttled = f.sts.throttled.load(Ordering::SeqCst);
    let calls = f.sts.assume_role.load(Ordering::SeqCst);
    eprintln!("40 roles, STS allowing 3 at once: {calls} calls, {throttled} throttled");
    assert!(throttled > 0, "the limit was hit");
    // Without the window falling, every throttled call would be tried
    // again up to six times at full width (about 200 calls).
    assert!(
        calls <= 100,
        "{calls} calls: the window fell instead of hammering"
    );
}

#[tokio::test]
async fn a_throttled_first_call_of_a_batch_is_not_taken_for_a_call_alone() {
    // The first call started sees no other under way, but 19 more start
    // right after it; STS may see it arrive last and throttle it. That says
    // "too many at once", not "too many at all": the pass goes on.
    let mut f = Fixture::new(&org(20), &[]);
    *f.sts.throttle_calls.lock().unwrap() = vec![0];
    let report = f.pass().await;
    assert_eq!(f.sts.throttled.load(Ordering::SeqCst), 1);
    assert_eq!(report.written(), 20, "{report:?}");
    assert_eq!(f.sts.assume_role.load(Ordering::SeqCst), 21);
}

#[tokio::test]
async fn throttled_one_call_at_a_time_the_rest_of_the_pass_backs_off() {
    // STS refuses every call: once the window is down to one call and that
    // one is throttled too, the pass stops asking; the sections back off.
    let mut f = Fixture::new(&org(10), &[]);
    f.sts.throttle_above(0);
    let report = f.pass().await;
    assert_eq!(report.written(), 0, "{report:?}");
    assert_eq!(failed(&report), 10, "{report:?}");
    let calls = f.sts.assume_role.load(Ordering::SeqCst);
    assert!(
        calls < 10 * act::THROTTLE_ATTEMPTS as usize,
        "{calls} calls: every section tried to the end"
    );
}

/// Two sections taking their long-term keys from a locked keyring.
fn locked_keyring_fixture() -> (Fixture, Arc<FakeKeyring>) {
    let config = org(2).replace(
        "[org]\n",
        "[org]\nlong_term_keys = \"keyring\"\ncredentials_section = \"work\"\n",
    );
    let keyring = Arc::new(FakeKeyring::default());
    keyring.locked.store(true, Ordering::SeqCst);
    let f = Fixture::with_keyring(&config, &[], keyring.clone());
    (f, keyring)
}

#[tokio::test]
async fn key_ids_locked_away_are_awaited_like_a_locked_secret() {
    let (mut f, keyring) = locked_keyring_fixture();
    keyring.hides_ids.store(true, Ordering::SeqCst);
    let report = f.pass().await;
    assert_eq!(report.written(), 0, "{report:?}");
    assert_eq!(f.calls(), (0, 0, 0), "nothing spent without the key ids");
    assert!(
        !f.daemon.settler.scheduler().waits_for_unlock(),
        "no unit was planned"
    );
    assert!(
        f.daemon.waits_for_unlock(),
        "but the loop awaits the unlock"
    );
    keyring.locked.store(false, Ordering::SeqCst);
    let report = f.daemon.pass(Reason::KeyringUnlocked).await.unwrap().report;
    assert_eq!(report.written(), 2, "{report:?}");
    assert!(!f.daemon.waits_for_unlock());
}

#[tokio::test]
async fn a_locked_keyring_waits_for_the_unlock_not_for_a_timer() {
    let (mut f, keyring) = locked_keyring_fixture();
    // The locked keyring is an input of the plan: both sections wait for
    // the unlock, which is asked for; no secret read, no code spent.
    let summary = f.summary().await;
    assert!(
        summary.plan.sections.iter().all(|s| matches!(
            &s.action,
            Action::Blocked { reason } if reason.contains("keyring is locked")
        )),
        "{:?}",
        summary.plan.sections
    );
    assert!(summary.report.outcomes.is_empty());
    assert_eq!(f.calls(), (0, 0, 0), "no code spent without the secret");
    assert_eq!(keyring.unlock_requests.load(Ordering::SeqCst), 1);
    assert!(f.daemon.waits_for_unlock());
    assert_eq!(summary.next_reason, Reason::Periodic, "no timer of its own");
    // Nothing happens until the unlock.
    let report = f.pass().await;
    assert!(report.outcomes.is_empty());
    assert_eq!(keyring.reads.load(Ordering::SeqCst), 0);
    keyring.locked.store(false, Ordering::SeqCst);
    let report = f.daemon.pass(Reason::KeyringUnlocked).await.unwrap().report;
    assert_eq!(report.written(), 2, "{report:?}");
    assert_eq!(f.calls(), (1, 1, 2));
    assert!(!f.daemon.settler.scheduler().waits_for_unlock());
}

#[tokio::test]
async fn a_credentials_file_others_can_read_is_made_private_with_nothing_to_write() {
    use std::os::unix::fs::PermissionsExt;
    let mut f = Fixture::new(&org(1), &[]);
    assert_eq!(f.pass().await.written(), 1);
    let calls = f.calls();
    // Another program rewrote it under umask 0022.
    std::fs::set_permissions(&f.credentials, std::fs::Permissions::from_mode(0o644)).unwrap();
    let plan = f.summary().await;
    assert!(!plan.report.wrote, "nothing to write");
    let mode = std::fs::metadata(&f.credentials)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "made private in the same pass");
    assert_eq!(f.calls(), calls, "no code, no call");
    // A read-only file keeps being read-only (only others' bits go).
    std::fs::set_permissions(&f.credentials, std::fs::Permissions::from_mode(0o444)).unwrap();
    f.pass().await;
    let mode = std::fs::metadata(&f.credentials)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o400);
}

#[tokio::test]
async fn switching_a_section_to_process_removes_its_old_session_from_the_file() {
    let mut f = Fixture::new(&org(1), &[]);
    assert_eq!(f.pass().await.written(), 1);
    assert!(f.text().contains("[100000000000]\naws_access_key_id"));
    let config = f.dir.path().join("config.toml");
    let process = org(1).replace("[org]\n", "[org]\noutput = \"process\"\n");
    std::fs::write(&config, &process).unwrap();
    let summary = f.daemon.pass(Reason::ConfigChanged).await.unwrap();
    let text = f.text();
    assert!(
        !text.contains("ASIA") && !text.contains("x_security_token_expires"),
        "the old session stays in the file:\n{text}"
    );
    assert!(
        text.contains("[default]\naws_access_key_id = AKIA"),
        "{text}"
    );
    assert_eq!(
        summary.report.outcomes.get("100000000000"),
        Some(&Outcome::Written),
        "served from the cache now"
    );
    // Credentials there that no session tool wrote are the user's: warned
    // about, never removed.
    let mut text = f.text();
    text = text.replace(
        "[100000000000]\n",
        "[100000000000]\naws_access_key_id = AKIAUSERUSERUSER0000\naws_secret_access_key = mine\n",
    );
    std::fs::write(&f.credentials, &text).unwrap();
    let summary = f.summary().await;
    let section = summary.plan.section("100000000000").unwrap();
    assert!(section.remove_from_file.is_empty());
    assert!(
        section
            .warnings
            .iter()
            .any(|w| w.contains("before credential_process")),
        "{:?}",
        section.warnings
    );
    assert_eq!(f.text(), text);
}

mod sso;
