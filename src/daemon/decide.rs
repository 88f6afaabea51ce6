//! The planner: desired versus actual state, as a pure function, and the
//! only place that decides.
//!
//! [`plan`] takes [`Inputs`]: the expanded config sections, a read-only view
//! of the credentials file, the MFA sessions in the runtime cache, the
//! state of each SSO session's access token, the units that are backing off
//! after errors, and `now`. It returns, per section, the state of its
//! profile, when it falls due, and the action that makes it fresh, carrying
//! everything the executor needs to do it; per MFA session and per SSO
//! session what it takes (a code; a token refresh or a sign-in); and the
//! work all that costs (YubiKey codes, sign-ins, STS and portal calls). It
//! does no I/O and reads no clock, so `plan`, `status`, `apply` and the
//! daemon share it, and it is tested with tables of inputs.
//!
//! Two session sources, one rule each: an MFA section's session comes from
//! its MFA device ([`decide`]), an SSO section's from its SSO session's
//! token ([`decide_sso`]); everything else (state, due time, outputs) is
//! the same for both.
//!
//! Time rules live here once: [`due_at`] is the one place the refresh margin
//! (and the jitter) is applied, for profiles and MFA sessions alike.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::SecretString;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::config::{
    CodeSource, LongTermKeys, MfaSource, Output, RoleSettings, Section, Settings, Source, SsoSource,
};
use crate::credentials::{ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN};
use crate::secret::mask_access_key_id;
use crate::session::{Backoff, MfaSessionKey, Unit};

/// What the planner needs to know about the credentials file.
pub trait CredentialsView {
    /// Value of `key` in `section`; `Err(reason)` when the section cannot be
    /// used as it is (duplicated section or key: botocore cannot parse it).
    fn value(&self, section: &str, key: &str) -> Result<Option<String>, String>;
    fn has_section(&self, section: &str) -> bool;
    /// `Err(reason)` when the daemon must not edit `section` (a duplicated
    /// section or key, an ambiguous header, a file the AWS CLI cannot read).
    fn check(&self, section: &str) -> Result<(), String>;
}

/// The planner reads the editor's document model directly (whose errors
/// name the file it was read from).
impl CredentialsView for crate::credentials::Document {
    fn value(&self, section: &str, key: &str) -> Result<Option<String>, String> {
        self.get(section, key)
            .map(|v| v.map(str::to_string))
            .map_err(|e| e.to_string())
    }

    fn has_section(&self, section: &str) -> bool {
        crate::credentials::Document::has_section(self, section)
    }

    fn check(&self, section: &str) -> Result<(), String> {
        self.check_readable()
            .and_then(|()| self.check_section(section))
            .map_err(|e| e.to_string())
    }
}

/// The MFA sessions in the runtime cache, by key, with their expiry.
pub type KnownMfaSessions = BTreeMap<MfaSessionKey, OffsetDateTime>;

/// The sessions of `output = "process"` profiles in the runtime cache, by
/// profile, with their expiry.
pub type ProcessProfiles = BTreeMap<String, OffsetDateTime>;

/// The key ids in the desktop keyring, by credentials section, or why they
/// could not be read (no Secret Service, a locked keyring).
pub type KeyringKeys = BTreeMap<String, Result<String, String>>;

/// Per section, the [`fingerprint`] of the settings its profile was last
/// written with (recorded by the daemon in its state file).
pub type Applied = BTreeMap<String, u64>;

/// What the planner knows of an SSO session's access token (from the token
/// cache and the sign-in files: no secret, no network).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "token", rename_all = "kebab-case")]
pub enum SsoToken {
    /// Usable until `refresh_at` (then refreshed with the refresh token when
    /// `refreshable`, else a sign-in once it expires).
    Valid {
        #[serde(serialize_with = "crate::timestamp::serialize")]
        expires: OffsetDateTime,
        #[serde(serialize_with = "crate::timestamp::serialize")]
        refresh_at: OffsetDateTime,
        refreshable: bool,
    },
    /// Due for a refresh now, with no person involved.
    RefreshDue {
        #[serde(serialize_with = "crate::timestamp::serialize")]
        expires: OffsetDateTime,
    },
    /// A sign-in is under way: it waits for the person's approval.
    SignInPending(PendingSignIn),
    /// No usable token: the next use starts a sign-in.
    SignInNeeded,
    /// The token cache cannot be used (the reason says why and what to do).
    Unreadable { reason: String },
}

impl SsoToken {
    /// The token's state in words, for `plan` and `status`: its expiry, or
    /// the sign-in it needs (with the URL and the user code while one
    /// waits for the person).
    pub fn describe(&self, now: OffsetDateTime) -> String {
        use crate::text::printable;
        use crate::timestamp::{rfc3339, with_relative};
        match self {
            SsoToken::Valid {
                expires,
                refresh_at,
                refreshable: true,
            } => format!(
                "token valid until {} (refreshed from {})",
                rfc3339(*expires),
                with_relative(*refresh_at, now)
            ),
            SsoToken::Valid { expires, .. } => format!(
                "token valid until {} (it cannot be refreshed: a sign-in after that)",
                with_relative(*expires, now)
            ),
            SsoToken::RefreshDue { expires } => {
                format!(
                    "token expires {}: refresh due",
                    with_relative(*expires, now)
                )
            }
            SsoToken::SignInPending(pending) => match (&pending.url, &pending.user_code) {
                (Some(url), Some(code)) => format!(
                    "sign-in needed (code {}, open {}){}",
                    printable(code),
                    printable(url),
                    if pending.by_this_process {
                        ""
                    } else {
                        "; another process waits for its approval"
                    }
                ),
                _ => "sign-in starting".to_string(),
            },
            SsoToken::SignInNeeded => "no valid token: sign-in needed".to_string(),
            SsoToken::Unreadable { reason } => {
                format!("token cache unusable: {}", printable(reason))
            }
        }
    }
}

/// A sign-in waiting for the person: where to go and which code to check
/// there (shown on purpose; the device code that obtains the token is
/// never known here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingSignIn {
    /// The verification URL, with the code filled in when the service gave
    /// one; `None` while the sign-in is starting.
    pub url: Option<String>,
    pub user_code: Option<String>,
    #[serde(with = "crate::timestamp::option")]
    pub code_expires: Option<OffsetDateTime>,
    /// This process signs in (else another one does, and its token is
    /// waited for).
    pub by_this_process: bool,
}

/// The token state of each SSO session the sections name, by name.
pub type SsoTokens = BTreeMap<String, SsoToken>;

