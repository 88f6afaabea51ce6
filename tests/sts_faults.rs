//! `sts` error classification against real answers: the fault-injecting
//! front (examples/sts_fault_front) in front of a moto_server, both started
//! per test on free 127.0.0.1 ports. The SDK parses the front's STS XML
//! errors; the tests check the resulting kind and retry class, and read the
//! front's counts to check that each call is exactly one HTTP request.

#[path = "support/example_bin.rs"]
mod example_bin;
#[path = "../examples/sts_fault_front/mfa.rs"]
#[allow(dead_code)]
mod front_mfa;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/sts_front.rs"]
mod sts_front;
#[path = "support/tools.rs"]
mod tools;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_session_daemon::config::RoleSettings;
use aws_session_daemon::retry::{Classified, RetryClass};
use aws_session_daemon::secret::SecretString;
use aws_session_daemon::session::SessionCredentials;
use aws_session_daemon::sts::{
    Endpoint, MfaCode, SigningKeys, StsClients, StsError, StsErrorKind, Timeouts, TransportKind,
    ValidationKind,
};
use moto::Moto;
use serde_json::json;
use sts_front::StsFront;

const SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";
/// base32 of the RFC 6238 secret "12345678901234567890".
const TOTP_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

struct Setup {
    // Dropped in this order: the front, then moto.
    front: StsFront,
    _moto: Moto,
    endpoint: Endpoint,
    clients: StsClients,
}

fn setup(front_args: &[&str]) -> Setup {
    let moto = Moto::start();
    let front = StsFront::start(&moto.url, front_args);
    Setup {
        endpoint: Endpoint::new("us-east-1", Some(front.url.clone())),
        front,
        _moto: moto,
        clients: StsClients::with_timeouts(Timeouts {
            connect: Duration::from_secs(2),
            operation: Duration::from_secs(2),
        }),
    }
}

fn long_term_keys() -> SigningKeys {
    SigningKeys::long_term(
        "AKIAI44QH8DHBEXAMPLE",
        SecretString::from("je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"),
    )
}

fn role(duration: u32) -> RoleSettings {
    RoleSettings {
        arn: "arn:aws:iam::210987654321:role/Admin".to_string(),
        duration,
        session_name: "faults".to_string(),
        source_identity: None,
        external_id: None,
        policy_arns: Vec::new(),
        policy: None,
    }
}

/// A fresh six-digit code per call, so that the front's single-use check
/// does not refuse a code the test did not mean to reuse.
fn fresh_code() -> SecretString {
    static NEXT: AtomicU32 = AtomicU32::new(100_000);
    SecretString::from(NEXT.fetch_add(1, Ordering::Relaxed).to_string())
}

/// GetSessionToken of 3600 s with `code`, its answer judged at `now`.
async fn session_at(
    clients: &StsClients,
    endpoint: &Endpoint,
    code: &SecretString,
    now: time::OffsetDateTime,
) -> Result<SessionCredentials, StsError> {
    let mfa = MfaCode {
        serial_number: SERIAL,
        code,
    };
    clients
        .get_session_token(&long_term_keys(), endpoint, mfa, 3600, now)
        .await
}

impl Setup {
    async fn session(&self) -> Result<SessionCredentials, StsError> {
        self.session_with(&fresh_code()).await
    }

    async fn session_with(&self, code: &SecretString) -> Result<SessionCredentials, StsError> {
        session_at(
            &self.clients,
            &self.endpoint,
            code,
            time::OffsetDateTime::now_utc(),
        )
        .await
    }

    async fn chained(
        &self,
        session: &SessionCredentials,
        duration: u32,
    ) -> Result<SessionCredentials, StsError> {
        self.clients
            .assume_role(
                &SigningKeys::session(session),
                &self.endpoint,
                &role(duration),
                None,
                time::OffsetDateTime::now_utc(),
            )
            .await
    }

    async fn direct(
        &self,
        code: &SecretString,
        duration: u32,
    ) -> Result<SessionCredentials, StsError> {
        let mfa = MfaCode {
            serial_number: SERIAL,
            code,
        };
        self.clients
            .assume_role(
                &long_term_keys(),
                &self.endpoint,
                &role(duration),
                Some(mfa),
                time::OffsetDateTime::now_utc(),
            )
            .await
    }

