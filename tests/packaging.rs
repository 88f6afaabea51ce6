//! The service files: systemd units, the supervisord config, the Nix package,
//! home-manager module and flake.
//!
//! Each check runs the real tool on the file as shipped (systemd-analyze,
//! supervisord, nix-instantiate), with the built binary standing where the
//! files expect it. A missing tool is a failure that names the package to
//! install, never a silent skip. Nothing here needs the network.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_aws-session-daemon");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

const MAIN_UNIT: &str = "examples/systemd/aws-session-daemon.service";
const TEMPLATE_UNIT: &str = "examples/systemd/aws-session-daemon@.service";
const SUPERVISORD_CONF: &str = "examples/supervisord.conf";
const EXAMPLE_CONFIG: &str = "examples/config.toml";
const NO_USERNS_DROP_IN: &str = "examples/systemd/no-user-namespaces.conf";

/// The sandbox every unit must keep, as (key, value) after joining repeated
/// lines. Removing or weakening one of them must be a deliberate change here.
const HARDENING: &[(&str, &str)] = &[
    ("Type", "notify"),
    ("NotifyAccess", "main"),
    ("ExecReload", "/bin/kill -HUP $MAINPID"),
    ("Restart", "on-failure"),
    ("UMask", "0077"),
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

// ---------------------------------------------------------------- helpers

fn path(relative: &str) -> PathBuf {
    Path::new(ROOT).join(relative)
}

fn read(relative: &str) -> String {
    fs::read_to_string(path(relative)).unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}

/// Fails the test with the install command when `tool` is not on PATH.
fn require(tool: &str, install: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed; these checks need it: {install}"
    );
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A unit file as section -> key -> values (one per line, in order).
type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn parse_unit(source: &str) -> Unit {
    let mut unit = Unit::new();
    let mut section = String::new();
    for line in source.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not a key=value line: {line}"));
        unit.entry(section.clone())
            .or_default()
            .entry(key.trim().to_string())
            .or_default()
            .push(value.trim().to_string());
    }
    unit
}

