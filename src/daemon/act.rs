//! Act: carries out a plan's actions and reports their outcomes. It
//! decides nothing the plan has decided: what cannot be written, what is
//! backing off, what needs a code are all in the plan; "re-authenticate
//! now" is an outcome the error policy (settle) reads, not a flag of its own.
//!
//! Phases, in order, and why:
//! 1. **MFA sessions**, one per [`MfaSessionKey`] the plan uses: from the
//!    cache, or a new one for one code. The shared cache is locked while a
//!    code is spent, so that several daemon processes never send the same
//!    TOTP step and never start two sessions for one key. The one re-check
//!    the executor makes: a session that another process put into the
//!    cache after the plan was made is used instead of a new code.
//! 2. **Roles**: direct AssumeRole calls (`mfa_session_duration = 0`) one
//!    code each, one TOTP step apart per device; then AssumeRole from the
//!    MFA sessions, concurrently (bounded).
//! 3. **One write** of every profile that got credentials.
//!
//! Every section the plan gave work gets one [`Outcome`]; a failure names
//! the unit to blame (the MFA device, or the section), for the backoff.

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::SecretString;
use time::OffsetDateTime;

use super::decide::{
    Action, CodeAuth, LongTermKeyPair, LongTermSecret, MfaSessionPlan, Plan, StsTarget,
};
use super::observe::CredentialsSnapshot;
use super::ports::{
    BoxFuture, Clock, CodeProvider, Endpoint, MfaCode, SecretStore, SigningKeys, StsApi, UnitError,
};
use crate::config::{Output, RoleSettings};
use crate::credentials::{Edit, SessionEdits, WriteOutcome};
use crate::retry::RetryClass;
use crate::session::{Code, MfaSessionKey, SessionCredentials, Unit};
use crate::session_cache::{CacheLock, SessionCache};
use crate::text::printable;

/// What happened to one section the plan gave work.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Written,
    Failed { unit: Unit, error: UnitError },
}

#[derive(Debug, Default)]
pub struct PassReport {
    pub outcomes: BTreeMap<String, Outcome>,
    /// The credentials each written section got, by section: what the pass
    /// can serve from memory (`credential-process`, the endpoint) whatever
    /// became of the runtime cache, and their expiry for the error policy.
    pub sessions: BTreeMap<String, SessionCredentials>,
    pub wrote: bool,
    /// The credentials file as this pass's write left it, so that the
    /// event the write causes is not taken for news, and the next pass can
    /// start from it.
    pub file_left: Option<crate::credentials::Snapshot>,
    pub codes_used: usize,
    pub sts_calls: usize,
    /// Units that worked in this pass beyond the sections written: the MFA
    /// devices whose codes STS accepted.
    pub succeeded_units: Vec<Unit>,
}

impl PassReport {
    fn fail(&mut self, section: &str, unit: Unit, error: UnitError) {
        self.outcomes
            .insert(section.to_string(), Outcome::Failed { unit, error });
    }

    pub fn written(&self) -> usize {
        self.outcomes
            .values()
            .filter(|o| **o == Outcome::Written)
            .count()
    }
}

pub struct Executor {
    pub codes: Arc<dyn CodeProvider>,
    pub sts: Arc<dyn StsApi>,
    /// The keyring, for `long_term_keys = "keyring"`.
    pub secrets: Arc<dyn SecretStore>,
    pub clock: Arc<dyn Clock>,
    /// At most this many AssumeRole calls at once.
    pub concurrency: usize,
}

/// Credentials a section got, waiting for the write.
struct Obtained {
    section: String,
    profile: String,
    expiry_key: String,
    output: Output,
    creds: SessionCredentials,
}

/// A TOTP step can be found used this many times in a row before the code
/// source is blamed (a clock that does not advance, a source that keeps
/// giving the same step).
const STEP_ATTEMPTS: usize = 3;

impl Executor {
    /// Carries out `plan`'s actions; `credentials` is the credentials file
    /// as observed for the plan, `cache` the session cache it read.
    pub async fn execute(
        &self,
        plan: &Plan,
        credentials: &CredentialsSnapshot,
        cache: &mut SessionCache,
    ) -> PassReport {
        let mut report = PassReport::default();
        if !plan.has_work() {
            return report;
        }
        let sessions = self.mfa_sessions(plan, cache, &mut report).await;
        let mut obtained = self.direct_roles(plan, cache, &mut report).await;
        obtained.extend(
            self.chained_roles(plan, cache, &sessions, &mut report)
                .await,
        );
        // The next call is normally an hour away.
        self.sts.close_connections();
        self.write(plan, credentials, cache, obtained, &mut report)
            .await;
        if plan.request_unlock {
            let secrets = Arc::clone(&self.secrets);
            let _ = tokio::task::spawn_blocking(move || secrets.request_unlock()).await;
        }
        if let Some(mode) = plan.restrict_file_mode {
            restrict_mode(credentials, report.file_left.as_ref(), mode).await;
        }
        report
    }

