//! Long-term keys and the OATH applet password in the desktop's Secret
//! Service (GNOME Keyring, KeePassXC, KWallet through its bridge), over
//! D-Bus, so that they need not sit in a plain file.
//!
//! The items, found by their attributes:
//! - long-term keys: `service = aws-session-daemon`, `credentials_section =
//!   NAME`, `access_key_id = AKIA…`; the secret is the secret access key.
//!   The key id is an attribute (it is not secret) so that the planner can
//!   learn it every pass without unlocking anything or reading a secret;
//!   the secret is read only when a code is spent.
//! - the OATH applet password: `service = aws-session-daemon`, `kind =
//!   oath-password`.
//!
//! A locked collection (after boot, before the login unlocks it) is never
//! waited on by the daemon's calls: [`Keyring::long_term_secret`] asks the
//! service to unlock (the desktop shows its own prompt, one at a time) and
//! returns [`KeyringError::Locked`] at once; [`UnlockEvents`] then says when
//! a collection is unlocked, from the service's signals. The commands use
//! [`Keyring::prompting`], which waits for the user at the prompt.
//!
//! Every call builds a current-thread runtime of its own (like the desktop
//! notification), so the blocking functions work from `spawn_blocking` and
//! from the command line alike, and one timeout bounds each of them. Never
//! call them on a thread that runs async tasks.

mod error;
mod key_id;
mod unlock;

pub use error::{KeyringError, UnlockPrompt};
pub use key_id::{KeyIdError, check_long_term_key_id};
pub use unlock::{UnlockEvents, UnlockPrompts};

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use secret_service::{EncryptionType, Item, SecretService};
use zbus::zvariant::OwnedObjectPath;
use zeroize::Zeroizing;

use crate::config::EnvLookup;
use key_id::check_secret_access_key;
use unlock::Requested;

/// The `service` attribute of every item of ours.
const SERVICE: &str = "aws-session-daemon";
const SERVICE_ATTR: &str = "service";
const SECTION_ATTR: &str = "credentials_section";
const KEY_ID_ATTR: &str = "access_key_id";
const KIND_ATTR: &str = "kind";
const OATH_PASSWORD_KIND: &str = "oath-password";
const CONTENT_TYPE: &str = "text/plain";

/// How long one operation may take without a prompt: connecting, the
/// session's key exchange, the calls. GNOME Keyring answers in
/// milliseconds, but may first be started by the bus.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a command waits for the user at the desktop's unlock prompt.
pub(crate) const PROMPT_TIMEOUT: Duration = Duration::from_secs(120);

/// The long-term keys stored for one credentials section.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKeys {
    pub section: String,
    /// Not secret, but shown only masked (also by `Debug`).
    pub access_key_id: Option<String>,
}

impl std::fmt::Debug for StoredKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKeys")
            .field("section", &self.section)
            .field(
                "access_key_id",
                &self
                    .access_key_id
                    .as_deref()
                    .map(crate::secret::mask_access_key_id),
            )
            .finish()
    }
}

/// What `keyring list` shows: never a secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Sorted by section.
    pub keys: Vec<StoredKeys>,
    pub oath_password: bool,
    /// Some item is in a locked collection: its secret cannot be read
    /// without an unlock (its attributes, listed here, can).
    pub locked: bool,
}

/// The Secret Service on one session bus.
#[derive(Debug, Clone)]
pub struct Keyring {
    address: String,
    /// `Some`: a user is at the desktop; show the unlock prompt and wait
    /// this long for it. `None` (the daemon): never wait on a prompt.
    prompt: Option<Duration>,
    /// The unlock prompts asked for on this bus.
    prompts: UnlockPrompts,
}

