//! The hand-written D-Bus client against a real `dbus-daemon`: the daemon
//! validates every message strictly and drops a client that sends a
//! malformed one, so these tests pin the wire format.

use super::*;
use std::process::{Child, Command, Stdio};

struct Bus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_bus() -> Bus {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix:path={}/bus", dir.path().display());
    let mut child = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .arg(format!("--address={address}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run dbus-daemon ({e}); install it: apt-get install dbus-daemon")
        });
    // It prints its address once it listens.
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("unix:"), "dbus-daemon said {line:?}");
    Bus {
        child,
        address,
        _dir: dir,
    }
}

fn note(body: &str) -> Notification<'_> {
    Notification {
        app_name: "aws-session-daemon",
        icon: "dialog-password",
        summary: "Touch your YubiKey",
        body,
        timeout: Duration::from_secs(15),
    }
}

#[test]
fn notify_reaches_the_notification_service() {
    let bus = start_bus();
    // Play the notification service on a second connection.
    let mut service = Connection::open(&bus.address).unwrap();
    let mut body = Writer::default();
    body.string("org.freedesktop.Notifications");
    body.u32(4); // DBUS_NAME_FLAG_DO_NOT_QUEUE
    let reply = service
        .call(
            Call {
                destination: "org.freedesktop.DBus",
                path: "/org/freedesktop/DBus",
                interface: "org.freedesktop.DBus",
                member: "RequestName",
                signature: "su",
            },
            &body.buf,
        )
        .unwrap();
    assert_eq!(
        Reader::new(&reply.body, reply.little_endian).u32(),
        Some(1),
        "primary owner"
    );

    let address = bus.address.clone();
    let client = std::thread::spawn(move || notify(&address, &note("a code for \"x:y\"")));

    let call = loop {
        let m = service.read().unwrap();
        if m.kind == METHOD_CALL && m.member.as_deref() == Some("Notify") {
            break m;
        }
    };
    assert_eq!(
        call.interface.as_deref(),
        Some("org.freedesktop.Notifications")
    );
    assert_eq!(call.path.as_deref(), Some("/org/freedesktop/Notifications"));
    assert_eq!(call.signature.as_deref(), Some("susssasa{sv}i"));
    let mut r = Reader::new(&call.body, call.little_endian);
    assert_eq!(r.string().as_deref(), Some("aws-session-daemon"));
    assert_eq!(r.u32(), Some(0));
    assert_eq!(r.string().as_deref(), Some("dialog-password"));
    assert_eq!(r.string().as_deref(), Some("Touch your YubiKey"));
    assert_eq!(r.string().as_deref(), Some("a code for \"x:y\""));
    assert_eq!(r.u32(), Some(0), "no actions");
    assert_eq!(r.u32(), Some(0), "no hints");
    r.align(8);
    assert_eq!(r.u32(), Some(15_000), "expire timeout in ms");

    let mut answer = Writer::default();
    answer.u32(42);
    service
        .send(
            METHOD_RETURN,
            &Call {
                destination: "",
                path: "",
                interface: "",
                member: "",
                signature: "u",
            },
            Some((call.serial, call.sender.as_deref().unwrap())),
            &answer.buf,
        )
        .unwrap();
    assert_eq!(client.join().unwrap().unwrap(), 42);
}

#[test]
fn without_a_notification_service_the_bus_says_so() {
    let bus = start_bus();
    let e = notify(&bus.address, &note("x")).unwrap_err();
    assert!(
        matches!(&e, DbusError::Remote(name) if name.contains("ServiceUnknown")),
        "{e:?}"
    );
}

#[test]
fn addresses() {
    assert!(matches!(
        Connection::open("tcp:host=localhost,port=1"),
        Err(DbusError::Address(_))
    ));
    assert_eq!(
        unescape("/run/user/1000/b%75s").as_deref(),
        Some("/run/user/1000/bus")
    );
    assert!(unescape("%zz").is_none());
    // A dead path, then a working one: the second is used.
    let bus = start_bus();
    let both = format!("unix:path=/nonexistent/bus;{}", bus.address);
    assert!(Connection::open(&both).is_ok());
}
