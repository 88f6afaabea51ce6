//! What the daemon trusts, tried with a second local user: a runtime
//! directory or files that belong to someone else, links planted in a
//! shared directory, a lock file that is a link, control characters in a
//! state file. Needs root (as CI runs), to create the user and own files as
//! either.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/fast_sts.rs"]
mod fast_sts;
#[path = "support/tools.rs"]
mod tools;
#[path = "support/users.rs"]
mod users;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Output, Stdio};

use daemon::{Home, accounts, org_config, stderr};
use fast_sts::FastSts;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// `aws-session-daemon ARGS` as `user`, in `home`, with `runtime` as
/// `XDG_RUNTIME_DIR`.
fn run_as(user: &users::TestUser, home: &Home, runtime: &Path, args: &[&str]) -> Output {
    user.command(daemon::binary())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", runtime)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn root_with_another_users_runtime_dir_neither_trusts_nor_writes_it() {
    // `sudo -E`: root runs with the user's XDG_RUNTIME_DIR, in which the
    // user (or whoever owns it) left an MFA session cache.
    let user = users::second_user();
    let sts = FastSts::start(3600);
    let profiles = accounts(2);
    let home = Home::new(&org_config(
        &sts.url,
        "mfa_process = \"echo 123456\"",
        &profiles,
    ));
    let runtime = home.path().join("run");
    let dir = runtime.join("aws-session-daemon");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    // A planted session for the very key the config uses.
    let planted = format!(
        r#"{{"sessions":[{{"access_key_id":"{}","mfa_serial_number":"{}","duration":43200,"region":"us-east-1","endpoint":"{}","session_access_key_id":"ASIAPLANTEDPLANTED00","session_secret_access_key":"planted-secret","session_token":"planted-token","expiration":"2099-01-01T00:00:00Z"}}],"last_steps":{{}}}}"#,
        daemon::LONG_TERM_ID,
        daemon::SERIAL,
        sts.url
    );
    std::fs::write(dir.join("mfa-sessions.json"), planted).unwrap();
    std::fs::set_permissions(
        dir.join("mfa-sessions.json"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    user.own(&runtime);

    let output = home.run(&["apply"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains(&dir.display().to_string()),
        "names the path: {err}"
    );
    assert!(
        err.contains(&format!("belongs to uid {}", user.uid)),
        "says why: {err}"
    );
    assert!(err.contains("XDG_RUNTIME_DIR"), "says what to do: {err}");
    assert_eq!(
        sts.calls("GetSessionToken"),
        1,
        "its own MFA session, not the planted one"
    );
    assert!(!home.text().contains("ASIAPLANTED"));
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["mfa-sessions.json"], "nothing written there");
    assert_eq!(std::fs::metadata(&dir).unwrap().uid(), user.uid);

    // `status` reads nothing from it either, and says so.
    let state = dir.join("state.json");
    std::fs::write(
        &state,
        "{\"sections\":{\"x\":{\"last_error\":\"\\u001b]0;pwned\\u0007\"}}}",
    )
    .unwrap();
    user.own(&state);
    let output = home.run(&["status"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        stderr(&output)
    );
    assert!(!text.contains("pwned"), "{text}");
    assert!(text.contains("ignoring the daemon's state file"), "{text}");
}

#[test]
fn a_link_planted_in_a_shared_runtime_dir_is_refused_and_its_target_untouched() {
    // XDG_RUNTIME_DIR points at a world-writable directory (a misconfigured
    // host, /tmp): someone planted `aws-session-daemon` there as a link to a
    // directory of the victim's. The daemon runs as the victim.
    let victim = users::second_user();
    let sts = FastSts::start(3600);
    let home = Home::new(&org_config(
        &sts.url,
        "mfa_process = \"echo 123456\"",
        &accounts(1),
    ));
    let shared = home.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let target = home.path().join("public");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(&target, shared.join("aws-session-daemon")).unwrap();
    victim.own(home.path());
    // The planter (root here) keeps the shared dir and the link.
    std::os::unix::fs::lchown(shared.join("aws-session-daemon"), Some(0), Some(0)).unwrap();
    std::os::unix::fs::chown(&shared, Some(0), Some(0)).unwrap();

    let output = run_as(&victim, &home, &shared, &["apply"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("is a symbolic link"), "{err}");
    assert!(err.contains("aws-session-daemon"), "{err}");
    assert_eq!(mode(&target), 0o755, "the link's target keeps its mode");
    assert_eq!(
        std::fs::read_dir(&target).unwrap().count(),
        0,
        "nothing written through the link"
    );
}

#[test]
fn an_unusable_runtime_dir_is_named_with_the_reason() {
    let sts = FastSts::start(3600);
    let home = Home::new(&org_config(
        &sts.url,
        "mfa_process = \"echo 123456\"",
        &accounts(1),
    ));
    let output = home
        .command(&["apply"])
        .env("XDG_RUNTIME_DIR", "/nonexistent/run")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("/nonexistent/run/aws-session-daemon"), "{err}");
    assert!(err.contains("/nonexistent/run does not exist"), "{err}");
    assert!(!err.contains("os error 1)\n"), "{err}");
}

#[test]
fn a_lock_file_that_is_a_link_is_refused() {
    let sts = FastSts::start(3600);
    let home = Home::new(&org_config(
        &sts.url,
        "mfa_process = \"echo 123456\"",
        &accounts(1),
    ));
    let victim = home.path().join("victim");
    std::os::unix::fs::symlink(&victim, home.aws_dir().join("credentials.lock")).unwrap();
    let before = home.text();
    let output = home.run(&["apply"]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("credentials.lock"), "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert!(!victim.exists(), "nothing created through the link");
    assert_eq!(home.text(), before);
}

#[test]
fn status_escapes_control_characters() {
    let sts = FastSts::start(3600);
    let home = Home::new(&org_config(
        &sts.url,
        "mfa_process = \"echo 123456\"",
        &accounts(1),
    ));
    let dir = home.runtime_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let section = &accounts(1)[0];
    std::fs::write(
        dir.join("state.json"),
        format!(
            "{{\"sections\":{{\"{section}\":{{\"last_error\":\"bad \\u001b]0;pwned\\u0007 thing\",\"last_error_at\":\"2026-11-25T12:00:00Z\"}}}}}}"
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        dir.join("state.json"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let output = home.run(&["status"]);
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        !out.contains('\u{1b}'),
        "a raw escape reached the terminal: {out:?}"
    );
    assert!(out.contains("bad \\u{1b}]0;pwned\\u{7} thing"), "{out}");
}
