//! The planner's rules for IAM Identity Center sections, as tables: what a
//! due section does, and what its SSO session takes, for each state of the
//! token and each unit backing off.

use super::*;

const CONFIG: &str = r#"
[sso-session.corp]
sso_start_url = "https://d-1234567890.awsapps.com/start"
sso_region = "eu-west-1"

[every]
sso_session = "corp"
sso_account_id = ["111111111111", "222222222222"]
sso_role_name = "ReadOnly"
"#;

fn plan_sso(
    sections: &[Section],
    creds: &dyn CredentialsView,
    token: SsoToken,
    backoff: &Backoff,
) -> Plan {
    let tokens = SsoTokens::from([("corp".to_string(), token)]);
    plan(&Inputs {
        sso_tokens: &tokens,
        backoff,
        ..inputs(sections, creds)
    })
}

fn pending(by_this_process: bool) -> SsoToken {
    SsoToken::SignInPending(PendingSignIn {
        url: Some("https://device.sso.eu-west-1.amazonaws.com/?user_code=ABCD-EFGH".into()),
        user_code: Some("ABCD-EFGH".into()),
        code_expires: Some(NOW + Duration::minutes(10)),
        by_this_process,
    })
}

fn valid() -> SsoToken {
    SsoToken::Valid {
        expires: NOW + Duration::hours(4),
        refresh_at: NOW + Duration::hours(4) - Duration::minutes(15),
        refreshable: true,
    }
}

/// A token inside its refresh window, with a refresh token.
fn refresh_due() -> SsoToken {
    SsoToken::RefreshDue {
        expires: NOW + Duration::minutes(10),
    }
}

/// A case: its name, the token, the unit backing off, the first section's
/// action, what the session needs, and (sign-ins, refreshes,
/// GetRoleCredentials).
type Case = (
    &'static str,
    SsoToken,
    Option<Unit>,
    &'static str,
    SsoNeeds,
    (usize, usize, usize),
);

#[test]
fn a_due_sections_action_and_its_sso_sessions_needs_follow_the_token() {
    let sso = Unit::SsoSession("corp".into());
    let section = Unit::Section("111111111111-ReadOnly".into());
    let later = NOW + Duration::minutes(5);
    // token, unit backing off, first section's action, needs, (sign-ins,
    // refreshes, GetRoleCredentials)
    let cases: Vec<Case> = vec![
        (
            "valid",
            valid(),
            None,
            "sso-role-credentials",
            SsoNeeds::Nothing,
            (0, 0, 2),
        ),
        (
            "refresh due",
            refresh_due(),
            None,
            "sso-role-credentials",
            SsoNeeds::Refresh,
            (0, 1, 2),
        ),
        (
            "no token",
            SsoToken::SignInNeeded,
            None,
            "sso-role-credentials",
            SsoNeeds::SignIn,
            (1, 0, 2),
        ),
        (
            "this process signs in",
            pending(true),
            None,
            "sso-role-credentials",
            SsoNeeds::AwaitSignIn,
            (0, 0, 2),
        ),
        (
            "another process signs in",
            pending(false),
            None,
            "sso-role-credentials",
            SsoNeeds::AwaitSignIn,
            (0, 0, 2),
        ),
        (
            "cache unusable",
            SsoToken::Unreadable {
                reason: "~/.aws/sso/cache is a link".into(),
            },
            None,
            "blocked",
            SsoNeeds::Nothing,
            (0, 0, 0),
        ),
        (
            "no token, the session backs off",
            SsoToken::SignInNeeded,
            Some(sso.clone()),
            "wait",
            SsoNeeds::Nothing,
            (0, 0, 0),
        ),
        (
            "refresh due, the session backs off",
            refresh_due(),
            Some(sso.clone()),
            "wait",
            SsoNeeds::Nothing,
            (0, 0, 0),
        ),
        // A valid token needs nothing of the session that backs off.
        (
            "valid, the session backs off",
            valid(),
            Some(sso.clone()),
            "sso-role-credentials",
            SsoNeeds::Nothing,
            (0, 0, 2),
        ),
        (
            "another's sign-in, the session backs off",
            pending(false),
            Some(sso.clone()),
            "sso-role-credentials",
            SsoNeeds::AwaitSignIn,
            (0, 0, 2),
        ),
        // The section's own backoff: it waits; the other section goes on.
        (
            "valid, the section backs off",
            valid(),
            Some(section.clone()),
            "wait",
            SsoNeeds::Nothing,
            (0, 0, 1),
        ),
    ];
    let sections = sections(CONFIG);
    for (name, token, backing_off, action, needs, work) in cases {
        let backoff: Backoff = backing_off.iter().map(|u| (u.clone(), later)).collect();
        let p = plan_sso(&sections, &FakeCredentials::default(), token, &backoff);
        let json = serde_json::to_value(&p.sections[0]).unwrap();
        assert_eq!(json["action"], action, "{name}: {json}");
        assert_eq!(p.sso_sessions.len(), 1, "{name}");
        assert_eq!(p.sso_sessions[0].needs, needs, "{name}");
        assert_eq!(
            (
                p.work.sso_sign_ins,
                p.work.sso_token_refreshes,
                p.work.get_role_credentials_calls
            ),
            work,
            "{name}"
        );
        assert_eq!(p.work.total_codes(), 0, "{name}");
        if action == "wait" {
            assert_eq!(
                p.next_pass_of(&p.sections[0]),
                Some((later, Wake::Retry)),
                "{name}"
            );
        }
    }
}

