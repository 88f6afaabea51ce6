//! Bad input: a corpus of malformed config and credentials files
//! (`tests/corpus/config/`, `tests/corpus/credentials/`), plus inputs made
//! at test time (a huge file, read-only and symlinked paths, a directory, a
//! FIFO), each run through the real binary: `plan`, `apply` and `config
//! show`. What each must say is in `tests/corpus/expectations.toml`, next to
//! the files: adding a case is adding a file and two lines there.
//!
//! For every run: the expected exit status, the expected words (the file's
//! path, the line where the input has one, the fix), never a panic (no
//! "panicked", no exit status 101), and, when the input is bad, a
//! credentials file byte for byte as it was (no backup, no temporary file
//! left). Inputs marked `accepted` are odd but valid: `apply` must succeed
//! and botocore must read what it wrote.

#[path = "support/bad_inputs.rs"]
mod bad_inputs;
#[path = "support/confined.rs"]
mod confined;
#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/example_bin.rs"]
mod example_bin;
#[path = "support/fast_sts.rs"]
mod fast_sts;
#[path = "support/sts_front.rs"]
mod sts_front;
#[path = "support/tools.rs"]
mod tools;
#[path = "support/users.rs"]
mod users;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use bad_inputs::{
    CORPUS, GOOD_CREDENTIALS, LONG_TERM_SECRET, corpus_files, expanding_config, good_config,
    huge_config, huge_credentials, inherited_huge_value_config, long_external_id_config, mkfifo,
};
use daemon::{binary, botocore_sections};
use fast_sts::FastSts;

/// One entry of `expectations.toml`.
#[derive(Debug, Default)]
struct Expectation {
    /// Exit status of `plan` and `apply` (default 1).
    plan_exit: i64,
    apply_exit: i64,
    /// Exit status of `config show` (default: `plan`'s).
    show_exit: i64,
    /// Words in the output (stdout and stderr) of `plan` and `apply`.
    says: Vec<String>,
    plan_says: Vec<String>,
    apply_says: Vec<String>,
    show_says: Vec<String>,
    /// Odd but valid: `apply` succeeds and writes a file botocore reads.
    accepted: bool,
    /// One section is bad, the other is written: the file keeps every
    /// byte it had (the good profile is appended).
    others_written: bool,
}