/// Everything the planner looks at.
pub struct Inputs<'a> {
    pub sections: &'a [Section],
    pub credentials: &'a dyn CredentialsView,
    pub mfa_sessions: &'a KnownMfaSessions,
    /// Where `output = "process"` profiles are: the runtime cache.
    pub process_profiles: &'a ProcessProfiles,
    /// The key ids of `long_term_keys = "keyring"` sections.
    pub keyring: &'a KeyringKeys,
    /// The access tokens of the SSO sessions the sections name.
    pub sso_tokens: &'a SsoTokens,
    pub backoff: &'a Backoff,
    pub applied: &'a Applied,
    /// The keyring is locked: a new MFA session (or a direct AssumeRole)
    /// whose long-term keys or OATH password are in it waits for the unlock.
    pub keyring_locked: bool,
    /// Why the credentials file cannot be replaced now (read-only, a link
    /// into the Nix store), if it cannot: the sections due to be written
    /// there are blocked, and no code is spent for them.
    pub read_only: Option<&'a str>,
    /// The credentials file's permission bits when others may read or
    /// write it (another program wrote it under a loose umask); `None`
    /// when it is private (or not ours, or missing).
    pub loose_mode: Option<u32>,
    /// The credentials endpoint serves every section: their sessions are
    /// handed to the SDKs, which ask again inside 15 minutes of expiry.
    pub endpoint: bool,
    pub now: OffsetDateTime,
}

/// The IAM user's long-term keys, as the planner found them. `Debug`
/// shows the key id masked and never the secret.
#[derive(Clone)]
pub struct LongTermKeyPair {
    pub access_key_id: String,
    pub secret: LongTermSecret,
}

/// The secret key: known (from the config or the credentials file), or in
/// the keyring, read only when a code is spent (the planner needs the key
/// id every pass; the secret, once an hour at most).
#[derive(Clone)]
pub enum LongTermSecret {
    Known(SecretString),
    Keyring { credentials_section: String },
}

impl fmt::Debug for LongTermKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LongTermKeyPair({})",
            mask_access_key_id(&self.access_key_id)
        )
    }
}

/// What spending a code on an MFA device needs: where the code comes from,
/// and the long-term keys that sign the call it goes with.
#[derive(Debug, Clone)]
pub struct CodeAuth {
    pub mfa_serial_number: String,
    pub code_source: CodeSource,
    pub long_term: LongTermKeyPair,
}

/// Where the STS call goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StsTarget {
    pub region: String,
    pub endpoint: Option<String>,
}

/// The state of one section's profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum ProfileState {
    /// Valid until after its due time.
    Fresh {
        #[serde(serialize_with = "crate::timestamp::serialize")]
        expires: OffsetDateTime,
    },
    /// Still valid, or expired, but past its due time.
    Refresh {
        #[serde(serialize_with = "crate::timestamp::serialize")]
        expires: OffsetDateTime,
    },
    /// No section in the credentials file, or keys missing from it.
    Missing { what: String },
    /// Keys present but no expiry recorded (placeholders, or written by hand).
    Unmanaged,
    /// The section cannot be refreshed until the user fixes something.
    Invalid { reasons: Vec<String> },
}

impl ProfileState {
    pub fn name(&self) -> &'static str {
        match self {
            ProfileState::Fresh { .. } => "fresh",
            ProfileState::Refresh { .. } => "refresh",
            ProfileState::Missing { .. } => "missing",
            ProfileState::Unmanaged => "unmanaged",
            ProfileState::Invalid { .. } => "invalid",
        }
    }

    pub fn expires(&self) -> Option<OffsetDateTime> {
        match self {
            ProfileState::Fresh { expires } | ProfileState::Refresh { expires } => Some(*expires),
            _ => None,
        }
    }
}

fn serialize_role_arn<S: serde::Serializer>(role: &RoleSettings, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&role.arn)
}

/// How a section's profile gets fresh credentials, with everything needed
/// to do it. What `plan --json` shows of it never includes a secret.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Nothing to do now.
    None,
    /// Due, but what it would be written to cannot be written until the
    /// user changes something (a read-only credentials file): no work, no
    /// wake-up of its own (a file event or the periodic pass looks again).
    Blocked { reason: String },
    /// Due, but the unit it needs is backing off after an error.
    Wait {
        unit: Unit,
        #[serde(serialize_with = "crate::timestamp::serialize")]
        until: OffsetDateTime,
    },
    /// Write the MFA session itself (no `assume_role_arn`).
    WriteMfaSession { mfa_session: MfaSessionKey },
    /// AssumeRole signed with the MFA session (role chaining, at most 1 h).
    AssumeRoleFromMfaSession {
        mfa_session: MfaSessionKey,
        #[serde(rename = "role_arn", serialize_with = "serialize_role_arn")]
        role: RoleSettings,
        #[serde(skip)]
        sts: StsTarget,
    },
    /// AssumeRole with SerialNumber + TokenCode, signed with the long-term
    /// keys (`mfa_session_duration = 0`): one code per refresh.
    AssumeRoleWithCode {
        mfa_serial_number: String,
        #[serde(rename = "role_arn", serialize_with = "serialize_role_arn")]
        role: RoleSettings,
        #[serde(skip)]
        sts: StsTarget,
        #[serde(skip)]
        auth: CodeAuth,
    },
    /// GetRoleCredentials of the account and role with the SSO session's
    /// token: those credentials are the section's session.
    SsoRoleCredentials {
        sso_session: String,
        account_id: String,
        role_name: String,
    },
    /// GetRoleCredentials, then AssumeRole signed with those credentials
    /// (role chaining, at most 1 h).
    AssumeRoleFromSsoRole {
        sso_session: String,
        account_id: String,
        role_name: String,
        #[serde(rename = "role_arn", serialize_with = "serialize_role_arn")]
        role: RoleSettings,
        #[serde(skip)]
        sts: StsTarget,
    },
    /// Waits for its SSO session's sign-in, under way, as a pass left it:
    /// no work and no wake-up of its own (the sign-in's end wakes the loop).
    AwaitSignIn { sso_session: String },
}

impl Action {
    /// True for the actions that call STS (or the portal) now.
    pub fn is_work(&self) -> bool {
        !matches!(
            self,
            Action::None
                | Action::Wait { .. }
                | Action::Blocked { .. }
                | Action::AwaitSignIn { .. }
        )
    }

