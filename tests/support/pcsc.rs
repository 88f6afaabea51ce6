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
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use pcsc::{Context, ReaderState, Scope, State};

/// vpcd's readers and the TCP ports their virtual cards connect to.
pub const READER_0: &str = "Virtual PCD 00 00";
pub const READER_1: &str = "Virtual PCD 00 01";
pub const PORT_0: u16 = 35963;
pub const PORT_1: u16 = 35964;

const INSTALL: &str = "install them with `apt-get install pcscd vsmartcard-vpcd libpcsclite-dev` \
     (scripts/install-deps.sh does)";

/// Holds the vpcd readers for one test (an `flock` on a file in /tmp,
/// released when dropped, also when the test panics or the process dies).
pub struct ReaderLock(File);

pub fn lock_readers() -> ReaderLock {
    let file = reader_lock_file();
    // SAFETY: flock on a descriptor we own; blocks until the lock is free.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
    ReaderLock(file)
}

fn reader_lock_file() -> File {
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("aws-session-daemon-vpcd.lock"))
        .expect("creating the vpcd lock file")
}

/// [`lock_readers`], giving up after `timeout`.
fn lock_readers_within(timeout: Duration) -> Option<ReaderLock> {
    let file = reader_lock_file();
    let deadline = Instant::now() + timeout;
    // SAFETY: flock on a descriptor we own, without blocking.
    while unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(ReaderLock(file))
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
    try_ensure_pcscd().unwrap_or_else(|e| panic!("{e}"))
}

