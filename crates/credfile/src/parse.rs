//! How botocore (the AWS CLI, boto3) splits the credentials file into
//! sections, keys and values: Python's `configparser.RawConfigParser` in its
//! default strict mode, followed line by line (CPython 3.11
//! `RawConfigParser._read`). This reading decides what counts as a duplicate,
//! because botocore is the reader that refuses duplicates.
//!
//! The parser never fails: lines botocore would reject are classified
//! ([`Kind::Orphan`], [`Kind::Invalid`]) and kept as they are.

use std::borrow::Cow;
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
    pub(crate) start: usize,
    pub(crate) content_end: usize,
    pub(crate) end: usize,
}

/// The physical lines of a text, split like Python's universal-newline
/// mode, which `open()` uses for text files: `\r\n`, `\n` and a bare `\r`
/// all end a line.
///
/// Line ends are found with `memchr` (vector instructions, whatever the
/// optimisation level: the release profile optimises for size, where a
/// plain byte loop is not vectorised): the editor splits multi-megabyte
/// files on every write, and a byte-by-byte loop was a good part of the
/// cost.
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
            has_cr: memchr::memchr(b'\r', text.as_bytes()).is_some(),
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
            _ => memchr::memchr(b'\n', &text.as_bytes()[start..]).map_or(text.len(), |i| start + i),
        };
        self.next_lf = Some(lf);
        let cr = if self.has_cr {
            memchr::memchr(b'\r', &text.as_bytes()[start..lf]).map(|i| start + i)
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
    /// `[name]`, the start of a section.
    Header,
    /// `key = value` or `key: value`, an entry.
    Key,
    /// An indented line that continues the value of the entry of the last
    /// [`Kind::Key`] line before it.
    Continuation,
    /// A non-comment line before the first header (botocore:
    /// `MissingSectionHeaderError`).
    Orphan,
    /// A line with neither header nor separator, or with an empty key
    /// (botocore: `ParsingError`).
    Invalid,
}

/// One physical line, as [`Parsed::line`] describes it: byte offsets into
/// the text, and its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) start: usize,
    /// Where the content starts: after the byte order mark on the first line.
    pub(crate) content_start: usize,
    pub(crate) content_end: usize,
    pub(crate) end: usize,
    pub(crate) kind: Kind,
}

impl Line {
    pub(crate) fn content<'t>(&self, text: &'t str) -> &'t str {
        &text[self.content_start..self.content_end]
    }

    pub(crate) fn terminator<'t>(&self, text: &'t str) -> &'t str {
        &text[self.content_end..self.end]
    }
}

/// A section, as [`Parsed::section`] describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Section {
    pub(crate) header_line: usize,
    /// One past the last line before the next header (or the end).
    pub(crate) end_line: usize,
    /// Its entries: entries are numbered in file order, so a section's
    /// are consecutive.
    pub(crate) entries: Range<usize>,
}

/// The text as botocore splits it, in as little memory as the editor's
/// questions allow: five bytes per line (where it ends, its kind) and four
/// per section and per entry (the line of its header or key). Names, keys
/// and values are read from the text when asked for; only a value that
/// continuation lines add to (rare) is kept, joined. A file of 300,000
/// one-key sections kept 430 bytes per section in the first model (byte
/// ranges and vectors per line and entry: 129 MB for 4 MB of text); this
/// one keeps 18 (`tests/memory.rs`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// Per line, one past its terminator.
    ends: Vec<u32>,
    kinds: Vec<Kind>,
    /// The byte order mark's length (0 or 3).
    bom: u32,
    /// Per section, its header line.
    headers: Vec<u32>,
    /// Per entry, its key line (a section's entries are those whose key
    /// lines lie between its header and the next).
    keys: Vec<u32>,
    /// The values that continuation lines add to, by key line, in order:
    /// the first part and the continuation lines, each stripped, joined
    /// with `\n`, blank lines inside kept, trailing ones dropped.
    joined: Vec<(u32, Box<str>)>,
}

