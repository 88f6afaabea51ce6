//! The credentials file as a document that keeps every byte it does not
//! change, and the edits the daemon makes to it.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::OnceLock;

use secrecy::{ExposeSecret, SecretString};
use time::UtcOffset;
use time::macros::format_description;
use zeroize::{Zeroize, Zeroizing};

use super::error::{CredentialsError, FileName};
use super::parse::{self, Kind, Parsed, is_py_space, py_strip};
use super::sdk;
use crate::session::SessionCredentials;

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
        Some(reason) => Err(CredentialsError::InvalidSection {
            section: section.to_string(),
            reason,
        }),
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
        Err(CredentialsError::InvalidKey {
            key: key.to_string(),
        })
    }
}

/// The reasons never quote the value: it is usually a secret.
fn validate_value(section: &str, key: &str, value: &str) -> Result<(), CredentialsError> {
    let reason = if value.contains(['\n', '\r']) {
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
    };
    match reason {
        Some(reason) => Err(CredentialsError::InvalidValue {
            section: section.to_string(),
            key: key.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The credentials file, parsed the way botocore parses it (which decides
/// what a duplicate is), keeping the text byte for byte: `render` gives back
/// exactly what `parse` got, and an edit changes only the lines of the keys
/// it touches. The text (which holds secrets) is zeroed on drop, and `Debug`
/// shows only section names.
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
}

/// Section lookups by name, for [`Document`].
struct SectionIndex {
    /// Raw header name (as botocore reads it) → its sections, in file order.
    by_name: HashMap<String, Vec<usize>>,
    /// Sections whose header the AWS SDKs read as another profile name
    /// (`[ prod ]` is profile `prod`), with that name, in file order.
    renamed: Vec<(usize, String)>,
}

impl SectionIndex {
    fn build(doc: &Document) -> SectionIndex {
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        let mut renamed = Vec::new();
        for s in 0..doc.parsed.sections.len() {
            let raw = doc.section_name(s);
            by_name.entry(raw.to_string()).or_default().push(s);
            if let Some(profile) = sdk::profile_name(raw)
                && profile != raw
            {
                renamed.push((s, profile.to_string()));
            }
        }
        SectionIndex { by_name, renamed }
    }
}

impl Document {
    /// Never fails: lines a reader would reject are kept as they are.
    pub fn parse(text: &str) -> Document {
        let parsed = parse::parse(text);
        let newline = match parsed.lines.first() {
            Some(line) if line.terminator(text) == "\r\n" => "\r\n",
            _ => "\n",
        };
        Document {
            text: text.to_string(),
            newline,
            parsed,
            file: FileName::default(),
            index: OnceLock::new(),
        }
    }

    /// The same document, naming `file` in the errors its methods return.
    pub fn in_file(mut self, file: FileName) -> Document {
        self.file = file;
        self
    }

    /// Err when botocore refuses the whole file: a line before the first
    /// header (`MissingSectionHeaderError`) or a line that is neither a
    /// header, a key, a comment nor a continuation (`ParsingError`). The
    /// AWS CLI already fails on such a file ("Unable to parse config
    /// file"); credentials written into it could not be read, so the
    /// daemon refuses to write (the editor itself can edit around them).
    pub fn check_readable(&self) -> Result<(), CredentialsError> {
        for (index, line) in self.parsed.lines.iter().enumerate() {
            let what = match line.kind {
                Kind::Orphan => "a line before the first [section] header",
                Kind::Invalid => {
                    "a line that is neither a [section] header, a `key = value`, a comment nor \
                     an indented continuation"
                }
                _ => continue,
            };
            return Err(CredentialsError::UnreadableLine {
                file: self.file.clone(),
                line: index + 1,
                what,
            });
        }
        Ok(())
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

    fn section_name(&self, section: usize) -> &str {
        &self.text[self.parsed.sections[section].name.clone()]
    }

    /// Section names in file order, duplicates included.
    pub fn section_names(&self) -> Vec<&str> {
        (0..self.parsed.sections.len())
            .map(|s| self.section_name(s))
            .collect()
    }

    pub fn has_section(&self, name: &str) -> bool {
        self.sections_named(name).next().is_some()
    }

    fn index(&self) -> &SectionIndex {
        self.index.get_or_init(|| SectionIndex::build(self))
    }

    fn sections_named(&self, name: &str) -> impl Iterator<Item = usize> + '_ {
        self.index()
            .by_name
            .get(name)
            .into_iter()
            .flatten()
            .copied()
    }

    /// The keys of `section` in file order (lowercased, duplicates included).
    pub fn keys(&self, section: &str) -> Vec<&str> {
        self.sections_named(section)
            .flat_map(|s| &self.parsed.sections[s].entries)
            .map(|&e| self.parsed.entries[e].key.as_str())
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
            return Err(CredentialsError::DuplicateSection {
                file: self.file.clone(),
                section: section.to_string(),
                line: self.parsed.sections[again].header_line + 1,
                first_line: self.parsed.sections[first].header_line + 1,
            });
        }
        Ok(first)
    }

    /// The entries for `key` in `section` (in all its headers: [DEFAULT]
    /// may repeat).
    fn entries_for(&self, section: &str, key: &str) -> Vec<usize> {
        let key = key.to_lowercase();
        self.sections_named(section)
            .flat_map(|s| &self.parsed.sections[s].entries)
            .copied()
            .filter(|&e| self.parsed.entries[e].key == key)
            .collect()
    }

    fn duplicate_key(&self, section: &str, entries: &[usize]) -> CredentialsError {
        CredentialsError::DuplicateKey {
            file: self.file.clone(),
            section: section.to_string(),
            key: self.parsed.entries[entries[0]].key.clone(),
            line: self.parsed.entries[entries[1]].line + 1,
            first_line: self.parsed.entries[entries[0]].line + 1,
        }
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
            [entry] => Ok(Some(self.parsed.entries[*entry].value.as_str())),
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
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for s in self.sections_named(section) {
            for &e in &self.parsed.sections[s].entries {
                let key = self.parsed.entries[e].key.as_str();
                if let Some(&first) = seen.get(key) {
                    return Err(self.duplicate_key(section, &[first, e]));
                }
                seen.insert(key, e);
            }
        }
        for (s, profile) in &self.index().renamed {
            let (s, info) = (*s, &self.parsed.sections[*s]);
            let raw = self.section_name(s);
            if raw != section && profile == section {
                return Err(CredentialsError::AmbiguousSection {
                    file: self.file.clone(),
                    section: section.to_string(),
                    header: raw.to_string(),
                    line: info.header_line + 1,
                });
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
        edit.validate()?;
        let section = edit.section();
        let key = edit.key();
        self.check_section(section)?;
        let changed = match edit {
            Edit::Set { value, .. } => self.with_set(section, key, value.expose_secret())?,
            Edit::Remove { .. } => self.with_removal(section, key)?,
        };
        let Some(text) = changed else {
            return Ok(());
        };
        let edited = Document::parse(&text);
        let expected = match edit {
            Edit::Set { value, .. } => Some(value.expose_secret()),
            Edit::Remove { .. } => None,
        };
        edited.verify(self, section, key, expected)?;
        *self = edited;
        Ok(())
    }

    /// The edits that write `creds` into profile `section`:
    /// `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`,
    /// `aws_security_token` when the section (or `[DEFAULT]`) has one —
    /// botocore reads it before `aws_session_token`, so a stale one would
    /// shadow the new token — and `expiry_key` with the expiry in RFC 3339
    /// UTC (`2026-11-25T16:05:00Z`).
    pub fn session_edits(
        &self,
        section: &str,
        creds: &SessionCredentials,
        expiry_key: &str,
    ) -> Vec<Edit> {
        let mut edits = vec![
            Edit::set(
                section,
                "aws_access_key_id",
                SecretString::from(creds.access_key_id.clone()),
            ),
            Edit::set(
                section,
                "aws_secret_access_key",
                creds.secret_access_key.clone(),
            ),
            Edit::set(section, "aws_session_token", creds.session_token.clone()),
        ];
        let has_security_token = [section, DEFAULT_SECTION]
            .iter()
            .any(|s| !self.entries_for(s, "aws_security_token").is_empty());
        if has_security_token {
            edits.push(Edit::set(
                section,
                "aws_security_token",
                creds.session_token.clone(),
            ));
        }
        edits.push(Edit::set(
            section,
            expiry_key,
            SecretString::from(format_expiry(creds.expiration)),
        ));
        edits
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
        lines.insert(self.parsed.entries[entry].line);
        Ok(lines.into_iter().collect())
    }

    // ----- editing -----

    fn line_text(&self, line: usize) -> &str {
        self.parsed.lines[line].content(&self.text)
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
        let key_line = self.parsed.entries[entry].line;
        // botocore's continuation lines, including those after a line it
        // rejects (no separator): such a line does not end the value.
        let mut lines: BTreeSet<usize> = self.parsed.entries[entry]
            .continuations
            .iter()
            .copied()
            .collect();
        for index in key_line + 1..self.parsed.lines.len() {
            let content = self.line_text(index);
            match self.parsed.lines[index].kind {
                Kind::Continuation(e) if e == entry => {}
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
        CredentialsError::IndentedLine {
            file: self.file.clone(),
            section: section.to_string(),
            key: key.to_string(),
            line: line + 1,
        }
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
            let key_line = self.parsed.entries[entry].line;
            let unchanged = drop.is_empty()
                && self.parsed.entries[entry].value == value
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
        let info = &self.parsed.sections[s];
        let after = (info.header_line + 1..info.end_line)
            .rev()
            .find(|&index| {
                let content = self.line_text(index);
                !py_strip(content).is_empty() && !content.starts_with(['#', ';'])
            })
            .unwrap_or(info.header_line);
        // The next line that is not blank or a comment must not be indented,
        // or it would continue the new key's value.
        for index in after + 1..self.parsed.lines.len() {
            let content = self.line_text(index);
            match self.parsed.lines[index].kind {
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
            .parsed
            .lines
            .last()
            .is_none_or(|l| py_strip(l.content(&self.text)).is_empty());
        let mut new_lines = Vec::new();
        if !last_is_blank {
            new_lines.push("");
        }
        new_lines.push(header.as_str());
        new_lines.push(line.as_str());
        let last = self.parsed.lines.len().checked_sub(1);
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
        drop.insert(self.parsed.entries[entry].line);
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
    /// without one (the old last line gets the newline before them). The
    /// byte order mark is dropped (see [`Document::has_byte_order_mark`]).
    fn rebuild<'n>(
        &self,
        each: impl Fn(usize) -> Out<'n>,
        after: Option<usize>,
        insert: &[&'n str],
    ) -> Zeroizing<String> {
        // (content, own line ending; `None` for a new line)
        let mut out: Vec<(&str, Option<&str>)> = Vec::with_capacity(self.parsed.lines.len() + 4);
        let new_lines = insert.iter().map(|content| (*content, None));
        if after.is_none() {
            out.extend(new_lines.clone());
        }
        for (index, line) in self.parsed.lines.iter().enumerate() {
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
            .parsed
            .lines
            .last()
            .is_some_and(|l| l.terminator(&self.text).is_empty());
        let count = out.len();
        let mut text = Zeroizing::new(String::with_capacity(self.text.len() + 256));
        for (index, (content, terminator)) in out.into_iter().enumerate() {
            let last = index + 1 == count;
            text.push_str(content);
            text.push_str(match terminator {
                Some("") if last => "",
                Some("") => self.newline,
                Some(own) => own,
                None if last && ends_without_newline => "",
                None => self.newline,
            });
        }
        text
    }

    /// The check after an edit: `key` in `section` reads as `expected` for
    /// botocore and for the SDK, and the section is still well formed.
    fn verify(
        &self,
        before: &Document,
        section: &str,
        key: &str,
        expected: Option<&str>,
    ) -> Result<(), CredentialsError> {
        let disagree = |detail| CredentialsError::ReadersDisagree {
            file: self.file.clone(),
            section: section.to_string(),
            key: key.to_string(),
            detail,
        };
        self.check_section(section)?;
        if self.get(section, key)? != expected {
            return Err(disagree("the AWS CLI would not read the new value"));
        }
        match sdk::parse(&self.text) {
            Ok(view) => {
                let values = view.values(section, key);
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

enum Out<'a> {
    Keep,
    Replace(&'a str),
    Drop,
}

/// RFC 3339 in UTC with whole seconds, as saml2aws and okta-aws-cli write
/// `x_security_token_expires`: `2026-11-25T16:05:00Z`.
pub fn format_expiry(at: time::OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .expect("a UTC date-time always formats")
}

impl Drop for Document {
    fn drop(&mut self) {
        self.text.zeroize();
        for entry in &mut self.parsed.entries {
            entry.value.zeroize();
        }
    }
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("sections", &self.section_names())
            .field("lines", &self.parsed.lines.len())
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
