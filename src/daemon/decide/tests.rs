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

fn plan_of(s: &[Section], creds: &dyn CredentialsView, known: &KnownMfaSessions) -> Plan {
    plan_with_backoff(s, creds, known, &Backoff::new())
}

fn plan_with_backoff(
    s: &[Section],
    creds: &dyn CredentialsView,
    known: &KnownMfaSessions,
    backoff: &Backoff,
) -> Plan {
    plan(&Inputs {
        mfa_sessions: known,
        backoff,
        ..inputs(s, creds)
    })
}

static NO_MFA_SESSIONS: KnownMfaSessions = BTreeMap::new();
static NO_PROCESS_PROFILES: ProcessProfiles = BTreeMap::new();
static NO_KEYRING_KEYS: KeyringKeys = BTreeMap::new();
static NO_SSO_TOKENS: SsoTokens = BTreeMap::new();
static NO_BACKOFF: Backoff = BTreeMap::new();
static NO_APPLIED: Applied = BTreeMap::new();

/// The inputs of `sections` over `creds` at [`NOW`], with nothing else
/// known: a test sets what it is about.
fn inputs<'a>(sections: &'a [Section], creds: &'a dyn CredentialsView) -> Inputs<'a> {
    Inputs {
        sections,
        credentials: creds,
        mfa_sessions: &NO_MFA_SESSIONS,
        process_profiles: &NO_PROCESS_PROFILES,
        keyring: &NO_KEYRING_KEYS,
        sso_tokens: &NO_SSO_TOKENS,
        backoff: &NO_BACKOFF,
        applied: &NO_APPLIED,
        keyring_locked: false,
        read_only: None,
        loose_mode: None,
        endpoint: false,
        now: NOW,
    }
}

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
        let plan = plan_of(&s, &creds, &KnownMfaSessions::new());
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
    let p = plan_of(&s, &creds, &KnownMfaSessions::new());
    assert_eq!(
        p.sections[0].state,
        ProfileState::Missing {
            what: "missing aws_session_token".into()
        }
    );
    let creds = creds.with("111111111111", &[("aws_session_token", "x")]);
    let p = plan_of(&s, &creds, &KnownMfaSessions::new());
    assert_eq!(p.sections[0].state, ProfileState::Unmanaged);
    assert!(matches!(
        p.sections[0].action,
        Action::AssumeRoleFromMfaSession { .. }
    ));
}

#[test]
fn many_roles_cost_one_code() {
    let s = sections(ORG);
    let p = plan_of(&s, &long_term(), &KnownMfaSessions::new());
    assert_eq!(p.work.total_codes(), 1);
    assert_eq!(p.work.get_session_token_calls, 1);
    assert_eq!(p.work.assume_role_calls, 3);
    assert_eq!(p.mfa_sessions.len(), 1);
    assert_eq!(p.mfa_sessions[0].used_by.len(), 3);
    assert_eq!(p.next_pass, Some(NOW));
}

#[test]
fn a_cached_mfa_session_means_no_code() {
    let s = sections(ORG);
    let creds = long_term();
    let settings = s[0].settings.as_ref().unwrap();
    let keys = read_long_term_keys(
        &settings.mfa().unwrap().long_term,
        &creds,
        &KeyringKeys::new(),
    )
    .unwrap();
    let key = mfa_session_key(settings, settings.mfa().unwrap(), &keys);
    let mut known = KnownMfaSessions::new();
    known.insert(key.clone(), NOW + Duration::hours(6));
    let p = plan_of(&s, &creds, &known);
    assert_eq!(p.work.total_codes(), 0);
    assert_eq!(p.work.get_session_token_calls, 0);
    assert_eq!(p.work.assume_role_calls, 3);
    // An MFA session inside its own refresh margin is not used.
    known.insert(key, NOW + Duration::minutes(4));
    let p = plan_of(&s, &creds, &known);
    assert_eq!(p.work.total_codes(), 1);
}

