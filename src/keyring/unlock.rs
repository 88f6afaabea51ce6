//! Unlocking a locked collection, and learning when one was unlocked.
//!
//! The Secret Service's `Unlock` either unlocks at once or returns a
//! prompt object; calling its `Prompt` method makes the service show its
//! own dialog on the desktop, and the prompt's `Completed` signal says how
//! it ended. GNOME Keyring ties a prompt to the connection that asked for
//! it, so that connection has to live until the prompt completes: the
//! daemon gives it a thread of its own ([`request`]), while the commands
//! wait on theirs ([`unlock_waiting`]).
//!
//! Signals, not polling, say when a collection is unlocked. Services
//! differ in which ones they send: GNOME Keyring sends `PropertiesChanged`
//! (`Locked`) when its prompt unlocks, but only `CollectionChanged` when
//! unlocked with the login password; KeePassXC sends `PropertiesChanged`.
//! [`UnlockEvents`] listens to both, and to the service (re)appearing.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::SelectAll;
use zbus::message::Type as MessageType;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue};
use zbus::{MatchRule, MessageStream};

use super::{CALL_TIMEOUT, KeyringError, UnlockPrompt, connect};

const BUS_NAME: &str = "org.freedesktop.secrets";
const SERVICE_PATH: &str = "/org/freedesktop/secrets";
const SERVICE_INTERFACE: &str = "org.freedesktop.Secret.Service";
const COLLECTION_INTERFACE: &str = "org.freedesktop.Secret.Collection";
const PROMPT_INTERFACE: &str = "org.freedesktop.Secret.Prompt";
const COLLECTIONS: &str = "/org/freedesktop/secrets/collection";

/// How long a prompt the daemon asked for stays up. Then it is dismissed,
/// and the next read that finds the collection locked shows a new one (a
/// thread is not kept for a user who is away for the day).
const PROMPT_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// After the user dismissed a prompt (or no desktop could show one), the
/// daemon does not show another for this long: each pass would otherwise
/// bring the dialog back.
const QUIET_AFTER_DISMISS: Duration = Duration::from_secs(10 * 60);

/// The answer to an unlock request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Requested {
    /// Unlocked now: go on and read.
    Unlocked,
    /// Still locked.
    Prompt(UnlockPrompt),
}

/// The daemon's prompt on each bus: one at a time, and quiet for a while
/// after a dismissal.
#[derive(Default)]
struct PromptState {
    in_flight: bool,
    quiet_until: Option<Instant>,
}

/// What the unlock prompts asked for remember, per bus: whether one is up,
/// and until when to show none after a dismissal. State of the value that
/// asks (the daemon keeps one for its life, shared by the [`Keyring`]s it
/// makes: see [`Keyring::sharing_prompts`](super::Keyring::sharing_prompts));
/// clones share it.
#[derive(Clone, Default)]
pub struct UnlockPrompts(Arc<Mutex<HashMap<String, PromptState>>>);

impl std::fmt::Debug for UnlockPrompts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnlockPrompts")
    }
}

impl UnlockPrompts {
    fn with_state<T>(&self, address: &str, f: impl FnOnce(&mut PromptState) -> T) -> T {
        let mut prompts = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(prompts.entry(address.to_string()).or_default())
    }
}

/// Clears `in_flight` however the prompt thread ends.
struct InFlight(UnlockPrompts, String);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.with_state(&self.1, |state| state.in_flight = false);
    }
}

