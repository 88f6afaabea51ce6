//! Inputs that try to break the daemon, shared by tests/bad_input.rs (which
//! checks what each command says) and the hostile-input benchmark (which
//! measures memory and time): the corpus, the good config and credentials
//! file the corpus files run against, and the giants made at run time.

#![allow(dead_code)] // each user takes a part

use std::path::Path;

/// `tests/corpus/`: malformed config and credentials files, and what each
/// command must say about them (`expectations.toml`).
pub const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");

/// The long-term secret of [`GOOD_CREDENTIALS`]: no output may show it.
pub const LONG_TERM_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// The long-term keys that the config cases run against.
pub const GOOD_CREDENTIALS: &str = "# my long-term keys\n[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n";

/// The config that the credentials cases run against: profile `a` gets the
/// MFA session, `b` a role assumed from it.
pub fn good_config(endpoint: &str) -> String {
    format!(
        "mfa_serial_number = \"arn:aws:iam::123456789012:mfa/me\"\nmfa_process = \"echo 123456\"\nsts_endpoint = \"{endpoint}\"\nregion = \"us-east-1\"\n\n[a]\n\n[b]\nassume_role_arn = \"arn:aws:iam::111111111111:role/Admin\"\n"
    )
}

/// The corpus files of `kind` (`config`, `credentials`), sorted by name.
pub fn corpus_files(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(CORPUS).join(kind);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// A comment line of 100 bytes, to grow files with.
fn filler() -> String {
    format!("# {}\n", "x".repeat(97))
}

/// [`good_config`] grown past 6 MB with comments (the limit is 4 MiB).
pub fn huge_config(endpoint: &str) -> String {
    let mut text = good_config(endpoint);
    let filler = filler();
    while text.len() <= 6_000_000 {
        text.push_str(&filler);
    }
    text
}

/// [`GOOD_CREDENTIALS`] grown past 20 MB with comments.
pub fn huge_credentials() -> Vec<u8> {
    let mut text = GOOD_CREDENTIALS.as_bytes().to_vec();
    let filler = filler();
    while text.len() <= 20_000_000 {
        text.extend_from_slice(filler.as_bytes());
    }
    text
}

/// 378 KB asking for 10,000 sections that each inherit 10,000 keys (100
/// million values once expanded).
pub fn expanding_config() -> String {
    let mut config = String::from("mfa_serial_number = \"arn:aws:iam::123456789012:mfa/me\"\n");
    for i in 0..10_000 {
        config.push_str(&format!("k{i} = 1\n"));
    }
    for i in 0..10_000 {
        config.push_str(&format!("[s{i}]\n"));
    }
    config
}

/// The audit's 3.9 MB config (issue 22): one `assume_role_external_id` of
/// 3.9 million characters, inherited by 1,000 sections (each a role), so
/// that expanding it naively copies 3.9 GB.
pub fn inherited_huge_value_config(endpoint: &str) -> String {
    let mut config = format!(
        "{}assume_role_arn = \"arn:aws:iam::111111111111:role/Admin\"\nassume_role_external_id = \"{}\"\n",
        good_config(endpoint).split("\n[a]").next().unwrap(),
        "x".repeat(3_900_000)
    );
    for i in 0..1_000 {
        config.push_str(&format!("[s{i}]\n"));
    }
    config
}

/// One section whose `assume_role_external_id` is 3.9 million characters
/// (AWS takes at most 1,224): refused with a one-line message.
pub fn long_external_id_config(endpoint: &str) -> String {
    format!(
        "{}\n[prod]\nassume_role_arn = \"arn:aws:iam::111111111111:role/Admin\"\nassume_role_external_id = \"{}\"\n",
        good_config(endpoint).split("\n[a]").next().unwrap(),
        "x".repeat(3_900_000)
    )
}

/// A FIFO at `path`, where a file belongs: a reader that opens it blocks
/// until a writer comes.
pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}
