//! Golden tests of the credentials editor: each directory under
//! `tests/golden/credentials/` holds
//! - `input`: the file before (byte-exact: CRLF, BOM, no final newline…),
//! - `edits.txt`: one edit per line, `set SECTION KEY VALUE`,
//!   `remove SECTION KEY` or `session SECTION EXPIRY_KEY` (the edits that
//!   write the fixed session credentials below),
//! - `expected`: the file after, or `error`: a part of the refusal message
//!   (and then the file must stay as it was),
//! - `sdk_warning` (when the AWS SDKs cannot parse the input, which
//!   botocore can): a part of the warning the daemon logs.
//!
//! Each case runs through `Document` (the whole-file check, then the edits
//! one by one with `apply` and all at once with `apply_all`, which must end
//! alike) and through `CredentialsFile::update`. The `unreadable_*` cases
//! are the kinds of file botocore refuses as a whole: `tests/
//! credentials_unreadable.rs` also runs them through the daemon (no write,
//! no code, no STS call).
//! `UPDATE_GOLDEN=1 cargo test --test credentials_golden` rewrites the
//! `expected` files; review the diff.

use std::fs;
use std::path::{Path, PathBuf};

use aws_session_daemon::credentials::{
    CredentialsFile, Document, Edit, SessionEdits, WriteOutcome,
};
use aws_session_daemon::secret::SecretString;
use aws_session_daemon::session::SessionCredentials;
use time::macros::datetime;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/credentials")
}

fn session() -> SessionCredentials {
    SessionCredentials {
        access_key_id: "ASIANEWKEYEXAMPLE123".into(),
        secret_access_key: SecretString::from("newsecret/EXAMPLE+key"),
        session_token: SecretString::from("NewSessionToken//EXAMPLE=="),
        expiration: datetime!(2026-11-25 16:05:00 UTC),
    }
}

enum Outcome {
    Text(String),
    Error(String),
}

/// Turns `edits.txt` into edits (a `session` line's edits depend on what
/// the input holds).
fn edits_of(input: &Document, script: &str) -> Vec<Edit> {
    let mut all = Vec::new();
    for line in script
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let words: Vec<&str> = line.splitn(4, ' ').collect();
        match words.as_slice() {
            ["set", section, key, value] => {
                all.push(Edit::set(*section, *key, SecretString::from(*value)))
            }
            ["remove", section, key] => all.push(Edit::remove(*section, *key)),
            ["session", section, expiry_key] => {
                all.extend(input.session_edits(section, &session(), expiry_key))
            }
            _ => panic!("bad edits.txt line: {line:?}"),
        }
    }
    all
}

/// The edits through `Document`, as the file writer makes them: the whole
/// file checked first (`check_readable`), then the edits one by one with
/// `apply`, and again all at once with `apply_all`; both must end alike.
fn run_document(input: &str, script: &str) -> (Vec<Edit>, Outcome) {
    let doc = Document::parse(input);
    assert_eq!(doc.render(), input, "round trip");
    let edits = edits_of(&doc, script);
    if let Err(err) = doc.check_readable() {
        return (edits, Outcome::Error(err.to_string()));
    }
    let mut one_by_one = Document::parse(input);
    let mut sequential = Outcome::Text(String::new());
    for edit in &edits {
        let before = one_by_one.render();
        if let Err(err) = one_by_one.apply(edit) {
            assert_eq!(
                one_by_one.render(),
                before,
                "a refused edit changes nothing"
            );
            sequential = Outcome::Error(err.to_string());
            break;
        }
    }
    if let Outcome::Text(text) = &mut sequential {
        *text = one_by_one.render();
    }
    let mut together = Document::parse(input);
    let batch = match together.apply_all(&edits) {
        Ok(()) => Outcome::Text(together.render()),
        Err(err) => {
            assert_eq!(together.render(), input, "refused edits change nothing");
            Outcome::Error(err.to_string())
        }
    };
    // One by one, whether the file ends with a line break can depend on
    // the order of the edits (a new section appended while the file ends
    // without one keeps it so; the last line, removed, takes it along).
    let without_final_newline = |text: &str| {
        let text = text.strip_suffix('\n').unwrap_or(text);
        text.strip_suffix('\r').unwrap_or(text).to_string()
    };
    match (&sequential, &batch) {
        (Outcome::Text(a), Outcome::Text(b)) => assert_eq!(
            without_final_newline(a),
            without_final_newline(b),
            "apply vs apply_all"
        ),
        (Outcome::Error(a), Outcome::Error(b)) => assert_eq!(a, b, "apply vs apply_all"),
        _ => panic!(
            "apply and apply_all disagree: {:?} / {:?}",
            sequential.describe(),
            batch.describe()
        ),
    }
    (edits, batch)
}

