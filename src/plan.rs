//! The planner: desired versus actual state, as a pure function.
//!
//! `plan` takes the expanded config sections, a read-only view of the
//! credentials file, the MFA sessions known to be cached, and `now`; it
//! returns each section's state, the action that would make it fresh, the
//! work that costs (YubiKey codes, STS calls) and the next deadline. It does
//! no I/O and reads no clock, so `plan` (the command) and the daemon share
//! it, and it is tested with tables of inputs.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::config::{LongTermKeys, Section, Settings};
use crate::secret::mask_access_key_id;

/// What the planner needs to know about the credentials file.
pub trait CredentialsView {
    /// Value of `key` in `section`; `Err(reason)` when the section cannot be
    /// used as it is (duplicated section or key: botocore cannot parse it).
    fn value(&self, section: &str, key: &str) -> Result<Option<String>, String>;
    fn has_section(&self, section: &str) -> bool;
    /// `Err(reason)` when the daemon must not edit `section` (a duplicated
    /// section or key, an ambiguous header).
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

/// The MFA sessions the daemon holds, by key, with their expiry.
pub type KnownMfaSessions = BTreeMap<MfaSessionKey, OffsetDateTime>;

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

/// The state of one section's profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum ProfileState {
    /// Valid until after now + refresh margin.
    Fresh {
        #[serde(with = "time::serde::rfc3339")]
        expires: OffsetDateTime,
    },
    /// Expiring: refresh was due at `due` (expiry minus margin).
    Refresh {
        #[serde(with = "time::serde::rfc3339")]
        expires: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        due: OffsetDateTime,
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
}

/// How a section's profile gets fresh credentials.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Nothing to do.
    None,
    /// Write the MFA session itself (no `assume_role_arn`).
    WriteMfaSession { mfa_session: MfaSessionKey },
    /// AssumeRole signed with the MFA session (role chaining, at most 1 h).
    AssumeRoleFromMfaSession {
        mfa_session: MfaSessionKey,
        role_arn: String,
    },
    /// AssumeRole with SerialNumber + TokenCode from the long-term keys
    /// (`mfa_session_duration = 0`): one code per refresh.
    AssumeRoleWithCode {
        mfa_serial_number: String,
        role_arn: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct SectionPlan {
    pub section: String,
    pub profile: String,
    #[serde(flatten)]
    pub state: ProfileState,
    #[serde(flatten)]
    pub action: Action,
}

/// One MFA session the plan relies on.
#[derive(Debug, Clone, Serialize)]
pub struct MfaSessionPlan {
    pub key: MfaSessionKey,
    /// Expiry of the cached session, if one is known.
    #[serde(with = "time::serde::rfc3339::option")]
    pub cached_until: Option<OffsetDateTime>,
    /// True when a new session (GetSessionToken, one code) is needed.
    pub needs_new: bool,
    pub used_by: Vec<String>,
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

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    #[serde(with = "time::serde::rfc3339")]
    pub now: OffsetDateTime,
    pub sections: Vec<SectionPlan>,
    pub mfa_sessions: Vec<MfaSessionPlan>,
    pub work: Work,
    /// When the next section falls due (expiry minus margin); `None` when
    /// nothing is managed. In the past when work is pending now.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_deadline: Option<OffsetDateTime>,
}

impl Plan {
    /// Sections with work to do.
    pub fn pending(&self) -> impl Iterator<Item = &SectionPlan> {
        self.sections.iter().filter(|s| s.action != Action::None)
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
}

/// The keys of a profile the daemon owns.
pub const ACCESS_KEY_ID: &str = "aws_access_key_id";
pub const SECRET_ACCESS_KEY: &str = "aws_secret_access_key";
pub const SESSION_TOKEN: &str = "aws_session_token";

/// Computes the plan. Pure: everything it knows is in its arguments.
pub fn plan(
    sections: &[Section],
    credentials: &dyn CredentialsView,
    mfa_sessions: &KnownMfaSessions,
    now: OffsetDateTime,
) -> Plan {
    let conflicts = profile_conflicts(sections);
    let mut section_plans = Vec::with_capacity(sections.len());
    let mut sessions: BTreeMap<MfaSessionKey, MfaSessionPlan> = BTreeMap::new();
    let mut work = Work::default();
    let mut next_deadline: Option<OffsetDateTime> = None;
    let mut earliest = |at: OffsetDateTime| {
        next_deadline = Some(next_deadline.map_or(at, |d| d.min(at)));
    };

    for section in sections {
        let settings = match &section.settings {
            Ok(settings) => settings,
            Err(errors) => {
                section_plans.push(SectionPlan {
                    section: section.name.clone(),
                    profile: section.name.clone(),
                    state: ProfileState::Invalid {
                        reasons: errors.iter().map(ToString::to_string).collect(),
                    },
                    action: Action::None,
                });
                continue;
            }
        };
        let mut reasons: Vec<String> = conflicts.get(&section.name).cloned().into_iter().collect();
        let key = match mfa_session_key(settings, credentials) {
            Ok(key) => Some(key),
            Err(reason) => {
                reasons.push(reason);
                None
            }
        };
        let state = match credentials_problem(credentials, &settings.profile_name) {
            Some(reason) => {
                reasons.push(reason);
                None
            }
            None => Some(observe(settings, credentials, now)),
        };
        let (Some(key), Some(state), true) = (key, state, reasons.is_empty()) else {
            section_plans.push(SectionPlan {
                section: section.name.clone(),
                profile: settings.profile_name.clone(),
                state: ProfileState::Invalid { reasons },
                action: Action::None,
            });
            continue;
        };

        let action = match &state {
            ProfileState::Fresh { expires } => {
                earliest(*expires - margin(settings));
                Action::None
            }
            _ => {
                earliest(now);
                let action = desired_action(settings, key.clone());
                record_work(
                    &action,
                    settings,
                    &mut sessions,
                    &mut work,
                    mfa_sessions,
                    now,
                    &section.name,
                );
                action
            }
        };
        section_plans.push(SectionPlan {
            section: section.name.clone(),
            profile: settings.profile_name.clone(),
            state,
            action,
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
    Plan {
        now,
        sections: section_plans,
        mfa_sessions: sessions.into_values().collect(),
        work,
        next_deadline,
    }
}

fn margin(settings: &Settings) -> Duration {
    Duration::seconds(i64::from(settings.refresh_margin))
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

fn credentials_problem(credentials: &dyn CredentialsView, profile: &str) -> Option<String> {
    credentials.check(profile).err()
}

/// Resolves which MFA session a section uses; needs the long-term access
/// key id, which may live in the credentials file.
pub fn mfa_session_key(
    settings: &Settings,
    credentials: &dyn CredentialsView,
) -> Result<MfaSessionKey, String> {
    let access_key_id = match &settings.long_term {
        LongTermKeys::Inline { access_key_id, .. } => access_key_id.clone(),
        LongTermKeys::CredentialsSection(section) => {
            let id = credentials.value(section, ACCESS_KEY_ID)?;
            let secret = credentials.value(section, SECRET_ACCESS_KEY)?;
            let token = credentials.value(section, SESSION_TOKEN)?;
            match (id, secret, token) {
                (_, _, Some(_)) => {
                    return Err(format!(
                        "credentials section [{section}] holds temporary credentials (it has an aws_session_token); GetSessionToken needs long-term keys: put your IAM user's access key in [{section}] or set credentials_section"
                    ));
                }
                (Some(id), Some(_), None) => id,
                _ if !credentials.has_section(section) => {
                    return Err(format!(
                        "credentials section [{section}] does not exist; add it with your long-term aws_access_key_id and aws_secret_access_key, or set credentials_section"
                    ));
                }
                _ => {
                    return Err(format!(
                        "credentials section [{section}] lacks aws_access_key_id or aws_secret_access_key; add your long-term keys there"
                    ));
                }
            }
        }
    };
    Ok(MfaSessionKey {
        access_key_id,
        mfa_serial_number: settings.mfa_serial_number.clone(),
        duration: settings.mfa_session_duration,
        region: settings.region.clone(),
        endpoint: settings.sts_endpoint.clone(),
    })
}

/// Reads the profile's actual state.
fn observe(
    settings: &Settings,
    credentials: &dyn CredentialsView,
    now: OffsetDateTime,
) -> ProfileState {
    let profile = &settings.profile_name;
    if !credentials.has_section(profile) {
        return ProfileState::Missing {
            what: format!("no [{profile}] section"),
        };
    }
    let missing: Vec<&str> = [ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN]
        .into_iter()
        .filter(
            |key| !matches!(credentials.value(profile, key), Ok(Some(v)) if !v.trim().is_empty()),
        )
        .collect();
    if !missing.is_empty() {
        return ProfileState::Missing {
            what: format!("missing {}", missing.join(", ")),
        };
    }
    let expires = match credentials.value(profile, &settings.expiry_key) {
        Ok(Some(text)) => parse_expiry(&text),
        _ => None,
    };
    let Some(expires) = expires else {
        return ProfileState::Unmanaged;
    };
    let due = expires - margin(settings);
    if due > now {
        ProfileState::Fresh { expires }
    } else {
        ProfileState::Refresh { expires, due }
    }
}

/// RFC 3339 with an offset; also the zone-less form other tools write
/// (`2026-11-25T10:00:00`), read as UTC.
pub fn parse_expiry(text: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    let with_zone = format!("{}Z", text.trim_end_matches('Z'));
    OffsetDateTime::parse(&with_zone, &Rfc3339).ok()
}

fn desired_action(settings: &Settings, key: MfaSessionKey) -> Action {
    match &settings.role {
        None => Action::WriteMfaSession { mfa_session: key },
        Some(role) if settings.direct_assume_role() => Action::AssumeRoleWithCode {
            mfa_serial_number: settings.mfa_serial_number.clone(),
            role_arn: role.arn.clone(),
        },
        Some(role) => Action::AssumeRoleFromMfaSession {
            mfa_session: key,
            role_arn: role.arn.clone(),
        },
    }
}

fn record_work(
    action: &Action,
    settings: &Settings,
    sessions: &mut BTreeMap<MfaSessionKey, MfaSessionPlan>,
    work: &mut Work,
    known: &KnownMfaSessions,
    now: OffsetDateTime,
    section: &str,
) {
    let key = match action {
        Action::None => return,
        Action::AssumeRoleWithCode {
            mfa_serial_number, ..
        } => {
            work.assume_role_calls += 1;
            *work.codes.entry(mfa_serial_number.clone()).or_default() += 1;
            return;
        }
        Action::AssumeRoleFromMfaSession { mfa_session, .. } => {
            work.assume_role_calls += 1;
            mfa_session
        }
        Action::WriteMfaSession { mfa_session } => mfa_session,
    };
    let cached_until = known.get(key).copied();
    let usable = cached_until.is_some_and(|until| until - margin(settings) > now);
    let entry = sessions
        .entry(key.clone())
        .or_insert_with(|| MfaSessionPlan {
            key: key.clone(),
            cached_until,
            needs_new: false,
            used_by: Vec::new(),
        });
    entry.needs_new |= !usable;
    entry.used_by.push(section.to_string());
}

#[cfg(test)]
mod tests;
