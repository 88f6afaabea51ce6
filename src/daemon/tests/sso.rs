//! The pass with IAM Identity Center sections: a fake `SsoApi` (the token
//! cache as a value, sign-ins a test approves, the portal counting its
//! calls) with the real config, credentials file and planner.

use super::*;
use crate::daemon::decide::{SsoNeeds, SsoToken};
use crate::daemon::ports::{AccessToken, DeviceCode, SsoApi, SsoSession, TokenNow};
use crate::sso::{SignInOrigin, TokenStatus};
use std::sync::atomic::AtomicBool;

/// The token cache of one SSO session, and what the fake service does.
#[derive(Default)]
struct State {
    /// The cached token: its expiry, and whether it can be refreshed.
    token: Option<(OffsetDateTime, bool)>,
    /// Refresh tokens are refused (a sign-out, a revoked session).
    refusing: bool,
    /// A sign-in waits for its approval.
    signing_in: bool,
    /// Accounts and roles the person may not use.
    forbidden: Vec<(String, String)>,
    /// The next GetRoleCredentials calls answer "token refused".
    reject_tokens: usize,
    /// GetRoleCredentials beyond this many at once are throttled.
    throttle_above: Option<usize>,
}

pub(super) struct FakeSso {
    clock: Arc<FixedClock>,
    state: Mutex<State>,
    /// Sign-ins wait for [`FakeSso::approve`] (else approved at once).
    hold: AtomicBool,
    /// The person denies the sign-in.
    deny: AtomicBool,
    approval: tokio::sync::Notify,
    sign_ins: AtomicUsize,
    codes_shown: AtomicUsize,
    refreshes: AtomicUsize,
    role_credentials: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    throttled: AtomicUsize,
}

const USER_CODE: &str = "ABCD-EFGH";
const LIFETIME: Duration = Duration::hours(8);

