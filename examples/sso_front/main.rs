//! A stand-in for IAM Identity Center, for tests: the SSO OIDC service and
//! the portal on 127.0.0.1, with their wire formats (restJson1) and their
//! error answers.
//!
//! - OIDC: `POST /client/register`, `POST /device_authorization`, `POST
//!   /token` (grant types device code and refresh token). Errors as AWS
//!   sends them: the status of the exception's model (400, 401 for
//!   `InvalidClientException`, 500), `x-amzn-ErrorType: NAMEException`, and
//!   the OAuth body `{"error": "...", "error_description": "..."}`.
//! - Portal: `GET /federation/credentials?role_name=R&account_id=A` with the
//!   access token in `x-amz-sso_bearer_token`; errors with `{"message"}`:
//!   401 `UnauthorizedException`, 403 `ForbiddenException` "No access" (not
//!   in the model, sent all the same), 429 `TooManyRequestsException`.
//! - The person's side, as a browser does it: `GET /device?user_code=X`
//!   (the `verificationUriComplete`) shows a form; `POST /device/approve`
//!   with `user_code` and `decision=approve|deny` answers it.
//! - For tests: `GET /__stats` (calls per operation, outcomes, sign-ins
//!   waiting, the keys handed out and their account and role) and `POST
//!   /__control` (`state.rs`: lifetimes, throttling, refusing refresh
//!   tokens, revoking access tokens, expiring registrations, slow_down,
//!   forbidden account/role, not-a-portal).
//!
//! Role credentials come from moto's AssumeRole when `--sts-upstream` is
//! given (role `aws-reserved/sso.amazonaws.com/AWSReservedSSO_{ROLE}_…` in
//! the account asked for, session name `--user`): GetCallerIdentity with
//! them, at moto or the STS front, names the SSO role and the account, as
//! it does at AWS. Without it the keys are made up here; either way
//! `/__stats` maps each key id to its account and role.
//!
//! ```text
//! sso_front [--port 0] [--sts-upstream http://127.0.0.1:PORT] [--interval-seconds 1]
//!     [--access-token-seconds 28800] [--refresh-token-seconds 7776000]
//!     [--registration-seconds 7776000] [--role-seconds 3600] [--device-code-seconds 600]
//!     [--latency-ms 0] [--throttle-per-second N] [--forbid ACCOUNT/ROLE]... [--not-a-portal]
//! ```
//!
//! It prints `listening on 127.0.0.1:PORT` once it accepts connections,
//! logs one line per request on stderr, and stops on SIGTERM or SIGINT.

#[allow(dead_code)]
#[path = "../sts_fault_front/http.rs"]
mod http;
mod state;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use serde_json::{Value, json};
use tokio::io::BufReader;
use tokio::net::TcpStream;

use http::{Request, Response};
use state::{Approval, Client, Control, Device, Grant, Issued, Settings, State};

#[derive(Parser, Debug)]
#[command(about = "IAM Identity Center stand-in for tests (127.0.0.1 only)")]
struct Args {
    /// Port to listen on, on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// moto (or the STS front) to make role credentials with AssumeRole.
    #[arg(long)]
    sts_upstream: Option<String>,
    /// The session name of those roles: the person signed in.
    #[arg(long, default_value = "tester")]
    user: String,
    #[arg(long, default_value_t = 8 * 3600)]
    access_token_seconds: u64,
    #[arg(long, default_value_t = 90 * 86400)]
    refresh_token_seconds: u64,
    #[arg(long, default_value_t = 90 * 86400)]
    registration_seconds: u64,
    #[arg(long, default_value_t = 3600)]
    role_seconds: u64,
    #[arg(long, default_value_t = 600)]
    device_code_seconds: u64,
    #[arg(long, default_value_t = 5)]
    interval_seconds: u64,
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    #[arg(long)]
    throttle_per_second: Option<u32>,
    /// ACCOUNT/ROLE the person may not use (ForbiddenException).
    #[arg(long = "forbid", value_name = "ACCOUNT/ROLE")]
    forbid: Vec<String>,
    #[arg(long)]
    not_a_portal: bool,
    #[arg(long)]
    rotate_refresh_tokens: bool,
}

struct Front {
    address: String,
    upstream: Option<String>,
    user: String,
    state: Mutex<State>,
}

fn random(prefix: &str, length: usize) -> String {
    let mut text = prefix.to_string();
    text.extend((0..length).map(|_| fastrand::alphanumeric()));
    text
}

fn with_request_id(mut response: Response) -> Response {
    response
        .headers
        .push(("x-amzn-RequestId".to_string(), http::request_id()));
    response
}