    /// The SSO session the action needs a token of, if it is an SSO action.
    pub fn sso_session(&self) -> Option<&str> {
        match self {
            Action::SsoRoleCredentials { sso_session, .. }
            | Action::AssumeRoleFromSsoRole { sso_session, .. }
            | Action::AwaitSignIn { sso_session } => Some(sso_session),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SectionPlan {
    pub section: String,
    pub profile: String,
    #[serde(flatten)]
    pub state: ProfileState,
    /// When the profile must be refreshed: its expiry minus the refresh
    /// margin and the jitter ([`due_at`]). In the past (or now) when it is
    /// due; `None` when there is nothing to refresh at any time (invalid).
    #[serde(with = "crate::timestamp::option")]
    pub due: Option<OffsetDateTime>,
    #[serde(flatten)]
    pub action: Action,
    /// The key the expiry is written under (`x_security_token_expires`).
    #[serde(skip)]
    pub expiry_key: String,
    /// The [`fingerprint`] of the section's settings, recorded when written.
    #[serde(skip)]
    pub fingerprint: u64,
    /// Where the session goes: the credentials file or the runtime cache.
    pub output: Output,
    /// Where the long-term keys come from: `config`, `file` or `keyring`;
    /// `sso` for a section of IAM Identity Center (no long-term keys).
    pub long_term_keys: &'static str,
    /// The refresh margin and jitter [`due_at`] applied, so that credentials
    /// the pass obtains are judged by the same rule ([`SectionPlan::due_for`]).
    #[serde(skip)]
    pub margin: u32,
    #[serde(skip)]
    pub jitter: Duration,
    /// Keys of this section's profile to remove from the credentials file:
    /// a session written there before the section's output became
    /// `process` (botocore reads the file before `credential_process`, so
    /// it would keep using the stale session, and a secret would stay on
    /// disk).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remove_from_file: Vec<String>,
    /// Problems that do not stop the section now (shown by `plan`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl SectionPlan {
    /// When credentials of this section expiring at `expires` fall due.
    pub fn due_for(&self, expires: OffsetDateTime) -> OffsetDateTime {
        due_at(expires, self.margin, self.jitter)
    }
}

/// One MFA session the plan relies on, with what it takes to start a new one.
#[derive(Debug, Clone, Serialize)]
pub struct MfaSessionPlan {
    pub key: MfaSessionKey,
    /// Expiry of the cached session, if one is known.
    #[serde(with = "crate::timestamp::option")]
    pub cached_until: Option<OffsetDateTime>,
    /// True when a new session (GetSessionToken, one code) is needed.
    pub needs_new: bool,
    pub used_by: Vec<String>,
    #[serde(skip)]
    pub auth: CodeAuth,
    /// The refresh margin of the first section that uses it.
    #[serde(skip)]
    pub margin: u32,
}

impl MfaSessionPlan {
    /// Whether a session of this key expiring at `expires` may still be
    /// used at `now`: the executor's re-check of a session that another
    /// process put into the cache after this plan was made.
    pub fn usable(&self, expires: OffsetDateTime, now: OffsetDateTime) -> bool {
        due_at(expires, self.margin, session_jitter(&self.key)) > now
    }
}

/// What an SSO session takes for the sections that need its token now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SsoNeeds {
    /// Nothing: the cached token is valid.
    Nothing,
    /// A refresh with the refresh token (no person involved).
    Refresh,
    /// Waiting for the token of a sign-in under way (this process's, or
    /// another's: no device code of this one's).
    AwaitSignIn,
    /// A sign-in: a device code for the person to approve.
    SignIn,
}

/// One SSO session the sections name: its token and what it takes now.
#[derive(Debug, Clone, Serialize)]
pub struct SsoSessionPlan {
    pub name: String,
    pub start_url: String,
    #[serde(flatten)]
    pub token: SsoToken,
    pub needs: SsoNeeds,
    /// The sections that need its token in this pass.
    pub used_by: Vec<String>,
    /// The end of the session's backoff after a failed refresh or sign-in.
    #[serde(
        with = "crate::timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub backoff_until: Option<OffsetDateTime>,
    #[serde(skip)]
    pub session: crate::sso::SsoSession,
    /// Open the sign-in page in the browser (some section asks for it).
    #[serde(skip)]
    pub open_browser: bool,
}

impl SsoSessionPlan {
    /// Its token is refreshed in this pass though no section needs it now
    /// ([`keep_alive`]).
    pub fn keeps_alive(&self) -> bool {
        self.used_by.is_empty() && self.needs == SsoNeeds::Refresh
    }

    /// When the session's token next needs a pass of its own: now for a
    /// refresh planned, its refresh time while valid and refreshable, the
    /// end of its backoff while a refresh waits for it.
    fn next_pass(&self, now: OffsetDateTime) -> Option<(OffsetDateTime, Wake)> {
        match &self.token {
            _ if self.keeps_alive() => Some((now, Wake::Due)),
            SsoToken::Valid {
                refresh_at,
                refreshable: true,
                ..
            } => Some((*refresh_at, Wake::Due)),
            SsoToken::RefreshDue { .. } => self.backoff_until.map(|until| (until, Wake::Retry)),
            _ => None,
        }
    }
}

/// The cost of carrying the plan out.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Work {
    /// YubiKey (or mfa_process) codes per MFA device. Each code needs its own
    /// TOTP step: AWS refuses a code it has already accepted.
    pub codes: BTreeMap<String, usize>,
    pub get_session_token_calls: usize,
    pub assume_role_calls: usize,
    /// IAM Identity Center sign-ins (device authorizations the person
    /// approves), one per SSO session at most.
    pub sso_sign_ins: usize,
    /// Access tokens refreshed with their refresh token.
    pub sso_token_refreshes: usize,
    pub get_role_credentials_calls: usize,
}

impl Work {
    pub fn total_codes(&self) -> usize {
        self.codes.values().sum()
    }
}

/// Why the loop should wake up next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A profile (or the MFA session it needs) falls due.
    Due,
    /// A unit's backoff ends.
    Retry,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    #[serde(serialize_with = "crate::timestamp::serialize")]
    pub now: OffsetDateTime,
    pub sections: Vec<SectionPlan>,
    /// Make the credentials file private again: its permission bits now
    /// (another program rewrote it readable by others).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restrict_file_mode: Option<u32>,
    /// Ask for the keyring's unlock: a section waits for a secret in it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub request_unlock: bool,
    pub mfa_sessions: Vec<MfaSessionPlan>,
    /// Every SSO session the valid sections name.
    pub sso_sessions: Vec<SsoSessionPlan>,
    pub work: Work,
    /// The earliest instant something needs a pass: a profile falling due,
    /// or a backoff ending. `now` when there is work now; `None` when
    /// nothing is managed.
    #[serde(with = "crate::timestamp::option")]
    pub next_pass: Option<OffsetDateTime>,
}

impl Plan {
    /// Sections with work to do now.
    pub fn pending(&self) -> impl Iterator<Item = &SectionPlan> {
        self.sections.iter().filter(|s| s.action.is_work())
    }

