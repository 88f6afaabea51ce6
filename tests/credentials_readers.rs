//! The editor's whole-file checks against the readers themselves:
//!
//! - `Document::check_readable` (the daemon refuses to write into a file
//!   botocore cannot parse) must say "unreadable" for exactly the files that
//!   botocore's own loader refuses, as the AWS CLI loads the credentials
//!   file (`botocore.configloader.raw_config_parse`, nested values parsed);
//! - `Document::sdk_problem` (the daemon warns) must name exactly the files,
//!   and the line, that the AWS SDK for Rust's profile parser refuses.
//!
//! The files: the golden inputs, the bad-input corpus, hand-written cases
//! of each kind the daemon meets in other tools' files, and random
//! documents. A byte order mark is left out (both readers refuse it, and
//! the daemon's first write drops it).
//!
//! botocore must be installed (`pip install botocore`); the test fails, never
//! skips, without it.

use std::fs;
use std::path::{Path, PathBuf};

use aws_session_daemon::credentials::{CredentialsFile, Document};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

#[path = "support/botocore.rs"]
mod botocore;
#[path = "support/credentials_gen.rs"]
mod generate;
#[path = "support/tools.rs"]
mod tools;

const GENERATED: usize = 1500;
/// Random files both readers accept (before any of these checks).
const GENERATED_READABLE: usize = 300;

/// One of each kind of file the daemon finds written by other tools.
const HAND_WRITTEN: &[(&str, &str)] = &[
    (
        "duplicate section, not owned",
        "[default]\nregion = a\n\n[other]\nx = 1\n\n[other]\ny = 2\n",
    ),
    (
        "duplicate key, not owned",
        "[default]\nregion = a\n[other]\nx = 1\nX = 2\n",
    ),
    (
        "duplicate key across two [DEFAULT] headers",
        "[DEFAULT]\nx = 1\n[a]\ny = 1\n[DEFAULT]\nx = 2\n",
    ),
    (
        "two [DEFAULT] headers",
        "[DEFAULT]\nx = 1\n[a]\ny = 1\n[DEFAULT]\nz = 2\n",
    ),
    (
        "nested line without =",
        "[default]\nregion = a\n[other]\ns3 =\n  max_concurrent_requests = 20\n  addressing_style\n",
    ),
    (
        "nested block, fine",
        "[other]\ns3 =\n  max_concurrent_requests = 20\n  addressing_style = path\n",
    ),
    (
        "nested line without = after a blank line",
        "[other]\ns3 =\n\n  bare\n",
    ),
    (
        "nested line without = in [DEFAULT]",
        "[DEFAULT]\ns3 =\n  bare\n[a]\nx = 1\n",
    ),
    (
        "value continued, first line not empty",
        "[other]\nx = 1\n  bare\n",
    ),
    ("key : value", "[default]\nregion : eu-west-1\n"),
    ("indented first header", "  [default]\nregion = a\n"),
    ("indented key after a header", "[default]\n  region = a\n"),
    ("text after a header", "[default] x\nregion = a\n"),
    ("key before the first header", "region = a\n[default]\n"),
    ("line without separator", "[default]\nregion = a\njunk\n"),
    ("empty key", "[default]\n= a\n"),
    (
        "comment lines everywhere",
        "# a\n; b\n[default]\n  # c\nregion = a\n",
    ),
    ("bare CR", "[default]\rregion = a\r"),
    ("CRLF", "[default]\r\nregion = a\r\n"),
    ("empty", ""),
];

struct Input {
    name: String,
    path: PathBuf,
    /// The text as the readers get it (without a byte order mark).
    text: Option<String>,
}

