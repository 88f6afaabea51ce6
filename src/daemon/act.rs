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
//! 2. **SSO sessions**, one per SSO session the plan uses: the access token
//!    from the token cache, or refreshed; a sign-in takes minutes, so it
//!    runs as a task of its own ([`SignIns`]) whose end wakes the loop, and
//!    the sections that need it wait for it, with no timer of their own
//!    (`apply` and `credential-process` wait for it in the pass instead).
//! 3. **Roles**: direct AssumeRole calls (`mfa_session_duration = 0`) one
//!    code each, one TOTP step apart per device; then AssumeRole from the
//!    MFA sessions, and GetRoleCredentials with the SSO tokens (then
//!    AssumeRole from those credentials), concurrently, in a window that
//!    shrinks when the service throttles ([`Window`]).
//! 4. **One write** of every profile that got credentials.
//!
//! Every section the plan gave work gets one [`Outcome`]; a failure names
//! the unit to blame (the MFA device, the SSO session, or the section), for
//! the backoff.

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::SecretString;
use time::OffsetDateTime;

use super::decide::{
    Action, CodeAuth, LongTermKeyPair, LongTermSecret, MfaSessionPlan, Plan, SsoNeeds,
    SsoSessionPlan, StsTarget,
};
use super::observe::CredentialsSnapshot;
use super::ports::{
    AccessToken, BoxFuture, Clock, CodeProvider, DeviceCode, Endpoint, MfaCode, SecretStore,
    SigningKeys, SsoApi, StsApi, TokenNow, UnitError,
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
    Failed {
        unit: Unit,
        error: UnitError,
    },
    /// Its SSO session's sign-in is under way (started now, or before):
    /// the section waits for it.
    AwaitingSignIn {
        sso_session: String,
    },
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
    /// The write went onto a version another program wrote after the
    /// observation: the loop looks at the file again.
    pub merged: bool,
    pub codes_used: usize,
    pub sts_calls: usize,
    /// GetRoleCredentials calls (IAM Identity Center's portal).
    pub portal_calls: usize,
    /// Units that worked in this pass beyond the sections written: the MFA
    /// devices whose codes STS accepted, the SSO sessions signed in.
    pub succeeded_units: Vec<Unit>,
    /// Units that failed in this pass beyond the sections' outcomes: a
    /// sign-in that ended badly while no section of its SSO session had
    /// work (its backoff holds all the same).
    pub failed_units: Vec<(Unit, UnitError)>,
    /// The expiry of each SSO session's access token as the pass got it
    /// (from the cache, a refresh or a sign-in): when it is refreshed next.
    pub sso_tokens: BTreeMap<String, time::OffsetDateTime>,
}

impl PassReport {
    /// Adds what another part of the pass did (the other session source).
    fn absorb(&mut self, other: PassReport) {
        self.outcomes.extend(other.outcomes);
        self.sessions.extend(other.sessions);
        self.wrote |= other.wrote;
        self.merged |= other.merged;
        // Both parts wrote: which of the two versions is on disk is not
        // known here (the later write merged the earlier), so neither is
        // taken for it: the next file event is news (one pass more).
        self.file_left = match (self.file_left.take(), other.file_left) {
            (Some(_), Some(_)) => None,
            (mine, theirs) => mine.or(theirs),
        };
        self.codes_used += other.codes_used;
        self.sts_calls += other.sts_calls;
        self.portal_calls += other.portal_calls;
        self.succeeded_units.extend(other.succeeded_units);
        self.failed_units.extend(other.failed_units);
        self.sso_tokens.extend(other.sso_tokens);
    }

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
    /// IAM Identity Center.
    pub sso: Arc<dyn SsoApi>,
    /// The sign-ins this executor starts, and whether a pass waits for them.
    pub sign_ins: Arc<SignIns>,
    pub clock: Arc<dyn Clock>,
    /// At most this many AssumeRole (or GetRoleCredentials) calls at once.
    pub concurrency: usize,
}

/// Whether a write also removes the old sessions of `process` sections
/// from the credentials file (one of the pass's writes does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cleanups {
    Remove,
    Leave,
}

/// Credentials a section got, waiting for the write.
struct Obtained {
    section: String,
    profile: String,
    expiry_key: String,
    output: Output,
    creds: SessionCredentials,
}

