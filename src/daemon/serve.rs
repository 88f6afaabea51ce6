//! Serve: every section's session held in the daemon's memory, and the
//! local credentials endpoint (the container-credentials protocol of the
//! AWS SDKs, `crate::endpoint`) that hands them to other processes:
//! containers, VMs, `exec --server` children.
//!
//! The endpoint is an output like the credentials file and the runtime
//! cache, with one difference: it serves on request. A request finds its
//! section in [`Held`] (filled after each pass from what the pass left:
//! the sessions it got, the credentials file, the runtime cache) when the
//! plan's rule calls it fresh; otherwise it asks the loop for a pass
//! (`Event::Refresh`) and waits for the next fill. The endpoint never
//! blocks the loop, and the loop never waits for a client.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use secrecy::SecretString;
use time::OffsetDateTime;
use tokio::sync::{mpsc::UnboundedSender, watch};

use super::Event;
use super::act::PassReport;
use super::decide::{Action, Plan, ProfileState};
use super::observe::Observation;
use super::ports::Clock;
use crate::config::{Config, EndpointSettings, Output};
use crate::credentials::{ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN};
use crate::endpoint::{CredentialSource, Endpoint, EndpointOptions, Limits, Refusal, Served};
use crate::session::SessionCredentials;
use crate::session_cache::CacheContents;
use crate::text::printable;

/// What one section can be served with now.
#[derive(Clone, Default)]
struct Entry {
    /// The session, with the instant the plan's rule calls it due.
    session: Option<(SessionCredentials, OffsetDateTime)>,
    account_id: Option<String>,
    /// Why there is no fresh session, and when a retry may succeed.
    problem: Option<(String, Option<OffsetDateTime>)>,
}

/// The sessions of every section as the last pass left them.
pub(crate) struct Held {
    sections: RwLock<BTreeMap<String, Entry>>,
    /// The number of the last pass that started.
    started: AtomicU64,
    /// The number of the pass that filled the memory last: a request that
    /// asked for a pass waits until a pass started after it has filled.
    filled: watch::Sender<u64>,
}

impl Held {
    fn new() -> Held {
        Held {
            sections: RwLock::new(BTreeMap::new()),
            started: AtomicU64::new(0),
            filled: watch::Sender::new(0),
        }
    }

    fn entry(&self, section: &str) -> Option<Entry> {
        self.sections
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(section)
            .cloned()
    }

    /// Adds an empty entry for each of `sections` it does not hold yet: a
    /// request for one (the endpoint serves it before the pass that fills
    /// it ends) waits for a pass instead of being told it is unknown.
    fn declare(&self, sections: &[String]) {
        let mut held = self.sections.write().unwrap_or_else(|e| e.into_inner());
        for section in sections {
            held.entry(section.clone()).or_default();
        }
    }

    /// Replaces every section's entry with what the pass left, and wakes
    /// the requests that wait for a pass.
    fn fill(&self, sections: BTreeMap<String, Entry>) {
        *self.sections.write().unwrap_or_else(|e| e.into_inner()) = sections;
        let pass = self.started.load(Ordering::SeqCst);
        self.filled.send_replace(pass);
    }
}

/// The endpoint's source: the daemon's memory, refreshed through the loop.
struct DaemonSource {
    held: Arc<Held>,
    loop_events: UnboundedSender<Event>,
    clock: Arc<dyn Clock>,
}

impl DaemonSource {
    fn fresh(&self, entry: &Entry) -> Option<Served> {
        let (creds, due) = entry.session.as_ref()?;
        (*due > self.clock.now()).then(|| Served {
            credentials: creds.clone(),
            account_id: entry.account_id.clone(),
        })
    }
}

impl CredentialSource for DaemonSource {
    fn credentials<'a>(&'a self, section: &'a str) -> BoxFuture<'a, Result<Served, Refusal>> {
        Box::pin(async move {
            let Some(entry) = self.held.entry(section) else {
                return Err(Refusal::UnknownSection);
            };
            if let Some(served) = self.fresh(&entry) {
                return Ok(served);
            }
            // Not fresh: one pass (the plan finds the section due), then
            // what it left. Requests arriving together share the pass; a
            // pass under way now was planned without this request.
            let asked_after = self.held.started.load(Ordering::SeqCst);
            let mut filled = self.held.filled.subscribe();
            if self.loop_events.send(Event::Refresh).is_err()
                || filled.wait_for(|pass| *pass > asked_after).await.is_err()
            {
                return Err(unavailable(
                    "the daemon is stopping",
                    None,
                    self.clock.now(),
                ));
            }
            let entry = self.held.entry(section).ok_or(Refusal::UnknownSection)?;
            if let Some(served) = self.fresh(&entry) {
                return Ok(served);
            }
            let (reason, until) = entry.problem.unwrap_or_else(|| {
                (
                    "no fresh session yet; `aws-session-daemon status` says why".to_string(),
                    None,
                )
            });
            Err(unavailable(&reason, until, self.clock.now()))
        })
    }
}

fn unavailable(reason: &str, until: Option<OffsetDateTime>, now: OffsetDateTime) -> Refusal {
    Refusal::Unavailable {
        reason: printable(reason).into_owned(),
        retry_after: until
            .and_then(|until| Duration::try_from(until - now).ok())
            .filter(|d| !d.is_zero()),
    }
}

/// The memory and the endpoint, as the config in force wants them.
pub(crate) struct Serve {
    held: Arc<Held>,
    loop_events: UnboundedSender<Event>,
    clock: Arc<dyn Clock>,
    /// Where the endpoint keeps its token files and record.
    runtime_dir: Option<PathBuf>,
    running: Option<(EndpointSettings, Endpoint)>,
    /// The last reason the endpoint could not start, logged once.
    failed: Option<String>,
}

