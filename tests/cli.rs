//! The command line as a user meets it: `plan` on the bundled examples,
//! `config get/find`, completions, the man page, and `oath list` / `oath
//! code` against a virtual YubiKey on the real PC/SC stack.

#[path = "support/example_bin.rs"]
mod example_bin;
#[path = "support/pcsc.rs"]
mod pcsc;
#[path = "support/vcard.rs"]
mod vcard;

use std::process::{Command, Output};

fn daemon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aws-session-daemon"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_STS")
        .output()
        .expect("run aws-session-daemon")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The config commands read no credentials file, and take no option for one.
const EXAMPLE_CONFIG: [&str; 2] = ["--config", "examples/config.toml"];

#[test]
fn plan_on_the_examples_shows_states_and_cost_without_secrets() {
    // The example file with its expiries moved to now: one session fresh
    // for hours, one expired an hour ago (an expiry no session can have,
    // like 2099 or 1970, is not believed: the profile counts as unmanaged).
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    let at = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let text = std::fs::read_to_string("examples/credentials")
        .unwrap()
        .replace("2099-01-01T00:00:00Z", &at(now + time::Duration::hours(10)))
        .replace("2020-01-01T00:00:00Z", &at(now - time::Duration::hours(1)));
    std::fs::write(&credentials, text).unwrap();
    std::fs::set_permissions(
        &credentials,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let examples = [
        "--config",
        "examples/config.toml",
        "--credentials-file",
        credentials.to_str().unwrap(),
    ];
    let out = daemon(&[&["plan"][..], &examples].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in [
        "mfa ",
        "fresh",
        "refresh",
        "missing",
        "no [readonly] section",
        "1 MFA code(s)",
        "1 GetSessionToken, 2 AssumeRole",
        "AKIA…MPLE",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert!(
        !text.contains("AKIAIOSFODNN7EXAMPLE") && !text.contains("wJalrXUtnFEMI"),
        "secret shown:\n{text}"
    );

    let out = daemon(&[&["plan", "--detailed-exitcode"][..], &examples].concat());
    assert_eq!(out.status.code(), Some(2), "pending changes");

    let out = daemon(&[&["plan", "--json"][..], &examples].concat());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan --json is JSON");
    let states: Vec<&str> = json["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["fresh", "refresh", "missing"]);
    assert_eq!(json["work"]["assume_role_calls"], 2);
    assert!(!stdout(&out).contains("AKIAIOSFODNN7EXAMPLE"));

    // Only the fresh section selected (in a private file: a file others
    // can read is made private, which is work too): nothing pending.
    let out = daemon(
        &[
            &["plan", "--detailed-exitcode", "--config-section", "mfa"][..],
            &examples,
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn plan_reports_an_invalid_section_and_exits_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "mfa_process = \"x\"\n[prod]\nmfa_serial_number = \"arn:aws:iam::123456789012:user/me\"\n",
    )
    .unwrap();
    let out = daemon(&[
        "plan",
        "--config",
        config.to_str().unwrap(),
        "--credentials-file",
        "examples/credentials",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("config.toml:3:21: section [prod]: mfa_serial_number"),
        "{text}"
    );
    assert!(
        text.contains("hint: use the MFA device's ARN: arn:aws:iam::123456789012:mfa/me"),
        "{text}"
    );
}

#[test]
fn config_get_and_find_replace_the_original_scripts() {
    let out = daemon(
        &[
            &[
                "config",
                "get",
                "--config-section",
                "567890123456",
                "--key",
                "assume_role_arn",
            ][..],
            &EXAMPLE_CONFIG,
        ]
        .concat(),
    );
    assert_eq!(
        stdout(&out).trim(),
        "arn:aws:iam::567890123456:role/ReadOnly",
        "{}",
        stderr(&out)
    );
    let out = daemon(
        &[
            &[
                "config",
                "find",
                "--key",
                "profile_name",
                "--value",
                "readonly",
            ][..],
            &EXAMPLE_CONFIG,
        ]
        .concat(),
    );
    assert_eq!(stdout(&out).trim(), "567890123456");
    let out = daemon(
        &[
            &["config", "find", "--key", "assume_session_duration"][..],
            &EXAMPLE_CONFIG,
        ]
        .concat(),
    );
    assert_eq!(stdout(&out).lines().count(), 2, "{}", stdout(&out));
    let out = daemon(&[&["config", "get", "--key", "region"][..], &EXAMPLE_CONFIG].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("choose one with --config-section"),
        "{}",
        stderr(&out)
    );
    let out = daemon(
        &[
            &[
                "config",
                "get",
                "--config-section",
                "mfa",
                "--key",
                "secret_access_key",
            ][..],
            &EXAMPLE_CONFIG,
        ]
        .concat(),
    );
    assert!(stderr(&out).contains("is a secret and is never printed"));
}

#[test]
fn completions_man_page_and_version() {
    for shell in ["bash", "zsh", "fish"] {
        let out = daemon(&["completions", shell]);
        assert!(out.status.success());
        let text = stdout(&out);
        assert!(
            text.contains("config-section") && text.contains("plan"),
            "{shell} completion lacks flags"
        );
    }
    let man = stdout(&daemon(&["man"]));
    assert!(man.starts_with(".ie") || man.contains(".TH"), "{man}");
    assert!(man.contains("config\\-section") || man.contains("config-section"));
    let version = stdout(&daemon(&["--version"]));
    assert!(
        version.starts_with(&format!("aws-session-daemon {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let help = stdout(&daemon(&["--help"]));
    assert!(
        help.contains("[aliases: --oath_slot, --oath-slot]") || help.contains("oath_slot"),
        "{help}"
    );
}

#[test]
fn oath_list_and_five_concurrent_oath_code_processes() {
    pcsc::ensure_pcscd();
    let _readers = pcsc::lock_readers();
    let credentials = format!(
        "{}{}",
        vcard::credential(vcard::AWS, "sha1", 6, vcard::SHA1_SECRET, false),
        vcard::credential("60/Example:eight", "sha256", 8, vcard::SHA256_SECRET, true)
    );
    let card = pcsc::VirtualCard::start(pcsc::CardConfig::new(&credentials));

    let out = daemon(&["oath", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reader = json
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reader"] == card.reader)
        .expect("our reader is listed");
    let names: Vec<&str> = reader["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [vcard::AWS, "60/Example:eight"]);
    let eight = &reader["credentials"][1];
    assert_eq!(
        (
            eight["digits"].as_u64(),
            eight["period"].as_u64(),
            eight["touch"].as_bool()
        ),
        (Some(8), Some(60), Some(true))
    );
    let table = stdout(&daemon(&["oath", "list"]));
    assert!(
        table.contains(vcard::AWS) && table.contains("SHA256"),
        "{table}"
    );

    let step_before = unix() / 30;
    let children: Vec<_> = (0..5)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_aws-session-daemon"))
                .args(["oath", "code", vcard::AWS, "--yubikey-reader", card.reader])
                .output()
        })
        .collect();
    let step_after = unix() / 30;
    let allowed: Vec<String> = (step_before..=step_after)
        .map(|s| vcard::totp("sha1", vcard::SHA1_SECRET, s, 6))
        .collect();
    for child in children {
        let out = child.unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let code = stdout(&out).trim().to_string();
        assert!(
            allowed.contains(&code),
            "code {code} is not the TOTP of the current step"
        );
    }

    let out = daemon(&["oath", "code", "Amazon Web Services:nobody@1"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(vcard::AWS),
        "the error lists the names that exist: {}",
        stderr(&out)
    );
}

fn unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
