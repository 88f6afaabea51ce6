//! Loading tests: real files in a temporary directory, environment passed in.

use super::*;
use std::collections::HashMap;

struct Fixture {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut env = HashMap::new();
        env.insert("HOME".to_string(), dir.path().display().to_string());
        Fixture { dir, env }
    }

    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn load(&self, options: &LoadOptions) -> Result<Config, ConfigError> {
        let env = |name: &str| self.env.get(name).cloned();
        load(options, &env)
    }

    fn load_text(&self, text: &str) -> Result<Config, ConfigError> {
        let path = self.write(".config/aws-session-daemon/config.toml", text);
        self.load(&LoadOptions {
            path: Some(path),
            ..Default::default()
        })
    }
}

const GOOD: &str = r#"
mfa_serial_number = "arn:aws:iam::123457890123:mfa/me"
mfa_oath_slot = "Amazon Web Services:me@123457890123"
credentials_section = "long-term"

[[org]]
assume_role_arn = "arn:aws:iam::{section}:role/Admin"

[[org.098765432101]]
[[org.567890123456]]
assume_session_duration = 1800

[plain]
"#;

fn errors(section: &Section) -> Vec<String> {
    match &section.settings {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn expands_groups_and_plain_sections_with_defaults() {
    let f = Fixture::new();
    let config = f.load_text(GOOD).unwrap();
    let names: Vec<_> = config.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["098765432101", "567890123456", "plain"]);
    let s = config.sections[1].settings.as_ref().unwrap();
    let role = s.role.as_ref().unwrap();
    assert_eq!(role.arn, "arn:aws:iam::567890123456:role/Admin");
    assert_eq!(role.duration, 1800);
    assert_eq!(role.session_name, "aws-session-daemon");
    assert_eq!(s.profile_name, "567890123456");
    assert_eq!(s.mfa().unwrap().mfa_session_duration, 43_200);
    assert_eq!(s.region, "us-east-1");
    assert!(
        matches!(&s.mfa().unwrap().long_term, LongTermKeys::CredentialsSection(c) if c == "long-term")
    );
    let plain = config.sections[2].settings.as_ref().unwrap();
    assert!(plain.role.is_none());
}

#[test]
fn default_path_then_legacy_path() {
    let mut f = Fixture::new();
    f.write(".config/aws-credential-process/config.toml", GOOD);
    let config = f.load(&LoadOptions::default()).unwrap();
    assert!(
        config
            .file
            .as_ref()
            .unwrap()
            .ends_with("aws-credential-process/config.toml")
    );
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("original's config file"))
    );
    f.write(".config/aws-session-daemon/config.toml", "[only]\nmfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"echo 123456\"\n");
    let config = f.load(&LoadOptions::default()).unwrap();
    assert_eq!(config.sections.len(), 1);
    assert!(config.warnings.is_empty());
    // XDG_CONFIG_HOME wins over HOME.
    let other = tempfile::tempdir().unwrap();
    f.env
        .insert("XDG_CONFIG_HOME".into(), other.path().display().to_string());
    let err = f.load(&LoadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("no sections"), "{err}");
}

#[test]
fn flags_alone_define_a_section() {
    let f = Fixture::new();
    let options = LoadOptions {
        overrides: vec![
            ("profile_name", RawValue::String("work".into())),
            (
                "mfa_serial_number",
                RawValue::String("arn:aws:iam::123457890123:mfa/me".into()),
            ),
            ("mfa_oath_slot", RawValue::String("slot".into())),
        ],
        ..Default::default()
    };
    let config = f.load(&options).unwrap();
    assert_eq!(config.sections.len(), 1);
    assert_eq!(
        config.sections[0].settings.as_ref().unwrap().profile_name,
        "work"
    );
}

