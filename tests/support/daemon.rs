//! Helpers for tests that run the `aws-session-daemon` binary in a temporary
//! HOME: the HOME itself ([`Home`]), a running daemon killed when the test
//! ends ([`Running`]), polling ([`wait_until`]), and checks that read the
//! credentials file like its consumers do (botocore, the AWS CLI).
//!
//! A test binary includes it with `#[path = "support/daemon.rs"] mod
//! daemon;` beside `#[path = "support/tools.rs"] mod tools;` (where the AWS
//! CLI and botocore are). The benchmark program includes it too, and names
//! the daemon it runs with [`Home::with_daemon`].

#![allow(dead_code)] // each test binary uses a part

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const SERIAL: &str = "arn:aws:iam::123457890123:mfa/user";
pub const LONG_TERM_ID: &str = "AKIAIOSFODNN7EXAMPLE";
pub const LONG_TERM_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// The user's part of the credentials file: long-term keys, comments and
/// someone else's profile, which the daemon must keep byte for byte.
pub const USER_TEXT: &str = "# my long-term keys\n[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n\n; someone else's profile\n[other]\naws_access_key_id=AKIAOTHEROTHEROTHER1\naws_secret_access_key = other-secret\nregion=eu-west-1\n";

/// The daemon binary under test (cargo tells integration tests where it
/// is; other programs name it with [`Home::with_daemon`]).
pub fn binary() -> &'static str {
    match option_env!("CARGO_BIN_EXE_aws-session-daemon") {
        Some(path) => path,
        None => panic!("only integration tests know the daemon's binary: use Home::with_daemon"),
    }
}

/// A temporary HOME with a credentials file, a config and a runtime dir.
pub struct Home {
    dir: tempfile::TempDir,
    /// The program [`Home::command`] runs, if not [`binary`].
    daemon: Option<PathBuf>,
    /// More environment for [`Home::command`] ([`Home::with_env`]).
    env: Vec<(String, String)>,
}

impl Home {
    pub fn new(config: &str) -> Home {
        Home::with_credentials(config, USER_TEXT)
    }

    /// A HOME whose credentials file starts as `credentials`.
    pub fn with_credentials(config: &str, credentials: &str) -> Home {
        Home::with_credentials_in(&std::env::temp_dir(), config, credentials)
    }

