//! Sessions that never touch the credentials file: `output = "process"`
//! sections, served by `aws-session-daemon credential-process` to real
//! consumers (the AWS CLI, the AWS SDK for Rust) through `credential_process`
//! in ~/.aws/config.
#![allow(deprecated)] // ProfileFiles / ProfileFileKind: the names aws_config::profile takes

#[path = "support/credentials_sdk.rs"]
mod credentials_sdk;
#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/example_bin.rs"]
mod example_bin;
#[path = "support/fast_sts.rs"]
mod fast_sts;
#[path = "support/key_and_sts.rs"]
mod key_and_sts;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/pcsc.rs"]
mod pcsc;
#[path = "support/sts_front.rs"]
mod sts_front;
#[path = "support/tmpfs.rs"]
mod tmpfs;
#[path = "support/tools.rs"]
mod tools;
#[path = "support/users.rs"]
mod users;
#[path = "support/vcard.rs"]
mod vcard;

use std::process::Command;
use std::time::{Duration, Instant};

use daemon::{Home, Running, USER_TEXT, accounts, stderr, wait_until};
use fast_sts::FastSts;

/// `org_config` with every section's session kept for credential_process.
fn process_config(endpoint: &str, code_source: &str, accounts: &[String]) -> String {
    daemon::org_config(endpoint, code_source, accounts)
        .replace("[[org]]\n", "[[org]]\noutput = \"process\"\n")
}

/// `[profile NAME]` with this binary's credential_process, for each account.
fn write_aws_config(home: &Home, accounts: &[String]) {
    let mut text = String::new();
    for account in accounts {
        text.push_str(&format!(
            "[profile {account}]\ncredential_process = {} credential-process --profile {account}\n\n",
            daemon::binary()
        ));
    }
    std::fs::write(home.aws_dir().join("config"), text).unwrap();
}

fn credential_process(home: &Home, profile: &str) -> serde_json::Value {
    let output = home.run(&["credential-process", "--profile", profile]);
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).expect("credential_process JSON")
}

#[test]
fn the_session_is_served_from_the_cache_and_never_written_to_the_file() {
    let sts = FastSts::start(3600);
    let accounts = accounts(2);
    let home = Home::new(&process_config(
        &sts.url,
        "mfa_process = \"echo 123456\"",
        &accounts,
    ));
    let json = credential_process(&home, &accounts[0]);
    assert_eq!(json["Version"], 1);
    for key in [
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
        "Expiration",
    ] {
        assert!(
            json[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key}: {json}"
        );
    }
    let expiration =
        aws_session_daemon::timestamp::parse_expiry(json["Expiration"].as_str().unwrap())
            .expect("RFC 3339 expiration");
    assert!(expiration > time::OffsetDateTime::now_utc() + time::Duration::minutes(50));
    assert_eq!(
        (sts.calls("GetSessionToken"), sts.calls("AssumeRole")),
        (1, 1)
    );
    assert_eq!(
        home.text(),
        USER_TEXT,
        "nothing written to the credentials file"
    );

    // Fresh in the cache: the same credentials, no STS call.
    let again = credential_process(&home, &accounts[0]);
    assert_eq!(again["AccessKeyId"], json["AccessKeyId"]);
    assert_eq!(
        (sts.calls("GetSessionToken"), sts.calls("AssumeRole")),
        (1, 1)
    );
    // Another profile reuses the cached MFA session.
    credential_process(&home, &accounts[1]);
    assert_eq!(
        (sts.calls("GetSessionToken"), sts.calls("AssumeRole")),
        (1, 2)
    );

    // The secrets are in the 0600 cache and nowhere else on disk.
    let secret = json["SecretAccessKey"].as_str().unwrap();
    let cache = home.runtime_dir().join("mfa-sessions.json");
    assert!(std::fs::read_to_string(&cache).unwrap().contains(secret));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&cache).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    for entry in walk(home.path()) {
        if entry != cache {
            let text = std::fs::read(&entry).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&text).contains(secret),
                "the role secret is in {}",
                entry.display()
            );
        }
    }

    // Errors: one line on stderr, non-zero exit.
    for (profile, says) in [
        ("nosuch", "no section writes profile \"nosuch\""),
        ("default", "no section writes profile \"default\""),
    ] {
        let output = home.run(&["credential-process", "--profile", profile]);
        assert!(!output.status.success());
        let err = stderr(&output);
        assert!(err.contains(says), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(output.stdout.is_empty());
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            files.extend(walk(&path));
        } else if entry.file_type().is_ok_and(|t| t.is_file()) {
            files.push(path);
        }
    }
    files
}

