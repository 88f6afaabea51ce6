//! Starts the IAM Identity Center stand-in (`examples/sso_front`) on a free
//! 127.0.0.1 port, reads its counts, changes its settings, and approves a
//! sign-in the way a browser does: it opens the verification URL, finds
//! the code in the page, and posts the form. Stopped (SIGKILL) when the
//! guard drops. Needs `example_bin` next to it. Set `SSO_FRONT_VERBOSE=1`
//! to see its request log.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

pub struct SsoFront {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    /// `127.0.0.1:PORT`
    pub address: String,
    /// `http://127.0.0.1:PORT`: the OIDC and the portal endpoint.
    pub url: String,
}

impl SsoFront {
    /// Starts the stand-in with `args` (its flags: `--interval-seconds 1`,
    /// `--sts-upstream URL`, ...), built first for this binary's profile.
    pub fn start(args: &[&str]) -> SsoFront {
        let binary = super::example_bin::path("sso_front");
        let verbose = std::env::var_os("SSO_FRONT_VERBOSE").is_some();
        let mut child = Command::new(&binary)
            .args(["--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if verbose {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let Some(address) = line
            .trim()
            .strip_prefix("listening on ")
            .filter(|a| a.starts_with("127.0.0.1:"))
            .map(str::to_string)
        else {
            let _ = child.kill();
            let status = child.wait().ok();
            panic!("sso_front did not start (said {line:?}, exit {status:?})");
        };
        SsoFront {
            child,
            _stdout: stdout,
            url: format!("http://{address}"),
            address,
        }
    }

    /// The process id, to stop it from a test.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One HTTP/1.1 exchange with the stand-in: (status, body).
    pub fn exchange(
        &self,
        method: &str,
        target: &str,
        content_type: &str,
        body: &str,
    ) -> (u16, String) {
        exchange(&self.address, method, target, content_type, body)
    }

    /// `POST /__control` (see the stand-in's `state.rs`).
    pub fn control(&self, command: serde_json::Value) {
        let (status, body) = self.exchange(
            "POST",
            "/__control",
            "application/json",
            &command.to_string(),
        );
        assert_eq!(status, 200, "control {command} refused: {body}");
    }

    /// `{"op": "set", ...}`: lifetimes, interval, latency, throttling.
    pub fn set(&self, mut settings: serde_json::Value) {
        settings["op"] = "set".into();
        self.control(settings);
    }

    /// `GET /__stats`: `{"calls": {op: n}, "outcomes": {"op:outcome": n},
    /// "pending": [{userCode, verificationUriComplete}], "issued": {key:
    /// {account_id, role_name}}, "clients": n}`.
    pub fn stats(&self) -> serde_json::Value {
        let (status, body) = self.exchange("GET", "/__stats", "text/plain", "");
        assert_eq!(status, 200, "stats: {body}");
        serde_json::from_str(&body).expect("stats are JSON")
    }

    /// Calls of `operation` so far (`RegisterClient`,
    /// `StartDeviceAuthorization`, `CreateToken:device_code`,
    /// `CreateToken:refresh_token`, `GetRoleCredentials`, `Approval`).
    pub fn calls(&self, operation: &str) -> u64 {
        self.stats()["calls"][operation].as_u64().unwrap_or(0)
    }

    /// Answers of `operation` with `outcome` (`GetRoleCredentials:throttled`).
    pub fn outcomes(&self, operation_outcome: &str) -> u64 {
        self.stats()["outcomes"][operation_outcome]
            .as_u64()
            .unwrap_or(0)
    }

    /// The verification URLs (with the code) of the sign-ins waiting now.
    pub fn pending(&self) -> Vec<String> {
        self.stats()["pending"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|p| p["verificationUriComplete"].as_str())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits (up to `timeout`) for a sign-in to wait for its approval, and
    /// returns its verification URL.
    pub fn wait_for_pending(&self, timeout: Duration) -> String {
        let started = std::time::Instant::now();
        loop {
            if let Some(url) = self.pending().into_iter().next() {
                return url;
            }
            assert!(
                started.elapsed() < timeout,
                "no sign-in started within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Answers a sign-in as the person in the browser would: GET the
/// verification URL (`http://127.0.0.1:PORT/device?user_code=CODE`), check
/// that the page shows `user_code`, POST the form with `decision`
/// (`approve` or `deny`). Returns the page that answered the form.
pub fn browser_decides(verification_url: &str, user_code: &str, decision: &str) -> String {
    let rest = verification_url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("{verification_url} is not http://"));
    let (address, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (status, page) = exchange(address, "GET", target, "text/plain", "");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!("value=\"{user_code}\"")),
        "the page does not show {user_code}: {page}"
    );
    let form = format!("user_code={user_code}&decision={decision}");
    let (status, answer) = exchange(
        address,
        "POST",
        "/device/approve",
        "application/x-www-form-urlencoded",
        &form,
    );
    assert_eq!(status, 200, "{answer}");
    answer
}

/// Approves the sign-in at `verification_url` (its code is in the URL).
pub fn approve(verification_url: &str) -> String {
    let code = verification_url
        .split("user_code=")
        .nth(1)
        .unwrap_or_else(|| panic!("{verification_url} has no user_code"))
        .to_string();
    browser_decides(verification_url, &code, "approve")
}

fn exchange(
    address: &str,
    method: &str,
    target: &str,
    content_type: &str,
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect to the stand-in");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: {address}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
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

impl Drop for SsoFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
