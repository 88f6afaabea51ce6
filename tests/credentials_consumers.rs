//! Cross-check with the real consumers of the credentials file: the editor
//! writes session credentials into files made from varied inputs (the golden
//! inputs, hand-written odd files, random documents), then
//! - botocore (PyPI; `tests/support/credentials_botocore.py`) reads them with
//!   its own config loader and credential provider, and
//! - the AWS SDK for Rust reads them with `aws_config::profile::load` and its
//!   profile credentials provider,
//!
//! and both must read what `Document` reads. A file a reader could parse
//! before the edit must stay parseable after it.
//!
//! botocore must be installed (in the project's Python environment:
//! `scripts/install-deps.sh`); the test fails, never skips, without it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use aws_session_daemon::credentials::{CredentialsFile, Document, Edit, SessionEdits};
use aws_session_daemon::secret::{ExposeSecret, SecretString};
use aws_session_daemon::session::SessionCredentials;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use time::macros::datetime;

#[path = "support/botocore.rs"]
mod botocore;
#[path = "support/credentials_gen.rs"]
mod generate;
#[path = "support/credentials_sdk.rs"]
mod sdk;
#[path = "support/tools.rs"]
mod tools;

const EXPIRY_KEY: &str = "x_security_token_expires";
const GENERATED: usize = 150;

/// Odd files worth a reader's opinion, beyond the golden inputs.
const HAND_WRITTEN: &[(&str, &str)] = &[
    (
        "indented keys after the header (botocore reads them)",
        "[other]\n    region = eu-west-1\n    output = json\n\n[prod]\naws_access_key_id = ASIAOLD\n",
    ),
    (
        "default with a stale security token",
        "[DEFAULT]\naws_security_token = STALE\nregion = eu-west-1\n\n[prod]\naws_session_token = old\n",
    ),
    (
        "colons, tabs, upper case",
        "[prod]\nAWS_ACCESS_KEY_ID:ASIAOLD\naws_secret_access_key\t:\told\nRegion=eu-west-1\n",
    ),
    (
        "continuations and comments everywhere",
        "; top\n[prod]\n# c\naws_session_token = a\n  b\n\n\tc\n  # indented\n# col0\nregion = x\n[fresh]\n",
    ),
    (
        "crlf without final newline",
        "[default]\r\naws_access_key_id = AKIA\r\n\r\n[prod]\r\nregion = x",
    ),
    (
        "byte order mark",
        "\u{feff}[default]\naws_access_key_id = AKIA\n",
    ),
    (
        "nested value then keys",
        "[prod]\ns3 =\n  max_concurrent_requests = 20\n  signature_version = s3v4\nregion = x\n",
    ),
    (
        "inline comment characters",
        "[prod]\naws_session_token = a # b\nregion = eu;west\n[fresh] ; comment\n",
    ),
    ("only comments", "# nothing here\n; really\n"),
    ("empty", ""),
];

struct Case {
    name: String,
    input: String,
    original: PathBuf,
    written: PathBuf,
    profiles: Vec<String>,
    creds: BTreeMap<String, SessionCredentials>,
    /// (profile, key) of every key written.
    written_keys: Vec<(String, String)>,
}

fn session(case: usize, profile: &str) -> SessionCredentials {
    SessionCredentials {
        access_key_id: format!("ASIA{case:04}{:0>12}", profile.len()),
        secret_access_key: SecretString::from(format!("secret/{profile}+{case}")),
        session_token: SecretString::from(format!("Token{case}{profile}//x==")),
        expiration: datetime!(2026-11-25 16:05:00 UTC),
    }
}

fn inputs() -> Vec<(String, String)> {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/credentials");
    let mut inputs = Vec::new();
    let mut dirs: Vec<_> = fs::read_dir(&golden)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && !p.join("error").exists())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = format!("golden {}", dir.file_name().unwrap().to_string_lossy());
        inputs.push((name, fs::read_to_string(dir.join("input")).unwrap()));
    }
    for (name, text) in HAND_WRITTEN {
        inputs.push((name.to_string(), text.to_string()));
    }
    let mut runner = TestRunner::deterministic();
    for n in 0..GENERATED {
        let text = generate::document()
            .new_tree(&mut runner)
            .unwrap()
            .current();
        inputs.push((format!("generated #{n}"), text));
        let text = generate::readable_document()
            .new_tree(&mut runner)
            .unwrap()
            .current();
        inputs.push((format!("generated readable #{n}"), text));
    }
    inputs
}

/// Writes every input, then the session credentials of two or three
/// profiles into it: `prod`, `fresh` and the file's first usable section.
/// Inputs the editor refuses (duplicates…) are left out and counted.
fn write_cases(dir: &Path) -> (Vec<Case>, usize) {
    let mut cases = Vec::new();
    let mut refused = 0;
    for (index, (name, input)) in inputs().into_iter().enumerate() {
        let case_dir = dir.join(index.to_string());
        fs::create_dir(&case_dir).unwrap();
        let original = case_dir.join("original");
        let written = case_dir.join("credentials");
        fs::write(&original, &input).unwrap();
        if !input.is_empty() {
            fs::write(&written, &input).unwrap();
        }
        let file = CredentialsFile::new(written.clone(), 0);
        let doc = file.read().unwrap();
        let mut profiles = vec!["prod".to_string(), "fresh".to_string()];
        if let Some(first) = doc.section_names().into_iter().find(|s| {
            !profiles.iter().any(|p| p == s)
                && Edit::set(*s, "k", SecretString::from("v"))
                    .validate()
                    .is_ok()
        }) {
            profiles.push(first.to_string());
        }
        let mut creds = BTreeMap::new();
        let mut edits = Vec::new();
        for profile in &profiles {
            let session = session(index, profile);
            edits.extend(doc.session_edits(profile, &session, EXPIRY_KEY));
            creds.insert(profile.clone(), session);
        }
        let written_keys = edits
            .iter()
            .map(|e| (e.section().to_string(), e.key().to_string()))
            .collect();
        match file.update(&edits) {
            Ok(_) => cases.push(Case {
                name,
                input,
                original,
                written,
                profiles,
                creds,
                written_keys,
            }),
            Err(_) => refused += 1,
        }
    }
    (cases, refused)
}

