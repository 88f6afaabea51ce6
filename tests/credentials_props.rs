//! Property tests of the credentials editor: random documents (every kind of
//! line, LF or CRLF, with or without final newline or byte order mark) and
//! random edits.
//!
//! - `parse(x).render() == x` for any string;
//! - an edit that is refused leaves the document as it was;
//! - after the edits, every line that does not hold an edited key is
//!   unchanged and in the same order (new sections only add lines at the end);
//! - the written file reads back each set value (and no removed key) through
//!   `Document::get` *and* through the AWS SDK for Rust's own parser;
//! - no edited section ends up duplicated or with a duplicate key;
//! - several sections' edits in one write (`apply_all`) end as the same
//!   edits one by one (`apply`), and are all applied or none;
//! - the whole-file check of the AWS SDKs' reading (`sdk_problem`) agrees
//!   with the AWS SDK for Rust's own parser, line included.

use std::collections::{BTreeMap, BTreeSet};

use aws_session_daemon::credentials::{Document, Edit, ErrorKind};
use aws_session_daemon::secret::SecretString;
use proptest::prelude::*;
use proptest::sample::select;

#[path = "support/credentials_gen.rs"]
mod generate;
#[path = "support/credentials_sdk.rs"]
mod sdk;

use generate::document;

/// An edit with its value in the clear, so that a failing case prints it.
#[derive(Clone, Debug)]
enum TestEdit {
    Set(&'static str, &'static str, String),
    Remove(&'static str, &'static str),
}

impl TestEdit {
    fn edit(&self) -> Edit {
        match self {
            TestEdit::Set(s, k, v) => Edit::set(*s, *k, SecretString::from(v.as_str())),
            TestEdit::Remove(s, k) => Edit::remove(*s, *k),
        }
    }

    fn target(&self) -> (&'static str, &'static str) {
        match self {
            TestEdit::Set(s, k, _) | TestEdit::Remove(s, k) => (s, k),
        }
    }
}

/// What each key edited by `edits` ends as: the last edit's value, or
/// `None` when that was a removal.
fn final_values(edits: &[TestEdit]) -> BTreeMap<(&'static str, &'static str), Option<&str>> {
    edits
        .iter()
        .map(|edit| {
            let value = match edit {
                TestEdit::Set(_, _, v) => Some(v.as_str()),
                TestEdit::Remove(..) => None,
            };
            (edit.target(), value)
        })
        .collect()
}

fn edit() -> impl Strategy<Value = TestEdit> {
    // Biased towards the sections and keys the documents use most.
    let section = select(vec!["a", "prod", "a", "prod", "b", "new", "p-1", "A"]);
    let key = select(vec![
        "aws_session_token",
        "aws_session_token",
        "region",
        "x",
        "k",
        "aws_security_token",
    ]);
    prop_oneof![
        3 => (section.clone(), key.clone(), "[A-Za-z0-9/+=]{0,16}")
            .prop_map(|(s, k, v)| TestEdit::Set(s, k, v)),
        1 => (section, key).prop_map(|(s, k)| TestEdit::Remove(s, k)),
    ]
}

/// Physical lines as (content, terminator), split like Python's universal
/// newlines, the byte order mark left out.
fn lines(text: &str) -> Vec<(String, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (content, terminator, next) = match rest.find(['\r', '\n']) {
            None => (rest, "", ""),
            Some(i) if rest[i..].starts_with("\r\n") => (&rest[..i], "\r\n", &rest[i + 2..]),
            Some(i) => (&rest[..i], &rest[i..i + 1], &rest[i + 1..]),
        };
        out.push((content.to_string(), terminator.to_string()));
        rest = next;
    }
    out
}

/// A key added to an existing section comes after the section's other keys
/// (and their values), before any blank lines and comments that end it.
fn check_new_key_is_last(doc: &Document, section: &str, key: &str) -> Result<(), TestCaseError> {
    let line = doc.key_lines(section, key).unwrap()[0];
    for other in doc.keys(section) {
        // (An indented key has no well-defined lines of its own: skipped.)
        if let (true, Ok(lines)) = (other != key, doc.key_lines(section, &other)) {
            let last = *lines.last().unwrap();
            prop_assert!(
                last < line,
                "[{}] {} was added before {}",
                section,
                key,
                other
            );
        }
    }
    let text = doc.render();
    let all = lines(&text);
    let next = all.get(line + 1).map(|(content, _)| content.trim());
    prop_assert!(
        next.is_none_or(|l| l.is_empty() || l.starts_with(['#', ';', '['])),
        "[{}] {} is followed by {:?}",
        section,
        key,
        next
    );
    Ok(())
}

