//! The reconcile loop: events (files, key, deadline, signals) → plan → apply.
//!
//! Each pass loads the config (keeping the last good one on error), reads
//! the credentials file, plans with the pure planner, lets the executor do
//! the work and write once, and records status. Between passes the loop
//! waits for a file event, a key event, a signal, or the next wake-up, which
//! is never more than a minute away (wall-clock deadlines survive suspend).

pub mod adapters;
mod alarm;
pub mod execute;
pub mod ports;
pub mod schedule;
pub mod state;
pub mod watch;
mod watchdog;

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

use time::OffsetDateTime;
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::Instrument;

use crate::config::{CodeSource, Config, LoadOptions};
use crate::credentials::{CredentialsFile, Document};
use crate::plan::{Applied, Backoff, Inputs, KeyringKeys, Plan, ProfileState, Unit, Wake};
use crate::retry::RetryClass;
use crate::session_cache::SessionCache;
use execute::{Executor, Outcome, PassReport};
use ports::{KeyWatch, StartKeyWatch};
use schedule::{Report, Scheduler};

/// Why a pass runs; one span per pass names it, so logs explain themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Start,
    ConfigChanged,
    CredentialsChanged,
    KeyChanged,
    Reload,
    /// A profile (or an MFA session) fell due.
    Deadline,
    /// A unit's backoff ended, or an expired MFA session is replaced.
    Retry,
    /// The once-a-minute wall-clock check (the monotonic clock stops during
    /// suspend; a missed file event is caught here too).
    Periodic,
    /// The desktop keyring was unlocked.
    KeyringUnlocked,
}

/// What wakes the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    File(watch::FileEvent),
    Reload,
    Stop,
}

/// The result of one pass.
pub struct PassSummary {
    /// The plan after the pass's write (what is fresh now, what waits).
    pub plan: Plan,
    pub report: PassReport,
    /// When the loop runs again, and why (never more than a minute away).
    pub next_wake: OffsetDateTime,
    pub next_reason: Reason,
}

/// The plan from what is on disk and in the runtime cache now: the one way
/// `plan`, `status`, `apply` and the daemon make it. The cache is read
/// without its lock (a process spending a code holds it).
pub fn current_plan(
    config: &Config,
    document: &Document,
    cache: &mut SessionCache,
    keyring: &KeyringKeys,
    recorded: &Recorded,
    now: OffsetDateTime,
) -> Plan {
    let contents = cache.peek();
    let known = contents.known(now);
    let process_profiles = contents.process_profiles(now);
    crate::plan::plan(&Inputs {
        sections: &config.sections,
        credentials: document,
        mfa_sessions: &known,
        process_profiles: &process_profiles,
        keyring,
        backoff: &recorded.backoff,
        applied: &recorded.applied,
        now,
    })
}

/// What the daemon knows beyond the files: the units backing off and the
/// settings each profile was last written with.
#[derive(Debug, Default)]
pub struct Recorded {
    pub backoff: Backoff,
    pub applied: Applied,
}

impl Recorded {
    /// As the daemon recorded it in the runtime directory, for the commands
    /// that show what it will do (`plan`, `status`).
    pub fn from_state_file(runtime_dir: Option<&std::path::Path>) -> Recorded {
        let state = runtime_dir.map(state::read).unwrap_or_default();
        Recorded {
            backoff: state.backoff(),
            applied: state.applied(),
        }
    }
}

/// The key ids of the keyring's long-term keys for the sections that take
/// theirs from it (`long_term_keys = "keyring"`); nothing is asked of the
/// keyring when none does. Blocking.
pub fn keyring_keys(config: &Config, secrets: &dyn ports::SecretStore) -> KeyringKeys {
    keys_of(keyring_sections(config), secrets).0
}

/// The credentials sections whose keys are in the keyring.
fn keyring_sections(config: &Config) -> std::collections::BTreeSet<String> {
    config
        .valid_sections()
        .filter_map(|(_, s)| match &s.long_term {
            crate::config::LongTermKeys::Keyring(section) => Some(section.clone()),
            _ => None,
        })
        .collect()
}

