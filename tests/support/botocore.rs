//! botocore as a reader of credentials files: `credentials_botocore.py`
//! (run by the project's `python3`, see `tools`) reads each file as the AWS
//! CLI does and says what it found, so that tests compare the editor with
//! the AWS CLI's own parser. One copy for every test that asks it.

#![allow(dead_code)] // each test binary uses a part

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::tools;

#[derive(Deserialize, Debug)]
pub struct Output {
    pub botocore_version: String,
    pub files: Vec<File>,
}

/// What botocore made of one file.
#[derive(Deserialize, Debug)]
pub struct File {
    #[serde(default)]
    pub sections: Option<BTreeMap<String, BTreeMap<String, String>>>,
    /// botocore's own parser refused the file.
    pub error: Option<String>,
    /// The AWS CLI's reading of it failed.
    pub cli_error: Option<String>,
    /// The credentials botocore's provider hands out for each profile asked.
    #[serde(default)]
    pub credentials: BTreeMap<String, Option<Credentials>>,
}

#[derive(Deserialize, Debug, PartialEq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub token: Option<String>,
}

/// Fails the test, with the fix, when botocore is not installed: these
/// checks must not be skipped.
pub fn require() {
    let python = tools::python3();
    let found = Command::new(&python)
        .args(["-c", "import botocore"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "botocore is not available to {}: {} (this test checks the written file with the \
         AWS CLI's own parser and must not be skipped)",
        python.display(),
        tools::INSTALL
    );
}

/// Reads each file, and the credentials of the profiles named with it.
pub fn read(requests: &[(PathBuf, Vec<String>)]) -> Output {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/credentials_botocore.py");
    let payload: Vec<_> = requests
        .iter()
        .map(|(path, profiles)| serde_json::json!({ "path": path, "profiles": profiles }))
        .collect();
    let mut child = Command::new(tools::python3())
        .arg(&script)
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the project's python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&payload).unwrap().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed: Output = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(parsed.files.len(), requests.len());
    parsed
}
