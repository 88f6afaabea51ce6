//! What can go wrong with the Secret Service, each with its fix and its
//! retry class.
//!
//! No variant holds a secret: the D-Bus errors come from the service and
//! name objects and methods, never item contents.

use std::time::Duration;

use crate::text::printable;

use crate::retry::{Classified, RetryClass};

use super::key_id::KeyIdError;

/// Said wherever the fix may be to not use the keyring at all.
const OR_FILE: &str = "or set long_term_keys = \"file\" in the config";

/// Where an unlock stands when an item was found locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlockPrompt {
    /// The Secret Service was not asked to unlock (attribute reads never ask).
    NotAsked,
    /// The Secret Service is showing its unlock prompt on the desktop now
    /// (this call or an earlier one asked; one prompt at a time).
    Shown,
    /// The prompt was dismissed, or no desktop could show it (headless,
    /// before login); another one is not shown for a while.
    Dismissed,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// No address for the session bus at all: a daemon started outside the
    /// desktop session (cron, supervisord, a system unit).
    #[error(
        "no session bus: DBUS_SESSION_BUS_ADDRESS is not set and $XDG_RUNTIME_DIR/bus does not exist; \
         run aws-session-daemon inside your desktop session (a systemd --user unit gets the address from the user manager), {OR_FILE}"
    )]
    NoBus,
    /// The address names a bus that is gone (a session that ended).
    #[error(
        "cannot connect to the session bus at {}: {}; \
         run aws-session-daemon inside your desktop session, {OR_FILE}",
        printable(.address),
        printable(&.source.to_string())
    )]
    BusUnreachable {
        address: String,
        #[source]
        source: Box<zbus::Error>,
    },
    /// Nothing owns `org.freedesktop.secrets`, and the bus could not start
    /// anything that would.
    #[error(
        "no Secret Service on the session bus ({}); start GNOME Keyring \
         (gnome-keyring-daemon --start --components=secrets), KeePassXC with its Secret Service integration enabled, \
         or KWallet 5.97+ with its Secret Service bridge, {OR_FILE}",
        printable(.detail)
    )]
    NoService { detail: String },
    /// The service has no collection under the `default` alias, so there is
    /// nowhere lasting to store (the `session` collection is lost at logout).
    #[error(
        "the Secret Service has no default collection; create a keyring and make it the default \
         (Seahorse: \"Set as default\"; KeePassXC: expose a database group in the Secret Service settings)"
    )]
    NoDefaultCollection,
    /// The item exists but sits in a locked collection.
    #[error("{}", locked_message(what, *prompt))]
    Locked { what: String, prompt: UnlockPrompt },
    #[error(
        "no long-term keys for credentials section [{s}] in the Secret Service; store them with \
         `aws-session-daemon keyring set --credentials-section {s}` (or `keyring import` from the credentials file)",
        s = printable(.section)
    )]
    NotFound { section: String },
    #[error(
        "no OATH applet password in the Secret Service; store it with `aws-session-daemon keyring set-oath-password`"
    )]
    OathPasswordNotFound,
    /// Two items answer the same search: another tool made one, or a
    /// `keyring set` is between storing the new item and deleting the old.
    #[error(
        "{count} Secret Service items hold {}; delete them (`aws-session-daemon keyring delete` or \
         `keyring delete-oath-password`), then store again",
        printable(.what)
    )]
    Duplicate { what: String, count: usize },
    #[error(
        "the Secret Service item for [{s}] has no access_key_id attribute; store the keys again with \
         `aws-session-daemon keyring set --credentials-section {s}`",
        s = printable(.section)
    )]
    NoKeyId { section: String },
    #[error("the secret of {} in the Secret Service is not UTF-8 text; store it again", printable(.what))]
    NotText { what: String },
    #[error(transparent)]
    InvalidKeyId(#[from] KeyIdError),
    #[error("the secret access key {0}")]
    InvalidSecret(&'static str),
    #[error("Secret Service: no answer within {0:?}")]
    Timeout(Duration),
    /// The service's (or the bus's) own words, escaped.
    #[error("Secret Service: {}", printable(&.0.to_string()))]
    Service(#[source] Box<secret_service::Error>),
    #[error("Secret Service: {}", printable(&.0.to_string()))]
    Bus(#[source] Box<zbus::Error>),
    #[error("cannot start the runtime for the Secret Service calls: {0}")]
    Runtime(#[source] std::io::Error),
}

fn locked_message(what: &str, prompt: UnlockPrompt) -> String {
    let what = printable(what);
    match prompt {
        UnlockPrompt::Shown => format!(
            "the keyring holding {what} is locked; unlock it in the prompt your desktop shows"
        ),
        UnlockPrompt::Dismissed => format!(
            "the keyring holding {what} is locked, and the unlock prompt was dismissed or no desktop could show it; \
             unlock the keyring (log in to the desktop, or open Seahorse or KeePassXC)"
        ),
        UnlockPrompt::NotAsked => format!(
            "the keyring holding {what} is locked; unlock it (log in to the desktop, or open Seahorse or KeePassXC)"
        ),
    }
}

impl KeyringError {
    /// The errors that mean the item is there but locked: the daemon waits
    /// for [`super::UnlockEvents`] rather than backing off blindly.
    pub fn is_locked(&self) -> bool {
        matches!(self, KeyringError::Locked { .. })
    }

    /// Maps an error of the client crate, recognising a missing service
    /// (which the crate reports as a plain D-Bus error).
    pub(crate) fn from_service(error: secret_service::Error) -> KeyringError {
        match error {
            secret_service::Error::Unavailable => KeyringError::NoService {
                detail: "no provider answered".to_string(),
            },
            secret_service::Error::Zbus(e) => KeyringError::from_bus(e),
            secret_service::Error::ZbusFdo(e) => {
                KeyringError::from_bus(zbus::Error::FDO(Box::new(e)))
            }
            other => KeyringError::Service(Box::new(other)),
        }
    }

    pub(crate) fn from_bus(error: zbus::Error) -> KeyringError {
        match no_service_detail(&error) {
            Some(detail) => KeyringError::NoService { detail },
            None => KeyringError::Bus(Box::new(error)),
        }
    }
}

/// The bus's own answer when nobody owns `org.freedesktop.secrets`
/// (`ServiceUnknown`, `NameHasNoOwner`) or when starting the activatable
/// service failed (`Spawn.*`, e.g. a desktop file naming a missing binary).
fn no_service_detail(error: &zbus::Error) -> Option<String> {
    use zbus::DBusError;
    let (name, detail) = match error {
        zbus::Error::MethodError(name, detail, _) => (name.as_str().to_string(), detail.clone()),
        zbus::Error::FDO(e) => (
            e.name().as_str().to_string(),
            e.description().map(str::to_string),
        ),
        _ => return None,
    };
    let missing = name == "org.freedesktop.DBus.Error.ServiceUnknown"
        || name == "org.freedesktop.DBus.Error.NameHasNoOwner"
        || name.starts_with("org.freedesktop.DBus.Error.Spawn.");
    missing.then(|| detail.unwrap_or(name))
}

impl Classified for KeyringError {
    fn retry_class(&self) -> RetryClass {
        match self {
            KeyringError::NoBus
            | KeyringError::BusUnreachable { .. }
            | KeyringError::NoService { .. }
            | KeyringError::NoDefaultCollection
            | KeyringError::NotFound { .. }
            | KeyringError::OathPasswordNotFound
            | KeyringError::NoKeyId { .. }
            | KeyringError::NotText { .. }
            | KeyringError::InvalidKeyId(_)
            | KeyringError::InvalidSecret(_) => RetryClass::NeedsUser,
            // Only the user can unlock; the daemon should wait for
            // `UnlockEvents` (see `is_locked`) rather than a file change.
            KeyringError::Locked { .. } => RetryClass::NeedsUser,
            // Our own `keyring set` leaves two items for a moment only.
            KeyringError::Duplicate { .. }
            | KeyringError::Timeout(_)
            | KeyringError::Service(_)
            | KeyringError::Bus(_)
            | KeyringError::Runtime(_) => RetryClass::Soon,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_service_names_the_fix() {
        let error = KeyringError::from_bus(zbus::Error::FDO(Box::new(
            zbus::fdo::Error::ServiceUnknown("The name is not activatable".into()),
        )));
        let text = error.to_string();
        assert!(text.contains("no Secret Service"), "{text}");
        assert!(text.contains("gnome-keyring-daemon"), "{text}");
        assert!(text.contains("long_term_keys = \"file\""), "{text}");
        assert_eq!(error.retry_class(), RetryClass::NeedsUser);
    }

    #[test]
    fn other_bus_errors_are_retried_soon() {
        let error = KeyringError::from_bus(zbus::Error::FDO(Box::new(zbus::fdo::Error::Failed(
            "busy".into(),
        ))));
        assert!(matches!(error, KeyringError::Bus(_)));
        assert_eq!(error.retry_class(), RetryClass::Soon);
    }

    #[test]
    fn locked_says_what_to_do_for_each_prompt_state() {
        for prompt in [
            UnlockPrompt::NotAsked,
            UnlockPrompt::Shown,
            UnlockPrompt::Dismissed,
        ] {
            let error = KeyringError::Locked {
                what: "the long-term keys of [prod]".into(),
                prompt,
            };
            let text = error.to_string();
            assert!(text.starts_with("the keyring holding the long-term keys of [prod] is locked"));
            assert!(text.contains("unlock"), "{text}");
            assert!(error.is_locked());
        }
    }
}
