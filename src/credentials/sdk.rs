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

const WHITESPACE: &[char] = &[' ', '\t'];
const COMMENT: &[char] = &['#', ';'];

/// The sections of one file by their raw header names (before
/// normalization), each with its properties; a repeated raw name is merged
/// into its first occurrence as the SDK does.
#[derive(Debug, Default)]
pub(crate) struct SdkView {
    sections: Vec<(String, HashMap<String, String>)>,
}

/// The SDK refuses the whole file; the 1-based line it stopped at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SdkParseError {
    pub line: usize,
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
    let line = prepare_line(line, true);
    let (key, value) = line.split_once('=')?;
    let key = key.trim_matches(WHITESPACE);
    if key.is_empty() {
        return None;
    }
    Some((key.to_ascii_lowercase(), value.trim_matches(WHITESPACE)))
}

fn is_identifier(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-/.%@:+".contains(c))
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

struct Current {
    section: usize,
    property: Option<String>,
    is_subproperty: bool,
}

pub(crate) fn parse(text: &str) -> Result<SdkView, SdkParseError> {
    let mut view = SdkView::default();
    // Raw header name -> its index in `view.sections`: a file of thousands
    // of sections must not cost a scan of all earlier ones per header.
    let mut index_of: HashMap<&str, usize> = HashMap::new();
    let mut current: Option<Current> = None;
    for (index, line) in text.lines().enumerate() {
        let error = SdkParseError { line: index + 1 };
        if is_empty_line(line) || line.starts_with(COMMENT) {
            continue;
        }
        if line.starts_with('[') {
            let name = prepare_line(line, false)
                .strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
                .ok_or(error)?;
            let section = *index_of.entry(name).or_insert_with(|| {
                view.sections.push((name.to_string(), HashMap::new()));
                view.sections.len() - 1
            });
            current = Some(Current {
                section,
                property: None,
                is_subproperty: false,
            });
        } else if line.starts_with(WHITESPACE) {
            let Some(Current {
                section,
                property: Some(property),
                is_subproperty,
            }) = &current
            else {
                return Err(error);
            };
            if *is_subproperty && !is_empty_line(line) && property_line(line).is_none() {
                return Err(error);
            }
            let value = view.sections[*section]
                .1
                .get_mut(property)
                .expect("the current property exists");
            value.push('\n');
            value.push_str(line.trim_matches(WHITESPACE));
        } else {
            let Some(Current { section, .. }) = current else {
                return Err(error);
            };
            let (key, value) = property_line(line).ok_or(error)?;
            view.sections[section]
                .1
                .insert(key.clone(), value.to_string());
            current = Some(Current {
                section,
                property: Some(key),
                is_subproperty: value.is_empty(),
            });
        }
    }
    Ok(view)
}

impl SdkView {
    /// Every value the SDK may pick for `key` in `profile`: one per raw
    /// section that normalizes to `profile`. More than one means the SDK's
    /// choice depends on hash order.
    pub(crate) fn values(&self, profile: &str, key: &str) -> Vec<&str> {
        if !is_identifier(key) {
            return Vec::new();
        }
        self.sections
            .iter()
            .filter(|(raw, _)| profile_name(raw) == Some(profile))
            .filter_map(|(_, properties)| properties.get(key).map(String::as_str))
            .collect()
    }
}

impl Drop for SdkView {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for (_, properties) in &mut self.sections {
            for value in properties.values_mut() {
                value.zeroize();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(text: &str, profile: &str, key: &str) -> Vec<String> {
        parse(text)
            .expect("parses")
            .values(profile, key)
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
        assert_eq!(parse("a = 1\n").unwrap_err().line, 1);
        assert_eq!(parse("[p]\na: 1\n").unwrap_err().line, 2);
        assert_eq!(parse("[p]\n  a = 1\n").unwrap_err().line, 2);
        assert_eq!(parse("[p] x\n").unwrap_err().line, 1);
        assert_eq!(parse("\u{feff}[p]\n").unwrap_err().line, 1);
        assert_eq!(parse("[p]\na =\n  junk\n").unwrap_err().line, 3);
        assert!(parse("[p]\na =\n  b = c\n").is_ok());
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