impl FakeSso {
    pub(super) fn new(clock: Arc<FixedClock>) -> Self {
        FakeSso {
            clock,
            state: Mutex::default(),
            hold: AtomicBool::new(false),
            deny: AtomicBool::new(false),
            approval: tokio::sync::Notify::new(),
            sign_ins: AtomicUsize::new(0),
            codes_shown: AtomicUsize::new(0),
            refreshes: AtomicUsize::new(0),
            role_credentials: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            throttled: AtomicUsize::new(0),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn set_token(&self, expires: OffsetDateTime, refreshable: bool) {
        self.state().token = Some((expires, refreshable));
    }

    fn approve(&self) {
        self.approval.notify_one();
    }

    /// (sign-ins, codes shown, refreshes, GetRoleCredentials)
    fn counts(&self) -> (usize, usize, usize, usize) {
        (
            self.sign_ins.load(Ordering::SeqCst),
            self.codes_shown.load(Ordering::SeqCst),
            self.refreshes.load(Ordering::SeqCst),
            self.role_credentials.load(Ordering::SeqCst),
        )
    }

    fn code(&self, session: &SsoSession) -> DeviceCode {
        DeviceCode {
            session: session.name.clone(),
            start_url: session.start_url.clone(),
            verification_uri: "https://device.sso.eu-west-1.amazonaws.com/".to_string(),
            verification_uri_complete: Some(format!(
                "https://device.sso.eu-west-1.amazonaws.com/?user_code={USER_CODE}"
            )),
            user_code: USER_CODE.to_string(),
            expires_at: self.clock.now() + Duration::minutes(10),
            origin: SignInOrigin::ThisProcess,
        }
    }
}

fn token_secret(n: usize) -> AccessToken {
    AccessToken::new(format!("token-{n}").into(), NOW + LIFETIME)
}

impl SsoApi for FakeSso {
    fn token_status(
        &self,
        session: &SsoSession,
        now: OffsetDateTime,
    ) -> Result<TokenStatus, UnitError> {
        let state = self.state();
        let window = crate::sso::REFRESH_WINDOW;
        Ok(match state.token {
            _ if state.signing_in => TokenStatus::SignInPending(self.code(session)),
            Some((expires, refreshable)) if expires - now >= window => TokenStatus::Valid {
                expires_at: expires,
                refresh_at: expires - window,
                refreshable,
            },
            Some((expires, true)) => TokenStatus::RefreshDue {
                expires_at: expires,
            },
            Some((expires, false)) if expires > now => TokenStatus::Valid {
                expires_at: expires,
                refresh_at: expires,
                refreshable: false,
            },
            _ => TokenStatus::SignInNeeded,
        })
    }

    fn token<'a>(&'a self, _session: &'a SsoSession) -> BoxFuture<'a, Result<TokenNow, UnitError>> {
        Box::pin(async move {
            let now = self.clock.now();
            let mut state = self.state();
            if state.signing_in {
                return Ok(TokenNow::SignInUnderWay);
            }
            Ok(match state.token {
                Some((expires, _)) if expires - now >= crate::sso::REFRESH_WINDOW => {
                    TokenNow::Token(token_secret(0))
                }
                Some((_, true)) if state.refusing => {
                    state.token = None;
                    TokenNow::SignInNeeded
                }
                Some((_, true)) => {
                    let n = self.refreshes.fetch_add(1, Ordering::SeqCst);
                    state.token = Some((now + LIFETIME, true));
                    TokenNow::Token(token_secret(n + 1))
                }
                Some((expires, false)) if expires > now => TokenNow::Token(token_secret(0)),
                _ => TokenNow::SignInNeeded,
            })
        })
    }

    fn sign_in<'a>(
        &'a self,
        session: &'a SsoSession,
        on_code: &'a (dyn Fn(&DeviceCode) + Send + Sync),
    ) -> BoxFuture<'a, Result<(), UnitError>> {
        Box::pin(async move {
            self.sign_ins.fetch_add(1, Ordering::SeqCst);
            self.state().signing_in = true;
            self.codes_shown.fetch_add(1, Ordering::SeqCst);
            on_code(&self.code(session));
            if self.hold.load(Ordering::SeqCst) {
                self.approval.notified().await;
            }
            let mut state = self.state();
            state.signing_in = false;
            if self.deny.load(Ordering::SeqCst) {
                return Err(UnitError::new(
                    RetryClass::NeedsUser,
                    "IAM Identity Center CreateToken for sso-session corp: sign-in denied",
                ));
            }
            state.token = Some((self.clock.now() + LIFETIME, true));
            state.refusing = false;
            Ok(())
        })
    }

    fn role_credentials<'a>(
        &'a self,
        _session: &'a SsoSession,
        _token: &'a AccessToken,
        account_id: &'a str,
        role_name: &'a str,
    ) -> BoxFuture<'a, Result<SessionCredentials, UnitError>> {
        Box::pin(async move {
            let n = self.role_credentials.fetch_add(1, Ordering::SeqCst);
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let mut state = self.state();
            if state.throttle_above.is_some_and(|limit| now > limit) {
                self.throttled.fetch_add(1, Ordering::SeqCst);
                let mut error = UnitError::new(RetryClass::Soon, "TooManyRequestsException");
                error.throttled = true;
                return Err(error);
            }
            if state.reject_tokens > 0 {
                state.reject_tokens -= 1;
                return Err(UnitError::new(
                    RetryClass::Reauthenticate,
                    "IAM Identity Center GetRoleCredentials: access token refused",
                ));
            }
            if state
                .forbidden
                .iter()
                .any(|(a, r)| a == account_id && r == role_name)
            {
                return Err(UnitError::new(
                    RetryClass::NeedsUser,
                    format!("you may not use account {account_id} with role {role_name}"),
                ));
            }
            let mut creds = FakeSts::credentials("ASIASSO", n);
            creds.expiration = self.clock.now() + Duration::hours(1);
            Ok(creds)
        })
    }
}

const SESSION: &str = "[sso-session.corp]\nsso_start_url = \"https://d-1234567890.awsapps.com/start\"\nsso_region = \"eu-west-1\"\n";