/// Asks the service to unlock `object` without waiting for the user: a
/// thread of its own calls `Unlock`, shows the prompt if one is needed and
/// keeps its connection until the prompt completes. Returns as soon as the
/// service answered `Unlock` (and the prompt is shown, if any).
pub(crate) async fn request(
    prompts: &UnlockPrompts,
    address: &str,
    object: OwnedObjectPath,
) -> Result<Requested, KeyringError> {
    let start = prompts.with_state(address, |state| {
        if state.in_flight {
            return Some(Requested::Prompt(UnlockPrompt::Shown));
        }
        if state
            .quiet_until
            .is_some_and(|until| Instant::now() < until)
        {
            return Some(Requested::Prompt(UnlockPrompt::Dismissed));
        }
        state.in_flight = true;
        None
    });
    if let Some(answer) = start {
        return Ok(answer);
    }
    let guard = InFlight(prompts.clone(), address.to_string());
    let prompts = prompts.clone();
    let (answer, answered) = tokio::sync::oneshot::channel();
    let address = address.to_string();
    std::thread::Builder::new()
        .name("keyring-unlock".to_string())
        .spawn(move || {
            let _guard = guard;
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = answer.send(Err(KeyringError::Runtime(e)));
                    return;
                }
            };
            runtime.block_on(prompt_thread(&prompts, &address, &object, answer));
        })
        .map_err(KeyringError::Runtime)?;
    answered.await.unwrap_or_else(|_| {
        Err(KeyringError::Bus(Box::new(zbus::Error::Failure(
            "the unlock request ended without an answer".to_string(),
        ))))
    })
}

async fn prompt_thread(
    prompts: &UnlockPrompts,
    address: &str,
    object: &OwnedObjectPath,
    answer: tokio::sync::oneshot::Sender<Result<Requested, KeyringError>>,
) {
    let asked = tokio::time::timeout(CALL_TIMEOUT, async {
        let conn = connect(address).await?;
        let asked = ask(&conn, object).await?;
        Ok((conn, asked))
    })
    .await
    .unwrap_or(Err(KeyringError::Timeout(CALL_TIMEOUT)));
    let (conn, mut prompt) = match asked {
        Ok((_, Asked::Unlocked)) => {
            let _ = answer.send(Ok(Requested::Unlocked));
            return;
        }
        Ok((conn, Asked::Prompt(prompt))) => (conn, prompt),
        Err(e) => {
            let _ = answer.send(Err(e));
            return;
        }
    };
    let _ = answer.send(Ok(Requested::Prompt(UnlockPrompt::Shown)));
    match tokio::time::timeout(PROMPT_LIFETIME, prompt.completed()).await {
        Ok(Some(Completed::Dismissed)) => {
            tracing::debug!("the keyring's unlock prompt was dismissed");
            prompts.with_state(address, |state| {
                state.quiet_until = Some(Instant::now() + QUIET_AFTER_DISMISS);
            });
        }
        Ok(Some(Completed::Unlocked)) => tracing::debug!("the keyring was unlocked at its prompt"),
        Ok(None) => {}
        Err(_) => prompt.dismiss(&conn).await,
    }
}

/// Unlocks `object`, showing the prompt and waiting up to `within` for
/// the user: for the commands, whose user is at the desktop.
pub(crate) async fn unlock_waiting(
    conn: &zbus::Connection,
    object: &OwnedObjectPath,
    within: Duration,
) -> Result<Requested, KeyringError> {
    let mut prompt = match ask(conn, object).await? {
        Asked::Unlocked => return Ok(Requested::Unlocked),
        Asked::Prompt(prompt) => prompt,
    };
    tracing::info!("the keyring is locked: unlock it in the prompt your desktop shows");
    match tokio::time::timeout(within, prompt.completed()).await {
        Ok(Some(Completed::Unlocked)) => Ok(Requested::Unlocked),
        Ok(Some(Completed::Dismissed)) => Ok(Requested::Prompt(UnlockPrompt::Dismissed)),
        Ok(None) => Err(KeyringError::Bus(Box::new(zbus::Error::Failure(
            "the session bus closed the connection during the unlock prompt".to_string(),
        )))),
        Err(_) => {
            prompt.dismiss(conn).await;
            Err(KeyringError::Timeout(within))
        }
    }
}

enum Asked {
    Unlocked,
    Prompt(Box<Prompt>),
}