fn inputs(dir: &Path) -> Vec<Input> {
    let mut texts: Vec<(String, Vec<u8>)> = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut golden: Vec<PathBuf> = fs::read_dir(root.join("tests/golden/credentials"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    golden.sort();
    for case in golden {
        let name = format!("golden {}", case.file_name().unwrap().to_string_lossy());
        texts.push((name, fs::read(case.join("input")).unwrap()));
    }
    let mut corpus: Vec<PathBuf> = fs::read_dir(root.join("tests/corpus/credentials"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    corpus.sort();
    for file in corpus {
        let name = format!("corpus {}", file.file_name().unwrap().to_string_lossy());
        texts.push((name, fs::read(file).unwrap()));
    }
    for (name, text) in HAND_WRITTEN {
        texts.push((name.to_string(), text.as_bytes().to_vec()));
    }
    let mut runner = TestRunner::deterministic();
    for n in 0..GENERATED {
        let text = generate::document()
            .new_tree(&mut runner)
            .unwrap()
            .current();
        texts.push((format!("generated #{n}"), text.into_bytes()));
    }
    for n in 0..GENERATED_READABLE {
        let text = generate::readable_document()
            .new_tree(&mut runner)
            .unwrap()
            .current();
        texts.push((format!("generated readable #{n}"), text.into_bytes()));
    }
    texts
        .into_iter()
        .enumerate()
        .map(|(index, (name, bytes))| {
            let bytes = bytes
                .strip_prefix("\u{feff}".as_bytes())
                .map(<[u8]>::to_vec)
                .unwrap_or(bytes);
            let path = dir.join(index.to_string());
            fs::write(&path, &bytes).unwrap();
            Input {
                name,
                path,
                text: String::from_utf8(bytes).ok(),
            }
        })
        .collect()
}

/// botocore's reading of `paths` (no credentials asked).
fn botocore(paths: &[PathBuf]) -> botocore::Output {
    botocore::require();
    let requests: Vec<_> = paths.iter().map(|p| (p.clone(), Vec::new())).collect();
    botocore::read(&requests)
}

#[test]
fn the_daemon_refuses_exactly_the_files_botocore_cannot_parse() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs(dir.path());
    let paths: Vec<PathBuf> = inputs.iter().map(|i| i.path.clone()).collect();
    let output = botocore(&paths);
    let (mut refused, mut accepted) = (0, 0);
    let mut disagreements = Vec::new();
    for (input, theirs) in inputs.iter().zip(&output.files) {
        let botocore_error = theirs.error.as_ref().or(theirs.cli_error.as_ref());
        let ours = CredentialsFile::new(input.path.clone(), 0)
            .read()
            .and_then(|doc| doc.check_readable());
        match (&ours, botocore_error) {
            (Ok(()), None) => accepted += 1,
            (Err(_), Some(_)) => refused += 1,
            (ours, theirs) => disagreements.push(format!(
                "{}: ours {:?}, botocore {theirs:?}\n{:?}",
                input.name,
                ours.as_ref().map_err(ToString::to_string),
                input.text
            )),
        }
    }
    eprintln!(
        "botocore {}: {} files, {refused} refused by both, {accepted} read by both",
        output.botocore_version,
        inputs.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n\n")
    );
    assert!(refused >= 1000 && accepted >= 400, "{refused} / {accepted}");
}

#[test]
fn the_daemon_warns_about_exactly_the_files_the_sdk_cannot_parse() {
    #![allow(deprecated)] // ProfileFiles / ProfileFileKind: what aws_config::profile::load takes.
    use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
    use aws_types::os_shim_internal::{Env, Fs};
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (mut warned, mut read) = (0, 0);
    let mut disagreements = Vec::new();
    for input in inputs(dir.path()) {
        let Some(text) = &input.text else { continue };
        let ours = Document::parse(text).sdk_problem().map(|p| p.line());
        let files = ProfileFiles::builder()
            .with_contents(ProfileFileKind::Credentials, text)
            .build();
        let theirs = runtime
            .block_on(aws_config::profile::load(
                &Fs::real(),
                &Env::from_slice(&[]),
                &files,
                None,
            ))
            .err()
            .map(|error| format!("{error:?}"));
        let their_line = theirs.as_ref().map(|debug| {
            let after = debug
                .split("line_number: ")
                .nth(1)
                .unwrap_or_else(|| panic!("no line in {debug}"));
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<usize>().unwrap()
        });
        match (ours, their_line) {
            (None, None) => read += 1,
            (Some(a), Some(b)) if a == b => warned += 1,
            (ours, _) => disagreements.push(format!(
                "{}: ours {ours:?}, the SDK {theirs:?}\n{text:?}",
                input.name
            )),
        }
    }
    eprintln!("SDK: {warned} files warned about (same line), {read} read");
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n\n")
    );
    assert!(warned >= 1000 && read >= 400, "{warned} / {read}");
}
