//! What the benchmarks measure of the daemon's processes: an `apply`'s wall
//! and CPU time (`wait4`), and what `/proc` tells about a running daemon.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::{Home, poll_until};

/// Runs `apply` in `home`; returns its exit status, wall time, CPU time
/// and log.
pub fn apply(home: &Home) -> (ExitStatus, Duration, Duration, String) {
    apply_with(home, &["apply"])
}

/// Runs the daemon with `args` (`apply` and flags) in `home`, its log in
/// `apply.log`; returns its exit status, wall time, CPU time and log.
pub fn apply_with(home: &Home, args: &[&str]) -> (ExitStatus, Duration, Duration, String) {
    let log = home.path().join("apply.log");
    let started = Instant::now();
    let child = home
        .command(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("run aws-session-daemon apply");
    let usage = wait_with_usage(child);
    let wall = started.elapsed();
    (
        usage.status,
        wall,
        usage.cpu,
        std::fs::read_to_string(&log).unwrap_or_default(),
    )
}

/// What `wait4` says of a child that ended.
pub struct Usage {
    pub status: ExitStatus,
    /// User + system CPU time.
    pub cpu: Duration,
    /// Peak resident set size (`ru_maxrss`), in KiB.
    pub max_rss_kb: u64,
}

/// Waits for a child (`wait4`): its exit status, CPU time and peak RSS.
pub fn wait_with_usage(child: Child) -> Usage {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; both pointers are valid.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid, "wait4: {}", std::io::Error::last_os_error());
    std::mem::forget(child); // reaped here
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Usage {
        status: ExitStatus::from_raw(status),
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
        max_rss_kb: usage.ru_maxrss.max(0) as u64,
    }
}

/// Polls `done` every 2 ms; the time it took, or `None` after `timeout`.
pub fn wait_until(timeout: Duration, done: impl FnMut() -> bool) -> Option<Duration> {
    poll_until(Duration::from_millis(2), timeout, done)
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

pub fn sample(pid: i32) -> Option<ProcSample> {
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

/// A child run with a time limit.
pub struct Bounded {
    pub usage: Usage,
    /// It was still running at the limit and was killed.
    pub timed_out: bool,
}

/// The argument that makes this program a small parent (see
/// `small_parent`), and the variable that names its report file.
pub const SMALL_PARENT: &str = "--small-parent";
const REPORT_VAR: &str = "BENCH_SMALL_PARENT_REPORT";

/// A command that runs `program` as the child of a fresh copy of this
/// benchmark, whose figures `run_bounded` then reads.
///
/// Why: Linux starts a child's `ru_maxrss` at its parent's peak at the
/// spawn (exec keeps the high-water mark of the address space it
/// replaces), and this benchmark holds its 20 MB inputs in memory, so a
/// daemon spawned from here would report at least that. The small parent
/// has just been exec'd (a peak of a few MB) and spawns nothing else.
/// Arguments, environment and stdio set on the returned command reach the
/// child unchanged.
pub fn small_parent(program: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(std::env::current_exe().expect("own path"));
    command.arg(SMALL_PARENT).arg(program);
    command
}

/// `wanted` (a `Home::command`, which clears the environment) run under
/// a small parent: its arguments and the variables it sets carry over.
pub fn under_small_parent(wanted: &std::process::Command) -> std::process::Command {
    let mut command = small_parent(std::path::Path::new(wanted.get_program()));
    command.env_clear().args(wanted.get_args());
    for (name, value) in wanted.get_envs() {
        if let Some(value) = value {
            command.env(name, value);
        }
    }
    command
}

/// The small parent's whole life (`bench --small-parent PROGRAM ARGS...`):
/// spawn, `wait4`, write "status cpu_us max_rss_kb" to the report file.
pub fn small_parent_main(args: &[std::ffi::OsString]) -> std::process::ExitCode {
    let Some(report) = std::env::var_os(REPORT_VAR) else {
        eprintln!("bench {SMALL_PARENT}: {REPORT_VAR} is not set");
        return std::process::ExitCode::from(2);
    };
    let Some((program, rest)) = args.split_first() else {
        eprintln!("bench {SMALL_PARENT}: no program");
        return std::process::ExitCode::from(2);
    };
    let child = match std::process::Command::new(program)
        .args(rest)
        .env_remove(REPORT_VAR)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("bench {SMALL_PARENT}: {}: {e}", program.to_string_lossy());
            return std::process::ExitCode::from(127);
        }
    };
    let usage = wait_with_usage(child);
    let line = format!(
        "{} {} {}\n",
        usage.status.into_raw(),
        usage.cpu.as_micros(),
        usage.max_rss_kb
    );
    if let Err(e) = std::fs::write(&report, line) {
        eprintln!("bench {SMALL_PARENT}: {}: {e}", report.to_string_lossy());
        return std::process::ExitCode::from(2);
    }
    std::process::ExitCode::SUCCESS
}

/// Spawns `command` (made by `small_parent`) and waits for it at most
/// `limit`, then kills its process group; the child's figures come from
/// the small parent's report.
pub fn run_bounded(mut command: std::process::Command, limit: Duration) -> Bounded {
    use std::os::unix::process::CommandExt;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let report = std::env::temp_dir().join(format!(
        "bench-small-parent-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&report);
    command.env(REPORT_VAR, &report).process_group(0);
    let child = command.spawn().expect("spawn the daemon");
    let pid = child.id() as libc::pid_t;
    std::mem::forget(child); // reaped below
    let started = Instant::now();
    let mut timed_out = false;
    loop {
        let mut status = 0;
        // SAFETY: our own child; a null rusage is allowed.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc == pid {
            let text = std::fs::read_to_string(&report).unwrap_or_default();
            let _ = std::fs::remove_file(&report);
            let fields: Vec<u64> = text
                .split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect();
            let usage = match fields[..] {
                [raw, cpu_us, max_rss_kb] => Usage {
                    status: ExitStatus::from_raw(raw as i32),
                    cpu: Duration::from_micros(cpu_us),
                    max_rss_kb,
                },
                // Killed at the limit before it could report.
                _ => Usage {
                    status: ExitStatus::from_raw(status),
                    cpu: Duration::ZERO,
                    max_rss_kb: 0,
                },
            };
            return Bounded { usage, timed_out };
        }
        assert!(rc == 0, "waitpid: {}", std::io::Error::last_os_error());
        if !timed_out && started.elapsed() > limit {
            timed_out = true;
            // SAFETY: signals our own child's process group, not yet reaped.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
