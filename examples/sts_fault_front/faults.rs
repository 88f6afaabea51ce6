//! Injected faults and the counts that tests read back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// A fault the front can inject, named as in `POST /__control`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// HTTP 400 `Throttling` "Rate exceeded", as STS sends it (not 429).
    Throttle,
    /// HTTP 500 `InternalFailure`, or 503 `ServiceUnavailable` with `status`.
    ServerError,
    /// Read the request, then close the connection without answering.
    Reset,
    /// Wait `delay_ms`, then handle the request normally.
    Slow,
    CodeRejected,
    InvalidClientToken,
    SignatureMismatch,
    ExpiredToken,
    NotAuthorized,
    WrongSerial,
    NotLongTerm,
    RequestExpired,
    RegionDisabled,
    /// HTTP 200, then a body that never ends (chunks until the client goes).
    EndlessBody,
    /// HTTP 200 with bytes that are not XML.
    Garbage,
    /// The upstream's answer, its `<Expiration>` changed to the year 9999.
    FarExpiration,
    /// The answer (upstream's or local), the text of `element` (e.g.
    /// `Expiration`, `SessionToken`, `AccessKeyId`) replaced by `value`, or
    /// the element removed when `value` is absent.
    Rewrite,
    /// An STS error answer of `status` (default 400) with `code` and
    /// `message` as given (a hostile server's text).
    Error,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Throttle => "throttle",
            FaultKind::ServerError => "server_error",
            FaultKind::Reset => "reset",
            FaultKind::Slow => "slow",
            FaultKind::CodeRejected => "code_rejected",
            FaultKind::InvalidClientToken => "invalid_client_token",
            FaultKind::SignatureMismatch => "signature_mismatch",
            FaultKind::ExpiredToken => "expired_token",
            FaultKind::NotAuthorized => "not_authorized",
            FaultKind::WrongSerial => "wrong_serial",
            FaultKind::NotLongTerm => "not_long_term",
            FaultKind::RequestExpired => "request_expired",
            FaultKind::RegionDisabled => "region_disabled",
            FaultKind::EndlessBody => "endless_body",
            FaultKind::Garbage => "garbage",
            FaultKind::FarExpiration => "far_expiration",
            FaultKind::Rewrite => "rewrite",
            FaultKind::Error => "error",
        }
    }
}

/// What `POST /__control` accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Control {
    /// Inject `fault` for the next `count` requests and/or for `for_ms`
    /// (one request when neither is given), only for `action` if given.
    Inject(FaultSpec),
    /// Remove every injected fault.
    Clear,
    /// Zero the counts.
    ResetStats,
    /// Forget the MFA codes already accepted.
    ForgetCodes,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub fault: FaultKind,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub for_ms: Option<u64>,
    #[serde(default)]
    pub action: Option<String>,
    /// HTTP status of `server_error` (500 or 503; default 500).
    #[serde(default)]
    pub status: Option<u16>,
    /// Delay of `slow`, in milliseconds (default 1000).
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// `rewrite`: the XML element whose text is replaced.
    #[serde(default)]
    pub element: Option<String>,
    /// `rewrite`: its new text (absent: the element is removed). Control
    /// characters are sent as character references (`&#13;`), so that a CR
    /// survives XML's line-end normalization.
    #[serde(default)]
    pub value: Option<String>,
    /// `error`: the error code and message.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

struct ActiveFault {
    spec: FaultSpec,
    remaining: Option<u32>,
    until: Option<Instant>,
}

#[derive(Default)]
pub struct Faults {
    active: Vec<ActiveFault>,
}

impl Faults {
    pub fn inject(&mut self, spec: FaultSpec, now: Instant) {
        let remaining = match (spec.count, spec.for_ms) {
            (None, None) => Some(1),
            (count, _) => count,
        };
        let until = spec.for_ms.map(|ms| now + Duration::from_millis(ms));
        self.active.push(ActiveFault {
            spec,
            remaining,
            until,
        });
    }

    pub fn clear(&mut self) {
        self.active.clear();
    }

    pub fn len(&self) -> usize {
        self.active.len()
    }

    /// The fault that applies to the next request of `action`, if any, and
    /// counts it against its budget. Faults apply in the order injected.
    pub fn take(&mut self, action: &str, now: Instant) -> Option<FaultSpec> {
        self.active.retain(|f| {
            f.remaining.is_none_or(|n| n > 0) && f.until.is_none_or(|until| now < until)
        });
        let fault = self
            .active
            .iter_mut()
            .find(|f| f.spec.action.as_deref().is_none_or(|a| a == action))?;
        if let Some(n) = &mut fault.remaining {
            *n -= 1;
        }
        Some(fault.spec.clone())
    }
}

/// Requests per action and per outcome, for `GET /__stats`.
#[derive(Default)]
pub struct Stats {
    total: u64,
    actions: BTreeMap<String, u64>,
    outcomes: BTreeMap<String, u64>,
    by_action: BTreeMap<String, BTreeMap<String, u64>>,
    delayed: u64,
    /// Parameter names (never values) of the last request of each action.
    last_params: BTreeMap<String, Vec<String>>,
    /// AssumeRole requests per role ARN (not secret), so that a test can
    /// compare the calls with the plan section by section.
    roles: BTreeMap<String, u64>,
    /// The most STS calls in progress at once.
    max_in_flight: u64,
}

impl Stats {
    pub fn request(&mut self, action: &str, mut param_names: Vec<String>) {
        self.total += 1;
        *self.actions.entry(action.to_string()).or_default() += 1;
        param_names.sort();
        self.last_params.insert(action.to_string(), param_names);
    }

    pub fn in_flight(&mut self, now: u64) {
        self.max_in_flight = self.max_in_flight.max(now);
    }

    pub fn role(&mut self, arn: &str) {
        *self.roles.entry(arn.to_string()).or_default() += 1;
    }

    pub fn outcome(&mut self, action: &str, outcome: &str) {
        *self.outcomes.entry(outcome.to_string()).or_default() += 1;
        *self
            .by_action
            .entry(action.to_string())
            .or_default()
            .entry(outcome.to_string())
            .or_default() += 1;
    }

    pub fn delayed(&mut self) {
        self.delayed += 1;
    }

    pub fn to_json(&self, active_faults: usize) -> serde_json::Value {
        serde_json::json!({
            "total": self.total,
            "actions": self.actions,
            "outcomes": self.outcomes,
            "by_action": self.by_action,
            "delayed": self.delayed,
            "last_params": self.last_params,
            "roles": self.roles,
            "max_in_flight": self.max_in_flight,
            "active_faults": active_faults,
        })
    }
}
