//! IAM Identity Center sections: SSO sessions of this file and of the AWS
//! config, templates over accounts and roles, and the errors a person can
//! act on.

use super::*;

const SESSION: &str = "[sso-session.corp]\nsso_start_url = \"https://d-1234567890.awsapps.com/start\"\nsso_region = \"eu-west-1\"\n";

fn sso(section: &Section) -> &SsoSource {
    section
        .settings
        .as_ref()
        .unwrap_or_else(|e| panic!("{e:?}"))
        .sso()
        .expect("an SSO section")
}

#[test]
fn a_section_names_an_sso_session_of_this_file() {
    let f = Fixture::new();
    let text = format!(
        "{SESSION}\n[dev]\nsso_session = \"corp\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"ReadOnly\"\nsso_open_browser = true\n"
    );
    let config = f.load_text(&text).unwrap();
    assert_eq!(
        config.sections.len(),
        1,
        "the sso-session table is no section"
    );
    let source = sso(&config.sections[0]);
    assert_eq!(source.session.name, "corp");
    assert_eq!(
        source.session.start_url,
        "https://d-1234567890.awsapps.com/start"
    );
    assert_eq!(source.session.region, "eu-west-1");
    assert_eq!(source.session.scopes, ["sso:account:access"]);
    assert_eq!(source.account_id, "111122223333");
    assert_eq!(source.role_name, "ReadOnly");
    assert!(source.open_browser);
    let settings = config.sections[0].settings.as_ref().unwrap();
    assert_eq!(settings.profile_name, "dev");
    assert_eq!(settings.account_id().as_deref(), Some("111122223333"));
}

#[test]
fn a_template_makes_a_section_per_account_and_role() {
    let f = Fixture::new();
    let text = format!(
        "sso_session = \"corp\"\n{SESSION}\n[org]\nregion = \"eu-west-1\"\n[org.every]\nsso_account_id = [\"111111111111\", \"222222222222\"]\nsso_role_name = [\"Admin\", \"ReadOnly\"]\nprofile_name = \"sso-{{sso_role_name}}@{{sso_account_id}}\"\nexpiry_key = \"x_{{sso_role_name}}\"\n\n[org.one]\nsso_account_id = \"333333333333\"\nsso_role_name = \"Admin\"\nsection_name = \"{{sso_account_id}}-admin\"\nassume_role_arn = \"arn:aws:iam::444444444444:role/From-{{section}}\"\n"
    );
    let config = f
        .load_text(&text.replace("expiry_key = \"x_{sso_role_name}\"\n", ""))
        .unwrap();
    let names: Vec<&str> = config.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "111111111111-Admin",
            "111111111111-ReadOnly",
            "222222222222-Admin",
            "222222222222-ReadOnly",
            "333333333333-admin"
        ]
    );
    let second = &config.sections[1];
    assert_eq!(sso(second).account_id, "111111111111");
    assert_eq!(sso(second).role_name, "ReadOnly");
    let settings = second.settings.as_ref().unwrap();
    assert_eq!(settings.profile_name, "sso-ReadOnly@111111111111");
    assert_eq!(settings.region, "eu-west-1", "inherited from the group");
    assert!(second.path.contains("every") && second.path.contains("111111111111/ReadOnly"));
    let last = config.sections[4].settings.as_ref().unwrap();
    assert_eq!(
        last.role.as_ref().unwrap().arn,
        "arn:aws:iam::444444444444:role/From-333333333333-admin",
        "{{section}} is the section's name"
    );
}

#[test]
fn a_template_whose_names_collide_is_an_error_naming_both() {
    let f = Fixture::new();
    let text = format!(
        "sso_session = \"corp\"\n{SESSION}\n[a]\nsso_account_id = [\"111111111111\"]\nsso_role_name = [\"Admin\"]\n[b]\nsso_account_id = [\"111111111111\", \"222222222222\"]\nsso_role_name = \"Admin\"\n"
    );
    let err = f.load_text(&text).unwrap_err().to_string();
    assert!(
        err.contains("111111111111-Admin")
            && err.contains("a(111111111111/Admin)")
            && err.contains("b(111111111111/Admin)"),
        "{err}"
    );
    let err = f
        .load_text(&format!(
            "{SESSION}\n[t]\nsso_session = \"corp\"\nsso_account_id = []\nsso_role_name = \"Admin\"\n"
        ))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(":7:") && err.contains("lists nothing"),
        "{err}"
    );
}

