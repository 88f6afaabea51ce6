//! What a hostile (or broken) STS, a wall clock at either end of the
//! calendar, and control characters in a server's words or a section's
//! name do to the real binary. STS is the fault front
//! (`examples/sts_fault_front`) answering on its own (`--upstream local`),
//! rewriting its answers or sending the error it is told to; the clock is
//! libfaketime's.
//!
//! The promises: an answer no output could carry is neither written nor
//! served (file and `credential-process` alike); an expiry that cannot be
//! a session's is refused; no clock panics the program, and none computes
//! a code it cannot; nothing raw from outside reaches the terminal or the
//! log.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/example_bin.rs"]
mod example_bin;
#[path = "support/sts_front.rs"]
mod sts_front;
#[path = "support/tools.rs"]
mod tools;

use std::process::Output;

use daemon::{Home, USER_TEXT};
use serde_json::{Value, json};
use sts_front::StsFront;

/// A front that answers at once, accepting every code (the daemon's own
/// step records keep a code from being used twice), with `faults` injected.
fn front(faults: &[Value]) -> StsFront {
    let mut args = vec!["--reuse-window".to_string(), "0".to_string()];
    for fault in faults {
        args.push("--inject".to_string());
        args.push(fault.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    StsFront::start("local", &args)
}

/// One section: the MFA session goes to the profile `a` of the
/// credentials file (`output`: `file`) or to `credential-process`
/// (`process`).
fn config(endpoint: &str, output: &str) -> String {
    format!(
        "mfa_serial_number = \"arn:aws:iam::123456789012:mfa/me\"\nmfa_process = \"echo 123456\"\nregion = \"us-east-1\"\nsts_endpoint = \"{endpoint}\"\n\n[a]\noutput = \"{output}\"\n"
    )
}

fn text_of(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// No character a terminal acts on, other than the line breaks.
fn assert_no_raw_control_characters(text: &str, what: &str) {
    if let Some(c) = text.chars().find(|c| c.is_control() && *c != '\n') {
        panic!("{what} printed the raw control character {c:?}:\n{text}");
    }
}

fn assert_no_panic(output: &Output, what: &str) {
    let text = text_of(output);
    assert!(
        output.status.code() != Some(101) && !text.contains("panicked"),
        "{what} panicked:\n{text}"
    );
    assert!(
        output.status.code().is_some(),
        "{what} ended by {}:\n{text}",
        output.status
    );
}

/// `apply` writes nothing and `credential-process` serves nothing, both
/// saying the answer was refused and why (`says`), and neither shows
/// `hidden`.
fn assert_refused_everywhere(faults: &[Value], says: &str, hidden: &str) {
    let front = front(faults);
    let home = Home::new(&config(&front.url, "file"));
    let output = home.run(&["apply"]);
    let text = text_of(&output);
    assert_no_panic(&output, "apply");
    assert!(!output.status.success(), "apply succeeded:\n{text}");
    assert!(
        text.contains("answer refused") && text.contains(says),
        "apply does not say {says:?}:\n{text}"
    );
    assert!(!text.contains(hidden), "apply showed {hidden:?}:\n{text}");
    assert_no_raw_control_characters(&text, "apply");
    // A refused answer is retried soon (the log line ends with the class).
    assert!(text.contains("(retry soon)"), "{text}");
    assert_eq!(
        home.text(),
        USER_TEXT,
        "apply wrote to the credentials file"
    );

    let home = Home::new(&config(&front.url, "process"));
    let output = home.run(&["credential-process", "--profile", "a"]);
    let text = text_of(&output);
    assert_no_panic(&output, "credential-process");
    assert!(
        !output.status.success() && output.stdout.is_empty(),
        "credential-process served an answer that was refused:\n{text}"
    );
    assert!(
        text.contains(says),
        "credential-process does not say {says:?}:\n{text}"
    );
    assert_no_raw_control_characters(&text, "credential-process");
    let cache =
        std::fs::read_to_string(home.runtime_dir().join("mfa-sessions.json")).unwrap_or_default();
    assert!(
        !cache.contains(hidden),
        "the refused answer is in the runtime cache"
    );
    assert_eq!(home.text(), USER_TEXT);
}

fn rewrite(element: &str, value: Option<&str>) -> Value {
    json!({"fault": "rewrite", "element": element, "value": value, "count": 1000})
}

#[test]
fn an_sts_answer_no_output_could_carry_is_neither_written_nor_served() {
    // A token that would add a line (and a [default] key) to the
    // credentials file, and a JSON value with a line break in it.
    let forged = "FwoGZXIvYXdzEXAMPLETOKEN\n[default]\naws_secret_access_key = forged";
    assert_refused_everywhere(
        &[rewrite("SessionToken", Some(forged))],
        "the answer's SessionToken: a session token may hold only printable ASCII without spaces, not \"\\n\"",
        "forged",
    );
    assert_refused_everywhere(
        &[rewrite("AccessKeyId", Some("ASIA FORGED EXAMPLE1"))],
        "the answer's AccessKeyId: an access key id may hold only letters, digits and _, not \" \"",
        "FORGED",
    );
    assert_refused_everywhere(
        &[rewrite(
            "AccessKeyId",
            Some("ASIA\u{1b}]0;pwned\u{7}EXAMPLE"),
        )],
        "the answer's AccessKeyId: an access key id may hold only letters, digits and _, not \"\\u{1b}\"",
        "pwned",
    );
    assert_refused_everywhere(
        &[rewrite("SecretAccessKey", Some("tiny"))],
        "the answer's SecretAccessKey: a secret access key has 16-1024 characters, not 4",
        "tiny",
    );
    assert_refused_everywhere(
        &[rewrite("SessionToken", None)],
        "the answer's SessionToken: a session token has 16-65536 characters, not 0",
        "LocalToken",
    );
}

#[test]
fn an_expiry_that_cannot_be_a_session_s_is_refused() {
    // No <Expiration>: the SDK reads it as 1970.
    assert_refused_everywhere(
        &[rewrite("Expiration", None)],
        "the credentials expire at 1970-01-01T00:00:00Z, not after now",
        "LocalToken",
    );
    assert_refused_everywhere(
        &[rewrite("Expiration", Some("0001-01-01T00:00:00Z"))],
        "the credentials expire at 0001-01-01T00:00:00Z, not after now",
        "LocalToken",
    );
    assert_refused_everywhere(
        &[rewrite("Expiration", Some("2020-01-01T00:00:00Z"))],
        "the credentials expire at 2020-01-01T00:00:00Z, not after now",
        "LocalToken",
    );
}

/// The daemon's command under libfaketime, its wall clock at `at`
/// (`@YYYY-MM-DD hh:mm:ss`); the monotonic clock stays real.
fn at_time(home: &Home, at: &str, args: &[&str]) -> Output {
    home.command(args)
        .env("LD_PRELOAD", tools::libfaketime())
        .env("FAKETIME", at)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .output()
        .expect("run aws-session-daemon")
}

#[test]
fn a_wall_clock_at_the_end_of_the_calendar_panics_nothing() {
    let front = front(&[]);
    let config = format!(
        "{}\n[b]\nassume_role_arn = \"arn:aws:iam::111111111111:role/Admin\"\n",
        config(&front.url, "file")
    );
    let home = Home::new(&config);
    for command in ["plan", "apply", "status"] {
        let output = at_time(&home, "@9999-12-31 23:00:00", &[command]);
        assert_no_panic(&output, command);
        if command == "apply" {
            let text = text_of(&output);
            assert!(!output.status.success(), "{text}");
            assert!(
                text.contains("implausible system clock")
                    && text.contains("the system clock reads 9999-12-31T23:00:"),
                "{text}"
            );
        }
    }
    assert_eq!(home.text(), USER_TEXT);
    let stats = front.stats();
    assert_eq!(
        stats["actions"]["GetSessionToken"].as_u64().unwrap_or(0),
        0,
        "a call whose answer could not be checked was sent: {stats}"
    );
}

#[test]
fn a_wall_clock_before_1970_computes_no_code() {
    // TOTP steps count from 1970: before it every step would be 0, one
    // code for ever. Refused before the YubiKey is asked.
    let front = front(&[]);
    let slot = "Amazon Web Services:me@123456789012";
    let home = Home::new(&format!(
        "mfa_serial_number = \"arn:aws:iam::123456789012:mfa/me\"\nmfa_oath_slot = \"{slot}\"\nregion = \"us-east-1\"\nsts_endpoint = \"{}\"\n\n[a]\n",
        front.url
    ));
    for args in [&["oath", "code", slot][..], &["apply"]] {
        let output = at_time(&home, "@1969-12-01 00:00:00", args);
        let text = text_of(&output);
        assert_no_panic(&output, args[0]);
        assert!(!output.status.success(), "{args:?}: {text}");
        assert!(
            text.contains("the system clock reads 1969-12-01T00:00:")
                && text.contains("before 1970"),
            "{args:?}: {text}"
        );
    }
    assert_eq!(front.stats()["total"], 0);
    assert_eq!(home.text(), USER_TEXT);
}

#[test]
fn control_characters_from_a_server_or_a_file_reach_neither_the_terminal_nor_the_log() {
    // An error whose words would retitle the terminal and forge a log line
    // saying the pass succeeded.
    let forged = "2026-01-01T00:00:00.000000Z  INFO pass{reason=Start}: wrote 1 profile(s)";
    let front = front(&[json!({
        "fault": "error",
        "status": 400,
        "code": "ValidationError\r\u{1b}[2K",
        "message": format!("bad thing\u{1b}]0;pwned\u{7}\r\n{forged}"),
        "count": 1000,
    })]);
    for (output_kind, args) in [
        ("file", &["apply", "--log-level", "debug"][..]),
        ("process", &["credential-process", "--profile", "a"]),
    ] {
        let home = Home::new(&config(&front.url, output_kind));
        let output = home
            .command(args)
            .env("RUST_LOG", "debug")
            .output()
            .unwrap();
        let text = text_of(&output);
        assert_no_panic(&output, args[0]);
        assert!(!output.status.success(), "{text}");
        assert_no_raw_control_characters(&text, args[0]);
        assert!(
            !text
                .lines()
                .any(|line| line.trim_start().starts_with(forged)),
            "{}: a forged log line:\n{text}",
            args[0]
        );
        assert!(
            text.contains("bad thing\\u{1b}]0;pwned\\u{7}\\r\\n2026-01-01"),
            "{}: the server's words are not shown escaped:\n{text}",
            args[0]
        );
    }

    // A section whose name would forge a line of `plan`'s table or errors.
    let home = Home::new(&format!(
        "mfa_serial_number = \"arn:aws:iam::123456789012:mfa/me\"\nmfa_process = \"echo 123456\"\nsts_endpoint = \"{}\"\n\n[\"prod\\r\\nforged line\\u001b[2J\"]\nassume_role_arn = \"arn:aws:iam::111111111111:role/Admin\"\n",
        front.url
    ));
    for args in [
        &["plan"][..],
        &["plan", "--json"],
        &["config", "show"],
        &["status"],
    ] {
        let output = home.run(args);
        let text = text_of(&output);
        assert_no_panic(&output, args[0]);
        assert_no_raw_control_characters(&text, &args.join(" "));
        assert!(
            !text
                .lines()
                .any(|line| line.trim_start().starts_with("forged line")),
            "{args:?}: a forged line:\n{text}"
        );
        assert!(
            text.contains("prod\\r\\nforged line\\u"),
            "{args:?}: {text}"
        );
    }
}
