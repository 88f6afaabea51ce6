//! The credentials file on disk: modes, backups, no-op updates, symlinks,
//! refusals that leave the file alone, and the lock under concurrency.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use aws_session_daemon::credentials::{CredentialsFile, Document, Edit, ErrorKind, WriteOutcome};
use aws_session_daemon::retry::{Classified, RetryClass};
use aws_session_daemon::secret::SecretString;

fn set(section: &str, key: &str, value: &str) -> Edit {
    Edit::set(section, key, SecretString::from(value))
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Only the file, its lock and its backups: no temporary file left over.
fn assert_no_temp_files(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let allowed = name == "credentials"
            || name == "credentials.lock"
            || name
                .strip_prefix("credentials.")
                .is_some_and(|n| n.parse::<usize>().is_ok());
        assert!(allowed, "unexpected file left in {}: {name}", dir.display());
    }
}

fn setup(content: Option<&str>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credentials");
    if let Some(content) = content {
        fs::write(&path, content).unwrap();
    }
    (dir, path)
}

#[test]
fn creates_the_directory_and_the_file_privately() {
    let dir = tempfile::tempdir().unwrap();
    let aws = dir.path().join("home/.aws");
    let path = aws.join("credentials");
    let file = CredentialsFile::new(path.clone(), 3);
    assert_eq!(
        file.read().unwrap().render(),
        "",
        "a missing file is an empty document"
    );
    assert_eq!(
        file.update(&[set("prod", "aws_session_token", "tok")])
            .unwrap(),
        WriteOutcome::Written
    );
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "[prod]\naws_session_token = tok\n"
    );
    assert_eq!(mode(&aws), 0o700);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&aws.join("credentials.lock")), 0o600);
    assert!(!aws.join("credentials.1").exists(), "nothing to back up");
    assert_no_temp_files(&aws);
}

#[test]
fn the_new_file_is_private_whatever_the_old_mode() {
    let (dir, path) = setup(Some("[prod]\nregion = eu-west-1\n"));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let inode = fs::metadata(&path).unwrap().ino();
    let file = CredentialsFile::new(path.clone(), 2);
    file.update(&[set("prod", "aws_session_token", "tok")])
        .unwrap();
    let meta = fs::metadata(&path).unwrap();
    assert_ne!(
        meta.ino(),
        inode,
        "written as a new file renamed into place"
    );
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(
        mode(&dir.path().join("credentials.1")),
        0o600,
        "the backup too"
    );
    assert_no_temp_files(dir.path());
}