    /// Sections whose old session is to be removed from the credentials file.
    pub fn cleanups(&self) -> impl Iterator<Item = &SectionPlan> {
        self.sections
            .iter()
            .filter(|s| !s.remove_from_file.is_empty())
    }

    /// Whether carrying the plan out does anything at all.
    pub fn has_work(&self) -> bool {
        self.pending().next().is_some()
            || self.cleanups().next().is_some()
            || self.restrict_file_mode.is_some()
            || self.request_unlock
            || self.sso_sessions.iter().any(SsoSessionPlan::keeps_alive)
    }

    pub fn has_invalid(&self) -> bool {
        self.sections
            .iter()
            .any(|s| matches!(s.state, ProfileState::Invalid { .. }))
    }

    pub fn all_fresh(&self) -> bool {
        self.sections
            .iter()
            .all(|s| matches!(s.state, ProfileState::Fresh { .. }))
    }

    /// Whether carrying out `section`'s action spends a code.
    pub fn needs_code(&self, section: &str) -> bool {
        match self.section(section).map(|s| &s.action) {
            Some(Action::AssumeRoleWithCode { .. }) => true,
            Some(
                Action::WriteMfaSession { mfa_session }
                | Action::AssumeRoleFromMfaSession { mfa_session, .. },
            ) => self.mfa_session(mfa_session).is_some_and(|s| s.needs_new),
            _ => false,
        }
    }

    pub fn mfa_session(&self, key: &MfaSessionKey) -> Option<&MfaSessionPlan> {
        self.mfa_sessions.iter().find(|s| &s.key == key)
    }

    pub fn sso_session(&self, name: &str) -> Option<&SsoSessionPlan> {
        self.sso_sessions.iter().find(|s| s.name == name)
    }

    pub fn section(&self, name: &str) -> Option<&SectionPlan> {
        self.sections.iter().find(|s| s.section == name)
    }

    /// When a section next needs a pass: its due time while fresh, the end
    /// of its unit's backoff while waiting, now while it has work.
    pub fn next_pass_of(&self, section: &SectionPlan) -> Option<(OffsetDateTime, Wake)> {
        match &section.action {
            Action::Wait { until, .. } => Some((*until, Wake::Retry)),
            Action::Blocked { .. } | Action::AwaitSignIn { .. } => None,
            action if action.is_work() => Some((self.now, Wake::Due)),
            _ => section.due.map(|due| (due, Wake::Due)),
        }
    }

    /// The plan as a pass left it, without observing again: a section that
    /// got credentials expiring at `Fresh(expires)` is fresh until they fall
    /// due (by the section's own rule, [`SectionPlan::due_for`]), a section
    /// whose unit failed waits for that unit's backoff, a section whose SSO
    /// session's sign-in started waits for it, and every section the pass
    /// did not touch is as planned; an SSO session whose token the pass
    /// got (`tokens`: its expiry) is refreshed next at the usual time before
    /// that expiry, one whose refresh failed waits for its backoff. What is
    /// left to do is nothing: the next pass plans anew.
    pub fn after(
        &self,
        results: &BTreeMap<String, Left>,
        tokens: &BTreeMap<String, OffsetDateTime>,
        backoff: &Backoff,
        now: OffsetDateTime,
    ) -> Plan {
        let mut plan = self.clone();
        plan.now = now;
        plan.work = Work::default();
        plan.restrict_file_mode = None;
        plan.request_unlock = false;
        for session in &mut plan.sso_sessions {
            session.needs = SsoNeeds::Nothing;
            session.used_by.clear();
            session.backoff_until =
                backoff_end(backoff, &Unit::SsoSession(session.name.clone()), now);
            if let Some(expires) = tokens.get(&session.name) {
                session.token = token_got(*expires, now);
            }
        }
        for section in &mut plan.sections {
            let unit = match results.get(&section.section) {
                None => continue,
                Some(Left::AwaitingSignIn(sso_session)) => {
                    section.action = Action::AwaitSignIn {
                        sso_session: sso_session.clone(),
                    };
                    section.remove_from_file.clear();
                    continue;
                }
                Some(Left::Fresh(expires)) => {
                    let due = section.due_for(*expires);
                    section.state = if due > now {
                        ProfileState::Fresh { expires: *expires }
                    } else {
                        ProfileState::Refresh { expires: *expires }
                    };
                    section.due = Some(due);
                    section.action = Action::None;
                    Unit::Section(section.section.clone())
                }
                Some(Left::Failed(unit)) => unit.clone(),
            };
            section.remove_from_file.clear();
            if let Some(until) = backoff.get(&unit) {
                section.action = Action::Wait {
                    unit,
                    until: *until,
                };
            }
        }
        plan.next_pass = plan.next_wake().map(|(at, _)| at);
        plan
    }

    /// The next pass and why: the earliest of [`Plan::next_pass_of`].
    pub fn next_wake(&self) -> Option<(OffsetDateTime, Wake)> {
        let sessions = self
            .sso_sessions
            .iter()
            .filter_map(|s| s.next_pass(self.now));
        self.sections
            .iter()
            .filter_map(|s| self.next_pass_of(s))
            .chain(sessions)
            .min_by_key(|(at, _)| *at)
    }
}

/// The state of a token a pass got, expiring at `expires`: refreshed at the
/// usual time before then, or, when it came already inside that window (an
/// issuer of short tokens), not before a section needs it (no pass of its
/// own: that would refresh it again at once, forever).
fn token_got(expires: OffsetDateTime, now: OffsetDateTime) -> SsoToken {
    let refresh_at = crate::sso::refresh_time(expires);
    SsoToken::Valid {
        expires,
        refresh_at: refresh_at.max(now),
        refreshable: refresh_at > now,
    }
}

/// What a pass left of a section it gave work (for [`Plan::after`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Left {
    /// Credentials expiring then were written.
    Fresh(OffsetDateTime),
    /// This unit failed.
    Failed(Unit),
    /// The sign-in of this SSO session started (or was under way): the
    /// section waits for it.
    AwaitingSignIn(String),
}

/// Several daemons (one per section under the systemd template) that share
/// an MFA device must not all wake in the same second; sections that share
/// an MFA session must fall due together (one pass, one batch of calls).
/// So the jitter is a fixed spread of up to five seconds, derived from the
/// MFA session (or the section, for a direct AssumeRole); whole seconds, like
/// the expiries, so that a due time prints and records exactly.
const JITTER_SECONDS: u64 = 5;

fn jitter_of(text: &str) -> Duration {
    // Stable across runs and processes (std's hasher is seeded).
    Duration::seconds((stable_hash(text) % (JITTER_SECONDS + 1)) as i64)
}

fn session_jitter(key: &MfaSessionKey) -> Duration {
    mfa_session_jitter(&key.mfa_serial_number, key.duration, &key.region)
}