    /// The same, created inside `parent` (e.g. `CARGO_TARGET_TMPDIR`, on
    /// disk, where fsync takes real time, unlike a tmpfs `/tmp`).
    pub fn with_credentials_in(parent: &Path, config: &str, credentials: &str) -> Home {
        std::fs::create_dir_all(parent).unwrap();
        let dir = tempfile::tempdir_in(parent).unwrap();
        let home = Home {
            dir,
            daemon: None,
            env: Vec::new(),
        };
        std::fs::create_dir_all(home.aws_dir()).unwrap();
        std::fs::create_dir_all(home.path().join(".config/aws-session-daemon")).unwrap();
        std::fs::create_dir_all(home.path().join("run")).unwrap();
        std::fs::write(home.credentials(), credentials).unwrap();
        std::fs::set_permissions(home.credentials(), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        home.write_config(config);
        home
    }

    /// This HOME, running `daemon` instead of the binary under test.
    pub fn with_daemon(mut self, daemon: &Path) -> Home {
        self.daemon = Some(daemon.to_path_buf());
        self
    }

    /// This HOME, its commands with `name` set to `value` (endpoints).
    pub fn with_env(mut self, name: &str, value: &str) -> Home {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn aws_dir(&self) -> PathBuf {
        self.path().join(".aws")
    }

    pub fn credentials(&self) -> PathBuf {
        self.path().join(".aws/credentials")
    }

    pub fn config(&self) -> PathBuf {
        self.path().join(".config/aws-session-daemon/config.toml")
    }

    /// `$XDG_RUNTIME_DIR/aws-session-daemon`.
    pub fn runtime_dir(&self) -> PathBuf {
        self.path().join("run/aws-session-daemon")
    }

    /// Replaces the config atomically (the daemon may be watching it).
    pub fn write_config(&self, text: &str) {
        let temp = self.config().with_extension("tmp");
        std::fs::write(&temp, text).unwrap();
        std::fs::rename(temp, self.config()).unwrap();
    }

    /// Replaces the credentials file the way an editor saves: write a
    /// temporary file, then rename it over the original.
    pub fn write_credentials(&self, text: &str) {
        let temp = self.credentials().with_extension("swp");
        std::fs::write(&temp, text).unwrap();
        std::fs::rename(temp, self.credentials()).unwrap();
    }

    /// A profile deleted by hand: its section (`header`, "[name]") cut out
    /// up to the next one, the file saved as an editor does (rename over).
    /// False when there is no such section.
    pub fn delete_section_by_hand(&self, header: &str) -> bool {
        let text = self.text();
        let Some(start) = text.find(header) else {
            return false;
        };
        let end = text[start + 1..]
            .find("\n[")
            .map_or(text.len(), |i| start + 2 + i);
        self.write_credentials(&format!("{}{}", &text[..start], &text[end..]));
        true
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(self.credentials()).unwrap()
    }

    /// How many of `profiles` hold a session token now.
    pub fn written(&self, profiles: &[String]) -> usize {
        let document = aws_session_daemon::credentials::Document::parse(&self.text());
        profiles
            .iter()
            .filter(|p| {
                document
                    .get(p, "aws_session_token")
                    .ok()
                    .flatten()
                    .is_some()
            })
            .count()
    }

    /// The daemon's command with a clean environment pointing at this HOME.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = match &self.daemon {
            Some(daemon) => Command::new(daemon),
            None => Command::new(binary()),
        };
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("XDG_RUNTIME_DIR", self.path().join("run"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        // scripts/test.sh's mark: it stops a daemon that outlives its test.
        if let Some(mark) = std::env::var_os("AWS_SESSION_DAEMON_TEST_RUN") {
            command.env("AWS_SESSION_DAEMON_TEST_RUN", mark);
        }
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run aws-session-daemon")
    }

    /// `aws sts get-caller-identity --profile P` against `endpoint`.
    pub fn caller_arn(&self, profile: &str, endpoint: &str) -> String {
        let output = Command::new(crate::tools::aws())
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
            .expect("running the AWS CLI");
        assert!(
            output.status.success(),
            "aws sts get-caller-identity --profile {profile} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        json["Arn"].as_str().unwrap().to_string()
    }

    /// Names in `~/.aws` that look like a temporary file of the credentials
    /// writer (`.credentials.XXXXXX.tmp`) or of any other writer (`.tmp`).
    pub fn temp_files(&self) -> Vec<String> {
        temp_files_in(&self.aws_dir())
    }

    /// Fails the test unless every file in `~/.aws` and the runtime
    /// directory (credentials, backups, locks, MFA session cache, status)
    /// has mode 0600; returns how many there are.
    pub fn assert_files_private(&self) -> usize {
        let files = self.written_files();
        for (path, mode) in &files {
            assert_eq!(*mode, 0o600, "{} has mode {mode:o}", path.display());
        }
        assert!(!files.is_empty());
        files.len()
    }

    /// The secrets in the credentials file and its backups now, and the
    /// long-term secret key.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![LONG_TERM_SECRET.to_string()];
        for (path, _) in self.written_files() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("credentials") && !name.ends_with(".lock") {
                secrets.extend(secrets_in(
                    &std::fs::read_to_string(&path).unwrap_or_default(),
                ));
            }
        }
        secrets.sort();
        secrets.dedup();
        secrets
    }

    /// Every file the daemon wrote: `~/.aws/*` and the runtime directory,
    /// with their modes.
    pub fn written_files(&self) -> Vec<(PathBuf, u32)> {
        let mut files = Vec::new();
        for dir in [self.aws_dir(), self.runtime_dir()] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let meta = entry.metadata().unwrap();
                if meta.is_file() {
                    files.push((entry.path(), meta.permissions().mode() & 0o7777));
                }
            }
        }
        files.sort();
        files
    }
}

/// Temporary-looking files in `dir` (hidden names ending in `.tmp`, or
/// `.tmp-` prefixed ones).
pub fn temp_files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.') && (n.ends_with(".tmp") || n.starts_with(".tmp")))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A config with `sections` accounts in one `[[org]]` group, all assuming
/// `Admin` from one MFA session whose codes come from `code_source` (an
/// `mfa_oath_slot = ...` or `mfa_process = ...` line).
pub fn org_config(endpoint: &str, code_source: &str, accounts: &[String]) -> String {
    org_config_for(SERIAL, endpoint, code_source, accounts)
}

