//! Benchmark 4: the editor, through the library.
//!
//! a. One section's refresh (the four edits the daemon makes: key id,
//!    secret, token, expiry) in credentials files of 100 to 10,000
//!    sections:
//!    - parse alone (`Document::parse`);
//!    - the in-memory work of a write: parse, the whole-file check
//!      (`check_readable`), the edits (`apply_all`: the section edited and
//!      checked on its own), render;
//!    - the whole locked write (`CredentialsFile::update`: lock, read,
//!      parse, check, edit, temporary file, fsync, final check, swap, check
//!      of the replaced file, backups, fsync of the directory) in a
//!      directory on tmpfs (`/dev/shm`), where fsync costs nothing: the
//!      write "without the fsyncs", with no flag in the product;
//!    - the same on the disk, with real fsyncs; and, separately, what one
//!      fsync of a small file and of its directory costs there (the floor);
//!    - the peak resident memory (`VmHWM`) of a process that does nothing
//!      but that one write, against 3x the file plus 20 MB.
//!
//! b. One write of N new profiles (4 edits each) into a file holding only
//!    the user's keys, as a cold start makes it: time on tmpfs and peak
//!    memory, the same way.
//!
//! c. The daemon's pass on the shapes that cost the editor most per byte
//!    (300,000 one-key sections, 4.1 MB; 1.5 million keys in one section,
//!    15 MB): read the file once (`read_snapshot`), check it, write one
//!    profile from that read (`update_from`) and take the snapshot of what
//!    was written: time and peak memory against 3x the file + 20 MB.
//!
//! Peak memory is measured in a child process (this program, started again
//! with `AWS_SESSION_DAEMON_BENCH_EDITOR_CHILD` set), so that nothing of
//! the benchmark's own (the generated text, earlier runs) counts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_session_daemon::credentials::{CredentialsFile, Document, Edit, SessionEdits};
use aws_session_daemon::session::SessionCredentials;
use serde_json::json;

use crate::report::{Table, Verdict, median, ms, percentile, verdict};

/// Characters of a session token in the generated file: AWS's role session
/// tokens are several hundred characters long.
const TOKEN_LEN: usize = 700;

/// The environment variable that makes this program a child measuring one
/// write: `refresh PATH SECTION`, `cold PATH PROFILES` or `pass PATH`.
const CHILD: &str = "AWS_SESSION_DAEMON_BENCH_EDITOR_CHILD";

/// New profiles in one write, in the full run (the quick run takes what
/// `bench.rs` passes).
const COLD_FULL: [usize; 3] = [200, 2_000, 10_000];

const EXPIRY_KEY: &str = "x_security_token_expires";

fn filler(seed: usize, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = seed as u64 ^ 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x % 64) as usize] as char
        })
        .collect()
}

/// A file like one the daemon keeps: the user's keys, then `sections - 1`
/// role profiles.
pub fn generate(sections: usize) -> String {
    let mut text = String::from(
        "# long-term keys\n[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nregion = eu-west-1\n",
    );
    for i in 1..sections {
        text.push_str(&format!(
            "\n[{:012}]\naws_access_key_id = ASIA{}\naws_secret_access_key = {}\naws_session_token = {}\nx_security_token_expires = 2026-11-25T16:05:00Z\n",
            340_000_000_000u64 + i as u64,
            filler(i, 16).to_uppercase(),
            filler(i + 1, 40),
            filler(i + 2, TOKEN_LEN),
        ));
    }
    text
}

fn credentials(i: usize) -> SessionCredentials {
    let i = i % 1_000_000;
    SessionCredentials {
        access_key_id: format!("ASIA{}", filler(1_000_000 + i, 16).to_uppercase()),
        secret_access_key: filler(2_000_000 + i, 40).into(),
        session_token: filler(3_000_000 + i, TOKEN_LEN).into(),
        expiration: time::OffsetDateTime::from_unix_timestamp(1_800_000_000 + i as i64).unwrap(),
    }
}

/// The edits of one refresh of `section`.
fn refresh_edits(section: &str, i: usize) -> Vec<Edit> {
    Document::default().session_edits(section, &credentials(i), EXPIRY_KEY)
}

/// The edits of a cold start's write: `profiles` new profiles.
fn cold_edits(profiles: usize, i: usize) -> Vec<Edit> {
    let empty = Document::default();
    (0..profiles)
        .flat_map(|p| {
            empty.session_edits(
                &format!("{:012}", 350_000_000_000u64 + p as u64),
                &credentials(i.wrapping_add(p)),
                EXPIRY_KEY,
            )
        })
        .collect()
}

