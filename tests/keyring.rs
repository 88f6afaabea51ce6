//! Long-term keys and the OATH applet password in a real Secret Service:
//! GNOME Keyring's daemon on a private session bus (tests/support/
//! secret_service.rs), driven through the real binary (`keyring set`,
//! `import`, `list`, `delete`, `set-oath-password`) and through the
//! library calls the daemon makes (`key_id`, `long_term_secret`, the
//! unlock watcher). After each test that stores a secret, no file under
//! the test's HOME or runtime directory may hold it: GNOME Keyring's own
//! file is encrypted.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/secret_service.rs"]
mod secret_service;
#[path = "support/tools.rs"]
mod tools;

#[path = "support/moto.rs"]
mod moto;
#[path = "support/plan_log.rs"]
mod plan_log;

use std::io::{Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_session_daemon::keyring::{Keyring, KeyringError, UnlockEvents, UnlockPrompt};
use aws_session_daemon::retry::{Classified, RetryClass};
use aws_session_daemon::secret::{ExposeSecret, SecretString};
use moto::Moto;
use secret_service::{SecretServiceRig, files_containing};

const BIN: &str = env!("CARGO_BIN_EXE_aws-session-daemon");
const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const MASKED: &str = "AKIA…MPLE";
/// Distinct from every other test's, so that a find is this test's leak.
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYKeyringSet1";

/// Runs the binary in the rig's session with `input` on standard input,
/// killed (and the test failed) if it takes more than a minute.
fn run(rig: &SecretServiceRig, args: &[&str], input: &str) -> Output {
    let mut command = Command::new(BIN);
    command.args(args);
    rig.env(&mut command);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run aws-session-daemon");
    // The program may refuse (and exit) before it reads its input.
    match child.stdin.take().unwrap().write_all(input.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    output_within(child, Duration::from_secs(60))
}

fn output_within(mut child: Child, limit: Duration) -> Output {
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        bytes
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("aws-session-daemon did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
}

#[track_caller]
fn assert_failure_says(output: &Output, expected: &str) {
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in: {stderr}"
    );
}

/// No file under the test's HOME (the credentials file, its backups, the
/// keyring files) or runtime directory holds `secret`.
#[track_caller]
fn assert_in_no_file(rig: &SecretServiceRig, secret: &str) {
    for dir in [rig.home(), rig.runtime_dir()] {
        let found = files_containing(&dir, secret);
        assert!(found.is_empty(), "the secret is in {found:?}");
    }
}

/// `events.unlocked()` on `runtime`, for at most `limit`.
fn wait_unlocked(
    runtime: &tokio::runtime::Runtime,
    events: &mut UnlockEvents,
    limit: Duration,
) -> Result<Result<(), KeyringError>, tokio::time::error::Elapsed> {
    runtime.block_on(async { tokio::time::timeout(limit, events.unlocked()).await })
}

/// Unlocks the collection 200 ms from now, from another thread, and
/// asserts that the watcher sees it.
fn unlock_later_is_seen(
    rig: &SecretServiceRig,
    runtime: &tokio::runtime::Runtime,
    events: &mut UnlockEvents,
) {
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            rig.unlock();
        });
        let fired = wait_unlocked(runtime, events, Duration::from_secs(10));
        assert!(matches!(fired, Ok(Ok(()))), "{fired:?}");
    });
}

