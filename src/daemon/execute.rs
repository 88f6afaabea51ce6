//! Carries out a plan: codes, STS calls, then one locked atomic write.
//!
//! Order of work, and why:
//! 1. MFA sessions first, one per [`MfaSessionKey`], each costing one code.
//!    The shared cache is locked while a code is spent, so that several
//!    daemon processes never send the same TOTP step and never start two
//!    sessions for one key; a session another process just obtained is used
//!    instead of a new code.
//! 2. Direct AssumeRole calls (`mfa_session_duration = 0`), one code each,
//!    one TOTP step apart per device.
//! 3. AssumeRole from MFA sessions, concurrently (bounded).
//! 4. One write of every changed profile.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use time::{Duration, OffsetDateTime};
use tokio::sync::Semaphore;

use super::ports::{
    BoxFuture, Clock, Code, CodeProvider, Endpoint, MfaCode, SigningKeys, StsApi, UnitError,
};
use super::schedule::{Report, Scheduler, Unit};
use crate::config::{LongTermKeys, RoleSettings, Section, Settings};
use crate::credentials::{CredentialsFile, Document, Edit, WriteOutcome};
use crate::plan::{ACCESS_KEY_ID, Action, MfaSessionKey, Plan, SECRET_ACCESS_KEY};
use crate::retry::RetryClass;
use crate::session::SessionCredentials;
use crate::session_cache::{CacheLock, SessionCache};
use secrecy::SecretString;

/// What happened to one section in a pass.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Written,
    Failed(UnitError),
    /// Not attempted: its unit is backing off or parked.
    Waiting(Unit),
}

#[derive(Debug, Default)]
pub struct PassReport {
    pub outcomes: BTreeMap<String, Outcome>,
    pub wrote: bool,
    /// Run another pass at once (an MFA session was found expired).
    pub rerun: bool,
    pub codes_used: usize,
    pub sts_calls: usize,
    /// The unit each failed section's error belongs to (device or section).
    pub failed_units: BTreeMap<String, Unit>,
}

pub struct Executor {
    pub codes: Arc<dyn CodeProvider>,
    pub sts: Arc<dyn StsApi>,
    pub clock: Arc<dyn Clock>,
    /// At most this many AssumeRole calls at once.
    pub concurrency: usize,
}

/// The mutable state a pass works on.
pub struct PassState<'a> {
    pub cache: &'a mut SessionCache,
    pub scheduler: &'a mut Scheduler,
}

