//! The token cache read and written by clients the project did not write:
//! botocore (and the AWS CLI on it) and the AWS SDK for Rust, pointed at
//! the stand-in with the service endpoint variables, with role credentials
//! whose GetCallerIdentity (at moto) names the SSO role.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use secrecy::ExposeSecret;

use super::super::read_sso_session;
use super::{ACCOUNT, Decision, Person, ROLE, Rig, child, moto, now, tools};

const CONFIG: &str = "[profile dev]\n\
sso_session = corp\n\
sso_account_id = 111122223333\n\
sso_role_name = ReadOnly\n\
region = us-east-1\n\
\n\
[sso-session corp]\n\
sso_start_url = https://d-1234567890.awsapps.com/start\n\
sso_region = eu-west-1\n\
sso_registration_scopes = sso:account:access\n";

/// A rig whose role credentials come from moto, with `~/.aws/config`
/// written and the session read from it by the module's reader.
fn rig_with_config(moto: &moto::Moto) -> Rig {
    let mut rig = Rig::start(&["--sts-upstream", &moto.url]);
    let config = rig.home.path().join(".aws").join("config");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, CONFIG).unwrap();
    rig.session = read_sso_session(&config, "corp").unwrap();
    rig
}

/// The environment of an AWS tool run as the person: this home, this
/// config, the stand-in and moto as endpoints, and nothing else.
fn aws_env(command: &mut Command, rig: &Rig, moto: &moto::Moto) {
    let home = rig.home.path();
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join(".aws").join("config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.join(".aws").join("none"),
        )
        .env("AWS_ENDPOINT_URL_SSO_OIDC", &rig.front.url)
        .env("AWS_ENDPOINT_URL_SSO", &rig.front.url)
        .env("AWS_ENDPOINT_URL_STS", &moto.url)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    // scripts/test.sh's mark, by which it stops what a run left behind.
    if let Some(mark) = std::env::var_os("AWS_SESSION_DAEMON_TEST_RUN") {
        command.env("AWS_SESSION_DAEMON_TEST_RUN", mark);
    }
}

fn botocore(rig: &Rig, moto: &moto::Moto) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/sso_botocore.py");
    let mut command = Command::new(tools::python3());
    command.arg(script).arg("dev");
    aws_env(&mut command, rig, moto);
    let output = command.output().expect("the project's python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(answer.get("error").is_none(), "botocore: {answer}");
    answer
}

fn assert_sso_identity(arn: &str) {
    assert!(
        arn.starts_with(&format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_{ROLE}_"
        )),
        "{arn}"
    );
}

/// Shortens the next token's life: the portal refuses the current one, so
/// the module refreshes it and caches a token that lives `seconds`.
async fn cache_a_short_token(rig: &Rig, person: &Person, seconds: u64) -> super::AccessToken {
    let old = rig.token(person).await.unwrap();
    rig.front
        .set(serde_json::json!({ "access_token_seconds": seconds }));
    rig.front
        .control(serde_json::json!({ "op": "revoke_access_tokens" }));
    rig.role(&old).await.unwrap_err();
    let short = rig.token(person).await.unwrap();
    assert!(short.expires_at < now() + time::Duration::minutes(1));
    rig.front
        .set(serde_json::json!({ "access_token_seconds": 28800 }));
    tokio::time::sleep(Duration::from_secs(seconds) + Duration::from_millis(500)).await;
    short
}