impl Keyring {
    /// The session bus of `DBUS_SESSION_BUS_ADDRESS`, else the systemd
    /// user bus at `$XDG_RUNTIME_DIR/bus` (what libdbus and sd-bus fall back
    /// to, for a daemon started without the variable).
    pub fn from_env(env: EnvLookup) -> Result<Keyring, KeyringError> {
        if let Some(address) = env("DBUS_SESSION_BUS_ADDRESS") {
            return Ok(Keyring::at(address));
        }
        if let Some(dir) = env("XDG_RUNTIME_DIR") {
            let socket = Path::new(&dir).join("bus");
            if socket.symlink_metadata().is_ok() {
                return Ok(Keyring::at(format!(
                    "unix:path={}",
                    escape_address(&socket)
                )));
            }
        }
        Err(KeyringError::NoBus)
    }

    /// The bus at `address` (a D-Bus address, `;`-separated alternatives
    /// allowed).
    pub fn at(address: impl Into<String>) -> Keyring {
        Keyring {
            address: address.into(),
            prompt: None,
            prompts: UnlockPrompts::default(),
        }
    }

    /// The same bus, remembering its unlock prompts in `prompts` (the
    /// daemon's, which outlive each `Keyring` it makes): one prompt at a
    /// time, none for a while after a dismissal.
    pub fn sharing_prompts(mut self, prompts: &UnlockPrompts) -> Keyring {
        self.prompts = prompts.clone();
        self
    }

