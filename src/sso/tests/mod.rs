//! The SSO module on real parts: the IAM Identity Center stand-in
//! (`examples/sso_front`), moto, botocore and the AWS SDK for Rust from the
//! test environment, and processes of this very test binary as the other
//! processes of a machine (`child_process_entry`).
//!
//! In the crate, not in `tests/`: the module's items are `pub(crate)`, and
//! driving them from here needs no feature compiled into the release
//! binary.

#[path = "../../../tests/support/example_bin.rs"]
mod example_bin;
#[path = "../../../tests/support/moto.rs"]
mod moto;
#[path = "../../../tests/support/sso_front.rs"]
mod sso_front;
#[path = "../../../tests/support/tools.rs"]
mod tools;

mod errors;
mod flows;
mod interop;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

use super::{AccessToken, DeviceCode, SignInOrigin, SsoClients, SsoEndpoints, SsoSession};

pub(super) const ACCOUNT: &str = "111122223333";
pub(super) const ROLE: &str = "ReadOnly";

/// The test's clock: the wall clock (the stand-in's lifetimes are real).
pub(super) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A home directory (token cache), a runtime directory (sign-in locks), a
/// stand-in, a session on it, and the module's clients.
pub(super) struct Rig {
    pub front: sso_front::SsoFront,
    pub home: tempfile::TempDir,
    pub runtime: tempfile::TempDir,
    pub session: SsoSession,
    pub clients: SsoClients,
}

impl Rig {
    /// A stand-in with `args` (after `--interval-seconds 1`).
    pub fn start(args: &[&str]) -> Rig {
        let mut all = vec!["--interval-seconds", "1"];
        all.extend_from_slice(args);
        let front = sso_front::SsoFront::start(&all);
        let home = tempfile::tempdir().unwrap();
        let runtime = tempfile::tempdir().unwrap();
        let session = SsoSession::new(
            "corp",
            "https://d-1234567890.awsapps.com/start",
            "eu-west-1",
        );
        let clients = Self::clients_for(&front, &home, &runtime);
        Rig {
            front,
            home,
            runtime,
            session,
            clients,
        }
    }

    /// Another process's view: its own clients on the same files.
    pub fn clients_for(
        front: &sso_front::SsoFront,
        home: &tempfile::TempDir,
        runtime: &tempfile::TempDir,
    ) -> SsoClients {
        SsoClients::new(
            super::token_cache_dir(home.path()),
            Some(runtime.path().join("aws-session-daemon")),
            SsoEndpoints {
                oidc: Some(front.url.clone()),
                portal: Some(front.url.clone()),
            },
        )
    }

    pub fn cache_file(&self) -> PathBuf {
        super::token_cache_dir(self.home.path()).join(format!(
            "{}.json",
            super::cache::cache_key(&self.session.name)
        ))
    }

    pub fn cached_json(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.cache_file()).expect("the token cache"))
            .expect("the token cache is JSON")
    }

    pub async fn token(&self, person: &Person) -> Result<AccessToken, super::SsoError> {
        self.clients
            .access_token(&self.session, &now, &|code| person.sees(code))
            .await
    }

    pub async fn role(
        &self,
        token: &AccessToken,
    ) -> Result<crate::session::SessionCredentials, super::SsoError> {
        self.clients
            .role_credentials(&self.session, token, ACCOUNT, ROLE, now())
            .await
    }
}

/// What the person does with a sign-in's code.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    Approve,
    Deny,
    Ignore,
}

/// The person at the browser: sees every code the module shows, and
/// decides (in a thread of its own, as a person would, after `delay`).
#[derive(Clone)]
pub(super) struct Person {
    pub shown: Arc<Mutex<Vec<DeviceCode>>>,
    decision: Decision,
    delay: std::time::Duration,
    /// When the person answered the form.
    pub answered: Arc<Mutex<Option<std::time::Instant>>>,
}

impl Person {
    pub fn new(decision: Decision) -> Person {
        Person {
            shown: Arc::default(),
            decision,
            delay: std::time::Duration::from_millis(300),
            answered: Arc::default(),
        }
    }

    pub fn sees(&self, code: &DeviceCode) {
        self.shown.lock().unwrap().push(code.clone());
        if code.origin != SignInOrigin::ThisProcess || self.decision == Decision::Ignore {
            return;
        }
        let (url, user_code, delay) = (code.url().to_string(), code.user_code.clone(), self.delay);
        let decision = match self.decision {
            Decision::Deny => "deny",
            _ => "approve",
        };
        let answered = self.answered.clone();
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            sso_front::browser_decides(&url, &user_code, decision);
            *answered.lock().unwrap() = Some(std::time::Instant::now());
        });
    }

    pub fn codes(&self) -> Vec<DeviceCode> {
        self.shown.lock().unwrap().clone()
    }
}

/// Not a test: the body of the other processes the tests start (this test
/// binary again, with `SSO_TEST_CHILD` set). Does nothing without it.
#[test]
fn child_process_entry() {
    let Ok(role) = std::env::var("SSO_TEST_CHILD") else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match role.as_str() {
        "access-token" => runtime.block_on(flows::child_access_token()),
        "sdk-credentials" => runtime.block_on(interop::child_sdk_credentials()),
        other => panic!("unknown SSO_TEST_CHILD {other}"),
    }
}

/// A command that runs [`child_process_entry`] as `role`.
pub(super) fn child(role: &str) -> std::process::Command {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "sso::tests::child_process_entry",
            "--nocapture",
            "--test-threads=1",
            "--quiet",
        ])
        .env("SSO_TEST_CHILD", role)
        .stdin(std::process::Stdio::null());
    command
}
