//! Concurrency: ten daemon processes, one per section (`run
//! --config-section=NAME`, the original's systemd-template setup), share one
//! config, one credentials file and one `XDG_RUNTIME_DIR`, while in the same
//! file a "user" keeps deleting their profiles (so the daemons keep writing)
//! and a rewriter changes an unrelated section every few milliseconds: once
//! through the lock protocol (`CredentialsFile::update`), once like an
//! editor that takes no lock (read, modify, write a temp file, rename).
//!
//! Checked: no update lost (with the lock, every write of the rewriter is
//! still there when it next reads, and the last one at the end; every
//! daemon's profile is present and fresh at the end), no duplicate section
//! and a file that botocore parses at every sample, one MFA session for the
//! ten processes (GetSessionToken counted by the STS front), no crash.
//!
//! About 8 s of load per mode; `AWS_SESSION_DAEMON_LONG=1` makes it 30 s.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/example_bin.rs"]
mod example_bin;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/sts_front.rs"]
mod sts_front;
#[path = "support/tools.rs"]
mod tools;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_session_daemon::credentials::{CredentialsFile, Document, Edit};
use aws_session_daemon::timestamp::parse_expiry;
use daemon::{Home, Running, USER_TEXT, accounts, botocore_sections, duplicate_sections};

const DAEMONS: usize = 10;
/// The section the rewriter owns; no daemon touches it.
const REWRITER: &str = "rewriter";

