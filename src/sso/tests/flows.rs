//! Sign-in, refresh and the one-sign-in promise, against the stand-in.

use std::time::{Duration, Instant};

use secrecy::ExposeSecret;

use super::super::{SignInOrigin, SsoErrorKind, TokenStatus};
use super::{ACCOUNT, Decision, Person, ROLE, Rig, child, now, sso_front};
use crate::retry::{Classified, RetryClass};

fn digest(token: &super::AccessToken) -> String {
    super::super::cache::cache_key(token.token.expose_secret())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_caches_the_token_as_the_aws_tools_do_and_buys_role_credentials() {
    let rig = Rig::start(&[]);
    let person = Person::new(Decision::Approve);
    let token = rig.token(&person).await.unwrap();
    let codes = person.codes();
    assert_eq!(codes.len(), 1, "one code shown");
    assert_eq!(codes[0].origin, SignInOrigin::ThisProcess);
    assert!(codes[0].url().starts_with(&rig.front.url), "{:?}", codes[0]);
    assert!(codes[0].url().contains(&codes[0].user_code));
    assert!(token.expires_at > now() + time::Duration::hours(7));

    // The eight keys, in botocore's order.
    let text = std::fs::read_to_string(rig.cache_file()).unwrap();
    let positions: Vec<usize> = [
        "startUrl",
        "region",
        "accessToken",
        "expiresAt",
        "clientId",
        "clientSecret",
        "registrationExpiresAt",
        "refreshToken",
    ]
    .iter()
    .map(|key| {
        text.find(&format!("\"{key}\":"))
            .unwrap_or_else(|| panic!("no {key}"))
    })
    .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let cached = rig.cached_json();
    assert_eq!(cached.as_object().unwrap().len(), 8);
    assert_eq!(cached["startUrl"], rig.session.start_url.as_str());
    assert_eq!(cached["region"], "eu-west-1");
    assert_eq!(cached["accessToken"], token.token.expose_secret());
    let expires = cached["expiresAt"].as_str().unwrap();
    assert!(
        expires.len() == 20 && expires.ends_with('Z') && expires.as_bytes()[10] == b'T',
        "{expires}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(rig.cache_file())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let credentials = rig.role(&token).await.unwrap();
    let issued = &rig.front.stats()["issued"][&credentials.access_key_id];
    assert_eq!(issued["account_id"], ACCOUNT);
    assert_eq!(issued["role_name"], ROLE);
    assert!(credentials.expiration > now() + time::Duration::minutes(55));

    // From the cache, by this process and by another: no OIDC call, no code.
    let other = Rig::clients_for(&rig.front, &rig.home, &rig.runtime);
    let again = other
        .access_token(&rig.session, &now, &|code| person.sees(code))
        .await
        .unwrap();
    assert_eq!(digest(&again), digest(&token));
    assert_eq!(rig.front.calls("RegisterClient"), 1);
    assert_eq!(rig.front.calls("StartDeviceAuthorization"), 1);
    assert_eq!(rig.front.calls("CreateToken:refresh_token"), 0);
    assert_eq!(person.codes().len(), 1);
    // The sign-in's record is gone once it ended.
    assert!(
        rig.clients
            .sign_in_files(&rig.session)
            .pending(now())
            .is_none()
    );
    assert!(matches!(
        rig.clients.token_status(&rig.session, now()).unwrap(),
        TokenStatus::Valid {
            refreshable: true,
            ..
        }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_tasks_asking_at_once_share_one_sign_in() {
    let rig = Rig::start(&[]);
    let person = Person::new(Decision::Approve);
    let tokens = futures_util::future::join_all((0..20).map(|_| rig.token(&person))).await;
    let digests: std::collections::BTreeSet<String> =
        tokens.into_iter().map(|t| digest(&t.unwrap())).collect();
    assert_eq!(digests.len(), 1, "every task has the same token");
    assert_eq!(person.codes().len(), 1, "one code shown");
    assert_eq!(rig.front.calls("StartDeviceAuthorization"), 1);
    assert_eq!(rig.front.calls("RegisterClient"), 1);
    assert_eq!(rig.front.outcomes("CreateToken:device_code:ok"), 1);
}

/// The other processes: one access token for the session in the
/// environment; prints the origin of every code it is shown and the
/// digest of its token.
pub(super) async fn child_access_token() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let clients = super::super::SsoClients::new(
        var("SSO_TEST_CACHE").into(),
        Some(var("SSO_TEST_RUNTIME").into()),
        super::super::SsoEndpoints {
            oidc: Some(var("SSO_TEST_ENDPOINT")),
            portal: Some(var("SSO_TEST_ENDPOINT")),
        },
    );
    let session = super::super::SsoSession::new("corp", var("SSO_TEST_START_URL"), "eu-west-1");
    let token = clients
        .access_token(&session, &now, &|code| match code.origin {
            SignInOrigin::ThisProcess => println!("SHOWN this-process {}", code.user_code),
            SignInOrigin::OtherProcess { .. } => println!("SHOWN other-process {}", code.user_code),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    println!("TOKEN {}", digest(&token));
}

/// Kills the children still running when a test fails.
struct Children(Vec<std::process::Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_processes_asking_at_once_share_one_sign_in() {
    let rig = Rig::start(&["--device-code-seconds", "120"]);
    let mut children = Children(Vec::new());
    for _ in 0..20 {
        children.0.push(
            child("access-token")
                .env(
                    "SSO_TEST_CACHE",
                    super::super::token_cache_dir(rig.home.path()),
                )
                .env(
                    "SSO_TEST_RUNTIME",
                    rig.runtime.path().join("aws-session-daemon"),
                )
                .env("SSO_TEST_ENDPOINT", &rig.front.url)
                .env("SSO_TEST_START_URL", &rig.session.start_url)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    // The person approves the one sign-in that starts, in the browser.
    let url = tokio::task::spawn_blocking({
        let address = rig.front.address.clone();
        move || {
            let front_stats = || {
                let (_, body) = exchange_stats(&address);
                body
            };
            let started = Instant::now();
            loop {
                let stats = front_stats();
                if let Some(url) = stats["pending"][0]["verificationUriComplete"].as_str() {
                    // Let the other processes find the sign-in under way.
                    std::thread::sleep(Duration::from_millis(500));
                    sso_front::approve(url);
                    return url.to_string();
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "no sign-in started"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    })
    .await
    .unwrap();
    let mut this_process = 0;
    let mut other_process = 0;
    let mut digests = std::collections::BTreeSet::new();
    for child in children.0.drain(..) {
        let output = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "a child failed: {text}");
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("SHOWN ") {
                assert!(
                    url.ends_with(rest.split(' ').nth(1).unwrap()),
                    "{line} {url}"
                );
                if rest.starts_with("this-process") {
                    this_process += 1;
                } else {
                    other_process += 1;
                }
            }
            if let Some(digest) = line.strip_prefix("TOKEN ") {
                digests.insert(digest.to_string());
            }
        }
    }
    assert_eq!(
        digests.len(),
        1,
        "every process has the same token: {digests:?}"
    );
    assert_eq!(this_process, 1, "one process signed in");
    assert!(other_process >= 1, "the others were shown its code");
    assert_eq!(rig.front.calls("StartDeviceAuthorization"), 1);
    assert_eq!(rig.front.calls("RegisterClient"), 1);
}

fn exchange_stats(address: &str) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET /__stats HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (200, serde_json::from_str(body).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_access_token_is_refreshed_with_no_sign_in() {
    let rig = Rig::start(&["--access-token-seconds", "2"]);
    let person = Person::new(Decision::Approve);
    let first = rig.token(&person).await.unwrap();
    rig.front
        .set(serde_json::json!({ "access_token_seconds": 28800 }));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Expired at the portal too.
    let error = rig.role(&first).await.unwrap_err();
    assert_eq!(error.kind(), SsoErrorKind::TokenRejected, "{error}");
    assert_eq!(error.retry_class(), RetryClass::Reauthenticate);
    assert!(matches!(
        rig.clients.token_status(&rig.session, now()).unwrap(),
        TokenStatus::RefreshDue { .. }
    ));

    let second = rig.token(&person).await.unwrap();
    assert_ne!(digest(&first), digest(&second));
    assert_eq!(rig.front.outcomes("CreateToken:refresh_token:ok"), 1);
    assert_eq!(
        rig.front.calls("StartDeviceAuthorization"),
        1,
        "no second sign-in"
    );
    assert_eq!(person.codes().len(), 1, "no second code");
    rig.role(&second).await.unwrap();
    // The refresh is cached with the registration and a refresh token.
    let cached = rig.cached_json();
    assert_eq!(cached["accessToken"], second.token.expose_secret());
    assert!(cached["refreshToken"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_token_ends_in_one_sign_in_and_a_token_soon_after_the_approval() {
    let rig = Rig::start(&["--access-token-seconds", "2"]);
    let person = Person::new(Decision::Approve);
    rig.token(&person).await.unwrap();
    rig.front
        .set(serde_json::json!({ "access_token_seconds": 28800 }));
    rig.front
        .control(serde_json::json!({ "op": "refuse_refresh_tokens" }));
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let token = rig.token(&person).await.unwrap();
    let returned = Instant::now();
    let answered = person
        .answered
        .lock()
        .unwrap()
        .expect("the person answered");
    assert!(
        returned.duration_since(answered) < Duration::from_secs(3),
        "the token came {:?} after the approval",
        returned.duration_since(answered)
    );
    assert_eq!(
        person.codes().len(),
        2,
        "one sign-in-needed event after the refusal"
    );
    assert_eq!(
        rig.front
            .outcomes("CreateToken:refresh_token:invalid_grant"),
        1
    );
    assert_eq!(rig.front.calls("StartDeviceAuthorization"), 2);
    rig.role(&token).await.unwrap();
    // Settled: the next call uses the new token.
    rig.token(&person).await.unwrap();
    assert_eq!(person.codes().len(), 2);
    assert_eq!(rig.front.calls("CreateToken:refresh_token"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unapproved_sign_in_ends_once_instead_of_looping() {
    let rig = Rig::start(&["--device-code-seconds", "3"]);
    let person = Person::new(Decision::Ignore);
    let started = Instant::now();
    let error = rig.token(&person).await.unwrap_err();
    assert_eq!(error.kind(), SsoErrorKind::SignInExpired, "{error}");
    assert_eq!(error.retry_class(), RetryClass::NeedsUser);
    assert!(
        error
            .to_string()
            .contains("nobody approved the sign-in for sso-session corp"),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(person.codes().len(), 1);
    assert_eq!(rig.front.calls("StartDeviceAuthorization"), 1);
    assert!(
        rig.front
            .outcomes("CreateToken:device_code:authorization_pending")
            >= 1
    );
    assert!(!rig.cache_file().exists(), "nothing cached");
    assert_eq!(
        rig.clients.token_status(&rig.session, now()).unwrap(),
        TokenStatus::SignInNeeded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_down_adds_five_seconds_to_the_polling_interval() {
    let rig = Rig::start(&[]);
    rig.front
        .control(serde_json::json!({ "op": "slow_down", "count": 1 }));
    let mut person = Person::new(Decision::Approve);
    // Approve only after the first poll was told to slow down.
    person = Person {
        delay: Duration::from_millis(1500),
        ..person
    };
    let started = Instant::now();
    rig.token(&person).await.unwrap();
    assert_eq!(rig.front.outcomes("CreateToken:device_code:slow_down"), 1);
    assert_eq!(
        rig.front.outcomes("CreateToken:device_code:too_fast"),
        0,
        "the next poll came after interval + 5 s"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_sign_in_needs_the_user() {
    let rig = Rig::start(&[]);
    let person = Person::new(Decision::Deny);
    let error = rig.token(&person).await.unwrap_err();
    assert_eq!(error.kind(), SsoErrorKind::SignInDenied, "{error}");
    assert_eq!(error.retry_class(), RetryClass::NeedsUser);
    assert!(!rig.cache_file().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_portal_refuses_is_replaced_not_handed_out_again() {
    let rig = Rig::start(&[]);
    let person = Person::new(Decision::Approve);
    let first = rig.token(&person).await.unwrap();
    rig.front
        .control(serde_json::json!({ "op": "revoke_access_tokens" }));
    let error = rig.role(&first).await.unwrap_err();
    assert_eq!(error.kind(), SsoErrorKind::TokenRejected);
    assert!(!error.to_string().contains(first.token.expose_secret()));
    // The cache still says it is valid for hours; it is refreshed anyway.
    let second = rig.token(&person).await.unwrap();
    assert_ne!(digest(&first), digest(&second));
    assert_eq!(rig.front.outcomes("CreateToken:refresh_token:ok"), 1);
    assert_eq!(person.codes().len(), 1);
    rig.role(&second).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_registration_is_registered_again_at_the_next_sign_in() {
    let rig = Rig::start(&["--access-token-seconds", "2"]);
    let person = Person::new(Decision::Approve);
    let first = rig.token(&person).await.unwrap();
    let first_client = rig.cached_json()["clientId"].clone();
    rig.front
        .set(serde_json::json!({ "access_token_seconds": 28800 }));
    rig.front
        .control(serde_json::json!({ "op": "expire_registrations" }));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let second = rig.token(&person).await.unwrap();
    assert_ne!(digest(&first), digest(&second));
    assert_eq!(
        rig.front
            .outcomes("CreateToken:refresh_token:invalid_client"),
        1
    );
    assert_eq!(rig.front.calls("RegisterClient"), 2);
    assert_eq!(person.codes().len(), 2);
    assert_ne!(rig.cached_json()["clientId"], first_client);
    rig.role(&second).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_under_way_is_visible_to_other_processes_without_its_device_code() {
    let rig = Rig::start(&["--device-code-seconds", "60"]);
    let person = Person::new(Decision::Ignore);
    let waiting = rig.token(&person);
    let observer = async {
        let other = Rig::clients_for(&rig.front, &rig.home, &rig.runtime);
        let started = Instant::now();
        let code = loop {
            if let TokenStatus::SignInPending(code) =
                other.token_status(&rig.session, now()).unwrap()
            {
                break code;
            }
            assert!(started.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // The record holds what is shown, not the device code.
        let dir = rig.runtime.path().join("aws-session-daemon");
        let record = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with(".sign-in.json"))
            .expect("the record");
        let text = std::fs::read_to_string(record.path()).unwrap();
        assert!(text.contains(&code.user_code), "{text}");
        assert!(!text.to_ascii_lowercase().contains("devicecode"), "{text}");
        assert_eq!(
            code.origin,
            SignInOrigin::ThisProcess,
            "same pid: this process"
        );
        sso_front::approve(code.url());
    };
    let (token, ()) = tokio::join!(waiting, observer);
    token.unwrap();
    assert_eq!(person.codes().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_profile_caches_its_token_under_the_start_urls_hash() {
    let mut rig = Rig::start(&[]);
    rig.session.legacy = true;
    rig.token(&Person::new(Decision::Approve)).await.unwrap();
    let dir = super::super::token_cache_dir(rig.home.path());
    let by_url = dir.join(format!(
        "{}.json",
        super::super::cache::cache_key("https://d-1234567890.awsapps.com/start")
    ));
    assert!(by_url.is_file(), "{}", by_url.display());
    assert!(!rig.cache_file().exists(), "not under the session name");
}