/// [`session_jitter`] of the MFA session a section uses, known without its
/// long-term keys (the key id does not enter it).
fn session_jitter_of(settings: &Settings, mfa: &MfaSource) -> Duration {
    mfa_session_jitter(
        &mfa.mfa_serial_number,
        mfa.mfa_session_duration,
        &settings.region,
    )
}

/// The sections of one SSO session fall due together (one token, one
/// batch of GetRoleCredentials).
fn sso_jitter(sso: &SsoSource) -> Duration {
    jitter_of(&format!("sso|{}", sso.session_name()))
}

fn mfa_session_jitter(serial: &str, duration: u32, region: &str) -> Duration {
    jitter_of(&format!("{serial}|{duration}|{region}"))
}

/// When credentials expiring at `expires` must be refreshed: `margin`
/// seconds before, less the jitter. The one place the margin is applied.
/// Never panics: an instant at the edge of the calendar stays where it is.
pub fn due_at(expires: OffsetDateTime, margin: u32, jitter: Duration) -> OffsetDateTime {
    let before = Duration::seconds(i64::from(margin)) + jitter;
    expires.checked_sub(before).unwrap_or(expires)
}

/// Computes the plan. Pure: everything it knows is in its inputs.
pub fn plan(inputs: &Inputs<'_>) -> Plan {
    let now = inputs.now;
    let conflicts = profile_conflicts(inputs.sections);
    let mut section_plans = Vec::with_capacity(inputs.sections.len());
    let mut sessions: BTreeMap<MfaSessionKey, MfaSessionPlan> = BTreeMap::new();
    let mut sso_sessions = sso_session_plans(inputs);
    let mut work = Work::default();

    for section in inputs.sections {
        let settings = match &section.settings {
            Ok(settings) => settings,
            Err(errors) => {
                section_plans.push(invalid(
                    section,
                    &section.name,
                    errors.iter().map(ToString::to_string).collect(),
                ));
                continue;
            }
        };
        let mut reasons: Vec<String> = conflicts.get(&section.name).cloned().into_iter().collect();
        let (remove_from_file, warnings) = stale_file_session(settings, inputs);
        let with_file_session = |mut plan: SectionPlan| {
            plan.remove_from_file = remove_from_file.clone();
            plan.warnings = warnings.clone();
            plan
        };
        let state = match settings.output {
            // Never written to the credentials file: its state is in the cache.
            Output::Process => Some(observe_process(settings, inputs.process_profiles)),
            Output::File => match inputs.credentials.check(&settings.profile_name) {
                Err(reason) => {
                    reasons.push(reason);
                    None
                }
                Ok(()) => Some(observe(settings, inputs.credentials, now)),
            },
        };
        let (Some(expires), true) = (state, reasons.is_empty()) else {
            section_plans.push(with_file_session(invalid(
                section,
                &settings.profile_name,
                reasons,
            )));
            continue;
        };
        let jitter = match (&settings.source, &settings.role) {
            (Source::Sso(sso), _) => sso_jitter(sso),
            (Source::Mfa(mfa), Some(_)) if mfa.direct_assume_role() => jitter_of(&section.name),
            (Source::Mfa(mfa), _) => session_jitter_of(settings, mfa),
        };
        let fingerprint = fingerprint(settings);
        let changed = inputs
            .applied
            .get(&section.name)
            .is_some_and(|applied| *applied != fingerprint);
        let margin = refresh_margin(settings, inputs.endpoint);
        let (state, due) = match expires {
            // Credentials of a role (or duration) the config no longer names.
            Observed::Expires(expires) if changed => (ProfileState::Refresh { expires }, now),
            Observed::Expires(expires) => {
                let due = due_at(expires, margin, jitter);
                if due > now {
                    (ProfileState::Fresh { expires }, due)
                } else {
                    (ProfileState::Refresh { expires }, due)
                }
            }
            Observed::Other(state) => (state, now),
        };
        let blocked = || match (inputs.read_only, settings.output) {
            (Some(reason), Output::File) => Some(Action::Blocked {
                reason: reason.to_string(),
            }),
            _ => None,
        };
        let action = match &settings.source {
            _ if due > now => Action::None,
            // The long-term keys are needed only for a refresh: a fresh
            // session is served (and shown fresh) while the keyring is
            // locked or the keys' section cannot be read.
            Source::Mfa(mfa) => {
                match read_long_term_keys(&mfa.long_term, inputs.credentials, inputs.keyring) {
                    Err(reason) => {
                        section_plans.push(with_file_session(invalid(
                            section,
                            &settings.profile_name,
                            vec![reason],
                        )));
                        continue;
                    }
                    Ok(_) if blocked().is_some() => blocked().expect("checked"),
                    Ok(keys) => {
                        let key = mfa_session_key(settings, mfa, &keys);
                        let auth = CodeAuth {
                            mfa_serial_number: mfa.mfa_serial_number.clone(),
                            code_source: mfa.code_source.clone(),
                            long_term: keys,
                        };
                        decide(
                            section,
                            settings,
                            mfa,
                            key,
                            auth,
                            inputs,
                            &mut sessions,
                            &mut work,
                        )
                    }
                }
            }
            Source::Sso(sso) => match blocked() {
                Some(blocked) => blocked,
                None => decide_sso(section, settings, sso, inputs, &mut sso_sessions, &mut work),
            },
        };
        section_plans.push(with_file_session(SectionPlan {
            section: section.name.clone(),
            profile: settings.profile_name.clone(),
            state,
            due: Some(due),
            action,
            expiry_key: settings.expiry_key.clone(),
            fingerprint,
            output: settings.output,
            long_term_keys: keys_source(settings),
            margin,
            jitter,
            remove_from_file: Vec::new(),
            warnings: Vec::new(),
        }));
    }

    for session in sessions.values() {
        if session.needs_new {
            work.get_session_token_calls += 1;
            *work
                .codes
                .entry(session.key.mfa_serial_number.clone())
                .or_default() += 1;
        }
    }
    for session in sso_sessions.values_mut() {
        keep_alive(session, inputs);
    }
    for session in sso_sessions.values() {
        match session.needs {
            SsoNeeds::SignIn => work.sso_sign_ins += 1,
            SsoNeeds::Refresh => work.sso_token_refreshes += 1,
            SsoNeeds::Nothing | SsoNeeds::AwaitSignIn => {}
        }
    }
    let mut plan = Plan {
        now,
        sections: section_plans,
        restrict_file_mode: inputs.loose_mode,
        request_unlock: false,
        mfa_sessions: sessions.into_values().collect(),
        sso_sessions: sso_sessions.into_values().collect(),
        work,
        next_pass: None,
    };
    plan.request_unlock = inputs.keyring_locked
        && plan
            .sections
            .iter()
            .any(|s| matches!(s.action, Action::Blocked { .. }));
    plan.next_pass = plan.next_wake().map(|(at, _)| at);
    plan
}