fn run(text: &str, edits: &[TestEdit]) -> Result<(), TestCaseError> {
    let original = Document::parse(text);
    let mut doc = Document::parse(text);
    let mut applied = Vec::new();
    for edit in edits {
        let before = doc.render();
        let (section, key) = edit.target();
        let is_new_key = doc.has_section(section) && doc.get(section, key).ok() == Some(None);
        match doc.apply(&edit.edit()) {
            Ok(()) => {
                applied.push(edit.clone());
                if is_new_key && matches!(edit, TestEdit::Set(..)) {
                    check_new_key_is_last(&doc, section, key)?;
                }
            }
            Err(err) => {
                prop_assert_eq!(doc.render(), before, "a refused edit changed the document");
                prop_assert!(
                    !matches!(err.kind(), ErrorKind::ReadersDisagree { .. }),
                    "only the named checks should refuse these documents: {}",
                    err
                );
            }
        }
    }
    let written = doc.render();

    // Each edited key ends as its last successful edit left it.
    let expected = final_values(&applied);
    let reread = Document::parse(&written);
    let sdk_before = sdk::parse_credentials(text);
    let sdk_after = sdk::parse_credentials(&written);
    if sdk_before.is_ok() {
        prop_assert!(
            sdk_after.is_ok(),
            "the SDK can no longer parse: {:?}",
            sdk_after.err()
        );
    }
    for (&(section, key), &value) in &expected {
        prop_assert!(reread.check_section(section).is_ok());
        prop_assert_eq!(
            reread.get(section, key).unwrap(),
            value,
            "[{}] {}",
            section,
            key
        );
        if let Ok(profiles) = &sdk_after {
            prop_assert_eq!(
                sdk::get(profiles, section, key),
                value,
                "SDK: [{}] {}",
                section,
                key
            );
        }
    }

    // Every line that does not hold an edited key is kept, in order.
    let mut owned_before = BTreeSet::new();
    for &(section, key) in expected.keys() {
        match original.key_lines(section, key) {
            Ok(lines) => owned_before.extend(lines),
            // An earlier edit made this key editable (e.g. rewrote the
            // indented key after it); its lines in the original are unknown.
            Err(_) => return Ok(()),
        }
    }
    let mut owned_after = BTreeSet::new();
    let new_sections: BTreeSet<&str> = expected
        .keys()
        .map(|&(s, _)| s)
        .filter(|s| !original.has_section(s))
        .collect();
    let after_lines = lines(&written);
    for &(section, key) in expected.keys() {
        let owned = reread.key_lines(section, key).unwrap();
        prop_assert!(
            owned.len() <= 1,
            "a written key has value lines: {:?}",
            owned
        );
        owned_after.extend(owned);
    }
    for (index, (content, _)) in after_lines.iter().enumerate() {
        if new_sections.iter().any(|s| *content == format!("[{s}]")) {
            owned_after.insert(index);
        }
    }
    let kept_before: Vec<_> = lines(text)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !owned_before.contains(i))
        .map(|(_, l)| l)
        .collect();
    let kept_after: Vec<_> = after_lines
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !owned_after.contains(i))
        .map(|(_, l)| l)
        .collect();
    prop_assert!(kept_after.len() >= kept_before.len(), "lines were lost");
    for (i, (before, after)) in kept_before.iter().zip(&kept_after).enumerate() {
        prop_assert_eq!(&before.0, &after.0, "line {} of the kept lines", i);
        // The last line may gain or lose its line ending.
        if i + 1 < kept_before.len() && i + 1 < kept_after.len() {
            prop_assert_eq!(&before.1, &after.1, "line ending of kept line {}", i);
        }
    }
    let extra = &kept_after[kept_before.len()..];
    prop_assert!(
        extra.iter().all(|(content, _)| content.is_empty()) && extra.len() <= new_sections.len(),
        "unexpected lines added: {:?}",
        extra
    );
    Ok(())
}

/// The edits the one-by-one run accepts, given to `apply_all` at once,
/// must end in the same lines, blank lines aside: one by one, whether a new
/// section gets a blank line before it, and whether the file ends with a
/// line break, depend on where in the order the section's last line was
/// edited (at once, new sections come after all edits of the others). Each
/// edited key reads its last value. The whole list at once is all or
/// nothing.
fn run_batch(text: &str, edits: &[TestEdit]) -> Result<(), TestCaseError> {
    let mut one_by_one = Document::parse(text);
    let mut accepted = Vec::new();
    for edit in edits {
        if one_by_one.apply(&edit.edit()).is_ok() {
            accepted.push(edit.clone());
        }
    }
    let batch: Vec<Edit> = accepted.iter().map(TestEdit::edit).collect();
    let mut together = Document::parse(text);
    if let Err(err) = together.apply_all(&batch) {
        return Err(TestCaseError::fail(format!(
            "the accepted edits, at once: {err}"
        )));
    }
    let not_blank = |text: &str| -> Vec<String> {
        lines(text)
            .into_iter()
            .filter(|(content, _)| !content.trim().is_empty())
            .map(|(content, _)| content)
            .collect()
    };
    prop_assert_eq!(
        not_blank(&together.render()),
        not_blank(&one_by_one.render())
    );
    let reread = Document::parse(&together.render());
    let last = final_values(&accepted);
    for ((section, key), value) in last {
        prop_assert_eq!(
            reread.get(section, key).unwrap(),
            value,
            "[{}] {}",
            section,
            key
        );
    }
    let all: Vec<Edit> = edits.iter().map(TestEdit::edit).collect();
    let mut at_once = Document::parse(text);
    match at_once.apply_all(&all) {
        Ok(()) => {
            prop_assert_eq!(
                accepted.len(),
                all.len(),
                "at once accepted what one by one refused"
            );
            prop_assert_eq!(at_once.render(), together.render());
        }
        Err(_) => prop_assert_eq!(
            at_once.render(),
            text,
            "a refused batch changed the document"
        ),
    }
    Ok(())
}

