//! A virtual YubiKey for tests and benchmarks: the OATH applet of a
//! YubiKey 5, plugged into vsmartcard's `vpcd` reader driver of pcscd, so
//! that the real pcscd + libpcsclite + `pcsc` crate path is exercised.
//!
//! ```text
//! virtual_yubikey [--port 35963] [--credentials FILE] [--password PW] [--salt HEX]
//!                 [--touch-delay-ms N] [--never-touched] [--touch-timeout-ms 15000]
//!                 [--max-response N] [--counter-file PATH] [--unplug-after-ms N]
//!                 [--no-oath]
//! ```
//!
//! - vpcd listens on 127.0.0.1:35963 (reader "Virtual PCD 00 00") and
//!   35964 ("Virtual PCD 00 01"); frames are a 2-byte big-endian length and
//!   a payload: one byte is a control (00 power off, 01 power on, 02 reset,
//!   04 send ATR), more is an APDU answered with data + SW1 SW2.
//! - Credentials file (TOML), one `[[credential]]` table each:
//!   `name`, `type` ("totp"/"hotp"), `algorithm` ("sha1"/"sha256"/"sha512"),
//!   `digits` (6/8), `secret` (base32) or `secret_hex`, `touch` (bool);
//!   optional top-level `password`.
//! - Touch credentials answer after `--touch-delay-ms`; with
//!   `--never-touched` they answer `69 82` after `--touch-timeout-ms`, as a
//!   real key does after about 15 s.
//! - `--max-response N` sends at most N data bytes at once, forcing SEND
//!   REMAINING chaining.
//! - `--counter-file PATH`: after every CALCULATE / CALCULATE ALL, the number
//!   of such commands answered so far (YubiKey uses) is written there.
//! - Unplugging: SIGUSR1 drops the connection to vpcd (the card is removed),
//!   SIGUSR2 plugs it back; `--unplug-after-ms N` unplugs once, N ms after
//!   the first connection. When vpcd is not listening (pcscd stopped), the
//!   card retries until it is.

#[path = "../crates/ykoath/src/applet.rs"]
mod applet;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use applet::{Algorithm, Applet, Credential, Kind, Touch};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::signal::unix::{SignalKind, signal};

/// A YubiKey 5 NFC's ATR.
const ATR: [u8; 23] = [
    0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x59,
    0x75, 0x62, 0x69, 0x4B, 0x65, 0x79, 0x40,
];

struct Options {
    port: u16,
    credentials: Option<PathBuf>,
    password: Option<String>,
    salt: Option<[u8; 8]>,
    touch_delay: Duration,
    never_touched: bool,
    touch_timeout: Duration,
    max_response: usize,
    counter_file: Option<PathBuf>,
    unplug_after: Option<Duration>,
    no_oath: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: virtual_yubikey [--port N] [--credentials FILE] [--password PW] [--salt HEX] \
         [--touch-delay-ms N] [--never-touched] [--touch-timeout-ms N] [--max-response N] \
         [--counter-file PATH] [--unplug-after-ms N] [--no-oath]"
    );
    std::process::exit(2)
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        port: 35963,
        credentials: None,
        password: None,
        salt: None,
        touch_delay: Duration::from_millis(500),
        never_touched: false,
        touch_timeout: Duration::from_secs(15),
        max_response: 0,
        counter_file: None,
        unplug_after: None,
        no_oath: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        let ms = |v: String| {
            v.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|e| format!("{v}: {e}"))
        };
        match arg.as_str() {
            "--port" => o.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--credentials" => o.credentials = Some(value()?.into()),
            "--password" => o.password = Some(value()?),
            "--salt" => {
                let bytes = decode_hex(&value()?)?;
                o.salt = Some(bytes.try_into().map_err(|_| "--salt needs 8 bytes")?);
            }
            "--touch-delay-ms" => o.touch_delay = ms(value()?)?,
            "--never-touched" => o.never_touched = true,
            "--touch-timeout-ms" => o.touch_timeout = ms(value()?)?,
            "--max-response" => {
                o.max_response = value()?
                    .parse()
                    .map_err(|e| format!("--max-response: {e}"))?
            }
            "--counter-file" => o.counter_file = Some(value()?.into()),
            "--unplug-after-ms" => o.unplug_after = Some(ms(value()?)?),
            "--no-oath" => o.no_oath = true,
            "-h" | "--help" => usage(),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

fn decode_hex(s: &str) -> Result<Vec<u8>, String> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !s.len().is_multiple_of(2) {
        return Err(format!("odd-length hex {s:?}"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("hex {s:?}: {e}")))
        .collect()
}

/// RFC 4648 base32, case-insensitive, padding and spaces ignored.
fn decode_base32(s: &str) -> Result<Vec<u8>, String> {
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.chars().filter(|c| *c != '=' && !c.is_whitespace()) {
        let v = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u64 - 'A' as u64,
            c @ '2'..='7' => c as u64 - '2' as u64 + 26,
            _ => return Err(format!("invalid base32 character {c:?}")),
        };
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    Ok(out)
}

/// Reads the credentials file; returns the credentials and its password.
fn load(path: &PathBuf) -> Result<(Vec<Credential>, Option<String>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let password = doc
        .get("password")
        .and_then(|p| p.as_str())
        .map(str::to_string);
    let mut credentials = Vec::new();
    let Some(tables) = doc.get("credential").and_then(|c| c.as_array_of_tables()) else {
        return Ok((credentials, password));
    };
    for t in tables.iter() {
        let s = |key: &str| t.get(key).and_then(|v| v.as_str());
        let name = s("name").ok_or("a credential without name")?.to_string();
        let kind = match s("type").unwrap_or("totp") {
            "totp" => Kind::Totp,
            "hotp" => Kind::Hotp,
            other => return Err(format!("{name}: unknown type {other}")),
        };
        let algorithm = match s("algorithm").unwrap_or("sha1") {
            "sha1" => Algorithm::Sha1,
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => return Err(format!("{name}: unknown algorithm {other}")),
        };
        let digits = t.get("digits").and_then(|v| v.as_integer()).unwrap_or(6) as u8;
        let secret = match (s("secret"), s("secret_hex")) {
            (Some(b32), None) => decode_base32(b32)?,
            (None, Some(h)) => decode_hex(h)?,
            _ => return Err(format!("{name}: give exactly one of secret / secret_hex")),
        };
        let touch = t.get("touch").and_then(|v| v.as_bool()).unwrap_or(false);
        credentials.push(Credential {
            name,
            kind,
            algorithm,
            digits,
            secret,
            touch,
            counter: 0,
        });
    }
    Ok((credentials, password))
}

/// The user's finger, simulated.
struct SimulatedTouch {
    delay: Duration,
    never: bool,
    timeout: Duration,
}

impl Touch for SimulatedTouch {
    fn wait_for_touch(&mut self, credential: &str) -> bool {
        if self.never {
            eprintln!("virtual_yubikey: waiting for a touch for {credential:?} (never comes)");
            std::thread::sleep(self.timeout);
            return false;
        }
        eprintln!("virtual_yubikey: waiting for a touch for {credential:?}");
        std::thread::sleep(self.delay);
        true
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("virtual_yubikey: {e}");
            return ExitCode::from(2);
        }
    };
    let (credentials, file_password) = match &options.credentials {
        Some(path) => match load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("virtual_yubikey: {e}");
                return ExitCode::from(2);
            }
        },
        None => (Vec::new(), None),
    };
    let mut applet = Applet::new(credentials);
    if let Some(salt) = options.salt {
        applet.salt = salt;
    }
    if let Some(password) = options.password.as_ref().or(file_password.as_ref()) {
        applet.set_password(password);
    }
    applet.max_response = options.max_response;
    applet.has_oath = !options.no_oath;
    applet.touch = Box::new(SimulatedTouch {
        delay: options.touch_delay,
        never: options.never_touched,
        timeout: options.touch_timeout,
    });
    let applet = Arc::new(Mutex::new(applet));
    if let Some(path) = &options.counter_file {
        write_counter(path, 0);
    }
    run(&options, applet).await;
    ExitCode::SUCCESS
}

