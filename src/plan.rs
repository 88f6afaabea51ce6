//! The planner: desired versus actual state, as a pure function, and the
//! only place that decides.
//!
//! [`plan`] takes [`Inputs`]: the expanded config sections, a read-only view
//! of the credentials file, the MFA sessions in the runtime cache, the units
//! that are backing off after errors, and `now`. It returns, per section,
//! the state of its profile, when it falls due, and the action that makes
//! it fresh, carrying everything the executor needs to do it; and the work
//! all that costs (YubiKey codes, STS calls). It does no I/O and reads no
//! clock, so `plan`, `status`, `apply` and the daemon share it, and it is
//! tested with tables of inputs.
//!
//! Time rules live here once: [`due_at`] is the one place the refresh margin
//! (and the jitter) is applied, for profiles and MFA sessions alike.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::SecretString;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::config::{CodeSource, LongTermKeys, Output, RoleSettings, Section, Settings};
use crate::credentials::{ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN};
use crate::secret::mask_access_key_id;

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

/// Units backing off after errors, with the earliest next attempt.
pub type Backoff = BTreeMap<Unit, OffsetDateTime>;

/// Per section, the [`fingerprint`] of the settings its profile was last
/// written with (recorded by the daemon in its state file).
pub type Applied = BTreeMap<String, u64>;

/// What fails, and backs off, independently: an MFA device (a code or a
/// GetSessionToken failed) or a section (its AssumeRole or its write failed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "kebab-case")]
pub enum Unit {
    /// An MFA device, by serial number: codes and GetSessionToken.
    Device(String),
    /// A section, by name: its AssumeRole and its write.
    Section(String),
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unit::Device(serial) => write!(f, "MFA device {serial}"),
            Unit::Section(name) => write!(f, "section [{name}]"),
        }
    }
}

/// Everything the planner looks at.
pub struct Inputs<'a> {
    pub sections: &'a [Section],
    pub credentials: &'a dyn CredentialsView,
    pub mfa_sessions: &'a KnownMfaSessions,
    /// Where `output = "process"` profiles are: the runtime cache.
    pub process_profiles: &'a ProcessProfiles,
    /// The key ids of `long_term_keys = "keyring"` sections.
    pub keyring: &'a KeyringKeys,
    pub backoff: &'a Backoff,
    pub applied: &'a Applied,
    pub now: OffsetDateTime,
}

/// Sections that agree on all of these share one MFA session, so N sections
/// cost one YubiKey code, not N.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct MfaSessionKey {
    /// Long-term access key id that signs GetSessionToken.
    #[serde(serialize_with = "serialize_masked")]
    pub access_key_id: String,
    pub mfa_serial_number: String,
    pub duration: u32,
    pub region: String,
    pub endpoint: Option<String>,
}

fn serialize_masked<S: serde::Serializer>(id: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&mask_access_key_id(id))
}

impl fmt::Display for MfaSessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} via {} ({} s)",
            self.mfa_serial_number,
            mask_access_key_id(&self.access_key_id),
            self.duration
        )
    }
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
}

