//! The credentials endpoint served by the running daemon (`endpoint = …` in
//! the config), with real consumers: the AWS CLI (botocore's container
//! provider) and the Rust SDK's default chain get each section's role;
//! a hundred clients at once cost one code and one call of each kind; a
//! child started by `exec --server` keeps working across session expiries
//! on one YubiKey code (the clocks moved by libfaketime and the STS's own).

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/endpoint.rs"]
mod endpoint;
#[path = "support/example_bin.rs"]
mod example_bin;
#[path = "support/fast_sts.rs"]
mod fast_sts;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/tools.rs"]
mod tools;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use aws_session_daemon::endpoint::Record;
use daemon::{Home, Running, accounts, org_config, stderr};
use fast_sts::FastSts;

/// `mfa_process` that counts its runs (one line each) in `marker`.
fn counting_code(marker: &Path) -> String {
    format!(
        "mfa_process = \"sh -c 'echo run >> {}; echo 123456'\"",
        marker.display()
    )
}

fn codes(marker: &Path) -> usize {
    std::fs::read_to_string(marker).map_or(0, |t| t.lines().count())
}

/// The config with the endpoint on (any free port) and, after the org's
/// sections, a section whose session is never written to disk.
fn serving(config: String, sts: &str, account: &str) -> String {
    format!(
        "endpoint = \"127.0.0.1:0\"\n{config}\n[hidden]\noutput = \"process\"\nsts_endpoint = \"{sts}\"\nassume_role_arn = \"arn:aws:iam::{account}:role/Hidden\"\n"
    )
}

/// The daemon's endpoint record, once it serves.
fn record(home: &Home) -> Record {
    let dir = home.runtime_dir();
    let mut found = None;
    daemon::wait_until("the endpoint's record", Duration::from_secs(20), || {
        found = Record::read(&dir).ok().flatten();
        found.is_some()
    });
    found.unwrap()
}

/// A command that reaches `section` through the endpoint and nothing else
/// (no credentials file, no config file, no keys in the environment).
fn through_endpoint(mut command: Command, record: &Record, section: &str, sts: &str) -> Command {
    command
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", record.url_of(section))
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &record.token_file)
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_ENDPOINT_URL", sts)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN");
    command
}

#[test]
fn the_daemons_endpoint_serves_each_sections_role_to_the_aws_cli_and_the_rust_sdk() {
    let moto = moto::Moto::start();
    let accounts = accounts(2);
    let config = serving(
        org_config(&moto.url, "mfa_process = \"echo 123456\"", &accounts),
        &moto.url,
        &accounts[1],
    );
    let home = Home::new(&config);
    let daemon = Running::start(&home, &["run", "--log-level", "debug"]);
    let record = record(&home);
    assert!(record.address.ip().is_loopback());
    let expected = [
        (accounts[0].as_str(), "Admin"),
        (accounts[1].as_str(), "Admin"),
        ("hidden", "Hidden"),
    ];
    for (section, role) in expected {
        let account = if section == "hidden" {
            accounts[1].as_str()
        } else {
            section
        };
        let arn = format!("arn:aws:sts::{account}:assumed-role/{role}/aws-session-daemon");
        // botocore's container provider.
        let mut aws = Command::new(tools::aws());
        aws.args([
            "sts",
            "get-caller-identity",
            "--query",
            "Arn",
            "--output",
            "text",
        ]);
        let out = through_endpoint(aws, &record, section, &moto.url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "aws CLI for [{section}]: {}\n{}",
            stderr(&out),
            daemon.log()
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), arn);
        // The Rust SDK's default chain.
        let sdk = Command::new(example_bin::path("sdk_identity"));
        let out = through_endpoint(sdk, &record, section, &moto.url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "Rust SDK for [{section}]: {}",
            stderr(&out)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), arn);
    }
    // The process section's session was never written to disk.
    assert!(!home.text().contains("[hidden]"));
    // `status` says where the endpoint is and what it serves.
    let out = home.run(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&record.url), "{text}");
    assert!(
        text.contains(&record.token_file.display().to_string()),
        "{text}"
    );
    assert!(text.contains("hidden"), "{text}");
    // No secret in the log.
    let log = daemon.log();
    for secret in home.secrets() {
        assert!(!log.contains(&secret), "a secret in the log");
    }
}

