//! What an idle daemon keeps of its secrets in memory, read the way a core
//! dump would be: every readable mapping of `/proc/PID/mem` (as root; the
//! daemon makes itself non-dumpable, so only root can read it at all).
//!
//! At rest the daemon needs the MFA session (to refresh roles without a
//! code) and nothing else: not the long-term secret key, not the role
//! credentials it wrote to the file. Copies made by code outside the
//! project (the SDK's signing, HTTP buffers) are zeroed when freed by the
//! daemon's allocator.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/fast_sts.rs"]
mod fast_sts;
#[path = "support/tools.rs"]
mod tools;

use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use daemon::{Home, LONG_TERM_SECRET, Running, accounts, org_config, wait_until};
use fast_sts::FastSts;

/// How often each needle occurs in the process's readable memory.
fn count_in_memory(pid: i32, needles: &[&str]) -> Vec<usize> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("read maps (as root)");
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).expect("open mem (as root)");
    let mut counts = vec![0; needles.len()];
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let path = fields.nth(3).unwrap_or("");
        // Readable, private memory (heap, stacks, anonymous maps); not the
        // binary's own text, not device mappings.
        if !perms.starts_with('r') || path.starts_with("/dev") || path == "[vvar]" {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        let mut bytes = vec![0; (end - start) as usize];
        if mem.seek(SeekFrom::Start(start)).is_err() || mem.read_exact(&mut bytes).is_err() {
            continue;
        }
        for (count, needle) in counts.iter_mut().zip(needles) {
            *count += bytes
                .windows(needle.len())
                .filter(|w| *w == needle.as_bytes())
                .count();
        }
    }
    counts
}

#[test]
fn an_idle_daemon_holds_only_the_mfa_session() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "reading another process's memory needs root (CI runs as root)"
    );
    let sts = FastSts::start(3600);
    let profiles = accounts(3);
    let home = Home::new(&org_config(
        &sts.url,
        "mfa_process = \"echo 123456\"",
        &profiles,
    ));
    let mut running = Running::start(&home, &["run", "--log-level", "debug"]);
    wait_until("the first pass", Duration::from_secs(30), || {
        profiles
            .iter()
            .all(|p| home.text().contains(&format!("[{p}]")))
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(running.alive());

    // The fast STS hands out, in order: the MFA session's secret key and
    // token, then each role's.
    let issued = sts.issued_secrets();
    assert_eq!(issued.len(), 2 * (1 + profiles.len()), "{issued:?}");
    let (session, roles) = issued.split_at(2);
    let mut needles: Vec<(&str, &str)> = vec![("long-term secret key", LONG_TERM_SECRET)];
    needles.push(("MFA session secret key", &session[0]));
    needles.push(("MFA session token", &session[1]));
    for (i, role) in roles.iter().enumerate() {
        needles.push((
            if i % 2 == 0 {
                "role secret key"
            } else {
                "role session token"
            },
            role,
        ));
    }
    let values: Vec<&str> = needles.iter().map(|(_, v)| *v).collect();
    let counts = count_in_memory(running.pid(), &values);
    let mut table = String::from("| secret | copies in memory |\n|---|---|\n");
    let mut by_kind: Vec<(&str, usize)> = Vec::new();
    for ((kind, _), count) in needles.iter().zip(&counts) {
        match by_kind.iter_mut().find(|(k, _)| k == kind) {
            Some((_, total)) => *total += count,
            None => by_kind.push((kind, *count)),
        }
    }
    for (kind, count) in &by_kind {
        table.push_str(&format!("| {kind} | {count} |\n"));
    }
    eprintln!("an idle daemon, 3 roles from one MFA session:\n{table}");
    let copies = |kind: &str| by_kind.iter().find(|(k, _)| *k == kind).unwrap().1;
    assert_eq!(copies("long-term secret key"), 0, "{table}");
    assert_eq!(copies("role secret key"), 0, "{table}");
    assert_eq!(copies("role session token"), 0, "{table}");
    assert!(copies("MFA session token") <= 1, "{table}");
    assert!(copies("MFA session secret key") <= 1, "{table}");
}

#[test]
fn the_daemon_cannot_dump_core() {
    let sts = FastSts::start(3600);
    let home = Home::new(&org_config(
        &sts.url,
        "mfa_process = \"echo 123456\"",
        &accounts(1),
    ));
    let running = Running::start(&home, &["run"]);
    std::thread::sleep(Duration::from_millis(500));
    let status = std::fs::read_to_string(format!("/proc/{}/limits", running.pid())).unwrap();
    let core = status
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");
    // Non-dumpable: /proc/PID files belong to root, not to the user.
    let stat = std::fs::metadata(format!("/proc/{}/mem", running.pid())).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&stat), 0);
}