    /// Phase 1: a session for every MFA session key the plan uses, or the
    /// failure of its device.
    async fn mfa_sessions(
        &self,
        plan: &Plan,
        cache: &mut SessionCache,
        report: &mut PassReport,
    ) -> BTreeMap<MfaSessionKey, Result<SessionCredentials, UnitError>> {
        let mut sessions = BTreeMap::new();
        for session in &plan.mfa_sessions {
            let result = self.mfa_session(session, cache, report).await;
            sessions.insert(session.key.clone(), result);
        }
        sessions
    }

    async fn mfa_session(
        &self,
        session: &MfaSessionPlan,
        cache: &mut SessionCache,
        report: &mut PassReport,
    ) -> Result<SessionCredentials, UnitError> {
        let usable = |cache: &SessionCache, now| {
            cache
                .contents()
                .sessions
                .get(&session.key)
                .filter(|c| session.usable(c.expiration, now))
                .cloned()
        };
        // The plan's cached session, as read for the plan: no lock needed.
        if let Some(creds) = usable(cache, self.clock.now()) {
            return Ok(creds);
        }
        let mut lock = cache.lock().await.map_err(|e| cache_error(&e))?;
        cache.load(&lock);
        // Another process may have started one while we waited for the lock.
        if let Some(creds) = usable(cache, self.clock.now()) {
            return Ok(creds);
        }
        let key = &session.key;
        let endpoint = Endpoint::new(key.region.clone(), key.endpoint.clone());
        let long_term = self.long_term_signer(&session.auth.long_term).await?;
        let sts = &self.sts;
        let served = |contents: &crate::session_cache::CacheContents, now| {
            contents
                .sessions
                .get(key)
                .is_some_and(|c| session.usable(c.expiration, now))
        };
        let obtained = self
            .with_code(&session.auth, cache, &mut lock, report, &served, |code| {
                let (long_term, endpoint) = (&long_term, &endpoint);
                Box::pin(async move {
                    let mfa = MfaCode {
                        serial_number: &key.mfa_serial_number,
                        code: &code,
                    };
                    sts.get_session_token(long_term, endpoint, mfa, key.duration)
                        .await
                })
            })
            .await
            .map_err(CodeCallError::into_inner)?;
        let Some(creds) = obtained else {
            // Another process started one while this one waited for a step.
            return usable(cache, self.clock.now()).ok_or_else(|| {
                UnitError::new(RetryClass::Soon, "the MFA session in the cache expired")
            });
        };
        report
            .succeeded_units
            .push(Unit::Device(key.mfa_serial_number.clone()));
        tracing::info!(
            "new MFA session for {key} valid until {}",
            crate::timestamp::rfc3339(creds.expiration)
        );
        cache
            .contents_mut()
            .sessions
            .insert(key.clone(), creds.clone());
        if let Err(e) = cache.store(&lock, self.clock.now()) {
            tracing::warn!("cannot store the MFA session in the cache: {e}");
        }
        Ok(creds)
    }

    /// Phase 2a: AssumeRole with a code, one section at a time.
    async fn direct_roles(
        &self,
        plan: &Plan,
        cache: &mut SessionCache,
        report: &mut PassReport,
    ) -> Vec<Obtained> {
        let mut obtained = Vec::new();
        for section in plan.pending() {
            let Action::AssumeRoleWithCode {
                role, sts, auth, ..
            } = &section.action
            else {
                continue;
            };
            match self
                .direct_role(section, role, sts, auth, cache, report)
                .await
            {
                Ok(creds) => {
                    let device = Unit::Device(auth.mfa_serial_number.clone());
                    report.succeeded_units.push(device);
                    obtained.push(Obtained {
                        section: section.section.clone(),
                        profile: section.profile.clone(),
                        expiry_key: section.expiry_key.clone(),
                        output: section.output,
                        creds,
                    });
                }
                Err((unit, error)) => report.fail(&section.section, unit, error),
            }
        }
        obtained
    }

