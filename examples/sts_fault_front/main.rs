//! A fault-injecting front for STS, for tests.
//!
//! It listens on 127.0.0.1 only, forwards STS Query-API requests to an
//! upstream moto server (itself on the loopback interface), and does what
//! moto cannot:
//!
//! - checks MFA codes like AWS: a code already accepted for a device is
//!   refused with AWS's `AccessDenied` "invalid MFA one time pass code";
//!   with `--totp-secret SERIAL=SECRET` wrong codes are refused too;
//! - enforces the role-chaining rule: AssumeRole signed with session
//!   credentials asking for more than 3600 s gets AWS's `ValidationError`,
//!   and GetSessionToken signed with session credentials is refused;
//! - injects faults on command (`POST /__control`, JSON; see `faults.rs`):
//!   throttling, 5xx, connection resets, slow answers and AWS's error
//!   answers, for the next N requests or for a while, optionally for one
//!   Action only;
//! - counts requests per Action and per outcome (`GET /__stats`).
//!
//! Errors are rendered in STS's XML error format so that the real SDK parses
//! them. It prints `listening on 127.0.0.1:PORT` on stdout once it accepts
//! connections, logs one line per request on stderr, and stops on SIGTERM or
//! SIGINT.
//!
//! ```text
//! sts_fault_front --upstream http://127.0.0.1:5000 [--port 0]
//!     [--totp-secret SERIAL=BASE32_OR_HEX]... [--reuse-window 90] [--inject JSON]...
//! curl -d '{"op":"inject","fault":"throttle","count":2,"action":"AssumeRole"}' 127.0.0.1:PORT/__control
//! curl 127.0.0.1:PORT/__stats
//! ```

mod faults;
mod http;
mod mfa;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use tokio::io::BufReader;
use tokio::net::TcpStream;

use faults::{Control, FaultKind, FaultSpec, Faults, Stats};
use http::{Request, Response};
use mfa::MfaChecker;

#[derive(Parser, Debug)]
#[command(about = "Fault-injecting STS front for tests (127.0.0.1 only)")]
struct Args {
    /// The moto server to forward to, e.g. http://127.0.0.1:5000 (loopback
    /// only), or `local` to answer GetSessionToken, AssumeRole and
    /// GetCallerIdentity itself at once (fresh unique credentials, checking
    /// nothing), for benchmarks where moto's one-call-at-a-time would be
    /// what is measured.
    #[arg(long)]
    upstream: String,
    /// Every STS call waits this long before it is answered (the round trip
    /// to AWS from a laptop is 50-80 ms); calls wait concurrently.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// At most this many STS calls in progress at once (after the latency):
    /// more are answered `Throttling` ("Rate exceeded"), as STS does.
    #[arg(long)]
    max_in_flight: Option<u64>,
    /// Port to listen on, on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// TOTP secret of an MFA device: SERIAL=BASE32, SERIAL=hex:HEX (SHA-1, 6 digits, ±1 step).
    #[arg(long = "totp-secret", value_name = "SERIAL=SECRET")]
    totp_secrets: Vec<String>,
    /// Seconds an accepted code stays refused, for devices without a secret.
    #[arg(long, default_value_t = 90)]
    reuse_window: u64,
    /// A fault to inject from the start, as the JSON of an "inject" control.
    #[arg(long = "inject", value_name = "JSON")]
    inject: Vec<String>,
}

const ROLE_CHAINING: &str = "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.";
const INVALID_CODE: &str = "MultiFactorAuthentication failed with invalid MFA one time pass code. ";

struct Front {
    /// `None`: answer locally.
    upstream: Option<String>,
    latency: Duration,
    max_in_flight: Option<u64>,
    in_flight: std::sync::atomic::AtomicU64,
    issued: std::sync::atomic::AtomicU64,
    state: Mutex<State>,
}

struct State {
    faults: Faults,
    stats: Stats,
    mfa: MfaChecker,
}