impl Executor {
    pub async fn execute(
        &self,
        plan: &Plan,
        sections: &[Section],
        document: &Document,
        file: &CredentialsFile,
        state: PassState<'_>,
    ) -> PassReport {
        let PassState { cache, scheduler } = state;
        let mut report = PassReport::default();
        let settings_of: BTreeMap<&str, &Settings> = sections
            .iter()
            .filter_map(|s| {
                s.settings
                    .as_ref()
                    .ok()
                    .map(|settings| (s.name.as_str(), settings))
            })
            .collect();
        let now = self.clock.now();

        // Which pending sections may run now, by their own unit.
        let mut due: Vec<(&str, &Settings, &Action)> = Vec::new();
        for section in plan.pending() {
            let Some(settings) = settings_of.get(section.section.as_str()) else {
                continue;
            };
            let unit = Unit::Section(section.section.clone());
            if scheduler.is_due(&unit, now) {
                due.push((&section.section, settings, &section.action));
            } else {
                report
                    .outcomes
                    .insert(section.section.clone(), Outcome::Waiting(unit));
            }
        }

        // A file the daemon may not replace (read-only, in the Nix store)
        // fails every section before a code is spent on it.
        if !due.is_empty()
            && let Err(e) = file.check_writable()
        {
            let error = UnitError::from_error(&e);
            for (name, _, _) in due.drain(..) {
                let unit = Unit::Section(name.to_string());
                fail(&mut report, name, &Failure::Failed(unit, error.clone()));
            }
        }

        // 1. MFA sessions.
        let mut sessions: BTreeMap<MfaSessionKey, Result<SessionCredentials, Failure>> =
            BTreeMap::new();
        for (_, settings, action) in &due {
            let key = match action {
                Action::WriteMfaSession { mfa_session } => mfa_session,
                Action::AssumeRoleFromMfaSession { mfa_session, .. } => mfa_session,
                _ => continue,
            };
            if sessions.contains_key(key) {
                continue;
            }
            let result = self
                .mfa_session(key, settings, document, cache, scheduler, &mut report)
                .await;
            if result.as_ref().is_err_and(Failure::is_reauthenticate) {
                report.rerun = true;
            }
            sessions.insert(key.clone(), result);
        }

        // 2-3. Role sessions, and MFA sessions written as they are.
        let mut written: Vec<(String, &Settings, SessionCredentials)> = Vec::new();
        let mut chained = Vec::new();
        for (name, settings, action) in &due {
            match action {
                Action::WriteMfaSession { mfa_session } => match &sessions[mfa_session] {
                    Ok(creds) => written.push((name.to_string(), settings, creds.clone())),
                    Err(failure) => fail(&mut report, name, failure),
                },
                Action::AssumeRoleFromMfaSession { mfa_session, .. } => {
                    match &sessions[mfa_session] {
                        Ok(creds) => chained.push(ChainedJob {
                            section: name.to_string(),
                            settings,
                            signer: SigningKeys::session(creds),
                            mfa_session: mfa_session.clone(),
                        }),
                        Err(failure) => fail(&mut report, name, failure),
                    }
                }
                Action::AssumeRoleWithCode { .. } => {
                    let result = self
                        .direct_assume_role(name, settings, document, cache, scheduler, &mut report)
                        .await;
                    match result {
                        Ok(creds) => written.push((name.to_string(), settings, creds)),
                        Err(failure) => fail(&mut report, name, &failure),
                    }
                }
                Action::None => {}
            }
        }
        for (job, result) in self.assume_roles_concurrently(chained, &mut report).await {
            let name = job.section;
            match result {
                Ok(creds) => written.push((name, job.settings, creds)),
                Err(error) => {
                    if error.class == RetryClass::Reauthenticate {
                        // The MFA session was refused: forget it, start a new one.
                        if let Ok(lock) = cache.lock() {
                            cache.load(&lock);
                            cache.contents_mut().sessions.remove(&job.mfa_session);
                            let _ = cache.store(&lock, now);
                        }
                        report.rerun = true;
                    }
                    let unit = Unit::Section(name.clone());
                    fail(&mut report, &name, &Failure::Failed(unit, error));
                }
            }
        }

        // 4. One write. An edit the editor refuses for one profile (an
        // indented line, a header the readers disagree on: found only when
        // editing) fails that section alone; the others are written.
        while !written.is_empty() {
            let mut edits: Vec<Edit> = Vec::new();
            for (_, settings, creds) in &written {
                edits.extend(document.session_edits(
                    &settings.profile_name,
                    creds,
                    &settings.expiry_key,
                ));
            }
            let target = CredentialsFile::new(file.path().to_path_buf(), file.backups());
            let result = tokio::task::spawn_blocking(move || target.update(&edits)).await;
            let result = match result {
                Ok(Ok(outcome)) => Ok(outcome),
                Ok(Err(e)) => {
                    let refused = e.section().and_then(|profile| {
                        written
                            .iter()
                            .position(|(_, settings, _)| settings.profile_name == profile)
                    });
                    if let Some(index) = refused
                        && written.len() > 1
                    {
                        let (name, _, _) = written.remove(index);
                        let unit = Unit::Section(name.clone());
                        let error = UnitError::from_error(&e);
                        fail(&mut report, &name, &Failure::Failed(unit, error));
                        continue;
                    }
                    Err(UnitError::from_error(&e))
                }
                Err(e) => Err(UnitError::new(
                    RetryClass::Soon,
                    format!("the write was interrupted: {e}"),
                )),
            };
            match result {
                Ok(outcome) => {
                    report.wrote = outcome == WriteOutcome::Written;
                    let written_at = self.clock.now();
                    for (name, settings, creds) in &written {
                        let unit = Unit::Section(name.clone());
                        scheduler.record_success(&unit);
                        report.outcomes.insert(name.clone(), Outcome::Written);
                        due_on_arrival(scheduler, &unit, settings, creds, written_at);
                    }
                }
                Err(error) => {
                    for (name, _, _) in &written {
                        fail(
                            &mut report,
                            name,
                            &Failure::Failed(Unit::Section(name.clone()), error.clone()),
                        );
                    }
                }
            }
            break;
        }

        // Each failing unit counts one failure per pass, however many
        // sections it affects, and is logged once while the error repeats.
        let mut failed: BTreeMap<&Unit, &UnitError> = BTreeMap::new();
        for (name, unit) in &report.failed_units {
            if let Some(Outcome::Failed(error)) = report.outcomes.get(name) {
                failed.entry(unit).or_insert(error);
            }
        }
        // Backoff counts from when the attempt ended, not from when the pass
        // began: a pass that waited for a TOTP step or a slow STS would
        // otherwise find its backoff already over and try again at once.
        let ended = self.clock.now();
        for (unit, error) in failed {
            if scheduler.record_failure(unit, error.class, &error.message, ended) == Report::New {
                tracing::warn!("{unit}: {error} ({})", error.class);
            } else {
                tracing::debug!("{unit}: still failing: {error}");
            }
        }
        report
    }