/// The key ids, and whether the keyring hid them because it is locked
/// (then the daemon waits for the unlock like a unit that needs a secret).
fn keys_of(
    sections: std::collections::BTreeSet<String>,
    secrets: &dyn ports::SecretStore,
) -> (KeyringKeys, bool) {
    if sections.is_empty() {
        return (KeyringKeys::new(), false);
    }
    match secrets.key_ids() {
        Ok(ids) => (
            sections
                .into_iter()
                .filter_map(|s| ids.get(&s).map(|id| (s.clone(), Ok(id.clone()))))
                .collect(),
            false,
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

/// The next wake-up: the plan's next pass, but never more than
/// [`schedule::MAX_SLEEP`] away.
pub fn next_wake(plan: &Plan, now: OffsetDateTime) -> (OffsetDateTime, Reason) {
    let periodic = now + schedule::MAX_SLEEP;
    match plan.next_wake() {
        Some((at, wake)) if at < periodic => (
            at.max(now),
            match wake {
                Wake::Due => Reason::Deadline,
                Wake::Retry => Reason::Retry,
            },
        ),
        _ => (periodic, Reason::Periodic),
    }
}

/// The systemd `STATUS=` line: fresh profiles and the plan's next pass.
pub fn status_line(plan: &Plan) -> String {
    let total = plan.sections.len();
    let fresh = plan
        .sections
        .iter()
        .filter(|s| matches!(s.state, ProfileState::Fresh { .. }))
        .count();
    let next = plan
        .next_pass
        .filter(|at| *at > plan.now)
        .map(|at| format!(", next refresh {}", crate::timestamp::rfc3339(at)))
        .unwrap_or_default();
    format!("{fresh}/{total} fresh{next}")
}

pub struct Daemon {
    load_options: LoadOptions,
    credentials_path: PathBuf,
    executor: Executor,
    cache: SessionCache,
    scheduler: Scheduler,
    config: Option<Config>,
    last_config_error: Option<String>,
    /// Hash of the credentials file as the last pass left it, to tell the
    /// user's edits from our own writes.
    last_seen: Option<u64>,
    runtime_dir: Option<PathBuf>,
    logged_invalid: BTreeMap<String, Vec<String>>,
    /// The file hash last checked for the SDK warning, and the warning.
    sdk_checked: Option<(u64, Option<String>)>,
    start_key_watch: Option<StartKeyWatch>,
    key_watch: Option<Box<dyn KeyWatch>>,
    start_unlock_watch: Option<ports::StartUnlockWatch>,
    unlock_watch: Option<Box<dyn ports::UnlockWatch>>,
    /// The last pass found the keyring's key ids locked away: no unit
    /// waits (no section could even be planned), but the unlock is awaited.
    keyring_ids_locked: bool,
    /// Per section, the settings its profile was written with: from the
    /// state file at start (a restart keeps them), then from each write.
    applied: Applied,
}

impl Daemon {
    pub fn new(
        load_options: LoadOptions,
        credentials_path: PathBuf,
        executor: Executor,
        runtime_dir: Option<PathBuf>,
    ) -> Self {
        // A runtime directory that is not this user's own (`sudo -E` hands
        // root the user's; a link planted in a shared one) is not used at
        // all: nothing read from it, nothing written to it.
        let runtime_dir = runtime_dir.and_then(|dir| {
            match crate::private_file::ensure_private_dir(&dir) {
                Ok(()) => Some(dir),
                Err(e) => {
                    tracing::error!(
                        "not using the runtime directory: {e}. MFA sessions stay in this process's memory only (a restart costs a code, and other daemon processes do not share them)"
                    );
                    None
                }
            }
        });
        let applied = Recorded::from_state_file(runtime_dir.as_deref()).applied;
        Daemon {
            load_options,
            credentials_path,
            executor,
            cache: SessionCache::new(runtime_dir.clone()),
            scheduler: Scheduler::new(),
            config: None,
            last_config_error: None,
            last_seen: None,
            runtime_dir,
            logged_invalid: BTreeMap::new(),
            sdk_checked: None,
            start_key_watch: None,
            key_watch: None,
            start_unlock_watch: None,
            unlock_watch: None,
            keyring_ids_locked: false,
            applied,
        }
    }

    /// Watches for YubiKeys whenever the config in force uses one.
    pub fn with_key_watch(mut self, start: StartKeyWatch) -> Self {
        self.start_key_watch = Some(start);
        self
    }

    /// Watches the keyring for being unlocked whenever the config in force
    /// takes keys or a password from it.
    pub fn with_unlock_watch(mut self, start: ports::StartUnlockWatch) -> Self {
        self.start_unlock_watch = Some(start);
        self
    }

    async fn update_unlock_watch(&mut self) {
        let Some(start) = &self.start_unlock_watch else {
            return;
        };
        let uses_keyring = self.config.as_ref().is_some_and(|config| {
            config.valid_sections().any(|(_, s)| {
                matches!(s.long_term, crate::config::LongTermKeys::Keyring(_))
                    || matches!(
                        &s.code_source,
                        CodeSource::Oath {
                            password: Some(crate::config::PasswordSpec::Keyring),
                            ..
                        }
                    )
            })
        });
        match (uses_keyring, self.unlock_watch.is_some()) {
            (true, false) => self.unlock_watch = start().await,
            (false, true) => self.unlock_watch = None,
            _ => {}
        }
    }

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

    pub fn credentials_path(&self) -> &std::path::Path {
        &self.credentials_path
    }

    /// Reloads the config; on error keeps the last good one and logs the
    /// error once (with its line and column) until it changes.
    fn reload_config(&mut self) -> anyhow::Result<()> {
        match crate::config::load(&self.load_options, &crate::config::process_env) {
            Ok(config) => {
                if self.last_config_error.take().is_some() {
                    tracing::info!("config is valid again");
                }
                for warning in &config.warnings {
                    if self.config.is_none() {
                        tracing::warn!("{warning}");
                    }
                }
                let names: Vec<String> = config.sections.iter().map(|s| s.name.clone()).collect();
                let serials: Vec<String> = config
                    .valid_sections()
                    .map(|(_, s)| s.mfa_serial_number.clone())
                    .collect();
                self.scheduler.retain(|unit| match unit {
                    Unit::Section(name) => names.contains(name),
                    Unit::Device(serial) => serials.contains(serial),
                });
                self.executor.concurrency = config.sts_concurrency();
                tracing::debug!("config loaded: {} section(s)", config.sections.len());
                self.config = Some(config);
                self.update_key_watch();
                Ok(())
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
                    Some(_) => Ok(()),
                    None => Err(error.into()),
                }
            }
        }
    }

    /// Starts the key watcher when the config in force uses a YubiKey, and
    /// stops it when none does any more.
    fn update_key_watch(&mut self) {
        let Some(start) = &self.start_key_watch else {
            return;
        };
        let uses_key = self.config.as_ref().is_some_and(|config| {
            config
                .valid_sections()
                .any(|(_, s)| matches!(s.code_source, CodeSource::Oath { .. }))
        });
        match (uses_key, self.key_watch.is_some()) {
            (true, false) => {
                tracing::debug!("watching for YubiKeys");
                self.key_watch = Some(start());
            }
            (false, true) => {
                tracing::debug!("no section uses a YubiKey: not watching for one");
                self.key_watch = None;
            }
            _ => {}
        }
    }

    /// Whether a key watcher runs (for tests of the reload rule).
    #[cfg(test)]
    pub fn watches_keys(&self) -> bool {
        self.key_watch.is_some()
    }

    /// [`keyring_keys`] off the async tasks; notes whether they were
    /// locked away.
    async fn keyring_keys(&mut self, config: &Config) -> KeyringKeys {
        let sections = keyring_sections(config);
        if sections.is_empty() {
            self.keyring_ids_locked = false;
            return KeyringKeys::new();
        }
        let secrets = std::sync::Arc::clone(&self.executor.secrets);
        let (keys, locked) =
            tokio::task::spawn_blocking(move || keys_of(sections, secrets.as_ref()))
                .await
                .unwrap_or_default();
        self.keyring_ids_locked = locked;
        keys
    }

    /// Whether the loop waits for the keyring to be unlocked: a unit needs
    /// a secret from it, or the key ids are locked away.
    pub fn waits_for_unlock(&self) -> bool {
        self.scheduler.waits_for_unlock() || self.keyring_ids_locked
    }

    /// The planner's view of this process's backoff and written settings.
    fn recorded(&self) -> Recorded {
        Recorded {
            backoff: self.scheduler.backoff(),
            applied: self.applied.clone(),
        }
    }

    fn credentials_file(&self, config: &Config) -> CredentialsFile {
        CredentialsFile::new(self.credentials_path.clone(), config.backups())
    }

    fn read_document(&self, file: &CredentialsFile) -> anyhow::Result<(Document, u64)> {
        let document = file.read()?;
        let mut hasher = DefaultHasher::new();
        document.render().hash(&mut hasher);
        Ok((document, hasher.finish()))
    }

    /// One reconcile pass, in a span that names its reason.
    pub async fn pass(&mut self, reason: Reason) -> anyhow::Result<PassSummary> {
        let span = tracing::info_span!("pass", reason = ?reason);
        self.pass_inner(reason).instrument(span).await
    }

    async fn pass_inner(&mut self, reason: Reason) -> anyhow::Result<PassSummary> {
        let now = self.executor.clock.now();
        match reason {
            Reason::ConfigChanged | Reason::Reload => self.scheduler.user_changed(now),
            Reason::KeyChanged => self.scheduler.key_changed(now),
            Reason::KeyringUnlocked => self.scheduler.unlocked(now),
            _ => {}
        }
        if reason == Reason::Start {
            // A write killed half-way (kill -9, a crash) leaves its temporary file.
            CredentialsFile::new(self.credentials_path.clone(), 0).remove_stale_temp_files();
        }
        self.reload_config()?;
        self.update_unlock_watch().await;
        let config = self.config.take().expect("reload_config leaves a config");
        let result = self.pass_with(&config, now).await;
        self.config = Some(config);
        result
    }

    async fn pass_with(
        &mut self,
        config: &Config,
        now: OffsetDateTime,
    ) -> anyhow::Result<PassSummary> {
        let file = self.credentials_file(config);
        let (document, seen) = self.read_document(&file)?;
        self.warn_sdk_problem(&document, seen);
        if self.last_seen.is_some_and(|last| last != seen) {
            // Someone else changed the file: parked sections may be fixed.
            self.scheduler.user_changed(now);
        }
        let recorded = self.recorded();
        let keyring = self.keyring_keys(config).await;
        let plan = current_plan(config, &document, &mut self.cache, &keyring, &recorded, now);
        self.log_invalid(&plan);
        tracing::debug!(
            "planned: {} section(s), {} to refresh, {} code(s), {} GetSessionToken, {} AssumeRole",
            plan.sections.len(),
            plan.pending().count(),
            plan.work.total_codes(),
            plan.work.get_session_token_calls,
            plan.work.assume_role_calls
        );
        let report = self
            .executor
            .execute(&plan, &document, &file, &mut self.cache)
            .await;
        let ended = self.executor.clock.now();
        self.record_outcomes(&report, ended);

        // The plan after the pass, from what is on disk now: the deadline
        // and the status come from it.
        let (document, seen) = self.read_document(&file)?;
        self.last_seen = Some(seen);
        self.applied.extend(
            plan.sections
                .iter()
                .filter(|s| report.outcomes.get(&s.section) == Some(&Outcome::Written))
                .map(|s| (s.section.clone(), s.fingerprint)),
        );
        let replan = |daemon: &mut Daemon| {
            let recorded = daemon.recorded();
            current_plan(
                config,
                &document,
                &mut daemon.cache,
                &keyring,
                &recorded,
                ended,
            )
        };
        let mut after = replan(self);
        if self.due_on_arrival(&after, &report, ended) {
            after = replan(self);
        }
        let (next_wake, next_reason) = if report.rerun {
            (ended, Reason::Retry)
        } else {
            next_wake(&after, ended)
        };
        if report.wrote {
            tracing::info!(
                "wrote {} profile(s) to {} ({} code(s), {} STS call(s))",
                report.written(),
                file.path().display(),
                report.codes_used,
                report.sts_calls
            );
        }
        self.record_status(&after, &report);
        Ok(PassSummary {
            plan: after,
            report,
            next_wake,
            next_reason,
        })
    }

    /// Feeds the pass's outcomes to the error policy: a success resets its
    /// unit; each failing unit counts one failure per pass, however many
    /// sections it affects, and is logged once while the error repeats.
    /// Backoff counts from when the attempt ended, not from when the pass
    /// began: a pass that waited for a TOTP step or a slow STS would
    /// otherwise find its backoff already over and try again at once.
    fn record_outcomes(&mut self, report: &PassReport, ended: OffsetDateTime) {
        for unit in &report.succeeded_units {
            self.scheduler.record_success(unit);
        }
        let mut failed: BTreeMap<&Unit, &ports::UnitError> = BTreeMap::new();
        for (section, outcome) in &report.outcomes {
            match outcome {
                Outcome::Written => self
                    .scheduler
                    .record_success(&Unit::Section(section.clone())),
                Outcome::Failed { unit, error } => {
                    failed.entry(unit).or_insert(error);
                }
            }
        }
        for (unit, error) in failed {
            if self
                .scheduler
                .record_failure(unit, error.class, &error.message, ended)
                == Report::New
            {
                tracing::warn!("{unit}: {error} ({})", error.class);
            } else {
                tracing::debug!("{unit}: still failing: {error}");
            }
        }
    }

    /// Credentials that STS hands out already inside their refresh margin
    /// (a system clock ahead of AWS's, or a session shorter than asked for:
    /// AWS caps the root user's GetSessionToken at one hour) would be asked
    /// for again at once, in every pass, forever. They were written (they
    /// are valid); the section backs off like after a passing error.
    /// Returns whether any did.
    fn due_on_arrival(&mut self, after: &Plan, report: &PassReport, now: OffsetDateTime) -> bool {
        let mut any = false;
        for section in after.pending() {
            // Only credentials that are on disk and due: a profile that is
            // missing or changed now was edited by another program right
            // after the write (its file event brings the next pass), which
            // says nothing about what STS handed out.
            if report.outcomes.get(&section.section) != Some(&Outcome::Written)
                || !matches!(section.state, ProfileState::Refresh { .. })
            {
                continue;
            }
            let unit = Unit::Section(section.section.clone());
            let message = "STS returned credentials that are already due for refresh (they expire within refresh_margin of now); check that the system clock is right, or lower refresh_margin";
            if self
                .scheduler
                .record_failure(&unit, RetryClass::Soon, message, now)
                == Report::New
            {
                tracing::warn!("{unit}: {message}");
            }
            any = true;
        }
        any
    }

    /// Logs each new reason once, naming every section it skips (a
    /// credentials file the AWS CLI cannot parse makes them all invalid).
    fn log_invalid(&mut self, plan: &Plan) {
        let mut new: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for section in &plan.sections {
            match &section.state {
                ProfileState::Invalid { reasons } => {
                    if self.logged_invalid.get(&section.section) != Some(reasons) {
                        for reason in reasons {
                            new.entry(reason).or_default().push(&section.section);
                        }
                        self.logged_invalid
                            .insert(section.section.clone(), reasons.clone());
                    }
                }
                _ => {
                    self.logged_invalid.remove(&section.section);
                }
            }
        }
        for (reason, sections) in new {
            match sections.as_slice() {
                [one] => tracing::error!(section = %one, "section [{one}] is skipped: {reason}"),
                many => tracing::error!("sections [{}] are skipped: {reason}", many.join("], [")),
            }
        }
    }

    /// Warns once per file content when the AWS SDKs that follow the shared
    /// profile format cannot parse the credentials file (botocore can; the
    /// daemon writes into it).
    fn warn_sdk_problem(&mut self, document: &Document, seen: u64) {
        if self
            .sdk_checked
            .as_ref()
            .is_some_and(|(hash, _)| *hash == seen)
        {
            return;
        }
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

    fn record_status(&self, plan: &Plan, report: &PassReport) {
        let Some(dir) = &self.runtime_dir else { return };
        let now = plan.now;
        let previous = state::read(dir);
        let mut updates = BTreeMap::new();
        for section in &plan.sections {
            let mut status = previous
                .sections
                .get(&section.section)
                .cloned()
                .unwrap_or_default();
            status.pid = Some(std::process::id());
            match report.outcomes.get(&section.section) {
                Some(Outcome::Written) => {
                    status.last_refresh = Some(now);
                    status.last_error = None;
                    status.last_error_at = None;
                }
                Some(Outcome::Failed { error, .. }) => {
                    status.last_error = Some(error.message.clone());
                    status.last_error_at = Some(now);
                }
                None => {}
            }
            if let ProfileState::Invalid { reasons } = &section.state {
                status.last_error = reasons.first().cloned();
            }
            status.next_attempt = plan.next_pass_of(section).map(|(at, _)| at);
            status.applied = self.applied.get(&section.section).copied();
            updates.insert(section.section.clone(), status);
        }
        let backoff = self.scheduler.backoff();
        // At rest nothing changes: skip the write (and its fsync).
        let unchanged = updates
            .iter()
            .all(|(name, status)| previous.sections.get(name) == Some(status))
            && backoff == previous.backoff_of(std::process::id());
        if unchanged {
            return;
        }
        if let Err(e) = state::update(dir, &updates, &backoff) {
            tracing::debug!("cannot write the status file: {e}");
        }
    }

    /// The loop. Returns when `Event::Stop` arrives (SIGTERM/SIGINT).
    pub async fn run(
        mut self,
        mut events: UnboundedReceiver<Event>,
        notify_systemd: bool,
    ) -> anyhow::Result<()> {
        let mut reason = Reason::Start;
        let mut first = true;
        let watchdog = watchdog::Watchdog::from_env();
        loop {
            watchdog.pass_starts(watchdog::worst_pass_of(
                self.config.as_ref(),
                &self.load_options,
            ));
            let mut during_pass = Vec::new();
            let outcome = tokio::select! {
                biased;
                () = wait_for_stop(&mut events, &mut during_pass) => {
                    tracing::info!("stopping");
                    return Ok(());
                }
                result = self.pass(reason) => result,
            };
            let (next_wake, next_reason) = match outcome {
                Ok(summary) => {
                    if notify_systemd {
                        notify_status(&summary.plan, first);
                    }
                    let now = summary.plan.now;
                    tracing::debug!(
                        "next pass {} ({:?})",
                        crate::timestamp::with_relative(summary.next_wake, now),
                        summary.next_reason
                    );
                    (summary.next_wake, summary.next_reason)
                }
                Err(error) => {
                    tracing::error!("{error:#}");
                    if notify_systemd && first {
                        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
                    }
                    (
                        self.executor.clock.now() + schedule::MAX_SLEEP,
                        Reason::Periodic,
                    )
                }
            };
            first = false;
            // Events that arrived during the pass (often our own write) get
            // a pass of their own at once; it finds nothing to do when they
            // were ours.
            if let Some(event) = during_pass.into_iter().next() {
                reason = match debounce(event, &mut events).await {
                    Some(reason) => reason,
                    None => {
                        tracing::info!("stopping");
                        return Ok(());
                    }
                };
                continue;
            }
            reason = loop {
                let now = self.executor.clock.now();
                let sleep = (next_wake - now).clamp(time::Duration::ZERO, schedule::MAX_SLEEP);
                let sleep = std::time::Duration::try_from(sleep).unwrap_or_default();
                let (sleep, nap) = watchdog.idle(sleep);
                let waits_for_unlock = self.waits_for_unlock();
                let key_watch = &mut self.key_watch;
                // Only while something waits for it: the watch resolves at once
                // when the keyring is unlocked already.
                let unlock_watch = match waits_for_unlock {
                    true => &mut self.unlock_watch,
                    false => &mut None,
                };
                break tokio::select! {
                    event = events.recv() => match event {
                        None | Some(Event::Stop) => { tracing::info!("stopping"); return Ok(()); }
                        Some(event) => match debounce(event, &mut events).await {
                            Some(reason) => reason,
                            None => { tracing::info!("stopping"); return Ok(()); }
                        },
                    },
                    () = key_changed(key_watch) => {
                        tracing::info!("a YubiKey or reader appeared or changed");
                        Reason::KeyChanged
                    }
                    () = keyring_unlocked(unlock_watch) => {
                        tracing::info!("the keyring was unlocked");
                        Reason::KeyringUnlocked
                    }
                    () = alarm::sleep(sleep) => match nap {
                        true => continue,
                        false => next_reason,
                    },
                };
            };
        }
    }
}

/// Resolves when the keyring is unlocked; never without a watcher.
async fn keyring_unlocked(watch: &mut Option<Box<dyn ports::UnlockWatch>>) {
    match watch {
        Some(watch) => watch.unlocked().await,
        None => std::future::pending().await,
    }
}

/// Resolves at the next key event; never without a watcher.
async fn key_changed(watch: &mut Option<Box<dyn KeyWatch>>) {
    match watch {
        Some(watch) => watch.changed().await,
        None => std::future::pending().await,
    }
}

/// Collects the burst of events that follows the first one (an editor's
/// save, our own write) for a short while; returns the strongest reason,
/// or `None` when a stop request arrived.
async fn debounce(first: Event, events: &mut UnboundedReceiver<Event>) -> Option<Reason> {
    const WINDOW: std::time::Duration = std::time::Duration::from_millis(50);
    let mut reason = reason_of(first)?;
    let deadline = tokio::time::Instant::now() + WINDOW;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
        let next = reason_of(event)?;
        if strength(next) > strength(reason) {
            reason = next;
        }
    }
    Some(reason)
}

fn reason_of(event: Event) -> Option<Reason> {
    Some(match event {
        Event::File(watch::FileEvent::Config) => Reason::ConfigChanged,
        Event::File(watch::FileEvent::Credentials) => Reason::CredentialsChanged,
        Event::Reload => Reason::Reload,
        Event::Stop => return None,
    })
}

fn strength(reason: Reason) -> u8 {
    match reason {
        Reason::Reload => 4,
        Reason::ConfigChanged => 3,
        Reason::KeyChanged => 2,
        Reason::CredentialsChanged => 1,
        _ => 0,
    }
}

/// Resolves on a stop request while a pass runs; other events are kept for
/// after the pass. A stop drops the pass where it waits (a code, STS); a
/// write already under way runs on its blocking thread to the end.
async fn wait_for_stop(events: &mut UnboundedReceiver<Event>, kept: &mut Vec<Event>) {
    loop {
        match events.recv().await {
            None | Some(Event::Stop) => return,
            Some(event) => kept.push(event),
        }
    }
}

fn notify_status(plan: &Plan, first: bool) {
    let status = status_line(plan);
    let mut states = vec![sd_notify::NotifyState::Status(&status)];
    if first {
        states.push(sd_notify::NotifyState::Ready);
    }
    let _ = sd_notify::notify(&states);
}

#[cfg(test)]
mod tests;
