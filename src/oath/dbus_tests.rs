//! The notification against a real `dbus-daemon` (which validates every
//! message strictly) and a real receiver: a zbus object server that owns
//! `org.freedesktop.Notifications` and records each `Notify` call, as a
//! desktop's notification daemon would receive it. The sender runs where
//! the program runs it: in a `spawn_blocking` thread of a tokio runtime
//! (the daemon) and in a thread without any runtime (`oath code`).

use super::*;
use crate::oath::TouchPrompt;
use crate::oath::touch::show_notification;
use std::time::Instant;
use tokio::sync::mpsc;

#[path = "../../tests/support/dbus_daemon.rs"]
mod dbus_daemon;
#[path = "../../tests/support/notifications.rs"]
mod notifications;

use notifications::{Received, start_bus, start_service};

fn note(body: &str) -> Notification<'_> {
    Notification {
        app_name: "aws-session-daemon",
        icon: "dialog-password",
        summary: "Touch your YubiKey",
        body,
        timeout: Duration::from_secs(15),
    }
}

fn prompt() -> TouchPrompt {
    TouchPrompt {
        credential: "aws:me@123456789012".to_string(),
        reader: "Yubico YubiKey OTP+FIDO+CCID 00 00".to_string(),
    }
}

fn expected(body: &str) -> Received {
    Received {
        signature: "susssasa{sv}i".to_string(),
        app_name: "aws-session-daemon".to_string(),
        replaces_id: 0,
        icon: "dialog-password".to_string(),
        summary: "Touch your YubiKey".to_string(),
        body: body.to_string(),
        actions: vec![],
        hints: 0,
        expire_timeout: 15_000,
    }
}

const TOUCH_BODY: &str =
    "aws-session-daemon needs a code for aws:me@123456789012 (Yubico YubiKey OTP+FIDO+CCID 00 00).";

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no Notify call within 10 s")
        .expect("service gone")
}

/// The daemon's case: the code fetch runs in `spawn_blocking` on the
/// daemon's multi-thread runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_from_spawn_blocking_reaches_the_notification_service() {
    let bus = start_bus();
    let (_service, mut received) = start_service(&bus.address).await;

    let address = bus.address.clone();
    let id = tokio::task::spawn_blocking(move || notify(&address, &note("a code for \"x:y\"")))
        .await
        .unwrap();
    assert_eq!(id.unwrap(), 42, "the service's notification id");
    assert_eq!(next(&mut received).await, expected("a code for \"x:y\""));

    let address = bus.address.clone();
    let thread = tokio::task::spawn_blocking(move || show_notification(address, &prompt()))
        .await
        .unwrap()
        .expect("a notification thread");
    thread.join().unwrap();
    assert_eq!(next(&mut received).await, expected(TOUCH_BODY));
}

/// `oath code`'s case: no runtime on the calling thread at all.
#[test]
fn notify_from_a_plain_thread_reaches_the_notification_service() {
    let bus = start_bus();
    let service_rt = tokio::runtime::Runtime::new().unwrap();
    let (_service, mut received) = service_rt.block_on(start_service(&bus.address));

    let address = bus.address.clone();
    let id = std::thread::spawn(move || notify(&address, &note("plain")))
        .join()
        .unwrap();
    assert_eq!(id.unwrap(), 42);
    assert_eq!(service_rt.block_on(next(&mut received)), expected("plain"));

    show_notification(bus.address.clone(), &prompt())
        .expect("a notification thread")
        .join()
        .unwrap();
    assert_eq!(
        service_rt.block_on(next(&mut received)),
        expected(TOUCH_BODY)
    );
}

#[test]
fn without_a_notification_service_the_bus_says_so() {
    let bus = start_bus();
    let e = notify(&bus.address, &note("x")).unwrap_err();
    assert!(
        matches!(&e, DbusError::Bus(zbus::Error::MethodError(name, _, _))
            if name.as_str() == "org.freedesktop.DBus.Error.ServiceUnknown"),
        "{e:?}"
    );
}

/// A socket that accepts connections and never says a word (a hung bus):
/// the call gives up at the limit instead of holding its thread.
#[test]
fn a_silent_bus_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent");
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let address = format!("unix:path={}", path.display());
    let start = Instant::now();
    let e = notify_within(&address, &note("x"), Duration::from_millis(300)).unwrap_err();
    assert!(matches!(e, DbusError::Timeout(_)), "{e:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn addresses() {
    let bus = start_bus();
    // A dead path, then a working one: the second is used (and answers).
    let dead = format!("unix:path={}/nothing-here", bus.dir.path().display());
    let both = format!("{dead};{}", bus.address);
    assert!(
        matches!(
            notify(&both, &note("x")),
            Err(DbusError::Bus(zbus::Error::MethodError(..)))
        ),
        "the bus answers"
    );
    // Only the dead one: the connection error, at once.
    let start = Instant::now();
    let e = notify(&dead, &note("x")).unwrap_err();
    assert!(
        matches!(e, DbusError::Bus(zbus::Error::Connection(..))),
        "{e:?}"
    );
    assert!(start.elapsed() < REPLY_TIMEOUT);
    for bad in ["", ";", "not an address"] {
        assert!(
            matches!(
                notify(bad, &note("x")),
                Err(DbusError::Bus(zbus::Error::Address(_)))
            ),
            "{bad:?}"
        );
    }
}
