//! The README's sections about the service files are written.

use crate::read;

#[test]
fn readme_service_sections_are_written() {
    let readme = read("README.md");
    let section = |title: &str| -> String {
        let start = readme
            .find(&format!("\n## {title}\n"))
            .unwrap_or_else(|| panic!("README.md lacks ## {title}"));
        let body = &readme[start + title.len() + 5..];
        body[..body.find("\n## ").unwrap_or(body.len())].to_string()
    };
    for (title, needles) in [
        (
            "Running as a service",
            &[
                "systemctl --user enable --now aws-session-daemon",
                "systemctl --user reload aws-session-daemon",
                "journalctl --user -u aws-session-daemon",
                "pcscd.socket",
                "aws-session-daemon@.service",
                "supervisorctl",
            ][..],
        ),
        (
            "Nix and home-manager",
            &[
                "services.aws-session-daemon",
                "services.pcscd.enable = true",
                "secret_access_key",
            ],
        ),
        (
            "Migrating from the Python original",
            &[
                "--rolearn",
                "--oath_slot",
                "--serialnumber",
                "--profile_name",
                "--config-section",
                "~/.config/aws-credential-process/config.toml",
                "x_security_token_expires",
                "config get",
                "config find",
                "assume_role_role_session_name",
            ],
        ),
    ] {
        let body = section(title);
        assert!(
            !body.contains("(Filled in"),
            "## {title} is still a placeholder"
        );
        for needle in needles {
            assert!(
                body.contains(needle),
                "## {title} does not mention {needle}"
            );
        }
    }
}