#[test]
fn the_aws_cli_and_the_rust_sdk_use_the_profile() {
    let moto = moto::Moto::start();
    let accounts = accounts(1);
    let home = Home::new(&process_config(
        &moto.url,
        "mfa_process = \"echo 123456\"",
        &accounts,
    ));
    write_aws_config(&home, &accounts);
    // The AWS CLI runs credential_process itself, with its environment.
    let output = aws(&home, &moto.url)
        .args(["sts", "get-caller-identity", "--profile", &accounts[0]])
        .args(["--output", "text", "--query", "Arn"])
        .output()
        .expect("the AWS CLI");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!(
            "arn:aws:sts::{}:assumed-role/Admin/aws-session-daemon",
            accounts[0]
        )
    );
    assert_eq!(
        home.text(),
        USER_TEXT,
        "nothing written to the credentials file"
    );

    // The AWS SDK for Rust resolves the same profile from a config file.
    // It runs credential_process with this test's environment, so the
    // command carries the test HOME (`env(1)`, as a user's would not need).
    let sdk_config = home.path().join("sdk-config");
    std::fs::write(
        &sdk_config,
        format!(
            "[profile {0}]\ncredential_process = env HOME={1} XDG_RUNTIME_DIR={1}/run {2} credential-process --profile {0}\n",
            accounts[0],
            home.path().display(),
            daemon::binary()
        ),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let credentials = runtime.block_on(async {
        use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
        use aws_credential_types::provider::ProvideCredentials;
        let files = ProfileFiles::builder()
            .with_file(ProfileFileKind::Config, &sdk_config)
            .build();
        aws_config::profile::ProfileFileCredentialsProvider::builder()
            .configure(&credentials_sdk::provider_config())
            .profile_files(files)
            .profile_name(&accounts[0])
            .build()
            .provide_credentials()
            .await
    });
    let credentials = credentials.expect("the SDK ran credential_process");
    assert!(credentials.access_key_id().starts_with("ASIA"));
    assert!(credentials.expiry().is_some(), "Expiration was read");
}

#[test]
fn twenty_cli_invocations_at_once_cost_one_yubikey_code() {
    // No daemon: twenty `aws` commands for twenty process profiles sharing
    // one MFA device start together; each runs credential_process, which
    // runs a pass for its own section. Between them: one code, one
    // GetSessionToken.
    let rig = key_and_sts::KeyAndSts::start();
    let (card, front, moto) = (&rig.card, &rig.front, &rig.moto);
    let accounts = accounts(20);
    let slot = format!("mfa_oath_slot = \"{}\"", vcard::AWS);
    let home = Home::new(&process_config(&front.url, &slot, &accounts));
    write_aws_config(&home, &accounts);
    let started = Instant::now();
    let children: Vec<_> = accounts
        .iter()
        .map(|account| {
            aws(&home, &moto.url)
                .args(["sts", "get-caller-identity", "--profile", account])
                .args(["--output", "text", "--query", "Arn"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("the AWS CLI")
        })
        .collect();
    for (account, child) in accounts.iter().zip(children) {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{account}: {}", stderr(&output));
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            format!("arn:aws:sts::{account}:assumed-role/Admin/aws-session-daemon")
        );
    }
    eprintln!(
        "20 aws commands at once, no daemon: {:?}, {} YubiKey code(s), {} GetSessionToken",
        started.elapsed(),
        card.calculations(),
        front.stats()["actions"]["GetSessionToken"]
    );
    assert_eq!(card.calculations(), 1, "one YubiKey code between them");
    assert_eq!(front.stats()["actions"]["GetSessionToken"], 1);
    assert_eq!(front.stats()["actions"]["AssumeRole"], 20);
    assert_eq!(home.text(), USER_TEXT);
}

/// The AWS CLI in the test HOME, with the runtime directory the
/// credential_process children share.
fn aws(home: &Home, endpoint: &str) -> Command {
    let mut command = Command::new(tools::aws());
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", home.path().join("run"))
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint);
    command
}

