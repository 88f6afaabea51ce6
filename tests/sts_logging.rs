//! A full GetSessionToken + AssumeRole run (and refused calls) with this
//! crate logging at TRACE, as `--log-level trace` sets it up (other crates
//! at warn): the log names the calls, and no secret key, session token, MFA
//! code or unmasked access key id appears in it.

#[path = "support/example_bin.rs"]
mod example_bin;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/sts_front.rs"]
mod sts_front;
#[path = "support/tools.rs"]
mod tools;

use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing_subscriber::prelude::*;

use aws_session_daemon::config::RoleSettings;
use aws_session_daemon::secret::{ExposeSecret, SecretString};
use aws_session_daemon::sts::{Endpoint, MfaCode, SigningKeys, StsClients, StsErrorKind};
use moto::Moto;
use sts_front::StsFront;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

const LONG_TERM_ID: &str = "AKIAI44QH8DHBEXAMPLE";
const LONG_TERM_SECRET: &str = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY";
const SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_name_the_calls_and_hold_no_secret() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(buffer.clone())
        .with_ansi(false)
        .without_time()
        .finish()
        .with(
            tracing_subscriber::filter::Targets::new()
                .with_default(tracing::Level::WARN)
                .with_target("aws_session_daemon", tracing::Level::TRACE),
        );
    tracing::subscriber::set_global_default(subscriber).expect("one subscriber per test binary");

    let moto = Moto::start();
    let front = StsFront::start(&moto.url, &[]);
    let endpoint = Endpoint::new("us-east-1", Some(front.url.clone()));
    let clients = StsClients::new();
    let long_term = SigningKeys::long_term(LONG_TERM_ID, SecretString::from(LONG_TERM_SECRET));
    let codes: Vec<SecretString> = ["482913", "739102", "650284", "8765x4"]
        .into_iter()
        .map(SecretString::from)
        .collect();
    let mfa = |i: usize| MfaCode {
        serial_number: SERIAL,
        code: &codes[i],
    };
    let role = RoleSettings {
        arn: "arn:aws:iam::210987654321:role/Admin".to_string(),
        duration: 3600,
        session_name: "logging".to_string(),
        source_identity: Some("alice".to_string()),
        external_id: Some("ext-4711".to_string()),
        policy_arns: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".to_string()],
        policy: None,
    };

    // A refused code, then the MFA session, a chained and a direct AssumeRole.
    front.inject(serde_json::json!({"fault": "code_rejected"}));
    let refused = clients
        .get_session_token(&long_term, &endpoint, mfa(0), 3600, now())
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), StsErrorKind::CodeRejected);
    let session = clients
        .get_session_token(&long_term, &endpoint, mfa(1), 3600, now())
        .await
        .expect("GetSessionToken");
    let chained = clients
        .assume_role(
            &SigningKeys::session(&session),
            &endpoint,
            &role,
            None,
            now(),
        )
        .await
        .expect("chained AssumeRole");
    let direct = clients
        .assume_role(&long_term, &endpoint, &role, Some(mfa(2)), now())
        .await
        .expect("direct AssumeRole");
    // A reused code, and a malformed one refused before sending.
    let reused = clients
        .assume_role(&long_term, &endpoint, &role, Some(mfa(2)), now())
        .await
        .unwrap_err();
    assert_eq!(reused.kind(), StsErrorKind::CodeRejected);
    let malformed = clients
        .get_session_token(&long_term, &endpoint, mfa(3), 3600, now())
        .await
        .unwrap_err();
    assert_eq!(malformed.kind(), StsErrorKind::MalformedCode);

    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    eprintln!("{log}");

    // The log says what happened...
    for expected in [
        "GetSessionToken",
        "AssumeRole",
        "arn:aws:iam::210987654321:role/Admin",
        "AKIA…MPLE",
        "elapsed_ms",
        "duration=3600",
        "CodeRejected",
        "MalformedCode",
    ] {
        assert!(log.contains(expected), "log lacks {expected:?}:\n{log}");
    }
    assert!(
        log.matches("STS call succeeded").count() >= 3,
        "one line per call:\n{log}"
    );

    // ...and nothing secret.
    let mut secrets: Vec<String> = vec![LONG_TERM_SECRET.to_string(), LONG_TERM_ID.to_string()];
    secrets.extend(codes.iter().map(|c| c.expose_secret().to_string()));
    for credentials in [&session, &chained, &direct] {
        secrets.push(credentials.access_key_id.clone());
        secrets.push(credentials.secret_access_key.expose_secret().to_string());
        secrets.push(credentials.session_token.expose_secret().to_string());
    }
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the log shows a secret or an unmasked key ({}…)",
            &secret[..3]
        );
    }
    // The errors' texts are as clean as the log.
    for error in [&refused, &reused, &malformed] {
        let text = format!("{error} {error:?}");
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "error text shows a secret: {text}"
            );
        }
    }
}

/// The wall clock, which the STS calls take as an argument.
fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}