impl Serve {
    pub(crate) fn new(
        loop_events: UnboundedSender<Event>,
        clock: Arc<dyn Clock>,
        runtime_dir: Option<PathBuf>,
    ) -> Serve {
        Serve {
            held: Arc::new(Held::new()),
            loop_events,
            clock,
            runtime_dir,
            running: None,
            failed: None,
        }
    }

    /// A pass starts (requests made from now on wait for its fill).
    pub(crate) fn pass_starts(&self) {
        self.held.started.fetch_add(1, Ordering::SeqCst);
    }

    /// Starts, restarts (new settings) or stops the endpoint as `config`
    /// says, and keeps the sections it serves those of `config`.
    pub(crate) async fn follow(&mut self, config: &Config) {
        let wanted = config.endpoint().cloned();
        let sections: Vec<String> = config
            .valid_sections()
            .map(|(s, _)| s.name.clone())
            .collect();
        self.held.declare(&sections);
        match (&wanted, &mut self.running) {
            (None, _) => {
                if self.running.take().is_some() {
                    tracing::info!("credentials endpoint stopped (no longer in the config)");
                }
                return;
            }
            (Some(wanted), Some((settings, endpoint))) if settings == wanted => {
                if endpoint.record().sections != sections
                    && let Err(e) = endpoint.set_sections(&sections)
                {
                    tracing::warn!("credentials endpoint: {e}");
                }
                return;
            }
            _ => {}
        }
        // Settings changed (or first start): a new endpoint, new tokens.
        self.running = None;
        let Some(wanted) = wanted else { return };
        let Some(dir) = self.runtime_dir.clone() else {
            self.fail(
                "there is no usable runtime directory for its token file (set XDG_RUNTIME_DIR)"
                    .to_string(),
            );
            return;
        };
        let source = Arc::new(DaemonSource {
            held: Arc::clone(&self.held),
            loop_events: self.loop_events.clone(),
            clock: Arc::clone(&self.clock),
        });
        let options = EndpointOptions {
            address: wanted.address,
            dir,
            sections,
            section_tokens: wanted.section_tokens,
            unix_socket: wanted.unix_socket,
            record: true,
            limits: Limits::default(),
        };
        match crate::endpoint::start(options, source).await {
            Ok(endpoint) => {
                self.failed = None;
                self.running = Some((wanted, endpoint));
            }
            Err(e) => self.fail(e.to_string()),
        }
    }

    fn fail(&mut self, reason: String) {
        if self.failed.as_ref() != Some(&reason) {
            tracing::error!(
                "cannot serve the credentials endpoint: {reason}; retrying at the next pass"
            );
            self.failed = Some(reason);
        }
    }

    /// After a pass: what every section can be served with, from the plan
    /// as the pass left it and the sessions it got, the credentials file
    /// and the runtime cache.
    pub(crate) fn fill(
        &self,
        plan: &Plan,
        observation: &Observation,
        report: &PassReport,
        cache: &CacheContents,
    ) {
        if self.running.is_none() {
            return;
        }
        let settings: BTreeMap<&str, _> = observation
            .config
            .valid_sections()
            .map(|(s, settings)| (s.name.as_str(), settings))
            .collect();
        let sections = plan
            .sections
            .iter()
            .map(|section| {
                let mut entry = Entry {
                    account_id: settings
                        .get(section.section.as_str())
                        .and_then(|s| s.account_id()),
                    ..Entry::default()
                };
                let session = match (&section.state, section.output) {
                    (ProfileState::Fresh { .. }, _)
                        if report.sessions.contains_key(&section.section) =>
                    {
                        report.sessions.get(&section.section).cloned()
                    }
                    (ProfileState::Fresh { .. }, Output::Process) => {
                        cache.profiles.get(&section.profile).cloned()
                    }
                    (ProfileState::Fresh { expires }, Output::File) => {
                        from_file(observation, &section.profile, *expires)
                    }
                    _ => None,
                };
                entry.session = session.zip(section.due);
                entry.problem = match (&section.state, &section.action) {
                    (ProfileState::Invalid { reasons }, _) => Some((reasons.join("; "), None)),
                    (_, Action::Blocked { reason }) => Some((reason.clone(), None)),
                    (_, Action::Wait { unit, until }) => Some((
                        format!(
                            "{unit} is backing off after an error (see `aws-session-daemon status`)"
                        ),
                        Some(*until),
                    )),
                    (_, Action::AwaitSignIn { sso_session }) => Some((
                        match plan.sso_session(sso_session) {
                            Some(session) => format!(
                                "SSO session {sso_session}: {}",
                                session.token.describe(plan.now)
                            ),
                            None => format!("waiting for the sign-in of SSO session {sso_session}"),
                        },
                        None,
                    )),
                    _ => None,
                };
                (section.section.clone(), entry)
            })
            .collect();
        self.held.fill(sections);
    }
}

/// A file section's session as the credentials file holds it (the file the
/// pass observed, or wrote).
fn from_file(
    observation: &Observation,
    profile: &str,
    expires: OffsetDateTime,
) -> Option<SessionCredentials> {
    let document = observation.credentials.document();
    let value = |key| {
        document
            .get(profile, key)
            .ok()
            .flatten()
            .map(str::to_string)
    };
    Some(SessionCredentials {
        access_key_id: value(ACCESS_KEY_ID)?,
        secret_access_key: SecretString::from(value(SECRET_ACCESS_KEY)?),
        session_token: SecretString::from(value(SESSION_TOKEN)?),
        expiration: expires,
    })
}
