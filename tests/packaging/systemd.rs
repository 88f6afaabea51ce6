//! The systemd units: `systemd-analyze verify`, their sandbox, the drop-in
//! for machines without user namespaces, and the exposure score.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{
    BIN, EXAMPLE_CONFIG, MAIN_UNIT, NO_USERNS_DROP_IN, TEMPLATE_UNIT, Unit, joined, parse_unit,
    path, read, require, run, service_value, set_mode, text,
};

/// The sandbox every unit must keep, as (key, value) after joining repeated
/// lines. Removing or weakening one of them must be a deliberate change here.
const HARDENING: &[(&str, &str)] = &[
    ("Type", "notify"),
    ("NotifyAccess", "main"),
    ("ExecReload", "/bin/kill -HUP $MAINPID"),
    ("Restart", "on-failure"),
    ("UMask", "0077"),
    ("LimitCORE", "0"),
    ("MemoryMax", "256M"),
    ("TasksMax", "64"),
    ("WatchdogSec", "15min"),
    ("RuntimeDirectory", "aws-session-daemon"),
    ("RuntimeDirectoryMode", "0700"),
    ("RuntimeDirectoryPreserve", "yes"),
    ("PrivateUsers", "yes"),
    ("NoNewPrivileges", "yes"),
    ("PrivateTmp", "yes"),
    ("ProtectSystem", "strict"),
    ("ProtectHome", "read-only"),
    ("ReadWritePaths", "-%h/.aws -%t/aws-session-daemon"),
    ("ProtectKernelModules", "yes"),
    ("ProtectHostname", "yes"),
    ("PrivateDevices", "yes"),
    ("ProtectProc", "invisible"),
    ("ProcSubset", "pid"),
    ("KeyringMode", "private"),
    ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
    ("RestrictNamespaces", "yes"),
    ("LockPersonality", "yes"),
    ("MemoryDenyWriteExecute", "yes"),
    ("RestrictRealtime", "yes"),
    ("RestrictSUIDSGID", "yes"),
    ("SystemCallArchitectures", "native"),
    (
        "SystemCallFilter",
        "@system-service ~@privileged @resources",
    ),
    ("SystemCallErrorNumber", "EPERM"),
];

/// `systemd-analyze --user verify` with %h pointing at a fake home that has
/// the built binary in ~/.cargo/bin, so the units are checked exactly as
/// shipped, including that ExecStart resolves to an executable.
fn systemd_analyze(home: &FakeHome, args: &[&str]) -> Output {
    require("systemd-analyze", "apt-get install -y systemd");
    run(Command::new("systemd-analyze")
        .arg("--user")
        .args(args)
        .env("HOME", home.home())
        .env("XDG_RUNTIME_DIR", home.runtime_dir())
        .env_remove("XDG_CONFIG_HOME"))
}

