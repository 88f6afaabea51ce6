//! The OATH module through the real PC/SC stack: pcscd with vsmartcard's
//! vpcd driver, and the virtual YubiKey (`examples/virtual_yubikey.rs`)
//! plugged into it over TCP.
//!
//! Needs root (to start or restart pcscd) or a running pcscd with vpcd;
//! never skips: without them every test fails saying what to install.
//! The tests take a file lock on the vpcd readers, so they run one at a
//! time; the whole file takes about 25 s (2-core machine), most of it in
//! the touch delays, the 3.5 s quiet period of the key watcher, and waits
//! for pcscd to notice a card come or go.

#[path = "support/example_bin.rs"]
mod example_bin;
#[path = "support/pcsc.rs"]
mod pcsc_support;
#[path = "support/vcard.rs"]
mod vcard;

use std::ffi::CString;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_session_daemon::oath::{
    self, AppletError, Code, HashAlgorithm, OathErrorKind, OathOptions, OathType, PasswordSource,
    TouchPrompt,
};
use aws_session_daemon::retry::{Classified, RetryClass};
use aws_session_daemon::secret::ExposeSecret;
use pcsc_support::{
    CardConfig, PORT_1, READER_0, READER_1, ReaderLock, VirtualCard, ensure_pcscd, lock_readers,
};
use vcard::{AWS, SHA1_SECRET, SHA256_SECRET, credential, hotp_credential, totp};

fn setup() -> ReaderLock {
    let lock = lock_readers();
    ensure_pcscd();
    lock
}

fn only(reader: &str) -> OathOptions {
    OathOptions {
        reader_filter: Some(reader.to_string()),
        ..OathOptions::default()
    }
}

fn no_touch(p: &TouchPrompt) {
    panic!("unexpected touch prompt {p}");
}

fn aws_card() -> String {
    credential(AWS, "sha1", 6, SHA1_SECRET, false)
}

/// The code must be the TOTP of its own step (the step boundary may pass
/// during the call), and that step must be the one of the time we asked for.
fn assert_code(code: &Code, now: SystemTime, algorithm: &str, secret: &[u8]) {
    let unix = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(code.step, unix / code.period);
    assert_eq!(
        code.value.expose_secret(),
        totp(algorithm, secret, code.step, u32::from(code.digits))
    );
}

#[test]
fn list_shows_every_credential_without_codes() {
    let _lock = setup();
    let creds = [
        aws_card(),
        credential("60/Example:alice", "sha256", 8, SHA256_SECRET, true),
        hotp_credential("Counter:bob"),
    ]
    .concat();
    let _card = VirtualCard::start(CardConfig::new(&creds));
    let listings = oath::list(&OathOptions::default()).unwrap();
    let mine = listings
        .iter()
        .find(|l| l.reader == READER_0)
        .expect("reader 0 listed");
    assert!(!mine.password_protected);
    assert_eq!(mine.problem, None);
    let c = &mine.credentials;
    assert_eq!(c.len(), 3, "{c:?}");
    assert_eq!(
        (
            c[0].name.as_str(),
            c[0].kind,
            c[0].algorithm,
            c[0].digits,
            c[0].period,
            c[0].touch
        ),
        (
            AWS,
            OathType::Totp,
            HashAlgorithm::Sha1,
            Some(6),
            Some(30),
            false
        )
    );
    assert_eq!(
        (
            c[1].kind,
            c[1].algorithm,
            c[1].digits,
            c[1].period,
            c[1].touch
        ),
        (
            OathType::Totp,
            HashAlgorithm::Sha256,
            Some(8),
            Some(60),
            true
        )
    );
    assert_eq!((c[2].kind, c[2].period), (OathType::Hotp, None));
    // The other vpcd reader has no card: listed with its problem.
    let other = listings
        .iter()
        .find(|l| l.reader == READER_1)
        .expect("reader 1 listed");
    assert!(
        other.problem.as_deref().unwrap().contains("no smart card"),
        "{other:?}"
    );
    // The reader filter narrows the search.
    let filtered = oath::list(&only("PCD 00 00")).unwrap();
    assert_eq!(filtered.len(), 1);
}

