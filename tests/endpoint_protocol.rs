//! The credentials endpoint speaks the container-credentials protocol to
//! its real consumers: the AWS CLI (botocore's container provider) and the
//! AWS SDK for Rust (its default chain, in `examples/sdk_identity.rs`),
//! pointed at it with `AWS_CONTAINER_CREDENTIALS_FULL_URI` and
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, get role sessions from moto
//! through it; and its files (tokens, record, socket) follow their rules.

#[path = "support/endpoint.rs"]
mod endpoint;
#[path = "support/example_bin.rs"]
mod example_bin;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/tools.rs"]
mod tools;

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use aws_session_daemon::endpoint::{Record, path_of};
use endpoint::{FixedSource, Server, assert_no_secret, get, mode, options, session};

/// Runs `program` with a clean environment that names only the endpoint
/// (and moto as the STS endpoint), in an empty HOME, and returns its output.
fn consumer(program: &Path, args: &[&str], url: &str, token_file: &Path, moto: &str) -> String {
    let home = tempfile::tempdir().unwrap();
    let output = Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", url)
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file)
        .env("AWS_ENDPOINT_URL", moto)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    assert!(
        output.status.success(),
        "{} failed: {}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn aws_cli_arn(url: &str, token_file: &Path, moto: &str) -> String {
    let out = consumer(
        &tools::aws(),
        &["sts", "get-caller-identity", "--output", "json"],
        url,
        token_file,
        moto,
    );
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    json["Arn"].as_str().unwrap().to_string()
}

fn sdk_arn(url: &str, token_file: &Path, moto: &str) -> String {
    let program = example_bin::path("sdk_identity");
    consumer(&program, &[], url, token_file, moto)
        .trim()
        .to_string()
}

#[test]
fn the_aws_cli_and_the_rust_sdk_get_each_sections_role_through_the_endpoint() {
    let moto = moto::Moto::start();
    let admin = endpoint::moto_role_session(&moto.url, "EndpointAdmin");
    let reader = endpoint::moto_role_session(&moto.url, "EndpointReader");
    let source = Arc::new(FixedSource::with(&[
        ("admin", admin),
        ("team/reader", reader),
    ]));
    let secrets = source.secrets();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&dir.path().join("run"), &["admin", "team/reader"]);
    opts.section_tokens = true;
    let server = Server::start(opts, source.clone());

    let admin_arn = "arn:aws:sts::210987654321:assumed-role/EndpointAdmin/EndpointAdmin-session";
    let reader_arn = "arn:aws:sts::210987654321:assumed-role/EndpointReader/EndpointReader-session";
    // The token for every section, and each section's own.
    let all = server.token_file();
    let reader_token = server.record.token_file_of("team/reader");
    assert_eq!(
        aws_cli_arn(&server.url("admin"), &all, &moto.url),
        admin_arn
    );
    assert_eq!(
        aws_cli_arn(&server.url("team/reader"), &reader_token, &moto.url),
        reader_arn
    );
    assert_eq!(sdk_arn(&server.url("admin"), &all, &moto.url), admin_arn);
    assert_eq!(
        sdk_arn(&server.url("team/reader"), &reader_token, &moto.url),
        reader_arn
    );
    assert!(
        server
            .url("team/reader")
            .ends_with("/v1/credentials/team%2Freader")
    );
    assert!(source.calls.load(std::sync::atomic::Ordering::SeqCst) >= 4);
    assert_no_secret(&server.log(), &secrets, "the endpoint's log");
}

#[test]
fn the_answer_has_the_protocols_fields_and_is_never_cached() {
    let dir = tempfile::tempdir().unwrap();
    let served = session("fields");
    let source = Arc::new(FixedSource::with(&[("prod", served.clone())]));
    let server = Server::start(options(dir.path(), &["prod"]), source);
    let reply = get(server.address, &path_of("prod"), Some(&server.token()));
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("pragma"), Some("no-cache"));
    let json = reply.json();
    use aws_session_daemon::secret::ExposeSecret;
    assert_eq!(json["AccessKeyId"], served.access_key_id.as_str());
    assert_eq!(
        json["SecretAccessKey"],
        served.secret_access_key.expose_secret()
    );
    assert_eq!(json["Token"], served.session_token.expose_secret());
    assert_eq!(json["AccountId"], "210987654321");
    let expiration =
        aws_session_daemon::timestamp::parse_expiry(json["Expiration"].as_str().unwrap())
            .expect("RFC 3339");
    assert_eq!(
        expiration.unix_timestamp(),
        served.expiration.unix_timestamp()
    );
    assert!(json["Expiration"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn a_session_that_cannot_be_made_fresh_is_a_503_with_the_sources_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut source = FixedSource::with(&[("prod", session("p"))]);
    source.refuse.insert(
        "prod".into(),
        "section [prod]: the YubiKey is not inserted".into(),
    );
    let server = Server::start(options(dir.path(), &["prod"]), Arc::new(source));
    let reply = get(server.address, &path_of("prod"), Some(&server.token()));
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.json()["Message"],
        "section [prod]: the YubiKey is not inserted"
    );
    assert_eq!(reply.header("retry-after"), Some("30"));
}

