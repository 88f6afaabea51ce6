//! Benchmark 4: the editor. One section's refresh (the four edits the
//! daemon makes: key id, secret, token, expiry) in a credentials file of
//! 10,000 sections, through the library:
//!
//! - parse alone (`Document::parse`);
//! - the in-memory work of a write: parse + the section's edits + render;
//! - the whole locked atomic write (`CredentialsFile::update`: lock, read,
//!   parse, edit, render, backups, temporary file, fsync, rename, fsync of
//!   the directory) in a directory on tmpfs (`/dev/shm`), where fsync costs
//!   nothing: the write "without the fsyncs", with no flag in the product;
//! - the same on the disk, with real fsyncs.

use std::path::Path;
use std::time::{Duration, Instant};

use aws_session_daemon::credentials::{CredentialsFile, Document};
use aws_session_daemon::session::SessionCredentials;
use serde_json::json;

use crate::report::{Table, Verdict, median, ms, percentile, verdict};

/// Characters of a session token in the generated file: AWS's role session
/// tokens are several hundred characters long.
const TOKEN_LEN: usize = 700;

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

fn update_in(
    dir: &Path,
    text: &str,
    section: &str,
    repeats: usize,
) -> Result<Vec<Duration>, String> {
    let path = dir.join("credentials");
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    let file = CredentialsFile::new(path, 5);
    let doc = Document::parse(text);
    let mut error = None;
    let samples = time_it(repeats, |i| {
        let edits = doc.session_edits(section, &credentials(i), "x_security_token_expires");
        if let Err(e) = file.update(&edits) {
            error.get_or_insert(e.to_string());
        }
    });
    match error {
        Some(e) => Err(e),
        None => Ok(samples),
    }
}

struct Figures {
    sections: usize,
    bytes: usize,
    parse: Vec<Duration>,
    edit: Vec<Duration>,
    tmpfs: Vec<Duration>,
    disk: Vec<Duration>,
}

fn measure(sections: usize, repeats: usize) -> Result<Figures, String> {
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
        for edit in doc.session_edits(&section, &credentials(i), "x_security_token_expires") {
            if let Err(e) = doc.apply(&edit) {
                failed.get_or_insert(e.to_string());
            }
        }
        std::hint::black_box(doc.render());
    });
    if let Some(e) = failed {
        return Err(format!("edit failed: {e}"));
    }
    let shm = Path::new("/dev/shm");
    let tmpfs_dir = tempfile::tempdir_in(if shm.is_dir() { shm } else { Path::new("/tmp") })
        .map_err(|e| e.to_string())?;
    let tmpfs = update_in(tmpfs_dir.path(), &text, &section, repeats)?;
    let disk_dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).map_err(|e| e.to_string())?;
    let disk = update_in(disk_dir.path(), &text, &section, repeats)?;
    Ok(Figures {
        sections,
        bytes: text.len(),
        parse,
        edit,
        tmpfs,
        disk,
    })
}

/// The write a cold start makes: `profiles` new sections (4 edits each)
/// into a file holding only the user's keys, on tmpfs. Returns the median
/// time and the size of the file written.
fn cold_write(profiles: usize, repeats: usize) -> Result<(Duration, usize), String> {
    let shm = Path::new("/dev/shm");
    let dir = tempfile::tempdir_in(if shm.is_dir() { shm } else { Path::new("/tmp") })
        .map_err(|e| e.to_string())?;
    let path = dir.path().join("credentials");
    let start = generate(1);
    let doc = Document::parse(&start);
    let mut error = None;
    let samples = time_it(repeats, |i| {
        std::fs::write(&path, &start).unwrap();
        let file = CredentialsFile::new(path.clone(), 0);
        let edits: Vec<_> = (0..profiles)
            .flat_map(|p| {
                doc.session_edits(
                    &format!("{:012}", 350_000_000_000u64 + p as u64),
                    &credentials(i.wrapping_add(p)),
                    "x_security_token_expires",
                )
            })
            .collect();
        if let Err(e) = file.update(&edits) {
            error.get_or_insert(e.to_string());
        }
    });
    if let Some(e) = error {
        return Err(e);
    }
    let size = std::fs::metadata(&path).map_err(|e| e.to_string())?.len() as usize;
    Ok((median(&samples), size))
}

pub fn run(
    sizes: &[usize],
    cold_sizes: &[usize],
    repeats: usize,
) -> Result<(Table, serde_json::Value), String> {
    let limit = Duration::from_millis(10);
    let mut table = Table::new(
        "4. Editor (one section's refresh: 4 edits, then the locked atomic write)",
        &[
            "sections",
            "file",
            "parse alone",
            "parse + edits + render (memory)",
            "locked write, tmpfs (no fsync cost)",
            "locked write, disk (fsyncs)",
            "target",
            "",
        ],
    );
    let ms_of = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut json = Vec::new();
    for &sections in sizes {
        let f = measure(sections, repeats)?;
        let cell = |samples: &[Duration]| {
            format!(
                "{} (p95 {})",
                ms(median(samples)),
                ms(percentile(samples, 95.0))
            )
        };
        let target = sections == 10_000;
        table.row(vec![
            sections.to_string(),
            format!("{:.2} MB", f.bytes as f64 / 1e6),
            cell(&f.parse),
            cell(&f.edit),
            cell(&f.tmpfs),
            cell(&f.disk),
            if target {
                format!("tmpfs write < {}", ms(limit))
            } else {
                String::new()
            },
            verdict(if target {
                Verdict::of(median(&f.tmpfs) < limit)
            } else {
                Verdict::Info
            }),
        ]);
        json.push(json!({
            "sections": f.sections,
            "bytes": f.bytes,
            "parse_ms": ms_of(median(&f.parse)),
            "edit_render_ms": ms_of(median(&f.edit)),
            "write_tmpfs_ms": ms_of(median(&f.tmpfs)),
            "write_disk_ms": ms_of(median(&f.disk)),
        }));
    }
    let mut cold = Vec::new();
    for &profiles in cold_sizes {
        let (took, bytes) = cold_write(profiles, 5)?;
        cold.push(format!(
            "{profiles} new profiles ({:.2} MB written): {}",
            bytes as f64 / 1e6,
            ms(took)
        ));
        json.push(json!({ "cold_write_profiles": profiles, "write_tmpfs_ms": ms_of(took) }));
    }
    table.note(format!(
        "The write of a cold start (every profile new, 4 edits each, one locked write on tmpfs, \
         median of 5): {}.",
        cold.join("; ")
    ));
    table.note(format!(
        "Median (and p95) of {repeats} runs each. Each section holds an access key id, a secret, a \
         {TOKEN_LEN}-character session token and the expiry, as the daemon writes them; the edited \
         section is in the middle. The write is `CredentialsFile::update` with 5 backups (the \
         default), so it also writes the previous version as credentials.1; tmpfs is /dev/shm, \
         where fsync returns at once, which gives the write without the fsyncs and needs no flag \
         in the product. The disk is the machine's {}.",
        disk_description()
    ));
    Ok((table, json!(json)))
}

fn disk_description() -> String {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let dir = env!("CARGO_MANIFEST_DIR");
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && dir.starts_with(f[1]))
                .then(|| (f[1].len(), format!("{} ({})", f[0], f[2])))
        })
        .max()
        .map_or("disk".into(), |(_, d)| d)
}
