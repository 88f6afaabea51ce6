//! A fast STS for tests that need many answers quickly (moto takes tens of
//! milliseconds a call), in this process: [`FastSts`].

#![allow(dead_code)] // each test binary uses a part

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A fast STS for tests that need many answers quickly (moto takes tens of
/// milliseconds a call): answers `GetSessionToken` and `AssumeRole` at once
/// with fresh, unique credentials in STS's XML format, and counts calls.
/// It checks nothing of those; `GetCallerIdentity` is answered only for an
/// access key it issued that has not expired by its clock (`ExpiredToken`,
/// `InvalidClientTokenId` otherwise, as AWS answers), and each key used is
/// recorded ([`FastSts::identities`]). Role and MFA session lifetimes are settable, so that
/// a test can make every pass of the daemon rewrite the file.
pub struct FastSts {
    pub url: String,
    shared: Arc<FastShared>,
}

struct FastShared {
    stop: AtomicBool,
    counter: AtomicU64,
    /// Seconds from now that role credentials expire.
    role_lifetime: AtomicI64,
    /// Seconds added to this process's clock: AWS's clock, for a test that
    /// moves the daemon's clock (a suspend moves both).
    clock_offset: AtomicI64,
    /// Milliseconds each AssumeRole waits before its answer.
    delay_ms: AtomicU64,
    session_lifetime: AtomicI64,
    calls: Mutex<BTreeMap<String, u64>>,
    /// Every secret key and session token handed out.
    issued: Mutex<Vec<String>>,
    /// Access key id → expiry, of every session handed out.
    keys: Mutex<BTreeMap<String, time::OffsetDateTime>>,
    /// The access key ids of `GetCallerIdentity` calls answered, in order.
    identities: Mutex<Vec<String>>,
}

impl FastSts {
    pub fn start(role_lifetime: i64) -> FastSts {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(FastShared {
            stop: AtomicBool::new(false),
            counter: AtomicU64::new(0),
            role_lifetime: AtomicI64::new(role_lifetime),
            clock_offset: AtomicI64::new(0),
            delay_ms: AtomicU64::new(0),
            session_lifetime: AtomicI64::new(43200),
            calls: Mutex::new(BTreeMap::new()),
            issued: Mutex::new(Vec::new()),
            keys: Mutex::new(BTreeMap::new()),
            identities: Mutex::new(Vec::new()),
        });
        let accept = Arc::clone(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&accept);
                std::thread::spawn(move || serve_fast(stream, &shared));
            }
        });
        FastSts { url, shared }
    }

    pub fn set_role_lifetime(&self, seconds: i64) {
        self.shared.role_lifetime.store(seconds, Ordering::SeqCst);
    }

    /// Each AssumeRole from now on answers after `millis` (counted as it
    /// arrives: a test sees the call under way).
    pub fn set_assume_role_delay(&self, millis: u64) {
        self.shared.delay_ms.store(millis, Ordering::SeqCst);
    }

    pub fn set_clock_offset(&self, seconds: i64) {
        self.shared.clock_offset.store(seconds, Ordering::SeqCst);
    }

    /// Every secret access key and session token handed out so far.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.shared.issued.lock().unwrap().clone()
    }

    /// The access key ids that `GetCallerIdentity` calls were answered for
    /// (issued here, unexpired by this STS's clock), in order.
    pub fn identities(&self) -> Vec<String> {
        self.shared.identities.lock().unwrap().clone()
    }

    /// Calls per action so far.
    pub fn calls(&self, action: &str) -> u64 {
        self.shared
            .calls
            .lock()
            .unwrap()
            .get(action)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for FastSts {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

fn serve_fast(stream: TcpStream, shared: &FastShared) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut length = 0usize;
        let mut key_id = None;
        let mut line = String::new();
        // Request line, then headers.
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
                // SigV4: `Credential=KEY/DATE/REGION/sts/aws4_request`.
                if name.eq_ignore_ascii_case("authorization") {
                    key_id = value
                        .split("Credential=")
                        .nth(1)
                        .and_then(|c| c.split('/').next())
                        .map(str::to_string);
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body = String::from_utf8_lossy(&body);
        let action = body
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .unwrap_or("(none)")
            .to_string();
        *shared
            .calls
            .lock()
            .unwrap()
            .entry(action.clone())
            .or_default() += 1;
        let offset = shared.clock_offset.load(Ordering::SeqCst);
        let now = time::OffsetDateTime::now_utc() + time::Duration::seconds(offset);
        if action == "GetCallerIdentity" {
            let known = key_id
                .as_ref()
                .and_then(|id| shared.keys.lock().unwrap().get(id).copied());
            let answer = match (key_id, known) {
                (Some(id), Some(expires)) if expires > now => {
                    shared.identities.lock().unwrap().push(id);
                    Ok("<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:sts::123456789012:assumed-role/Admin/s</Arn><UserId>AROAFAST:s</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>".to_string())
                }
                (Some(_), Some(_)) => Err((
                    "ExpiredToken",
                    "The security token included in the request is expired",
                )),
                _ => Err((
                    "InvalidClientTokenId",
                    "The security token included in the request is invalid.",
                )),
            };
            let response = match answer {
                Ok(xml) => format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{xml}",
                    xml.len()
                ),
                Err((code, message)) => {
                    let xml = format!(
                        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>r</RequestId></ErrorResponse>"
                    );
                    format!(
                        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{xml}",
                        xml.len()
                    )
                }
            };
            if writer.write_all(response.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        if action == "AssumeRole" {
            let delay = shared.delay_ms.load(Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(delay));
        }
        let n = shared.counter.fetch_add(1, Ordering::SeqCst);
        let lifetime = if action == "GetSessionToken" {
            shared.session_lifetime.load(Ordering::SeqCst)
        } else {
            shared.role_lifetime.load(Ordering::SeqCst)
        };
        let expires = now + time::Duration::seconds(lifetime);
        shared
            .keys
            .lock()
            .unwrap()
            .insert(format!("ASIAFAST{n:012}"), expires);
        let expiration = expires
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let (secret, token) = (format!("fastsecret{n:030}"), format!("FastToken{n:040}"));
        shared
            .issued
            .lock()
            .unwrap()
            .extend([secret.clone(), token.clone()]);
        let credentials = format!(
            "<Credentials><AccessKeyId>ASIAFAST{n:012}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey><SessionToken>{token}</SessionToken><Expiration>{expiration}</Expiration></Credentials>"
        );
        let xml = match action.as_str() {
            "GetSessionToken" => format!(
                "<GetSessionTokenResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetSessionTokenResult>{credentials}</GetSessionTokenResult><ResponseMetadata><RequestId>r{n}</RequestId></ResponseMetadata></GetSessionTokenResponse>"
            ),
            _ => format!(
                "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>{credentials}<AssumedRoleUser><AssumedRoleId>AROAFAST:s</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/Admin/s</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>r{n}</RequestId></ResponseMetadata></AssumeRoleResponse>"
            ),
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nx-amzn-RequestId: r{n}\r\n\r\n{xml}",
            xml.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}