impl Obtained {
    fn of(section: &super::decide::SectionPlan, creds: SessionCredentials) -> Obtained {
        Obtained {
            section: section.section.clone(),
            profile: section.profile.clone(),
            expiry_key: section.expiry_key.clone(),
            output: section.output,
            creds,
        }
    }
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
        // Before anything else: a sign-in that ended badly reaches the error
        // policy even in a pass with nothing to do.
        let failed_sign_ins = self.sign_ins_ended(plan, &mut report);
        if !plan.has_work() {
            return report;
        }
        // The two sources go their own ways, each to its own write: a code
        // that waits for its TOTP step (or a touch) never holds up the SSO
        // sections, nor a slow portal the MFA ones. Their due times differ
        // (each has its own jitter), so a pass has work of one mostly: one
        // write.
        let mut sso_report = PassReport::default();
        let mut sso_cache = cache.sibling();
        let mfa_done = tokio::sync::Notify::new();
        let mfa = async {
            let sessions = self.mfa_sessions(plan, cache, &mut report).await;
            let mut obtained = self.direct_roles(plan, cache, &mut report).await;
            obtained.extend(
                self.chained_roles(plan, cache, &sessions, &mut report)
                    .await,
            );
            let cleanups = Cleanups::Remove;
            self.write(plan, credentials, cache, obtained, cleanups, &mut report)
                .await;
            mfa_done.notify_one();
        };
        let sso = async {
            let mut tokens = self
                .sso_tokens(plan, &failed_sign_ins, &mut sso_report)
                .await;
            self.sign_ins_beside(plan, &mut tokens, &mfa_done, &mut sso_report)
                .await;
            for (name, token) in &tokens {
                if let Ok(token) = token {
                    sso_report.sso_tokens.insert(name.clone(), token.expires_at);
                }
            }
            let obtained = self.sso_roles(plan, &tokens, &mut sso_report).await;
            let (cache, cleanups) = (&mut sso_cache, Cleanups::Leave);
            self.write(
                plan,
                credentials,
                cache,
                obtained,
                cleanups,
                &mut sso_report,
            )
            .await;
        };
        tokio::join!(mfa, sso);
        report.absorb(sso_report);
        // The next call is normally an hour away.
        self.sts.close_connections();
        self.sso.close_connections();
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

    /// The sign-ins that ended since the last pass: a success resets its
    /// SSO session's backoff; a failure fails the sections of the plan that
    /// need the session (no new sign-in for them in this pass: the error
    /// policy decides when) and backs the session off. Returns the
    /// sessions that failed.
    fn sign_ins_ended(
        &self,
        plan: &Plan,
        report: &mut PassReport,
    ) -> std::collections::BTreeSet<String> {
        let mut failed = std::collections::BTreeSet::new();
        for (name, result) in self.sign_ins.take_ended() {
            let unit = Unit::SsoSession(name.clone());
            match result {
                Ok(()) => report.succeeded_units.push(unit),
                Err(error) => {
                    for section in &plan.sections {
                        if section.action.sso_session() == Some(name.as_str()) {
                            report.fail(&section.section, unit.clone(), error.clone());
                        }
                    }
                    report.failed_units.push((unit, error));
                    failed.insert(name);
                }
            }
        }
        failed
    }

    /// Phase 2: the access token of every SSO session the plan uses (but
    /// those whose sign-in just failed): from the cache, refreshed, or the
    /// sign-in it takes, started (or, for `apply`, waited for).
    async fn sso_tokens(
        &self,
        plan: &Plan,
        failed: &std::collections::BTreeSet<String>,
        report: &mut PassReport,
    ) -> BTreeMap<String, Result<AccessToken, TokenMiss>> {
        let mut tokens = BTreeMap::new();
        for session in &plan.sso_sessions {
            if failed.contains(&session.name) {
                continue;
            }
            if session.keeps_alive() {
                self.keep_alive(session, report).await;
            }
            if session.used_by.is_empty() {
                continue;
            }
            let token = match session.needs {
                SsoNeeds::Nothing | SsoNeeds::Refresh => {
                    match self.sso.token(&session.session).await {
                        Ok(TokenNow::Token(token)) => Ok(token),
                        // A refresh token refused (dropped already): one
                        // sign-in, not a loop.
                        Ok(TokenNow::SignInNeeded) => self.sign_in(plan, session, report).await,
                        Ok(TokenNow::SignInUnderWay) => self.sign_in(plan, session, report).await,
                        Err(error) => Err(TokenMiss::Failed(error)),
                    }
                }
                SsoNeeds::SignIn | SsoNeeds::AwaitSignIn => {
                    self.sign_in(plan, session, report).await
                }
            };
            tokens.insert(session.name.clone(), token);
        }
        tokens
    }