/// `n` accounts with the role ReadOnly, as one template.
fn sso_org(n: usize) -> String {
    let accounts: Vec<String> = (0..n)
        .map(|i| format!("\"{:012}\"", 200_000_000_000u64 + i as u64))
        .collect();
    format!(
        "{SESSION}\n[every]\nsso_session = \"corp\"\nsso_role_name = \"ReadOnly\"\nsso_account_id = [{}]\n",
        accounts.join(", ")
    )
}

fn section(i: usize) -> String {
    format!("{:012}-ReadOnly", 200_000_000_000u64 + i as u64)
}

impl Fixture {
    /// The next event a sign-in task sends the loop (within 5 s).
    async fn sign_in_event(&mut self) -> Event {
        let events = self.events.as_mut().expect("a fixture with sign-in tasks");
        tokio::time::timeout(std::time::Duration::from_secs(5), events.recv())
            .await
            .expect("a sign-in event within 5 s")
            .expect("the channel is open")
    }

    /// The plan of a fresh observation (what `plan` would print now).
    async fn planned(&mut self) -> Plan {
        let now = self.clock.now();
        let mut cache = SessionCache::new(Some(self.dir.path().join("runtime")));
        let mut observation = self.daemon.observer.observe(&mut cache, now).await.unwrap();
        observation.recorded = self.daemon.settler.recorded();
        observation.plan()
    }

    fn awaiting(report: &PassReport) -> usize {
        report
            .outcomes
            .values()
            .filter(|o| matches!(o, Outcome::AwaitingSignIn { .. }))
            .count()
    }
}

/// Every section the pass gave work failed with `unit`, saying `what`.
fn all_failed_with(report: &PassReport, unit: &Unit, what: &str) -> bool {
    report.outcomes.values().all(|o| {
        matches!(o, Outcome::Failed { unit: u, error } if u == unit && error.message.contains(what))
    })
}

#[tokio::test]
async fn twenty_sections_cold_one_sign_in_beside_the_loop_then_twenty_role_credentials() {
    let mut f = Fixture::with_sign_in_tasks(&sso_org(20));
    f.sso.hold.store(true, Ordering::SeqCst);
    let before = f.text();

    let plan = f.planned().await;
    assert_eq!(
        (
            plan.work.sso_sign_ins,
            plan.work.sso_token_refreshes,
            plan.work.get_role_credentials_calls
        ),
        (1, 0, 20),
        "{:?}",
        plan.work
    );
    assert_eq!(plan.sso_sessions[0].needs, SsoNeeds::SignIn);

    // The pass starts the sign-in and does not wait for it.
    let started = std::time::Instant::now();
    let summary = f.summary().await;
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(
        Fixture::awaiting(&summary.report),
        20,
        "{:?}",
        summary.report
    );
    assert!(!summary.report.wrote);
    assert_eq!(f.text(), before, "nothing written");
    assert!(summary.plan.sections.iter().all(
        |s| matches!(&s.action, Action::AwaitSignIn { sso_session } if sso_session == "corp")
    ));
    assert_eq!(
        summary.next_reason,
        Reason::Periodic,
        "no timer of their own"
    );

    // Its code wakes the loop; the pass after it shows the code and
    // starts nothing new.
    assert_eq!(f.sign_in_event().await, Event::SignIn);
    let summary = f.daemon.pass(Reason::SignIn).await.unwrap();
    assert_eq!(f.sso.counts(), (1, 1, 0, 0));
    let line = status_line(&summary.plan);
    assert!(
        line.contains(USER_CODE) && line.contains("user_code="),
        "{line}"
    );
    assert!(matches!(
        &summary.plan.sso_sessions[0].token,
        SsoToken::SignInPending(p) if p.by_this_process && p.user_code.as_deref() == Some(USER_CODE)
    ));

    // The approval ends it and wakes the loop: one batch of role credentials.
    f.sso.approve();
    assert_eq!(f.sign_in_event().await, Event::SignIn);
    let summary = f.daemon.pass(Reason::SignIn).await.unwrap();
    assert_eq!(summary.report.written(), 20, "{:?}", summary.report);
    assert_eq!(summary.report.portal_calls, 20);
    assert_eq!(f.sso.counts(), (1, 1, 0, 20));
    assert!(summary.plan.all_fresh());
    let text = f.text();
    assert_eq!(text.matches("aws_access_key_id = ASIASSO").count(), 20);
    assert!(text.contains(&format!("[{}]", section(19))), "{text}");
}