impl Action {
    /// True for the actions that call STS now.
    pub fn is_work(&self) -> bool {
        !matches!(self, Action::None | Action::Wait { .. })
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
    /// Where the long-term keys come from: `config`, `file` or `keyring`.
    pub long_term_keys: &'static str,
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

/// The cost of carrying the plan out.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Work {
    /// YubiKey (or mfa_process) codes per MFA device. Each code needs its own
    /// TOTP step: AWS refuses a code it has already accepted.
    pub codes: BTreeMap<String, usize>,
    pub get_session_token_calls: usize,
    pub assume_role_calls: usize,
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
    pub mfa_sessions: Vec<MfaSessionPlan>,
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

    /// The same plan without the work of the sections `drop` picks (they
    /// failed before any call, and spend no code): their actions become
    /// `None`, and MFA sessions nobody else needs go.
    pub fn without_work_for(&self, drop: impl Fn(&SectionPlan) -> bool) -> Plan {
        let mut plan = self.clone();
        let mut dropped = Vec::new();
        for section in &mut plan.sections {
            if section.action.is_work() && drop(section) {
                section.action = Action::None;
                dropped.push(section.section.clone());
            }
        }
        for session in &mut plan.mfa_sessions {
            session.used_by.retain(|s| !dropped.contains(s));
        }
        plan.mfa_sessions.retain(|s| !s.used_by.is_empty());
        plan
    }

    pub fn section(&self, name: &str) -> Option<&SectionPlan> {
        self.sections.iter().find(|s| s.section == name)
    }

    /// When a section next needs a pass: its due time while fresh, the end
    /// of its unit's backoff while waiting, now while it has work.
    pub fn next_pass_of(&self, section: &SectionPlan) -> Option<(OffsetDateTime, Wake)> {
        match &section.action {
            Action::Wait { until, .. } => Some((*until, Wake::Retry)),
            action if action.is_work() => Some((self.now, Wake::Due)),
            _ => section.due.map(|due| (due, Wake::Due)),
        }
    }

    /// The next pass and why: the earliest of [`Plan::next_pass_of`].
    pub fn next_wake(&self) -> Option<(OffsetDateTime, Wake)> {
        self.sections
            .iter()
            .filter_map(|s| self.next_pass_of(s))
            .min_by_key(|(at, _)| *at)
    }
}

/// Several daemons (one per section under the systemd template) that share
/// an MFA device must not all wake in the same second; sections that share
/// an MFA session must fall due together (one pass, one batch of calls).
/// So the jitter is a fixed spread of up to five seconds, derived from the
/// MFA session (or the section, for a direct AssumeRole); whole seconds, like
/// the expiries, so that a due time prints and records exactly.
const JITTER_SECONDS: u64 = 5;

fn jitter_of(text: &str) -> Duration {
    // FNV-1a: stable across runs and processes (std's hasher is seeded).
    Duration::seconds((fnv1a(text) % (JITTER_SECONDS + 1)) as i64)
}

fn session_jitter(key: &MfaSessionKey) -> Duration {
    jitter_of(&format!(
        "{}|{}|{}",
        key.mfa_serial_number, key.duration, key.region
    ))
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
        let keys = read_long_term_keys(&settings.long_term, inputs.credentials, inputs.keyring)
            .map_err(|reason| reasons.push(reason))
            .ok();
        let state = match settings.output {
            // Never written to the credentials file: its state is in the cache.
            Output::Process => Some(observe_process(settings, inputs.process_profiles)),
            Output::File => match inputs.credentials.check(&settings.profile_name) {
                Err(reason) => {
                    reasons.push(reason);
                    None
                }
                Ok(()) => Some(observe(settings, inputs.credentials)),
            },
        };
        let (Some(keys), Some(expires), true) = (keys, state, reasons.is_empty()) else {
            section_plans.push(invalid(section, &settings.profile_name, reasons));
            continue;
        };
        let key = mfa_session_key(settings, &keys);
        let jitter = match &settings.role {
            Some(_) if settings.direct_assume_role() => jitter_of(&section.name),
            _ => session_jitter(&key),
        };
        let fingerprint = fingerprint(settings);
        let changed = inputs
            .applied
            .get(&section.name)
            .is_some_and(|applied| *applied != fingerprint);
        let (state, due) = match expires {
            // Credentials of a role (or duration) the config no longer names.
            Observed::Expires(expires) if changed => (ProfileState::Refresh { expires }, now),
            Observed::Expires(expires) => {
                let due = due_at(expires, settings.refresh_margin, jitter);
                if due > now {
                    (ProfileState::Fresh { expires }, due)
                } else {
                    (ProfileState::Refresh { expires }, due)
                }
            }
            Observed::Other(state) => (state, now),
        };
        let action = if due > now {
            Action::None
        } else {
            let auth = CodeAuth {
                mfa_serial_number: settings.mfa_serial_number.clone(),
                code_source: settings.code_source.clone(),
                long_term: keys,
            };
            decide(
                section,
                settings,
                key,
                auth,
                inputs,
                &mut sessions,
                &mut work,
            )
        };
        section_plans.push(SectionPlan {
            section: section.name.clone(),
            profile: settings.profile_name.clone(),
            state,
            due: Some(due),
            action,
            expiry_key: settings.expiry_key.clone(),
            fingerprint,
            output: settings.output,
            long_term_keys: keys_source(&settings.long_term),
        });
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
    let mut plan = Plan {
        now,
        sections: section_plans,
        mfa_sessions: sessions.into_values().collect(),
        work,
        next_pass: None,
    };
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
        long_term_keys: section
            .settings
            .as_ref()
            .map_or("file", |s| keys_source(&s.long_term)),
    }
}