    /// The refresh of a token no section needs now (the plan's
    /// `keep_alive`). A refused refresh token (dropped from the cache by
    /// then) starts no sign-in: the sections ask for one when they need it.
    async fn keep_alive(&self, session: &SsoSessionPlan, report: &mut PassReport) {
        let unit = Unit::SsoSession(session.name.clone());
        match self.sso.token(&session.session).await {
            Ok(TokenNow::Token(token)) => {
                tracing::info!(
                    "SSO session {}: access token refreshed, valid until {}",
                    printable(&session.name),
                    crate::timestamp::rfc3339(token.expires_at)
                );
                report
                    .sso_tokens
                    .insert(session.name.clone(), token.expires_at);
                report.succeeded_units.push(unit);
            }
            Ok(TokenNow::SignInNeeded) => tracing::info!(
                "SSO session {}: the access token cannot be refreshed; a sign-in when a section needs it",
                printable(&session.name)
            ),
            Ok(TokenNow::SignInUnderWay) => {}
            Err(error) => report.failed_units.push((unit, error)),
        }
    }

    /// While the MFA part of the pass is still at work (a code waiting for
    /// its TOTP step, a touch, an `mfa_process` prompt: minutes, maybe), a
    /// sign-in under way may end: its sections are served in this pass, not
    /// after it. Waits no longer than the MFA part (a pass with nothing
    /// else to do does not wait at all).
    async fn sign_ins_beside(
        &self,
        plan: &Plan,
        tokens: &mut BTreeMap<String, Result<AccessToken, TokenMiss>>,
        mfa_done: &tokio::sync::Notify,
        report: &mut PassReport,
    ) {
        let mut ended = self.sign_ins.subscribe();
        loop {
            let waiting: Vec<String> = tokens
                .iter()
                .filter(|(_, token)| matches!(token, Err(TokenMiss::AwaitingSignIn)))
                .map(|(name, _)| name.clone())
                .collect();
            if waiting.is_empty() {
                return;
            }
            for (name, result) in self.sign_ins.take_ended_of(&waiting) {
                let Some(session) = plan.sso_session(&name) else {
                    continue;
                };
                let token = match result {
                    Ok(()) => {
                        report.succeeded_units.push(Unit::SsoSession(name.clone()));
                        self.token_after_sign_in(session).await
                    }
                    Err(error) => Err(TokenMiss::Failed(error)),
                };
                tokens.insert(name, token);
            }
            if tokens
                .values()
                .all(|token| !matches!(token, Err(TokenMiss::AwaitingSignIn)))
            {
                return;
            }
            tokio::select! {
                () = mfa_done.notified() => return,
                changed = ended.changed() => if changed.is_err() { return },
            }
        }
    }

    /// The token a sign-in that just ended put into the cache.
    async fn token_after_sign_in(
        &self,
        session: &SsoSessionPlan,
    ) -> Result<AccessToken, TokenMiss> {
        match self.sso.token(&session.session).await {
            Ok(TokenNow::Token(token)) => Ok(token),
            Ok(_) => Err(TokenMiss::Failed(UnitError::new(
                RetryClass::Soon,
                format!(
                    "SSO session {}: the sign-in ended, but its token is not in the cache",
                    printable(&session.name)
                ),
            ))),
            Err(error) => Err(TokenMiss::Failed(error)),
        }
    }

