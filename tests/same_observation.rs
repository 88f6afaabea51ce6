//! `plan`, `status`, `apply`, `run` and `credential-process` all plan from one
//! observation of the world (the config, the credentials file, the runtime
//! cache, the keyring's key ids, what the daemon recorded): for a set of
//! states, `plan --json` is exactly the plan the next `run` pass acts on.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/fast_sts.rs"]
mod fast_sts;
#[path = "support/plan_log.rs"]
mod plan_log;
#[path = "support/tools.rs"]
mod tools;

use std::os::unix::fs::PermissionsExt;

use daemon::{Home, accounts, org_config, stderr};
use fast_sts::FastSts;
use plan_log::{first_pass_plan, plan_json, without_the_instant};

/// `plan --json`, then the plan of `run`'s first pass: equal but for the
/// instant. Returns the plan.
fn same_plan(home: &Home, state: &str) -> serde_json::Value {
    let planned = without_the_instant(plan_json(home.command(&[])));
    let acted_on = without_the_instant(first_pass_plan(home.command(&[])));
    assert_eq!(
        planned, acted_on,
        "{state}: plan --json and run's first pass planned differently"
    );
    planned
}

fn actions(plan: &serde_json::Value) -> Vec<String> {
    plan["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}:{}",
                s["state"].as_str().unwrap_or("?"),
                s["action"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[test]
fn plan_json_is_the_plan_run_acts_on() {
    let sts = FastSts::start(3600);
    let accounts = accounts(3);
    let config = org_config(&sts.url, "mfa_process = \"echo 123456\"", &accounts)
        + "\n[process]\nmfa_serial_number = \"arn:aws:iam::123457890123:mfa/user\"\nmfa_process = \"echo 123456\"\noutput = \"process\"\n";
    let config = config.replace(
        "[process]\n",
        &format!(
            "[process]\nsts_endpoint = \"{}\"\nassume_role_arn = \"arn:aws:iam::{}:role/Admin\"\n",
            sts.url, accounts[0]
        ),
    );
    let home = Home::new(&config);

    // Cold: nothing cached, every section to refresh.
    let plan = same_plan(&home, "cold");
    assert!(
        actions(&plan).iter().all(|a| a.starts_with("missing:")),
        "{:?}",
        actions(&plan)
    );
    let output = home.run(&["apply"]);
    assert!(output.status.success(), "{}", stderr(&output));

    // Cache fresh: nothing to do.
    let plan = same_plan(&home, "cache fresh");
    assert!(
        actions(&plan).iter().all(|a| a == "fresh:none"),
        "{:?}",
        actions(&plan)
    );

    // A profile deleted: the cached MFA session serves it, no code.
    let text = home.text();
    let start = text.find(&format!("[{}]", accounts[2])).unwrap();
    home.write_credentials(&text[..start]);
    let plan = same_plan(&home, "a profile deleted");
    assert_eq!(plan["work"]["get_session_token_calls"], 0, "{plan}");
    assert_eq!(plan["work"]["assume_role_calls"], 1, "{plan}");

    // Cache stale: the MFA session gone from the runtime cache, so the
    // deleted profile needs a new one (a code).
    std::fs::remove_file(home.runtime_dir().join("mfa-sessions.json")).unwrap();
    let plan = same_plan(&home, "cache stale");
    assert_eq!(plan["work"]["get_session_token_calls"], 1, "{plan}");

    // The credentials file read-only: the due profile is blocked.
    std::fs::set_permissions(home.credentials(), std::fs::Permissions::from_mode(0o444)).unwrap();
    let plan = same_plan(&home, "read-only");
    assert!(
        actions(&plan).iter().any(|a| a.ends_with(":blocked")),
        "{:?}",
        actions(&plan)
    );

    // The credentials file unreadable (a FIFO in its place): every section
    // needs it (the process section for its long-term keys), so each is
    // invalid, with the reason.
    std::fs::remove_file(home.credentials()).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(home.credentials())
        .status()
        .unwrap();
    assert!(status.success());
    let plan = same_plan(&home, "unreadable");
    let states = actions(&plan);
    assert!(
        states.iter().all(|a| a.starts_with("invalid:")),
        "{states:?}"
    );
    assert!(plan.to_string().contains("FIFO"), "{plan}");
}
