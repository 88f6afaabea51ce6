//! The dry run tells the truth: for each scenario, `plan --json` says what a
//! pass will cost (YubiKey codes, GetSessionToken, AssumeRole, section by
//! section; sign-ins, token refreshes and GetRoleCredentials for IAM
//! Identity Center), then `apply` runs against the virtual YubiKey (pcscd +
//! vpcd), the counting STS front before moto and the IAM Identity Center
//! stand-in, and what the daemon did must be exactly what the plan said.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/example_bin.rs"]
mod example_bin;
#[path = "support/key_and_sts.rs"]
mod key_and_sts;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/pcsc.rs"]
mod pcsc;
#[path = "support/sso_front.rs"]
mod sso_front;
#[path = "support/sts_front.rs"]
mod sts_front;
#[path = "support/tools.rs"]
mod tools;
#[path = "support/vcard.rs"]
mod vcard;

use std::collections::BTreeMap;

use daemon::{Home, SERIAL, accounts, org_config, stderr};

/// What a pass costs, as the plan predicts it or as the counters saw it.
#[derive(Debug, PartialEq, Eq)]
struct Cost {
    codes: u64,
    get_session_token: u64,
    /// AssumeRole calls per role ARN.
    roles: BTreeMap<String, u64>,
}

/// `plan --json` in `home`, with more environment `env`.
fn plan_json(home: &Home, env: &[(&str, &str)]) -> serde_json::Value {
    let mut command = home.command(&["plan", "--json"]);
    command.envs(env.iter().copied());
    let output = command.output().expect("run plan");
    assert!(
        output.status.code().is_some_and(|c| c <= 1),
        "plan failed: {}",
        stderr(&output)
    );
    serde_json::from_slice(&output.stdout).expect("plan --json")
}