/// What to do with a connection after a request.
enum Reply {
    Answer(Response),
    /// Close without answering (`reset`).
    Close,
    /// A 200 whose body never ends (`endless_body`).
    Endless,
}

/// Escapes text for XML content; control characters become character
/// references, so that a hostile value (CR, LF, ESC) reaches the client as
/// it was given.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push_str(&format!("&#{};", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// An error answer in STS's (awsQuery) XML format.
fn sts_error(status: u16, code: &str, message: &str) -> Response {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    let id = http::request_id();
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{id}</RequestId>\n</ErrorResponse>\n",
        xml_escape(code),
        xml_escape(message)
    );
    let mut response = Response::new(status, "text/xml", body);
    response.headers.push(("x-amzn-RequestId".to_string(), id));
    response
}

/// The answer AWS gives for an injected error fault.
fn fault_answer(spec: &FaultSpec, params: &HashMap<String, String>) -> Response {
    let role = params.get("RoleArn").map(String::as_str).unwrap_or("*");
    match spec.fault {
        FaultKind::Throttle => sts_error(400, "Throttling", "Rate exceeded"),
        FaultKind::ServerError => match spec.status.unwrap_or(500) {
            503 => sts_error(
                503,
                "ServiceUnavailable",
                "Service is unable to handle request.",
            ),
            status => sts_error(
                status,
                "InternalFailure",
                "An internal error occurred. Try again.",
            ),
        },
        FaultKind::CodeRejected => sts_error(403, "AccessDenied", INVALID_CODE),
        FaultKind::InvalidClientToken => sts_error(
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        ),
        FaultKind::SignatureMismatch => sts_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ),
        FaultKind::ExpiredToken => sts_error(
            400,
            "ExpiredToken",
            "The security token included in the request is expired",
        ),
        FaultKind::NotAuthorized => sts_error(
            403,
            "AccessDenied",
            &format!(
                "User: arn:aws:iam::123456789012:user/test is not authorized to perform: sts:AssumeRole on resource: {role}"
            ),
        ),
        FaultKind::WrongSerial => sts_error(
            403,
            "AccessDenied",
            "MultiFactorAuthentication failed, unable to validate MFA code. Please verify your MFA serial number is valid and associated with this user.",
        ),
        FaultKind::NotLongTerm => sts_error(
            403,
            "AccessDenied",
            "Cannot call GetSessionToken with session credentials",
        ),
        FaultKind::RequestExpired => sts_error(400, "RequestExpired", "Request has expired."),
        FaultKind::Error => sts_error(
            spec.status.unwrap_or(400),
            spec.code.as_deref().unwrap_or("ValidationError"),
            spec.message.as_deref().unwrap_or(""),
        ),
        FaultKind::RegionDisabled => sts_error(
            403,
            "RegionDisabledException",
            "STS is not activated in this region for account:123456789012. Your account administrator can activate STS in this region using the IAM Console.",
        ),
        // Not error answers: handled before this is asked.
        FaultKind::Reset
        | FaultKind::Slow
        | FaultKind::EndlessBody
        | FaultKind::Garbage
        | FaultKind::FarExpiration
        | FaultKind::Rewrite => {
            sts_error(500, "InternalFailure", "fault front: not an error fault")
        }
    }
}

/// True when the request is signed with temporary credentials: it carries a
/// session token, or its key id is an `ASIA` one. (moto's GetSessionToken
/// hands out an `AKIA` example key, so the token is what tells.)
fn signed_with_session(request: &Request) -> bool {
    if request.header("x-amz-security-token").is_some() {
        return true;
    }
    request
        .header("authorization")
        .and_then(|auth| auth.split("Credential=").nth(1))
        .is_some_and(|credential| credential.starts_with("ASIA"))
}

