//! Table-driven tests of the planner over a fake credentials view.

use super::*;
use crate::config::{LoadOptions, load};
use std::collections::HashMap;
use time::macros::datetime;

/// A credentials file as a map; `broken` sections report a parse problem.
#[derive(Default)]
struct FakeCredentials {
    sections: HashMap<String, HashMap<String, String>>,
    broken: HashMap<String, String>,
}

impl FakeCredentials {
    fn with(mut self, section: &str, pairs: &[(&str, &str)]) -> Self {
        let entry = self.sections.entry(section.to_string()).or_default();
        for (k, v) in pairs {
            entry.insert(k.to_string(), v.to_string());
        }
        self
    }
}

impl CredentialsView for FakeCredentials {
    fn value(&self, section: &str, key: &str) -> Result<Option<String>, String> {
        if let Some(reason) = self.broken.get(section) {
            return Err(reason.clone());
        }
        Ok(self.sections.get(section).and_then(|s| s.get(key)).cloned())
    }
    fn has_section(&self, section: &str) -> bool {
        self.sections.contains_key(section)
    }
    fn check(&self, section: &str) -> Result<(), String> {
        match self.broken.get(section) {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }
}

const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

fn sections(toml: &str) -> Vec<Section> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, toml).unwrap();
    let env = |_: &str| None;
    load(
        &LoadOptions {
            path: Some(path),
            ..Default::default()
        },
        &env,
    )
    .unwrap()
    .sections
}

fn long_term() -> FakeCredentials {
    FakeCredentials::default().with(
        "default",
        &[
            ("aws_access_key_id", "AKIAAAAAAAAAAAAAAAAA"),
            ("aws_secret_access_key", "s"),
        ],
    )
}

fn session(expires: &str) -> [(&'static str, String); 4] {
    [
        ("aws_access_key_id", "ASIAXXXXXXXXXXXXXXXX".to_string()),
        ("aws_secret_access_key", "secret".to_string()),
        ("aws_session_token", "token".to_string()),
        ("x_security_token_expires", expires.to_string()),
    ]
}

fn with_session(creds: FakeCredentials, profile: &str, expires: &str) -> FakeCredentials {
    let pairs = session(expires);
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    creds.with(profile, &refs)
}

const ORG: &str = r#"
mfa_serial_number = "arn:aws:iam::123457890123:mfa/me"
mfa_oath_slot = "Amazon Web Services:me@123457890123"
[org]
assume_role_arn = "arn:aws:iam::{section}:role/Admin"
[org.111111111111]
[org.222222222222]
[org.333333333333]
"#;

#[test]
fn states_follow_the_credentials_file() {
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("no section", None, "missing"),
        ("fresh", Some("2026-11-25T13:00:00Z"), "fresh"),
        ("inside the margin", Some("2026-11-25T12:04:00Z"), "refresh"),
        ("expired", Some("2026-11-25T11:00:00Z"), "refresh"),
        ("zone-less expiry", Some("2026-11-25T13:00:00"), "fresh"),
        ("garbage expiry", Some("tomorrow"), "unmanaged"),
    ];
    let s = sections(ORG);
    for (what, expiry, expected) in cases {
        let mut creds = long_term();
        if let Some(expiry) = expiry {
            creds = with_session(creds, "111111111111", expiry);
        }
        let plan = plan(&s, &creds, &KnownMfaSessions::new(), NOW);
        assert_eq!(plan.sections[0].state.name(), *expected, "{what}");
    }
}

#[test]
fn keys_missing_or_no_expiry() {
    let s = sections(ORG);
    let creds = long_term().with(
        "111111111111",
        &[
            ("aws_access_key_id", "placeholder"),
            ("aws_secret_access_key", "x"),
        ],
    );
    let p = plan(&s, &creds, &KnownMfaSessions::new(), NOW);
    assert_eq!(
        p.sections[0].state,
        ProfileState::Missing {
            what: "missing aws_session_token".into()
        }
    );
    let creds = creds.with("111111111111", &[("aws_session_token", "x")]);
    let p = plan(&s, &creds, &KnownMfaSessions::new(), NOW);
    assert_eq!(p.sections[0].state, ProfileState::Unmanaged);
    assert!(matches!(
        p.sections[0].action,
        Action::AssumeRoleFromMfaSession { .. }
    ));
}

#[test]
fn many_roles_cost_one_code() {
    let s = sections(ORG);
    let p = plan(&s, &long_term(), &KnownMfaSessions::new(), NOW);
    assert_eq!(p.work.total_codes(), 1);
    assert_eq!(p.work.get_session_token_calls, 1);
    assert_eq!(p.work.assume_role_calls, 3);
    assert_eq!(p.mfa_sessions.len(), 1);
    assert_eq!(p.mfa_sessions[0].used_by.len(), 3);
    assert_eq!(p.next_deadline, Some(NOW));
}