#[test]
fn set_list_read_replace_delete() {
    let rig = SecretServiceRig::start();
    let keyring = Keyring::at(&rig.address);
    let section = ["--credentials-section", "prod"];

    let out = run(
        &rig,
        &["keyring", "set", section[0], section[1]],
        &format!("{KEY_ID}\n{SECRET}\n"),
    );
    assert_success(&out);
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(said.contains(MASKED), "{said}");
    assert!(!said.contains(SECRET) && !said.contains(KEY_ID), "{said}");

    // What the daemon reads: the key id from the attributes, the secret.
    assert_eq!(keyring.key_id("prod").unwrap().as_deref(), Some(KEY_ID));
    assert_eq!(
        keyring.long_term_secret("prod").unwrap().expose_secret(),
        SECRET
    );
    assert_eq!(keyring.key_id("staging").unwrap(), None);
    let missing = keyring.long_term_secret("staging").unwrap_err();
    assert!(
        matches!(&missing, KeyringError::NotFound { section } if section == "staging"),
        "{missing}"
    );
    assert!(
        missing
            .to_string()
            .contains("keyring set --credentials-section staging")
    );
    assert_eq!(missing.retry_class(), RetryClass::NeedsUser);

    let out = run(&rig, &["keyring", "list"], "");
    assert_success(&out);
    let listed = text(&out.stdout);
    assert!(
        listed.contains("prod") && listed.contains(MASKED),
        "{listed}"
    );
    assert!(
        !listed.contains(KEY_ID) && !listed.contains(SECRET),
        "{listed}"
    );

    // A new key for the same section replaces the old one.
    let new_id = "AKIAI44QH8DHBEXAMPLE";
    let new_secret = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbKeyringSet2";
    let out = run(
        &rig,
        &["keyring", "set", section[0], section[1]],
        &format!("{new_id}\n{new_secret}\n"),
    );
    assert_success(&out);
    assert_eq!(keyring.key_id("prod").unwrap().as_deref(), Some(new_id));
    assert_eq!(
        keyring.long_term_secret("prod").unwrap().expose_secret(),
        new_secret
    );
    let listing = keyring.list().unwrap();
    assert_eq!(listing.keys.len(), 1, "{listing:?}");
    assert!(!listing.oath_password);

    let out = run(&rig, &["keyring", "delete", section[0], section[1]], "");
    assert_success(&out);
    assert_eq!(keyring.key_id("prod").unwrap(), None);
    let out = run(&rig, &["keyring", "delete", section[0], section[1]], "");
    assert_failure_says(&out, "no long-term keys for credentials section [prod]");

    assert_in_no_file(&rig, SECRET);
    assert_in_no_file(&rig, new_secret);
}

#[test]
fn set_refuses_what_is_not_a_long_term_key() {
    let rig = SecretServiceRig::start();
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYKeyringBad1";
    let cases = [
        (
            format!("ASIAIOSFODNN7EXAMPLE\n{secret}\n"),
            "is a temporary (session) key",
        ),
        (
            format!("akiaiosfodnn7example\n{secret}\n"),
            "is not a long-term access key id",
        ),
        (format!("AKIA0123\n{secret}\n"), "16 to 128 characters"),
        (format!("{KEY_ID}\n"), "standard input is too short"),
        (format!("{KEY_ID}\n{secret}\nmore\n"), "more than two lines"),
        (format!("{KEY_ID}\nwith space\n"), "contains spaces"),
        (String::new(), "standard input is too short"),
    ];
    for (input, expected) in &cases {
        let out = run(
            &rig,
            &["keyring", "set", "--credentials-section", "prod"],
            input,
        );
        assert_failure_says(&out, expected);
        assert!(!text(&out.stderr).contains(secret));
    }
    let out = run(&rig, &["keyring", "set"], &format!("{KEY_ID}\n{secret}\n"));
    assert_failure_says(&out, "--credentials-section NAME");
    // The flags for inline keys are refused, not silently ignored (and the
    // secret is not repeated in the error).
    let out = run(
        &rig,
        &[
            "keyring",
            "set",
            "--credentials-section",
            "prod",
            "--secret-access-key",
            secret,
        ],
        &format!("{KEY_ID}\n{secret}\n"),
    );
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("unexpected argument '--secret-access-key'") && !stderr.contains(secret),
        "{stderr}"
    );
    let listing = Keyring::at(&rig.address).list().unwrap();
    assert!(listing.keys.is_empty(), "{listing:?}");
}

