//! A second local user, for tests of what the daemon trusts: files and
//! directories that belong to someone else. Created with `useradd` (a system
//! user without a home) when missing; needs root, as CI has. Commands run as
//! the user through util-linux's `setpriv`, with supplementary groups cleared.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// The same user `scripts/install-deps.sh` adds (created here when missing).
pub const NAME: &str = "aws-session-daemon-test";

pub struct TestUser {
    pub name: &'static str,
    pub uid: u32,
    pub gid: u32,
}

fn id(flag: &str) -> Option<u32> {
    let output = Command::new("id").args([flag, NAME]).output().ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// The second user, created on first use.
pub fn second_user() -> TestUser {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "tests with a second local user need root (CI runs as root): run the suite as root"
    );
    if id("-u").is_none() {
        let status = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                NAME,
            ])
            .status()
            .expect("useradd (Debian package passwd)");
        // 9: created meanwhile by another test binary.
        assert!(
            status.success() || status.code() == Some(9),
            "useradd failed: {status}"
        );
    }
    TestUser {
        name: NAME,
        uid: id("-u").expect("the second user's uid"),
        gid: id("-g").expect("the second user's gid"),
    }
}

impl TestUser {
    /// Gives `path` and everything below it to this user.
    pub fn own(&self, path: &Path) {
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// `program` as this user (uid, gid, no supplementary groups).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("setpriv");
        command
            .arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--clear-groups")
            .arg("--")
            .arg(program);
        command
    }
}
