//! Telling the user to touch the YubiKey.
//!
//! A touch credential makes the key blink and wait (about 15 s) for a
//! finger; a daemon running in the background must say so, or the user
//! never knows. [`notify_touch`] logs at warn level and, where a desktop
//! session bus exists, shows a notification through
//! `org.freedesktop.Notifications`.

use std::time::Duration;

use ykoath::TouchPrompt;

/// Logs the prompt at warn level and sends a desktop notification when
/// `DBUS_SESSION_BUS_ADDRESS` is set. Returns at once (see
/// [`show_notification`]).
pub fn notify_touch(prompt: &TouchPrompt) {
    tracing::warn!(
        credential = %crate::text::printable(&prompt.credential),
        reader = %crate::text::printable(&prompt.reader),
        "touch the YubiKey: the OATH credential requires a touch"
    );
    match std::env::var("DBUS_SESSION_BUS_ADDRESS") {
        Ok(address) if !address.is_empty() => {
            show_notification(address, prompt);
        }
        _ => {}
    }
}

/// Sends the notification from a short-lived thread so that the CALCULATE
/// (and the key's touch window) starts without waiting for D-Bus; the
/// thread ends within [`super::dbus::REPLY_TIMEOUT`]. Failures are logged
/// at debug level only: a missing notification daemon is normal on a
/// server. Returns the thread, which only the tests wait for.
pub(super) fn show_notification(
    address: String,
    prompt: &TouchPrompt,
) -> Option<std::thread::JoinHandle<()>> {
    let body = format!(
        "aws-session-daemon needs a code for {} ({}).",
        crate::text::printable(&prompt.credential),
        crate::text::printable(&prompt.reader)
    );
    send(address, "Touch your YubiKey", body, Duration::from_secs(15))
}

/// A desktop notification (when a session bus exists), from a thread of
/// its own; best effort, like the touch prompt's.
pub fn notify_desktop(summary: &'static str, body: String) {
    if let Ok(address) = std::env::var("DBUS_SESSION_BUS_ADDRESS")
        && !address.is_empty()
    {
        send(address, summary, body, Duration::from_secs(30));
    }
}

fn send(
    address: String,
    summary: &'static str,
    body: String,
    timeout: Duration,
) -> Option<std::thread::JoinHandle<()>> {
    let spawned = std::thread::Builder::new()
        .name("notification".to_string())
        .spawn(move || {
            let note = super::dbus::Notification {
                app_name: "aws-session-daemon",
                icon: "dialog-password",
                summary,
                body: &body,
                timeout,
            };
            if let Err(e) = super::dbus::notify(&address, &note) {
                tracing::debug!("desktop notification not shown: {e}");
            }
        });
    match spawned {
        Ok(thread) => Some(thread),
        Err(e) => {
            tracing::debug!("desktop notification not shown: no thread for it: {e}");
            None
        }
    }
}