#[test]
fn code_matches_an_independent_totp() {
    let _lock = setup();
    let creds = [
        aws_card(),
        credential("SHA256:eight", "sha256", 8, SHA256_SECRET, false),
    ]
    .concat();
    let card = VirtualCard::start(CardConfig::new(&creds));
    let now = SystemTime::now();
    let code = oath::calculate(&only(READER_0), AWS, now, &no_touch).unwrap();
    assert_eq!((code.digits, code.period), (6, 30));
    assert_eq!(code.reader, READER_0);
    assert_code(&code, now, "sha1", SHA1_SECRET);
    assert!(!format!("{code:?}").contains(code.value.expose_secret()));

    let code = oath::calculate(&only(READER_0), "SHA256:eight", now, &no_touch).unwrap();
    assert_eq!(code.digits, 8);
    assert_code(&code, now, "sha256", SHA256_SECRET);

    // A time far from now: the challenge is the one asked for, not the clock's.
    let past = UNIX_EPOCH + Duration::from_secs(1111111109);
    let code = oath::calculate(&only(READER_0), AWS, past, &no_touch).unwrap();
    assert_eq!(code.value.expose_secret(), "081804");
    assert_eq!(card.calculations(), 3, "one CALCULATE ALL per 30 s code");
}

#[test]
fn every_reader_is_tried_and_missing_names_are_listed() {
    let _lock = setup();
    let _a = VirtualCard::start(CardConfig::new(&credential(
        "GitHub:me",
        "sha1",
        6,
        SHA1_SECRET,
        false,
    )));
    let _b = VirtualCard::start(CardConfig::new(&aws_card()).port(PORT_1));
    let now = SystemTime::now();
    let code = oath::calculate(&OathOptions::default(), AWS, now, &no_touch).unwrap();
    assert_eq!(code.reader, READER_1);
    assert_code(&code, now, "sha1", SHA1_SECRET);

    let e = oath::calculate(&only("PCD 00 00"), AWS, now, &no_touch).unwrap_err();
    assert!(
        matches!(e.kind(), OathErrorKind::NoSuchCredential { .. }),
        "{e:?}"
    );
    assert_eq!(e.retry_class(), RetryClass::NeedsUser);
    assert!(e.to_string().contains("\"GitHub:me\""), "{e}");

    let e = oath::calculate(&OathOptions::default(), "Nope:x", now, &no_touch).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("\"GitHub:me\"") && text.contains(&format!("{AWS:?}")),
        "{text}"
    );

    let e = oath::calculate(&only("Yubico"), AWS, now, &no_touch).unwrap_err();
    assert!(matches!(e.kind(), OathErrorKind::NoReader { .. }), "{e:?}");
    assert_eq!(e.retry_class(), RetryClass::WaitForKey);
    assert!(e.to_string().contains(READER_0), "{e}");
}

#[test]
fn empty_reader_and_card_without_oath() {
    let _lock = setup();
    let e = oath::calculate(&only(READER_1), AWS, SystemTime::now(), &no_touch).unwrap_err();
    assert!(matches!(e.kind(), OathErrorKind::NoCard { .. }), "{e:?}");
    assert_eq!(e.retry_class(), RetryClass::WaitForKey);

    let _card = VirtualCard::start(CardConfig::new("").arg("--no-oath"));
    let e = oath::calculate(&only(READER_0), AWS, SystemTime::now(), &no_touch).unwrap_err();
    assert!(
        matches!(e.kind(), OathErrorKind::AppletMissing { .. }),
        "{e:?}"
    );
    assert_eq!(e.retry_class(), RetryClass::WaitForKey);
}

#[test]
fn password_protected_applet() {
    let _lock = setup();
    let creds = format!("password = \"hunter2\"\n{}", aws_card());
    let _card = VirtualCard::start(CardConfig::new(&creds));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("oath-password");
    std::fs::write(&file, "hunter2\n").unwrap();
    let opts = |password| OathOptions {
        reader_filter: Some(READER_0.to_string()),
        password,
        ..OathOptions::default()
    };
    let now = SystemTime::now();
    let code =
        oath::calculate(&opts(Some(PasswordSource::File(file))), AWS, now, &no_touch).unwrap();
    assert_code(&code, now, "sha1", SHA1_SECRET);
    let code = oath::calculate(
        &opts(Some(PasswordSource::Command("printf hunter2".into()))),
        AWS,
        now,
        &no_touch,
    )
    .unwrap();
    assert_code(&code, now, "sha1", SHA1_SECRET);

    let wrong = opts(Some(PasswordSource::Command("echo hunter3".into())));
    let e = oath::calculate(&wrong, AWS, now, &no_touch).unwrap_err();
    assert!(matches!(e.kind(), OathErrorKind::WrongPassword), "{e:?}");
    let message = e.to_string();
    assert!(message.contains("wrong OATH password"), "{message}");
    assert!(
        message.contains("oath_password_command `echo hunter3`"),
        "names the source used: {message}"
    );
    assert_eq!(e.retry_class(), RetryClass::NeedsUser);

    let e = oath::calculate(&opts(None), AWS, now, &no_touch).unwrap_err();
    assert!(matches!(e.kind(), OathErrorKind::PasswordRequired), "{e:?}");

    let listing = oath::list(&opts(None)).unwrap();
    assert!(listing[0].password_protected);
    assert!(listing[0].problem.is_some());
}

