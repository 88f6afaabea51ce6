//! Error answers and faults: each a clear, classified error.

use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};

use super::super::{SsoClients, SsoEndpoints, SsoError, SsoErrorKind};
use super::{ACCOUNT, Decision, Person, Rig, now};
use crate::retry::{Classified, RetryClass};
use crate::sts::TransportKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_and_role_the_person_may_not_use_is_named_in_the_error() {
    let rig = Rig::start(&["--forbid", "111122223333/Admin"]);
    let token = rig.token(&Person::new(Decision::Approve)).await.unwrap();
    let error = rig
        .clients
        .role_credentials(&rig.session, &token, ACCOUNT, "Admin", now())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), SsoErrorKind::Forbidden, "{error}");
    assert_eq!(error.retry_class(), RetryClass::NeedsUser);
    let text = error.to_string();
    assert!(
        text.contains(
            "you may not use account 111122223333 with role Admin through sso-session corp"
        ),
        "{text}"
    );
    assert!(
        text.contains("HTTP 403; ForbiddenException: No access"),
        "{text}"
    );
    assert!(!text.contains(secrecy::ExposeSecret::expose_secret(&token.token)));
    // The same token still buys the roles that are allowed.
    rig.role(&token).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_classified_and_retried_with_backoff_until_all_succeed() {
    let rig = Rig::start(&["--throttle-per-second", "5"]);
    let token = rig.token(&Person::new(Decision::Approve)).await.unwrap();
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(2))
        .with_max_times(30)
        .with_jitter();
    let seen = std::sync::Mutex::new(Vec::<SsoError>::new());
    let started = Instant::now();
    let results = futures_util::future::join_all((0..20).map(|_| {
        (|| rig.role(&token))
            .retry(backoff)
            .when(|e: &SsoError| e.is_throttling())
            .notify(|e: &SsoError, _| seen.lock().unwrap().push(e.clone()))
    }))
    .await;
    for result in results {
        result.unwrap();
    }
    let seen = seen.into_inner().unwrap();
    let throttled = rig.front.outcomes("GetRoleCredentials:throttled");
    assert!(throttled > 0, "the stand-in throttled");
    assert_eq!(
        seen.len() as u64,
        throttled,
        "every throttled call was retried"
    );
    let error = &seen[0];
    assert_eq!(error.kind(), SsoErrorKind::Throttled);
    assert_eq!(error.retry_class(), RetryClass::Soon);
    assert!(
        error.to_string().contains("throttling requests; back off"),
        "{error}"
    );
    assert_eq!(rig.front.outcomes("GetRoleCredentials:ok"), 20);
    // 20 calls at 5 a second take at least three seconds.
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_url_that_is_not_a_portal_needs_the_user_and_shows_no_code() {
    let rig = Rig::start(&["--not-a-portal"]);
    let person = Person::new(Decision::Approve);
    let error = rig.token(&person).await.unwrap_err();
    assert_eq!(error.kind(), SsoErrorKind::NotAPortal, "{error}");
    assert_eq!(error.retry_class(), RetryClass::NeedsUser);
    let text = error.to_string();
    assert!(
        text.contains("https://d-1234567890.awsapps.com/start is not an IAM Identity Center access portal in region eu-west-1"),
        "{text}"
    );
    assert!(text.contains("StartDeviceAuthorization"), "{text}");
    assert!(person.codes().is_empty());
}

/// Clients of a fresh home (no runtime directory) with these endpoints,
/// and a session.
fn at(
    oidc: Option<&str>,
    portal: Option<&str>,
) -> (SsoClients, super::super::SsoSession, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let clients = SsoClients::new(
        super::super::token_cache_dir(home.path()),
        None,
        SsoEndpoints {
            oidc: oidc.map(str::to_string),
            portal: portal.map(str::to_string),
        },
    );
    let session = super::super::SsoSession::new(
        "corp",
        "https://d-1234567890.awsapps.com/start",
        "eu-west-1",
    );
    (clients, session, home)
}

fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn no_network_is_a_passing_fault_for_both_services() {
    let url = closed_port_url();
    let (clients, session, _home) = at(Some(&url), Some(&url));
    let person = Person::new(Decision::Approve);
    let error = clients
        .access_token(&session, &now, &|code| person.sees(code))
        .await
        .unwrap_err();
    assert_eq!(
        error.kind(),
        SsoErrorKind::Transport(TransportKind::Io),
        "{error}"
    );
    assert_eq!(error.retry_class(), RetryClass::Soon);
    let text = error.to_string();
    assert!(text.contains(&format!("endpoint {url}")), "{text}");
    assert!(
        text.contains("could not talk to IAM Identity Center"),
        "{text}"
    );
    assert!(person.codes().is_empty());

    let token = super::super::AccessToken {
        token: secrecy::SecretString::from("aoaAAAAsecret-token-value"),
        expires_at: now() + time::Duration::hours(1),
    };
    let error = clients
        .role_credentials(&session, &token, ACCOUNT, "ReadOnly", now())
        .await
        .unwrap_err();
    assert_eq!(
        error.kind(),
        SsoErrorKind::Transport(TransportKind::Io),
        "{error}"
    );
    assert!(!format!("{error} {error:?} {token:?}").contains("secret-token-value"));
}

#[tokio::test]
async fn an_endpoint_that_is_not_a_url_is_refused_before_any_call() {
    let (clients, session, _home) = at(Some("127.0.0.1:9"), None);
    let error = clients
        .access_token(&session, &now, &|_| panic!("no code"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), SsoErrorKind::InvalidSetup);
    assert_eq!(error.retry_class(), RetryClass::NeedsUser);
    assert!(
        error.to_string().contains("is not an http(s) URL"),
        "{error}"
    );
}

#[tokio::test]
async fn an_endless_answer_is_cut_off_not_read_into_memory() {
    // A hostile endpoint: HTTP 200, then JSON that never ends.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = stream.read(&mut buffer).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n{\"a\":[\r\n")
                    .await;
                let chunk = format!("10000\r\n{}\r\n", "1,".repeat(0x8000));
                while stream.write_all(chunk.as_bytes()).await.is_ok() {}
            });
        }
    });
    let (clients, session, _home) = at(Some(&url), Some(&url));
    let started = Instant::now();
    let error = clients
        .access_token(&session, &now, &|_| panic!("no code"))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(error.kind(), SsoErrorKind::Transport(_)),
        "{error}"
    );
    server.abort();
}

#[test]
fn endpoints_are_overridden_as_the_sdks_do_it() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    };
    let only_general = env(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:1")]);
    let endpoints = SsoEndpoints::from_env(&only_general);
    assert_eq!(endpoints.oidc.as_deref(), Some("http://127.0.0.1:1"));
    assert_eq!(endpoints.portal.as_deref(), Some("http://127.0.0.1:1"));
    let specific = env(&[
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
        ("AWS_ENDPOINT_URL_SSO_OIDC", "http://127.0.0.1:2"),
        ("AWS_ENDPOINT_URL_SSO", "http://127.0.0.1:3"),
    ]);
    let endpoints = SsoEndpoints::from_env(&specific);
    assert_eq!(endpoints.oidc.as_deref(), Some("http://127.0.0.1:2"));
    assert_eq!(endpoints.portal.as_deref(), Some("http://127.0.0.1:3"));
    let empty = env(&[("AWS_ENDPOINT_URL_SSO", "")]);
    assert_eq!(SsoEndpoints::from_env(&empty), SsoEndpoints::default());
}

#[test]
fn the_browser_is_opened_only_for_http_urls() {
    for url in [
        "file:///etc/passwd",
        "--help",
        "javascript:alert(1)",
        "https://a b",
        "",
    ] {
        let error = super::super::open_in_browser(url).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{url}");
    }
}
