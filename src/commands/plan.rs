//! `plan`: what is fresh, what would be refreshed, and what that costs.
//! Touches neither the YubiKey nor the network, and prints no secret.

use std::io::Write;

use time::OffsetDateTime;

use crate::plan::{Action, Plan, ProfileState};

/// Exit codes of `plan --detailed-exitcode`.
pub const EXIT_NOTHING_PENDING: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_PENDING: i32 = 2;

pub fn exit_code(plan: &Plan, detailed: bool) -> i32 {
    if plan.has_invalid() {
        EXIT_ERROR
    } else if detailed && plan.pending().next().is_some() {
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

pub fn print_table(plan: &Plan, out: &mut dyn Write) -> anyhow::Result<()> {
    let rows: Vec<[String; 5]> = plan
        .sections
        .iter()
        .map(|s| {
            [
                s.section.clone(),
                s.profile.clone(),
                s.state.name().to_string(),
                expiry_column(&s.state, plan.now),
                action_column(&s.action),
            ]
        })
        .collect();
    let header = ["SECTION", "PROFILE", "STATE", "EXPIRES", "ACTION"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }

    writeln!(out)?;
    let work = &plan.work;
    if plan.pending().next().is_none() {
        writeln!(out, "Nothing to do.")?;
    } else {
        let codes: Vec<String> = work
            .codes
            .iter()
            .map(|(device, n)| format!("{n} from {device}"))
            .collect();
        writeln!(
            out,
            "Work: {} MFA code(s){}, {} GetSessionToken, {} AssumeRole.",
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
    if let Some(deadline) = plan.next_deadline.filter(|d| *d > plan.now) {
        writeln!(
            out,
            "Next refresh due {} ({}).",
            rfc3339(deadline),
            remaining(deadline, plan.now)
        )?;
    }
    for section in &plan.sections {
        if let ProfileState::Invalid { reasons } = &section.state {
            writeln!(out, "\nSection [{}] is invalid:", section.section)?;
            for reason in reasons {
                for line in reason.lines() {
                    writeln!(out, "  {line}")?;
                }
            }
        }
    }
    Ok(())
}

fn expiry_column(state: &ProfileState, now: OffsetDateTime) -> String {
    match state {
        ProfileState::Fresh { expires } | ProfileState::Refresh { expires, .. } => {
            format!("{} ({})", rfc3339(*expires), remaining(*expires, now))
        }
        ProfileState::Missing { what } => what.clone(),
        ProfileState::Unmanaged => "no expiry recorded".to_string(),
        ProfileState::Invalid { .. } => "-".to_string(),
    }
}

fn action_column(action: &Action) -> String {
    match action {
        Action::None => "-".to_string(),
        Action::WriteMfaSession { .. } => "write MFA session".to_string(),
        Action::AssumeRoleFromMfaSession { role_arn, .. } => {
            format!("assume {role_arn} from MFA session")
        }
        Action::AssumeRoleWithCode { role_arn, .. } => format!("assume {role_arn} with a code"),
    }
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// "in 1h 05m" or "3m ago".
pub fn remaining(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let seconds = (at - now).whole_seconds();
    let abs = seconds.unsigned_abs();
    let text = if abs >= 172_800 {
        format!("{}d {}h", abs / 86_400, abs % 86_400 / 3600)
    } else if abs >= 3600 {
        format!("{}h {:02}m", abs / 3600, abs % 3600 / 60)
    } else if abs >= 60 {
        format!("{}m", abs / 60)
    } else {
        format!("{abs}s")
    };
    if seconds >= 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// `plan`: read the config and the credentials file, print the plan.
pub fn run(cli: &crate::cli::Cli, args: &crate::cli::PlanArgs) -> anyhow::Result<i32> {
    let config = super::load_config(cli)?;
    let file = super::credentials_file(cli, &config)?;
    let document = file.read()?;
    let known = crate::plan::KnownMfaSessions::new();
    let plan = crate::plan::plan(
        &config.sections,
        &document,
        &known,
        OffsetDateTime::now_utc(),
    );
    let mut out = std::io::stdout().lock();
    if args.json {
        print_json(&plan, &mut out)?;
    } else {
        print_table(&plan, &mut out)?;
    }
    Ok(exit_code(&plan, args.detailed_exitcode))
}