fn strings(item: Option<&toml_edit::Item>) -> Vec<String> {
    item.and_then(|i| i.as_array())
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().expect("a string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn expectations() -> BTreeMap<String, Expectation> {
    let path = Path::new(CORPUS).join("expectations.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let document: toml_edit::DocumentMut = text.parse().expect("expectations.toml is TOML");
    let mut all = BTreeMap::new();
    for (kind, table) in document.iter() {
        let table = table
            .as_table()
            .expect("[config] [credentials] [generated]");
        for (name, entry) in table.iter() {
            let entry = entry.as_table().unwrap_or_else(|| panic!("{kind}.{name}"));
            let int = |key: &str| entry.get(key).and_then(|v| v.as_integer());
            let flag = |key: &str| entry.get(key).and_then(|v| v.as_bool()).unwrap_or(false);
            let accepted = flag("accepted");
            let default_exit = int("exit").unwrap_or(if accepted { 0 } else { 1 });
            let plan_exit = int("plan_exit").unwrap_or(default_exit);
            let expectation = Expectation {
                plan_exit,
                apply_exit: int("apply_exit").unwrap_or(default_exit),
                show_exit: int("show_exit").unwrap_or(plan_exit),
                says: strings(entry.get("says")),
                plan_says: strings(entry.get("plan_says")),
                apply_says: strings(entry.get("apply_says")),
                show_says: strings(entry.get("show_says")),
                accepted,
                others_written: flag("others_written"),
            };
            for key in entry.iter().map(|(k, _)| k) {
                assert!(
                    [
                        "exit",
                        "plan_exit",
                        "apply_exit",
                        "show_exit",
                        "says",
                        "plan_says",
                        "apply_says",
                        "show_says",
                        "accepted",
                        "others_written"
                    ]
                    .contains(&key),
                    "expectations.toml [{kind}.\"{name}\"]: unknown key {key}"
                );
            }
            all.insert(format!("{kind}/{name}"), expectation);
        }
    }
    all
}

/// One case, set up in its own HOME.
struct Case {
    name: String,
    home: tempfile::TempDir,
    config: PathBuf,
    credentials: PathBuf,
    /// The path the messages must name ({file}).
    subject: PathBuf,
    /// What the case needs running while it runs (an STS front).
    _running: Option<sts_front::StsFront>,
}

impl Case {
    fn new(name: &str) -> Case {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".aws")).unwrap();
        std::fs::create_dir_all(home.path().join("run")).unwrap();
        let config = home.path().join("config.toml");
        let credentials = home.path().join(".aws/credentials");
        Case {
            name: name.to_string(),
            subject: credentials.clone(),
            _running: None,
            home,
            config,
            credentials,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary());
        confined::confine(
            command.args(args),
            self.home.path(),
            &self.config,
            &self.credentials,
        );
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run aws-session-daemon")
    }

    /// Everything in the credentials file's directory: size, modification
    /// time and (below 1 MiB) contents.
    #[allow(clippy::type_complexity)]
    fn snapshot(&self) -> BTreeMap<String, (u64, i64, Option<Vec<u8>>)> {
        let dir = self.credentials.parent().unwrap();
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    // The lock file is created by any attempt to write.
                    .filter(|e| !e.file_name().to_string_lossy().ends_with(".lock"))
                    .map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let meta = std::fs::symlink_metadata(e.path()).unwrap();
                        let bytes = (meta.is_file() && meta.len() < 1024 * 1024)
                            .then(|| std::fs::read(e.path()).unwrap());
                        let mtime = std::os::unix::fs::MetadataExt::mtime_nsec(&meta)
                            + std::os::unix::fs::MetadataExt::mtime(&meta) * 1_000_000_000;
                        (name, (meta.len(), mtime, bytes))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Runs `plan`, `apply` and `config show` on `case` and checks them
/// against `expected`; returns a description of each failure.
fn check(case: &Case, expected: &Expectation, config_case: bool) -> Vec<String> {
    let mut failures = Vec::new();
    let file = case.subject.display().to_string();
    // (Only a regular file: reading a FIFO would wait for a writer.)
    let original = std::fs::metadata(&case.credentials)
        .is_ok_and(|m| m.is_file())
        .then(|| std::fs::read(&case.credentials).ok())
        .flatten();
    let original_sections = original.as_ref().and_then(|_| {
        botocore_sections(std::slice::from_ref(&case.credentials))[0]
            .clone()
            .ok()
    });
    let fill = |s: &String| s.replace("{file}", &file);
    for (command, exit, says) in [
        (
            "plan",
            expected.plan_exit,
            [&expected.says[..], &expected.plan_says[..]].concat(),
        ),
        (
            "apply",
            expected.apply_exit,
            [&expected.says[..], &expected.apply_says[..]].concat(),
        ),
        (
            "config show",
            expected.show_exit,
            if config_case && expected.show_says.is_empty() {
                expected.says.clone()
            } else {
                expected.show_says.clone()
            },
        ),
    ] {
        let before = case.snapshot();
        let args: Vec<&str> = command.split(' ').collect();
        let output = case.run(&args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let mut fail = |what: String| {
            // (Cut: `config show` of a 4 MB value prints it.)
            let shown: String = text.chars().take(8000).collect();
            failures.push(format!(
                "{} `{command}`: {what}\n--- output:\n{shown}",
                case.name
            ))
        };
        if output.status.code() == Some(101) || text.contains("panicked") {
            fail("panicked".into());
        }
        // Outside text (section names, values, server messages) is shown
        // escaped: no raw control character reaches the terminal.
        if let Some(c) = text
            .chars()
            .find(|c| c.is_control() && *c != '\n' && *c != '\t')
        {
            fail(format!("printed the raw control character {c:?}"));
        }
        if text.contains(LONG_TERM_SECRET)
            || text.contains("FastToken")
            || text.contains("fastsecret")
        {
            fail("printed a secret".into());
        }
        if output.status.code() != Some(exit as i32) {
            fail(format!("exit {:?}, expected {exit}", output.status.code()));
        }
        for word in says.iter().map(fill) {
            if !text.contains(&word) {
                fail(format!("does not say {word:?}"));
            }
        }
        if expected.others_written {
            let now = std::fs::read(&case.credentials).ok();
            let kept = match (&original, &now) {
                (Some(original), Some(now)) => now.starts_with(original),
                _ => false,
            };
            if !kept {
                fail("the bad part of the credentials file was changed".into());
            }
        } else if !expected.accepted && case.snapshot() != before {
            fail("changed the credentials file's directory (a write despite bad input)".into());
        }
    }
    if expected.accepted {
        let parsed = &botocore_sections(std::slice::from_ref(&case.credentials))[0];
        match parsed {
            Ok(sections) => {
                for section in original_sections.iter().flatten() {
                    if !sections.contains(section) {
                        failures.push(format!("{}: [{section}] lost: {sections:?}", case.name));
                    }
                }
            }
            Err(e) => failures.push(format!(
                "{}: botocore cannot parse the written file: {e}",
                case.name
            )),
        }
        let mode = std::fs::metadata(&case.credentials)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        if mode != 0o600 {
            failures.push(format!("{}: written with mode {mode:o}", case.name));
        }
    }
    failures
}

fn fill_endpoint(bytes: &[u8], endpoint: &str) -> Vec<u8> {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.replace("{endpoint}", endpoint).into_bytes(),
        Err(_) => bytes.to_vec(),
    }
}

fn report(failures: Vec<String>, cases: usize, what: &str) {
    eprintln!(
        "{what}: {cases} cases, 3 commands each, {} failure(s)",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_corpus_file_has_an_expectation_and_every_expectation_a_case() {
    let expectations = expectations();
    let mut files: Vec<String> = ["config", "credentials"]
        .iter()
        .flat_map(|kind| {
            corpus_files(kind)
                .into_iter()
                .map(move |(name, _)| format!("{kind}/{name}"))
        })
        .collect();
    files.extend(GENERATED.iter().map(|name| format!("generated/{name}")));
    for file in &files {
        assert!(
            expectations.contains_key(file),
            "{file} has no entry in tests/corpus/expectations.toml"
        );
    }
    for name in expectations.keys() {
        assert!(
            files.contains(name),
            "expectations.toml names {name}, which is no case"
        );
    }
    eprintln!("{} bad-input cases", files.len());
    assert!(files.len() >= 40, "{} cases", files.len());
}

#[test]
fn bad_configs() {
    let sts = FastSts::start(3600);
    let expectations = expectations();
    let files = corpus_files("config");
    let mut failures = Vec::new();
    for (name, bytes) in &files {
        let key = format!("config/{name}");
        let expected = &expectations[&key];
        let mut case = Case::new(&key);
        case.config = case.home.path().join(name);
        case.subject = case.config.clone();
        std::fs::write(&case.config, fill_endpoint(bytes, &sts.url)).unwrap();
        std::fs::write(&case.credentials, GOOD_CREDENTIALS).unwrap();
        std::fs::set_permissions(&case.credentials, std::fs::Permissions::from_mode(0o600))
            .unwrap();
        failures.extend(check(&case, expected, true));
    }
    report(failures, files.len(), "bad configs");
}

#[test]
fn bad_credentials_files() {
    let sts = FastSts::start(3600);
    let expectations = expectations();
    let files = corpus_files("credentials");
    let mut failures = Vec::new();
    for (name, bytes) in &files {
        let key = format!("credentials/{name}");
        let case = Case::new(&key);
        std::fs::write(&case.config, good_config(&sts.url)).unwrap();
        std::fs::write(&case.credentials, bytes).unwrap();
        std::fs::set_permissions(&case.credentials, std::fs::Permissions::from_mode(0o600))
            .unwrap();
        failures.extend(check(&case, &expectations[&key], false));
    }
    report(failures, files.len(), "bad credentials files");
}

/// Inputs made at test time (too big to commit, or not files at all).
const GENERATED: &[&str] = &[
    "huge_credentials",
    "huge_config",
    "credentials_read_only",
    "credentials_link_to_read_only",
    "credentials_link_to_writable",
    "credentials_is_a_directory",
    "credentials_link_loop",
    "credentials_fifo",
    "config_is_a_directory",
    "config_link_loop",
    "config_missing",
    "config_with_secret_readable_by_others",
    "config_fifo",
    "config_dev_zero",
    "policy_fifo",
    "config_expansion_huge",
    "config_inherited_huge_value",
    "external_id_of_4_mb",
    "cache_step_u64_max",
    "cache_step_clock_set_back_3h",
    "cache_garbage",
    "cache_huge",
    "cache_fifo",
    "runtime_dir_symlink",
    "runtime_dir_of_another_user",
    "credentials_lock_symlink",
    "sts_endless_body",
    "sts_garbage",
    "sts_far_expiration",
];

/// The runtime directory of a case (`$XDG_RUNTIME_DIR/aws-session-daemon`),
/// created 0700.
fn runtime_dir(case: &Case) -> PathBuf {
    let dir = case.home.path().join("run/aws-session-daemon");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// The TOTP step of the wall clock now.
fn step_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30
}

fn generate(name: &str, case: &mut Case, endpoint: &str) {
    let write_credentials = |case: &Case, text: &[u8], mode: u32| {
        std::fs::write(&case.credentials, text).unwrap();
        std::fs::set_permissions(&case.credentials, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    std::fs::write(&case.config, good_config(endpoint)).unwrap();
    match name {
        "huge_credentials" => write_credentials(case, &huge_credentials(), 0o600),
        "huge_config" => {
            std::fs::write(&case.config, huge_config(endpoint)).unwrap();
            case.subject = case.config.clone();
            write_credentials(case, GOOD_CREDENTIALS.as_bytes(), 0o600);
        }
        "credentials_read_only" => write_credentials(case, GOOD_CREDENTIALS.as_bytes(), 0o400),
        "credentials_link_to_read_only" | "credentials_link_to_writable" => {
            let dotfiles = case.home.path().join("dotfiles");
            std::fs::create_dir(&dotfiles).unwrap();
            let target = dotfiles.join("aws-credentials");
            std::fs::write(&target, GOOD_CREDENTIALS).unwrap();
            let mode = if name.ends_with("read_only") {
                0o400
            } else {
                0o600
            };
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode)).unwrap();
            std::os::unix::fs::symlink(&target, &case.credentials).unwrap();
        }
        "credentials_is_a_directory" => std::fs::create_dir(&case.credentials).unwrap(),
        "credentials_link_loop" => {
            let other = case.credentials.with_file_name("credentials-loop");
            std::os::unix::fs::symlink(&other, &case.credentials).unwrap();
            std::os::unix::fs::symlink(&case.credentials, &other).unwrap();
        }
        "credentials_fifo" => {
            let path = std::ffi::CString::new(case.credentials.to_str().unwrap()).unwrap();
            // SAFETY: mkfifo on a path we own.
            assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        }
        "config_is_a_directory" | "config_link_loop" | "config_missing" => {
            std::fs::remove_file(&case.config).unwrap();
            match name {
                "config_is_a_directory" => std::fs::create_dir(&case.config).unwrap(),
                "config_link_loop" => {
                    let other = case.config.with_file_name("config-loop.toml");
                    std::os::unix::fs::symlink(&other, &case.config).unwrap();
                    std::os::unix::fs::symlink(&case.config, &other).unwrap();
                }
                _ => {}
            }
            case.subject = case.config.clone();
            write_credentials(case, GOOD_CREDENTIALS.as_bytes(), 0o600);
        }
        "config_with_secret_readable_by_others" => {
            let config = format!(
                "access_key_id = \"AKIAIOSFODNN7EXAMPLE\"\nsecret_access_key = \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"\n{}",
                good_config(endpoint)
            );
            std::fs::write(&case.config, config).unwrap();
            std::fs::set_permissions(&case.config, std::fs::Permissions::from_mode(0o644)).unwrap();
            case.subject = case.config.clone();
            write_credentials(case, b"", 0o600);
        }
        "config_fifo" | "config_dev_zero" => {
            std::fs::remove_file(&case.config).unwrap();
            if name == "config_fifo" {
                mkfifo(&case.config);
            } else {
                case.config = PathBuf::from("/dev/zero");
            }
            case.subject = case.config.clone();
            write_credentials(case, GOOD_CREDENTIALS.as_bytes(), 0o600);
        }
        "policy_fifo" => {
            let fifo = case.home.path().join("policy.json");
            mkfifo(&fifo);
            let config = format!(
                "{}\n[prod]\nassume_role_arn = \"arn:aws:iam::111111111111:role/Admin\"\nassume_role_policy = \"@{}\"\n",
                good_config(endpoint),
                fifo.display()
            );
            std::fs::write(&case.config, config).unwrap();
            case.subject = case.config.clone();
            write_credentials(case, GOOD_CREDENTIALS.as_bytes(), 0o600);
        }
        "config_expansion_huge" => {
            std::fs::write(&case.config, expanding_config()).unwrap();
            case.subject = case.config.clone();
            write_credentials(case, GOOD_CREDENTIALS.as_bytes(), 0o600);
        }
        "config_inherited_huge_value" | "external_id_of_4_mb" => {
            let text = if name == "external_id_of_4_mb" {
                long_external_id_config(endpoint)
            } else {
                inherited_huge_value_config(endpoint)
            };
            std::fs::write(&case.config, text).unwrap();
            case.subject = case.config.clone();
            write_credentials(case, GOOD_CREDENTIALS.as_bytes(), 0o600);
        }
        "cache_step_u64_max" | "cache_step_clock_set_back_3h" => {
            let step = if name.ends_with("u64_max") {
                u64::MAX
            } else {
                step_now() + 3 * 120
            };
            let cache = runtime_dir(case).join("mfa-sessions.json");
            std::fs::write(
                &cache,
                format!(
                    "{{\"sessions\":[],\"last_steps\":{{\"arn:aws:iam::123456789012:mfa/me\":{step}}}}}"
                ),
            )
            .unwrap();
            std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o600)).unwrap();
            write_credentials(case, GOOD_CREDENTIALS.as_bytes(), 0o600);
        }
        "cache_garbage" | "cache_huge" | "cache_fifo" => {
            let cache = runtime_dir(case).join("mfa-sessions.json");
            match name {
                "cache_garbage" => std::fs::write(&cache, [0xff, 0x00, b'{', 0x80]).unwrap(),
                "cache_huge" => std::fs::write(&cache, vec![b' '; 2 * 1024 * 1024]).unwrap(),
                _ => mkfifo(&cache),
            }
            std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o600)).unwrap();
            write_credentials(case, GOOD_CREDENTIALS.as_bytes(), 0o600);
        }
        "runtime_dir_symlink" => {
            let elsewhere = case.home.path().join("elsewhere");
            std::fs::create_dir(&elsewhere).unwrap();
            std::os::unix::fs::symlink(&elsewhere, case.home.path().join("run/aws-session-daemon"))
                .unwrap();
            write_credentials(case, GOOD_CREDENTIALS.as_bytes(), 0o600);
        }
        "runtime_dir_of_another_user" => {
            let dir = runtime_dir(case);
            users::second_user().own(&dir);
            write_credentials(case, GOOD_CREDENTIALS.as_bytes(), 0o600);
        }
        "credentials_lock_symlink" => {
            std::os::unix::fs::symlink(
                case.home.path().join("victim"),
                case.credentials.with_file_name("credentials.lock"),
            )
            .unwrap();
            write_credentials(case, GOOD_CREDENTIALS.as_bytes(), 0o600);
        }
        "sts_endless_body" | "sts_garbage" | "sts_far_expiration" => {
            let fault = name.strip_prefix("sts_").unwrap();
            let inject = format!("{{\"fault\": \"{fault}\", \"count\": 1000}}");
            let front = sts_front::StsFront::start(endpoint, &["--inject", &inject]);
            std::fs::write(&case.config, good_config(&front.url)).unwrap();
            case._running = Some(front);
            write_credentials(case, GOOD_CREDENTIALS.as_bytes(), 0o600);
        }
        other => panic!("no generator for {other}"),
    }
}

