//! `exec` and `export` through the CLI, with real consumers: the AWS CLI
//! and the AWS SDK for Rust (`examples/sdk_identity.rs`) run by `exec` get
//! the section's role from moto, from the environment or from the
//! endpoint; the exit code and signals pass through; a section that cannot
//! be made fresh starts nothing; bash, sh and fish take `export`'s output.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/endpoint.rs"]
mod endpoint;
#[path = "support/example_bin.rs"]
mod example_bin;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/tools.rs"]
mod tools;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use daemon::{Home, stderr, wait_until};

const ACCOUNT: &str = "300000000000";
const ROLE_ARN_PREFIX: &str = "arn:aws:sts::300000000000:assumed-role/Admin/";

/// A HOME whose one section assumes Admin in ACCOUNT at moto, with codes
/// from `code` (a command).
fn moto_home(moto: &moto::Moto, code: &str) -> Home {
    Home::new(&daemon::org_config(
        &moto.url,
        &format!("mfa_process = \"{code}\""),
        &[ACCOUNT.to_string()],
    ))
}

/// `aws-session-daemon ARGS` in `home`, with moto as every SDK's endpoint
/// and a stale profile, token and endpoint in the environment that `exec`
/// must keep from the command.
fn command(home: &Home, moto: &moto::Moto, args: &[&str]) -> Command {
    let mut command = home.command(args);
    command
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_PROFILE", "other")
        .env("AWS_SECURITY_TOKEN", "stale-token")
        .env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/stale")
        .env("AWS_ACCESS_KEY_ID", "AKIASTALESTALESTALE1");
    command
}

fn run(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .expect("run aws-session-daemon")
}

fn success(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        stderr(output)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn aws_cli() -> String {
    tools::aws().to_string_lossy().into_owned()
}

fn sdk_identity() -> String {
    example_bin::path("sdk_identity")
        .to_string_lossy()
        .into_owned()
}

/// The caller ARN printed by `aws sts get-caller-identity --output json`.
fn arn_of(json: &str) -> String {
    let value: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    value["Arn"].as_str().unwrap().to_string()
}

/// `env -0` output as a map.
fn environment(bytes: &[u8]) -> BTreeMap<String, String> {
    bytes
        .split(|b| *b == 0)
        .filter_map(|entry| {
            let text = String::from_utf8_lossy(entry);
            let (name, value) = text.split_once('=')?;
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}

/// The exit code as a shell reports it: 128+N for death by signal N.
fn shell_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().expect("a code or a signal"))
}

/// `exec [MODE…] ACCOUNT -- COMMAND…`.
fn exec_args<'a>(mode: &[&'a str], command: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["exec"];
    args.extend_from_slice(mode);
    args.extend_from_slice(&[ACCOUNT, "--"]);
    args.extend_from_slice(command);
    args
}

/// Checks that the AWS CLI and the Rust SDK, run by `exec [MODE]`, call
/// STS as the section's role.
fn assert_role_reaches_consumers(home: &Home, moto: &moto::Moto, mode: &[&str]) {
    let aws = aws_cli();
    let cli = ["sts", "get-caller-identity", "--output", "json"];
    let mut command_line = vec![aws.as_str()];
    command_line.extend_from_slice(&cli);
    let out = success(&run(&mut command(
        home,
        moto,
        &exec_args(mode, &command_line),
    )));
    assert!(arn_of(&out).starts_with(ROLE_ARN_PREFIX), "{mode:?}: {out}");
    let sdk = sdk_identity();
    let out = success(&run(&mut command(home, moto, &exec_args(mode, &[&sdk]))));
    assert!(out.trim().starts_with(ROLE_ARN_PREFIX), "{mode:?}: {out}");
}

#[test]
fn exec_gives_the_command_the_sections_role_and_nothing_that_competes() {
    let moto = moto::Moto::start();
    let home = moto_home(&moto, "echo 123456");
    assert_role_reaches_consumers(&home, &moto, &[]);

    let env = environment(&run(&mut command(&home, &moto, &exec_args(&[], &["env", "-0"]))).stdout);
    let document = aws_session_daemon::credentials::Document::parse(&home.text());
    let written = |key: &str| document.get(ACCOUNT, key).unwrap().unwrap().to_string();
    assert_eq!(env["AWS_ACCESS_KEY_ID"], written("aws_access_key_id"));
    assert_eq!(
        env["AWS_SECRET_ACCESS_KEY"],
        written("aws_secret_access_key")
    );
    assert_eq!(env["AWS_SESSION_TOKEN"], written("aws_session_token"));
    let expiry = aws_session_daemon::timestamp::parse_expiry(&env["AWS_CREDENTIAL_EXPIRATION"])
        .expect("an RFC 3339 expiry");
    assert_eq!(
        Some(expiry),
        aws_session_daemon::timestamp::parse_expiry(&written("x_security_token_expires"))
    );
    assert_eq!(env["AWS_ACCOUNT_ID"], ACCOUNT);
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["AWS_DEFAULT_REGION"], "us-east-1");
    for gone in [
        "AWS_PROFILE",
        "AWS_SECURITY_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        assert!(!env.contains_key(gone), "{gone} reached the command");
    }
}