impl Front {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn handle(&self, request: Request) -> Reply {
        match (request.method.as_str(), request.path()) {
            ("GET", "/__stats") => {
                let state = self.state();
                Reply::Answer(Response::json(
                    200,
                    &state.stats.to_json(state.faults.len()),
                ))
            }
            ("POST", "/__control") => Reply::Answer(self.control(&request.body)),
            _ => {
                use std::sync::atomic::Ordering;
                // A call is in flight for the whole latency, as it is at
                // STS: counted first, so that `--max-in-flight` throttles
                // what arrives while others are still being answered.
                let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                self.state().stats.in_flight(now);
                if !self.latency.is_zero() {
                    tokio::time::sleep(self.latency).await;
                }
                let reply = match self.max_in_flight {
                    Some(max) if now > max => {
                        let mut state = self.state();
                        state.stats.request("(over the limit)", Vec::new());
                        state.stats.outcome("(over the limit)", "throttle");
                        Reply::Answer(sts_error(400, "Throttling", "Rate exceeded"))
                    }
                    _ => self.sts(request).await,
                };
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                reply
            }
        }
    }

    /// What moto would answer, made up here: fresh credentials for every call.
    fn local_answer(&self, action: &str, params: &HashMap<String, String>) -> Response {
        let n = self
            .issued
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let duration: i64 = params
            .get("DurationSeconds")
            .and_then(|d| d.parse().ok())
            .unwrap_or(3600);
        let expiration = time::OffsetDateTime::now_utc() + time::Duration::seconds(duration);
        let expiration = expiration
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let credentials = format!(
            "<Credentials><AccessKeyId>ASIALOCAL{n:011}</AccessKeyId><SecretAccessKey>localsecret{n:029}</SecretAccessKey><SessionToken>LocalToken{n:040}</SessionToken><Expiration>{expiration}</Expiration></Credentials>"
        );
        let id = http::request_id();
        let xml = match action {
            "GetSessionToken" => format!(
                "<GetSessionTokenResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetSessionTokenResult>{credentials}</GetSessionTokenResult><ResponseMetadata><RequestId>{id}</RequestId></ResponseMetadata></GetSessionTokenResponse>"
            ),
            "AssumeRole" => {
                let role = params.get("RoleArn").map(String::as_str).unwrap_or("");
                let account = role.split(':').nth(4).unwrap_or("123456789012");
                let name = role.rsplit('/').next().unwrap_or("role");
                let session = params
                    .get("RoleSessionName")
                    .map(String::as_str)
                    .unwrap_or("s");
                format!(
                    "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>{credentials}<AssumedRoleUser><AssumedRoleId>AROALOCAL:{session}</AssumedRoleId><Arn>arn:aws:sts::{account}:assumed-role/{name}/{session}</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>{id}</RequestId></ResponseMetadata></AssumeRoleResponse>"
                )
            }
            "GetCallerIdentity" => format!(
                "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/local</Arn><UserId>AIDALOCAL</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>{id}</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
            ),
            other => {
                return sts_error(
                    400,
                    "InvalidAction",
                    &format!("fault front: {} is not answered locally", xml_escape(other)),
                );
            }
        };
        Response::new(200, "text/xml", xml)
    }

    fn control(&self, body: &[u8]) -> Response {
        let control: Control = match serde_json::from_slice(body) {
            Ok(control) => control,
            Err(e) => {
                return Response::json(400, &serde_json::json!({ "error": e.to_string() }));
            }
        };
        eprintln!("control: {control:?}");
        let mut state = self.state();
        match control {
            Control::Inject(spec) => state.faults.inject(spec, Instant::now()),
            Control::Clear => state.faults.clear(),
            Control::ResetStats => state.stats = Stats::default(),
            Control::ForgetCodes => state.mfa.forget(),
        }
        Response::json(200, &serde_json::json!({ "ok": true }))
    }

