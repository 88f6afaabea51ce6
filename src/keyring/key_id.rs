//! The shape of what goes into the keyring, checked before anything is
//! stored, so that a typo or a pasted session key fails at `keyring set`
//! rather than at the next STS call.

/// Why an access key id cannot be a long-term key. The messages quote the
/// id only masked: it identifies a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyIdError {
    #[error("the access key id is empty")]
    Empty,
    /// `ASIA…` ids belong to temporary credentials (a session token
    /// goes with them), which expire and cannot make MFA sessions.
    #[error(
        "access key id {masked} is a temporary (session) key, which expires; \
         store your IAM user's long-term key (AKIA…) from the IAM console"
    )]
    Temporary { masked: String },
    #[error(
        "access key id {masked} is not a long-term access key id: expected AKIA followed by capital letters \
         and digits, 16 to 128 characters in all ({problem})"
    )]
    Shape {
        masked: String,
        problem: &'static str,
    },
}

/// Checks that `id` looks like an IAM user's long-term access key id:
/// `AKIA` and then capital letters and digits, 16 to 128 characters
/// (IAM's documented bounds; today's ids have 20).
pub fn check_long_term_key_id(id: &str) -> Result<(), KeyIdError> {
    let masked = || crate::secret::mask_access_key_id(id);
    let shape = |problem| KeyIdError::Shape {
        masked: masked(),
        problem,
    };
    if id.is_empty() {
        return Err(KeyIdError::Empty);
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(shape("it has other characters"));
    }
    if id.starts_with("ASIA") {
        return Err(KeyIdError::Temporary { masked: masked() });
    }
    if !id.starts_with("AKIA") {
        return Err(shape("it does not start with AKIA"));
    }
    if !(16..=128).contains(&id.len()) {
        return Err(shape("its length is out of range"));
    }
    Ok(())
}

/// Checks a secret access key without ever quoting it: one line of
/// printable ASCII, as IAM issues them (40 characters of base64 today).
pub(crate) fn check_secret_access_key(secret: &str) -> Result<(), &'static str> {
    if secret.is_empty() {
        Err("is empty")
    } else if secret.len() > 256 {
        Err("is longer than 256 characters")
    } else if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        Err("contains spaces, control characters or non-ASCII characters")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_term_ids_pass() {
        assert_eq!(check_long_term_key_id("AKIAIOSFODNN7EXAMPLE"), Ok(()));
        assert_eq!(check_long_term_key_id("AKIA012345678901"), Ok(()));
        assert_eq!(
            check_long_term_key_id(&format!("AKIA{}", "A".repeat(124))),
            Ok(())
        );
    }

    #[test]
    fn temporary_ids_are_refused_by_name() {
        let error = check_long_term_key_id("ASIAIOSFODNN7EXAMPLE").unwrap_err();
        assert!(matches!(error, KeyIdError::Temporary { .. }));
        let text = error.to_string();
        assert!(text.contains("temporary"), "{text}");
        assert!(!text.contains("IOSFODNN7"), "the id is masked: {text}");
    }

    #[test]
    fn bad_shapes_are_refused() {
        for id in [
            "akiaiosfodnn7example",
            "AKIA IOSFODNN7EXAMPLE",
            "AIDAIOSFODNN7EXAMPLE",
            "AKIA0123456789",
            "AKIAIOSFODNN7EXAMPLE\n",
        ] {
            assert!(
                matches!(check_long_term_key_id(id), Err(KeyIdError::Shape { .. })),
                "{id:?}"
            );
        }
        assert_eq!(check_long_term_key_id(""), Err(KeyIdError::Empty));
        let long = format!("AKIA{}", "A".repeat(125));
        assert!(check_long_term_key_id(&long).is_err());
    }

    #[test]
    fn secrets_are_checked_without_quoting() {
        assert!(check_secret_access_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").is_ok());
        assert!(check_secret_access_key("").is_err());
        assert!(check_secret_access_key("has space").is_err());
        assert!(check_secret_access_key("tab\there").is_err());
        assert!(check_secret_access_key(&"x".repeat(257)).is_err());
    }
}