#[test]
fn exec_server_serves_the_command_for_its_lifetime_and_cleans_up() {
    let moto = moto::Moto::start();
    let home = moto_home(&moto, "echo 123456");
    // ~/.aws/credentials holds long-term keys in [default]: the command
    // must not take them instead of asking the endpoint.
    assert!(home.text().contains("[default]"));
    assert_role_reaches_consumers(&home, &moto, &["--server"]);

    let script = "env -0 > \"$1\"; test -s \"$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE\"";
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("env");
    let output = run(&mut command(
        &home,
        &moto,
        &exec_args(
            &["--server"],
            &["sh", "-c", script, "sh", env_file.to_str().unwrap()],
        ),
    ));
    success(&output);
    let env = environment(&std::fs::read(&env_file).unwrap());
    let url = &env["AWS_CONTAINER_CREDENTIALS_FULL_URI"];
    assert!(
        url.starts_with("http://127.0.0.1:")
            && url.ends_with(&format!("/v1/credentials/{ACCOUNT}")),
        "{url}"
    );
    let token_file = PathBuf::from(&env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]);
    assert!(
        token_file.starts_with(home.runtime_dir()),
        "{}",
        token_file.display()
    );
    assert_eq!(env["AWS_SHARED_CREDENTIALS_FILE"], "/dev/null");
    for gone in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ] {
        assert!(!env.contains_key(gone), "{gone} reached the command");
    }
    let secrets = home.secrets();
    for (name, value) in &env {
        assert!(
            !secrets.iter().any(|s| value.contains(s.as_str())),
            "{name} holds a secret"
        );
    }
    assert!(!token_file.exists(), "the token file outlives the command");
    let left: Vec<_> = std::fs::read_dir(home.runtime_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("exec-"))
        .collect();
    assert!(left.is_empty(), "left in the runtime directory: {left:?}");
}

/// Runs `exec [MODE] ACCOUNT -- sh -c SCRIPT` that traps signals, waits
/// until it is ready, sends `signals` to the `exec` process, and returns
/// its exit code and what the script recorded.
fn signalled(home: &Home, moto: &moto::Moto, mode: &[&str], signals: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record");
    let ready = dir.path().join("ready");
    let script = "trap 'echo USR1 >> \"$1\"' USR1; trap 'echo INT >> \"$1\"' INT; \
                  trap 'echo TERM >> \"$1\"; exit 3' TERM; \
                  echo $$ > \"$2\"; while :; do sleep 0.05; done";
    let (record_arg, ready_arg) = (record.to_str().unwrap(), ready.to_str().unwrap());
    let args = exec_args(mode, &["sh", "-c", script, "sh", record_arg, ready_arg]);
    let mut command = command(home, moto, &args);
    // As from a terminal: a test run started by a background job inherits
    // SIGINT ignored, which sh may then not trap (POSIX), and `exec` passes
    // dispositions on unchanged (seen on a fresh Debian root run by nohup).
    // SAFETY: signal() is async-signal-safe and touches no memory of ours.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the command to start", Duration::from_secs(60), || {
        std::fs::read_to_string(&ready).is_ok_and(|t| t.ends_with('\n'))
    });
    for signal in signals {
        let before = std::fs::read_to_string(&record)
            .unwrap_or_default()
            .lines()
            .count();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        if *signal != "TERM" {
            wait_until(
                &format!("the command to record {signal}"),
                Duration::from_secs(10),
                || {
                    std::fs::read_to_string(&record)
                        .unwrap_or_default()
                        .lines()
                        .count()
                        > before
                },
            );
        }
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.is_empty(), "exec said: {err}");
    (
        shell_code(status),
        std::fs::read_to_string(&record).unwrap_or_default(),
    )
}

