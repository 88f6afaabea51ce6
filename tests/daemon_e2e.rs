//! End to end through the real parts: the `aws-session-daemon` binary, a
//! virtual YubiKey behind pcscd + vpcd, the fault-injecting STS front that
//! checks TOTP codes like AWS, moto as the STS emulator, and the AWS CLI
//! reading the written credentials file.

#[path = "support/example_bin.rs"]
mod example_bin;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/pcsc.rs"]
mod pcsc;
#[path = "support/sts_front.rs"]
mod sts_front;
#[path = "support/vcard.rs"]
mod vcard;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SERIAL: &str = "arn:aws:iam::123457890123:mfa/user";
const LONG_TERM_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const LONG_TERM_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const USER_TEXT: &str = "# my long-term keys\n[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n\n; someone else's profile\n[other]\naws_access_key_id=AKIAOTHEROTHEROTHER1\naws_secret_access_key = other-secret\nregion=eu-west-1\n";

/// A temporary HOME with a credentials file, a config and a runtime dir.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new(config: &str) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let home = Home { dir };
        std::fs::create_dir_all(home.path().join(".aws")).unwrap();
        std::fs::create_dir_all(home.path().join(".config/aws-session-daemon")).unwrap();
        std::fs::create_dir_all(home.path().join("run")).unwrap();
        std::fs::write(home.credentials(), USER_TEXT).unwrap();
        home.write_config(config);
        home
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn credentials(&self) -> PathBuf {
        self.path().join(".aws/credentials")
    }

    fn config(&self) -> PathBuf {
        self.path().join(".config/aws-session-daemon/config.toml")
    }

    fn write_config(&self, text: &str) {
        let temp = self.config().with_extension("tmp");
        std::fs::write(&temp, text).unwrap();
        std::fs::rename(temp, self.config()).unwrap();
    }

    fn text(&self) -> String {
        std::fs::read_to_string(self.credentials()).unwrap()
    }

    /// The daemon's command with a clean environment pointing at this HOME.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_aws-session-daemon"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("XDG_RUNTIME_DIR", self.path().join("run"))
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run aws-session-daemon")
    }

    /// `aws sts get-caller-identity --profile P` against `endpoint`.
    fn caller_arn(&self, profile: &str, endpoint: &str) -> String {
        let output = Command::new("aws")
            .args([
                "sts",
                "get-caller-identity",
                "--profile",
                profile,
                "--output",
                "json",
            ])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", endpoint)
            .output()
            .expect("the AWS CLI is missing: pip install awscli");
        assert!(
            output.status.success(),
            "aws sts get-caller-identity --profile {profile} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        json["Arn"].as_str().unwrap().to_string()
    }
}

fn org_config(endpoint: &str, code_source: &str, accounts: &[String]) -> String {
    let mut config = format!(
        "mfa_serial_number = \"{SERIAL}\"\n{code_source}\nsts_endpoint = \"{endpoint}\"\nregion = \"us-east-1\"\n\n[[org]]\nassume_role_arn = \"arn:aws:iam::{{section}}:role/Admin\"\n"
    );
    for account in accounts {
        config.push_str(&format!("[[org.{account}]]\n"));
    }
    config
}

fn accounts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{:012}", 300_000_000_000u64 + i as u64))
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Bytes outside the owned sections are exactly the user's.
fn assert_user_text_kept(text: &str) {
    assert!(
        text.starts_with(USER_TEXT),
        "the user's part of the file changed:\n{text}"
    );
}

