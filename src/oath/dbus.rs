//! Just enough of the D-Bus wire protocol to send one desktop notification
//! (`org.freedesktop.Notifications.Notify`) on the session bus.
//!
//! A full D-Bus crate costs more compile time than the whole OATH module
//! for a single method call, so this writes the messages by hand: SASL
//! `EXTERNAL` authentication over the Unix socket, `Hello`, then `Notify`,
//! and waits (briefly) for the reply. Little-endian marshalling only; the
//! replies may be in either byte order.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

/// One notification.
pub(crate) struct Notification<'a> {
    pub app_name: &'a str,
    pub icon: &'a str,
    pub summary: &'a str,
    pub body: &'a str,
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DbusError {
    #[error("session bus address {0:?} has no usable unix socket")]
    Address(String),
    #[error("session bus: {0}")]
    Io(#[from] io::Error),
    #[error("session bus refused authentication: {0}")]
    Auth(String),
    #[error("session bus answered {0}")]
    Remote(String),
    #[error("malformed message from the session bus")]
    Malformed,
}

/// Sends `note` to the notification service on the bus at `address`
/// (the value of `DBUS_SESSION_BUS_ADDRESS`). Returns the notification id.
pub(crate) fn notify(address: &str, note: &Notification<'_>) -> Result<u32, DbusError> {
    let mut conn = Connection::open(address)?;
    let mut body = Writer::default();
    body.string(note.app_name);
    body.u32(0); // replaces_id
    body.string(note.icon);
    body.string(note.summary);
    body.string(note.body);
    body.u32(0); // actions: as, empty
    body.u32(0); // hints: a{sv}, empty; its elements would be 8-aligned:
    body.align(8);
    body.u32(note.timeout.as_millis().min(i32::MAX as u128) as u32); // expire_timeout: i
    let reply = conn.call(
        Call {
            destination: "org.freedesktop.Notifications",
            path: "/org/freedesktop/Notifications",
            interface: "org.freedesktop.Notifications",
            member: "Notify",
            signature: "susssasa{sv}i",
        },
        &body.buf,
    )?;
    let mut r = Reader::new(&reply.body, reply.little_endian);
    r.u32().ok_or(DbusError::Malformed)
}

pub(crate) struct Call<'a> {
    pub destination: &'a str,
    pub path: &'a str,
    pub interface: &'a str,
    pub member: &'a str,
    pub signature: &'a str,
}

/// A message as read from the bus.
#[derive(Debug, Default)]
pub(crate) struct Message {
    pub kind: u8,
    /// What a reply refers to (only the tests' notification service replies).
    #[cfg_attr(not(test), allow(dead_code))]
    pub serial: u32,
    pub reply_serial: Option<u32>,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub destination: Option<String>,
    pub sender: Option<String>,
    pub signature: Option<String>,
    pub little_endian: bool,
    pub body: Vec<u8>,
}

pub(crate) const METHOD_CALL: u8 = 1;
pub(crate) const METHOD_RETURN: u8 = 2;

pub(crate) struct Connection {
    stream: BufReader<UnixStream>,
    serial: u32,
}