#[test]
fn fresh_sections_take_nothing_and_fall_due_together() {
    let sections = sections(CONFIG);
    let creds = with_session(
        with_session(
            FakeCredentials::default(),
            "111111111111-ReadOnly",
            "2026-11-25T13:00:00Z",
        ),
        "222222222222-ReadOnly",
        "2026-11-25T13:00:00Z",
    );
    let p = plan_sso(&sections, &creds, SsoToken::SignInNeeded, &Backoff::new());
    assert!(p.all_fresh());
    assert!(!p.has_work());
    assert_eq!(p.work, Work::default());
    // The session is listed (its token shown by `plan` and `status`), but
    // nothing is asked of it.
    assert_eq!(p.sso_sessions[0].needs, SsoNeeds::Nothing);
    assert!(p.sso_sessions[0].used_by.is_empty());
    assert_eq!(
        p.sections[0].due, p.sections[1].due,
        "one batch per session"
    );
    assert_eq!(p.sections[0].long_term_keys, "sso");
}

#[test]
fn a_chained_role_costs_an_assume_role_after_its_role_credentials() {
    let config = format!(
        "{CONFIG}assume_role_arn = \"arn:aws:iam::333333333333:role/Deploy\"\nassume_session_duration = 1800\n"
    );
    let sections = sections(&config);
    let p = plan_sso(
        &sections,
        &FakeCredentials::default(),
        valid(),
        &Backoff::new(),
    );
    assert_eq!(p.work.get_role_credentials_calls, 2);
    assert_eq!(p.work.assume_role_calls, 2);
    let json = serde_json::to_value(&p.sections[0]).unwrap();
    assert_eq!(json["action"], "assume-role-from-sso-role");
    assert_eq!(json["role_arn"], "arn:aws:iam::333333333333:role/Deploy");
    assert_eq!(json["account_id"], "111111111111");
}

#[test]
fn a_read_only_credentials_file_blocks_an_sso_section_before_any_call() {
    let sections = sections(CONFIG);
    let tokens = SsoTokens::from([("corp".to_string(), SsoToken::SignInNeeded)]);
    let creds = FakeCredentials::default();
    let p = plan(&Inputs {
        sso_tokens: &tokens,
        read_only: Some("the credentials file is read-only"),
        ..inputs(&sections, &creds)
    });
    assert!(matches!(p.sections[0].action, Action::Blocked { .. }));
    assert_eq!(
        p.work,
        Work::default(),
        "no sign-in for a file that cannot be written"
    );
}

#[test]
fn after_a_pass_a_section_awaiting_its_sign_in_has_no_timer() {
    let sections = sections(CONFIG);
    let p = plan_sso(
        &sections,
        &FakeCredentials::default(),
        SsoToken::SignInNeeded,
        &Backoff::new(),
    );
    let results = BTreeMap::from([
        (
            "111111111111-ReadOnly".to_string(),
            Left::AwaitingSignIn("corp".into()),
        ),
        (
            "222222222222-ReadOnly".to_string(),
            Left::AwaitingSignIn("corp".into()),
        ),
    ]);
    let after = p.after(&results, &BTreeMap::new(), &Backoff::new(), NOW);
    assert!(after.sections.iter().all(
        |s| matches!(&s.action, Action::AwaitSignIn { sso_session } if sso_session == "corp")
    ));
    assert_eq!(after.next_pass, None);
    assert!(!after.has_work());
}

