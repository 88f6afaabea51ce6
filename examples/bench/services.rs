//! The outside systems the benchmarks run against, all on 127.0.0.1: pcscd
//! with vsmartcard's vpcd reader and the virtual YubiKey
//! (`examples/virtual_yubikey.rs`), moto_server as STS, and the STS fault
//! front (`examples/sts_fault_front`) in front of it for request counts.
//! The logic follows `tests/support/*.rs`; every process started here is
//! killed when its guard drops.

use std::ffi::CString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use pcsc::{Context, ReaderState, Scope, State};

/// The vpcd reader the virtual YubiKey plugs into, and its port.
pub const READER: &str = "Virtual PCD 00 00";
pub const VPCD_PORT: u16 = 35963;

/// Where the programs the benchmarks start live: the profile directory of
/// this benchmark's own build (`target/release` for `cargo run --release`).
pub struct Binaries {
    pub daemon: PathBuf,
    pub sts_front: PathBuf,
    pub virtual_yubikey: PathBuf,
}

impl Binaries {
    /// Builds the daemon and the two helper programs for this profile
    /// (`cargo build`, a no-op when they are fresh) unless `build` is false.
    pub fn locate(build: bool, daemon: Option<PathBuf>) -> Result<Binaries, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
        // target/PROFILE/examples/bench -> target/PROFILE
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .ok_or("the benchmark is not in target/PROFILE/examples")?
            .to_path_buf();
        if build {
            let target_dir = profile_dir.parent().ok_or("no target dir")?;
            let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()));
            // Variables cargo sets for a package being run; passed on, some
            // build scripts would see a change and rebuild.
            for (variable, _) in std::env::vars_os() {
                let variable = variable.to_string_lossy();
                if [
                    "CARGO_PKG_",
                    "CARGO_MANIFEST_",
                    "CARGO_CRATE_",
                    "CARGO_BIN_",
                    "CARGO_PRIMARY_PACKAGE",
                    "OUT_DIR",
                ]
                .iter()
                .any(|p| variable.starts_with(p))
                {
                    cargo.env_remove(variable.as_ref());
                }
            }
            cargo
                .args(["build", "--quiet", "--bin", "aws-session-daemon"])
                .args([
                    "--example",
                    "sts_fault_front",
                    "--example",
                    "virtual_yubikey",
                ])
                .arg("--manifest-path")
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
                .env("CARGO_TARGET_DIR", target_dir);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cargo.arg("--release");
            }
            let status = cargo.status().map_err(|e| format!("cargo build: {e}"))?;
            if !status.success() {
                return Err("cargo build of the daemon and the helper programs failed".into());
            }
        }
        let binaries = Binaries {
            daemon: daemon.unwrap_or_else(|| profile_dir.join("aws-session-daemon")),
            sts_front: profile_dir.join("examples/sts_fault_front"),
            virtual_yubikey: profile_dir.join("examples/virtual_yubikey"),
        };
        for path in [
            &binaries.daemon,
            &binaries.sts_front,
            &binaries.virtual_yubikey,
        ] {
            if !path.exists() {
                return Err(format!("{} is missing", path.display()));
            }
        }
        Ok(binaries)
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind 127.0.0.1:0")
}