    async fn sts(&self, request: Request) -> Reply {
        let mut params: HashMap<String, String> = http::parse_form(request.query().unwrap_or(""))
            .into_iter()
            .collect();
        if request.method == "POST" {
            params.extend(http::parse_form(&String::from_utf8_lossy(&request.body)));
        }
        let action = params
            .get("Action")
            .cloned()
            .unwrap_or_else(|| "(none)".to_string());
        let fault = {
            let mut state = self.state();
            state
                .stats
                .request(&action, params.keys().cloned().collect());
            if let Some(role) = params.get("RoleArn") {
                state.stats.role(role);
            }
            state.faults.take(&action, Instant::now())
        };
        let (outcome, reply) = self.decide(&request, &params, &action, fault).await;
        self.state().stats.outcome(&action, &outcome);
        let status = match &reply {
            Reply::Answer(response) => response.status.to_string(),
            Reply::Close => "closed".to_string(),
            Reply::Endless => "endless".to_string(),
        };
        eprintln!("{action} -> {outcome} ({status})");
        reply
    }

    async fn decide(
        &self,
        request: &Request,
        params: &HashMap<String, String>,
        action: &str,
        fault: Option<FaultSpec>,
    ) -> (String, Reply) {
        if let Some(spec) = &fault {
            match spec.fault {
                FaultKind::Reset => return ("reset".to_string(), Reply::Close),
                FaultKind::EndlessBody => return ("endless_body".to_string(), Reply::Endless),
                FaultKind::Garbage => {
                    let bytes: Vec<u8> = (0..4096).map(|_| fastrand::u8(..)).collect();
                    return (
                        "garbage".to_string(),
                        Reply::Answer(Response::new(200, "text/xml", bytes)),
                    );
                }
                FaultKind::FarExpiration | FaultKind::Rewrite => {}
                FaultKind::Slow => {
                    self.state().stats.delayed();
                    tokio::time::sleep(Duration::from_millis(spec.delay_ms.unwrap_or(1000))).await;
                }
                _ => {
                    return (
                        spec.fault.name().to_string(),
                        Reply::Answer(fault_answer(spec, params)),
                    );
                }
            }
        }
        let session = signed_with_session(request);
        if action == "GetSessionToken" && session {
            return (
                "not_long_term".to_string(),
                Reply::Answer(sts_error(
                    403,
                    "AccessDenied",
                    "Cannot call GetSessionToken with session credentials",
                )),
            );
        }
        if action == "AssumeRole" && session {
            let duration = params
                .get("DurationSeconds")
                .and_then(|d| d.parse::<u64>().ok())
                .unwrap_or(3600);
            if duration > 3600 {
                return (
                    "role_chaining".to_string(),
                    Reply::Answer(sts_error(400, "ValidationError", ROLE_CHAINING)),
                );
            }
        }
        if let (Some(serial), Some(code)) = (params.get("SerialNumber"), params.get("TokenCode")) {
            let unix = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let checked = self.state().mfa.check(serial, code, unix, Instant::now());
            if let Err(refusal) = checked {
                return (
                    refusal.outcome().to_string(),
                    Reply::Answer(sts_error(403, "AccessDenied", INVALID_CODE)),
                );
            }
        }
        let rewrite = fault.as_ref().and_then(|spec| match spec.fault {
            FaultKind::FarExpiration => Some((
                "far_expiration".to_string(),
                "Expiration".to_string(),
                Some("9999-12-31T23:59:59Z".to_string()),
            )),
            FaultKind::Rewrite => Some((
                "rewrite".to_string(),
                spec.element
                    .clone()
                    .unwrap_or_else(|| "Expiration".to_string()),
                spec.value.clone(),
            )),
            _ => None,
        });
        let Some(upstream) = &self.upstream else {
            let answer = self.local_answer(action, params);
            return match rewrite {
                Some((outcome, element, value)) => (
                    outcome,
                    Reply::Answer(rewritten(answer, &element, value.as_deref())),
                ),
                None => ("ok".to_string(), Reply::Answer(answer)),
            };
        };
        match http::forward(upstream, request, Duration::from_secs(30)).await {
            Ok(response) if response.status < 400 && rewrite.is_some() => {
                let (outcome, element, value) = rewrite.expect("checked");
                (
                    outcome,
                    Reply::Answer(rewritten(response, &element, value.as_deref())),
                )
            }
            Ok(response) => (
                if response.status < 400 {
                    "ok"
                } else {
                    "upstream_error"
                }
                .to_string(),
                Reply::Answer(response),
            ),
            Err(e) => (
                "upstream_unreachable".to_string(),
                Reply::Answer(sts_error(
                    502,
                    "ServiceUnavailable",
                    &format!("fault front: upstream {upstream}: {e}"),
                )),
            ),
        }
    }
}