#[test]
fn generated_bad_inputs() {
    let sts = FastSts::start(3600);
    let expectations = expectations();
    let mut failures = Vec::new();
    for name in GENERATED {
        let key = format!("generated/{name}");
        let mut case = Case::new(&key);
        generate(name, &mut case, &sts.url);
        let started = std::time::Instant::now();
        failures.extend(check(&case, &expectations[&key], false));
        // Three commands; a stall (hours waiting for a TOTP step, a FIFO,
        // a body that never ends) would show here.
        if started.elapsed() > std::time::Duration::from_secs(30) {
            failures.push(format!("{key}: took {:?}", started.elapsed()));
        }
        if *name == "sts_far_expiration" {
            let text = std::fs::read_to_string(&case.credentials).unwrap_or_default();
            let limit = time::OffsetDateTime::now_utc() + time::Duration::hours(13);
            for expiry in text
                .lines()
                .filter_map(|l| l.strip_prefix("x_security_token_expires = "))
            {
                let at = aws_session_daemon::timestamp::parse_expiry(expiry);
                if at.is_none_or(|at| at >= limit) {
                    failures.push(format!("{key}: an expiry of {expiry} was believed"));
                }
            }
        }
        if *name == "credentials_link_to_writable" {
            let meta = std::fs::symlink_metadata(&case.credentials).unwrap();
            if !meta.file_type().is_symlink() {
                failures.push(format!("{key}: the symlink was replaced by a file"));
            }
        }
    }
    report(failures, GENERATED.len(), "generated bad inputs");
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    // `aws-session-daemon completions bash | head -1`: the reader goes away.
    let case = Case::new("closed stdout");
    std::fs::write(&case.config, good_config("http://127.0.0.1:9")).unwrap();
    std::fs::write(&case.credentials, GOOD_CREDENTIALS).unwrap();
    for args in [
        &["completions", "bash"][..],
        &["completions", "zsh"],
        &["man"],
        &["config", "show"],
        &["plan"],
        &["plan", "--json"],
    ] {
        // completions and man read no config: only the rest is confined.
        let mut command = match args[0] {
            "completions" | "man" => {
                let mut command = Command::new(binary());
                command.args(args).env_clear();
                command
            }
            _ => case.command(args),
        };
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("panicked") && output.status.code() != Some(101),
            "{args:?} with a closed stdout: {:?}\n{stderr}",
            output.status
        );
        assert!(
            !stderr.contains("Broken pipe"),
            "{args:?}: a closed pipe is no error worth a message: {stderr}"
        );
    }
}