#[test]
fn twenty_roles_from_one_yubikey_code_work_with_the_aws_cli() {
    pcsc::ensure_pcscd();
    let _readers = pcsc::lock_readers();
    let card = pcsc::VirtualCard::start(pcsc::CardConfig::new(&vcard::credential(
        vcard::AWS,
        "sha1",
        6,
        vcard::SHA1_SECRET,
        false,
    )));
    let moto = moto::Moto::start();
    let secret_hex: String = vcard::SHA1_SECRET
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let totp = format!("{SERIAL}={secret_hex}");
    let front = sts_front::StsFront::start(&moto.url, &["--totp-secret", &totp]);

    let accounts = accounts(20);
    let slot = format!("mfa_oath_slot = \"{}\"", vcard::AWS);
    let home = Home::new(&org_config(&front.url, &slot, &accounts));
    let output = home.run(&["apply"]);
    assert!(output.status.success(), "apply failed: {}", stderr(&output));

    assert_eq!(
        card.calculations(),
        1,
        "20 sections must cost one YubiKey code"
    );
    let stats = front.stats();
    assert_eq!(stats["actions"]["GetSessionToken"], 1, "{stats}");
    assert_eq!(stats["actions"]["AssumeRole"], 20, "{stats}");

    let text = home.text();
    assert_user_text_kept(&text);
    for account in [&accounts[0], &accounts[7], &accounts[19]] {
        let arn = home.caller_arn(account, &moto.url);
        assert_eq!(
            arn,
            format!("arn:aws:sts::{account}:assumed-role/Admin/aws-session-daemon")
        );
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(home.credentials()).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    // A second apply needs neither the key nor STS.
    let output = home.run(&["apply"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(card.calculations(), 1);
    assert_eq!(front.stats()["actions"]["AssumeRole"], 20);
    assert_eq!(home.text(), text);
}

/// A daemon process that is killed when the test ends.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn start(home: &Home, args: &[&str]) -> Running {
        let log = home.path().join("daemon.log");
        let mut command = home.command(args);
        command
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(Stdio::null());
        Running {
            child: command.spawn().expect("start the daemon"),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    started.elapsed()
}

#[test]
fn the_daemon_restores_deleted_profiles_and_creates_new_sections_within_a_second() {
    let moto = moto::Moto::start();
    let accounts = accounts(3);
    let process = "mfa_process = \"echo 123456\"";
    let home = Home::new(&org_config(&moto.url, process, &accounts));
    let mut daemon = Running::start(&home, &["run", "--log-level", "debug"]);
    let profile = format!("[{}]", accounts[2]);
    wait_until("the first pass", Duration::from_secs(20), || {
        home.text().contains(&profile)
    });

    // Delete a profile by hand, the way an editor saves (rename over).
    let text = home.text();
    let start = text.find(&profile).unwrap();
    let without = text[..start].to_string();
    let temp = home.credentials().with_extension("swp");
    std::fs::write(&temp, &without).unwrap();
    std::fs::rename(&temp, home.credentials()).unwrap();
    let restored = wait_until("the profile to come back", Duration::from_secs(1), || {
        home.text().contains(&profile)
    });
    eprintln!("deleted profile restored in {restored:?}");

    // Add a section to the config.
    let mut more = accounts.clone();
    more.push("399999999999".to_string());
    home.write_config(&org_config(&moto.url, process, &more));
    let created = wait_until("the new section", Duration::from_secs(1), || {
        home.text().contains("[399999999999]")
    });
    eprintln!("new section created in {created:?}");
    assert_eq!(
        home.caller_arn("399999999999", &moto.url),
        "arn:aws:sts::399999999999:assumed-role/Admin/aws-session-daemon"
    );

    // A section removed from the config is left alone.
    home.write_config(&org_config(&moto.url, process, &accounts[..1]));
    std::thread::sleep(Duration::from_millis(300));
    assert!(home.text().contains("[399999999999]"));
    assert_user_text_kept(&home.text());

    // Our own writes must not make it loop: quiet for a while now.
    let passes_before = daemon.log().matches("wrote ").count();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        daemon.log().matches("wrote ").count(),
        passes_before,
        "{}",
        daemon.log()
    );

    // SIGTERM stops it within a second, with exit status 0.
    let stop = Instant::now();
    unsafe { libc::kill(daemon.child.id() as i32, libc::SIGTERM) };
    let status = loop {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stop.elapsed() < Duration::from_secs(1),
            "did not stop within a second"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{}", daemon.log());
}

#[test]
fn a_trace_level_run_logs_no_secret() {
    let moto = moto::Moto::start();
    let front = sts_front::StsFront::start(&moto.url, &[]);
    // The code comes from a file, so that `config show` cannot print it.
    let code = "975310";
    let home = Home::new("");
    let code_file = home.path().join("code.txt");
    std::fs::write(&code_file, format!("{code}\n")).unwrap();
    let process = format!("mfa_process = \"cat {}\"", code_file.display());
    home.write_config(&org_config(&front.url, &process, &accounts(3)));
    let mut config = std::fs::read_to_string(home.config()).unwrap();
    config.push_str("[plain]\n");
    home.write_config(&config);
    let output = home.run(&["apply", "--log-level", "trace"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let mut log = stderr(&output);
    log.push_str(&String::from_utf8_lossy(&output.stdout));
    for args in [
        &["plan"][..],
        &["plan", "--json"],
        &["status", "--json"],
        &["config", "show"],
    ] {
        let out = home.run(args);
        log.push_str(&String::from_utf8_lossy(&out.stdout));
        log.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "trace logging was not on:\n{log}"
    );

    let text = home.text();
    let mut secrets = vec![
        LONG_TERM_SECRET.to_string(),
        code.to_string(),
        LONG_TERM_ID.to_string(),
    ];
    for line in text.lines() {
        for key in [
            "aws_secret_access_key",
            "aws_session_token",
            "aws_access_key_id",
        ] {
            if let Some(value) = line.strip_prefix(&format!("{key} = ")) {
                secrets.push(value.to_string());
            }
        }
    }
    assert!(secrets.len() > 10, "{secrets:?}");
    for secret in &secrets {
        assert!(
            !contains_token(&log, secret),
            "a secret ({}…) reached the output:\n{log}",
            &secret[..4]
        );
    }
    // The runtime files are private too.
    for entry in std::fs::read_dir(home.path().join("run/aws-session-daemon")).unwrap() {
        let path = entry.unwrap().path();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o077, 0, "{} is readable by others", path.display());
    }
    let mut mfa_cache = String::new();
    std::fs::File::open(home.path().join("run/aws-session-daemon/mfa-sessions.json"))
        .unwrap()
        .read_to_string(&mut mfa_cache)
        .unwrap();
    assert!(mfa_cache.contains("expiration"));
}

/// `needle` occurs in `text` not as part of a longer run of digits (a
/// six-digit code may well appear inside a timestamp's nanoseconds).
fn contains_token(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + needle.len()..].chars().next();
        let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
        !(needle.bytes().all(|b| b.is_ascii_digit()) && (digit(before) || digit(after)))
    })
}

#[test]
fn apply_exits_non_zero_with_the_reason_when_the_keys_are_refused() {
    let moto = moto::Moto::start();
    let front = sts_front::StsFront::start(&moto.url, &[]);
    front.inject(serde_json::json!({"fault": "invalid_client_token", "count": 100}));
    let home = Home::new(&org_config(
        &front.url,
        "mfa_process = \"echo 123456\"",
        &accounts(2),
    ));
    let output = home.run(&["apply"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("[300000000000]"), "{err}");
    assert!(
        err.contains("security token")
            || err.contains("InvalidClientTokenId")
            || err.contains("access key"),
        "{err}"
    );
    assert_eq!(
        front.stats()["actions"]["GetSessionToken"],
        1,
        "one attempt, no hammering"
    );
    assert_user_text_kept(&home.text());
    assert_eq!(home.text(), USER_TEXT);
}
