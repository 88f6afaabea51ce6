//! Faults against the running daemon (`run`): STS unreachable (connections
//! reset), 5xx, a Throttling storm, a code rejected, the YubiKey unplugged
//! and plugged back, pcscd killed and restarted, and the wall clock jumping
//! 8 hours ahead (a suspend), through the STS fault front, the virtual
//! YubiKey behind pcscd + vpcd, and libfaketime.
//!
//! For each: the daemon does not crash, sends few requests while failing
//! (counted by the front over the fault window: backoff, not hammering),
//! burns little CPU meanwhile (no busy loop), and has fresh credentials
//! within a bounded time after the fault clears. Figures are printed.
//!
//! Fault windows are 6 s; `AWS_SESSION_DAEMON_LONG=1` makes them 60 s.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/example_bin.rs"]
mod example_bin;
#[path = "support/fast_sts.rs"]
mod fast_sts;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/pcsc.rs"]
mod pcsc;
#[path = "support/sts_front.rs"]
mod sts_front;
#[path = "support/tools.rs"]
mod tools;
#[path = "support/vcard.rs"]
mod vcard;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use daemon::{Home, Running, SERIAL, accounts, delete_profiles, org_config, wait_until};

/// Short role sessions, so that refreshes are near.
const SHORT: &str = "assume_session_duration = 900\nrefresh_margin = 60\n";
const MARGIN: i64 = 60;

fn long() -> bool {
    std::env::var_os("AWS_SESSION_DAEMON_LONG").is_some_and(|v| !v.is_empty() && v != "0")
}

fn window() -> Duration {
    Duration::from_secs(if long() { 60 } else { 6 })
}

fn fresh(home: &Home, profiles: &[String]) -> bool {
    daemon::stale_profiles(&home.text(), profiles, MARGIN).is_empty()
}

/// Fails the test if the daemon died or panicked.
fn assert_healthy(daemon: &mut Running, what: &str) {
    assert!(daemon.alive(), "{what}: the daemon died:\n{}", daemon.log());
    let log = daemon.log();
    assert!(!log.contains("panicked"), "{what}: a panic:\n{log}");
}

/// No secret in the daemon's (debug) log; every file it wrote is private.
fn assert_no_leak(home: &Home, daemon: &Running, extra: &[String]) {
    let mut secrets = home.secrets();
    secrets.extend_from_slice(extra);
    daemon::assert_no_secret(&daemon.log(), &secrets, "the daemon's log");
    home.assert_files_private();
}

fn requests(stats: &serde_json::Value, action: &str) -> u64 {
    stats["actions"][action].as_u64().unwrap_or(0)
}

/// How the daemon came back after a fault window.
struct Figures {
    recovered: Duration,
}

/// Three sections assuming roles from one cached MFA session; the fault
/// (`fault` for the whole window) hits their refresh, forced by deleting
/// the profiles when it starts.
fn sts_fault(what: &str, fault: serde_json::Value) -> Figures {
    let moto = moto::Moto::start();
    let front = sts_front::StsFront::start(&moto.url, &[]);
    let profiles = accounts(3);
    let config = format!(
        "{SHORT}{}",
        org_config(&front.url, "mfa_process = \"echo 123456\"", &profiles)
    );
    let home = Home::new(&config);
    let mut daemon = Running::start(&home, &["run", "--log-level", "debug"]);
    wait_until("the first pass", Duration::from_secs(30), || {
        fresh(&home, &profiles)
    });

    let window = window();
    front.reset_stats();
    let mut fault = fault;
    fault["for_ms"] = (window.as_millis() as u64).into();
    front.inject(fault);
    let cpu_before = daemon.cpu_time();
    let started = Instant::now();
    delete_profiles(&home.credentials(), &profiles);
    std::thread::sleep(window.saturating_sub(started.elapsed()));
    let stats = front.stats();
    let cpu = daemon.cpu_time() - cpu_before;
    assert_healthy(&mut daemon, what);
    let recovered = wait_until(
        "fresh credentials after the fault",
        window * 2 + Duration::from_secs(5),
        || fresh(&home, &profiles),
    );
    let requests = requests(&stats, "AssumeRole") + requests(&stats, "GetSessionToken");
    eprintln!(
        "{what}: {requests} requests in the {window:?} window for {} sections ({}), \
         {cpu:?} CPU; fresh {recovered:?} after the fault cleared",
        profiles.len(),
        stats["outcomes"]
    );
    // Backoff from 1 s, doubling: at most ~log2(window) + 2 attempts per
    // section. Without it: one per file event or pass, hundreds.
    let per_section = (window.as_secs_f64().log2().ceil() as u64) + 2;
    assert!(
        requests <= per_section * profiles.len() as u64,
        "{what}: {requests} requests in {window:?}, more than {per_section} per section: {stats}"
    );
    assert!(
        requests >= profiles.len() as u64,
        "{what}: the fault was never hit: {stats}"
    );
    assert!(
        cpu < window / 10,
        "{what}: {cpu:?} of CPU in a {window:?} window: a busy loop"
    );
    assert_healthy(&mut daemon, what);
    // Since the fault began, one AssumeRole per section got through.
    let all = front.stats();
    assert_eq!(
        all["by_action"]["AssumeRole"]["ok"].as_u64().unwrap_or(0),
        profiles.len() as u64,
        "{what}: one AssumeRole per section to recover: {all}"
    );
    assert_no_leak(&home, &daemon, &[]);
    Figures { recovered }
}