#[tokio::test]
async fn apply_waits_for_the_sign_in_and_costs_what_the_plan_says() {
    let mut f = Fixture::new(&sso_org(3), &[]);
    let plan = f.planned().await;
    let report = f.pass().await;
    assert_eq!(report.written(), 3, "{report:?}");
    let (sign_ins, _, refreshes, portal) = f.sso.counts();
    assert_eq!(
        (sign_ins, refreshes, portal),
        (
            plan.work.sso_sign_ins,
            plan.work.sso_token_refreshes,
            plan.work.get_role_credentials_calls
        )
    );
    assert_eq!((sign_ins, portal), (1, 3));
    // From the cached token next time, without a person.
    let text = f.text().replace(&format!("[{}]", section(1)), "[gone]");
    std::fs::write(&f.credentials, text).unwrap();
    let plan = f.planned().await;
    assert_eq!(plan.work.sso_sign_ins, 0);
    assert_eq!(plan.work.get_role_credentials_calls, 1);
    assert_eq!(f.pass().await.written(), 1);
    assert_eq!(f.sso.counts(), (1, 1, 0, 4));
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_without_a_person() {
    let mut f = Fixture::with_sign_in_tasks(&sso_org(2));
    f.sso.set_token(NOW - Duration::minutes(1), true);
    let plan = f.planned().await;
    assert_eq!(plan.sso_sessions[0].needs, SsoNeeds::Refresh);
    assert_eq!(
        (plan.work.sso_sign_ins, plan.work.sso_token_refreshes),
        (0, 1)
    );
    let report = f.pass().await;
    assert_eq!(report.written(), 2, "{report:?}");
    assert_eq!(f.sso.counts(), (0, 0, 1, 2), "no sign-in");
}

#[tokio::test]
async fn a_refused_refresh_token_costs_one_sign_in_and_writes_nothing_until_it_is_approved() {
    let mut f = Fixture::with_sign_in_tasks(&sso_org(2));
    f.sso.set_token(NOW - Duration::minutes(1), true);
    f.sso.state().refusing = true;
    f.sso.hold.store(true, Ordering::SeqCst);
    let before = f.text();
    let report = f.pass().await;
    assert_eq!(Fixture::awaiting(&report), 2, "{report:?}");
    assert_eq!(f.sign_in_event().await, Event::SignIn);
    // However often the loop wakes meanwhile: one code, nothing written.
    for _ in 0..3 {
        let report = f.daemon.pass(Reason::Periodic).await.unwrap().report;
        assert!(!report.wrote);
    }
    assert_eq!(f.sso.counts(), (1, 1, 0, 0));
    assert_eq!(f.text(), before);
    f.sso.approve();
    assert_eq!(f.sign_in_event().await, Event::SignIn);
    let report = f.daemon.pass(Reason::SignIn).await.unwrap().report;
    assert_eq!(report.written(), 2, "{report:?}");
    assert_eq!(f.sso.counts(), (1, 1, 0, 2));
}

#[tokio::test]
async fn a_denied_sign_in_backs_the_sso_session_off_instead_of_asking_again() {
    let mut f = Fixture::with_sign_in_tasks(&sso_org(2));
    f.sso.hold.store(true, Ordering::SeqCst);
    f.sso.deny.store(true, Ordering::SeqCst);
    f.pass().await;
    assert_eq!(f.sign_in_event().await, Event::SignIn);
    f.sso.approve();
    assert_eq!(f.sign_in_event().await, Event::SignIn);
    let summary = f.daemon.pass(Reason::SignIn).await.unwrap();
    let unit = Unit::SsoSession("corp".into());
    assert!(
        all_failed_with(&summary.report, &unit, "denied"),
        "{:?}",
        summary.report
    );
    let state = f.daemon.settler.scheduler().state(&unit).unwrap();
    assert_eq!(state.class, RetryClass::NeedsUser);
    assert!(state.next_attempt >= NOW + settle::PARKED_RETRY);
    // The sections wait for the backoff; no second sign-in.
    let summary = f.summary().await;
    assert!(
        summary
            .plan
            .sections
            .iter()
            .all(|s| matches!(&s.action, Action::Wait { unit: u, .. } if *u == unit))
    );
    assert_eq!(f.sso.counts().0, 1);
    // A change of the config (a fix) tries again at once.
    f.sso.deny.store(false, Ordering::SeqCst);
    f.sso.hold.store(false, Ordering::SeqCst);
    let summary = f.daemon.pass(Reason::ConfigChanged).await.unwrap();
    assert_eq!(Fixture::awaiting(&summary.report), 2);
    assert_eq!(f.sign_in_event().await, Event::SignIn);
    assert_eq!(f.sign_in_event().await, Event::SignIn);
    let report = f.daemon.pass(Reason::SignIn).await.unwrap().report;
    assert_eq!(report.written(), 2, "{report:?}");
}

#[tokio::test]
async fn a_pending_sign_in_holds_up_no_yubikey_section() {
    let config = format!(
        "{}\n[mfa]\nmfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"unused\"\nassume_role_arn = \"arn:aws:iam::{{section}}:role/R\"\n[mfa.100000000000]\n[mfa.100000000001]\n",
        sso_org(2)
    );
    let mut f = Fixture::with_sign_in_tasks(&config);
    f.sso.hold.store(true, Ordering::SeqCst);
    let report = f.pass().await;
    assert_eq!(report.written(), 2, "the MFA sections: {report:?}");
    assert_eq!(Fixture::awaiting(&report), 2);
    assert_eq!(f.calls(), (1, 1, 2));
    assert_eq!(f.sign_in_event().await, Event::SignIn);
    f.sso.approve();
    assert_eq!(f.sign_in_event().await, Event::SignIn);
    let report = f.daemon.pass(Reason::SignIn).await.unwrap().report;
    assert_eq!(report.written(), 2);
    assert_eq!(f.calls(), (1, 1, 2), "the MFA sections are left alone");
    let text = f.text();
    assert_eq!(
        text.matches("aws_access_key_id = ASIA").count(),
        4,
        "{text}"
    );
}

#[tokio::test]
async fn an_account_the_person_may_not_use_fails_alone_and_names_account_and_role() {
    let mut f = Fixture::new(&sso_org(3), &[]);
    f.sso
        .state()
        .forbidden
        .push(("200000000001".into(), "ReadOnly".into()));
    let report = f.pass().await;
    assert_eq!(report.written(), 2);
    match &report.outcomes[&section(1)] {
        Outcome::Failed { unit, error } => {
            assert_eq!(*unit, Unit::Section(section(1)));
            assert!(
                error
                    .message
                    .contains("account 200000000001 with role ReadOnly")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_refused_token_is_the_sso_sessions_failure_and_is_replaced_at_once() {
    let mut f = Fixture::new(&sso_org(2), &[]);
    f.sso.set_token(NOW + Duration::hours(4), true);
    f.sso.state().reject_tokens = 2;
    let summary = f.summary().await;
    assert_eq!(failed(&summary.report), 2);
    let unit = Unit::SsoSession("corp".into());
    assert!(all_failed_with(&summary.report, &unit, "refused"));
    assert_eq!(summary.next_reason, Reason::Retry);
    assert!(summary.next_wake <= NOW, "re-authenticated at once");
    let report = f.daemon.pass(Reason::Retry).await.unwrap().report;
    assert_eq!(report.written(), 2, "{report:?}");
}

#[tokio::test]
async fn throttled_role_credentials_lower_the_window_and_the_pass_completes() {
    let mut f = Fixture::new(&sso_org(12), &[]);
    f.sso.set_token(NOW + Duration::hours(4), true);
    f.sso.state().throttle_above = Some(3);
    let report = f.pass().await;
    assert_eq!(report.written(), 12, "{report:?}");
    assert!(f.sso.throttled.load(Ordering::SeqCst) > 0);
    assert_eq!(
        report.portal_calls,
        12 + f.sso.throttled.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn a_role_chained_from_the_sso_role_is_signed_with_its_credentials() {
    let config = format!(
        "{SESSION}\n[chained]\nsso_session = \"corp\"\nsso_account_id = \"200000000000\"\nsso_role_name = \"ReadOnly\"\nassume_role_arn = \"arn:aws:iam::300000000000:role/Deploy\"\n"
    );
    let mut f = Fixture::new(&config, &[]);
    f.sso.set_token(NOW + Duration::hours(4), true);
    let plan = f.planned().await;
    assert_eq!(
        (
            plan.work.get_role_credentials_calls,
            plan.work.assume_role_calls
        ),
        (1, 1)
    );
    let report = f.pass().await;
    assert_eq!(report.written(), 1, "{report:?}");
    let signers = f.sts.signers.lock().unwrap().clone();
    assert_eq!(signers.len(), 1);
    assert!(signers[0].starts_with("ASIASSO"), "{signers:?}");
    assert!(
        f.text().contains("ASIAROLE"),
        "the role's session is written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_that_waits_for_a_touch_holds_up_no_sso_section() {
    let config = format!(
        "{}\n[mfa]\nmfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"unused\"\nmfa_session_duration = 0\nassume_role_arn = \"arn:aws:iam::{{section}}:role/R\"\n[mfa.100000000000]\n",
        sso_org(2)
    );
    let f = Fixture::new(&config, &[]);
    f.sso.set_token(NOW + Duration::hours(4), true);
    let (touch, touched) = std::sync::mpsc::channel();
    *f.codes.touch.lock().unwrap() = Some(touched);
    let credentials = f.credentials.clone();
    let pass = tokio::spawn(async move {
        let mut f = f;
        let report = f.pass().await;
        (f, report)
    });
    // The SSO sections are written while the code still waits.
    sso_written_before_the_mfa_section(&credentials).await;
    touch.send(()).unwrap();
    let (f, report) = pass.await.unwrap();
    assert_eq!(report.written(), 3, "{report:?}");
    assert!(f.text().contains("[100000000000]"));
    assert_eq!(report.portal_calls, 2);
    assert_eq!(report.codes_used, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_that_ends_while_a_code_waits_is_served_in_that_pass() {
    let config = format!(
        "{}\n[mfa]\nmfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"unused\"\nmfa_session_duration = 0\nassume_role_arn = \"arn:aws:iam::{{section}}:role/R\"\n[mfa.100000000000]\n",
        sso_org(2)
    );
    let mut f = Fixture::with_sign_in_tasks(&config);
    f.sso.hold.store(true, Ordering::SeqCst);
    // The sign-in starts and waits for the person.
    let report = f.pass().await;
    assert_eq!(Fixture::awaiting(&report), 2);
    assert_eq!(f.sign_in_event().await, Event::SignIn);
    // A pass whose code waits for a touch: the MFA section is due again.
    let text = f.text().replace("[100000000000]", "[gone]");
    std::fs::write(&f.credentials, text).unwrap();
    let (touch, touched) = std::sync::mpsc::channel();
    *f.codes.touch.lock().unwrap() = Some(touched);
    let (credentials, sso) = (f.credentials.clone(), f.sso.clone());
    let pass = tokio::spawn(async move {
        let mut f = f;
        let report = f
            .daemon
            .pass(Reason::CredentialsChanged)
            .await
            .unwrap()
            .report;
        (f, report)
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // The person approves meanwhile: the SSO sections are written before
    // the touch.
    sso.approve();
    sso_written_before_the_mfa_section(&credentials).await;
    touch.send(()).unwrap();
    let (f, report) = pass.await.unwrap();
    assert_eq!(report.written(), 3, "{report:?}");
    assert_eq!(f.sso.counts(), (1, 1, 0, 2), "one sign-in");
}

/// Waits (5 s at most) for both SSO sections in the credentials file, and
/// checks that the MFA section is not there yet.
async fn sso_written_before_the_mfa_section(credentials: &std::path::Path) {
    let started = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(credentials).unwrap();
        if (0..2).all(|i| text.contains(&format!("[{}]", section(i)))) {
            assert!(!text.contains("[100000000000]"), "{text}");
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