fn keys_source(long_term: &LongTermKeys) -> &'static str {
    match long_term {
        LongTermKeys::Inline { .. } => "config",
        LongTermKeys::CredentialsSection(_) => "file",
        LongTermKeys::Keyring(_) => "keyring",
    }
}

/// A fingerprint of the settings that shape a profile's credentials: the
/// role and its session parameters, or the MFA session written as it is.
/// Stable across runs and versions (FNV-1a over a fixed rendering), so that
/// only a real change of the config refreshes a fresh profile.
pub fn fingerprint(settings: &Settings) -> u64 {
    let mut text = format!(
        "mfa={}|duration={}",
        settings.mfa_serial_number, settings.mfa_session_duration
    );
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
    fnv1a(&text)
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The action for a section that is due, and its cost; `Wait` when a unit
/// it needs is backing off.
fn decide(
    section: &Section,
    settings: &Settings,
    key: MfaSessionKey,
    auth: CodeAuth,
    inputs: &Inputs<'_>,
    sessions: &mut BTreeMap<MfaSessionKey, MfaSessionPlan>,
    work: &mut Work,
) -> Action {
    let now = inputs.now;
    let waiting = |unit: Unit| {
        inputs
            .backoff
            .get(&unit)
            .filter(|until| **until > now)
            .map(|until| Action::Wait {
                unit: unit.clone(),
                until: *until,
            })
    };
    let device = Unit::Device(settings.mfa_serial_number.clone());
    if let Some(wait) = waiting(Unit::Section(section.name.clone())) {
        return wait;
    }
    let sts = StsTarget {
        region: settings.region.clone(),
        endpoint: settings.sts_endpoint.clone(),
    };
    if let Some(role) = settings
        .role
        .as_ref()
        .filter(|_| settings.direct_assume_role())
    {
        if let Some(wait) = waiting(device) {
            return wait;
        }
        work.assume_role_calls += 1;
        *work
            .codes
            .entry(settings.mfa_serial_number.clone())
            .or_default() += 1;
        return Action::AssumeRoleWithCode {
            mfa_serial_number: settings.mfa_serial_number.clone(),
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
        margin: settings.refresh_margin,
    };
    let needs_new = !cached_until.is_some_and(|until| session_plan.usable(until, now));
    if needs_new && let Some(wait) = waiting(device) {
        return wait;
    }
    let entry = sessions.entry(key.clone()).or_insert(session_plan);
    entry.needs_new |= needs_new;
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
            if let LongTermKeys::CredentialsSection(name) = &settings.long_term {
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
pub fn mfa_session_key(settings: &Settings, keys: &LongTermKeyPair) -> MfaSessionKey {
    MfaSessionKey {
        access_key_id: keys.access_key_id.clone(),
        mfa_serial_number: settings.mfa_serial_number.clone(),
        duration: settings.mfa_session_duration,
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

fn observe(settings: &Settings, credentials: &dyn CredentialsView) -> Observed {
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
        Ok(Some(text)) => match crate::timestamp::parse_expiry(&text) {
            Some(expires) => Observed::Expires(expires),
            None => Observed::Other(ProfileState::Unmanaged),
        },
        _ => Observed::Other(ProfileState::Unmanaged),
    }
}

#[cfg(test)]
mod tests;