fn planned(home: &Home) -> (Cost, serde_json::Value) {
    let plan = plan_json(home, &[]);
    let work = &plan["work"];
    let codes = work["codes"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    let mut roles = BTreeMap::new();
    for section in plan["sections"].as_array().unwrap() {
        if let Some(arn) = section["role_arn"].as_str()
            && section["action"]
                .as_str()
                .unwrap()
                .starts_with("assume-role")
        {
            *roles.entry(arn.to_string()).or_default() += 1;
        }
    }
    assert_eq!(
        roles.values().sum::<u64>(),
        work["assume_role_calls"].as_u64().unwrap(),
        "the plan's total is the sum of its sections"
    );
    let cost = Cost {
        codes,
        get_session_token: work["get_session_token_calls"].as_u64().unwrap(),
        roles,
    };
    (cost, plan)
}

/// AssumeRole calls per role ARN the STS front counted.
fn roles_at(front: &sts_front::StsFront) -> BTreeMap<String, u64> {
    front.stats()["roles"]
        .as_object()
        .map(|roles| {
            roles
                .iter()
                .map(|(arn, n)| (arn.clone(), n.as_u64().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

fn observed(card: &pcsc::VirtualCard, codes_before: u64, front: &sts_front::StsFront) -> Cost {
    let stats = front.stats();
    let roles = roles_at(front);
    Cost {
        codes: card.calculations() - codes_before,
        get_session_token: stats["actions"]["GetSessionToken"].as_u64().unwrap_or(0),
        roles,
    }
}

fn role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/Admin")
}

/// Drops the profile `[name]` (to the next header) from the file, as an
/// editor would save it (rename over).
fn delete_profile(home: &Home, name: &str) {
    let text = home.text();
    let header = format!("[{name}]\n");
    let start = text.find(&header).expect("profile present");
    let end = text[start + header.len()..]
        .find("\n[")
        .map_or(text.len(), |i| start + header.len() + i + 1);
    let without = format!("{}{}", &text[..start], &text[end..]);
    let temp = home.credentials().with_extension("swp");
    std::fs::write(&temp, without).unwrap();
    std::fs::rename(temp, home.credentials()).unwrap();
}

/// Makes every cached MFA session look expired (the runtime cache is the
/// daemon's own JSON file, 0600 in the test HOME's runtime dir).
fn expire_cached_sessions(home: &Home) {
    let path = home.runtime_dir().join("mfa-sessions.json");
    let mut cache: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for session in cache["sessions"].as_array_mut().unwrap() {
        session["expiration"] = "2020-01-01T00:00:00Z".into();
    }
    std::fs::write(&path, serde_json::to_vec(&cache).unwrap()).unwrap();
}

#[test]
fn what_plan_says_is_what_apply_does() {
    let rig = key_and_sts::KeyAndSts::start();
    let (card, front) = (&rig.card, &rig.front);
    let slot = format!("mfa_oath_slot = \"{}\"", vcard::AWS);
    let accounts = accounts(20);
    let config = org_config(&front.url, &slot, &accounts);
    let home = Home::new(&config);

    type Setup<'a> = Box<dyn Fn(&Home) + 'a>;
    let scenarios: Vec<(&str, Setup, bool)> = vec![
        ("cold start, 20 roles on one device", Box::new(|_| {}), true),
        (
            "cached MFA session, every profile fresh",
            Box::new(|_| {}),
            true,
        ),
        (
            "one profile deleted",
            Box::new(|home| delete_profile(home, &accounts[3])),
            true,
        ),
        (
            "one section's role changed in the config",
            Box::new(|home| {
                let changed = config.replace(
                    &format!("[[org.{}]]\n", accounts[5]),
                    &format!(
                        "[[org.{}]]\nassume_role_arn = \"arn:aws:iam::{}:role/ReadOnly\"\n",
                        accounts[5], accounts[5]
                    ),
                );
                assert_ne!(changed, config);
                home.write_config(&changed);
            }),
            true,
        ),
        (
            "expired MFA session, two profiles deleted, the changed role changed back",
            Box::new(|home| {
                home.write_config(&config);
                expire_cached_sessions(home);
                delete_profile(home, &accounts[0]);
                delete_profile(home, &accounts[19]);
            }),
            true,
        ),
    ];

    let mut history = Vec::new();
    for (name, setup, succeeds) in &scenarios {
        setup(&home);
        front.reset_stats();
        let card_ref = card;
        let before = card_ref.calculations();
        let (plan, json) = planned(&home);
        let output = home.run(&["apply"]);
        assert_eq!(
            output.status.success(),
            *succeeds,
            "{name}: apply: {}",
            stderr(&output)
        );
        let did = observed(card_ref, before, front);
        eprintln!("{name}: planned {plan:?}");
        assert_eq!(
            did, plan,
            "{name}: the daemon did other work than `plan` said:\n{json:#}"
        );
        history.push((name.to_string(), plan));
    }

    // What each scenario cost, as a check that the scenarios test something.
    let costs: Vec<(u64, u64, u64)> = history
        .iter()
        .map(|(_, c)| (c.codes, c.get_session_token, c.roles.values().sum()))
        .collect();
    assert_eq!(
        costs,
        [(1, 1, 20), (0, 0, 0), (0, 0, 1), (0, 0, 1), (1, 1, 3)],
        "{history:#?}"
    );
    assert!(
        history[3]
            .1
            .roles
            .contains_key(&format!("arn:aws:iam::{}:role/ReadOnly", accounts[5])),
        "the changed role is assumed: {history:#?}"
    );
    assert!(history[2].1.roles.contains_key(&role(&accounts[3])));

    // After the passes, with the MFA session cached: `plan` needs no code.
    let (after, _) = planned(&home);
    assert_eq!(after.codes, 0);

    // A key absent: the dry run (which touches no key) still plans one code;
    // `apply` spends none, calls STS not at all, and says what to do.
    expire_cached_sessions(&home);
    delete_profile(&home, &accounts[1]);
    let (plan, _) = planned(&home);
    assert_eq!((plan.codes, plan.get_session_token), (1, 1));
    let calculations = card.calculations();
    card.unplug(); // the virtual key leaves the reader
    pcsc::wait_for_card(pcsc::READER_0, false, std::time::Duration::from_secs(5));
    front.reset_stats();
    let output = home.run(&["apply"]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("YubiKey"), "{err}");
    assert_eq!(front.stats()["total"], 0, "no STS call without a code");
    assert_eq!(card.calculations(), calculations);
    eprintln!("key absent: {calculations} codes before, none since; apply said: {err}");
}

#[test]
fn a_direct_assume_role_section_costs_the_codes_planned() {
    let rig = key_and_sts::KeyAndSts::start();
    let (card, front) = (&rig.card, &rig.front);
    let config = format!(
        "mfa_serial_number = \"{SERIAL}\"\nmfa_oath_slot = \"{}\"\nsts_endpoint = \"{}\"\nregion = \"us-east-1\"\n\n[direct]\nmfa_session_duration = 0\nassume_session_duration = 7200\nassume_role_arn = \"{}\"\n",
        vcard::AWS,
        front.url,
        role("311111111111")
    );
    let home = Home::new(&config);
    let before = card.calculations();
    let (plan, json) = planned(&home);
    let output = home.run(&["apply"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let did = observed(card, before, front);
    assert_eq!(did, plan, "{json:#}");
    assert_eq!(
        (plan.codes, plan.get_session_token, plan.roles.len()),
        (1, 0, 1)
    );
    assert_eq!(
        front.stats()["last_params"]["AssumeRole"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| *p == "TokenCode" || *p == "SerialNumber")
            .count(),
        2,
        "a direct AssumeRole carries the code"
    );
}

/// What a pass costs at IAM Identity Center (and the roles chained from
/// its credentials, at STS).
#[derive(Debug, PartialEq, Eq)]
struct SsoCost {
    sign_ins: u64,
    refreshes: u64,
    role_credentials: u64,
    roles: BTreeMap<String, u64>,
}

fn sso_planned(home: &Home, env: &[(&str, &str)]) -> SsoCost {
    let plan = plan_json(home, env);
    let work = &plan["work"];
    let count = |key: &str| work[key].as_u64().unwrap();
    let mut roles = BTreeMap::new();
    let mut role_credentials = 0;
    for section in plan["sections"].as_array().unwrap() {
        match section["action"].as_str().unwrap() {
            "sso-role-credentials" => role_credentials += 1,
            "assume-role-from-sso-role" => {
                role_credentials += 1;
                *roles
                    .entry(section["role_arn"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
            _ => {}
        }
    }
    assert_eq!(
        role_credentials,
        count("get_role_credentials_calls"),
        "{plan:#}"
    );
    assert_eq!(roles.values().sum::<u64>(), count("assume_role_calls"));
    assert_eq!(
        count("sso_sign_ins"),
        plan["sso_sessions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["needs"] == "sign-in")
            .count() as u64
    );
    SsoCost {
        sign_ins: count("sso_sign_ins"),
        refreshes: count("sso_token_refreshes"),
        role_credentials,
        roles,
    }
}

fn sso_observed(sso: &sso_front::SsoFront, sts: &sts_front::StsFront) -> SsoCost {
    let stats = sso.stats();
    let count = |op: &str| stats["calls"][op].as_u64().unwrap_or(0);
    SsoCost {
        sign_ins: count("StartDeviceAuthorization"),
        refreshes: count("CreateToken:refresh_token"),
        role_credentials: count("GetRoleCredentials"),
        roles: roles_at(sts),
    }
}

#[test]
fn what_plan_says_is_what_apply_does_for_sso_sections() {
    let moto = moto::Moto::start();
    let sts = sts_front::StsFront::start(&moto.url, &[]);
    let sso = sso_front::SsoFront::start(&["--interval-seconds", "1", "--sts-upstream", &moto.url]);
    let accounts = daemon::accounts_from(600_000_000_000, 20);
    let list: Vec<String> = accounts.iter().map(|a| format!("\"{a}\"")).collect();
    let config = format!(
        "sso_session = \"corp\"\nsts_endpoint = \"{}\"\nregion = \"us-east-1\"\n\n[sso-session.corp]\nsso_start_url = \"https://d-1234567890.awsapps.com/start\"\nsso_region = \"eu-west-1\"\n\n[every]\nsso_role_name = \"ReadOnly\"\nsso_account_id = [{}]\n\n[deploy]\nsso_account_id = \"{}\"\nsso_role_name = \"Admin\"\nassume_role_arn = \"arn:aws:iam::{}:role/Deploy\"\n",
        sts.url,
        list.join(", "),
        accounts[0],
        accounts[1],
    );
    let home = Home::new(&config);
    let env = [
        ("AWS_ENDPOINT_URL_SSO_OIDC", sso.url.as_str()),
        ("AWS_ENDPOINT_URL_SSO", sso.url.as_str()),
    ];
    let profile = |i: usize| format!("{}-ReadOnly", accounts[i]);
    let token_file = || {
        let dir = home.aws_dir().join("sso/cache");
        std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "json"))
            .expect("the token cache")
    };

    type Setup<'a> = Box<dyn Fn() + 'a>;
    let scenarios: Vec<(&str, Setup)> = vec![
        (
            "cold start, 20 roles and a chained one on one SSO session",
            Box::new(|| {}),
        ),
        ("token cached, every profile fresh", Box::new(|| {})),
        (
            "one profile deleted",
            Box::new(|| delete_profile(&home, &profile(3))),
        ),
        (
            "access token expired, two profiles and the chained one deleted",
            Box::new(|| {
                let path = token_file();
                let mut token: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
                token["expiresAt"] = "2020-01-01T00:00:00Z".into();
                std::fs::write(&path, serde_json::to_vec(&token).unwrap()).unwrap();
                delete_profile(&home, &profile(0));
                delete_profile(&home, &profile(19));
                delete_profile(&home, "deploy");
            }),
        ),
    ];
    let mut history = Vec::new();
    for (name, setup) in &scenarios {
        setup();
        sso.control(serde_json::json!({"op": "reset_stats"}));
        sts.reset_stats();
        let plan = sso_planned(&home, &env);
        let mut apply = home.command(&["apply"]);
        apply
            .envs(env)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let child = apply.spawn().unwrap();
        if plan.sign_ins > 0 {
            sso_front::approve(&sso.wait_for_pending(std::time::Duration::from_secs(30)));
        }
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{name}: apply: {}",
            stderr(&output)
        );
        let did = sso_observed(&sso, &sts);
        eprintln!("{name}: planned {plan:?}");
        assert_eq!(
            did, plan,
            "{name}: the daemon did other work than `plan` said"
        );
        history.push(plan);
    }
    let costs: Vec<(u64, u64, u64, u64)> = history
        .iter()
        .map(|c| {
            (
                c.sign_ins,
                c.refreshes,
                c.role_credentials,
                c.roles.values().sum(),
            )
        })
        .collect();
    assert_eq!(
        costs,
        [(1, 0, 21, 1), (0, 0, 0, 0), (0, 0, 1, 0), (0, 1, 3, 1)],
        "{history:#?}"
    );
}