/// [`org_config`] with the MFA device `serial`.
pub fn org_config_for(
    serial: &str,
    endpoint: &str,
    code_source: &str,
    accounts: &[String],
) -> String {
    let mut config = format!(
        "mfa_serial_number = \"{serial}\"\n{code_source}\nsts_endpoint = \"{endpoint}\"\nregion = \"us-east-1\"\n\n[[org]]\nassume_role_arn = \"arn:aws:iam::{{section}}:role/Admin\"\n"
    );
    for account in accounts {
        config.push_str(&format!("[[org.{account}]]\n"));
    }
    config
}

/// `n` twelve-digit account numbers.
pub fn accounts(n: usize) -> Vec<String> {
    accounts_from(300_000_000_000, n)
}

/// `n` twelve-digit account numbers from `first` on.
pub fn accounts_from(first: u64, n: usize) -> Vec<String> {
    (0..n as u64)
        .map(|i| format!("{:012}", first + i))
        .collect()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Bytes outside the owned sections are exactly the user's.
pub fn assert_user_text_kept(text: &str) {
    assert!(
        text.starts_with(USER_TEXT),
        "the user's part of the file changed:\n{text}"
    );
}

/// A daemon process that is killed when the test ends.
pub struct Running {
    pub child: Child,
    log: PathBuf,
}

impl Running {
    pub fn start(home: &Home, args: &[&str]) -> Running {
        let log = home.path().join("daemon.log");
        Running::start_logging_to(home.command(args), log)
    }

    /// Starts `command`, its stderr going to `log` (appended).
    pub fn start_logging_to(mut command: Command, log: PathBuf) -> Running {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        command.stderr(file).stdout(Stdio::null());
        Running {
            child: command.spawn().expect("start the daemon"),
            log,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, and reap it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Still running (not exited, not a zombie)?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// User + system CPU time used so far (from /proc).
    pub fn cpu_time(&self) -> Duration {
        cpu_time(self.pid())
    }

    /// SIGTERM, then waits up to `timeout` for the exit; returns the status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: signals our own child by id.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if started.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time (user + system) of process `pid`, from `/proc/PID/stat`.
pub fn cpu_time(pid: i32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    // After the command name: state is field 3; utime and stime are 14 and 15.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// Polls `done` every 5 ms; fails the test after `timeout`. Returns how
/// long it took.
pub fn wait_until(what: &str, timeout: Duration, done: impl FnMut() -> bool) -> Duration {
    poll_until(Duration::from_millis(5), timeout, done)
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// Polls `done` every `every`: how long it took until it held, or `None`
/// after `timeout`.
pub fn poll_until(
    every: Duration,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if done() {
            return Some(started.elapsed());
        }
        if started.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// `needle` occurs in `text` not as part of a longer run of digits (a
/// six-digit code may well appear inside a timestamp's nanoseconds).
pub fn contains_token(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + needle.len()..].chars().next();
        let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
        !(needle.bytes().all(|b| b.is_ascii_digit()) && (digit(before) || digit(after)))
    })
}

/// The secret values in a credentials file's text: every access key id,
/// secret key and session token (by their `key = value` lines).
pub fn secrets_in(text: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if matches!(
            key.trim(),
            "aws_secret_access_key" | "aws_session_token" | "aws_access_key_id"
        ) && value.trim().len() >= 8
        {
            secrets.push(value.trim().to_string());
        }
    }
    secrets
}

/// Fails the test if `log` contains any of `secrets` (showing only a prefix).
/// A few secrets are searched anywhere in the log; many (a long test's
/// thousands, against a log of megabytes) are looked up among the log's
/// words, split at spaces, quotes, brackets, `=`, `:` and `,`.
pub fn assert_no_secret(log: &str, secrets: &[String], what: &str) {
    let leaked = if secrets.len() <= 200 {
        secrets.iter().find(|secret| contains_token(log, secret))
    } else {
        let words: std::collections::HashSet<&str> = log
            .split(|c: char| c.is_whitespace() || "\"'`()[]{}<>=:,;".contains(c))
            .filter(|word| word.len() >= 8)
            .collect();
        secrets.iter().find(|secret| {
            words.contains(secret.as_str()) || words.contains(secret.trim_end_matches('='))
        })
    };
    if let Some(secret) = leaked {
        let line = log
            .lines()
            .find(|l| l.contains(secret.as_str()))
            .unwrap_or("");
        panic!(
            "a secret ({}…) reached {what}, in: {}",
            &secret[..4],
            line.replace(secret.as_str(), "<SECRET>")
        );
    }
}

/// Parses `files` with botocore's own reader
/// (`botocore.configloader.raw_config_parse`, what the AWS CLI and boto3
/// use), in one Python process. Per file: the sections botocore sees, or
/// its error.
pub fn botocore_sections(files: &[PathBuf]) -> Vec<Result<Vec<String>, String>> {
    const SCRIPT: &str = r#"
import json, sys
from botocore.configloader import raw_config_parse
out = []
for path in sys.argv[1:]:
    try:
        out.append({"ok": sorted(raw_config_parse(path, parse_subsections=False).keys())})
    except Exception as e:
        out.append({"err": "%s: %s" % (type(e).__name__, e)})
print(json.dumps(out))
"#;
    let python = crate::tools::python3();
    let output = Command::new(&python)
        .arg("-c")
        .arg(SCRIPT)
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    assert!(
        output.status.success(),
        "{} -c raw_config_parse failed: {}",
        python.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("botocore check prints JSON");
    json.into_iter()
        .map(|entry| match entry.get("ok") {
            Some(ok) => Ok(ok
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()),
            None => Err(entry["err"].as_str().unwrap_or("?").to_string()),
        })
        .collect()
}

/// Section names that appear more than once in `text` (as the crate's
/// botocore-compatible parser reads headers).
pub fn duplicate_sections(text: &str) -> Vec<String> {
    let document = aws_session_daemon::credentials::Document::parse(text);
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for name in document.section_names() {
        *seen.entry(name).or_default() += 1;
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(name, _)| name.to_string())
        .collect()
}

/// The profiles of `profiles` that are not complete and fresh in `text`:
/// fresh means the expiry key says more than `margin_seconds` from `now`.
pub fn stale_profiles_at(
    text: &str,
    profiles: &[String],
    margin_seconds: i64,
    now: time::OffsetDateTime,
) -> Vec<String> {
    let document = aws_session_daemon::credentials::Document::parse(text);
    profiles
        .iter()
        .filter(|profile| {
            let value = |key: &str| {
                document
                    .get(profile, key)
                    .ok()
                    .flatten()
                    .map(str::to_string)
            };
            let complete = [
                "aws_access_key_id",
                "aws_secret_access_key",
                "aws_session_token",
            ]
            .iter()
            .all(|key| value(key).is_some_and(|v| !v.is_empty()));
            let fresh = value("x_security_token_expires")
                .and_then(|v| aws_session_daemon::timestamp::parse_expiry(&v))
                .is_some_and(|expires| expires - time::Duration::seconds(margin_seconds) > now);
            !(complete && fresh)
        })
        .cloned()
        .collect()
}

/// [`stale_profiles_at`] now.
pub fn stale_profiles(text: &str, profiles: &[String], margin_seconds: i64) -> Vec<String> {
    stale_profiles_at(
        text,
        profiles,
        margin_seconds,
        time::OffsetDateTime::now_utc(),
    )
}

/// Removes the credentials of `profiles` (their headers stay), through the
/// lock protocol, as a careful user's tool would.
pub fn delete_profiles(credentials: &Path, profiles: &[String]) {
    use aws_session_daemon::credentials::{CredentialsFile, Edit};
    let edits: Vec<Edit> = profiles
        .iter()
        .flat_map(|profile| {
            [
                "aws_access_key_id",
                "aws_secret_access_key",
                "aws_session_token",
            ]
            .map(|key| Edit::remove(profile.as_str(), key))
        })
        .collect();
    CredentialsFile::new(credentials.to_path_buf(), 0)
        .update(&edits)
        .expect("deleting profiles");
}
