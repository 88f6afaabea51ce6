//! Bearer tokens: one for every section, and optionally one per section.
//!
//! A token is 32 bytes from the operating system's random source, written
//! as 64 hex digits: what the SDKs send verbatim as the `Authorization`
//! header (they read the file named by
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`; a trailing newline would make
//! the Rust SDK refuse it as a header value, so there is none). New tokens
//! are made at every start: a token file copied out of an earlier run is
//! worth nothing. Comparisons take the same time whatever the presented
//! value (`subtle`), so that the answer's timing tells nothing about how
//! much of a guess was right.

use std::collections::BTreeMap;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

const TOKEN_BYTES: usize = 32;

/// One bearer token. Its `Debug` shows nothing of it.
pub(crate) struct Token(Zeroizing<String>);

impl Token {
    /// A new token from the OS random source.
    pub(crate) fn generate() -> Result<Token, getrandom::Error> {
        let mut bytes = Zeroizing::new([0u8; TOKEN_BYTES]);
        getrandom::fill(bytes.as_mut())?;
        let mut text = Zeroizing::new(String::with_capacity(2 * TOKEN_BYTES));
        for byte in bytes.iter() {
            text.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
            text.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
        }
        Ok(Token(text))
    }

    /// The token file's content.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    fn matches(&self, presented: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(presented).into()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

/// What a request's `Authorization` header grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Granted,
    /// No `Authorization` header.
    NoToken,
    /// A value that is no token of this endpoint.
    WrongToken,
    /// A section's token, used for another section (or a path that names
    /// none): refused without saying whether that section exists.
    OtherSection,
}

/// The sections served and the tokens that open them.
#[derive(Debug)]
pub(crate) struct Tokens {
    /// Opens every section.
    pub(crate) all: Token,
    /// Each served section, with its own token when per-section tokens
    /// are on.
    pub(crate) sections: BTreeMap<String, Option<Token>>,
}

impl Tokens {
    pub(crate) fn serves(&self, section: &str) -> bool {
        self.sections.contains_key(section)
    }

    /// Whether `presented` opens `section` (`None`: the path names no
    /// section). Every token is compared, each in constant time.
    pub(crate) fn check(&self, section: Option<&str>, presented: Option<&[u8]>) -> Access {
        let Some(presented) = presented else {
            return Access::NoToken;
        };
        if self.all.matches(presented) {
            return Access::Granted;
        }
        let mut access = Access::WrongToken;
        for (name, token) in &self.sections {
            if token.as_ref().is_some_and(|t| t.matches(presented)) {
                access = if Some(name.as_str()) == section {
                    Access::Granted
                } else {
                    Access::OtherSection
                };
            }
        }
        access
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(per_section: bool) -> Tokens {
        let token = || per_section.then(|| Token::generate().unwrap());
        Tokens {
            all: Token::generate().unwrap(),
            sections: [("a".to_string(), token()), ("b".to_string(), token())].into(),
        }
    }

    #[test]
    fn tokens_are_64_hex_digits_and_differ() {
        let (one, two) = (Token::generate().unwrap(), Token::generate().unwrap());
        assert_eq!(one.as_bytes().len(), 64);
        assert!(one.as_bytes().iter().all(u8::is_ascii_hexdigit));
        assert_ne!(one.as_bytes(), two.as_bytes());
        assert_eq!(format!("{one:?}"), "Token(***)");
    }

    #[test]
    fn the_main_token_opens_every_section_and_a_section_token_only_its_own() {
        let t = tokens(true);
        let all = t.all.as_bytes().to_vec();
        let a = t.sections["a"].as_ref().unwrap().as_bytes().to_vec();
        assert_eq!(t.check(Some("a"), Some(&all)), Access::Granted);
        assert_eq!(t.check(Some("b"), Some(&all)), Access::Granted);
        assert_eq!(t.check(None, Some(&all)), Access::Granted);
        assert_eq!(t.check(Some("a"), Some(&a)), Access::Granted);
        assert_eq!(t.check(Some("b"), Some(&a)), Access::OtherSection);
        assert_eq!(t.check(Some("nope"), Some(&a)), Access::OtherSection);
        assert_eq!(t.check(None, Some(&a)), Access::OtherSection);
        assert_eq!(t.check(Some("a"), None), Access::NoToken);
        assert_eq!(t.check(Some("a"), Some(b"")), Access::WrongToken);
        assert_eq!(t.check(Some("a"), Some(&all[..63])), Access::WrongToken);
        let mut bearer = b"Bearer ".to_vec();
        bearer.extend_from_slice(&all);
        assert_eq!(t.check(Some("a"), Some(&bearer)), Access::WrongToken);
    }

    #[test]
    fn without_section_tokens_only_the_main_token_opens() {
        let t = tokens(false);
        let other = Token::generate().unwrap();
        assert_eq!(
            t.check(Some("a"), Some(other.as_bytes())),
            Access::WrongToken
        );
        assert!(t.serves("b") && !t.serves("c"));
    }
}
