//! `plan`: what is fresh, what would be refreshed, and what that costs.
//! Touches neither the YubiKey nor the network, and prints no secret.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use time::OffsetDateTime;

use super::table::Table;
use crate::daemon::decide::{Action, Plan, ProfileState, SsoNeeds, SsoSessionPlan};
use crate::session::Unit;
use crate::text::printable;
use crate::timestamp::{rfc3339, with_relative};

/// Exit codes of `plan --detailed-exitcode`.
pub const EXIT_NOTHING_PENDING: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_PENDING: i32 = 2;

pub fn exit_code(plan: &Plan, detailed: bool) -> i32 {
    if plan.has_invalid() {
        EXIT_ERROR
    } else if detailed && plan.has_work() {
        EXIT_PENDING
    } else {
        EXIT_NOTHING_PENDING
    }
}

pub fn print_json(plan: &Plan, out: &mut dyn Write) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, plan)?;
    writeln!(out)?;
    Ok(())
}

/// `reasons`: the last error of each unit the running daemon backs off
/// (from its state file), said once for the sections that wait for it.
pub fn print_table(
    plan: &Plan,
    reasons: &BTreeMap<Unit, String>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut table = Table::new([
        "SECTION", "PROFILE", "OUTPUT", "KEYS", "STATE", "EXPIRES", "ACTION",
    ]);
    for s in &plan.sections {
        table.row([
            s.section.as_str(),
            s.profile.as_str(),
            match s.output {
                crate::config::Output::File => "file",
                crate::config::Output::Process => "process",
            },
            s.long_term_keys,
            s.state.name(),
            &expiry_column(&s.state, plan.now),
            &action_column(&s.action, plan.now),
        ]);
    }
    out.write_all(table.render().as_bytes())?;
    writeln!(out)?;
    let work = &plan.work;
    if !plan.has_work() {
        writeln!(out, "Nothing to do.")?;
    } else if plan.pending().next().is_some() {
        let codes: Vec<String> = work
            .codes
            .iter()
            .map(|(device, n)| format!("{n} from {device}"))
            .collect();
        let sso = if plan.sso_sessions.is_empty() {
            String::new()
        } else {
            format!(
                ", {} sign-in(s), {} token refresh(es), {} GetRoleCredentials",
                work.sso_sign_ins, work.sso_token_refreshes, work.get_role_credentials_calls
            )
        };
        writeln!(
            out,
            "Work: {} MFA code(s){}, {} GetSessionToken, {} AssumeRole{sso}.",
            work.total_codes(),
            if codes.is_empty() {
                String::new()
            } else {
                format!(" ({})", codes.join(", "))
            },
            work.get_session_token_calls,
            work.assume_role_calls
        )?;
        for session in &plan.mfa_sessions {
            let source = match (session.needs_new, session.cached_until) {
                (false, Some(until)) => format!("cached until {}", rfc3339(until)),
                _ => "new session needed".to_string(),
            };
            writeln!(
                out,
                "MFA session {}: {source}; used by {}",
                session.key,
                session.used_by.join(", ")
            )?;
        }
    }
    for session in &plan.sso_sessions {
        writeln!(out, "{}", sso_session_line(session, plan.now))?;
    }
    let waited_for: BTreeSet<&Unit> = plan
        .sections
        .iter()
        .filter_map(|s| match &s.action {
            Action::Wait { unit, .. } => Some(unit),
            _ => None,
        })
        .collect();
    for unit in waited_for {
        if let Some(reason) = reasons.get(unit) {
            writeln!(
                out,
                "{} backs off after: {}",
                printable(&unit.to_string()),
                printable(reason.lines().next().unwrap_or(""))
            )?;
        }
    }
    if let Some(mode) = plan.restrict_file_mode {
        writeln!(
            out,
            "The credentials file is readable or writable by others (mode {mode:03o}): it will be made {:03o}.",
            mode & 0o700
        )?;
    }
    for section in plan.cleanups() {
        writeln!(
            out,
            "Section [{}] is served by credential-process: its old session ({}) will be removed from profile [{}] in the credentials file.",
            printable(&section.section),
            section.remove_from_file.join(", "),
            printable(&section.profile)
        )?;
    }
    for section in &plan.sections {
        for warning in &section.warnings {
            writeln!(
                out,
                "Warning: section [{}]: {}",
                printable(&section.section),
                printable(warning)
            )?;
        }
    }
    if let Some(next) = plan.next_pass.filter(|d| *d > plan.now) {
        writeln!(out, "Next pass due {}.", with_relative(next, plan.now))?;
    }
    for section in &plan.sections {
        if let ProfileState::Invalid { reasons } = &section.state {
            writeln!(
                out,
                "\nSection [{}] is invalid:",
                printable(&section.section)
            )?;
            for reason in reasons {
                for line in reason.lines() {
                    writeln!(out, "  {}", printable(line))?;
                }
            }
        }
    }
    Ok(())
}

