//! How botocore (the AWS CLI, boto3) splits the credentials file into
//! sections, keys and values: Python's `configparser.RawConfigParser` in its
//! default strict mode, followed line by line (CPython 3.11
//! `RawConfigParser._read`). This reading decides what counts as a duplicate,
//! because botocore is the reader that refuses duplicates.
//!
//! The parser never fails: lines botocore would reject are classified
//! ([`Kind::Orphan`], [`Kind::Invalid`]) and kept as they are.

use std::ops::Range;

/// Python's `str.isspace()`, which `str.strip()`, regex `\s` and `\S` use.
/// It is Rust's `char::is_whitespace` plus the four ASCII separators
/// U+001C..U+001F.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

pub(crate) fn py_strip(s: &str) -> &str {
    // Nearly every line starts and ends with a visible ASCII character:
    // nothing to strip, and no character to decode.
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) if is_ascii_visible(first) && is_ascii_visible(last) => s,
        _ => s.trim_matches(is_py_space),
    }
}

/// An ASCII byte that is not whitespace (for Python) nor a control byte.
fn is_ascii_visible(b: u8) -> bool {
    b.is_ascii_graphic()
}

/// One physical line: `text[start..content_end]` is its content,
/// `text[content_end..end]` its terminator (`\n`, `\r\n`, a bare `\r`, or
/// nothing on a last line without newline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawLine {
    pub start: usize,
    pub content_end: usize,
    pub end: usize,
}

/// The physical lines of a text, split like Python's universal-newline
/// mode, which `open()` uses for text files: `\r\n`, `\n` and a bare `\r`
/// all end a line.
///
/// Line ends are found with `str::find`, which searches a byte a word at a
/// time: the editor splits multi-megabyte files on every write, and a
/// byte-by-byte loop was a good part of the cost.
pub(crate) struct Lines<'t> {
    text: &'t str,
    at: usize,
    /// Where the next `\n` is (`text.len()` if none), or `None` when not
    /// searched yet.
    next_lf: Option<usize>,
    /// Whether the text has any `\r` at all; most files do not, and then
    /// no line is searched for one.
    has_cr: bool,
}

impl<'t> Lines<'t> {
    pub(crate) fn new(text: &'t str) -> Lines<'t> {
        Lines {
            text,
            at: 0,
            next_lf: None,
            has_cr: text.contains('\r'),
        }
    }
}

impl Iterator for Lines<'_> {
    type Item = RawLine;

    fn next(&mut self) -> Option<RawLine> {
        let (text, start) = (self.text, self.at);
        if start >= text.len() {
            return None;
        }
        let lf = match self.next_lf {
            Some(lf) if lf >= start => lf,
            _ => text[start..].find('\n').map_or(text.len(), |i| start + i),
        };
        self.next_lf = Some(lf);
        let cr = if self.has_cr {
            text[start..lf].find('\r').map(|i| start + i)
        } else {
            None
        };
        let line = match cr {
            // `\r\n`
            Some(cr) if cr + 1 == lf && lf < text.len() => RawLine {
                start,
                content_end: cr,
                end: lf + 1,
            },
            // A bare `\r`.
            Some(cr) => RawLine {
                start,
                content_end: cr,
                end: cr + 1,
            },
            None if lf < text.len() => RawLine {
                start,
                content_end: lf,
                end: lf + 1,
            },
            None => RawLine {
                start,
                content_end: text.len(),
                end: text.len(),
            },
        };
        self.at = line.end;
        Some(line)
    }
}

pub(crate) fn split_lines(text: &str) -> Vec<RawLine> {
    Lines::new(text).collect()
}

/// The last line of `text` as (content, terminator), split as
/// [`split_lines`] would; `None` for an empty text.
pub(crate) fn split_last_line(text: &str) -> Option<(&str, &str)> {
    if text.is_empty() {
        return None;
    }
    let terminator = if text.ends_with("\r\n") {
        "\r\n"
    } else if text.ends_with(['\n', '\r']) {
        &text[text.len() - 1..]
    } else {
        ""
    };
    let body = &text[..text.len() - terminator.len()];
    let start = body.rfind(['\n', '\r']).map_or(0, |i| i + 1);
    Some((&body[start..], terminator))
}