#[test]
fn token_files_are_private_new_at_each_start_and_removed_at_stop() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let source = Arc::new(FixedSource::with(&[
        ("a", session("a")),
        ("b", session("b")),
    ]));
    let mut opts = options(&run, &["a", "b"]);
    opts.section_tokens = true;
    let first = Server::start(opts.clone(), source.clone());
    let first_token = first.token();
    assert_eq!(first_token.len(), 64, "64 hex digits, no newline");
    assert!(first_token.iter().all(u8::is_ascii_hexdigit));
    assert_eq!(mode(&run), 0o700);
    for file in [
        first.token_file(),
        first.record.token_file_of("a"),
        first.record.token_file_of("b"),
        run.join("endpoint.json"),
    ] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    assert_eq!(mode(&run.join("endpoint-tokens")), 0o700);
    let a_token = first.section_token("a");
    assert_ne!(a_token, first_token);
    assert_ne!(a_token, first.section_token("b"));
    first.stop();
    for gone in ["endpoint-token", "endpoint-tokens", "endpoint.json"] {
        assert!(!run.join(gone).exists(), "{gone} is left after the stop");
    }

    let second = Server::start(opts, source);
    assert_ne!(second.token(), first_token, "a new token at each start");
    assert_ne!(second.section_token("a"), a_token);
    let stale = get(second.address, &path_of("a"), Some(&first_token));
    assert_eq!(stale.status, 401, "{stale:?}");
    assert_eq!(
        get(second.address, &path_of("a"), Some(&second.token())).status,
        200
    );
}

#[test]
fn the_record_finds_the_running_endpoint_and_never_a_stopped_one() {
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(FixedSource::with(&[("prod", session("p"))]));
    let server = Server::start(options(dir.path(), &["prod"]), source.clone());
    let record = Record::read(dir.path())
        .unwrap()
        .expect("the running endpoint's record");
    assert_eq!(record, server.record);
    assert_eq!(record.address, server.address);
    assert_ne!(
        record.address.port(),
        0,
        "the port bound, not the one asked for"
    );
    assert_eq!(record.pid, std::process::id());
    assert_eq!(record.sections, ["prod"]);
    assert!(record.serves("prod") && !record.serves("dev"));
    assert_eq!(
        record.url_of("prod"),
        format!("http://{}/v1/credentials/prod", server.address)
    );
    assert_eq!(record.token_file_of("prod"), server.token_file());
    let saved = std::fs::read(dir.path().join("endpoint.json")).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&saved).unwrap();
    assert!(
        json["token_file"]
            .as_str()
            .unwrap()
            .ends_with("/endpoint-token")
    );
    server.stop();
    assert!(Record::read(dir.path()).unwrap().is_none());

    // A record left by a process that died (nothing holds the lock).
    let mut stale = std::fs::File::create(dir.path().join("endpoint.json")).unwrap();
    stale.write_all(&saved).unwrap();
    drop(stale);
    std::fs::set_permissions(
        dir.path().join("endpoint.json"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    assert!(
        Record::read(dir.path()).unwrap().is_none(),
        "a stale record is ignored"
    );
}

#[test]
fn a_second_endpoint_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(FixedSource::with(&[("prod", session("p"))]));
    let first = Server::start(options(dir.path(), &["prod"]), source.clone());
    let error = Server::try_start(options(dir.path(), &["prod"]), source)
        .err()
        .expect("a second endpoint on the same directory");
    assert!(error.contains("serves the endpoint from"), "{error}");
    assert_eq!(
        get(first.address, &path_of("prod"), Some(&first.token())).status,
        200
    );
}

#[test]
fn sections_added_and_dropped_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(FixedSource::with(&[
        ("a", session("a")),
        ("b", session("b")),
        ("c", session("c")),
    ]));
    let mut opts = options(dir.path(), &["a", "b"]);
    opts.section_tokens = true;
    let server = Server::start(opts, source);
    let a_token = server.section_token("a");
    let b_token = server.section_token("b");
    assert_eq!(
        get(server.address, &path_of("c"), Some(&server.token())).status,
        404
    );

    server.with(|endpoint| {
        endpoint
            .set_sections(&["b".to_string(), "c".to_string()])
            .unwrap()
    });
    let record = Record::read(dir.path()).unwrap().unwrap();
    assert_eq!(record.sections, ["b", "c"]);
    assert!(
        !record.token_file_of("a").exists(),
        "a dropped section's token file goes"
    );
    assert_eq!(
        server.section_token("b"),
        b_token,
        "a kept section keeps its token"
    );
    let c_token = std::fs::read(record.token_file_of("c")).unwrap();
    assert_eq!(
        get(server.address, &path_of("c"), Some(&c_token)).status,
        200
    );
    assert_eq!(
        get(server.address, &path_of("b"), Some(&b_token)).status,
        200
    );
    assert_eq!(
        get(server.address, &path_of("a"), Some(&server.token())).status,
        404
    );
    assert_eq!(
        get(server.address, &path_of("a"), Some(&a_token)).status,
        401
    );
}

#[test]
fn the_unix_socket_serves_the_same_protocol_and_only_to_its_owner() {
    use std::os::unix::net::UnixStream;
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(FixedSource::with(&[("prod", session("sock"))]));
    let mut opts = options(dir.path(), &["prod"]);
    opts.unix_socket = true;
    let server = Server::start(opts, source);
    let socket = server
        .record
        .unix_socket
        .clone()
        .expect("the socket's path in the record");
    assert_eq!(socket, dir.path().join("endpoint.sock"));
    assert_eq!(mode(&socket), 0o600);
    let ask = |token: &[u8]| {
        let mut stream = UnixStream::connect(&socket).unwrap();
        let mut request =
            b"GET /v1/credentials/prod HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: "
                .to_vec();
        request.extend_from_slice(token);
        request.extend_from_slice(b"\r\n\r\n");
        stream.write_all(&request).unwrap();
        endpoint::read_reply(&mut stream).unwrap()
    };
    let reply = ask(&server.token());
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.json()["Token"].as_str().unwrap().contains("sock"));
    assert_eq!(ask(b"0123").status, 401);
    server.stop();
    assert!(!socket.exists(), "the socket is removed at the stop");
}