    /// For the commands: a locked collection is unlocked through the
    /// desktop's prompt, waiting for the user up to `within`.
    pub fn prompting(mut self, within: Duration) -> Keyring {
        self.prompt = Some(within);
        self
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// The access key id stored for `section`, from the item's attributes:
    /// no unlock, no secret read. `Ok(None)` when no item is stored.
    /// [`KeyringError::Locked`] when the item is in a locked collection
    /// whose attributes the service does not show (GNOME Keyring after a
    /// restart shows only hashes until the collection is unlocked).
    pub fn key_id(&self, section: &str) -> Result<Option<String>, KeyringError> {
        let what = || long_term_keys(section);
        self.run(Transfer::NoSecret, async |client: &Client| {
            let mut found = self
                .search(client, &section_attributes(section), &what, false)
                .await?;
            let Some(item) = one(&mut found, what)? else {
                return Ok(None);
            };
            let attributes = item
                .get_attributes()
                .await
                .map_err(KeyringError::from_service)?;
            match attributes.get(KEY_ID_ATTR) {
                Some(id) => Ok(Some(id.clone())),
                None if item.is_locked().await.map_err(KeyringError::from_service)? => {
                    Err(KeyringError::Locked {
                        what: long_term_keys(section),
                        prompt: UnlockPrompt::NotAsked,
                    })
                }
                None => Err(KeyringError::NoKeyId {
                    section: section.to_string(),
                }),
            }
        })
    }

    /// The secret access key stored for `section`. A locked collection is
    /// asked to unlock; without [`Keyring::prompting`] this returns
    /// [`KeyringError::Locked`] at once rather than wait for the user.
    pub fn long_term_secret(&self, section: &str) -> Result<SecretString, KeyringError> {
        self.secret(
            &section_attributes(section),
            || long_term_keys(section),
            || KeyringError::NotFound {
                section: section.to_string(),
            },
        )
    }

    /// Stores the long-term keys of `section` in the default collection,
    /// replacing any stored before (in any collection). Checks the key
    /// id's shape first: temporary (`ASIA`) keys are refused.
    pub fn store_long_term(
        &self,
        section: &str,
        key_id: &str,
        secret: &SecretString,
    ) -> Result<(), KeyringError> {
        check_long_term_key_id(key_id)?;
        check_secret_access_key(secret.expose_secret()).map_err(KeyringError::InvalidSecret)?;
        let mut attributes = section_attributes(section);
        attributes.push((KEY_ID_ATTR, key_id));
        let label = format!("{SERVICE}: long-term keys of [{section}]");
        let what = || long_term_keys(section);
        self.store(
            &label,
            &what,
            &section_attributes(section),
            &attributes,
            secret,
        )
    }

    /// Deletes the long-term keys of `section`; returns how many items
    /// held them.
    pub fn delete(&self, section: &str) -> Result<usize, KeyringError> {
        let deleted =
            self.delete_items(&section_attributes(section), &|| long_term_keys(section))?;
        if deleted == 0 {
            return Err(KeyringError::NotFound {
                section: section.to_string(),
            });
        }
        Ok(deleted)
    }

    /// Every section with stored keys, and whether the OATH password is
    /// stored: one call for all sections (the planner's pass can use it
    /// instead of one [`Keyring::key_id`] per section). Attributes only, no
    /// secret is read; with [`Keyring::prompting`], a collection whose
    /// items show only hashed attributes is unlocked first.
    pub fn list(&self) -> Result<Listing, KeyringError> {
        let what = || "the items of aws-session-daemon".to_string();
        self.run(Transfer::NoSecret, async |client: &Client| {
            let found = self
                .search(
                    client,
                    &[(SERVICE_ATTR, SERVICE)],
                    &what,
                    self.prompt.is_some(),
                )
                .await?;
            let mut listing = Listing::default();
            for (item, locked) in &found {
                listing.locked |= *locked;
                let mut attributes = item
                    .get_attributes()
                    .await
                    .map_err(KeyringError::from_service)?;
                if *locked && !attributes.contains_key(SERVICE_ATTR) {
                    if self.prompt.is_none() {
                        return Err(KeyringError::Locked {
                            what: what(),
                            prompt: UnlockPrompt::NotAsked,
                        });
                    }
                    self.unlock(client, &item.item_path, &what).await?;
                    listing.locked = false;
                    attributes = item
                        .get_attributes()
                        .await
                        .map_err(KeyringError::from_service)?;
                }
                if attributes.get(KIND_ATTR).map(String::as_str) == Some(OATH_PASSWORD_KIND) {
                    listing.oath_password = true;
                } else if let Some(section) = attributes.get(SECTION_ATTR) {
                    listing.keys.push(StoredKeys {
                        section: section.clone(),
                        access_key_id: attributes.get(KEY_ID_ATTR).cloned(),
                    });
                }
            }
            listing.keys.sort_by(|a, b| a.section.cmp(&b.section));
            Ok(listing)
        })
    }

    /// Stores the OATH applet password, replacing any stored before.
    pub fn store_oath_password(&self, password: &SecretString) -> Result<(), KeyringError> {
        if password.expose_secret().is_empty() {
            return Err(KeyringError::InvalidSecret("is empty"));
        }
        let label = format!("{SERVICE}: OATH applet password");
        self.store(
            &label,
            &oath_password,
            &oath_attributes(),
            &oath_attributes(),
            password,
        )
    }

    /// The OATH applet password; unlocking as [`Keyring::long_term_secret`].
    pub fn oath_password(&self) -> Result<SecretString, KeyringError> {
        self.secret(&oath_attributes(), oath_password, || {
            KeyringError::OathPasswordNotFound
        })
    }

    /// Deletes the stored OATH applet password; returns how many items
    /// held it.
    pub fn delete_oath_password(&self) -> Result<usize, KeyringError> {
        match self.delete_items(&oath_attributes(), &oath_password)? {
            0 => Err(KeyringError::OathPasswordNotFound),
            n => Ok(n),
        }
    }

    /// Asks the service to unlock the default collection, as
    /// [`Keyring::long_term_secret`] does for its item, without waiting on
    /// the prompt: for when [`Keyring::key_id`] answered `Locked` (which
    /// never asks itself). `Ok` when the collection is unlocked now.
    pub fn request_unlock(&self) -> Result<(), KeyringError> {
        let what = || format!("the keys of {SERVICE}");
        self.run(Transfer::NoSecret, async |client: &Client| {
            self.unlocked_default(client, &what).await?;
            Ok(())
        })
    }

    /// Subscribes to the service's signals; see [`UnlockEvents`]. Call it
    /// from the daemon's runtime (the watch runs on it).
    pub async fn watch_unlock(&self) -> Result<UnlockEvents, KeyringError> {
        UnlockEvents::subscribe(&self.address).await
    }

    /// The secret of the one item matching `attributes`, unlocking as the
    /// mode says.
    fn secret(
        &self,
        attributes: &[(&str, &str)],
        what: impl Fn() -> String,
        not_found: impl Fn() -> KeyringError,
    ) -> Result<SecretString, KeyringError> {
        self.run(Transfer::Secret, async |client: &Client| {
            let mut found = self.search(client, attributes, &what, true).await?;
            let Some(item) = one(&mut found, &what)? else {
                return Err(not_found());
            };
            if item.is_locked().await.map_err(KeyringError::from_service)? {
                self.unlock(client, &item.item_path, &what).await?;
            }
            let bytes = Zeroizing::new(
                item.get_secret()
                    .await
                    .map_err(KeyringError::from_service)?,
            );
            let text =
                std::str::from_utf8(&bytes).map_err(|_| KeyringError::NotText { what: what() })?;
            Ok(SecretString::from(text))
        })
    }

    /// Creates the item in the default collection, then deletes the items
    /// that `old` finds elsewhere (other collections, an older key id), so
    /// that there is never a moment without keys.
    fn store(
        &self,
        label: &str,
        what: &dyn Fn() -> String,
        old: &[(&str, &str)],
        attributes: &[(&str, &str)],
        secret: &SecretString,
    ) -> Result<(), KeyringError> {
        self.run(Transfer::Secret, async |client: &Client| {
            let collection = self.unlocked_default(client, what).await?;
            let previous = client.search(old).await?;
            let created = collection
                .create_item(
                    label,
                    attributes.iter().copied().collect(),
                    secret.expose_secret().as_bytes(),
                    true,
                    CONTENT_TYPE,
                )
                .await
                .map_err(KeyringError::from_service)?;
            for (item, locked) in previous {
                if item.item_path == created.item_path {
                    continue;
                }
                if locked {
                    self.unlock(client, &item.item_path, what).await?;
                }
                item.delete().await.map_err(KeyringError::from_service)?;
            }
            Ok(())
        })
    }

    fn delete_items(
        &self,
        attributes: &[(&str, &str)],
        what: &dyn Fn() -> String,
    ) -> Result<usize, KeyringError> {
        self.run(Transfer::NoSecret, async |client: &Client| {
            let found = self.search(client, attributes, what, true).await?;
            let count = found.len();
            for (item, locked) in found {
                if locked {
                    self.unlock(client, &item.item_path, what).await?;
                }
                item.delete().await.map_err(KeyringError::from_service)?;
            }
            Ok(count)
        })
    }

    /// The items matching `attributes`, each with whether it is locked.
    /// Nothing found while the default collection is locked proves
    /// nothing (KeePassXC shows no items of a locked database): then the
    /// collection is unlocked as the mode says when `unlock`, and searched
    /// again, or the answer is `Locked`.
    async fn search<'c>(
        &self,
        client: &'c Client,
        attributes: &[(&str, &str)],
        what: &dyn Fn() -> String,
        unlock: bool,
    ) -> Result<Vec<(Item<'c>, bool)>, KeyringError> {
        let found = client.search(attributes).await?;
        if !found.is_empty() {
            return Ok(found);
        }
        let Some(collection) = client.locked_default().await? else {
            return Ok(found);
        };
        if !unlock {
            return Err(KeyringError::Locked {
                what: what(),
                prompt: UnlockPrompt::NotAsked,
            });
        }
        self.unlock(client, &collection, what).await?;
        client.search(attributes).await
    }

