//! The credentials file as a document that keeps every byte it does not
//! change, and the edits the daemon makes to it.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{CredentialsError, ErrorKind, FileName, SdkProblem};
use crate::parse::{self, Kind, Line, Parsed, is_py_space, py_strip};
use crate::sdk;
use crate::wipe::{SecretText, wipe};

/// The section botocore (Python's configparser) merges into every other
/// section; the editor never writes into it.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// One change to the file. `Debug` shows section and key but never the value.
#[derive(Clone, Debug)]
pub enum Edit {
    /// Give `key` in `section` this value, adding the key (after the
    /// section's last key) or the section (at the end) when missing.
    Set {
        section: String,
        key: String,
        value: SecretString,
    },
    /// Delete `key` (and any continuation lines) from `section`.
    Remove { section: String, key: String },
}

impl Edit {
    pub fn set(section: impl Into<String>, key: impl Into<String>, value: SecretString) -> Edit {
        Edit::Set {
            section: section.into(),
            key: key.into(),
            value,
        }
    }

    pub fn remove(section: impl Into<String>, key: impl Into<String>) -> Edit {
        Edit::Remove {
            section: section.into(),
            key: key.into(),
        }
    }

    pub fn section(&self) -> &str {
        match self {
            Edit::Set { section, .. } | Edit::Remove { section, .. } => section,
        }
    }

    pub fn key(&self) -> &str {
        match self {
            Edit::Set { key, .. } | Edit::Remove { key, .. } => key,
        }
    }

    /// Refuses what the editor must not write: anything outside the subset
    /// that both botocore and the AWS SDKs read the same way.
    pub fn validate(&self) -> Result<(), CredentialsError> {
        validate_section(self.section())?;
        validate_key(self.key())?;
        if let Edit::Set { value, .. } = self {
            validate_value(self.section(), self.key(), value.expose_secret())?;
        }
        Ok(())
    }
}

fn validate_section(section: &str) -> Result<(), CredentialsError> {
    // The config file's header form; in the credentials file the SDKs
    // ignore it, which the check after the edit refuses.
    if let Some(name) = section
        .strip_prefix("profile")
        .filter(|rest| rest.starts_with([' ', '\t']))
        .map(|rest| rest.trim_matches([' ', '\t']))
        && !name.is_empty()
        && name != DEFAULT_SECTION
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-/.%@:+".contains(c))
    {
        return Ok(());
    }
    let reason = if section.is_empty() {
        Some("it is empty")
    } else if section == DEFAULT_SECTION {
        Some("the AWS CLI treats [DEFAULT] as defaults for every section")
    } else if section.contains(['\n', '\r']) {
        Some("it contains a line break")
    } else if section.contains(']') {
        Some("it contains `]`")
    } else if section.contains(is_py_space) {
        Some("it contains whitespace, and the AWS SDKs ignore such credentials-file sections")
    } else if !section
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-/.%@:+".contains(c))
    {
        Some("the AWS SDKs ignore sections with other characters")
    } else {
        None
    };
    match reason {
        Some(reason) => {
            Err(CredentialsError::of(ErrorKind::InvalidSection { reason }).in_section(section))
        }
        None => Ok(()),
    }
}

fn validate_key(key: &str) -> Result<(), CredentialsError> {
    let valid = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(CredentialsError::of(ErrorKind::InvalidKey {
            key: key.to_string(),
        }))
    }
}

/// The reasons never quote the value: it is usually a secret.
fn validate_value(section: &str, key: &str, value: &str) -> Result<(), CredentialsError> {
    let reason = if value.is_ascii() {
        ascii_value_problem(value.as_bytes())
    } else {
        value_problem(value)
    };
    match reason {
        Some(reason) => Err(CredentialsError::of(ErrorKind::InvalidValue {
            key: key.to_string(),
            reason,
        })
        .in_section(section)),
        None => Ok(()),
    }
}

/// [`value_problem`] for an ASCII value (session tokens: hundreds of
/// bytes, thousands of them in a cold start's write), in one pass over
/// its bytes.
fn ascii_value_problem(value: &[u8]) -> Option<&'static str> {
    let (mut line_break, mut control, mut comment) = (false, false, false);
    let mut previous = b'x';
    for &b in value {
        line_break |= b == b'\n' || b == b'\r';
        control |= b < 0x20 || b == 0x7f;
        comment |= (b == b'#' || b == b';') && previous.is_ascii_whitespace();
        previous = b;
    }
    let space = |b: Option<&u8>| b.is_some_and(|&b| is_py_space(b as char));
    if line_break {
        Some("contains a line break")
    } else if control {
        Some("contains a control character")
    } else if space(value.first()) || space(value.last()) {
        Some("starts or ends with whitespace")
    } else if value.first().is_some_and(|&b| b == b'#' || b == b';') {
        Some("starts with a comment character")
    } else if comment {
        Some("contains whitespace followed by `#` or `;`, which the AWS SDKs cut off as a comment")
    } else {
        None
    }
}

fn value_problem(value: &str) -> Option<&'static str> {
    if value.contains(['\n', '\r']) {
        Some("contains a line break")
    } else if value.chars().any(char::is_control) {
        Some("contains a control character")
    } else if value.starts_with(is_py_space) || value.ends_with(is_py_space) {
        Some("starts or ends with whitespace")
    } else if value.starts_with(['#', ';']) {
        Some("starts with a comment character")
    } else if value
        .chars()
        .zip(value.chars().skip(1))
        .any(|(a, b)| a.is_whitespace() && (b == '#' || b == ';'))
    {
        Some("contains whitespace followed by `#` or `;`, which the AWS SDKs cut off as a comment")
    } else {
        None
    }
}

/// The credentials file, parsed the way botocore parses it (which decides
/// what a duplicate is), keeping the text byte for byte: `render` gives back
/// exactly what `parse` got, and an edit changes only the lines of the keys
/// it touches. The text (which holds secrets) is zeroed on drop, and `Debug`
/// shows only section names.
///
/// Edits cost what they touch, not what the file holds: a batch of edits
/// ([`Document::apply_all`]) is grouped by section, each section is cut
/// out (with the line after it, which decides whether a new key may go at
/// its end) and edited and checked as a small document of its own, new
/// sections are built on their own, and the file is put together once. The
/// whole file is parsed once (here) and checked once
/// ([`Document::check_readable`], cached).
pub struct Document {
    text: String,
    newline: &'static str,
    parsed: Parsed,
    /// The file it was read from, for the messages of the errors its
    /// methods return (unknown for a document parsed from a string).
    file: FileName,
    /// Built on first lookup: the planner asks about every configured
    /// section, and a scan of all sections per question made a pass
    /// quadratic in the number of sections.
    index: OnceLock<SectionIndex>,
    /// The first line that makes botocore refuse the whole file, found on
    /// the first [`Document::check_readable`] (the planner asks once per
    /// section).
    unreadable: OnceLock<Option<Unreadable>>,
}

