//! A HOME for a daemon run as a service would run it: `~/.aws/credentials`
//! holding long-term keys (AWS's documentation example) and a runtime
//! directory, and a SIGTERM stop that waits for the process. Shared by
//! tests/journald.rs and tests/watchdog.rs.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// `DIR/home/.aws/credentials` (0600) with `[default]` keys, and `DIR/run`.
pub fn home_with_long_term_keys(dir: &Path) {
    std::fs::create_dir_all(dir.join("home/.aws")).unwrap();
    std::fs::create_dir_all(dir.join("run")).unwrap();
    let credentials = dir.join("home/.aws/credentials");
    std::fs::write(
        &credentials,
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n\
         aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    )
    .unwrap();
    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// SIGTERM, then waits up to `limit` for the exit (SIGKILL and a panic after).
pub fn stop(child: &mut Child, limit: Duration) {
    // SAFETY: kill sends a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the daemon did not stop within {limit:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