/// What ended a connection to vpcd.
enum End {
    Unplugged,
    Lost,
}

async fn run(options: &Options, applet: Arc<Mutex<Applet>>) {
    let mut usr1 = signal(SignalKind::user_defined1()).expect("SIGUSR1 handler");
    let mut usr2 = signal(SignalKind::user_defined2()).expect("SIGUSR2 handler");
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut unplug_after = options.unplug_after;
    let mut plugged = true;
    loop {
        if !plugged {
            eprintln!("virtual_yubikey: unplugged; SIGUSR2 plugs back in");
            tokio::select! {
                _ = usr2.recv() => plugged = true,
                _ = usr1.recv() => continue,
                _ = term.recv() => return,
            }
        }
        // vpcd listens only while pcscd runs: retry until it does.
        let stream = tokio::select! {
            s = connect(options.port) => s,
            _ = usr1.recv() => { plugged = false; continue; }
            _ = term.recv() => return,
        };
        eprintln!(
            "virtual_yubikey: plugged into vpcd on port {}",
            options.port
        );
        applet.lock().unwrap().reset();
        let unplug_timer = async {
            match unplug_after {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let end = tokio::select! {
            end = serve(stream, &applet, options) => end,
            _ = usr1.recv() => End::Unplugged,
            _ = unplug_timer => { unplug_after = None; End::Unplugged }
            _ = term.recv() => return,
        };
        match end {
            End::Unplugged => plugged = false,
            End::Lost => {
                eprintln!("virtual_yubikey: vpcd closed the connection; reconnecting");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn connect(port: u16) -> TcpStream {
    loop {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return s;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn serve(mut stream: TcpStream, applet: &Arc<Mutex<Applet>>, options: &Options) -> End {
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).await.is_err() {
            return End::Lost;
        }
        let mut payload = vec![0u8; u16::from_be_bytes(len) as usize];
        if stream.read_exact(&mut payload).await.is_err() {
            return End::Lost;
        }
        let answer = match payload.as_slice() {
            [0x00] | [0x02] => {
                applet.lock().unwrap().reset();
                None
            }
            [0x01] => None,
            [0x04] => Some(ATR.to_vec()),
            [_] => None,
            apdu => {
                let apdu = apdu.to_vec();
                let shared = Arc::clone(applet);
                // A touch blocks like the real key; keep the runtime free.
                let (response, count) = tokio::task::spawn_blocking(move || {
                    let mut a = shared.lock().unwrap();
                    let r = a.process(&apdu);
                    (r, a.calculate_count)
                })
                .await
                .expect("applet thread");
                if let Some(path) = &options.counter_file {
                    write_counter(path, count);
                }
                Some(response)
            }
        };
        if let Some(answer) = answer {
            let mut frame = (answer.len() as u16).to_be_bytes().to_vec();
            frame.extend_from_slice(&answer);
            if stream.write_all(&frame).await.is_err() {
                return End::Lost;
            }
        }
    }
}

/// Written by rename so a reader never sees a half-written number.
fn write_counter(path: &PathBuf, count: u64) {
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, format!("{count}\n")).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}
