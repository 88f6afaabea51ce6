//! Observe: the one way anything reads the world.
//!
//! An [`Observation`] is everything the planner looks at, read once: the
//! config (reloaded, keeping the last good one on error), the credentials
//! file (read and parsed once, with its stamp), whether that file can be
//! replaced, the MFA and process sessions in the runtime cache, the key ids
//! in the keyring, the state of each SSO session's access token (the token
//! cache and the sign-in files, and the sign-ins this process has under
//! way), and what the daemon recorded (backoff, the settings each profile
//! was written with). `plan`, `status`, `apply`, `run` and
//! `credential-process` all plan from an observation made here, so they
//! plan from the same inputs by construction.
//!
//! Reading may block (a file a writer is rewriting is re-read after a
//! pause; the keyring is a D-Bus round trip), so it runs on the runtime's
//! blocking threads, never on its workers.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use time::OffsetDateTime;

use super::act::SignIns;
use super::decide::{
    Applied, CredentialsView, Inputs, KeyringKeys, PendingSignIn, Plan, ProcessProfiles,
    ProfileState, SsoToken, SsoTokens,
};
use super::ports::{SecretStore, SsoApi, UnitError};
use super::state;
use crate::config::{Config, LoadOptions};
use crate::credentials::{CredentialsFile, Document, Snapshot, Version};
use crate::session::Backoff;
use crate::session_cache::SessionCache;
use crate::text::printable;

/// What the daemon knows beyond the files: the units backing off and the
/// settings each profile was last written with.
#[derive(Debug, Default, Clone)]
pub struct Recorded {
    pub backoff: Backoff,
    pub applied: Applied,
    /// The last error of each unit backing off (what `plan` says of a
    /// section that waits for it).
    pub reasons: BTreeMap<crate::session::Unit, String>,
}

impl Recorded {
    /// As the daemon recorded it in the runtime directory, for the commands
    /// that show what it will do (`plan`, `status`).
    pub fn from_state_file(runtime_dir: Option<&Path>) -> Recorded {
        let state = runtime_dir.map(state::read).unwrap_or_default();
        Recorded {
            backoff: state.backoff(),
            applied: state.applied(),
            reasons: state.reasons(),
        }
    }
}

/// The credentials file as one pass read it.
pub struct CredentialsSnapshot {
    pub file: CredentialsFile,
    /// The version read (`None` when it could not be read).
    pub snapshot: Option<Snapshot>,
    /// Why the file could not be read (a FIFO, too large, no permission), if
    /// it could not: every section that needs it is invalid, with this
    /// reason, and the others (a fresh `process` session) go on.
    pub unreadable: Option<Unreadable>,
    /// Why the file cannot be replaced now, if it cannot.
    pub read_only: Option<String>,
    /// The file's permission bits, when it is ours and others may read or
    /// write it.
    pub loose_mode: Option<u32>,
    /// The document of an unreadable file: empty.
    empty: Document,
}

/// Everything one pass (or one command) plans from.
pub struct Observation {
    pub config: Arc<Config>,
    pub credentials: CredentialsSnapshot,
    /// Another program changed the credentials file since the last pass
    /// (sections parked until the user fixes something may be fixed).
    pub credentials_changed: bool,
    pub mfa_sessions: BTreeMap<crate::session::MfaSessionKey, OffsetDateTime>,
    pub process_profiles: ProcessProfiles,
    pub keyring: KeyringKeys,
    /// The keyring is locked: its secrets cannot be read (and the key ids
    /// may be hidden too); the loop waits for the unlock.
    pub keyring_locked: bool,
    /// The access token of each SSO session the valid sections name.
    pub sso_tokens: SsoTokens,
    pub recorded: Recorded,
    pub now: OffsetDateTime,
}

/// A credentials file that could not be read, as the planner sees it.
pub struct Unreadable(pub String);

impl CredentialsView for Unreadable {
    fn value(&self, _section: &str, _key: &str) -> Result<Option<String>, String> {
        Err(self.0.clone())
    }

    fn has_section(&self, _section: &str) -> bool {
        false
    }

    fn check(&self, _section: &str) -> Result<(), String> {
        Err(self.0.clone())
    }
}

impl CredentialsSnapshot {
    /// What the planner reads of the file.
    pub fn view(&self) -> &dyn CredentialsView {
        match &self.unreadable {
            Some(unreadable) => unreadable,
            None => self.document(),
        }
    }

