//! A program that uses the AWS SDK for Rust as any application does:
//! credentials from the SDK's default chain (environment variables,
//! profile files, the container-credentials endpoint, ...), region and
//! endpoint from the environment, then STS GetCallerIdentity. Prints the
//! caller's ARN; exits 1 with the SDK's error otherwise.
//!
//! The tests run it as a real consumer of the credentials endpoint and of
//! `exec` (`AWS_ENDPOINT_URL` pointing at moto).
//!
//! ```text
//! sdk_identity [--repeat N --every SECONDS | --every-ms MILLISECONDS]
//! ```
//!
//! `--repeat`: asks N times, one client, SECONDS apart (a long-running
//! program whose credentials expire meanwhile), one ARN per line.

use std::process::ExitCode;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_smithy_types::error::display::DisplayErrorContext;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut repeat = 1u32;
    let mut every = Duration::ZERO;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (arg.as_str(), value) {
            ("--repeat", Some(n)) => repeat = n.try_into().unwrap_or(u32::MAX),
            ("--every", Some(s)) => every = Duration::from_secs(s),
            ("--every-ms", Some(ms)) => every = Duration::from_millis(ms),
            _ => {
                eprintln!(
                    "usage: sdk_identity [--repeat N --every SECONDS | --every-ms MILLISECONDS]"
                );
                return ExitCode::from(2);
            }
        }
    }
    // The daemon's HTTPS client (rustls with ring): the SDK's default one
    // would bring aws-lc into the tests' build.
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(aws_session_daemon::sts::https_client())
        .load()
        .await;
    let client = aws_sdk_sts::Client::new(&config);
    for i in 0..repeat {
        if i > 0 {
            tokio::time::sleep(every).await;
        }
        match client.get_caller_identity().send().await {
            Ok(identity) => println!("{}", identity.arn().unwrap_or("(no ARN)")),
            Err(e) => {
                eprintln!("sdk_identity: {}", DisplayErrorContext(&e));
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
