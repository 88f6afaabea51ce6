//! What the stand-in remembers: registered clients, device authorizations
//! waiting for their approval, tokens, refresh tokens and the role
//! credentials it handed out; the settings a test can change; the counts
//! it reads back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Lifetimes and behaviour a test can change (`--flags`, or `POST
/// /__control {"op": "set", ...}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub access_token_seconds: u64,
    pub refresh_token_seconds: u64,
    pub registration_seconds: u64,
    pub role_seconds: u64,
    pub device_code_seconds: u64,
    /// The polling `interval` StartDeviceAuthorization hands out.
    pub interval_seconds: u64,
    /// Every OIDC and portal call waits this long before it is answered.
    pub latency_ms: u64,
    /// At most this many GetRoleCredentials per second; more are answered
    /// `TooManyRequestsException` (HTTP 429).
    pub throttle_per_second: Option<u32>,
    /// Every start URL is refused as not a portal (`InvalidRequestException`).
    pub not_a_portal: bool,
    /// A refresh hands out a new refresh token and retires the one used.
    pub rotate_refresh_tokens: bool,
}

/// Partial settings, for `{"op": "set"}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub access_token_seconds: Option<u64>,
    pub refresh_token_seconds: Option<u64>,
    pub registration_seconds: Option<u64>,
    pub role_seconds: Option<u64>,
    pub device_code_seconds: Option<u64>,
    pub interval_seconds: Option<u64>,
    pub latency_ms: Option<u64>,
    /// `0` turns throttling off.
    pub throttle_per_second: Option<u32>,
    pub not_a_portal: Option<bool>,
    pub rotate_refresh_tokens: Option<bool>,
}

impl Settings {
    pub fn apply(&mut self, patch: SettingsPatch) {
        let SettingsPatch {
            access_token_seconds,
            refresh_token_seconds,
            registration_seconds,
            role_seconds,
            device_code_seconds,
            interval_seconds,
            latency_ms,
            throttle_per_second,
            not_a_portal,
            rotate_refresh_tokens,
        } = patch;
        let set = |field: &mut u64, value: Option<u64>| {
            if let Some(value) = value {
                *field = value;
            }
        };
        set(&mut self.access_token_seconds, access_token_seconds);
        set(&mut self.refresh_token_seconds, refresh_token_seconds);
        set(&mut self.registration_seconds, registration_seconds);
        set(&mut self.role_seconds, role_seconds);
        set(&mut self.device_code_seconds, device_code_seconds);
        set(&mut self.interval_seconds, interval_seconds);
        set(&mut self.latency_ms, latency_ms);
        if let Some(limit) = throttle_per_second {
            self.throttle_per_second = (limit > 0).then_some(limit);
        }
        if let Some(value) = not_a_portal {
            self.not_a_portal = value;
        }
        if let Some(value) = rotate_refresh_tokens {
            self.rotate_refresh_tokens = value;
        }
    }
}

/// What `POST /__control` accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Control {
    /// Change settings (see [`SettingsPatch`]).
    Set(SettingsPatch),
    /// Every refresh token issued so far is refused from now on
    /// (`InvalidGrantException`), as after a sign-out or a revoked session.
    RefuseRefreshTokens,
    /// Every access token issued so far is refused by the portal
    /// (`UnauthorizedException`).
    RevokeAccessTokens,
    /// Every client registered so far has expired (`InvalidClientException`).
    ExpireRegistrations,
    /// The next `count` device-code polls are answered `SlowDownException`.
    SlowDown { count: u32 },
    /// `account_id`/`role_name` answers `ForbiddenException` ("No access").
    Forbid {
        account_id: String,
        role_name: String,
    },
    /// Zero the counts.
    ResetStats,
}

pub struct Client {
    pub secret: String,
    pub expires: Instant,
    pub scopes: Vec<String>,
}

pub enum Approval {
    Pending,
    Approved,
    Denied,
}

pub struct Device {
    pub client_id: String,
    pub user_code: String,
    pub verification_uri_complete: String,
    pub expires: Instant,
    pub interval: Duration,
    pub last_poll: Option<Instant>,
    pub approval: Approval,
}

pub struct Grant {
    pub client_id: String,
    pub expires: Instant,
}

/// Who a role credential's key belongs to, for tests to check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Issued {
    pub account_id: String,
    pub role_name: String,
}

pub struct State {
    pub settings: Settings,
    pub clients: HashMap<String, Client>,
    /// By device code.
    pub devices: HashMap<String, Device>,
    pub access_tokens: HashMap<String, Grant>,
    pub refresh_tokens: HashMap<String, Grant>,
    pub forbidden: HashSet<(String, String)>,
    pub slow_downs: u32,
    /// The start of the current second and the GetRoleCredentials in it.
    pub window: (Instant, u32),
    pub issued: BTreeMap<String, Issued>,
    /// Calls per operation, and per `Operation:outcome`.
    pub calls: BTreeMap<String, u64>,
    pub outcomes: BTreeMap<String, u64>,
}

impl State {
    pub fn new(settings: Settings, forbidden: HashSet<(String, String)>) -> Self {
        State {
            settings,
            clients: HashMap::new(),
            devices: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            forbidden,
            slow_downs: 0,
            window: (Instant::now(), 0),
            issued: BTreeMap::new(),
            calls: BTreeMap::new(),
            outcomes: BTreeMap::new(),
        }
    }

    pub fn count(&mut self, operation: &str, outcome: &str) {
        *self.calls.entry(operation.to_string()).or_default() += 1;
        *self
            .outcomes
            .entry(format!("{operation}:{outcome}"))
            .or_default() += 1;
    }

    pub fn control(&mut self, control: Control, now: Instant) {
        match control {
            Control::Set(patch) => self.settings.apply(patch),
            Control::RefuseRefreshTokens => self.refresh_tokens.clear(),
            Control::RevokeAccessTokens => self.access_tokens.clear(),
            Control::ExpireRegistrations => {
                for client in self.clients.values_mut() {
                    client.expires = now;
                }
            }
            Control::SlowDown { count } => self.slow_downs += count,
            Control::Forbid {
                account_id,
                role_name,
            } => {
                self.forbidden.insert((account_id, role_name));
            }
            Control::ResetStats => {
                self.calls.clear();
                self.outcomes.clear();
            }
        }
    }

    /// Counts one GetRoleCredentials against the per-second limit: false
    /// when it is over it.
    pub fn within_rate(&mut self, now: Instant) -> bool {
        let Some(limit) = self.settings.throttle_per_second else {
            return true;
        };
        if now.duration_since(self.window.0) >= Duration::from_secs(1) {
            self.window = (now, 0);
        }
        self.window.1 += 1;
        self.window.1 <= limit
    }

    pub fn stats(&self) -> serde_json::Value {
        let pending: Vec<_> = self
            .devices
            .values()
            .filter(|d| matches!(d.approval, Approval::Pending))
            .map(|d| {
                serde_json::json!({
                    "userCode": d.user_code,
                    "verificationUriComplete": d.verification_uri_complete,
                })
            })
            .collect();
        serde_json::json!({
            "calls": self.calls,
            "outcomes": self.outcomes,
            "pending": pending,
            "issued": self.issued,
            "clients": self.clients.len(),
        })
    }
}