/// A prompt the service is showing.
struct Prompt {
    path: OwnedObjectPath,
    completed: MessageStream,
}

enum Completed {
    Unlocked,
    Dismissed,
}

impl Prompt {
    /// How the prompt ended; `None` when the connection closed first.
    async fn completed(&mut self) -> Option<Completed> {
        while let Some(message) = self.completed.next().await {
            let Ok(message) = message else { continue };
            if let Ok((dismissed, _result)) = message.body().deserialize::<(bool, OwnedValue)>() {
                return Some(if dismissed {
                    Completed::Dismissed
                } else {
                    Completed::Unlocked
                });
            }
        }
        None
    }

    /// Takes the dialog down (best effort: it may be gone already).
    async fn dismiss(&self, conn: &zbus::Connection) {
        let call = conn.call_method(
            Some(BUS_NAME),
            self.path.as_str(),
            Some(PROMPT_INTERFACE),
            "Dismiss",
            &(),
        );
        let _ = tokio::time::timeout(CALL_TIMEOUT, call).await;
    }
}

/// `Unlock([object])`, then `Prompt` when the service wants one. The
/// `Completed` signal is subscribed to before `Prompt` is called, so that
/// a prompt that ends at once (no desktop) is not missed.
async fn ask(conn: &zbus::Connection, object: &OwnedObjectPath) -> Result<Asked, KeyringError> {
    let objects: Vec<ObjectPath<'_>> = vec![object.as_ref()];
    let reply = conn
        .call_method(
            Some(BUS_NAME),
            SERVICE_PATH,
            Some(SERVICE_INTERFACE),
            "Unlock",
            &(objects,),
        )
        .await
        .map_err(KeyringError::from_bus)?;
    let (unlocked, prompt): (Vec<OwnedObjectPath>, OwnedObjectPath) =
        reply.body().deserialize().map_err(KeyringError::from_bus)?;
    if !unlocked.is_empty() || prompt.as_str() == "/" {
        return Ok(Asked::Unlocked);
    }
    let rule = MatchRule::builder()
        .msg_type(MessageType::Signal)
        .sender(BUS_NAME)
        .and_then(|b| b.path(prompt.clone()))
        .and_then(|b| b.interface(PROMPT_INTERFACE))
        .and_then(|b| b.member("Completed"))
        .map_err(KeyringError::from_bus)?
        .build();
    let completed = MessageStream::for_match_rule(rule, conn, Some(4))
        .await
        .map_err(KeyringError::from_bus)?;
    // The window id: none, the service picks where to show the dialog.
    conn.call_method(
        Some(BUS_NAME),
        prompt.as_str(),
        Some(PROMPT_INTERFACE),
        "Prompt",
        &("",),
    )
    .await
    .map_err(KeyringError::from_bus)?;
    Ok(Asked::Prompt(Box::new(Prompt {
        path: prompt,
        completed,
    })))
}

/// Says when a collection of the Secret Service is unlocked, from the
/// service's signals (no polling). Dropping it stops the watch.
///
/// Treat it as a hint to read again, like a file event: it fires for any
/// collection, and a service that sends none of these signals is caught by
/// the daemon's periodic pass.
pub struct UnlockEvents {
    conn: zbus::Connection,
    hints: Arc<Hints>,
    /// Reads the signals as they come, so that they never fill zbus's
    /// queue: a full queue stops the connection from reading at all, and
    /// then the replies to our own calls never arrive.
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for UnlockEvents {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl std::fmt::Debug for UnlockEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnlockEvents").finish_non_exhaustive()
    }
}

