//! IAM Identity Center sections through the binary, as a person uses it:
//! the stand-in (`examples/sso_front`) on 127.0.0.1 with moto behind it
//! (the role credentials are moto's, so GetCallerIdentity names the SSO
//! role in its account), the AWS CLI, botocore and the AWS SDK for Rust as
//! consumers, a private D-Bus with a notification service counting what the
//! daemon tells the desktop, and (for both sources at once) pcscd + vpcd +
//! the virtual YubiKey. A sign-in is approved the way a browser does it.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/dbus_daemon.rs"]
mod dbus_daemon;
#[path = "support/example_bin.rs"]
mod example_bin;
#[path = "support/key_and_sts.rs"]
mod key_and_sts;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/notifications.rs"]
mod notifications;
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

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use daemon::{Home, Running, stderr, wait_until};

/// The SSO session, as `aws configure sso-session` writes it into
/// `~/.aws/config` (the daemon's config names it and defines none).
const AWS_CONFIG: &str = "[sso-session corp]\nsso_start_url = https://d-1234567890.awsapps.com/start\nsso_region = eu-west-1\nsso_registration_scopes = sso:account:access\n";

/// The same session in the daemon's config.
const SESSION: &str = "[sso-session.corp]\nsso_start_url = \"https://d-1234567890.awsapps.com/start\"\nsso_region = \"eu-west-1\"\n";

const ROLE: &str = "ReadOnly";

/// `n` twelve-digit accounts.
fn accounts(n: usize) -> Vec<String> {
    daemon::accounts_from(400_000_000_000, n)
}

/// A template of `accounts` × ReadOnly on the SSO session `corp`; `extra`:
/// more keys of the template.
fn template(accounts: &[String], extra: &str) -> String {
    let list: Vec<String> = accounts.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "[sso]\nsso_session = \"corp\"\nsso_role_name = \"{ROLE}\"\nsso_account_id = [{}]\n{extra}",
        list.join(", ")
    )
}

fn profiles(accounts: &[String]) -> Vec<String> {
    accounts.iter().map(|a| format!("{a}-{ROLE}")).collect()
}

/// moto, the stand-in in front of it, and a HOME with `config`.
struct Rig {
    moto: moto::Moto,
    front: sso_front::SsoFront,
    home: Home,
}

impl Rig {
    fn start(config: &str) -> Rig {
        Rig::start_with(config, moto::Moto::start(), &[])
    }

    fn start_with(config: &str, moto: moto::Moto, front_args: &[&str]) -> Rig {
        let mut args = vec!["--interval-seconds", "1", "--sts-upstream", &moto.url];
        args.extend_from_slice(front_args);
        let front = sso_front::SsoFront::start(&args);
        let home = Home::new(config);
        std::fs::write(home.aws_dir().join("config"), AWS_CONFIG).unwrap();
        Rig { moto, front, home }
    }

    /// The daemon's command, with the stand-in as IAM Identity Center and
    /// moto as STS (for roles chained from the SSO role).
    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.home.command(args);
        command
            .env("AWS_ENDPOINT_URL_SSO_OIDC", &self.front.url)
            .env("AWS_ENDPOINT_URL_SSO", &self.front.url)
            .env("AWS_ENDPOINT_URL_STS", &self.moto.url);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run aws-session-daemon")
    }

    /// `apply`, whose sign-in the person approves meanwhile.
    fn apply_approving(&self) -> Output {
        let apply = self
            .command(&["apply"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        self.approve();
        apply.wait_with_output().unwrap()
    }

    fn daemon(&self, command: Command) -> Running {
        Running::start_logging_to(command, self.home.path().join("daemon.log"))
    }

    /// The token cache file of `corp`, as every AWS tool names it.
    fn token_file(&self) -> PathBuf {
        use sha1::Digest;
        let key: String = sha1::Sha1::digest(b"corp")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.home
            .aws_dir()
            .join("sso/cache")
            .join(format!("{key}.json"))
    }

    fn token_json(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.token_file()).unwrap()).unwrap()
    }

    /// Makes the cached access token expired (its refresh token stays).
    fn expire_token(&self) {
        let mut token = self.token_json();
        token["expiresAt"] = "2020-01-01T00:00:00Z".into();
        std::fs::write(self.token_file(), serde_json::to_vec(&token).unwrap()).unwrap();
    }

    /// Approves the next sign-in (within 30 s); returns its URL.
    fn approve(&self) -> String {
        let url = self.front.wait_for_pending(Duration::from_secs(30));
        sso_front::approve(&url);
        url
    }

    fn plan_work(&self) -> serde_json::Value {
        let output = self.run(&["plan", "--json"]);
        assert!(
            output.status.code().is_some_and(|c| c <= 1),
            "{}",
            stderr(&output)
        );
        let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        plan["work"].clone()
    }
}

