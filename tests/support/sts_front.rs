//! Starts the fault-injecting STS front (`examples/sts_fault_front`) in
//! front of an upstream (moto), on a free 127.0.0.1 port, and talks to its
//! control endpoint. The front is stopped (SIGKILL) when the guard drops.
//!
//! The binary is built once per test process with `cargo build --example
//! sts_fault_front` (a no-op when it is fresh), so `cargo test --test X` never
//! runs a stale front; the benchmark passes the one it built. Set
//! `STS_FRONT_VERBOSE=1` to see its request log.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

pub struct StsFront {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    /// `127.0.0.1:PORT`
    pub address: String,
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

impl StsFront {
    /// Starts the front before `upstream` (`http://127.0.0.1:PORT`), with
    /// extra arguments such as `--totp-secret SERIAL=SECRET`, and waits until
    /// it listens (it prints `listening on ADDRESS` once bound). The front
    /// is built on demand for this test binary's profile.
    pub fn start(upstream: &str, extra_args: &[&str]) -> StsFront {
        crate::example_bin::try_example("sts_fault_front", true)
            .and_then(|binary| StsFront::try_start_with(&binary, upstream, extra_args))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`StsFront::start`] with the front's `binary`, saying what went
    /// wrong instead of failing the test.
    pub fn try_start_with(
        binary: &Path,
        upstream: &str,
        extra_args: &[&str],
    ) -> Result<StsFront, String> {
        let verbose = std::env::var_os("STS_FRONT_VERBOSE").is_some();
        let mut child = Command::new(binary)
            .args(["--upstream", upstream, "--port", "0"])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if verbose {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let mut stdout = BufReader::new(child.stdout.take().expect("front stdout"));
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let Some(address) = line
            .trim()
            .strip_prefix("listening on ")
            .filter(|a| a.starts_with("127.0.0.1:"))
        else {
            let _ = child.kill();
            let status = child.wait().ok();
            return Err(format!(
                "sts_fault_front did not start (said {line:?}, exit {status:?})"
            ));
        };
        let address = address.to_string();
        Ok(StsFront {
            child,
            _stdout: stdout,
            url: format!("http://{address}"),
            address,
        })
    }

    fn exchange(&self, method: &str, path: &str, body: &str) -> (u16, String) {
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
        stream
            .read_to_string(&mut answer)
            .expect("read the front's answer");
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// Sends a control command (see the front's `faults.rs`).
    pub fn control(&self, command: serde_json::Value) {
        let (status, body) = self.exchange("POST", "/__control", &command.to_string());
        assert_eq!(status, 200, "control {command} refused: {body}");
    }

    /// Injects a fault: `{"fault": ..., "count"?, "for_ms"?, "action"?, "status"?, "delay_ms"?}`.
    pub fn inject(&self, mut fault: serde_json::Value) {
        fault["op"] = "inject".into();
        self.control(fault);
    }

    pub fn clear(&self) {
        self.control(serde_json::json!({ "op": "clear" }));
    }

    pub fn reset_stats(&self) {
        self.control(serde_json::json!({ "op": "reset_stats" }));
    }

    /// `GET /__stats`: `{"total", "actions": {Action: n}, "outcomes": {outcome: n},
    /// "by_action": {Action: {outcome: n}}, "delayed", "active_faults"}`.
    pub fn stats(&self) -> serde_json::Value {
        let (status, body) = self.exchange("GET", "/__stats", "");
        assert_eq!(status, 200, "stats: {body}");
        serde_json::from_str(&body).expect("stats are JSON")
    }

    /// Stops the front with SIGTERM and returns whether it exited cleanly.
    pub fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .is_ok_and(|s| s.success());
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return sent && status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for StsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