#[test]
fn backups_rotate_newest_first_and_keep_n() {
    let (dir, path) = setup(Some("[p]\nn = 0\n"));
    // A backup left by an older tool with a loose mode.
    fs::write(dir.path().join("credentials.1"), "[p]\nn = old\n").unwrap();
    fs::set_permissions(
        dir.path().join("credentials.1"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let file = CredentialsFile::new(path.clone(), 3);
    for n in 1..=5 {
        assert_eq!(
            file.update(&[set("p", "n", &n.to_string())]).unwrap(),
            WriteOutcome::Written
        );
    }
    let read = |suffix: &str| fs::read_to_string(format!("{}{suffix}", path.display())).unwrap();
    assert_eq!(read(""), "[p]\nn = 5\n");
    assert_eq!(read(".1"), "[p]\nn = 4\n");
    assert_eq!(read(".2"), "[p]\nn = 3\n");
    assert_eq!(read(".3"), "[p]\nn = 2\n");
    assert!(
        !dir.path().join("credentials.4").exists(),
        "only 3 backups kept"
    );
    for n in 1..=3 {
        assert_eq!(mode(&dir.path().join(format!("credentials.{n}"))), 0o600);
    }
    assert_no_temp_files(dir.path());
}

#[test]
fn zero_backups_keeps_none() {
    let (dir, path) = setup(Some("[p]\nn = 0\n"));
    let file = CredentialsFile::new(path, 0);
    file.update(&[set("p", "n", "1")]).unwrap();
    file.update(&[set("p", "n", "2")]).unwrap();
    assert!(!dir.path().join("credentials.1").exists());
    assert_no_temp_files(dir.path());
}

#[test]
fn an_update_that_changes_nothing_writes_nothing() {
    let (dir, path) = setup(Some("[p]\nAWS_SESSION_TOKEN=tok\n"));
    let file = CredentialsFile::new(path.clone(), 3);
    let before = fs::metadata(&path).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let edits = [
        set("p", "aws_session_token", "tok"),
        Edit::remove("p", "absent"),
    ];
    assert_eq!(file.update(&edits).unwrap(), WriteOutcome::Unchanged);
    let after = fs::metadata(&path).unwrap();
    assert_eq!(after.ino(), before.ino());
    assert_eq!(
        (after.mtime(), after.mtime_nsec()),
        (before.mtime(), before.mtime_nsec())
    );
    assert!(
        !dir.path().join("credentials.1").exists(),
        "no backup of an unchanged file"
    );

    // After a real change, repeating it is again a no-op: no second backup.
    file.update(&[set("p", "region", "eu-west-1")]).unwrap();
    let written = fs::metadata(&path).unwrap();
    assert_eq!(
        file.update(&[set("p", "region", "eu-west-1")]).unwrap(),
        WriteOutcome::Unchanged
    );
    assert_eq!(fs::metadata(&path).unwrap().ino(), written.ino());
    assert!(dir.path().join("credentials.1").exists());
    assert!(!dir.path().join("credentials.2").exists());
    // No file is created for edits that change nothing either.
    let (empty_dir, missing) = setup(None);
    let file = CredentialsFile::new(missing.clone(), 3);
    assert_eq!(
        file.update(&[Edit::remove("p", "x")]).unwrap(),
        WriteOutcome::Unchanged
    );
    assert!(!missing.exists());
    assert_no_temp_files(empty_dir.path());
}

#[test]
fn a_symlink_is_kept_and_its_target_written() {
    let dir = tempfile::tempdir().unwrap();
    let dotfiles = dir.path().join("dotfiles");
    let aws = dir.path().join(".aws");
    fs::create_dir_all(&dotfiles).unwrap();
    fs::create_dir_all(&aws).unwrap();
    let target = dotfiles.join("credentials");
    fs::write(&target, "[default]\naws_access_key_id = AKIALONGTERM\n").unwrap();
    let link = aws.join("credentials");
    std::os::unix::fs::symlink("../dotfiles/credentials", &link).unwrap();

    let file = CredentialsFile::new(link.clone(), 2);
    assert_eq!(file.target().unwrap(), aws.join("../dotfiles/credentials"));
    assert_eq!(
        file.lock_path().unwrap(),
        aws.join("../dotfiles/credentials.lock")
    );
    file.update(&[set("prod", "aws_session_token", "tok")])
        .unwrap();

    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link survives"
    );
    assert_eq!(
        fs::read_link(&link).unwrap(),
        Path::new("../dotfiles/credentials")
    );
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        "[default]\naws_access_key_id = AKIALONGTERM\n\n[prod]\naws_session_token = tok\n"
    );
    assert!(dotfiles.join("credentials.lock").exists());
    assert!(
        dotfiles.join("credentials.1").exists(),
        "backups sit next to the target"
    );
    assert!(!aws.join("credentials.1").exists() && !aws.join("credentials.lock").exists());
    assert_no_temp_files(&dotfiles);
    // A dangling link: the target is created, the link still kept.
    fs::remove_file(&target).unwrap();
    file.update(&[set("prod", "aws_session_token", "tok2")])
        .unwrap();
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::read_to_string(&link).unwrap(),
        "[prod]\naws_session_token = tok2\n"
    );
}

