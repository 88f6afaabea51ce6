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
        let section = if pick < names.len() && pick.is_multiple_of(2) {
            names[pick].clone()
        } else {
            SECTIONS[pick % SECTIONS.len()].to_string()
        };
        let key = KEYS[line[2] as usize % KEYS.len()].to_string();
        let value = String::from_utf8_lossy(&line[3..]).into_owned();
        let edit = if line[0].is_multiple_of(2) {
            Edit::set(
                section.clone(),
                key.clone(),
                SecretString::from(value.clone()),
            )
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
                let expected = (line[0].is_multiple_of(2)).then_some(value.as_str());
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

/// Python's `str.isspace()`, which botocore's reading uses: Rust's
/// whitespace plus U+001C..U+001F.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn is_blank_or_comment(content: &str) -> bool {
    let t = content.trim_matches(is_py_space);
    t.is_empty() || t.starts_with(['#', ';'])
}

/// Byte for byte: the new text is the old one with some of the old lines
/// replaced by new ones. The old lines that go are the edited key's own
/// (its key line, indented lines, blank lines and comments between them);
/// the new lines are the canonical `key = value` line, a new `[section]`
/// header, blank lines, or comments kept from the old lines. The byte
/// order mark is dropped by the first change (documented); an old last
/// line without a line ending gets one when lines are appended after it.
fn check_only_edited_lines_changed(before: &str, after: &str, section: &str, key: &str) {
    if before == after {
        return;
    }
    let before = before.strip_prefix('\u{feff}').unwrap_or(before);
    let old = lines(before);
    // The longest run of whole old lines (with their line endings) that
    // the new text starts with, and ends with.
    let mut head = 0;
    let mut at = 0;
    for (content, ending) in &old {
        let rest = &after[at..];
        let kept = rest.starts_with(content)
            && rest[content.len()..].starts_with(ending)
            && (!ending.is_empty()
                || rest.len() == content.len()
                || rest[content.len()..].starts_with(['\n', '\r']));
        if !kept {
            break;
        }
        head += 1;
        at += content.len() + ending.len();
    }
    let mut tail = 0;
    let mut end = after.len();
    for (content, ending) in old[head..].iter().rev() {
        let line_len = content.len() + ending.len();
        let kept = end >= at + line_len
            && after[..end].ends_with(&format!("{content}{ending}"))
            && (end - line_len == at || after[..end - line_len].ends_with(['\n', '\r']));
        if !kept {
            break;
        }
        tail += 1;
        end -= line_len;
    }
    let removed = &old[head..old.len() - tail];
    let inserted = lines(&after[at..end]);
    // Lines kept between dropped ones (a line botocore rejects between a
    // key and its continuation, say) appear in both, in order: match them
    // up greedily; what is left on each side is what the edit dropped and
    // what it added.
    let mut kept_old = vec![false; removed.len()];
    let mut next = 0;
    let mut added = Vec::new();
    for (content, _) in &inserted {
        match removed[next..].iter().position(|(c, _)| c == content) {
            Some(offset) => {
                kept_old[next + offset] = true;
                next += offset + 1;
            }
            None => added.push(*content),
        }
    }
    let mut old_key_lines = 0;
    for ((content, _), kept) in removed.iter().zip(kept_old) {
        if kept {
            continue;
        }
        let is_key_line = content
            .split_once(['=', ':'])
            .is_some_and(|(k, _)| k.trim_matches(is_py_space).eq_ignore_ascii_case(key))
            && !content.starts_with(is_py_space);
        if is_key_line {
            old_key_lines += 1;
        }
        assert!(
            is_key_line || content.starts_with(is_py_space) || is_blank_or_comment(content),
            "a line that is not [{section}] {key}'s was dropped: {content:?}\nbefore: {before:?}\nafter: {after:?}"
        );
    }
    assert!(old_key_lines <= 1, "more than one key line dropped");
    let header = format!("[{section}]");
    for content in added {
        let canonical = content == format!("{key} =") || content.starts_with(&format!("{key} = "));
        assert!(
            canonical || content == header || is_blank_or_comment(content),
            "an unexpected new line: {content:?}\nbefore: {before:?}\nafter: {after:?}"
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
            if let (Ok(old), Ok(new)) = (before.get(name, &k), after.get(name, &k)) {
                assert_eq!(
                    old, new,
                    "[{name}] {k} changed by an edit of [{section}] {key}"
                );
            }
        }
    }
}
