//! The daemon's STS client speaks TLS (hyper 1, rustls 0.23 with ring): an
//! `https://` endpoint on 127.0.0.1 behind a TLS front (Python's `ssl`, a
//! certificate made with `openssl req` for the test), trusted through
//! `SSL_CERT_FILE`; and a certificate it does not trust is refused.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/fast_sts.rs"]
mod fast_sts;
#[path = "support/tools.rs"]
mod tools;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use daemon::{Home, accounts, org_config, stderr};
use fast_sts::FastSts;

struct TlsFront {
    child: std::process::Child,
    url: String,
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_front(dir: &std::path::Path, upstream: &str) -> (TlsFront, std::path::PathBuf) {
    // A CA, and a server certificate for 127.0.0.1 signed by it.
    let ca = dir.join("ca.pem");
    let ca_key = dir.join("ca.key");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let csr = dir.join("cert.csr");
    let ext = dir.join("ext.cnf");
    std::fs::write(
        &ext,
        "basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let openssl = |args: &[&std::ffi::OsStr]| {
        let status = Command::new("openssl")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl (Debian package openssl)");
        assert!(status.success(), "openssl {args:?}");
    };
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    openssl(&[
        os("req"),
        os("-x509"),
        os("-newkey"),
        os("rsa:2048"),
        os("-nodes"),
        os("-days"),
        os("1"),
        os("-subj"),
        os("/CN=test CA"),
        os("-keyout"),
        ca_key.as_os_str(),
        os("-out"),
        ca.as_os_str(),
    ]);
    openssl(&[
        os("req"),
        os("-newkey"),
        os("rsa:2048"),
        os("-nodes"),
        os("-subj"),
        os("/CN=127.0.0.1"),
        os("-keyout"),
        key.as_os_str(),
        os("-out"),
        csr.as_os_str(),
    ]);
    openssl(&[
        os("x509"),
        os("-req"),
        os("-in"),
        csr.as_os_str(),
        os("-CA"),
        ca.as_os_str(),
        os("-CAkey"),
        ca_key.as_os_str(),
        os("-CAcreateserial"),
        os("-days"),
        os("1"),
        os("-extfile"),
        ext.as_os_str(),
        os("-out"),
        cert.as_os_str(),
    ]);
    let port = upstream.rsplit(':').next().unwrap();
    let python = tools::python3();
    let mut child = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/tls_proxy.py"
        ))
        .arg(&cert)
        .arg(&key)
        .arg(port)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .expect("the TLS front's address");
    let url = format!("https://{address}");
    (TlsFront { child, url }, ca)
}

#[test]
fn sts_over_tls_works_and_an_untrusted_certificate_is_refused() {
    let sts = FastSts::start(3600);
    let dir = tempfile::tempdir().unwrap();
    let (front, cert) = tls_front(dir.path(), &sts.url);
    let home = Home::new(&org_config(
        &front.url,
        "mfa_process = \"echo 123456\"",
        &accounts(2),
    ));

    // Not trusted: the handshake fails, nothing is written, the error says so.
    let output = home.run(&["apply"]);
    assert!(!output.status.success());
    assert_eq!(sts.calls("GetSessionToken"), 0);
    let err = stderr(&output);
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("TLS") || err.contains("tls"),
        "{err}"
    );

    // Trusted: the whole pass goes over TLS. (A new HOME: the first one
    // spent this TOTP step on the refused attempt.)
    let home = Home::new(&org_config(
        &front.url,
        "mfa_process = \"echo 123456\"",
        &accounts(2),
    ));
    let output = home
        .command(&["apply"])
        .env("SSL_CERT_FILE", &cert)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        (sts.calls("GetSessionToken"), sts.calls("AssumeRole")),
        (1, 2)
    );
    drop(front);
}
