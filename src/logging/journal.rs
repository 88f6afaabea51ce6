//! Log lines straight into the systemd journal, each at its own priority.
//!
//! Under systemd standard error is a stream that journald reads line by
//! line, all at priority "info": `journalctl -p warning` would find nothing.
//! When standard error is that stream (`$JOURNAL_STREAM` names its device
//! and inode, see systemd.exec(5)), each line is sent instead as one
//! datagram of journald's native protocol to `/run/systemd/journal/socket`
//! (systemd's "Native Journal Protocol"): `PRIORITY=` from the event's
//! level, `SECTION=` from the event's `section` field where it has one,
//! and `MESSAGE` the same text the terminal gets (fields and span included),
//! so that nothing shown today goes missing from `journalctl`'s view.
//!
//! Why not the `<N>` prefix on standard error: it sets the priority but
//! carries no other field. Why not the tracing-journald crate: it puts
//! each field into its own journal field and leaves `MESSAGE` with the
//! message alone, so `journalctl` would stop showing the section, the
//! error and the pass's reason that the text line has.
//!
//! Values are sent in the protocol's length-prefixed form, so a newline or
//! an escape in a message cannot forge a field or an entry. A datagram the
//! socket refuses (too large, journald gone) goes to standard error, which
//! is the journal's stream, as text with the `<N>` prefix: nothing is lost.

use std::cell::RefCell;
use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Where journald listens for the native protocol.
const SOCKET: &str = "/run/systemd/journal/socket";

/// The most of one message sent; longer ones are cut (log lines are short;
/// this keeps a datagram well inside the socket's default buffer).
const MAX_MESSAGE: usize = 48 * 1024;

/// The journal, when standard error is its stream and its socket answers.
pub(super) fn connect() -> Option<Journal> {
    if !stderr_is_journal(std::env::var("JOURNAL_STREAM").ok().as_deref()) {
        return None;
    }
    let socket = UnixDatagram::unbound().ok()?;
    socket.connect(SOCKET).ok()?;
    Some(Journal {
        socket: Arc::new(socket),
    })
}

/// Whether `journal_stream` ("DEVICE:INODE") names this process's
/// standard error; a child whose standard error was redirected inherits
/// the variable but not the stream.
fn stderr_is_journal(journal_stream: Option<&str>) -> bool {
    let Some((dev, ino)) = journal_stream.and_then(|v| v.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let Ok(stat) = rustix::fs::fstat(io::stderr()) else {
        return false;
    };
    stat.st_dev == dev && stat.st_ino == ino
}

thread_local! {
    /// The `section` field of the event being formatted on this thread,
    /// from [`WithSection`] to the [`Entry`] that sends it. The fmt layer
    /// formats an event and then writes it, on the same thread, in one call.
    static SECTION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// An event format that notes the event's `section` field for the
/// journal entry, then formats the line as `F` does.
pub(super) struct WithSection<F>(pub(super) F);

impl<S, N, F> FormatEvent<S, N> for WithSection<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut section = SectionField(None);
        event.record(&mut section);
        SECTION.with(|s| *s.borrow_mut() = section.0);
        self.0.format_event(ctx, writer, event)
    }
}

struct SectionField(Option<String>);

impl Visit for SectionField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "section" {
            self.0 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "section" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// The journal's socket, as the fmt layer's writer.
pub(super) struct Journal {
    socket: Arc<UnixDatagram>,
}

impl<'a> MakeWriter<'a> for Journal {
    type Writer = Entry;

    fn make_writer(&'a self) -> Entry {
        self.entry(Level::INFO)
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Entry {
        self.entry(*meta.level())
    }
}

impl Journal {
    fn entry(&self, level: Level) -> Entry {
        Entry {
            socket: Arc::clone(&self.socket),
            priority: priority(level),
            text: Vec::new(),
        }
    }
}

/// syslog's priorities, as journald stores them.
fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// One line: collected, then sent as one journal entry when dropped.
pub(super) struct Entry {
    socket: Arc<UnixDatagram>,
    priority: u8,
    text: Vec<u8>,
}

impl Write for Entry {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.text.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let section = SECTION.with(|s| s.borrow_mut().take());
        let datagram = datagram(self.priority, section.as_deref(), &self.text);
        if self.socket.send(&datagram).is_err() {
            let mut stderr = io::stderr().lock();
            let _ = write!(stderr, "<{}>", self.priority);
            let _ = stderr.write_all(&self.text);
        }
    }
}

/// A native-protocol datagram: every value length-prefixed.
fn datagram(priority: u8, section: Option<&str>, text: &[u8]) -> Vec<u8> {
    let mut message = text.strip_suffix(b"\n").unwrap_or(text);
    if message.len() > MAX_MESSAGE {
        message = &message[..MAX_MESSAGE];
    }
    let mut out = Vec::with_capacity(message.len() + 128);
    field(&mut out, "PRIORITY", priority.to_string().as_bytes());
    field(&mut out, "SYSLOG_IDENTIFIER", b"aws-session-daemon");
    if let Some(section) = section {
        field(&mut out, "SECTION", section.as_bytes());
    }
    field(&mut out, "MESSAGE", message);
    out
}

/// `NAME\n`, the value's length as 64-bit little endian, the value, `\n`.
fn field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_carries_length_prefixed_fields_that_newlines_cannot_forge() {
        let got = datagram(4, Some("prod"), b"bad\nPRIORITY=0\n");
        let mut expected = Vec::new();
        expected.extend_from_slice(b"PRIORITY\n\x01\0\0\0\0\0\0\x004\n");
        expected.extend_from_slice(b"SYSLOG_IDENTIFIER\n\x12\0\0\0\0\0\0\0aws-session-daemon\n");
        expected.extend_from_slice(b"SECTION\n\x04\0\0\0\0\0\0\0prod\n");
        expected.extend_from_slice(b"MESSAGE\n\x0e\0\0\0\0\0\0\0bad\nPRIORITY=0\n");
        assert_eq!(got, expected);
    }

    #[test]
    fn only_standard_errors_own_device_and_inode_is_the_journal() {
        let stat = rustix::fs::fstat(std::io::stderr()).unwrap();
        let own = format!("{}:{}", stat.st_dev, stat.st_ino);
        assert!(stderr_is_journal(Some(&own)));
        let other = format!("{}:{}", stat.st_dev, stat.st_ino + 1);
        for value in [None, Some(""), Some("1"), Some("x:y"), Some(other.as_str())] {
            assert!(!stderr_is_journal(value), "{value:?}");
        }
    }

    #[test]
    fn priorities_follow_syslog() {
        assert_eq!(
            [
                Level::ERROR,
                Level::WARN,
                Level::INFO,
                Level::DEBUG,
                Level::TRACE
            ]
            .map(priority),
            [3, 4, 6, 7, 7]
        );
    }
}