/// What botocore makes of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Empty or whitespace only.
    Blank,
    /// A full-line comment: `#` or `;` after optional indentation.
    Comment,
    /// `[name]`, the start of section number `.0`.
    Header(usize),
    /// `key = value` or `key: value`, entry number `.0`.
    Key(usize),
    /// An indented line that continues the value of entry number `.0`.
    Continuation(usize),
    /// A non-comment line before the first header (botocore:
    /// `MissingSectionHeaderError`).
    Orphan,
    /// A line with neither header nor separator, or with an empty key
    /// (botocore: `ParsingError`).
    Invalid,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    pub raw: RawLine,
    /// Where the content starts: after the byte order mark on the first line.
    pub content_start: usize,
    pub kind: Kind,
}

impl Line {
    pub fn content<'t>(&self, text: &'t str) -> &'t str {
        &text[self.content_start..self.raw.content_end]
    }

    pub fn terminator<'t>(&self, text: &'t str) -> &'t str {
        &text[self.raw.content_end..self.raw.end]
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Section {
    /// The header's name as botocore reads it, byte range into the text.
    pub name: Range<usize>,
    pub header_line: usize,
    /// One past the last line before the next header (or the end).
    pub end_line: usize,
    /// Its entries: entries are numbered in file order, so a section's
    /// are consecutive.
    pub entries: Range<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub section: usize,
    pub line: usize,
    pub continuations: Vec<usize>,
    /// The key as written (stripped), byte range into the text.
    key: Range<usize>,
    /// The key as botocore compares it, when lowercasing changes it.
    lowercase: Option<Box<str>>,
    /// A hash of the key as botocore compares it: keys are compared by it
    /// first, without reading the text again.
    pub key_hash: u32,
    /// The value on the key's own line (stripped), byte range into the text.
    first: Range<usize>,
    /// The whole value when continuation lines add to it (rare): the
    /// first part and the continuation lines, each stripped, joined with
    /// `\n`, blank lines inside kept, trailing ones dropped.
    joined: Option<Box<str>>,
}

impl Entry {
    /// The key as botocore compares it: lowercased.
    pub fn key<'t>(&'t self, text: &'t str) -> &'t str {
        self.lowercase.as_deref().unwrap_or(&text[self.key.clone()])
    }

    /// The value botocore reads.
    pub fn value<'t>(&'t self, text: &'t str) -> &'t str {
        self.joined.as_deref().unwrap_or(&text[self.first.clone()])
    }

    /// Zeroes the copy of a value held outside the text.
    pub fn zeroize(&mut self) {
        if let Some(joined) = &mut self.joined {
            zeroize::Zeroize::zeroize(&mut **joined);
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub lines: Vec<Line>,
    pub sections: Vec<Section>,
    pub entries: Vec<Entry>,
}

/// `SECTCRE = \[(?P<header>.+)\]`, matched (not anchored at the end) on the
/// stripped line: the name runs to the *last* `]` and must not be empty;
/// whatever follows that `]` is ignored, and spaces inside the brackets are
/// part of the name (`[ prod ]` is section " prod ").
pub(crate) fn header_name(stripped: &str) -> Option<Range<usize>> {
    let rest = stripped.strip_prefix('[')?;
    let close = rest.rfind(']')?;
    (close > 0).then_some(1..1 + close)
}

/// `OPTCRE = (?P<option>.*?)\s*(?P<vi>=|:)\s*(?P<value>.*)$` on the
/// stripped line: the key ends at the first `=` or `:`.
pub(crate) fn option(stripped: &str) -> Option<(&str, &str)> {
    // `=` and `:` are ASCII: a byte search finds exactly their places.
    let at = stripped.bytes().position(|b| b == b'=' || b == b':')?;
    let key = stripped[..at].trim_end_matches(is_py_space);
    let value = py_strip(&stripped[at + 1..]);
    Some((key, value))
}

/// Python's `str.lower()` where it changes the key; `None` when the key is
/// already lowercase (nearly always: no allocation then).
fn lowercase(key: &str) -> Option<Box<str>> {
    if key.is_ascii() {
        key.bytes()
            .any(|b| b.is_ascii_uppercase())
            .then(|| key.to_ascii_lowercase().into_boxed_str())
    } else {
        let lower = key.to_lowercase();
        (lower != key).then(|| lower.into_boxed_str())
    }
}

/// FNV-1a of a key, folded to 32 bits.
pub(crate) fn key_hash(key: &str) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key.as_bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash ^ (hash >> 32)) as u32
}