#[test]
fn a_placeholder_a_value_brings_in_is_not_replaced_again() {
    // The role name is the user's text: a `{section}` in it stays (and the
    // byte count made before the copy is exact).
    let f = Fixture::new();
    let text = format!(
        "{SESSION}\n[t]\nsso_session = \"corp\"\nsso_account_id = [\"111111111111\"]\nsso_role_name = [\"{{section}}\"]\nassume_role_external_id = \"{{sso_role_name}}{{sso_role_name}}\"\n"
    );
    let config = f.load_text(&text).unwrap();
    let raw = &config.sections[0].values["assume_role_external_id"].value;
    assert_eq!(*raw, RawValue::String("{section}{section}".into()));
}

#[test]
fn a_huge_cross_product_is_refused_before_it_is_built() {
    let f = Fixture::new();
    let accounts: Vec<String> = (0..3000).map(|i| format!("\"{:012}\"", i)).collect();
    let roles: Vec<String> = (0..3000).map(|i| format!("\"R{i}\"")).collect();
    let text = format!(
        "{SESSION}\n[t]\nsso_session = \"corp\"\nsso_account_id = [{}]\nsso_role_name = [{}]\n",
        accounts.join(","),
        roles.join(",")
    );
    let started = std::time::Instant::now();
    let err = f.load_text(&text).unwrap_err().to_string();
    assert!(err.contains("expands to more than"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn keys_of_both_sources_in_one_section_are_an_error_naming_them() {
    let f = Fixture::new();
    let text = format!(
        "mfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"x\"\n{SESSION}\n[mixed]\nsso_session = \"corp\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"ReadOnly\"\n"
    );
    let config = f.load_text(&text).unwrap();
    let messages = errors(&config.sections[0]).join("\n");
    assert!(
        messages.contains("two session sources")
            && messages.contains("sso_session, sso_account_id, sso_role_name")
            && messages.contains("mfa_serial_number, mfa_process")
            && messages.contains(":8:"),
        "{messages}"
    );
    // In groups of their own, both sources live in one file.
    let text = format!(
        "{SESSION}\n[mfa]\nmfa_serial_number = \"arn:aws:iam::123457890123:mfa/me\"\nmfa_process = \"x\"\n[mfa.key]\n[sso]\nsso_session = \"corp\"\n[sso.dev]\nsso_account_id = \"111122223333\"\nsso_role_name = \"ReadOnly\"\n"
    );
    let config = f.load_text(&text).unwrap();
    assert_eq!(config.valid_sections().count(), 2, "{:?}", config.sections);
    assert!(
        config
            .section("key")
            .unwrap()
            .settings
            .as_ref()
            .unwrap()
            .mfa()
            .is_some()
    );
    assert!(
        config
            .section("dev")
            .unwrap()
            .settings
            .as_ref()
            .unwrap()
            .sso()
            .is_some()
    );
}

#[test]
fn an_sso_session_of_the_aws_config_is_used_when_this_file_has_none() {
    let mut f = Fixture::new();
    let aws = f.write(
        "aws/config",
        "[profile x]\nregion = us-east-1\n\n[sso-session corp]\nsso_start_url = https://d-9999999999.awsapps.com/start\nsso_region = us-east-2\nsso_registration_scopes = sso:account:access,codewhisperer:completions\n",
    );
    f.env
        .insert("AWS_CONFIG_FILE".into(), aws.display().to_string());
    let text = "[dev]\nsso_session = \"corp\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"ReadOnly\"\n";
    let config = f.load_text(text).unwrap();
    let source = sso(&config.sections[0]);
    assert_eq!(
        source.session.start_url,
        "https://d-9999999999.awsapps.com/start"
    );
    assert_eq!(source.session.region, "us-east-2");
    assert_eq!(
        source.session.scopes,
        ["sso:account:access", "codewhisperer:completions"]
    );
    // This file's wins.
    let config = f.load_text(&format!("{SESSION}\n{text}")).unwrap();
    assert_eq!(sso(&config.sections[0]).session.region, "eu-west-1");

    // Neither has it: both places are named, with the line that names it.
    let text = text.replace("\"corp\"", "\"other\"");
    let config = f.load_text(&text).unwrap();
    let messages = errors(&config.sections[0]).join("\n");
    assert!(
        messages.contains("config.toml:2:")
            && messages.contains("sso_session \"other\"")
            && messages.contains("there is no [sso-session other]")
            && messages.contains(&aws.display().to_string())
            && messages.contains("[sso-session.other]"),
        "{messages}"
    );
    // The AWS config's errors name its line.
    std::fs::write(
        &aws,
        "[sso-session corp]\nsso_start_url = https://d-9999999999.awsapps.com/start\nsso_region = Frankfurt\n",
    )
    .unwrap();
    let config = f
        .load_text("[dev]\nsso_session = \"corp\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"ReadOnly\"\n")
        .unwrap();
    let messages = errors(&config.sections[0]).join("\n");
    assert!(
        messages.contains("config line 3") && messages.contains("not an AWS region name"),
        "{messages}"
    );
}

/// Each case: config text, substrings the error of its first section must contain.
const INVALID_SSO: &[(&str, &[&str])] = &[
    (
        "[sso-session.corp]\nsso_start_url = \"d-1.awsapps.com/start\"\nsso_region = \"eu-west-1\"\n[a]\nsso_session = \"corp\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"R\"\n",
        &[
            ":2:",
            "[sso-session.corp]",
            "is not a URL",
            "https://d-XXXXXXXXXX.awsapps.com/start",
        ],
    ),
    (
        "[sso-session.corp]\nsso_start_url = \"https://d-1.awsapps.com/start\"\n[a]\nsso_session = \"corp\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"R\"\n",
        &[":1:", "has no sso_region", "add sso_region"],
    ),
    (
        "[sso-session.corp]\nsso_start_url = \"https://d-1.awsapps.com/start\"\nsso_region = \"eu-west-1\"\nsso_regoin = \"x\"\n[a]\nsso_session = \"corp\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"R\"\n",
        &[":4:", "unknown key", "did you mean sso_region?"],
    ),
    (
        "[sso-session.corp]\nsso_start_url = \"https://d-1.awsapps.com/start\"\nsso_region = \"eu-west-1\"\n[a]\nsso_session = \"corp\"\nsso_account_id = \"11112222333\"\nsso_role_name = \"R\"\n",
        &[":6:", "not an AWS account id", "12-digit"],
    ),
    (
        "[sso-session.corp]\nsso_start_url = \"https://d-1.awsapps.com/start\"\nsso_region = \"eu-west-1\"\n[a]\nsso_session = \"corp\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"Read Only\"\n",
        &[":7:", "role name", "_+=,.@-"],
    ),
    (
        "[sso-session.corp]\nsso_start_url = \"https://d-1.awsapps.com/start\"\nsso_region = \"eu-west-1\"\n[a]\nsso_session = \"corp\"\nsso_account_id = \"111122223333\"\n",
        &[":4:", "sso_role_name is not set"],
    ),
    (
        "[sso-session.corp]\nsso_start_url = \"https://d-1.awsapps.com/start\"\nsso_region = \"eu-west-1\"\n[a]\nsso_session = \"corp\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"R\"\nassume_role_arn = \"arn:aws:iam::111122223333:role/X\"\nassume_session_duration = 7200\n",
        &[
            ":9:",
            "IAM Identity Center role credentials",
            "role chaining",
            "3600 or less",
        ],
    ),
    (
        "[a]\nsso_start_url = \"https://d-1.awsapps.com/start\"\nsso_session = \"corp\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"R\"\n",
        &[":2:", "belongs to an SSO session", "[sso-session.NAME]"],
    ),
];

#[test]
fn sso_errors_name_the_line_and_the_fix() {
    assert_located_errors(INVALID_SSO);
}

#[test]
fn the_sso_session_table_is_reserved() {
    let f = Fixture::new();
    for (text, fragment) in [
        ("sso-session = \"corp\"\n[a]\n", "reserved"),
        (
            "[sso-session]\nsso_region = \"eu-west-1\"\n",
            "holds only named SSO sessions",
        ),
        ("[[sso-session]]\n", "not how SSO sessions are written"),
        ("[sso-session.corp.x]\n", "holds tables"),
    ] {
        let err = f.load_text(text).unwrap_err().to_string();
        assert!(
            err.contains(fragment) && err.contains("[sso-session.NAME]") || err.contains(fragment),
            "{text}: {err}"
        );
        assert!(err.contains("config.toml:"), "{err}");
    }
}