impl Parsed {
    pub(crate) fn line_count(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn line(&self, index: usize, text: &str) -> Line {
        let start = match index {
            0 => 0,
            _ => self.ends[index - 1] as usize,
        };
        let end = self.ends[index] as usize;
        let bytes = &text.as_bytes()[start..end];
        let content_end = match bytes {
            [.., b'\r', b'\n'] => end - 2,
            [.., b'\n' | b'\r'] => end - 1,
            _ => end,
        };
        Line {
            start,
            content_start: start.max(self.bom as usize).min(content_end),
            content_end,
            end,
            kind: self.kinds[index],
        }
    }

    pub(crate) fn lines<'a>(&'a self, text: &'a str) -> impl DoubleEndedIterator<Item = Line> + 'a {
        (0..self.line_count()).map(move |index| self.line(index, text))
    }

    pub(crate) fn section_count(&self) -> usize {
        self.headers.len()
    }

    pub(crate) fn section(&self, s: usize) -> Section {
        let next = s + 1;
        Section {
            header_line: self.headers[s] as usize,
            end_line: self
                .headers
                .get(next)
                .map_or(self.line_count(), |&h| h as usize),
            entries: self.first_entry_after(self.headers[s])
                ..self
                    .headers
                    .get(next)
                    .map_or(self.keys.len(), |&h| self.first_entry_after(h)),
        }
    }

    /// The first entry whose key line comes after line `line`.
    fn first_entry_after(&self, line: u32) -> usize {
        self.keys.partition_point(|&key| key <= line)
    }

    /// The header's name as botocore reads it.
    pub(crate) fn section_name<'t>(&self, s: usize, text: &'t str) -> &'t str {
        let content = self.line(self.headers[s] as usize, text).content(text);
        let stripped = py_strip(content);
        let name = header_name(stripped).expect("a header line has a name");
        &stripped[name]
    }

    pub(crate) fn entry_count(&self) -> usize {
        self.keys.len()
    }

    /// The key line of entry `e`.
    pub(crate) fn entry_line(&self, e: usize) -> usize {
        self.keys[e] as usize
    }

    /// The section entry `e` belongs to.
    pub(crate) fn entry_section(&self, e: usize) -> usize {
        self.headers
            .partition_point(|&header| header < self.keys[e])
            - 1
    }

    /// The key and the value on the key line, stripped.
    fn key_line<'t>(&self, e: usize, text: &'t str) -> (&'t str, &'t str) {
        let content = self.line(self.entry_line(e), text).content(text);
        option(py_strip(content)).expect("a key line has a separator")
    }

    /// The key as botocore compares it: lowercased.
    pub(crate) fn entry_key<'t>(&self, e: usize, text: &'t str) -> Cow<'t, str> {
        let key = self.key_line(e, text).0;
        match lowercase(key) {
            Some(lower) => Cow::Owned(lower.into()),
            None => Cow::Borrowed(key),
        }
    }

    /// The value botocore reads.
    pub(crate) fn entry_value<'a>(&'a self, e: usize, text: &'a str) -> &'a str {
        let line = self.keys[e];
        match self.joined.binary_search_by_key(&line, |(l, _)| *l) {
            Ok(at) => &self.joined[at].1,
            Err(_) => self.key_line(e, text).1,
        }
    }

    /// The continuation lines of entry `e`: those after its key line, up
    /// to the next key or header.
    pub(crate) fn continuations(&self, e: usize) -> impl Iterator<Item = usize> + '_ {
        let from = self.entry_line(e) + 1;
        (from..self.line_count())
            .take_while(|&index| !matches!(self.kinds[index], Kind::Key | Kind::Header))
            .filter(|&index| self.kinds[index] == Kind::Continuation)
    }

    /// Zeroes the copies of values held outside the text.
    pub(crate) fn zeroize(&mut self) {
        for (_, value) in &mut self.joined {
            zeroize::Zeroize::zeroize(&mut **value);
        }
    }
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

/// The number of leading Python-whitespace characters (configparser
/// measures indentation in characters).
fn indent_of(content: &str) -> usize {
    match content.as_bytes().first() {
        Some(&b) if b.is_ascii() && !is_py_space(b as char) => 0,
        _ => content.chars().take_while(|&c| is_py_space(c)).count(),
    }
}

/// The value being read: its key line and its continuation parts, so far.
/// Lines are added to the current entry only, so one buffer serves all
/// entries.
struct OpenValue<'t> {
    key_line: u32,
    first: &'t str,
    parts: Vec<&'t str>,
}

impl OpenValue<'_> {
    fn close(&mut self, joined: &mut Vec<(u32, Box<str>)>) {
        if self.parts.iter().any(|p| !p.is_empty()) {
            let mut value = String::from(self.first);
            for part in &self.parts {
                value.push('\n');
                value.push_str(part);
            }
            let len = value.trim_end_matches(is_py_space).len();
            value.truncate(len);
            joined.push((self.key_line, value.into_boxed_str()));
        }
        self.parts.clear();
    }
}

/// Ends the value being read, if any, keeping its buffer for the next.
fn close<'t>(
    open: &mut Option<OpenValue<'t>>,
    joined: &mut Vec<(u32, Box<str>)>,
    spare_parts: &mut Vec<&'t str>,
) {
    if let Some(mut value) = open.take() {
        value.close(joined);
        *spare_parts = std::mem::take(&mut value.parts);
    }
}

