//! Helpers for tests through the real PC/SC stack: pcscd with vsmartcard's
//! vpcd driver, and the virtual YubiKey (`examples/virtual_yubikey.rs`).
//!
//! Tests that use the vpcd readers take [`lock_readers`] first: cargo runs
//! the tests of one binary in parallel threads (and several binaries at
//! once), and vpcd has one card slot per reader.

#![allow(dead_code)] // each test binary uses a part

use std::ffi::CString;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pcsc::{Context, ReaderState, Scope, State};

/// vpcd's readers and the TCP ports their virtual cards connect to.
pub const READER_0: &str = "Virtual PCD 00 00";
pub const READER_1: &str = "Virtual PCD 00 01";
pub const PORT_0: u16 = 35963;
pub const PORT_1: u16 = 35964;

const INSTALL: &str = "install them with `apt-get install pcscd vsmartcard-vpcd libpcsclite-dev`";

/// Holds the vpcd readers for one test (an `flock` on a file in /tmp,
/// released when dropped, also when the test panics or the process dies).
pub struct ReaderLock(File);

pub fn lock_readers() -> ReaderLock {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("aws-session-daemon-vpcd.lock"))
        .expect("creating the vpcd lock file");
    // SAFETY: flock on a descriptor we own; blocks until the lock is free.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
    ReaderLock(file)
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Makes sure pcscd runs and has the vpcd readers: starts `pcscd -f` if it
/// is not running and we are root; otherwise fails saying what to install
/// or start. Never skips.
pub fn ensure_pcscd() {
    if Context::establish(Scope::User).is_err() {
        assert!(
            is_root(),
            "pcscd is not running and this test is not root, so it cannot start it: \
             start it (`sudo systemctl start pcscd.socket` or `sudo pcscd`), or {INSTALL}"
        );
        start_pcscd();
    }
    let ctx = Context::establish(Scope::User).expect("PC/SC context");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let readers = ctx.list_readers_owned().unwrap_or_default();
        if readers.iter().any(|r| r.to_string_lossy() == READER_0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pcscd runs but has no vpcd reader {READER_0:?} (readers: {readers:?}); \
             vsmartcard-vpcd is missing: {INSTALL}, then restart pcscd"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `pcscd -f` in its own process group (it outlives the test, like
/// the one CI starts) and waits until it answers.
pub fn start_pcscd() {
    std::fs::create_dir_all("/run/pcscd").expect("creating /run/pcscd");
    let spawned = Command::new("pcscd")
        .arg("-f")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    if let Err(e) = spawned {
        panic!("cannot start pcscd ({e}): {INSTALL}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Context::establish(Scope::User).is_err() {
        assert!(
            Instant::now() < deadline,
            "pcscd did not come up within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pcscd_pid() -> Option<i32> {
    std::fs::read_to_string("/run/pcscd/pcscd.pid")
        .ok()?
        .trim_matches(|c: char| c.is_whitespace() || c == '\0')
        .parse()
        .ok()
}

/// Stops pcscd (SIGTERM to the pid in its pid file) and waits until it is
/// gone. Only for the restart test; needs root.
pub fn stop_pcscd() {
    assert!(is_root(), "restarting pcscd needs root");
    let pid = pcscd_pid().expect("pcscd writes /run/pcscd/pcscd.pid");
    // SAFETY: signals one process by id; no memory involved.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    // SAFETY: signal 0 only checks that the process exists.
    while unsafe { libc::kill(pid, 0) } == 0 && Path::new(&format!("/proc/{pid}")).exists() {
        if is_zombie(pid) {
            break;
        }
        assert!(Instant::now() < deadline, "pcscd {pid} did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}

/// Waits until `reader` shows a card (`present`) or none; returns how long
/// it took.
pub fn wait_for_card(reader: &str, present: bool, timeout: Duration) -> Duration {
    let start = Instant::now();
    let ctx = Context::establish(Scope::User).expect("PC/SC context");
    let mut states = [ReaderState::new(
        CString::new(reader).unwrap(),
        State::UNAWARE,
    )];
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        match ctx.get_status_change(left.min(Duration::from_millis(500)), &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(e) => panic!("waiting for {reader:?}: {e}"),
        }
        let s = states[0].event_state();
        let done = if present {
            s.contains(State::PRESENT) && !s.contains(State::MUTE)
        } else {
            !s.contains(State::PRESENT)
        };
        if done {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "reader {reader:?} did not become {} within {timeout:?} (state {s:?})",
            if present { "present" } else { "empty" }
        );
        states[0].sync_current_state();
    }
}

/// The virtual YubiKey's command line.
#[derive(Clone)]
pub struct CardConfig {
    pub port: u16,
    pub credentials_toml: String,
    pub args: Vec<String>,
}

impl CardConfig {
    pub fn new(credentials_toml: &str) -> Self {
        CardConfig {
            port: PORT_0,
            credentials_toml: credentials_toml.to_string(),
            args: Vec::new(),
        }
    }
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }
}

/// A running virtual YubiKey process, killed (and its removal awaited)
/// when dropped.
pub struct VirtualCard {
    child: Child,
    pub reader: &'static str,
    pub counter_file: PathBuf,
    _dir: tempfile::TempDir,
}

fn virtual_yubikey_binary() -> PathBuf {
    crate::example_bin::path("virtual_yubikey")
}

impl VirtualCard {
    /// Starts the card and waits until pcscd sees it in its reader.
    pub fn start(config: CardConfig) -> VirtualCard {
        let reader = match config.port {
            PORT_0 => READER_0,
            PORT_1 => READER_1,
            p => panic!("no vpcd reader for port {p}"),
        };
        let dir = tempfile::tempdir().unwrap();
        let credentials = dir.path().join("credentials.toml");
        std::fs::write(&credentials, &config.credentials_toml).unwrap();
        let counter_file = dir.path().join("calculations");
        let child = Command::new(virtual_yubikey_binary())
            .arg("--port")
            .arg(config.port.to_string())
            .arg("--credentials")
            .arg(&credentials)
            .arg("--counter-file")
            .arg(&counter_file)
            .args(&config.args)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting the virtual YubiKey");
        let card = VirtualCard {
            child,
            reader,
            counter_file,
            _dir: dir,
        };
        wait_for_card(reader, true, Duration::from_secs(10));
        card
    }

    fn signal(&self, signal: i32) {
        // SAFETY: signals our own child process by id.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Pulls the key out (SIGUSR1).
    pub fn unplug(&self) {
        self.signal(libc::SIGUSR1);
    }

    /// Plugs it back in (SIGUSR2).
    pub fn plug(&self) {
        self.signal(libc::SIGUSR2);
    }

    /// CALCULATE and CALCULATE ALL commands answered so far.
    pub fn calculations(&self) -> u64 {
        std::fs::read_to_string(&self.counter_file)
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0)
    }
}

impl Drop for VirtualCard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The next test's card must not find this one still "present".
        if Context::establish(Scope::User).is_ok() {
            wait_for_card(self.reader, false, Duration::from_secs(10));
        }
    }
}