#[test]
fn touch_is_announced_before_the_key_waits() {
    let _lock = setup();
    let creds = credential("Touch:me", "sha1", 6, SHA1_SECRET, true);
    let _card = VirtualCard::start(CardConfig::new(&creds).arg("--touch-delay-ms").arg("1500"));
    let prompted: Mutex<Option<(Instant, TouchPrompt)>> = Mutex::new(None);
    let now = SystemTime::now();
    let start = Instant::now();
    let code = oath::calculate(&only(READER_0), "Touch:me", now, &|p: &TouchPrompt| {
        *prompted.lock().unwrap() = Some((Instant::now(), p.clone()));
    })
    .unwrap();
    let done = Instant::now();
    assert_code(&code, now, "sha1", SHA1_SECRET);
    let (at, prompt) = prompted
        .lock()
        .unwrap()
        .take()
        .expect("touch prompt emitted");
    assert_eq!(prompt.credential, "Touch:me");
    assert_eq!(prompt.reader, READER_0);
    assert!(
        at - start < Duration::from_millis(1000),
        "prompt came late: {:?}",
        at - start
    );
    assert!(
        done - at >= Duration::from_millis(1400),
        "the key waited only {:?}",
        done - at
    );
}

#[test]
fn touch_timeout_is_retried_later() {
    let _lock = setup();
    let creds = credential("Touch:me", "sha1", 6, SHA1_SECRET, true);
    let _card = VirtualCard::start(
        CardConfig::new(&creds)
            .arg("--never-touched")
            .arg("--touch-timeout-ms")
            .arg("1000"),
    );
    let prompts = Mutex::new(0);
    let e = oath::calculate(&only(READER_0), "Touch:me", SystemTime::now(), &|_| {
        *prompts.lock().unwrap() += 1;
    })
    .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            OathErrorKind::Applet(AppletError::TouchTimeout { .. })
        ),
        "{e:?}"
    );
    assert_eq!(e.retry_class(), RetryClass::Soon);
    assert_eq!(*prompts.lock().unwrap(), 1);
}

#[test]
fn long_answers_are_chained_through_pcscd() {
    let _lock = setup();
    let creds: String = (0..20)
        .map(|i| {
            credential(
                &format!("Amazon Web Services:user{i}@123457890123"),
                "sha1",
                6,
                SHA1_SECRET,
                false,
            )
        })
        .collect();
    let _card = VirtualCard::start(CardConfig::new(&creds).arg("--max-response").arg("64"));
    let listing = oath::list(&only(READER_0)).unwrap();
    assert_eq!(listing[0].credentials.len(), 20);
    let now = SystemTime::now();
    let code = oath::calculate(
        &only(READER_0),
        "Amazon Web Services:user19@123457890123",
        now,
        &no_touch,
    )
    .unwrap();
    assert_code(&code, now, "sha1", SHA1_SECRET);
}

#[test]
fn five_concurrent_calculations() {
    let _lock = setup();
    let card = VirtualCard::start(CardConfig::new(&aws_card()));
    let barrier = Arc::new(Barrier::new(5));
    let threads: Vec<_> = (0..5)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let now = SystemTime::now();
                (now, oath::calculate(&only(READER_0), AWS, now, &no_touch))
            })
        })
        .collect();
    for t in threads {
        let (now, result) = t.join().unwrap();
        assert_code(&result.unwrap(), now, "sha1", SHA1_SECRET);
    }
    assert_eq!(card.calculations(), 5);
}

