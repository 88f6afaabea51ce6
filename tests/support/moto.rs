//! Starts a moto_server (PyPI `moto[server]`, from the project's Python
//! environment: `tools.rs`) on a free 127.0.0.1 port for one test and kills
//! it when the guard is dropped.
//!
//! A missing moto_server fails the test with the install command: these
//! tests are never skipped silently.

#![allow(dead_code)]

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub port: u16,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    log: tempfile::NamedTempFile,
}

/// A port that was free a moment ago (moto binds it itself, so a race with
/// another process is possible; `start` then tries another port).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("cannot bind 127.0.0.1:0")
        .port()
}

impl Moto {
    pub fn start() -> Moto {
        Moto::try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Moto::start`], saying what went wrong instead of failing the test.
    pub fn try_start() -> Result<Moto, String> {
        let moto_server = super::tools::try_tool("moto_server")?;
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log = tempfile::NamedTempFile::new()
                .map_err(|e| format!("temp file for moto's log: {e}"))?;
            let output = || {
                log.reopen()
                    .map(Stdio::from)
                    .map_err(|e| format!("reopen moto's log: {e}"))
            };
            let child = Command::new(&moto_server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(output()?)
                .stderr(output()?)
                .spawn()
                .map_err(|e| {
                    format!(
                        "cannot start {}: {e}; {}",
                        moto_server.display(),
                        super::tools::INSTALL
                    )
                })?;
            let mut moto = Moto {
                child,
                port,
                url: format!("http://127.0.0.1:{port}"),
                log,
            };
            match moto.wait_until_listening(Duration::from_secs(30)) {
                Ok(()) => return Ok(moto),
                Err(e) => last_error = e,
            }
        }
        Err(format!("moto_server did not start: {last_error}"))
    }

    fn wait_until_listening(&mut self, timeout: Duration) -> Result<(), String> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("moto_server exited with {status}: {}", self.log()));
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(format!(
                    "moto_server not listening on {address} after {timeout:?}: {}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What moto printed so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = self.log.reopen() {
            let _ = file.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
