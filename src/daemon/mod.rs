//! The reconcile loop: events (files, key, deadline, signals) → plan → apply.
//!
//! Each pass loads the config (keeping the last good one on error), reads
//! the credentials file, plans with the pure planner, lets the executor do
//! the work and write once, and records status. Between passes the loop
//! waits for a file event, a key event, a signal, or the next wake-up, which
//! is never more than a minute away (wall-clock deadlines survive suspend).

pub mod adapters;
pub mod execute;
pub mod ports;
pub mod schedule;
pub mod state;
pub mod watch;

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

use time::OffsetDateTime;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::{Config, LoadOptions};
use crate::credentials::{CredentialsFile, Document};
use crate::plan::{Plan, ProfileState};
use crate::session_cache::SessionCache;
use execute::{Executor, Outcome, PassReport, PassState};
use schedule::{Scheduler, Unit};

/// Why a pass runs; one span per pass names it, so logs explain themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Start,
    ConfigChanged,
    CredentialsChanged,
    KeyChanged,
    Reload,
    Deadline,
    Retry,
}

/// What wakes the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    File(watch::FileEvent),
    KeyChanged,
    Reload,
    Stop,
}

/// The result of one pass.
pub struct PassSummary {
    /// The plan after the pass's write (what is fresh now).
    pub plan: Plan,
    pub report: PassReport,
    pub next_wake: OffsetDateTime,
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
}