/// What the signals since the last look suggest checking: a set, so that
/// a burst of signals costs one check per collection.
#[derive(Default)]
struct Hints {
    pending: Mutex<Pending>,
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct Pending {
    /// Collections that may have been unlocked.
    collections: BTreeSet<String>,
    /// The service (re)appeared: its default collection.
    default: bool,
    /// The connection ended.
    closed: bool,
}

impl Hints {
    fn add(&self, f: impl FnOnce(&mut Pending)) {
        f(&mut self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        self.changed.notify_one();
    }

    fn take(&self) -> Pending {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl UnlockEvents {
    pub(super) async fn subscribe(address: &str) -> Result<UnlockEvents, KeyringError> {
        tokio::time::timeout(CALL_TIMEOUT, Self::subscribe_now(address))
            .await
            .unwrap_or(Err(KeyringError::Timeout(CALL_TIMEOUT)))
    }

    async fn subscribe_now(address: &str) -> Result<UnlockEvents, KeyringError> {
        let conn = connect(address).await?;
        let signal = || MatchRule::builder().msg_type(MessageType::Signal);
        let rules = [
            // `Locked` of any collection, as GNOME Keyring's prompt and
            // KeePassXC report it.
            signal()
                .sender(BUS_NAME)
                .and_then(|b| b.interface("org.freedesktop.DBus.Properties"))
                .and_then(|b| b.member("PropertiesChanged"))
                .and_then(|b| b.path_namespace(COLLECTIONS))
                .and_then(|b| b.arg(0, COLLECTION_INTERFACE))
                .map(|b| b.build()),
            // GNOME Keyring unlocked with the login password says only this.
            signal()
                .sender(BUS_NAME)
                .and_then(|b| b.interface(SERVICE_INTERFACE))
                .and_then(|b| b.member("CollectionChanged"))
                .map(|b| b.build()),
            // The service started (KeePassXC opened, gnome-keyring
            // activated): its default collection may be unlocked already.
            signal()
                .sender("org.freedesktop.DBus")
                .and_then(|b| b.interface("org.freedesktop.DBus"))
                .and_then(|b| b.member("NameOwnerChanged"))
                .and_then(|b| b.arg(0, BUS_NAME))
                .map(|b| b.build()),
        ];
        let mut signals = SelectAll::new();
        for rule in rules {
            let rule = rule.map_err(KeyringError::from_bus)?;
            signals.push(
                MessageStream::for_match_rule(rule, &conn, Some(64))
                    .await
                    .map_err(KeyringError::from_bus)?,
            );
        }
        let hints = Arc::new(Hints::default());
        let reader = tokio::spawn(read_hints(signals, hints.clone()));
        Ok(UnlockEvents {
            conn,
            hints,
            reader,
        })
    }

    /// Resolves when a collection is unlocked: at once while the default
    /// collection is unlocked (so nothing is missed between a `Locked`
    /// error and this call), else at the first signal after which a
    /// collection reads unlocked (each hint is checked against the
    /// `Locked` property now: queued signals may be stale). Await it only
    /// while something waits for an unlock; keeping the watcher between
    /// waits is fine, and so is dropping the future (a `select!`). Err
    /// when the bus connection ends (the session is over).
    pub async fn unlocked(&mut self) -> Result<(), KeyringError> {
        let mut check_default = true;
        loop {
            let pending = self.hints.take();
            if pending.closed {
                return Err(KeyringError::Bus(Box::new(zbus::Error::Failure(
                    "the session bus closed the connection".to_string(),
                ))));
            }
            if (check_default || pending.default) && self.default_unlocked().await? {
                return Ok(());
            }
            check_default = false;
            for collection in &pending.collections {
                if !self.locked(collection).await? {
                    return Ok(());
                }
            }
            self.hints.changed.notified().await;
        }
    }

    /// Whether the collection under the `default` alias is unlocked now;
    /// false when there is none, or no service (yet).
    async fn default_unlocked(&self) -> Result<bool, KeyringError> {
        let call = self.conn.call_method(
            Some(BUS_NAME),
            SERVICE_PATH,
            Some(SERVICE_INTERFACE),
            "ReadAlias",
            &("default",),
        );
        let reply = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Err(_) => return Err(KeyringError::Timeout(CALL_TIMEOUT)),
            Ok(Err(e)) if is_refusal(&e) => return Ok(false),
            Ok(result) => result.map_err(KeyringError::from_bus)?,
        };
        let path: OwnedObjectPath = reply.body().deserialize().map_err(KeyringError::from_bus)?;
        if path.as_str() == "/" {
            return Ok(false);
        }
        Ok(!self.locked(path.as_str()).await?)
    }

    /// The `Locked` property of the collection at `path`; true when the
    /// service does not answer it (no service, no such collection).
    async fn locked(&self, path: &str) -> Result<bool, KeyringError> {
        let call = self.conn.call_method(
            Some(BUS_NAME),
            path,
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &(COLLECTION_INTERFACE, "Locked"),
        );
        let reply = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Err(_) => return Err(KeyringError::Timeout(CALL_TIMEOUT)),
            Ok(Err(e)) if is_refusal(&e) => return Ok(true),
            Ok(result) => result.map_err(KeyringError::from_bus)?,
        };
        let value: OwnedValue = reply.body().deserialize().map_err(KeyringError::from_bus)?;
        Ok(bool::try_from(value).unwrap_or(true))
    }
}

/// Turns the signals into hints, until the connection ends.
async fn read_hints(mut signals: SelectAll<MessageStream>, hints: Arc<Hints>) {
    while let Some(message) = signals.next().await {
        let Ok(message) = message else { continue };
        let header = message.header();
        let body = message.body();
        match header.member().map(|m| m.as_str()) {
            Some("PropertiesChanged") => {
                let Ok((_, changed, invalidated)) =
                    body.deserialize::<(String, HashMap<String, OwnedValue>, Vec<String>)>()
                else {
                    continue;
                };
                let says_unlocked = match changed.get("Locked") {
                    Some(value) => bool::try_from(value.clone()) == Ok(false),
                    None => invalidated.iter().any(|p| p == "Locked"),
                };
                if let (true, Some(path)) = (says_unlocked, header.path()) {
                    let path = path.to_string();
                    hints.add(|p| {
                        p.collections.insert(path);
                    });
                }
            }
            Some("CollectionChanged") => {
                if let Ok(path) = body.deserialize::<OwnedObjectPath>() {
                    hints.add(|p| {
                        p.collections.insert(path.to_string());
                    });
                }
            }
            Some("NameOwnerChanged") => {
                if let Ok((_, _, owner)) = body.deserialize::<(String, String, String)>()
                    && !owner.is_empty()
                {
                    hints.add(|p| p.default = true);
                }
            }
            _ => {}
        }
    }
    hints.add(|p| p.closed = true);
}

/// An error reply (the service or the bus said no), as opposed to a
/// broken connection.
fn is_refusal(error: &zbus::Error) -> bool {
    matches!(error, zbus::Error::MethodError(..) | zbus::Error::FDO(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the prompts remember is the asking value's: clones share it,
    /// another value (another daemon in the same process, a test) starts
    /// afresh.
    #[test]
    fn prompt_state_belongs_to_the_value_that_asks() {
        let daemon = UnlockPrompts::default();
        daemon.with_state("bus", |state| {
            state.quiet_until = Some(Instant::now() + QUIET_AFTER_DISMISS)
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let object =
            OwnedObjectPath::try_from("/org/freedesktop/secrets/collection/login").unwrap();
        // Quiet after a dismissal: answered without asking any bus.
        let answer = runtime
            .block_on(request(&daemon.clone(), "bus", object.clone()))
            .unwrap();
        assert_eq!(answer, Requested::Prompt(UnlockPrompt::Dismissed));
        // Another value has not seen the dismissal: it asks the bus (which
        // does not exist here).
        let other = runtime.block_on(request(&UnlockPrompts::default(), "bus", object));
        assert!(other.is_err(), "{other:?}");
        assert!(daemon.with_state("other bus", |state| state.quiet_until.is_none()));
    }
}