    async fn direct_role(
        &self,
        plan: &super::decide::SectionPlan,
        role: &RoleSettings,
        target: &StsTarget,
        auth: &CodeAuth,
        cache: &mut SessionCache,
        report: &mut PassReport,
    ) -> Result<SessionCredentials, (Unit, UnitError)> {
        let device = Unit::Device(auth.mfa_serial_number.clone());
        let mut lock = cache
            .lock()
            .await
            .map_err(|e| (device.clone(), cache_error(&e)))?;
        cache.load(&lock);
        let endpoint = Endpoint::new(target.region.clone(), target.endpoint.clone());
        let long_term = self
            .long_term_signer(&auth.long_term)
            .await
            .map_err(|e| (device.clone(), e))?;
        let sts = &self.sts;
        let serial = auth.mfa_serial_number.as_str();
        // A `process` profile another process refreshed meanwhile is used
        // as it is (twenty `credential-process` calls, one code each, else).
        let fresh_in_cache = |contents: &crate::session_cache::CacheContents, now| {
            contents
                .profiles
                .get(&plan.profile)
                .filter(|c| plan.output == Output::Process && plan.due_for(c.expiration) > now)
                .cloned()
        };
        let served = |contents: &crate::session_cache::CacheContents, now| {
            fresh_in_cache(contents, now).is_some()
        };
        let section = Unit::Section(plan.section.clone());
        let result = self
            .with_code(auth, cache, &mut lock, report, &served, |code| {
                let (long_term, endpoint) = (&long_term, &endpoint);
                Box::pin(async move {
                    let mfa = MfaCode {
                        serial_number: serial,
                        code: &code,
                    };
                    sts.assume_role(long_term, endpoint, role, Some(mfa)).await
                })
            })
            .await;
        match result {
            Ok(Some(creds)) => Ok(creds),
            Ok(None) => fresh_in_cache(cache.contents(), self.clock.now()).ok_or_else(|| {
                (
                    section,
                    UnitError::new(RetryClass::Soon, "the session in the cache expired"),
                )
            }),
            // Code problems belong to the device; the rest (trust policy,
            // duration) to the section.
            Err(CodeCallError::Code(error)) => Err((device, error)),
            Err(CodeCallError::Call(error)) if error.class == RetryClass::NextTotpStep => {
                Err((device, error))
            }
            Err(CodeCallError::Call(error)) => Err((section, error)),
        }
    }

    /// Phase 2b: AssumeRole signed with the MFA sessions, at most
    /// `concurrency` at once.
    async fn chained_roles(
        &self,
        plan: &Plan,
        cache: &mut SessionCache,
        sessions: &BTreeMap<MfaSessionKey, Result<SessionCredentials, UnitError>>,
        report: &mut PassReport,
    ) -> Vec<Obtained> {
        let mut jobs = Vec::new();
        let mut obtained = Vec::new();
        for section in plan.pending() {
            let (key, role, target) = match &section.action {
                Action::WriteMfaSession { mfa_session } => {
                    match &sessions[mfa_session] {
                        Ok(creds) => obtained.push(Obtained {
                            section: section.section.clone(),
                            profile: section.profile.clone(),
                            expiry_key: section.expiry_key.clone(),
                            output: section.output,
                            creds: creds.clone(),
                        }),
                        Err(error) => report.fail(
                            &section.section,
                            Unit::Device(mfa_session.mfa_serial_number.clone()),
                            error.clone(),
                        ),
                    }
                    continue;
                }
                Action::AssumeRoleFromMfaSession {
                    mfa_session,
                    role,
                    sts,
                } => (mfa_session, role, sts),
                _ => continue,
            };
            let signer = match &sessions[key] {
                Ok(creds) => SigningKeys::session(creds),
                Err(error) => {
                    let unit = Unit::Device(key.mfa_serial_number.clone());
                    report.fail(&section.section, unit, error.clone());
                    continue;
                }
            };
            let endpoint = Endpoint::new(target.region.clone(), target.endpoint.clone());
            jobs.push(ChainedJob {
                section,
                key,
                signer,
                endpoint,
                role: role.clone(),
            });
        }
        let results = self.assume_roles(&jobs, report).await;
        let mut refused_sessions = Vec::new();
        for (ChainedJob { section, key, .. }, result) in jobs.into_iter().zip(results) {
            match result {
                Ok(creds) => obtained.push(Obtained {
                    section: section.section.clone(),
                    profile: section.profile.clone(),
                    expiry_key: section.expiry_key.clone(),
                    output: section.output,
                    creds,
                }),
                Err(error) => {
                    if error.class == RetryClass::Reauthenticate {
                        refused_sessions.push(key.clone());
                    }
                    let unit = Unit::Section(section.section.clone());
                    report.fail(&section.section, unit, error);
                }
            }
        }
        if !refused_sessions.is_empty() {
            // STS no longer accepts the MFA session: forget it; the error
            // policy starts anew at once (the sections' class says so).
            match cache.lock().await {
                Ok(lock) => {
                    cache.load(&lock);
                    for key in &refused_sessions {
                        cache.contents_mut().sessions.remove(key);
                    }
                    if let Err(e) = cache.store(&lock, self.clock.now()) {
                        tracing::warn!("cannot update the MFA session cache: {e}");
                    }
                }
                Err(e) => tracing::warn!("cannot update the MFA session cache: {e}"),
            }
        }
        obtained
    }

