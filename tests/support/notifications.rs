//! A private session bus (`dbus-daemon`) and a notification service on it:
//! a zbus object server that owns `org.freedesktop.Notifications` and
//! records each `Notify` call, as a desktop's notification daemon would
//! receive it. For the notification's unit tests (src/oath/dbus_tests.rs)
//! and the tests that count what the daemon tells the desktop. Needs
//! `dbus_daemon` included next to it.

#![allow(dead_code)]

use std::collections::HashMap;

use tokio::sync::mpsc;
use zbus::zvariant::OwnedValue;

use super::dbus_daemon;

pub struct Bus {
    _daemon: dbus_daemon::DbusDaemon,
    pub address: String,
    pub dir: tempfile::TempDir,
}

pub fn start_bus() -> Bus {
    let dir = tempfile::tempdir().unwrap();
    let daemon = dbus_daemon::start(
        &[
            "--session".to_string(),
            format!("--address=unix:path={}/bus", dir.path().display()),
        ],
        |_| {},
    );
    Bus {
        address: daemon.address.clone(),
        _daemon: daemon,
        dir,
    }
}

/// A `Notify` call as the notification service received it.
#[derive(Debug, PartialEq)]
pub struct Received {
    pub signature: String,
    pub app_name: String,
    pub replaces_id: u32,
    pub icon: String,
    pub summary: String,
    pub body: String,
    pub actions: Vec<String>,
    pub hints: usize,
    pub expire_timeout: i32,
}

struct NotificationService {
    received: mpsc::UnboundedSender<Received>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl NotificationService {
    #[allow(clippy::too_many_arguments)] // the interface's signature
    fn notify(
        &self,
        #[zbus(header)] header: zbus::message::Header<'_>,
        app_name: String,
        replaces_id: u32,
        icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        hints: HashMap<String, OwnedValue>,
        expire_timeout: i32,
    ) -> u32 {
        let _ = self.received.send(Received {
            // As on the wire: zvariant shows a body as one structure.
            signature: header.signature().to_string_no_parens(),
            app_name,
            replaces_id,
            icon,
            summary,
            body,
            actions,
            hints: hints.len(),
            expire_timeout,
        });
        42
    }
}

/// Owns `org.freedesktop.Notifications` on the bus at `address`; the
/// connection serves calls for as long as it and its runtime live.
pub async fn start_service(address: &str) -> (zbus::Connection, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let conn = zbus::connection::Builder::address(address)
        .unwrap()
        .name("org.freedesktop.Notifications")
        .unwrap()
        .serve_at(
            "/org/freedesktop/Notifications",
            NotificationService { received: tx },
        )
        .unwrap()
        .build()
        .await
        .unwrap();
    (conn, rx)
}