#[test]
fn direct_assume_role_costs_one_code_per_section() {
    let s = sections(&ORG.replace(
        "[org]\n",
        "[org]\nmfa_session_duration = 0\nassume_session_duration = 7200\n",
    ));
    let p = plan_of(&s, &long_term(), &KnownMfaSessions::new());
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
    let p = plan_of(&s, &long_term(), &KnownMfaSessions::new());
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
    let p = plan_of(&s, &creds, &KnownMfaSessions::new());
    assert!(p.all_fresh());
    assert_eq!(p.pending().count(), 0);
    // 12:30 minus the 300 s margin, minus the MFA session's jitter (≤ 5 s).
    let next = p.next_pass.unwrap();
    assert!(
        next <= datetime!(2026-11-25 12:25 UTC) && next >= datetime!(2026-11-25 12:24:55 UTC),
        "{next}"
    );
    assert_eq!(p.sections[1].due, Some(next), "the section's own due time");
    assert_eq!(
        p.sections[0].due.unwrap() - p.sections[1].due.unwrap(),
        Duration::minutes(30),
        "sections of one MFA session share the jitter"
    );
}

#[test]
fn problems_make_sections_invalid_with_a_reason() {
    let s = sections(ORG);
    // No long-term keys at all.
    let p = plan_of(&s, &FakeCredentials::default(), &KnownMfaSessions::new());
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
    let p = plan_of(&s, &creds, &KnownMfaSessions::new());
    assert!(format!("{:?}", p.sections[0].state).contains("temporary credentials"));
    // A duplicated profile section in the file.
    let mut creds = long_term();
    creds.broken.insert(
        "222222222222".into(),
        "section [222222222222] appears twice".into(),
    );
    let p = plan_of(&s, &creds, &KnownMfaSessions::new());
    assert_eq!(p.sections[0].state.name(), "missing");
    assert!(format!("{:?}", p.sections[1].state).contains("appears twice"));
    assert_eq!(p.work.assume_role_calls, 2);
}

#[test]
fn conflicting_profiles_are_invalid() {
    let s = sections(&format!(
        "{ORG}\n[other]\nprofile_name = \"111111111111\"\n"
    ));
    let p = plan_of(&s, &long_term(), &KnownMfaSessions::new());
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
    let p = plan_of(&s, &long_term(), &KnownMfaSessions::new());
    assert!(format!("{:?}", p.sections[3].state).contains("destroy"));
}

#[test]
fn config_errors_are_invalid_sections() {
    let s = sections(&format!("{ORG}\n[bad]\nbackups = \"x\"\n"));
    let p = plan_of(&s, &long_term(), &KnownMfaSessions::new());
    assert_eq!(p.sections[3].state.name(), "invalid");
    assert_eq!(p.pending().count(), 3);
}

#[test]
fn json_masks_access_key_ids() {
    let s = sections(ORG);
    let p = plan_of(&s, &long_term(), &KnownMfaSessions::new());
    let json = serde_json::to_string(&p).unwrap();
    assert!(!json.contains("AKIAAAAAAAAAAAAAAAAA"), "{json}");
    assert!(json.contains("AKIA…AAAA"), "{json}");
    assert!(json.contains("\"state\":\"missing\""), "{json}");
}

#[test]
fn a_section_whose_settings_changed_since_the_write_is_refreshed() {
    let s = sections(ORG);
    let creds = with_session(long_term(), "111111111111", "2026-11-25T13:00:00Z");
    let written = fingerprint(s[0].settings.as_ref().unwrap());
    let run = |applied: Applied| {
        plan(&Inputs {
            sections: &s,
            credentials: &creds,
            mfa_sessions: &KnownMfaSessions::new(),
            process_profiles: &ProcessProfiles::new(),
            keyring: &KeyringKeys::new(),
            sso_tokens: &SsoTokens::new(),
            backoff: &Backoff::new(),
            applied: &applied,
            keyring_locked: false,
            read_only: None,
            loose_mode: None,
            endpoint: false,
            now: NOW,
        })
    };
    // Unknown (no record, e.g. after a reboot) or the same: fresh.
    assert_eq!(run(Applied::new()).sections[0].state.name(), "fresh");
    let same = Applied::from([("111111111111".to_string(), written)]);
    assert_eq!(run(same).sections[0].state.name(), "fresh");
    // Written for another role (the config changed since): refreshed now.
    let changed = Applied::from([("111111111111".to_string(), written ^ 1)]);
    let p = run(changed);
    assert_eq!(p.sections[0].state.name(), "refresh");
    assert_eq!(p.sections[0].due, Some(NOW));
    assert!(p.sections[0].action.is_work());
    // A different role gives a different fingerprint; a different margin does not.
    let other = sections(&ORG.replace("role/Admin", "role/ReadOnly"));
    assert_ne!(fingerprint(other[0].settings.as_ref().unwrap()), written);
    let margin = sections(&ORG.replace("[org]\n", "[org]\nrefresh_margin = 600\n"));
    assert_eq!(fingerprint(margin[0].settings.as_ref().unwrap()), written);
}