/// Holds the vpcd readers (the same `flock` the tests take), so that a
/// benchmark and a test never share the virtual card slot.
pub struct ReaderLock(#[allow(dead_code)] File);

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

/// Makes sure pcscd runs (starts `pcscd -f` in its own process group when
/// it does not, which needs root) and has the vpcd reader.
pub fn ensure_pcscd() -> Result<(), String> {
    if Context::establish(Scope::User).is_err() {
        std::fs::create_dir_all("/run/pcscd").map_err(|e| format!("/run/pcscd: {e}"))?;
        Command::new("pcscd")
            .arg("-f")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| {
                format!("cannot start pcscd ({e}): apt-get install pcscd vsmartcard-vpcd")
            })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Context::establish(Scope::User).is_err() {
            if Instant::now() > deadline {
                return Err("pcscd did not come up within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let ctx = Context::establish(Scope::User).map_err(|e| format!("PC/SC: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let readers = ctx.list_readers_owned().unwrap_or_default();
        if readers.iter().any(|r| r.to_string_lossy() == READER) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "pcscd has no vpcd reader {READER:?}: apt-get install vsmartcard-vpcd, restart pcscd"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for_card(present: bool, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    let ctx = Context::establish(Scope::User).map_err(|e| format!("PC/SC: {e}"))?;
    let mut states = [ReaderState::new(
        CString::new(READER).unwrap(),
        State::UNAWARE,
    )];
    loop {
        let _ = ctx.get_status_change(Duration::from_millis(200), &mut states);
        let s = states[0].event_state();
        let done = if present {
            s.contains(State::PRESENT) && !s.contains(State::MUTE)
        } else {
            !s.contains(State::PRESENT)
        };
        if done {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(format!("the virtual card did not become present={present}"));
        }
        states[0].sync_current_state();
    }
}

/// The virtual YubiKey, with one TOTP credential.
pub struct VirtualCard {
    child: Child,
    counter_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl VirtualCard {
    pub fn start(binary: &Path, credential_name: &str, secret_hex: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let credentials = dir.path().join("credentials.toml");
        std::fs::write(
            &credentials,
            format!(
                "[[credential]]\nname = {credential_name:?}\ntype = \"totp\"\nalgorithm = \"sha1\"\ndigits = 6\nsecret_hex = \"{secret_hex}\"\ntouch = false\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        let counter_file = dir.path().join("calculations");
        let child = Command::new(binary)
            .args(["--port", &VPCD_PORT.to_string(), "--credentials"])
            .arg(&credentials)
            .arg("--counter-file")
            .arg(&counter_file)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the virtual YubiKey: {e}"))?;
        let card = VirtualCard {
            child,
            counter_file,
            _dir: dir,
        };
        wait_for_card(true, Duration::from_secs(10))?;
        Ok(card)
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
        let _ = wait_for_card(false, Duration::from_secs(10));
    }
}

/// moto_server on a free port.
pub struct Moto {
    child: Child,
    pub url: String,
}

impl Moto {
    pub fn start() -> Result<Moto, String> {
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new("moto_server")
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| {
                    format!("cannot start moto_server ({e}): pip install 'moto[server]'")
                })?;
            let mut moto = Moto {
                child,
                url: format!("http://127.0.0.1:{port}"),
            };
            let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(30) {
                if let Ok(Some(_)) = moto.child.try_wait() {
                    break;
                }
                if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                    return Ok(moto);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Err("moto_server did not start".into())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The STS fault front before moto: it checks TOTP codes like AWS and
/// counts requests per Action (`GET /__stats`).
pub struct StsFront {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    address: String,
    pub url: String,
}

impl StsFront {
    pub fn start(binary: &Path, upstream: &str, args: &[String]) -> Result<StsFront, String> {
        let mut child = Command::new(binary)
            .args(["--upstream", upstream, "--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting sts_fault_front: {e}"))?;
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let Some(address) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            return Err(format!("sts_fault_front did not start: {line:?}"));
        };
        let address = address.to_string();
        Ok(StsFront {
            child,
            _stdout: stdout,
            url: format!("http://{address}"),
            address,
        })
    }

    fn exchange(&self, method: &str, path: &str, body: &str) -> String {
        let mut stream = TcpStream::connect(&self.address).expect("connect to the front");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.address,
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }

    pub fn reset_stats(&self) {
        self.exchange("POST", "/__control", r#"{"op":"reset_stats"}"#);
    }

    /// (GetSessionToken, AssumeRole) requests since the last reset.
    pub fn counts(&self) -> (u64, u64) {
        let stats: serde_json::Value =
            serde_json::from_str(&self.exchange("GET", "/__stats", "")).unwrap_or_default();
        let n = |action: &str| stats["actions"][action].as_u64().unwrap_or(0);
        (n("GetSessionToken"), n("AssumeRole"))
    }
}

impl Drop for StsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