#[test]
fn a_read_only_file_is_refused_and_left_alone() {
    let content = "[prod]\naws_session_token = old\n";
    let (dir, path) = setup(Some(content));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
    let file = CredentialsFile::new(path.clone(), 2);
    let err = file
        .update(&[set("prod", "aws_session_token", "NEWTOKEN")])
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::ReadOnly { .. }), "{err:?}");
    assert_eq!(err.retry_class(), RetryClass::NeedsUser);
    let message = err.to_string();
    assert!(
        message.starts_with(&path.display().to_string()),
        "{message}"
    );
    assert!(
        message.contains("read-only (mode 0444)") && message.contains("chmod 600"),
        "{message}"
    );
    assert!(message.contains("needs to own it"), "{message}");
    assert_eq!(fs::read_to_string(&path).unwrap(), content);
    assert_eq!(mode(&path), 0o444);
    assert!(!dir.path().join("credentials.1").exists());
    assert_no_temp_files(dir.path());
}

#[test]
fn a_duplicated_owned_section_is_refused_and_left_alone() {
    let content = "[prod]\naws_session_token = OLDSECRET1\n\n[other]\nx = 1\n\n[prod]\naws_access_key_id = ASIAOLD\n";
    let (dir, path) = setup(Some(content));
    let file = CredentialsFile::new(path.clone(), 2);
    let err = file
        .update(&[
            set("other", "y", "2"),
            set("prod", "aws_session_token", "NEWSECRET2"),
        ])
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::DuplicateSection { .. }),
        "{err:?}"
    );
    assert_eq!(err.retry_class(), RetryClass::NeedsUser);
    assert_eq!(
        err.to_string(),
        format!(
            "{} line 7: section [prod] appears again (first at line 1); the AWS CLI cannot \
             parse a file with duplicate sections. Merge or remove one of them.",
            path.display()
        )
    );
    let debug = format!("{err:?}");
    assert!(!debug.contains("SECRET") && !err.to_string().contains("SECRET"));
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        content,
        "not even [other] changed"
    );
    assert!(!dir.path().join("credentials.1").exists());
    assert_no_temp_files(dir.path());
}

#[test]
fn unreadable_inputs_get_clear_errors() {
    // A directory.
    let (dir, path) = setup(None);
    fs::create_dir(&path).unwrap();
    let err = CredentialsFile::new(path.clone(), 2).read().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotAFile { .. }), "{err:?}");
    assert!(err.to_string().contains("is a directory"), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()));
    assert!(
        CredentialsFile::new(path.clone(), 2)
            .update(&[set("p", "k", "v")])
            .is_err()
    );
    fs::remove_dir(&path).unwrap();

    // Not UTF-8: the line is named.
    fs::write(&path, b"[p]\nk = v\nbad = \xff\xfe\n").unwrap();
    let err = CredentialsFile::new(path.clone(), 2).read().unwrap_err();
    assert!(
        err.line() == Some(3) && matches!(err.kind(), ErrorKind::NotUtf8),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("line 3: the file is not valid UTF-8"),
        "{err}"
    );
    assert_eq!(err.retry_class(), RetryClass::NeedsUser);

    // Too large (a sparse file: no 17 MiB written).
    let big = fs::File::create(&path).unwrap();
    big.set_len(17 * 1024 * 1024).unwrap();
    let err = CredentialsFile::new(path.clone(), 2).read().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::TooLarge { .. }), "{err:?}");
    assert_eq!(err.retry_class(), RetryClass::NeedsUser);
    assert_no_temp_files(dir.path());
}

#[test]
fn invalid_edits_are_refused_before_touching_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir/credentials");
    let file = CredentialsFile::new(path.clone(), 2);
    let err = file.update(&[set("DEFAULT", "k", "v")]).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidSection { .. }));
    assert!(!dir.path().join("missing-dir").exists());
}

#[test]
#[allow(clippy::incompatible_msrv)] // File::lock: see src/credentials/file.rs
fn an_update_waits_for_the_lock() {
    let (_dir, path) = setup(Some("[p]\nn = 0\n"));
    let file = CredentialsFile::new(path.clone(), 1);
    let held = fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(file.lock_path().unwrap())
        .unwrap();
    held.lock().unwrap();
    let writer = {
        let file = file.clone();
        std::thread::spawn(move || file.update(&[set("p", "n", "1")]).unwrap())
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !writer.is_finished(),
        "the update did not wait for the lock"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), "[p]\nn = 0\n");
    held.unlock().unwrap();
    assert_eq!(writer.join().unwrap(), WriteOutcome::Written);
    assert_eq!(fs::read_to_string(&path).unwrap(), "[p]\nn = 1\n");
}