/// Section lookups by name, for [`Document`]: the section numbers sorted by
/// a hash of their name (then by number), found by binary search, the
/// names compared in the text itself. Eight bytes per section, where a
/// `HashMap<&str, _>` took over forty (the name's slice, the value, the
/// table's spare room): a file of 300,000 one-key sections would have
/// spent 13 MB on it, more than the editor's whole budget of three times
/// the file (`tests/memory.rs`). Lookups are O(log n) with no allocation;
/// the planner asks about each configured section.
struct SectionIndex {
    /// (hash of the name, section), sorted.
    by_hash: Vec<(u32, u32)>,
    /// Sections whose header the AWS SDKs read as another profile name
    /// (`[ prod ]` is profile `prod`), with that name, in file order.
    renamed: Vec<(usize, String)>,
}

fn name_hash(name: &str) -> u32 {
    crate::hash(name.as_bytes()) as u32
}

impl SectionIndex {
    fn build(doc: &Document) -> SectionIndex {
        let count = doc.parsed.section_count();
        let mut by_hash: Vec<(u32, u32)> = (0..count)
            .map(|s| (name_hash(doc.section_name(s)), s as u32))
            .collect();
        by_hash.sort_unstable();
        let renamed = (0..count)
            .filter_map(|s| {
                let name = doc.section_name(s);
                sdk::profile_name_in(name, doc.file.kind())
                    .filter(|profile| *profile != name)
                    .map(|profile| (s, profile.to_string()))
            })
            .collect();
        SectionIndex { by_hash, renamed }
    }

    /// The sections named `name`, in file order.
    fn named<'a>(&'a self, doc: &'a Document, name: &'a str) -> impl Iterator<Item = usize> + 'a {
        let hash = name_hash(name);
        let from = self.by_hash.partition_point(|&(h, _)| h < hash);
        self.by_hash[from..]
            .iter()
            .take_while(move |&&(h, _)| h == hash)
            .map(|&(_, s)| s as usize)
            .filter(move |&s| doc.section_name(s) == name)
    }

    /// The first section (in file order) whose name an earlier section
    /// has, other than `[DEFAULT]`, with that earlier one.
    fn first_repeat(&self, doc: &Document) -> Option<(usize, usize)> {
        let mut found: Option<(usize, usize)> = None;
        for run in self.by_hash.chunk_by(|a, b| a.0 == b.0) {
            if run.len() < 2 {
                continue;
            }
            for (i, &(_, again)) in run.iter().enumerate() {
                let again = again as usize;
                let name = doc.section_name(again);
                if name == DEFAULT_SECTION {
                    continue;
                }
                let first = run[..i]
                    .iter()
                    .map(|&(_, s)| s as usize)
                    .find(|&s| doc.section_name(s) == name);
                if let Some(first) = first
                    && found.is_none_or(|(_, earliest)| again < earliest)
                {
                    found = Some((first, again));
                }
            }
        }
        found
    }
}

/// Why botocore refuses the whole file, found once per document.
#[derive(Clone, Debug)]
struct Unreadable {
    /// 1-based.
    line: usize,
    section: Option<String>,
    kind: ErrorKind,
}

impl Unreadable {
    fn error(&self, file: &FileName) -> CredentialsError {
        let error = CredentialsError::new(file, self.kind.clone()).at_line(self.line);
        match &self.section {
            Some(section) => error.in_section(section),
            None => error,
        }
    }
}

/// A part of the document cut out to be edited on its own: one section's
/// lines, from its header to the next header.
struct Chunk {
    /// The section's bytes (after the byte order mark, which goes with the
    /// first change).
    bytes: Range<usize>,
    /// One past the end of the line after the section (the next header),
    /// which the edits read but never change: whether a new key may go at
    /// the end of the section depends on whether it is indented.
    context_end: usize,
    /// The section's first line, for the line numbers of errors.
    first_line: usize,
    /// Whether the AWS SDKs read the section's lines as they read them in
    /// the whole file: its header and the next one start at the start of a
    /// line for the SDK too (after `\n`, not after a bare CR) and are not
    /// indented. Otherwise the SDK's reading is checked on the whole file.
    sdk_alone: bool,
}

impl Document {
    /// Never fails: lines a reader would reject are kept as they are.
    pub fn parse(text: &str) -> Document {
        Document::from_string(text.to_string())
    }

    /// [`Document::parse`] without copying the text.
    pub(crate) fn from_string(text: String) -> Document {
        let parsed = parse::parse(&text);
        let newline = match parsed.line_count() {
            0 => "\n",
            _ if parsed.line(0, &text).terminator(&text) == "\r\n" => "\r\n",
            _ => "\n",
        };
        Document {
            text,
            newline,
            parsed,
            file: FileName::default(),
            index: OnceLock::new(),
            unreadable: OnceLock::new(),
        }
    }

    /// A part of a document, edited on its own: new lines get the whole
    /// file's line ending, not the part's.
    fn part(text: String, newline: &'static str, file: &FileName) -> Document {
        let mut doc = Document::from_string(text);
        doc.newline = newline;
        doc.file = file.clone();
        doc
    }

    /// The same document, naming `file` in the errors its methods return.
    pub(crate) fn in_file(mut self, file: FileName) -> Document {
        if file.kind() != self.file.kind() {
            // The SDK's profile names depend on the kind of file.
            self.index = OnceLock::new();
        }
        self.file = file;
        self
    }