fn expiry_column(state: &ProfileState, now: OffsetDateTime) -> String {
    match state {
        ProfileState::Fresh { expires } | ProfileState::Refresh { expires } => {
            with_relative(*expires, now)
        }
        ProfileState::Missing { what } => printable(what).into_owned(),
        ProfileState::Unmanaged => "no expiry recorded".to_string(),
        ProfileState::Invalid { .. } => "-".to_string(),
    }
}

fn action_column(action: &Action, now: OffsetDateTime) -> String {
    match action {
        Action::None => "-".to_string(),
        Action::Blocked { reason } => format!("blocked: {}", printable(reason)),
        Action::Wait { unit, until } => format!(
            "wait: {} backs off until {}",
            printable(&unit.to_string()),
            with_relative(*until, now)
        ),
        Action::WriteMfaSession { .. } => "write MFA session".to_string(),
        Action::AssumeRoleFromMfaSession { role, .. } => format!(
            "assume {} from MFA session (role chaining: {} s, at most 1 h)",
            printable(&role.arn),
            role.duration
        ),
        Action::AssumeRoleWithCode { role, .. } => {
            format!("assume {} with a code", printable(&role.arn))
        }
        Action::SsoRoleCredentials {
            sso_session,
            account_id,
            role_name,
        } => format!(
            "GetRoleCredentials {}/{} (SSO session {})",
            printable(account_id),
            printable(role_name),
            printable(sso_session)
        ),
        Action::AssumeRoleFromSsoRole {
            account_id,
            role_name,
            role,
            ..
        } => format!(
            "assume {} from SSO role {}/{} (role chaining: {} s, at most 1 h)",
            printable(&role.arn),
            printable(account_id),
            printable(role_name),
            role.duration
        ),
        Action::AwaitSignIn { sso_session } => {
            format!("wait: sign-in of SSO session {}", printable(sso_session))
        }
    }
}

/// What an SSO session's token is, and what the pass takes of it.
fn sso_session_line(session: &SsoSessionPlan, now: OffsetDateTime) -> String {
    let needs = match session.needs {
        SsoNeeds::Nothing => "",
        SsoNeeds::Refresh => "; the pass refreshes the token",
        SsoNeeds::SignIn => "; the pass starts a sign-in",
        SsoNeeds::AwaitSignIn => "; the pass waits for that sign-in",
    };
    let used_by = if session.used_by.is_empty() {
        String::new()
    } else {
        let names: Vec<_> = session.used_by.iter().map(|s| printable(s)).collect();
        format!("; needed by {}", names.join(", "))
    };
    format!(
        "SSO session {} ({}): {}{needs}{used_by}",
        printable(&session.name),
        printable(&session.start_url),
        session.token.describe(now)
    )
}

/// `plan`: read the config and the credentials file, print the plan.
pub fn run(cli: &crate::cli::Cli, args: &crate::cli::PlanArgs) -> anyhow::Result<i32> {
    let observation = super::observe(cli)?;
    let plan = observation.plan();
    let mut out = std::io::stdout().lock();
    if args.json {
        print_json(&plan, &mut out)?;
    } else {
        print_table(&plan, &observation.recorded.reasons, &mut out)?;
        if let Some(endpoint) = observation.config.endpoint() {
            writeln!(
                out,
                "Credentials endpoint: {} (`run` serves the {} valid section(s) there{}; `status` shows its URL and token file).",
                endpoint.address,
                observation.config.valid_sections().count(),
                if endpoint.section_tokens {
                    ", with a token per section"
                } else {
                    ""
                }
            )?;
        }
    }
    Ok(exit_code(&plan, args.detailed_exitcode))
}