/// The byte range of `part` (a slice of `text`) in `text`.
fn range_in(text: &str, part: &str) -> Range<usize> {
    let start = part.as_ptr() as usize - text.as_ptr() as usize;
    start..start + part.len()
}

/// The number of leading Python-whitespace characters (configparser
/// measures indentation in characters).
fn indent_of(content: &str) -> usize {
    match content.as_bytes().first() {
        Some(&b) if b.is_ascii() && !is_py_space(b as char) => 0,
        _ => content.chars().take_while(|&c| is_py_space(c)).count(),
    }
}

/// Continuation parts of the entry being read: lines are added to the
/// current entry only, so one buffer serves all entries.
struct OpenValue<'t> {
    entry: usize,
    parts: Vec<&'t str>,
}

impl<'t> OpenValue<'t> {
    fn close(&mut self, text: &str, entries: &mut [Entry]) {
        if self.parts.iter().any(|p| !p.is_empty()) {
            let entry = &mut entries[self.entry];
            let mut joined = String::from(&text[entry.first.clone()]);
            for part in &self.parts {
                joined.push('\n');
                joined.push_str(part);
            }
            let len = joined.trim_end_matches(is_py_space).len();
            joined.truncate(len);
            entry.joined = Some(joined.into_boxed_str());
        }
        self.parts.clear();
    }
}

pub(crate) fn parse(text: &str) -> Parsed {
    let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
    // Room for a file of the usual shape (a line every 40 bytes or so,
    // two keys in three lines), so that the vectors are not copied as they
    // grow: the editor parses multi-megabyte files on every write.
    let mut parsed = Parsed {
        lines: Vec::with_capacity(text.len() / 40 + 4),
        sections: Vec::new(),
        entries: Vec::with_capacity(text.len() / 60 + 4),
    };
    let mut current_section: Option<usize> = None;
    let mut open: Option<OpenValue> = None;
    let mut spare_parts: Vec<&str> = Vec::new();
    let mut indent_level = 0usize;

    for (index, raw) in Lines::new(text).enumerate() {
        let content_start = raw.start.max(bom);
        let content = &text[content_start..raw.content_end];
        let stripped = py_strip(content);
        let kind = if stripped.starts_with(['#', ';']) {
            Kind::Comment
        } else if stripped.is_empty() {
            // A blank line inside a value becomes an empty line of it.
            if let Some(open) = &mut open {
                open.parts.push("");
            }
            Kind::Blank
        } else {
            let indent = indent_of(content);
            match &mut open {
                Some(value) if indent > indent_level => {
                    value.parts.push(stripped);
                    parsed.entries[value.entry].continuations.push(index);
                    Kind::Continuation(value.entry)
                }
                _ => {
                    indent_level = indent;
                    if let Some(name) = header_name(stripped) {
                        if let Some(mut value) = open.take() {
                            value.close(text, &mut parsed.entries);
                            spare_parts = value.parts;
                        }
                        let section = parsed.sections.len();
                        if let Some(previous) = current_section {
                            parsed.sections[previous].end_line = index;
                        }
                        let offset = range_in(text, stripped).start;
                        let entries = parsed.entries.len();
                        parsed.sections.push(Section {
                            name: offset + name.start..offset + name.end,
                            header_line: index,
                            end_line: index + 1,
                            entries: entries..entries,
                        });
                        current_section = Some(section);
                        Kind::Header(section)
                    } else if let Some(section) = current_section {
                        match option(stripped) {
                            Some((key, value)) if !key.is_empty() => {
                                if let Some(mut value) = open.take() {
                                    value.close(text, &mut parsed.entries);
                                    spare_parts = value.parts;
                                }
                                let entry = parsed.entries.len();
                                let lowercase = lowercase(key);
                                parsed.entries.push(Entry {
                                    section,
                                    line: index,
                                    continuations: Vec::new(),
                                    key: range_in(text, key),
                                    lowercase: lowercase.clone(),
                                    key_hash: key_hash(lowercase.as_deref().unwrap_or(key)),
                                    first: range_in(text, value),
                                    joined: None,
                                });
                                parsed.sections[section].entries.end = entry + 1;
                                open = Some(OpenValue {
                                    entry,
                                    parts: std::mem::take(&mut spare_parts),
                                });
                                Kind::Key(entry)
                            }
                            // An empty key name is falsy in Python: no value
                            // continues after it.
                            Some(_) => {
                                if let Some(mut value) = open.take() {
                                    value.close(text, &mut parsed.entries);
                                    spare_parts = value.parts;
                                }
                                Kind::Invalid
                            }
                            None => Kind::Invalid,
                        }
                    } else {
                        Kind::Orphan
                    }
                }
            }
        };
        parsed.lines.push(Line {
            raw,
            content_start,
            kind,
        });
    }
    if let Some(mut value) = open.take() {
        value.close(text, &mut parsed.entries);
    }
    if let Some(last) = current_section {
        parsed.sections[last].end_line = parsed.lines.len();
    }
    parsed
}