#[test]
fn import_with_remove_from_file_leaves_the_secret_in_no_file() {
    let rig = SecretServiceRig::start();
    let keyring = Keyring::at(&rig.address);
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYKeyringImp1";
    let other_secret = "otherSecretStaysInTheFileKeyringImport01";
    let aws = rig.home().join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    let file = aws.join("credentials");
    let original = format!(
        "# my keys\n[prod]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {secret}\nregion = eu-west-1\n\n\
         [other]\naws_access_key_id = AKIAOTHEROTHEREXAMPL\naws_secret_access_key = {other_secret}\n"
    );
    std::fs::write(&file, &original).unwrap();
    // Older backups, as the daemon's writes leave them: they hold the keys too.
    std::fs::write(aws.join("credentials.1"), &original).unwrap();
    std::fs::write(aws.join("credentials.2"), "[prod]\nregion = eu-west-1\n").unwrap();

    let section = ["--credentials-section", "prod"];
    let out = run(&rig, &["keyring", "import", section[0], section[1]], "");
    assert_success(&out);
    assert!(
        text(&out.stdout).contains("--remove-from-file"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), original);
    assert_eq!(
        keyring.long_term_secret("prod").unwrap().expose_secret(),
        secret
    );

    let out = run(
        &rig,
        &[
            "keyring",
            "import",
            section[0],
            section[1],
            "--remove-from-file",
        ],
        "",
    );
    assert_success(&out);
    let said = text(&out.stdout);
    assert!(
        said.contains("Removed aws_access_key_id and aws_secret_access_key from [prod]"),
        "{said}"
    );
    assert!(!said.contains(secret) && !text(&out.stderr).contains(secret));

    let after = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        after,
        format!(
            "# my keys\n[prod]\nregion = eu-west-1\n\n\
             [other]\naws_access_key_id = AKIAOTHEROTHEREXAMPL\naws_secret_access_key = {other_secret}\n"
        )
    );
    // The write made a backup (the file before the removal), without the keys.
    let backup = std::fs::read_to_string(aws.join("credentials.1")).unwrap();
    assert!(
        backup.contains("region = eu-west-1") && backup.contains(other_secret),
        "{backup}"
    );
    assert!(!backup.contains(KEY_ID), "{backup}");
    assert!(
        aws.join("credentials.3").exists(),
        "the older backups rotated"
    );

    assert_eq!(keyring.key_id("prod").unwrap().as_deref(), Some(KEY_ID));
    assert_eq!(
        keyring.long_term_secret("prod").unwrap().expose_secret(),
        secret
    );
    assert!(
        std::fs::read_dir(rig.keyrings_dir()).unwrap().count() > 0,
        "GNOME Keyring keeps its file under XDG_DATA_HOME"
    );
    assert_in_no_file(&rig, secret);

    // Nothing left to import now.
    let out = run(&rig, &["keyring", "import", section[0], section[1]], "");
    assert_failure_says(&out, "[prod] in");
    assert_failure_says(&out, "has no aws_access_key_id");
}

/// The versions of the file that held the keys are overwritten in place
/// before they are replaced or removed (read here through descriptors kept
/// open across the import: an unlinked file's blocks are what the file
/// system's free space keeps), and other files next to it that hold the
/// secret (an editor's backup, a copy) are named, not silently left.
#[test]
fn import_with_remove_from_file_overwrites_old_versions_and_names_other_copies() {
    let rig = SecretServiceRig::start();
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYKeyringWip1";
    let aws = rig.home().join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    let file = aws.join("credentials");
    let with_keys =
        format!("[prod]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {secret}\n");
    std::fs::write(&file, &with_keys).unwrap();
    // Five backups (the default count) hold the keys: the oldest is rotated
    // out by the import's write.
    for n in 1..=5 {
        std::fs::write(aws.join(format!("credentials.{n}")), &with_keys).unwrap();
    }
    let copies = ["credentials.bak", "credentials~", ".credentials.swp"];
    for copy in copies {
        std::fs::write(aws.join(copy), &with_keys).unwrap();
    }
    let kept: Vec<(String, std::fs::File)> = ["credentials", "credentials.1", "credentials.5"]
        .iter()
        .map(|name| {
            (
                name.to_string(),
                std::fs::File::open(aws.join(name)).unwrap(),
            )
        })
        .collect();

    let out = run(
        &rig,
        &[
            "keyring",
            "import",
            "--credentials-section",
            "prod",
            "--remove-from-file",
        ],
        "",
    );
    assert_success(&out);
    for (name, mut old) in kept {
        use std::io::{Read, Seek};
        let mut bytes = Vec::new();
        old.rewind().unwrap();
        old.read_to_end(&mut bytes).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "the version of {name} read before the import still holds the secret in its blocks"
        );
    }
    let warnings = text(&out.stderr);
    for copy in copies {
        assert!(
            warnings.contains(&format!("{}", aws.join(copy).display())),
            "{copy} not named: {warnings}"
        );
        // Not the daemon's file: left as it is, for the user to delete.
        assert!(
            std::fs::read_to_string(aws.join(copy))
                .unwrap()
                .contains(secret)
        );
    }
    assert!(!warnings.contains(secret), "{warnings}");
    for n in 1..=5 {
        let backup = std::fs::read_to_string(aws.join(format!("credentials.{n}"))).unwrap();
        assert!(!backup.contains(secret), "credentials.{n}: {backup}");
    }
    assert!(!std::fs::read_to_string(&file).unwrap().contains(secret));
}