/// After failing for the whole window, the next attempt is one backoff
/// step away, and a step (doubling, with jitter) is less than twice the
/// time spent failing.
fn assert_recovered_within_a_backoff_step(figures: &Figures) {
    let bound = window() * 2 + Duration::from_secs(2);
    assert!(
        figures.recovered <= bound,
        "fresh only {:?} after the fault cleared (bound {bound:?})",
        figures.recovered
    );
}

#[test]
fn sts_unreachable_connections_reset() {
    let figures = sts_fault("connections reset", serde_json::json!({"fault": "reset"}));
    assert_recovered_within_a_backoff_step(&figures);
}

#[test]
fn sts_server_errors() {
    let figures = sts_fault(
        "HTTP 503",
        serde_json::json!({"fault": "server_error", "status": 503}),
    );
    assert_recovered_within_a_backoff_step(&figures);
}

#[test]
fn sts_throttling_storm() {
    let figures = sts_fault("Throttling", serde_json::json!({"fault": "throttle"}));
    assert_recovered_within_a_backoff_step(&figures);
}

#[test]
fn a_rejected_code_costs_one_more_code_and_no_more() {
    // The code for the MFA session is refused once (AWS: "invalid MFA one
    // time pass code"): the daemon waits for the next TOTP step and retries
    // once, with a fresh code.
    let moto = moto::Moto::start();
    let front = sts_front::StsFront::start(&moto.url, &[]);
    front.inject(
        serde_json::json!({"fault": "code_rejected", "count": 1, "action": "GetSessionToken"}),
    );
    let profiles = accounts(2);
    let home = Home::new(&org_config(
        &front.url,
        "mfa_process = \"echo 123456\"",
        &profiles,
    ));
    let started = Instant::now();
    let mut daemon = Running::start(&home, &["run", "--log-level", "debug"]);
    let took = wait_until("fresh credentials", Duration::from_secs(40), || {
        fresh(&home, &profiles)
    });
    let stats = front.stats();
    eprintln!(
        "code rejected once: fresh after {took:?} (a TOTP step is 30 s); STS {}",
        stats["by_action"]
    );
    assert_eq!(requests(&stats, "GetSessionToken"), 2, "{stats}");
    assert_eq!(requests(&stats, "AssumeRole"), 2, "{stats}");
    assert!(took <= Duration::from_secs(35));
    assert_healthy(&mut daemon, "code rejected");
    assert_no_leak(&home, &daemon, &[]);
    let _ = started;
}

