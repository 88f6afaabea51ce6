//! A real Secret Service for one test: a private session bus and
//! GNOME Keyring's daemon on it, unlocked with a password on its standard
//! input, with HOME, XDG_DATA_HOME (the keyring files) and XDG_RUNTIME_DIR
//! in a temporary directory. Both processes are killed when the guard is
//! dropped.
//!
//! The bus activates nothing (its config names no service directories): a
//! test without the keyring sees no Secret Service rather than one the bus
//! started against the real home, and a prompt finds no prompter and ends
//! at once, as on a machine without a desktop.
//!
//! Missing programs fail the test with the install command: these tests
//! are never skipped silently.

#![allow(dead_code)]

#[path = "dbus_daemon.rs"]
mod dbus_daemon;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};

/// The login keyring's password.
pub const PASSWORD: &str = "rig-keyring-password";

const SECRETS: &str = "org.freedesktop.secrets";
const SERVICE_PATH: &str = "/org/freedesktop/secrets";
const SERVICE: &str = "org.freedesktop.Secret.Service";

pub struct SecretServiceRig {
    dir: tempfile::TempDir,
    bus: dbus_daemon::DbusDaemon,
    keyring: Option<Child>,
    /// The private bus's address (DBUS_SESSION_BUS_ADDRESS).
    pub address: String,
}

impl Drop for SecretServiceRig {
    fn drop(&mut self) {
        // The bus goes after (its guard is dropped with the rig).
        self.stop_keyring();
    }
}

impl SecretServiceRig {
    /// A bus with GNOME Keyring on it, its login collection unlocked.
    pub fn start() -> SecretServiceRig {
        let mut rig = Self::bus_only();
        rig.start_keyring(true);
        rig
    }

    /// A bus on which nothing provides the Secret Service.
    pub fn bus_only() -> SecretServiceRig {
        let dir = tempfile::tempdir().expect("temp dir for the Secret Service rig");
        for sub in ["home", "home/.local/share", "run", "bus"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("run"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                dir.path().join("bus").display()
            ),
        )
        .unwrap();
        let bus = dbus_daemon::start(
            &[format!("--config-file={}", config.display())],
            die_with_the_test,
        );
        SecretServiceRig {
            dir,
            address: bus.address.clone(),
            bus,
            keyring: None,
        }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// Where GNOME Keyring keeps its (encrypted) keyring files.
    pub fn keyrings_dir(&self) -> PathBuf {
        self.home().join(".local/share/keyrings")
    }

    /// The environment of a program of the user's session on this bus.
    pub fn env(&self, command: &mut Command) {
        command
            .env("HOME", self.home())
            .env("XDG_DATA_HOME", self.home().join(".local/share"))
            .env("XDG_CONFIG_HOME", self.home().join(".config"))
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("GNOME_KEYRING_CONTROL")
            .env_remove("AWS_SHARED_CREDENTIALS_FILE")
            .env_remove("AWS_SESSION_DAEMON_LOG");
    }

    /// Starts gnome-keyring-daemon; `unlock`: with the login password on
    /// its standard input (creating the login keyring the first time), as
    /// PAM does at login. Without, the login collection stays locked, as
    /// after boot.
    pub fn start_keyring(&mut self, unlock: bool) {
        assert!(self.keyring.is_none(), "the keyring runs already");
        let log = std::fs::File::create(self.dir.path().join("gnome-keyring.log")).unwrap();
        let mut command = Command::new("gnome-keyring-daemon");
        die_with_the_test(&mut command);
        if unlock {
            command.arg("--unlock");
        }
        command
            .args(["--components=secrets", "--foreground"])
            .stdin(if unlock {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        self.env(&mut command);
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run gnome-keyring-daemon ({e}); install it: apt-get install gnome-keyring"
            )
        });
        if unlock {
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(PASSWORD.as_bytes()).unwrap();
        }
        self.keyring = Some(child);
        self.wait_for_service(Duration::from_secs(20));
    }