/// Lines of systemd-analyze's stderr about our units (it may print unrelated
/// noise about the host; warnings about a unit always name it).
fn unit_warnings(output: &Output) -> Vec<String> {
    text(&output.stderr)
        .lines()
        .filter(|l| l.contains("aws-session-daemon"))
        .map(str::to_string)
        .collect()
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let home = FakeHome::with_binary(Path::new(BIN));
    for unit in [MAIN_UNIT, TEMPLATE_UNIT] {
        let unit_path = path(unit);
        let output = systemd_analyze(&home, &["verify", unit_path.to_str().unwrap()]);
        assert!(
            output.status.success() && unit_warnings(&output).is_empty(),
            "systemd-analyze --user verify {unit} failed:\n{}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
    }

    // Both again, with the drop-in for hosts without user namespaces
    // installed where the README says.
    let with_drop_in = FakeHome::with_binary(Path::new(BIN));
    for unit in ["aws-session-daemon.service", "aws-session-daemon@.service"] {
        let dir = with_drop_in
            .home()
            .join(format!(".config/systemd/user/{unit}.d"));
        fs::create_dir_all(&dir).unwrap();
        fs::copy(path(NO_USERNS_DROP_IN), dir.join("no-user-namespaces.conf")).unwrap();
    }
    for unit in [MAIN_UNIT, TEMPLATE_UNIT] {
        let output = systemd_analyze(&with_drop_in, &["verify", path(unit).to_str().unwrap()]);
        assert!(
            output.status.success() && unit_warnings(&output).is_empty(),
            "systemd-analyze --user verify {unit} with {NO_USERNS_DROP_IN} failed:\n{}",
            text(&output.stderr)
        );
    }

    // The check above is only worth something if verify reports problems
    // here: an unknown directive is a warning (exit status 0), a missing
    // binary an error.
    let scratch = tempfile::tempdir().unwrap();
    let bogus = scratch.path().join("aws-session-daemon.service");
    fs::write(
        &bogus,
        read(MAIN_UNIT).replace("UMask=0077", "UMask=0077\nProtectEverything=yes"),
    )
    .unwrap();
    let output = systemd_analyze(&home, &["verify", bogus.to_str().unwrap()]);
    assert!(
        unit_warnings(&output)
            .iter()
            .any(|l| l.contains("ProtectEverything")),
        "systemd-analyze did not report an unknown directive:\n{}",
        text(&output.stderr)
    );
    let nobody = FakeHome::with_binary(Path::new("/nonexistent/aws-session-daemon"));
    let output = systemd_analyze(&nobody, &["verify", path(MAIN_UNIT).to_str().unwrap()]);
    assert!(
        !output.status.success(),
        "systemd-analyze accepted a unit whose binary does not exist"
    );
}

#[test]
fn systemd_units_keep_their_hardening() {
    let main = parse_unit(&read(MAIN_UNIT));
    let template = parse_unit(&read(TEMPLATE_UNIT));
    for (name, unit) in [(MAIN_UNIT, &main), (TEMPLATE_UNIT, &template)] {
        for (key, expected) in HARDENING {
            assert_eq!(
                service_value(unit, key).as_deref(),
                Some(*expected),
                "{name}: [Service] {key}= must be {expected:?}"
            );
        }
        let unit_section = &unit["Unit"];
        for key in ["StartLimitIntervalSec", "StartLimitBurst"] {
            assert!(
                unit_section.contains_key(key),
                "{name}: [Unit] lacks {key}= (restart limit)"
            );
        }
        assert!(
            service_value(unit, "RestartSec").is_some(),
            "{name}: no RestartSec="
        );
        assert_eq!(
            unit["Install"]["WantedBy"],
            ["default.target"],
            "{name}: [Install]"
        );
        // Requires=/BindsTo= on pcscd would name a system unit, which a user
        // manager cannot see.
        for key in ["Requires", "BindsTo", "Wants"] {
            let deps = unit_section.get(key).map(|v| joined(v)).unwrap_or_default();
            assert!(!deps.contains("pcscd"), "{name}: {key}={deps}");
        }
    }

    assert_eq!(
        service_value(&main, "ExecStart").as_deref(),
        Some("%h/.cargo/bin/aws-session-daemon")
    );
    assert_eq!(
        service_value(&template, "ExecStart").as_deref(),
        Some("%h/.cargo/bin/aws-session-daemon --config-section=%i"),
        "the template must keep the original's --config-section=%i"
    );

    // The template is the main unit plus the instance: nothing else may drift.
    let without_instance = |unit: &Unit| {
        let mut unit = unit.clone();
        for section in unit.values_mut() {
            section.remove("Description");
            section.remove("ExecStart");
        }
        unit
    };
    assert_eq!(
        without_instance(&main),
        without_instance(&template),
        "the two units differ in more than Description= and ExecStart="
    );
}

#[test]
fn no_user_namespaces_drop_in_turns_off_what_needs_them() {
    // Measured with an unprivileged user manager (systemd 252): with
    // PrivateUsers=no alone the unit fails with status=218/CAPABILITIES,
    // because PrivateDevices= and ProtectKernelModules= drop capabilities,
    // which needs the user namespace. Anything else added to the unit that
    // drops capabilities belongs in this list and in the drop-in.
    let drop_in = parse_unit(&read(NO_USERNS_DROP_IN));
    let main = parse_unit(&read(MAIN_UNIT));
    let service = &drop_in["Service"];
    for key in ["PrivateUsers", "PrivateDevices", "ProtectKernelModules"] {
        assert_eq!(
            service.get(key).map(|v| joined(v)).as_deref(),
            Some("no"),
            "{NO_USERNS_DROP_IN}: {key}=no missing"
        );
    }
    for key in service.keys() {
        assert!(
            service_value(&main, key).is_some(),
            "{NO_USERNS_DROP_IN} sets {key}=, which the unit does not use"
        );
    }
    for key in [
        "CapabilityBoundingSet",
        "ProtectKernelTunables",
        "ProtectKernelLogs",
        "ProtectClock",
        "ProtectControlGroups",
    ] {
        assert!(
            service_value(&main, key).is_none() || service.contains_key(key),
            "{MAIN_UNIT} sets {key}=, which needs a user namespace: add {key}= to {NO_USERNS_DROP_IN}"
        );
    }
}

#[test]
fn template_command_line_is_accepted_by_the_cli() {
    // What systemd runs for aws-session-daemon@098765432101, with a harmless
    // subcommand: the original's --config-section=NAME form selects the section.
    let output = run(Command::new(BIN)
        .arg("--config-section=098765432101")
        .args(["config", "show", "--config"])
        .arg(path(EXAMPLE_CONFIG)));
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.contains("[098765432101]"), "{stdout}");
    assert!(!stdout.contains("[mfa]"), "{stdout}");
}

