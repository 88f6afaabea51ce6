//! Crash safety: `kill -9` the daemon (`apply` and `run`) at random moments,
//! many times, while it rewrites a credentials file that holds the user's
//! own sections (with comments) between and around the profiles it owns.
//!
//! After every kill the file must parse (the crate's botocore-compatible
//! parser after every trial, botocore itself on a sample and at the end),
//! hold every byte the user wrote, have no duplicate section and no
//! half-written profile, and stay mode 0600; temporary files left by a
//! killed write must be gone once the next process has written.
//!
//! Kills are of three kinds, in turn: at a uniformly random moment of an
//! `apply` (startup, STS calls, the edit, the write), and, for `apply` and
//! `run`, 50 µs to 20 ms after the writer's temporary file appears (seen
//! through inotify), which lands inside the write itself about half the
//! time: temp file written and synced, backups rotated, rename, directory
//! sync. STS is a fast local double whose role credentials are already due
//! for refresh, so that every process rewrites every profile.
//!
//! Quick by default (100 trials, 20 owned profiles); set
//! `AWS_SESSION_DAEMON_LONG=1` for 500 trials with 200 owned profiles, best
//! with `cargo test --release` (a debug build takes ~15 s to edit 200
//! profiles; a release build 0.5 s). `CRASH_TRIALS`, `CRASH_PROFILES` and
//! `CRASH_SEED` override.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/fast_sts.rs"]
mod fast_sts;
#[path = "support/tools.rs"]
mod tools;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_session_daemon::credentials::Document;
use daemon::{Home, Running, USER_TEXT, accounts, botocore_sections, duplicate_sections};

