//! Tell: what a pass says to the outside. The state file behind `status`
//! (per section: last refresh, last error, next attempt, the settings
//! written; and the units backing off, for `plan`), the systemd `STATUS=`
//! line, and the summary log line. All of it from the plan as the pass left
//! it, so that `status`, `STATUS=` and the loop's wake-up show one instant.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::act::{Outcome, PassReport};
use super::decide::{Applied, PendingSignIn, Plan, ProfileState, SsoToken};
use super::state;
use crate::session::FailingUnits;
use crate::text::printable;

/// Where the pass's record goes: the runtime directory (none: nowhere).
pub struct Teller {
    runtime_dir: Option<PathBuf>,
}

impl Teller {
    pub fn new(runtime_dir: Option<PathBuf>) -> Teller {
        Teller { runtime_dir }
    }

    /// The runtime directory in use (this user's own), if any.
    pub fn runtime_dir(&self) -> Option<&std::path::Path> {
        self.runtime_dir.as_deref()
    }

    /// Records the pass in the state file (merged under its lock, on a
    /// blocking thread: another daemon process may hold the lock).
    pub async fn record(
        &self,
        plan: &Plan,
        report: &PassReport,
        applied: &Applied,
        failing: FailingUnits,
    ) {
        let Some(dir) = self.runtime_dir.clone() else {
            return;
        };
        let updates = section_updates(plan, report, applied);
        let now = plan.now;
        let result = tokio::task::spawn_blocking(move || {
            let previous = state::read(&dir);
            let updates: BTreeMap<String, state::SectionStatus> = updates
                .into_iter()
                .map(|(name, update)| {
                    let previous = previous.sections.get(&name).cloned().unwrap_or_default();
                    (name, update.applied_to(previous, now))
                })
                .collect();
            // At rest nothing changes: skip the write (and its fsync).
            let unchanged = updates
                .iter()
                .all(|(name, status)| previous.sections.get(name) == Some(status))
                && failing == previous.failing_of(std::process::id());
            if unchanged {
                return Ok(());
            }
            state::update(&dir, &updates, &failing)
        })
        .await;
        match result {
            Ok(Err(e)) => tracing::debug!("cannot write the status file: {e}"),
            Err(e) => tracing::debug!("writing the status file was interrupted: {e}"),
            Ok(Ok(())) => {}
        }
    }
}

/// What a pass changes of one section's recorded status.
struct SectionUpdate {
    written: bool,
    /// The pass's attempt failed with this error.
    failed: Option<String>,
    /// The section is skipped or blocked for this reason (no attempt).
    problem: Option<String>,
    next_attempt: Option<time::OffsetDateTime>,
    applied: Option<u64>,
}

impl SectionUpdate {
    fn applied_to(
        self,
        mut status: state::SectionStatus,
        now: time::OffsetDateTime,
    ) -> state::SectionStatus {
        status.pid = Some(std::process::id());
        if self.written {
            status.last_refresh = Some(now);
            status.last_error = None;
            status.last_error_at = None;
        }
        if let Some(error) = self.failed {
            status.last_error = Some(error);
            status.last_error_at = Some(now);
        }
        if let Some(problem) = self.problem {
            status.last_error = Some(problem);
        }
        status.next_attempt = self.next_attempt;
        status.applied = self.applied;
        status
    }
}

fn section_updates(
    plan: &Plan,
    report: &PassReport,
    applied: &Applied,
) -> BTreeMap<String, SectionUpdate> {
    plan.sections
        .iter()
        .map(|section| {
            let outcome = report.outcomes.get(&section.section);
            let problem = match (&section.state, &section.action) {
                (ProfileState::Invalid { reasons }, _) => reasons.first().cloned(),
                (_, super::decide::Action::Blocked { reason }) => Some(reason.clone()),
                _ => None,
            };
            let failed = match outcome {
                Some(Outcome::Failed { error, .. }) => Some(error.message.clone()),
                _ => None,
            };
            let update = SectionUpdate {
                written: outcome == Some(&Outcome::Written),
                failed,
                problem,
                next_attempt: plan.next_pass_of(section).map(|(at, _)| at),
                applied: applied.get(&section.section).copied(),
            };
            (section.section.clone(), update)
        })
        .collect()
}

/// The systemd `STATUS=` line: fresh profiles and the plan's next pass,
/// and a sign-in that waits for the person (its URL and user code: shown on
/// purpose, they obtain nothing without the person's approval).
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
    let sign_ins: String = plan
        .sso_sessions
        .iter()
        .filter_map(|session| match &session.token {
            SsoToken::SignInPending(PendingSignIn {
                url: Some(url),
                user_code: Some(code),
                ..
            }) => Some(format!(
                "; sign-in needed for SSO session {}: open {} and check the code {}",
                printable(&session.name),
                printable(url),
                printable(code)
            )),
            _ => None,
        })
        .collect();
    format!("{fresh}/{total} fresh{next}{sign_ins}")
}

/// Tells systemd the status (and, after the first pass, that the daemon
/// is ready).
pub fn notify_systemd(plan: &Plan, first: bool) {
    let status = status_line(plan);
    let mut states = vec![sd_notify::NotifyState::Status(&status)];
    if first {
        states.push(sd_notify::NotifyState::Ready);
    }
    let _ = sd_notify::notify(&states);
}

/// The pass's one line about what it wrote.
pub fn log_written(report: &PassReport, file: &std::path::Path) {
    if report.wrote {
        let portal = match report.portal_calls {
            0 => String::new(),
            n => format!(", {n} GetRoleCredentials"),
        };
        tracing::info!(
            "wrote {} profile(s) to {} ({} code(s), {} STS call(s){portal})",
            report.written(),
            printable(&file.display().to_string()),
            report.codes_used,
            report.sts_calls
        );
    }
}