#[test]
fn a_hundred_clients_at_once_cost_one_code_one_get_session_token_one_assume_role() {
    let sts = FastSts::start(3600);
    let accounts = accounts(1);
    let marker = std::env::temp_dir().join(format!("endpoint-codes-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let config = format!(
        "endpoint = \"127.0.0.1:0\"\n{}",
        org_config(&sts.url, &counting_code(&marker), &accounts)
    );
    let home = Home::new(&config);
    let _daemon = Running::start(&home, &["run"]);
    let record = record(&home);
    let token = std::fs::read(&record.token_file).unwrap();
    let path = aws_session_daemon::endpoint::path_of(&accounts[0]);
    let keys: Vec<String> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..100)
            .map(|_| {
                let (path, token) = (&path, &token);
                scope.spawn(move || {
                    let reply = endpoint::get(record.address, path, Some(token));
                    assert_eq!(reply.status, 200, "{}", reply.body);
                    reply.json()["AccessKeyId"].as_str().unwrap().to_string()
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert!(keys.iter().all(|k| *k == keys[0]), "one session for all");
    assert_eq!(codes(&marker), 1, "one code");
    assert_eq!(sts.calls("GetSessionToken"), 1);
    assert_eq!(sts.calls("AssumeRole"), 1);
    let _ = std::fs::remove_file(&marker);
}

/// libfaketime for a process, its clock offset read from `file` (written by
/// the test: `+SECONDS`); the monotonic clock is left alone, so timers run
/// at the real pace.
fn faked(command: &mut Command, file: &Path) {
    command
        .env("LD_PRELOAD", tools::libfaketime())
        .env("FAKETIME_TIMESTAMP_FILE", file)
        .env("FAKETIME_NO_CACHE", "1")
        .env("DONT_FAKE_MONOTONIC", "1");
}

/// Moves every clock of the test by `seconds` from the start: the daemon's
/// and the child's (libfaketime) and the STS's.
fn set_clocks(file: &Path, sts: &FastSts, seconds: i64) {
    std::fs::write(file, format!("+{seconds}\n")).unwrap();
    sts.set_clock_offset(seconds);
}

#[test]
fn a_child_of_exec_server_works_across_two_expiries_on_one_code() {
    let sts = FastSts::start(900);
    let accounts = accounts(1);
    let marker = std::env::temp_dir().join(format!("endpoint-expiries-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let config = format!(
        "endpoint = \"127.0.0.1:0\"\n{}assume_session_duration = 900\n",
        org_config(&sts.url, &counting_code(&marker), &accounts)
    );
    let home = Home::new(&config);
    let clock: PathBuf = home.path().join("faketime");
    set_clocks(&clock, &sts, 0);
    let mut command = home.command(&["run", "--log-level", "debug"]);
    faked(&mut command, &clock);
    let daemon = Running::start_logging_to(command, home.path().join("daemon.log"));
    record(&home);
    let first = std::time::Instant::now();

    // The child asks STS for its identity every half second for 30 s; it
    // knows nothing of the daemon but the endpoint's two variables.
    let mut child = home.command(&[
        "exec",
        "--server",
        &accounts[0],
        "--",
        example_bin::path("sdk_identity").to_str().unwrap(),
        "--repeat",
        "60",
        "--every-ms",
        "500",
    ]);
    faked(&mut child, &clock);
    let child = child
        .env("AWS_ENDPOINT_URL", &sts.url)
        .env("AWS_REGION", "us-east-1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Two expiries: each jump leaves the session in use five seconds to
    // live by every clock, so the SDK asks the endpoint again, and the
    // endpoint gets a new one from the daemon.
    std::thread::sleep(Duration::from_secs(8));
    let jump = |since: std::time::Instant, from: i64| {
        from + 900 - 5 - i64::try_from(since.elapsed().as_secs()).unwrap()
    };
    let offset = jump(first, 0);
    set_clocks(&clock, &sts, offset);
    daemon::wait_until("the second session", Duration::from_secs(10), || {
        sts.calls("AssumeRole") >= 2
    });
    let second = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(6));
    set_clocks(&clock, &sts, jump(second, offset));
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the child failed: {}\n--- the daemon's log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        daemon.log()
    );
    let distinct = {
        let mut keys = sts.identities();
        keys.dedup();
        keys.len()
    };
    assert!(
        distinct >= 3,
        "three sessions in turn (two expiries): {:?}\n{}",
        sts.identities(),
        daemon.log()
    );
    assert_eq!(codes(&marker), 1, "one code for the whole run");
    assert_eq!(sts.calls("GetSessionToken"), 1);
    let _ = std::fs::remove_file(&marker);
}