#[test]
fn a_backing_off_unit_turns_work_into_a_wait() {
    let s = sections(ORG);
    let device = Unit::Device("arn:aws:iam::123457890123:mfa/me".into());
    let later = NOW + Duration::minutes(5);
    let backoff = Backoff::from([(device.clone(), later)]);
    // A new MFA session needs the device: every section waits for it.
    let p = plan_with_backoff(&s, &long_term(), &KnownMfaSessions::new(), &backoff);
    assert!(p.sections.iter().all(
        |s| matches!(&s.action, Action::Wait { unit, until } if *unit == device && *until == later)
    ));
    assert_eq!(p.work, Work::default(), "waiting costs nothing");
    assert_eq!(p.next_wake(), Some((later, Wake::Retry)));
    // With a cached MFA session the device is not needed: no wait.
    let settings = s[0].settings.as_ref().unwrap();
    let keys = read_long_term_keys(
        &settings.mfa().unwrap().long_term,
        &long_term(),
        &KeyringKeys::new(),
    )
    .unwrap();
    let known = KnownMfaSessions::from([(
        mfa_session_key(settings, settings.mfa().unwrap(), &keys),
        NOW + Duration::hours(6),
    )]);
    let p = plan_with_backoff(&s, &long_term(), &known, &backoff);
    assert_eq!(p.pending().count(), 3);
    assert_eq!(p.work.total_codes(), 0);
    // A section's own backoff holds only that section; a past one nothing.
    let backoff = Backoff::from([
        (Unit::Section("222222222222".into()), later),
        (
            Unit::Section("333333333333".into()),
            NOW - Duration::seconds(1),
        ),
    ]);
    let p = plan_with_backoff(&s, &long_term(), &KnownMfaSessions::new(), &backoff);
    assert_eq!(p.pending().count(), 2);
    assert!(matches!(p.sections[1].action, Action::Wait { .. }));
    assert_eq!(p.work.assume_role_calls, 2);
}

#[test]
fn an_expiry_at_the_edge_of_the_calendar_never_panics() {
    let s = sections(ORG);
    for expiry in [
        "9999-12-31T23:59:59-23:59",
        "9999-12-31T23:59:59+23:59",
        "0000-01-01T00:00:00Z",
        "0000-01-01T00:00:00+23:59",
    ] {
        let creds = with_session(long_term(), "111111111111", expiry);
        let p = plan_of(&s, &creds, &KnownMfaSessions::new());
        let _ = serde_json::to_string(&p).unwrap();
        let _ = p.next_wake();
    }
}

#[test]
fn keys_from_the_keyring_need_only_the_key_id_to_plan() {
    let s = sections(&ORG.replace(
        "[org]\n",
        "[org]\nlong_term_keys = \"keyring\"\ncredentials_section = \"work\"\n",
    ));
    let run = |keyring: KeyringKeys| {
        plan(&Inputs {
            sections: &s,
            credentials: &FakeCredentials::default(),
            mfa_sessions: &KnownMfaSessions::new(),
            process_profiles: &ProcessProfiles::new(),
            keyring: &keyring,
            sso_tokens: &SsoTokens::new(),
            backoff: &Backoff::new(),
            applied: &Applied::new(),
            keyring_locked: false,
            read_only: None,
            loose_mode: None,
            endpoint: false,
            now: NOW,
        })
    };
    // The file holds no keys at all; the keyring's key id is enough.
    let p = run(KeyringKeys::from([(
        "work".to_string(),
        Ok("AKIAKEYRINGKEYRING00".to_string()),
    )]));
    assert_eq!(p.work.total_codes(), 1);
    assert_eq!(p.sections[0].long_term_keys, "keyring");
    assert_eq!(p.mfa_sessions[0].key.access_key_id, "AKIAKEYRINGKEYRING00");
    assert!(matches!(
        p.mfa_sessions[0].auth.long_term.secret,
        LongTermSecret::Keyring { ref credentials_section } if credentials_section == "work"
    ));
    // No item: invalid, with the command that stores one.
    let p = run(KeyringKeys::new());
    assert!(
        format!("{:?}", p.sections[0].state).contains("keyring set --credentials-section work")
    );
    // No Secret Service: invalid, with its reason.
    let p = run(KeyringKeys::from([(
        "work".to_string(),
        Err("no Secret Service on the session bus".to_string()),
    )]));
    assert!(format!("{:?}", p.sections[0].state).contains("no Secret Service"));
}

mod sso;