/// The values of a key as one space-separated string, so that
/// `A=x y` and `A=x` + `A=y` compare equal; booleans spelled one way.
fn joined(values: &[String]) -> String {
    values
        .iter()
        .flat_map(|v| v.split_whitespace())
        .map(|w| match w {
            "true" => "yes",
            "false" => "no",
            w => w,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn service_value(unit: &Unit, key: &str) -> Option<String> {
    unit.get("Service")
        .and_then(|s| s.get(key))
        .map(|v| joined(v))
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

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

// ---------------------------------------------------------------- systemd

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

// ---------------------------------------------------------------- supervisord

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
    require(
        "supervisord",
        "apt-get install -y supervisor (or: pip install supervisor)",
    );
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

// ---------------------------------------------------------------- Nix

fn nix_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(path("nix"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "nix"))
        .collect();
    files.sort();
    files
}

/// `nix-instantiate --eval --strict --json` of a function of `root` (this
/// checkout); pure: no nixpkgs, no network.
fn nix_eval(expression: &str) -> serde_json::Value {
    require("nix-instantiate", "apt-get install -y nix-bin");
    let output = run(Command::new("nix-instantiate")
        .args([
            "--eval", "--strict", "--json", "--argstr", "root", ROOT, "-E",
        ])
        .arg(expression));
    assert!(
        output.status.success(),
        "nix-instantiate --eval failed:\n{}\n--- expression ---\n{expression}",
        text(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn nix_files_parse() {
    require("nix-instantiate", "apt-get install -y nix-bin");
    let files = nix_files();
    for expected in ["package.nix", "home-manager.nix", "flake.nix", "lib.nix"] {
        assert!(
            files.iter().any(|f| f.ends_with(expected)),
            "nix/{expected} is missing"
        );
    }
    for file in files {
        let output = run(Command::new("nix-instantiate").arg("--parse").arg(&file));
        assert!(
            output.status.success(),
            "{}: {}",
            file.display(),
            text(&output.stderr)
        );
    }
}

#[test]
fn nix_secret_key_check_finds_keys_at_any_depth() {
    let result = nix_eval(
        r#"{ root }:
        let h = import (root + "/nix/lib.nix"); in {
          clean = h.secretKeyPaths {
            mfa_serial_number = "arn:aws:iam::123456789012:mfa/me";
            credentials_section = "default";
            org = { assume_role_arn = "arn:aws:iam::{section}:role/Admin"; "111111111111" = { }; };
            list = [ { a = 1; } 2 ];
          };
          nested = h.secretKeyPaths {
            org = {
              dev = { "111111111111" = { secret_access_key = "x"; }; };
              arrays = [ { } { "222222222222" = [ { secret_access_key = "y"; } ]; } ];
            };
          };
          top = h.secretKeyPaths { secret_access_key = "z"; access_key_id = "AKIA"; };
          message = h.secretKeyMessage "services.aws-session-daemon.settings" { a.secret_access_key = "x"; };
          noMessage = h.secretKeyMessage "x" { a.b = 1; };
          args = h.secretArgs [ "--secret-access-key=x" "--secret-access-key" "--access-key-id=y" "--config-section=s" ];
          escaped = map h.escapeSystemdExecArg [ "--config-section=a b" "say \"hi\"" "back\\slash" "$HOME" "%h/.aws" ];
        }"#,
    );
    assert_eq!(result["clean"], serde_json::json!([]));
    assert_eq!(
        result["nested"],
        serde_json::json!([
            [
                "org",
                "arrays",
                "1",
                "222222222222",
                "0",
                "secret_access_key"
            ],
            ["org", "dev", "111111111111", "secret_access_key"],
        ])
    );
    assert_eq!(result["top"], serde_json::json!([["secret_access_key"]]));
    let message = result["message"].as_str().unwrap();
    assert!(
        message.contains("a.secret_access_key") && message.contains("credentials_section"),
        "{message}"
    );
    assert_eq!(result["noMessage"], "");
    assert_eq!(
        result["args"],
        serde_json::json!(["--secret-access-key=x", "--secret-access-key"])
    );
    assert_eq!(
        result["escaped"],
        serde_json::json!([
            "\"--config-section=a b\"",
            "\"say \\\"hi\\\"\"",
            "\"back\\\\slash\"",
            "\"$$HOME\"",
            "\"%h/.aws\"",
        ])
    );
}

#[test]
fn nix_package_reads_version_and_filters_source() {
    // package.nix called with just enough of nixpkgs' interface stubbed out
    // (buildRustPackage returns its arguments), to check what it passes.
    let package = nix_eval(
        r#"{ root }:
        let
          lib = {
            importTOML = p: builtins.fromTOML (builtins.readFile p);
            cleanSource = p: p;
            cleanSourceWith = a: a;
            removePrefix = pre: s:
              let n = builtins.stringLength pre; in
              if builtins.substring 0 n s == pre then builtins.substring n (builtins.stringLength s) s else s;
            optionalString = c: s: if c then s else "";
            licenses.mit = "mit";
            platforms.linux = [ "x86_64-linux" "aarch64-linux" ];
          };
          pkg = import (root + "/nix/package.nix") {
            inherit lib;
            stdenv = { buildPlatform.canExecute = _: true; hostPlatform = { }; };
            rustPlatform.buildRustPackage = args: args;
            pkg-config = "pkg-config";
            pcsclite = "pcsclite";
            installShellFiles = "installShellFiles";
          };
          keep = p: pkg.src.filter (root + "/" + p) "directory";
        in {
          inherit (pkg) pname version doCheck postInstall meta nativeBuildInputs buildInputs;
          kept = builtins.filter keep [ "src" "tests" "examples" "target" "nix" "fuzz/target" "src/nix" ];
        }"#,
    );
    assert_eq!(package["pname"], "aws-session-daemon");
    assert_eq!(package["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(package["doCheck"], false);
    assert_eq!(package["meta"]["mainProgram"], "aws-session-daemon");
    assert_eq!(package["meta"]["license"], "mit");
    assert_eq!(
        package["meta"]["description"],
        env!("CARGO_PKG_DESCRIPTION")
    );
    assert_eq!(package["buildInputs"], serde_json::json!(["pcsclite"]));
    assert_eq!(
        package["nativeBuildInputs"],
        serde_json::json!(["pkg-config", "installShellFiles"])
    );
    assert_eq!(
        package["kept"],
        serde_json::json!(["src", "tests", "examples", "src/nix"])
    );
    let post_install = package["postInstall"].as_str().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        assert!(
            post_install.contains(&format!(
                "--{shell} <($out/bin/aws-session-daemon completions {shell})"
            )),
            "{post_install}"
        );
    }
    assert!(post_install.contains("installManPage aws-session-daemon.1"));

    // The commands postInstall runs work on the built binary.
    for args in [
        &["completions", "bash"][..],
        &["completions", "zsh"],
        &["completions", "fish"],
        &["man"],
    ] {
        let output = run(Command::new(BIN).args(args));
        assert!(
            output.status.success() && !output.stdout.is_empty(),
            "aws-session-daemon {args:?}: {}",
            text(&output.stderr)
        );
    }
}

#[test]
fn nix_flake_exposes_package_and_module() {
    // The flake's outputs function applied to a stub nixpkgs (callPackage
    // records what it was called with), with `self` tied to the result.
    let flake = nix_eval(
        r#"{ root }:
        let
          flake = import (root + "/nix/flake.nix");
          systems = [ "x86_64-linux" "aarch64-linux" ];
          nixpkgs = {
            lib.genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
            legacyPackages = builtins.listToAttrs (map (system: {
              name = system;
              value = {
                stdenv.hostPlatform.system = system;
                callPackage = file: args: { package = baseNameOf (toString file); inherit system args; };
              };
            }) systems);
          };
          self = flake.outputs { inherit self nixpkgs; };
        in {
          inputs = builtins.attrNames flake.inputs;
          outputs = builtins.attrNames self;
          packages = builtins.mapAttrs (_: builtins.attrNames) self.packages;
          default = self.packages.x86_64-linux.default;
          aarch64 = self.packages.aarch64-linux.default.system;
          module = baseNameOf (toString self.homeManagerModules.default);
          overlay = (self.overlays.default nixpkgs.legacyPackages.x86_64-linux { }).aws-session-daemon.package;
        }"#,
    );
    assert_eq!(flake["inputs"], serde_json::json!(["nixpkgs"]));
    for output in ["packages", "homeManagerModules", "overlays", "checks"] {
        assert!(
            flake["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o == output),
            "flake output {output} missing: {}",
            flake["outputs"]
        );
    }
    assert_eq!(
        flake["packages"]["x86_64-linux"],
        serde_json::json!(["aws-session-daemon", "default"])
    );
    assert_eq!(
        flake["default"],
        serde_json::json!({ "package": "package.nix", "system": "x86_64-linux", "args": {} })
    );
    assert_eq!(flake["aarch64"], "aarch64-linux");
    assert_eq!(flake["module"], "home-manager.nix");
    assert_eq!(flake["overlay"], "package.nix");
}

/// The home-manager module evaluated with stubs for the few nixpkgs and
/// home-manager functions it calls, and `cfg` as the option values.
fn eval_home_manager_module(cfg: &str) -> serde_json::Value {
    let expression = r#"{ root }:
        let
          lib = {
            mkEnableOption = description: { _type = "option"; inherit description; };
            mkOption = o: o // { _type = "option"; };
            literalExpression = text: text;
            types = {
              package = "package"; path = "path"; str = "str";
              enum = values: "enum"; listOf = t: "listOf"; nullOr = t: "nullOr"; either = a: b: "either";
            };
            optional = c: v: if c then [ v ] else [ ];
            optionals = c: v: if c then v else [ ];
            mkIf = condition: content: { _type = "if"; inherit condition content; };
            concatStringsSep = builtins.concatStringsSep;
            getExe = p: "${p}/bin/aws-session-daemon";
          };
          pkgs = {
            formats.toml = _: {
              type = "toml";
              generate = name: value: "/nix/store/00000000000000000000000000000000-${name}";
            };
            callPackage = _: _: { outPath = "/nix/store/00000000000000000000000000000000-default"; };
            coreutils = { outPath = "/nix/store/00000000000000000000000000000000-coreutils"; };
          };
          package = { outPath = "/nix/store/00000000000000000000000000000000-aws-session-daemon"; };
          module = import (root + "/nix/home-manager.nix") {
            inherit lib pkgs;
            config.services.aws-session-daemon = { enable = true; inherit package; } // (@CFG@);
          };
        in {
          inherit (module) config;
          options = builtins.attrNames module.options.services.aws-session-daemon;
          credentialsFileApplied = module.options.services.aws-session-daemon.credentialsFile.apply "/home/me/creds";
        }"#;
    nix_eval(&expression.replace("@CFG@", cfg))
}

/// A home-manager unit attrset as a Unit, lists one value per line.
fn unit_from_json(value: &serde_json::Value) -> Unit {
    let mut unit = Unit::new();
    for (section, keys) in value.as_object().unwrap() {
        for (key, value) in keys.as_object().unwrap() {
            let values = match value {
                serde_json::Value::Array(items) => items.iter().map(json_scalar).collect(),
                scalar => vec![json_scalar(scalar)],
            };
            unit.entry(section.clone())
                .or_default()
                .insert(key.clone(), values);
        }
    }
    unit
}

fn json_scalar(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(b) => (if *b { "yes" } else { "no" }).to_string(),
        other => other.to_string(),
    }
}

#[test]
fn home_manager_module_matches_the_unit_file() {
    let result = eval_home_manager_module(
        r#"{
          settings = {
            mfa_serial_number = "arn:aws:iam::123456789012:mfa/me";
            org = { assume_role_arn = "arn:aws:iam::{section}:role/Admin"; "111111111111" = { }; };
          };
          credentialsFile = null;
          logLevel = "info";
          extraArgs = [ ];
        }"#,
    );
    let options = &result["options"];
    for option in [
        "enable",
        "package",
        "settings",
        "credentialsFile",
        "logLevel",
        "extraArgs",
    ] {
        assert!(
            options.as_array().unwrap().iter().any(|o| o == option),
            "option {option} missing: {options}"
        );
    }
    assert_eq!(result["credentialsFileApplied"], "/home/me/creds");

    let config = &result["config"];
    assert_eq!(config["_type"], "if");
    assert_eq!(config["condition"], true);
    let config = &config["content"];
    for assertion in config["assertions"].as_array().unwrap() {
        assert_eq!(assertion["assertion"], true, "{assertion}");
    }
    assert_eq!(
        config["home"]["packages"][0],
        "/nix/store/00000000000000000000000000000000-aws-session-daemon"
    );
    let config_file = &config["xdg"]["configFile"]["aws-session-daemon/config.toml"];
    assert_eq!(config_file["condition"], true);
    let generated = "/nix/store/00000000000000000000000000000000-aws-session-daemon-config.toml";
    assert_eq!(config_file["content"]["source"], generated);

    let hm = unit_from_json(&config["systemd"]["user"]["services"]["aws-session-daemon"]);
    assert_eq!(hm["Unit"]["X-Restart-Triggers"], [generated]);
    assert_eq!(
        service_value(&hm, "ExecStart").as_deref(),
        Some(
            "/nix/store/00000000000000000000000000000000-aws-session-daemon/bin/aws-session-daemon \"--log-level=info\""
        )
    );
    assert_eq!(
        service_value(&hm, "ExecReload").as_deref(),
        Some("/nix/store/00000000000000000000000000000000-coreutils/bin/kill -HUP $MAINPID")
    );

    // Every directive of the shipped unit, with the same value, and no other:
    // only the paths of the binary and of kill, and the log level (a flag
    // here, the environment there), may differ.
    let file = parse_unit(&read(MAIN_UNIT));
    let comparable = |unit: &Unit| -> BTreeMap<(String, String), String> {
        unit.iter()
            .flat_map(|(section, keys)| {
                keys.iter()
                    .map(move |(key, values)| ((section.clone(), key.clone()), joined(values)))
            })
            .filter(|((_, key), _)| {
                ![
                    "ExecStart",
                    "ExecReload",
                    "Environment",
                    "X-Restart-Triggers",
                ]
                .contains(&key.as_str())
            })
            .collect()
    };
    assert_eq!(comparable(&hm), comparable(&file));
}

#[test]
fn home_manager_module_passes_options_and_rejects_secrets() {
    let result = eval_home_manager_module(
        r#"{
          settings = { org = { "111111111111" = { secret_access_key = "x"; }; }; };
          credentialsFile = "%h/work/aws/credentials";
          logLevel = "debug";
          extraArgs = [ "--config-section=111111111111" "--secret-access-key=x" ];
        }"#,
    );
    let config = &result["config"]["content"];
    let assertions = config["assertions"].as_array().unwrap();
    assert_eq!(assertions.len(), 2);
    for assertion in assertions {
        assert_eq!(assertion["assertion"], false, "{assertion}");
        let message = assertion["message"].as_str().unwrap();
        assert!(message.contains("credentials_section"), "{message}");
    }
    assert!(
        assertions[0]["message"]
            .as_str()
            .unwrap()
            .contains("org.111111111111.secret_access_key")
    );
    let hm = unit_from_json(&config["systemd"]["user"]["services"]["aws-session-daemon"]);
    assert_eq!(
        service_value(&hm, "ExecStart").as_deref(),
        Some(
            "/nix/store/00000000000000000000000000000000-aws-session-daemon/bin/aws-session-daemon \
             \"--credentials-file=%h/work/aws/credentials\" \"--log-level=debug\" \
             \"--config-section=111111111111\" \"--secret-access-key=x\""
        )
    );
    assert_eq!(
        service_value(&hm, "ReadWritePaths").as_deref(),
        Some("-%h/.aws -%h/work/aws -%t/aws-session-daemon")
    );

    // With no settings, a hand-written config.toml is left alone.
    let result = eval_home_manager_module(
        r#"{ settings = { }; credentialsFile = null; logLevel = "info"; extraArgs = [ ]; }"#,
    );
    let config = &result["config"]["content"];
    assert_eq!(
        config["xdg"]["configFile"]["aws-session-daemon/config.toml"]["condition"],
        false
    );
    assert_eq!(
        config["systemd"]["user"]["services"]["aws-session-daemon"]["Unit"]["X-Restart-Triggers"],
        serde_json::json!([])
    );
}

// ---------------------------------------------------------------- secrets

/// Why a line looks like it holds a secret, if it does.
fn secret_in(line: &str) -> Option<&'static str> {
    let bytes = line.as_bytes();
    // An access key id: AKIA/ASIA and 16 upper-case letters or digits.
    for start in 0..bytes.len() {
        let rest = &bytes[start..];
        if (rest.starts_with(b"AKIA") || rest.starts_with(b"ASIA"))
            && rest.len() >= 20
            && rest[4..20]
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Some("an access key id");
        }
    }
    // A secret key or token: 40 or more base64 characters with mixed case
    // and digits (Nix store hashes are 32 lower-case base32 characters).
    for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || "+/=".contains(c))) {
        if word.len() >= 40
            && word.bytes().any(|b| b.is_ascii_lowercase())
            && word.bytes().any(|b| b.is_ascii_uppercase())
            && word.bytes().any(|b| b.is_ascii_digit())
        {
            return Some("a long base64 string");
        }
    }
    // A secret on a command line: `--secret-access-key=VALUE`, or the flag
    // followed by a word long enough to be a key (prose mentions the flag).
    let lower = line.to_ascii_lowercase();
    for flag in ["--secret-access-key", "--secret_access_key"] {
        if let Some(index) = lower.find(flag) {
            let after = &line[index + flag.len()..];
            let flagged = match after.strip_prefix('=') {
                Some(value) => !value.trim().is_empty(),
                None => after
                    .split_whitespace()
                    .next()
                    .is_some_and(|w| w.len() >= 16),
            };
            if flagged {
                return Some("a --secret-access-key value");
            }
        }
    }
    // An assignment to a secret-looking key (ini, TOML, Nix, environment).
    let assignment = lower
        .trim_start_matches(|c: char| c == '#' || c == ';' || c.is_whitespace())
        .trim_start_matches("environment=");
    if let Some((key, value)) = assignment.split_once('=') {
        let key = key.trim().trim_matches('"');
        let value = value
            .trim()
            .trim_matches(|c| c == '"' || c == ';' || c == '\'');
        let secret_key = [
            "secret_access_key",
            "session_token",
            "security_token",
            "password",
        ]
        .iter()
        .any(|k| key.ends_with(k));
        if secret_key && !value.is_empty() {
            return Some("a value for a secret key");
        }
    }
    None
}

#[test]
fn secret_detector_recognises_secrets() {
    // Built at run time so that this file does not trip scanners itself.
    let key_id = format!("AKIA{}", "IOSFODNN7EXAMPLE");
    let secret = format!("wJalrXUtnFEMI/K7MDENG/{}", "bPxRfiCYEXAMPLEKEY");
    for line in [
        format!("aws_access_key_id = {key_id}"),
        format!("ExecStart=%h/bin/aws-session-daemon --secret-access-key={secret}"),
        format!("command=aws-session-daemon --secret-access-key {secret}"),
        "secret_access_key = \"hunter2\";".to_string(),
        "environment=AWS_SESSION_TOKEN=\"abc\"".to_string(),
        "Environment=OATH_PASSWORD=abc".to_string(),
    ] {
        assert!(secret_in(&line).is_some(), "not flagged: {line}");
    }
    for line in [
        "ExecStart=%h/.cargo/bin/aws-session-daemon --config-section=%i",
        "# Never put secret_access_key here: the Nix store is world-readable.",
        "--secret-access-key would put the secret key in the unit file",
        "\"/nix/store/0a7pr5bymp2jbrsl5hby08wv3r8b6bhp-aws-session-daemon\"",
        "assertion = helpers.secretKeyPaths cfg.settings == [ ];",
    ] {
        assert_eq!(secret_in(line), None, "flagged: {line}");
    }
}

#[test]
fn service_files_hold_no_secrets() {
    let mut files: Vec<PathBuf> =
        vec![path(MAIN_UNIT), path(TEMPLATE_UNIT), path(SUPERVISORD_CONF)];
    files.extend(
        fs::read_dir(path("examples/systemd"))
            .unwrap()
            .map(|e| e.unwrap().path()),
    );
    files.extend(nix_files());
    files.sort();
    files.dedup();
    for file in files {
        let source = fs::read_to_string(&file).unwrap();
        for (number, line) in source.lines().enumerate() {
            if let Some(why) = secret_in(line) {
                panic!(
                    "{}:{}: looks like {why}: {line}",
                    file.display(),
                    number + 1
                );
            }
        }
    }
}

// ---------------------------------------------------------------- README

#[test]
fn readme_service_sections_are_written() {
    let readme = read("README.md");
    let section = |title: &str| -> String {
        let start = readme
            .find(&format!("\n## {title}\n"))
            .unwrap_or_else(|| panic!("README.md lacks ## {title}"));
        let body = &readme[start + title.len() + 5..];
        body[..body.find("\n## ").unwrap_or(body.len())].to_string()
    };
    for (title, needles) in [
        (
            "Running as a service",
            &[
                "systemctl --user enable --now aws-session-daemon",
                "systemctl --user reload aws-session-daemon",
                "journalctl --user -u aws-session-daemon",
                "pcscd.socket",
                "aws-session-daemon@.service",
                "supervisorctl",
            ][..],
        ),
        (
            "Nix and home-manager",
            &[
                "services.aws-session-daemon",
                "services.pcscd.enable = true",
                "secret_access_key",
            ],
        ),
        (
            "Migrating from the Python original",
            &[
                "--rolearn",
                "--oath_slot",
                "--serialnumber",
                "--profile_name",
                "--config-section",
                "~/.config/aws-credential-process/config.toml",
                "x_security_token_expires",
                "config get",
                "config find",
                "assume_role_role_session_name",
            ],
        ),
    ] {
        let body = section(title);
        assert!(
            !body.contains("(Filled in"),
            "## {title} is still a placeholder"
        );
        for needle in needles {
            assert!(
                body.contains(needle),
                "## {title} does not mention {needle}"
            );
        }
    }
}