/// User sections after the owned profiles that are already in the file.
const USER_TAIL: &str = "\n# team profiles, edited by hand\n[team]\n; keep this comment\nregion = eu-central-1\noutput = json\n\n[ci]\naws_access_key_id = AKIACICICICICICICICI\naws_secret_access_key = ci-secret\n# the end\n";
const OWNED_KEYS: [&str; 4] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "x_security_token_expires",
];

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn long() -> bool {
    std::env::var_os("AWS_SESSION_DAEMON_LONG").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Watches a directory with inotify for created and renamed-in files.
struct DirWatch {
    fd: i32,
}

impl DirWatch {
    fn new(dir: &Path) -> DirWatch {
        // SAFETY: plain syscalls on a descriptor this struct owns.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        assert!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        let path = CString::new(dir.as_os_str().as_bytes()).unwrap();
        let wd = unsafe {
            libc::inotify_add_watch(fd, path.as_ptr(), libc::IN_CREATE | libc::IN_MOVED_TO)
        };
        assert!(
            wd >= 0,
            "inotify_add_watch: {}",
            std::io::Error::last_os_error()
        );
        DirWatch { fd }
    }

    /// Names of the events read now (waiting up to `timeout` for the first).
    fn read(&self, timeout: Duration) -> Vec<(u32, String)> {
        let mut poll = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, a buffer we own.
        let ready = unsafe { libc::poll(&mut poll, 1, timeout.as_millis() as i32) };
        if ready <= 0 {
            return Vec::new();
        }
        let mut buffer = [0u8; 16 * 1024];
        let n = unsafe { libc::read(self.fd, buffer.as_mut_ptr().cast(), buffer.len()) };
        let mut events = Vec::new();
        let mut offset = 0usize;
        while n > 0 && offset + 16 <= n as usize {
            let field = |at: usize| {
                u32::from_ne_bytes(buffer[offset + at..offset + at + 4].try_into().unwrap())
            };
            let (mask, len) = (field(4), field(12) as usize);
            let name = &buffer[offset + 16..offset + 16 + len];
            let name = String::from_utf8_lossy(name)
                .trim_end_matches('\0')
                .to_string();
            events.push((mask, name));
            offset += 16 + len;
        }
        events
    }

    fn drain(&self) {
        while !self.read(Duration::ZERO).is_empty() {}
    }

    /// Waits until the credentials writer's temporary file appears.
    fn wait_for_temp_file(&self, timeout: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < timeout {
            let events = self.read(Duration::from_millis(50));
            if events
                .iter()
                .any(|(mask, name)| mask & libc::IN_CREATE != 0 && is_writer_temp(name))
            {
                return true;
            }
        }
        false
    }
}

impl Drop for DirWatch {
    fn drop(&mut self) {
        // SAFETY: closing the descriptor we opened.
        unsafe { libc::close(self.fd) };
    }
}

fn is_writer_temp(name: &str) -> bool {
    name.starts_with(".credentials.") && name.ends_with(".tmp")
}

/// Sleeps precisely (a busy wait for the last part), for kills timed in
/// fractions of a millisecond.
fn sleep_precisely(duration: Duration) {
    let started = Instant::now();
    if duration > Duration::from_millis(2) {
        std::thread::sleep(duration - Duration::from_millis(1));
    }
    while started.elapsed() < duration {
        std::hint::spin_loop();
    }
}

/// The initial file: the user's sections, half of the owned profiles
/// (expired), more user sections. The other half gets appended.
fn initial_file(owned: &[String]) -> String {
    let mut text = USER_TEXT.to_string();
    for (i, account) in owned.iter().take(owned.len() / 2).enumerate() {
        text.push_str(&format!(
            "\n[{account}]\naws_access_key_id = ASIAOLD{i:013}\naws_secret_access_key = old-secret-{i}\naws_session_token = old-token-{i}\nx_security_token_expires = 2020-01-01T00:00:00Z\n"
        ));
    }
    text.push_str(USER_TAIL);
    text
}

/// What must hold after every kill; returns the first violation.
fn check(text: &str, owned: &[String]) -> Result<(), String> {
    for block in [USER_TEXT, USER_TAIL] {
        if !text.contains(block) {
            return Err(format!("the user's bytes {block:?} are not intact"));
        }
    }
    if !text.starts_with(USER_TEXT) {
        return Err("the file no longer starts with the user's text".into());
    }
    let duplicates = duplicate_sections(text);
    if !duplicates.is_empty() {
        return Err(format!("duplicate sections {duplicates:?}"));
    }
    let document = Document::parse(text);
    for name in document.section_names() {
        document
            .check_section(name)
            .map_err(|e| format!("section [{name}]: {e}"))?;
    }
    for account in owned {
        if !document.has_section(account) {
            continue;
        }
        let mut keys = document.keys(account);
        keys.sort();
        if keys != OWNED_KEYS {
            return Err(format!(
                "profile [{account}] is half-written: keys {keys:?}"
            ));
        }
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// `apply`, killed at a uniformly random moment of its run.
    ApplyAnytime,
    /// `apply`, killed a random moment after its temporary file appears.
    ApplyInWrite,
    /// `run`, the same.
    RunInWrite,
}

#[test]
fn kill_9_at_random_moments_never_breaks_the_credentials_file() {
    let started = Instant::now();
    let trials = env_number("CRASH_TRIALS", if long() { 500 } else { 100 });
    let profiles = env_number("CRASH_PROFILES", if long() { 200 } else { 20 });
    let seed = env_number("CRASH_SEED", fastrand::usize(..1_000_000)) as u64;
    let mut rng = fastrand::Rng::with_seed(seed);
    eprintln!("crash safety: {trials} trials, {profiles} owned profiles, seed {seed}");

    // Role credentials that are due for refresh as they arrive (30 s left,
    // 60 s margin): every new process rewrites every profile.
    let sts = fast_sts::FastSts::start(30);
    let owned = accounts(profiles);
    let config = format!(
        "refresh_margin = 60\nassume_session_duration = 900\nbackups = 2\n{}",
        daemon::org_config(&sts.url, "mfa_process = \"echo 123456\"", &owned)
    );
    let home = Home::with_credentials_in(
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        &config,
        &initial_file(&owned),
    );
    let samples = home.path().join("samples");
    std::fs::create_dir(&samples).unwrap();
    let log = home.path().join("daemon.log");
    let watch = DirWatch::new(&home.aws_dir());

    // A first apply to the end: caches the MFA session (later kills must
    // not wait for a new TOTP step) and measures a whole run and its write.
    let first = home.run(&["apply"]);
    assert_ne!(first.status.code(), Some(101), "{}", daemon::stderr(&first));
    check(&home.text(), &owned).unwrap();
    assert!(home.text().contains(&format!("[{}]", owned[profiles - 1])));
    let timer = Instant::now();
    let second = home.run(&["apply"]);
    let apply_time = timer.elapsed();
    assert_ne!(
        second.status.code(),
        Some(101),
        "{}",
        daemon::stderr(&second)
    );
    eprintln!("an apply rewriting {profiles} profiles takes {apply_time:?}");

    let mut per_kind: std::collections::BTreeMap<String, (usize, usize, usize)> =
        Default::default();
    let mut botocore_files: Vec<PathBuf> = Vec::new();
    let mut leftovers_seen = 0usize;
    let mut leftovers_cleaned = 0usize;
    for trial in 0..trials {
        let kind = match trial % 3 {
            0 => Kind::ApplyAnytime,
            1 => Kind::ApplyInWrite,
            _ => Kind::RunInWrite,
        };
        let before = std::fs::read(home.credentials()).unwrap();
        let leftovers = home.temp_files();
        watch.drain();
        let args: &[&str] = match kind {
            Kind::RunInWrite => &["run", "--log-level", "debug"],
            _ => &["apply", "--log-level", "debug"],
        };
        let mut process = Running::start_logging_to(home.command(args), log.clone());
        match kind {
            Kind::ApplyAnytime => {
                let limit = apply_time.as_micros() as u64 * 11 / 10;
                sleep_precisely(Duration::from_micros(rng.u64(0..=limit)));
            }
            Kind::ApplyInWrite | Kind::RunInWrite => {
                let seen = watch.wait_for_temp_file(Duration::from_secs(60));
                assert!(seen, "trial {trial}: no write within 60 s");
                // From 50 µs to 20 ms, evenly on a log scale: inside the
                // write (a millisecond or a few, fsyncs included) about half
                // the time, after it the rest, whatever the machine's speed.
                let micros = 50.0 * 400f64.powf(rng.f64());
                sleep_precisely(Duration::from_micros(micros as u64));
            }
        }
        let exited_by_itself = !process.alive();
        if exited_by_itself {
            let status = process.child.wait().unwrap();
            assert!(
                kind != Kind::RunInWrite && matches!(status.code(), Some(0 | 1)),
                "trial {trial} ({kind:?}): the daemon exited by itself with {status}:\n{}",
                process.log()
            );
        }
        process.kill9();

        let after = std::fs::read(home.credentials()).unwrap();
        let text = String::from_utf8(after.clone())
            .unwrap_or_else(|e| panic!("trial {trial} ({kind:?}): not UTF-8 after the kill: {e}"));
        if let Err(problem) = check(&text, &owned) {
            panic!("trial {trial} ({kind:?}): {problem}\n{text}");
        }
        let mode = std::fs::metadata(home.credentials())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "trial {trial}: mode {mode:o}");
        let temps = home.temp_files();
        let wrote = after != before;
        if !leftovers.is_empty() {
            leftovers_seen += leftovers.len();
            if wrote {
                // A completed write cleaned up under the lock first.
                for name in &leftovers {
                    assert!(
                        !temps.contains(name),
                        "trial {trial}: {name}, left by the previous kill, survived a write"
                    );
                }
                leftovers_cleaned += leftovers.len();
            }
        }
        let entry = per_kind.entry(format!("{kind:?}")).or_default();
        entry.0 += 1;
        entry.1 += usize::from(wrote);
        entry.2 += usize::from(!temps.is_empty());
        if trial % 10 == 0 {
            let sample = samples.join(format!("trial-{trial}"));
            std::fs::write(&sample, &after).unwrap();
            botocore_files.push(sample);
        }
    }

    // A last apply, not killed, with credentials that stay fresh: it must
    // succeed and leave no temporary file.
    sts.set_role_lifetime(900);
    let last = home.run(&["apply"]);
    assert!(
        last.status.success(),
        "the apply after the kills failed: {}",
        daemon::stderr(&last)
    );
    let text = home.text();
    check(&text, &owned).unwrap();
    for account in &owned {
        assert!(
            text.contains(&format!("[{account}]")),
            "[{account}] missing"
        );
    }
    assert_eq!(home.temp_files(), Vec::<String>::new(), "temp files left");
    botocore_files.push(home.credentials());
    let parsed = botocore_sections(&botocore_files);
    for (file, sections) in botocore_files.iter().zip(&parsed) {
        let sections = sections
            .as_ref()
            .unwrap_or_else(|e| panic!("botocore cannot parse {}: {e}", file.display()));
        for user in ["default", "other", "team", "ci"] {
            assert!(
                sections.iter().any(|s| s == user),
                "botocore lost [{user}] in {}",
                file.display()
            );
        }
    }
    let final_sections = parsed.last().unwrap().as_ref().unwrap();
    assert_eq!(final_sections.len(), 4 + profiles, "{final_sections:?}");

    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!logs.contains("panicked"), "a panic:\n{logs}");
    // No secret in any log line; every file written is private.
    let mut secrets = home.secrets();
    secrets.extend(sts.issued_secrets());
    daemon::assert_no_secret(&logs, &secrets, "the daemons' logs");
    let private = home.assert_files_private();
    let runtime_temps = daemon::temp_files_in(&home.runtime_dir());
    let backups: Vec<String> = (1..=3)
        .map(|n| home.aws_dir().join(format!("credentials.{n}")))
        .filter(|p| p.exists())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();

    eprintln!("per kind (trials, completed writes, killed inside a write): {per_kind:?}");
    eprintln!(
        "temp files left by kills: {leftovers_seen}, removed by the next write: {leftovers_cleaned}; \
         botocore parsed {} samples; backups {backups:?}; runtime-dir temp files {runtime_temps:?}; \
         {} secrets absent from {} log lines; {private} files, all 0600",
        botocore_files.len(),
        secrets.len(),
        logs.lines().count()
    );
    eprintln!("crash safety took {:?}", started.elapsed());
    // The test is only worth something if kills did land inside writes.
    let in_write: usize = per_kind.values().map(|v| v.2).sum();
    assert!(
        in_write * 10 >= trials,
        "only {in_write} of {trials} kills landed inside a write"
    );
    assert!(
        leftovers_cleaned > 0,
        "no leftover temp file was ever cleaned"
    );
}