fn offset(n: usize) -> u32 {
    u32::try_from(n).expect("texts are at most MAX_SIZE bytes")
}

pub(crate) fn parse(text: &str) -> Parsed {
    let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
    // The number of lines (`memchr` counts a megabyte in tens of
    // microseconds), so that the per-line vectors are allocated once, not
    // grown by copying: the editor parses multi-megabyte files. Headers and
    // keys are at most one per line, most often one in several.
    let lines = memchr::memchr_iter(b'\n', text.as_bytes()).count() + 1;
    let mut parsed = Parsed {
        ends: Vec::with_capacity(lines),
        kinds: Vec::with_capacity(lines),
        bom,
        headers: Vec::with_capacity(lines / 8),
        keys: Vec::with_capacity(lines / 2),
        joined: Vec::new(),
    };
    let mut in_section = false;
    let mut open: Option<OpenValue> = None;
    let mut spare_parts: Vec<&str> = Vec::new();
    let mut indent_level = 0usize;

    for (index, raw) in Lines::new(text).enumerate() {
        let content_start = raw.start.max(bom as usize);
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
                    Kind::Continuation
                }
                _ => {
                    indent_level = indent;
                    if header_name(stripped).is_some() {
                        close(&mut open, &mut parsed.joined, &mut spare_parts);
                        parsed.headers.push(offset(index));
                        in_section = true;
                        Kind::Header
                    } else if in_section {
                        match option(stripped) {
                            Some((key, value)) if !key.is_empty() => {
                                close(&mut open, &mut parsed.joined, &mut spare_parts);
                                parsed.keys.push(offset(index));
                                open = Some(OpenValue {
                                    key_line: offset(index),
                                    first: value,
                                    parts: std::mem::take(&mut spare_parts),
                                });
                                Kind::Key
                            }
                            // An empty key name is falsy in Python: no value
                            // continues after it.
                            Some(_) => {
                                close(&mut open, &mut parsed.joined, &mut spare_parts);
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
        parsed.ends.push(offset(raw.end));
        parsed.kinds.push(kind);
    }
    if let Some(mut value) = open.take() {
        value.close(&mut parsed.joined);
    }
    parsed.headers.shrink_to_fit();
    parsed.keys.shrink_to_fit();
    parsed.joined.shrink_to_fit();
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

    /// A line's kind with the section or entry it belongs to, numbered as
    /// [`Parsed`] numbers them.
    #[derive(Debug, PartialEq, Eq)]
    enum T {
        Blank,
        Comment,
        Header(usize),
        Key(usize),
        Continuation(usize),
        Orphan,
        Invalid,
    }

    fn kinds(text: &str) -> Vec<T> {
        let parsed = parse(text);
        let (mut sections, mut entries) = (0, 0);
        let kinds: Vec<T> = parsed
            .lines(text)
            .map(|line| match line.kind {
                Kind::Blank => T::Blank,
                Kind::Comment => T::Comment,
                Kind::Header => {
                    sections += 1;
                    T::Header(sections - 1)
                }
                Kind::Key => {
                    entries += 1;
                    T::Key(entries - 1)
                }
                Kind::Continuation => T::Continuation(entries - 1),
                Kind::Orphan => T::Orphan,
                Kind::Invalid => T::Invalid,
            })
            .collect();
        // The entries' own view agrees: each continuation line is one of
        // its entry's.
        for (index, kind) in kinds.iter().enumerate() {
            if let T::Continuation(e) = kind {
                assert!(parsed.continuations(*e).any(|l| l == index));
            }
        }
        kinds
    }

    fn values(text: &str) -> Vec<(String, String)> {
        let parsed = parse(text);
        (0..parsed.entry_count())
            .map(|e| {
                (
                    parsed.entry_key(e, text).to_string(),
                    parsed.entry_value(e, text).to_string(),
                )
            })
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
        use T::*;
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
        use T::*;
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
        use T::*;
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
        assert_eq!(parsed.line(0, text).kind, Kind::Header);
        assert_eq!(parsed.section_name(0, text), "s");
        assert_eq!(parsed.line(0, text).content(text), "[s]");
    }

    #[test]
    fn sections_end_at_the_next_header() {
        let parsed = parse("[a]\nx = 1\n\n[b]\ny = 2");
        assert_eq!(parsed.section(0).end_line, 3);
        assert_eq!(parsed.section(1).header_line, 3);
        assert_eq!(parsed.section(1).end_line, 5);
        assert_eq!(parsed.section(1).entries, 1..2);
        assert_eq!(parsed.entry_section(1), 1);
    }
}