    /// A valid MFA session for `key`: from the shared cache, or a new one
    /// (one code). Errors carry the unit to blame: the device.
    async fn mfa_session(
        &self,
        key: &MfaSessionKey,
        settings: &Settings,
        document: &Document,
        cache: &mut SessionCache,
        scheduler: &mut Scheduler,
        report: &mut PassReport,
    ) -> Result<SessionCredentials, Failure> {
        let device = Unit::Device(key.mfa_serial_number.clone());
        let failed = |e: UnitError| Failure::Failed(device.clone(), e);
        let margin = Duration::seconds(i64::from(settings.refresh_margin));
        let usable = |c: &SessionCredentials, now: OffsetDateTime| c.expiration - margin > now;
        let lock = cache.lock().map_err(|e| failed(cache_error(&e)))?;
        cache.load(&lock);
        if let Some(creds) = cache.contents().sessions.get(key)
            && usable(creds, self.clock.now())
        {
            return Ok(creds.clone());
        }
        if !scheduler.is_due(&device, self.clock.now()) {
            return Err(Failure::Waiting(device));
        }
        let long_term = long_term_keys(settings, document).map_err(failed)?;
        let endpoint = Endpoint::new(key.region.clone(), key.endpoint.clone());
        let serial = key.mfa_serial_number.as_str();
        let sts = &self.sts;
        let result = self
            .with_code(serial, settings, cache, &lock, report, |code| {
                let (long_term, endpoint) = (&long_term, &endpoint);
                Box::pin(async move {
                    let mfa = MfaCode {
                        serial_number: serial,
                        code: &code,
                    };
                    sts.get_session_token(long_term, endpoint, mfa, key.duration)
                        .await
                })
            })
            .await;
        match result {
            Ok(creds) => {
                tracing::info!(
                    "new MFA session for {} valid until {}",
                    key,
                    crate::commands::plan::rfc3339(creds.expiration)
                );
                cache
                    .contents_mut()
                    .sessions
                    .insert(key.clone(), creds.clone());
                let _ = cache.store(&lock, self.clock.now());
                scheduler.record_success(&device);
                Ok(creds)
            }
            Err(CodeCallError::Code(error) | CodeCallError::Call(error)) => Err(failed(error)),
        }
    }

