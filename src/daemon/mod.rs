//! The reconcile loop, in four rooms named after its verbs:
//!
//! - [`observe`]: the one way anything reads the world (config, credentials
//!   file, runtime cache, keyring ids, recorded state) into one
//!   [`observe::Observation`];
//! - [`decide`]: the pure planner, the only place that decides;
//! - [`act`]: carries out the plan's actions and reports outcomes;
//! - [`settle`]: outcomes → backoff → the plan as the pass left it and the
//!   next wake-up;
//!
//! and [`tell`], what a pass says to the outside (state file, `STATUS=`).
//! This module is only the loop: one pass is observe → decide → act →
//! settle → tell; between passes it waits for a file event that is news (not
//! the event of its own write), a key event, the keyring's unlock, a signal,
//! or the next wake-up, which is never more than a minute away (wall-clock
//! deadlines survive suspend).

pub mod act;
pub mod adapters;
mod alarm;
pub mod decide;
pub mod observe;
pub mod ports;
mod serve;
pub mod settle;
pub mod state;
pub mod tell;
pub mod watch;
mod watchdog;

use std::path::PathBuf;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::Instrument;

use crate::config::LoadOptions;
use crate::credentials::CredentialsFile;
use crate::session_cache::SessionCache;
use act::{Executor, PassReport};
use decide::Plan;
use observe::{Observer, Recorded};
use ports::{StartKeyWatch, StartUnlockWatch};
use settle::Settler;
use tell::Teller;
use watch::Watches;

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
    /// A client of the credentials endpoint asked for a section that is
    /// not fresh.
    Requested,
    /// An IAM Identity Center sign-in showed its code, or ended.
    SignIn,
}

/// What wakes the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    File(watch::FileEvent),
    Reload,
    /// The credentials endpoint needs a pass (a section not fresh).
    Refresh,
    /// A sign-in task showed its code or ended (`act::SignIns`).
    SignIn,
    Stop,
}

/// The result of one pass.
pub struct PassSummary {
    /// The plan as the pass left it (what is fresh now, what waits).
    pub plan: Plan,
    pub report: PassReport,
    /// When the loop runs again, and why (never more than a minute away).
    pub next_wake: OffsetDateTime,
    pub next_reason: Reason,
}

