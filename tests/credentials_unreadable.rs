//! Files the AWS CLI cannot read, through the daemon: each golden
//! `unreadable_*` case (`tests/golden/credentials/`) is a credentials file
//! botocore refuses as a whole. `apply` must refuse it before anything is
//! spent: no YubiKey code (the code command records each run), no STS call
//! (the STS stand-in counts them), the file and its directory byte for byte
//! as they were, and the message with the file, the line and the fix. And
//! `run` logs the problem once, however often the file is saved unchanged,
//! then writes the profile as soon as the file is fixed.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/fast_sts.rs"]
mod fast_sts;
#[path = "support/tools.rs"]
mod tools;

use std::path::{Path, PathBuf};
use std::time::Duration;

use daemon::{Home, Running};
use fast_sts::FastSts;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/credentials")
}

/// Profile `prod` gets the MFA session; each code run leaves a line in
/// `codes` in the HOME.
fn config(home: &Path, endpoint: &str) -> String {
    format!(
        "mfa_serial_number = \"{}\"\nmfa_process = \"echo spent >> {}/codes; echo 123456\"\nsts_endpoint = \"{endpoint}\"\nregion = \"us-east-1\"\n\n[prod]\n",
        daemon::SERIAL,
        home.display()
    )
}

/// The credentials file's directory: names and contents.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".lock"))
        .map(|e| {
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_unreadable_kind_is_refused_before_a_code_or_an_sts_call() {
    let sts = FastSts::start(3600);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("unreadable_")
        })
        .collect();
    cases.sort();
    assert!(cases.len() >= 7, "{cases:?}");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let input = std::fs::read_to_string(case.join("input")).unwrap();
        let error = std::fs::read_to_string(case.join("error")).unwrap();
        let home = Home::with_credentials("", &input);
        home.write_config(&config(home.path(), &sts.url));
        let before = snapshot(&home.aws_dir());
        let calls_before = sts.calls("GetSessionToken") + sts.calls("AssumeRole");
        for command in ["plan", "apply", "status"] {
            let output = home.run(&[command]);
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            let mut fail =
                |what: String| failures.push(format!("{name} `{command}`: {what}\n{text}"));
            if output.status.code() == Some(101) {
                fail("panicked".into());
            }
            if command == "apply" && output.status.code() != Some(1) {
                fail(format!("exit {:?}, expected 1", output.status.code()));
            }
            let expected = format!("{} {}", home.credentials().display(), error.trim_end());
            if command != "status" && !text.contains(&expected) {
                fail(format!("does not say {expected:?}"));
            }
            if command == "status" && !text.contains("invalid") {
                fail("does not show the section as invalid".into());
            }
        }
        if snapshot(&home.aws_dir()) != before {
            failures.push(format!("{name}: the credentials file's directory changed"));
        }
        if home.path().join("codes").exists() {
            failures.push(format!("{name}: a YubiKey code was spent"));
        }
        let calls = sts.calls("GetSessionToken") + sts.calls("AssumeRole") - calls_before;
        if calls != 0 {
            failures.push(format!("{name}: {calls} STS calls"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_daemon_logs_an_unreadable_file_once_and_writes_when_it_is_fixed() {
    let sts = FastSts::start(3600);
    let case = golden_dir().join("unreadable_duplicate_section");
    let input = std::fs::read_to_string(case.join("input")).unwrap();
    let home = Home::with_credentials("", &input);
    home.write_config(&config(home.path(), &sts.url));
    let mut daemon = Running::start(&home, &["run", "--log-level", "debug"]);
    let said = "section [other] appears again";
    daemon::wait_until("the refusal is logged", Duration::from_secs(20), || {
        daemon.log().contains(said)
    });
    // Saved again, unchanged (a new file renamed into place): passes run,
    // nothing new to say.
    for _ in 0..3 {
        let temp = home.aws_dir().join("credentials.saved");
        std::fs::write(&temp, &input).unwrap();
        std::fs::rename(&temp, home.credentials()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    daemon::wait_until("passes for the saves", Duration::from_secs(10), || {
        daemon.log().matches("reason=CredentialsChanged").count() >= 3
    });
    assert_eq!(daemon.log().matches(said).count(), 1, "{}", daemon.log());
    assert!(!home.path().join("codes").exists(), "a code was spent");
    assert_eq!(sts.calls("GetSessionToken"), 0);

    // Fixed: the second [other] goes.
    let fixed = input.replace("\n[other]\noutput = json\n", "");
    assert_ne!(fixed, input);
    std::fs::write(home.credentials(), &fixed).unwrap();
    daemon::wait_until("the profile is written", Duration::from_secs(20), || {
        daemon::stale_profiles(&home.text(), &["prod".to_string()], 300).is_empty()
    });
    let before_prod = &fixed[..fixed.find("[prod]").unwrap()];
    assert!(home.text().starts_with(before_prod), "{}", home.text());
    assert_eq!(sts.calls("GetSessionToken"), 1);
    daemon.terminate(Duration::from_secs(5));
}