    /// The file's document (empty when it could not be read).
    pub fn document(&self) -> &Document {
        self.snapshot
            .as_ref()
            .map_or(&self.empty, Snapshot::document)
    }

    /// A hash of the file's bytes (of the reason, when it could not be
    /// read): equal hashes, equal files.
    fn hash(&self) -> u64 {
        match (&self.snapshot, &self.unreadable) {
            (Some(snapshot), _) => snapshot.hash(),
            (None, Some(Unreadable(reason))) => credfile::stable_hash(reason.as_bytes()),
            (None, None) => 0,
        }
    }
}

impl Observation {
    /// The planner's view of this observation.
    pub fn inputs(&self) -> Inputs<'_> {
        Inputs {
            sections: &self.config.sections,
            credentials: self.credentials.view(),
            mfa_sessions: &self.mfa_sessions,
            process_profiles: &self.process_profiles,
            keyring: &self.keyring,
            sso_tokens: &self.sso_tokens,
            backoff: &self.recorded.backoff,
            applied: &self.recorded.applied,
            keyring_locked: self.keyring_locked,
            read_only: self.credentials.read_only.as_deref(),
            loose_mode: self.credentials.loose_mode,
            endpoint: self.config.endpoint().is_some(),
            now: self.now,
        }
    }

    /// The plan of this observation: the one plan a pass makes. At trace
    /// level the plan is logged as `plan --json` prints it (it holds no
    /// secret), so that what a pass acted on can be compared with `plan`.
    pub fn plan(&self) -> Plan {
        let plan = super::decide::plan(&self.inputs());
        if tracing::enabled!(tracing::Level::TRACE)
            && let Ok(json) = serde_json::to_string(&plan)
        {
            tracing::trace!("plan: {json}");
        }
        tracing::debug!(
            "planned: {} section(s), {} to refresh, {} code(s), {} GetSessionToken, {} AssumeRole, {} sign-in(s), {} token refresh(es), {} GetRoleCredentials",
            plan.sections.len(),
            plan.pending().count(),
            plan.work.total_codes(),
            plan.work.get_session_token_calls,
            plan.work.assume_role_calls,
            plan.work.sso_sign_ins,
            plan.work.sso_token_refreshes,
            plan.work.get_role_credentials_calls
        );
        plan
    }
}

/// Reads the world for the daemon's passes (and, once, for a command),
/// remembering what it must to report each problem once.
pub struct Observer {
    load_options: LoadOptions,
    credentials_path: PathBuf,
    secrets: Arc<dyn SecretStore>,
    /// IAM Identity Center's token cache, and this process's sign-ins.
    sso: Option<(Arc<dyn SsoApi>, Arc<SignIns>)>,
    config: Option<Arc<Config>>,
    last_config_error: Option<String>,
    /// The credentials file, one value for the daemon's life (it remembers
    /// the length it last saw, to tell a file cut short by a writer).
    file: Option<CredentialsFile>,
    /// The credentials file as the last pass left it (what it wrote, if it
    /// wrote): a file event that finds the file so is our own doing, not
    /// news. Its version only: the text (secrets) is not kept between
    /// passes.
    left: Option<Version>,
    /// The hash of the credentials file as the last pass saw it.
    last_hash: Option<u64>,
    logged_invalid: BTreeMap<String, Vec<String>>,
    /// The file hash last checked for the SDK warning, and the warning.
    sdk_checked: Option<(u64, Option<String>)>,
}

impl Observer {
    pub fn new(
        load_options: LoadOptions,
        credentials_path: PathBuf,
        secrets: Arc<dyn SecretStore>,
    ) -> Observer {
        Observer {
            load_options,
            credentials_path,
            secrets,
            sso: None,
            config: None,
            last_config_error: None,
            file: None,
            left: None,
            last_hash: None,
            logged_invalid: BTreeMap::new(),
            sdk_checked: None,
        }
    }

    pub fn credentials_path(&self) -> &Path {
        &self.credentials_path
    }

    /// The config file to watch: the one in force, else where it would be.
    pub fn config_path(&self) -> Option<PathBuf> {
        self.config
            .as_ref()
            .and_then(|c| c.file.clone())
            .or_else(|| {
                crate::config::locate(
                    self.load_options.path.as_deref(),
                    &crate::config::process_env,
                )
                .map(|l| l.path)
            })
    }