fn time_it(repeats: usize, mut f: impl FnMut(usize)) -> Vec<Duration> {
    f(usize::MAX / 2); // warm-up
    (0..repeats)
        .map(|i| {
            let started = Instant::now();
            f(i);
            started.elapsed()
        })
        .collect()
}

/// `repeats` refreshes of `section` (after one to warm up), each timed.
/// `aged`: the file's modification time is set an hour back before each
/// (untimed), as it is when the daemon refreshes a profile an hour after
/// its last write; otherwise the file was written just before, which makes
/// the write compare the replaced file byte for byte.
fn update_in(
    dir: &Path,
    text: &str,
    section: &str,
    repeats: usize,
    aged: bool,
) -> Result<Vec<Duration>, String> {
    let path = dir.join("credentials");
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    let file = CredentialsFile::new(path.clone(), 5);
    let mut samples = Vec::new();
    for i in 0..=repeats {
        if aged {
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| {
                    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
                })
                .map_err(|e| e.to_string())?;
        }
        let started = Instant::now();
        file.update(&refresh_edits(section, i))
            .map_err(|e| e.to_string())?;
        if i > 0 {
            samples.push(started.elapsed());
        }
    }
    Ok(samples)
}

/// A directory on tmpfs (`/dev/shm`), where fsync costs nothing.
fn tmpfs_dir() -> Result<tempfile::TempDir, String> {
    let shm = Path::new("/dev/shm");
    tempfile::tempdir_in(if shm.is_dir() { shm } else { Path::new("/tmp") })
        .map_err(|e| e.to_string())
}

/// The file system a path is on: (mount point, device, type).
fn mount_of(path: &Path) -> Option<(String, String, String)> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let path = path.canonicalize().ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && path.starts_with(f[1]))
                .then(|| (f[1].to_string(), f[0].to_string(), f[2].to_string()))
        })
        .max_by_key(|(point, _, _)| point.len())
}

/// A directory on a disk (not tmpfs), for the writes with real fsyncs.
fn disk_dir() -> (PathBuf, String) {
    let candidates = [
        PathBuf::from("/var/tmp"),
        std::env::temp_dir(),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    ];
    for dir in &candidates {
        if let Some((_, device, kind)) = mount_of(dir)
            && !matches!(kind.as_str(), "tmpfs" | "ramfs")
        {
            return (dir.clone(), format!("{device} ({kind}, {})", dir.display()));
        }
    }
    let dir = candidates[2].clone();
    let described = mount_of(&dir).map_or("disk".into(), |(_, d, k)| format!("{d} ({k})"));
    (dir, described)
}

/// What the disk's fsyncs cost: a 4 KiB file written and synced, renamed,
/// and its directory synced (median of 20).
fn fsync_floor(dir: &Path) -> Result<Duration, String> {
    let dir = tempfile::tempdir_in(dir).map_err(|e| e.to_string())?;
    let samples = time_it(20, |i| {
        use std::io::Write;
        let path = dir.path().join(format!("f{i}"));
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(&[b'x'; 4096]).unwrap();
        file.sync_all().unwrap();
        std::fs::rename(&path, dir.path().join("g")).unwrap();
        std::fs::File::open(dir.path()).unwrap().sync_all().unwrap();
    });
    Ok(median(&samples))
}

/// What any rewrite of the file costs on tmpfs, before parsing a byte of
/// it: read it, write the same bytes to a new file, rename that over it
/// (median of `repeats`).
fn io_floor(text: &str, repeats: usize) -> Result<Duration, String> {
    let dir = tmpfs_dir()?;
    let path = dir.path().join("credentials");
    let next = dir.path().join("next");
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    let samples = time_it(repeats, |_| {
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&next, &bytes).unwrap();
        std::fs::rename(&next, &path).unwrap();
    });
    Ok(median(&samples))
}