    fn count(&self, path: &[&str]) -> u64 {
        let mut value = self.front.stats();
        for key in path {
            value = value[*key].take();
        }
        value.as_u64().unwrap_or(0)
    }
}

fn assert_error(error: &StsError, kind: StsErrorKind, class: RetryClass) {
    assert_eq!(error.kind(), kind, "{error}");
    assert_eq!(error.retry_class(), class, "{error}");
}

#[tokio::test]
async fn each_injected_fault_gives_its_kind_and_retry_class() {
    let s = setup(&[]);
    let session = s.session().await.expect("GetSessionToken");
    #[rustfmt::skip]
    let table: &[(serde_json::Value, bool, StsErrorKind, RetryClass)] = &[
        // (fault, on GetSessionToken (else chained AssumeRole), kind, class)
        (json!({"fault": "throttle"}), false, StsErrorKind::Throttling, RetryClass::Soon),
        (json!({"fault": "server_error"}), false, StsErrorKind::Server, RetryClass::Soon),
        (json!({"fault": "server_error", "status": 503}), true, StsErrorKind::Server, RetryClass::Soon),
        (json!({"fault": "reset"}), false, StsErrorKind::Transport(TransportKind::Io), RetryClass::Soon),
        (json!({"fault": "code_rejected"}), true, StsErrorKind::CodeRejected, RetryClass::NextTotpStep),
        (json!({"fault": "invalid_client_token"}), true, StsErrorKind::InvalidClientToken, RetryClass::NeedsUser),
        (json!({"fault": "signature_mismatch"}), true, StsErrorKind::SignatureMismatch, RetryClass::NeedsUser),
        (json!({"fault": "expired_token"}), false, StsErrorKind::ExpiredToken, RetryClass::Reauthenticate),
        (json!({"fault": "not_authorized"}), false, StsErrorKind::NotAuthorized, RetryClass::NeedsUser),
        (json!({"fault": "wrong_serial"}), true, StsErrorKind::WrongSerial, RetryClass::NeedsUser),
        (json!({"fault": "not_long_term"}), true, StsErrorKind::NotLongTermKeys, RetryClass::NeedsUser),
        (json!({"fault": "request_expired"}), false, StsErrorKind::RequestExpired, RetryClass::Soon),
        (json!({"fault": "region_disabled"}), true, StsErrorKind::RegionDisabled, RetryClass::NeedsUser),
    ];
    s.front.reset_stats();
    for (fault, on_session_token, kind, class) in table {
        s.front.inject(fault.clone());
        let result = if *on_session_token {
            s.session().await
        } else {
            s.chained(&session, 900).await
        };
        let error = result.expect_err(&format!("{fault} must fail the call"));
        assert_error(&error, *kind, *class);
        // The fault was for one request: the same call succeeds now.
        let result = if *on_session_token {
            s.session().await.map(|_| ())
        } else {
            s.chained(&session, 900).await.map(|_| ())
        };
        result.unwrap_or_else(|e| panic!("after {fault}: {e}"));
    }
    let calls = 2 * table.len() as u64;
    let stats = s.front.stats();
    assert_eq!(stats["total"], calls, "one HTTP request per call: {stats}");
    assert_eq!(stats["outcomes"]["ok"], table.len() as u64, "{stats}");
    assert_eq!(stats["outcomes"]["server_error"], 2, "{stats}");
    assert_eq!(stats["outcomes"]["reset"], 1, "{stats}");
    assert_eq!(stats["active_faults"], 0, "{stats}");
}

#[tokio::test]
async fn error_messages_name_the_call_and_say_what_to_do() {
    let s = setup(&[]);
    let session = s.session().await.expect("GetSessionToken");
    s.front.inject(json!({"fault": "wrong_serial"}));
    let error = s.session().await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("GetSessionToken"), "{text}");
    assert!(text.contains("AKIA…MPLE"), "{text}");
    assert!(
        text.contains(
            "check mfa_serial_number: it must be the MFA device ARN arn:aws:iam::ACCOUNT:mfa/NAME"
        ),
        "{text}"
    );
    assert!(
        error.request_id().is_some_and(|id| !id.is_empty()),
        "{text}"
    );
    assert_eq!(error.status(), Some(403));
    assert_eq!(error.aws_code(), Some("AccessDenied"));

    s.front
        .inject(json!({"fault": "not_authorized", "action": "AssumeRole"}));
    let error = s.chained(&session, 900).await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("AssumeRole of arn:aws:iam::210987654321:role/Admin"),
        "{text}"
    );
    assert!(text.contains("trust policy"), "{text}");
}