/// [`ensure_pcscd`], saying what went wrong instead of failing the test.
pub fn try_ensure_pcscd() -> Result<(), String> {
    {
        // Tests run in parallel threads: one of them starts pcscd.
        static STARTING: Mutex<()> = Mutex::new(());
        let _starting = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        if Context::establish(Scope::User).is_err() {
            if !is_root() {
                return Err(format!(
                    "pcscd is not running and this process is not root, so it cannot start it: \
                     start it (`sudo systemctl start pcscd.socket` or `sudo pcscd`), or {INSTALL}"
                ));
            }
            try_start_pcscd()?;
        }
    }
    // A pcscd without the vpcd reader after this long is started again
    // (at most `RESTARTS` times, root only); after `deadline`, an error.
    const RESTART_AFTER: Duration = Duration::from_secs(2);
    const RESTARTS: u32 = 3;
    let mut restarts = 0;
    let mut restart_at = Instant::now() + RESTART_AFTER;
    let mut deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // The pcscd found above may be one that the previous test binary
        // started and is stopping at its exit: when it is gone, start ours.
        let ctx = match Context::establish(Scope::User) {
            Ok(ctx) => ctx,
            Err(_) if is_root() => {
                let _restarting = RESTARTING.lock().unwrap_or_else(|e| e.into_inner());
                if Context::establish(Scope::User).is_err() {
                    try_start_pcscd()?;
                }
                Context::establish(Scope::User).map_err(|e| format!("PC/SC context: {e}"))?
            }
            Err(e) => return Err(format!("PC/SC context: {e}")),
        };
        let readers = ctx.list_readers_owned().unwrap_or_default();
        if has_reader_0(&readers) {
            return Ok(());
        }
        if Instant::now() > restart_at && restarts < RESTARTS && is_root() {
            // vpcd could not listen on its port when this pcscd started
            // (three times in some ten suite runs, cause unknown): a new
            // pcscd gets a new try. Nobody uses a reader that is not there.
            restarts += 1;
            let _restarting = RESTARTING.lock().unwrap_or_else(|e| e.into_inner());
            // Another test thread may have restarted it while this one
            // waited for the lock.
            if vpcd_reader_present() {
                return Ok(());
            }
            eprintln!(
                "pcscd has no vpcd reader after {RESTART_AFTER:?}; starting it again ({restarts}/{RESTARTS}). {}",
                port_holders()
            );
            try_stop_pcscd()?;
            try_start_pcscd()?;
            restart_at = Instant::now() + RESTART_AFTER;
            deadline = deadline.max(Instant::now() + Duration::from_secs(3));
            continue;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "pcscd runs but has no vpcd reader {READER_0:?} (readers: {readers:?}): \
                 vsmartcard-vpcd is missing ({INSTALL}, then restart pcscd), or another \
                 program holds its port (\"Address already in use\" in pcscd's log). {}\n\
                 pcscd's log ({}):\n{}",
                port_holders(),
                pcscd_log().display(),
                log_tail()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn has_reader_0(readers: &[CString]) -> bool {
    readers.iter().any(|r| r.to_string_lossy() == READER_0)
}

/// Whether the running pcscd has vpcd's first reader now.
fn vpcd_reader_present() -> bool {
    Context::establish(Scope::User)
        .ok()
        .and_then(|ctx| ctx.list_readers_owned().ok())
        .is_some_and(|readers| has_reader_0(&readers))
}

/// Serialises the restarts of pcscd among this process's test threads.
static RESTARTING: Mutex<()> = Mutex::new(());

/// The log of the pcscd this process starts (its standard error).
fn pcscd_log() -> PathBuf {
    std::env::temp_dir().join(format!(
        "aws-session-daemon-pcscd-{}.log",
        std::process::id()
    ))
}

/// The end of [`pcscd_log`].
fn log_tail() -> String {
    let log = std::fs::read_to_string(pcscd_log()).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The sockets on vpcd's ports, as `ss` shows them (for a failure's message).
fn port_holders() -> String {
    let output = Command::new("ss")
        .args(["-tanp"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let on_ports: Vec<&str> = output
        .lines()
        .filter(|l| l.contains(&format!(":{PORT_0} ")) || l.contains(&format!(":{PORT_1} ")))
        .collect();
    format!("Sockets on ports {PORT_0} and {PORT_1}: {on_ports:#?}")
}

/// The pcscd this process started, stopped when the process exits.
static STARTED: Mutex<Option<Child>> = Mutex::new(None);

/// Starts `pcscd -f` and waits until it answers. It belongs to this
/// process: stopped (and awaited, so that the next test binary finds no
/// pcscd still shutting down) when the process exits, and sent SIGTERM by
/// the kernel if the process dies without exiting.
pub fn start_pcscd() {
    try_start_pcscd().unwrap_or_else(|e| panic!("{e}"))
}

/// Whether this pcscd asks polkit who may use it (pcsc-lite 2: Debian 13).
/// The one the tests start serves only the virtual key on 127.0.0.1, on
/// machines with no polkit daemon (CI, containers): there polkit would
/// refuse every client (SCARD_W_SECURITY_VIOLATION).
fn pcscd_asks_polkit() -> bool {
    static ASKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ASKS.get_or_init(|| {
        Command::new("pcscd").arg("--help").output().is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout).contains("--disable-polkit")
                || String::from_utf8_lossy(&o.stderr).contains("--disable-polkit")
        })
    })
}

/// [`start_pcscd`], saying what went wrong instead of failing the test.
pub fn try_start_pcscd() -> Result<(), String> {
    std::fs::create_dir_all("/run/pcscd").map_err(|e| format!("creating /run/pcscd: {e}"))?;
    let log = File::options()
        .create(true)
        .append(true)
        .open(pcscd_log())
        .map_err(|e| format!("{}: {e}", pcscd_log().display()))?;
    let mut command = Command::new("pcscd");
    command.arg("-f");
    if pcscd_asks_polkit() {
        command.arg("--disable-polkit");
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        // Not in the tests' process group: a Ctrl-C goes to the tests only,
        // and their end stops pcscd with SIGTERM.
        .process_group(0);
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let child = spawn_from_lasting_thread(command)
        .map_err(|e| format!("cannot start pcscd ({e}): {INSTALL}"))?;
    {
        let mut started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut previous) = started.replace(child) {
            let _ = previous.try_wait(); // reap the one stop_pcscd stopped
        }
    }
    static AT_EXIT: std::sync::Once = std::sync::Once::new();
    AT_EXIT.call_once(|| {
        // SAFETY: registers a plain function without arguments.
        unsafe { libc::atexit(stop_started_pcscd) };
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while Context::establish(Scope::User).is_err() {
        if Instant::now() > deadline {
            return Err("pcscd did not come up within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Spawns `command` from a thread that lives as long as the process: the
/// parent-death signal fires when the spawning *thread* ends, and each test
/// runs on a thread of its own.
fn spawn_from_lasting_thread(command: Command) -> std::io::Result<Child> {
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: Mutex<Option<mpsc::Sender<Request>>> = Mutex::new(None);
    let (answer, answered) = mpsc::channel();
    {
        let mut spawner = SPAWNER.lock().unwrap_or_else(|e| e.into_inner());
        let requests = spawner.get_or_insert_with(|| {
            let (requests, received) = mpsc::channel::<Request>();
            std::thread::spawn(move || {
                for (mut command, answer) in received {
                    let _ = answer.send(command.spawn());
                }
            });
            requests
        });
        requests
            .send((command, answer))
            .map_err(|_| std::io::Error::other("the spawning thread is gone"))?;
    }
    answered
        .recv()
        .map_err(|_| std::io::Error::other("the spawning thread is gone"))?
}

extern "C" fn stop_started_pcscd() {
    // try_lock: a thread still running at exit may hold it; then the
    // parent-death signal stops pcscd instead.
    let Ok(mut started) = STARTED.try_lock() else {
        return;
    };
    if let Some(mut child) = started.take() {
        // A test in another process (another test binary running at the
        // same time) may be using this pcscd: wait until no test holds the
        // readers (up to a minute), and hold them while pcscd stops.
        let _readers = lock_readers_within(Duration::from_secs(60));
        // SAFETY: signals our own child by id.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(child.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(pcscd_log());
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
/// gone. Only for the restart tests; needs root. A pcscd this process did
/// not start is stopped all the same, and [`start_pcscd`]'s replacement
/// then belongs to the tests: restart tests do not keep a pcscd that runs
/// outside the tests running.
pub fn stop_pcscd() {
    try_stop_pcscd().unwrap_or_else(|e| panic!("{e}"))
}

/// [`stop_pcscd`], saying what went wrong instead of failing the test.
fn try_stop_pcscd() -> Result<(), String> {
    if !is_root() {
        return Err("restarting pcscd needs root".into());
    }
    let pid = pcscd_pid().ok_or("pcscd writes /run/pcscd/pcscd.pid, but there is none")?;
    // SAFETY: signals one process by id; no memory involved.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    // SAFETY: signal 0 only checks that the process exists.
    while unsafe { libc::kill(pid, 0) } == 0 && Path::new(&format!("/proc/{pid}")).exists() {
        if is_zombie(pid) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("pcscd {pid} did not stop within 10 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
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
    try_wait_for_card(reader, present, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// [`wait_for_card`], saying what went wrong instead of failing the test.
pub fn try_wait_for_card(
    reader: &str,
    present: bool,
    timeout: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    let ctx = Context::establish(Scope::User).map_err(|e| format!("PC/SC context: {e}"))?;
    let name = CString::new(reader).map_err(|e| format!("reader name {reader:?}: {e}"))?;
    let mut states = [ReaderState::new(name, State::UNAWARE)];
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        match ctx.get_status_change(left.min(Duration::from_millis(500)), &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(e) => return Err(format!("waiting for {reader:?}: {e}")),
        }
        let s = states[0].event_state();
        let done = if present {
            s.contains(State::PRESENT) && !s.contains(State::MUTE)
        } else {
            !s.contains(State::PRESENT)
        };
        if done {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return Err(format!(
                "reader {reader:?} did not become {} within {timeout:?} (state {s:?})",
                if present { "present" } else { "empty" }
            ));
        }
        states[0].sync_current_state();
    }
}

/// The virtual YubiKey's command line.
#[derive(Clone)]
pub struct CardConfig {
    pub port: u16,
    pub credentials_toml: String,
    pub args: Vec<String>,
    /// The program; `None`: `examples/virtual_yubikey.rs`, built on demand.
    pub binary: Option<PathBuf>,
}

impl CardConfig {
    pub fn new(credentials_toml: &str) -> Self {
        CardConfig {
            port: PORT_0,
            credentials_toml: credentials_toml.to_string(),
            args: Vec::new(),
            binary: None,
        }
    }
    pub fn binary(mut self, path: &Path) -> Self {
        self.binary = Some(path.to_path_buf());
        self
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

impl VirtualCard {
    /// Starts the card and waits until pcscd sees it in its reader.
    pub fn start(config: CardConfig) -> VirtualCard {
        VirtualCard::try_start(config).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`VirtualCard::start`], saying what went wrong instead of failing
    /// the test.
    pub fn try_start(config: CardConfig) -> Result<VirtualCard, String> {
        let reader = match config.port {
            PORT_0 => READER_0,
            PORT_1 => READER_1,
            p => return Err(format!("no vpcd reader for port {p}")),
        };
        let binary = match config.binary {
            Some(path) => path,
            None => crate::example_bin::try_example("virtual_yubikey", true)?,
        };
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir for the card: {e}"))?;
        let credentials = dir.path().join("credentials.toml");
        std::fs::write(&credentials, &config.credentials_toml)
            .map_err(|e| format!("{}: {e}", credentials.display()))?;
        let counter_file = dir.path().join("calculations");
        let child = Command::new(&binary)
            .arg("--port")
            .arg(config.port.to_string())
            .arg("--credentials")
            .arg(&credentials)
            .arg("--counter-file")
            .arg(&counter_file)
            .args(&config.args)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the virtual YubiKey {}: {e}", binary.display()))?;
        let card = VirtualCard {
            child,
            reader,
            counter_file,
            _dir: dir,
        };
        try_wait_for_card(reader, true, Duration::from_secs(10))?;
        Ok(card)
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
        if Context::establish(Scope::User).is_ok()
            && let Err(e) = try_wait_for_card(self.reader, false, Duration::from_secs(10))
            && !std::thread::panicking()
        {
            panic!("{e}");
        }
    }
}