    /// The default collection, unlocked first when it is locked.
    async fn unlocked_default<'c>(
        &self,
        client: &'c Client,
        what: &dyn Fn() -> String,
    ) -> Result<secret_service::Collection<'c>, KeyringError> {
        let (collection, locked) = client
            .default_collection()
            .await?
            .ok_or(KeyringError::NoDefaultCollection)?;
        if locked {
            self.unlock(client, &collection.collection_path, what)
                .await?;
        }
        Ok(collection)
    }

    /// Unlocks `object` (an item or a collection). The commands show the
    /// prompt and wait; the daemon hands the prompt to a thread of its own
    /// and returns `Locked` unless the service unlocked without one.
    async fn unlock(
        &self,
        client: &Client,
        object: &OwnedObjectPath,
        what: &dyn Fn() -> String,
    ) -> Result<(), KeyringError> {
        let locked = |prompt| KeyringError::Locked {
            what: what(),
            prompt,
        };
        match self.prompt {
            Some(within) => match unlock::unlock_waiting(&client.conn, object, within).await? {
                Requested::Unlocked => Ok(()),
                Requested::Prompt(prompt) => Err(locked(prompt)),
            },
            None => match unlock::request(&self.prompts, &self.address, object.clone()).await? {
                Requested::Unlocked => Ok(()),
                Requested::Prompt(prompt) => Err(locked(prompt)),
            },
        }
    }

    /// Runs `op` against a fresh connection and session, on a runtime of
    /// its own, within [`CALL_TIMEOUT`] (plus the prompt's time when
    /// prompting).
    fn run<T>(
        &self,
        transfer: Transfer,
        op: impl AsyncFnOnce(&Client) -> Result<T, KeyringError>,
    ) -> Result<T, KeyringError> {
        let limit = CALL_TIMEOUT + self.prompt.unwrap_or_default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(KeyringError::Runtime)?;
        runtime.block_on(async {
            tokio::time::timeout(limit, async {
                let client = Client::connect(&self.address, transfer).await?;
                op(&client).await
            })
            .await
            .map_err(|_| KeyringError::Timeout(limit))?
        })
    }
}

