//! The supervisord config, run by the real supervisord.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::{BIN, EXAMPLE_CONFIG, SUPERVISORD_CONF, path, read, require, run, set_mode, text};

/// supervisord in the foreground with a config file, shut down (or killed)
/// when dropped, so that a failing assertion leaves no process behind.
struct Supervisord {
    child: Option<Child>,
    home: PathBuf,
    conf: PathBuf,
}

impl Supervisord {
    fn ctl(&self, args: &[&str]) -> Output {
        run(Command::new("supervisorctl")
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .env("HOME", &self.home))
    }

    /// `supervisorctl status` once every program is RUNNING.
    fn wait_running(&self, programs: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = text(&self.ctl(&["status"]).stdout);
            let running = programs.iter().all(|p| {
                status
                    .lines()
                    .any(|l| l.starts_with(p) && l.contains("RUNNING"))
            });
            if running {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "programs not RUNNING after 30 s:\n{status}"
            );
            sleep(Duration::from_millis(250));
        }
    }

    fn shutdown(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.ctl(&["shutdown"]);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("supervisord did not shut down within 20 s");
        }
    }
}

impl Drop for Supervisord {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.ctl(&["shutdown"]);
            sleep(Duration::from_secs(1));
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The shipped supervisord.conf with its commented-out per-section program
/// (the original's setup) switched on for section 098765432101.
fn supervisord_conf_with_section_program() -> String {
    let shipped = read(SUPERVISORD_CONF);
    let header = "; [program:session-daemon-123456789012]";
    let start = shipped
        .find(header)
        .expect("supervisord.conf lost its example of the original's per-section program");
    let (before, block) = shipped.split_at(start);
    let block: String = block
        .lines()
        .map(|l| l.strip_prefix("; ").unwrap_or(l))
        .map(|l| l.replace("123456789012", "098765432101"))
        .map(|l| l + "\n")
        .collect();
    format!("{before}{block}")
}

#[test]
fn supervisord_starts_and_stops_the_daemon() {
    require("supervisord", "apt-get install -y supervisor");
    require("supervisorctl", "apt-get install -y supervisor");

    // Every path in supervisord.conf is below %(ENV_HOME)s: point HOME at a
    // temporary directory and the file works there unchanged.
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join(".local/state/aws-session-daemon");
    fs::create_dir_all(&state).unwrap();
    fs::create_dir_all(home.path().join(".cargo/bin")).unwrap();
    let conf = home.path().join("supervisord.conf");
    fs::write(&conf, supervisord_conf_with_section_program()).unwrap();

    // At the path the config names, a stand-in for the daemon: it runs the
    // real binary with the program's own arguments and environment and a
    // harmless subcommand (config show on the example config, which needs
    // neither a YubiKey nor the network), then idles like the daemon: SIGHUP
    // is a reload, SIGTERM a clean stop.
    let stand_in = home.path().join(".cargo/bin/aws-session-daemon");
    fs::write(
        &stand_in,
        format!(
            "#!/bin/sh\n\
             echo \"started with [$*] log=$AWS_SESSION_DAEMON_LOG umask=$(umask)\" >&2\n\
             '{bin}' \"$@\" config show --config '{config}' || exit 1\n\
             trap 'echo reloaded >&2' HUP\n\
             trap 'echo stopping >&2; exit 0' TERM\n\
             while :; do sleep 1 & wait $!; done\n",
            bin = BIN,
            config = path(EXAMPLE_CONFIG).display(),
        ),
    )
    .unwrap();
    set_mode(&stand_in, 0o755);

    let child = Command::new("supervisord")
        .arg("-n")
        .arg("-c")
        .arg(&conf)
        .env("HOME", home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting supervisord");
    let mut supervisord = Supervisord {
        child: Some(child),
        home: home.path().to_path_buf(),
        conf: conf.clone(),
    };

    let section_program = "session-daemon-098765432101";
    let status = supervisord.wait_running(&["aws-session-daemon", section_program]);
    eprintln!("{status}");

    // The one-for-all program: every section, logs where the config says.
    let stdout_log = fs::read_to_string(state.join("aws-session-daemon.out.log")).unwrap();
    for section in ["[mfa]", "[098765432101]", "[567890123456]"] {
        assert!(
            stdout_log.contains(section),
            "{section} missing:\n{stdout_log}"
        );
    }
    let stderr_log = state.join("aws-session-daemon.log");
    let log = fs::read_to_string(&stderr_log).unwrap();
    assert!(log.contains("started with [] log=info umask=0077"), "{log}");

    // The original's per-section program: only its section.
    let tail = text(&supervisord.ctl(&["tail", section_program]).stdout);
    assert!(tail.contains("[098765432101]"), "{tail}");
    assert!(!tail.contains("[mfa]"), "{tail}");

    // Reload as the config's comment says, then stop with SIGTERM.
    let signal = supervisord.ctl(&["signal", "HUP", "aws-session-daemon"]);
    assert!(signal.status.success(), "{}", text(&signal.stdout));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fs::read_to_string(&stderr_log)
        .unwrap()
        .contains("reloaded")
    {
        assert!(Instant::now() < deadline, "SIGHUP did not arrive");
        sleep(Duration::from_millis(100));
    }
    let stop = supervisord.ctl(&["stop", "aws-session-daemon"]);
    assert!(
        text(&stop.stdout).contains("stopped"),
        "{}",
        text(&stop.stdout)
    );
    let log = fs::read_to_string(&stderr_log).unwrap();
    assert!(log.contains("stopping"), "not stopped with SIGTERM:\n{log}");

    supervisord.shutdown();
}
