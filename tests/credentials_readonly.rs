//! A credentials file that is a link into a read-only directory, as
//! home-manager's `programs.awscli.credentials` makes `~/.aws/credentials`
//! (a link into the Nix store): the daemon says what it is, why it cannot
//! be edited and the two ways out, spends no code, and writes nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_aws-session-daemon");

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_link_into_a_read_only_directory_is_refused_with_the_ways_out() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let store = dir.path().join("store");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::create_dir_all(dir.path().join("run")).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    let keys = "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n\
                aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n";
    let target = store.join("credentials");
    std::fs::write(&target, keys).unwrap();
    // What the Nix store looks like: files 0444 in directories 0555 (which
    // root could still write into; the mode says no).
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o555)).unwrap();
    std::os::unix::fs::symlink(&target, home.join(".aws/credentials")).unwrap();
    let marker = dir.path().join("code-spent");
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "region = \"us-east-1\"\nsts_endpoint = \"http://127.0.0.1:9\"\n\
             [prod]\nmfa_serial_number = \"arn:aws:iam::123456789012:mfa/me\"\n\
             mfa_process = \"touch {} && echo 123456\"\n",
            marker.display()
        ),
    )
    .unwrap();
    let before = (listing(&store), listing(&home.join(".aws")));

    let output = Command::new(BIN)
        .args(["apply", "--config"])
        .arg(dir.path().join("config.toml"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", dir.path().join("run"))
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o755)).unwrap();

    assert!(!output.status.success(), "{said}");
    for needle in [
        // What it is.
        "(a link to ",
        "is in a read-only directory",
        // Why it cannot be edited.
        "no program can keep sessions in it",
        // The two ways out.
        "leave programs.awscli.credentials (or the link) out and keep a plain file",
        "or point --credentials-file / AWS_SHARED_CREDENTIALS_FILE at a file the daemon may write",
    ] {
        assert!(said.contains(needle), "{needle:?} missing from:\n{said}");
    }
    assert!(
        !marker.exists(),
        "a code was spent on a file that cannot be written"
    );
    assert_eq!((listing(&store), listing(&home.join(".aws"))), before);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), keys);
    assert!(
        std::fs::symlink_metadata(home.join(".aws/credentials"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}
