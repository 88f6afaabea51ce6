//! systemd's watchdog: with `WATCHDOG_USEC` set (as `WatchdogSec=` makes
//! systemd do), the loop sends `WATCHDOG=1` to `$NOTIFY_SOCKET` while it
//! runs idle, and none while a pass is stuck, so that systemd restarts a
//! wedged daemon. The listener here stands where systemd's would.

#[path = "support/service_home.rs"]
mod service_home;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_aws-session-daemon");

/// One section whose code comes from `mfa_process`.
fn start(dir: &Path, mfa_process: &str, watchdog_pid: Option<&str>) -> (Child, UnixDatagram) {
    service_home::home_with_long_term_keys(dir);
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "region = \"us-east-1\"\nsts_endpoint = \"http://127.0.0.1:9\"\nprocess_timeout = 60\n\
             [s]\nmfa_serial_number = \"arn:aws:iam::123456789012:mfa/me\"\nmfa_process = \"{mfa_process}\"\n"
        ),
    )
    .unwrap();
    let socket_path = dir.join("notify");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let mut command = Command::new(BIN);
    command
        .args(["run", "--config"])
        .arg(dir.join("config.toml"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.join("home"))
        .env("XDG_RUNTIME_DIR", dir.join("run"))
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "1000000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap());
    if let Some(pid) = watchdog_pid {
        command.env("WATCHDOG_PID", pid);
    }
    if let Some(mark) = std::env::var_os("AWS_SESSION_DAEMON_TEST_RUN") {
        command.env("AWS_SESSION_DAEMON_TEST_RUN", mark);
    }
    (command.spawn().unwrap(), socket)
}

/// Every message received within `span`, with its arrival time.
fn listen(socket: &UnixDatagram, span: Duration) -> Vec<(Instant, String)> {
    let deadline = Instant::now() + span;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        if let Ok(n) = socket.recv(&mut buf) {
            got.push((
                Instant::now(),
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            ));
        }
    }
    got
}

fn pings(messages: &[(Instant, String)]) -> Vec<Instant> {
    messages
        .iter()
        .filter(|(_, m)| m.lines().any(|l| l == "WATCHDOG=1"))
        .map(|(at, _)| *at)
        .collect()
}

fn stop(mut child: Child, dir: &Path) -> String {
    service_home::stop(&mut child, Duration::from_secs(10));
    std::fs::read_to_string(dir.join("stderr")).unwrap_or_default()
}

#[test]
fn an_idle_loop_pings_at_half_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    // The code source fails at once: the section backs off, the loop idles.
    let (child, socket) = start(dir.path(), "exit 3", None);
    let messages = listen(&socket, Duration::from_secs(4));
    let stderr = stop(child, dir.path());
    let pings = pings(&messages);
    assert!(
        messages.iter().any(|(_, m)| m.contains("READY=1")),
        "{messages:?}\n{stderr}"
    );
    assert!(
        pings.len() >= 6,
        "{} pings in 4 s with WATCHDOG_USEC=1s: {messages:?}\n{stderr}",
        pings.len()
    );
    for pair in pings.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap < Duration::from_millis(900),
            "{gap:?} without a ping, the interval being 1 s: {messages:?}"
        );
    }
}

#[test]
fn a_stuck_pass_sends_no_ping_after_one_interval() {
    let dir = tempfile::tempdir().unwrap();
    // The code source hangs (within a generous process_timeout) for longer
    // than we listen: the pass does not end, and the loop must not seem
    // alive. (A stop waits for the command, hence not much longer.)
    let (child, socket) = start(dir.path(), "sleep 6", None);
    let messages = listen(&socket, Duration::from_secs(4));
    let stderr = stop(child, dir.path());
    let pings = pings(&messages);
    assert_eq!(
        pings.len(),
        1,
        "only the ping of the pass's start: {messages:?}\n{stderr}"
    );
    assert!(
        !messages.iter().any(|(_, m)| m.contains("READY=1")),
        "the first pass never ended: {messages:?}"
    );
}

#[test]
fn a_watchdog_meant_for_another_process_is_not_fed() {
    let dir = tempfile::tempdir().unwrap();
    let (child, socket) = start(dir.path(), "exit 3", Some("1"));
    let messages = listen(&socket, Duration::from_secs(3));
    let stderr = stop(child, dir.path());
    assert!(
        messages.iter().any(|(_, m)| m.contains("READY=1")),
        "{messages:?}\n{stderr}"
    );
    assert!(pings(&messages).is_empty(), "{messages:?}");
}
