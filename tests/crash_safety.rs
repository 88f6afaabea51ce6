#[path = "support/daemon.rs"]
mod daemon;

use daemon::*;
use std::time::{Duration, Instant};

#[test]
fn explore() {
    let lifetime: i64 = std::env::var("LIFETIME").unwrap().parse().unwrap();
    let sts = FastSts::start(lifetime);
    let mut config = org_config(
        &sts.url,
        "mfa_process = \"echo 123456\"",
        &accounts(std::env::var("N").unwrap().parse().unwrap()),
    );
    config = format!("refresh_margin = 60\nassume_session_duration = 900\n{config}");
    let home = Home::new(&config);
    let t = Instant::now();
    let out = home.run(&["apply"]);
    eprintln!(
        "apply took {:?} status {:?}\n{}",
        t.elapsed(),
        out.status,
        &stderr(&out)[..stderr(&out).len().min(2000)]
    );
    eprintln!(
        "calls {} {}",
        sts.calls("GetSessionToken"),
        sts.calls("AssumeRole")
    );
    let mut d = Running::start(&home, &["run", "--log-level", "debug"]);
    std::thread::sleep(Duration::from_secs(5));
    eprintln!(
        "after 5 s run: calls {} {} cpu {:?}",
        sts.calls("GetSessionToken"),
        sts.calls("AssumeRole"),
        d.cpu_time()
    );
    let log = d.log();
    eprintln!(
        "log lines {} wrote {}",
        log.lines().count(),
        log.matches("wrote ").count()
    );
    eprintln!("{}", &log[log.len().saturating_sub(3000)..]);
    std::fs::write("/tmp/explore/log", &log).unwrap();
    d.kill9();
    eprintln!("len {}", home.text().len());
}

#[test]
fn explore_update() {
    use aws_session_daemon::credentials::{CredentialsFile, Document, Edit};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credentials");
    std::fs::write(&path, USER_TEXT).unwrap();
    let n: usize = std::env::var("N").unwrap_or("200".into()).parse().unwrap();
    let mut edits = Vec::new();
    for a in accounts(n) {
        for k in [
            "aws_access_key_id",
            "aws_secret_access_key",
            "aws_session_token",
            "x_security_token_expires",
        ] {
            edits.push(Edit::set(a.clone(), k, format!("value{a}{k}").into()));
        }
    }
    let t = Instant::now();
    let file = CredentialsFile::new(path.clone(), 5);
    file.update(&edits).unwrap();
    eprintln!("update of {} edits (new): {:?}", edits.len(), t.elapsed());
    let t = Instant::now();
    let mut edits2 = Vec::new();
    for a in accounts(n) {
        for k in [
            "aws_access_key_id",
            "aws_secret_access_key",
            "aws_session_token",
            "x_security_token_expires",
        ] {
            edits2.push(Edit::set(a.clone(), k, format!("other{a}{k}").into()));
        }
    }
    file.update(&edits2).unwrap();
    eprintln!(
        "update of {} edits (existing): {:?}",
        edits2.len(),
        t.elapsed()
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let t = Instant::now();
    let _d = Document::parse(&text);
    eprintln!("parse {} bytes: {:?}", text.len(), t.elapsed());
}