#[tokio::test]
async fn a_reused_code_is_rejected_as_code_rejected() {
    let s = setup(&[]);
    let code = fresh_code();
    s.session_with(&code).await.expect("first use of the code");
    let error = s.session_with(&code).await.unwrap_err();
    assert_error(&error, StsErrorKind::CodeRejected, RetryClass::NextTotpStep);
    assert!(error.to_string().contains("already used"), "{error}");
    // Direct AssumeRole with the same device: still the same used code.
    let error = s.direct(&code, 3600).await.unwrap_err();
    assert_error(&error, StsErrorKind::CodeRejected, RetryClass::NextTotpStep);
    s.direct(&fresh_code(), 3600)
        .await
        .expect("a new code works");
    assert_eq!(s.count(&["outcomes", "mfa_reused"]), 2);
    assert_eq!(s.count(&["total"]), 4);
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn with_a_totp_secret_wrong_codes_are_refused_and_right_ones_work_once() {
    let secret_arg = format!("{SERIAL}={TOTP_SECRET}");
    let s = setup(&["--totp-secret", &secret_arg]);
    let secret = b"12345678901234567890";
    let step = unix_now() / 30;
    let window: Vec<String> = (step - 1..=step + 1)
        .map(|st| front_mfa::totp(secret, st))
        .collect();
    let wrong = (0..10)
        .map(|d| format!("{d}{d}{d}{d}{d}{d}"))
        .find(|c| !window.contains(c))
        .unwrap();
    let error = s
        .session_with(&SecretString::from(wrong))
        .await
        .unwrap_err();
    assert_error(&error, StsErrorKind::CodeRejected, RetryClass::NextTotpStep);

    let right = SecretString::from(front_mfa::totp(secret, unix_now() / 30));
    s.session_with(&right).await.expect("the current code");
    let error = s.session_with(&right).await.unwrap_err();
    assert_error(&error, StsErrorKind::CodeRejected, RetryClass::NextTotpStep);
    assert_eq!(s.count(&["outcomes", "mfa_wrong"]), 1);
    assert_eq!(s.count(&["outcomes", "mfa_reused"]), 1);
    assert_eq!(s.count(&["outcomes", "ok"]), 1);
}

#[tokio::test]
async fn role_chaining_beyond_an_hour_is_a_validation_error_that_says_what_to_do() {
    let s = setup(&[]);
    let session = s.session().await.expect("GetSessionToken");
    let error = s.chained(&session, 7200).await.unwrap_err();
    assert_error(
        &error,
        StsErrorKind::Validation(ValidationKind::RoleChainingDuration),
        RetryClass::NeedsUser,
    );
    let text = error.to_string();
    assert!(
        text.contains("assume_session_duration must be at most 3600 when the role is assumed from an MFA session"),
        "{text}"
    );
    assert!(text.contains("mfa_session_duration = 0"), "{text}");
    // At 3600 it works; and a direct AssumeRole may ask for more.
    s.chained(&session, 3600).await.expect("chained, 1 h");
    s.direct(&fresh_code(), 7200).await.expect("direct, 2 h");
    assert_eq!(s.count(&["outcomes", "role_chaining"]), 1);
}

#[tokio::test]
async fn a_slow_answer_beyond_the_operation_timeout_is_a_timeout_retried_soon() {
    let s = setup(&[]);
    let session = s.session().await.expect("GetSessionToken");
    s.front
        .inject(json!({"fault": "slow", "delay_ms": 5000, "action": "AssumeRole"}));
    let started = Instant::now();
    let error = s.chained(&session, 900).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_error(
        &error,
        StsErrorKind::Transport(TransportKind::Timeout),
        RetryClass::Soon,
    );
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_millis(4000),
        "gave up after {elapsed:?}, the operation timeout is 2 s"
    );
    assert!(
        error.to_string().contains("no answer within 2 s"),
        "{error}"
    );
    // A slow answer within the timeout is fine.
    s.front.inject(json!({"fault": "slow", "delay_ms": 300}));
    s.chained(&session, 900).await.expect("slow but in time");
    assert_eq!(s.count(&["delayed"]), 2);
    assert_eq!(
        s.count(&["actions", "AssumeRole"]),
        2,
        "no retry after the timeout"
    );
}