fn invalid(section: &Section, profile: &str, reasons: Vec<String>) -> SectionPlan {
    SectionPlan {
        section: section.name.clone(),
        profile: profile.to_string(),
        state: ProfileState::Invalid { reasons },
        due: None,
        action: Action::None,
        expiry_key: String::new(),
        fingerprint: 0,
        output: section.settings.as_ref().map_or(Output::File, |s| s.output),
        long_term_keys: section.settings.as_ref().map_or("file", keys_source),
        margin: 0,
        jitter: Duration::ZERO,
        remove_from_file: Vec::new(),
        warnings: Vec::new(),
    }
}

/// The keys that hold a session in a profile of the credentials file
/// (`aws_security_token`: older tools, and botocore reads it first).
const SESSION_KEYS: [&str; 4] = [
    ACCESS_KEY_ID,
    SECRET_ACCESS_KEY,
    SESSION_TOKEN,
    "aws_security_token",
];

/// A `process` section's profile in the credentials file: a session with
/// an expiry under the section's expiry key is one a session tool wrote
/// there (this daemon, before the section's output became `process`), and
/// is removed; other credentials there are the user's, and only warned
/// about, because botocore and the SDKs use them before
/// `credential_process`.
fn stale_file_session(settings: &Settings, inputs: &Inputs<'_>) -> (Vec<String>, Vec<String>) {
    let profile = &settings.profile_name;
    let credentials = inputs.credentials;
    if settings.output != Output::Process || !credentials.has_section(profile) {
        return (Vec::new(), Vec::new());
    }
    let present: Vec<&str> = SESSION_KEYS
        .into_iter()
        .filter(|key| matches!(credentials.value(profile, key), Ok(Some(_))))
        .collect();
    if present.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let expiry = credentials
        .value(profile, &settings.expiry_key)
        .ok()
        .flatten();
    let written_by_a_session_tool = expiry
        .as_deref()
        .is_some_and(|text| crate::timestamp::session_expiry(text, inputs.now).is_some());
    let shadows = format!(
        "profile [{profile}] in the credentials file holds {}, which the AWS CLI and SDKs use before credential_process",
        present.join(", ")
    );
    match (written_by_a_session_tool, inputs.read_only) {
        (true, None) => {
            let mut keys: Vec<String> = present.iter().map(|k| k.to_string()).collect();
            keys.push(settings.expiry_key.clone());
            (keys, Vec::new())
        }
        (true, Some(reason)) => (
            Vec::new(),
            vec![format!("{shadows}; it cannot be removed: {reason}")],
        ),
        (false, _) => (
            Vec::new(),
            vec![format!(
                "{shadows}; remove them from the file, or the section's session is never used"
            )],
        ),
    }
}

/// botocore (and the SDKs) ask a `credential_process` again on every call
/// once its credentials expire within 10 minutes (15 minutes: "advisory"
/// refresh), so a session served to them must be renewed earlier than that,
/// or each API call in the last minutes would run the command again.
const PROCESS_MIN_MARGIN: u32 = 15 * 60;

/// The refresh margin the plan applies to a section: the configured one,
/// but for sessions served to a process (`credential-process`, the
/// credentials endpoint) never inside botocore's refresh window.
/// A session shorter than twice that (AssumeRole allows 15 minutes) is
/// renewed at half its life instead, or it would be due as it arrives.
fn refresh_margin(settings: &Settings, endpoint: bool) -> u32 {
    let lifetime = settings.lifetime();
    match (settings.output, endpoint) {
        (Output::File, false) => settings.refresh_margin,
        (Output::Process, _) | (_, true) => settings
            .refresh_margin
            .max(PROCESS_MIN_MARGIN.min(lifetime / 2)),
    }
}

fn keys_source(settings: &Settings) -> &'static str {
    match &settings.source {
        Source::Mfa(mfa) => match mfa.long_term {
            LongTermKeys::Inline { .. } => "config",
            LongTermKeys::CredentialsSection(_) => "file",
            LongTermKeys::Keyring(_) => "keyring",
        },
        Source::Sso(_) => "sso",
    }
}

/// A fingerprint of the settings that shape a profile's credentials: the
/// role and its session parameters, or the MFA session written as it is.
/// Stable across runs and versions (the program's one hash function over a
/// fixed rendering), so that only a real change of the config refreshes a
/// fresh profile.
pub fn fingerprint(settings: &Settings) -> u64 {
    let mut text = match &settings.source {
        Source::Mfa(mfa) => format!(
            "mfa={}|duration={}",
            mfa.mfa_serial_number, mfa.mfa_session_duration
        ),
        Source::Sso(sso) => format!(
            "sso={}|{}|account={}|role={}",
            sso.session.name, sso.session.start_url, sso.account_id, sso.role_name
        ),
    };
    if let Some(role) = &settings.role {
        text.push_str(&format!(
            "|role={}|{}|{}|{:?}|{:?}|{:?}|{:?}",
            role.arn,
            role.duration,
            role.session_name,
            role.source_identity,
            role.external_id,
            role.policy_arns,
            role.policy
        ));
    }
    stable_hash(&text)
}

/// A hash of `text` that is the same in every process and version (std's
/// hasher is seeded per process): the program's one hash function,
/// [`credfile::stable_hash`] (XXH3-64).
pub(crate) fn stable_hash(text: &str) -> u64 {
    credfile::stable_hash(text.as_bytes())
}