impl Outcome {
    fn describe(&self) -> String {
        match self {
            Outcome::Text(text) => format!("text of {} bytes", text.len()),
            Outcome::Error(message) => message.clone(),
        }
    }
}

/// `sdk_warning`, when present, is a part of the warning the daemon logs
/// for the input (the AWS SDKs cannot parse it); without it, the SDKs must
/// read the input (a byte order mark aside, which the first write drops).
fn check_sdk_warning(case: &Path, input: &str) -> Result<(), String> {
    let problem = Document::parse(input).sdk_problem().map(|p| p.to_string());
    let path = case.join("sdk_warning");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        match &problem {
            Some(problem) => fs::write(&path, format!("{problem}\n")).unwrap(),
            None => {
                let _ = fs::remove_file(&path);
            }
        }
    }
    let expected = fs::read_to_string(&path).ok();
    match (expected, problem) {
        (None, None) => Ok(()),
        (Some(expected), Some(problem)) if problem.contains(expected.trim_end()) => Ok(()),
        (expected, problem) => Err(format!(
            "SDK warning {problem:?}, expected {expected:?} (UPDATE_GOLDEN=1 rewrites sdk_warning)"
        )),
    }
}

fn run_case(case: &Path) -> Result<(), String> {
    let read = |name: &str| fs::read_to_string(case.join(name));
    let input = read("input").map_err(|e| format!("input: {e}"))?;
    let script = read("edits.txt").map_err(|e| format!("edits.txt: {e}"))?;
    let expected_error = read("error").ok().map(|e| e.trim_end().to_string());
    let (edits, outcome) = run_document(&input, &script);
    check_sdk_warning(case, &input)?;

    // The same edits through the file writer, in one update.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credentials");
    if !input.is_empty() {
        fs::write(&path, &input).unwrap();
    }
    let file = CredentialsFile::new(path.clone(), 2);
    let written = file.update(&edits);
    let on_disk = fs::read_to_string(&path).unwrap_or_default();

    match (expected_error, outcome) {
        (Some(expected), Outcome::Error(message)) => {
            if !message.contains(&expected) {
                return Err(format!("error {message:?} does not contain {expected:?}"));
            }
            let err = written.err().ok_or("the file writer accepted the edits")?;
            if !err.to_string().contains(&expected) {
                return Err(format!(
                    "file writer error {err} does not contain {expected:?}"
                ));
            }
            if on_disk != input || dir.path().join("credentials.1").exists() {
                return Err("a refused update changed the file".into());
            }
            Ok(())
        }
        (Some(expected), Outcome::Text(_)) => Err(format!("expected an error with {expected:?}")),
        (None, Outcome::Error(message)) => Err(format!("unexpected error: {message}")),
        (None, Outcome::Text(text)) => {
            let expected_path = case.join("expected");
            if std::env::var_os("UPDATE_GOLDEN").is_some() {
                fs::write(&expected_path, &text).unwrap();
            }
            let expected = fs::read_to_string(&expected_path)
                .map_err(|e| format!("expected: {e} (run with UPDATE_GOLDEN=1 to create it)"))?;
            if text != expected {
                return Err(format!(
                    "document result differs\n--- expected\n{expected:?}\n--- got\n{text:?}"
                ));
            }
            let outcome = written.map_err(|e| format!("file writer: {e}"))?;
            if on_disk != expected {
                return Err(format!("file on disk differs: {on_disk:?}"));
            }
            let want = if text == input {
                WriteOutcome::Unchanged
            } else {
                WriteOutcome::Written
            };
            if outcome != want {
                return Err(format!("file writer said {outcome:?}, expected {want:?}"));
            }
            Ok(())
        }
    }
}

#[test]
fn golden_cases() {
    let mut cases: Vec<PathBuf> = fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 12, "only {} golden cases found", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            run_case(case)
                .err()
                .map(|e| format!("{}: {e}", case.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} failing golden cases:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn refusals_never_show_secret_values() {
    for case in [
        "duplicate_key",
        "duplicate_section",
        "bare_cr",
        "indented_keys",
    ] {
        let case = golden_dir().join(case);
        let input = fs::read_to_string(case.join("input")).unwrap();
        let script = fs::read_to_string(case.join("edits.txt")).unwrap();
        let (_, outcome) = run_document(&input, &script);
        let Outcome::Error(message) = outcome else {
            panic!("{}: expected a refusal", case.display())
        };
        for secret in [
            "oldtoken",
            "newtoken",
            "NewSessionToken",
            "newsecret",
            "= a",
            "= b",
        ] {
            assert!(!message.contains(secret), "{message}");
        }
    }
}