/// Two writers (as two daemon instances would be) add 200 keys each to their
/// own section: every key must be there at the end. Without the lock and the
/// re-read under it, one writer's rename would drop the other's keys.
#[test]
fn concurrent_updates_to_different_sections_lose_nothing() {
    const UPDATES: usize = 200;
    let (dir, path) = setup(Some(
        "# shared\n[default]\naws_access_key_id = AKIALONGTERM\n",
    ));
    let start = Arc::new(Barrier::new(2));
    let writers: Vec<_> = ["one", "two"]
        .into_iter()
        .map(|section| {
            let file = CredentialsFile::new(path.clone(), 2);
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                for n in 0..UPDATES {
                    let outcome = file
                        .update(&[set(section, &format!("k{n}"), &format!("{section}-{n}"))])
                        .unwrap();
                    assert_eq!(outcome, WriteOutcome::Written);
                }
            })
        })
        .collect();
    let started = Instant::now();
    for writer in writers {
        writer.join().unwrap();
    }
    eprintln!("{} updates in {:?}", 2 * UPDATES, started.elapsed());
    let doc = Document::parse(&fs::read_to_string(&path).unwrap());
    for section in ["one", "two"] {
        doc.check_section(section).unwrap();
        for n in 0..UPDATES {
            assert_eq!(
                doc.get(section, &format!("k{n}")).unwrap(),
                Some(format!("{section}-{n}").as_str()),
                "[{section}] k{n} was lost"
            );
        }
    }
    assert_eq!(
        doc.get("default", "aws_access_key_id").unwrap(),
        Some("AKIALONGTERM")
    );
    // Which new section comes first depends on which writer won the race.
    let mut sections = doc.section_names();
    assert_eq!(sections.remove(0), "default");
    sections.sort();
    assert_eq!(sections, ["one", "two"]);
    assert_no_temp_files(dir.path());
}

const WORKER_ENV: &str = "CREDENTIALS_TEST_WORKER";

/// Not a test on its own: the body of one writer process for
/// `concurrent_processes_lose_nothing` (does nothing unless started by it).
#[test]
fn worker_process() {
    let Ok(job) = std::env::var(WORKER_ENV) else {
        return;
    };
    let mut parts = job.splitn(3, '|');
    let (path, section, updates) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap().parse::<usize>().unwrap(),
    );
    let file = CredentialsFile::new(PathBuf::from(path), 1);
    // Start together: wait for the parent's go file.
    let go = PathBuf::from(format!("{path}.go"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !go.exists() {
        assert!(Instant::now() < deadline, "no go file");
        std::thread::sleep(Duration::from_millis(1));
    }
    for n in 0..updates {
        file.update(&[set(section, &format!("k{n}"), &n.to_string())])
            .unwrap();
    }
}

/// The same as the threads above, with two processes, as two daemon
/// instances (one per section under the systemd template) would run.
#[test]
fn concurrent_processes_lose_nothing() {
    const UPDATES: usize = 200;
    let (dir, path) = setup(Some("[default]\naws_access_key_id = AKIALONGTERM\n"));
    let children: Vec<_> = ["one", "two"]
        .into_iter()
        .map(|section| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "worker_process", "--quiet", "--test-threads=1"])
                .env(
                    WORKER_ENV,
                    format!("{}|{section}|{UPDATES}", path.display()),
                )
                // Only the exit status matters: keep the worker's report quiet.
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let go = PathBuf::from(format!("{}.go", path.display()));
    std::thread::sleep(Duration::from_millis(200));
    fs::write(&go, "").unwrap();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a writer process failed");
    }
    fs::remove_file(&go).unwrap();
    let doc = Document::parse(&fs::read_to_string(&path).unwrap());
    for section in ["one", "two"] {
        for n in 0..UPDATES {
            assert_eq!(
                doc.get(section, &format!("k{n}")).unwrap(),
                Some(n.to_string().as_str()),
                "[{section}] k{n} was lost"
            );
        }
    }
    assert_no_temp_files(dir.path());
}