impl Connection {
    /// Connects to the first usable `unix:` address, authenticates and
    /// says `Hello` (the bus drops clients that send anything else first).
    pub(crate) fn open(address: &str) -> Result<Connection, DbusError> {
        let mut last = DbusError::Address(address.to_string());
        for candidate in address.split(';') {
            match connect(candidate) {
                Ok(stream) => {
                    let mut conn = Connection {
                        stream: BufReader::new(stream),
                        serial: 0,
                    };
                    conn.authenticate()?;
                    conn.call(
                        Call {
                            destination: "org.freedesktop.DBus",
                            path: "/org/freedesktop/DBus",
                            interface: "org.freedesktop.DBus",
                            member: "Hello",
                            signature: "",
                        },
                        &[],
                    )?;
                    return Ok(conn);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn authenticate(&mut self) -> Result<(), DbusError> {
        let uid = std::fs::metadata("/proc/self")?.uid();
        let hex: String = uid
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        let stream = self.stream.get_mut();
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        stream.write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let mut line = String::new();
        self.stream.read_line(&mut line)?;
        if !line.starts_with("OK ") {
            return Err(DbusError::Auth(line.trim_end().to_string()));
        }
        self.stream.get_mut().write_all(b"BEGIN\r\n")?;
        Ok(())
    }

    /// Sends a method call and waits for its reply, skipping signals and
    /// other traffic.
    pub(crate) fn call(&mut self, call: Call<'_>, body: &[u8]) -> Result<Message, DbusError> {
        let serial = self.send(METHOD_CALL, &call, None, body)?;
        loop {
            let m = self.read()?;
            if m.reply_serial == Some(serial) {
                return match m.kind {
                    METHOD_RETURN => Ok(m),
                    _ => Err(DbusError::Remote(
                        m.error_name.unwrap_or_else(|| "an error".to_string()),
                    )),
                };
            }
        }
    }

    /// Sends a message; returns its serial.
    pub(crate) fn send(
        &mut self,
        kind: u8,
        call: &Call<'_>,
        reply_to: Option<(u32, &str)>,
        body: &[u8],
    ) -> Result<u32, DbusError> {
        self.serial += 1;
        let msg = marshal(kind, self.serial, call, reply_to, body);
        self.stream.get_mut().write_all(&msg)?;
        Ok(self.serial)
    }

    pub(crate) fn read(&mut self) -> Result<Message, DbusError> {
        let mut fixed = [0u8; 16];
        self.stream.read_exact(&mut fixed)?;
        let little_endian = match fixed[0] {
            b'l' => true,
            b'B' => false,
            _ => return Err(DbusError::Malformed),
        };
        let num = |b: &[u8]| {
            let a = [b[0], b[1], b[2], b[3]];
            if little_endian {
                u32::from_le_bytes(a)
            } else {
                u32::from_be_bytes(a)
            }
        };
        let body_len = num(&fixed[4..8]) as usize;
        let fields_len = num(&fixed[12..16]) as usize;
        if body_len > 1 << 20 || fields_len > 1 << 16 {
            return Err(DbusError::Malformed);
        }
        let padded = (fields_len + 7) & !7;
        let mut rest = vec![0u8; padded + body_len];
        self.stream.read_exact(&mut rest)?;
        let mut m = Message {
            kind: fixed[1],
            serial: num(&fixed[8..12]),
            little_endian,
            body: rest.split_off(padded),
            ..Message::default()
        };
        // Header fields: a(yv), read relative to the message start (16).
        let mut all = fixed.to_vec();
        all.extend_from_slice(&rest[..fields_len]);
        let mut r = Reader::new(&all, little_endian);
        r.pos = 16;
        while r.pos < all.len() {
            r.align(8);
            let code = r.u8().ok_or(DbusError::Malformed)?;
            let sig = r.signature().ok_or(DbusError::Malformed)?;
            let value = match sig.as_str() {
                "s" | "o" => Field::Text(r.string().ok_or(DbusError::Malformed)?),
                "g" => Field::Text(r.signature().ok_or(DbusError::Malformed)?),
                "u" => Field::Number(r.u32().ok_or(DbusError::Malformed)?),
                _ => return Err(DbusError::Malformed),
            };
            match (code, value) {
                (1, Field::Text(t)) => m.path = Some(t),
                (2, Field::Text(t)) => m.interface = Some(t),
                (3, Field::Text(t)) => m.member = Some(t),
                (4, Field::Text(t)) => m.error_name = Some(t),
                (5, Field::Number(n)) => m.reply_serial = Some(n),
                (6, Field::Text(t)) => m.destination = Some(t),
                (7, Field::Text(t)) => m.sender = Some(t),
                (8, Field::Text(t)) => m.signature = Some(t),
                _ => {}
            }
        }
        Ok(m)
    }
}

enum Field {
    Text(String),
    Number(u32),
}

fn connect(address: &str) -> Result<UnixStream, DbusError> {
    let bad = || DbusError::Address(address.to_string());
    let params = address.strip_prefix("unix:").ok_or_else(bad)?;
    for kv in params.split(',') {
        let Some((key, value)) = kv.split_once('=') else {
            continue;
        };
        let value = unescape(value).ok_or_else(bad)?;
        match key {
            "path" => return Ok(UnixStream::connect(value)?),
            #[cfg(target_os = "linux")]
            "abstract" => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(value.as_bytes())?;
                return Ok(UnixStream::connect_addr(&addr)?);
            }
            _ => {}
        }
    }
    Err(bad())
}

/// D-Bus addresses percent-escape bytes outside a small safe set.
fn unescape(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Little-endian marshalling, aligned relative to the buffer start.
#[derive(Default)]
pub(crate) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn align(&mut self, n: usize) {
        while !self.buf.len().is_multiple_of(n) {
            self.buf.push(0);
        }
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    pub fn signature(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    fn field(&mut self, code: u8, sig: &str, value: &str) {
        self.align(8);
        self.u8(code);
        self.signature(sig);
        if sig == "g" {
            self.signature(value);
        } else {
            self.string(value);
        }
    }
}

fn marshal(
    kind: u8,
    serial: u32,
    call: &Call<'_>,
    reply_to: Option<(u32, &str)>,
    body: &[u8],
) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(b'l');
    w.u8(kind);
    w.u8(0); // flags: replies wanted, auto-start allowed
    w.u8(1); // protocol version
    w.u32(body.len() as u32);
    w.u32(serial);
    w.u32(0); // header fields length, patched below
    let start = w.buf.len();
    if let Some((reply_serial, destination)) = reply_to {
        w.align(8);
        w.u8(5);
        w.signature("u");
        w.u32(reply_serial);
        w.field(6, "s", destination);
    } else {
        w.field(1, "o", call.path);
        w.field(2, "s", call.interface);
        w.field(3, "s", call.member);
        w.field(6, "s", call.destination);
    }
    if !call.signature.is_empty() {
        w.field(8, "g", call.signature);
    }
    let len = (w.buf.len() - start) as u32;
    w.buf[12..16].copy_from_slice(&len.to_le_bytes());
    w.align(8);
    w.buf.extend_from_slice(body);
    w.buf
}

pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pub pos: usize,
    little_endian: bool,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], little_endian: bool) -> Self {
        Reader {
            data,
            pos: 0,
            little_endian,
        }
    }
    pub fn align(&mut self, n: usize) {
        self.pos = self.pos.div_ceil(n) * n;
    }
    pub fn u8(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.align(4);
        let b: [u8; 4] = self.data.get(self.pos..self.pos + 4)?.try_into().ok()?;
        self.pos += 4;
        Some(if self.little_endian {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }
    pub fn string(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        let s = self.data.get(self.pos..self.pos + len)?;
        self.pos += len + 1;
        String::from_utf8(s.to_vec()).ok()
    }
    pub fn signature(&mut self) -> Option<String> {
        let len = self.u8()? as usize;
        let s = self.data.get(self.pos..self.pos + len)?;
        self.pos += len + 1;
        String::from_utf8(s.to_vec()).ok()
    }
}

#[cfg(test)]
#[path = "dbus_tests.rs"]
mod tests;
