//! A temporary HOME for one daemon (credentials file, config, runtime
//! directory), the daemon's processes, and what `/proc` tells about them.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use aws_session_daemon::credentials::Document;

pub const LONG_TERM: &str = "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n";

/// `n` twelve-digit account ids starting at `first`.
pub fn accounts(first: u64, n: usize) -> Vec<String> {
    (0..n as u64)
        .map(|i| format!("{:012}", first + i))
        .collect()
}

/// The config: one MFA device read from the YubiKey, a group of roles.
pub fn org_config(serial: &str, slot: &str, endpoint: &str, accounts: &[String]) -> String {
    let mut config = format!(
        "mfa_serial_number = \"{serial}\"\nmfa_oath_slot = \"{slot}\"\nsts_endpoint = \"{endpoint}\"\nregion = \"us-east-1\"\n\n[[org]]\nassume_role_arn = \"arn:aws:iam::{{section}}:role/Admin\"\n"
    );
    for account in accounts {
        config.push_str(&format!("[[org.{account}]]\n"));
    }
    config
}

pub struct Home {
    dir: tempfile::TempDir,
    daemon: PathBuf,
}

impl Home {
    pub fn new(daemon: &Path, config: &str) -> Home {
        let dir = tempfile::tempdir().expect("temp HOME");
        let home = Home {
            dir,
            daemon: daemon.to_path_buf(),
        };
        std::fs::create_dir_all(home.path().join(".aws")).unwrap();
        std::fs::create_dir_all(home.path().join(".config/aws-session-daemon")).unwrap();
        std::fs::create_dir_all(home.path().join("run")).unwrap();
        std::fs::write(home.credentials(), LONG_TERM).unwrap();
        home.write_config(config);
        home
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn credentials(&self) -> PathBuf {
        self.path().join(".aws/credentials")
    }

    pub fn config(&self) -> PathBuf {
        self.path().join(".config/aws-session-daemon/config.toml")
    }

    /// Replaces the config the way an editor saves: write, then rename.
    pub fn write_config(&self, text: &str) {
        let temp = self.config().with_extension("tmp");
        std::fs::write(&temp, text).unwrap();
        std::fs::rename(temp, self.config()).unwrap();
    }

    /// Replaces the credentials file the same way.
    pub fn write_credentials(&self, text: &str) {
        let temp = self.credentials().with_extension("swp");
        std::fs::write(&temp, text).unwrap();
        std::fs::rename(temp, self.credentials()).unwrap();
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(self.credentials()).unwrap_or_default()
    }

    /// How many of `profiles` hold a session token now.
    pub fn written(&self, profiles: &[String]) -> usize {
        let doc = Document::parse(&self.text());
        profiles
            .iter()
            .filter(|p| doc.get(p, "aws_session_token").ok().flatten().is_some())
            .count()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.daemon);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("XDG_RUNTIME_DIR", self.path().join("run"))
            .stdin(Stdio::null());
        command
    }

    /// Runs `apply`; returns its exit status, wall time and CPU time.
    pub fn apply(&self) -> (ExitStatus, Duration, Duration, String) {
        let log = self.path().join("apply.log");
        let started = Instant::now();
        let child = self
            .command(&["apply"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("run aws-session-daemon apply");
        let (status, cpu) = wait_with_cpu(child);
        let wall = started.elapsed();
        (
            status,
            wall,
            cpu,
            std::fs::read_to_string(&log).unwrap_or_default(),
        )
    }

    /// Starts `run` in the background.
    pub fn start(&self) -> Running {
        let log = self.path().join("daemon.log");
        let child = self
            .command(&["run"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start aws-session-daemon run");
        Running { child, log }
    }
}

/// Waits for a child and returns its user + system CPU time (`wait4`).
fn wait_with_cpu(child: Child) -> (ExitStatus, Duration) {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; both pointers are valid.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid, "wait4: {}", std::io::Error::last_os_error());
    std::mem::forget(child); // reaped here
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (
        ExitStatus::from_raw(status),
        time(usage.ru_utime) + time(usage.ru_stime),
    )
}

/// A running daemon, killed when dropped.
pub struct Running {
    pub child: Child,
    log: PathBuf,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGTERM first: a clean stop, as systemd does.
        // SAFETY: signals our own child by id.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `done` every 2 ms; the time it took, or `None` after `timeout`.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if done() {
            return Some(started.elapsed());
        }
        if started.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One thread of a process as `/proc` shows it.
#[derive(Debug, Clone, Default)]
pub struct ThreadSample {
    pub name: String,
    pub voluntary: u64,
    pub nonvoluntary: u64,
    /// Time on a CPU, from `schedstat` (nanoseconds).
    pub cpu_ns: u64,
}

/// A process as `/proc` shows it at one moment.
#[derive(Debug, Clone, Default)]
pub struct ProcSample {
    /// utime + stime from `/proc/PID/stat`, all threads (also exited ones).
    pub cpu_ticks: u64,
    pub vm_hwm_kb: u64,
    pub vm_rss_kb: u64,
    pub threads: BTreeMap<u32, ThreadSample>,
}

fn status_field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line (1-based), 12 and 13 here.
    let cpu_ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut threads = BTreeMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let dir = entry.path();
        let Ok(text) = std::fs::read_to_string(dir.join("status")) else {
            continue;
        };
        let cpu_ns = std::fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
            .unwrap_or(0);
        threads.insert(
            tid,
            ThreadSample {
                name: text
                    .lines()
                    .find_map(|l| l.strip_prefix("Name:"))
                    .unwrap_or("")
                    .trim()
                    .to_string(),
                voluntary: status_field(&text, "voluntary_ctxt_switches:"),
                nonvoluntary: status_field(&text, "nonvoluntary_ctxt_switches:"),
                cpu_ns,
            },
        );
    }
    Some(ProcSample {
        cpu_ticks,
        vm_hwm_kb: status_field(&status, "VmHWM:"),
        vm_rss_kb: status_field(&status, "VmRSS:"),
        threads,
    })
}

/// Clock ticks per second, for `cpu_ticks`.
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if n > 0 { n as u64 } else { 100 }
}