#[test]
fn a_wall_clock_jump_of_eight_hours_is_caught_within_a_minute() {
    // A suspend: the wall clock jumps 8 hours, the monotonic clock does not
    // (tokio's timers run on it). The daemon runs under libfaketime reading
    // its offset from a file; the fast STS's clock (AWS's) jumps along.
    let sts = fast_sts::FastSts::start(900);
    let profiles = accounts(3);
    let config = format!(
        "{SHORT}{}",
        org_config(&sts.url, "mfa_process = \"echo 123456\"", &profiles)
    );
    let home = Home::new(&config);
    let offset_file = home.path().join("faketime");
    std::fs::write(&offset_file, "+0\n").unwrap();
    let mut command = home.command(&["run", "--log-level", "debug"]);
    command
        .env("LD_PRELOAD", tools::libfaketime())
        .env("FAKETIME_TIMESTAMP_FILE", &offset_file)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    let mut daemon = Running::start_logging_to(command, home.path().join("daemon.log"));
    wait_until("the first pass", Duration::from_secs(30), || {
        fresh(&home, &profiles)
    });
    // Let the pass that our own write triggers end: the daemon sleeps now.
    std::thread::sleep(Duration::from_secs(2));
    let log_before = daemon.log().len();
    let before = (sts.calls("GetSessionToken"), sts.calls("AssumeRole"));

    const JUMP: i64 = 8 * 3600;
    std::fs::write(&offset_file, "+8h\n").unwrap();
    sts.set_clock_offset(JUMP);
    let cpu_before = daemon.cpu_time();
    let jumped = time::OffsetDateTime::now_utc() + time::Duration::seconds(JUMP);
    assert!(!daemon::stale_profiles_at(&home.text(), &profiles, MARGIN, jumped).is_empty());
    let took = wait_until(
        "fresh credentials after the jump",
        Duration::from_secs(75),
        || {
            let now = time::OffsetDateTime::now_utc() + time::Duration::seconds(JUMP);
            daemon::stale_profiles_at(&home.text(), &profiles, MARGIN, now).is_empty()
        },
    );
    let cpu = daemon.cpu_time() - cpu_before;
    let after = (
        sts.calls("GetSessionToken") - before.0,
        sts.calls("AssumeRole") - before.1,
    );
    eprintln!(
        "clock jump of 8 h: fresh {took:?} after the jump (the loop re-checks the wall clock at \
         least every 60 s), {} GetSessionToken and {} AssumeRole after it, {cpu:?} CPU while waiting",
        after.0, after.1
    );
    assert!(took <= Duration::from_secs(66), "{took:?}");
    assert_eq!(
        after.0, 0,
        "the 12-hour MFA session is still valid: no code"
    );
    assert_eq!(after.1, profiles.len() as u64, "one AssumeRole per section");
    assert!(cpu < Duration::from_secs(3), "{cpu:?} CPU while waiting");
    assert_healthy(&mut daemon, "clock jump");
    // The wake-up was the periodic wall-clock check, not an event nor a
    // deadline (the monotonic clock did not move). (The pass logs after its
    // write.)
    wait_until("the pass's log line", Duration::from_secs(5), || {
        daemon.log()[log_before..].contains("pass{reason=Periodic}: wrote 3 profile(s)")
    });
    assert_no_leak(&home, &daemon, &sts.issued_secrets());
}

/// The TOTP step of the wall clock now.
fn step_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30
}

/// One section assuming its role directly with a code from the virtual
/// YubiKey (`mfa_session_duration = 0`): every refresh needs the key. With
/// `fresh_profile`, the profile is already in the file and fresh for an
/// hour, so the daemon starts without spending a code (the next code then
/// needs no wait for a new TOTP step).
fn yubikey_home(front: &sts_front::StsFront, fresh_profile: bool) -> (Home, Vec<String>) {
    let profiles = accounts(1);
    let slot = format!("mfa_oath_slot = \"{}\"", vcard::AWS);
    let config = format!(
        "mfa_session_duration = 0\n{SHORT}{}",
        org_config(&front.url, &slot, &profiles)
    );
    let mut credentials = daemon::USER_TEXT.to_string();
    if fresh_profile {
        let expires = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
            .replace_nanosecond(0)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        credentials.push_str(&format!(
            "\n[{}]\naws_access_key_id = ASIAPREVIOUSPREVIOUS\naws_secret_access_key = previous-secret-key\naws_session_token = previous-session-token\nx_security_token_expires = {expires}\n",
            profiles[0]
        ));
    }
    (Home::with_credentials(&config, &credentials), profiles)
}

fn totp_front(moto: &moto::Moto) -> sts_front::StsFront {
    let secret_hex: String = vcard::SHA1_SECRET
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let totp = format!("{SERIAL}=hex:{secret_hex}");
    sts_front::StsFront::start(&moto.url, &["--totp-secret", &totp])
}

fn aws_card() -> pcsc::CardConfig {
    pcsc::CardConfig::new(&vcard::credential(
        vcard::AWS,
        "sha1",
        6,
        vcard::SHA1_SECRET,
        false,
    ))
}

