//! `config aws-config --write`: the `credential_process` entries land where
//! botocore (the AWS CLI) reads them, next to what the user had, checked by
//! botocore's own config loader reading the result.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/tools.rs"]
mod tools;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use daemon::{Home, stderr};

/// A config whose sections (named `sections`, each with its profile name)
/// hand out their sessions through credential_process.
fn process_config(profiles: &[(&str, &str)]) -> String {
    let mut config = String::from(
        "mfa_serial_number = \"arn:aws:iam::123456789012:mfa/me\"\nmfa_process = \"echo 123456\"\nregion = \"us-east-1\"\noutput = \"process\"\ncredentials_section = \"longterm\"\n\n[[org]]\nassume_role_arn = \"arn:aws:iam::{section}:role/Admin\"\n",
    );
    for (account, profile) in profiles {
        config.push_str(&format!(
            "[[org.{account}]]\nprofile_name = \"{profile}\"\n"
        ));
    }
    config
}

/// The profiles botocore's config loader (`load_config`, which the AWS CLI
/// uses) makes of the file: name -> settings.
fn botocore_profiles(path: &Path) -> serde_json::Value {
    let script = "import json, sys\nfrom botocore.configloader import load_config\nprint(json.dumps(load_config(sys.argv[1])['profiles']))";
    let output = Command::new(tools::python3())
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("the project's python3 runs");
    assert!(
        output.status.success(),
        "botocore could not read {}: {} ({})",
        path.display(),
        String::from_utf8_lossy(&output.stderr),
        tools::INSTALL
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn write(home: &Home, args: &[&str]) -> std::process::Output {
    let mut all = vec!["config", "aws-config", "--write"];
    all.extend_from_slice(args);
    home.run(&all)
}

fn command_of(profile: &str) -> String {
    let exe = Path::new(daemon::binary()).canonicalize().unwrap();
    format!("{} credential-process --profile {profile}", exe.display())
}

/// The `default` profile is `[default]` for botocore: the entry goes there,
/// and the user's region and output stay what botocore reads (a
/// `[profile default]` after it replaced the whole profile).
#[test]
fn the_default_profile_keeps_the_users_settings() {
    let home = Home::new(&process_config(&[("123456789012", "default")]));
    let config = home.aws_dir().join("config");
    let mine =
        "[default]\nregion = eu-west-1\noutput = json\n\n[profile other]\nregion = us-west-2\n";
    std::fs::write(&config, mine).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = write(&home, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(!text.contains("[profile default]"), "{text}");
    let profiles = botocore_profiles(&config);
    let default = &profiles["default"];
    assert_eq!(default["region"], "eu-west-1", "{text}");
    assert_eq!(default["output"], "json", "{text}");
    assert_eq!(
        default["credential_process"],
        command_of("default"),
        "{text}"
    );
    assert_eq!(profiles["other"]["region"], "us-west-2");
    // The config file is not a secret: it keeps the mode its owner gave it.
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
}

/// `[profile  p]` and `[profile "p"]` are profile `p` for botocore: the
/// entry goes into the one the SDKs read as `p` too, and a header only
/// botocore reads as `p` is refused with the header to write instead.
#[test]
fn headers_are_matched_the_way_botocore_matches_them() {
    let home = Home::new(&process_config(&[("123456789012", "work")]));
    let config = home.aws_dir().join("config");
    std::fs::write(&config, "[profile  work]\nregion = eu-west-1\n").unwrap();
    let output = write(&home, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = std::fs::read_to_string(&config).unwrap();
    assert_eq!(text.matches("work]").count(), 1, "{text}");
    let profiles = botocore_profiles(&config);
    assert_eq!(profiles["work"]["region"], "eu-west-1", "{text}");
    assert_eq!(profiles["work"]["credential_process"], command_of("work"));

    let quoted = "[profile \"work\"]\nregion = eu-west-1\n";
    std::fs::write(&config, quoted).unwrap();
    let output = write(&home, &[]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("[profile \"work\"]") && message.contains("[profile work]"),
        "{message}"
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), quoted);
    assert_eq!(botocore_profiles(&config)["work"]["region"], "eu-west-1");
}

/// A profile name with a space or a quote is read differently by botocore
/// (a shell split) and the SDKs: refused, the file untouched.
#[test]
fn profile_names_the_readers_split_differently_are_refused() {
    for profile in ["my work", "work\\\"x"] {
        let home = Home::new(&process_config(&[("123456789012", profile)]));
        let config = home.aws_dir().join("config");
        std::fs::write(&config, "[default]\nregion = eu-west-1\n").unwrap();
        let output = write(&home, &[]);
        assert!(!output.status.success(), "{profile}");
        let message = stderr(&output);
        assert!(
            message.contains("cannot be written to the AWS config file")
                && !message.contains("credentials file"),
            "{profile}: {message}"
        );
        assert_eq!(
            std::fs::read_to_string(&config).unwrap(),
            "[default]\nregion = eu-west-1\n"
        );
    }
}

/// Another program's credential_process is not replaced without --force.
#[test]
fn another_programs_credential_process_needs_force() {
    let home = Home::new(&process_config(&[("123456789012", "work")]));
    let config = home.aws_dir().join("config");
    let theirs = "[profile work]\ncredential_process = aws-vault export --format=json work\n";
    std::fs::write(&config, theirs).unwrap();
    let output = write(&home, &[]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("[profile work]") && message.contains("--force"),
        "{message}"
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), theirs);

    let output = write(&home, &["--force"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("replaced another program's"), "{said}");
    assert_eq!(
        botocore_profiles(&config)["work"]["credential_process"],
        command_of("work")
    );
    // Its own entry again: no --force needed, nothing to write.
    let output = write(&home, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("already up to date"));
}

/// A dangling `~/.aws/config` link into a missing directory: no directory
/// is created where it points, and the error names the config file's
/// option, not the credentials file's.
#[test]
fn a_dangling_config_link_creates_no_directories() {
    let home = Home::new(&process_config(&[("123456789012", "work")]));
    let config = home.aws_dir().join("config");
    let elsewhere = home.path().join("dotfiles/aws/config");
    std::os::unix::fs::symlink(&elsewhere, &config).unwrap();
    let output = write(&home, &[]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        !home.path().join("dotfiles").exists(),
        "created the link's directories: {message}"
    );
    assert!(message.contains("does not exist"), "{message}");
    assert!(!message.contains("--credentials-file"), "{message}");
    assert!(
        !message.contains("AWS_SHARED_CREDENTIALS_FILE"),
        "{message}"
    );
}