/// Whether secrets cross the bus in an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transfer {
    /// Encrypt them (Diffie-Hellman, AES-128): a secret never crosses the
    /// bus, nor sits in the bus daemon's buffers, in clear.
    Secret,
    /// Attributes only: skip the key exchange (two 1024-bit modular
    /// exponentiations) on the planner's every pass.
    NoSecret,
}

/// One connection and one transfer session.
struct Client {
    conn: zbus::Connection,
    service: SecretService<'static>,
}

impl Client {
    async fn connect(address: &str, transfer: Transfer) -> Result<Client, KeyringError> {
        let conn = connect(address).await?;
        let encryption = match transfer {
            Transfer::Secret => EncryptionType::Dh,
            Transfer::NoSecret => EncryptionType::Plain,
        };
        let service = SecretService::connect_with_existing(encryption, conn.clone())
            .await
            .map_err(KeyringError::from_service)?;
        Ok(Client { conn, service })
    }

    /// The default collection and whether it is locked; `None` when the
    /// service has no default collection.
    async fn default_collection(
        &self,
    ) -> Result<Option<(secret_service::Collection<'_>, bool)>, KeyringError> {
        let collection = match self.service.get_default_collection().await {
            Ok(collection) => collection,
            Err(secret_service::Error::NoResult) => return Ok(None),
            Err(e) => return Err(KeyringError::from_service(e)),
        };
        let locked = collection
            .is_locked()
            .await
            .map_err(KeyringError::from_service)?;
        Ok(Some((collection, locked)))
    }

    /// The default collection's path when it is locked.
    async fn locked_default(&self) -> Result<Option<OwnedObjectPath>, KeyringError> {
        Ok(self
            .default_collection()
            .await?
            .filter(|(_, locked)| *locked)
            .map(|(collection, _)| collection.collection_path.clone()))
    }