/// Waits (doing nothing) until the TOTP step is past `step`, so that the
/// next code is a new one, and at least `at_least`.
fn wait_past_step(step: u64, at_least: Duration) {
    let started = Instant::now();
    while step_now() <= step || started.elapsed() < at_least {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_key_unplugged_for_a_while_then_plugged_back() {
    pcsc::ensure_pcscd();
    let _readers = pcsc::lock_readers();
    let moto = moto::Moto::start();
    let front = totp_front(&moto);
    let (home, profiles) = yubikey_home(&front, true);
    let card = pcsc::VirtualCard::start(aws_card());
    let mut daemon = Running::start(&home, &["run", "--log-level", "debug"]);
    wait_until("the daemon's first pass", Duration::from_secs(10), || {
        daemon.log().contains("watching 1 section")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(card.calculations(), 0, "the profile was fresh: no code");

    // Pulled out while the daemon runs; then the profile must be refreshed.
    card.unplug();
    pcsc::wait_for_card(card.reader, false, Duration::from_secs(5));
    front.reset_stats();
    delete_profiles(&home.credentials(), &profiles);
    let cpu_before = daemon.cpu_time();
    std::thread::sleep(window() / 2);
    let waiting = front.stats();
    let cpu = daemon.cpu_time() - cpu_before;
    assert_eq!(waiting["total"], 0, "STS called without a key: {waiting}");
    assert_eq!(card.calculations(), 0);
    assert!(!fresh(&home, &profiles));
    assert_healthy(&mut daemon, "key pulled out");
    card.plug();
    let plugged_in = wait_until("fresh after plug-in", Duration::from_secs(10), || {
        fresh(&home, &profiles)
    });
    eprintln!(
        "key pulled out for {:?}: 0 STS requests and {cpu:?} CPU while waiting; fresh {plugged_in:?} after plug-in",
        window() / 2
    );
    assert!(
        plugged_in <= Duration::from_secs(2),
        "{plugged_in:?} after plug-in"
    );
    assert!(
        cpu < Duration::from_secs(1),
        "{cpu:?} of CPU while the key was out"
    );
    assert_eq!(card.calculations(), 1, "one code");
    let stats = front.stats();
    assert_eq!(requests(&stats, "AssumeRole"), 1, "{stats}");
    assert_healthy(&mut daemon, "key plugged back");
    assert_no_leak(&home, &daemon, &[]);
    drop(daemon);

    if long() {
        // The key absent when the daemon starts (needs a new TOTP step).
        let step = step_now();
        card.unplug();
        pcsc::wait_for_card(card.reader, false, Duration::from_secs(5));
        delete_profiles(&home.credentials(), &profiles);
        let mut daemon = Running::start(&home, &["run", "--log-level", "debug"]);
        wait_past_step(step, window() / 2);
        assert!(!fresh(&home, &profiles));
        card.plug();
        let took = wait_until("fresh after plug-in", Duration::from_secs(10), || {
            fresh(&home, &profiles)
        });
        eprintln!("key absent at start: fresh {took:?} after plug-in");
        assert!(took <= Duration::from_secs(2), "{took:?} after plug-in");
        assert_healthy(&mut daemon, "key absent at start");
    }
}

#[test]
fn pcscd_killed_and_restarted() {
    pcsc::ensure_pcscd();
    let _readers = pcsc::lock_readers();
    let moto = moto::Moto::start();
    let front = totp_front(&moto);
    let (home, profiles) = yubikey_home(&front, true);
    let card = pcsc::VirtualCard::start(aws_card());
    let mut daemon = Running::start(&home, &["run", "--log-level", "debug"]);
    wait_until("the daemon's first pass", Duration::from_secs(10), || {
        daemon.log().contains("watching 1 section")
    });
    std::thread::sleep(Duration::from_millis(500));

    pcsc::stop_pcscd();
    let stopped = Instant::now();
    front.reset_stats();
    delete_profiles(&home.credentials(), &profiles);
    let cpu_before = daemon.cpu_time();
    std::thread::sleep(window() / 2);
    let waiting = front.stats();
    let cpu = daemon.cpu_time() - cpu_before;
    assert_healthy(&mut daemon, "pcscd stopped");
    assert_eq!(waiting["total"], 0, "STS called without a code: {waiting}");
    assert!(!fresh(&home, &profiles));
    let down = stopped.elapsed();

    pcsc::start_pcscd();
    let took = wait_until(
        "fresh after pcscd restarted",
        Duration::from_secs(20),
        || fresh(&home, &profiles),
    );
    pcsc::wait_for_card(card.reader, true, Duration::from_secs(1));
    eprintln!(
        "pcscd down for {down:?}: 0 STS requests, {cpu:?} CPU; fresh {took:?} after it restarted"
    );
    // The key watcher retries pcscd with a backoff of up to 5 s.
    assert!(took <= Duration::from_secs(8), "{took:?}");
    assert!(
        cpu < Duration::from_secs(1),
        "{cpu:?} of CPU while pcscd was down"
    );
    assert_eq!(card.calculations(), 1, "one code");
    assert_eq!(requests(&front.stats(), "AssumeRole"), 1);
    assert_healthy(&mut daemon, "pcscd restarted");
    assert_no_leak(&home, &daemon, &[]);
}
