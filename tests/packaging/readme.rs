//! The manual's pages about the service files are written.

use crate::read;

#[test]
fn manual_service_pages_are_written() {
    let section = |page: &str| -> String {
        let text = read(page);
        assert!(text.starts_with("# "), "{page} has no title");
        text
    };
    for (title, needles) in [
        (
            "docs/services.md",
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
            "docs/nix.md",
            &[
                "services.aws-session-daemon",
                "services.pcscd.enable = true",
                "secret_access_key",
            ],
        ),
        (
            "docs/migration.md",
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