    /// The profile the SDKs read for raw section `section` in this file.
    fn sdk_profile<'s>(&self, section: &'s str) -> &'s str {
        sdk::profile_name_in(section, self.file.kind()).unwrap_or(section)
    }

    /// The text, as [`Document::render`] gives it, without a copy.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// Err when botocore (the AWS CLI, boto3) refuses the whole file, at
    /// its first such line: a line before the first header
    /// (`MissingSectionHeaderError`), a line that is neither a header, a
    /// key, a comment nor a continuation (`ParsingError`), a section that
    /// appears twice (`DuplicateSectionError`, `[DEFAULT]` excepted), a key
    /// that appears twice in a section (`DuplicateOptionError`), or an
    /// indented block under an empty value with a line without `=` (the
    /// AWS CLI reads such a block as nested settings). Anywhere in the
    /// file, not only in the sections the daemon owns: every profile in
    /// such a file is unusable ("Unable to parse config file"), so the
    /// daemon refuses to write into it, spends no code on it, and shows the
    /// line to fix (the editor itself can edit around them).
    ///
    /// A byte order mark, which botocore refuses too, is not reported: the
    /// first write drops it.
    pub fn check_readable(&self) -> Result<(), CredentialsError> {
        match self.unreadable.get_or_init(|| self.first_unreadable()) {
            None => Ok(()),
            Some(problem) => Err(problem.error(&self.file)),
        }
    }

    /// The first line (in file order, as botocore reads the file) of each
    /// kind of problem, then the first of those.
    fn first_unreadable(&self) -> Option<Unreadable> {
        let mut found: Vec<Unreadable> = Vec::new();
        if let Some((index, line)) = self
            .parsed
            .lines(&self.text)
            .enumerate()
            .find(|(_, l)| matches!(l.kind, Kind::Orphan | Kind::Invalid))
        {
            let what = if line.kind == Kind::Orphan {
                "a line before the first [section] header"
            } else {
                "a line that is neither a [section] header, a `key = value`, a comment nor \
                 an indented continuation"
            };
            found.push(Unreadable {
                line: index + 1,
                section: None,
                kind: ErrorKind::UnreadableLine { what },
            });
        }
        if let Some((first, again)) = self.index().first_repeat(self) {
            found.push(Unreadable {
                line: self.parsed.section(again).header_line + 1,
                section: Some(self.section_name(again).to_string()),
                kind: ErrorKind::DuplicateSection {
                    first_line: self.parsed.section(first).header_line + 1,
                },
            });
        }
        // Keys repeat within one header's lines, except in [DEFAULT],
        // whose headers all add to one section.
        let defaults: Vec<usize> = self.sections_named(DEFAULT_SECTION).collect();
        let mut first_duplicate: Option<Unreadable> = None;
        let mut consider = |found: Option<(usize, usize)>| {
            let Some((first, again)) = found else { return };
            let line = self.parsed.entry_line(again);
            if first_duplicate.as_ref().is_none_or(|d| line + 1 < d.line) {
                first_duplicate = Some(Unreadable {
                    line: line + 1,
                    section: Some(
                        self.section_name(self.parsed.entry_section(again))
                            .to_string(),
                    ),
                    kind: ErrorKind::DuplicateKey {
                        key: self.entry_key(again).to_string(),
                        first_line: self.parsed.entry_line(first) + 1,
                    },
                });
            }
        };
        let defaults_entries: Vec<usize> =
            defaults.iter().flat_map(|&s| self.entries_of(s)).collect();
        consider(self.first_duplicate_key(&defaults_entries));
        for s in 0..self.parsed.section_count() {
            if !defaults.contains(&s) {
                consider(self.first_duplicate_key_in(self.parsed.section(s).entries));
            }
        }
        found.extend(first_duplicate);
        if let Some(nested) = self.first_bad_nested_line() {
            found.push(nested);
        }
        found.into_iter().min_by_key(|u| u.line)
    }

    /// The key of entry `e`, as botocore compares it.
    fn entry_key(&self, e: usize) -> Cow<'_, str> {
        self.parsed.entry_key(e, &self.text)
    }

    /// The first key that repeats among `entries` (as configparser sees
    /// it: at the repetition), with its first occurrence.
    fn first_duplicate_key(&self, entries: &[usize]) -> Option<(usize, usize)> {
        self.first_duplicate_among(entries.len(), entries.iter().copied())
    }

    /// [`Document::first_duplicate_key`] of `count` entries.
    fn first_duplicate_among(
        &self,
        count: usize,
        entries: impl Iterator<Item = usize>,
    ) -> Option<(usize, usize)> {
        if count <= 16 {
            // A few keys per section: comparing pairs is cheaper than
            // sorting (each key read from its line once).
            let keys: Vec<(usize, Cow<'_, str>)> =
                entries.map(|e| (e, self.entry_key(e))).collect();
            for (i, (again, key)) in keys.iter().enumerate() {
                if let Some((first, _)) = keys[..i].iter().find(|(_, k)| k == key) {
                    return Some((*first, *again));
                }
            }
            return None;
        }
        // Entry numbers sorted by a hash of their key, then by number:
        // eight bytes per key (a section of a million keys must not cost a
        // hash map of them), equal keys next to each other, in file order.
        let mut by_hash: Vec<(u32, u32)> = Vec::with_capacity(count);
        by_hash
            .extend(entries.map(|e| (crate::hash(self.entry_key(e).as_bytes()) as u32, e as u32)));
        by_hash.sort_unstable();
        let mut found: Option<(usize, usize)> = None;
        for run in by_hash.chunk_by(|a, b| a.0 == b.0) {
            for (i, &(_, again)) in run.iter().enumerate().skip(1) {
                let again = again as usize;
                let key = self.entry_key(again);
                let first = run[..i]
                    .iter()
                    .map(|&(_, e)| e as usize)
                    .find(|&e| self.entry_key(e) == key);
                if let Some(first) = first
                    && found.is_none_or(|(_, earliest)| again < earliest)
                {
                    found = Some((first, again));
                }
            }
        }
        found
    }

    /// [`Document::first_duplicate_key`] for one section's entries.
    /// (Without collecting the range: it runs for every section.)
    fn first_duplicate_key_in(&self, entries: Range<usize>) -> Option<(usize, usize)> {
        self.first_duplicate_among(entries.len(), entries)
    }

    /// botocore's `_parse_nested`: a value that starts with a line break
    /// (`key =` followed by indented lines) is read as `name = value`
    /// lines, and a line without `=` makes the whole file unreadable for
    /// the AWS CLI (`ConfigParseError`). [DEFAULT]'s values count too: every
    /// section inherits them, the profiles the daemon writes included.
    fn first_bad_nested_line(&self) -> Option<Unreadable> {
        (0..self.parsed.entry_count()).find_map(|entry| {
            let mut continuations = self.parsed.continuations(entry).peekable();
            continuations.peek()?;
            if !self.parsed.entry_value(entry, &self.text).starts_with('\n') {
                return None;
            }
            let bad = continuations.find(|&line| {
                parse::py_splitlines(py_strip(self.line_text(line)))
                    .map(py_strip)
                    .any(|part| !part.is_empty() && !part.contains('='))
            })?;
            Some(Unreadable {
                line: bad + 1,
                section: Some(
                    self.section_name(self.parsed.entry_section(entry))
                        .to_string(),
                ),
                kind: ErrorKind::NestedValue {
                    key: self.entry_key(entry).to_string(),
                },
            })
        })
    }

    /// Where the AWS SDKs that follow the shared profile-file format (the
    /// AWS SDK for Rust's parser is the reference) refuse this file, which
    /// botocore may well read (`key : value`, an indented first header):
    /// the daemon still writes such a file, and warns once. The byte order
    /// mark is not counted (the first write drops it).
    pub fn sdk_problem(&self) -> Option<SdkProblem> {
        let bom = self.bom_len();
        sdk::first_error(&self.text[bom..]).map(|error| {
            let (what, fix) = error.kind.describe();
            SdkProblem::new(self.file.clone(), error.line, what, fix)
        })
    }

    pub fn render(&self) -> String {
        self.text.clone()
    }

    /// Whether the file starts with a UTF-8 byte order mark. Both readers
    /// fail on one (botocore: "Unable to parse config file", from
    /// configparser's `MissingSectionHeaderError`; the SDK: "Expected a
    /// profile definition"), so the first edit that changes the document
    /// drops it.
    pub fn has_byte_order_mark(&self) -> bool {
        self.text.starts_with('\u{feff}')
    }

    fn bom_len(&self) -> usize {
        if self.has_byte_order_mark() { 3 } else { 0 }
    }

    fn section_name(&self, section: usize) -> &str {
        self.parsed.section_name(section, &self.text)
    }

    /// Section names in file order, duplicates included.
    pub fn section_names(&self) -> Vec<&str> {
        (0..self.parsed.section_count())
            .map(|s| self.section_name(s))
            .collect()
    }

    pub fn has_section(&self, name: &str) -> bool {
        self.sections_named(name).next().is_some()
    }

    fn index(&self) -> &SectionIndex {
        self.index.get_or_init(|| SectionIndex::build(self))
    }

    fn sections_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = usize> + 'a {
        self.index().named(self, name)
    }

    fn entries_of(&self, section: usize) -> impl Iterator<Item = usize> + use<> {
        self.parsed.section(section).entries
    }

    /// The keys of `section` in file order (lowercased, duplicates included).
    pub fn keys(&self, section: &str) -> Vec<Cow<'_, str>> {
        self.sections_named(section)
            .flat_map(|s| self.entries_of(s))
            .map(|e| self.entry_key(e))
            .collect()
    }

    fn duplicate_section(&self, section: &str) -> Result<Option<usize>, CredentialsError> {
        let mut found = self.sections_named(section);
        let first = found.next();
        // botocore lets [DEFAULT] appear more than once (it merges them).
        if section == DEFAULT_SECTION {
            return Ok(first);
        }
        if let (Some(first), Some(again)) = (first, found.next()) {
            return Err(self
                .error(ErrorKind::DuplicateSection {
                    first_line: self.parsed.section(first).header_line + 1,
                })
                .at_line(self.parsed.section(again).header_line + 1)
                .in_section(section));
        }
        Ok(first)
    }

    /// The entries for `key` in `section` (in all its headers: [DEFAULT]
    /// may repeat).
    fn entries_for(&self, section: &str, key: &str) -> Vec<usize> {
        let lower;
        let key = if key.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
            lower = key.to_lowercase();
            lower.as_str()
        } else {
            key
        };
        self.sections_named(section)
            .flat_map(|s| self.entries_of(s))
            .filter(|&e| self.entry_key(e) == key)
            .collect()
    }

    fn duplicate_key(&self, section: &str, entries: &[usize]) -> CredentialsError {
        self.error(ErrorKind::DuplicateKey {
            key: self.entry_key(entries[0]).to_string(),
            first_line: self.parsed.entry_line(entries[0]) + 1,
        })
        .at_line(self.parsed.entry_line(entries[1]) + 1)
        .in_section(section)
    }

    /// Value of `key` (case-insensitive key, case-sensitive section) in
    /// `section`, as botocore reads it: stripped, continuation lines joined
    /// with `\n`. Only the section's own keys: botocore also falls back to
    /// `[DEFAULT]` (see [`Document::get_inherited`]).
    /// Err when the section or the key is duplicated (botocore refuses such
    /// files).
    pub fn get(&self, section: &str, key: &str) -> Result<Option<&str>, CredentialsError> {
        self.duplicate_section(section)?;
        let entries = self.entries_for(section, key);
        match entries.as_slice() {
            [] => Ok(None),
            [entry] => Ok(Some(self.parsed.entry_value(*entry, &self.text))),
            _ => Err(self.duplicate_key(section, &entries)),
        }
    }

    /// What botocore reads for `key` in `section`: the section's own value,
    /// else the value in `[DEFAULT]`, which configparser merges into every
    /// section.
    pub fn get_inherited(
        &self,
        section: &str,
        key: &str,
    ) -> Result<Option<&str>, CredentialsError> {
        match self.get(section, key)? {
            Some(value) => Ok(Some(value)),
            None if section != DEFAULT_SECTION => self.get(DEFAULT_SECTION, key),
            None => Ok(None),
        }
    }

    /// Err when `section` appears twice or holds a duplicate key (the AWS
    /// CLI already fails on the file), or when a header differs from
    /// `[section]` only by spaces inside the brackets (the readers disagree
    /// on which section it is): the editor must refuse to touch it.
    pub fn check_section(&self, section: &str) -> Result<(), CredentialsError> {
        self.duplicate_section(section)?;
        let entries: Vec<usize> = self
            .sections_named(section)
            .flat_map(|s| self.entries_of(s))
            .collect();
        if let Some((first, again)) = self.first_duplicate_key(&entries) {
            return Err(self.duplicate_key(section, &[first, again]));
        }
        for (s, profile) in &self.index().renamed {
            let (s, info) = (*s, self.parsed.section(*s));
            let raw = self.section_name(s);
            if raw != section && profile == section {
                return Err(self
                    .error(ErrorKind::AmbiguousSection {
                        header: raw.to_string(),
                    })
                    .at_line(info.header_line + 1)
                    .in_section(section));
            }
        }
        Ok(())
    }

    /// Applies one edit. On error the document is unchanged.
    ///
    /// After the edit, both readers are checked to read exactly what was
    /// written (or nothing, for a removal); a file in which they would not
    /// is refused rather than written.
    pub fn apply(&mut self, edit: &Edit) -> Result<(), CredentialsError> {
        self.apply_all(std::slice::from_ref(edit))
    }

    /// Applies `edits` as one change: all of them, or (on error) none.
    /// The same checks as [`Document::apply`] for each edit, at the cost of
    /// the sections edited, and one parse of the result.
    pub fn apply_all(&mut self, edits: &[Edit]) -> Result<(), CredentialsError> {
        let text = match self.edited(edits)? {
            Some(edited) => edited.to_text(),
            None => return Ok(()),
        };
        let file = std::mem::take(&mut self.file);
        *self = Document::from_string(text.into_inner()).in_file(file);
        Ok(())
    }

    /// The text after `edits`, or `None` when they change nothing. The
    /// document itself stays as it is.
    pub(crate) fn edited(&self, edits: &[Edit]) -> Result<Option<Edited<'_>>, CredentialsError> {
        for edit in edits {
            edit.validate()?;
        }
        // The edits by section, sections in the order they are first named.
        let mut order: Vec<&str> = Vec::new();
        let mut by_section: HashMap<&str, Vec<&Edit>> = HashMap::new();
        // A new section is appended when the first edit that sets a key in
        // it comes: new sections go in that order.
        let mut created: HashMap<&str, usize> = HashMap::new();
        for (index, edit) in edits.iter().enumerate() {
            by_section
                .entry(edit.section())
                .or_insert_with(|| {
                    order.push(edit.section());
                    Vec::new()
                })
                .push(edit);
            if matches!(edit, Edit::Set { .. }) {
                created.entry(edit.section()).or_insert(index);
            }
        }
        for section in &order {
            self.check_section(section)?;
        }
        let mut replaced: Vec<(Range<usize>, Zeroizing<String>)> = Vec::new();
        let mut appended: Vec<(usize, Zeroizing<String>)> = Vec::new();
        // Sections whose SDK reading is checked on the whole result.
        let mut check_whole: Vec<&str> = Vec::new();
        for section in &order {
            let edits = &by_section[section];
            match self.sections_named(section).next() {
                Some(s) => {
                    let chunk = self.chunk(s);
                    let mut part = Document::part(
                        self.text[chunk.bytes.start..chunk.context_end].to_string(),
                        self.newline,
                        &self.file,
                    );
                    for edit in edits {
                        part.apply_in_part(edit, chunk.sdk_alone)
                            .map_err(|e| e.shifted(chunk.first_line))?;
                    }
                    let context = chunk.context_end - chunk.bytes.end;
                    let mut text = std::mem::take(&mut part.text);
                    debug_assert!(
                        text.ends_with(&self.text[chunk.bytes.end..chunk.context_end]),
                        "an edit changed the line after its section"
                    );
                    let len = text.len() - context;
                    text.truncate(len);
                    let text = Zeroizing::new(text);
                    if *text != self.text[chunk.bytes.clone()] {
                        replaced.push((chunk.bytes, text));
                    }
                    if !chunk.sdk_alone {
                        check_whole.push(section);
                    }
                }
                None => {
                    let part = match self.new_section(section, edits) {
                        Some(part) => part?,
                        None => {
                            let mut part = Document::part(String::new(), self.newline, &self.file);
                            for edit in edits {
                                part.apply_in_part(edit, true)?;
                            }
                            part
                        }
                    };
                    let mut part = part;
                    if !part.text.is_empty() {
                        let at = created.get(section).copied().unwrap_or(usize::MAX);
                        appended.push((at, Zeroizing::new(std::mem::take(&mut part.text))));
                    }
                }
            }
        }
        if replaced.is_empty() && appended.is_empty() {
            return Ok(None);
        }
        replaced.sort_by_key(|(range, _)| range.start);
        appended.sort_by_key(|(at, _)| *at);
        let mut edited = Edited {
            text: &self.text,
            // The byte order mark goes with the first change.
            start: self.bom_len(),
            replaced,
            tail: Vec::new(),
        };
        if !appended.is_empty() {
            let last = edited.last_line();
            let sections = appended.into_iter().map(|(_, text)| text).collect();
            edited.tail = new_sections(last, sections, self.newline);
        }
        if !check_whole.is_empty() {
            let after = edited.to_text();
            self.check_sdk_reading(&after, &check_whole, edits)?;
        }
        Ok(Some(edited))
    }

    /// A new section whose edits all set different keys (a profile the
    /// daemon writes for the first time): its header and one line per key,
    /// in order (what the edits one by one give), checked once for all its
    /// keys. `None` for other edits, which go one by one.
    fn new_section(
        &self,
        section: &str,
        edits: &[&Edit],
    ) -> Option<Result<Document, CredentialsError>> {
        let mut keys: Vec<&str> = Vec::with_capacity(edits.len());
        for edit in edits {
            if !matches!(edit, Edit::Set { .. }) || keys.contains(&edit.key()) {
                return None;
            }
            keys.push(edit.key());
        }
        let mut text = String::with_capacity(64 + edits.len() * 64);
        text.push('[');
        text.push_str(section);
        text.push(']');
        text.push_str(self.newline);
        for edit in edits {
            if let Edit::Set { key, value, .. } = edit {
                text.push_str(&Self::canonical_line(key, value.expose_secret()));
                text.push_str(self.newline);
            }
        }
        let part = Document::part(text, self.newline, &self.file);
        let expected: Vec<(&str, Option<&str>)> = edits
            .iter()
            .map(|edit| match edit {
                Edit::Set { key, value, .. } => (key.as_str(), Some(value.expose_secret())),
                Edit::Remove { key, .. } => (key.as_str(), None),
            })
            .collect();
        Some(part.verify_all(section, &expected).map(|()| part))
    }

    /// [`Document::verify`] of several keys of one section at once, both
    /// readers parsing the document once.
    fn verify_all(
        &self,
        section: &str,
        expected: &[(&str, Option<&str>)],
    ) -> Result<(), CredentialsError> {
        let disagree = |key: &str, detail| self.disagree(section, key, detail);
        self.check_section(section)?;
        for &(key, value) in expected {
            if self.get(section, key)? != value {
                return Err(disagree(key, "the AWS CLI would not read the new value"));
            }
        }
        let view = sdk::parse(&self.text)
            .map_err(|_| disagree(expected[0].0, "the AWS SDKs could no longer parse the file"))?;
        for &(key, value) in expected {
            let values = view.values_in(self.sdk_profile(section), key, self.file.kind());
            let agrees = match value {
                Some(value) => !values.is_empty() && values.iter().all(|v| *v == value),
                None => values.is_empty(),
            };
            if !agrees {
                return Err(disagree(key, "the AWS SDKs would not read the new value"));
            }
        }
        Ok(())
    }

    /// Section `s` as a part to edit on its own.
    fn chunk(&self, s: usize) -> Chunk {
        let info = self.parsed.section(s);
        let header = self.parsed.line(info.header_line, &self.text);
        let start = header.content_start;
        let next = (info.end_line < self.parsed.line_count())
            .then(|| self.parsed.line(info.end_line, &self.text));
        let end = next.map_or(self.text.len(), |l| l.start);
        let context_end = next.map_or(end, |l| l.end);
        let bytes = self.text.as_bytes();
        let starts_a_line = |at: usize| at <= self.bom_len() || bytes[at - 1] == b'\n';
        let sdk_header = |at: usize| starts_a_line(at) && self.text[at..].starts_with('[');
        Chunk {
            bytes: start..end,
            context_end,
            first_line: info.header_line,
            sdk_alone: sdk_header(start) && (end == self.text.len() || sdk_header(end)),
        }
    }

    /// The whole-file check of the SDK's reading, for sections whose lines
    /// the SDK joins with their neighbours' (bare CR line endings, an
    /// indented header): when the SDK could read the file before, it must
    /// read it after, with each edited key's final value.
    fn check_sdk_reading(
        &self,
        after: &str,
        sections: &[&str],
        edits: &[Edit],
    ) -> Result<(), CredentialsError> {
        if sdk::parse(&self.text).is_err() {
            // Already unreadable for the SDK: not made worse.
            return Ok(());
        }
        let disagree = |section: &str, key: &str, detail| self.disagree(section, key, detail);
        let Ok(view) = sdk::parse(after) else {
            let edit = edits
                .iter()
                .find(|e| sections.contains(&e.section()))
                .expect("a section to check has edits");
            return Err(disagree(
                edit.section(),
                edit.key(),
                "the AWS SDKs could no longer parse the file",
            ));
        };
        let mut last: HashMap<(&str, &str), Option<&str>> = HashMap::new();
        for edit in edits.iter().filter(|e| sections.contains(&e.section())) {
            let value = match edit {
                Edit::Set { value, .. } => Some(value.expose_secret()),
                Edit::Remove { .. } => None,
            };
            last.insert((edit.section(), edit.key()), value);
        }
        for ((section, key), expected) in last {
            let values = view.values_in(self.sdk_profile(section), key, self.file.kind());
            let agrees = match expected {
                Some(expected) => !values.is_empty() && values.iter().all(|v| *v == expected),
                None => values.is_empty(),
            };
            if !agrees {
                return Err(disagree(
                    section,
                    key,
                    "the AWS SDKs would not read the new value",
                ));
            }
        }
        Ok(())
    }

    /// One edit of a part (see [`Document::edited`]), checked at once on
    /// the part: botocore's reading, and the SDK's when `check_sdk` (the
    /// part reads alone as in the file).
    fn apply_in_part(&mut self, edit: &Edit, check_sdk: bool) -> Result<(), CredentialsError> {
        let section = edit.section();
        let key = edit.key();
        self.check_section(section)?;
        let changed = match edit {
            Edit::Set { value, .. } => self.with_set(section, key, value.expose_secret())?,
            Edit::Remove { .. } => self.with_removal(section, key)?,
        };
        let Some(mut text) = changed else {
            return Ok(());
        };
        let edited = Document::part(std::mem::take(&mut *text), self.newline, &self.file);
        let expected = match edit {
            Edit::Set { value, .. } => Some(value.expose_secret()),
            Edit::Remove { .. } => None,
        };
        edited.verify(self, section, key, expected, check_sdk)?;
        *self = edited;
        Ok(())
    }

    /// The lines (0-based, physical) that hold `key` in `section`: its key
    /// line and the lines of its value, which a set replaces and a removal
    /// deletes. Empty when the key is missing. Errors as
    /// [`Document::apply`] would.
    pub fn key_lines(&self, section: &str, key: &str) -> Result<Vec<usize>, CredentialsError> {
        self.check_section(section)?;
        let Some(&entry) = self.entries_for(section, key).first() else {
            return Ok(Vec::new());
        };
        let mut lines = self.value_lines(section, key, entry)?;
        lines.insert(self.parsed.entry_line(entry));
        Ok(lines.into_iter().collect())
    }

    // ----- editing -----

    fn last_line(&self) -> Option<Line> {
        let count = self.parsed.line_count();
        (count > 0).then(|| self.parsed.line(count - 1, &self.text))
    }

    fn line_text(&self, line: usize) -> &str {
        self.parsed.line(line, &self.text).content(&self.text)
    }

    fn canonical_line(key: &str, value: &str) -> Zeroizing<String> {
        Zeroizing::new(if value.is_empty() {
            format!("{key} =")
        } else {
            format!("{key} = {value}")
        })
    }

    /// Lines after a key line that belong to its value for either reader:
    /// botocore's continuation lines, and indented comment lines (a comment
    /// for botocore, a continuation for the SDK). Blank lines and column-0
    /// comments between them stay. An indented line that is a key or header
    /// for botocore would become part of the value once the key line is
    /// rewritten at column 0: refused.
    fn value_lines(
        &self,
        section: &str,
        key: &str,
        entry: usize,
    ) -> Result<BTreeSet<usize>, CredentialsError> {
        let key_line = self.parsed.entry_line(entry);
        // botocore's continuation lines, including those after a line it
        // rejects (no separator): such a line does not end the value.
        let mut lines: BTreeSet<usize> = self.parsed.continuations(entry).collect();
        for index in key_line + 1..self.parsed.line_count() {
            let line = self.parsed.line(index, &self.text);
            let content = line.content(&self.text);
            match line.kind {
                // Until the next key or header, a continuation is this
                // entry's.
                Kind::Continuation => {}
                Kind::Blank => {}
                Kind::Comment if content.starts_with([' ', '\t']) => {
                    lines.insert(index);
                }
                Kind::Comment => {}
                _ if content.starts_with(is_py_space) => {
                    return Err(self.indented_line(section, key, index));
                }
                _ => break,
            }
        }
        Ok(lines)
    }

    fn indented_line(&self, section: &str, key: &str, line: usize) -> CredentialsError {
        self.error(ErrorKind::IndentedLine {
            key: key.to_string(),
        })
        .at_line(line + 1)
        .in_section(section)
    }

    /// An error about this document's file.
    fn error(&self, kind: ErrorKind) -> CredentialsError {
        CredentialsError::new(&self.file, kind)
    }

    fn disagree(&self, section: &str, key: &str, detail: &'static str) -> CredentialsError {
        self.error(ErrorKind::ReadersDisagree {
            key: key.to_string(),
            detail,
        })
        .in_section(section)
    }

    fn with_set(
        &self,
        section: &str,
        key: &str,
        value: &str,
    ) -> Result<Option<Zeroizing<String>>, CredentialsError> {
        let Some(s) = self.sections_named(section).next() else {
            return Ok(Some(self.with_new_section(section, key, value)));
        };
        let entries = self.entries_for(section, key);
        if let Some(&entry) = entries.first() {
            let drop = self.value_lines(section, key, entry)?;
            let key_line = self.parsed.entry_line(entry);
            let unchanged = drop.is_empty()
                && self.parsed.entry_value(entry, &self.text) == value
                && !self.line_text(key_line).starts_with(is_py_space)
                && sdk::property_line(self.line_text(key_line))
                    .is_some_and(|(k, v)| k == key && v == value);
            if unchanged {
                return Ok(None);
            }
            let line = Self::canonical_line(key, value);
            return Ok(Some(self.rebuild(
                |index| {
                    if index == key_line {
                        Out::Replace(line.as_str())
                    } else if drop.contains(&index) {
                        Out::Drop
                    } else {
                        Out::Keep
                    }
                },
                None,
                &[],
            )));
        }
        // A missing key goes after the section's last line that is not blank
        // or a column-0 comment: its last key, continuation or indented
        // comment. Trailing comments and blank lines stay with the next
        // section.
        let info = self.parsed.section(s);
        let after = (info.header_line + 1..info.end_line)
            .rev()
            .find(|&index| {
                let content = self.line_text(index);
                !py_strip(content).is_empty() && !content.starts_with(['#', ';'])
            })
            .unwrap_or(info.header_line);
        // The next line that is not blank or a comment must not be indented,
        // or it would continue the new key's value.
        for index in after + 1..self.parsed.line_count() {
            let line = self.parsed.line(index, &self.text);
            let content = line.content(&self.text);
            match line.kind {
                Kind::Blank => {}
                Kind::Comment if content.starts_with(['#', ';']) => {}
                _ if content.starts_with(is_py_space) => {
                    return Err(self.indented_line(section, key, index));
                }
                _ => break,
            }
        }
        let line = Self::canonical_line(key, value);
        Ok(Some(self.rebuild(
            |_| Out::Keep,
            Some(after),
            &[line.as_str()],
        )))
    }

    fn with_new_section(&self, section: &str, key: &str, value: &str) -> Zeroizing<String> {
        let header = format!("[{section}]");
        let line = Self::canonical_line(key, value);
        let last_is_blank = self
            .last_line()
            .is_none_or(|l| py_strip(l.content(&self.text)).is_empty());
        let mut new_lines = Vec::new();
        if !last_is_blank {
            new_lines.push("");
        }
        new_lines.push(header.as_str());
        new_lines.push(line.as_str());
        let last = self.parsed.line_count().checked_sub(1);
        self.rebuild(|_| Out::Keep, last, &new_lines)
    }

    fn with_removal(
        &self,
        section: &str,
        key: &str,
    ) -> Result<Option<Zeroizing<String>>, CredentialsError> {
        let entries = self.entries_for(section, key);
        let Some(&entry) = entries.first() else {
            return Ok(None);
        };
        let mut drop = self.value_lines(section, key, entry)?;
        drop.insert(self.parsed.entry_line(entry));
        Ok(Some(self.rebuild(
            |index| {
                if drop.contains(&index) {
                    Out::Drop
                } else {
                    Out::Keep
                }
            },
            None,
            &[],
        )))
    }

    /// Writes the lines again, each kept, replaced or dropped, with
    /// `insert` placed after line `after` (`None`: at the start). Kept and
    /// replaced lines keep their own line endings; new lines get the file's.
    /// New lines at the end of a file without a final newline leave it
    /// without one (the old last line gets the newline before them). A new
    /// blank line right after a bare CR ends with CRLF (see
    /// [`append_sections`]). The byte order mark
    /// is dropped (see [`Document::has_byte_order_mark`]).
    fn rebuild<'n>(
        &self,
        each: impl Fn(usize) -> Out<'n>,
        after: Option<usize>,
        insert: &[&'n str],
    ) -> Zeroizing<String> {
        // (content, own line ending; `None` for a new line)
        let mut out: Vec<(&str, Option<&str>)> = Vec::with_capacity(self.parsed.line_count() + 4);
        let new_lines = insert.iter().map(|content| (*content, None));
        if after.is_none() {
            out.extend(new_lines.clone());
        }
        for (index, line) in self.parsed.lines(&self.text).enumerate() {
            let terminator = Some(line.terminator(&self.text));
            match each(index) {
                Out::Keep => out.push((line.content(&self.text), terminator)),
                Out::Replace(content) => out.push((content, terminator)),
                Out::Drop => {}
            }
            if after == Some(index) {
                out.extend(new_lines.clone());
            }
        }
        let ends_without_newline = self
            .last_line()
            .is_some_and(|l| l.terminator(&self.text).is_empty());
        let count = out.len();
        let mut text = Zeroizing::new(String::with_capacity(self.text.len() + 256));
        let mut previous: Option<&str> = None;
        for (index, (content, terminator)) in out.into_iter().enumerate() {
            let last = index + 1 == count;
            text.push_str(content);
            let ending = match terminator {
                Some("") if last => "",
                Some("") => self.newline,
                Some(own) => own,
                None if last && ends_without_newline => "",
                None if content.is_empty() && previous == Some("\r") => "\r\n",
                None => self.newline,
            };
            text.push_str(ending);
            previous = Some(ending);
        }
        text
    }

    /// The check after an edit: `key` in `section` reads as `expected` for
    /// botocore and (when `check_sdk`) for the SDK, and the section is
    /// still well formed.
    fn verify(
        &self,
        before: &Document,
        section: &str,
        key: &str,
        expected: Option<&str>,
        check_sdk: bool,
    ) -> Result<(), CredentialsError> {
        let disagree = |detail| self.disagree(section, key, detail);
        self.check_section(section)?;
        if self.get(section, key)? != expected {
            return Err(disagree("the AWS CLI would not read the new value"));
        }
        if !check_sdk {
            return Ok(());
        }
        match sdk::parse(&self.text) {
            Ok(view) => {
                let values = view.values_in(self.sdk_profile(section), key, self.file.kind());
                let agrees = match expected {
                    Some(expected) => !values.is_empty() && values.iter().all(|v| *v == expected),
                    None => values.is_empty(),
                };
                if !agrees {
                    return Err(disagree("the AWS SDKs would not read the new value"));
                }
            }
            // Already unreadable for the SDK before the edit: not made worse.
            Err(_) if sdk::parse(&before.text).is_err() => {}
            Err(_) => return Err(disagree("the AWS SDKs could no longer parse the file")),
        }
        Ok(())
    }
}

