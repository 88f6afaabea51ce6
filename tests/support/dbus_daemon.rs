//! A private `dbus-daemon` for one test, shared by the Secret Service rig
//! (tests/support/secret_service.rs) and the notification's unit tests
//! (src/oath/dbus_tests.rs). A missing program fails the test with the
//! install command. The daemon is killed when the guard is dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct DbusDaemon {
    child: Child,
    /// The address it listens on, as it printed it.
    pub address: String,
}

impl Drop for DbusDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `dbus-daemon --nofork --print-address=1` with `args` (a config file, or
/// `--session --address=…`); `prepare` may adjust the command further.
/// Returns once it listens: it prints its address then.
pub fn start(args: &[String], prepare: impl FnOnce(&mut Command)) -> DbusDaemon {
    let mut command = Command::new("dbus-daemon");
    prepare(&mut command);
    let mut child = command
        .args(args)
        .args(["--nofork", "--print-address=1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run dbus-daemon ({e}); install it: apt-get install dbus-daemon")
        });
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("unix:"), "dbus-daemon said {line:?}");
    DbusDaemon {
        child,
        address: line.trim().to_string(),
    }
}
