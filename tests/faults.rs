#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/example_bin.rs"]
mod example_bin;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/sts_front.rs"]
mod sts_front;

use daemon::*;
use std::time::{Duration, Instant};

#[test]
fn explore_backoff() {
    let moto = moto::Moto::start();
    let front = sts_front::StsFront::start(&moto.url, &[]);
    front.inject(
        serde_json::json!({"fault": "server_error", "for_ms": 20000, "action": "AssumeRole"}),
    );
    let home = Home::new(&org_config(
        &front.url,
        "mfa_process = \"echo 123456\"",
        &accounts(3),
    ));
    let mut d = Running::start(&home, &["run", "--log-level", "debug"]);
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    eprintln!(
        "after {:?}: cpu {:?} stats {}",
        t.elapsed(),
        d.cpu_time(),
        front.stats()
    );
    let log = d.log();
    eprintln!("log lines {}", log.lines().count());
    std::fs::write("/tmp/explore/log2", &log).unwrap();
    d.kill9();
}