impl Daemon {
    pub fn new(
        load_options: LoadOptions,
        credentials_path: PathBuf,
        executor: Executor,
        runtime_dir: Option<PathBuf>,
    ) -> Self {
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
                self.config = Some(config);
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

    fn credentials_file(&self, config: &Config) -> CredentialsFile {
        CredentialsFile::new(self.credentials_path.clone(), config.backups())
    }

    fn read_document(&self, file: &CredentialsFile) -> anyhow::Result<(Document, u64)> {
        let document = file.read()?;
        let mut hasher = DefaultHasher::new();
        document.render().hash(&mut hasher);
        Ok((document, hasher.finish()))
    }

    /// One reconcile pass.
    pub async fn pass(&mut self, reason: Reason) -> anyhow::Result<PassSummary> {
        let span = tracing::info_span!("pass", reason = ?reason);
        let _enter = span.enter();
        let now = self.executor.clock.now();
        match reason {
            Reason::ConfigChanged | Reason::Reload => self.scheduler.user_changed(now),
            Reason::KeyChanged => self.scheduler.key_changed(now),
            _ => {}
        }
        if reason == Reason::Start {
            // A write killed half-way (kill -9, a crash) leaves its temporary file.
            CredentialsFile::new(self.credentials_path.clone(), 0).remove_stale_temp_files();
        }
        self.reload_config()?;
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
        if self.last_seen.is_some_and(|last| last != seen) {
            // Someone else changed the file: parked sections may be fixed.
            self.scheduler.user_changed(now);
        }
        let known = {
            let lock = self.cache.lock()?;
            self.cache.load(&lock).known(now)
        };
        let plan = crate::plan::plan(&config.sections, &document, &known, now);
        self.log_invalid(&plan);

        let report = if plan.pending().next().is_some() {
            let state = PassState {
                cache: &mut self.cache,
                scheduler: &mut self.scheduler,
            };
            self.executor
                .execute(&plan, &config.sections, &document, &file, state)
                .await
        } else {
            PassReport::default()
        };

        // Re-plan from what is on disk now, for the deadline and status.
        let now = self.executor.clock.now();
        let (document, seen) = self.read_document(&file)?;
        self.last_seen = Some(seen);
        let known = self.cache.contents().known(now);
        let after = crate::plan::plan(&config.sections, &document, &known, now);
        let next_wake = if report.rerun {
            now
        } else {
            let deadline = wake_deadline(&after, &report, &self.scheduler, |name| {
                config
                    .section(name)
                    .and_then(|s| s.settings.as_ref().ok())
                    .map_or(0, |s| s.refresh_margin)
            });
            self.scheduler.next_wake(deadline, now)
        };
        if report.wrote {
            let written = report
                .outcomes
                .values()
                .filter(|o| **o == Outcome::Written)
                .count();
            tracing::info!(
                "wrote {written} profile(s) to {} ({} code(s), {} STS call(s))",
                file.path().display(),
                report.codes_used,
                report.sts_calls
            );
        }
        self.record_status(config, &after, &report, now);
        Ok(PassSummary {
            plan: after,
            report,
            next_wake,
        })
    }

    fn log_invalid(&mut self, plan: &Plan) {
        for section in &plan.sections {
            match &section.state {
                ProfileState::Invalid { reasons } => {
                    if self.logged_invalid.get(&section.section) != Some(reasons) {
                        for reason in reasons {
                            tracing::error!("section [{}] is skipped: {reason}", section.section);
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
    }

    fn record_status(
        &self,
        config: &Config,
        plan: &Plan,
        report: &PassReport,
        now: OffsetDateTime,
    ) {
        let Some(dir) = &self.runtime_dir else { return };
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
                Some(Outcome::Failed(error)) => {
                    status.last_error = Some(error.message.clone());
                    status.last_error_at = Some(now);
                }
                _ => {}
            }
            if let ProfileState::Invalid { reasons } = &section.state {
                status.last_error = reasons.first().cloned();
            }
            let unit = report
                .failed_units
                .get(&section.section)
                .cloned()
                .unwrap_or_else(|| Unit::Section(section.section.clone()));
            status.next_attempt = match (&section.state, self.scheduler.state(&unit)) {
                (_, Some(unit_state)) => Some(unit_state.next_attempt),
                (ProfileState::Fresh { expires }, None) => {
                    let margin = config
                        .section(&section.section)
                        .and_then(|s| s.settings.as_ref().ok())
                        .map_or(0, |s| i64::from(s.refresh_margin));
                    Some(*expires - time::Duration::seconds(margin))
                }
                _ => None,
            };
            updates.insert(section.section.clone(), status);
        }
        // At rest nothing changes: skip the write (and its fsync).
        let unchanged = updates
            .iter()
            .all(|(name, status)| previous.sections.get(name) == Some(status));
        if unchanged {
            return;
        }
        if let Err(e) = state::update(dir, &updates) {
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
        loop {
            let mut during_pass = Vec::new();
            let outcome = tokio::select! {
                biased;
                () = wait_for_stop(&mut events, &mut during_pass) => {
                    tracing::info!("stopping");
                    return Ok(());
                }
                result = self.pass(reason) => result,
            };
            let next_wake = match outcome {
                Ok(summary) => {
                    if notify_systemd {
                        notify_status(&summary.plan, first);
                    }
                    summary.next_wake
                }
                Err(error) => {
                    tracing::error!("{error:#}");
                    if notify_systemd && first {
                        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
                    }
                    self.executor.clock.now() + schedule::MAX_SLEEP
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
            let now = self.executor.clock.now();
            let sleep = (next_wake - now).clamp(time::Duration::ZERO, schedule::MAX_SLEEP);
            let sleep = std::time::Duration::try_from(sleep).unwrap_or_default();
            reason = tokio::select! {
                event = events.recv() => match event {
                    None | Some(Event::Stop) => { tracing::info!("stopping"); return Ok(()); }
                    Some(event) => match debounce(event, &mut events).await {
                        Some(reason) => reason,
                        None => { tracing::info!("stopping"); return Ok(()); }
                    },
                },
                _ = tokio::time::sleep(sleep) => Reason::Deadline,
            };
        }
    }
}

/// When the plan next needs a pass: a fresh section's expiry minus its
/// margin, or now for a section with work to do, except a section whose
/// unit (its own, or its MFA device) is backing off or parked: the
/// scheduler's next attempt covers it, and counting it as due now would
/// make the loop spin, pass after empty pass, until the backoff ends.
fn wake_deadline(
    plan: &Plan,
    report: &PassReport,
    scheduler: &Scheduler,
    margin_of: impl Fn(&str) -> u32,
) -> Option<OffsetDateTime> {
    let now = plan.now;
    let mut deadline: Option<OffsetDateTime> = None;
    for section in &plan.sections {
        let at = match &section.state {
            ProfileState::Invalid { .. } => continue,
            ProfileState::Fresh { expires } => {
                *expires - time::Duration::seconds(i64::from(margin_of(&section.section)))
            }
            _ => {
                let unit = match report.outcomes.get(&section.section) {
                    Some(Outcome::Waiting(unit)) => unit.clone(),
                    Some(Outcome::Failed(_)) => match report.failed_units.get(&section.section) {
                        Some(unit) => unit.clone(),
                        None => Unit::Section(section.section.clone()),
                    },
                    _ => Unit::Section(section.section.clone()),
                };
                match scheduler.state(&unit) {
                    Some(state) if state.next_attempt > now => continue,
                    _ => now,
                }
            }
        };
        deadline = Some(deadline.map_or(at, |d| d.min(at)));
    }
    deadline
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
        Event::KeyChanged => Reason::KeyChanged,
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
    let total = plan.sections.len();
    let fresh = plan
        .sections
        .iter()
        .filter(|s| matches!(s.state, ProfileState::Fresh { .. }))
        .count();
    let next = plan
        .next_deadline
        .filter(|d| *d > plan.now)
        .map(|d| {
            // UTC: the local offset cannot be read safely in a threaded process.
            let t = d.to_offset(time::UtcOffset::UTC);
            format!(", next refresh {:02}:{:02} UTC", t.hour(), t.minute())
        })
        .unwrap_or_default();
    let status = format!("{fresh}/{total} fresh{next}");
    let mut states = vec![sd_notify::NotifyState::Status(&status)];
    if first {
        states.push(sd_notify::NotifyState::Ready);
    }
    let _ = sd_notify::notify(&states);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, SectionPlan, Work};
    use crate::retry::RetryClass;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

    fn section(name: &str, state: ProfileState) -> SectionPlan {
        SectionPlan {
            section: name.into(),
            profile: name.into(),
            state,
            action: Action::None,
        }
    }

    fn plan(sections: Vec<SectionPlan>) -> Plan {
        Plan {
            now: NOW,
            sections,
            mfa_sessions: Vec::new(),
            work: Work::default(),
            next_deadline: Some(NOW),
        }
    }

    #[test]
    fn sections_backing_off_do_not_make_the_loop_spin() {
        let fresh = section(
            "fresh",
            ProfileState::Fresh {
                expires: NOW + time::Duration::hours(1),
            },
        );
        let stale = || {
            section(
                "stale",
                ProfileState::Missing {
                    what: "no [stale] section".into(),
                },
            )
        };
        let mut scheduler = Scheduler::with_seed(1);
        let mut report = PassReport::default();
        let margin = |_: &str| 300;

        // Pending and nobody backing off: due now.
        let p = plan(vec![fresh.clone(), stale()]);
        assert_eq!(wake_deadline(&p, &report, &scheduler, margin), Some(NOW));

        // Its unit backs off: only the fresh section's deadline counts (the
        // scheduler adds the unit's next attempt itself).
        let unit = Unit::Section("stale".into());
        scheduler.record_failure(&unit, RetryClass::Soon, "throttled", NOW);
        report.outcomes.insert(
            "stale".into(),
            Outcome::Failed(crate::daemon::ports::UnitError::new(
                RetryClass::Soon,
                "throttled",
            )),
        );
        report.failed_units.insert("stale".into(), unit.clone());
        assert_eq!(
            wake_deadline(&p, &report, &scheduler, margin),
            Some(NOW + time::Duration::minutes(55))
        );
        let wake = scheduler.next_wake(wake_deadline(&p, &report, &scheduler, margin), NOW);
        assert_eq!(wake, scheduler.state(&unit).unwrap().next_attempt);
        assert!(wake > NOW);

        // Waiting for its MFA device, which is parked.
        let device = Unit::Device("arn:aws:iam::123457890123:mfa/me".into());
        scheduler.record_failure(&device, RetryClass::NeedsUser, "wrong serial", NOW);
        let mut waiting = PassReport::default();
        waiting
            .outcomes
            .insert("stale".into(), Outcome::Waiting(device.clone()));
        let p = plan(vec![stale()]);
        assert_eq!(wake_deadline(&p, &waiting, &scheduler, margin), None);

        // Once the backoff is over, the section is due again.
        scheduler.record_success(&device);
        assert_eq!(wake_deadline(&p, &waiting, &scheduler, margin), Some(NOW));
    }
}
