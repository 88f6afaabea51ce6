//! One desktop notification (`org.freedesktop.Notifications.Notify`) on
//! the session bus, through zbus.
//!
//! zbus runs on its tokio backend without its blocking API: [`notify`]
//! builds a current-thread runtime of its own for the one call, so it
//! behaves the same whether its thread came from `spawn_blocking` (the
//! daemon) or from no runtime at all (`oath code`), and one timeout bounds
//! every step (connect, authentication, `Hello`, the reply). The same zbus
//! serves the Secret Service client later.

use std::collections::HashMap;
use std::time::Duration;

use zbus::zvariant::Value;

/// How long a notification may take, from connecting to the reply. A
/// desktop answers in milliseconds; a hung bus must not keep the thread.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

/// One notification.
pub(crate) struct Notification<'a> {
    pub app_name: &'a str,
    pub icon: &'a str,
    pub summary: &'a str,
    pub body: &'a str,
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DbusError {
    #[error("session bus: {0}")]
    Bus(#[from] zbus::Error),
    #[error("session bus: no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot start the runtime for the session bus call: {0}")]
    Runtime(#[from] std::io::Error),
}

/// Sends `note` to the notification service on the bus at `address` (the
/// value of `DBUS_SESSION_BUS_ADDRESS`) and returns the notification id.
/// Blocks for at most [`REPLY_TIMEOUT`]; call it from a thread that is not
/// running async tasks (a plain thread or a `spawn_blocking` one).
pub(crate) fn notify(address: &str, note: &Notification<'_>) -> Result<u32, DbusError> {
    notify_within(address, note, REPLY_TIMEOUT)
}

pub(crate) fn notify_within(
    address: &str,
    note: &Notification<'_>,
    limit: Duration,
) -> Result<u32, DbusError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::time::timeout(limit, send(address, note))
            .await
            .map_err(|_| DbusError::Timeout(limit))?
    })
}

async fn send(address: &str, note: &Notification<'_>) -> Result<u32, DbusError> {
    let conn = crate::session_bus::connect(address).await?;
    let actions: &[&str] = &[];
    let hints: HashMap<&str, Value<'_>> = HashMap::new();
    let expire_timeout = i32::try_from(note.timeout.as_millis()).unwrap_or(i32::MAX);
    let reply = conn
        .call_method(
            Some("org.freedesktop.Notifications"),
            "/org/freedesktop/Notifications",
            Some("org.freedesktop.Notifications"),
            "Notify",
            &(
                note.app_name,
                0u32, // replaces_id: a new notification
                note.icon,
                note.summary,
                note.body,
                actions,
                hints,
                expire_timeout,
            ),
        )
        .await?;
    Ok(reply.body().deserialize::<u32>()?)
}

#[cfg(test)]
#[path = "dbus_tests.rs"]
mod tests;
