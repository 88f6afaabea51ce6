//! `sts` against a real STS emulator: moto_server, started per test on a
//! free 127.0.0.1 port. Every client is given that endpoint explicitly, so
//! nothing can reach AWS.

#[path = "support/moto.rs"]
mod moto;
#[path = "support/tools.rs"]
mod tools;

use std::sync::Arc;
use std::time::Instant;

use aws_session_daemon::config::RoleSettings;
use aws_session_daemon::secret::{ExposeSecret, SecretString};
use aws_session_daemon::session::SessionCredentials;
use aws_session_daemon::sts::{Endpoint, MfaCode, SigningKeys, StsClients};
use moto::Moto;
use time::{Duration, OffsetDateTime};

const SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";
const ROLE_ACCOUNT: &str = "210987654321";

fn long_term_keys() -> SigningKeys {
    SigningKeys::long_term(
        "AKIAI44QH8DHBEXAMPLE",
        SecretString::from("je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"),
    )
}

fn role(name: &str, duration: u32) -> RoleSettings {
    RoleSettings {
        arn: format!("arn:aws:iam::{ROLE_ACCOUNT}:role/{name}"),
        duration,
        session_name: format!("{name}-session"),
        source_identity: None,
        external_id: None,
        policy_arns: Vec::new(),
        policy: None,
    }
}

fn assert_expires_in(credentials: &SessionCredentials, seconds: i64) {
    let expected = OffsetDateTime::now_utc() + Duration::seconds(seconds);
    let off = (credentials.expiration - expected).abs();
    assert!(
        off < Duration::seconds(60),
        "expiration {} is {off} away from now + {seconds} s",
        credentials.expiration
    );
}

/// GetCallerIdentity with plain SDK client, configured explicitly (no
/// default chain, endpoint = moto), to see whom credentials belong to.
async fn caller_arn(endpoint: &Endpoint, credentials: &SessionCredentials) -> String {
    // The HTTP client the daemon uses (rustls with ring): the SDK's default
    // one would bring aws-lc into every build of the tests.
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .http_client(aws_session_daemon::sts::https_client())
        .region(aws_sdk_sts::config::Region::new(endpoint.region.clone()))
        .endpoint_url(endpoint.url.clone().expect("tests always set the endpoint"))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            credentials.access_key_id.clone(),
            credentials.secret_access_key.expose_secret().to_string(),
            Some(credentials.session_token.expose_secret().to_string()),
            None,
            "test",
        ))
        .build();
    let identity = aws_sdk_sts::Client::from_conf(config)
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity");
    identity.arn().expect("an ARN").to_string()
}

async fn mfa_session(clients: &StsClients, endpoint: &Endpoint, code: &str) -> SessionCredentials {
    let code = SecretString::from(code);
    clients
        .get_session_token(
            &long_term_keys(),
            endpoint,
            MfaCode {
                serial_number: SERIAL,
                code: &code,
            },
            3600,
            now(),
        )
        .await
        .expect("GetSessionToken")
}

#[tokio::test]
async fn get_session_token_returns_credentials_for_the_duration() {
    let moto = Moto::start();
    let endpoint = Endpoint::new("eu-central-1", Some(moto.url.clone()));
    let clients = StsClients::new();
    let code = SecretString::from("123456");
    let session = clients
        .get_session_token(
            &long_term_keys(),
            &endpoint,
            MfaCode {
                serial_number: SERIAL,
                code: &code,
            },
            7200,
            now(),
        )
        .await
        .expect("GetSessionToken");
    assert!(!session.access_key_id.is_empty());
    assert!(!session.secret_access_key.expose_secret().is_empty());
    assert!(!session.session_token.expose_secret().is_empty());
    assert_expires_in(&session, 7200);
}