#[test]
fn import_refuses_temporary_keys() {
    let rig = SecretServiceRig::start();
    let aws = rig.home().join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    let file = aws.join("credentials");
    let content = "[session]\naws_access_key_id = ASIAIOSFODNN7EXAMPLE\naws_secret_access_key = tempSecretKeyringImport2\naws_session_token = token\n";
    std::fs::write(&file, content).unwrap();
    let out = run(
        &rig,
        &[
            "keyring",
            "import",
            "--credentials-section",
            "session",
            "--remove-from-file",
        ],
        "",
    );
    assert_failure_says(&out, "temporary (session) key");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), content);
    assert!(Keyring::at(&rig.address).list().unwrap().keys.is_empty());
}

#[test]
fn a_locked_collection_answers_at_once_and_its_unlock_is_seen() {
    let rig = SecretServiceRig::start();
    let keyring = Keyring::at(&rig.address);
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYKeyringLck1";
    keyring
        .store_long_term("prod", KEY_ID, &SecretString::from(secret))
        .unwrap();
    rig.lock();

    // The daemon's read asks for the unlock and returns; headless, GNOME
    // Keyring's prompt finds no prompter and is dismissed.
    let start = Instant::now();
    let error = keyring.long_term_secret("prod").unwrap_err();
    assert!(error.is_locked(), "{error}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(
        error
            .to_string()
            .contains("the keyring holding the long-term keys of [prod] is locked"),
        "{error}"
    );
    let again = keyring.long_term_secret("prod").unwrap_err();
    assert!(
        matches!(
            again,
            KeyringError::Locked {
                prompt: UnlockPrompt::Shown | UnlockPrompt::Dismissed,
                ..
            }
        ),
        "{again:?}"
    );
    // This daemon saw the attributes unlocked: the key id still reads.
    assert_eq!(keyring.key_id("prod").unwrap().as_deref(), Some(KEY_ID));
    // Nothing found in a locked collection proves nothing (KeePassXC shows
    // no items of a locked database): locked, not "not found".
    assert!(keyring.key_id("staging").unwrap_err().is_locked());
    assert!(keyring.long_term_secret("staging").unwrap_err().is_locked());

    // A command waits for the prompt, which ends at once here.
    let out = run(
        &rig,
        &["keyring", "set", "--credentials-section", "prod"],
        &format!("{KEY_ID}\n{secret}\n"),
    );
    assert_failure_says(&out, "is locked");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut events = runtime.block_on(keyring.watch_unlock()).unwrap();
    let early = wait_unlocked(&runtime, &mut events, Duration::from_millis(500));
    assert!(early.is_err(), "the watcher fired while locked: {early:?}");
    unlock_later_is_seen(&rig, &runtime, &mut events);
    assert!(!rig.collection_locked());
    assert_eq!(
        keyring.long_term_secret("prod").unwrap().expose_secret(),
        secret
    );
    // While unlocked it resolves at once.
    let now = wait_unlocked(&runtime, &mut events, Duration::from_secs(2));
    assert!(matches!(now, Ok(Ok(()))), "{now:?}");

    // Locked again: the lock is seen as not unlocked, the next unlock fires.
    rig.lock();
    let early = wait_unlocked(&runtime, &mut events, Duration::from_millis(300));
    assert!(early.is_err(), "{early:?}");
    drop(events);
    assert_in_no_file(&rig, secret);
}

