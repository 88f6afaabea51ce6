//! Executor tests with fake code and STS ports and a fake clock; the
//! credentials file and the session cache are real files in a temp dir.

use super::*;
use crate::config::{LoadOptions, load};
use crate::daemon::ports::{
    BoxFuture, Clock, Code, CodeProvider, Endpoint, MfaCode, SigningKeys, StsApi,
};
use crate::plan::KnownMfaSessions;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use time::macros::datetime;

struct FixedClock(Mutex<OffsetDateTime>);

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// Hands out codes whose steps come from a script (then keep increasing).
struct FakeCodes {
    steps: Mutex<Vec<u64>>,
    next: AtomicUsize,
    calls: AtomicUsize,
}

impl FakeCodes {
    fn new(steps: &[u64]) -> Self {
        FakeCodes {
            steps: Mutex::new(steps.to_vec()),
            next: AtomicUsize::new(1000),
            calls: AtomicUsize::new(0),
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
}

impl FakeSts {
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
        _signer: &'a SigningKeys,
        _endpoint: &'a Endpoint,
        _role: &'a RoleSettings,
        mfa: Option<MfaCode<'a>>,
    ) -> BoxFuture<'a, Result<SessionCredentials, UnitError>> {
        Box::pin(async move {
            let n = self.assume_role.fetch_add(1, Ordering::SeqCst);
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

const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

struct Fixture {
    _dir: tempfile::TempDir,
    sections: Vec<Section>,
    file: CredentialsFile,
    cache: SessionCache,
    scheduler: Scheduler,
    codes: Arc<FakeCodes>,
    sts: Arc<FakeSts>,
    clock: Arc<FixedClock>,
}

impl Fixture {
    fn new(config: &str, steps: &[u64]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, config).unwrap();
        let credentials = dir.path().join("credentials");
        std::fs::write(&credentials, "# keep me\n[default]\naws_access_key_id = AKIAAAAAAAAAAAAAAAAA\naws_secret_access_key = longterm\n").unwrap();
        let env = |_: &str| None;
        let sections = load(
            &LoadOptions {
                path: Some(config_path),
                ..Default::default()
            },
            &env,
        )
        .unwrap()
        .sections;
        Fixture {
            sections,
            file: CredentialsFile::new(credentials, 2),
            cache: SessionCache::new(Some(dir.path().join("runtime"))),
            scheduler: Scheduler::with_seed(1),
            codes: Arc::new(FakeCodes::new(steps)),
            sts: Arc::new(FakeSts::default()),
            clock: Arc::new(FixedClock(Mutex::new(NOW))),
            _dir: dir,
        }
    }

    async fn pass(&mut self) -> PassReport {
        let executor = Executor {
            codes: self.codes.clone(),
            sts: self.sts.clone(),
            clock: self.clock.clone(),
            concurrency: 8,
        };
        let document = self.file.read().unwrap();
        let known: KnownMfaSessions = {
            let lock = self.cache.lock().unwrap();
            self.cache.load(&lock).known(self.clock.now())
        };
        let plan = crate::plan::plan(&self.sections, &document, &known, self.clock.now());
        let state = PassState {
            cache: &mut self.cache,
            scheduler: &mut self.scheduler,
        };
        executor
            .execute(&plan, &self.sections, &document, &self.file, state)
            .await
    }

    fn text(&self) -> String {
        std::fs::read_to_string(self.file.path()).unwrap()
    }
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
    assert_eq!(f.sts.get_session_token.load(Ordering::SeqCst), 1);
    assert_eq!(f.sts.assume_role.load(Ordering::SeqCst), 20);
    assert!(report.wrote);
    assert_eq!(
        report
            .outcomes
            .values()
            .filter(|o| **o == Outcome::Written)
            .count(),
        20
    );
    let max = f.sts.max_in_flight.load(Ordering::SeqCst);
    assert!((2..=8).contains(&max), "AssumeRole concurrency was {max}");
    let text = f.text();
    assert!(text.starts_with("# keep me\n[default]\n"));
    assert_eq!(text.matches("aws_session_token = token-").count(), 20);
    // One backup: one write.
    assert!(f.file.path().with_file_name("credentials.1").exists());
    assert!(!f.file.path().with_file_name("credentials.2").exists());

    // The second pass finds everything fresh in the plan: nothing to do.
    let report = f.pass().await;
    assert_eq!(report.codes_used, 0);
    assert!(!report.wrote);
}

#[tokio::test]
async fn a_deleted_profile_is_restored_from_the_cached_mfa_session_without_a_code() {
    let mut f = Fixture::new(&org(2), &[]);
    f.pass().await;
    let text = f.text().replace("[100000000001]", "[gone]");
    std::fs::write(f.file.path(), text).unwrap();
    let report = f.pass().await;
    assert_eq!(report.codes_used, 0);
    assert_eq!(f.sts.get_session_token.load(Ordering::SeqCst), 1);
    assert_eq!(f.sts.assume_role.load(Ordering::SeqCst), 3);
    assert!(f.text().contains("[100000000001]"));
}

#[tokio::test]
async fn a_used_totp_step_is_never_sent_twice() {
    // The provider returns step 100 twice: the second code must wait for the
    // next step (the clock stands just before it), and STS sees two codes.
    let config = "mfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"x\"\nmfa_session_duration = 0\nassume_session_duration = 3600\n[a]\nassume_role_arn = \"arn:aws:iam::111111111111:role/R\"\n[b]\nassume_role_arn = \"arn:aws:iam::222222222222:role/R\"\n";
    let mut f = Fixture::new(config, &[100, 100, 101]);
    *f.clock.0.lock().unwrap() = OffsetDateTime::from_unix_timestamp(101 * 30 - 1).unwrap();
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
    assert_eq!(report.outcomes.len(), 2);
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
    assert_eq!(
        report
            .outcomes
            .values()
            .filter(|o| matches!(o, Outcome::Failed(_)))
            .count(),
        3
    );
    let device = Unit::Device("arn:aws:iam::123457890123:mfa/me".into());
    assert_eq!(
        f.scheduler.state(&device).unwrap().failures,
        1,
        "one failure per pass, not per section"
    );
    for _ in 0..5 {
        let report = f.pass().await;
        assert!(
            report
                .outcomes
                .values()
                .all(|o| matches!(o, Outcome::Waiting(_))),
            "{report:?}"
        );
    }
    assert_eq!(
        f.sts.get_session_token.load(Ordering::SeqCst),
        1,
        "parked: no further calls"
    );
    assert_eq!(
        f.codes.calls.load(Ordering::SeqCst),
        1,
        "parked: no further codes"
    );
    // Thirty minutes later it tries again.
    *f.clock.0.lock().unwrap() = NOW + Duration::minutes(31);
    let report = f.pass().await;
    assert!(report.wrote);
}

#[tokio::test]
async fn an_expired_mfa_session_is_dropped_and_replaced() {
    let mut f = Fixture::new(&org(1), &[]);
    f.pass().await;
    std::fs::write(f.file.path(), f.text().replace("[100000000000]", "[x]")).unwrap();
    f.sts.fail_next("AssumeRole", RetryClass::Reauthenticate);
    let report = f.pass().await;
    assert!(report.rerun);
    assert!(!report.wrote);
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
    assert_eq!(
        report
            .outcomes
            .values()
            .filter(|o| **o == Outcome::Written)
            .count(),
        2
    );
    assert_eq!(report.failed_units.len(), 1);
    assert!(matches!(
        report.failed_units.values().next(),
        Some(Unit::Section(_))
    ));
}

#[tokio::test]
async fn backoff_counts_from_the_end_of_a_slow_attempt() {
    // AssumeRole times out after 20 s: the next attempt is still a backoff
    // away from when the attempt ended, not already due.
    let mut f = Fixture::new(&org(1), &[]);
    f.pass().await;
    std::fs::write(f.file.path(), f.text().replace("[100000000000]", "[x]")).unwrap();
    *f.sts.slow.lock().unwrap() = Some((f.clock.clone(), Duration::seconds(20)));
    f.sts.fail_next("AssumeRole", RetryClass::Soon);
    let report = f.pass().await;
    assert!(!report.wrote);
    let unit = Unit::Section("100000000000".into());
    let ended = f.clock.now();
    assert_eq!(ended, NOW + Duration::seconds(20));
    let next = f.scheduler.state(&unit).unwrap().next_attempt;
    assert!(next > ended, "next attempt {next} is not after {ended}");
    let calls = f.sts.assume_role.load(Ordering::SeqCst);
    let report = f.pass().await;
    assert!(
        report
            .outcomes
            .values()
            .all(|o| matches!(o, Outcome::Waiting(_))),
        "{report:?}"
    );
    assert_eq!(f.sts.assume_role.load(Ordering::SeqCst), calls);
}

#[tokio::test]
async fn credentials_due_on_arrival_are_written_once_then_the_section_backs_off() {
    // The role's credentials expire 30 s from now, inside the 300 s margin
    // (a clock ahead of AWS's): written, but not asked for again at once.
    let mut f = Fixture::new(&org(1), &[]);
    *f.sts.role_lifetime.lock().unwrap() = Some(30);
    let report = f.pass().await;
    assert!(report.wrote);
    assert_eq!(f.sts.assume_role.load(Ordering::SeqCst), 1);
    let unit = Unit::Section("100000000000".into());
    let state = f.scheduler.state(&unit).expect("backing off");
    assert_eq!(state.class, RetryClass::Soon);
    assert!(state.message.contains("system clock"), "{}", state.message);
    for _ in 0..3 {
        let report = f.pass().await;
        assert!(!report.wrote);
    }
    assert_eq!(f.sts.assume_role.load(Ordering::SeqCst), 1, "no hammering");
    // After the backoff it asks again.
    *f.clock.0.lock().unwrap() = NOW + Duration::seconds(10);
    f.pass().await;
    assert_eq!(f.sts.assume_role.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_read_only_credentials_file_costs_no_code() {
    use std::os::unix::fs::PermissionsExt;
    let mut f = Fixture::new(&org(2), &[]);
    std::fs::set_permissions(f.file.path(), std::fs::Permissions::from_mode(0o400)).unwrap();
    let report = f.pass().await;
    assert!(!report.wrote);
    assert_eq!(f.codes.calls.load(Ordering::SeqCst), 0, "no code spent");
    assert_eq!(f.sts.get_session_token.load(Ordering::SeqCst), 0);
    assert_eq!(f.sts.assume_role.load(Ordering::SeqCst), 0);
    for outcome in report.outcomes.values() {
        assert!(
            matches!(outcome, Outcome::Failed(e) if e.message.contains("read-only") && e.class == RetryClass::NeedsUser),
            "{outcome:?}"
        );
    }
    assert_eq!(report.outcomes.len(), 2);
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
    std::fs::write(f.file.path(), &text).unwrap();
    let report = f.pass().await;
    assert!(report.wrote, "{report:?}");
    assert_eq!(report.outcomes["100000000001"], Outcome::Written);
    assert!(
        matches!(&report.outcomes["100000000000"], Outcome::Failed(e) if e.message.contains("indented line")),
        "{report:?}"
    );
    let after = f.text();
    assert!(after.starts_with(&text), "the refused profile was touched");
    assert!(after.contains("[100000000001]"));
    assert_eq!(
        report.failed_units["100000000000"],
        Unit::Section("100000000000".into())
    );
}