/// What [`Document::edited`] makes of a document, without a copy of it:
/// its text, with some sections' bytes replaced and new sections appended.
/// The file writer writes the pieces as they are.
pub(crate) struct Edited<'d> {
    text: &'d str,
    /// Where the new text starts: after a byte order mark, which goes.
    start: usize,
    /// Byte ranges of the text and what replaces them, in order.
    replaced: Vec<(Range<usize>, Zeroizing<String>)>,
    /// What comes after the text: new sections, and the line breaks before
    /// and between them.
    tail: Vec<Zeroizing<String>>,
}

impl Edited<'_> {
    /// The new text, in pieces.
    pub(crate) fn pieces(&self) -> Vec<&str> {
        let mut pieces = Vec::with_capacity(2 * self.replaced.len() + 2);
        let mut at = self.start;
        for (range, text) in &self.replaced {
            pieces.push(&self.text[at..range.start]);
            pieces.push(text.as_str());
            at = range.end;
        }
        pieces.push(&self.text[at..]);
        pieces.extend(self.tail.iter().map(|piece| piece.as_str()));
        pieces.retain(|p| !p.is_empty());
        pieces
    }

    pub(crate) fn len(&self) -> usize {
        self.pieces().iter().map(|p| p.len()).sum()
    }

    /// The new text in one piece.
    pub(crate) fn to_text(&self) -> SecretText {
        let pieces = self.pieces();
        let mut text = String::with_capacity(pieces.iter().map(|p| p.len()).sum());
        for piece in pieces {
            text.push_str(piece);
        }
        SecretText::new(text)
    }

    /// Whether the new text is `other`.
    pub(crate) fn is(&self, other: &str) -> bool {
        let mut rest = other;
        for piece in self.pieces() {
            match rest.strip_prefix(piece) {
                Some(after) => rest = after,
                None => return false,
            }
        }
        rest.is_empty()
    }

    /// The new text's last line, before the new sections: (whether it is
    /// blank, its line ending); `None` when there is no text. The text
    /// after the last replaced section starts a line (the next header), and
    /// a replaced section starts a line too: the last line lies in the last
    /// non-empty piece.
    fn last_line(&self) -> Option<(bool, String)> {
        // (Called before the tail is added.)
        let pieces = self.pieces();
        let last = pieces.last()?;
        parse::split_last_line(last)
            .map(|(content, terminator)| (py_strip(content).is_empty(), terminator.to_string()))
    }
}