/// botocore's sections (with [DEFAULT] merged in) against the document's.
fn compare_with_botocore(
    case: &Case,
    doc: &Document,
    sections: &BTreeMap<String, BTreeMap<String, String>>,
) {
    let mut ours: Vec<&str> = doc
        .section_names()
        .into_iter()
        .filter(|s| *s != "DEFAULT")
        .collect();
    ours.sort();
    ours.dedup();
    let theirs: Vec<&str> = sections.keys().map(String::as_str).collect();
    assert_eq!(ours, theirs, "{}: sections", case.name);
    for (section, keys) in sections {
        for (key, value) in keys {
            assert_eq!(
                doc.get_inherited(section, key).unwrap(),
                Some(value.as_str()),
                "{}: [{section}] {key}",
                case.name
            );
        }
        for key in doc.keys(section).into_iter().chain(doc.keys("DEFAULT")) {
            assert!(
                keys.contains_key(key.as_ref()),
                "{}: [{section}] {key} unseen by botocore",
                case.name
            );
        }
    }
}

#[test]
fn botocore_reads_what_the_editor_wrote() {
    botocore::require();
    let dir = tempfile::tempdir().unwrap();
    let (cases, refused) = write_cases(dir.path());
    let mut requests = Vec::new();
    for case in &cases {
        requests.push((case.original.clone(), Vec::new()));
        requests.push((case.written.clone(), case.profiles.clone()));
    }
    let output = botocore::read(&requests);
    let (mut compared, mut already_broken) = (0, 0);
    for (case, pair) in cases.iter().zip(output.files.chunks(2)) {
        let (before, after) = (&pair[0], &pair[1]);
        let text = fs::read_to_string(&case.written).unwrap();
        let Some(sections) = &after.sections else {
            assert!(
                before.error.is_some() || case.input.starts_with('\u{feff}'),
                "{}: botocore read the input but not the written file: {:?}\n{text:?}",
                case.name,
                after.error
            );
            already_broken += 1;
            continue;
        };
        let doc = Document::parse(&text);
        compare_with_botocore(case, &doc, sections);
        if let Some(error) = &after.cli_error {
            assert!(
                before.cli_error.is_some(),
                "{}: the AWS CLI's loader read the input but not the written file: {error}",
                case.name
            );
            already_broken += 1;
            continue;
        }
        for profile in &case.profiles {
            let creds = &case.creds[profile];
            assert_eq!(
                after.credentials[profile],
                Some(botocore::Credentials {
                    access_key: creds.access_key_id.clone(),
                    secret_key: creds.secret_access_key.expose_secret().to_string(),
                    token: Some(creds.session_token.expose_secret().to_string()),
                }),
                "{}: botocore's credentials for [{profile}]",
                case.name
            );
        }
        compared += 1;
    }
    eprintln!(
        "botocore {}: {compared} files compared, {already_broken} unreadable before and after, \
         {refused} inputs refused by the editor",
        output.botocore_version
    );
    let golden_and_hand_written = cases
        .iter()
        .filter(|c| !c.name.starts_with("generated"))
        .count();
    assert!(
        golden_and_hand_written >= 25,
        "only {golden_and_hand_written} non-random cases"
    );
    assert!(
        compared >= golden_and_hand_written + 120,
        "only {compared} files compared"
    );
}

#[test]
fn the_sdk_reads_what_the_editor_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let (cases, refused) = write_cases(dir.path());
    let (mut compared, mut already_broken) = (0, 0);
    for case in &cases {
        let text = fs::read_to_string(&case.written).unwrap();
        let doc = Document::parse(&text);
        let profiles = match sdk::load_credentials_file(&case.written) {
            Ok(profiles) => profiles,
            Err(err) => {
                assert!(
                    sdk::parse_credentials(&case.input).is_err(),
                    "{}: the SDK read the input but not the written file: {err}\n{text:?}",
                    case.name
                );
                already_broken += 1;
                continue;
            }
        };
        // The readers may differ on keys the editor did not write (inline
        // comments, indented comments); on the written ones they must not.
        for (profile, key) in &case.written_keys {
            let ours = doc.get(profile, key).unwrap();
            assert!(
                ours.is_some(),
                "{}: [{profile}] {key} not written",
                case.name
            );
            assert_eq!(
                sdk::get(&profiles, profile, key),
                ours,
                "{}: [{profile}] {key}",
                case.name
            );
        }
        for profile in &case.profiles {
            let creds = &case.creds[profile];
            let (access, secret, token) = sdk::profile_credentials(&case.written, profile)
                .unwrap_or_else(|e| panic!("{}: [{profile}]: {e}", case.name));
            assert_eq!(access, creds.access_key_id, "{}: [{profile}]", case.name);
            assert_eq!(secret, creds.secret_access_key.expose_secret());
            assert_eq!(token.as_deref(), Some(creds.session_token.expose_secret()));
        }
        compared += 1;
    }
    eprintln!(
        "SDK: {compared} files compared, {already_broken} unreadable before and after, \
         {refused} inputs refused by the editor"
    );
    assert!(compared >= 140, "only {compared} files compared");
}