#[test]
fn a_role_arn_with_control_characters_is_refused_before_a_code_is_spent() {
    // The role name part of the ARN holds CR, LF and ESC: IAM makes no such
    // role, so no code is read and nothing is sent to STS for it.
    let sts = FastSts::start(3600);
    let case = Case::new("role name with control characters");
    let code_read = case.home.path().join("code-read");
    std::fs::write(
        &case.config,
        format!(
            "mfa_serial_number = \"arn:aws:iam::123456789012:mfa/me\"\nmfa_process = \"touch {}; echo 123456\"\nsts_endpoint = \"{}\"\n\n[prod]\nassume_role_arn = \"arn:aws:iam::111111111111:role/Admin\\r\\n\\u001b[31mforged\"\n",
            code_read.display(),
            sts.url
        ),
    )
    .unwrap();
    std::fs::write(&case.credentials, GOOD_CREDENTIALS).unwrap();
    std::fs::set_permissions(&case.credentials, std::fs::Permissions::from_mode(0o600)).unwrap();
    for command in ["plan", "apply"] {
        let output = case.run(&[command]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.status.code(), Some(1), "{command}: {text}");
        assert!(text.contains("is not a role ARN"), "{command}: {text}");
        assert!(
            !text.contains(['\r', '\u{1b}']),
            "{command} printed a raw control character: {text:?}"
        );
        assert!(
            !text
                .lines()
                .any(|line| line.starts_with("\u{1b}[31mforged")),
            "{command}: {text}"
        );
    }
    assert!(!code_read.exists(), "an MFA code was read for it");
    assert_eq!(
        (sts.calls("GetSessionToken"), sts.calls("AssumeRole")),
        (0, 0),
        "STS was called"
    );
    assert_eq!(
        std::fs::read_to_string(&case.credentials).unwrap(),
        GOOD_CREDENTIALS
    );
}