/// One write in a child process: its time and the child's peak memory.
#[derive(Debug, Clone, Copy)]
struct Measured {
    took: Duration,
    peak_kb: u64,
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The child's side: one write, then a JSON line with its time and the
/// process's peak resident memory.
fn child(job: &str) -> ! {
    let parts: Vec<&str> = job.splitn(3, ' ').collect();
    let parts = if parts.len() < 3 {
        vec![parts[0], parts[1], ""]
    } else {
        parts
    };
    let path = PathBuf::from(parts[1]);
    let (backups, edits) = match parts[0] {
        "refresh" => (5, refresh_edits(parts[2], 7)),
        "pass" => (5, refresh_edits("daemon", 7)),
        _ => (0, cold_edits(parts[2].parse().unwrap(), 7)),
    };
    let file = CredentialsFile::new(path, backups);
    let started = Instant::now();
    let result = if parts[0] == "pass" {
        // The daemon's pass: one read, the check, one write from that read,
        // the snapshot of what was written.
        file.read_snapshot().and_then(|snapshot| {
            snapshot.document().check_readable()?;
            let written = file.update_from(&snapshot, &edits)?;
            drop(snapshot);
            std::hint::black_box(written.snapshot.document().has_section("daemon"));
            Ok(written.outcome)
        })
    } else {
        file.update(&edits)
    };
    let took = started.elapsed();
    drop(edits);
    match result {
        Ok(_) => {
            println!(
                "{}",
                json!({ "took_us": took.as_micros() as u64, "peak_kb": status_kb("VmHWM:") })
            );
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("bench editor child: {e}");
            std::process::exit(1)
        }
    }
}

/// Runs this program again as a child doing `job`.
fn in_child(job: &str) -> Result<Measured, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new(exe)
        .args(["--only", "editor", "--no-build"])
        .env(CHILD, job)
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "editor child {job:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let value: serde_json::Value =
        serde_json::from_str(last).map_err(|e| format!("editor child said {last:?}: {e}"))?;
    Ok(Measured {
        took: Duration::from_micros(value["took_us"].as_u64().unwrap_or(0)),
        peak_kb: value["peak_kb"].as_u64().unwrap_or(0),
    })
}

/// The memory target: 3x the file plus 20 MB.
fn memory_limit_kb(file_bytes: usize) -> u64 {
    (3 * file_bytes as u64 + 20_000_000) / 1000
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1000.0)
}

struct Figures {
    sections: usize,
    bytes: usize,
    parse: Vec<Duration>,
    edit: Vec<Duration>,
    tmpfs: Vec<Duration>,
    /// Read and write the file without parsing it, on tmpfs.
    floor: Duration,
    /// The same, the file written just before (compared byte for byte).
    tmpfs_fresh: Vec<Duration>,
    disk: Vec<Duration>,
    peak: Measured,
}

fn measure(sections: usize, repeats: usize, disk: &Path) -> Result<Figures, String> {
    let text = generate(sections);
    let section = format!("{:012}", 340_000_000_000u64 + sections as u64 / 2);
    let doc = Document::parse(&text);
    assert_eq!(doc.section_names().len(), sections);

    let parse = time_it(repeats, |_| {
        std::hint::black_box(Document::parse(&text));
    });
    let mut failed = None;
    let edit = time_it(repeats, |i| {
        let mut doc = Document::parse(&text);
        let checked = doc
            .check_readable()
            .and_then(|()| doc.apply_all(&refresh_edits(&section, i)));
        if let Err(e) = checked {
            failed.get_or_insert(e.to_string());
        }
        std::hint::black_box(doc.render());
    });
    if let Some(e) = failed {
        return Err(format!("edit failed: {e}"));
    }
    let floor = io_floor(&text, repeats)?;
    let tmpfs = tmpfs_dir()?;
    let tmpfs_fresh = update_in(tmpfs.path(), &text, &section, repeats, false)?;
    let tmpfs = update_in(tmpfs.path(), &text, &section, repeats, true)?;
    let disk_dir = tempfile::tempdir_in(disk).map_err(|e| e.to_string())?;
    let disk = update_in(disk_dir.path(), &text, &section, repeats, true)?;
    let peak_dir = tmpfs_dir()?;
    let path = peak_dir.path().join("credentials");
    std::fs::write(&path, &text).map_err(|e| e.to_string())?;
    let peak = in_child(&format!("refresh {} {section}", path.display()))?;
    Ok(Figures {
        sections,
        bytes: text.len(),
        parse,
        edit,
        tmpfs,
        floor,
        tmpfs_fresh,
        disk,
        peak,
    })
}