    /// The items matching `attributes` in every collection, each with
    /// whether it is locked.
    async fn search(
        &self,
        attributes: &[(&str, &str)],
    ) -> Result<Vec<(Item<'_>, bool)>, KeyringError> {
        let found = self
            .service
            .search_items(attributes.iter().copied().collect::<HashMap<_, _>>())
            .await
            .map_err(KeyringError::from_service)?;
        let unlocked = found.unlocked.into_iter().map(|item| (item, false));
        let locked = found.locked.into_iter().map(|item| (item, true));
        Ok(unlocked.chain(locked).collect())
    }
}

/// The one item found, `None` for none, `Duplicate` for more.
fn one<'a>(
    found: &mut Vec<(Item<'a>, bool)>,
    what: impl Fn() -> String,
) -> Result<Option<Item<'a>>, KeyringError> {
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop().map(|(item, _)| item)),
        count => Err(KeyringError::Duplicate {
            what: what(),
            count,
        }),
    }
}

/// [`crate::session_bus::connect`], its failure as a keyring error.
pub(crate) async fn connect(address: &str) -> Result<zbus::Connection, KeyringError> {
    crate::session_bus::connect(address)
        .await
        .map_err(|e| KeyringError::BusUnreachable {
            address: address.to_string(),
            source: Box::new(e),
        })
}

/// A path as a D-Bus address value: bytes outside `[-0-9A-Za-z_/.\*]`
/// are `%XX`-escaped (D-Bus specification, "Server Addresses").
fn escape_address(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_/.*".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

fn section_attributes(section: &str) -> Vec<(&'static str, &str)> {
    vec![(SERVICE_ATTR, SERVICE), (SECTION_ATTR, section)]
}

fn oath_attributes() -> Vec<(&'static str, &'static str)> {
    vec![(SERVICE_ATTR, SERVICE), (KIND_ATTR, OATH_PASSWORD_KIND)]
}

fn long_term_keys(section: &str) -> String {
    format!("the long-term keys of [{section}]")
}

fn oath_password() -> String {
    "the OATH applet password".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_address_from_the_environment() {
        let env =
            |name: &str| (name == "DBUS_SESSION_BUS_ADDRESS").then(|| "unix:path=/x".to_string());
        assert_eq!(Keyring::from_env(&env).unwrap().address(), "unix:path=/x");

        let dir = tempfile::tempdir().unwrap();
        let runtime = dir.path().join("run dir");
        std::fs::create_dir(&runtime).unwrap();
        let runtime_text = runtime.to_str().unwrap().to_string();
        let env = |name: &str| (name == "XDG_RUNTIME_DIR").then(|| runtime_text.clone());
        assert!(matches!(Keyring::from_env(&env), Err(KeyringError::NoBus)));
        std::os::unix::net::UnixListener::bind(runtime.join("bus")).unwrap();
        let address = Keyring::from_env(&env).unwrap().address().to_string();
        assert!(address.starts_with("unix:path=/"), "{address}");
        assert!(address.ends_with("/run%20dir/bus"), "{address}");

        assert!(matches!(
            Keyring::from_env(&|_| None),
            Err(KeyringError::NoBus)
        ));
    }

    #[test]
    fn debug_masks_the_key_id() {
        let keys = StoredKeys {
            section: "prod".into(),
            access_key_id: Some("AKIAIOSFODNN7EXAMPLE".into()),
        };
        let shown = format!("{keys:?}");
        assert!(
            shown.contains("AKIA…MPLE") && !shown.contains("IOSFODNN7"),
            "{shown}"
        );
    }

    #[test]
    fn an_unreachable_bus_is_named() {
        let keyring = Keyring::at("unix:path=/nonexistent/aws-session-daemon-test-bus");
        let error = keyring.key_id("default").unwrap_err();
        assert!(
            matches!(error, KeyringError::BusUnreachable { .. }),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .contains("/nonexistent/aws-session-daemon-test-bus")
        );
    }
}