/// The module hands out `written` (another tool's token, long-lived) and
/// buys role credentials with it, with no OIDC call and no sign-in.
async fn uses_the_cached_token_with_no_oidc_call(rig: &Rig, person: &Person, written: &str) {
    let calls = rig.front.stats()["calls"].clone();
    let token = rig.token(person).await.unwrap();
    assert_eq!(token.token.expose_secret(), written);
    assert!(token.expires_at > now() + time::Duration::hours(7));
    rig.role(&token).await.unwrap();
    let after = rig.front.stats()["calls"].clone();
    for operation in [
        "RegisterClient",
        "StartDeviceAuthorization",
        "CreateToken:refresh_token",
        "CreateToken:device_code",
    ] {
        assert_eq!(calls[operation], after[operation], "{operation}");
    }
    assert_eq!(person.codes().len(), 1, "one sign-in in all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn botocore_uses_and_refreshes_our_token_and_we_use_the_one_it_refreshed() {
    let moto = moto::Moto::start();
    let rig = rig_with_config(&moto);
    let person = Person::new(Decision::Approve);
    let ours = rig.token(&person).await.unwrap();

    // botocore resolves the profile from the token the module wrote.
    let answer = botocore(&rig, &moto);
    assert_eq!(answer["method"], "sso", "{answer}");
    assert_sso_identity(answer["arn"].as_str().unwrap());
    assert_eq!(rig.front.calls("CreateToken:refresh_token"), 0);
    // So does the AWS CLI.
    let mut aws = Command::new(tools::aws());
    aws.args([
        "sts",
        "get-caller-identity",
        "--profile",
        "dev",
        "--output",
        "json",
    ]);
    aws_env(&mut aws, &rig, &moto);
    let output = aws.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let identity: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_sso_identity(identity["Arn"].as_str().unwrap());
    assert_eq!(rig.cached_json()["accessToken"], ours.token.expose_secret());

    // An expired token in our cache: botocore refreshes it and writes back.
    let short = cache_a_short_token(&rig, &person, 2).await;
    let refreshes = rig.front.calls("CreateToken:refresh_token");
    let answer = botocore(&rig, &moto);
    assert_sso_identity(answer["arn"].as_str().unwrap());
    assert_eq!(rig.front.calls("CreateToken:refresh_token"), refreshes + 1);
    let cached = rig.cached_json();
    let botocores = cached["accessToken"].as_str().unwrap().to_string();
    assert_ne!(botocores, short.token.expose_secret());
    let expires = cached["expiresAt"].as_str().unwrap();
    assert!(
        expires.ends_with('Z') && expires.len() == 20,
        "botocore wrote {expires}"
    );

    // The module takes botocore's token as it is: no OIDC call.
    uses_the_cached_token_with_no_oidc_call(&rig, &person, &botocores).await;
}

/// The AWS SDK for Rust in another process (its providers read the real
/// environment): the credentials of `SSO_TEST_PROFILE`, then
/// GetCallerIdentity at `SSO_TEST_STS`.
pub(super) async fn child_sdk_credentials() {
    use aws_credential_types::provider::ProvideCredentials;
    let profile = std::env::var("SSO_TEST_PROFILE").unwrap();
    let provider_config = aws_config::provider_config::ProviderConfig::default()
        .with_http_client(crate::sts::https_client());
    let provider = aws_config::profile::ProfileFileCredentialsProvider::builder()
        .configure(&provider_config)
        .profile_name(&profile)
        .build();
    let credentials = match provider.provide_credentials().await {
        Ok(credentials) => credentials,
        Err(e) => {
            println!("ERROR {e:?}");
            return;
        }
    };
    println!("KEY {}", credentials.access_key_id());
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(std::env::var("SSO_TEST_STS").unwrap())
        .http_client(crate::sts::https_client())
        .credentials_provider(credentials)
        .build();
    match aws_sdk_sts::Client::from_conf(config)
        .get_caller_identity()
        .send()
        .await
    {
        Ok(identity) => println!("ARN {}", identity.arn().unwrap_or("")),
        Err(e) => println!("ERROR {e:?}"),
    }
}

fn sdk(rig: &Rig, moto: &moto::Moto) -> (String, String) {
    let mut command = child("sdk-credentials");
    aws_env(&mut command, rig, moto);
    let output = command
        .env("SSO_TEST_CHILD", "sdk-credentials")
        .env("SSO_TEST_PROFILE", "dev")
        .env("SSO_TEST_STS", &moto.url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{text}");
    let line = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("the SDK said: {text}"))
            .to_string()
    };
    (line("KEY "), line("ARN "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_sdk_uses_and_refreshes_our_token_and_we_use_the_one_it_refreshed() {
    let moto = moto::Moto::start();
    let rig = rig_with_config(&moto);
    let person = Person::new(Decision::Approve);
    let ours = rig.token(&person).await.unwrap();

    let (key, arn) = sdk(&rig, &moto);
    assert_sso_identity(&arn);
    let issued = &rig.front.stats()["issued"][&key];
    assert_eq!(issued["account_id"], ACCOUNT);
    assert_eq!(issued["role_name"], ROLE);
    assert_eq!(rig.front.calls("CreateToken:refresh_token"), 0);
    assert_eq!(rig.cached_json()["accessToken"], ours.token.expose_secret());

    let short = cache_a_short_token(&rig, &person, 2).await;
    let refreshes = rig.front.calls("CreateToken:refresh_token");
    let (_, arn) = sdk(&rig, &moto);
    assert_sso_identity(&arn);
    assert_eq!(rig.front.calls("CreateToken:refresh_token"), refreshes + 1);
    let cached = rig.cached_json();
    let sdks = cached["accessToken"].as_str().unwrap().to_string();
    assert_ne!(sdks, short.token.expose_secret());
    // The SDK keeps the registration and the refresh token it was given.
    assert!(cached["refreshToken"].is_string() && cached["clientSecret"].is_string());

    uses_the_cached_token_with_no_oidc_call(&rig, &person, &sdks).await;
}
