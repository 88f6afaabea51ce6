use secrecy::SecretString;
use time::macros::datetime;

use super::*;

fn edited(text: &str, edits: &[Edit]) -> String {
    let mut doc = Document::parse(text);
    for edit in edits {
        doc.apply(edit).unwrap_or_else(|e| panic!("{edit:?}: {e}"));
    }
    doc.render()
}

fn creds() -> SessionCredentials {
    SessionCredentials {
        access_key_id: "ASIAEXAMPLEKEY123456".into(),
        secret_access_key: SecretString::from("secret/key+value"),
        session_token: SecretString::from("FwoGZXIvYXdzEXAMPLETOKEN=="),
        expiration: datetime!(2026-11-25 17:05:00.123 +01:00),
    }
}

#[test]
fn session_edits_write_keys_token_and_expiry() {
    let doc = Document::parse("");
    let edits = doc.session_edits("p", &creds(), "x_security_token_expires");
    let keys: Vec<&str> = edits.iter().map(Edit::key).collect();
    assert_eq!(
        keys,
        [
            "aws_access_key_id",
            "aws_secret_access_key",
            "aws_session_token",
            "x_security_token_expires"
        ]
    );
    assert_eq!(
        edited("", &edits),
        "[p]\naws_access_key_id = ASIAEXAMPLEKEY123456\naws_secret_access_key = secret/key+value\n\
         aws_session_token = FwoGZXIvYXdzEXAMPLETOKEN==\nx_security_token_expires = 2026-11-25T16:05:00Z\n"
    );
}

#[test]
fn a_stale_security_token_is_overwritten_too() {
    let text = "[p]\naws_security_token = stale\n";
    let edits = Document::parse(text).session_edits("p", &creds(), "expiration");
    assert!(edits.iter().any(|e| e.key() == "aws_security_token"));
    let out = edited(text, &edits);
    let doc = Document::parse(&out);
    assert_eq!(
        doc.get("p", "aws_security_token").unwrap(),
        Some("FwoGZXIvYXdzEXAMPLETOKEN==")
    );
    // Inherited from [DEFAULT] by botocore: shadowed in the section itself.
    let text = "[DEFAULT]\naws_security_token = stale\n";
    let edits = Document::parse(text).session_edits("p", &creds(), "expiration");
    let doc = Document::parse(&edited(text, &edits));
    assert_eq!(
        doc.get_inherited("p", "aws_security_token").unwrap(),
        Some("FwoGZXIvYXdzEXAMPLETOKEN==")
    );
    assert_eq!(
        doc.get("DEFAULT", "aws_security_token").unwrap(),
        Some("stale")
    );
}

#[test]
fn debug_never_shows_values() {
    let doc = Document::parse("[p]\naws_secret_access_key = hunter2secret\n");
    let edits = doc.session_edits("p", &creds(), "expiration");
    let debug = format!("{doc:?} {edits:?}");
    assert!(debug.contains("\"p\""));
    for secret in ["hunter2secret", "secret/key+value", "EXAMPLETOKEN"] {
        assert!(!debug.contains(secret), "{debug}");
    }
}

#[test]
fn format_expiry_is_utc_whole_seconds() {
    assert_eq!(
        crate::timestamp::rfc3339(datetime!(2026-11-25 16:05:00.999 UTC)),
        "2026-11-25T16:05:00Z"
    );
    assert_eq!(
        crate::timestamp::rfc3339(datetime!(2026-01-01 00:30:00 +02:00)),
        "2025-12-31T22:30:00Z"
    );
}

#[test]
fn editor_errors_are_classified_by_whether_they_pass() {
    let err = Document::parse("[p]\n")
        .apply(&Edit::set("a b", "k", SecretString::from("v")))
        .unwrap_err();
    assert_eq!(err.retry_class(), RetryClass::NeedsUser);
}