#[test]
fn sharing_violation_and_resets_by_other_programs() {
    let _lock = setup();
    let _card = VirtualCard::start(CardConfig::new(&aws_card()));
    let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let reader = CString::new(READER_0).unwrap();

    // Another program (scdaemon, typically) holds the card exclusively.
    let exclusive = ctx
        .connect(&reader, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY)
        .unwrap();
    let e = oath::calculate(&only(READER_0), AWS, SystemTime::now(), &no_touch).unwrap_err();
    assert!(matches!(e.kind(), OathErrorKind::Sharing), "{e:?}");
    assert_eq!(e.retry_class(), RetryClass::Soon);
    assert!(
        e.to_string().contains("scdaemon") && e.to_string().contains("disable-ccid"),
        "{e}"
    );
    exclusive
        .disconnect(pcsc::Disposition::LeaveCard)
        .map_err(|(_, e)| e)
        .unwrap();

    // Another program resets the card between our operations.
    let other = ctx
        .connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .unwrap();
    other
        .disconnect(pcsc::Disposition::ResetCard)
        .map_err(|(_, e)| e)
        .unwrap();
    let now = SystemTime::now();
    let code = oath::calculate(&only(READER_0), AWS, now, &no_touch).unwrap();
    assert_code(&code, now, "sha1", SHA1_SECRET);
}

/// Waits for the next key event after `seen` changes; returns how long.
fn next_event(rt: &tokio::runtime::Runtime, events: &mut oath::KeyEvents, seen: u64) -> Duration {
    let start = Instant::now();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), async {
            while events.count() <= seen {
                events.changed().await;
            }
        })
        .await
        .expect("no key event within 10 s")
    });
    start.elapsed()
}

#[test]
fn unplug_and_replug_wake_key_events() {
    let _lock = setup();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let card = VirtualCard::start(CardConfig::new(&aws_card()));
    let mut events = oath::spawn_key_watcher();
    std::thread::sleep(Duration::from_millis(300)); // the watcher's baseline
    let before = events.count();
    // Nothing changes: no event, also across the watcher's 3 s wait timeout.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(events.count(), before, "key events without a change");

    card.unplug();
    next_event(&rt, &mut events, before);
    pcsc_support::wait_for_card(READER_0, false, Duration::from_secs(5));
    let e = oath::calculate(&only(READER_0), AWS, SystemTime::now(), &no_touch).unwrap_err();
    assert_eq!(e.retry_class(), RetryClass::WaitForKey, "{e:?}");
    std::thread::sleep(Duration::from_millis(300));

    let unplugged = events.count();
    card.plug();
    let woke = next_event(&rt, &mut events, unplugged);
    eprintln!("key event {woke:?} after plug-in");
    assert!(
        woke < Duration::from_millis(1500),
        "key event came {woke:?} after plug-in"
    );
    pcsc_support::wait_for_card(READER_0, true, Duration::from_secs(5));
    let now = SystemTime::now();
    let code = oath::calculate(&only(READER_0), AWS, now, &no_touch).unwrap();
    assert_code(&code, now, "sha1", SHA1_SECRET);
}

#[test]
fn pcscd_restart() {
    let _lock = setup();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _card = VirtualCard::start(CardConfig::new(&aws_card()));
    let mut events = oath::spawn_key_watcher();
    std::thread::sleep(Duration::from_millis(300));
    let before = events.count();

    pcsc_support::stop_pcscd();
    let e = oath::calculate(&only(READER_0), AWS, SystemTime::now(), &no_touch).unwrap_err();
    assert!(matches!(e.kind(), OathErrorKind::NoService), "{e:?}");
    assert_eq!(e.retry_class(), RetryClass::WaitForKey);
    assert!(e.to_string().contains("pcscd"), "{e}");
    next_event(&rt, &mut events, before);

    let stopped = events.count();
    pcsc_support::start_pcscd();
    // The watcher notices the service (and the card) coming back.
    next_event(&rt, &mut events, stopped);
    // The card reconnects to vpcd by itself, as a key stays plugged in.
    pcsc_support::wait_for_card(READER_0, true, Duration::from_secs(10));
    let now = SystemTime::now();
    let code = oath::calculate(&only(READER_0), AWS, now, &no_touch).unwrap();
    assert_code(&code, now, "sha1", SHA1_SECRET);
}

#[test]
fn the_virtual_key_can_unplug_itself() {
    let _lock = setup();
    // Long enough for `start` to see the card first.
    let _card = VirtualCard::start(
        CardConfig::new(&aws_card())
            .arg("--unplug-after-ms")
            .arg("2000"),
    );
    let took = pcsc_support::wait_for_card(READER_0, false, Duration::from_secs(5));
    assert!(
        took < Duration::from_secs(4),
        "unplugged only after {took:?}"
    );
    let e = oath::calculate(&only(READER_0), AWS, SystemTime::now(), &no_touch).unwrap_err();
    assert!(matches!(e.kind(), OathErrorKind::NoCard { .. }), "{e:?}");
}
