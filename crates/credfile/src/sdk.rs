//! How the AWS SDK for Rust reads the credentials file (`aws-runtime`'s
//! `env_config` parser and normalizer, which follow the cross-SDK profile
//! parser tests). The editor uses it only as a check: after every edit, this
//! reading and botocore's ([`super::parse`]) must both give exactly the value
//! written. The differences from botocore that matter:
//!
//! - only `\n` and `\r\n` end lines (a bare `\r` does not);
//! - comments start at column 0 only; an indented `#` line is a continuation;
//! - only `=` separates a key from its value; an inline comment (`#`/`;`
//!   after whitespace) is cut off;
//! - `[ prod ]` is profile `prod`; a header with a space inside (`[profile
//!   x]`) or with characters outside `A-Za-z0-9_-/.%@:+` is ignored in the
//!   credentials file;
//! - duplicate sections merge and a duplicate key takes the last value.

use std::collections::HashMap;

use zeroize::Zeroizing;

const WHITESPACE: &[char] = &[' ', '\t'];
const COMMENT: &[char] = &['#', ';'];

/// The sections of one file by their raw header names (before
/// normalization), each with its properties; a repeated raw name is merged
/// into its first occurrence as the SDK does. The values (secrets, for the
/// profiles the daemon writes) are zeroed when the view is dropped, and a
/// value that grows by a continuation line is copied into a new buffer and
/// the old one zeroed, so that no copy is left behind in freed memory.
#[derive(Debug, Default)]
pub(crate) struct SdkView {
    sections: Vec<(String, HashMap<String, Zeroizing<String>>)>,
}

/// Why the SDK refuses a file, in the words of `aws-runtime`'s parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SdkErrorKind {
    /// "Expected a profile definition": a line before the first header,
    /// or an indented first header.
    BeforeFirstProfile,
    /// "Expected a property definition, found continuation": an indented
    /// line right after a header.
    ContinuationAfterHeader,
    /// "Expected an '=' sign defining a property": `key : value`, or a line
    /// without separator.
    NoEquals,
    /// "Property did not have a name": `= value`.
    NoName,
    /// "Expected an '=' sign defining a sub-property": an indented line
    /// without `=` under `key =`.
    SubProperty,
    /// "Profile definition must end with ']'": text after the `]` that is
    /// not a comment, or a bare CR (which ends no line for the SDK) inside.
    HeaderEnd,
}

impl SdkErrorKind {
    /// What is wrong with the line, and how to fix it.
    pub(crate) fn describe(self) -> (&'static str, &'static str) {
        match self {
            SdkErrorKind::BeforeFirstProfile => (
                "a line before the first [profile] header, or an indented header",
                "Start the file with a [section] header at the beginning of its line.",
            ),
            SdkErrorKind::ContinuationAfterHeader => (
                "an indented line right after a [section] header",
                "Remove the indentation.",
            ),
            SdkErrorKind::NoEquals => (
                "a `key : value` line (or a line without `=`)",
                "Write it as `key = value`.",
            ),
            SdkErrorKind::NoName => ("a `= value` line without a key", "Remove it."),
            SdkErrorKind::SubProperty => (
                "an indented line without `=` under a `key =` line",
                "Write the nested settings as `name = value` lines.",
            ),
            SdkErrorKind::HeaderEnd => (
                "a [section] header followed by something other than a comment (or a bare CR \
                 line ending)",
                "Leave only the [section] header (and a comment after whitespace) on that line, \
                 with LF or CRLF line endings.",
            ),
        }
    }
}

/// The SDK refuses the whole file: the 1-based line it stopped at, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SdkParseError {
    pub line: usize,
    pub kind: SdkErrorKind,
}

fn is_empty_line(line: &str) -> bool {
    line.trim_matches(WHITESPACE).is_empty()
}

/// `prepare_line`: trims spaces and tabs and cuts a comment off; in a
/// property line the comment character must follow whitespace.
fn prepare_line(line: &str, comments_need_whitespace: bool) -> &str {
    let line = line.trim_matches(WHITESPACE);
    // `#` and `;` are ASCII, so a byte search finds exactly their places
    // (never inside a multi-byte character) without decoding every
    // character of a long session token.
    let comment = line
        .bytes()
        .enumerate()
        .filter(|&(_, b)| b == b'#' || b == b';')
        .map(|(index, _)| index)
        .find(|&index| {
            !comments_need_whitespace
                || line[..index]
                    .chars()
                    .next_back()
                    .is_some_and(char::is_whitespace)
        });
    comment
        .map_or(line, |index| &line[..index])
        .trim_matches(WHITESPACE)
}

/// A property line as the SDK reads it: key (ASCII-lowercased) and value.
pub(crate) fn property_line(line: &str) -> Option<(String, &str)> {
    split_property(line).ok()
}

fn split_property(line: &str) -> Result<(String, &str), SdkErrorKind> {
    let line = prepare_line(line, true);
    let (key, value) = line.split_once('=').ok_or(SdkErrorKind::NoEquals)?;
    let key = key.trim_matches(WHITESPACE);
    if key.is_empty() {
        return Err(SdkErrorKind::NoName);
    }
    Ok((key.to_ascii_lowercase(), value.trim_matches(WHITESPACE)))
}