pub struct Daemon {
    observer: Observer,
    cache: SessionCache,
    executor: Executor,
    settler: Settler,
    teller: Teller,
    watches: Watches,
    /// The sessions in memory and the credentials endpoint (`run` only).
    serve: Option<serve::Serve>,
    /// The last observation found the keyring locked: the loop awaits its
    /// unlock (a section blocked on it has no timer of its own).
    keyring_locked: bool,
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
            observer: Observer::new(
                load_options,
                credentials_path,
                Arc::clone(&executor.secrets),
            )
            .with_sso(Arc::clone(&executor.sso), Arc::clone(&executor.sign_ins)),
            cache: SessionCache::new(runtime_dir.clone()),
            executor,
            settler: Settler::new(applied),
            teller: Teller::new(runtime_dir),
            watches: Watches::default(),
            serve: None,
            keyring_locked: false,
        }
    }

    /// Starts with `config` in force (the one `run` checked before it
    /// started).
    pub fn with_config(mut self, config: Arc<crate::config::Config>) -> Self {
        self.observer = self.observer.with_config(config);
        self
    }

    /// Serves the sessions on the credentials endpoint whenever the config
    /// in force asks for it; `loop_events` wakes the loop for a section a
    /// client needs refreshed.
    pub fn with_serving(mut self, loop_events: tokio::sync::mpsc::UnboundedSender<Event>) -> Self {
        self.serve = Some(serve::Serve::new(
            loop_events,
            Arc::clone(&self.executor.clock),
            self.teller.runtime_dir().map(PathBuf::from),
        ));
        self
    }

    /// Watches for YubiKeys whenever the config in force uses one.
    pub fn with_key_watch(mut self, start: StartKeyWatch) -> Self {
        self.watches = self.watches.with_key_watch(start);
        self
    }

    /// Watches the keyring for being unlocked whenever the config in force
    /// takes keys or a password from it.
    pub fn with_unlock_watch(mut self, start: StartUnlockWatch) -> Self {
        self.watches = self.watches.with_unlock_watch(start);
        self
    }

    pub fn config_path(&self) -> Option<PathBuf> {
        self.observer.config_path()
    }

    pub fn credentials_path(&self) -> &std::path::Path {
        self.observer.credentials_path()
    }

    /// One reconcile pass, in a span that names its reason.
    pub async fn pass(&mut self, reason: Reason) -> anyhow::Result<PassSummary> {
        let span = tracing::info_span!("pass", reason = ?reason);
        self.pass_inner(reason).instrument(span).await
    }

    async fn pass_inner(&mut self, reason: Reason) -> anyhow::Result<PassSummary> {
        tracing::debug!("pass begins");
        if let Some(serve) = &self.serve {
            serve.pass_starts();
        }
        let now = self.executor.clock.now();
        self.settler.woken(reason, now);
        if reason == Reason::Start {
            // A write killed half-way (kill -9, a crash) leaves its temporary file.
            CredentialsFile::new(self.observer.credentials_path().to_path_buf(), 0)
                .remove_stale_temp_files();
        }

        // Observe.
        let mut observation = self.observer.observe(&mut self.cache, now).await?;
        if observation.credentials_changed {
            // Someone else changed the file: parked sections may be fixed.
            self.settler.user_changed(now);
        }
        self.settler.keep_units_of(&observation.config);
        observation.recorded = self.settler.recorded();
        self.executor.concurrency = observation.config.sts_concurrency();
        self.watches.follow(&observation.config).await;
        if let Some(serve) = &mut self.serve {
            serve.follow(&observation.config).await;
        }
        self.keyring_locked = observation.keyring_locked;

        // Decide.
        let plan = observation.plan();
        self.observer.log_problems(&plan);

        // Act.
        let report = self
            .executor
            .execute(&plan, &observation.credentials, &mut self.cache)
            .await;
        if let Some(written) = &report.file_left {
            self.observer.wrote(written);
        }

        // Settle.
        let ended = self.executor.clock.now();
        let settled = self.settler.settle(&plan, &report, ended);

        // Tell, and hold the sessions for the endpoint.
        if let Some(serve) = &self.serve {
            serve.fill(&settled.plan, &observation, &report, self.cache.contents());
        }
        tell::log_written(&report, observation.credentials.file.path());
        self.teller
            .record(
                &settled.plan,
                &report,
                self.settler.applied(),
                self.settler.failing(),
            )
            .await;
        Ok(PassSummary {
            plan: settled.plan,
            report,
            next_wake: settled.next_wake,
            next_reason: settled.next_reason,
        })
    }

    fn waits_for_unlock(&self) -> bool {
        self.settler.waits_for_unlock() || self.keyring_locked
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
            watchdog.pass_starts(self.observer.config().map(watchdog::worst_pass));
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
                        tell::notify_systemd(&summary.plan, first);
                    }
                    tracing::debug!(
                        "next pass {} ({:?})",
                        crate::timestamp::with_relative(summary.next_wake, summary.plan.now),
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
                        self.executor.clock.now() + settle::MAX_SLEEP,
                        Reason::Periodic,
                    )
                }
            };
            first = false;
            // Events that arrived during the pass get a pass of their own at
            // once, unless they were our own write's.
            if let Some(event) = during_pass
                .into_iter()
                .find(|e| is_news(&self.observer, *e))
            {
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
                let sleep = (next_wake - now).clamp(time::Duration::ZERO, settle::MAX_SLEEP);
                let sleep = std::time::Duration::try_from(sleep).unwrap_or_default();
                let (sleep, nap) = watchdog.idle(sleep);
                let waits_for_unlock = self.waits_for_unlock();
                let observer = &self.observer;
                let (key_changed, keyring_unlocked) = self.watches.events(waits_for_unlock);
                let woke = tokio::select! {
                    event = events.recv() => match event {
                        None | Some(Event::Stop) => None,
                        Some(event) if !is_news(observer, event) => continue,
                        Some(event) => Some(debounce(event, &mut events).await),
                    },
                    () = key_changed => {
                        tracing::info!("a YubiKey or reader appeared or changed");
                        Some(Some(Reason::KeyChanged))
                    }
                    () = keyring_unlocked => {
                        tracing::info!("the keyring was unlocked");
                        Some(Some(Reason::KeyringUnlocked))
                    }
                    () = alarm::sleep(sleep) => match nap {
                        true => continue,
                        false => Some(Some(next_reason)),
                    },
                };
                match woke {
                    Some(Some(reason)) => break reason,
                    _ => {
                        tracing::info!("stopping");
                        return Ok(());
                    }
                }
            };
        }
    }
}

/// Whether `event` is worth a pass: a credentials-file event that finds
/// the file as the last pass left it is that pass's own write (or touched
/// nothing), not news. Only `stat`: no read.
fn is_news(observer: &Observer, event: Event) -> bool {
    match event {
        Event::File(watch::FileEvent::Credentials) => {
            let news = observer.credentials_changed_since_pass();
            if !news {
                tracing::debug!("credentials file event: as the last pass left it, not news");
            }
            news
        }
        _ => true,
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
        Event::Refresh => Reason::Requested,
        Event::SignIn => Reason::SignIn,
        Event::Stop => return None,
    })
}

fn strength(reason: Reason) -> u8 {
    match reason {
        Reason::Reload => 4,
        Reason::ConfigChanged => 3,
        Reason::KeyChanged => 2,
        Reason::CredentialsChanged => 1,
        Reason::Requested | Reason::SignIn => 1,
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

#[cfg(test)]
mod tests;