#[test]
fn a_cached_mfa_session_means_no_code() {
    let s = sections(ORG);
    let creds = long_term();
    let key = mfa_session_key(s[0].settings.as_ref().unwrap(), &creds).unwrap();
    let mut known = KnownMfaSessions::new();
    known.insert(key.clone(), NOW + Duration::hours(6));
    let p = plan(&s, &creds, &known, NOW);
    assert_eq!(p.work.total_codes(), 0);
    assert_eq!(p.work.get_session_token_calls, 0);
    assert_eq!(p.work.assume_role_calls, 3);
    // An MFA session inside its own refresh margin is not used.
    known.insert(key, NOW + Duration::minutes(4));
    let p = plan(&s, &creds, &known, NOW);
    assert_eq!(p.work.total_codes(), 1);
}

#[test]
fn direct_assume_role_costs_one_code_per_section() {
    let s = sections(&ORG.replace(
        "[org]\n",
        "[org]\nmfa_session_duration = 0\nassume_session_duration = 7200\n",
    ));
    let p = plan(&s, &long_term(), &KnownMfaSessions::new(), NOW);
    assert_eq!(p.work.total_codes(), 3);
    assert_eq!(p.work.get_session_token_calls, 0);
    assert!(p.mfa_sessions.is_empty());
    assert!(matches!(
        p.sections[0].action,
        Action::AssumeRoleWithCode { .. }
    ));
}

#[test]
fn without_a_role_the_mfa_session_is_written() {
    let s = sections(
        "mfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"x\"\n[a]\n[b]\n",
    );
    let p = plan(&s, &long_term(), &KnownMfaSessions::new(), NOW);
    assert!(matches!(
        p.sections[0].action,
        Action::WriteMfaSession { .. }
    ));
    assert_eq!(
        p.work.total_codes(),
        1,
        "two profiles share one MFA session"
    );
    assert_eq!(p.work.assume_role_calls, 0);
}

#[test]
fn next_deadline_is_the_earliest_expiry_minus_margin() {
    let s = sections(ORG);
    let creds = with_session(long_term(), "111111111111", "2026-11-25T13:00:00Z");
    let creds = with_session(creds, "222222222222", "2026-11-25T12:30:00Z");
    let creds = with_session(creds, "333333333333", "2026-11-25T14:00:00Z");
    let p = plan(&s, &creds, &KnownMfaSessions::new(), NOW);
    assert!(p.all_fresh());
    assert_eq!(p.pending().count(), 0);
    assert_eq!(p.next_deadline, Some(datetime!(2026-11-25 12:25 UTC)));
}

#[test]
fn problems_make_sections_invalid_with_a_reason() {
    let s = sections(ORG);
    // No long-term keys at all.
    let p = plan(
        &s,
        &FakeCredentials::default(),
        &KnownMfaSessions::new(),
        NOW,
    );
    assert!(p.has_invalid());
    match &p.sections[0].state {
        ProfileState::Invalid { reasons } => assert!(
            reasons[0].contains("[default] does not exist"),
            "{reasons:?}"
        ),
        other => panic!("{other:?}"),
    }
    // Temporary keys where long-term keys belong.
    let creds = long_term().with("default", &[("aws_session_token", "t")]);
    let p = plan(&s, &creds, &KnownMfaSessions::new(), NOW);
    assert!(format!("{:?}", p.sections[0].state).contains("temporary credentials"));
    // A duplicated profile section in the file.
    let mut creds = long_term();
    creds.broken.insert(
        "222222222222".into(),
        "section [222222222222] appears twice".into(),
    );
    let p = plan(&s, &creds, &KnownMfaSessions::new(), NOW);
    assert_eq!(p.sections[0].state.name(), "missing");
    assert!(format!("{:?}", p.sections[1].state).contains("appears twice"));
    assert_eq!(p.work.assume_role_calls, 2);
}

#[test]
fn conflicting_profiles_are_invalid() {
    let s = sections(&format!(
        "{ORG}\n[other]\nprofile_name = \"111111111111\"\n"
    ));
    let p = plan(&s, &long_term(), &KnownMfaSessions::new(), NOW);
    let invalid: Vec<_> = p
        .sections
        .iter()
        .filter(|s| s.state.name() == "invalid")
        .map(|s| s.section.as_str())
        .collect();
    assert_eq!(invalid, ["111111111111", "other"]);
    let s = sections(&format!(
        "{ORG}\n[keys]\nprofile_name = \"default\"\ncredentials_section = \"elsewhere\"\n"
    ));
    let p = plan(&s, &long_term(), &KnownMfaSessions::new(), NOW);
    assert!(format!("{:?}", p.sections[3].state).contains("destroy"));
}

#[test]
fn config_errors_are_invalid_sections() {
    let s = sections(&format!("{ORG}\n[bad]\nbackups = \"x\"\n"));
    let p = plan(&s, &long_term(), &KnownMfaSessions::new(), NOW);
    assert_eq!(p.sections[3].state.name(), "invalid");
    assert_eq!(
        p.sections
            .iter()
            .filter(|s| s.action != Action::None)
            .count(),
        3
    );
}

#[test]
fn json_masks_access_key_ids() {
    let s = sections(ORG);
    let p = plan(&s, &long_term(), &KnownMfaSessions::new(), NOW);
    let json = serde_json::to_string(&p).unwrap();
    assert!(!json.contains("AKIAAAAAAAAAAAAAAAAA"), "{json}");
    assert!(json.contains("AKIA…AAAA"), "{json}");
    assert!(json.contains("\"state\":\"missing\""), "{json}");
}