#[test]
fn exec_passes_the_exit_code_and_signals_through() {
    let moto = moto::Moto::start();
    let home = moto_home(&moto, "echo 123456");
    for mode in [&[][..], &["--server"][..]] {
        let code = |script: &str| {
            let args = exec_args(mode, &["sh", "-c", script]);
            shell_code(run(&mut command(&home, &moto, &args)).status)
        };
        assert_eq!(code("exit 7"), 7, "{mode:?}");
        assert_eq!(code("exit 0"), 0, "{mode:?}");
        assert_eq!(
            code("kill -KILL $$"),
            137,
            "{mode:?}: death by SIGKILL is 128+9"
        );
        assert_eq!(code("kill -TERM $$"), 143, "{mode:?}");
        let (exit, recorded) = signalled(&home, &moto, mode, &["USR1", "INT", "TERM"]);
        assert_eq!(exit, 3, "{mode:?}: the trap's exit code");
        assert_eq!(recorded, "USR1\nINT\nTERM\n", "{mode:?}");
    }
    // A command that cannot be run: 127 (not found) and 126, as shells say.
    let dir = tempfile::tempdir().unwrap();
    let not_runnable = dir.path().join("data");
    std::fs::write(&not_runnable, "#!/bin/sh\n").unwrap();
    for mode in [&[][..], &["--server"][..]] {
        let args = exec_args(mode, &["/nonexistent/program"]);
        let output = run(&mut command(&home, &moto, &args));
        assert_eq!(
            output.status.code(),
            Some(127),
            "{mode:?}: {}",
            stderr(&output)
        );
        assert!(stderr(&output).contains("cannot run /nonexistent/program"));
        let args = exec_args(mode, &[not_runnable.to_str().unwrap()]);
        assert_eq!(
            run(&mut command(&home, &moto, &args)).status.code(),
            Some(126)
        );
    }
}

#[test]
fn exec_starts_nothing_when_the_section_cannot_be_made_fresh() {
    let moto = moto::Moto::start();
    let home = moto_home(&moto, "false");
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    for mode in [&[][..], &["--server"][..]] {
        let args = exec_args(mode, &["touch", marker.to_str().unwrap()]);
        let output = run(&mut command(&home, &moto, &args));
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{mode:?}: {err}");
        assert!(!marker.exists(), "{mode:?}: the command ran");
        assert_eq!(err.lines().count(), 1, "{mode:?}: one line: {err}");
        assert!(
            err.starts_with(&format!(
                "error: section [{ACCOUNT}] cannot be made fresh: "
            )),
            "{mode:?}: {err}"
        );
        assert!(err.contains("mfa_process"), "{mode:?}: the reason: {err}");
    }
    let output = run(&mut command(&home, &moto, &["exec", "nope", "--", "true"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!(
            "no section [nope] in the config (nor one with that profile_name); sections: {ACCOUNT}"
        )),
        "{}",
        stderr(&output)
    );
}

#[test]
fn exec_server_hands_over_the_daemons_endpoint_when_it_serves_the_section() {
    let moto = moto::Moto::start();
    // Codes that always fail: only the daemon's endpoint can serve.
    let home = moto_home(&moto, "false");
    let session = endpoint::moto_role_session(&moto.url, "DaemonRole");
    let source = Arc::new(endpoint::FixedSource::with(&[(ACCOUNT, session)]));
    let mut options = endpoint::options(&home.runtime_dir(), &[ACCOUNT]);
    options.section_tokens = true;
    let server = endpoint::Server::start(options.clone(), source);

    let aws = aws_cli();
    let out = success(&run(&mut command(
        &home,
        &moto,
        &exec_args(
            &["--server"],
            &[&aws, "sts", "get-caller-identity", "--output", "json"],
        ),
    )));
    assert_eq!(
        arn_of(&out),
        "arn:aws:sts::210987654321:assumed-role/DaemonRole/DaemonRole-session"
    );
    let env = environment(
        &success(&run(&mut command(
            &home,
            &moto,
            &exec_args(&["--server"], &["env", "-0"]),
        )))
        .into_bytes(),
    );
    assert_eq!(
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
        server.url(ACCOUNT)
    );
    assert_eq!(
        Path::new(&env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]),
        server.record.token_file_of(ACCOUNT),
        "the section's own token, not the one for every section"
    );
    server.stop();

    // The daemon's endpoint cannot hand it out: its reason, nothing started.
    let mut refusing = endpoint::FixedSource::default();
    refusing.refuse.insert(
        ACCOUNT.into(),
        "section [300000000000]: the YubiKey is not inserted".into(),
    );
    let _server = endpoint::Server::start(options, Arc::new(refusing));
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let output = run(&mut command(
        &home,
        &moto,
        &exec_args(&["--server"], &["touch", marker.to_str().unwrap()]),
    ));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(!marker.exists());
    assert!(
        err.contains("the daemon's credentials endpoint cannot hand it out"),
        "{err}"
    );
    assert!(
        err.contains("503") && err.contains("the YubiKey is not inserted"),
        "{err}"
    );
}

