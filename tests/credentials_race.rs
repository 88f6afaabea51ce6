//! A writer that takes no lock, racing the daemon: the AWS CLI's own
//! `aws configure set` (awscli's `ConfigFileWriter`: it reads the file,
//! then opens the path and appends a new section, or truncates and
//! rewrites it in place) adds a profile `user{i}` 150 times, while
//! `aws-session-daemon apply` rewrites its 200 profiles in a loop in the
//! same file (with backups, the default): a file of several hundred
//! profiles at the end. No user section may be lost, and the daemon's
//! profiles must be there and fresh at the end.
//!
//! Environment: `AWS_SESSION_DAEMON_RACE_CALLS` (default 150) sets the
//! number of `aws configure set` calls, `AWS_SESSION_DAEMON_RACE_PROFILES`
//! (default 200) the daemon's profiles, `AWS_SESSION_DAEMON_RACE_DAEMON`
//! another daemon binary to race (to compare with an older build). The AWS
//! CLI comes from the test environment that `scripts/install-deps.sh` makes
//! (`$AWS_SESSION_DAEMON_TEST_ENV/bin/aws`, else `target/test-env/bin/aws`).

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/fast_sts.rs"]
mod fast_sts;
#[path = "support/tools.rs"]
mod tools;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use aws_session_daemon::credentials::Document;
use daemon::{Home, USER_TEXT, accounts, botocore_sections, duplicate_sections};
use fast_sts::FastSts;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the daemon's runs said, counted.
#[derive(Debug, Default)]
struct Applies {
    runs: usize,
    /// Runs that panicked, or logged an error.
    failed: usize,
    /// Writes that found the AWS CLI's write in the file they had just
    /// replaced, and wrote again on top of it.
    merged: usize,
    /// Writes that found the file changed at the final check before the
    /// swap, and started over.
    restarted: usize,
}

#[test]
fn aws_configure_set_racing_the_daemon_loses_no_section() {
    let calls = env_number("AWS_SESSION_DAEMON_RACE_CALLS", 150);
    let daemon_binary = std::env::var_os("AWS_SESSION_DAEMON_RACE_DAEMON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(daemon::binary()));
    let aws = tools::aws();

    // Role credentials due as they arrive (30 s left, 60 s margin): every
    // `apply` rewrites every profile.
    let sts = FastSts::start(30);
    let owned = accounts(env_number("AWS_SESSION_DAEMON_RACE_PROFILES", 200));
    let config = format!(
        "refresh_margin = 60\nassume_session_duration = 900\n{}",
        daemon::org_config(&sts.url, "mfa_process = \"echo 123456\"", &owned)
    );
    let home =
        Home::with_credentials_in(Path::new(env!("CARGO_TARGET_TMPDIR")), &config, USER_TEXT);
    let cli_config = home.path().join("aws-cli-config");
    let daemon_command = |args: &[&str]| {
        let mut command = Command::new(&daemon_binary);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("XDG_RUNTIME_DIR", home.path().join("run"))
            .stdin(Stdio::null());
        command
    };
    // A first apply: the MFA session is cached, every profile written. (It
    // exits 1: the credentials arrive due, so the profiles are not fresh.)
    let first = daemon_command(&["apply"]).output().unwrap();
    assert_ne!(
        first.status.code(),
        Some(101),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        daemon::stale_profiles(&home.text(), &owned, 0).is_empty(),
        "{}",
        home.text()
    );

    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (done, aws, credentials) = (Arc::clone(&done), aws.clone(), home.credentials());
        let (home_dir, cli_config) = (home.path().to_path_buf(), cli_config.clone());
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut failures = Vec::new();
            for i in 0..calls {
                let output = Command::new(&aws)
                    .args([
                        "configure",
                        "set",
                        "aws_access_key_id",
                        &format!("AKIAUSER{i}"),
                        "--profile",
                        &format!("user{i}"),
                    ])
                    .env_clear()
                    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                    .env("HOME", &home_dir)
                    .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
                    .env("AWS_CONFIG_FILE", &cli_config)
                    .stdin(Stdio::null())
                    .output()
                    .expect("run aws configure set");
                if !output.status.success() {
                    failures.push(format!(
                        "user{i}: {}",
                        String::from_utf8_lossy(&output.stderr)
                    ));
                }
            }
            done.store(true, Ordering::SeqCst);
            (started.elapsed(), failures)
        })
    };

    let mut applies = Applies::default();
    while !done.load(Ordering::SeqCst) {
        let output = daemon_command(&["apply", "--log-level", "debug"])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&output.stderr);
        applies.runs += 1;
        // Exit 1 is expected (the credentials arrive due); anything else,
        // or an error other than that, is a failure.
        let failed = !matches!(output.status.code(), Some(0 | 1))
            || log.contains(" ERROR ")
            || log.contains("panicked");
        if failed && applies.failed == 0 {
            eprintln!("a failed apply:\n{log}");
        }
        applies.failed += usize::from(failed);
        applies.merged += log
            .matches("another program wrote into the file while it was being replaced")
            .count();
        applies.restarted += log
            .matches("changed before the new version was swapped in")
            .count();
    }
    let (took, cli_failures) = writer.join().unwrap();
    assert!(
        cli_failures.is_empty(),
        "aws configure set failed:\n{}",
        cli_failures.join("\n")
    );

    // The end state, after one more apply with credentials that stay fresh.
    sts.set_role_lifetime(3600);
    let last = daemon_command(&["apply"]).output().unwrap();
    let text = home.text();
    let doc = Document::parse(&text);
    let lost: Vec<String> = (0..calls)
        .filter(|i| {
            doc.get(&format!("user{i}"), "aws_access_key_id")
                .ok()
                .flatten()
                != Some(format!("AKIAUSER{i}").as_str())
        })
        .map(|i| format!("user{i}"))
        .collect();
    eprintln!(
        "{calls} `aws configure set` calls in {took:.1?} against {} rewriting {} profiles \
         ({} applies, {} failed, \
         {} writes merged the CLI's write into the replaced file, {} started over at the \
         final check): {} user sections lost",
        daemon_binary.display(),
        owned.len(),
        applies.runs,
        applies.failed,
        applies.merged,
        applies.restarted,
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "{} of {calls} user sections lost: {lost:?}",
        lost.len()
    );
    assert_eq!(applies.failed, 0, "some applies failed (see above)");
    assert!(
        last.status.success(),
        "the last apply failed: {}",
        String::from_utf8_lossy(&last.stderr)
    );
    assert!(duplicate_sections(&text).is_empty(), "{text}");
    assert_eq!(
        daemon::stale_profiles(&text, &owned, 60),
        Vec::<String>::new(),
        "the daemon's profiles are missing or stale at the end"
    );
    daemon::assert_user_text_kept(&text);
    let sections = botocore_sections(&[home.credentials()]).remove(0);
    let sections = sections.unwrap_or_else(|e| panic!("botocore cannot parse the file: {e}"));
    assert_eq!(sections.len(), 2 + owned.len() + calls, "{sections:?}");
    assert!(home.temp_files().is_empty(), "{:?}", home.temp_files());
}