    /// The AssumeRole calls of `jobs`, as many at once as STS allows: the
    /// window starts at the cap, halves when STS answers `Throttling` (once
    /// per round of calls: the calls already under way when it halved do
    /// not halve it again), and grows by one after a window's worth of
    /// successes (AIMD, TCP's rule). A throttled call is tried again after
    /// a growing, jittered pause, up to [`THROTTLE_ATTEMPTS`] times.
    /// Results come back in the jobs' order.
    async fn assume_roles(
        &self,
        jobs: &[ChainedJob<'_>],
        report: &mut PassReport,
    ) -> Vec<Result<SessionCredentials, UnitError>> {
        let mut results: Vec<Option<Result<SessionCredentials, UnitError>>> =
            jobs.iter().map(|_| None).collect();
        let mut window = Window::new(self.concurrency);
        let mut attempts = vec![0u32; jobs.len()];
        // Jobs ready to start (index, not before).
        let mut ready: std::collections::VecDeque<(usize, tokio::time::Instant)> = (0..jobs.len())
            .map(|i| (i, tokio::time::Instant::now()))
            .collect();
        let mut tasks = tokio::task::JoinSet::new();
        // Calls started so far: a call overlapped with every call started
        // while it ran, not only with those under way when it started.
        let mut launched: usize = 0;
        loop {
            let now = tokio::time::Instant::now();
            while tasks.len() < window.size() {
                let Some(position) = ready.iter().position(|(_, at)| *at <= now) else {
                    break;
                };
                let Some((index, _)) = ready.remove(position) else {
                    break;
                };
                let job = &jobs[index];
                let (sts, signer, endpoint, role) = (
                    Arc::clone(&self.sts),
                    job.signer.clone(),
                    job.endpoint.clone(),
                    job.role.clone(),
                );
                let started = (window.generation(), tasks.len() + 1, launched);
                launched += 1;
                report.sts_calls += 1;
                tasks.spawn(async move {
                    let result = sts.assume_role(&signer, &endpoint, &role, None).await;
                    (index, started, result)
                });
            }
            if tasks.is_empty() && ready.is_empty() {
                break;
            }
            // A job's pause matters only while the window has room for it:
            // with the window full, a pause already over would wake this
            // loop at once, again and again, until a call returns.
            let next_ready = if tasks.len() < window.size() {
                ready.iter().map(|(_, at)| *at).min()
            } else {
                None
            };
            let joined = tokio::select! {
                joined = tasks.join_next(), if !tasks.is_empty() => joined,
                () = sleep_until_or_forever(next_ready) => continue,
            };
            let Some(Ok((index, (generation, running, launched_before), result))) = joined else {
                continue;
            };
            // The calls under way at some time during this one: those running
            // when it started and those started since (the first call of a
            // batch of 32 is not alone, though it started first; STS may see
            // it arrive last).
            let in_flight = running + (launched - launched_before - 1);
            match result {
                // Throttled even one call at a time: not too many at once,
                // but too many at all (a storm, a limit on the account).
                // The rest of the pass would be refused the same way; the
                // sections back off instead (the scheduler's backoff).
                Err(error) if error.throttled && in_flight == 1 => {
                    tracing::info!(
                        "STS throttles AssumeRole even one call at a time; the rest waits for the backoff"
                    );
                    for (waiting, _) in ready.drain(..) {
                        results[waiting] = Some(Err(error.clone()));
                    }
                    results[index] = Some(Err(error));
                }
                Err(error) if error.throttled && attempts[index] + 1 < THROTTLE_ATTEMPTS => {
                    attempts[index] += 1;
                    if window.throttled(generation, in_flight) {
                        tracing::info!(
                            "STS is throttling AssumeRole: {} call(s) at once from now on",
                            window.size()
                        );
                    }
                    ready.push_back((
                        index,
                        tokio::time::Instant::now() + throttle_pause(attempts[index]),
                    ));
                }
                result => {
                    if result.is_ok() && window.succeeded() {
                        tracing::debug!("AssumeRole concurrency grows to {}", window.size());
                    }
                    results[index] = Some(result);
                }
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(UnitError::new(
                        RetryClass::Soon,
                        "the AssumeRole task ended unexpectedly",
                    ))
                })
            })
            .collect()
    }

    /// Phase 3: every session to its output, one write each. An edit the
    /// editor refuses for one profile (an indented line, a header the
    /// readers disagree on: found only when editing) fails that section
    /// alone, and the others are written without it. Whatever becomes of
    /// the writes, the pass keeps every session it got in the report.
    async fn write(
        &self,
        plan: &Plan,
        credentials: &CredentialsSnapshot,
        cache: &mut SessionCache,
        obtained: Vec<Obtained>,
        report: &mut PassReport,
    ) {
        for o in &obtained {
            report.sessions.insert(o.section.clone(), o.creds.clone());
        }
        let (to_cache, to_file): (Vec<Obtained>, Vec<Obtained>) = obtained
            .into_iter()
            .partition(|o| o.output == Output::Process);
        self.write_cache(cache, to_cache, report).await;
        self.write_file(plan, credentials, to_file, report).await;
    }

    /// `output = "process"` sessions go to the runtime cache only.
    async fn write_cache(
        &self,
        cache: &mut SessionCache,
        obtained: Vec<Obtained>,
        report: &mut PassReport,
    ) {
        if obtained.is_empty() {
            return;
        }
        let stored = match cache.lock().await {
            Ok(lock) => {
                cache.load(&lock);
                for o in &obtained {
                    cache
                        .contents_mut()
                        .profiles
                        .insert(o.profile.clone(), o.creds.clone());
                }
                cache
                    .store(&lock, self.clock.now())
                    .map_err(|e| cache_error(&e))
            }
            Err(e) => Err(cache_error(&e)),
        };
        match stored {
            Ok(()) => {
                report.wrote = true;
                for o in &obtained {
                    report.outcomes.insert(o.section.clone(), Outcome::Written);
                }
            }
            Err(error) => fail_all(report, &obtained, &error),
        }
    }

    /// The credentials file: one write of every profile, and of the
    /// removal of old sessions of `process` sections.
    async fn write_file(
        &self,
        plan: &Plan,
        credentials: &CredentialsSnapshot,
        mut obtained: Vec<Obtained>,
        report: &mut PassReport,
    ) {
        let document = credentials.document();
        let mut removals: Vec<(&str, Vec<Edit>)> = plan
            .cleanups()
            .map(|s| {
                let edits = s
                    .remove_from_file
                    .iter()
                    .map(|key| Edit::remove(s.profile.clone(), key.clone()))
                    .collect();
                (s.section.as_str(), edits)
            })
            .collect();
        // Each round either ends or drops one refused profile.
        while !obtained.is_empty() || !removals.is_empty() {
            let edits: Vec<Edit> = obtained
                .iter()
                .flat_map(|o| document.session_edits(&o.profile, &o.creds, &o.expiry_key))
                .chain(removals.iter().flat_map(|(_, edits)| edits.iter().cloned()))
                .collect();
            let target = credentials.file.clone();
            // From the version the plan was made from: not read again while
            // its stamp proves it unchanged.
            let base = credentials.snapshot.clone();
            let write = move || {
                let written = match &base {
                    Some(base) => target.update_from(base, &edits)?,
                    None => {
                        let base = target.read_snapshot()?;
                        target.update_from(&base, &edits)?
                    }
                };
                Ok::<_, crate::credentials::CredentialsError>((written.outcome, written.snapshot))
            };
            let result = match tokio::task::spawn_blocking(write).await {
                Ok(result) => result,
                Err(e) => {
                    let error =
                        UnitError::new(RetryClass::Soon, format!("the write was interrupted: {e}"));
                    fail_all(report, &obtained, &error);
                    return;
                }
            };
            match result {
                Ok((outcome, snapshot)) => {
                    if outcome == WriteOutcome::Written {
                        report.wrote = true;
                        report.file_left = Some(snapshot);
                    }
                    for o in &obtained {
                        report.outcomes.insert(o.section.clone(), Outcome::Written);
                    }
                    for (section, _) in &removals {
                        let profile = plan.section(section).map_or("", |s| s.profile.as_str());
                        tracing::info!(
                            section = %printable(section),
                            "removed the old session of profile [{}] from the credentials file: section [{}] is served by credential-process",
                            printable(profile),
                            printable(section)
                        );
                    }
                    return;
                }
                Err(e) => {
                    let error = UnitError::from_error(&e);
                    let refused_profile = e.section().map(str::to_string);
                    let refused = refused_profile
                        .as_deref()
                        .and_then(|profile| obtained.iter().position(|o| o.profile == profile));
                    let refused_removal = refused_profile.as_deref().and_then(|profile| {
                        removals.iter().position(|(section, _)| {
                            plan.section(section).is_some_and(|s| s.profile == profile)
                        })
                    });
                    let rounds_left = obtained.len() + removals.len() > 1;
                    match (refused, refused_removal) {
                        (Some(index), _) if rounds_left => {
                            let o = obtained.remove(index);
                            report.fail(&o.section, Unit::Section(o.section.clone()), error);
                        }
                        (None, Some(index)) if rounds_left => {
                            let (section, _) = removals.remove(index);
                            tracing::warn!(
                                "section [{}]: cannot remove its old session from the credentials file: {error}",
                                printable(section)
                            );
                        }
                        _ => {
                            fail_all(report, &obtained, &error);
                            if !removals.is_empty() {
                                tracing::warn!(
                                    "cannot remove old sessions from the credentials file: {error}"
                                );
                            }
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Spends a fresh code on `call`; when STS refuses it (a code AWS has
    /// already seen, or the step just turned), once more with the next step.
    /// `Ok(None)` when, while waiting for a step, another process put what
    /// the code was for into the cache (`served` says so): no code spent.
    async fn with_code<'a, T>(
        &self,
        auth: &CodeAuth,
        cache: &mut SessionCache,
        lock: &mut CacheLock,
        report: &mut PassReport,
        served: &Served<'_>,
        mut call: impl FnMut(SecretString) -> BoxFuture<'a, Result<T, UnitError>>,
    ) -> Result<Option<T>, CodeCallError> {
        let Some(code) = self.fresh_code(auth, cache, lock, report, served).await? else {
            return Ok(None);
        };
        report.sts_calls += 1;
        match call(code.value).await {
            Err(error) if error.class == RetryClass::NextTotpStep => {
                tracing::info!(
                    "MFA device {}: code refused ({error}); retrying once with the next code",
                    auth.mfa_serial_number
                );
                let Some(code) = self.fresh_code(auth, cache, lock, report, served).await? else {
                    return Ok(None);
                };
                report.sts_calls += 1;
                call(code.value)
                    .await
                    .map(Some)
                    .map_err(CodeCallError::Call)
            }
            other => other.map(Some).map_err(CodeCallError::Call),
        }
    }

    /// A code whose TOTP step has not been sent to STS for this device yet.
    /// When the step was used, waits for the next one (at most one period)
    /// with the lock released, then looks again: first whether another
    /// process got what the code was for meanwhile (`None`: no code read).
    /// The step is recorded in the shared cache before the code leaves,
    /// because AWS counts a code as used even when its answer is lost; so a
    /// cache that cannot record it (a full file system) means no code is
    /// read at all, rather than one another process could send again.
    async fn fresh_code(
        &self,
        auth: &CodeAuth,
        cache: &mut SessionCache,
        lock: &mut CacheLock,
        report: &mut PassReport,
        served: &Served<'_>,
    ) -> Result<Option<Code>, CodeCallError> {
        let serial = auth.mfa_serial_number.as_str();
        let period = self.codes.period(&auth.code_source).max(1);
        let first_seen = cache.contents().last_steps.get(serial).copied();
        let mut waits = 0;
        loop {
            if served(cache.contents(), self.clock.now()) {
                tracing::info!(
                    "MFA device {serial}: another process got what this code was for; no code spent"
                );
                return Ok(None);
            }
            // Before the key is asked: the step the clock is in now.
            let now = self.clock.now();
            let expected = crate::timestamp::totp_seconds(crate::timestamp::system_time(now))
                .map_err(|e| CodeCallError::Code(UnitError::from_error(&e)))?
                / period;
            if let StepCheck::Wait(wait) =
                cache.contents().check_step(serial, expected, period, now)
            {
                if waits == STEP_ATTEMPTS {
                    break;
                }
                waits += 1;
                self.wait_for_step(serial, wait, cache, lock).await?;
                continue;
            }
            if let Err(e) = cache.store(lock, now) {
                return Err(CodeCallError::Code(UnitError::new(
                    RetryClass::Soon,
                    format!(
                        "MFA device {serial}: no code is read while the TOTP step it would use cannot be recorded for other processes ({e})"
                    ),
                )));
            }
            let code = self.read_code(auth).await.map_err(CodeCallError::Code)?;
            tracing::debug!("MFA device {serial}: code read");
            let now = self.clock.now();
            let check = cache
                .contents()
                .check_step(serial, code.step, code.period, now);
            match check {
                StepCheck::Wait(wait) => {
                    if waits == STEP_ATTEMPTS {
                        break;
                    }
                    waits += 1;
                    self.wait_for_step(serial, wait, cache, lock).await?;
                }
                StepCheck::Fresh | StepCheck::Stale(_) => {
                    if let StepCheck::Stale(last) = check {
                        tracing::warn!(
                            "MFA device {serial}: the recorded TOTP step {last} lies ahead of the clock's {} (was the clock set back?); ignoring it",
                            code.step
                        );
                    }
                    cache
                        .contents_mut()
                        .last_steps
                        .insert(serial.to_string(), code.step);
                    if let Err(e) = cache.store(lock, now) {
                        return Err(CodeCallError::Code(UnitError::new(
                            RetryClass::Soon,
                            format!(
                                "MFA device {serial}: the code read was not sent, because its TOTP step cannot be recorded for other processes ({e})"
                            ),
                        )));
                    }
                    report.codes_used += 1;
                    return Ok(Some(code));
                }
            }
        }
        let last_seen = cache.contents().last_steps.get(serial).copied();
        let message = if last_seen != first_seen {
            format!(
                "MFA device {serial}: other processes used the codes of the last {} TOTP steps (AWS takes each step's code once); this attempt is retried shortly",
                STEP_ATTEMPTS + 1
            )
        } else {
            format!(
                "MFA device {serial}: the code source keeps giving codes of a TOTP step that was already used; check the system clock"
            )
        };
        Err(CodeCallError::Code(UnitError::new(
            RetryClass::NextTotpStep,
            message,
        )))
    }

    /// Waits out a TOTP step already used, with the cache lock released
    /// (another process may need it meanwhile), then takes it again.
    async fn wait_for_step(
        &self,
        serial: &str,
        wait: std::time::Duration,
        cache: &mut SessionCache,
        lock: &mut CacheLock,
    ) -> Result<(), CodeCallError> {
        tracing::info!(
            "MFA device {serial}: this TOTP step's code was already used; waiting {:.1} s for the next one",
            wait.as_secs_f64()
        );
        *lock = CacheLock::released();
        tokio::time::sleep(wait).await;
        *lock = cache
            .lock()
            .await
            .map_err(|e| CodeCallError::Code(cache_error(&e)))?;
        cache.load(lock);
        Ok(())
    }

    /// The long-term keys that sign: the secret as the plan found it, or
    /// read from the keyring now (the only time the daemon needs it).
    async fn long_term_signer(&self, keys: &LongTermKeyPair) -> Result<SigningKeys, UnitError> {
        let secret = match &keys.secret {
            LongTermSecret::Known(secret) => secret.clone(),
            LongTermSecret::Keyring {
                credentials_section,
            } => {
                let secrets = Arc::clone(&self.secrets);
                let section = credentials_section.clone();
                tokio::task::spawn_blocking(move || secrets.long_term_secret(&section))
                    .await
                    .map_err(|e| {
                        UnitError::new(
                            RetryClass::Soon,
                            format!("reading the keyring was interrupted: {e}"),
                        )
                    })??
            }
        };
        Ok(SigningKeys::long_term(keys.access_key_id.clone(), secret))
    }

    async fn read_code(&self, auth: &CodeAuth) -> Result<Code, UnitError> {
        let provider = Arc::clone(&self.codes);
        let source = auth.code_source.clone();
        let now = crate::timestamp::system_time(self.clock.now());
        tokio::task::spawn_blocking(move || provider.code(&source, now))
            .await
            .map_err(|e| {
                UnitError::new(
                    RetryClass::Soon,
                    format!("reading the code was interrupted: {e}"),
                )
            })?
    }
}

/// One AssumeRole signed with an MFA session.
struct ChainedJob<'p> {
    section: &'p super::decide::SectionPlan,
    key: &'p MfaSessionKey,
    signer: SigningKeys,
    endpoint: Endpoint,
    role: RoleSettings,
}

/// A throttled AssumeRole is tried this many times in a pass in all.
pub(crate) const THROTTLE_ATTEMPTS: u32 = 6;

/// The pause before the `attempt`-th try of a throttled call: 100 ms
/// doubling, at most 3.2 s, with ±50 % jitter so that the retries spread.
fn throttle_pause(attempt: u32) -> std::time::Duration {
    let base = 100u64 << attempt.min(5);
    std::time::Duration::from_millis(base / 2 + fastrand::u64(0..=base))
}

async fn sleep_until_or_forever(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How many AssumeRole calls may be under way: additive increase,
/// multiplicative decrease, between 1 and the cap (`sts_concurrency`).
#[derive(Debug)]
pub(crate) struct Window {
    size: usize,
    cap: usize,
    successes: usize,
    /// Bumped at each decrease; a call started before the last decrease
    /// saw the old window, and its throttling is already answered.
    generation: u64,
}

impl Window {
    pub(crate) fn new(cap: usize) -> Window {
        let cap = cap.max(1);
        Window {
            size: cap,
            cap,
            successes: 0,
            generation: 0,
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// A call started in `generation`, with `in_flight` calls under way,
    /// was throttled; true when the window shrank: to half of what was
    /// really in flight (a window of 32 with 3 calls teaches nothing about
    /// 32).
    pub(crate) fn throttled(&mut self, generation: u64, in_flight: usize) -> bool {
        if generation < self.generation {
            return false;
        }
        self.size = (self.size.min(in_flight) / 2).max(1);
        self.successes = 0;
        self.generation += 1;
        true
    }

    /// A call succeeded; true when the window grew.
    pub(crate) fn succeeded(&mut self) -> bool {
        self.successes += 1;
        if self.successes >= self.size && self.size < self.cap {
            self.size += 1;
            self.successes = 0;
            return true;
        }
        false
    }
}

/// What the recorded TOTP steps say of a new code.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StepCheck {
    /// Not used yet.
    Fresh,
    /// The recorded step is more than one period ahead of the code's: the
    /// clock was set back (a dual-boot laptop, an NTP correction) or the
    /// record is corrupt. Waiting for it could take hours: it is ignored.
    Stale(u64),
    /// Already used: wait this long for the next step (at most one period).
    Wait(std::time::Duration),
}

impl crate::session_cache::CacheContents {
    /// Whether a code of `step` may be sent for `serial` at `now`.
    pub(crate) fn check_step(
        &self,
        serial: &str,
        step: u64,
        period: u64,
        now: OffsetDateTime,
    ) -> StepCheck {
        let Some(&last) = self.last_steps.get(serial) else {
            return StepCheck::Fresh;
        };
        if last < step {
            return StepCheck::Fresh;
        }
        if last > step.saturating_add(1) {
            return StepCheck::Stale(last);
        }
        let period = period.max(1);
        let next_step_at = last.checked_add(1).and_then(|s| s.checked_mul(period));
        let now = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        let wait = next_step_at
            .map_or(period, |at| at.saturating_sub(now))
            .min(period);
        StepCheck::Wait(std::time::Duration::from_millis(wait * 1000 + 200))
    }
}

/// Takes the group and other permission bits off the credentials file
/// (another program rewrote it under a loose umask), on the version this
/// pass wrote or read (never through a path another user could swap): one
/// log line.
async fn restrict_mode(
    credentials: &CredentialsSnapshot,
    written: Option<&crate::credentials::Snapshot>,
    mode: u32,
) {
    let Some(snapshot) = written.or(credentials.snapshot.as_ref()).cloned() else {
        return;
    };
    let file = credentials.file.clone();
    let shown = printable(&file.path().display().to_string()).into_owned();
    match tokio::task::spawn_blocking(move || file.make_private(&snapshot)).await {
        Ok(Ok(true)) => tracing::warn!(
            "{shown} was readable or writable by others (mode {mode:03o}, left so by another program): made it {:03o}",
            mode & 0o700
        ),
        Ok(Ok(false)) => {}
        Ok(Err(e)) => tracing::warn!(
            "{shown} is readable or writable by others (mode {mode:03o}) and cannot be made private: {e}"
        ),
        Err(e) => tracing::debug!("restricting the mode was interrupted: {e}"),
    }
}

fn fail_all(report: &mut PassReport, obtained: &[Obtained], error: &UnitError) {
    for o in obtained {
        report.fail(&o.section, Unit::Section(o.section.clone()), error.clone());
    }
}

/// Whether the cache now holds what a code was to be spent on (another
/// process got it while this one waited for a TOTP step), judged at a time.
type Served<'a> =
    dyn Fn(&crate::session_cache::CacheContents, OffsetDateTime) -> bool + Send + Sync + 'a;

/// Where a code-spending call failed: getting the code, or the STS call.
enum CodeCallError {
    Code(UnitError),
    Call(UnitError),
}

impl CodeCallError {
    fn into_inner(self) -> UnitError {
        match self {
            CodeCallError::Code(e) | CodeCallError::Call(e) => e,
        }
    }
}

fn cache_error(error: &crate::private_file::PrivateFileError) -> UnitError {
    UnitError::new(
        RetryClass::Soon,
        format!("cannot use the MFA session cache: {error}"),
    )
}
