//! Under systemd, each log line reaches the journal at its own priority,
//! with the section as a field: what `journalctl -p warning` and
//! `journalctl SECTION=NAME` rely on.
//!
//! journald's native socket has a fixed path, `/run/systemd/journal/socket`.
//! The daemon runs in a mount namespace of its own (`unshare`, util-linux)
//! where a private directory of this test stands at `/run/systemd/journal`,
//! and a listener there reads the datagrams and parses the native protocol
//! (systemd's "Native Journal Protocol": `NAME=value\n`, or `NAME\n`, a
//! 64-bit little-endian length, the value and `\n`). Standard error is a
//! file whose device and inode go into `$JOURNAL_STREAM`, as systemd sets
//! them for a service.

#[path = "support/service_home.rs"]
mod service_home;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_aws-session-daemon");

type Entry = BTreeMap<String, Vec<u8>>;

/// Parses one native-protocol datagram.
fn parse(mut data: &[u8]) -> Entry {
    let mut entry = Entry::new();
    while !data.is_empty() {
        let line_end = data
            .iter()
            .position(|&b| b == b'\n')
            .expect("a field ends in \\n");
        let line = &data[..line_end];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            entry.insert(
                String::from_utf8(line[..eq].to_vec()).unwrap(),
                line[eq + 1..].to_vec(),
            );
            data = &data[line_end + 1..];
        } else {
            let name = String::from_utf8(line.to_vec()).unwrap();
            let rest = &data[line_end + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            let value = rest[8..8 + len].to_vec();
            assert_eq!(rest[8 + len], b'\n', "{name}'s value ends in \\n");
            entry.insert(name, value);
            data = &rest[8 + len + 1..];
        }
    }
    entry
}

fn field(entry: &Entry, name: &str) -> Option<String> {
    entry
        .get(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// A config with one section the planner refuses (an error about it) and
/// one whose code source fails (a warning), the long-term keys, the
/// journal's directory with the listener's socket, and the file standing as
/// standard error.
fn setup(dir: &Path) -> (PathBuf, UnixDatagram, PathBuf) {
    service_home::home_with_long_term_keys(dir);
    std::fs::write(
        dir.join("config.toml"),
        "region = \"us-east-1\"\nsts_endpoint = \"http://127.0.0.1:9\"\n\
         [broken]\nmfa_serial_number = \"arn:aws:iam::123456789012:user/me\"\nmfa_process = \"echo 123456\"\n\
         [failing]\nmfa_serial_number = \"arn:aws:iam::123456789012:mfa/me\"\nmfa_process = \"exit 3\"\n",
    )
    .unwrap();
    let journal = dir.join("journal");
    std::fs::create_dir(&journal).unwrap();
    let socket = UnixDatagram::bind(journal.join("socket")).unwrap();
    let stderr_file = dir.join("stderr");
    std::fs::File::create(&stderr_file).unwrap();
    (journal, socket, stderr_file)
}

/// `aws-session-daemon run` in a mount namespace whose
/// `/run/systemd/journal` is `journal_dir`, standard error `stderr_file`,
/// `$JOURNAL_STREAM` as given.
fn start(dir: &Path, journal_dir: &Path, stderr_file: &Path, journal_stream: &str) -> Child {
    let mut unshare = Command::new("unshare");
    // Root may mount in a new mount namespace; anyone else needs a user
    // namespace too.
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 {
        unshare.arg("--map-root-user");
    }
    let stderr = std::fs::File::create(stderr_file).unwrap();
    unshare
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && \
             mount --bind \"$0\" /run/systemd/journal && exec \"$@\"",
        )
        .arg(journal_dir)
        .arg(BIN)
        .args(["run", "--config"])
        .arg(dir.join("config.toml"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.join("home"))
        .env("XDG_RUNTIME_DIR", dir.join("run"))
        .env("JOURNAL_STREAM", journal_stream)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    if let Some(mark) = std::env::var_os("AWS_SESSION_DAEMON_TEST_RUN") {
        unshare.env("AWS_SESSION_DAEMON_TEST_RUN", mark);
    }
    unshare.spawn().expect("unshare (util-linux) runs")
}

fn stream_of(path: &Path) -> String {
    let meta = std::fs::metadata(path).unwrap();
    format!("{}:{}", meta.dev(), meta.ino())
}

fn stop(child: &mut Child) {
    service_home::stop(child, Duration::from_secs(10));
}

/// Entries received until `done` says so, or `limit`.
fn receive(socket: &UnixDatagram, limit: Duration, done: impl Fn(&[Entry]) -> bool) -> Vec<Entry> {
    let deadline = Instant::now() + limit;
    let mut entries = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    while !done(&entries) && Instant::now() < deadline {
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        if let Ok(n) = socket.recv(&mut buf) {
            entries.push(parse(&buf[..n]));
        }
    }
    entries
}

fn find<'e>(entries: &'e [Entry], needle: &str) -> Option<&'e Entry> {
    entries
        .iter()
        .find(|e| field(e, "MESSAGE").is_some_and(|m| m.contains(needle)))
}

