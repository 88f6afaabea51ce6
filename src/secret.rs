//! Secret handling: wrapper types and masking for display.
//!
//! Secret values (secret access keys, session tokens, OATH codes, passwords)
//! live in [`secrecy::SecretString`], whose `Debug` prints a redaction marker
//! and which zeroes its memory on drop. Access key ids are not secret on
//! their own, but they identify a user, so they are only ever shown masked.

pub use secrecy::{ExposeSecret, SecretString};

/// Shows an access key id as its first four and last four characters,
/// e.g. `AKIA…WXYZ`, which is enough to tell keys apart in logs and `plan`.
pub fn mask_access_key_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 8 {
        return "…".to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keeps_only_head_and_tail() {
        assert_eq!(mask_access_key_id("AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
        assert_eq!(mask_access_key_id("short"), "…");
        assert!(!mask_access_key_id("ASIAABCDEFGHIJKLMNOP").contains("EFGH"));
    }
}