fn is_identifier(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-/.%@:+".contains(c))
}

/// Which file a text is: the shared credentials file, or the config file
/// (`~/.aws/config`), whose profiles are written `[profile NAME]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum FileKind {
    #[default]
    Credentials,
    Config,
}

/// The profile a raw header name stands for in a file of `kind`, or `None`
/// when the SDK ignores the section. In the config file that is
/// `[profile NAME]`, and `[default]`.
pub(crate) fn profile_name_in(raw: &str, kind: FileKind) -> Option<&str> {
    match kind {
        FileKind::Credentials => profile_name(raw),
        FileKind::Config => {
            let name = raw.trim_matches(WHITESPACE);
            match name.strip_prefix("profile") {
                Some(rest) if rest.starts_with(WHITESPACE) => {
                    let rest = rest.trim_matches(WHITESPACE);
                    (!rest.contains(WHITESPACE) && is_identifier(rest)).then_some(rest)
                }
                _ => (name == "default").then_some(name),
            }
        }
    }
}

/// The profile a raw credentials-file header name stands for, or `None`
/// when the SDK ignores the section.
pub(crate) fn profile_name(raw: &str) -> Option<&str> {
    let name = raw.trim_matches(WHITESPACE);
    if name.contains(WHITESPACE) {
        // `[profile x]` and `[x y]`: not allowed in the credentials file.
        return None;
    }
    let name = name.trim();
    is_identifier(name).then_some(name)
}