#[test]
fn a_watcher_kept_between_waits_does_not_stall() {
    let rig = SecretServiceRig::start();
    let keyring = Keyring::at(&rig.address);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut events = runtime.block_on(keyring.watch_unlock()).unwrap();
    // Far more signals than the watcher queues, while nobody waits.
    for _ in 0..60 {
        rig.lock();
        rig.unlock();
    }
    let now = wait_unlocked(&runtime, &mut events, Duration::from_secs(5));
    assert!(matches!(now, Ok(Ok(()))), "{now:?}");
    rig.lock();
    let early = wait_unlocked(&runtime, &mut events, Duration::from_millis(300));
    assert!(early.is_err(), "{early:?}");
    unlock_later_is_seen(&rig, &runtime, &mut events);
}

#[test]
fn after_a_restart_the_key_id_waits_for_the_unlock() {
    let mut rig = SecretServiceRig::start();
    let keyring = Keyring::at(&rig.address);
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYKeyringRst1";
    keyring
        .store_long_term("prod", KEY_ID, &SecretString::from(secret))
        .unwrap();

    // After boot, before the login: GNOME Keyring shows only hashed
    // attributes, so not even the key id can be read.
    rig.restart_locked();
    assert!(rig.collection_locked());
    let error = keyring.key_id("prod").unwrap_err();
    assert!(
        matches!(
            error,
            KeyringError::Locked {
                prompt: UnlockPrompt::NotAsked,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(keyring.long_term_secret("prod").unwrap_err().is_locked());
    // An unlock request answers at once, without waiting on the prompt
    // (the daemon makes it when the key ids are locked away: see
    // `after_a_restart_run_asks_for_the_unlock_and_refreshes_when_unlocked`).
    let start = Instant::now();
    let asked = keyring.request_unlock().unwrap_err();
    assert!(asked.is_locked(), "{asked}");
    assert!(start.elapsed() < Duration::from_secs(8));
    let out = run(&rig, &["keyring", "list"], "");
    assert_failure_says(&out, "is locked");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut events = runtime.block_on(keyring.watch_unlock()).unwrap();
    unlock_later_is_seen(&rig, &runtime, &mut events);
    assert_eq!(keyring.key_id("prod").unwrap().as_deref(), Some(KEY_ID));
    drop(events);

    // The service leaves and comes back unlocked (a login): seen too.
    rig.stop_keyring();
    let mut events = runtime.block_on(keyring.watch_unlock()).unwrap();
    let early = wait_unlocked(&runtime, &mut events, Duration::from_millis(300));
    assert!(early.is_err(), "{early:?}");
    std::thread::scope(|scope| {
        let fired = scope.spawn(|| wait_unlocked(&runtime, &mut events, Duration::from_secs(20)));
        std::thread::sleep(Duration::from_millis(200));
        rig.start_keyring(true);
        let fired = fired.join().unwrap();
        assert!(matches!(fired, Ok(Ok(()))), "{fired:?}");
    });
    assert_eq!(
        keyring.long_term_secret("prod").unwrap().expose_secret(),
        secret
    );
    assert_in_no_file(&rig, secret);
}

#[test]
fn without_a_secret_service_the_error_names_the_fix() {
    let rig = SecretServiceRig::bus_only();
    let out = run(&rig, &["keyring", "list"], "");
    assert_failure_says(&out, "no Secret Service on the session bus");
    assert_failure_says(&out, "gnome-keyring-daemon");
    assert_failure_says(&out, "long_term_keys = \"file\"");

    let error = Keyring::at(&rig.address).key_id("prod").unwrap_err();
    assert!(matches!(error, KeyringError::NoService { .. }), "{error:?}");
    assert_eq!(error.retry_class(), RetryClass::NeedsUser);
    let error = Keyring::at(&rig.address)
        .long_term_secret("prod")
        .unwrap_err();
    assert!(matches!(error, KeyringError::NoService { .. }), "{error:?}");

    // No session bus at all: neither the variable nor $XDG_RUNTIME_DIR/bus.
    let mut command = Command::new(BIN);
    command.args(["keyring", "list"]);
    rig.env(&mut command);
    command.env_remove("DBUS_SESSION_BUS_ADDRESS");
    let out = output_within(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(30),
    );
    assert_failure_says(&out, "no session bus");
    assert_failure_says(&out, "long_term_keys = \"file\"");
}

#[test]
fn the_oath_password_round_trips() {
    let rig = SecretServiceRig::start();
    let keyring = Keyring::at(&rig.address);
    let password = "oath pass KeyringOath1";
    assert!(matches!(
        keyring.oath_password(),
        Err(KeyringError::OathPasswordNotFound)
    ));
    let out = run(
        &rig,
        &["keyring", "set-oath-password"],
        &format!("{password}\n"),
    );
    assert_success(&out);
    assert!(!text(&out.stdout).contains(password));
    assert_eq!(keyring.oath_password().unwrap().expose_secret(), password);
    let out = run(&rig, &["keyring", "list"], "");
    assert_success(&out);
    assert!(text(&out.stdout).contains("The OATH applet password is stored."));
    assert!(keyring.list().unwrap().keys.is_empty());

    let out = run(&rig, &["keyring", "set-oath-password"], "\n");
    assert_failure_says(&out, "holds no password");
    assert_eq!(keyring.oath_password().unwrap().expose_secret(), password);

    let out = run(&rig, &["keyring", "delete-oath-password"], "");
    assert_success(&out);
    assert!(matches!(
        keyring.oath_password(),
        Err(KeyringError::OathPasswordNotFound)
    ));
    assert_in_no_file(&rig, password);
}

/// A terminal, through util-linux's `script` (a real pseudo-terminal): the
/// key id is echoed, the secret is not, and Ctrl-C at the secret prompt
/// cancels.
struct Terminal {
    child: Child,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    fn start(rig: &SecretServiceRig, args: &str) -> Terminal {
        let mut command = Command::new("script");
        command.args([
            "--quiet",
            "--return",
            "--command",
            &format!("{BIN} {args}"),
            "/dev/null",
        ]);
        rig.env(&mut command);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run script (util-linux)");
        let screen = Arc::new(Mutex::new(Vec::new()));
        let mut stdout = child.stdout.take().unwrap();
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 1024];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        Terminal { child, screen }
    }

    fn screen(&self) -> String {
        text(&self.screen.lock().unwrap())
    }

    fn wait_for(&self, prompt: &str) {
        let start = Instant::now();
        while !self.screen().contains(prompt) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no {prompt:?} on the terminal: {}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_text(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn finish(mut self) -> (Option<i32>, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                panic!("the terminal session did not end: {}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(100));
        (status.code(), self.screen())
    }
}

#[test]
fn at_a_terminal_the_secret_is_not_echoed() {
    let rig = SecretServiceRig::start();
    let keyring = Keyring::at(&rig.address);
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYKeyringTty1";

    let mut tty = Terminal::start(&rig, "keyring set --credentials-section prod");
    tty.wait_for("AWS access key id: ");
    tty.type_text(&format!("{KEY_ID}\n"));
    tty.wait_for("AWS secret access key (not shown): ");
    tty.type_text(&format!("{secret}\r"));
    let (code, screen) = tty.finish();
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains(KEY_ID), "the key id is echoed: {screen}");
    assert!(!screen.contains(secret), "the secret was echoed: {screen}");
    assert!(screen.contains(MASKED), "{screen}");
    assert_eq!(
        keyring.long_term_secret("prod").unwrap().expose_secret(),
        secret
    );

    // Ctrl-C at the secret prompt cancels, and nothing changes.
    let mut tty = Terminal::start(&rig, "keyring set --credentials-section staging");
    tty.wait_for("AWS access key id: ");
    tty.type_text(&format!("{KEY_ID}\n"));
    tty.wait_for("AWS secret access key (not shown): ");
    tty.type_text("half\x03");
    let (code, screen) = tty.finish();
    assert_eq!(code, Some(1), "{screen}");
    assert!(screen.contains("cancelled"), "{screen}");
    assert_eq!(keyring.key_id("staging").unwrap(), None);

    // The OATH password is asked twice.
    let mut tty = Terminal::start(&rig, "keyring set-oath-password");
    tty.wait_for("OATH applet password (not shown): ");
    tty.type_text("typed pw\n");
    tty.wait_for("Again, to check: ");
    tty.type_text("typed pw\n");
    let (code, screen) = tty.finish();
    assert_eq!(code, Some(0), "{screen}");
    assert!(!screen.contains("typed pw"), "{screen}");
    assert_eq!(keyring.oath_password().unwrap().expose_secret(), "typed pw");
    assert_in_no_file(&rig, secret);
}

/// The daemon with `long_term_keys = "keyring"`: the keys live only in the
/// keyring (the credentials file has no [work] section at all); `apply`
/// against moto writes working role sessions, and the long-term secret is
/// in no file under HOME or the runtime directory. Locked, `run` waits for
/// the unlock (no code, no call) and refreshes when it comes.
/// The keyring holds `secret` for [work]; the config's one section [prod]
/// takes its keys from there, its code from `mfa_process`, and calls moto.
/// Returns the credentials file, which holds no long-term key.
fn keyring_home(rig: &SecretServiceRig, moto: &Moto, secret: &str) -> std::path::PathBuf {
    let output = run(
        rig,
        &["keyring", "set", "--credentials-section", "work"],
        &format!("{KEY_ID}\n{secret}\n"),
    );
    assert_success(&output);
    let aws = rig.home().join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(aws.join("credentials"), "# nothing long-term here\n").unwrap();
    let config_dir = rig.home().join(".config/aws-session-daemon");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.toml"),
        format!(
            "mfa_serial_number = \"arn:aws:iam::123456789012:mfa/me\"\nmfa_process = \"echo 123456\"\nsts_endpoint = \"{}\"\nregion = \"us-east-1\"\nlong_term_keys = \"keyring\"\ncredentials_section = \"work\"\n\n[prod]\nassume_role_arn = \"arn:aws:iam::111111111111:role/Admin\"\n",
            moto.url
        ),
    )
    .unwrap();
    aws.join("credentials")
}

/// `run --log-level debug` in the rig's session, its log in a file.
fn spawn_run(rig: &SecretServiceRig) -> (Child, std::path::PathBuf) {
    let mut command = Command::new(BIN);
    command.args(["run", "--log-level", "debug"]);
    rig.env(&mut command);
    let log = rig.home().join("daemon.log");
    let child = command
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    (child, log)
}

/// Waits (at most `limit`) until the file at `path` holds `needle`.
fn wait_for_text(path: &std::path::Path, needle: &str, limit: Duration) -> Option<Duration> {
    daemon::poll_until(Duration::from_millis(50), limit, || {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .contains(needle)
    })
}

#[test]
fn apply_and_run_take_the_long_term_keys_from_the_keyring() {
    let rig = SecretServiceRig::start();
    let moto = Moto::start();
    // moto accepts any key; the keyring's key id is what signs.
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYKeyringApply";
    let credentials_path = keyring_home(&rig, &moto, secret);
    let aws = credentials_path.parent().unwrap().to_path_buf();
    let plan = run(&rig, &["plan"], "");
    assert_success(&plan);
    assert!(
        text(&plan.stdout).contains("keyring"),
        "{}",
        text(&plan.stdout)
    );
    let output = run(&rig, &["apply"], "");
    assert_success(&output);
    let credentials = std::fs::read_to_string(aws.join("credentials")).unwrap();
    assert!(credentials.contains("[prod]"), "{credentials}");
    assert!(!credentials.contains("[work]"));
    assert_in_no_file(&rig, secret);

    // Locked (as after boot): `run` neither spends a code nor calls STS,
    // then refreshes as soon as the keyring is unlocked.
    rig.lock();
    let mut without_prod = credentials[..credentials.find("[prod]").unwrap()].to_string();
    without_prod.push('\n');
    std::fs::write(aws.join("credentials"), &without_prod).unwrap();
    // A new MFA session is needed (the cached one is dropped).
    std::fs::remove_file(
        rig.runtime_dir()
            .join("aws-session-daemon/mfa-sessions.json"),
    )
    .unwrap();
    let (mut child, log) = spawn_run(&rig);
    let waiting = wait_for_text(
        &log,
        "the keyring is locked, and the long-term keys in it are needed",
        Duration::from_secs(20),
    );
    assert!(
        waiting.is_some(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(
        !std::fs::read_to_string(aws.join("credentials"))
            .unwrap()
            .contains("[prod]")
    );
    rig.unlock();
    let refreshed = wait_for_text(&credentials_path, "[prod]", Duration::from_secs(10));
    let Some(refreshed) = refreshed else {
        panic!(
            "not refreshed after the unlock: {}",
            std::fs::read_to_string(&log).unwrap()
        );
    };
    eprintln!("refreshed {refreshed:?} after the unlock");
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("the keyring was unlocked"), "{log}");
    assert!(!log.contains(secret));
    assert_in_no_file(&rig, secret);
}

#[test]
fn after_a_restart_run_asks_for_the_unlock_and_refreshes_when_unlocked() {
    let mut rig = SecretServiceRig::start();
    let moto = Moto::start();
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYKeyringBoot";
    let credentials_path = keyring_home(&rig, &moto, secret);
    // After boot, before the login: only hashed attributes, so not even the
    // key id of [work] can be read, and no section can be planned.
    rig.restart_locked();
    let (mut child, log) = spawn_run(&rig);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    // The daemon asks the service for the unlock (the desktop's prompt;
    // here no prompter exists, so the service dismisses it) and says so.
    let asked = wait_for_text(
        &log,
        "refreshing as soon as it is unlocked",
        Duration::from_secs(20),
    );
    assert!(asked.is_some(), "{}", read_log());
    assert!(read_log().contains("is locked"), "{}", read_log());
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !std::fs::read_to_string(&credentials_path)
            .unwrap()
            .contains("[prod]")
    );
    rig.unlock();
    // Far sooner than the once-a-minute pass: the daemon watched the
    // collection's `Locked` property.
    let refreshed = wait_for_text(&credentials_path, "[prod]", Duration::from_secs(15));
    let _ = child.kill();
    let _ = child.wait();
    let log = read_log();
    assert!(refreshed.is_some(), "not refreshed after the unlock: {log}");
    assert!(log.contains("the keyring was unlocked"), "{log}");
    assert_eq!(
        log.matches("refreshing as soon as it is unlocked").count(),
        1,
        "asked once per locked spell: {log}"
    );
    assert!(!log.contains(secret));
    assert_in_no_file(&rig, secret);
}

/// The commands and the daemon plan from the same observation, also with
/// the keyring locked (its secret unreadable) and locked after a restart
/// (its key ids hidden too): `plan --json` is the plan `run`'s first pass
/// acts on.
#[test]
fn with_the_keyring_locked_plan_json_is_the_plan_run_acts_on() {
    let mut rig = SecretServiceRig::start();
    let moto = Moto::start();
    keyring_home(&rig, &moto, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYKeyringSame");
    let command = |rig: &SecretServiceRig| {
        let mut command = Command::new(BIN);
        rig.env(&mut command);
        command
    };
    for state in ["locked", "locked after a restart"] {
        match state {
            "locked" => rig.lock(),
            _ => rig.restart_locked(),
        }
        let planned = plan_log::without_the_instant(plan_log::plan_json(command(&rig)));
        let acted_on = plan_log::without_the_instant(plan_log::first_pass_plan(command(&rig)));
        assert_eq!(planned, acted_on, "{state}");
        assert_eq!(
            planned["work"]["get_session_token_calls"], 0,
            "{state}: {planned}"
        );
        rig.unlock();
    }
}