#[tokio::test]
async fn assume_role_chained_from_the_mfa_session_gives_role_credentials() {
    let moto = Moto::start();
    let endpoint = Endpoint::new("us-east-1", Some(moto.url.clone()));
    let clients = StsClients::new();
    let session = mfa_session(&clients, &endpoint, "234567").await;

    let role = role("Admin", 900);
    let credentials = clients
        .assume_role(
            &SigningKeys::session(&session),
            &endpoint,
            &role,
            None,
            now(),
        )
        .await
        .expect("AssumeRole from the MFA session");
    assert!(
        credentials.access_key_id.starts_with("ASIA"),
        "{}",
        credentials.access_key_id
    );
    assert_ne!(credentials.access_key_id, session.access_key_id);
    assert_expires_in(&credentials, 900);
    assert_eq!(
        caller_arn(&endpoint, &credentials).await,
        format!("arn:aws:sts::{ROLE_ACCOUNT}:assumed-role/Admin/Admin-session")
    );
    assert_eq!(clients.cached_clients(), 1);
}

#[tokio::test]
async fn direct_assume_role_with_serial_and_code() {
    let moto = Moto::start();
    let endpoint = Endpoint::new("us-west-2", Some(moto.url.clone()));
    let clients = StsClients::new();
    let code = SecretString::from("345678");
    let role = role("LongRole", 7200);
    let credentials = clients
        .assume_role(
            &long_term_keys(),
            &endpoint,
            &role,
            Some(MfaCode {
                serial_number: SERIAL,
                code: &code,
            }),
            now(),
        )
        .await
        .expect("direct AssumeRole");
    assert!(credentials.access_key_id.starts_with("ASIA"));
    assert_expires_in(&credentials, 7200);
    assert_eq!(
        caller_arn(&endpoint, &credentials).await,
        format!("arn:aws:sts::{ROLE_ACCOUNT}:assumed-role/LongRole/LongRole-session")
    );
}

#[tokio::test]
async fn assume_role_options_are_accepted() {
    let moto = Moto::start();
    let endpoint = Endpoint::new("us-east-1", Some(moto.url.clone()));
    let clients = StsClients::new();
    let session = mfa_session(&clients, &endpoint, "456789").await;
    let mut role = role("Scoped", 3600);
    role.session_name = "alice@example.com".to_string();
    role.source_identity = Some("alice".to_string());
    role.external_id = Some("ext-4711".to_string());
    role.policy_arns = vec![
        "arn:aws:iam::aws:policy/ReadOnlyAccess".to_string(),
        "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess".to_string(),
    ];
    role.policy = Some(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#
            .to_string(),
    );
    let credentials = clients
        .assume_role(
            &SigningKeys::session(&session),
            &endpoint,
            &role,
            None,
            now(),
        )
        .await
        .expect("AssumeRole with options");
    assert_expires_in(&credentials, 3600);
    assert_eq!(
        caller_arn(&endpoint, &credentials).await,
        format!("arn:aws:sts::{ROLE_ACCOUNT}:assumed-role/Scoped/alice@example.com")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_assume_roles_share_one_client() {
    let moto = Moto::start();
    let endpoint = Endpoint::new("us-east-1", Some(moto.url.clone()));
    let clients = Arc::new(StsClients::new());
    let session = mfa_session(&clients, &endpoint, "567890").await;
    let signer = SigningKeys::session(&session);
    let started = Instant::now();
    let calls = (0..50).map(|i| {
        let (clients, signer, endpoint) = (clients.clone(), signer.clone(), endpoint.clone());
        tokio::spawn(async move {
            let role = role(&format!("Role{i}"), 900);
            clients
                .assume_role(&signer, &endpoint, &role, None, now())
                .await
        })
    });
    let mut keys = std::collections::HashSet::new();
    for (i, call) in calls.collect::<Vec<_>>().into_iter().enumerate() {
        let credentials = call
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("call {i}: {e}"));
        keys.insert(credentials.access_key_id);
    }
    eprintln!(
        "50 concurrent AssumeRole calls took {:?}",
        started.elapsed()
    );
    assert_eq!(keys.len(), 50, "every role session has its own keys");
    assert_eq!(clients.cached_clients(), 1, "one client for one endpoint");

    // Another region (or endpoint) is another client.
    let other = Endpoint::new("eu-west-1", Some(moto.url.clone()));
    clients
        .assume_role(&signer, &other, &role("Elsewhere", 900), None, now())
        .await
        .expect("AssumeRole in another region");
    assert_eq!(clients.cached_clients(), 2);
}

/// The wall clock, which the STS calls take as an argument.
fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}