#[test]
fn each_line_reaches_the_journal_at_its_priority_with_its_section() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, socket, stderr_file) = setup(dir.path());
    let stream = stream_of(&stderr_file);
    let mut child = start(dir.path(), &journal, &stderr_file, &stream);

    let entries = receive(&socket, Duration::from_secs(30), |entries| {
        find(entries, "is skipped").is_some() && find(entries, "mfa_process").is_some()
    });
    stop(&mut child);
    let mut all = entries;
    all.extend(receive(&socket, Duration::from_secs(5), |e| {
        find(e, "stopping").is_some()
    }));
    let stderr = std::fs::read_to_string(&stderr_file).unwrap();
    let shown: Vec<String> = all.iter().map(|e| format!("{e:?}")).collect();

    let error = find(&all, "section [broken] is skipped")
        .unwrap_or_else(|| panic!("no error entry in {shown:#?}\nstderr: {stderr}"));
    assert_eq!(field(error, "PRIORITY").as_deref(), Some("3"), "{error:?}");
    assert_eq!(
        field(error, "SECTION").as_deref(),
        Some("broken"),
        "{error:?}"
    );
    assert!(
        field(error, "MESSAGE").unwrap().contains("user ARN"),
        "the message has the reason: {error:?}"
    );

    let warning = find(&all, "mfa_process")
        .unwrap_or_else(|| panic!("no warning entry in {shown:#?}\nstderr: {stderr}"));
    assert_eq!(
        field(warning, "PRIORITY").as_deref(),
        Some("4"),
        "{warning:?}"
    );

    let info = find(&all, "stopping")
        .unwrap_or_else(|| panic!("no info entry in {shown:#?}\nstderr: {stderr}"));
    assert_eq!(field(info, "PRIORITY").as_deref(), Some("6"), "{info:?}");

    for entry in &all {
        assert_eq!(
            field(entry, "SYSLOG_IDENTIFIER").as_deref(),
            Some("aws-session-daemon")
        );
        let message = field(entry, "MESSAGE").unwrap();
        assert!(
            !message.ends_with('\n') && !message.contains("\u{1b}["),
            "{message:?}"
        );
    }
    assert!(
        !stderr.contains("is skipped") && !stderr.contains("stopping"),
        "the lines went to the journal, not (also) to the stream: {stderr}"
    );
}

#[test]
fn a_standard_error_that_is_not_the_journal_stream_gets_plain_text() {
    // A child of a service whose standard error was redirected inherits
    // JOURNAL_STREAM, but not the stream.
    let dir = tempfile::tempdir().unwrap();
    let (journal, socket, stderr_file) = setup(dir.path());
    let other = dir.path().join("other");
    std::fs::File::create(&other).unwrap();
    let mut child = start(dir.path(), &journal, &stderr_file, &stream_of(&other));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&stderr_file)
        .unwrap()
        .contains("mfa_process")
    {
        assert!(Instant::now() < deadline, "no warning on standard error");
        std::thread::sleep(Duration::from_millis(50));
    }
    stop(&mut child);
    let stderr = std::fs::read_to_string(&stderr_file).unwrap();
    assert!(
        stderr.contains("ERROR") && stderr.contains("section [broken] is skipped"),
        "{stderr}"
    );
    assert!(
        stderr.contains("WARN") && stderr.contains("INFO"),
        "{stderr}"
    );
    let entries = receive(&socket, Duration::from_millis(500), |_| false);
    assert!(entries.is_empty(), "sent to the journal: {entries:?}");
}