#[test]
fn with_the_daemon_running_credential_process_needs_neither_sts_nor_the_key() {
    let sts = FastSts::start(3600);
    let accounts = accounts(3);
    let home = Home::new(&process_config(
        &sts.url,
        "mfa_process = \"echo 123456\"",
        &accounts,
    ));
    let mut running = Running::start(&home, &["run"]);
    wait_until(
        "the daemon to fill the cache",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(home.runtime_dir().join("mfa-sessions.json"))
                .is_ok_and(|t| accounts.iter().all(|a| t.contains(&format!("\"{a}\""))))
        },
    );
    let calls = (sts.calls("GetSessionToken"), sts.calls("AssumeRole"));
    assert_eq!(calls, (1, 3));
    for account in &accounts {
        credential_process(&home, account);
    }
    assert_eq!(
        (sts.calls("GetSessionToken"), sts.calls("AssumeRole")),
        calls,
        "served from the cache the daemon keeps fresh"
    );
    assert!(running.alive());
}

/// `mfa_process` that counts its runs in `marker` (one line each).
fn counting_code_source(marker: &std::path::Path) -> String {
    format!(
        "mfa_process = \"sh -c 'echo run >> {}; echo 123456'\"",
        marker.display()
    )
}

fn runs(marker: &std::path::Path) -> usize {
    std::fs::read_to_string(marker).map_or(0, |t| t.lines().count())
}

/// cron, `sudo`, ssh without a login session: no XDG_RUNTIME_DIR. The calls
/// still share one MFA session and the TOTP steps (in ~/.cache), so three
/// calls cost one code and one GetSessionToken, never the same code twice.
#[test]
fn without_xdg_runtime_dir_the_calls_share_one_session() {
    let sts = FastSts::start(3600);
    let accounts = accounts(3);
    let marker = std::env::temp_dir().join(format!("cp-runs-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let home = Home::new(&process_config(
        &sts.url,
        &counting_code_source(&marker),
        &accounts,
    ));
    for account in &accounts {
        let output = home
            .command(&["credential-process", "--profile", account])
            .env_remove("XDG_RUNTIME_DIR")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert!(json["SecretAccessKey"].as_str().is_some());
    }
    assert_eq!(runs(&marker), 1, "one code for three calls");
    assert_eq!(sts.calls("GetSessionToken"), 1);
    assert_eq!(sts.calls("AssumeRole"), 3);
    let cache = home
        .path()
        .join(".cache/aws-session-daemon/mfa-sessions.json");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&cache).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let _ = std::fs::remove_file(&marker);
}

/// A runtime directory that is someone else's (`sudo -E`, a planted
/// directory) is not used; without a shared record of the TOTP steps the
/// call refuses before it reads a code, saying why and what to do.
#[test]
fn a_foreign_runtime_directory_costs_no_code() {
    let other = users::second_user();
    let sts = FastSts::start(3600);
    let accounts = accounts(1);
    let marker = std::env::temp_dir().join(format!("cp-foreign-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let home = Home::new(&process_config(
        &sts.url,
        &counting_code_source(&marker),
        &accounts,
    ));
    let foreign = home.path().join("foreign");
    std::fs::create_dir_all(foreign.join("aws-session-daemon")).unwrap();
    other.own(&foreign);
    for _ in 0..3 {
        let output = home
            .command(&["credential-process", "--profile", &accounts[0]])
            .env("XDG_RUNTIME_DIR", &foreign)
            .output()
            .unwrap();
        assert!(!output.status.success());
        let err = stderr(&output);
        assert!(err.contains("would spend an MFA code"), "{err}");
        assert!(err.contains("XDG_RUNTIME_DIR"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    assert_eq!(runs(&marker), 0, "no code read");
    assert_eq!(sts.calls("GetSessionToken") + sts.calls("AssumeRole"), 0);
}

/// A runtime directory on a full file system: the lock can be taken, but
/// the TOTP step cannot be recorded, so no code is read (none could be
/// sent twice by the next call).
#[test]
fn a_full_runtime_directory_costs_no_code() {
    let sts = FastSts::start(3600);
    let accounts = accounts(1);
    let marker = std::env::temp_dir().join(format!("cp-full-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let home = Home::new(&process_config(
        &sts.url,
        &counting_code_source(&marker),
        &accounts,
    ));
    let full = tmpfs::Tmpfs::mount(&home.path().join("full"), "64k");
    std::fs::create_dir(full.path().join("aws-session-daemon")).unwrap();
    full.fill();
    for _ in 0..3 {
        let output = home
            .command(&["credential-process", "--profile", &accounts[0]])
            .env("XDG_RUNTIME_DIR", full.path())
            .output()
            .unwrap();
        assert!(!output.status.success());
        let err = stderr(&output);
        assert!(err.contains("cannot be recorded"), "{err}");
    }
    assert_eq!(runs(&marker), 0, "no code read");
    assert_eq!(sts.calls("GetSessionToken") + sts.calls("AssumeRole"), 0);
}