#[test]
fn systemd_security_exposure_stays_low() {
    let home = FakeHome::with_binary(Path::new(BIN));
    let help = systemd_analyze(&home, &["security", "--help"]);
    if !text(&help.stdout).contains("--offline") {
        eprintln!(
            "systemd-analyze security has no --offline (systemd < 250); exposure not measured"
        );
        return;
    }
    for unit in [MAIN_UNIT, TEMPLATE_UNIT] {
        let output = systemd_analyze(
            &home,
            &["security", "--offline=yes", path(unit).to_str().unwrap()],
        );
        let stdout = text(&output.stdout);
        let score: f64 = stdout
            .lines()
            .find_map(|l| l.split_once("Overall exposure level for ").map(|(_, r)| r))
            .and_then(|r| r.split_once(": ").map(|(_, r)| r))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no exposure level in:\n{stdout}{}", text(&output.stderr)));
        eprintln!("{unit}: exposure {score}");
        // Offline, systemd-analyze assumes a user unit runs as root and counts
        // capabilities a user process never has; 5.0 leaves room for that.
        assert!(score <= 5.0, "{unit}: exposure {score} > 5.0\n{stdout}");
    }
}

/// A home directory with the built binary where the examples expect it
/// (`~/.cargo/bin/aws-session-daemon`), plus an XDG runtime directory.
struct FakeHome {
    dir: tempfile::TempDir,
}

impl FakeHome {
    fn with_binary(binary: &Path) -> FakeHome {
        let dir = tempfile::tempdir().unwrap();
        let bin_dir = dir.path().join(".cargo/bin");
        fs::create_dir_all(&bin_dir).unwrap();
        std::os::unix::fs::symlink(binary, bin_dir.join("aws-session-daemon")).unwrap();
        let runtime = dir.path().join("run");
        fs::create_dir(&runtime).unwrap();
        set_mode(&runtime, 0o700);
        FakeHome { dir }
    }

    fn home(&self) -> &Path {
        self.dir.path()
    }

    fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }
}

/// The /proc that ProtectProc=invisible and ProcSubset=pid give the unit
/// (systemd mounts it with hidepid=invisible,subset=pid), made with
/// `unshare` (util-linux) and `mount`: the daemon does a whole pass in it
/// (config, credentials file, the code command, an STS call that fails to
/// connect) with the same outcome as with the full /proc.
#[test]
fn the_daemon_works_in_the_units_narrow_proc() {
    require("unshare", "apt-get install -y util-linux");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    fs::create_dir_all(home.join(".aws")).unwrap();
    fs::create_dir_all(dir.path().join("run")).unwrap();
    let credentials = home.join(".aws/credentials");
    fs::write(
        &credentials,
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n\
         aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    )
    .unwrap();
    set_mode(&credentials, 0o600);
    let config = dir.path().join("config.toml");
    fs::write(
        &config,
        "region = \"us-east-1\"\nsts_endpoint = \"http://127.0.0.1:9\"\n\
         [prod]\nmfa_serial_number = \"arn:aws:iam::123456789012:mfa/me\"\nmfa_process = \"echo 123456\"\n",
    )
    .unwrap();
    let apply = |narrow: bool| -> Output {
        let mut cmd = Command::new("unshare");
        // SAFETY: getuid cannot fail.
        if unsafe { libc::getuid() } != 0 {
            cmd.arg("--map-root-user");
        }
        let mount = if narrow {
            "mount -t proc -o hidepid=invisible,subset=pid proc /proc && "
        } else {
            "mount -t proc proc /proc && "
        };
        cmd.args([
            "--mount",
            "--pid",
            "--fork",
            "--propagation",
            "private",
            "sh",
            "-c",
        ])
        .arg(format!("{mount}exec \"$@\""))
        .arg("sh")
        .arg(BIN)
        .arg("apply")
        .arg("--config")
        .arg(&config)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", dir.path().join("run"));
        run(&mut cmd)
    };
    let full = apply(false);
    let narrow = apply(true);
    let said = |o: &Output| format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        said(&full).contains("127.0.0.1:9"),
        "the pass reached STS:\n{}",
        said(&full)
    );
    assert_eq!(
        narrow.status.code(),
        full.status.code(),
        "{}",
        said(&narrow)
    );
    assert!(
        said(&narrow).contains("127.0.0.1:9") && !said(&narrow).contains("/proc"),
        "{}",
        said(&narrow)
    );
}