/// New sections (each its header and keys, ending with a line break), as
/// [`Document::apply`] appends one: after a blank line unless the text
/// ends with one (`last`: the text's last line, see
/// [`Edited::last_line`]), each after the previous with a blank line
/// between; a file without a final newline still ends without one.
///
/// A last line that ends with a bare CR keeps it. The blank line after it
/// then ends with CRLF: a `\n` right after the CR would turn it into a
/// CRLF (botocore would see the blank line vanish and the last line's
/// ending change), and the SDKs, for which a bare CR ends no line, need a
/// `\n` before the new header.
fn new_sections(
    last: Option<(bool, String)>,
    sections: Vec<Zeroizing<String>>,
    newline: &str,
) -> Vec<Zeroizing<String>> {
    let (last_blank, terminator) = last.unwrap_or((true, "\n".to_string()));
    let ends_without_newline = terminator.is_empty();
    let line_break = |text: &str| Zeroizing::new(text.to_string());
    let mut pieces = Vec::with_capacity(2 * sections.len() + 1);
    if ends_without_newline {
        pieces.push(line_break(newline));
    }
    for (index, section) in sections.into_iter().enumerate() {
        if index == 0 && terminator == "\r" {
            pieces.push(line_break("\r\n"));
        } else if index > 0 || !last_blank {
            pieces.push(line_break(newline));
        }
        pieces.push(section);
    }
    if ends_without_newline
        && let Some(last) = pieces.last_mut()
        && last.ends_with(newline)
    {
        let len = last.len() - newline.len();
        last.truncate(len);
    }
    pieces
}

enum Out<'a> {
    Keep,
    Replace(&'a str),
    Drop,
}

impl Drop for Document {
    fn drop(&mut self) {
        wipe(&mut self.text);
        self.parsed.zeroize();
    }
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("sections", &self.section_names())
            .field("lines", &self.parsed.line_count())
            .finish_non_exhaustive()
    }
}

impl Clone for Document {
    fn clone(&self) -> Self {
        Document::parse(&self.text).in_file(self.file.clone())
    }
}

impl PartialEq for Document {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Document {}

impl Default for Document {
    fn default() -> Self {
        Document::parse("")
    }
}

#[cfg(test)]
mod tests;