    /// The config in force: the last good one observed (or given at start).
    pub fn config(&self) -> Option<&Config> {
        self.config.as_deref()
    }

    /// Reads the SSO sessions' tokens through `sso`, with the sign-ins
    /// `sign_ins` has under way.
    pub fn with_sso(mut self, sso: Arc<dyn SsoApi>, sign_ins: Arc<SignIns>) -> Observer {
        self.sso = Some((sso, sign_ins));
        self
    }

    /// Starts with `config`, loaded by the caller (to refuse a bad one
    /// before the daemon starts).
    pub fn with_config(mut self, config: Arc<Config>) -> Observer {
        self.config = Some(config);
        self
    }

    /// Observes the world at `now`. The recorded state is the caller's
    /// (the daemon's memory, or the state file for a command): it is set
    /// with [`Observation::recorded`] after this returns, because a change
    /// seen here (a user's edit) may wake parked units first.
    pub async fn observe(
        &mut self,
        cache: &mut SessionCache,
        now: OffsetDateTime,
    ) -> anyhow::Result<Observation> {
        let config = self.reload_config()?;
        let file = match &self.file {
            Some(file) => file.with_backups(config.backups()),
            None => CredentialsFile::new(self.credentials_path.clone(), config.backups()),
        };
        self.file = Some(file.clone());
        let credentials = tokio::task::spawn_blocking(move || read_credentials(file))
            .await
            .map_err(|e| anyhow::anyhow!("reading the credentials file was interrupted: {e}"))?;
        let hash = credentials.hash();
        let credentials_changed = self.last_hash.is_some_and(|last| last != hash);
        self.last_hash = Some(hash);
        self.left = credentials.snapshot.as_ref().map(Snapshot::version);
        self.warn_sdk_problem(&credentials);
        let sections = keyring_sections(&config);
        let password_in_keyring = config
            .valid_sections()
            .filter_map(|(_, s)| s.mfa())
            .any(|s| {
                matches!(
                    &s.code_source,
                    crate::config::CodeSource::Oath {
                        password: Some(crate::config::PasswordSpec::Keyring),
                        ..
                    }
                )
            });
        let secrets = Arc::clone(&self.secrets);
        let (keyring, keyring_locked) =
            tokio::task::spawn_blocking(move || keys_of(sections, password_in_keyring, &*secrets))
                .await
                .unwrap_or_default();
        let sso_tokens = self.sso_tokens(&config, now).await;
        let contents = cache.peek();
        Ok(Observation {
            mfa_sessions: contents.known(now),
            process_profiles: contents.process_profiles(now),
            config,
            credentials,
            credentials_changed,
            keyring,
            keyring_locked,
            sso_tokens,
            recorded: Recorded::default(),
            now,
        })
    }

