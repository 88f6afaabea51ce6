//! Text from outside the program as it may be shown: section and profile
//! names, config values, role ARNs, an STS server's error message, a
//! keyring's answer. One copy of the rule, below every module that shows
//! such text (summaries, tables, errors, log fields).
//!
//! A raw control character shown on a terminal can move the cursor,
//! retitle the window or hide a line; a CR or LF in a log field forges a
//! whole log line ("log-line forging"). tracing-subscriber's own escaping
//! covers ESC, BEL, BS, FF, DEL and the C1 controls, but not CR, LF or TAB,
//! and nothing at all in text printed outside a log line; so every outside
//! string goes through [`printable`] (or [`quoted`]) before it is shown.

use std::borrow::Cow;

/// True for what must not reach a terminal or a log raw: the C0 and C1
/// controls and DEL (`char::is_control`), the line and paragraph
/// separators, and the bidirectional overrides and isolates that make text
/// display in another order than it reads ("Trojan Source").
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every unsafe character escaped as Rust writes it (`\n`,
/// `\r`, `\t`, `\u{1b}`, `\u{202e}`); borrowed when there is none.
pub(crate) fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// How many characters of a value [`quoted`] shows.
const QUOTED_CHARACTERS: usize = 100;

/// A value quoted for an error message: in double quotes, escaped as
/// [`printable`] does (and `"`, `\` too, so that the quotes stay
/// unambiguous), and cut after 100 characters with its length said, so
/// that a 4 MB value makes a one-line error, not a 4 MB one.
pub(crate) fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for (shown, c) in text.chars().enumerate() {
        if shown == QUOTED_CHARACTERS {
            out.push_str(&format!("…\" ({} characters)", text.chars().count()));
            return out;
        }
        if is_unsafe(c) || c == '"' || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert!(matches!(printable("plain [prod] é"), Cow::Borrowed(_)));
        assert_eq!(
            printable("a\nb\rc\td\u{1b}[31me\u{7f}\u{9b}"),
            "a\\nb\\rc\\td\\u{1b}[31me\\u{7f}\\u{9b}"
        );
        assert_eq!(printable("x\u{202e}y\u{2028}"), "x\\u{202e}y\\u{2028}");
        // What is left holds no character a terminal acts on.
        let escaped = printable("\u{0}\u{1}\u{1f}\u{85}\u{2066}");
        assert!(!escaped.chars().any(is_unsafe), "{escaped}");
    }

    #[test]
    fn quoted_values_are_short_escaped_and_unambiguous() {
        assert_eq!(quoted("Admin"), "\"Admin\"");
        assert_eq!(quoted("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        let long = "x".repeat(3_900_000);
        let shown = quoted(&long);
        assert!(shown.len() < 150, "{}", shown.len());
        assert!(shown.ends_with("…\" (3900000 characters)"), "{shown}");
    }
}