/// Values with every character a shell could take for syntax.
const KEY_ID: &str = "ASIAWEIRDWEIRDWEIRD1";
const SECRET: &str = "it's a \"quote\" \\back$lash `tick` $(id) !* ~ {a,b}";
const TOKEN: &str = "tok'en\\'\\\\\"$HOME\"'' ;&| <>()";

/// The expiry of [weird]'s session: ten hours from the test's start, in
/// whole seconds (an expiry no session can have, like 2099, is not believed).
fn weird_expiry() -> &'static str {
    static EXPIRY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    EXPIRY.get_or_init(|| {
        (time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap()
            + time::Duration::hours(10))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
    })
}

/// A HOME whose section [weird] holds a fresh session with those values,
/// written by hand (codes fail: nothing may refresh it).
fn weird_home() -> Home {
    let config = "[weird]\nmfa_serial_number = \"arn:aws:iam::123457890123:mfa/user\"\n\
                  mfa_process = \"false\"\nregion = \"eu-west-1\"\n";
    let credentials = format!(
        "{}\n[weird]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n\
         aws_session_token = {TOKEN}\nx_security_token_expires = {}\n",
        daemon::USER_TEXT,
        weird_expiry()
    );
    Home::with_credentials(config, &credentials)
}

fn export(home: &Home, format: &str) -> PathBuf {
    let output = home.run(&["export", "weird", "--format", format]);
    let text = success(&output);
    let path = home.path().join(format!("export.{format}"));
    std::fs::write(&path, text).unwrap();
    path
}

/// What `shell` has in its environment after taking `script`, started
/// with a stale profile and token.
fn after(shell: &[&str], script: &Path) -> BTreeMap<String, String> {
    let output = Command::new(shell[0])
        .args(&shell[1..])
        .arg(script)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("AWS_PROFILE", "stale")
        .env("AWS_SECURITY_TOKEN", "stale")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", shell[0]));
    assert!(output.status.success(), "{shell:?}: {}", stderr(&output));
    environment(&output.stdout)
}

#[test]
fn export_output_is_taken_by_bash_sh_and_fish_byte_for_byte() {
    let home = weird_home();
    let expected = [
        ("AWS_ACCESS_KEY_ID", KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_SESSION_TOKEN", TOKEN),
        ("AWS_CREDENTIAL_EXPIRATION", weird_expiry()),
        ("AWS_ACCOUNT_ID", "123457890123"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
    ];
    let posix = export(&home, "env");
    let fish = export(&home, "fish");
    for (shell, script) in [
        (
            &["bash", "-c", "eval \"$(cat \"$1\")\" && env -0", "bash"][..],
            &posix,
        ),
        (&["sh", "-c", ". \"$1\" && env -0", "sh"][..], &posix),
        (&["fish", "-c", "source $argv[1]; and env -0"][..], &fish),
    ] {
        let env = after(shell, script);
        for (name, value) in expected {
            assert_eq!(
                env.get(name).map(String::as_str),
                Some(value),
                "{shell:?}: {name}"
            );
        }
        assert!(!env.contains_key("AWS_PROFILE"), "{shell:?}");
        assert!(!env.contains_key("AWS_SECURITY_TOKEN"), "{shell:?}");
    }
}

#[test]
fn export_json_is_credential_process_version_1() {
    let home = weird_home();
    let output = home.run(&["export", "weird", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&success(&output)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "Version": 1,
            "AccessKeyId": KEY_ID,
            "SecretAccessKey": SECRET,
            "SessionToken": TOKEN,
            "Expiration": weird_expiry(),
            "AccountId": "123457890123",
        })
    );
    // A section that cannot be made fresh prints nothing on stdout.
    let moto = moto::Moto::start();
    let stale = moto_home(&moto, "false");
    let output = stale.run(&["export", ACCOUNT]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert!(
        stderr(&output).contains("cannot be made fresh"),
        "{}",
        stderr(&output)
    );
}