    /// The token of every SSO session the valid sections name: the cache
    /// and the sign-in files (on a blocking thread), and over them the
    /// sign-ins this process has under way (its record may not be written
    /// yet: a sign-in starting is under way all the same).
    async fn sso_tokens(&self, config: &Config, now: OffsetDateTime) -> SsoTokens {
        let sessions: BTreeMap<String, crate::sso::SsoSession> = config
            .valid_sections()
            .filter_map(|(_, s)| s.sso())
            .map(|sso| (sso.session_name().to_string(), sso.session.clone()))
            .collect();
        if sessions.is_empty() {
            return SsoTokens::new();
        }
        let Some((sso, sign_ins)) = &self.sso else {
            let reason = "this command does not read the SSO token cache".to_string();
            return sessions
                .into_keys()
                .map(|name| {
                    (
                        name,
                        SsoToken::Unreadable {
                            reason: reason.clone(),
                        },
                    )
                })
                .collect();
        };
        let under_way = sign_ins.under_way();
        let sso = Arc::clone(sso);
        let read = tokio::task::spawn_blocking(move || {
            sessions
                .into_iter()
                .map(|(name, session)| {
                    let status = sso.token_status(&session, now);
                    (name, status)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        read.into_iter()
            .map(|(name, status)| {
                let token = match under_way.get(&name) {
                    Some(code) => SsoToken::SignInPending(pending_sign_in(code.as_ref(), true)),
                    None => token_of(status),
                };
                (name, token)
            })
            .collect()
    }

    /// Whether a credentials-file event is news: not when the file is as
    /// the last pass left it (our own write's event, or a `touch` of
    /// nothing). Only `stat`: no read.
    pub fn credentials_changed_since_pass(&self) -> bool {
        match (&self.file, &self.left) {
            (Some(file), Some(left)) => !file.unchanged_since(left),
            _ => true,
        }
    }

    /// The pass replaced the credentials file: what it left is the version
    /// written, so its own event is not news.
    pub fn wrote(&mut self, written: &Snapshot) {
        self.last_hash = Some(written.hash());
        self.left = Some(written.version());
    }

    /// Reloads the config; on error keeps the last good one and logs the
    /// error once (with its line and column) until it changes. Without a
    /// good one, the error is returned.
    fn reload_config(&mut self) -> anyhow::Result<Arc<Config>> {
        match crate::config::load(&self.load_options, &crate::config::process_env) {
            Ok(config) => {
                if self.last_config_error.take().is_some() {
                    tracing::info!("config is valid again");
                }
                if self.config.is_none() {
                    for warning in &config.warnings {
                        tracing::warn!("{warning}");
                    }
                }
                tracing::debug!("config loaded: {} section(s)", config.sections.len());
                let config = Arc::new(config);
                self.config = Some(Arc::clone(&config));
                Ok(config)
            }
            Err(error) => {
                let text = error.to_string();
                if self.last_config_error.as_deref() != Some(text.as_str()) {
                    if self.config.is_some() {
                        tracing::error!(
                            "{text}\n  (keeping the last valid config until this is fixed)"
                        );
                    } else {
                        tracing::error!("{text}");
                    }
                    self.last_config_error = Some(text);
                }
                match &self.config {
                    Some(config) => Ok(Arc::clone(config)),
                    None => Err(error.into()),
                }
            }
        }
    }

    /// Logs each new reason a section is skipped (invalid) or blocked once,
    /// naming every section it concerns (a credentials file the AWS CLI
    /// cannot parse makes them all invalid).
    pub fn log_problems(&mut self, plan: &Plan) {
        let mut new: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for section in &plan.sections {
            let reasons: Vec<&String> = match (&section.state, &section.action) {
                (ProfileState::Invalid { reasons }, _) => reasons.iter().collect(),
                (_, super::decide::Action::Blocked { reason }) => vec![reason],
                _ => {
                    self.logged_invalid.remove(&section.section);
                    continue;
                }
            };
            let logged = self.logged_invalid.get(&section.section);
            if logged.is_some_and(|logged| logged.iter().eq(reasons.iter().copied())) {
                continue;
            }
            for reason in &reasons {
                new.entry(reason.as_str())
                    .or_default()
                    .push(&section.section);
            }
            self.logged_invalid.insert(
                section.section.clone(),
                reasons.into_iter().cloned().collect(),
            );
        }
        for (reason, sections) in new {
            let reason = printable(reason);
            match sections.as_slice() {
                [one] => {
                    let one = printable(one);
                    tracing::error!(section = %one, "section [{one}] is skipped: {reason}")
                }
                many => {
                    let names: Vec<_> = many.iter().map(|s| printable(s)).collect();
                    tracing::error!("sections [{}] are skipped: {reason}", names.join("], ["))
                }
            }
        }
    }

    /// Warns once per file content when the AWS SDKs that follow the shared
    /// profile format cannot parse the credentials file (botocore can; the
    /// daemon writes into it).
    fn warn_sdk_problem(&mut self, credentials: &CredentialsSnapshot) {
        let seen = credentials.hash();
        if self
            .sdk_checked
            .as_ref()
            .is_some_and(|(hash, _)| *hash == seen)
        {
            return;
        }
        if credentials.unreadable.is_some() {
            return;
        }
        let document = credentials.document();
        // A file botocore cannot read is refused as a whole (and logged).
        let problem = (document.check_readable().is_ok())
            .then(|| document.sdk_problem().map(|p| p.to_string()))
            .flatten();
        let before = self.sdk_checked.take().and_then(|(_, p)| p);
        if let Some(problem) = &problem
            && before.as_ref() != Some(problem)
        {
            tracing::warn!("{problem}");
        }
        self.sdk_checked = Some((seen, problem));
    }
}

/// Reads and parses the credentials file once, with whether it can be
/// replaced. Blocking.
fn read_credentials(file: CredentialsFile) -> CredentialsSnapshot {
    let (snapshot, unreadable) = match file.read_snapshot() {
        Ok(snapshot) => (Some(snapshot), None),
        Err(e) => (None, Some(Unreadable(e.to_string()))),
    };
    let read_only = file.check_writable().err().map(|e| e.to_string());
    let loose_mode = file.target().ok().as_deref().and_then(loose_mode);
    CredentialsSnapshot {
        file,
        snapshot,
        unreadable,
        read_only,
        loose_mode,
        empty: Document::default(),
    }
}

/// The permission bits of `path` when it is this user's own regular file
/// and others may read or write it. (`/proc/self` belongs to the process's
/// effective user.)
fn loose_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path).ok()?;
    let me = std::fs::metadata("/proc/self").ok()?.uid();
    let mode = meta.permissions().mode() & 0o777;
    (meta.is_file() && meta.uid() == me && mode & 0o077 != 0).then_some(mode)
}

/// The planner's view of what the `sso` module read of a token.
fn token_of(status: Result<crate::sso::TokenStatus, UnitError>) -> SsoToken {
    use crate::sso::TokenStatus;
    match status {
        Ok(TokenStatus::Valid {
            expires_at,
            refresh_at,
            refreshable,
        }) => SsoToken::Valid {
            expires: expires_at,
            refresh_at,
            refreshable,
        },
        Ok(TokenStatus::RefreshDue { expires_at }) => SsoToken::RefreshDue {
            expires: expires_at,
        },
        // Another process's (or a record left by a process that died: the
        // wait for it finds its lock free, and signs in).
        Ok(TokenStatus::SignInPending(code)) => {
            SsoToken::SignInPending(pending_sign_in(Some(&code), false))
        }
        Ok(TokenStatus::SignInNeeded) => SsoToken::SignInNeeded,
        Err(error) => SsoToken::Unreadable {
            reason: error.message,
        },
    }
}

fn pending_sign_in(code: Option<&crate::sso::DeviceCode>, by_this_process: bool) -> PendingSignIn {
    PendingSignIn {
        url: code.map(|c| c.url().to_string()),
        user_code: code.map(|c| c.user_code.clone()),
        code_expires: code.map(|c| c.expires_at),
        by_this_process,
    }
}

/// The credentials sections whose keys are in the keyring.
fn keyring_sections(config: &Config) -> BTreeSet<String> {
    config
        .valid_sections()
        .filter_map(|(_, s)| match &s.mfa()?.long_term {
            crate::config::LongTermKeys::Keyring(section) => Some(section.clone()),
            _ => None,
        })
        .collect()
}

/// The key ids of the keyring's long-term keys for `sections`, and whether
/// the keyring is locked (its secrets cannot be read; after a restart the
/// ids are hidden too). Nothing is asked of the keyring when no section
/// takes its keys (or the OATH password) from it. Blocking.
fn keys_of(
    sections: BTreeSet<String>,
    password_in_keyring: bool,
    secrets: &dyn SecretStore,
) -> (KeyringKeys, bool) {
    if sections.is_empty() && !password_in_keyring {
        return (KeyringKeys::new(), false);
    }
    match secrets.key_ids() {
        Ok(found) => (
            sections
                .into_iter()
                .filter_map(|s| found.ids.get(&s).map(|id| (s.clone(), Ok(id.clone()))))
                .collect(),
            found.locked,
        ),
        Err(e) => (
            sections
                .into_iter()
                .map(|s| (s, Err(e.message.clone())))
                .collect(),
            e.class == crate::retry::RetryClass::WaitForUnlock,
        ),
    }
}

/// One observation for a command (`plan`, `status`, `credential-process`):
/// the config (an error is returned), the credentials file, the runtime
/// cache and the state the running daemon recorded. Reads only; the
/// keyring is asked for attributes, never to unlock.
pub fn once(
    load_options: LoadOptions,
    credentials_path: PathBuf,
    secrets: Arc<dyn SecretStore>,
    sso: Arc<dyn SsoApi>,
    cache: &mut SessionCache,
    runtime_dir: Option<&Path>,
) -> anyhow::Result<Observation> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    let mut observer =
        Observer::new(load_options, credentials_path, secrets).with_sso(sso, SignIns::inline());
    let mut observation = runtime.block_on(observer.observe(cache, OffsetDateTime::now_utc()))?;
    observation.recorded = Recorded::from_state_file(runtime_dir);
    Ok(observation)
}
