//! The README's config reference must cover every key the program accepts.

#[test]
fn readme_documents_every_config_key() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for key in aws_session_daemon::config::KEYS {
        assert!(
            readme.contains(&format!("| `{}` |", key.name)),
            "README.md's config reference lacks a row for `{}`",
            key.name
        );
    }
}