/// Both sections fresh until 20:00 (due a little before).
fn fresh_until_evening() -> FakeCredentials {
    with_session(
        with_session(
            FakeCredentials::default(),
            "111111111111-ReadOnly",
            "2026-11-25T20:00:00Z",
        ),
        "222222222222-ReadOnly",
        "2026-11-25T20:00:00Z",
    )
}

#[test]
fn a_token_due_for_its_refresh_is_refreshed_though_no_section_needs_it() {
    let sections = sections(CONFIG);
    let creds = fresh_until_evening();
    let due = refresh_due();
    let p = plan_sso(&sections, &creds, due.clone(), &Backoff::new());
    assert!(p.all_fresh());
    assert!(p.sso_sessions[0].keeps_alive());
    assert!(p.has_work());
    assert_eq!(
        p.work,
        Work {
            sso_token_refreshes: 1,
            ..Work::default()
        }
    );
    assert_eq!(p.next_wake(), Some((NOW, Wake::Due)));

    // Backing off after a failed refresh: nothing now, a pass when it ends.
    let later = NOW + Duration::minutes(3);
    let backoff = Backoff::from([(Unit::SsoSession("corp".into()), later)]);
    let p = plan_sso(&sections, &creds, due, &backoff);
    assert!(!p.has_work());
    assert_eq!(p.work, Work::default());
    assert_eq!(p.sso_sessions[0].backoff_until, Some(later));
    assert_eq!(p.next_wake(), Some((later, Wake::Retry)));
}

#[test]
fn a_refreshable_token_wakes_the_loop_at_its_refresh_time_before_the_sections() {
    let sections = sections(CONFIG);
    let creds = fresh_until_evening();
    let refresh_at = NOW + Duration::minutes(45);
    let token = |refreshable| SsoToken::Valid {
        expires: refresh_at + Duration::minutes(15),
        refresh_at,
        refreshable,
    };
    let p = plan_sso(&sections, &creds, token(true), &Backoff::new());
    assert!(!p.has_work());
    assert_eq!(p.next_wake(), Some((refresh_at, Wake::Due)));
    assert_eq!(p.next_pass, Some(refresh_at));
    // No refresh token: nothing to do for it before the sections.
    let p = plan_sso(&sections, &creds, token(false), &Backoff::new());
    let section_due = p.sections[0].due.unwrap();
    assert!(section_due > refresh_at + Duration::hours(6));
    assert_eq!(p.next_pass, Some(section_due));
}

#[test]
fn after_a_keep_alive_refresh_the_next_pass_is_at_the_new_tokens_refresh_time() {
    let sections = sections(CONFIG);
    let creds = fresh_until_evening();
    let due = refresh_due();
    let p = plan_sso(&sections, &creds, due, &Backoff::new());
    let ended = NOW + Duration::seconds(1);
    let tokens = BTreeMap::from([("corp".to_string(), NOW + Duration::hours(1))]);
    let after = p.after(&BTreeMap::new(), &tokens, &Backoff::new(), ended);
    assert!(!after.has_work());
    assert_eq!(
        after.next_pass,
        Some(NOW + Duration::hours(1) - Duration::minutes(15))
    );
    // A refresh that failed: the pass after its backoff.
    let until = NOW + Duration::minutes(2);
    let backoff = Backoff::from([(Unit::SsoSession("corp".into()), until)]);
    let after = p.after(&BTreeMap::new(), &BTreeMap::new(), &backoff, ended);
    assert_eq!(after.next_wake(), Some((until, Wake::Retry)));
    // A token issued already inside the refresh window (a short-lived
    // issuer) gets no pass of its own: refreshing it would start again at
    // once, forever.
    let tokens = BTreeMap::from([("corp".to_string(), NOW + Duration::minutes(5))]);
    let after = p.after(&BTreeMap::new(), &tokens, &Backoff::new(), ended);
    assert_eq!(after.next_pass, after.sections[0].due);
}