#[tokio::test]
async fn calls_succeed_again_once_faults_clear_and_are_not_repeated() {
    let s = setup(&[]);
    let session = s.session().await.expect("GetSessionToken");
    s.front.reset_stats();

    // A fault for a while: every call in it fails once, without retries.
    // (Generous margins: the machine may be busy with other builds.)
    let injected = Instant::now();
    s.front
        .inject(json!({"fault": "throttle", "for_ms": 3000, "action": "AssumeRole"}));
    let mut throttled = 0;
    while injected.elapsed() < Duration::from_millis(1000) {
        let error = s.chained(&session, 900).await.unwrap_err();
        assert_error(&error, StsErrorKind::Throttling, RetryClass::Soon);
        throttled += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Only AssumeRole was throttled.
    s.session().await.expect("GetSessionToken is not throttled");
    tokio::time::sleep(Duration::from_millis(3200).saturating_sub(injected.elapsed())).await;
    s.chained(&session, 900)
        .await
        .expect("after the fault's time");

    // A fault for many requests, cleared.
    s.front
        .inject(json!({"fault": "server_error", "count": 100}));
    s.chained(&session, 900).await.unwrap_err();
    s.front.clear();
    s.chained(&session, 900).await.expect("after clear");

    let stats = s.front.stats();
    assert_eq!(
        stats["by_action"]["AssumeRole"]["throttle"], throttled,
        "{stats}"
    );
    assert_eq!(stats["actions"]["AssumeRole"], throttled + 3, "{stats}");
    assert_eq!(stats["actions"]["GetSessionToken"], 1, "{stats}");
    assert_eq!(stats["total"], throttled + 4, "{stats}");
}

#[tokio::test]
async fn assume_role_sends_the_role_options() {
    let s = setup(&[]);
    let session = s.session().await.expect("GetSessionToken");
    let mut role = role(900);
    role.source_identity = Some("alice".to_string());
    role.external_id = Some("ext-4711".to_string());
    role.policy_arns = vec![
        "arn:aws:iam::aws:policy/ReadOnlyAccess".to_string(),
        "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess".to_string(),
    ];
    role.policy = Some(r#"{"Version":"2012-10-17","Statement":[]}"#.to_string());
    s.clients
        .assume_role(
            &SigningKeys::session(&session),
            &s.endpoint,
            &role,
            None,
            time::OffsetDateTime::now_utc(),
        )
        .await
        .expect("AssumeRole with options");
    let stats = s.front.stats();
    let names: Vec<&str> = stats["last_params"]["AssumeRole"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for expected in [
        "RoleArn",
        "RoleSessionName",
        "DurationSeconds",
        "SourceIdentity",
        "ExternalId",
        "Policy",
        "PolicyArns.member.1.arn",
        "PolicyArns.member.2.arn",
    ] {
        assert!(names.contains(&expected), "{expected} not sent: {names:?}");
    }
    assert!(
        !names.contains(&"TokenCode"),
        "chained AssumeRole sends no code"
    );

    s.direct(&fresh_code(), 900)
        .await
        .expect("direct AssumeRole");
    let stats = s.front.stats();
    let names = stats["last_params"]["AssumeRole"].to_string();
    assert!(
        names.contains("\"SerialNumber\"") && names.contains("\"TokenCode\""),
        "{names}"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_transport_error_retried_soon() {
    // A port that was just free: nothing listens there.
    let port = moto::free_port();
    let clients = StsClients::new();
    let endpoint = Endpoint::new("us-east-1", Some(format!("http://127.0.0.1:{port}")));
    let error = session_at(
        &clients,
        &endpoint,
        &fresh_code(),
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap_err();
    assert_error(
        &error,
        StsErrorKind::Transport(TransportKind::Io),
        RetryClass::Soon,
    );
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
}

#[tokio::test]
async fn the_front_takes_faults_from_its_command_line_and_stops_on_sigterm() {
    let moto = Moto::start();
    let front = StsFront::start(
        &moto.url,
        &[
            "--inject",
            r#"{"fault": "server_error", "status": 503, "count": 1}"#,
        ],
    );
    let clients = StsClients::new();
    let endpoint = Endpoint::new("us-east-1", Some(front.url.clone()));
    let error = session_at(
        &clients,
        &endpoint,
        &fresh_code(),
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap_err();
    assert_error(&error, StsErrorKind::Server, RetryClass::Soon);
    assert_eq!(error.status(), Some(503));
    assert!(
        front.terminate(),
        "the front did not exit cleanly on SIGTERM"
    );
}

/// Peak resident memory of this test process so far, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test]
async fn hostile_answers_are_refused_without_filling_memory_or_trusting_them() {
    let s = setup(&[]);
    // A body that never ends: cut off at the cap, a passing error.
    let before = peak_rss();
    s.front.inject(json!({"fault": "endless_body", "count": 1}));
    let started = Instant::now();
    let error = s.session().await.unwrap_err();
    assert_eq!(error.retry_class(), RetryClass::Soon, "{error}");
    let grown = peak_rss().saturating_sub(before);
    eprintln!(
        "endless STS body: refused after {:?}, peak RSS grew {} KiB",
        started.elapsed(),
        grown / 1024
    );
    assert!(grown < 32 * 1024 * 1024, "grew {grown} bytes");

    // Bytes that are not XML: an error, not a panic.
    s.front.inject(json!({"fault": "garbage", "count": 1}));
    let error = s.session().await.unwrap_err();
    assert_eq!(error.retry_class(), RetryClass::Soon, "{error}");

    // An expiry in the year 9999 is not believed: cut to what was asked.
    s.front
        .inject(json!({"fault": "far_expiration", "count": 1}));
    let creds = s.session().await.unwrap();
    let asked = time::OffsetDateTime::now_utc() + time::Duration::seconds(3600);
    assert!(
        creds.expiration <= asked + time::Duration::seconds(5),
        "{}",
        creds.expiration
    );
    assert!(creds.expiration >= asked - time::Duration::seconds(60));
}

#[tokio::test]
async fn an_answer_no_output_could_carry_is_a_bad_answer_retried_soon() {
    let s = setup(&[]);
    for (element, value, says) in [
        (
            "SessionToken",
            Some("FwoGZXIvYXdzEXAMPLETOKEN\naws_secret_access_key = forged"),
            "SessionToken: a session token may hold only printable ASCII",
        ),
        (
            "AccessKeyId",
            Some("ASIA-NOT-A-KEY-ID!"),
            "AccessKeyId: an access key id may hold only",
        ),
        (
            "SecretAccessKey",
            None,
            "SecretAccessKey: a secret access key has 16-1024 characters, not 0",
        ),
        (
            "Expiration",
            None,
            "the credentials expire at 1970-01-01T00:00:00Z, not after now",
        ),
    ] {
        s.front
            .inject(json!({"fault": "rewrite", "element": element, "value": value, "count": 1}));
        let error = s.session().await.unwrap_err();
        assert_error(&error, StsErrorKind::BadAnswer, RetryClass::Soon);
        let text = format!("{error} {error:?}");
        assert!(text.contains(says), "{text}");
        assert!(
            !text.contains("forged") && !text.contains("NOT-A-KEY"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn the_answer_is_judged_by_the_clock_passed_in() {
    let s = setup(&[]);
    // Two days ahead of the answer's clock: the session ended already.
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(2);
    let error = session_at(&s.clients, &s.endpoint, &fresh_code(), later)
        .await
        .unwrap_err();
    assert_error(&error, StsErrorKind::BadAnswer, RetryClass::Soon);
    assert!(error.to_string().contains("not after now"), "{error}");

    // At the end of the calendar no expiry can be checked: refused before
    // a request (and its code) goes out.
    let sent = s.count(&["total"]);
    let end = time::macros::datetime!(9999-12-31 23:50 UTC);
    let error = session_at(&s.clients, &s.endpoint, &fresh_code(), end)
        .await
        .unwrap_err();
    assert_error(&error, StsErrorKind::Clock, RetryClass::NeedsUser);
    assert!(
        error
            .to_string()
            .contains("the system clock reads 9999-12-31T23:50:00Z"),
        "{error}"
    );
    let error = s
        .clients
        .assume_role(&long_term_keys(), &s.endpoint, &role(900), None, end)
        .await
        .unwrap_err();
    assert_error(&error, StsErrorKind::Clock, RetryClass::NeedsUser);
    assert_eq!(s.count(&["total"]), sent, "a request was sent");
}