    /// AssumeRole with SerialNumber + TokenCode from the long-term keys.
    async fn direct_assume_role(
        &self,
        section: &str,
        settings: &Settings,
        document: &Document,
        cache: &mut SessionCache,
        scheduler: &mut Scheduler,
        report: &mut PassReport,
    ) -> Result<SessionCredentials, Failure> {
        let device = Unit::Device(settings.mfa_serial_number.clone());
        let failed = |e: UnitError| Failure::Failed(device.clone(), e);
        if !scheduler.is_due(&device, self.clock.now()) {
            return Err(Failure::Waiting(device));
        }
        let role = settings
            .role
            .as_ref()
            .expect("direct AssumeRole has a role");
        let long_term = long_term_keys(settings, document).map_err(failed)?;
        let lock = cache.lock().map_err(|e| failed(cache_error(&e)))?;
        cache.load(&lock);
        let endpoint = Endpoint::new(settings.region.clone(), settings.sts_endpoint.clone());
        let serial = settings.mfa_serial_number.as_str();
        let sts = &self.sts;
        let result = self
            .with_code(serial, settings, cache, &lock, report, |code| {
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
            Ok(creds) => {
                scheduler.record_success(&device);
                Ok(creds)
            }
            // Code problems belong to the device; the rest (trust policy,
            // duration) to the section.
            Err(CodeCallError::Code(error)) => Err(failed(error)),
            Err(CodeCallError::Call(error)) if error.class == RetryClass::NextTotpStep => {
                Err(failed(error))
            }
            Err(CodeCallError::Call(error)) => {
                Err(Failure::Failed(Unit::Section(section.to_string()), error))
            }
        }
    }

    /// Spends fresh codes on `call` until it succeeds, retrying once with
    /// the next TOTP step when STS refuses the code (a code AWS has already
    /// seen, or the step just turned).
    async fn with_code<'a>(
        &self,
        serial: &str,
        settings: &Settings,
        cache: &mut SessionCache,
        lock: &CacheLock,
        report: &mut PassReport,
        mut call: impl FnMut(SecretString) -> BoxFuture<'a, Result<SessionCredentials, UnitError>>,
    ) -> Result<SessionCredentials, CodeCallError> {
        let mut rejected_once = false;
        loop {
            let code = self
                .fresh_code(serial, settings, cache, lock, report)
                .await
                .map_err(CodeCallError::Code)?;
            report.sts_calls += 1;
            match call(code.value).await {
                Ok(creds) => return Ok(creds),
                Err(error) if error.class == RetryClass::NextTotpStep && !rejected_once => {
                    tracing::info!(
                        "MFA device {serial}: code refused ({error}); retrying once with the next code"
                    );
                    rejected_once = true;
                }
                Err(error) => return Err(CodeCallError::Call(error)),
            }
        }
    }

    /// A code whose TOTP step has not been sent to STS for this device yet:
    /// waits for the next step when needed (at most one period). The step is
    /// recorded as spent before the code leaves, because AWS counts a code
    /// as used even when its answer is lost.
    async fn fresh_code(
        &self,
        serial: &str,
        settings: &Settings,
        cache: &mut SessionCache,
        lock: &CacheLock,
        report: &mut PassReport,
    ) -> Result<Code, UnitError> {
        loop {
            let provider = Arc::clone(&self.codes);
            let source = settings.code_source.clone();
            let now: SystemTime = self.clock.now().into();
            let code = tokio::task::spawn_blocking(move || provider.code(&source, now))
                .await
                .map_err(|e| {
                    UnitError::new(
                        RetryClass::Soon,
                        format!("reading the code was interrupted: {e}"),
                    )
                })??;
            let last = cache.contents().last_steps.get(serial).copied();
            match last {
                Some(last) if code.step <= last => {
                    let next_step_at = (last + 1) * code.period;
                    let now = self.clock.now().unix_timestamp().max(0) as u64;
                    let wait = std::time::Duration::from_millis(
                        next_step_at.saturating_sub(now) * 1000 + 200,
                    );
                    tracing::info!(
                        "MFA device {serial}: this TOTP step's code was already used; waiting {:.1} s for the next one",
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                }
                _ => {
                    report.codes_used += 1;
                    cache
                        .contents_mut()
                        .last_steps
                        .insert(serial.to_string(), code.step);
                    let _ = cache.store(lock, self.clock.now());
                    return Ok(code);
                }
            }
        }
    }

    /// AssumeRole from MFA sessions, at most `concurrency` at once; results
    /// come back in the jobs' order.
    async fn assume_roles_concurrently<'s>(
        &self,
        jobs: Vec<ChainedJob<'s>>,
        report: &mut PassReport,
    ) -> Vec<(ChainedJob<'s>, Result<SessionCredentials, UnitError>)> {
        let semaphore = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for (index, job) in jobs.iter().enumerate() {
            let sts = Arc::clone(&self.sts);
            let semaphore = Arc::clone(&semaphore);
            let role: RoleSettings = job
                .settings
                .role
                .clone()
                .expect("chained AssumeRole has a role");
            let endpoint = Endpoint::new(
                job.settings.region.clone(),
                job.settings.sts_endpoint.clone(),
            );
            let signer = job.signer.clone();
            report.sts_calls += 1;
            tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                (
                    index,
                    sts.assume_role(&signer, &endpoint, &role, None).await,
                )
            });
        }
        let mut results: Vec<Option<Result<SessionCredentials, UnitError>>> =
            jobs.iter().map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((index, result)) = joined {
                results[index] = Some(result);
            }
        }
        jobs.into_iter()
            .zip(results)
            .map(|(job, result)| {
                let result = result.unwrap_or_else(|| {
                    Err(UnitError::new(
                        RetryClass::Soon,
                        "the AssumeRole task ended unexpectedly",
                    ))
                });
                (job, result)
            })
            .collect()
    }
}

