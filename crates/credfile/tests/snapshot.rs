//! One read per pass: an update that starts from the snapshot the caller
//! read does not read the file again while its metadata proves it
//! unchanged, and hands back the snapshot of what it wrote; a file changed
//! since is read again, and the change kept. Reads are counted from the
//! editor's debug log ("read N bytes of PATH (why)").

use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use credfile::{CredentialsFile, Edit, WriteOutcome};

/// The debug lines logged while `f` runs on this thread.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    // Callsites first hit by another test's thread, with no subscriber of
    // its own, may have cached "never" (seen once on a fresh Debian 13):
    // ask them again now that this thread has one.
    let result = tracing::subscriber::with_default(subscriber, || {
        tracing::callsite::rebuild_interest_cache();
        f()
    });
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    (result, text)
}

fn reads(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("read ") && l.contains(" bytes of "))
        .collect()
}

fn age(path: &std::path::Path) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
}

fn refresh(value: &str) -> Vec<Edit> {
    vec![
        Edit::set("daemon", "aws_session_token", value.to_string().into()),
        Edit::set(
            "daemon",
            "x_expires",
            "2026-11-25T16:05:00Z".to_string().into(),
        ),
    ]
}

#[test]
fn an_update_from_an_unchanged_snapshot_reads_the_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credentials");
    let user = "[default]\naws_access_key_id = AKIAEXAMPLE\n\n";
    std::fs::write(&path, format!("{user}[daemon]\naws_session_token = old\n")).unwrap();
    age(&path);
    let file = CredentialsFile::new(path.clone(), 2);
    let ((snapshot, written), log) = logged(|| {
        let snapshot = file.read_snapshot().unwrap();
        let written = file.update_from(&snapshot, &refresh("new")).unwrap();
        (snapshot, written)
    });
    let reads = reads(&log);
    assert_eq!(reads.len(), 1, "{log}");
    assert!(reads[0].contains("(observe)"), "{log}");
    assert!(!log.contains("replaced-file check"), "{log}");
    assert_eq!(written.outcome, WriteOutcome::Written);
    // The snapshot handed back is what is on disk, unread.
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(written.snapshot.hash(), credfile::stable_hash(&on_disk));
    assert_eq!(written.snapshot.document().render().as_bytes(), on_disk);
    assert_ne!(written.snapshot.hash(), snapshot.hash());
    assert!(file.unchanged_since(&written.snapshot.version()));
    assert!(!file.unchanged_since(&snapshot.version()));
    assert!(written.snapshot.is_private());

    // Nothing to change: the same snapshot back, no write, no read.
    let ((again, unchanged_written), log) = logged(|| {
        let again = written.snapshot.clone();
        let result = file.update_from(&again, &refresh("new")).unwrap();
        (again, result)
    });
    assert_eq!(unchanged_written.outcome, WriteOutcome::Unchanged);
    assert_eq!(unchanged_written.snapshot.hash(), again.hash());
    // Just written: whether the stamp proves it depends on the clock's
    // tick; at most the one locked re-read.
    assert!(self::reads(&log).len() <= 1, "{log}");
}

#[test]
fn a_file_changed_since_the_snapshot_is_read_again_and_the_change_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credentials");
    std::fs::write(&path, "[daemon]\naws_session_token = old\n").unwrap();
    age(&path);
    let file = CredentialsFile::new(path.clone(), 2);
    let snapshot = file.read_snapshot().unwrap();
    // Another program (no lock) adds a profile.
    std::fs::write(
        &path,
        "[daemon]\naws_session_token = old\n\n[user]\nregion = eu-west-1\n",
    )
    .unwrap();
    assert!(!file.unchanged_since(&snapshot.version()));
    let (written, log) = logged(|| file.update_from(&snapshot, &refresh("new")).unwrap());
    assert!(log.contains("(locked re-read)"), "{log}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("[user]\nregion = eu-west-1"), "{text}");
    assert!(text.contains("aws_session_token = new"), "{text}");
    assert_eq!(written.snapshot.document().render(), text);
}

#[test]
fn make_private_chmods_the_inode_read_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("real");
    std::fs::write(&target, "[p]\nk = v\n").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = dir.path().join("credentials");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let file = CredentialsFile::new(link.clone(), 1);
    let snapshot = file.read_snapshot().unwrap();
    assert!(!snapshot.is_private());
    assert_eq!(snapshot.mode(), Some(0o644));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    // Another file put in place meanwhile is not the one read: left alone.
    let other = dir.path().join("other");
    std::fs::write(&other, "[p]\nk = w\n").unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o644)).unwrap();
    let saved = dir.path().join("saved");
    std::fs::rename(&target, &saved).unwrap();
    std::fs::rename(&other, &target).unwrap();
    assert!(!file.make_private(&snapshot).unwrap());
    assert_eq!(mode(&target), 0o644);
    std::fs::rename(&target, &other).unwrap();
    std::fs::rename(&saved, &target).unwrap();

    // A link planted where the target was is not followed.
    let planted = dir.path().join("planted");
    std::fs::write(&planted, "x").unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::rename(&target, &saved).unwrap();
    std::os::unix::fs::symlink(&planted, &target).unwrap();
    assert!(file.make_private(&snapshot).is_err() || mode(&planted) == 0o644);
    assert_eq!(mode(&planted), 0o644);
    std::fs::remove_file(&target).unwrap();
    std::fs::rename(&saved, &target).unwrap();

    // The file read, through the link: 0600 now, once.
    assert!(file.make_private(&snapshot).unwrap());
    assert_eq!(mode(&target), 0o600);
    assert!(!file.make_private(&file.read_snapshot().unwrap()).unwrap());
}
