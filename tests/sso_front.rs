//! The IAM Identity Center stand-in (`examples/sso_front`) speaks the real
//! wire formats: checked with clients the project did not write, botocore's
//! and the AWS SDK for Rust's own `sso-oidc` and `sso` clients. Each
//! parses the answers, and the errors into the exceptions of the services'
//! models (or, for the portal's unmodeled `ForbiddenException`, its code).
//! The module's behaviour on top of it is tested in `src/sso/tests/`.

#[path = "support/example_bin.rs"]
mod example_bin;
#[path = "support/sso_front.rs"]
mod sso_front;
#[path = "support/tools.rs"]
mod tools;

use std::path::Path;
use std::process::Command;

use aws_sdk_ssooidc::operation::create_token::CreateTokenError;
use aws_sdk_ssooidc::operation::start_device_authorization::StartDeviceAuthorizationError;

const ARGS: &[&str] = &["--interval-seconds", "1", "--forbid", "111122223333/Admin"];

#[test]
fn botocore_reads_every_answer_and_error_of_the_stand_in() {
    let front = sso_front::SsoFront::start(ARGS);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/sso_front_botocore.py");
    // botocore's own clients only: no profile, no credentials.
    let output = Command::new(tools::python3())
        .arg(script)
        .arg(&front.url)
        .env("HOME", "/nonexistent")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let keys = |name: &str| -> Vec<String> { serde_json::from_value(out[name].clone()).unwrap() };
    assert_eq!(
        keys("register"),
        [
            "clientId",
            "clientIdIssuedAt",
            "clientSecret",
            "clientSecretExpiresAt"
        ]
    );
    assert_eq!(
        keys("device"),
        [
            "deviceCode",
            "expiresIn",
            "interval",
            "userCode",
            "verificationUri",
            "verificationUriComplete"
        ]
    );
    assert_eq!(
        keys("token"),
        ["accessToken", "expiresIn", "refreshToken", "tokenType"]
    );
    assert_eq!(
        keys("role"),
        [
            "accessKeyId",
            "expiration",
            "secretAccessKey",
            "sessionToken"
        ]
    );
    let error = |name: &str, code: &str, status: u64| {
        let e = &out[name];
        assert_eq!(e["code"], code, "{name}: {e}");
        assert_eq!(e["status"], status, "{name}: {e}");
        e.clone()
    };
    let pending = error("pending", "AuthorizationPendingException", 400);
    // The modeled members of the OIDC exceptions, as botocore reads them.
    assert_eq!(pending["error"], "authorization_pending");
    assert!(pending["error_description"].is_string());
    error("too_fast", "SlowDownException", 400);
    error("bad_refresh", "InvalidGrantException", 400);
    error("bad_client", "InvalidClientException", 401);
    let unauthorized = error("unauthorized", "UnauthorizedException", 401);
    assert_eq!(
        unauthorized["message"],
        "Session token not found or invalid"
    );
    let forbidden = error("forbidden", "ForbiddenException", 403);
    assert_eq!(forbidden["message"], "No access");
    assert_eq!(out["refreshed"], true);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let expiration = out["expiration_ms"].as_i64().unwrap();
    assert!(
        (now_ms + 3_500_000..now_ms + 3_700_000).contains(&expiration),
        "{expiration}"
    );
    assert_eq!(front.outcomes("Approval:approved"), 1);
}

fn oidc(url: &str) -> aws_sdk_ssooidc::Client {
    aws_sdk_ssooidc::Client::from_conf(
        aws_sdk_ssooidc::Config::builder()
            .behavior_version(aws_sdk_ssooidc::config::BehaviorVersion::latest())
            .region(aws_sdk_ssooidc::config::Region::new("eu-west-1"))
            .retry_config(aws_sdk_ssooidc::config::retry::RetryConfig::disabled())
            .endpoint_url(url)
            .http_client(aws_session_daemon::sts::https_client())
            .build(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_sdk_maps_the_stand_ins_errors_to_the_models_exceptions() {
    let front = sso_front::SsoFront::start(ARGS);
    let oidc = oidc(&front.url);
    let client = oidc
        .register_client()
        .client_name("sdk-test")
        .client_type("public")
        .scopes("sso:account:access")
        .send()
        .await
        .unwrap();
    let (id, secret) = (client.client_id().unwrap(), client.client_secret().unwrap());
    assert!(client.client_secret_expires_at() > client.client_id_issued_at());

    let error = oidc
        .start_device_authorization()
        .client_id(id)
        .client_secret("wrong")
        .start_url("https://d-1234567890.awsapps.com/start")
        .send()
        .await
        .unwrap_err();
    let service = error.into_service_error();
    assert!(
        matches!(
            service,
            StartDeviceAuthorizationError::InvalidClientException(_)
        ),
        "{service:?}"
    );

    let device = oidc
        .start_device_authorization()
        .client_id(id)
        .client_secret(secret)
        .start_url("https://d-1234567890.awsapps.com/start")
        .send()
        .await
        .unwrap();
    assert_eq!(device.interval(), 1);
    let poll = || {
        oidc.create_token()
            .client_id(id)
            .client_secret(secret)
            .grant_type("urn:ietf:params:oauth:grant-type:device_code")
            .device_code(device.device_code().unwrap())
            .send()
    };
    match poll().await.unwrap_err().into_service_error() {
        CreateTokenError::AuthorizationPendingException(e) => {
            assert_eq!(e.error(), Some("authorization_pending"));
        }
        other => panic!("{other:?}"),
    }
    let too_fast = poll().await.unwrap_err().into_service_error();
    assert!(
        matches!(too_fast, CreateTokenError::SlowDownException(_)),
        "{too_fast:?}"
    );

    sso_front::browser_decides(
        device.verification_uri_complete().unwrap(),
        device.user_code().unwrap(),
        "deny",
    );
    tokio::time::sleep(std::time::Duration::from_millis(6200)).await;
    let denied = poll().await.unwrap_err().into_service_error();
    assert!(
        matches!(denied, CreateTokenError::AccessDeniedException(_)),
        "{denied:?}"
    );

    let expired = aws_sdk_ssooidc::Client::create_token(&oidc)
        .client_id(id)
        .client_secret(secret)
        .grant_type("refresh_token")
        .refresh_token("aorAAAAnot-a-token")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(expired, CreateTokenError::InvalidGrantException(_)),
        "{expired:?}"
    );

    // The portal: an unmodeled 403 keeps its code for the SDK.
    let sso = aws_sdk_sso::Client::from_conf(
        aws_sdk_sso::Config::builder()
            .behavior_version(aws_sdk_sso::config::BehaviorVersion::latest())
            .region(aws_sdk_sso::config::Region::new("eu-west-1"))
            .retry_config(aws_sdk_sso::config::retry::RetryConfig::disabled())
            .endpoint_url(&front.url)
            .http_client(aws_session_daemon::sts::https_client())
            .build(),
    );
    let refused = || async {
        sso.get_role_credentials()
            .account_id("111122223333")
            .role_name("ReadOnly")
            .access_token("aoaAAAAnot-a-token")
            .send()
            .await
            .unwrap_err()
            .into_service_error()
    };
    let error = refused().await;
    assert!(error.is_unauthorized_exception(), "{error:?}");
    front.set(serde_json::json!({ "throttle_per_second": 1 }));
    let mut throttled = false;
    for _ in 0..3 {
        throttled |= refused().await.is_too_many_requests_exception();
    }
    assert!(throttled, "TooManyRequestsException after the limit");
    assert_eq!(front.outcomes("GetRoleCredentials:throttled"), 2);
}