/// The SDK's own parser's error for `text` as a credentials file, with the
/// errors it wraps (the line is in the innermost).
fn sdk_error(text: &str) -> Option<String> {
    #![allow(deprecated)] // ProfileFiles / ProfileFileKind: what aws_config::profile::load takes.
    use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
    use aws_types::os_shim_internal::{Env, Fs};
    let files = ProfileFiles::builder()
        .with_contents(ProfileFileKind::Credentials, text)
        .build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let result = runtime.block_on(aws_config::profile::load(
        &Fs::real(),
        &Env::from_slice(&[]),
        &files,
        None,
    ));
    result.err().map(|error| {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(inner) = source {
            message.push_str(": ");
            message.push_str(&inner.to_string());
            source = inner.source();
        }
        message
    })
}

/// `Document::sdk_problem` against the SDK's own parser: the same verdict
/// and the same line. (A byte order mark is left out: the first write drops
/// it, so the daemon does not warn about it.)
fn run_sdk_check(text: &str) -> Result<(), TestCaseError> {
    let doc = Document::parse(text);
    let ours = doc.sdk_problem().map(|p| p.line());
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let theirs = sdk_error(text).map(|message| {
        let after = message
            .split("on line ")
            .nth(1)
            .unwrap_or_else(|| panic!("no line in the SDK's error: {message}"));
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<usize>().unwrap()
    });
    prop_assert_eq!(ours, theirs, "{:?}", text);
    Ok(())
}

proptest! {
    // Failures are kept as unit tests in src/credentials/document/tests.rs,
    // not in a regressions file.
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn edits_change_only_their_own_lines(text in document(), edits in prop::collection::vec(edit(), 1..6)) {
        run(&text, &edits)?;
    }

    #[test]
    fn a_batch_of_edits_ends_like_the_edits_one_by_one(
        text in document(),
        edits in prop::collection::vec(edit(), 1..14),
    ) {
        run_batch(&text, &edits)?;
    }

    #[test]
    fn the_sdk_check_agrees_with_the_sdk(text in document()) {
        run_sdk_check(&text)?;
    }

    #[test]
    fn the_sdk_check_agrees_with_the_sdk_on_line_soup(
        text in "[\r\n\t \\[\\]=:#;a\u{feff}]{0,60}"
    ) {
        run_sdk_check(&text)?;
    }

    #[test]
    fn parse_render_round_trips_any_string(text in any::<String>()) {
        prop_assert_eq!(Document::parse(&text).render(), text);
    }

    #[test]
    fn parse_render_round_trips_line_soup(text in "[\r\n\t \\[\\]=:#;a\u{feff}\u{a0}\u{85}]{0,60}") {
        let doc = Document::parse(&text);
        prop_assert_eq!(doc.render(), text);
        // Reading never panics, whatever the text.
        for section in doc.section_names() {
            let _ = doc.get(section, "a");
            let _ = doc.check_section(section);
        }
    }
}

#[test]
fn the_generators_reach_the_interesting_cases() {
    // Guards the property above against a generator that only produces
    // trivial documents or edits that are always refused.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut applied, mut refused, mut continuations_dropped) = (0, 0, 0);
    for _ in 0..1000 {
        let text = document().new_tree(&mut runner).unwrap().current();
        let edits = prop::collection::vec(edit(), 1..6)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let mut doc = Document::parse(&text);
        for e in &edits {
            let (section, key) = e.target();
            let owned = doc.key_lines(section, key).map(|l| l.len()).unwrap_or(0);
            match doc.apply(&e.edit()) {
                Ok(()) => {
                    applied += 1;
                    if owned > 1 {
                        continuations_dropped += 1;
                    }
                }
                Err(_) => refused += 1,
            }
        }
    }
    eprintln!(
        "applied {applied}, refused {refused}, continuations dropped {continuations_dropped}"
    );
    assert!(applied > 2000, "applied {applied}");
    assert!(refused > 100, "refused {refused}");
    assert!(
        continuations_dropped > 20,
        "continuations dropped {continuations_dropped}"
    );
}