/// The write of a cold start: `profiles` new sections (4 edits each) into
/// a file holding only the user's keys, on tmpfs, each in a new process
/// (which also gives its peak memory). Returns the median time, the peak
/// memory of the slowest run and the size of the file written.
fn cold_write(profiles: usize, repeats: usize) -> Result<(Duration, u64, usize), String> {
    let dir = tmpfs_dir()?;
    let path = dir.path().join("credentials");
    let start = generate(1);
    let mut samples = Vec::new();
    let mut peak = 0;
    for _ in 0..repeats {
        std::fs::write(&path, &start).map_err(|e| e.to_string())?;
        let measured = in_child(&format!("cold {} {profiles}", path.display()))?;
        samples.push(measured.took);
        peak = peak.max(measured.peak_kb);
    }
    let size = std::fs::metadata(&path).map_err(|e| e.to_string())?.len() as usize;
    Ok((median(&samples), peak, size))
}

pub fn run(
    sizes: &[usize],
    cold_sizes: &[usize],
    repeats: usize,
) -> Result<(Table, serde_json::Value), String> {
    if let Ok(job) = std::env::var(CHILD) {
        child(&job);
    }
    let full = sizes.contains(&10_000);
    let cold_sizes: &[usize] = if full { &COLD_FULL } else { cold_sizes };
    let limit = Duration::from_millis(10);
    let cold_limit = Duration::from_millis(200);
    let (disk, disk_described) = disk_dir();
    let floor = fsync_floor(&disk)?;
    let mut table = Table::new(
        "4a. Editor: one section's refresh (4 edits, then the locked atomic write)",
        &[
            "sections",
            "file",
            "parse alone",
            "in memory: parse, check, apply_all (parses the result again)",
            "locked write, tmpfs (no fsync cost)",
            "read + write, no parsing (tmpfs floor)",
            "same, file changed < 3 s before",
            "locked write, disk (fsyncs)",
            "peak RSS (limit 3x file + 20 MB)",
            "target",
            "",
        ],
    );
    let ms_of = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut json = Vec::new();
    for &sections in sizes {
        let f = measure(sections, repeats, &disk)?;
        let cell = |samples: &[Duration]| {
            format!(
                "{} (p95 {})",
                ms(median(samples)),
                ms(percentile(samples, 95.0))
            )
        };
        let memory_ok = f.peak.peak_kb <= memory_limit_kb(f.bytes);
        let target = sections == 10_000;
        table.row(vec![
            sections.to_string(),
            format!("{:.2} MB", f.bytes as f64 / 1e6),
            cell(&f.parse),
            cell(&f.edit),
            cell(&f.tmpfs),
            ms(f.floor),
            cell(&f.tmpfs_fresh),
            cell(&f.disk),
            format!("{} ({})", mb(f.peak.peak_kb), mb(memory_limit_kb(f.bytes))),
            if target {
                format!("tmpfs write < {}; memory", ms(limit))
            } else {
                "memory".into()
            },
            verdict(Verdict::of(
                memory_ok && (!target || median(&f.tmpfs) < limit),
            )),
        ]);
        json.push(json!({
            "sections": f.sections,
            "bytes": f.bytes,
            "parse_ms": ms_of(median(&f.parse)),
            "edit_render_ms": ms_of(median(&f.edit)),
            "write_tmpfs_ms": ms_of(median(&f.tmpfs)),
            "write_tmpfs_changed_just_before_ms": ms_of(median(&f.tmpfs_fresh)),
            "read_write_floor_tmpfs_ms": ms_of(f.floor),
            "write_disk_ms": ms_of(median(&f.disk)),
            "peak_rss_kb": f.peak.peak_kb,
            "peak_rss_limit_kb": memory_limit_kb(f.bytes),
            "fsync_floor_ms": ms_of(floor),
        }));
    }
    table.note(format!(
        "Median (and p95) of {repeats} runs each. Each section holds an access key id, a secret, a \
         {TOKEN_LEN}-character session token and the expiry, as the daemon writes them; the edited \
         section is in the middle. The write is `CredentialsFile::update` with 5 backups (the \
         default): the replaced file becomes credentials.1 by a rename, not a copy. Before each \
         write the file's modification time is set an hour back, as it is when the daemon \
         refreshes a profile an hour after its last write; in the column after, the file was \
         written just before, so the write also compares the replaced file byte for byte (a \
         file changed within 3 s of the read is not trusted on its timestamps). The floor \
         column reads the file and writes the same bytes to a new file renamed over it, \
         parsing nothing: what any rewrite of the file costs on this machine. tmpfs is \
         /dev/shm, where fsync returns at once, which gives the write without the fsyncs and needs \
         no flag in the product. The disk is {disk_described}; there one fsync of a 4 KiB file \
         plus one of its directory take {} (median of 20): the floor of any durable write. Peak \
         RSS is VmHWM of a process that makes only that one write on tmpfs.",
        ms(floor)
    ));
    table.print();

    let mut cold = Table::new(
        "4b. Editor: one write of N new profiles (a cold start's write, 4 edits each, tmpfs)",
        &[
            "new profiles",
            "file written",
            "write",
            "peak RSS (limit 3x file + 20 MB)",
            "target",
            "",
        ],
    );
    for &profiles in cold_sizes {
        let (took, peak_kb, bytes) = cold_write(profiles, 5)?;
        let limit_kb = memory_limit_kb(bytes);
        let timed = profiles == 2_000;
        cold.row(vec![
            profiles.to_string(),
            format!("{:.2} MB", bytes as f64 / 1e6),
            ms(took),
            format!("{} ({})", mb(peak_kb), mb(limit_kb)),
            if timed {
                format!("< {}; memory", ms(cold_limit))
            } else {
                "memory".into()
            },
            verdict(Verdict::of(
                peak_kb <= limit_kb && (!timed || took < cold_limit),
            )),
        ]);
        json.push(json!({
            "cold_write_profiles": profiles,
            "bytes": bytes,
            "write_tmpfs_ms": ms_of(took),
            "peak_rss_kb": peak_kb,
            "peak_rss_limit_kb": limit_kb,
        }));
    }
    cold.note(
        "Median of 5 runs, each a new process writing into a file that holds only the user's \
         keys, with backups = 0 (a first write has nothing to back up); the time is the \
         `CredentialsFile::update` call, the peak RSS the highest of the 5 processes' VmHWM.",
    );
    cold.print();

    let mut hostile = Table::new(
        "4c. Editor: the daemon's pass on hostile shapes (read once, check, write from the read)",
        &[
            "file",
            "size",
            "pass",
            "peak RSS (limit 3x file + 20 MB)",
            "",
        ],
    );
    let scale = if full { 1 } else { 10 };
    for (what, text) in [
        (
            format!("{} one-key sections", 300_000 / scale),
            tiny_sections(300_000 / scale),
        ),
        (
            format!("{} keys in one section", 1_500_000 / scale),
            one_big_section(1_500_000 / scale),
        ),
    ] {
        let dir = tmpfs_dir()?;
        let path = dir.path().join("credentials");
        std::fs::write(&path, &text).map_err(|e| e.to_string())?;
        // Last written an hour ago, as when the daemon refreshes a profile.
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600)))
            .map_err(|e| e.to_string())?;
        let measured = in_child(&format!("pass {}", path.display()))?;
        let limit = memory_limit_kb(text.len());
        hostile.row(vec![
            what.clone(),
            format!("{:.1} MB", text.len() as f64 / 1e6),
            ms(measured.took),
            format!("{} ({})", mb(measured.peak_kb), mb(limit)),
            verdict(Verdict::of(measured.peak_kb <= limit)),
        ]);
        json.push(json!({
            "hostile_pass": what,
            "bytes": text.len(),
            // The whole pass (read, check, write from the read), on tmpfs.
            "write_tmpfs_ms": ms_of(measured.took),
            "peak_rss_kb": measured.peak_kb,
            "peak_rss_limit_kb": limit,
        }));
    }
    hostile.note(
        "One process each, on tmpfs: `read_snapshot`, `check_readable`, `update_from` writing \
         one new profile (4 edits) with 5 backups, then the written snapshot's document (parsed \
         once the read one is dropped). The first document model took 306 MB (`plan`) for the \
         4.1 MB file and 666 MB for the 15 MB one (issue 22's audit).",
    );
    Ok((hostile, json!(json)))
}

/// `sections` sections of one short key each (`[s1]` / `k=1`).
fn tiny_sections(sections: usize) -> String {
    (0..sections).map(|i| format!("[s{i}]\nk=1\n")).collect()
}

/// One section of `keys` short keys.
fn one_big_section(keys: usize) -> String {
    let mut text = String::from("[big]\n");
    for i in 0..keys {
        text.push_str(&format!("k{i:06x}=1\n"));
    }
    text
}