/// The action for a section that is due, and its cost; `Wait` when a unit
/// it needs is backing off.
#[allow(clippy::too_many_arguments)]
fn decide(
    section: &Section,
    settings: &Settings,
    mfa: &MfaSource,
    key: MfaSessionKey,
    auth: CodeAuth,
    inputs: &Inputs<'_>,
    sessions: &mut BTreeMap<MfaSessionKey, MfaSessionPlan>,
    work: &mut Work,
) -> Action {
    let now = inputs.now;
    let waiting = |unit: Unit| waiting(inputs, unit);
    let device = Unit::Device(mfa.mfa_serial_number.clone());
    if let Some(wait) = waiting(Unit::Section(section.name.clone())) {
        return wait;
    }
    let sts = StsTarget {
        region: settings.region.clone(),
        endpoint: settings.sts_endpoint.clone(),
    };
    // A code signed with (or read with) secrets of a locked keyring waits
    // for the unlock; nothing is spent before.
    let locked_away = inputs.keyring_locked && needs_the_keyring(&auth);
    let needed = match auth.long_term.secret {
        LongTermSecret::Keyring { .. } => "the long-term keys in it are needed",
        LongTermSecret::Known(_) => "the OATH password in it is needed",
    };
    let await_unlock = || Action::Blocked {
        reason: format!(
            "the keyring is locked, and {needed} for a new MFA session; refreshing as soon as it is unlocked"
        ),
    };
    if let Some(role) = settings.role.as_ref().filter(|_| mfa.direct_assume_role()) {
        if let Some(wait) = waiting(device) {
            return wait;
        }
        if locked_away {
            return await_unlock();
        }
        work.assume_role_calls += 1;
        *work.codes.entry(mfa.mfa_serial_number.clone()).or_default() += 1;
        return Action::AssumeRoleWithCode {
            mfa_serial_number: mfa.mfa_serial_number.clone(),
            role: role.clone(),
            sts,
            auth,
        };
    }

    // An MFA session: cached and usable, or a new one (which needs the device).
    let cached_until = inputs.mfa_sessions.get(&key).copied();
    let session_plan = MfaSessionPlan {
        key: key.clone(),
        cached_until,
        needs_new: false,
        used_by: Vec::new(),
        auth,
        // A section that writes the MFA session itself judges it by its own
        // margin (a process output's is longer); roles only need it valid
        // for their AssumeRole.
        margin: match settings.role {
            None => refresh_margin(settings, inputs.endpoint),
            Some(_) => settings.refresh_margin,
        },
    };
    let needs_new = !cached_until.is_some_and(|until| session_plan.usable(until, now));
    if needs_new && let Some(wait) = waiting(device) {
        return wait;
    }
    if needs_new && locked_away {
        return await_unlock();
    }
    let margin = session_plan.margin;
    let entry = sessions.entry(key.clone()).or_insert(session_plan);
    entry.needs_new |= needs_new;
    entry.margin = entry.margin.max(margin);
    entry.used_by.push(section.name.clone());
    match &settings.role {
        None => Action::WriteMfaSession { mfa_session: key },
        Some(role) => {
            work.assume_role_calls += 1;
            Action::AssumeRoleFromMfaSession {
                mfa_session: key,
                role: role.clone(),
                sts,
            }
        }
    }
}

/// A token due for its refresh while no section needs it now is refreshed
/// all the same (no person involved): the AWS tools that read the shared
/// token cache find it valid, and the refresh token is used while it still
/// works, not hours later when a section falls due. A refused refresh then
/// asks for no sign-in: the sections do that when they need one.
fn keep_alive(session: &mut SsoSessionPlan, inputs: &Inputs<'_>) {
    session.backoff_until = backoff_end(
        inputs.backoff,
        &Unit::SsoSession(session.name.clone()),
        inputs.now,
    );
    if session.used_by.is_empty()
        && session.backoff_until.is_none()
        && matches!(session.token, SsoToken::RefreshDue { .. })
    {
        session.needs = SsoNeeds::Refresh;
    }
}

/// The SSO sessions the valid sections name, each with its token and, for
/// now, nothing to do ([`decide_sso`] adds what the due sections need).
fn sso_session_plans(inputs: &Inputs<'_>) -> BTreeMap<String, SsoSessionPlan> {
    let mut plans = BTreeMap::new();
    for settings in inputs
        .sections
        .iter()
        .filter_map(|s| s.settings.as_ref().ok())
    {
        let Some(sso) = settings.sso() else { continue };
        let plan = plans
            .entry(sso.session.name.clone())
            .or_insert_with(|| SsoSessionPlan {
                name: sso.session.name.clone(),
                start_url: sso.session.start_url.clone(),
                token: inputs
                    .sso_tokens
                    .get(&sso.session.name)
                    .cloned()
                    .unwrap_or(SsoToken::SignInNeeded),
                needs: SsoNeeds::Nothing,
                used_by: Vec::new(),
                backoff_until: None,
                session: sso.session.clone(),
                open_browser: false,
            });
        plan.open_browser |= sso.open_browser;
    }
    plans
}

/// The action for a due section of IAM Identity Center, and its cost: the
/// token its SSO session has (or the refresh, or the sign-in it takes), then
/// GetRoleCredentials (and AssumeRole from those credentials). `Wait` when
/// the section, or the token's refresh or sign-in, is backing off; waiting
/// for a sign-in under way costs nothing and needs no timer.
fn decide_sso(
    section: &Section,
    settings: &Settings,
    sso: &SsoSource,
    inputs: &Inputs<'_>,
    sessions: &mut BTreeMap<String, SsoSessionPlan>,
    work: &mut Work,
) -> Action {
    let waiting = |unit: Unit| waiting(inputs, unit);
    if let Some(wait) = waiting(Unit::Section(section.name.clone())) {
        return wait;
    }
    let name = sso.session_name();
    let Some(session) = sessions.get_mut(name) else {
        return Action::Blocked {
            reason: format!("SSO session {name} was not observed"),
        };
    };
    let needs = match &session.token {
        SsoToken::Valid { .. } => SsoNeeds::Nothing,
        SsoToken::RefreshDue { .. } => SsoNeeds::Refresh,
        SsoToken::SignInNeeded => SsoNeeds::SignIn,
        SsoToken::SignInPending(_) => SsoNeeds::AwaitSignIn,
        SsoToken::Unreadable { reason } => {
            return Action::Blocked {
                reason: reason.clone(),
            };
        }
    };
    if matches!(needs, SsoNeeds::Refresh | SsoNeeds::SignIn)
        && let Some(wait) = waiting(Unit::SsoSession(name.to_string()))
    {
        return wait;
    }
    session.needs = session.needs.max(needs);
    session.used_by.push(section.name.clone());
    // A sign-in under way: the credentials come when it ends (in this pass
    // for a command, which waits for it; the daemon's sections wait for it
    // without a timer, and its end wakes the loop).
    work.get_role_credentials_calls += 1;
    let (sso_session, account_id, role_name) = (
        name.to_string(),
        sso.account_id.clone(),
        sso.role_name.clone(),
    );
    match &settings.role {
        None => Action::SsoRoleCredentials {
            sso_session,
            account_id,
            role_name,
        },
        Some(role) => {
            work.assume_role_calls += 1;
            Action::AssumeRoleFromSsoRole {
                sso_session,
                account_id,
                role_name,
                role: role.clone(),
                sts: StsTarget {
                    region: settings.region.clone(),
                    endpoint: settings.sts_endpoint.clone(),
                },
            }
        }
    }
}

/// `Wait` for `unit` while it backs off after an error.
fn waiting(inputs: &Inputs<'_>, unit: Unit) -> Option<Action> {
    let until = backoff_end(inputs.backoff, &unit, inputs.now)?;
    Some(Action::Wait { unit, until })
}