fn load_time() -> Duration {
    let long =
        std::env::var_os("AWS_SESSION_DAEMON_LONG").is_some_and(|v| !v.is_empty() && v != "0");
    Duration::from_secs(if long { 30 } else { 8 })
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Writer {
    /// `CredentialsFile::update`: lock, re-read, edit, atomic replace.
    Locked,
    /// Like an editor: read, modify, write a temp file, rename. No lock.
    Editor,
}

/// The value of `counter` in `[rewriter]`, if there is one.
fn counter(text: &str) -> Option<u64> {
    Document::parse(text)
        .get(REWRITER, "counter")
        .ok()
        .flatten()
        .and_then(|v| v.parse().ok())
}

/// A change made the way an editor saves: no lock, write a temp file, rename.
/// (`who` keeps the two editing threads' temp files apart.)
fn editor_save(path: &Path, text: &str, who: &str) {
    let temp = path.with_file_name(format!("credentials.{who}-swap"));
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

/// Sets `[rewriter] counter = value`, by `writer`.
fn rewrite(path: &Path, writer: Writer, value: u64) {
    match writer {
        Writer::Locked => {
            CredentialsFile::new(path.to_path_buf(), 0)
                .update(&[Edit::set(REWRITER, "counter", value.to_string().into())])
                .expect("the rewriter's locked update (did someone write without the lock?)");
        }
        Writer::Editor => {
            let text = std::fs::read_to_string(path).unwrap();
            let mut document = Document::parse(&text);
            document
                .apply(&Edit::set(REWRITER, "counter", value.to_string().into()))
                .unwrap();
            editor_save(path, &document.render(), "rewriter");
        }
    }
}

/// Deletes a profile's keys (the section header stays), by `writer`.
fn delete_profile(path: &Path, writer: Writer, profile: &str) {
    let edits: Vec<Edit> = [
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
    ]
    .into_iter()
    .map(|key| Edit::remove(profile, key))
    .collect();
    match writer {
        Writer::Locked => {
            CredentialsFile::new(path.to_path_buf(), 0)
                .update(&edits)
                .expect("the user's locked update");
        }
        Writer::Editor => {
            let text = std::fs::read_to_string(path).unwrap();
            let mut document = Document::parse(&text);
            for edit in &edits {
                document.apply(edit).unwrap();
            }
            editor_save(path, &document.render(), "user");
        }
    }
}

/// How long until the last of the daemons' next attempts (from the status
/// file they share), for the sections not fresh now.
fn next_attempts_within(home: &Home, profiles: &[String]) -> Duration {
    let state: serde_json::Value = std::fs::read(home.runtime_dir().join("state.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let now = time::OffsetDateTime::now_utc();
    daemon::stale_profiles(&home.text(), profiles, 300)
        .iter()
        .filter_map(|name| state["sections"][name]["next_attempt"].as_str())
        .filter_map(parse_expiry)
        .map(|at| Duration::try_from(at - now).unwrap_or_default())
        .max()
        .unwrap_or_default()
}

/// What every sample must satisfy (botocore is asked later, in one go).
fn check_sample(text: &str) -> Result<(), String> {
    if !text.starts_with(USER_TEXT) {
        return Err("the user's sections changed".into());
    }
    let duplicates = duplicate_sections(text);
    if !duplicates.is_empty() {
        return Err(format!("duplicate sections {duplicates:?}"));
    }
    let document = Document::parse(text);
    for name in document.section_names() {
        document
            .check_section(name)
            .map_err(|e| format!("[{name}]: {e}"))?;
    }
    Ok(())
}

fn ten_daemons_and_a_rewriter(writer: Writer) {
    let moto = moto::Moto::start();
    let front = sts_front::StsFront::start(&moto.url, &[]);
    let profiles = accounts(DAEMONS);
    let config = daemon::org_config(&front.url, "mfa_process = \"echo 123456\"", &profiles);
    let mut initial = USER_TEXT.to_string();
    initial.push_str(&format!("\n# the rewriter's\n[{REWRITER}]\ncounter = 0\n"));
    let home = Home::with_credentials(&config, &initial);
    let path = home.credentials();

    let mut daemons: Vec<Running> = profiles
        .iter()
        .map(|name| {
            Running::start_logging_to(
                home.command(&[
                    "run",
                    &format!("--config-section={name}"),
                    "--log-level",
                    "debug",
                ]),
                home.path().join(format!("daemon-{name}.log")),
            )
        })
        .collect();
    let first = daemon::wait_until(
        "every daemon's first write",
        Duration::from_secs(30),
        || daemon::stale_profiles(&home.text(), &profiles, 300).is_empty(),
    );
    eprintln!("{writer:?}: {DAEMONS} daemons wrote their profiles within {first:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let stop_deleting = Arc::new(AtomicBool::new(false));
    let load = load_time();

    // The rewriter: [rewriter] counter = 1, 2, 3, ... every few ms.
    let rewriter = {
        let (stop, path) = (Arc::clone(&stop), path.clone());
        std::thread::spawn(move || {
            let mut last = 0u64;
            let mut lost = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let seen = counter(&std::fs::read_to_string(&path).unwrap());
                if seen != Some(last) {
                    lost += 1;
                    if writer == Writer::Locked {
                        panic!("lost update: wrote counter = {last}, now the file says {seen:?}");
                    }
                }
                last += 1;
                rewrite(&path, writer, last);
                std::thread::sleep(Duration::from_millis(3));
            }
            (last, lost)
        })
    };
    // The user: deletes one daemon's profile every 300 ms.
    let user = {
        let (stop, path, profiles) = (Arc::clone(&stop_deleting), path.clone(), profiles.clone());
        std::thread::spawn(move || {
            let mut deleted = 0usize;
            while !stop.load(Ordering::SeqCst) {
                delete_profile(&path, writer, &profiles[deleted % profiles.len()]);
                deleted += 1;
                std::thread::sleep(Duration::from_millis(300));
            }
            deleted
        })
    };
    // The sampler: a copy of the file every 25 ms, checked now (crate) and
    // later (botocore).
    let samples_dir = home.path().join("samples");
    std::fs::create_dir(&samples_dir).unwrap();
    let started = Instant::now();
    let mut samples: Vec<PathBuf> = Vec::new();
    while started.elapsed() < load {
        if started.elapsed() > load.saturating_sub(Duration::from_secs(2)) {
            // The last deletions are restored before the end.
            stop_deleting.store(true, Ordering::SeqCst);
        }
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8(bytes.clone()).expect("UTF-8");
        if let Err(problem) = check_sample(&text) {
            panic!("{writer:?}: sample {}: {problem}\n{text}", samples.len());
        }
        let sample = samples_dir.join(format!("sample-{}", samples.len()));
        std::fs::write(&sample, &bytes).unwrap();
        samples.push(sample);
        std::thread::sleep(Duration::from_millis(25));
    }
    stop.store(true, Ordering::SeqCst);
    let (last, lost) = match rewriter.join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    let deleted = user.join().unwrap();

    // Every daemon's profile is present and fresh, and (with the lock) the
    // rewriter's last value is in the file.
    let settle = match writer {
        Writer::Locked => Duration::from_secs(2),
        // An editor may have dropped a daemon's write, or made its writes
        // fail ("kept changing while the daemon was updating it"): the
        // daemon writes again at its next attempt, which backs off while
        // the storm lasts (the STS call before each write is not free).
        // It must be done by then.
        Writer::Editor => next_attempts_within(&home, &profiles) + Duration::from_secs(3),
    };
    eprintln!("{writer:?}: waiting at most {settle:?} for every profile to be fresh");
    let settling = Instant::now();
    while !daemon::stale_profiles(&home.text(), &profiles, 300).is_empty()
        && settling.elapsed() < settle
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let settled = settling.elapsed();
    let stale = daemon::stale_profiles(&home.text(), &profiles, 300);
    if !stale.is_empty() {
        let logs: Vec<String> = profiles
            .iter()
            .zip(&daemons)
            .filter(|(name, _)| stale.contains(name))
            .map(|(name, daemon)| format!("--- [{name}]:\n{}", daemon.log()))
            .collect();
        panic!(
            "{writer:?}: {stale:?} not fresh {settle:?} after the load (a lost update):\n{}\n{}",
            home.text(),
            logs.join("\n")
        );
    }
    let text = home.text();
    check_sample(&text).unwrap();
    if writer == Writer::Locked {
        assert_eq!(
            counter(&text),
            Some(last),
            "the rewriter's last write was lost"
        );
    }
    samples.push(path.clone());
    let parsed = botocore_sections(&samples);
    for (sample, sections) in samples.iter().zip(&parsed) {
        let sections = sections.as_ref().unwrap_or_else(|e| {
            panic!(
                "{writer:?}: botocore cannot parse {}: {e}",
                sample.display()
            )
        });
        for user in ["default", "other", REWRITER] {
            assert!(
                sections.iter().any(|s| s == user),
                "[{user}] missing in {}",
                sample.display()
            );
        }
    }

    let stats = front.stats();
    let get_session_token = stats["actions"]["GetSessionToken"].as_u64().unwrap_or(0);
    let assume_role = stats["actions"]["AssumeRole"].as_u64().unwrap_or(0);
    let mut writes = 0;
    let mut secrets = home.secrets();
    for sample in &samples {
        secrets.extend(daemon::secrets_in(&String::from_utf8_lossy(
            &std::fs::read(sample).unwrap(),
        )));
    }
    secrets.sort();
    secrets.dedup();
    for (name, daemon) in profiles.iter().zip(daemons.iter_mut()) {
        assert!(daemon.alive(), "daemon [{name}] died:\n{}", daemon.log());
        let log = daemon.log();
        assert!(!log.contains("panicked"), "[{name}]:\n{log}");
        daemon::assert_no_secret(&log, &secrets, &format!("[{name}]'s log"));
        writes += log.matches("wrote ").count();
    }
    // The editor's last save (a new file under the test's umask) is made
    // private again by the daemons' next pass.
    daemon::poll_until(Duration::from_millis(5), Duration::from_secs(2), || {
        home.written_files().iter().all(|(_, mode)| *mode == 0o600)
    });
    let private = home.assert_files_private();
    eprintln!(
        "{writer:?}: {:?} of load: rewriter wrote {last} times ({lost} of its writes lost), \
         user deleted {deleted} profiles, daemons wrote {writes} times, all fresh {settled:?} after; \
         {} samples parsed by botocore; STS: {get_session_token} GetSessionToken, {assume_role} AssumeRole; outcomes {}; \
         {} secrets absent from the logs; {private} files, all 0600",
        load,
        samples.len(),
        stats["outcomes"],
        secrets.len()
    );
    assert!(
        get_session_token <= 2,
        "{DAEMONS} processes must share the MFA session: {stats}"
    );
    if writer == Writer::Locked {
        // (An editor's deletion can itself be lost to the other editor thread.)
        assert!(
            writes >= deleted,
            "the daemons wrote {writes} times for {deleted} deletions"
        );
    }
    assert!(last > 100, "the rewriter wrote only {last} times");
    for (name, daemon) in profiles.iter().zip(daemons.iter_mut()) {
        let status = daemon.terminate(Duration::from_secs(5));
        assert!(
            status.is_some_and(|s| s.success()),
            "[{name}] did not stop cleanly on SIGTERM: {status:?}"
        );
    }
    assert_eq!(daemon::temp_files_in(&home.aws_dir()), Vec::<String>::new());
}

#[test]
fn ten_daemons_and_a_locking_rewriter_lose_no_update() {
    ten_daemons_and_a_rewriter(Writer::Locked);
}

#[test]
fn ten_daemons_and_an_editor_without_the_lock_keep_the_file_valid() {
    ten_daemons_and_a_rewriter(Writer::Editor);
}