/// Python's `str.splitlines()`: the line boundaries it knows besides
/// `\n` and `\r` (which a value read from a file no longer holds, except as
/// the `\n` that joins continuation lines).
pub(crate) fn py_splitlines(value: &str) -> impl Iterator<Item = &str> {
    value.split(|c: char| {
        matches!(
            c,
            '\n' | '\r'
                | '\u{b}'
                | '\u{c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Kind> {
        parse(text).lines.iter().map(|l| l.kind).collect()
    }

    fn values(text: &str) -> Vec<(String, String)> {
        let parsed = parse(text);
        parsed
            .entries
            .iter()
            .map(|e| (e.key(text).to_string(), e.value(text).to_string()))
            .collect()
    }

    #[test]
    fn python_whitespace_is_rust_whitespace_plus_the_ascii_separators() {
        // The list printed by CPython 3.11:
        // [hex(i) for i in range(0x110000) if chr(i).isspace()]
        let python: Vec<u32> = vec![
            0x9, 0xa, 0xb, 0xc, 0xd, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000,
            0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028,
            0x2029, 0x202f, 0x205f, 0x3000,
        ];
        let ours: Vec<u32> = (0..=0x10ffffu32)
            .filter_map(char::from_u32)
            .filter(|&c| is_py_space(c))
            .map(u32::from)
            .collect();
        assert_eq!(ours, python);
    }

    #[test]
    fn splits_lines_like_universal_newlines() {
        let split = |text: &str| -> Vec<(String, String)> {
            split_lines(text)
                .iter()
                .map(|l| {
                    (
                        text[l.start..l.content_end].to_string(),
                        text[l.content_end..l.end].to_string(),
                    )
                })
                .collect()
        };
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            split("a\nb\r\nc\rd"),
            pairs(&[("a", "\n"), ("b", "\r\n"), ("c", "\r"), ("d", "")])
        );
        assert_eq!(
            split("\r\r\n\n\rx\r"),
            pairs(&[
                ("", "\r"),
                ("", "\r\n"),
                ("", "\n"),
                ("", "\r"),
                ("x", "\r")
            ])
        );
        assert_eq!(
            split("a\rb\rc\nd\r\n"),
            pairs(&[("a", "\r"), ("b", "\r"), ("c", "\n"), ("d", "\r\n")])
        );
        assert!(split_lines("").is_empty());
        assert_eq!(split_lines("\n").len(), 1);
        for text in [
            "", "a", "a\n", "a\r\n", "a\r", "x\ny", "x\r\ny\r", "x\r\r\n", "\n\n",
        ] {
            let expected = split(text).last().map(|(c, t)| (c.clone(), t.clone()));
            let got = split_last_line(text).map(|(c, t)| (c.to_string(), t.to_string()));
            assert_eq!(got, expected, "{text:?}");
        }
    }

    #[test]
    fn headers_follow_sectcre() {
        let name = |s: &str| header_name(s).map(|r| s[r].to_string());
        assert_eq!(name("[prod]"), Some("prod".into()));
        assert_eq!(name("[ prod ]"), Some(" prod ".into()));
        assert_eq!(name("[prod] # note"), Some("prod".into()));
        assert_eq!(name("[a]b]"), Some("a]b".into()));
        assert_eq!(name("[]]"), Some("]".into()));
        assert_eq!(name("[]"), None);
        assert_eq!(name("[prod"), None);
        assert_eq!(name("prod]"), None);
    }

    #[test]
    fn options_split_at_the_first_separator() {
        assert_eq!(option("a = b"), Some(("a", "b")));
        assert_eq!(option("a=b"), Some(("a", "b")));
        assert_eq!(option("a : b"), Some(("a", "b")));
        assert_eq!(option("a:b = c"), Some(("a", "b = c")));
        assert_eq!(option("a = b = c"), Some(("a", "b = c")));
        assert_eq!(
            option("a\t=\tb # not a comment"),
            Some(("a", "b # not a comment"))
        );
        assert_eq!(option("= b"), Some(("", "b")));
        assert_eq!(option("a"), None);
    }

    #[test]
    fn classifies_every_kind_of_line() {
        use Kind::*;
        let text = "orphan = 1\n# c\n[s]\n  ; indented comment\nKey = v\n  more\n\n  after blank\nnoseparator\n[t]\n  indented = key\n";
        assert_eq!(
            kinds(text),
            [
                Orphan,
                Comment,
                Header(0),
                Comment,
                Key(0),
                Continuation(0),
                Blank,
                Continuation(0),
                Invalid,
                Header(1),
                Key(1),
            ]
        );
        assert_eq!(
            values(text),
            [
                ("key".into(), "v\nmore\n\nafter blank".into()),
                ("indented".into(), "key".into())
            ]
        );
    }

    #[test]
    fn indentation_is_relative_to_the_last_key_line() {
        use Kind::*;
        // An indented first key sets the level; lines at that level are keys.
        let text = "[s]\n  a = 1\n  b = 2\n    c\nd = 3\n";
        assert_eq!(
            kinds(text),
            [Header(0), Key(0), Key(1), Continuation(1), Key(2)]
        );
        // Comments do not end a value: the indented line after one continues it.
        assert_eq!(
            kinds("[s]\na = 1\n# c\n  x\n"),
            [Header(0), Key(0), Comment, Continuation(0)]
        );
        // Directly after a header, an indented line is a key, not a continuation.
        assert_eq!(kinds("[s]\n  a = 1\n"), [Header(0), Key(0)]);
        // An indented header after a key continues the key's value.
        assert_eq!(
            kinds("[s]\na = 1\n  [t]\n"),
            [Header(0), Key(0), Continuation(0)]
        );
    }

    #[test]
    fn empty_key_continues_nothing() {
        use Kind::*;
        assert_eq!(kinds("[s]\n= 1\n  x\n"), [Header(0), Invalid, Invalid]);
        // A line without separator keeps the current value open.
        assert_eq!(
            kinds("[s]\na = 1\njunk\n  x\n"),
            [Header(0), Key(0), Invalid, Continuation(0)]
        );
    }

    #[test]
    fn keys_are_lowercased_and_values_stripped() {
        assert_eq!(
            values("[s]\n AWS_Session_Token \t:  v v \t\r\n"),
            [("aws_session_token".into(), "v v".into())]
        );
        assert_eq!(
            values("[s]\nk =\n  a = 1\n  b = 2\n\n"),
            [("k".into(), "\na = 1\nb = 2".into())]
        );
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let text = "\u{feff}[s]\na = 1\n";
        let parsed = parse(text);
        assert_eq!(parsed.lines[0].kind, Kind::Header(0));
        assert_eq!(&text[parsed.sections[0].name.clone()], "s");
        assert_eq!(parsed.lines[0].content(text), "[s]");
    }

    #[test]
    fn sections_end_at_the_next_header() {
        let parsed = parse("[a]\nx = 1\n\n[b]\ny = 2");
        assert_eq!(parsed.sections[0].end_line, 3);
        assert_eq!(parsed.sections[1].header_line, 3);
        assert_eq!(parsed.sections[1].end_line, 5);
    }
}
