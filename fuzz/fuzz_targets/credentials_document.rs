//! The credentials-file parser and editor on arbitrary text and edits.
//!
//! Input: the file's text, then (after the first NUL byte) an edit script,
//! one edit per line: byte 0 chooses set (even) or remove (odd), byte 1 the
//! section (one of the document's own sections, or a name from a small list
//! that includes invalid ones), byte 2 the key, the rest is the value.
//!
//! Invariants, for every text and every edit:
//! - `Document::parse(x).render() == x` (never fails, byte for byte);
//! - a refused edit leaves the document unchanged;
//! - an accepted edit changes only the edited key's lines (or appends the
//!   key or a new section): every other line keeps its bytes, in order;
//! - the result parses again, and the re-parsed document reads the value
//!   that was set (or nothing, after a removal), while every other key of
//!   every other section reads as before.

#![no_main]

use aws_session_daemon::credentials::{Document, Edit};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

const SECTIONS: &[&str] = &[
    "default",
    "prod",
    "p-1.x",
    "new@one",
    "DEFAULT",
    " prod ",
    "a]b",
    "with space",
    "",
];
const KEYS: &[&str] = &[
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_security_token",
    "x_security_token_expires",
    "region",
    "k",
    "Key",
    "",
];

fuzz_target!(|data: &[u8]| {
    let (text, script) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let text = String::from_utf8_lossy(text).into_owned();
    let mut doc = Document::parse(&text);
    assert_eq!(doc.render(), text, "parse(x).render() != x");

    for line in script.split(|&b| b == b'\n').take(16) {
        if line.len() < 3 {
            continue;
        }
        let names: Vec<String> = doc.section_names().iter().map(|s| s.to_string()).collect();
        let pick = line[1] as usize;
        let section = if pick < names.len() && pick % 2 == 0 {
            names[pick].clone()
        } else {
            SECTIONS[pick % SECTIONS.len()].to_string()
        };
        let key = KEYS[line[2] as usize % KEYS.len()].to_string();
        let value = String::from_utf8_lossy(&line[3..]).into_owned();
        let edit = if line[0] % 2 == 0 {
            Edit::set(section.clone(), key.clone(), SecretString::from(value.clone()))
        } else {
            Edit::remove(section.clone(), key.clone())
        };
        let before_text = doc.render();
        let before = Document::parse(&before_text);
        match doc.apply(&edit) {
            Err(_) => assert_eq!(doc.render(), before_text, "a refused edit changed the text"),
            Ok(()) => {
                let after_text = doc.render();
                assert_eq!(Document::parse(&after_text).render(), after_text);
                check_only_edited_lines_changed(&before_text, &after_text, &section, &key);
                let reread = Document::parse(&after_text);
                let expected = (line[0] % 2 == 0).then_some(value.as_str());
                assert_eq!(
                    reread.get(&section, &key).ok().flatten(),
                    expected,
                    "re-parse does not read what was written"
                );
                check_others_unchanged(&before, &reread, &section, &key);
            }
        }
    }
});

/// Splits into (content, terminator) pairs like the parser does (`\r\n`,
/// `\n`, a bare `\r`).
fn lines(text: &str) -> Vec<(&str, &str)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        let end = match bytes[i] {
            b'\n' => i + 1,
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => i + 2,
            b'\r' => i + 1,
            _ => {
                i += 1;
                continue;
            }
        };
        out.push((&text[start..i], &text[i..end]));
        i = end;
        start = end;
    }
    if start < bytes.len() {
        out.push((&text[start..], ""));
    }
    out
}

fn is_blank_or_comment(content: &str) -> bool {
    let t = content.trim();
    t.is_empty() || t.starts_with(['#', ';'])
}

/// The lines that differ (after the common first and last lines) are, in
/// the old text, the edited key's own lines (its key line, indented lines,
/// blank lines and comments between them) and, in the new text, the
/// canonical `key = value` line, a new `[section]` header, blank lines, or
/// comments kept from the old lines. The byte order mark is dropped by the
/// first change (documented); the old last line may gain a newline when
/// lines are appended after it.
fn check_only_edited_lines_changed(before: &str, after: &str, section: &str, key: &str) {
    let before = before.strip_prefix('\u{feff}').unwrap_or(before);
    let (b, a) = (lines(before), lines(after));
    let prefix = b
        .iter()
        .zip(&a)
        .take_while(|(x, y)| x.0 == y.0 && (x.1 == y.1 || x.1.is_empty()))
        .count();
    let suffix = b[prefix..]
        .iter()
        .rev()
        .zip(a[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    for (i, (x, y)) in b.iter().zip(&a).take(prefix).enumerate() {
        assert!(
            x.1 == y.1 || (x.1.is_empty() && i + 1 == b.len()),
            "line {} changed its line ending",
            i + 1
        );
    }
    let old = &b[prefix..b.len() - suffix];
    let new = &a[prefix..a.len() - suffix];
    let mut old_key_lines = 0;
    for (content, _) in old {
        let is_key_line = content
            .split_once(['=', ':'])
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case(key))
            && !content.starts_with(char::is_whitespace);
        if is_key_line {
            old_key_lines += 1;
        }
        assert!(
            is_key_line || content.starts_with(char::is_whitespace) || is_blank_or_comment(content),
            "a line that is not [{section}] {key}'s changed: {content:?}"
        );
    }
    assert!(old_key_lines <= 1, "more than one key line replaced");
    let header = format!("[{section}]");
    for (content, _) in new {
        let canonical =
            *content == format!("{key} =") || content.starts_with(&format!("{key} = "));
        assert!(
            canonical || *content == header || is_blank_or_comment(content),
            "an unexpected new line: {content:?}"
        );
    }
}

/// Every key of every section other than the edited one reads as before
/// (when it could be read before).
fn check_others_unchanged(before: &Document, after: &Document, section: &str, key: &str) {
    let mut names = before.section_names();
    names.sort_unstable();
    names.dedup();
    for name in names {
        for k in before.keys(name) {
            if name == section && k == key.to_lowercase() {
                continue;
            }
            if let (Ok(old), Ok(new)) = (before.get(name, k), after.get(name, k)) {
                assert_eq!(old, new, "[{name}] {k} changed by an edit of [{section}] {key}");
            }
        }
    }
}