async fn serve(stream: TcpStream, front: Arc<Front>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let request = match http::read_request(&mut reader).await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(e) => {
                eprintln!("bad request: {e}");
                let _ = http::write_response(
                    &mut write,
                    &Response::new(400, "text/plain", e.to_string()),
                    true,
                )
                .await;
                return;
            }
        };
        let close = request.wants_close();
        match front.handle(request).await {
            Reply::Answer(response) => {
                if http::write_response(&mut write, &response, close)
                    .await
                    .is_err()
                    || close
                {
                    return;
                }
            }
            // Dropping both halves closes the connection unanswered.
            Reply::Close => return,
            Reply::Endless => {
                let _ = endless_body(&mut write).await;
                return;
            }
        }
    }
}

/// Replaces the text of `element` in an STS answer by `value` (escaped),
/// or removes the element when `value` is `None`.
fn rewritten(mut response: Response, element: &str, value: Option<&str>) -> Response {
    let text = String::from_utf8_lossy(&response.body).into_owned();
    let open = format!("<{element}>");
    let close = format!("</{element}>");
    if let (Some(start), Some(end)) = (text.find(&open), text.find(&close)) {
        let text = match value {
            Some(value) => format!(
                "{}{open}{}{}",
                &text[..start],
                xml_escape(value),
                &text[end..]
            ),
            None => format!("{}{}", &text[..start], &text[end + close.len()..]),
        };
        response.body = text.into_bytes();
    }
    response
}

/// A 200 answer whose chunked body goes on until the client hangs up.
async fn endless_body<W: tokio::io::AsyncWrite + Unpin>(write: &mut W) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    write
        .write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await?;
    let chunk = format!("10000\r\n{}\r\n", "<x>".repeat(65536 / 3) + "a");
    loop {
        write.write_all(chunk.as_bytes()).await?;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    if let Err(message) = run(args).await {
        eprintln!("sts_fault_front: {message}");
        std::process::exit(2);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let upstream = match args.upstream.as_str() {
        "local" => None,
        url => Some(http::loopback("--upstream", url)?),
    };
    let mut secrets = HashMap::new();
    for arg in &args.totp_secrets {
        let (serial, secret) = mfa::parse_secret_arg(arg)?;
        secrets.insert(serial, secret);
    }
    let mut faults = Faults::default();
    for json in &args.inject {
        let spec: FaultSpec =
            serde_json::from_str(json).map_err(|e| format!("--inject {json:?}: {e}"))?;
        faults.inject(spec, Instant::now());
    }
    let front = Arc::new(Front {
        upstream,
        latency: Duration::from_millis(args.latency_ms),
        max_in_flight: args.max_in_flight,
        in_flight: std::sync::atomic::AtomicU64::new(0),
        issued: std::sync::atomic::AtomicU64::new(0),
        state: Mutex::new(State {
            faults,
            stats: Stats::default(),
            mfa: MfaChecker::new(secrets, Duration::from_secs(args.reuse_window)),
        }),
    });
    let listener = http::listen(args.port).await?;
    http::accept_until_signal(listener, |stream| serve(stream, front.clone())).await
}
