//! End to end through the real parts: the `aws-session-daemon` binary, a
//! virtual YubiKey behind pcscd + vpcd, the fault-injecting STS front that
//! checks TOTP codes like AWS, moto as the STS emulator, and the AWS CLI
//! reading the written credentials file.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/example_bin.rs"]
mod example_bin;
#[path = "support/fast_sts.rs"]
mod fast_sts;
#[path = "support/key_and_sts.rs"]
mod key_and_sts;
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

use std::io::Read;
use std::time::{Duration, Instant};

use daemon::{
    Home, LONG_TERM_ID, LONG_TERM_SECRET, Running, USER_TEXT, accounts, assert_user_text_kept,
    contains_token, org_config, stderr, wait_until,
};

#[test]
fn twenty_roles_from_one_yubikey_code_work_with_the_aws_cli() {
    let rig = key_and_sts::KeyAndSts::start();
    let (card, front, moto) = (&rig.card, &rig.front, &rig.moto);

    let accounts = accounts(20);
    let slot = format!("mfa_oath_slot = \"{}\"", vcard::AWS);
    let home = Home::new(&org_config(&front.url, &slot, &accounts));
    let output = home.run(&["apply"]);
    assert!(output.status.success(), "apply failed: {}", stderr(&output));

    assert_eq!(
        card.calculations(),
        1,
        "20 sections must cost one YubiKey code"
    );
    let stats = front.stats();
    assert_eq!(stats["actions"]["GetSessionToken"], 1, "{stats}");
    assert_eq!(stats["actions"]["AssumeRole"], 20, "{stats}");

    let text = home.text();
    assert_user_text_kept(&text);
    for account in [&accounts[0], &accounts[7], &accounts[19]] {
        let arn = home.caller_arn(account, &moto.url);
        assert_eq!(
            arn,
            format!("arn:aws:sts::{account}:assumed-role/Admin/aws-session-daemon")
        );
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(home.credentials()).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    // A second apply needs neither the key nor STS.
    let output = home.run(&["apply"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(card.calculations(), 1);
    assert_eq!(front.stats()["actions"]["AssumeRole"], 20);
    assert_eq!(home.text(), text);
}

#[test]
fn the_daemon_restores_deleted_profiles_and_creates_new_sections_within_a_second() {
    let moto = moto::Moto::start();
    let accounts = accounts(3);
    let process = "mfa_process = \"echo 123456\"";
    let home = Home::new(&org_config(&moto.url, process, &accounts));
    let mut daemon = Running::start(&home, &["run", "--log-level", "debug"]);
    let profile = format!("[{}]", accounts[2]);
    wait_until("the first pass", Duration::from_secs(20), || {
        home.text().contains(&profile)
    });

    // Delete a profile by hand, the way an editor saves (rename over).
    let text = home.text();
    let start = text.find(&profile).unwrap();
    home.write_credentials(&text[..start]);
    let restored = daemon::poll_until(Duration::from_millis(2), Duration::from_secs(1), || {
        home.text().contains(&profile)
    })
    .unwrap_or_else(|| {
        panic!(
            "the profile did not come back within 1 s; the daemon's log:\n{}",
            daemon.log()
        )
    });
    eprintln!("deleted profile restored in {restored:?}");

    // Add a section to the config.
    let mut more = accounts.clone();
    more.push("399999999999".to_string());
    home.write_config(&org_config(&moto.url, process, &more));
    let created = wait_until("the new section", Duration::from_secs(1), || {
        home.text().contains("[399999999999]")
    });
    eprintln!("new section created in {created:?}");
    assert_eq!(
        home.caller_arn("399999999999", &moto.url),
        "arn:aws:sts::399999999999:assumed-role/Admin/aws-session-daemon"
    );

    // A section removed from the config is left alone.
    home.write_config(&org_config(&moto.url, process, &accounts[..1]));
    std::thread::sleep(Duration::from_millis(300));
    assert!(home.text().contains("[399999999999]"));
    assert_user_text_kept(&home.text());

    // Our own writes must not make it loop: quiet for a while now.
    let passes_before = daemon.log().matches("wrote ").count();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        daemon.log().matches("wrote ").count(),
        passes_before,
        "{}",
        daemon.log()
    );

    // SIGTERM stops it within a second, with exit status 0.
    let stop = Instant::now();
    unsafe { libc::kill(daemon.child.id() as i32, libc::SIGTERM) };
    let status = loop {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stop.elapsed() < Duration::from_secs(1),
            "did not stop within a second"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{}", daemon.log());
}

#[test]
fn a_trace_level_run_logs_no_secret() {
    let moto = moto::Moto::start();
    let front = sts_front::StsFront::start(&moto.url, &[]);
    // The code comes from a file, so that `config show` cannot print it.
    let code = "975310";
    let home = Home::new("");
    let code_file = home.path().join("code.txt");
    std::fs::write(&code_file, format!("{code}\n")).unwrap();
    let process = format!("mfa_process = \"cat {}\"", code_file.display());
    home.write_config(&org_config(&front.url, &process, &accounts(3)));
    let mut config = std::fs::read_to_string(home.config()).unwrap();
    config.push_str("[plain]\n");
    home.write_config(&config);
    let output = home.run(&["apply", "--log-level", "trace"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let mut log = stderr(&output);
    log.push_str(&String::from_utf8_lossy(&output.stdout));
    for args in [
        &["plan"][..],
        &["plan", "--json"],
        &["status", "--json"],
        &["config", "show"],
    ] {
        let out = home.run(args);
        log.push_str(&String::from_utf8_lossy(&out.stdout));
        log.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "trace logging was not on:\n{log}"
    );

    let text = home.text();
    let mut secrets = vec![
        LONG_TERM_SECRET.to_string(),
        code.to_string(),
        LONG_TERM_ID.to_string(),
    ];
    for line in text.lines() {
        for key in [
            "aws_secret_access_key",
            "aws_session_token",
            "aws_access_key_id",
        ] {
            if let Some(value) = line.strip_prefix(&format!("{key} = ")) {
                secrets.push(value.to_string());
            }
        }
    }
    assert!(secrets.len() > 10, "{secrets:?}");
    for secret in &secrets {
        assert!(
            !contains_token(&log, secret),
            "a secret ({}…) reached the output:\n{log}",
            &secret[..4]
        );
    }
    // The runtime files are private too.
    for entry in std::fs::read_dir(home.path().join("run/aws-session-daemon")).unwrap() {
        let path = entry.unwrap().path();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o077, 0, "{} is readable by others", path.display());
    }
    let mut mfa_cache = String::new();
    std::fs::File::open(home.path().join("run/aws-session-daemon/mfa-sessions.json"))
        .unwrap()
        .read_to_string(&mut mfa_cache)
        .unwrap();
    assert!(mfa_cache.contains("expiration"));
}

#[test]
fn apply_exits_non_zero_with_the_reason_when_the_keys_are_refused() {
    let moto = moto::Moto::start();
    let front = sts_front::StsFront::start(&moto.url, &[]);
    front.inject(serde_json::json!({"fault": "invalid_client_token", "count": 100}));
    let home = Home::new(&org_config(
        &front.url,
        "mfa_process = \"echo 123456\"",
        &accounts(2),
    ));
    let output = home.run(&["apply"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("[300000000000]"), "{err}");
    assert!(
        err.contains("security token")
            || err.contains("InvalidClientTokenId")
            || err.contains("access key"),
        "{err}"
    );
    assert_eq!(
        front.stats()["actions"]["GetSessionToken"],
        1,
        "one attempt, no hammering"
    );
    assert_user_text_kept(&home.text());
    assert_eq!(home.text(), USER_TEXT);
}

#[test]
fn sigterm_ends_the_daemon_within_a_second_while_another_process_holds_the_cache_lock() {
    // Another daemon process spends a code (a YubiKey touch can take 15 s)
    // and holds the MFA session cache's lock meanwhile: here util-linux's
    // flock(1) holds it. This daemon needs a new MFA session, so it waits
    // for the lock; SIGTERM must still end it at once.
    let moto = moto::Moto::start();
    let accounts = accounts(2);
    let home = Home::new(&org_config(
        &moto.url,
        "mfa_process = \"echo 123456\"",
        &accounts,
    ));
    std::fs::create_dir_all(home.runtime_dir()).unwrap();
    std::fs::set_permissions(
        home.runtime_dir(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let lock = home.runtime_dir().join("mfa-sessions.lock");
    let mut holder = std::process::Command::new("flock")
        .arg("--exclusive")
        .arg(&lock)
        .args(["sleep", "60"])
        .spawn()
        .expect("flock(1) from util-linux");
    wait_until("flock to hold the lock", Duration::from_secs(5), || {
        std::fs::File::open(&lock).is_ok_and(|f| f.try_lock().is_err())
    });
    let mut daemon = Running::start(&home, &["run", "--log-level", "debug"]);
    wait_until("the pass to start", Duration::from_secs(10), || {
        daemon.log().contains("pass{reason=Start}")
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !home.text().contains(&format!("[{}]", accounts[0])),
        "the daemon did not wait for the lock"
    );
    let started = Instant::now();
    let status = daemon.terminate(Duration::from_secs(5));
    let took = started.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    eprintln!("SIGTERM while the cache lock is held elsewhere: exited in {took:?}");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", daemon.log());
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[test]
fn under_systemd_an_expiry_at_the_edge_of_the_calendar_is_no_crash_loop() {
    // `x_security_token_expires = 9999-12-31T23:59:59-23:59` is valid RFC
    // 3339 but year 10000 in UTC; with NOTIFY_SOCKET set the daemon formats
    // its STATUS= line from the plan. It must neither panic nor stop.
    let moto = moto::Moto::start();
    let accounts = accounts(1);
    let credentials = format!(
        "{USER_TEXT}\n[{}]\naws_access_key_id = ASIAOLDOLDOLDOLDOLD1\naws_secret_access_key = old\naws_session_token = old\nx_security_token_expires = 9999-12-31T23:59:59-23:59\n",
        accounts[0]
    );
    let home = Home::with_credentials(
        &org_config(&moto.url, "mfa_process = \"echo 123456\"", &accounts),
        &credentials,
    );
    let socket_path = home.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut command = home.command(&["run"]);
    command.env("NOTIFY_SOCKET", &socket_path);
    let mut daemon = Running::start_logging_to(command, home.path().join("daemon.log"));
    let mut buffer = [0u8; 4096];
    let mut messages = String::new();
    while !messages.contains("READY=1") {
        let n = socket.recv(&mut buffer).expect("a message from the daemon");
        messages.push_str(&String::from_utf8_lossy(&buffer[..n]));
        messages.push('\n');
    }
    assert!(messages.contains("STATUS=1/1 fresh"), "{messages}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(daemon.alive(), "{}", daemon.log());
    assert!(!daemon.log().contains("panicked"), "{}", daemon.log());
    let status = home.run(&["status"]);
    assert!(
        status.status.code().is_some_and(|c| c < 2),
        "{}",
        stderr(&status)
    );
    assert!(!stderr(&status).contains("panicked"));
}

/// What editors do (write a new copy, rename it over the file) under the
/// common umask 0022 leaves the file readable by everyone; the daemon makes
/// it private again within one pass, with one log line, though it has
/// nothing to write.
#[test]
fn an_editor_under_umask_0022_leaves_the_file_private_within_one_pass() {
    use std::os::unix::fs::PermissionsExt;
    let moto = moto::Moto::start();
    let accounts = accounts(2);
    let home = Home::new(&org_config(
        &moto.url,
        "mfa_process = \"echo 123456\"",
        &accounts,
    ));
    let daemon = Running::start(&home, &["run", "--log-level", "debug"]);
    let profile = format!("[{}]", accounts[1]);
    wait_until("the first pass", Duration::from_secs(20), || {
        home.text().contains(&profile) && daemon.log().contains("wrote 2 profile(s)")
    });
    // Our own write's event has passed.
    std::thread::sleep(Duration::from_millis(300));
    let writes = daemon.log().matches("wrote ").count();
    // A comment added the way an editor saves, by a shell with umask 0022.
    let script =
        "umask 022 && { cat \"$1\"; echo '# a note'; } > \"$1.new\" && mv \"$1.new\" \"$1\"";
    let status = std::process::Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(home.credentials())
        .status()
        .unwrap();
    assert!(status.success());
    let mode = || {
        std::fs::metadata(home.credentials())
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    daemon::poll_until(Duration::from_millis(5), Duration::from_secs(2), || {
        mode() == 0o600
    })
    .unwrap_or_else(|| {
        panic!(
            "mode {:03o} after 2 s; the daemon's log:\n{}",
            mode(),
            daemon.log()
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    let log = daemon.log();
    assert_eq!(
        log.matches("readable or writable by others").count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches("wrote ").count(),
        writes,
        "nothing to write: {log}"
    );
    assert!(home.text().ends_with("# a note\n"));
}

/// The passes the daemon began so far, from its debug log.
fn passes(log: &str) -> usize {
    log.matches("pass begins").count()
}

/// Our own write is not news: a profile deleted by hand costs one pass
/// (the one that restores it); the event of the daemon's own write starts
/// none.
#[test]
fn our_own_write_starts_no_second_pass() {
    let sts = fast_sts::FastSts::start(3600);
    let accounts = accounts(3);
    let home = Home::new(&org_config(
        &sts.url,
        "mfa_process = \"echo 123456\"",
        &accounts,
    ));
    let daemon = Running::start(&home, &["run", "--log-level", "debug"]);
    let profile = format!("[{}]", accounts[1]);
    wait_until("the first pass", Duration::from_secs(20), || {
        daemon.log().contains("wrote 3 profile(s)")
    });
    // The first write's own event has passed, and started no pass.
    std::thread::sleep(Duration::from_millis(500));
    let log = daemon.log();
    assert_eq!(passes(&log), 1, "{log}");
    for round in 1..=3 {
        let before = passes(&daemon.log());
        assert!(home.delete_section_by_hand(&profile));
        wait_until("the profile back", Duration::from_secs(5), || {
            home.text().contains(&profile)
        });
        std::thread::sleep(Duration::from_millis(500));
        let log = daemon.log();
        assert_eq!(
            passes(&log) - before,
            1,
            "round {round}: one pass per deletion, none for our own write:\n{log}"
        );
        assert!(log.contains("not news"), "{log}");
    }
    assert_eq!(sts.calls("GetSessionToken"), 1);
}

/// A user's edit that lands while the daemon works is not lost and not
/// taken for the daemon's own: here a profile deleted while the pass waits
/// for STS (the write then goes onto the user's version, without that
/// profile) is restored by the pass that follows, at once, not by the
/// once-a-minute one.
#[test]
fn a_users_edit_during_our_write_still_starts_a_pass() {
    let sts = fast_sts::FastSts::start(3600);
    let accounts = accounts(2);
    let home = Home::new(&org_config(
        &sts.url,
        "mfa_process = \"echo 123456\"",
        &accounts,
    ));
    let daemon = Running::start(&home, &["run", "--log-level", "debug"]);
    let (first, second) = (format!("[{}]", accounts[0]), format!("[{}]", accounts[1]));
    wait_until("the first pass", Duration::from_secs(20), || {
        daemon.log().contains("wrote 2 profile(s)")
    });
    std::thread::sleep(Duration::from_millis(300));
    // The next AssumeRole takes a second.
    sts.set_assume_role_delay(1000);
    let calls = sts.calls("AssumeRole");
    let text = home.text();
    let start = text.find(&first).unwrap();
    home.write_credentials(&format!(
        "{}{}",
        &text[..start],
        &text[text.find(&second).unwrap()..]
    ));
    wait_until("the pass's AssumeRole", Duration::from_secs(10), || {
        sts.calls("AssumeRole") > calls
    });
    sts.set_assume_role_delay(0);
    // While STS answers: the user removes the second profile and adds a
    // note (an editor's save: a new file, renamed over).
    let text = home.text();
    let start = text.find(&second).unwrap();
    home.write_credentials(&format!("{}# my note\n", &text[..start]));
    let restored = daemon::poll_until(Duration::from_millis(10), Duration::from_secs(5), || {
        let text = home.text();
        text.contains(&first) && text.contains(&second) && text.contains("# my note")
    });
    assert!(
        restored.is_some(),
        "both profiles and the note within 5 s:\n{}\n--- log:\n{}",
        home.text(),
        daemon.log()
    );
}