    /// A sign-in for `session` (or the wait for another process's): as a
    /// task whose end wakes the loop, or, for a command, here and now.
    async fn sign_in(
        &self,
        plan: &Plan,
        session: &SsoSessionPlan,
        report: &mut PassReport,
    ) -> Result<AccessToken, TokenMiss> {
        let waiting: Vec<String> = plan
            .sections
            .iter()
            .filter(|s| s.action.sso_session() == Some(session.name.as_str()))
            .map(|s| s.section.clone())
            .collect();
        if !self.sign_ins.is_inline() {
            self.sign_ins.start(Arc::clone(&self.sso), session, waiting);
            return Err(TokenMiss::AwaitingSignIn);
        }
        let on_code = |code: &DeviceCode| tell_inline(session, &waiting, code);
        let unit = Unit::SsoSession(session.name.clone());
        if let Err(error) = self.sso.sign_in(&session.session, &on_code).await {
            return Err(TokenMiss::Failed(error));
        }
        report.succeeded_units.push(unit);
        self.token_after_sign_in(session).await
    }

    /// Phase 3c: GetRoleCredentials for every SSO section with a token, in
    /// the window; then AssumeRole from the role credentials of the
    /// sections that chain a role. Sections whose token is missing fail
    /// with their SSO session, or wait for its sign-in.
    async fn sso_roles(
        &self,
        plan: &Plan,
        tokens: &BTreeMap<String, Result<AccessToken, TokenMiss>>,
        report: &mut PassReport,
    ) -> Vec<Obtained> {
        let mut jobs = Vec::new();
        for section in plan.pending() {
            let (sso_session, account_id, role_name, chained) = match &section.action {
                Action::SsoRoleCredentials {
                    sso_session,
                    account_id,
                    role_name,
                } => (sso_session, account_id, role_name, None),
                Action::AssumeRoleFromSsoRole {
                    sso_session,
                    account_id,
                    role_name,
                    role,
                    sts,
                } => (sso_session, account_id, role_name, Some((role, sts))),
                _ => continue,
            };
            let Some(session) = plan.sso_session(sso_session) else {
                continue;
            };
            match tokens.get(sso_session) {
                Some(Ok(token)) => jobs.push(PortalJob {
                    section,
                    session,
                    token: token.clone(),
                    account_id: account_id.clone(),
                    role_name: role_name.clone(),
                    chained,
                }),
                Some(Err(TokenMiss::Failed(error))) => report.fail(
                    &section.section,
                    Unit::SsoSession(sso_session.clone()),
                    error.clone(),
                ),
                Some(Err(TokenMiss::AwaitingSignIn)) => {
                    report.outcomes.insert(
                        section.section.clone(),
                        Outcome::AwaitingSignIn {
                            sso_session: sso_session.clone(),
                        },
                    );
                }
                // Its sign-in failed: the section failed with it.
                None => {}
            }
        }
        let start = |index: usize| -> BoxFuture<'static, Result<SessionCredentials, UnitError>> {
            let job: &PortalJob = &jobs[index];
            let (sso, session, token, account_id, role_name) = (
                Arc::clone(&self.sso),
                job.session.session.clone(),
                job.token.clone(),
                job.account_id.clone(),
                job.role_name.clone(),
            );
            Box::pin(async move {
                sso.role_credentials(&session, &token, &account_id, &role_name)
                    .await
            })
        };
        let results = self
            .windowed(
                jobs.len(),
                "IAM Identity Center",
                "GetRoleCredentials",
                &mut report.portal_calls,
                start,
            )
            .await;
        let mut obtained = Vec::new();
        let mut chained_jobs = Vec::new();
        for (job, result) in jobs.iter().zip(results) {
            let section = job.section;
            match (result, job.chained) {
                (Ok(creds), None) => obtained.push(Obtained::of(section, creds)),
                (Ok(creds), Some((role, target))) => chained_jobs.push(ChainedJob {
                    section,
                    key: None,
                    signer: SigningKeys::session(&creds),
                    endpoint: Endpoint::new(target.region.clone(), target.endpoint.clone()),
                    role: role.clone(),
                }),
                // The token itself refused (expired, revoked): its SSO
                // session's failure, and the token is not handed out again
                // (the next attempt refreshes it or signs in).
                (Err(error), _) if error.class == RetryClass::Reauthenticate => report.fail(
                    &section.section,
                    Unit::SsoSession(job.session.name.clone()),
                    error,
                ),
                // No access to the account or role, throttled, no answer:
                // this section's.
                (Err(error), _) => report.fail(
                    &section.section,
                    Unit::Section(section.section.clone()),
                    error,
                ),
            }
        }
        let results = self.assume_roles(&chained_jobs, report).await;
        for (job, result) in chained_jobs.iter().zip(results) {
            match result {
                Ok(creds) => obtained.push(Obtained::of(job.section, creds)),
                Err(error) => report.fail(
                    &job.section.section,
                    Unit::Section(job.section.section.clone()),
                    error,
                ),
            }
        }
        obtained
    }

    /// Phase 3a: AssumeRole with a code, one section at a time.
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
                key: Some(key),
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
                    if let Some(key) = key.filter(|_| error.class == RetryClass::Reauthenticate) {
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

    /// The AssumeRole calls of `jobs`, in the window of [`Executor::windowed`].
    async fn assume_roles(
        &self,
        jobs: &[ChainedJob<'_>],
        report: &mut PassReport,
    ) -> Vec<Result<SessionCredentials, UnitError>> {
        let start = |index: usize| -> BoxFuture<'static, Result<SessionCredentials, UnitError>> {
            let job = &jobs[index];
            let (sts, signer, endpoint, role) = (
                Arc::clone(&self.sts),
                job.signer.clone(),
                job.endpoint.clone(),
                job.role.clone(),
            );
            Box::pin(async move { sts.assume_role(&signer, &endpoint, &role, None).await })
        };
        self.windowed(
            jobs.len(),
            "STS",
            "AssumeRole",
            &mut report.sts_calls,
            start,
        )
        .await
    }

    /// `count` calls (`start(i)` makes the `i`-th), as many at once as the
    /// service allows: the window starts at the cap, halves when the
    /// service throttles (once per round of calls: the calls already under
    /// way when it halved do not halve it again), and grows by one after a
    /// window's worth of successes (AIMD, TCP's rule). A throttled call is
    /// tried again after a growing, jittered pause, up to
    /// [`THROTTLE_ATTEMPTS`] times. Results come back in the calls' order;
    /// `calls` counts what was sent.
    async fn windowed(
        &self,
        count: usize,
        service: &str,
        operation: &str,
        calls: &mut usize,
        start: impl Fn(usize) -> BoxFuture<'static, Result<SessionCredentials, UnitError>>,
    ) -> Vec<Result<SessionCredentials, UnitError>> {
        let mut results: Vec<Option<Result<SessionCredentials, UnitError>>> =
            (0..count).map(|_| None).collect();
        let mut window = Window::new(self.concurrency);
        let mut attempts = vec![0u32; count];
        // Calls ready to start (index, not before).
        let mut ready: std::collections::VecDeque<(usize, tokio::time::Instant)> = (0..count)
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
                let started = (window.generation(), tasks.len() + 1, launched);
                launched += 1;
                *calls += 1;
                let call = start(index);
                tasks.spawn(async move { (index, started, call.await) });
            }
            if tasks.is_empty() && ready.is_empty() {
                break;
            }
            // A call's pause matters only while the window has room for it:
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
            // batch of 32 is not alone, though it started first; the service
            // may see it arrive last).
            let in_flight = running + (launched - launched_before - 1);
            match result {
                // Throttled even one call at a time: not too many at once,
                // but too many at all (a storm, a limit on the account).
                // The rest of the pass would be refused the same way; the
                // sections back off instead (the scheduler's backoff).
                Err(error) if error.throttled && in_flight == 1 => {
                    tracing::info!(
                        "{service} throttles {operation} even one call at a time; the rest waits for the backoff"
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
                            "{service} is throttling {operation}: {} call(s) at once from now on",
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
                        tracing::debug!("{operation} concurrency grows to {}", window.size());
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
                        format!("the {operation} task ended unexpectedly"),
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
        cleanups: Cleanups,
        report: &mut PassReport,
    ) {
        for o in &obtained {
            report.sessions.insert(o.section.clone(), o.creds.clone());
        }
        let (to_cache, to_file): (Vec<Obtained>, Vec<Obtained>) = obtained
            .into_iter()
            .partition(|o| o.output == Output::Process);
        self.write_cache(cache, to_cache, report).await;
        self.write_file(plan, credentials, to_file, cleanups, report)
            .await;
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
        cleanups: Cleanups,
        report: &mut PassReport,
    ) {
        let document = credentials.document();
        let mut removals: Vec<(&str, Vec<Edit>)> = plan
            .cleanups()
            .filter(|_| cleanups == Cleanups::Remove)
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
                // A version another program wrote meanwhile went into ours:
                // what is on disk is news to the plan, so the event of our
                // write must start a pass (no version to recognise it by).
                let left = (!written.merged).then_some(written.snapshot);
                Ok::<_, crate::credentials::CredentialsError>((written.outcome, left))
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
                Ok((outcome, left)) => {
                    if outcome == WriteOutcome::Written {
                        report.wrote = true;
                        report.merged |= left.is_none();
                        report.file_left = left;
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

/// One AssumeRole signed with temporary credentials: an MFA session's
/// (`key`), or the role credentials of an SSO section.
struct ChainedJob<'p> {
    section: &'p super::decide::SectionPlan,
    key: Option<&'p MfaSessionKey>,
    signer: SigningKeys,
    endpoint: Endpoint,
    role: RoleSettings,
}

/// One GetRoleCredentials (and the role assumed from its credentials).
struct PortalJob<'p> {
    section: &'p super::decide::SectionPlan,
    session: &'p SsoSessionPlan,
    token: AccessToken,
    account_id: String,
    role_name: String,
    chained: Option<(&'p RoleSettings, &'p StsTarget)>,
}

/// Why an SSO session has no token for its sections in this pass.
#[derive(Debug)]
enum TokenMiss {
    Failed(UnitError),
    /// Its sign-in is under way (a task): the sections wait for it.
    AwaitingSignIn,
}

/// The sign-ins of this process: in the daemon each runs as a task of its
/// own (minutes: the person has to approve it), whose code and end wake
/// the loop (`wake`); for a command (`apply`, `credential-process`) the
/// pass waits for it. One per SSO session at a time.
pub struct SignIns {
    /// `None`: inline (a command waits for its sign-in in the pass).
    wake: Option<Arc<dyn Fn() + Send + Sync>>,
    state: std::sync::Mutex<SignInState>,
    /// Counts the sign-ins that ended (a pass under way waits on it).
    ended: tokio::sync::watch::Sender<u64>,
}

#[derive(Default)]
struct SignInState {
    /// The SSO sessions with a sign-in task under way, with its code once
    /// shown.
    running: BTreeMap<String, Option<DeviceCode>>,
    /// How the tasks that ended since the last look ended.
    ended: Vec<(String, Result<(), UnitError>)>,
}

impl SignIns {
    /// A command's: the pass waits for a sign-in.
    pub fn inline() -> Arc<SignIns> {
        Arc::new(SignIns {
            wake: None,
            state: std::sync::Mutex::default(),
            ended: tokio::sync::watch::Sender::new(0),
        })
    }

    /// The daemon's: each sign-in a task; `wake` asks the loop for a pass
    /// (when its code is shown, and when it ends).
    pub fn background(wake: impl Fn() + Send + Sync + 'static) -> Arc<SignIns> {
        Arc::new(SignIns {
            wake: Some(Arc::new(wake)),
            state: std::sync::Mutex::default(),
            ended: tokio::sync::watch::Sender::new(0),
        })
    }

    fn is_inline(&self) -> bool {
        self.wake.is_none()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SignInState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sign-ins under way, by SSO session, with their codes once shown.
    pub fn under_way(&self) -> BTreeMap<String, Option<DeviceCode>> {
        self.state().running.clone()
    }

    fn take_ended(&self) -> Vec<(String, Result<(), UnitError>)> {
        std::mem::take(&mut self.state().ended)
    }

    /// How the sign-ins of `sessions` that ended since the last look ended.
    fn take_ended_of(&self, sessions: &[String]) -> Vec<(String, Result<(), UnitError>)> {
        let mut state = self.state();
        let (of, others) = std::mem::take(&mut state.ended)
            .into_iter()
            .partition(|(name, _)| sessions.contains(name));
        state.ended = others;
        of
    }

    /// Changes when a sign-in ends.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.ended.subscribe()
    }

    /// Starts the sign-in of `session` unless one runs; `waiting`: the
    /// sections that wait for it (named in the log line).
    fn start(
        self: &Arc<Self>,
        sso: Arc<dyn SsoApi>,
        session: &SsoSessionPlan,
        waiting: Vec<String>,
    ) {
        let Some(wake) = self.wake.clone() else {
            return;
        };
        let name = session.name.clone();
        {
            let mut state = self.state();
            if state.running.contains_key(&name) {
                return;
            }
            state.running.insert(name.clone(), None);
        }
        let sign_ins = Arc::clone(self);
        let (sso_session, open_browser) = (session.session.clone(), session.open_browser);
        tokio::spawn(async move {
            let on_code = |code: &DeviceCode| {
                if let Some(shown) = sign_ins.state().running.get_mut(&sso_session.name) {
                    *shown = Some(code.clone());
                }
                tell_background(&sso_session.name, &waiting, code, open_browser);
                wake();
            };
            let result = sso.sign_in(&sso_session, &on_code).await;
            match &result {
                Ok(()) => tracing::info!(
                    sso_session = %printable(&sso_session.name),
                    "SSO session {}: signed in",
                    printable(&sso_session.name)
                ),
                Err(error) => tracing::debug!(
                    sso_session = %printable(&sso_session.name),
                    "SSO session {}: the sign-in ended: {error}",
                    printable(&sso_session.name)
                ),
            }
            {
                let mut state = sign_ins.state();
                state.running.remove(&sso_session.name);
                state.ended.push((sso_session.name.clone(), result));
            }
            sign_ins.ended.send_modify(|n| *n += 1);
            wake();
        });
    }
}

/// The sign-in's code reaches the person: one log line (the user code is
/// shown on purpose; the device code never is), a desktop notification,
/// and the browser when the config asks for it. `status`, the state it
/// shows and `STATUS=` follow from the pass the code wakes.
fn tell_background(name: &str, waiting: &[String], code: &DeviceCode, open_browser: bool) {
    let (name, url, user_code) = (
        printable(name),
        printable(code.url()),
        printable(&code.user_code),
    );
    let sections: Vec<_> = waiting.iter().map(|s| printable(s)).collect();
    let first = sections.first().cloned().unwrap_or_default();
    match code.origin {
        crate::sso::SignInOrigin::ThisProcess => {
            tracing::warn!(
                sso_session = %name,
                section = %first,
                "sign-in needed for SSO session {name}: open {url} and check the code {user_code} (until {}; section(s) [{}] wait for it)",
                crate::timestamp::rfc3339(code.expires_at),
                sections.join("], [")
            );
            crate::oath::notify_desktop(
                "Sign in to AWS IAM Identity Center",
                format!(
                    "Open {url} and check the code {user_code} (SSO session {name}; {} section(s) wait for it).",
                    sections.len()
                ),
            );
            if open_browser && let Err(e) = crate::sso::open_in_browser(code.url()) {
                tracing::warn!(sso_session = %name, "cannot open the browser: {e}");
            }
        }
        crate::sso::SignInOrigin::OtherProcess { pid } => tracing::info!(
            sso_session = %name,
            section = %first,
            "SSO session {name}: another process{} is signing in (open {url}, code {user_code}); waiting for its token",
            pid.map(|p| format!(" ({p})")).unwrap_or_default()
        ),
    }
}

/// For a command: the code on standard error (whatever the log level) and
/// on the desktop; another process's sign-in is only waited for.
fn tell_inline(session: &SsoSessionPlan, waiting: &[String], code: &DeviceCode) {
    let (name, url, user_code) = (
        printable(&session.name),
        printable(code.url()),
        printable(&code.user_code),
    );
    match code.origin {
        crate::sso::SignInOrigin::ThisProcess => {
            eprintln!(
                "Sign in to AWS IAM Identity Center (SSO session {name}): open {url} and check the code {user_code}"
            );
            crate::oath::notify_desktop(
                "Sign in to AWS IAM Identity Center",
                format!(
                    "Open {url} and check the code {user_code} (SSO session {name}; {} section(s) wait for it).",
                    waiting.len()
                ),
            );
            if session.open_browser
                && let Err(e) = crate::sso::open_in_browser(code.url())
            {
                eprintln!("cannot open the browser: {e}");
            }
        }
        crate::sso::SignInOrigin::OtherProcess { .. } => eprintln!(
            "Waiting for the sign-in to AWS IAM Identity Center another process started (SSO session {name}): open {url} and check the code {user_code}"
        ),
    }
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