/// The caller of `profile` at moto, asked by the AWS CLI, is the SSO role
/// in the account of the profile.
fn assert_sso_role(rig: &Rig, profile: &str, account: &str) {
    let arn = rig.home.caller_arn(profile, &rig.moto.url);
    assert!(
        arn.starts_with(&format!(
            "arn:aws:sts::{account}:assumed-role/AWSReservedSSO_{ROLE}_"
        )),
        "{profile}: {arn}"
    );
}

fn sign_in_lines(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("sign-in needed for SSO session corp"))
        .count()
}

#[test]
fn twenty_sections_cold_cost_one_sign_in_one_token_and_twenty_role_credentials() {
    let accounts = accounts(20);
    let profiles = profiles(&accounts);
    // The session is the one `aws configure sso` wrote in ~/.aws/config.
    let rig = Rig::start(&template(&accounts, ""));
    let work = rig.plan_work();
    assert_eq!(
        (
            &work["sso_sign_ins"],
            &work["sso_token_refreshes"],
            &work["get_role_credentials_calls"]
        ),
        (&1.into(), &0.into(), &20.into()),
        "{work}"
    );
    let mut daemon = rig.daemon(rig.command(&["run"]));
    let url = rig.front.wait_for_pending(Duration::from_secs(30));
    let code = url.split("user_code=").nth(1).unwrap().to_string();

    // While it waits: `status` shows the code and where to enter it, and
    // nothing is written.
    let status = rig.run(&["status"]);
    let text = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        text.contains(&format!("sign-in needed (code {code}, open {url})")),
        "{text}"
    );
    assert!(
        text.contains("as soon as the sign-in is approved"),
        "{text}"
    );
    assert_eq!(rig.home.written(&profiles), 0);

    sso_front::approve(&url);
    let took = wait_until("20 profiles written", Duration::from_secs(30), || {
        rig.home.written(&profiles) == 20
    });
    eprintln!("20 profiles written {took:?} after the approval");
    assert_eq!(rig.front.calls("RegisterClient"), 1);
    assert_eq!(rig.front.calls("StartDeviceAuthorization"), 1);
    assert_eq!(rig.front.outcomes("CreateToken:device_code:ok"), 1);
    assert_eq!(rig.front.calls("CreateToken:refresh_token"), 0);
    assert_eq!(rig.front.calls("GetRoleCredentials"), 20);
    for i in [0, 7, 19] {
        assert_sso_role(&rig, &profiles[i], &accounts[i]);
    }
    daemon::assert_user_text_kept(&rig.home.text());
    let log = daemon.log();
    assert_eq!(sign_in_lines(&log), 1, "{log}");
    assert!(log.contains(&code), "the log line shows the code: {log}");
    let token = rig.token_json();
    let secrets = [
        token["accessToken"].as_str().unwrap().to_string(),
        token["refreshToken"].as_str().unwrap().to_string(),
        token["clientSecret"].as_str().unwrap().to_string(),
    ];
    daemon::assert_no_secret(&log, &secrets, "the daemon's log");
    let status = rig.run(&["status", "--json"]);
    daemon::assert_no_secret(
        &String::from_utf8_lossy(&status.stdout),
        &secrets,
        "status --json",
    );
    // The next pass needs nothing: the plan says so, and the token cache
    // the daemon wrote is 0600, in the AWS tools' format.
    let work = rig.plan_work();
    assert_eq!(work["get_role_credentials_calls"], 0, "{work}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(rig.token_file())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // The AWS CLI (botocore) and the AWS SDK for Rust use that token for
    // a profile of their own: no sign-in, no refresh.
    let mut config = std::fs::read_to_string(rig.home.aws_dir().join("config")).unwrap();
    config.push_str(&format!(
        "\n[profile dev]\nsso_session = corp\nsso_account_id = {}\nsso_role_name = {ROLE}\nregion = us-east-1\n",
        accounts[3]
    ));
    std::fs::write(rig.home.aws_dir().join("config"), config).unwrap();
    let consumer = |program: PathBuf, args: &[&str]| {
        let output = Command::new(program)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", rig.home.path())
            .env("AWS_PROFILE", "dev")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_ENDPOINT_URL_SSO_OIDC", &rig.front.url)
            .env("AWS_ENDPOINT_URL_SSO", &rig.front.url)
            .env("AWS_ENDPOINT_URL_STS", &rig.moto.url)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let cli = consumer(
        tools::aws(),
        &["sts", "get-caller-identity", "--output", "text"],
    );
    let sdk = consumer(example_bin::path("sdk_identity"), &[]);
    for answer in [cli, sdk] {
        assert!(
            answer.contains(&format!(
                "arn:aws:sts::{}:assumed-role/AWSReservedSSO_{ROLE}_",
                accounts[3]
            )),
            "{answer}"
        );
    }
    assert_eq!(rig.front.calls("StartDeviceAuthorization"), 1);
    assert_eq!(rig.front.calls("CreateToken:refresh_token"), 0);
    assert!(daemon.terminate(Duration::from_secs(10)).is_some());
}

#[test]
fn twenty_concurrent_credential_process_calls_without_a_token_cost_one_device_authorization() {
    let accounts = accounts(20);
    let profiles = profiles(&accounts);
    let rig = Rig::start(&format!(
        "{SESSION}\n{}",
        template(&accounts, "output = \"process\"\n")
    ));
    let children: Vec<_> = profiles
        .iter()
        .map(|profile| {
            rig.command(&["credential-process", "--profile", profile])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    rig.approve();
    let mut keys = std::collections::BTreeSet::new();
    let mut shown = 0;
    for (profile, child) in profiles.iter().zip(children) {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{profile}: {}", stderr(&output));
        let json: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{profile}: {e}: {}", stderr(&output)));
        assert_eq!(json["Version"], 1);
        keys.insert(json["AccessKeyId"].as_str().unwrap().to_string());
        shown += usize::from(stderr(&output).contains("Sign in to AWS IAM Identity Center"));
    }
    assert_eq!(keys.len(), 20, "a role session per profile");
    assert_eq!(shown, 1, "one process showed a code of its own");
    assert_eq!(rig.front.calls("StartDeviceAuthorization"), 1);
    assert_eq!(rig.front.calls("RegisterClient"), 1);
    assert_eq!(rig.front.outcomes("CreateToken:device_code:ok"), 1);
    assert_eq!(rig.front.calls("GetRoleCredentials"), 20);
    // The next call is served from the cache: no call at all.
    let output = rig.run(&["credential-process", "--profile", &profiles[5]]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(rig.front.calls("GetRoleCredentials"), 20);
}

#[test]
fn an_expired_access_token_is_refreshed_with_no_device_authorization() {
    let accounts = accounts(2);
    let profiles = profiles(&accounts);
    let rig = Rig::start(&format!("{SESSION}\n{}", template(&accounts, "")));
    // `apply` waits for its sign-in; the person approves it meanwhile.
    let output = rig.apply_approving();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("Sign in to AWS IAM Identity Center"));
    assert_eq!(rig.home.written(&profiles), 2);

    rig.expire_token();
    daemon::delete_profiles(&rig.home.credentials(), &profiles[..1]);
    let work = rig.plan_work();
    assert_eq!(
        (&work["sso_sign_ins"], &work["sso_token_refreshes"]),
        (&0.into(), &1.into()),
        "{work}"
    );
    let output = rig.run(&["apply"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(rig.home.written(&profiles), 2);
    assert_eq!(rig.front.calls("StartDeviceAuthorization"), 1, "no sign-in");
    assert_eq!(rig.front.outcomes("CreateToken:refresh_token:ok"), 1);
    assert!(
        token_expiry(&rig.token_json()["expiresAt"])
            > time::OffsetDateTime::now_utc() + time::Duration::hours(7),
        "the refreshed token is cached"
    );
    assert_sso_role(&rig, &profiles[0], &accounts[0]);
}

/// The access token is refreshed before it expires while every section is
/// fresh: the AWS tools reading the shared cache find it valid, and nobody
/// is asked to sign in. Tokens of 905 s here: due for a refresh 5 s after
/// each is issued (15 minutes before its expiry, botocore's window).
#[test]
fn the_daemon_refreshes_the_access_token_before_it_expires_with_no_section_due() {
    let accounts = accounts(2);
    let profiles = profiles(&accounts);
    let rig = Rig::start_with(
        &format!("{SESSION}\n{}", template(&accounts, "")),
        moto::Moto::start(),
        &["--access-token-seconds", "905"],
    );
    let mut daemon = rig.daemon(rig.command(&["run"]));
    rig.approve();
    wait_until("both profiles", Duration::from_secs(30), || {
        rig.home.written(&profiles) == 2
    });
    let roles = rig.front.calls("GetRoleCredentials");
    let written = rig.home.text();
    wait_until("two refreshes", Duration::from_secs(40), || {
        rig.front.outcomes("CreateToken:refresh_token:ok") >= 2
    });
    assert_eq!(rig.front.calls("StartDeviceAuthorization"), 1, "no sign-in");
    assert_eq!(
        rig.front.calls("GetRoleCredentials"),
        roles,
        "no section was due"
    );
    assert_eq!(
        rig.home.text(),
        written,
        "the credentials file is untouched"
    );
    let expiry = token_expiry(&rig.token_json()["expiresAt"]);
    assert!(
        expiry > time::OffsetDateTime::now_utc() + time::Duration::minutes(14),
        "the cache holds the refreshed token: {expiry}"
    );
    let log = daemon.log();
    assert!(log.contains("access token refreshed"), "{log}");
    assert_eq!(sign_in_lines(&log), 1, "{log}");
    assert!(daemon.terminate(Duration::from_secs(10)).is_some());
}

fn token_expiry(value: &serde_json::Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(
        value.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

#[test]
fn a_refused_refresh_token_ends_in_one_notification_and_credentials_soon_after_the_approval() {
    let accounts = accounts(2);
    let profiles = profiles(&accounts);
    let rig = Rig::start(&format!("{SESSION}\n{}", template(&accounts, "")));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let bus = notifications::start_bus();
    let (_service, mut received) = runtime.block_on(notifications::start_service(&bus.address));
    let mut notified = || {
        let mut summaries = Vec::new();
        while let Ok(note) = received.try_recv() {
            summaries.push(note.summary);
        }
        summaries
            .iter()
            .filter(|s| *s == "Sign in to AWS IAM Identity Center")
            .count()
    };
    let mut command = rig.command(&["run"]);
    command.env("DBUS_SESSION_BUS_ADDRESS", &bus.address);
    let mut daemon = rig.daemon(command);
    rig.approve();
    wait_until("both profiles", Duration::from_secs(30), || {
        rig.home.written(&profiles) == 2
    });
    wait_until("the first notification", Duration::from_secs(10), || {
        notified() == 1
    });

    // Signed out meanwhile: the refresh token is refused, and the token
    // has expired. The profiles are due (deleted).
    rig.front
        .control(serde_json::json!({ "op": "refuse_refresh_tokens" }));
    rig.expire_token();
    daemon::delete_profiles(&rig.home.credentials(), &profiles);
    let url = rig.front.wait_for_pending(Duration::from_secs(30));
    let left = rig.home.text();
    // However often the loop wakes meanwhile (a reload, file events):
    // nothing written, no second sign-in, no second notification.
    for _ in 0..3 {
        // SAFETY: signals our own child.
        unsafe { libc::kill(daemon.pid(), libc::SIGHUP) };
        std::thread::sleep(Duration::from_millis(700));
    }
    let mut count = 0;
    wait_until("the notification", Duration::from_secs(10), || {
        count += notified();
        count >= 1
    });
    std::thread::sleep(Duration::from_secs(1));
    count += notified();
    assert_eq!(count, 1, "one notification for the refused refresh token");
    assert_eq!(rig.home.text(), left, "nothing written while it waits");
    assert_eq!(rig.front.calls("StartDeviceAuthorization"), 2);
    assert_eq!(
        rig.front
            .outcomes("CreateToken:refresh_token:invalid_grant"),
        1
    );
    assert_eq!(sign_in_lines(&daemon.log()), 2, "{}", daemon.log());

    sso_front::approve(&url);
    let approved = Instant::now();
    wait_until(
        "credentials after the approval",
        Duration::from_secs(10),
        || rig.home.written(&profiles) == 2,
    );
    eprintln!("credentials {:?} after the approval", approved.elapsed());
    assert!(approved.elapsed() < Duration::from_secs(5));
    assert_sso_role(&rig, &profiles[1], &accounts[1]);
    assert_eq!(notified(), 0);
    assert!(daemon.terminate(Duration::from_secs(10)).is_some());
}

#[test]
fn a_yubikey_section_and_sso_sections_refresh_independently() {
    let key = key_and_sts::KeyAndSts::start();
    let accounts = accounts(2);
    let profiles = profiles(&accounts);
    let mfa = format!(
        "[mfa]\nmfa_serial_number = \"{}\"\n{}\nsts_endpoint = \"{}\"\nregion = \"us-east-1\"\nmfa_session_duration = 0\nassume_role_arn = \"arn:aws:iam::{{section}}:role/Admin\"\n[mfa.500000000000]\n",
        daemon::SERIAL,
        key.slot,
        key.front.url
    );
    let config = format!("{SESSION}\n{mfa}\n{}", template(&accounts, ""));
    let rig = Rig::start_with(&config, moto::Moto::start(), &[]);
    let yubikey_profile = vec!["500000000000".to_string()];
    let mut daemon = rig.daemon(rig.command(&["run"]));

    // A sign-in waits for the person: the YubiKey section is refreshed (its
    // role assumed with a code: every refresh needs the key).
    let url = rig.front.wait_for_pending(Duration::from_secs(30));
    wait_until("the YubiKey section", Duration::from_secs(60), || {
        rig.home.written(&yubikey_profile) == 1
    });
    assert_eq!(rig.home.written(&profiles), 0);
    let codes = key.card.calculations();
    assert_eq!(codes, 1);

    // The key leaves: the SSO sections are refreshed all the same, within
    // seconds of the approval.
    key.card.unplug();
    pcsc::wait_for_card(pcsc::READER_0, false, Duration::from_secs(5));
    daemon::delete_profiles(&rig.home.credentials(), &yubikey_profile);
    std::thread::sleep(Duration::from_secs(1));
    sso_front::approve(&url);
    let approved = Instant::now();
    let written = daemon::poll_until(Duration::from_millis(20), Duration::from_secs(15), || {
        rig.home.written(&profiles) == 2
    });
    assert!(
        written.is_some(),
        "the SSO sections waited: {}",
        daemon.log()
    );
    assert!(
        approved.elapsed() < Duration::from_secs(10),
        "{:?}",
        approved.elapsed()
    );
    assert_sso_role(&rig, &profiles[0], &accounts[0]);
    // (The YubiKey section may still wait for a TOTP step: its code was
    // used a moment ago. Then it finds no key.)
    wait_until("the absent key reported", Duration::from_secs(60), || {
        daemon.log().contains("YubiKey")
    });
    assert_eq!(rig.home.written(&yubikey_profile), 0, "no key, no code");
    assert_eq!(key.card.calculations(), codes);

    // The key returns: its section is refreshed; the SSO sections are left alone.
    let portal = rig.front.calls("GetRoleCredentials");
    key.card.plug();
    wait_until("the YubiKey section again", Duration::from_secs(60), || {
        rig.home.written(&yubikey_profile) == 1
    });
    assert_eq!(rig.front.calls("GetRoleCredentials"), portal);
    assert_eq!(rig.front.calls("StartDeviceAuthorization"), 1);
    assert!(daemon.terminate(Duration::from_secs(10)).is_some());
}

#[test]
fn errors_a_person_can_act_on_reach_the_log_once_status_and_plan_with_the_fix() {
    // A start URL that is no access portal: the sign-in fails before any
    // code; the SSO session backs off until the user changes something.
    let accounts = accounts(2);
    let moto = moto::Moto::start();
    let rig = Rig::start_with(
        &format!("{SESSION}\n{}", template(&accounts, "")),
        moto,
        &["--not-a-portal"],
    );
    let mut daemon = rig.daemon(rig.command(&["run"]));
    let said =
        "is not an IAM Identity Center access portal in region eu-west-1: check sso_start_url";
    wait_until("the error in the log", Duration::from_secs(30), || {
        daemon.log().contains(said)
    });
    // Reloads retry it (the user may have fixed something): the same error
    // is not logged again.
    for _ in 0..2 {
        // SAFETY: signals our own child.
        unsafe { libc::kill(daemon.pid(), libc::SIGHUP) };
        std::thread::sleep(Duration::from_secs(1));
    }
    let log = daemon.log();
    assert_eq!(log.matches(said).count(), 1, "{log}");
    assert!(rig.front.calls("StartDeviceAuthorization") >= 2, "retried");
    let status = String::from_utf8_lossy(&rig.run(&["status"]).stdout).into_owned();
    assert!(status.contains(said), "{status}");
    let plan = String::from_utf8_lossy(&rig.run(&["plan"]).stdout).into_owned();
    assert!(
        plan.contains("wait: SSO session corp backs off") && plan.contains(said),
        "{plan}"
    );
    assert!(daemon.terminate(Duration::from_secs(10)).is_some());

    // An account and role the person may not use: that section alone,
    // named with both.
    let rig = Rig::start_with(
        &format!("{SESSION}\n{}", template(&accounts, "")),
        moto::Moto::start(),
        &["--forbid", &format!("{}/{ROLE}", accounts[1])],
    );
    let output = rig.apply_approving();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "you may not use account {} with role {ROLE} through sso-session corp",
            accounts[1]
        )) && err.contains("check sso_account_id and sso_role_name"),
        "{err}"
    );
    assert_eq!(rig.home.written(&profiles(&accounts)[..1]), 1);
}