fn ok(body: Value) -> Response {
    with_request_id(Response::json(200, &body))
}

/// An OIDC error: `x-amzn-ErrorType` and the OAuth body.
fn oidc_error(status: u16, exception: &str, error: &str, description: &str) -> Response {
    let mut response = Response::json(
        status,
        &json!({ "error": error, "error_description": description }),
    );
    response
        .headers
        .push(("x-amzn-ErrorType".to_string(), exception.to_string()));
    with_request_id(response)
}

/// A portal error: `x-amzn-ErrorType` and `{"message"}`.
fn portal_error(status: u16, exception: &str, message: &str) -> Response {
    let mut response = Response::json(status, &json!({ "message": message }));
    response
        .headers
        .push(("x-amzn-ErrorType".to_string(), exception.to_string()));
    with_request_id(response)
}

fn invalid_client() -> Response {
    oidc_error(
        401,
        "InvalidClientException",
        "invalid_client",
        "Client authentication failed",
    )
}

fn invalid_grant(description: &str) -> Response {
    oidc_error(400, "InvalidGrantException", "invalid_grant", description)
}

fn unix_seconds(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn text<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

fn html(status: u16, body: &str) -> Response {
    Response::new(
        status,
        "text/html; charset=utf-8",
        format!("<!DOCTYPE html><html><body>{body}</body></html>"),
    )
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Front {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn handle(&self, request: Request) -> Response {
        let route = (request.method.as_str(), request.path());
        let api = matches!(
            route,
            (
                "POST",
                "/client/register" | "/device_authorization" | "/token"
            ) | ("GET", "/federation/credentials")
        );
        if api {
            let latency = self.state().settings.latency_ms;
            if latency > 0 {
                tokio::time::sleep(Duration::from_millis(latency)).await;
            }
        }
        let body = || serde_json::from_slice::<Value>(&request.body).unwrap_or(Value::Null);
        match route {
            ("POST", "/client/register") => self.register(&body()),
            ("POST", "/device_authorization") => self.device_authorization(&body()),
            ("POST", "/token") => self.token(&body()),
            ("GET", "/federation/credentials") => self.role_credentials(&request).await,
            ("GET", "/device") => self.device_page(&request),
            ("POST", "/device/approve") => self.approve(&request),
            ("GET", "/__stats") => Response::json(200, &self.state().stats()),
            ("POST", "/__control") => match serde_json::from_slice::<Control>(&request.body) {
                Ok(control) => {
                    eprintln!("control: {control:?}");
                    self.state().control(control, Instant::now());
                    Response::json(200, &json!({ "ok": true }))
                }
                Err(e) => Response::json(400, &json!({ "error": e.to_string() })),
            },
            _ => Response::json(404, &json!({ "message": "no such route" })),
        }
    }

    fn register(&self, body: &Value) -> Response {
        let mut state = self.state();
        if text(body, "clientName").is_none() || text(body, "clientType") != Some("public") {
            state.count("RegisterClient", "invalid_request");
            return oidc_error(
                400,
                "InvalidRequestException",
                "invalid_request",
                "clientName and clientType public are required",
            );
        }
        let scopes: Vec<String> = body
            .get("scopes")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if scopes.iter().any(|s| s.is_empty() || s.contains(' ')) {
            state.count("RegisterClient", "invalid_scope");
            return oidc_error(
                400,
                "InvalidScopeException",
                "invalid_scope",
                "Invalid scope requested",
            );
        }
        let lifetime = state.settings.registration_seconds;
        let client_id = random("client-", 22);
        let secret = random("eyJraWQiOiJrZXktMTU2", 300);
        state.clients.insert(
            client_id.clone(),
            Client {
                secret: secret.clone(),
                expires: Instant::now() + Duration::from_secs(lifetime),
                scopes,
            },
        );
        state.count("RegisterClient", "ok");
        let now = unix_seconds(SystemTime::now());
        ok(json!({
            "clientId": client_id,
            "clientSecret": secret,
            "clientIdIssuedAt": now,
            "clientSecretExpiresAt": now + lifetime as i64,
        }))
    }

    /// The client of a request, when its id and secret are right and it
    /// has not expired.
    fn client_ok(state: &State, body: &Value) -> bool {
        match (text(body, "clientId"), text(body, "clientSecret")) {
            (Some(id), Some(secret)) => state
                .clients
                .get(id)
                .is_some_and(|c| c.secret == secret && c.expires > Instant::now()),
            _ => false,
        }
    }

    fn device_authorization(&self, body: &Value) -> Response {
        let mut state = self.state();
        if !Self::client_ok(&state, body) {
            state.count("StartDeviceAuthorization", "invalid_client");
            return invalid_client();
        }
        let start_url = text(body, "startUrl").unwrap_or("");
        if state.settings.not_a_portal || !start_url.starts_with("http") {
            state.count("StartDeviceAuthorization", "not_a_portal");
            // What AWS answers for a start URL it has no portal for: an
            // InvalidRequestException with no description.
            return oidc_error(400, "InvalidRequestException", "invalid_request", "");
        }
        let device_code = random("", 86);
        let user_code = format!(
            "{}-{}",
            random("", 4).to_ascii_uppercase(),
            random("", 4).to_ascii_uppercase()
        );
        let verification_uri = format!("http://{}/device", self.address);
        let complete = format!("{verification_uri}?user_code={user_code}");
        let lifetime = state.settings.device_code_seconds;
        let interval = state.settings.interval_seconds;
        state.devices.insert(
            device_code.clone(),
            Device {
                client_id: text(body, "clientId").unwrap_or("").to_string(),
                user_code: user_code.clone(),
                verification_uri_complete: complete.clone(),
                expires: Instant::now() + Duration::from_secs(lifetime),
                interval: Duration::from_secs(interval),
                last_poll: None,
                approval: Approval::Pending,
            },
        );
        state.count("StartDeviceAuthorization", "ok");
        ok(json!({
            "deviceCode": device_code,
            "userCode": user_code,
            "verificationUri": verification_uri,
            "verificationUriComplete": complete,
            "expiresIn": lifetime,
            "interval": interval,
        }))
    }

    fn token(&self, body: &Value) -> Response {
        let mut state = self.state();
        let grant = text(body, "grantType").unwrap_or("");
        let operation = match grant {
            "refresh_token" => "CreateToken:refresh_token",
            _ => "CreateToken:device_code",
        };
        if !Self::client_ok(&state, body) {
            state.count(operation, "invalid_client");
            return invalid_client();
        }
        let client_id = text(body, "clientId").unwrap_or("").to_string();
        let now = Instant::now();
        match grant {
            "urn:ietf:params:oauth:grant-type:device_code" => {
                let code = text(body, "deviceCode").unwrap_or("").to_string();
                let slow_down = state.slow_downs > 0;
                let Some(device) = state
                    .devices
                    .get_mut(&code)
                    .filter(|d| d.client_id == client_id)
                else {
                    state.count(operation, "invalid_grant");
                    return invalid_grant("Invalid grant provided");
                };
                if device.expires <= now {
                    state.devices.remove(&code);
                    state.count(operation, "expired_token");
                    return oidc_error(
                        400,
                        "ExpiredTokenException",
                        "expired_token",
                        "Device code has expired",
                    );
                }
                // RFC 8628 §3.5: polling sooner than the interval earns a
                // slow_down, and five more seconds of interval.
                let too_fast = device.last_poll.is_some_and(|last| {
                    now.duration_since(last) + Duration::from_millis(100) < device.interval
                });
                device.last_poll = Some(now);
                if too_fast || slow_down {
                    device.interval += Duration::from_secs(5);
                    if slow_down {
                        state.slow_downs -= 1;
                    }
                    state.count(operation, if too_fast { "too_fast" } else { "slow_down" });
                    return oidc_error(
                        400,
                        "SlowDownException",
                        "slow_down",
                        "Client is polling too quickly",
                    );
                }
                match device.approval {
                    Approval::Pending => {
                        state.count(operation, "authorization_pending");
                        return oidc_error(
                            400,
                            "AuthorizationPendingException",
                            "authorization_pending",
                            "Authorization is still pending",
                        );
                    }
                    Approval::Denied => {
                        state.devices.remove(&code);
                        state.count(operation, "access_denied");
                        return oidc_error(
                            400,
                            "AccessDeniedException",
                            "access_denied",
                            "Access denied by the user",
                        );
                    }
                    Approval::Approved => {}
                }
                state.devices.remove(&code);
                state.count(operation, "ok");
                self.issue(&mut state, &client_id)
            }
            "refresh_token" => {
                let refresh = text(body, "refreshToken").unwrap_or("").to_string();
                let valid = state
                    .refresh_tokens
                    .get(&refresh)
                    .is_some_and(|g| g.client_id == client_id && g.expires > now);
                if !valid {
                    state.count(operation, "invalid_grant");
                    return invalid_grant("Invalid refresh token provided");
                }
                if state.settings.rotate_refresh_tokens {
                    state.refresh_tokens.remove(&refresh);
                }
                state.count(operation, "ok");
                self.issue(&mut state, &client_id)
            }
            _ => {
                state.count(operation, "unsupported_grant_type");
                oidc_error(
                    400,
                    "UnsupportedGrantTypeException",
                    "unsupported_grant_type",
                    "Unsupported grant type",
                )
            }
        }
    }

    /// A new access token (and a refresh token when the client registered
    /// with `sso:account:access`).
    fn issue(&self, state: &mut State, client_id: &str) -> Response {
        let now = Instant::now();
        let access_lifetime = state.settings.access_token_seconds;
        let refresh_lifetime = state.settings.refresh_token_seconds;
        let access_token = random("aoaAAAAAG", 180);
        state.access_tokens.insert(
            access_token.clone(),
            Grant {
                client_id: client_id.to_string(),
                expires: now + Duration::from_secs(access_lifetime),
            },
        );
        let mut answer = json!({
            "accessToken": access_token,
            "tokenType": "Bearer",
            "expiresIn": access_lifetime,
        });
        let refreshable = state
            .clients
            .get(client_id)
            .is_some_and(|c| c.scopes.iter().any(|s| s == "sso:account:access"));
        if refreshable {
            let refresh_token = random("aorAAAAAG", 180);
            state.refresh_tokens.insert(
                refresh_token.clone(),
                Grant {
                    client_id: client_id.to_string(),
                    expires: now + Duration::from_secs(refresh_lifetime),
                },
            );
            answer["refreshToken"] = refresh_token.into();
        }
        ok(answer)
    }

    async fn role_credentials(&self, request: &Request) -> Response {
        let operation = "GetRoleCredentials";
        let query: HashMap<String, String> = http::parse_form(request.query().unwrap_or(""))
            .into_iter()
            .collect();
        let (Some(account_id), Some(role_name)) = (query.get("account_id"), query.get("role_name"))
        else {
            self.state().count(operation, "invalid_request");
            return portal_error(
                400,
                "InvalidRequestException",
                "account_id and role_name are required",
            );
        };
        let token = request.header("x-amz-sso_bearer_token").unwrap_or("");
        let (role_seconds, forbidden) = {
            let mut state = self.state();
            let now = Instant::now();
            if !state.within_rate(now) {
                state.count(operation, "throttled");
                return portal_error(429, "TooManyRequestsException", "HTTP 429 Unknown Code");
            }
            if state
                .access_tokens
                .get(token)
                .is_none_or(|g| g.expires <= now)
            {
                state.count(operation, "unauthorized");
                return portal_error(
                    401,
                    "UnauthorizedException",
                    "Session token not found or invalid",
                );
            }
            (
                state.settings.role_seconds,
                state
                    .forbidden
                    .contains(&(account_id.clone(), role_name.clone())),
            )
        };
        let valid_account =
            account_id.len() == 12 && account_id.bytes().all(|b| b.is_ascii_digit());
        if forbidden || !valid_account {
            self.state().count(operation, "forbidden");
            return portal_error(403, "ForbiddenException", "No access");
        }
        let keys = match &self.upstream {
            Some(upstream) => match self
                .assume_role(upstream, account_id, role_name, role_seconds)
                .await
            {
                Ok(keys) => keys,
                Err(e) => {
                    self.state().count(operation, "upstream_error");
                    return portal_error(
                        500,
                        "InternalServerException",
                        &format!("sso_front: upstream: {e}"),
                    );
                }
            },
            None => (
                random("ASIASSO", 13).to_ascii_uppercase(),
                random("", 40),
                random("IQoJb3JpZ2luX2VjE", 300),
            ),
        };
        let expiration = (unix_seconds(SystemTime::now()) + role_seconds as i64) * 1000;
        let mut state = self.state();
        state.issued.insert(
            keys.0.clone(),
            Issued {
                account_id: account_id.clone(),
                role_name: role_name.clone(),
            },
        );
        state.count(operation, "ok");
        ok(json!({
            "roleCredentials": {
                "accessKeyId": keys.0,
                "secretAccessKey": keys.1,
                "sessionToken": keys.2,
                "expiration": expiration,
            }
        }))
    }

    /// AssumeRole at moto: keys whose GetCallerIdentity names the SSO role.
    async fn assume_role(
        &self,
        upstream: &str,
        account_id: &str,
        role_name: &str,
        seconds: u64,
    ) -> Result<(String, String, String), String> {
        let role_arn = format!(
            "arn:aws:iam::{account_id}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_{role_name}_0123456789abcdef"
        );
        let form = format!(
            "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName={}&DurationSeconds={}",
            role_arn.replace(':', "%3A").replace('/', "%2F"),
            self.user,
            seconds.max(900)
        );
        let request = Request {
            method: "POST".to_string(),
            target: "/".to_string(),
            headers: vec![
                ("Content-Type".to_string(), "application/x-www-form-urlencoded".to_string()),
                // moto reads the caller from the key id; it checks no signature.
                ("Authorization".to_string(), "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=0".to_string()),
            ],
            body: form.into_bytes(),
        };
        let answer = http::forward(upstream, &request, Duration::from_secs(30))
            .await
            .map_err(|e| e.to_string())?;
        let xml = String::from_utf8_lossy(&answer.body);
        let field = |name: &str| {
            let open = format!("<{name}>");
            let close = format!("</{name}>");
            let start = xml.find(&open)? + open.len();
            let end = xml[start..].find(&close)? + start;
            Some(xml[start..end].to_string())
        };
        match (
            field("AccessKeyId"),
            field("SecretAccessKey"),
            field("SessionToken"),
        ) {
            (Some(id), Some(secret), Some(token)) => Ok((id, secret, token)),
            _ => Err(format!("AssumeRole answered HTTP {}", answer.status)),
        }
    }

    /// The page `verificationUriComplete` opens: the code, and the form
    /// that approves or denies it.
    fn device_page(&self, request: &Request) -> Response {
        let query: HashMap<String, String> = http::parse_form(request.query().unwrap_or(""))
            .into_iter()
            .collect();
        let code = html_escape(query.get("user_code").map(String::as_str).unwrap_or(""));
        html(
            200,
            &format!(
                "<h1>Authorize request</h1><form method=\"post\" action=\"/device/approve\">\
                 <input name=\"user_code\" value=\"{code}\">\
                 <button name=\"decision\" value=\"approve\">Allow access</button>\
                 <button name=\"decision\" value=\"deny\">Deny access</button></form>"
            ),
        )
    }

    fn approve(&self, request: &Request) -> Response {
        let form: HashMap<String, String> =
            http::parse_form(&String::from_utf8_lossy(&request.body))
                .into_iter()
                .collect();
        let code = form.get("user_code").map(String::as_str).unwrap_or("");
        let approve = form.get("decision").map(String::as_str) == Some("approve");
        let mut state = self.state();
        let now = Instant::now();
        let device = state.devices.values_mut().find(|d| {
            d.user_code.eq_ignore_ascii_case(code)
                && matches!(d.approval, Approval::Pending)
                && d.expires > now
        });
        let Some(device) = device else {
            state.count("Approval", "invalid_code");
            return html(400, "<h1>Invalid or expired code</h1>");
        };
        device.approval = if approve {
            Approval::Approved
        } else {
            Approval::Denied
        };
        state.count("Approval", if approve { "approved" } else { "denied" });
        html(
            200,
            if approve {
                "<h1>Request approved</h1>"
            } else {
                "<h1>Request denied</h1>"
            },
        )
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
                let response = Response::new(400, "text/plain", e.to_string());
                let _ = http::write_response(&mut write, &response, true).await;
                return;
            }
        };
        let close = request.wants_close();
        let line = format!("{} {}", request.method, request.path());
        let response = front.handle(request).await;
        eprintln!("{line} -> {}", response.status);
        if http::write_response(&mut write, &response, close)
            .await
            .is_err()
            || close
        {
            return;
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    if let Err(message) = run(args).await {
        eprintln!("sso_front: {message}");
        std::process::exit(2);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let upstream = args
        .sts_upstream
        .as_deref()
        .map(|url| http::loopback("--sts-upstream", url))
        .transpose()?;
    let mut forbidden = HashSet::new();
    for pair in &args.forbid {
        let (account, role) = pair
            .split_once('/')
            .ok_or_else(|| format!("--forbid {pair:?}: expected ACCOUNT/ROLE"))?;
        forbidden.insert((account.to_string(), role.to_string()));
    }
    let settings = Settings {
        access_token_seconds: args.access_token_seconds,
        refresh_token_seconds: args.refresh_token_seconds,
        registration_seconds: args.registration_seconds,
        role_seconds: args.role_seconds,
        device_code_seconds: args.device_code_seconds,
        interval_seconds: args.interval_seconds,
        latency_ms: args.latency_ms,
        throttle_per_second: args.throttle_per_second.filter(|n| *n > 0),
        not_a_portal: args.not_a_portal,
        rotate_refresh_tokens: args.rotate_refresh_tokens,
    };
    let listener = http::listen(args.port).await?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let front = Arc::new(Front {
        address: address.to_string(),
        upstream,
        user: args.user,
        state: Mutex::new(State::new(settings, forbidden)),
    });
    http::accept_until_signal(listener, |stream| serve(stream, front.clone())).await
}