    /// Kills gnome-keyring-daemon: the bus then has no Secret Service.
    pub fn stop_keyring(&mut self) {
        if let Some(mut child) = self.keyring.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A restart without the password: the login collection is locked, and
    /// GNOME Keyring shows only hashes of the attributes until it is
    /// unlocked.
    pub fn restart_locked(&mut self) {
        self.stop_keyring();
        self.wait_for_no_service(Duration::from_secs(10));
        self.start_keyring(false);
    }

    fn wait_for_service(&self, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.has_service() && self.default_collection().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log =
            std::fs::read_to_string(self.dir.path().join("gnome-keyring.log")).unwrap_or_default();
        panic!("gnome-keyring-daemon did not appear on the bus within {limit:?}; its log:\n{log}");
    }

    fn wait_for_no_service(&self, limit: Duration) {
        let start = Instant::now();
        while self.has_service() {
            assert!(
                start.elapsed() < limit,
                "the Secret Service did not leave the bus"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn has_service(&self) -> bool {
        self.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "NameHasOwner",
            &(SECRETS,),
        )
        .and_then(|reply| reply.body().deserialize::<bool>())
        .unwrap_or(false)
    }

    /// The collection under the `default` alias.
    pub fn default_collection(&self) -> Option<OwnedObjectPath> {
        self.try_default_collection().ok().flatten()
    }

    fn try_default_collection(&self) -> zbus::Result<Option<OwnedObjectPath>> {
        let reply = self.call(SECRETS, SERVICE_PATH, SERVICE, "ReadAlias", &("default",))?;
        let path: OwnedObjectPath = reply.body().deserialize()?;
        Ok((path.as_str() != "/").then_some(path))
    }

    /// The default collection; a loaded machine may take a moment to show
    /// it again after a lock or unlock (seen once under a parallel build).
    fn expect_default_collection(&self) -> OwnedObjectPath {
        let start = Instant::now();
        loop {
            match self.try_default_collection() {
                Ok(Some(path)) => return path,
                Ok(None) if start.elapsed() < Duration::from_secs(10) => {}
                Ok(None) => panic!("the Secret Service has no default collection"),
                Err(e) if start.elapsed() < Duration::from_secs(10) => {
                    let _ = e;
                }
                Err(e) => panic!("ReadAlias(default): {e}"),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn collection_locked(&self) -> bool {
        let collection = self.expect_default_collection();
        let reply = self
            .call(
                SECRETS,
                collection.as_str(),
                "org.freedesktop.DBus.Properties",
                "Get",
                &("org.freedesktop.Secret.Collection", "Locked"),
            )
            .expect("the collection's Locked property");
        let value: OwnedValue = reply.body().deserialize().unwrap();
        bool::try_from(value).unwrap()
    }

    /// Locks the default collection through the Secret Service's `Lock`,
    /// as a screen locker or `secret-tool lock` does.
    pub fn lock(&self) {
        let collection = self.expect_default_collection();
        let objects: Vec<ObjectPath<'_>> = vec![collection.as_ref()];
        self.call(SECRETS, SERVICE_PATH, SERVICE, "Lock", &(objects,))
            .expect("Lock");
        assert!(self.collection_locked());
    }

    /// Unlocks the default collection with its password, through GNOME
    /// Keyring's own interface (what its prompt does once the user typed
    /// the password; there is no prompter here).
    pub fn unlock(&self) {
        let collection = self.expect_default_collection();
        self.with_connection(|conn| async move {
            let reply = conn
                .call_method(
                    Some(SECRETS),
                    SERVICE_PATH,
                    Some(SERVICE),
                    "OpenSession",
                    &("plain", Value::from("")),
                )
                .await?;
            let (_, session): (OwnedValue, OwnedObjectPath) = reply.body().deserialize()?;
            let secret = (
                session,
                Vec::<u8>::new(),
                PASSWORD.as_bytes().to_vec(),
                "text/plain",
            );
            conn.call_method(
                Some(SECRETS),
                SERVICE_PATH,
                Some("org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface"),
                "UnlockWithMasterPassword",
                &(collection, secret),
            )
            .await?;
            Ok(())
        })
        .expect("UnlockWithMasterPassword");
    }

    fn call<B>(
        &self,
        destination: &str,
        path: &str,
        interface: &str,
        method: &str,
        body: &B,
    ) -> zbus::Result<zbus::message::Message>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        self.with_connection(|conn| async move {
            conn.call_method(Some(destination), path, Some(interface), method, body)
                .await
        })
    }

    fn with_connection<T, F, Fut>(&self, f: F) -> zbus::Result<T>
    where
        F: FnOnce(zbus::Connection) -> Fut,
        Fut: std::future::Future<Output = zbus::Result<T>>,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let conn = zbus::connection::Builder::address(self.address.as_str())?
                .build()
                .await?;
            tokio::time::timeout(Duration::from_secs(10), f(conn))
                .await
                .map_err(|_| zbus::Error::Failure("no answer within 10 s".into()))?
        })
    }
}

/// Kills the child when the thread that started it ends, so that a test
/// aborted before its guard drops (a panic in a destructor) leaves no bus
/// or keyring running. The rig starts its processes on the test's thread.
fn die_with_the_test(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe, and nothing else runs between
    // fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Every regular file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file()
                && let Ok(bytes) = std::fs::read(&path)
                && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
            {
                found.push(path);
            }
        }
    }
    found
}