/// When `unit`'s backoff ends, if it is still backing off at `now`.
fn backoff_end(backoff: &Backoff, unit: &Unit, now: OffsetDateTime) -> Option<OffsetDateTime> {
    backoff.get(unit).copied().filter(|until| *until > now)
}

/// Whether spending a code for `auth` reads a secret from the keyring (the
/// long-term secret key, or the OATH applet's password).
fn needs_the_keyring(auth: &CodeAuth) -> bool {
    matches!(auth.long_term.secret, LongTermSecret::Keyring { .. })
        || matches!(
            &auth.code_source,
            CodeSource::Oath {
                password: Some(crate::config::PasswordSpec::Keyring),
                ..
            }
        )
}

/// Several sections writing one profile would overwrite each other; a
/// profile that is another section's long-term key section would destroy
/// the keys. Both are reported on every section involved.
fn profile_conflicts(sections: &[Section]) -> BTreeMap<String, String> {
    let mut writers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut key_sections: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for section in sections {
        if let Ok(settings) = &section.settings {
            writers
                .entry(&settings.profile_name)
                .or_default()
                .push(&section.name);
            // (A keyring item shares its name with no file section.)
            if let Some(LongTermKeys::CredentialsSection(name)) =
                settings.mfa().map(|mfa| &mfa.long_term)
            {
                key_sections.entry(name).or_default().push(&section.name);
            }
        }
    }
    let mut conflicts = BTreeMap::new();
    for (profile, names) in &writers {
        if names.len() > 1 {
            for name in names {
                conflicts.insert(
                    name.to_string(),
                    format!(
                        "profile [{profile}] is written by sections {}; give each section its own profile_name",
                        names.join(", ")
                    ),
                );
            }
        }
        if let Some(users) = key_sections.get(profile) {
            for name in names {
                conflicts.insert(
                    name.to_string(),
                    format!(
                        "profile [{profile}] holds the long-term keys of section(s) {}; writing a session there would destroy them",
                        users.join(", ")
                    ),
                );
            }
        }
    }
    conflicts
}

/// The long-term keys that sign GetSessionToken or a direct AssumeRole:
/// from the config, or from a credentials-file section. The one reader of
/// them; a key or secret that is missing or empty is refused here.
pub fn read_long_term_keys(
    long_term: &LongTermKeys,
    credentials: &dyn CredentialsView,
    keyring: &KeyringKeys,
) -> Result<LongTermKeyPair, String> {
    let section = match long_term {
        LongTermKeys::Inline {
            access_key_id,
            secret_access_key,
        } => {
            return Ok(LongTermKeyPair {
                access_key_id: access_key_id.clone(),
                secret: LongTermSecret::Known(secret_access_key.clone()),
            });
        }
        LongTermKeys::Keyring(section) => {
            return match keyring.get(section) {
                Some(Ok(id)) => Ok(LongTermKeyPair {
                    access_key_id: id.clone(),
                    secret: LongTermSecret::Keyring {
                        credentials_section: section.clone(),
                    },
                }),
                Some(Err(reason)) => Err(reason.clone()),
                None => Err(format!(
                    "the keyring holds no long-term keys for credentials section [{section}]; store them with `aws-session-daemon keyring set --credentials-section {section}` (or `keyring import`)"
                )),
            };
        }
        LongTermKeys::CredentialsSection(section) => section,
    };
    let non_empty = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let id = non_empty(credentials.value(section, ACCESS_KEY_ID)?);
    let secret = non_empty(credentials.value(section, SECRET_ACCESS_KEY)?);
    let token = credentials.value(section, SESSION_TOKEN)?;
    match (id, secret, token) {
        (_, _, Some(_)) => Err(format!(
            "credentials section [{section}] holds temporary credentials (it has an aws_session_token); GetSessionToken needs long-term keys: put your IAM user's access key in [{section}] or set credentials_section"
        )),
        (Some(id), Some(secret), None) => Ok(LongTermKeyPair {
            access_key_id: id,
            secret: LongTermSecret::Known(SecretString::from(secret)),
        }),
        _ if !credentials.has_section(section) => Err(format!(
            "credentials section [{section}] does not exist; add it with your long-term aws_access_key_id and aws_secret_access_key, or set credentials_section"
        )),
        _ => Err(format!(
            "credentials section [{section}] lacks aws_access_key_id or aws_secret_access_key (or one is empty); add your long-term keys there"
        )),
    }
}

/// Which MFA session a section uses.
pub fn mfa_session_key(
    settings: &Settings,
    mfa: &MfaSource,
    keys: &LongTermKeyPair,
) -> MfaSessionKey {
    MfaSessionKey {
        access_key_id: keys.access_key_id.clone(),
        mfa_serial_number: mfa.mfa_serial_number.clone(),
        duration: mfa.mfa_session_duration,
        region: settings.region.clone(),
        endpoint: settings.sts_endpoint.clone(),
    }
}

/// What the runtime cache says of an `output = "process"` profile.
fn observe_process(settings: &Settings, profiles: &ProcessProfiles) -> Observed {
    match profiles.get(&settings.profile_name) {
        Some(expires) => Observed::Expires(*expires),
        None => Observed::Other(ProfileState::Missing {
            what: "no session in the runtime cache".to_string(),
        }),
    }
}

/// What the credentials file says of a profile.
enum Observed {
    Expires(OffsetDateTime),
    Other(ProfileState),
}

fn observe(
    settings: &Settings,
    credentials: &dyn CredentialsView,
    now: OffsetDateTime,
) -> Observed {
    let profile = &settings.profile_name;
    if !credentials.has_section(profile) {
        return Observed::Other(ProfileState::Missing {
            what: format!("no [{profile}] section"),
        });
    }
    let missing: Vec<&str> = [ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN]
        .into_iter()
        .filter(
            |key| !matches!(credentials.value(profile, key), Ok(Some(v)) if !v.trim().is_empty()),
        )
        .collect();
    if !missing.is_empty() {
        return Observed::Other(ProfileState::Missing {
            what: format!("missing {}", missing.join(", ")),
        });
    }
    match credentials.value(profile, &settings.expiry_key) {
        // An expiry no session can have (year 0, 9999) is no expiry: the
        // credentials are unmanaged, refreshed now.
        Ok(Some(text)) => match crate::timestamp::session_expiry(&text, now) {
            Some(expires) => Observed::Expires(expires),
            None => Observed::Other(ProfileState::Unmanaged),
        },
        _ => Observed::Other(ProfileState::Unmanaged),
    }
}

#[cfg(test)]
mod tests;