/// Credentials that STS hands out already inside their refresh margin (a
/// system clock ahead of AWS's, or a session shorter than asked for: AWS
/// caps the root user's GetSessionToken at one hour) would be asked for
/// again at once, in every pass, forever. They are written (they are valid),
/// and the section backs off like after a passing error.
fn due_on_arrival(
    scheduler: &mut Scheduler,
    unit: &Unit,
    settings: &Settings,
    creds: &SessionCredentials,
    now: OffsetDateTime,
) {
    let margin = Duration::seconds(i64::from(settings.refresh_margin));
    if creds.expiration - margin > now {
        return;
    }
    let message = format!(
        "STS returned credentials that are already due for refresh (they expire within refresh_margin = {} s of now); check that the system clock is right, or lower refresh_margin",
        settings.refresh_margin
    );
    if scheduler.record_failure(unit, RetryClass::Soon, &message, now) == Report::New {
        tracing::warn!("{unit}: {message}");
    }
}

/// One AssumeRole from an MFA session.
struct ChainedJob<'s> {
    section: String,
    settings: &'s Settings,
    signer: SigningKeys,
    mfa_session: MfaSessionKey,
}

/// Where a code-spending call failed: getting the code, or the STS call.
enum CodeCallError {
    Code(UnitError),
    Call(UnitError),
}

/// Why a section got no credentials in this pass.
#[derive(Debug, Clone)]
enum Failure {
    /// Its unit is backing off or parked: not attempted.
    Waiting(Unit),
    /// Attempted and failed; the error belongs to this unit.
    Failed(Unit, UnitError),
}

impl Failure {
    fn is_reauthenticate(&self) -> bool {
        matches!(self, Failure::Failed(_, e) if e.class == RetryClass::Reauthenticate)
    }
}

fn fail(report: &mut PassReport, section: &str, failure: &Failure) {
    match failure {
        Failure::Waiting(unit) => {
            report
                .outcomes
                .insert(section.to_string(), Outcome::Waiting(unit.clone()));
        }
        Failure::Failed(unit, error) => {
            report
                .outcomes
                .insert(section.to_string(), Outcome::Failed(error.clone()));
            report
                .failed_units
                .insert(section.to_string(), unit.clone());
        }
    }
}

fn cache_error(error: &std::io::Error) -> UnitError {
    UnitError::new(
        RetryClass::Soon,
        format!("cannot use the MFA session cache in $XDG_RUNTIME_DIR: {error}"),
    )
}

/// The long-term keys that sign GetSessionToken or a direct AssumeRole.
pub fn long_term_keys(settings: &Settings, document: &Document) -> Result<SigningKeys, UnitError> {
    match &settings.long_term {
        LongTermKeys::Inline {
            access_key_id,
            secret_access_key,
        } => Ok(SigningKeys::long_term(
            access_key_id.clone(),
            secret_access_key.clone(),
        )),
        LongTermKeys::CredentialsSection(section) => {
            let read = |key: &str| {
                document
                    .get(section, key)
                    .map_err(|e| UnitError::from_error(&e))
                    .map(|v| v.map(str::to_string))
            };
            match (read(ACCESS_KEY_ID)?, read(SECRET_ACCESS_KEY)?) {
                (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
                    Ok(SigningKeys {
                        access_key_id: id,
                        secret_access_key: secret.into(),
                        session_token: None,
                    })
                }
                _ => Err(UnitError::new(
                    RetryClass::NeedsUser,
                    format!(
                        "credentials section [{section}] lacks aws_access_key_id or aws_secret_access_key; add your long-term keys there"
                    ),
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests;
