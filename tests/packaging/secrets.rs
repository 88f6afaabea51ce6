//! No shipped service file holds a secret.

use std::fs;
use std::path::PathBuf;

use crate::nix::nix_files;
use crate::{MAIN_UNIT, SUPERVISORD_CONF, TEMPLATE_UNIT, path};

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