/// What the reader does with each line it accepts; the parse stops at the
/// first line it refuses.
trait Visit<'t> {
    fn header(&mut self, name: &'t str);
    fn property(&mut self, key: String, value: &'t str);
    fn continuation(&mut self, line: &'t str);
}

/// Only whether the file parses, and where it stops.
struct Check;

impl<'t> Visit<'t> for Check {
    fn header(&mut self, _: &'t str) {}
    fn property(&mut self, _: String, _: &'t str) {}
    fn continuation(&mut self, _: &'t str) {}
}

/// The parser's states (`aws-runtime`'s `State`), without the data.
enum State {
    Starting,
    Profile { property: bool, subproperty: bool },
}

fn scan<'t>(text: &'t str, visit: &mut impl Visit<'t>) -> Result<(), SdkParseError> {
    let mut state = State::Starting;
    for (index, line) in text.lines().enumerate() {
        let error = |kind| SdkParseError {
            line: index + 1,
            kind,
        };
        if is_empty_line(line) || line.starts_with(COMMENT) {
            continue;
        }
        if line.starts_with('[') {
            let name = prepare_line(line, false)
                .strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
                .ok_or(error(SdkErrorKind::HeaderEnd))?;
            visit.header(name);
            state = State::Profile {
                property: false,
                subproperty: false,
            };
        } else if line.starts_with(WHITESPACE) {
            match state {
                State::Starting => return Err(error(SdkErrorKind::BeforeFirstProfile)),
                State::Profile {
                    property: false, ..
                } => return Err(error(SdkErrorKind::ContinuationAfterHeader)),
                State::Profile { subproperty, .. } => {
                    if subproperty && !is_empty_line(line) && split_property(line).is_err() {
                        return Err(error(SdkErrorKind::SubProperty));
                    }
                    visit.continuation(line.trim_matches(WHITESPACE));
                }
            }
        } else {
            if matches!(state, State::Starting) {
                return Err(error(SdkErrorKind::BeforeFirstProfile));
            }
            let (key, value) = split_property(line).map_err(error)?;
            state = State::Profile {
                property: true,
                subproperty: value.is_empty(),
            };
            visit.property(key, value);
        }
    }
    Ok(())
}

/// Builds the [`SdkView`].
struct Build<'t> {
    view: SdkView,
    /// Raw header name -> its index in `view.sections`: a file of
    /// thousands of sections must not cost a scan of all earlier ones per
    /// header.
    index_of: HashMap<&'t str, usize>,
    section: usize,
    property: Option<String>,
}

impl<'t> Visit<'t> for Build<'t> {
    fn header(&mut self, name: &'t str) {
        let sections = &mut self.view.sections;
        self.section = *self.index_of.entry(name).or_insert_with(|| {
            sections.push((name.to_string(), HashMap::new()));
            sections.len() - 1
        });
        self.property = None;
    }

    fn property(&mut self, key: String, value: &'t str) {
        self.view.sections[self.section]
            .1
            .insert(key.clone(), Zeroizing::new(value.to_string()));
        self.property = Some(key);
    }

    fn continuation(&mut self, line: &'t str) {
        let property = self.property.as_ref().expect("scan checked the property");
        let value = self.view.sections[self.section]
            .1
            .get_mut(property)
            .expect("the current property exists");
        let mut longer = Zeroizing::new(String::with_capacity(value.len() + 1 + line.len()));
        longer.push_str(value);
        longer.push('\n');
        longer.push_str(line);
        // The old value is zeroed as it is dropped.
        *value = longer;
    }
}

pub(crate) fn parse(text: &str) -> Result<SdkView, SdkParseError> {
    let mut build = Build {
        view: SdkView::default(),
        index_of: HashMap::new(),
        section: 0,
        property: None,
    };
    scan(text, &mut build)?;
    Ok(build.view)
}

/// Where the SDK refuses `text`, if it does; nothing is kept of the values.
pub(crate) fn first_error(text: &str) -> Option<SdkParseError> {
    scan(text, &mut Check).err()
}

impl SdkView {
    /// Every value the SDK may pick for `key` in `profile`: one per raw
    /// section that normalizes to `profile`. More than one means the SDK's
    /// choice depends on hash order.
    pub(crate) fn values_in(&self, profile: &str, key: &str, kind: FileKind) -> Vec<&str> {
        if !is_identifier(key) {
            return Vec::new();
        }
        self.sections
            .iter()
            .filter(|(raw, _)| profile_name_in(raw, kind) == Some(profile))
            .filter_map(|(_, properties)| properties.get(key).map(|v| v.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(text: &str, profile: &str, key: &str) -> Vec<String> {
        parse(text)
            .expect("parses")
            .values_in(profile, key, FileKind::Credentials)
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn reads_properties_and_continuations() {
        let text = "[p]\nA = 1\n  more\n# c\nb=2 # note\nc = x#y\n";
        assert_eq!(get(text, "p", "a"), ["1\nmore"]);
        assert_eq!(get(text, "p", "b"), ["2"]);
        assert_eq!(get(text, "p", "c"), ["x#y"]);
    }

    #[test]
    fn indented_comments_continue_values() {
        assert_eq!(get("[p]\na = 1\n  # c\n", "p", "a"), ["1\n# c"]);
    }

    #[test]
    fn headers_are_normalized() {
        assert_eq!(get("[ p ]\na = 1\n", "p", "a"), ["1"]);
        assert_eq!(get("[p] # c\na = 1\n", "p", "a"), ["1"]);
        assert!(get("[profile p]\na = 1\n", "p", "a").is_empty());
        assert_eq!(
            get("[p]\na = 1\n[ p]\na = 2\n", "p", "a"),
            ["1", "2"],
            "two raw names for one profile"
        );
        assert_eq!(get("[p]\na = 1\n[p]\na = 2\n", "p", "a"), ["2"]);
    }

    #[test]
    fn rejects_what_the_sdk_rejects() {
        use SdkErrorKind::*;
        let error = |text: &str| {
            let error = parse(text).unwrap_err();
            assert_eq!(first_error(text), Some(error), "{text:?}");
            (error.line, error.kind)
        };
        assert_eq!(error("a = 1\n"), (1, BeforeFirstProfile));
        assert_eq!(error("  [p]\na = 1\n"), (1, BeforeFirstProfile));
        assert_eq!(error("[p]\na: 1\n"), (2, NoEquals));
        assert_eq!(error("[p]\n= 1\n"), (2, NoName));
        assert_eq!(error("[p]\n  a = 1\n"), (2, ContinuationAfterHeader));
        assert_eq!(error("[p] x\n"), (1, HeaderEnd));
        assert_eq!(error("[p]\rx = 1\n"), (1, HeaderEnd));
        assert_eq!(error("\u{feff}[p]\n"), (1, BeforeFirstProfile));
        assert_eq!(error("[p]\na =\n  junk\n"), (3, SubProperty));
        assert!(parse("[p]\na =\n  b = c\n").is_ok());
        assert_eq!(first_error("[p]\na =\n  b = c\n"), None);
    }

    /// Each header used to be compared with every earlier one: a
    /// 10,000-section file took a quarter of a second per parse, and the
    /// editor parses once per edit. Doubling the sections must about double
    /// the work, not quadruple it (best of three, ratios only).
    #[test]
    fn parsing_is_linear_in_the_number_of_sections() {
        let file = |n: usize| {
            (0..n)
                .map(|i| format!("[p{i}]\na = {i}\n"))
                .collect::<String>()
        };
        let time = |text: &str| {
            (0..3)
                .map(|_| {
                    let started = std::time::Instant::now();
                    let view = parse(text).unwrap();
                    assert_eq!(view.sections.len(), text.matches('[').count());
                    started.elapsed()
                })
                .min()
                .unwrap()
        };
        let (small, large) = (file(2_000), file(32_000));
        let ratio = time(&large).as_secs_f64() / time(&small).as_secs_f64().max(1e-6);
        // 16 times the sections: about 16 times the time when linear, 256
        // when quadratic.
        assert!(
            ratio < 64.0,
            "32,000 sections took {ratio:.0}x as long as 2,000"
        );
        assert_eq!(get(&file(32_000), "p31999", "a"), ["31999"]);
    }

    #[test]
    fn a_bare_cr_does_not_end_a_line() {
        assert_eq!(get("[p]\na = 1\rb = 2\n", "p", "a"), ["1\rb = 2"]);
        assert!(get("[p]\na = 1\rb = 2\n", "p", "b").is_empty());
    }
}