#[test]
fn selection_and_overrides() {
    let f = Fixture::new();
    let path = f.write("c.toml", GOOD);
    let options = LoadOptions {
        path: Some(path.clone()),
        selected: vec!["plain".into()],
        overrides: vec![("region", RawValue::String("eu-west-1".into()))],
    };
    let config = f.load(&options).unwrap();
    assert_eq!(config.sections.len(), 1);
    assert_eq!(
        config.sections[0].settings.as_ref().unwrap().region,
        "eu-west-1"
    );

    let err = f
        .load(&LoadOptions {
            path: Some(path.clone()),
            selected: vec!["plian".into()],
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("did you mean --config-section=plain"),
        "{err}"
    );

    let err = f
        .load(&LoadOptions {
            path: Some(path),
            overrides: vec![("profile_name", RawValue::String("x".into()))],
            ..Default::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("--config-section"), "{err}");
}

#[test]
fn region_and_endpoint_come_from_the_environment() {
    let mut f = Fixture::new();
    f.env
        .insert("AWS_DEFAULT_REGION".into(), "eu-central-1".into());
    f.env
        .insert("AWS_ENDPOINT_URL".into(), "http://127.0.0.1:5000".into());
    let config = f.load_text(GOOD).unwrap();
    let s = config.sections[0].settings.as_ref().unwrap();
    assert_eq!(s.region, "eu-central-1");
    assert_eq!(s.sts_endpoint.as_deref(), Some("http://127.0.0.1:5000"));
    f.env.insert("AWS_REGION".into(), "ap-south-1".into());
    f.env.insert(
        "AWS_ENDPOINT_URL_STS".into(),
        "http://127.0.0.1:6000".into(),
    );
    let config = f.load_text(GOOD).unwrap();
    let s = config.sections[0].settings.as_ref().unwrap();
    assert_eq!(s.region, "ap-south-1");
    assert_eq!(s.sts_endpoint.as_deref(), Some("http://127.0.0.1:6000"));
}

/// Each case: config text, the section to look at, substrings the error must contain.
const INVALID: &[(&str, &[&str])] = &[
    (
        "[a]\nmfa_serial_number = \"arn:aws:iam::123457890123:user/me\"\nmfa_process = \"x\"\n",
        &[":2:21:", "user ARN", "arn:aws:iam::123457890123:mfa/me"],
    ),
    (
        "[a]\nmfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_oath_slott = \"x\"\n",
        &[":3:", "unknown key", "did you mean mfa_oath_slot?"],
    ),
    (
        "[a]\nmfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"x\"\nbackups = \"5\"\n",
        &[":4:", "must be an integer", "remove the quotes"],
    ),
    (
        "[a]\nmfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"x\"\nmfa_session_duration = 100\n",
        &[":4:", "out of range", "900-129600"],
    ),
    (
        "[a]\nmfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"x\"\nassume_role_arn = \"arn:aws:iam::123457890123:role/R\"\nassume_session_duration = 7200\n",
        &[":5:", "role chaining", "mfa_session_duration = 0"],
    ),
    (
        "[a]\nmfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"x\"\nassume_role_arn = \"arn:aws:iam::123457890123:user/R\"\n",
        &[":4:", "user ARN, not a role"],
    ),
    (
        "[a]\nmfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"x\"\nprofile_name = \"default\"\n",
        &[":4:", "overwrite the long-term keys"],
    ),
    (
        "[a]\nmfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\n",
        &[":1:", "no MFA code source", "oath list"],
    ),
    (
        "[a]\nmfa_process = \"x\"\n",
        &["mfa_serial_number is not set"],
    ),
    (
        "[a]\nmfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"x\"\nrefresh_margin = 1.5\n",
        &[":4:", "refresh_margin must be an integer, found a float"],
    ),
    (
        "[a]\nmfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"x\"\nassume_role_arn = \"arn:aws:iam::123457890123:role/R\"\nassume_role_policy = \"{not json\"\n",
        &[":5:", "not valid JSON"],
    ),
    (
        "[a]\nmfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"x\"\nassume_role_arn = \"arn:aws:iam::123457890123:role/R\"\nassume_session_duration = 900\nrefresh_margin = 600\n",
        &[":6:", "more than half", "at most 450"],
    ),
    (
        "[a]\nmfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"x\"\nmfa_oath_slot = \"y\"\n",
        &["both set"],
    ),
    (
        "[a]\nmfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"x\"\naccess_key_id = \"AKIAEXAMPLEEXAMPLE00\"\n",
        &["without secret_access_key"],
    ),
    (
        "[a]\nmfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"x\"\nassume_role_policy_arns = \"arn:aws:iam::aws:policy/ReadOnlyAccess\"\n",
        &["array of strings"],
    ),
];

#[test]
fn invalid_sections_get_located_errors_with_a_fix() {
    assert_located_errors(INVALID);
}

/// Each case's first section has errors that name the config file and
/// contain every expected fragment.
fn assert_located_errors(cases: &[(&str, &[&str])]) {
    for (text, expected) in cases {
        let f = Fixture::new();
        let config = f.load_text(text).unwrap();
        let messages = errors(&config.sections[0]).join("\n");
        assert!(!messages.is_empty(), "no error for:\n{text}");
        for fragment in *expected {
            assert!(
                messages.contains(fragment),
                "expected {fragment:?} in:\n{messages}\nfor:\n{text}"
            );
        }
        assert!(messages.contains("config.toml"), "{messages}");
    }
}

#[test]
fn one_bad_section_does_not_invalidate_the_others() {
    let f = Fixture::new();
    let text = format!("{GOOD}\n[broken]\nregion = 5\n");
    let config = f.load_text(&text).unwrap();
    assert_eq!(config.valid_sections().count(), 3);
    assert!(errors(config.section("broken").unwrap())[0].contains("region must be a string"));
}

#[test]
fn file_level_errors() {
    let f = Fixture::new();
    let err = f.load_text("[a]\nkey = \n").unwrap_err().to_string();
    assert!(
        err.contains("config.toml:2:") && err.contains("TOML syntax error"),
        "{err}"
    );

    let err = f.load_text("[a.x]\n[b.x]\n").unwrap_err().to_string();
    assert!(
        err.contains("a.x") && err.contains("b.x") && err.contains(":2:1:"),
        "{err}"
    );

    let path = f.write("garbage.toml", "");
    std::fs::write(&path, [0x5b, 0xff, 0xfe, 0x00, 0x5d]).unwrap();
    let err = f
        .load(&LoadOptions {
            path: Some(path),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("not UTF-8"), "{err}");

    let path = f.write("huge.toml", "");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(50 * 1024 * 1024).unwrap();
    let err = f
        .load(&LoadOptions {
            path: Some(path),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("at most 4 MiB"), "{err}");

    let err = f
        .load(&LoadOptions {
            path: Some(f.dir.path().join("missing.toml")),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing.toml") && err.contains("--config"),
        "{err}"
    );

    let err = f
        .load(&LoadOptions {
            path: Some(f.dir.path().to_path_buf()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a directory"), "{err}");
}

#[test]
fn a_bom_is_accepted() {
    let f = Fixture::new();
    let config = f.load_text(&format!("\u{feff}{GOOD}")).unwrap();
    assert_eq!(config.sections.len(), 3);
}

#[test]
fn secrets_in_readable_files_warn_and_never_appear_in_errors() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    let text = format!(
        "{GOOD}\naccess_key_id = \"AKIAEXAMPLEEXAMPLE00\"\nsecret_access_key = \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"\nregion = 5\n"
    );
    let path = f.write(".config/aws-session-daemon/config.toml", &text);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = f
        .load(&LoadOptions {
            path: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
    assert!(
        config.warnings.iter().any(|w| w.contains("chmod 600")),
        "{:?}",
        config.warnings
    );
    let all = format!("{config:?}");
    assert!(
        !all.contains("wJalrXUtnFEMI"),
        "secret leaked into Debug output"
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = f
        .load(&LoadOptions {
            path: Some(path),
            ..Default::default()
        })
        .unwrap();
    assert!(config.warnings.is_empty());
}

#[test]
fn a_secret_of_the_wrong_type_is_shown_nowhere() {
    // An array or an integer under a secret key (and under an
    // unknown key whose name says secret): the type is named, the value
    // never shown, by Debug, `config show`, `config get` or an error.
    let f = Fixture::new();
    let config = f
        .load_text(&format!(
            "{GOOD}\naccess_key_id = \"AKIAEXAMPLEEXAMPLE00\"\nsecret_access_key = [\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"]\nmy_token = [\"FwoGZXIvYXdzSECRETTOKEN\"]\nsome_password = 987654321987\n"
        ))
        .unwrap();
    let section = config.section("plain").unwrap();
    assert_eq!(
        section.values["secret_access_key"].value.type_name(),
        "an array of strings"
    );
    let errors = errors(section).join("\n");
    assert!(
        errors.contains("secret_access_key must be a string, found an array of strings"),
        "{errors}"
    );
    let mut shown = Vec::new();
    crate::commands::config::show(&config, &mut shown).unwrap();
    let shown = String::from_utf8(shown).unwrap();
    assert!(
        shown.contains("secret_access_key = \"********\""),
        "{shown}"
    );
    for key in ["secret_access_key", "my_token", "some_password"] {
        let mut out = Vec::new();
        let refused = crate::commands::config::get(&config, key, &mut out);
        assert!(refused.is_err() && out.is_empty(), "config get {key}");
    }
    let all = format!("{config:?}\n{errors}\n{shown}");
    for secret in ["wJalrXUtnFEMI", "SECRETTOKEN", "987654321987"] {
        assert!(!all.contains(secret), "{secret} shown:\n{all}");
    }
}

#[test]
fn a_profile_name_with_a_control_character_is_refused() {
    let f = Fixture::new();
    for name in ["prod\\u001bc", "prod\\u0007", "prod\\u009b1m"] {
        let config = f
            .load_text(&format!("{GOOD}\nprofile_name = \"{name}\"\n"))
            .unwrap();
        let errors = errors(config.section("plain").unwrap()).join("\n");
        assert!(
            errors.contains("cannot be a credentials-file section"),
            "{name}: {errors}"
        );
        assert!(
            !errors.contains(['\u{1b}', '\u{7}', '\u{9b}']),
            "{errors:?}"
        );
    }
}

#[test]
fn a_sections_account_comes_from_its_role_else_its_mfa_device() {
    let f = Fixture::new();
    let config = f
        .load_text(
            "mfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"echo 123456\"\n[role]\nassume_role_arn = \"arn:aws:iam::098765432101:role/Admin\"\n[mfa]\n[token]\nmfa_serial_number = \"GAHT12345678\"\n",
        )
        .unwrap();
    let account = |name: &str| {
        config
            .section(name)
            .unwrap()
            .settings
            .as_ref()
            .unwrap()
            .account_id()
    };
    assert_eq!(account("role").as_deref(), Some("098765432101"));
    assert_eq!(account("mfa").as_deref(), Some("123457890123"));
    assert_eq!(
        account("token"),
        None,
        "a hardware token's serial says nothing"
    );
}

#[test]
fn the_endpoint_is_daemon_wide_and_loopback_only() {
    let f = Fixture::new();
    let base =
        "mfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"echo 123456\"\n";
    let config = f
        .load_text(&format!("endpoint = \"127.0.0.1:0\"\n{base}[a]\n[b]\n"))
        .unwrap();
    assert_eq!(
        config.endpoint().map(|e| e.address.to_string()).as_deref(),
        Some("127.0.0.1:0")
    );
    let off = f.load_text(&format!("{base}[a]\n")).unwrap();
    assert!(off.endpoint().is_none(), "off by default");
    let two = f
        .load_text(&format!(
            "{base}[a]\nendpoint = \"127.0.0.1:1\"\n[b]\nendpoint = \"127.0.0.1:2\"\n"
        ))
        .unwrap_err()
        .to_string();
    assert!(two.contains("different credentials endpoints"), "{two}");
    let wide = f
        .load_text(&format!("endpoint = \"0.0.0.0:9911\"\n{base}[a]\n"))
        .unwrap();
    let errors = wide.section("a").unwrap().settings.as_ref().unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.to_string().contains("not a loopback address")),
        "{errors:?}"
    );
}

mod sso;
